//! One task that keeps every due time (durable timers, retry delays) and
//! sends each to its run when it comes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::run::RunMsg;

struct Due {
    at: Instant,
    run: mpsc::UnboundedSender<RunMsg>,
    msg: RunMsg,
}

/// Handle to the timer task.
#[derive(Debug, Clone)]
pub(crate) struct Timers {
    tx: mpsc::UnboundedSender<Due>,
}

impl std::fmt::Debug for Due {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Due").field("at", &self.at).finish()
    }
}

impl Timers {
    /// Starts the timer task; it ends when `shutdown` is cancelled.
    pub(crate) fn start(
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(run(rx, shutdown));
        Timers { tx }
    }

    /// Sends `msg` to `run` at wall-clock time `at` (at once if it passed).
    pub(crate) fn schedule(&self, at: SystemTime, run: mpsc::UnboundedSender<RunMsg>, msg: RunMsg) {
        let delay = at.duration_since(SystemTime::now()).unwrap_or_default();
        let due = Due {
            at: Instant::now() + delay,
            run,
            msg,
        };
        // The task is gone only during shutdown, when nothing is due anymore.
        let _ = self.tx.send(due);
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Due>, shutdown: CancellationToken) {
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
                let now = Instant::now();
                while let Some(entry) = queue.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let due = entry.remove();
                    // A run that closed in the meantime needs nothing.
                    let _ = due.run.send(due.msg);
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
