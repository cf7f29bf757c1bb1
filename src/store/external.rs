//! The write that delivers signals and cancellation requests from one run
//! to others: the sender's step, each delivery into its target's history,
//! and each outcome in the sender's, committed together, so that no history
//! holds a signal to another workflow whose delivery is unknown, and none
//! is delivered twice.

use std::time::SystemTime;

use super::ops::{WriteOp, WriteOutcome};
use crate::history::{
    Event, EventId, EventKind, ExternalFailedCause, Payload, RunId, SignalDelivery,
    external_signal_request_id,
};

/// A sender's step (`inner`: its `Append`, `StartChildren`, `CloseParent`
/// or `ContinueAsNew`, refused as a whole, writing nothing, when it would
/// be) with the deliveries its `…Initiated` events ask for. A delivery the
/// target refuses (not found, closed) is not a refusal: the op records the
/// failure in the sender instead. The outcome events go after everything
/// `inner` wrote to the sender, in `requests` order; when `inner` closes
/// the sender, the deliveries are made and no outcome is recorded (nothing
/// follows a close).
#[derive(Debug)]
pub(crate) struct ExternalOp {
    pub(crate) inner: WriteOp,
    /// The sending run.
    pub(crate) run_id: RunId,
    /// The sender's workflow ID, named in a cancellation's reason.
    pub(crate) workflow_id: String,
    pub(crate) requests: Vec<ExternalRequest>,
    /// The time of the events written (the engine's, not the store's).
    pub(crate) at: SystemTime,
}

/// One delivery, as its `…Initiated` event in the sender asks for it.
#[derive(Debug)]
pub(crate) struct ExternalRequest {
    /// The command's sequence number in the sender.
    pub(crate) seq: u32,
    /// The `…Initiated` event's ID in the sender (a signal's request ID is
    /// made of it).
    pub(crate) initiated: EventId,
    pub(crate) workflow_id: String,
    /// The targeted run; the ID's latest when `None`.
    pub(crate) run_id: Option<RunId>,
    pub(crate) action: ExternalAction,
}

/// What a delivery brings its target.
#[derive(Debug)]
pub(crate) enum ExternalAction {
    Signal {
        signal_name: String,
        input: Payload,
    },
    Cancel,
    /// A cancellation request to the sender's child of `seq`: only a run
    /// that names the sender and that seq as its parent gets it (an ID
    /// reused by an unrelated workflow is left alone).
    CancelChild,
    /// A signal to the sender's child started at `child_seq` (a child
    /// handle's): delivered to the latest run of the child's workflow ID
    /// only when that run names the sender and that seq as its parent, so
    /// a child that continued as new gets it and a closed child's reused
    /// ID does not (Temporal's `child_workflow_only`).
    SignalChild {
        child_seq: u32,
        signal_name: String,
        input: Payload,
    },
}

impl ExternalAction {
    /// The seq of the child a request is for (`seq`: the request's own,
    /// a child cancellation's), `None` for a request to any workflow.
    pub(crate) fn child_seq(&self, seq: u32) -> Option<u32> {
        match self {
            ExternalAction::CancelChild => Some(seq),
            ExternalAction::SignalChild { child_seq, .. } => Some(*child_seq),
            ExternalAction::Signal { .. } | ExternalAction::Cancel => None,
        }
    }

    /// The event the sender's history records for a request's result: the
    /// target run it reached, or why it reached none. Both stores write it
    /// after the delivery, in the same commit.
    pub(crate) fn outcome(
        &self,
        seq: u32,
        result: Result<RunId, ExternalFailedCause>,
    ) -> EventKind {
        let signal = matches!(
            self,
            ExternalAction::Signal { .. } | ExternalAction::SignalChild { .. }
        );
        match (signal, result) {
            (true, Ok(run_id)) => EventKind::ExternalWorkflowSignaled { seq, run_id },
            (true, Err(cause)) => EventKind::SignalExternalWorkflowFailed { seq, cause },
            (false, Ok(run_id)) => EventKind::ExternalWorkflowCancelRequested { seq, run_id },
            (false, Err(cause)) => EventKind::RequestCancelExternalWorkflowFailed { seq, cause },
        }
    }
}

