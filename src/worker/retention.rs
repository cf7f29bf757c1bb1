//! The retention sweeper: a background task that removes the closed runs
//! whose close time is older than the engine's retention period (see
//! [`EngineBuilder::retention`](crate::EngineBuilder::retention)).
//!
//! Every [`period`] it asks the file (a read) whether any run closed before
//! `now - retention`; if so it removes them in bounded batches, each its
//! own write operation through the group-commit writer, one at a time and
//! paced (see [`PACING`]), so user commits share those commits, never wait
//! behind more than one batch, and rarely meet one. The engine decides
//! "now"; the store only compares.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Shared;
use crate::store::{WriteOp, WriteOutcome};

/// After each batch the sweeper pauses for this many times as long as the
/// batch held the writer, so that sweeping takes at most about an eighth
/// of the writer's time however large the backlog (a file opened with a
/// retention for the first time may hold years of closed runs): the
/// commits of a latency-bound caller (one workflow stepping through
/// activities) meet a batch rarely. Under a steady load that eighth still
/// removes several thousand runs a second.
const PACING: u32 = 7;
/// The longest pause between two batches.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How often the sweeper looks for expired runs: a quarter of the
/// retention, between 50 ms and one minute. A run is thus removed at most
/// about a quarter of the retention (or a minute) after it expires.
pub(crate) fn period(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Starts the sweeper, tracked by the engine's tracker and stopped by its
/// shutdown token.
pub(crate) fn spawn(shared: &Arc<Shared>, retention: Duration) {
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    let every = period(retention);
    // Looks every period of the engine's clock; a virtual clock never skips
    // to a look, it looks whenever the clock has passed one. Each look is
    // due a period after the last one began (the first, after the open):
    // counted from the end of a sweep, or from the task's first poll, an
    // advance made meanwhile would be missed, and with no later advance
    // the look would never come.
    let shared_clock = shared.clock.clone();
    let mut next = shared_clock.instant().checked_add(every);
    shared.tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = shared_clock.passive_until(next) => {}
            }
            next = shared_clock.instant().checked_add(every);
            if !sweep(&weak, retention).await {
                return;
            }
        }
    });
}

/// One pass: removes every run expired by now, a batch at a time. False
/// once the engine is gone.
async fn sweep(weak: &Weak<Shared>, retention: Duration) -> bool {
    let mut removed = 0usize;
    loop {
        let Some(shared) = weak.upgrade() else {
            return false;
        };
        if shared.shutdown.is_cancelled() {
            return false;
        }
        // A retention longer than the time since the epoch removes nothing.
        let Some(cutoff) = shared.clock.now().checked_sub(retention) else {
            return true;
        };
        match shared.store.any_closed_by(cutoff).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "retention: the file could not be read; trying again later");
                break;
            }
        }
        match shared.store.write(WriteOp::Sweep { cutoff }).await {
            Ok(WriteOutcome::Swept { runs, more, took }) => {
                removed += runs.len();
                // Closed runs have left memory already; this is for one
                // still on its way out.
                for run_id in runs {
                    shared.unregister(run_id);
                }
                if !more {
                    break;
                }
                let shutdown = shared.shutdown.clone();
                drop(shared);
                // Real time, not the engine's clock: the pause shares the
                // disk's writer, whatever time the workflows see.
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep((took * PACING).min(MAX_PAUSE)) => {}
                }
            }
            Ok(other) => {
                tracing::warn!(?other, "retention: the store answered a sweep oddly");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: a sweep failed; trying again later");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::debug!(runs = removed, "retention: removed expired closed runs");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_a_quarter_of_the_retention_within_bounds() {
        assert_eq!(period(Duration::from_millis(1)), Duration::from_millis(50));
        assert_eq!(period(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(
            period(Duration::from_secs(72 * 3600)),
            Duration::from_secs(60)
        );
    }
}
