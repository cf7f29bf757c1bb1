//! The routes of the admin API and their handlers. Each handler turns a
//! request into one engine call and its answer into JSON; nothing here
//! reaches past the engine's public API.

use std::str::FromStr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use steadfast::{Engine, ListFilter, PageToken, RunId, SearchAttributeValue, WorkflowStatus};

use crate::api::{
    Counts, Description, Done, ErrorDetail, ExecutionPage, HistoryAnswer, PauseRequest,
    QueryRequest, ResetRequest, ServerInfo, SignalRequest, TerminateRequest, UpdateRequest,
    parse_time, unhex,
};
use crate::auth::{self, Token};
use crate::error::ApiError;
use crate::schedules;

/// Largest request body accepted: a signal payload at the engine's
/// default limit (2 MiB) with room for the JSON around it.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Most runs a list page may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

pub(crate) fn router(engine: Engine, token: Token) -> Router {
    let api = Router::new()
        .route("/api/v1", get(info))
        .route("/api/v1/workflows", get(list))
        .route("/api/v1/counts", get(counts))
        .route(
            "/api/v1/workflows/{workflow_id}",
            get(describe).delete(delete),
        )
        .route("/api/v1/workflows/{workflow_id}/history", get(history))
        .route("/api/v1/workflows/{workflow_id}/signal", post(signal))
        .route("/api/v1/workflows/{workflow_id}/query", post(query))
        .route("/api/v1/workflows/{workflow_id}/update", post(update))
        .route("/api/v1/workflows/{workflow_id}/cancel", post(cancel))
        .route("/api/v1/workflows/{workflow_id}/terminate", post(terminate))
        .route("/api/v1/workflows/{workflow_id}/reset", post(reset))
        .route("/api/v1/workflows/{workflow_id}/pause", post(pause))
        .route("/api/v1/workflows/{workflow_id}/unpause", post(unpause))
        .route("/api/v1/schedules", get(schedule_list))
        .route(
            "/api/v1/schedules/{schedule_id}",
            get(schedule_describe)
                .post(schedule_create)
                .put(schedule_update)
                .delete(schedule_delete),
        )
        .route(
            "/api/v1/schedules/{schedule_id}/pause",
            post(schedule_pause),
        )
        .route(
            "/api/v1/schedules/{schedule_id}/unpause",
            post(schedule_unpause),
        )
        .route(
            "/api/v1/schedules/{schedule_id}/trigger",
            post(schedule_trigger),
        )
        .route(
            "/api/v1/schedules/{schedule_id}/backfill",
            post(schedule_backfill),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(engine);
    let api = api
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn_with_state(token, auth::check));
    // The page holds no data (it reads through the API, with the token),
    // so it is served without one.
    crate::ui::router().merge(api)
}

type Answer = Result<Response, ApiError>;

pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            let text = format!(
                "{{\"error\":{{\"code\":\"internal\",\"message\":{:?}}}}}",
                e.to_string()
            );
            json_bytes(StatusCode::INTERNAL_SERVER_ERROR, text.into_bytes())
        }
    }
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok<T: Serialize>(body: &T) -> Answer {
    Ok(json_response(StatusCode::OK, body))
}

fn workflow_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| {
        ApiError::bad_request(format!(
            "the workflow ID in the path does not decode ({e}); percent-encode it"
        ))
    })?;
    Ok(id)
}

/// A request body as `T`; an empty body reads as `{}` so a write with no
/// options needs none.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is over {MAX_REQUEST_BYTES} bytes; send a reference \
                     to the data instead"
                ),
            )
        } else {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        }
    })?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not the JSON this route takes ({e}); the README's \
             \"Admin endpoint\" section shows each route's body"
        ))
    })
}

/// The query string's pairs, each name at most once.
fn query_pairs(raw: Option<String>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("the query string does not decode: {e}")))?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {name:?}; this route takes {}",
                known.join(", ")
            )));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) && !REPEATABLE_PARAMS.contains(&name.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "query parameter {name:?} is given twice; give it once"
            )));
        }
    }
    Ok(pairs)
}

fn run_id_param(raw: Option<String>) -> Result<Option<RunId>, ApiError> {
    let pairs = query_pairs(raw, &["run_id"])?;
    pairs
        .first()
        .map(|(_, value)| {
            RunId::from_str(value).map_err(|e| {
                ApiError::bad_request(format!(
                    "run_id {value:?} is not a run ID ({e}); pass a UUID as describe shows it"
                ))
            })
        })
        .transpose()
}

async fn info() -> Answer {
    ok(&ServerInfo {
        server: "steadfast".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        api: "v1".to_string(),
    })
}

