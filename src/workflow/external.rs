//! Signalling and cancelling other workflows from workflow code
//! (Temporal's `SignalExternalWorkflow` and `RequestCancelExternalWorkflow`),
//! as the code sees it: the future of a delivery and its error.
//!
//! Each is one command (`SignalExternalWorkflowInitiated`, a child
//! handle's `SignalChildWorkflowInitiated`,
//! `RequestCancelExternalWorkflowInitiated`) whose delivery into the
//! target's history and whose outcome in this run's (`ExternalWorkflowSignaled`,
//! `ExternalWorkflowCancelRequested`, or a `…Failed` with its cause) the
//! engine writes in the same commit; the outcome is fed back like an
//! activity's result, so it replays alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::FusedFuture;

use super::replay::{Awaited, Resolution, RunCore, lock};
use crate::history::{EventKind, ExternalFailedCause, MAX_WORKFLOW_ID_LEN, Payload, RunId};

/// The outcome an event brings to a signal or cancellation request sent to
/// another workflow, with the seq it resolves.
pub(crate) fn resolution(kind: &EventKind) -> Option<(u32, Resolution)> {
    Some(match kind {
        EventKind::ExternalWorkflowSignaled { seq, run_id }
        | EventKind::ExternalWorkflowCancelRequested { seq, run_id } => {
            (*seq, Resolution::External(Ok(*run_id)))
        }
        EventKind::SignalExternalWorkflowFailed { seq, cause }
        | EventKind::RequestCancelExternalWorkflowFailed { seq, cause } => {
            (*seq, Resolution::External(Err(cause.clone())))
        }
        _ => return None,
    })
}

/// Why a signal or cancellation request sent to another workflow was not
/// delivered. Deterministic: the outcome is in this run's history.
/// Converts into [`WorkflowError`](crate::WorkflowError) with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalWorkflowError {
    /// No run of the workflow ID (or no run with the given run ID) exists
    /// (Temporal's `EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND`).
    #[error("workflow {workflow_id:?} was not found; check the workflow ID (and run ID)")]
    NotFound {
        /// The target's workflow ID.
        workflow_id: String,
    },
    /// The targeted run is closed: nothing was delivered.
    #[error("workflow {workflow_id:?} is closed (run {run_id}, {status:?}); nothing was delivered")]
    Closed {
        /// The target's workflow ID.
        workflow_id: String,
        /// The run that was targeted.
        run_id: RunId,
        /// How it closed.
        status: crate::history::WorkflowStatus,
    },
    /// The request was refused before anything was recorded (an empty or
    /// too long workflow ID, an input that does not encode), or could not
    /// be delivered (the target's records are damaged).
    #[error("the request to workflow {workflow_id:?} was not delivered: {message}")]
    NotDelivered {
        /// The target's workflow ID.
        workflow_id: String,
        /// What was wrong.
        message: String,
    },
    /// This workflow was cancelled while waiting (only when the outcome was
    /// not recorded yet, which the engine never leaves so).
    #[error(
        "the wait for the request to workflow {workflow_id:?} ended: this workflow was cancelled"
    )]
    Cancelled {
        /// The target's workflow ID.
        workflow_id: String,
    },
}

impl ExternalWorkflowError {
    fn from_cause(workflow_id: &str, cause: ExternalFailedCause) -> Self {
        let workflow_id = workflow_id.to_string();
        match cause {
            ExternalFailedCause::NotFound => ExternalWorkflowError::NotFound { workflow_id },
            ExternalFailedCause::Closed { run_id, status } => ExternalWorkflowError::Closed {
                workflow_id,
                run_id,
                status,
            },
            other => ExternalWorkflowError::NotDelivered {
                workflow_id,
                message: other.to_string(),
            },
        }
    }
}

/// The delivery of a signal or cancellation request to another workflow;
/// see [`WorkflowContext::signal_external_workflow`](crate::WorkflowContext::signal_external_workflow)
/// and [`WorkflowContext::cancel_external_workflow`](crate::WorkflowContext::cancel_external_workflow).
/// Resolves, once the delivery is durable, to the run that got it.
#[must_use = "a delivery's outcome is only seen when the future is awaited"]
pub struct ExternalWorkflowFuture {
    core: Arc<Mutex<RunCore>>,
    seq: u32,
    workflow_id: String,
    refused: Option<ExternalWorkflowError>,
    done: bool,
}

