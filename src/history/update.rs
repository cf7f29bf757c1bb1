//! What history records of workflow updates: an update's outcome, and
//! where an update stands as the fold sees it.

use serde::{Deserialize, Serialize};

use super::{EventId, Failure, Payload};

/// An update accepted and not completed (its handler is running), as
/// [`describe`](crate::Engine::describe) shows it. An update that passed its
/// validator is durable (accepted) before anything else sees it, so there
/// is no other kind of pending update to show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingUpdateInfo {
    /// The update's ID.
    pub update_id: String,
    /// The update's name (its `UpdateDef`).
    pub update_name: String,
    /// The ID of its `WorkflowUpdateAccepted` event.
    pub accepted_event_id: EventId,
    /// When it was accepted.
    pub accepted_at: std::time::SystemTime,
}

/// What an update's handler returned, as recorded in
/// [`EventKind::WorkflowUpdateCompleted`](super::EventKind::WorkflowUpdateCompleted).
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UpdateOutcome {
    /// The handler returned a value.
    Success {
        /// The handler's result.
        result: Payload,
    },
    /// The handler returned an error: the update failed, the run goes on.
    Failure {
        /// The handler's error.
        failure: Failure,
    },
}

impl UpdateOutcome {
    pub(crate) fn approx_bytes(&self) -> usize {
        match self {
            UpdateOutcome::Success { result } => result.len(),
            UpdateOutcome::Failure { failure } => failure.error_type.len() + failure.message.len(),
        }
    }
}

/// Where an update of a run stands, by its ID (the fold's view).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum UpdateStatus {
    /// Accepted; its handler has not returned (a run that closed then
    /// aborted it).
    Accepted {
        /// The update's name (its `UpdateDef`).
        update_name: String,
        /// The `WorkflowUpdateAccepted` event's ID and time.
        event_id: EventId,
        accepted_at: std::time::SystemTime,
    },
    /// Its handler returned this.
    Completed(UpdateOutcome),
}
