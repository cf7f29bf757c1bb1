//! One activity attempt: wait for a slot on its task queue, run the function
//! under its timeouts and heartbeat watchdog, and turn what happened into an
//! outcome for the run.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::queue::TaskQueue;
use super::shutdown::{Drain, Running};
use crate::activity::{ActivityContext, Beats, HeartbeatSink};
use crate::clock::{Clock, Hold};
use crate::history::{ActivityOptionsRecord, Failure, Payload, RunId};

/// Heartbeats are recorded at most this often without a heartbeat timeout
/// (Temporal's default throttle).
const DEFAULT_THROTTLE: Duration = Duration::from_secs(30);
/// The longest throttle interval (Temporal's maximum).
const MAX_THROTTLE: Duration = Duration::from_secs(60);

pub(super) struct Attempt {
    /// The task queue's worker, or `None` when no worker serves the queue:
    /// the attempt then waits until the engine is opened with one.
    pub(super) queue: Option<Arc<TaskQueue>>,
    pub(super) workflow_id: String,
    pub(super) run_id: RunId,
    pub(super) task_queue: String,
    pub(super) activity_type: String,
    pub(super) seq: u32,
    pub(super) attempt: u32,
    pub(super) input: Payload,
    pub(super) options: ActivityOptionsRecord,
    pub(super) scheduled_at: SystemTime,
    pub(super) heartbeat_details: Option<Payload>,
    /// The engine's clock: every timeout of the attempt runs on it.
    pub(super) clock: Clock,
    pub(super) sink: HeartbeatSink,
    pub(super) cancel: CancellationToken,
    /// Counts the attempt while its code runs, for a draining shutdown.
    pub(super) drain: Arc<Drain>,
}

/// What an attempt reports to its run.
#[derive(Debug)]
pub(crate) struct AttemptOutcome {
    pub(crate) result: Result<Payload, Failure>,
    /// Heartbeat details given after the last recorded ones.
    pub(crate) unsent_heartbeat: Option<Payload>,
    /// Held until the run has taken this outcome, so a draining shutdown
    /// waits for it.
    pub(crate) _running: Option<Running>,
}

fn failure(error_type: &str, message: String, non_retryable: bool) -> Failure {
    Failure {
        error_type: error_type.to_string(),
        message,
        non_retryable,
    }
}

