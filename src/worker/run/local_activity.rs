//! Local activities in a run's actor: started once the step that asked for
//! them is durable, their end recorded as one `LocalActivityRecorded`
//! event. Nothing of one is in history before its end, so a run with one
//! in flight is never idle (its wake hint is "now"): after a crash the
//! next open replays the run, its code asks again, and it runs again.
//!
//! A backoff longer than the call's retry threshold is the exception
//! (Temporal's `local_retry_threshold`): it is recorded
//! (`LocalActivityBackoff`) and waited for as a durable timer, with no task
//! held meanwhile, so the run may leave memory and a restart resumes with
//! the next attempt at its time.

use std::time::SystemTime;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::{RunActor, RunMsg, Step};
use crate::activity::ActivityCancellationType;
use crate::history::{EventKind, Failure, RetryState};
use crate::worker::local_activity::{
    self, LocalEnd, LocalWork, cancelled_before_attempt, cancelled_during_attempt,
};
use crate::workflow::LocalRequest;

/// A local activity asked for and not ended: what stops it with nothing
/// recorded, and what tells it the code cancelled it.
pub(super) struct LocalSlot {
    stop: CancellationToken,
    /// A child of `stop`: the attempt's `is_cancelled`.
    requested: CancellationToken,
    /// True once its task runs (its request's step is durable).
    started: bool,
}

impl LocalSlot {
    fn new(shutdown: &CancellationToken) -> Self {
        let stop = shutdown.child_token();
        let requested = stop.child_token();
        LocalSlot {
            stop,
            requested,
            started: false,
        }
    }
}

impl RunActor {
    /// Takes the local activities the code asked for and has no result for
    /// (after an activation, or a replay), to start after the step's
    /// commit; each counts as in flight from now. Then acts on those the
    /// code cancelled, returning the ends that cancelling records (to be
    /// recorded after the activation's commands, keeping the code's order).
    pub(super) fn take_local_requests(&mut self, step: &mut Step) -> Vec<EventKind> {
        for request in self.machine.take_local_requests() {
            if self.locals.contains_key(&request.seq)
                || self.local_waiting.contains_key(&request.seq)
            {
                continue;
            }
            let slot = LocalSlot::new(&self.shared.shutdown);
            self.locals.insert(request.seq, slot);
            step.locals.push(request);
        }
        let mut ended = Vec::new();
        for (seq, cancellation) in self.machine.take_local_cancels() {
            ended.extend(self.cancel_local(seq, cancellation));
        }
        ended
    }

    /// The code cancelled local activity `seq`, as `cancellation` says.
    /// One with a recorded backoff has its end recorded now
    /// (`ActivityCancelled`, the attempt after the backoff) unless it is
    /// wait-cancellation-completed with that attempt running (then the
    /// attempt's own end is recorded, as below): whether that attempt had
    /// begun or not, for otherwise nothing would ever close the backoff's
    /// entry, the run's wake hint would stay at its past time, and a
    /// reload (whose replayed attempt has not begun) would record this end
    /// after later events. A running attempt's later end is dropped (its
    /// slot is gone); it is told unless abandoned. Otherwise the running
    /// attempt is told (unless abandoned), and only a
    /// wait-cancellation-completed one keeps its end recorded.
    fn cancel_local(
        &mut self,
        seq: u32,
        cancellation: ActivityCancellationType,
    ) -> Option<EventKind> {
        let running = self.locals.get(&seq).is_some_and(|slot| slot.started);
        let awaits_end =
            running && cancellation == ActivityCancellationType::WaitCancellationCompleted;
        if !awaits_end && let Some(backoff) = self.state.local_backoffs.get(&seq) {
            let attempt = backoff.attempt;
            if let Some(slot) = self.locals.remove(&seq) {
                // An abandoned running attempt runs on, untold; its end
                // is dropped with its slot either way.
                if !running || cancellation != ActivityCancellationType::Abandon {
                    slot.stop.cancel();
                }
            }
            self.local_waiting.remove(&seq);
            let activity_type = self.machine.local_activity_type(seq).unwrap_or_default();
            let failure = if running {
                cancelled_during_attempt()
            } else {
                cancelled_before_attempt()
            };
            return Some(EventKind::LocalActivityRecorded {
                seq,
                activity_type,
                attempt,
                result: Err(failure),
            });
        }
        let slot = self.locals.get(&seq)?;
        match cancellation {
            // Not told; it runs on, and its end is not recorded (nor run at
            // all when it had not started).
            ActivityCancellationType::Abandon => {
                self.locals.remove(&seq);
            }
            // Told; its end is recorded and resolves the code's wait.
            ActivityCancellationType::WaitCancellationCompleted => slot.requested.cancel(),
            // Told; the code has its answer already, so its end is not
            // recorded.
            _ => {
                slot.requested.cancel();
                self.locals.remove(&seq);
            }
        }
        None
    }

