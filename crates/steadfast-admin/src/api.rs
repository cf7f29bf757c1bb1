//! The JSON bodies of the admin API, as types: what the endpoint writes and
//! what a client (the command-line tool, the web UI) reads. Times are
//! RFC 3339 strings in UTC, run IDs are hyphenated UUIDs, payloads (memo,
//! heartbeat details, signal input) are the JSON values the application
//! encoded.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steadfast::{
    Event, HISTORY_JSON_FORMAT, HISTORY_JSON_VERSION, ParkReason, PauseReason, Payload,
    PendingActivityInfo, PendingTimerInfo, RunId, SearchAttributeValue, SearchAttributes,
    WorkflowCounts, WorkflowDescription, WorkflowExecutionInfo, WorkflowHistory, WorkflowPage,
};

/// `GET /api/v1`: what answers, so a client can tell it reached a
/// steadfast admin endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Always `"steadfast"`.
    pub server: String,
    /// The version of the `steadfast-admin` crate that answers.
    pub version: String,
    /// The API version in the route prefix: `"v1"`.
    pub api: String,
}

/// `GET /api/v1/workflows/{workflow_id}/history`: the run's history in the
/// history JSON form (HISTORY-JSON in FORMAT.md: what
/// [`WorkflowHistory::from_json`] reads and the replayer takes), each
/// event also with its time as RFC 3339 in `timestamp_rfc3339`, beside the
/// form's `timestamp` (seconds and nanoseconds since the epoch). Readers
/// of the form skip the added field, so the answer saved as a file is a
/// history document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryAnswer<'a> {
    /// Always `steadfast-history`.
    pub format: &'static str,
    /// The history document's version.
    pub version: u32,
    /// The workflow ID.
    pub workflow_id: &'a str,
    /// The run.
    pub run_id: RunId,
    /// The workflow's registered name.
    pub workflow_type: &'a str,
    /// The events, from `WorkflowStarted` on.
    pub events: Vec<HistoryEvent<'a>>,
}

/// One event of a [`HistoryAnswer`]: the event as the history JSON form
/// writes it, and its time as RFC 3339.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEvent<'a> {
    /// `event_id`, `timestamp` and `kind`, as in the history JSON form.
    #[serde(flatten)]
    pub event: &'a Event,
    /// The event's `timestamp`, RFC 3339 in UTC to the millisecond.
    pub timestamp_rfc3339: String,
}

impl<'a> From<&'a WorkflowHistory> for HistoryAnswer<'a> {
    fn from(history: &'a WorkflowHistory) -> Self {
        HistoryAnswer {
            format: HISTORY_JSON_FORMAT,
            version: HISTORY_JSON_VERSION,
            workflow_id: &history.workflow_id,
            run_id: history.run_id,
            workflow_type: &history.workflow_type,
            events: history
                .events
                .iter()
                .map(|event| HistoryEvent {
                    event,
                    timestamp_rfc3339: time_text(event.timestamp),
                })
                .collect(),
        }
    }
}

/// One run in a list: `GET /api/v1/workflows`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// The workflow ID.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
    /// The workflow's registered name.
    pub workflow_type: String,
    /// The task queue it runs on.
    pub task_queue: String,
    /// `Running`, `Completed`, `Failed`, `Cancelled`, `Terminated`,
    /// `TimedOut` or `ContinuedAsNew`.
    pub status: String,
    /// When it started.
    pub start_time: String,
    /// When it closed.
    pub close_time: Option<String>,
    /// Events in its history.
    pub history_length: u64,
    /// Its search attributes, by name.
    pub search_attributes: BTreeMap<String, SearchAttribute>,
    /// Its memo.
    pub memo: Option<Value>,
    /// Why the engine holds it parked, if it does.
    pub parked: Option<Parked>,
    /// Why it is paused, if it is: an operator's pause, or a park that
    /// waits for a fix (nondeterminism, a panic, missing code).
    #[serde(default)]
    pub paused: Option<Paused>,
}

/// Why a run is paused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paused {
    /// `Requested` (an operator paused it; unpause it) or `Parked` (it
    /// waits for fixed code, or a reset).
    pub kind: String,
    /// The operator's reason, or the park's explanation.
    pub reason: String,
}

