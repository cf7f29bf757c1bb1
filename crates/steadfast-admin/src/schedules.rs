//! The schedule routes' JSON bodies (`/api/v1/schedules`), and the engine
//! calls behind them, made once: the endpoint's routes make them for a
//! request, and the command-line tool for a file it opened itself.
//!
//! Durations are written `90s`, `5m`, `1h30m`, `2d`, `250ms`; times are
//! RFC 3339; overlap policies are `skip`, `buffer-one`, `buffer-all`,
//! `cancel-other`, `terminate-other`, `allow-all`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steadfast::{
    ClientError, DEFAULT_TASK_QUEUE, Engine, Payload, Schedule, ScheduleAction,
    ScheduleActionResult, ScheduleBackfill, ScheduleDescription, ScheduleError,
    ScheduleIntervalSpec, ScheduleListEntry, ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec,
    ScheduleState, WorkflowOptions,
};

use crate::api::{parse_time, payload_value, time_text};

/// `POST /api/v1/schedules/{schedule_id}`: a schedule to create.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateScheduleRequest {
    /// The workflow type each action starts.
    pub workflow_type: String,
    /// The workflow ID prefix (the nominal time is appended); default the
    /// schedule ID.
    #[serde(default)]
    pub workflow_id: Option<String>,
    /// The task queue; default `default`.
    #[serde(default)]
    pub task_queue: Option<String>,
    /// The input of every start (JSON; default `null`).
    #[serde(default)]
    pub input: Value,
    /// Cron expressions (5 or 6 fields).
    #[serde(default)]
    pub cron: Vec<String>,
    /// Intervals.
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// The IANA time zone of the cron expressions; default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Jitter, e.g. `30s`.
    #[serde(default)]
    pub jitter: Option<String>,
    /// No action before this time.
    #[serde(default)]
    pub start_at: Option<String>,
    /// No action after this time.
    #[serde(default)]
    pub end_at: Option<String>,
    /// The overlap policy; default `skip`.
    #[serde(default)]
    pub overlap: Option<String>,
    /// The catch-up window, e.g. `1h`; default one year.
    #[serde(default)]
    pub catchup_window: Option<String>,
    /// Pause the schedule when an action's workflow fails or times out;
    /// default false.
    #[serde(default)]
    pub pause_on_failure: bool,
    /// Created paused.
    #[serde(default)]
    pub paused: bool,
    /// The note.
    #[serde(default)]
    pub note: Option<String>,
    /// Scheduled actions allowed; none: unlimited.
    #[serde(default)]
    pub remaining_actions: Option<u64>,
}

/// An interval: every `every`, shifted by `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// The period, e.g. `5m`.
    pub every: String,
    /// The offset from multiples of the period, e.g. `30s`.
    #[serde(default)]
    pub offset: Option<String>,
}

/// `POST /api/v1/schedules/{id}/pause` and `/unpause`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// Why.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/schedules/{id}/trigger`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// The overlap policy of this action; default the schedule's.
    #[serde(default)]
    pub overlap: Option<String>,
}

/// `POST /api/v1/schedules/{id}/backfill`: the actions of `[start_at, end_at]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// The range's first time (RFC 3339).
    pub start_at: String,
    /// The range's last time (RFC 3339).
    pub end_at: String,
    /// The overlap policy of the backfilled actions; default the schedule's.
    #[serde(default)]
    pub overlap: Option<String>,
}

/// What a schedule write did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDone {
    /// The schedule.
    pub schedule_id: String,
    /// `created`, `updated`, `paused`, `unpaused`, `triggered`,
    /// `backfilled`, `deleted`.
    pub outcome: String,
}

/// `GET /api/v1/schedules/{id}`: a schedule with its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleBody {
    /// The schedule's ID.
    pub schedule_id: String,
    /// The workflow type each action starts.
    pub workflow_type: String,
    /// The workflow ID prefix.
    pub workflow_id: String,
    /// The task queue.
    pub task_queue: String,
    /// The input of every start.
    pub input: Value,
    /// Cron expressions.
    pub cron: Vec<String>,
    /// Intervals.
    pub intervals: Vec<Interval>,
    /// The time zone (none: UTC).
    pub time_zone: Option<String>,
    /// The jitter.
    pub jitter: String,
    /// No action before.
    pub start_at: Option<String>,
    /// No action after.
    pub end_at: Option<String>,
    /// The overlap policy.
    pub overlap: String,
    /// The catch-up window.
    pub catchup_window: String,
    /// Whether a failed or timed-out action pauses the schedule.
    #[serde(default)]
    pub pause_on_failure: bool,
    /// Paused or not.
    pub paused: bool,
    /// The note of the last pause or unpause.
    pub note: String,
    /// Scheduled actions left; none: unlimited.
    pub remaining_actions: Option<u64>,
    /// What it did and will do.
    pub info: ScheduleInfoBody,
}

