//! `ActivityContext`: what an activity attempt knows about itself, and how it
//! heartbeats and learns that it was cancelled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use super::ActivityInfo;
use crate::clock::{Clock, Sleepers};
use crate::history::{Payload, PayloadError, RunId};

/// Where an attempt's heartbeat details go to be recorded durably; called at
/// most once per throttle interval.
pub(crate) type HeartbeatSink = Arc<dyn Fn(Payload) + Send + Sync>;

/// Heartbeat bookkeeping shared by the clones of one attempt's context.
#[derive(Debug)]
pub(crate) struct Beats {
    /// When details were last sent to be recorded.
    pub(crate) last_sent: Option<Instant>,
    /// Details given since the last send, flushed when the attempt ends.
    pub(crate) unsent: Option<Payload>,
    /// When `heartbeat` was last called (for the heartbeat timeout).
    pub(crate) last_beat: Instant,
}

/// Passed to every activity attempt.
#[derive(Clone)]
pub struct ActivityContext {
    /// Shared by the clones of the context: it never changes in an attempt.
    pub(crate) info: Arc<ActivityInfo>,
    pub(crate) heartbeat_details: Option<Payload>,
    /// The engine's clock (heartbeat throttling, [`ActivityContext::sleep`]).
    pub(crate) clock: Clock,
    /// This attempt's sleeps in progress, shared by the context's clones:
    /// the attempt lets go of the test engine's clock while any waits.
    pub(crate) sleepers: Sleepers,
    pub(crate) throttle: Duration,
    pub(crate) beats: Arc<Mutex<Beats>>,
    pub(crate) sink: HeartbeatSink,
    pub(crate) cancel: CancellationToken,
}

impl std::fmt::Debug for ActivityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityContext")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ActivityContext {
    /// Everything the attempt knows about itself: workflow and run, the
    /// activity's sequence number, type and task queue, the attempt, its
    /// times and deadlines (Temporal's `ActivityInfo`).
    ///
    /// ```
    /// use steadfast::{ActivityContext, ActivityError};
    /// async fn charge(ctx: ActivityContext, cents: u64) -> Result<String, ActivityError> {
    ///     let info = ctx.info();
    ///     Ok(format!("charge {cents} for activity {} of run {}", info.sequence, info.run_id))
    /// }
    /// ```
    pub fn info(&self) -> &ActivityInfo {
        &self.info
    }

    /// The workflow that scheduled the activity.
    pub fn workflow_id(&self) -> &str {
        &self.info.workflow_id
    }

    /// The run that scheduled the activity.
    pub fn run_id(&self) -> RunId {
        self.info.run_id
    }

    /// The activity's registered name.
    pub fn activity_type(&self) -> &str {
        &self.info.activity_type
    }

    /// This attempt's number, starting at 1. An attempt cut off by a crash
    /// counts, so the attempt after it has the next number; one that was
    /// still waiting for a worker slot keeps its number.
    pub fn attempt(&self) -> u32 {
        self.info.attempt
    }

    /// When the workflow scheduled the activity (the first attempt's schedule).
    pub fn scheduled_time(&self) -> SystemTime {
        self.info.scheduled_time
    }

    /// A key that is the same on every attempt of this activity, also after
    /// restarts, and different for every other activity:
    /// `workflow_id/run_id/sequence`. Pass it to external services that
    /// deduplicate requests (payment APIs take such keys), since activities
    /// run at least once.
    pub fn idempotency_key(&self) -> String {
        let info = &self.info;
        format!("{}/{}/{}", info.workflow_id, info.run_id, info.sequence)
    }

    // ----- Heartbeats -----

    /// Reports progress. Each call resets the heartbeat timeout; the details
    /// are recorded durably, at most about once per throttle interval (0.8 ×
    /// the heartbeat timeout, or 30 s without one, as Temporal), and the last
    /// ones are always recorded when the attempt ends. The next attempt
    /// reads them with [`heartbeat_details`](Self::heartbeat_details), also
    /// after a crash, so long jobs resume from their last checkpoint.
    ///
    /// # Errors
    /// A [`PayloadError`] when the details do not encode.
    pub fn heartbeat<T: Serialize>(&self, details: &T) -> Result<(), PayloadError> {
        let payload = Payload::encode(details)?;
        let now = self.clock.instant();
        let send = {
            let mut beats = self.beats.lock().unwrap_or_else(|p| p.into_inner());
            beats.last_beat = now;
            let due = beats
                .last_sent
                .is_none_or(|last| now.duration_since(last) >= self.throttle);
            if due {
                beats.last_sent = Some(now);
                beats.unsent = None;
            } else {
                beats.unsent = Some(payload.clone());
            }
            due
        };
        if send {
            (self.sink)(payload);
        }
        Ok(())
    }

    /// The details of the last heartbeat recorded by an earlier attempt of
    /// this activity, if any.
    ///
    /// # Errors
    /// A [`PayloadError`] when they do not decode as `T`.
    pub fn heartbeat_details<T: DeserializeOwned>(&self) -> Result<Option<T>, PayloadError> {
        self.heartbeat_details
            .as_ref()
            .map(Payload::decode)
            .transpose()
    }

    // ----- Time -----

    /// Waits for `duration` on the engine's clock: real time in a normal
    /// engine, virtual time in a [`TestEngine`](crate::testing::TestEngine),
    /// where the wait does not hold the clock (time may skip past it, and
    /// the attempt's timeouts fire in virtual time). Use it for waits inside
    /// an activity (polling an external job, a back-off between calls) so
    /// tests need not wait them out; a `tokio::time::sleep` or blocking
    /// I/O holds the test engine's clock until it returns, as any real work.
    ///
    /// Returns early once the attempt is cancelled (see
    /// [`is_cancelled`](Self::is_cancelled)): an attempt whose run closed
    /// or timed out stops waiting, rather than draw the test engine's clock
    /// on to its wake-ups.
    ///
    /// In a test engine, the attempt lets go of the clock while any of its
    /// sleeps waits, even if other code of the attempt runs meanwhile: in
    /// `select!(ctx.sleep(..), real_work)` or `join!(ctx.sleep(..),
    /// real_work)`, time may skip while `real_work` runs. Sleep only where
    /// the attempt does nothing else. Several sleeps at once are counted
    /// as one wait of the attempt; a sleep on a clone of the context that
    /// outlives the attempt (in a task it spawned) lets go of nothing once
    /// the attempt has ended.
    pub async fn sleep(&self, duration: Duration) {
        tokio::select! {
            () = self.sleepers.sleep(duration) => {}
            () = self.cancel.cancelled() => {}
        }
    }

    // ----- Cancellation -----

    /// True once this attempt should stop: its workflow cancelled this
    /// activity ([`ActivityFuture::cancel`](crate::ActivityFuture::cancel)),
    /// the workflow was cancelled or terminated, its heartbeat timed out, or
    /// the engine is shutting down. True at once, with no heartbeat needed
    /// to carry it (Temporal delivers a cancellation in a heartbeat's
    /// response; here attempts run in the engine's process); heartbeats go
    /// on being recorded after it.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when [`is_cancelled`](Self::is_cancelled) becomes true; use
    /// it in a `select` to stop early.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
}