/// `GET /api/v1/counts`: how many runs of each status the file holds
/// (Temporal's `CountWorkflowExecutions` grouped by status), one small read
/// however many runs there are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Runs of every status.
    pub total: u64,
    /// Every status once, `Running` first, with its count (zero for none).
    pub statuses: Vec<StatusCount>,
    /// Running runs the engine holds parked (part of the `Running` count).
    pub parked: u64,
}

/// One status and its count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusCount {
    /// `Running`, `Completed`, `Failed`, `Cancelled`, `Terminated`,
    /// `TimedOut` or `ContinuedAsNew`.
    pub status: String,
    /// Runs with that status.
    pub count: u64,
}

impl From<&WorkflowCounts> for Counts {
    fn from(counts: &WorkflowCounts) -> Self {
        Counts {
            total: counts.total(),
            statuses: counts
                .by_status()
                .map(|(status, count)| StatusCount {
                    status: status_text(status),
                    count,
                })
                .collect(),
            parked: counts.parked(),
        }
    }
}

/// A page of runs: open runs first, then closed ones, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionPage {
    /// The runs of this page.
    pub executions: Vec<Execution>,
    /// Set when more runs match: pass it as `next_page_token` for the next
    /// page.
    pub next_page_token: Option<String>,
}

/// `GET /api/v1/workflows/{workflow_id}`: one run described.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The run, as a list shows it.
    #[serde(flatten)]
    pub execution: Execution,
    /// Whether a worker of the engine serves the run's task queue.
    pub task_queue_served: bool,
    /// Activities scheduled and not resolved.
    pub pending_activities: Vec<PendingActivity>,
    /// Durable timers started and not fired.
    pub pending_timers: Vec<PendingTimer>,
    /// For a closed run: signals delivered and never read, by name.
    pub unread_signals: Vec<UnreadSignals>,
    /// The run this one continues (continue-as-new).
    pub previous_run_id: Option<String>,
    /// The run that continues this one.
    pub next_run_id: Option<String>,
    /// Child workflows started and not closed.
    pub pending_children: Vec<PendingChild>,
    /// Updates accepted and not completed, in acceptance order (absent
    /// from endpoints older than it: read as none).
    #[serde(default)]
    pub pending_updates: Vec<PendingUpdate>,
    /// The parent, when this run is a child workflow.
    pub parent: Option<Parent>,
    /// The run this one was reset from.
    #[serde(default)]
    pub reset_from: Option<String>,
    /// The run that replaced this one by a reset.
    #[serde(default)]
    pub reset_to: Option<String>,
}

/// An update accepted and not completed: its handler is running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    /// The update's ID.
    pub update_id: String,
    /// Its name.
    pub update_name: String,
    /// When it was accepted (RFC 3339).
    pub accepted_at: String,
}

/// A child workflow started and not closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingChild {
    /// Command sequence number in the parent.
    pub seq: u32,
    /// The child's workflow ID.
    pub workflow_id: String,
    /// Its type.
    pub workflow_type: String,
    /// Its first run.
    pub run_id: Option<String>,
    /// What the parent's close does to it: `Terminate`, `RequestCancel`,
    /// `Abandon`.
    pub parent_close_policy: String,
    /// Whether the parent asked it to cancel.
    pub cancel_requested: bool,
}

/// The parent of a child workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parent {
    /// The parent's workflow ID.
    pub workflow_id: String,
    /// The parent's run.
    pub run_id: String,
}

/// A search attribute's value with its kind: `Keyword`, `Int`, `Double`,
/// `Bool`, `Datetime` (an RFC 3339 string) or `KeywordList`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchAttribute {
    /// The kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: Value,
}

/// Why a run is parked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    /// `Nondeterminism`, `Panic`, `Unrunnable`, `DiskFull`, `Storage`,
    /// `ForeignFuture` or `Other`.
    pub kind: String,
    /// The engine's explanation, with what to do.
    pub message: String,
    /// For `Nondeterminism`: where the code and the history part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nondeterminism: Option<NondeterminismDiff>,
}

/// Where a run's code and its history disagree: the history's event and
/// what the code did instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NondeterminismDiff {
    /// The event of the history that did not match (0 when the history
    /// ended before what the code did).
    pub event_id: u64,
    /// What the history holds there.
    pub history: String,
    /// What the code did instead.
    pub code: String,
}