/// A schedule's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfoBody {
    /// Actions taken.
    pub action_count: u64,
    /// Actions older than the catch-up window, skipped.
    pub missed_catchup_window: u64,
    /// Actions the overlap policy skipped.
    pub overlap_skipped: u64,
    /// Actions dropped because the buffer was full.
    pub buffer_dropped: u64,
    /// Actions waiting.
    pub buffer_size: usize,
    /// Workflows it started that are open.
    pub running_workflows: Vec<ScheduledRun>,
    /// The last actions, oldest first.
    pub recent_actions: Vec<RecentAction>,
    /// The next action times.
    pub next_action_times: Vec<String>,
    /// When it was created.
    pub created_at: String,
    /// When a call last changed it.
    pub last_updated_at: Option<String>,
    /// The result of the most recent action whose workflow completed.
    #[serde(default)]
    pub last_completion_result: Option<Value>,
    /// The failure (`type: message`) of the most recent action whose
    /// workflow closed, if it failed or timed out.
    #[serde(default)]
    pub last_failure: Option<String>,
}

/// A workflow a schedule started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    /// Its workflow ID.
    pub workflow_id: String,
    /// Its run.
    pub run_id: String,
}

/// One action a schedule took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentAction {
    /// The time the action was for.
    pub schedule_time: String,
    /// When its workflow started.
    pub actual_time: String,
    /// The workflow ID.
    pub workflow_id: String,
    /// The run.
    pub run_id: String,
}

/// `GET /api/v1/schedules`: every schedule, in ID order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    /// The schedules.
    pub schedules: Vec<ScheduleEntry>,
}

/// One schedule in a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleEntry {
    /// The schedule's ID.
    pub schedule_id: String,
    /// The workflow type it starts.
    pub workflow_type: String,
    /// Paused or not.
    pub paused: bool,
    /// Its note.
    pub note: String,
    /// Its last actions.
    pub recent_actions: Vec<RecentAction>,
    /// Its next action times.
    pub next_action_times: Vec<String>,
}

/// Parses a duration: numbers each followed by a unit, `ms`, `s`, `m`,
/// `h` or `d` (`90s`, `1h30m`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return None,
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A duration as [`parse_duration`] reads it.
pub fn duration_text(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut left = millis;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if left > 0 {
        out.push_str(&format!("{left}ms"));
    }
    out
}

fn bad(message: String) -> ScheduleError {
    ScheduleError::InvalidArgument(message)
}

fn duration_field(name: &str, text: &str) -> Result<Duration, ScheduleError> {
    parse_duration(text).ok_or_else(|| {
        bad(format!(
            "{name} {text:?} is not a duration; write e.g. 90s, 5m, 1h30m or 2d"
        ))
    })
}

fn time_field(name: &str, text: &str) -> Result<SystemTime, ScheduleError> {
    parse_time(text).ok_or_else(|| {
        bad(format!(
            "{name} {text:?} is not an RFC 3339 time; write e.g. 2026-12-01T09:30:00Z"
        ))
    })
}

fn overlap_field(text: &str) -> Result<ScheduleOverlapPolicy, ScheduleError> {
    text.parse().map_err(bad)
}

