//! A local activity's attempts, run in place by the workflow's own worker:
//! no task queue slot, nothing recorded between attempts, retries after
//! their backoff in the same task, and one outcome for the run at the end;
//! a backoff longer than the retry threshold ends the task instead, to be
//! recorded and waited for as a durable timer.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::attempt::attempt_limit;
use crate::activity::{ActivityContext, ActivityFn, ActivityInfo, Beats, retry};
use crate::clock::Clock;
use crate::history::{ActivityOptionsRecord, Failure, Payload, RetryState, RunId};
use crate::workflow::LocalRequest;

/// A local activity to run.
pub(super) struct LocalWork {
    /// The function, from the workflow's task queue; `None` when that
    /// queue's worker has no such activity.
    pub(super) function: Option<ActivityFn>,
    pub(super) workflow_id: String,
    pub(super) run_id: RunId,
    pub(super) workflow_type: String,
    pub(super) task_queue: String,
    pub(super) activity_type: String,
    pub(super) seq: u32,
    pub(super) input: Payload,
    pub(super) options: ActivityOptionsRecord,
    /// The attempt to begin with: 1, or the one after a recorded backoff.
    pub(super) first_attempt: u32,
    /// A longer backoff ends this task and is recorded instead of slept.
    pub(super) retry_threshold: Duration,
    /// When the code asked for it: schedule-to-close counts from here.
    pub(super) scheduled_at: SystemTime,
    pub(super) clock: Clock,
    /// Stops it with nothing recorded (the run closed, was cancelled, or
    /// the engine shuts down).
    pub(super) cancel: CancellationToken,
    /// The code cancelled it (a child of `cancel`): the attempt is told,
    /// and no later attempt begins.
    pub(super) requested: CancellationToken,
}

/// How a local activity's task ended.
#[derive(Debug)]
pub(crate) enum LocalEnd {
    /// Its end: the last attempt, and its value or final failure (with
    /// the retry state that ended retries).
    Done {
        attempt: u32,
        result: Result<Payload, Failure>,
    },
    /// Attempt `attempt` failed and the backoff before the next is over
    /// the retry threshold: recorded, and waited for as a durable timer.
    Backoff {
        attempt: u32,
        failure: Failure,
        next_attempt_at: SystemTime,
        /// When the code asked for it (kept for the next attempts).
        scheduled_at: SystemTime,
    },
}

impl LocalWork {
    /// The request again, to run its next attempt after a backoff.
    pub(super) fn into_request(self) -> LocalRequest {
        LocalRequest {
            seq: self.seq,
            activity_type: self.activity_type,
            input: self.input,
            options: self.options,
            retry_threshold: self.retry_threshold,
        }
    }
}

/// The failure of a local activity the code cancelled before its next
/// attempt began (as an activity's, see `activity_cancel`).
pub(crate) fn cancelled_before_attempt() -> Failure {
    Failure::new(
        super::run::ACTIVITY_CANCELLED,
        "the workflow cancelled the local activity before this attempt began",
    )
    .with_non_retryable(true)
    .with_retry_state(RetryState::CancelRequested)
}

/// The recorded end of a local activity the workflow cancelled while an
/// attempt after a recorded backoff ran (try-cancel, wait-cancellation-
/// requested or abandon): that attempt's own end is not recorded.
pub(crate) fn cancelled_during_attempt() -> Failure {
    Failure::new(
        super::run::ACTIVITY_CANCELLED,
        "the workflow cancelled the local activity while this attempt ran; its end is not recorded",
    )
    .with_non_retryable(true)
    .with_retry_state(RetryState::CancelRequested)
}

