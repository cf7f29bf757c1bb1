//! The engine calls behind the request bodies that carry JSON (a signal, a
//! query, an update), made once: the endpoint's routes make them for a request, and
//! the command-line tool for a file it opened itself, so both do exactly
//! the same with the same body.

use steadfast::{
    ClientError, Engine, Payload, ResetOptions, ResetTo, SignalOptions, UpdateError, UpdateOptions,
};

use crate::api::{
    Done, PauseRequest, QueryAnswer, QueryRequest, ResetDone, ResetRequest, SignalRequest,
    UpdateAnswer, UpdateRequest, payload_value,
};

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

/// Pauses (`pause` true) or unpauses the run a [`PauseRequest`] names.
///
/// # Errors
/// The engine's, as [`Engine::pause_workflow`] gives them.
pub async fn pause(
    engine: &Engine,
    workflow_id: &str,
    request: PauseRequest,
    pause: bool,
) -> Result<Done, ClientError> {
    let (verb, outcome) = if pause {
        ("paused", "paused")
    } else {
        ("unpaused", "unpaused")
    };
    let reason = request
        .reason
        .unwrap_or_else(|| format!("{verb} by an operator"));
    if pause {
        engine.pause_workflow(workflow_id, &reason).await?;
    } else {
        engine.unpause_workflow(workflow_id, &reason).await?;
    }
    Ok(Done {
        workflow_id: workflow_id.to_string(),
        outcome: outcome.to_string(),
    })
}

/// The engine's reset options for a [`ResetRequest`].
///
/// # Errors
/// [`ClientError::InvalidArgument`] for a request that names no point or
/// two, an unknown type or exclusion, or an empty reason.
pub fn reset_options(request: &ResetRequest) -> Result<ResetOptions, ClientError> {
    let invalid = |m: String| Err(ClientError::InvalidArgument(m));
    let to = match (request.event_id, request.reset_type.as_deref()) {
        (Some(id), None) => ResetTo::EventId(id),
        (None, Some("FirstWorkflowTask")) => ResetTo::FirstWorkflowTask,
        (None, Some("LastWorkflowTask")) => ResetTo::LastWorkflowTask,
        (None, Some(other)) => {
            return invalid(format!(
                "reset type {other:?} is not one this engine knows; use FirstWorkflowTask or \
                 LastWorkflowTask, or give an event ID"
            ));
        }
        (None, None) => {
            return invalid(
                "a reset needs a point: an event ID, or the type FirstWorkflowTask or \
                 LastWorkflowTask"
                    .to_string(),
            );
        }
        (Some(_), Some(_)) => {
            return invalid("give either an event ID or a reset type, not both".to_string());
        }
    };
    if request.reason.trim().is_empty() {
        return invalid("a reset needs a reason; say why (it is recorded in both runs)".into());
    }
    let mut options = ResetOptions::new(to, request.reason.clone());
    for excluded in &request.reapply_exclude {
        match excluded.as_str() {
            "Signal" => options = options.exclude_signals(),
            "Update" => options = options.exclude_updates(),
            "All" => options = options.exclude_signals().exclude_updates(),
            other => {
                return invalid(format!(
                    "reapply exclusion {other:?} is not one this engine knows; use Signal, \
                     Update or All"
                ));
            }
        }
    }
    Ok(options)
}

/// Resets the run a [`ResetRequest`] names; answers the new run.
///
/// # Errors
/// As [`reset_options`], then the engine's, as [`Engine::reset_workflow`]
/// gives them.
pub async fn reset(
    engine: &Engine,
    workflow_id: &str,
    request: ResetRequest,
) -> Result<ResetDone, ClientError> {
    let options = reset_options(&request)?;
    let run_id = engine.reset_workflow(workflow_id, options).await?;
    Ok(ResetDone {
        workflow_id: workflow_id.to_string(),
        outcome: "reset".to_string(),
        run_id: run_id.to_string(),
    })
}

/// Sends the update an [`UpdateRequest`] names and returns its handler's
/// result.
///
/// # Errors
/// The engine's, as [`Engine::update_by_name`] gives them: a validator's
/// rejection is [`UpdateError::Rejected`].
pub async fn update(
    engine: &Engine,
    workflow_id: &str,
    request: UpdateRequest,
) -> Result<UpdateAnswer, UpdateError> {
    let input = Payload::encode(&request.input).map_err(ClientError::from)?;
    let mut options = UpdateOptions::new();
    if let Some(update_id) = &request.update_id {
        options = options.with_update_id(update_id.clone());
    }
    let result = engine
        .update_by_name(workflow_id, &request.name, input, options)
        .await?;
    Ok(UpdateAnswer {
        workflow_id: workflow_id.to_string(),
        update_id: request.update_id,
        result: payload_value(&result),
    })
}