    /// Starts a local activity whose request's step is durable, or, when a
    /// recorded backoff's time has not come, waits for it as a timer.
    pub(super) fn start_local(&mut self, request: LocalRequest) {
        let now = self.shared.clock.now();
        let seq = request.seq;
        let Some(cancelled) = self.locals.get(&seq).map(|s| s.requested.is_cancelled()) else {
            return;
        };
        let (first_attempt, scheduled_at) = match self.state.local_backoffs.get(&seq) {
            Some(backoff) if backoff.at > now && !cancelled => {
                let at = backoff.at;
                self.locals.remove(&seq);
                self.local_waiting.insert(seq, request);
                self.shared
                    .timers
                    .schedule(at, self.run_id, RunMsg::LocalRetryDue { seq });
                return;
            }
            Some(backoff) => (backoff.attempt, backoff.scheduled_at),
            None => (1, now),
        };
        let Some(slot) = self.locals.get_mut(&seq) else {
            return;
        };
        slot.started = true;
        let (cancel, requested) = (slot.stop.clone(), slot.requested.clone());
        let function = self
            .shared
            .queue(&self.record.task_queue)
            .and_then(|queue| queue.activity(&request.activity_type));
        let span = info_span!(
            "local_activity",
            workflow_id = %self.record.workflow_id,
            run_id = %self.run_id,
            activity = %request.activity_type,
        );
        let work = LocalWork {
            function,
            workflow_id: self.record.workflow_id.clone(),
            run_id: self.run_id,
            workflow_type: self.record.workflow_type.clone(),
            task_queue: self.record.task_queue.clone(),
            activity_type: request.activity_type,
            seq,
            input: request.input,
            options: request.options,
            first_attempt,
            retry_threshold: request.retry_threshold,
            scheduled_at,
            clock: self.shared.clock.clone(),
            cancel,
            requested,
        };
        // Held until the outcome is handed to the run (see `Clock`).
        let hold = self.shared.clock.hold();
        let shared = self.shared.clone();
        let shutdown = self.shared.shutdown.clone();
        let run_id = self.run_id;
        self.shared.tracker.spawn(
            async move {
                let end = tokio::select! {
                    _ = shutdown.cancelled() => None,
                    end = local_activity::run(&work) => end,
                };
                if let Some(end) = end {
                    // A backoff hands the request back, for the attempt
                    // after it.
                    let retry = matches!(end, LocalEnd::Backoff { .. })
                        .then(|| Box::new(work.into_request()));
                    let end = Box::new(end);
                    let msg = RunMsg::LocalActivityDone { seq, end, retry };
                    let _ = shared.deliver(run_id, msg);
                }
                drop(hold);
            }
            .instrument(span),
        );
    }

