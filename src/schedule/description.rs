//! What `describe_schedule` and `list_schedules` answer (Temporal's
//! `DescribeScheduleResponse`, `ScheduleInfo` and `ScheduleListEntry`).

use std::time::SystemTime;

use super::record::{RecentAction, ScheduleRecord};
use super::{CompiledSpec, Schedule, ScheduleAction, SchedulePolicy, ScheduleSpec, ScheduleState};
use crate::history::{Failure, Payload, RunId};

/// How many upcoming action times a description lists.
pub(crate) const NEXT_ACTION_TIMES: usize = 5;

/// A schedule with its progress.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScheduleDescription {
    /// The schedule's ID.
    pub schedule_id: String,
    /// Its configuration and state.
    pub schedule: Schedule,
    /// What it has done and will do.
    pub info: ScheduleInfo,
}

/// What a schedule has done and will do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScheduleInfo {
    /// Actions taken (workflows started), triggers and backfills included.
    pub action_count: u64,
    /// Actions skipped because they were older than the catch-up window.
    pub missed_catchup_window: u64,
    /// Actions skipped by the overlap policy.
    pub overlap_skipped: u64,
    /// Actions dropped because the buffer was full.
    pub buffer_dropped: u64,
    /// Actions waiting for a running workflow to close.
    pub buffer_size: usize,
    /// Workflows the schedule started that had not closed at its last look.
    pub running_workflows: Vec<ScheduleWorkflow>,
    /// The last ten actions, oldest first.
    pub recent_actions: Vec<ScheduleActionResult>,
    /// The next times the spec acts at (up to five; none while paused).
    pub next_action_times: Vec<SystemTime>,
    /// When the schedule was created.
    pub created_at: SystemTime,
    /// When it was last changed by a call (pause, update, …).
    pub last_updated_at: Option<SystemTime>,
    /// The result of the most recent action whose workflow completed
    /// (Temporal's last completion result): what the next action is
    /// given. Kept in the schedule's record, so it stays after retention
    /// deleted that workflow's history.
    pub last_completion_result: Option<Payload>,
    /// The failure of the most recent action whose workflow closed, when it
    /// failed or timed out (Temporal's last failure: a later success clears
    /// it; a cancelled or terminated workflow neither sets nor clears it).
    /// Kept in the record as the result is.
    pub last_failure: Option<Failure>,
}

/// A workflow a schedule started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleWorkflow {
    /// Its workflow ID.
    pub workflow_id: String,
    /// Its run.
    pub run_id: RunId,
}

/// One action a schedule took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleActionResult {
    /// The time the action was for (its workflow ID's suffix).
    pub schedule_time: SystemTime,
    /// When the workflow was started.
    pub actual_time: SystemTime,
    /// The workflow it started.
    pub workflow: ScheduleWorkflow,
}

/// One schedule in a list.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScheduleListEntry {
    /// The schedule's ID.
    pub schedule_id: String,
    /// The workflow type it starts.
    pub workflow_type: String,
    /// Paused or not.
    pub paused: bool,
    /// The note of its last pause or unpause.
    pub note: String,
    /// Its last actions, oldest first.
    pub recent_actions: Vec<ScheduleActionResult>,
    /// Its next action times.
    pub next_action_times: Vec<SystemTime>,
}

impl From<&RecentAction> for ScheduleActionResult {
    fn from(a: &RecentAction) -> Self {
        ScheduleActionResult {
            schedule_time: a.nominal,
            actual_time: a.started_at,
            workflow: ScheduleWorkflow {
                workflow_id: a.workflow_id.clone(),
                run_id: a.run_id,
            },
        }
    }
}

/// The next action times of a schedule (none while it is paused or has no
/// actions left).
pub(crate) fn next_times(record: &ScheduleRecord, spec: Option<&CompiledSpec>) -> Vec<SystemTime> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    if record.paused {
        return Vec::new();
    }
    let limit = record
        .remaining_actions
        .map_or(NEXT_ACTION_TIMES, |r| (r as usize).min(NEXT_ACTION_TIMES));
    let mut times = Vec::with_capacity(limit);
    let mut after = record.high_water;
    while times.len() < limit {
        let Some(nominal) = spec.next_after(after) else {
            break;
        };
        times.push(spec.due(&record.schedule_id, nominal));
        after = nominal;
    }
    times
}

impl ScheduleDescription {
    pub(crate) fn from_record(record: &ScheduleRecord) -> Self {
        let spec = ScheduleSpec::from(&record.spec);
        let compiled = spec.compile().ok();
        let a = &record.action;
        ScheduleDescription {
            schedule_id: record.schedule_id.clone(),
            schedule: Schedule {
                action: ScheduleAction {
                    workflow_type: a.workflow_type.clone(),
                    workflow_id: a.workflow_id.clone(),
                    input: a.input.clone(),
                    task_queue: a.task_queue.clone(),
                    run_timeout: a.run_timeout,
                    execution_timeout: a.execution_timeout,
                    search_attributes: a.search_attributes.clone(),
                    memo: a.memo.clone(),
                },
                spec,
                policy: SchedulePolicy {
                    overlap: record.overlap,
                    catchup_window: record.catchup_window,
                    pause_on_failure: record.pause_on_failure,
                },
                state: ScheduleState {
                    paused: record.paused,
                    note: record.notes.clone(),
                    remaining_actions: record.remaining_actions,
                },
            },
            info: ScheduleInfo {
                action_count: record.action_count,
                missed_catchup_window: record.missed_catchup_window,
                overlap_skipped: record.overlap_skipped,
                buffer_dropped: record.buffer_dropped,
                buffer_size: record.buffer.len(),
                running_workflows: record
                    .running
                    .iter()
                    .map(|(workflow_id, run_id)| ScheduleWorkflow {
                        workflow_id: workflow_id.clone(),
                        run_id: *run_id,
                    })
                    .collect(),
                recent_actions: record.recent.iter().map(Into::into).collect(),
                next_action_times: next_times(record, compiled.as_ref()),
                created_at: record.created_at,
                last_updated_at: record.updated_at,
                last_completion_result: record.last_completion_result.clone(),
                last_failure: record.last_failure.clone(),
            },
        }
    }
}

impl ScheduleListEntry {
    pub(crate) fn from_record(record: &ScheduleRecord) -> Self {
        let compiled = ScheduleSpec::from(&record.spec).compile().ok();
        ScheduleListEntry {
            schedule_id: record.schedule_id.clone(),
            workflow_type: record.action.workflow_type.clone(),
            paused: record.paused,
            note: record.notes.clone(),
            recent_actions: record.recent.iter().map(Into::into).collect(),
            next_action_times: next_times(record, compiled.as_ref()),
        }
    }
}