/// Which timeout bounds this attempt, and how long it has.
fn attempt_limit(
    options: &ActivityOptionsRecord,
    scheduled_at: SystemTime,
    now: SystemTime,
) -> Option<(Duration, &'static str, bool)> {
    let start_to_close = options
        .start_to_close_timeout
        .map(|d| (d, "StartToCloseTimeout", false));
    let schedule_to_close = options.schedule_to_close_timeout.map(|d| {
        let elapsed = now.duration_since(scheduled_at).unwrap_or_default();
        (d.saturating_sub(elapsed), "ScheduleToCloseTimeout", true)
    });
    match (start_to_close, schedule_to_close) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn throttle(options: &ActivityOptionsRecord) -> Duration {
    options
        .heartbeat_timeout
        .map(|t| t.mul_f64(0.8))
        .unwrap_or(DEFAULT_THROTTLE)
        .min(MAX_THROTTLE)
}

pub(super) async fn run(work: Attempt) -> AttemptOutcome {
    let no_heartbeat = |result| AttemptOutcome {
        result,
        unsent_heartbeat: None,
        _running: None,
    };
    if work.task_queue.is_empty() {
        // No worker can ever serve it: fail now rather than wait forever.
        return no_heartbeat(Err(failure(
            "InvalidTaskQueue",
            format!(
                "activity type {:?} was scheduled on a task queue with an empty name; \
                 name a task queue in its ActivityOptions, or leave the workflow's",
                work.activity_type
            ),
            true,
        )));
    }
    let Some(queue) = work.queue else {
        // No worker serves this queue: wait, as a Temporal activity waits
        // for a poller (bounded only by its schedule-to-start timeout).
        // Nothing runs meanwhile, so a virtual clock may skip.
        return match work.options.schedule_to_start_timeout {
            Some(limit) => {
                work.clock.idle_sleep(limit).await;
                no_heartbeat(Err(schedule_to_start_failure(limit, &work.task_queue)))
            }
            None => {
                work.clock.idle_until(None).await;
                std::future::pending().await
            }
        };
    };
    let slot = match work.options.schedule_to_start_timeout {
        Some(limit) => match work.clock.timeout(limit, queue.acquire()).await {
            Ok(slot) => slot,
            Err(_) => return no_heartbeat(Err(schedule_to_start_failure(limit, &work.task_queue))),
        },
        None => queue.acquire().await,
    };
    let Some(function) = queue.activity(&work.activity_type) else {
        return no_heartbeat(Err(failure(
            "ActivityNotRegistered",
            format!(
                "activity type {:?} is not registered on task queue {:?}; register it on the worker",
                work.activity_type, work.task_queue
            ),
            false,
        )));
    };
    // Shutting down: an attempt that has not begun waits for the next open.
    let Some(running) = work.drain.begin() else {
        return std::future::pending().await;
    };
    let beats = Arc::new(Mutex::new(Beats {
        last_sent: None,
        unsent: None,
        last_beat: work.clock.instant(),
    }));
    let ctx = ActivityContext {
        workflow_id: work.workflow_id,
        run_id: work.run_id,
        activity_type: work.activity_type,
        seq: work.seq,
        attempt: work.attempt,
        scheduled_time: work.scheduled_at,
        heartbeat_details: work.heartbeat_details,
        clock: work.clock.clone(),
        throttle: throttle(&work.options),
        beats: beats.clone(),
        sink: work.sink,
        cancel: work.cancel.clone(),
    };
    let limit = attempt_limit(&work.options, work.scheduled_at, work.clock.now());
    let call = AssertUnwindSafe(function(ctx, work.input)).catch_unwind();
    let timed = async {
        let outcome = match limit {
            Some((limit, kind, non_retryable)) => match work.clock.timeout(limit, call).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(failure(
                        kind,
                        format!("the attempt did not finish within {limit:?}"),
                        non_retryable,
                    ));
                }
            },
            None => call.await,
        };
        match outcome {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(error.into_failure()),
            Err(panic) => Err(failure(
                "ActivityPanic",
                format!("the activity panicked: {}", crate::panic::message(&*panic)),
                false,
            )),
        }
    };
    let mut _watchdog_hold = None;
    let result = tokio::select! {
        result = timed => result,
        (timeout, hold) = heartbeat_watchdog(&work.clock, &beats, work.options.heartbeat_timeout) => {
            // Kept until the end: the activity's future goes first.
            _watchdog_hold = Some(hold);
            // Tell the activity to stop; its result no longer counts.
            work.cancel.cancel();
            Err(failure(
                "HeartbeatTimeout",
                format!("no heartbeat within {timeout:?}"),
                false,
            ))
        }
    };
    drop(slot);
    let unsent_heartbeat = beats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unsent
        .take();
    AttemptOutcome {
        result,
        unsent_heartbeat,
        _running: Some(running),
    }
}

fn schedule_to_start_failure(limit: Duration, task_queue: &str) -> Failure {
    failure(
        "ScheduleToStartTimeout",
        format!("no worker slot on task queue {task_queue:?} within {limit:?}"),
        true,
    )
}

/// Resolves when the attempt has gone longer than `timeout` without a
/// heartbeat; never without a timeout. The first deadline is registered
/// with the clock at once, before the activity first runs.
/// Returns a hold on the clock, to keep until the attempt's future is gone.
fn heartbeat_watchdog<'a>(
    clock: &'a Clock,
    beats: &'a Mutex<Beats>,
    timeout: Option<Duration>,
) -> impl Future<Output = (Duration, Hold)> + 'a {
    let deadline = |beats: &Mutex<Beats>, timeout: Duration| {
        let last = beats.lock().unwrap_or_else(|p| p.into_inner()).last_beat;
        // A deadline past what the clock holds never comes.
        last.checked_add(timeout)
    };
    let first = timeout.map(|t| clock.sleep_until_held(deadline(beats, t)));
    async move {
        let (Some(timeout), Some(first)) = (timeout, first) else {
            return std::future::pending().await;
        };
        let mut hold = first.await;
        loop {
            let next = deadline(beats, timeout);
            if next.is_some_and(|at| clock.instant() >= at) {
                return (timeout, hold);
            }
            drop(hold);
            hold = clock.sleep_until_held(next).await;
        }
    }
}