/// A pending activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingActivity {
    /// Command sequence number in the run.
    pub seq: u32,
    /// The activity's name.
    pub activity_type: String,
    /// The attempt running, or the next one.
    pub attempt: u32,
    /// When the next attempt is due, while it has not begun.
    pub next_attempt_at: Option<String>,
    /// The last failed attempt's failure.
    pub last_failure: Option<Failure>,
    /// The last recorded heartbeat details.
    pub last_heartbeat: Option<Value>,
    /// True for a local activity waiting out a recorded backoff (absent
    /// from endpoints older than it: read as false).
    #[serde(default)]
    pub local: bool,
}

/// A failure as history records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The failure's type.
    pub error_type: String,
    /// Its message.
    pub message: String,
    /// Whether it asked not to be retried.
    pub non_retryable: bool,
    /// The details the failing code attached.
    pub details: Option<Value>,
    /// Why retries ended (`MaximumAttemptsReached`, `NonRetryableFailure`,
    /// `Timeout`, `CancelRequested`, ...), or `InProgress`.
    pub retry_state: String,
}

/// A pending durable timer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingTimer {
    /// Command sequence number in the run.
    pub seq: u32,
    /// When it fires.
    pub fire_at: String,
}

/// Signals of one name delivered and never read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnreadSignals {
    /// The signal name.
    pub signal_name: String,
    /// How many.
    pub count: u64,
}

/// `POST /api/v1/workflows/{workflow_id}/signal`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// The signal's name, as the workflow's `SignalDef` names it.
    pub name: String,
    /// The signal's payload: any JSON value of the shape the workflow
    /// reads (`null` when left out).
    #[serde(default)]
    pub input: Value,
    /// A request ID: the same ID sent again is acknowledged without a second
    /// delivery, so a client may retry safely.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// `POST /api/v1/workflows/{workflow_id}/query`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The query's name, as the workflow's `QueryDef` names it.
    pub name: String,
    /// Its argument (`null`, or left out, for a query without one).
    #[serde(default)]
    pub args: Value,
}

/// The answer of a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// The workflow acted on.
    pub workflow_id: String,
    /// The handler's answer.
    pub result: Value,
}

/// `POST /api/v1/workflows/{workflow_id}/update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The update's name, as the workflow's `UpdateDef` names it.
    pub name: String,
    /// Its input: any JSON value of the shape the handler takes (`null`
    /// when left out).
    #[serde(default)]
    pub input: Value,
    /// An update ID: the same ID sent again gets the first update's outcome
    /// and runs nothing twice, so a client may retry safely.
    #[serde(default)]
    pub update_id: Option<String>,
}

/// The answer of an update: its handler's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateAnswer {
    /// The workflow acted on.
    pub workflow_id: String,
    /// The update ID the request named (`null` when it named none: the
    /// engine chose a random one).
    pub update_id: Option<String>,
    /// The handler's result.
    pub result: Value,
}

/// `POST /api/v1/workflows/{workflow_id}/terminate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateRequest {
    /// Why, recorded in the run's `WorkflowTerminated` event.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/workflows/{workflow_id}/pause` and `.../unpause`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, recorded in the run's `WorkflowPaused` (or `WorkflowUnpaused`)
    /// event.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/workflows/{workflow_id}/reset`: where to (exactly one of
/// `event_id` and `type`), why, and whether to drop the signals received
/// or the updates accepted after the point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// A workflow task boundary's event ID.
    #[serde(default)]
    pub event_id: Option<u64>,
    /// `FirstWorkflowTask` or `LastWorkflowTask`.
    #[serde(default, rename = "type")]
    pub reset_type: Option<String>,
    /// Why (required, as in Temporal).
    pub reason: String,
    /// `["Signal"]` drops the signals received after the point instead of
    /// delivering them again, `["Update"]` the updates accepted after it,
    /// `["All"]` both (Temporal's `--reapply-exclude`).
    #[serde(default)]
    pub reapply_exclude: Vec<String>,
}

/// What the reset route answers: the new run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetDone {
    /// The workflow reset.
    pub workflow_id: String,
    /// Always `reset`.
    pub outcome: String,
    /// The run the reset started.
    pub run_id: String,
}

/// What a write route answers on success.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The workflow acted on.
    pub workflow_id: String,
    /// What was done: `signaled`, `cancel_requested`, `terminated`,
    /// `deleted`, `paused`, `unpaused`.
    pub outcome: String,
}

/// The body of every error answer: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code for programs: `not_found`, `bad_request`,
    /// `unauthorized`, `workflow_closed`, ... (the README lists them).
    pub code: String,
    /// A message for people that says what to do.
    pub message: String,
}

