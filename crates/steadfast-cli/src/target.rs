//! What a command acts on: a running application's admin endpoint
//! (`--address`), or a file no application holds (`--db`), opened by the
//! tool itself: read-only for the commands that only read, so looking at
//! a file never changes it; for writing by the commands that write. Both
//! answer the same JSON, so the commands print the same either way.

use std::path::PathBuf;

use hyper::Method;
use serde_json::{Value, json};
use steadfast::{ClientError, Engine, OpenError, RunId};
use steadfast_admin::api::{Counts, Description, Done, ExecutionPage};

use crate::cli::Code;
use crate::client::{AdminClient, segment};
use crate::error::CliError;

/// One request of a command.
pub enum Call {
    /// A page of the list; `query` is the endpoint's query string.
    List {
        query: String,
    },
    /// The counts by status.
    Count,
    Describe {
        id: String,
        run: Option<String>,
    },
    History {
        id: String,
        run: Option<String>,
    },
    /// `body` is the endpoint's query body.
    Query {
        id: String,
        body: Value,
    },
    /// `body` is the endpoint's update body.
    Update {
        id: String,
        body: Value,
    },
    /// `body` is the endpoint's signal body.
    Signal {
        id: String,
        body: Value,
    },
    Cancel {
        id: String,
    },
    Terminate {
        id: String,
        reason: Option<String>,
    },
    Delete {
        id: String,
    },
    /// `body` is the endpoint's reset body.
    Reset {
        id: String,
        body: Value,
    },
    /// Pause (`pause` true) or unpause.
    Pause {
        id: String,
        reason: Option<String>,
        pause: bool,
    },
    Schedule(ScheduleCall),
}

/// One request of a `schedule` command.
pub enum ScheduleCall {
    /// `body` is the endpoint's create body.
    Create {
        id: String,
        body: Value,
    },
    /// `body` is the endpoint's create body, the schedule's new whole
    /// configuration.
    Update {
        id: String,
        body: Value,
    },
    List,
    Describe {
        id: String,
    },
    Pause {
        id: String,
        pause: bool,
        note: Option<String>,
    },
    Trigger {
        id: String,
        overlap: Option<String>,
    },
    /// `body` is the endpoint's backfill body.
    Backfill {
        id: String,
        body: Value,
    },
    Delete {
        id: String,
    },
}

pub enum Target {
    Endpoint(AdminClient),
    /// A file, and the workflow code an embedding application registered
    /// (empty in the plain tool): queries on the file replay with it.
    File {
        path: PathBuf,
        code: Code,
    },
}

impl Target {
    pub async fn call(&self, call: Call) -> Result<Value, CliError> {
        match self {
            Target::Endpoint(client) => endpoint(client, call).await,
            Target::File { path, code } => file(path, code, call).await,
        }
    }
}

fn with_run(mut path: String, run: &Option<String>) -> String {
    if let Some(run) = run {
        path.push_str("?run_id=");
        path.push_str(&segment(run));
    }
    path
}

