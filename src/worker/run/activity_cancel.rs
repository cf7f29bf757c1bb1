//! Cancelling one activity from workflow code: what the run's actor does
//! once an `ActivityCancelRequested` command is folded (the fold marks the
//! activity; its failures are then final, see `fail_attempt`).

use super::{Effect, RunActor, Step};
use crate::history::{EventKind, Failure, RetryState};

/// The failure type of an activity ended by its cancellation before its
/// next attempt began.
pub(crate) const ACTIVITY_CANCELLED: &str = "ActivityCancelled";

impl RunActor {
    /// The code asked to cancel activity `seq`. A running attempt is told
    /// (its `is_cancelled` turns true) and runs on to its end; an attempt
    /// that has not begun (a retry's backoff, a wait for a slot) never
    /// begins, and the activity ends in this step: the event returned, for
    /// the caller to record once every command of the activation is (so
    /// history keeps the code's order of commands).
    pub(super) fn cancel_activity(&mut self, step: &mut Step, seq: u32) -> Option<EventKind> {
        let p = self.state.activities.get(&seq)?;
        let (attempt, begun) = (p.attempt, p.retry_at.is_none());
        if begun {
            // Dispatched after this step's commit when it began in it:
            // `dispatch` tells it then (the fold has it as cancel-requested).
            if let Some(token) = self.attempts.get(&seq) {
                token.cancel();
            }
            return None;
        }
        if let Some(token) = self.attempts.remove(&seq) {
            token.cancel();
        }
        self.waiting.remove(&seq);
        step.effects.retain(|effect| match effect {
            Effect::Dispatch { seq: s, .. } | Effect::Retry { seq: s, .. } => *s != seq,
            Effect::Timer { .. } => true,
        });
        let failure = Failure::new(
            ACTIVITY_CANCELLED,
            "the workflow cancelled the activity before this attempt began",
        )
        .with_non_retryable(true)
        .with_retry_state(RetryState::CancelRequested);
        Some(EventKind::ActivityFailed {
            seq,
            attempt,
            failure,
            next_attempt_at: None,
        })
    }
}