impl std::fmt::Debug for ExternalWorkflowFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalWorkflowFuture")
            .field("workflow_id", &self.workflow_id)
            .field("seq", &self.seq)
            .finish()
    }
}

impl Future for ExternalWorkflowFuture {
    type Output = Result<RunId, ExternalWorkflowError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        if let Some(refused) = self.refused.take() {
            self.done = true;
            return Poll::Ready(Err(refused));
        }
        let resolution = lock(&self.core).take_resolution(self.seq, cx.waker());
        let output = match resolution {
            Some(Resolution::External(Ok(run_id))) => Ok(run_id),
            Some(Resolution::External(Err(cause))) => {
                Err(ExternalWorkflowError::from_cause(&self.workflow_id, cause))
            }
            Some(Resolution::Cancelled) => Err(ExternalWorkflowError::Cancelled {
                workflow_id: self.workflow_id.clone(),
            }),
            Some(_) | None => return Poll::Pending,
        };
        self.done = true;
        Poll::Ready(output)
    }
}

impl FusedFuture for ExternalWorkflowFuture {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// Why a target is refused before anything is recorded.
fn check_target(workflow_id: &str) -> Result<(), String> {
    if workflow_id.is_empty() {
        return Err("the workflow ID is empty; name the workflow to reach".into());
    }
    if workflow_id.len() > MAX_WORKFLOW_ID_LEN {
        return Err(format!(
            "the workflow ID is {} bytes, over the limit of {MAX_WORKFLOW_ID_LEN}",
            workflow_id.len()
        ));
    }
    Ok(())
}

fn refused(
    core: &Arc<Mutex<RunCore>>,
    workflow_id: String,
    message: String,
) -> ExternalWorkflowFuture {
    ExternalWorkflowFuture {
        core: core.clone(),
        seq: 0,
        refused: Some(ExternalWorkflowError::NotDelivered {
            workflow_id: workflow_id.clone(),
            message,
        }),
        workflow_id,
        done: false,
    }
}

/// Records a signal to another workflow as a command.
pub(crate) fn signal(
    core: &Arc<Mutex<RunCore>>,
    workflow_id: String,
    run_id: Option<RunId>,
    signal_name: &str,
    input: Result<Payload, String>,
) -> ExternalWorkflowFuture {
    if let Err(message) = check_target(&workflow_id) {
        return refused(core, workflow_id, message);
    }
    let input = match input {
        Ok(input) => input,
        Err(message) => return refused(core, workflow_id, message),
    };
    initiate(core, workflow_id.clone(), |seq| {
        EventKind::SignalExternalWorkflowInitiated {
            seq,
            workflow_id,
            run_id,
            signal_name: signal_name.to_string(),
            input,
        }
    })
}

/// Records a signal to this run's child of `child_seq` (a child handle's)
/// as a command.
pub(crate) fn signal_child(
    core: &Arc<Mutex<RunCore>>,
    child_seq: u32,
    workflow_id: String,
    run_id: RunId,
    signal_name: &str,
    input: Result<Payload, String>,
) -> ExternalWorkflowFuture {
    let input = match input {
        Ok(input) => input,
        Err(message) => return refused(core, workflow_id, message),
    };
    initiate(core, workflow_id.clone(), |seq| {
        EventKind::SignalChildWorkflowInitiated {
            seq,
            child_seq,
            workflow_id,
            run_id,
            signal_name: signal_name.to_string(),
            input,
        }
    })
}

/// Records a cancellation request to another workflow as a command.
pub(crate) fn cancel(
    core: &Arc<Mutex<RunCore>>,
    workflow_id: String,
    run_id: Option<RunId>,
) -> ExternalWorkflowFuture {
    if let Err(message) = check_target(&workflow_id) {
        return refused(core, workflow_id, message);
    }
    initiate(core, workflow_id.clone(), |seq| {
        EventKind::RequestCancelExternalWorkflowInitiated {
            seq,
            workflow_id,
            run_id,
        }
    })
}

fn initiate(
    core: &Arc<Mutex<RunCore>>,
    workflow_id: String,
    command: impl FnOnce(u32) -> EventKind,
) -> ExternalWorkflowFuture {
    let mut guard = lock(core);
    let seq = guard.next_seq();
    guard.track(seq, Awaited::External);
    guard.command(command(seq));
    drop(guard);
    ExternalWorkflowFuture {
        core: core.clone(),
        seq,
        workflow_id,
        refused: None,
        done: false,
    }
}