/// Runs a local activity's attempts. `None` when it was stopped first
/// (its run closed or was cancelled): nothing to record.
pub(super) async fn run(work: &LocalWork) -> Option<LocalEnd> {
    let Some(function) = work.function.clone() else {
        let failure = Failure::new(
            "ActivityNotRegistered",
            format!(
                "local activity type {:?} is not registered on the workflow's task queue {:?}; \
                 register it on the worker that runs the workflow",
                work.activity_type, work.task_queue
            ),
        )
        .with_non_retryable(true)
        .with_retry_state(RetryState::NonRetryableFailure);
        return Some(LocalEnd::Done {
            attempt: work.first_attempt,
            result: Err(failure),
        });
    };
    let mut attempt = work.first_attempt;
    loop {
        if work.cancel.is_cancelled() {
            return None;
        }
        if work.requested.is_cancelled() {
            return Some(LocalEnd::Done {
                attempt,
                result: Err(cancelled_before_attempt()),
            });
        }
        let outcome = tokio::select! {
            biased;
            _ = work.cancel.cancelled() => return None,
            outcome = one_attempt(work, &function, attempt) => outcome,
        };
        let mut failure = match outcome {
            Ok(result) => {
                return Some(LocalEnd::Done {
                    attempt,
                    result: Ok(result),
                });
            }
            Err(failure) => failure,
        };
        // Cancelled by the code: its failure is final.
        if work.requested.is_cancelled() {
            failure.retry_state = RetryState::CancelRequested;
            return Some(LocalEnd::Done {
                attempt,
                result: Err(failure),
            });
        }
        let now = work.clock.now();
        let next = retry::next_attempt_at(
            &work.options,
            attempt,
            &failure,
            work.scheduled_at,
            now,
            false,
        );
        match next {
            Ok(at) => {
                let backoff = at.duration_since(now).unwrap_or_default();
                if backoff > work.retry_threshold {
                    // Too long to hold the worker: recorded, and waited for
                    // as a durable timer (Temporal's local_retry_threshold).
                    return Some(LocalEnd::Backoff {
                        attempt,
                        failure,
                        next_attempt_at: at,
                        scheduled_at: work.scheduled_at,
                    });
                }
                // In place: a short backoff is a sleep of this task, not a
                // durable timer (a restart runs it again from attempt 1).
                let sleepers = work.clock.sleepers();
                tokio::select! {
                    biased;
                    _ = work.cancel.cancelled() => return None,
                    _ = work.requested.cancelled() => {}
                    () = sleepers.sleep(backoff) => {}
                }
                sleepers.close();
                attempt = attempt.saturating_add(1);
            }
            Err(why) => {
                failure.retry_state = why;
                return Some(LocalEnd::Done {
                    attempt,
                    result: Err(failure),
                });
            }
        }
    }
}

/// One attempt under its start-to-close (and what is left of its
/// schedule-to-close) timeout.
async fn one_attempt(
    work: &LocalWork,
    function: &ActivityFn,
    attempt: u32,
) -> Result<Payload, Failure> {
    let started_time = work.clock.now();
    let limit = attempt_limit(&work.options, work.scheduled_at, started_time);
    let sleepers = work.clock.sleepers();
    let info = ActivityInfo {
        workflow_id: work.workflow_id.clone(),
        run_id: work.run_id,
        workflow_type: work.workflow_type.clone(),
        sequence: work.seq,
        activity_id: work.seq.to_string(),
        activity_type: work.activity_type.clone(),
        task_queue: work.task_queue.clone(),
        attempt,
        scheduled_time: work.scheduled_at,
        current_attempt_scheduled_time: started_time,
        started_time,
        schedule_to_close_timeout: work.options.schedule_to_close_timeout,
        start_to_close_timeout: work.options.start_to_close_timeout,
        heartbeat_timeout: None,
        deadline: limit.and_then(|(left, _, _)| started_time.checked_add(left)),
    };
    let ctx = ActivityContext {
        info: Arc::new(info),
        heartbeat_details: None,
        clock: work.clock.clone(),
        sleepers: sleepers.clone(),
        throttle: Duration::from_secs(30),
        beats: Arc::new(Mutex::new(Beats {
            last_sent: None,
            unsent: None,
            last_beat: work.clock.instant(),
        })),
        // A local activity's heartbeats are not recorded (as in Temporal).
        sink: Arc::new(|_| {}),
        cancel: work.requested.child_token(),
    };
    let call = AssertUnwindSafe(function(ctx, work.input.clone())).catch_unwind();
    let outcome = match limit {
        Some((limit, kind, non_retryable)) => match work.clock.timeout(limit, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                sleepers.close();
                return Err(Failure::new(
                    kind,
                    format!("the attempt did not finish within {limit:?}"),
                )
                .with_non_retryable(non_retryable));
            }
        },
        None => call.await,
    };
    sleepers.close();
    match outcome {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(error)) => Err(error.into_failure()),
        Err(panic) => Err(Failure::new(
            "ActivityPanic",
            format!("the activity panicked: {}", crate::panic::message(&*panic)),
        )),
    }
}
