//! One activity attempt: wait for a slot on its task queue (unless it took
//! one when it was recorded), have its run record that it begins, run the
//! function under its timeouts and heartbeat watchdog, and turn what
//! happened into an outcome for the run.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::queue::{Slot, TaskQueue};
use super::shutdown::{Drain, Running};
use crate::activity::{ActivityContext, ActivityInfo, Beats, HeartbeatSink};
use crate::clock::{Clock, Hold};
use crate::history::{ActivityOptionsRecord, Failure, Payload, RunId};

/// Heartbeats are recorded at most this often without a heartbeat timeout
/// (Temporal's default throttle).
const DEFAULT_THROTTLE: Duration = Duration::from_secs(30);
/// The longest throttle interval (Temporal's maximum).
const MAX_THROTTLE: Duration = Duration::from_secs(60);

/// How an attempt gets going.
pub(super) enum Begin {
    /// A slot was free when the attempt was recorded, so its history says
    /// it began: the code runs at once.
    Now(Slot),
    /// No slot (or no worker) when it was recorded: the history says it
    /// has not begun. It waits for one, bounded by schedule-to-start (from
    /// when the attempt became due) and schedule-to-close (from
    /// scheduling); with a slot, `ask` asks the run to record the start,
    /// and the code runs only once that is durable. A run that was
    /// cancelled or closed meanwhile refuses (the receiver fails), and the
    /// attempt ends without running.
    Wait {
        ask: Box<dyn FnOnce() -> oneshot::Receiver<()> + Send>,
    },
}

pub(super) struct Attempt {
    /// The task queue's worker, or `None` when no worker serves the queue:
    /// the attempt then waits until the engine is opened with one.
    pub(super) queue: Option<Arc<TaskQueue>>,
    pub(super) workflow_id: String,
    pub(super) run_id: RunId,
    pub(super) workflow_type: String,
    pub(super) task_queue: String,
    pub(super) activity_type: String,
    pub(super) seq: u32,
    pub(super) attempt: u32,
    pub(super) input: Payload,
    pub(super) options: ActivityOptionsRecord,
    pub(super) scheduled_at: SystemTime,
    /// When this attempt became due (see `PendingActivity::due_at`).
    pub(super) due_at: SystemTime,
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
    Failure::new(error_type, message).with_non_retryable(non_retryable)
}

