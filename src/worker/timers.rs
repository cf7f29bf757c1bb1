//! One task that keeps every due time (durable timers, retry delays, run
//! timeouts, wake-ups of runs not in memory) and delivers each to its run
//! when it comes. Deliveries go by run ID, so a run evicted from memory in
//! the meantime is loaded again to take it.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::run::RunMsg;
use crate::history::RunId;

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

impl Timers {
    /// Starts the timer task; it ends when `shutdown` is cancelled.
    pub(crate) fn start(
        shared: Weak<Shared>,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(run(shared, rx, shutdown));
        Timers { tx }
    }

    /// Delivers `msg` to run `run_id` at wall-clock time `at` (at once if it
    /// passed).
    pub(crate) fn schedule(&self, at: SystemTime, run_id: RunId, msg: RunMsg) {
        let delay = at.duration_since(SystemTime::now()).unwrap_or_default();
        let due = Due {
            at: Instant::now() + delay,
            run_id,
            msg,
        };
        // The task is gone only during shutdown, when nothing is due anymore.
        let _ = self.tx.send(due);
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