/// Query parameters that may be given more than once (each adds a filter).
const REPEATABLE_PARAMS: &[&str] = &["search_attribute"];

const LIST_PARAMS: &[&str] = &[
    "status",
    "workflow_type",
    "workflow_id_prefix",
    "started_after",
    "started_before",
    "closed_after",
    "closed_before",
    "parked",
    "search_attribute",
    "page_size",
    "next_page_token",
];

/// A `search_attribute=Name=Value` filter: the value as JSON when it is a
/// number, `true`/`false` or a quoted string (`Int`, `Double`, `Bool`,
/// `Keyword`), else the text itself as a `Keyword`.
fn search_attribute_param(param: &str) -> Result<(String, SearchAttributeValue), ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "search_attribute {param:?} {why}; write Name=Value, e.g. CustomerId=acme or Step=3"
        ))
    };
    let (name, value) = param.split_once('=').ok_or_else(|| bad("has no '='"))?;
    if name.is_empty() {
        return Err(bad("has no name"));
    }
    let value = match serde_json::from_str::<Value>(value) {
        Ok(Value::String(text)) => SearchAttributeValue::Keyword(text),
        Ok(Value::Bool(b)) => SearchAttributeValue::Bool(b),
        Ok(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SearchAttributeValue::Int(i),
            (None, Some(f)) => SearchAttributeValue::Double(f),
            (None, None) => return Err(bad("has a number out of range")),
        },
        Ok(_) => return Err(bad("has a value that is not a keyword, number or bool")),
        Err(_) => SearchAttributeValue::Keyword(value.to_string()),
    };
    Ok((name.to_string(), value))
}

fn status_param(value: &str) -> Result<WorkflowStatus, ApiError> {
    Ok(match value {
        "Running" => WorkflowStatus::Running,
        "Completed" => WorkflowStatus::Completed,
        "Failed" => WorkflowStatus::Failed,
        "Cancelled" => WorkflowStatus::Cancelled,
        "Terminated" => WorkflowStatus::Terminated,
        "TimedOut" => WorkflowStatus::TimedOut,
        "ContinuedAsNew" => WorkflowStatus::ContinuedAsNew,
        other => {
            return Err(ApiError::bad_request(format!(
                "status {other:?} is not a workflow status; use Running, Completed, Failed, \
                 Cancelled, Terminated, TimedOut or ContinuedAsNew"
            )));
        }
    })
}

fn time_param(name: &str, value: &str) -> Result<std::time::SystemTime, ApiError> {
    parse_time(value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{name} {value:?} is not an RFC 3339 time; write e.g. 2026-12-01T09:30:00Z"
        ))
    })
}

/// The list filter a `GET /api/v1/workflows` query string asks for (without
/// the `?`), as the endpoint reads it: for a tool that lists through the
/// engine itself with the same parameters.
///
/// # Errors
/// The HTTP status and detail the endpoint would answer.
pub fn list_filter_from_query(query: &str) -> Result<ListFilter, (u16, ErrorDetail)> {
    list_filter(Some(query.to_string())).map_err(ApiError::into_detail)
}

/// The list filter a query string asks for.
fn list_filter(raw: Option<String>) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter::new();
    let (mut started, mut closed) = ((None, None), (None, None));
    for (name, value) in query_pairs(raw, LIST_PARAMS)? {
        match name.as_str() {
            "status" => filter = filter.with_status(status_param(&value)?),
            "workflow_type" => filter = filter.with_workflow_type(value),
            "workflow_id_prefix" => filter = filter.with_workflow_id_prefix(value),
            "started_after" => started.0 = Some(time_param(&name, &value)?),
            "started_before" => started.1 = Some(time_param(&name, &value)?),
            "closed_after" => closed.0 = Some(time_param(&name, &value)?),
            "closed_before" => closed.1 = Some(time_param(&name, &value)?),
            "search_attribute" => {
                let (name, value) = search_attribute_param(&value)?;
                filter = filter.with_search_attribute(name, value);
            }
            "parked" => {
                let parked = value.parse::<bool>().map_err(|_| {
                    ApiError::bad_request(format!("parked {value:?} is not true or false"))
                })?;
                filter = filter.with_parked(parked);
            }
            "page_size" => {
                let size = value
                    .parse::<usize>()
                    .ok()
                    .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "page_size {value:?} is not a number from 1 to {MAX_PAGE_SIZE}"
                        ))
                    })?;
                filter = filter.with_page_size(size);
            }
            _ => {
                let token = unhex(&value)
                    .and_then(|bytes| PageToken::from_bytes(&bytes))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "next_page_token {value:?} is not a token a list answered; \
                             pass the next_page_token of the previous page as it was"
                        ))
                    })?;
                filter = filter.with_next_page_token(token);
            }
        }
    }
    filter.started_after = started.0;
    filter.started_before = started.1;
    filter.closed_after = closed.0;
    filter.closed_before = closed.1;
    Ok(filter)
}