/// What an [`ExternalOp`] did, besides `inner`'s own outcome.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExternalOutcome {
    pub(crate) inner: WriteOutcome,
    /// The outcome events written to the sender, in request order (none
    /// when the step closed it).
    pub(crate) outcomes: Vec<Event>,
    /// The events written to targets, each with its run: what their
    /// actors, if live, have to take in.
    pub(crate) delivered: Vec<(RunId, Event)>,
}

/// Whether a delivery's target run can take it, as its run record says
/// (decided before the target is folded, which a closed one need not be):
/// a run of another workflow is `NotFound`, a closed one (`open` false:
/// out of the store's open runs, or a closed status) `Closed`. Both
/// stores decide this here.
pub(crate) fn check_target_record(
    request: &ExternalRequest,
    run_id: RunId,
    record: &super::RunRecord,
    open: bool,
) -> Result<(), ExternalFailedCause> {
    if record.workflow_id != request.workflow_id {
        return Err(ExternalFailedCause::NotFound);
    }
    // A run may signal itself and ask itself to cancel, as in Temporal
    // (a request to its own run is written to its history in this commit,
    // before the outcome; a child request never targets the sender).
    if !open || record.status.is_closed() {
        return Err(ExternalFailedCause::Closed {
            run_id,
            status: record.status,
        });
    }
    Ok(())
}

/// What a delivery writes into its target run, decided from the target's
/// folded state (`None`: its events do not decode): the event to append
/// (at its next event ID, at the op's time), `Ok(None)` when it has it already (a signal whose
/// request ID it holds, a cancellation request of a run asked to cancel
/// before, or holding one), a success without a write, or why it gets
/// nothing. Both stores decide this here, after [`check_target_record`].
pub(crate) fn delivery(
    op: &ExternalOp,
    request: &ExternalRequest,
    run_id: RunId,
    state: Option<&crate::history::MutableState>,
) -> Result<Option<Event>, ExternalFailedCause> {
    let Some(state) = state else {
        return Err(ExternalFailedCause::Unreadable {
            message: format!("an event of run {run_id} does not decode"),
        });
    };
    if state.status.is_closed() {
        return Err(ExternalFailedCause::Closed {
            run_id,
            status: state.status,
        });
    }
    // A request to a child reaches only a run that names the sender and
    // that child's seq as its parent: a child that closed, whose ID another
    // workflow reuses, is not found (Temporal's `child_workflow_only`).
    if let Some(child_seq) = request.action.child_seq(request.seq)
        && !state
            .parent
            .as_ref()
            .is_some_and(|p| p.run_id == op.run_id && p.seq == child_seq)
    {
        return Err(ExternalFailedCause::NotFound);
    }
    let kind = match &request.action {
        ExternalAction::Signal { signal_name, input }
        | ExternalAction::SignalChild {
            signal_name, input, ..
        } => {
            let request_id = external_signal_request_id(op.run_id, request.initiated);
            if state.signal_request_ids.contains(&request_id) {
                return Ok(None);
            }
            EventKind::WorkflowSignaledWithOptions {
                signal_name: signal_name.clone(),
                input: input.clone(),
                request_id: Some(request_id),
                delivery: SignalDelivery::Alone,
            }
        }
        ExternalAction::Cancel | ExternalAction::CancelChild => {
            // A request is state: the run has it already (or holds it).
            if state.cancel_requested || state.cancel_deferred.is_some() {
                return Ok(None);
            }
            let by = if matches!(request.action, ExternalAction::CancelChild) {
                "its parent workflow"
            } else {
                "workflow"
            };
            let reason = format!("requested by {by} {:?} (run {})", op.workflow_id, op.run_id);
            cancel_request(state, reason)
        }
    };
    Ok(Some(Event {
        event_id: state.next_event_id(),
        timestamp: op.at,
        kind,
    }))
}

/// The event a cancellation request delivered by a commit writes into its
/// target's history: `WorkflowCancelRequested`, or, while the target is
/// paused, `WorkflowCancelRequestDeferred`, which its actor turns into the
/// request the code sees at the unpause (as Temporal holds a paused run's
/// cancellation).
pub(crate) fn cancel_request(target: &crate::history::MutableState, reason: String) -> EventKind {
    if target.paused.is_some() {
        EventKind::WorkflowCancelRequestDeferred { reason }
    } else {
        EventKind::WorkflowCancelRequested { reason }
    }
}
