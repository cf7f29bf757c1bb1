//! One task that keeps the due times of the near future (durable timers,
//! retry delays, run timeouts, wake-ups of runs not in memory) and delivers
//! each to its run when it comes. Deliveries go by run ID, so a run evicted
//! from memory in the meantime is loaded again to take it.
//!
//! Memory holds only what is due within [`HORIZON`]: later due times are
//! dropped here, because every run's earliest due time is in the file's
//! wake-up index (committed before any timer is scheduled), and the task
//! reads the index a slice at a time as the horizon moves on. Its first read
//! also takes every overdue wake-up: that is how runs resume after a restart.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::run::RunMsg;
use crate::history::RunId;

/// How far ahead due times are kept in memory.
const HORIZON: Duration = Duration::from_secs(10);
/// How often the wake-up index is read for the next slice.
const SCAN_EVERY: Duration = Duration::from_secs(1);

struct Due {
    at: Instant,
    run_id: RunId,
    msg: RunMsg,
}

/// Handle to the timer task.
#[derive(Debug, Clone)]
pub(crate) struct Timers {
    tx: mpsc::UnboundedSender<Due>,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The due times sent to a [`Timers`] handle, for the timer task to serve
/// once it is started ([`TimerQueue::start`]).
pub(crate) struct TimerQueue(mpsc::UnboundedReceiver<Due>);

impl Timers {
    /// A handle and the queue it feeds; nothing is delivered until the
    /// queue's task is started.
    pub(crate) fn new() -> (Self, TimerQueue) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Timers { tx }, TimerQueue(rx))
    }

    /// Delivers `msg` to run `run_id` at wall-clock time `at` (at once if it
    /// passed). Due times past the horizon are left to the wake-up index.
    pub(crate) fn schedule(&self, at: SystemTime, run_id: RunId, msg: RunMsg) {
        let now = SystemTime::now();
        if at > now + HORIZON {
            return;
        }
        let delay = at.duration_since(now).unwrap_or_default();
        let due = Due {
            at: Instant::now() + delay,
            run_id,
            msg,
        };
        // The task is gone only during shutdown, when nothing is due anymore.
        let _ = self.tx.send(due);
    }
}

impl TimerQueue {
    /// Starts the timer task; it ends when `shutdown` is cancelled or
    /// `shared` is gone. Start it only once `shared` can be upgraded (not
    /// from inside `Arc::new_cyclic`): the task stops for good the first
    /// time it cannot reach `shared`.
    pub(crate) fn start(
        self,
        shared: Weak<Shared>,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) {
        tracker.spawn(run(shared, self.0, shutdown));
    }
}

async fn run(
    shared: Weak<Shared>,
    mut rx: mpsc::UnboundedReceiver<Due>,
    shutdown: CancellationToken,
) {
    // Keyed by due time, then arrival, so equal times fire in order.
    let mut queue: BTreeMap<(Instant, u64), Due> = BTreeMap::new();
    let mut counter = 0u64;
    // Wake-ups before this time (ms since the epoch) have been read.
    let mut read_until = 0u64;
    let mut scan = tokio::time::interval(SCAN_EVERY);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = queue.keys().next().map(|(at, _)| *at);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = rx.recv() => match received {
                Some(due) => {
                    counter += 1;
                    queue.insert((due.at, counter), due);
                }
                None => return,
            },
            _ = scan.tick() => {
                // The task starts once `shared` exists, so this fails only
                // when the engine is gone.
                let Some(shared) = shared.upgrade() else { return };
                let until = millis(SystemTime::now() + HORIZON);
                match shared.store.wakeups(read_until, until) {
                    Ok(wakeups) => {
                        for (wake, run_id) in wakeups {
                            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(wake);
                            let delay = at.duration_since(SystemTime::now()).unwrap_or_default();
                            counter += 1;
                            let due = Due { at: Instant::now() + delay, run_id, msg: RunMsg::Wake };
                            queue.insert((due.at, counter), due);
                        }
                        read_until = until;
                    }
                    // Read again next tick, from the same place.
                    Err(e) => tracing::warn!(error = %e, "reading the wake-up index failed"),
                }
            }
            _ = sleep_until(next) => {
                let Some(shared) = shared.upgrade() else { return };
                let now = Instant::now();
                while let Some(entry) = queue.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let due = entry.remove();
                    // A run that closed in the meantime needs nothing.
                    let _ = shared.deliver(due.run_id, due.msg);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