/// An RFC 3339 timestamp in UTC with milliseconds; a time the calendar
/// cannot show (before 1970 or after 9999) is written as seconds since the
/// Unix epoch, so a damaged record never stops an answer.
pub fn time_text(t: SystemTime) -> String {
    use time::format_description::well_known::Rfc3339;
    let formatted = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| {
            let d = time::Duration::try_from(d).ok()?;
            time::OffsetDateTime::UNIX_EPOCH.checked_add(d)
        })
        .map(|t| t.replace_nanosecond(t.millisecond() as u32 * 1_000_000))
        .and_then(|t| t.ok()?.format(&Rfc3339).ok());
    match formatted {
        Some(text) => text,
        None => match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => format!("{}s after 1970-01-01T00:00:00Z", d.as_secs()),
            Err(e) => format!("{}s before 1970-01-01T00:00:00Z", e.duration().as_secs()),
        },
    }
}

/// Parses an RFC 3339 timestamp (as `time_text` writes, or any offset).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(SystemTime::from(t))
}

/// A payload as the JSON value it holds.
pub fn payload_value(payload: &Payload) -> Value {
    // The engine writes only JSON payloads; a damaged one is shown as text.
    let text = payload.as_json();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

fn status_text(status: steadfast::WorkflowStatus) -> String {
    format!("{status:?}")
}

fn parked(reason: &ParkReason) -> Parked {
    let kind = match reason {
        ParkReason::Nondeterminism(_) => "Nondeterminism",
        ParkReason::Panic(_) => "Panic",
        ParkReason::Unrunnable(_) => "Unrunnable",
        ParkReason::DiskFull(_) => "DiskFull",
        ParkReason::Storage(_) => "Storage",
        ParkReason::ForeignFuture(_) => "ForeignFuture",
        _ => "Other",
    };
    let nondeterminism = match reason {
        ParkReason::Nondeterminism(e) => Some(NondeterminismDiff {
            event_id: e.event_id,
            history: e.history.clone(),
            code: e.code.clone(),
        }),
        _ => None,
    };
    Parked {
        kind: kind.to_string(),
        message: reason.to_string(),
        nondeterminism,
    }
}

fn paused(reason: &PauseReason) -> Paused {
    match reason {
        PauseReason::Requested(reason) => Paused {
            kind: "Requested".to_string(),
            reason: reason.clone(),
        },
        PauseReason::Parked(reason) => Paused {
            kind: "Parked".to_string(),
            reason: reason.to_string(),
        },
        other => Paused {
            kind: "Other".to_string(),
            reason: other.message(),
        },
    }
}

fn search_attributes(attributes: &SearchAttributes) -> BTreeMap<String, SearchAttribute> {
    attributes
        .iter()
        .map(|(name, value)| {
            let (kind, value) = match value {
                SearchAttributeValue::Keyword(s) => ("Keyword", Value::from(s.as_str())),
                SearchAttributeValue::Int(i) => ("Int", Value::from(*i)),
                SearchAttributeValue::Double(d) => ("Double", Value::from(*d)),
                SearchAttributeValue::Bool(b) => ("Bool", Value::from(*b)),
                SearchAttributeValue::Datetime(t) => ("Datetime", Value::from(time_text(*t))),
                SearchAttributeValue::KeywordList(list) => {
                    ("KeywordList", Value::from(list.clone()))
                }
                _ => ("Other", Value::Null),
            };
            (
                name.to_string(),
                SearchAttribute {
                    kind: kind.to_string(),
                    value,
                },
            )
        })
        .collect()
}

/// The [`Execution`] of a list entry or a description: the engine's two
/// types share these fields by name, so one expansion serves both.
macro_rules! execution {
    ($run:expr) => {{
        let run = $run;
        Execution {
            workflow_id: run.workflow_id.clone(),
            run_id: run.run_id.to_string(),
            workflow_type: run.workflow_type.clone(),
            task_queue: run.task_queue.clone(),
            status: status_text(run.status),
            start_time: time_text(run.start_time),
            close_time: run.close_time.map(time_text),
            history_length: run.history_length,
            search_attributes: search_attributes(&run.search_attributes),
            memo: run.memo.as_ref().map(payload_value),
            parked: run.parked.as_ref().map(parked),
            paused: run.paused.as_ref().map(paused),
        }
    }};
}

impl From<&WorkflowExecutionInfo> for Execution {
    fn from(info: &WorkflowExecutionInfo) -> Self {
        execution!(info)
    }
}

impl From<&WorkflowPage> for ExecutionPage {
    fn from(page: &WorkflowPage) -> Self {
        ExecutionPage {
            executions: page.executions.iter().map(Execution::from).collect(),
            next_page_token: page.next_page_token.as_ref().map(|t| hex(&t.to_bytes())),
        }
    }
}

impl From<&WorkflowDescription> for Description {
    fn from(d: &WorkflowDescription) -> Self {
        Description {
            execution: execution!(d),
            reset_from: d.reset_from.map(|r| r.to_string()),
            reset_to: d.reset_to.map(|r| r.to_string()),
            task_queue_served: d.task_queue_served,
            pending_activities: d.pending_activities.iter().map(pending_activity).collect(),
            pending_timers: d.pending_timers.iter().map(pending_timer).collect(),
            unread_signals: d
                .unread_signals
                .iter()
                .map(|u| UnreadSignals {
                    signal_name: u.signal_name.clone(),
                    count: u.count,
                })
                .collect(),
            previous_run_id: d.previous_run_id.map(|r| r.to_string()),
            next_run_id: d.next_run_id.map(|r| r.to_string()),
            pending_children: d
                .pending_children
                .iter()
                .map(|c| PendingChild {
                    seq: c.seq,
                    workflow_id: c.workflow_id.clone(),
                    workflow_type: c.workflow_type.clone(),
                    run_id: c.run_id.map(|r| r.to_string()),
                    parent_close_policy: format!("{:?}", c.parent_close_policy),
                    cancel_requested: c.cancel_requested,
                })
                .collect(),
            pending_updates: d
                .pending_updates
                .iter()
                .map(|u| PendingUpdate {
                    update_id: u.update_id.clone(),
                    update_name: u.update_name.clone(),
                    accepted_at: time_text(u.accepted_at),
                })
                .collect(),
            parent: d.parent.as_ref().map(|p| Parent {
                workflow_id: p.workflow_id.clone(),
                run_id: p.run_id.to_string(),
            }),
        }
    }
}

fn pending_activity(a: &PendingActivityInfo) -> PendingActivity {
    PendingActivity {
        seq: a.seq,
        activity_type: a.activity_type.clone(),
        attempt: a.attempt,
        next_attempt_at: a.next_attempt_at.map(time_text),
        last_failure: a.last_failure.as_ref().map(|f| Failure {
            error_type: f.error_type.clone(),
            message: f.message.clone(),
            non_retryable: f.non_retryable,
            details: f.details.as_ref().map(payload_value),
            retry_state: format!("{:?}", f.retry_state),
        }),
        last_heartbeat: a.last_heartbeat.as_ref().map(payload_value),
        local: a.local,
    }
}

fn pending_timer(t: &PendingTimerInfo) -> PendingTimer {
    PendingTimer {
        seq: t.seq,
        fire_at: time_text(t.fire_at),
    }
}

/// Lowercase hex, the text form of a page token.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex page token; `None` when it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_answer_is_a_history_document_with_rfc3339_times() {
        let text = r#"{
          "format": "steadfast-history", "version": 1,
          "workflow_id": "order-42", "run_id": "0190b2a4-57c5-7000-8000-000000000001",
          "workflow_type": "Order",
          "events": [
            {"event_id": 1,
             "timestamp": {"secs_since_epoch": 1700000000, "nanos_since_epoch": 250000000},
             "kind": {"WorkflowStarted": {"workflow_type": "Order", "workflow_id": "order-42",
                      "task_queue": "default", "input": {"zebra": 1, "apple": [2.5, "x"]},
                      "run_timeout": null, "execution_timeout": null}}}
          ]
        }"#;
        let history = WorkflowHistory::from_json(text).unwrap();
        let answer = serde_json::to_string_pretty(&HistoryAnswer::from(&history)).unwrap();
        let value: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            value["events"][0]["timestamp_rfc3339"],
            "2023-11-14T22:13:20.25Z"
        );
        // A payload is written as it was, key order and all.
        let compact: String = answer.split_whitespace().collect();
        assert!(
            compact.contains(r#""input":{"zebra":1,"apple":[2.5,"x"]}"#),
            "{answer}"
        );
        assert_eq!(WorkflowHistory::from_json(&answer).unwrap(), history);
    }
}
