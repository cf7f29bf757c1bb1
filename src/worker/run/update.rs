//! Updates at the run's actor: validate in-process, accept durably, and
//! answer each caller with the handler's recorded outcome.
//!
//! A rejected update writes nothing and is answered at once, and so is one
//! over the run's limits (in flight, in all: Temporal's 10 and 2,000 by
//! default, see `EngineBuilder::update_limits`). An accepted
//! one is a `WorkflowUpdateAccepted` event in the step that validated it;
//! its callers (the first, and any later one with the same update ID, also
//! after a restart) are answered once the `WorkflowUpdateCompleted` the
//! handler issues is durable, or with `Aborted` once the run closed first.

use tokio::sync::oneshot;

use super::{RunActor, Step};
use crate::error::{ClientError, UpdateError};
use crate::history::{EventKind, Payload, UpdateOutcome, UpdateStatus};
use crate::workflow::Refusal;

/// Where an update's caller gets its answer.
pub(crate) type UpdateReply = oneshot::Sender<Result<UpdateOutcome, UpdateError>>;

/// The update callers of one step, answered after its commit.
#[derive(Default)]
pub(super) struct StepUpdates {
    /// Callers of updates accepted (in this step or before), by update ID.
    waiters: Vec<(String, UpdateReply)>,
    /// Answers that wait only for the commit (a closed run's refusal, so
    /// that the caller, retrying on the chain's next run, finds it).
    replies: Vec<(UpdateReply, UpdateError)>,
}

impl StepUpdates {
    /// The step was not committed: every caller gets `err`.
    pub(super) fn fail(self, err: impl Fn() -> ClientError) {
        for (_, reply) in self.waiters {
            let _ = reply.send(Err(err().into()));
        }
        for (reply, _) in self.replies {
            let _ = reply.send(Err(err().into()));
        }
    }
}

impl RunActor {
    pub(super) fn update(
        &mut self,
        step: &mut Step,
        update_id: String,
        name: String,
        input: Payload,
        reply: UpdateReply,
    ) {
        let workflow_id = self.record.workflow_id.clone();
        if self.state.updates.contains_key(&update_id) {
            // Accepted before (a retry, another caller, or a call after a
            // restart): its outcome, once it is durable.
            step.updates.waiters.push((update_id, reply));
            return;
        }
        if let Some(err) = self.closed_error() {
            step.updates.replies.push((reply, err.into()));
            return;
        }
        if let Some(reason) = self.machine.parked() {
            let err = ClientError::Parked {
                workflow_id,
                reason: reason.to_string(),
            };
            let _ = reply.send(Err(err.into()));
            return;
        }
        if let Some(reason) = &self.state.paused {
            // As in Temporal: a paused run takes no new update.
            let _ = reply.send(Err(UpdateError::Paused {
                workflow_id,
                update_name: name,
                reason: reason.clone(),
            }));
            return;
        }
        if let Some(err) = self.over_update_limit(&update_id) {
            let _ = reply.send(Err(err));
            return;
        }
        let span = tracing::info_span!("update_validator", %workflow_id, update = %name);
        let validated = span.in_scope(|| self.machine.validate_update(&name, &input));
        if let Err(refusal) = validated {
            // Nothing of a refused update is written.
            let err = match refusal {
                Refusal::Unknown => UpdateError::UnknownUpdate {
                    workflow_id,
                    update_name: name,
                },
                Refusal::BadInput(message) => UpdateError::InvalidInput {
                    workflow_id,
                    update_name: name,
                    message,
                },
                Refusal::Rejected(message) => UpdateError::Rejected {
                    workflow_id,
                    update_name: name,
                    message,
                },
            };
            let _ = reply.send(Err(err));
            return;
        }
        let event = self.push(
            step,
            EventKind::WorkflowUpdateAccepted {
                update_id: update_id.clone(),
                update_name: name,
                input,
            },
        );
        step.updates.waiters.push((update_id, reply));
        self.activate(step, &event);
    }

    /// The refusal of a new update the run cannot take: as many in flight
    /// as it takes at once, or as many in all as one run takes (counting
    /// the step's own). Checked before the validator, as Temporal admits.
    fn over_update_limit(&self, update_id: &str) -> Option<UpdateError> {
        let limits = self.shared.history_limits;
        let total = self.state.updates.len();
        let in_flight = self
            .state
            .updates
            .values()
            .filter(|s| matches!(s, UpdateStatus::Accepted { .. }))
            .count();
        let workflow_id = self.record.workflow_id.clone();
        let update_id = update_id.to_string();
        if total >= limits.max_updates_per_run as usize {
            return Some(UpdateError::TooManyUpdates {
                workflow_id,
                update_id,
                limit: limits.max_updates_per_run,
            });
        }
        if in_flight >= limits.max_in_flight_updates as usize {
            return Some(UpdateError::TooManyInFlight {
                workflow_id,
                update_id,
                limit: limits.max_in_flight_updates,
            });
        }
        None
    }

    /// After a commit: answers the callers whose update has a durable
    /// outcome now, or whose run closed before the handler returned.
    pub(super) fn answer_updates(&mut self, step: StepUpdates) {
        for (reply, err) in step.replies {
            let _ = reply.send(Err(err));
        }
        self.update_waiters.extend(step.waiters);
        let closed = self.record.status.is_closed();
        for (update_id, reply) in std::mem::take(&mut self.update_waiters) {
            match self.state.updates.get(&update_id) {
                Some(UpdateStatus::Completed(outcome)) => {
                    let _ = reply.send(Ok(outcome.clone()));
                }
                _ if closed => {
                    let _ = reply.send(Err(UpdateError::Aborted {
                        workflow_id: self.record.workflow_id.clone(),
                        update_id,
                        status: self.record.status,
                    }));
                }
                _ => self.update_waiters.push((update_id, reply)),
            }
        }
    }
}

/// The update of an update-with-start, accepted (or refused) by the new
/// run's first activation, before anything is written.
pub(crate) struct StartUpdate {
    pub(crate) update_id: String,
    pub(crate) name: String,
    pub(crate) input: Payload,
    pub(crate) reply: UpdateReply,
}

impl super::PreparedRun {
    /// Validates and accepts `update` into the step that starts the run,
    /// so that the start and the acceptance are one commit. A refusal is
    /// sent to the update's caller at once; `Err` then says nothing may
    /// be written.
    pub(crate) fn accept_update(&mut self, update: StartUpdate) -> Result<(), ()> {
        let StartUpdate {
            update_id,
            name,
            input,
            reply,
        } = update;
        self.actor
            .update(&mut self.step, update_id.clone(), name, input, reply);
        let accepted = self.actor.state.updates.contains_key(&update_id)
            && self
                .step
                .events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::WorkflowUpdateAccepted { .. }));
        if accepted { Ok(()) } else { Err(()) }
    }
}
