//! Draining at shutdown: once it begins, no activity attempt begins, and
//! the attempts already running get a grace period to finish, with their
//! results committed, before the engine stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Actor, RunMsg, RunSlot, Shared};

/// Counts the attempts whose code runs, and says when shutdown began.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// Cancelled when shutdown begins: clients are refused from then on,
    /// and no attempt's code starts.
    began: CancellationToken,
    /// Attempts whose code runs, or whose outcome has not reached its run.
    running: AtomicUsize,
    /// Told whenever `running` drops to zero.
    idle: Notify,
}

/// Held from the moment an attempt's code starts until its run has taken
/// the outcome; see [`Drain::begin`].
#[derive(Debug)]
pub(crate) struct Running(Arc<Drain>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl Drain {
    /// Counts an attempt whose code is about to start; `None` once shutdown
    /// began (the attempt then never starts, and runs after the next open).
    pub(crate) fn begin(self: &Arc<Self>) -> Option<Running> {
        // Counted before the check: a drain that began after the check
        // sees the count, one that began before is seen by the check.
        self.running.fetch_add(1, Ordering::SeqCst);
        if self.began.is_cancelled() {
            self.end();
            return None;
        }
        Some(Running(self.clone()))
    }

    fn end(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// True once shutdown began.
    pub(crate) fn began(&self) -> bool {
        self.began.is_cancelled()
    }

    /// Begins the drain: from now on clients are refused and no attempt
    /// starts.
    pub(crate) fn start(&self) {
        self.began.cancel();
    }

    /// Waits until no attempt runs, at most until `deadline`; returns how
    /// many still run then.
    async fn wait_idle(&self, deadline: Instant) -> usize {
        let idle = async {
            loop {
                let notified = self.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout_at(deadline, idle).await;
        self.running.load(Ordering::SeqCst)
    }
}

impl Shared {
    /// Lets running attempts finish for up to `grace` after
    /// [`Drain::start`], and waits until every live run has committed what
    /// they reported, all within `grace` in total. Returns how many
    /// attempts were still running when their time ran out: those are
    /// abandoned, and run again after the next open, as after a crash.
    pub(crate) async fn drain(&self, grace: Duration) -> usize {
        if grace.is_zero() {
            return self.drain.running.load(Ordering::SeqCst);
        }
        // Real time, not the engine's clock: the grace bounds how long the
        // process takes to stop, whatever time the workflows see. One
        // deadline for both waits, so shutdown takes at most `grace` here.
        let deadline = Instant::now().checked_add(grace).unwrap_or_else(|| {
            // Longer than the clock holds: as good as no bound (tokio's
            // own "far future" is thirty years off).
            Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600)
        });
        let abandoned = self.drain.wait_idle(deadline).await;
        // Every finished attempt's outcome was handed to its run before its
        // count was released; a description is answered only after the
        // commit of every message before it, so once each live run has
        // answered one, those outcomes are durable.
        let answers: Vec<_> = {
            let runs = self.runs();
            runs.values()
                .filter_map(|slot| match slot {
                    RunSlot {
                        actor: Actor::Live(tx),
                        ..
                    } => {
                        let (reply, answer) = tokio::sync::oneshot::channel();
                        let msg = (RunMsg::Describe { reply }, self.clock.hold());
                        tx.send(Box::new(msg)).ok().map(|()| answer)
                    }
                    _ => None,
                })
                .collect()
        };
        let _ = tokio::time::timeout_at(deadline, futures::future::join_all(answers)).await;
        abandoned
    }
}
