//! What the history records about child workflows: the options a child was
//! started with, why a start failed, and the link from a child to its
//! parent. Pure data (store format 10).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Failure, Payload, RunId, SearchAttributes, WorkflowStatus};

/// What happens to a child workflow when its parent's run closes
/// (completes, fails, is cancelled, terminated, times out, or continues as
/// new). Applied in the commit that closes the parent, never later.
/// Temporal's default is [`Terminate`](Self::Terminate).
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ParentClosePolicy {
    /// The child is terminated.
    #[default]
    Terminate,
    /// Cancellation of the child is requested; it may clean up and close.
    RequestCancel,
    /// The child keeps running on its own.
    Abandon,
}

/// Whether a child's workflow ID may be used again when its last run has
/// closed, as recorded with the start (the [`WorkflowIdReusePolicy`](crate::WorkflowIdReusePolicy)
/// the parent gave).
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChildIdReuse {
    /// Always allowed.
    AllowDuplicate,
    /// Allowed only when the last run did not complete.
    AllowDuplicateFailedOnly,
    /// Never allowed.
    RejectDuplicate,
}

/// A child's options as recorded with its `StartChildWorkflowInitiated`
/// event: what its start needs, so a start is the same after a restart.
// Persisted (FORMAT.md): fields in this order, never changed in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildOptionsRecord {
    /// The child's run timeout.
    pub run_timeout: Option<Duration>,
    /// The child's execution timeout (spanning its continue-as-new chain).
    pub execution_timeout: Option<Duration>,
    /// What the parent's close does to the child.
    pub parent_close_policy: ParentClosePolicy,
    /// Whether a closed workflow ID may be started again.
    pub id_reuse: ChildIdReuse,
    /// The child's search attributes.
    pub search_attributes: SearchAttributes,
    /// The child's memo (JSON).
    pub memo: Option<Payload>,
}

/// Why a child workflow was not started, as recorded in
/// `StartChildWorkflowFailed` (in the commit that tried the start).
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StartChildFailedCause {
    /// The workflow ID has a running run (Temporal's
    /// `WORKFLOW_ALREADY_EXISTS`).
    AlreadyRunning {
        /// The running run.
        run_id: RunId,
    },
    /// The ID's last run has closed, and the reuse policy refuses it.
    ReuseRejected {
        /// How the last run closed.
        last_status: WorkflowStatus,
    },
    /// The ID's latest run record could not be read (a damaged file): the
    /// start was refused rather than risk a second run of the ID.
    Unreadable {
        /// What was wrong.
        message: String,
    },
}

impl std::fmt::Display for StartChildFailedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartChildFailedCause::AlreadyRunning { run_id } => {
                write!(f, "the workflow ID has a running run ({run_id})")
            }
            StartChildFailedCause::ReuseRejected { last_status } => write!(
                f,
                "the workflow ID's last run closed as {last_status:?} and the reuse policy refuses it"
            ),
            StartChildFailedCause::Unreadable { message } => {
                write!(
                    f,
                    "the workflow ID's latest run could not be read: {message}"
                )
            }
        }
    }
}

/// The parent of a child workflow, as its history's
/// `WorkflowStartedAsChild` event names it (and
/// [`describe`](crate::Engine::describe) shows it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParentInfo {
    /// The parent's workflow ID.
    pub workflow_id: String,
    /// The parent's run that started this child.
    pub run_id: RunId,
    /// The start's command sequence number in the parent's run.
    pub seq: u32,
    /// What the parent's close does to this child.
    pub parent_close_policy: ParentClosePolicy,
}

/// A child workflow started and not closed, as
/// [`describe`](crate::Engine::describe) shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingChildInfo {
    /// Command sequence number in the parent's run.
    pub seq: u32,
    /// The child's workflow ID.
    pub workflow_id: String,
    /// The child's workflow type.
    pub workflow_type: String,
    /// The child's first run (its chain may have continued as new since).
    pub run_id: Option<RunId>,
    /// What the parent's close does to the child.
    pub parent_close_policy: ParentClosePolicy,
    /// True once the parent asked to cancel the child.
    pub cancel_requested: bool,
}

/// How a child workflow's close reads to its parent: the status and the
/// failure carried by the parent's `ChildWorkflowClosed` event, made from
/// the child's close event. `None` for events that do not close a run, and
/// for a completion or a continue-as-new (which the parent does not see as
/// a close).
pub(crate) fn child_failure(close: &super::EventKind) -> Option<(WorkflowStatus, Failure)> {
    use super::EventKind;
    match close {
        EventKind::WorkflowFailed { failure } => Some((WorkflowStatus::Failed, failure.clone())),
        EventKind::WorkflowCancelled { failure } => {
            Some((WorkflowStatus::Cancelled, failure.clone()))
        }
        EventKind::WorkflowTerminated { reason } => Some((
            WorkflowStatus::Terminated,
            Failure::new("Terminated", reason.clone()).with_non_retryable(true),
        )),
        EventKind::WorkflowTimedOut { timeout } => Some((
            WorkflowStatus::TimedOut,
            Failure::new(
                timeout.clone(),
                format!("the child workflow's {timeout} ran out"),
            )
            .with_non_retryable(true)
            .with_retry_state(super::RetryState::Timeout),
        )),
        _ => None,
    }
}
