//! A run's signals and cancellation requests to other workflows, as its
//! actor deals with them: committing their deliveries and outcomes with
//! the step that initiates them, telling the targets' actors, and taking in
//! what another run's step wrote to this one.

use super::{RunActor, RunMsg, Step};
use crate::history::{Event, EventKind, MutableState};
use crate::store::{
    ExternalAction, ExternalOp, ExternalRequest, StoreError, WriteOp, WriteOutcome,
};

/// True when the events signal or cancel another workflow (or a child).
pub(super) fn initiates(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::SignalExternalWorkflowInitiated { .. }
                | EventKind::SignalChildWorkflowInitiated { .. }
                | EventKind::RequestCancelExternalWorkflowInitiated { .. }
                | EventKind::ChildWorkflowCancelRequested { .. }
        )
    })
}

/// The deliveries the events of a step ask for, in their order: its
/// signals and cancellation requests to other workflows, and its requests
/// to cancel or signal a child (`state` names each child's workflow ID by
/// seq).
fn requests(events: &[Event], state: &MutableState) -> Vec<ExternalRequest> {
    let children = &state.children;
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ChildWorkflowCancelRequested { seq } => {
                let child = children.get(seq).filter(|c| c.run_id.is_some())?;
                Some(ExternalRequest {
                    seq: *seq,
                    initiated: event.event_id,
                    workflow_id: child.workflow_id.clone(),
                    run_id: None,
                    action: ExternalAction::CancelChild,
                })
            }
            // A signal to a named run goes to that run only (Temporal's
            // `SignalExternalWorkflowExecution` with a run ID), whether or
            // not it is a child's.
            EventKind::SignalExternalWorkflowInitiated {
                seq,
                workflow_id,
                run_id,
                signal_name,
                input,
            } => Some(ExternalRequest {
                seq: *seq,
                initiated: event.event_id,
                workflow_id: workflow_id.clone(),
                run_id: *run_id,
                action: ExternalAction::Signal {
                    signal_name: signal_name.clone(),
                    input: input.clone(),
                },
            }),
            // A child handle's signal goes to the child, whichever run of
            // its chain is the latest, and only while it is this run's
            // child.
            EventKind::SignalChildWorkflowInitiated {
                seq,
                child_seq,
                workflow_id,
                signal_name,
                input,
                ..
            } => Some(ExternalRequest {
                seq: *seq,
                initiated: event.event_id,
                workflow_id: workflow_id.clone(),
                run_id: None,
                action: ExternalAction::SignalChild {
                    child_seq: *child_seq,
                    signal_name: signal_name.clone(),
                    input: input.clone(),
                },
            }),
            EventKind::RequestCancelExternalWorkflowInitiated {
                seq,
                workflow_id,
                run_id,
            } => Some(ExternalRequest {
                seq: *seq,
                initiated: event.event_id,
                workflow_id: workflow_id.clone(),
                run_id: *run_id,
                action: ExternalAction::Cancel,
            }),
            _ => None,
        })
        .collect()
}

impl RunActor {
    /// Writes a step's op; one whose events signal or cancel other
    /// workflows makes the deliveries and records their outcomes in the
    /// same commit (see `ExternalOp`), then tells the targets. Returns the
    /// op's own outcome and the outcome events written after it.
    pub(super) async fn write_step(
        &mut self,
        op: WriteOp,
        events: &[Event],
    ) -> Result<(WriteOutcome, Vec<Event>), StoreError> {
        let op = self.with_parent_notice(op, events);
        let requests = requests(events, &self.state);
        if requests.is_empty() {
            return Ok((self.shared.store.write(op).await?, Vec::new()));
        }
        let op = WriteOp::External(Box::new(ExternalOp {
            inner: op,
            run_id: self.run_id,
            workflow_id: self.record.workflow_id.clone(),
            requests,
            at: self.shared.clock.now(),
        }));
        match self.shared.store.write(op).await? {
            WriteOutcome::External(outcome) => {
                // Durable: each target's actor, if live, is behind the file
                // by this event, and takes it in (a target not in memory
                // reads it when loaded).
                for (run_id, event) in outcome.delivered {
                    let event = Box::new(event);
                    let _ = self.shared.deliver(run_id, RunMsg::Recorded { event });
                }
                Ok((outcome.inner, outcome.outcomes))
            }
            other => Err(StoreError::Conflict {
                run_id: self.run_id,
                message: format!("the store answered a step with deliveries with {other:?}"),
            }),
        }
    }

    /// Takes in an event another run's commit wrote to this run's history
    /// (a signal or a cancellation request from a workflow): folded and fed
    /// to the code as if this actor had recorded it, never written again.
    /// One this actor has already (it was loaded from the file after the
    /// commit) is ignored; one it cannot place (its own step is not
    /// committed yet, or it missed an event) means it is behind the file:
    /// the step is refused and the run reloads from the file.
    pub(super) fn recorded(&mut self, step: &mut Step, event: Event) {
        let committed_next = step
            .events
            .first()
            .map_or_else(|| self.state.next_event_id(), |e| e.event_id);
        if event.event_id < committed_next || self.state.status.is_closed() {
            return;
        }
        if event.event_id != self.state.next_event_id() || !step.events.is_empty() {
            step.behind = true;
            return;
        }
        let cancel = matches!(event.kind, EventKind::WorkflowCancelRequested { .. });
        if cancel {
            // As a client's cancellation: the attempts are told.
            self.cancel_attempts();
        }
        self.state.apply(&event);
        self.machine.observe(&event);
        self.sync_record();
        self.activate(step, &event);
    }
}