/// The schedule a create request describes.
///
/// # Errors
/// [`ScheduleError::InvalidArgument`] for a field that does not parse.
pub fn schedule_from_request(
    schedule_id: &str,
    request: &CreateScheduleRequest,
) -> Result<Schedule, ScheduleError> {
    let input = Payload::encode(&request.input).map_err(ClientError::from)?;
    let options = WorkflowOptions::new().with_task_queue(
        request
            .task_queue
            .clone()
            .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_string()),
    );
    let action = ScheduleAction::start_workflow_by_name(
        request.workflow_type.clone(),
        request
            .workflow_id
            .clone()
            .unwrap_or_else(|| schedule_id.to_string()),
        input,
        options,
    );
    let mut spec = ScheduleSpec::default();
    for cron in &request.cron {
        spec = spec.with_cron(cron.clone());
    }
    for interval in &request.intervals {
        let every = duration_field("every", &interval.every)?;
        let offset = match &interval.offset {
            Some(text) => duration_field("offset", text)?,
            None => Duration::ZERO,
        };
        spec = spec.with_interval(ScheduleIntervalSpec::new(every).with_offset(offset));
    }
    if let Some(zone) = &request.time_zone {
        spec = spec.time_zone(zone.clone());
    }
    if let Some(jitter) = &request.jitter {
        spec = spec.jitter(duration_field("jitter", jitter)?);
    }
    if let Some(at) = &request.start_at {
        spec = spec.start_at(time_field("start_at", at)?);
    }
    if let Some(at) = &request.end_at {
        spec = spec.end_at(time_field("end_at", at)?);
    }
    let mut policy = SchedulePolicy::default();
    if let Some(overlap) = &request.overlap {
        policy = policy.overlap(overlap_field(overlap)?);
    }
    if let Some(window) = &request.catchup_window {
        policy = policy.catchup_window(duration_field("catchup_window", window)?);
    }
    policy = policy.pause_on_failure(request.pause_on_failure);
    let mut state = if request.paused {
        ScheduleState::paused(request.note.clone().unwrap_or_default())
    } else {
        ScheduleState::default()
    };
    if !request.paused {
        state.note = request.note.clone().unwrap_or_default();
    }
    if let Some(n) = request.remaining_actions {
        state = state.with_remaining_actions(n);
    }
    Ok(Schedule::new(action, spec)
        .with_policy(policy)
        .with_state(state))
}

fn recent(actions: &[ScheduleActionResult]) -> Vec<RecentAction> {
    actions
        .iter()
        .map(|a| RecentAction {
            schedule_time: time_text(a.schedule_time),
            actual_time: time_text(a.actual_time),
            workflow_id: a.workflow.workflow_id.clone(),
            run_id: a.workflow.run_id.to_string(),
        })
        .collect()
}

impl From<&ScheduleDescription> for ScheduleBody {
    fn from(d: &ScheduleDescription) -> Self {
        let s = &d.schedule;
        let i = &d.info;
        ScheduleBody {
            schedule_id: d.schedule_id.clone(),
            workflow_type: s.action.workflow_type.clone(),
            workflow_id: s.action.workflow_id.clone(),
            task_queue: s.action.task_queue.clone(),
            input: payload_value(&s.action.input),
            cron: s.spec.cron_expressions.clone(),
            intervals: s
                .spec
                .intervals
                .iter()
                .map(|i| Interval {
                    every: duration_text(i.every),
                    offset: Some(duration_text(i.offset)),
                })
                .collect(),
            time_zone: s.spec.time_zone.clone(),
            jitter: duration_text(s.spec.jitter),
            start_at: s.spec.start_at.map(time_text),
            end_at: s.spec.end_at.map(time_text),
            overlap: s.policy.overlap.to_string(),
            catchup_window: duration_text(s.policy.catchup_window),
            pause_on_failure: s.policy.pause_on_failure,
            paused: s.state.paused,
            note: s.state.note.clone(),
            remaining_actions: s.state.remaining_actions,
            info: ScheduleInfoBody {
                action_count: i.action_count,
                missed_catchup_window: i.missed_catchup_window,
                overlap_skipped: i.overlap_skipped,
                buffer_dropped: i.buffer_dropped,
                buffer_size: i.buffer_size,
                running_workflows: i
                    .running_workflows
                    .iter()
                    .map(|w| ScheduledRun {
                        workflow_id: w.workflow_id.clone(),
                        run_id: w.run_id.to_string(),
                    })
                    .collect(),
                recent_actions: recent(&i.recent_actions),
                next_action_times: i.next_action_times.iter().map(|t| time_text(*t)).collect(),
                created_at: time_text(i.created_at),
                last_updated_at: i.last_updated_at.map(time_text),
                last_completion_result: i.last_completion_result.as_ref().map(payload_value),
                last_failure: i
                    .last_failure
                    .as_ref()
                    .map(|f| format!("{}: {}", f.error_type, f.message)),
            },
        }
    }
}

impl From<&ScheduleListEntry> for ScheduleEntry {
    fn from(e: &ScheduleListEntry) -> Self {
        ScheduleEntry {
            schedule_id: e.schedule_id.clone(),
            workflow_type: e.workflow_type.clone(),
            paused: e.paused,
            note: e.note.clone(),
            recent_actions: recent(&e.recent_actions),
            next_action_times: e.next_action_times.iter().map(|t| time_text(*t)).collect(),
        }
    }
}

fn done(schedule_id: &str, outcome: &str) -> ScheduleDone {
    ScheduleDone {
        schedule_id: schedule_id.to_string(),
        outcome: outcome.to_string(),
    }
}

