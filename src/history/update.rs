//! What history records of workflow updates: an update's outcome, and
//! where an update stands as the fold sees it.

use serde::{Deserialize, Serialize};

use super::{Failure, Payload};

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
    Accepted,
    /// Its handler returned this.
    Completed(UpdateOutcome),
}
