//! Local activities in a run's actor: started once the step that asked for
//! them is durable, their end recorded as one `LocalActivityRecorded`
//! event. Nothing of one is in history before its end, so a run with one
//! in flight is never idle (its wake hint is "now"): after a crash the
//! next open replays the run, its code asks again, and it runs again.

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::{RunActor, RunMsg, Step};
use crate::history::{EventKind, Failure, Payload};
use crate::worker::local_activity::{self, LocalWork};
use crate::workflow::LocalRequest;

impl RunActor {
    /// Takes the local activities the code asked for and has no result for
    /// (after an activation, or a replay), to start after the step's
    /// commit; each counts as in flight from now.
    pub(super) fn take_local_requests(&mut self, step: &mut Step) {
        for request in self.machine.take_local_requests() {
            if self.locals.contains_key(&request.seq) {
                continue;
            }
            let cancel = self.shared.shutdown.child_token();
            self.locals.insert(request.seq, cancel);
            step.locals.push(request);
        }
    }

    /// Starts a local activity whose request's step is durable.
    pub(super) fn start_local(&mut self, request: LocalRequest) {
        let Some(cancel) = self.locals.get(&request.seq).cloned() else {
            return;
        };
        let function = self
            .shared
            .queue(&self.record.task_queue)
            .and_then(|queue| queue.activity(&request.activity_type));
        let seq = request.seq;
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
            scheduled_at: self.shared.clock.now(),
            clock: self.shared.clock.clone(),
            cancel: cancel.clone(),
        };
        // Held until the outcome is handed to the run (see `Clock`).
        let hold = self.shared.clock.hold();
        let shared = self.shared.clone();
        let shutdown = self.shared.shutdown.clone();
        let run_id = self.run_id;
        self.shared.tracker.spawn(
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    outcome = local_activity::run(work) => {
                        if let Some((attempt, result)) = outcome {
                            let msg = RunMsg::LocalActivityDone { seq, attempt, result };
                            let _ = shared.deliver(run_id, msg);
                        }
                    }
                }
                drop(hold);
            }
            .instrument(span),
        );
    }

    /// A local activity ended: its one event, fed to the code.
    pub(super) fn local_done(
        &mut self,
        step: &mut Step,
        seq: u32,
        attempt: u32,
        result: Result<Payload, Failure>,
    ) {
        if self.locals.remove(&seq).is_none() || self.state.status.is_closed() {
            return;
        }
        let activity_type = self.machine.local_activity_type(seq).unwrap_or_default();
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
            .with_retry_state(crate::history::RetryState::NonRetryableFailure)),
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

    /// Tells every local activity in flight to stop (a close, a
    /// cancellation of the run); their ends are not recorded.
    pub(super) fn cancel_locals(&mut self) {
        for token in std::mem::take(&mut self.locals).into_values() {
            CancellationToken::cancel(&token);
        }
    }
}
