//! The engine calls behind the request bodies that carry JSON (a signal, a
//! query), made once: the endpoint's routes make them for a request, and
//! the command-line tool for a file it opened itself, so both do exactly
//! the same with the same body.

use steadfast::{ClientError, Engine, Payload, SignalOptions};

use crate::api::{Done, QueryAnswer, QueryRequest, SignalRequest, payload_value};

/// Sends the signal a [`SignalRequest`] names; answers once it is durable.
///
/// # Errors
/// The engine's, as [`Engine::signal_by_name`] gives them.
pub async fn signal(
    engine: &Engine,
    workflow_id: &str,
    request: SignalRequest,
) -> Result<Done, ClientError> {
    let payload = Payload::encode(&request.input)?;
    let mut options = SignalOptions::new();
    if let Some(request_id) = request.request_id {
        options = options.with_request_id(request_id);
    }
    engine
        .signal_by_name(workflow_id, &request.name, payload, options)
        .await?;
    Ok(Done {
        workflow_id: workflow_id.to_string(),
        outcome: "signaled".to_string(),
    })
}

/// Asks the query a [`QueryRequest`] names and returns its answer.
///
/// # Errors
/// The engine's, as [`Engine::query_by_name`] gives them.
pub async fn query(
    engine: &Engine,
    workflow_id: &str,
    request: QueryRequest,
) -> Result<QueryAnswer, ClientError> {
    let argument = Payload::encode(&request.args)?;
    let answer = engine
        .query_by_name(workflow_id, &request.name, argument)
        .await?;
    Ok(QueryAnswer {
        workflow_id: workflow_id.to_string(),
        result: payload_value(&answer),
    })
}