async fn list(State(engine): State<Engine>, RawQuery(raw): RawQuery) -> Answer {
    let filter = list_filter(raw)?;
    let page = engine.list(&filter).await?;
    ok(&ExecutionPage::from(&page))
}

async fn counts(State(engine): State<Engine>) -> Answer {
    let counts = engine.count_workflows().await?;
    ok(&Counts::from(&counts))
}

async fn describe(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let id = workflow_id(path)?;
    let description = match run_id_param(raw)? {
        Some(run_id) => engine.describe_run(&id, run_id).await?,
        None => engine.describe(&id).await?,
    };
    ok(&Description::from(&description))
}

async fn history(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let id = workflow_id(path)?;
    let history = match run_id_param(raw)? {
        Some(run_id) => engine.workflow_run_history(&id, run_id).await?,
        None => engine.workflow_history(&id).await?,
    };
    // Pretty-printed, as the history JSON form is; a payload that is not
    // JSON (a damaged record) does not write.
    let text = serde_json::to_vec_pretty(&HistoryAnswer::from(&history)).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "damaged",
            format!("the history cannot be written as JSON: {e}"),
        )
    })?;
    Ok(json_bytes(StatusCode::OK, text))
}

async fn signal(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: SignalRequest = body(bytes)?;
    ok(&crate::calls::signal(&engine, &id, request).await?)
}

async fn query(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: QueryRequest = body(bytes)?;
    ok(&crate::calls::query(&engine, &id, request).await?)
}

async fn update(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: UpdateRequest = body(bytes)?;
    ok(&crate::calls::update(&engine, &id, request).await?)
}

async fn cancel(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let _: serde_json::Map<String, serde_json::Value> = body(bytes)?;
    engine.cancel(&id).await?;
    done(id, "cancel_requested")
}

async fn terminate(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: TerminateRequest = body(bytes)?;
    let reason = request
        .reason
        .unwrap_or_else(|| "terminated through the admin endpoint".to_string());
    engine.terminate(&id, &reason).await?;
    done(id, "terminated")
}

async fn reset(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: ResetRequest = body(bytes)?;
    ok(&crate::calls::reset(&engine, &id, request).await?)
}

async fn pause(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: PauseRequest = body(bytes)?;
    ok(&crate::calls::pause(&engine, &id, request, true).await?)
}

async fn unpause(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = workflow_id(path)?;
    let request: PauseRequest = body(bytes)?;
    ok(&crate::calls::pause(&engine, &id, request, false).await?)
}

async fn delete(State(engine): State<Engine>, path: Result<Path<String>, PathRejection>) -> Answer {
    let id = workflow_id(path)?;
    engine.delete(&id).await?;
    done(id, "deleted")
}

fn schedule_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| {
        ApiError::bad_request(format!(
            "the schedule ID in the path does not decode ({e}); percent-encode it"
        ))
    })?;
    Ok(id)
}

async fn schedule_list(State(engine): State<Engine>) -> Answer {
    ok(&schedules::list(&engine).await?)
}

async fn schedule_describe(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    ok(&schedules::describe(&engine, &id).await?)
}

async fn schedule_update(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::CreateScheduleRequest = body(bytes)?;
    ok(&schedules::update(&engine, &id, &request).await?)
}

async fn schedule_create(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::CreateScheduleRequest = body(bytes)?;
    ok(&schedules::create(&engine, &id, &request).await?)
}

async fn schedule_delete(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    ok(&schedules::delete(&engine, &id).await?)
}

async fn schedule_pause(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::NoteRequest = body(bytes)?;
    ok(&schedules::pause(&engine, &id, true, &request).await?)
}

async fn schedule_unpause(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::NoteRequest = body(bytes)?;
    ok(&schedules::pause(&engine, &id, false, &request).await?)
}

async fn schedule_trigger(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::TriggerRequest = body(bytes)?;
    ok(&schedules::trigger(&engine, &id, &request).await?)
}

async fn schedule_backfill(
    State(engine): State<Engine>,
    path: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = schedule_id(path)?;
    let request: schedules::BackfillRequest = body(bytes)?;
    ok(&schedules::backfill(&engine, &id, &request).await?)
}

fn done(workflow_id: String, outcome: &str) -> Answer {
    ok(&Done {
        workflow_id,
        outcome: outcome.to_string(),
    })
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; the routes are under /api/v1 (GET /api/v1 answers, the README's \
         \"Admin endpoint\" section lists them)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; the README's \"Admin endpoint\" section lists \
         each route's method",
    )
}
