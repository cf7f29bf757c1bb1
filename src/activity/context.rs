//! `ActivityContext`: what an activity attempt knows about itself.

use std::time::SystemTime;

use crate::history::RunId;

/// Passed to every activity attempt.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    pub(crate) workflow_id: String,
    pub(crate) run_id: RunId,
    pub(crate) activity_type: String,
    pub(crate) seq: u32,
    pub(crate) attempt: u32,
    pub(crate) scheduled_time: SystemTime,
}

impl ActivityContext {
    /// The workflow that scheduled the activity.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run that scheduled the activity.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The activity's registered name.
    pub fn activity_type(&self) -> &str {
        &self.activity_type
    }

    /// This attempt's number, starting at 1. An attempt cut off by a crash
    /// counts, so the attempt after it has the next number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the workflow scheduled the activity (the first attempt's schedule).
    pub fn scheduled_time(&self) -> SystemTime {
        self.scheduled_time
    }

    /// A key that is the same on every attempt of this activity, also after
    /// restarts, and different for every other activity:
    /// `workflow_id/run_id/sequence`. Pass it to external services that
    /// deduplicate requests (payment APIs take such keys), since activities
    /// run at least once.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.workflow_id, self.run_id, self.seq)
    }
}
