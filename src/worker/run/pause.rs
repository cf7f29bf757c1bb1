//! Pause, unpause and reset of a run by an operator, as the run's actor
//! takes them.
//!
//! A pause is state in the history (`WorkflowPaused` until a
//! `WorkflowUnpaused`), so the fold decides it and it survives restarts.
//! While paused, the actor records no attempt's start and fires no timer:
//! a timer or retry that comes due is left pending (its wake-up is dropped,
//! and the fold gives the run no due time but its deadlines), an activity
//! the code schedules is recorded as waiting, and a local activity is held
//! in memory. Attempts already running go on and their outcomes are
//! recorded; signals, queries and termination work as usual; a
//! cancellation request is held (`WorkflowCancelRequestDeferred`, as
//! Temporal holds it) and recorded for the code at the unpause; a new
//! update is rejected (`UpdateError::Paused`, as in Temporal). The unpause
//! arms every held due time again, so what came due during the pause acts
//! at once, and starts the held local activities, unless a held
//! cancellation is delivered with it: that ends the code's waits on them,
//! and they never start.

use tracing::info;

use super::{Ack, NextRun, RunActor, Step};
use crate::error::ClientError;
use crate::history::{Event, EventId, EventKind, RunId};
use crate::store::RunRecord;

/// A reset the engine prepared from the run's history (see
/// `engine::reset`): the run closes on `WorkflowReset` and `next_run_id`
/// starts with `next_events` in the same commit.
#[derive(Debug)]
pub(crate) struct ResetRun {
    /// The history's last event ID when the engine read it: the reset is
    /// refused (and read again) if the run moved on meanwhile.
    pub(crate) expect_last: EventId,
    /// The last event the new run keeps.
    pub(crate) reset_event_id: EventId,
    pub(crate) reason: String,
    pub(crate) next_run_id: RunId,
    pub(crate) next_record: RunRecord,
    pub(crate) next_events: Vec<Event>,
    /// Answered once the reset is durable; `Err(ResetMoved)`-like errors
    /// are answered as [`ClientError::Storage`] with advice to retry.
    pub(crate) ack: Ack,
}

impl RunActor {
    /// Records a pause; a run already paused stays paused, with its first
    /// reason (repeating is a no-op, as for schedules).
    pub(super) fn pause(&mut self, step: &mut Step, reason: String, ack: Ack) {
        if let Some(err) = self.closed_error() {
            let _ = ack.send(Err(err));
            return;
        }
        step.acks.push(ack);
        if self.state.paused.is_some() {
            return;
        }
        info!(workflow_id = %self.record.workflow_id, run_id = %self.run_id, %reason, "run paused");
        self.push(step, EventKind::WorkflowPaused { reason });
    }

    /// Records an unpause; once durable, what the pause held acts. A run
    /// that is not paused is left as it is.
    pub(super) fn unpause(&mut self, step: &mut Step, reason: String, ack: Ack) {
        if let Some(err) = self.closed_error() {
            let _ = ack.send(Err(err));
            return;
        }
        step.acks.push(ack);
        if self.state.paused.is_none() {
            return;
        }
        info!(workflow_id = %self.record.workflow_id, run_id = %self.run_id, %reason, "run unpaused");
        self.push(step, EventKind::WorkflowUnpaused { reason });
        step.unpaused = true;
        self.deliver_deferred_cancel(step);
    }

    /// Records the cancellation request a pause held, once the run is no
    /// longer paused (at the unpause, in the same commit; or when a reset
    /// copied a held request into a run that starts unpaused): the code
    /// sees it as any other, and the attempts are told.
    pub(super) fn deliver_deferred_cancel(&mut self, step: &mut Step) {
        if self.state.paused.is_some()
            || self.state.cancel_requested
            || self.state.status.is_closed()
        {
            return;
        }
        let Some(reason) = self.state.cancel_deferred.clone() else {
            return;
        };
        // The cancellation wins over what the pause held: the code's waits
        // on local activities end with it (whatever their cancellation
        // type), so a held one never starts, though the unpause in this
        // step starts the rest of what was held.
        self.cancel_attempts();
        self.held_locals.clear();
        let event = self.push(step, EventKind::WorkflowCancelRequested { reason });
        self.activate(step, &event);
    }

    /// After a durable unpause: every timer and retry due time is armed
    /// again (those that came due meanwhile fire at once), and the held
    /// local activities start.
    pub(super) fn act_on_held(&mut self) {
        self.arm_due_times();
        for request in std::mem::take(&mut self.held_locals) {
            self.start_local(request);
        }
    }

    /// Closes the run on `WorkflowReset` and starts the prepared run in the
    /// same commit, unless the run moved on since the engine read its
    /// history (then nothing is recorded and the engine reads again).
    pub(super) fn reset(&mut self, step: &mut Step, reset: ResetRun) {
        if let Some(err) = self.closed_error() {
            let _ = reset.ack.send(Err(err));
            return;
        }
        if self.state.last_event_id != reset.expect_last || step.code_close.is_some() {
            let _ = reset.ack.send(Err(ClientError::Storage(format!(
                "run {} of workflow {:?} moved on while it was being reset; retry the reset",
                self.run_id, self.record.workflow_id
            ))));
            return;
        }
        self.cancel_attempts();
        self.held_locals.clear();
        step.acks.push(reset.ack);
        self.push(
            step,
            EventKind::WorkflowReset {
                new_run_id: reset.next_run_id,
                reset_event_id: reset.reset_event_id,
                reason: reset.reason,
            },
        );
        step.effects.clear();
        step.next_run = Some(NextRun {
            run_id: reset.next_run_id,
            record: reset.next_record,
            events: reset.next_events,
        });
    }
}