    /// A local activity's task ended: its end recorded and fed to the
    /// code, or its long backoff recorded and waited for.
    pub(super) fn local_done(
        &mut self,
        step: &mut Step,
        seq: u32,
        end: LocalEnd,
        retry: Option<LocalRequest>,
    ) {
        let Some(slot) = self.locals.remove(&seq) else {
            return;
        };
        if self.state.status.is_closed() {
            return;
        }
        let activity_type = self.machine.local_activity_type(seq).unwrap_or_default();
        let (attempt, result) = match (end, retry) {
            (LocalEnd::Done { attempt, result }, _) => (attempt, result),
            // Cancelled by the code meanwhile: the next attempt never begins.
            (LocalEnd::Backoff { attempt, .. }, _) if slot.requested.is_cancelled() => {
                (attempt.saturating_add(1), Err(cancelled_before_attempt()))
            }
            (
                LocalEnd::Backoff {
                    attempt,
                    failure,
                    next_attempt_at,
                    scheduled_at,
                },
                Some(request),
            ) => {
                self.local_backoff(
                    step,
                    request,
                    attempt,
                    failure,
                    next_attempt_at,
                    scheduled_at,
                );
                return;
            }
            (LocalEnd::Backoff { .. }, None) => return,
        };
        let result = match result {
            Ok(value) if value.len() > self.shared.max_payload_bytes => Err(Failure::new(
                "PayloadTooLarge",
                format!(
                    "the result is {} bytes, over the limit of {} bytes",
                    value.len(),
                    self.shared.max_payload_bytes
                ),
            )
            .with_non_retryable(true)
            .with_retry_state(RetryState::NonRetryableFailure)),
            Ok(value) => Ok(value),
            Err(failure) => Err(failure.with_details_at_most(self.shared.max_payload_bytes)),
        };
        let event = self.push(
            step,
            EventKind::LocalActivityRecorded {
                seq,
                activity_type,
                attempt,
                result,
            },
        );
        self.activate(step, &event);
    }

    /// Records a local activity's backoff over its threshold and waits for
    /// its end as a durable timer (also armed again by a reload or a wake,
    /// from the fold's `local_backoffs`). Not an activation.
    fn local_backoff(
        &mut self,
        step: &mut Step,
        request: LocalRequest,
        attempt: u32,
        failure: Failure,
        next_attempt_at: SystemTime,
        original_scheduled_time: SystemTime,
    ) {
        let seq = request.seq;
        let failure = failure
            .with_details_at_most(self.shared.max_payload_bytes)
            .with_retry_state(RetryState::InProgress);
        self.push(
            step,
            EventKind::LocalActivityBackoff {
                seq,
                activity_type: request.activity_type.clone(),
                attempt,
                failure,
                next_attempt_at,
                original_scheduled_time,
            },
        );
        self.local_waiting.insert(seq, request);
        // Due only after this step's commit: messages are taken one at a
        // time, after the step of the one before is committed.
        self.shared
            .timers
            .schedule(next_attempt_at, self.run_id, RunMsg::LocalRetryDue { seq });
    }

    /// A recorded backoff's time came: the next attempt begins (held while
    /// paused, as every attempt is).
    pub(super) fn local_retry_due(&mut self, seq: u32) {
        if self.state.status.is_closed() || !self.state.local_backoffs.contains_key(&seq) {
            return;
        }
        let Some(request) = self.local_waiting.remove(&seq) else {
            return;
        };
        self.locals
            .insert(seq, LocalSlot::new(&self.shared.shutdown));
        if self.state.paused.is_some() {
            self.held_locals.push(request);
        } else {
            self.start_local(request);
        }
    }

    /// Arms again the timers of local activities waiting out a recorded
    /// backoff (the timer thread keeps only those within its horizon).
    pub(super) fn arm_local_backoffs(&self) {
        for seq in self.local_waiting.keys() {
            if let Some(backoff) = self.state.local_backoffs.get(seq) {
                let msg = RunMsg::LocalRetryDue { seq: *seq };
                self.shared.timers.schedule(backoff.at, self.run_id, msg);
            }
        }
    }

    /// Tells every local activity in flight to stop (a close, a
    /// cancellation of the run); their ends are not recorded, and those
    /// waiting out a backoff are forgotten (the run's cancellation ended
    /// the code's wait on them).
    pub(super) fn cancel_locals(&mut self) {
        for slot in std::mem::take(&mut self.locals).into_values() {
            CancellationToken::cancel(&slot.stop);
        }
        self.local_waiting.clear();
    }
}
