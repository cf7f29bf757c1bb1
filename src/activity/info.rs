//! `ActivityInfo`: what an activity attempt knows about itself, as
//! Temporal's `ActivityInfo` tells it.

use std::time::{Duration, SystemTime};

use crate::history::RunId;

/// What an activity attempt knows about itself (Temporal's
/// `ActivityInfo`); [`ActivityContext::info`](crate::ActivityContext::info)
/// returns it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ActivityInfo {
    /// The workflow that scheduled the activity.
    pub workflow_id: String,
    /// The run that scheduled the activity.
    pub run_id: RunId,
    /// The registered name of that workflow.
    pub workflow_type: String,
    /// The activity's sequence number in its run: the third part of
    /// [`idempotency_key`](crate::ActivityContext::idempotency_key), and
    /// the `seq` of its events in the history.
    pub sequence: u32,
    /// The activity ID: its sequence number in decimal, as Temporal's
    /// SDKs number the activities a workflow schedules.
    pub activity_id: String,
    /// The activity's registered name.
    pub activity_type: String,
    /// The task queue the attempt runs on.
    pub task_queue: String,
    /// This attempt's number, starting at 1. Only attempts whose code
    /// began count: one that waited for a worker slot through a crash keeps
    /// its number.
    pub attempt: u32,
    /// When the workflow scheduled the activity (schedule-to-close counts
    /// from here).
    pub scheduled_time: SystemTime,
    /// When this attempt became due: the scheduling for the first attempt,
    /// the end of the retry backoff for later ones (schedule-to-start
    /// counts from here).
    pub current_attempt_scheduled_time: SystemTime,
    /// When this attempt's code began.
    pub started_time: SystemTime,
    /// Time allowed from scheduling to the final result, if limited.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Time allowed for one attempt, if limited.
    pub start_to_close_timeout: Option<Duration>,
    /// Longest time allowed between heartbeats, if limited.
    pub heartbeat_timeout: Option<Duration>,
    /// When this attempt is ended by start-to-close or schedule-to-close,
    /// whichever comes first; `None` without either.
    pub deadline: Option<SystemTime>,
}