/// Which timeout bounds this attempt, and how long it has.
pub(super) fn attempt_limit(
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

/// Runs one attempt. `None` when it ended without beginning and has
/// nothing to report: it was cancelled while it waited, or its run refused
/// the start.
pub(super) async fn run(work: Attempt, begin: Begin) -> Option<AttemptOutcome> {
    let no_heartbeat = |result| {
        Some(AttemptOutcome {
            result,
            unsent_heartbeat: None,
            _running: None,
        })
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
    let (slot, running) = match begin {
        Begin::Now(slot) => (slot, None),
        Begin::Wait { ask } => {
            let slot = match wait_for_slot(&work).await {
                Ok(Some(slot)) => slot,
                Ok(None) => return None,
                Err(failure) => return no_heartbeat(Err(failure)),
            };
            // Refused before a start is recorded: nothing of it would run.
            let missing = |q: &Arc<TaskQueue>| q.activity(&work.activity_type).is_none();
            if work.queue.as_ref().is_some_and(missing) {
                return no_heartbeat(Err(not_registered(&work)));
            }
            // Shutting down: an attempt that has not begun waits for the
            // next open, with its start unrecorded.
            let Some(running) = work.drain.begin() else {
                return std::future::pending().await;
            };
            tokio::select! {
                agreed = ask() => agreed.ok()?,
                _ = work.cancel.cancelled() => return None,
            }
            (slot, Some(running))
        }
    };
    // A slot exists only where a worker serves the queue.
    let queue = work.queue.as_ref()?;
    let Some(function) = queue.activity(&work.activity_type) else {
        return no_heartbeat(Err(not_registered(&work)));
    };
    // Shutting down: an attempt that has not begun waits for the next open.
    let Some(running) = running.or_else(|| work.drain.begin()) else {
        return std::future::pending().await;
    };
    let beats = Arc::new(Mutex::new(Beats {
        last_sent: None,
        unsent: None,
        last_beat: work.clock.instant(),
    }));
    let sleepers = work.clock.sleepers();
    let started_time = work.clock.now();
    // Wall time, whatever clock the workflows see: what the attempt cost.
    let began = std::time::Instant::now();
    let labels = (work.activity_type.clone(), work.task_queue.clone());
    crate::metrics::activity_started(
        &labels.0,
        &labels.1,
        started_time.duration_since(work.due_at).unwrap_or_default(),
    );
    let limit = attempt_limit(&work.options, work.scheduled_at, started_time);
    let info = ActivityInfo {
        workflow_id: work.workflow_id,
        run_id: work.run_id,
        workflow_type: work.workflow_type,
        sequence: work.seq,
        activity_id: work.seq.to_string(),
        activity_type: work.activity_type,
        task_queue: work.task_queue,
        attempt: work.attempt,
        scheduled_time: work.scheduled_at,
        current_attempt_scheduled_time: work.due_at,
        started_time,
        schedule_to_close_timeout: work.options.schedule_to_close_timeout,
        start_to_close_timeout: work.options.start_to_close_timeout,
        heartbeat_timeout: work.options.heartbeat_timeout,
        deadline: limit.and_then(|(left, _, _)| started_time.checked_add(left)),
    };
    let ctx = ActivityContext {
        info: Arc::new(info),
        heartbeat_details: work.heartbeat_details,
        clock: work.clock.clone(),
        sleepers: sleepers.clone(),
        throttle: throttle(&work.options),
        beats: beats.clone(),
        sink: work.sink,
        cancel: work.cancel.clone(),
    };
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
    crate::metrics::activity_finished(&labels.0, &labels.1, began.elapsed(), result.is_err());
    // A sleep of a clone of the context that outlives the attempt lets go
    // of nothing from here on: the attempt's hold goes with its outcome.
    sleepers.close();
    drop(slot);
    let unsent_heartbeat = beats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unsent
        .take();
    Some(AttemptOutcome {
        result,
        unsent_heartbeat,
        _running: Some(running),
    })
}

/// The failure of an attempt whose activity type the queue's worker does
/// not have.
fn not_registered(work: &Attempt) -> Failure {
    failure(
        "ActivityNotRegistered",
        format!(
            "activity type {:?} is not registered on task queue {:?}; register it on the worker",
            work.activity_type, work.task_queue
        ),
        false,
    )
}

/// Waits for a slot on the attempt's queue (for ever where no worker serves
/// it, as a Temporal activity waits for a poller), bounded by whichever of
/// schedule-to-start (counted from `due_at`) and schedule-to-close (counted
/// from scheduling) ends first: both count while an activity waits, whatever
/// it waits for. `Ok(None)` when the attempt was cancelled meanwhile.
async fn wait_for_slot(work: &Attempt) -> Result<Option<Slot>, Failure> {
    let now = work.clock.now();
    let left = |limit: Duration, since: SystemTime| {
        limit.saturating_sub(now.duration_since(since).unwrap_or_default())
    };
    let waiting_for = match &work.queue {
        Some(_) => format!("a worker slot on task queue {:?}", work.task_queue),
        None => format!(
            "a worker: none of this engine serves task queue {:?}",
            work.task_queue
        ),
    };
    let to_start = work.options.schedule_to_start_timeout.map(|limit| {
        let message = format!("waited {limit:?} (schedule-to-start) for {waiting_for}");
        (left(limit, work.due_at), "ScheduleToStartTimeout", message)
    });
    let to_close = work.options.schedule_to_close_timeout.map(|limit| {
        let message = format!(
            "the activity did not begin within its schedule-to-close timeout of {limit:?}; \
             it waited for {waiting_for}"
        );
        (
            left(limit, work.scheduled_at),
            "ScheduleToCloseTimeout",
            message,
        )
    });
    let bound = match (to_start, to_close) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    let bounded = async {
        match (&work.queue, bound) {
            // Nothing runs for it meanwhile, so a virtual clock may skip.
            (None, Some((limit, kind, message))) => {
                work.clock.idle_sleep(limit).await;
                Err(failure(kind, message, true))
            }
            (None, None) => {
                work.clock.idle_until(None).await;
                std::future::pending().await
            }
            (Some(queue), Some((limit, kind, message))) => work
                .clock
                .timeout(limit, queue.acquire())
                .await
                .map_err(|_| failure(kind, message, true)),
            (Some(queue), None) => Ok(queue.acquire().await),
        }
    };
    tokio::select! {
        slot = bounded => slot.map(Some),
        _ = work.cancel.cancelled() => Ok(None),
    }
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
            // The next deadline is registered before the hold goes, so the
            // clock cannot skip past it in between.
            let sleep = clock.sleep_until_held(next);
            drop(hold);
            hold = sleep.await;
        }
    }
}