/// Replaces a schedule's configuration (spec, action, policies, state:
/// paused, note, remaining actions) with the one a create body describes,
/// as Temporal's `UpdateSchedule` replaces the whole schedule; its
/// progress (recent and running actions, counters) stays.
///
/// # Errors
/// As [`ScheduleHandle::update`](steadfast::ScheduleHandle::update), and
/// [`ScheduleError::InvalidArgument`] for a field that does not parse
/// (nothing is changed then).
pub async fn update(
    engine: &Engine,
    schedule_id: &str,
    request: &CreateScheduleRequest,
) -> Result<ScheduleDone, ScheduleError> {
    let schedule = schedule_from_request(schedule_id, request)?;
    engine
        .schedule_handle(schedule_id)
        .update(|current| *current = schedule.clone())
        .await?;
    Ok(done(schedule_id, "updated"))
}

/// Creates the schedule a request describes.
///
/// # Errors
/// As [`Engine::create_schedule`], and [`ScheduleError::InvalidArgument`]
/// for a field that does not parse.
pub async fn create(
    engine: &Engine,
    schedule_id: &str,
    request: &CreateScheduleRequest,
) -> Result<ScheduleDone, ScheduleError> {
    let schedule = schedule_from_request(schedule_id, request)?;
    engine.create_schedule(schedule_id, schedule).await?;
    Ok(done(schedule_id, "created"))
}

/// Every schedule.
///
/// # Errors
/// As [`Engine::list_schedules`].
pub async fn list(engine: &Engine) -> Result<ScheduleList, ScheduleError> {
    let entries = engine.list_schedules().await?;
    Ok(ScheduleList {
        schedules: entries.iter().map(ScheduleEntry::from).collect(),
    })
}

/// One schedule described.
///
/// # Errors
/// As [`Engine::describe_schedule`].
pub async fn describe(engine: &Engine, schedule_id: &str) -> Result<ScheduleBody, ScheduleError> {
    let d = engine.describe_schedule(schedule_id).await?;
    Ok(ScheduleBody::from(&d))
}

/// Pauses (`pause`) or unpauses a schedule with the request's note.
///
/// # Errors
/// As [`steadfast::ScheduleHandle::pause`].
pub async fn pause(
    engine: &Engine,
    schedule_id: &str,
    pause: bool,
    request: &NoteRequest,
) -> Result<ScheduleDone, ScheduleError> {
    let handle = engine.schedule_handle(schedule_id);
    if pause {
        let note = request
            .note
            .clone()
            .unwrap_or_else(|| "paused through the admin API".into());
        handle.pause(note).await?;
        Ok(done(schedule_id, "paused"))
    } else {
        let note = request
            .note
            .clone()
            .unwrap_or_else(|| "unpaused through the admin API".into());
        handle.unpause(note).await?;
        Ok(done(schedule_id, "unpaused"))
    }
}

/// Triggers an action now.
///
/// # Errors
/// As [`steadfast::ScheduleHandle::trigger`].
pub async fn trigger(
    engine: &Engine,
    schedule_id: &str,
    request: &TriggerRequest,
) -> Result<ScheduleDone, ScheduleError> {
    let overlap = request.overlap.as_deref().map(overlap_field).transpose()?;
    engine.schedule_handle(schedule_id).trigger(overlap).await?;
    Ok(done(schedule_id, "triggered"))
}

/// Backfills a range.
///
/// # Errors
/// As [`steadfast::ScheduleHandle::backfill`].
pub async fn backfill(
    engine: &Engine,
    schedule_id: &str,
    request: &BackfillRequest,
) -> Result<ScheduleDone, ScheduleError> {
    let start = time_field("start_at", &request.start_at)?;
    let end = time_field("end_at", &request.end_at)?;
    let handle = engine.schedule_handle(schedule_id);
    let overlap = match request.overlap.as_deref() {
        Some(text) => overlap_field(text)?,
        None => handle.describe().await?.schedule.policy.overlap,
    };
    handle
        .backfill(vec![ScheduleBackfill::new(start, end, overlap)])
        .await?;
    Ok(done(schedule_id, "backfilled"))
}

/// Deletes a schedule.
///
/// # Errors
/// As [`steadfast::ScheduleHandle::delete`].
pub async fn delete(engine: &Engine, schedule_id: &str) -> Result<ScheduleDone, ScheduleError> {
    engine.schedule_handle(schedule_id).delete().await?;
    Ok(done(schedule_id, "deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_back() {
        for (text, secs) in [("90s", 90), ("1h30m", 5400), ("2d", 172_800), ("5m", 300)] {
            assert_eq!(parse_duration(text), Some(Duration::from_secs(secs)));
        }
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(duration_text(Duration::from_secs(5400)), "1h30m");
        for bad in ["", "5", "m", "5x", "-5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
