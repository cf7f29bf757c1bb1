//! What `describe` shows of a running run's pending work.

use std::time::SystemTime;

use crate::history::{Failure, Payload};

/// An activity waiting for its result, as [`describe`](crate::Engine::describe) shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PendingActivityInfo {
    /// Command sequence number in the run.
    pub seq: u32,
    /// The activity's name.
    pub activity_type: String,
    /// The attempt running, or the next one while waiting for a retry.
    pub attempt: u32,
    /// When the next attempt starts, while waiting for a retry.
    pub next_attempt_at: Option<SystemTime>,
    /// The last failed attempt's failure.
    pub last_failure: Option<Failure>,
    /// The last recorded heartbeat details.
    pub last_heartbeat: Option<Payload>,
}

/// A durable timer that has not fired, as [`describe`](crate::Engine::describe) shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PendingTimerInfo {
    /// Command sequence number in the run.
    pub seq: u32,
    /// When it fires.
    pub fire_at: SystemTime,
}
