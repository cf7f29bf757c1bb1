//! What the history records of signals and cancellation requests that
//! workflow code sends to other workflows (`ctx.signal_external_workflow`,
//! `ctx.cancel_external_workflow`): why one was not delivered, and the
//! request ID a delivered signal carries. Pure data (store format 12).

use serde::{Deserialize, Serialize};

use super::{EventId, RunId, WorkflowStatus};

/// Why a signal or cancellation request to another workflow was not
/// delivered, as recorded in `SignalExternalWorkflowFailed` or
/// `RequestCancelExternalWorkflowFailed` (in the commit that tried it).
/// Temporal records all of these as `EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND`;
/// steadfast says which.
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExternalFailedCause {
    /// No run of the workflow ID (or no run with the given run ID of it)
    /// is stored.
    NotFound,
    /// The targeted run is closed.
    Closed {
        /// The run that was targeted (the ID's latest, when no run ID was
        /// given).
        run_id: RunId,
        /// How it closed.
        status: WorkflowStatus,
    },
    /// A signal or cancellation request whose target was the sending run
    /// itself, as earlier builds refused them (first signals, later only
    /// cancellation requests); their recorded outcomes stay and replay.
    /// Today a run may signal itself and ask itself to cancel, as in
    /// Temporal: the signal or `WorkflowCancelRequested` is written to its
    /// own history in the commit, before the outcome.
    OwnRun,
    /// The target's records could not be read (a damaged file): nothing
    /// was delivered rather than risk a wrong delivery.
    Unreadable {
        /// What was wrong.
        message: String,
    },
}

impl std::fmt::Display for ExternalFailedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExternalFailedCause::NotFound => write!(f, "no such workflow run is stored"),
            ExternalFailedCause::Closed { run_id, status } => {
                write!(f, "its run {run_id} is closed ({status:?})")
            }
            ExternalFailedCause::OwnRun => write!(
                f,
                "it is the sending run itself, which this run's engine did not deliver to (a newer one does)"
            ),
            ExternalFailedCause::Unreadable { message } => {
                write!(f, "its records could not be read: {message}")
            }
        }
    }
}

/// The request ID of the signal delivered for a
/// `SignalExternalWorkflowInitiated` event: the sending run and the
/// event's ID, so that a delivery is made at most once whatever happens
/// (the target's signal request-ID deduplication applies).
pub(crate) fn external_signal_request_id(sender: RunId, initiated: EventId) -> String {
    format!("steadfast-external/{sender}/{initiated}")
}