async fn endpoint(client: &AdminClient, call: Call) -> Result<Value, CliError> {
    let workflow = |id: &str| format!("/api/v1/workflows/{}", segment(id));
    match call {
        Call::List { query } => {
            let path = format!("/api/v1/workflows?{query}");
            client.call(Method::GET, &path, None).await
        }
        Call::Count => client.call(Method::GET, "/api/v1/counts", None).await,
        Call::Describe { id, run } => {
            client
                .call(Method::GET, &with_run(workflow(&id), &run), None)
                .await
        }
        Call::History { id, run } => {
            let path = with_run(format!("{}/history", workflow(&id)), &run);
            client.call(Method::GET, &path, None).await
        }
        Call::Signal { id, body } => {
            let path = format!("{}/signal", workflow(&id));
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Query { id, body } => {
            let path = format!("{}/query", workflow(&id));
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Update { id, body } => {
            let path = format!("{}/update", workflow(&id));
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Cancel { id } => {
            let path = format!("{}/cancel", workflow(&id));
            client.call(Method::POST, &path, None).await
        }
        Call::Terminate { id, reason } => {
            let path = format!("{}/terminate", workflow(&id));
            let body = json!({ "reason": reason });
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Delete { id } => client.call(Method::DELETE, &workflow(&id), None).await,
        Call::Reset { id, body } => {
            let path = format!("{}/reset", workflow(&id));
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Pause { id, reason, pause } => {
            let verb = if pause { "pause" } else { "unpause" };
            let path = format!("{}/{verb}", workflow(&id));
            let body = json!({ "reason": reason });
            client.call(Method::POST, &path, Some(&body)).await
        }
        Call::Schedule(call) => schedule_endpoint(client, call).await,
    }
}

async fn schedule_endpoint(client: &AdminClient, call: ScheduleCall) -> Result<Value, CliError> {
    let schedule = |id: &str| format!("/api/v1/schedules/{}", segment(id));
    match call {
        ScheduleCall::Create { id, body } => {
            client.call(Method::POST, &schedule(&id), Some(&body)).await
        }
        ScheduleCall::Update { id, body } => {
            client.call(Method::PUT, &schedule(&id), Some(&body)).await
        }
        ScheduleCall::List => client.call(Method::GET, "/api/v1/schedules", None).await,
        ScheduleCall::Describe { id } => client.call(Method::GET, &schedule(&id), None).await,
        ScheduleCall::Pause { id, pause, note } => {
            let verb = if pause { "pause" } else { "unpause" };
            let path = format!("{}/{verb}", schedule(&id));
            let body = json!({ "note": note });
            client.call(Method::POST, &path, Some(&body)).await
        }
        ScheduleCall::Trigger { id, overlap } => {
            let path = format!("{}/trigger", schedule(&id));
            let body = json!({ "overlap": overlap });
            client.call(Method::POST, &path, Some(&body)).await
        }
        ScheduleCall::Backfill { id, body } => {
            let path = format!("{}/backfill", schedule(&id));
            client.call(Method::POST, &path, Some(&body)).await
        }
        ScheduleCall::Delete { id } => client.call(Method::DELETE, &schedule(&id), None).await,
    }
}

fn schedule_error(e: steadfast::ScheduleError) -> CliError {
    api_error(steadfast_admin::schedule_error_detail(e))
}

/// A request body as the endpoint would read it.
fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value)
        .map_err(|e| CliError::Usage(format!("the request does not parse: {e}")))
}

async fn schedule_file(engine: &Engine, call: ScheduleCall) -> Result<Value, CliError> {
    use steadfast_admin::schedules;
    match call {
        ScheduleCall::Create { id, body: b } => {
            let request = body(b)?;
            to_json(
                &schedules::create(engine, &id, &request)
                    .await
                    .map_err(schedule_error)?,
            )
        }
        ScheduleCall::Update { id, body: b } => {
            let request = body(b)?;
            to_json(
                &schedules::update(engine, &id, &request)
                    .await
                    .map_err(schedule_error)?,
            )
        }
        ScheduleCall::List => to_json(&schedules::list(engine).await.map_err(schedule_error)?),
        ScheduleCall::Describe { id } => to_json(
            &schedules::describe(engine, &id)
                .await
                .map_err(schedule_error)?,
        ),
        ScheduleCall::Pause { id, pause, note } => {
            let request = schedules::NoteRequest { note };
            to_json(
                &schedules::pause(engine, &id, pause, &request)
                    .await
                    .map_err(schedule_error)?,
            )
        }
        ScheduleCall::Trigger { id, overlap } => {
            let request = schedules::TriggerRequest { overlap };
            to_json(
                &schedules::trigger(engine, &id, &request)
                    .await
                    .map_err(schedule_error)?,
            )
        }
        ScheduleCall::Backfill { id, body: b } => {
            let request = body(b)?;
            to_json(
                &schedules::backfill(engine, &id, &request)
                    .await
                    .map_err(schedule_error)?,
            )
        }
        ScheduleCall::Delete { id } => to_json(
            &schedules::delete(engine, &id)
                .await
                .map_err(schedule_error)?,
        ),
    }
}

fn engine_error(e: ClientError) -> CliError {
    api_error(steadfast_admin::error_detail(e))
}

/// The error as the endpoint would have answered it.
fn api_error((status, detail): (u16, steadfast_admin::api::ErrorDetail)) -> CliError {
    CliError::Api {
        status,
        code: detail.code,
        message: detail.message,
    }
}

fn open_error(path: &std::path::Path, e: OpenError) -> CliError {
    let hint = match &e {
        OpenError::AlreadyInUse { .. } => {
            "; an application holds it: reach it with --address (its admin endpoint), or let \
             the application open it with EngineBuilder::shared_reads(true) to read it here"
        }
        _ => "",
    };
    CliError::File(format!("{}: {e}{hint}", path.display()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, CliError> {
    serde_json::to_value(value).map_err(CliError::json)
}

fn run_id(run: &Option<String>) -> Result<Option<RunId>, CliError> {
    run.as_deref()
        .map(|r| {
            r.parse::<RunId>().map_err(|e| {
                CliError::Usage(format!("--run-id {r:?} is not a run ID ({e}); pass a UUID"))
            })
        })
        .transpose()
}

fn done(id: String, outcome: &str) -> Result<Value, CliError> {
    to_json(&Done {
        workflow_id: id,
        outcome: outcome.to_string(),
    })
}

async fn file(path: &std::path::Path, code: &Code, call: Call) -> Result<Value, CliError> {
    let reads = matches!(
        call,
        Call::List { .. }
            | Call::Count
            | Call::Describe { .. }
            | Call::History { .. }
            | Call::Query { .. }
            | Call::Schedule(ScheduleCall::List | ScheduleCall::Describe { .. })
    );
    let mut builder = Engine::builder();
    if reads {
        // Read-only, the code is only replayed: a query's handler answers
        // from the run's history, and nothing runs forward.
        builder = code.register(builder.read_only());
    } else if !path.exists() {
        // Writing would create an empty file: say the path is wrong.
        return Err(open_error(
            path,
            OpenError::NotFound {
                path: path.to_path_buf(),
            },
        ));
    }
    let engine = builder.open(path).await.map_err(|e| open_error(path, e))?;
    let answer = file_call(&engine, call).await;
    let closed = engine.shutdown().await;
    let answer = answer?;
    closed.map_err(engine_error)?;
    Ok(answer)
}

async fn file_call(engine: &Engine, call: Call) -> Result<Value, CliError> {
    match call {
        Call::List { query } => {
            let filter = steadfast_admin::list_filter_from_query(&query).map_err(api_error)?;
            let page = engine.list(&filter).await.map_err(engine_error)?;
            to_json(&ExecutionPage::from(&page))
        }
        Call::Count => {
            let counts = engine.count_workflows().await.map_err(engine_error)?;
            to_json(&Counts::from(&counts))
        }
        Call::Describe { id, run } => {
            let described = match run_id(&run)? {
                Some(run) => engine.describe_run(&id, run).await,
                None => engine.describe(&id).await,
            }
            .map_err(engine_error)?;
            to_json(&Description::from(&described))
        }
        Call::History { id, run } => {
            let history = match run_id(&run)? {
                Some(run) => engine.workflow_run_history(&id, run).await,
                None => engine.workflow_history(&id).await,
            }
            .map_err(engine_error)?;
            let text = history
                .to_json()
                .map_err(|e| CliError::File(format!("the history does not write: {e}")))?;
            serde_json::from_str(&text).map_err(CliError::json)
        }
        Call::Signal { id, body } => {
            let request = serde_json::from_value(body).map_err(CliError::json)?;
            let done = steadfast_admin::calls::signal(engine, &id, request)
                .await
                .map_err(engine_error)?;
            to_json(&done)
        }
        Call::Query { id, body } => {
            let request = serde_json::from_value(body).map_err(CliError::json)?;
            let answer = steadfast_admin::calls::query(engine, &id, request)
                .await
                .map_err(engine_error)?;
            to_json(&answer)
        }
        Call::Update { id, body } => {
            let request = serde_json::from_value(body).map_err(CliError::json)?;
            let answer = steadfast_admin::calls::update(engine, &id, request)
                .await
                .map_err(|e| api_error(steadfast_admin::update_error_detail(e)))?;
            to_json(&answer)
        }
        Call::Cancel { id } => {
            engine.cancel(&id).await.map_err(engine_error)?;
            done(id, "cancel_requested")
        }
        Call::Terminate { id, reason } => {
            let reason = reason.unwrap_or_else(|| "terminated with the steadfast tool".into());
            engine.terminate(&id, &reason).await.map_err(engine_error)?;
            done(id, "terminated")
        }
        Call::Delete { id } => {
            engine.delete(&id).await.map_err(engine_error)?;
            done(id, "deleted")
        }
        Call::Reset { id, body } => {
            let request = serde_json::from_value(body).map_err(CliError::json)?;
            let done = steadfast_admin::calls::reset(engine, &id, request)
                .await
                .map_err(engine_error)?;
            to_json(&done)
        }
        Call::Pause { id, reason, pause } => {
            let request = steadfast_admin::api::PauseRequest { reason };
            let done = steadfast_admin::calls::pause(engine, &id, request, pause)
                .await
                .map_err(engine_error)?;
            to_json(&done)
        }
        Call::Schedule(call) => schedule_file(engine, call).await,
    }
}
