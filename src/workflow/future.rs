//! Durable futures: an activity's result and a timer, resolved from history.
//!
//! They resolve only when the machine feeds the matching event, never from a
//! clock or a channel, so awaiting them in any combination (`join`,
//! `select_biased!`) behaves the same on replay as live.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::FusedFuture;
use serde::de::DeserializeOwned;

use super::error::{ActivityFailure, Cancelled, SignalError};
use super::replay::{Resolution, RunCore, lock};
use crate::activity::ActivityCancellationType;

/// The result of an activity call; see [`WorkflowContext::execute_activity`](crate::WorkflowContext::execute_activity).
#[must_use = "an activity's result is only seen when the future is awaited"]
pub struct ActivityFuture<O> {
    core: Arc<Mutex<RunCore>>,
    seq: u32,
    activity_type: &'static str,
    refused: Option<ActivityFailure>,
    done: bool,
    /// What [`cancel`](Self::cancel) does, from the call's options.
    cancellation: ActivityCancellationType,
    /// Set by `cancel`: a failure then resolves as cancelled.
    cancel_requested: bool,
    output: PhantomData<fn() -> O>,
}

impl<O> ActivityFuture<O> {
    pub(crate) fn scheduled(
        core: Arc<Mutex<RunCore>>,
        seq: u32,
        activity_type: &'static str,
        cancellation: ActivityCancellationType,
    ) -> Self {
        ActivityFuture {
            core,
            seq,
            activity_type,
            refused: None,
            done: false,
            cancellation,
            cancel_requested: false,
            output: PhantomData,
        }
    }

    pub(crate) fn refused(
        core: Arc<Mutex<RunCore>>,
        activity_type: &'static str,
        message: String,
    ) -> Self {
        ActivityFuture {
            core,
            seq: 0,
            activity_type,
            refused: Some(ActivityFailure::NotScheduled {
                activity_type: activity_type.to_string(),
                message,
            }),
            done: false,
            cancellation: ActivityCancellationType::default(),
            cancel_requested: false,
            output: PhantomData,
        }
    }

    /// Cancels this activity on its own (the run goes on), as its options'
    /// [`ActivityCancellationType`] says: by default (`TryCancel`) the
    /// request is recorded in history (`ActivityCancelRequested`), the
    /// running attempt sees [`ActivityContext::is_cancelled`](crate::ActivityContext::is_cancelled),
    /// and awaiting the future returns [`ActivityFailure::Cancelled`] at
    /// once. Deterministic: replay cancels at the same point. Nothing
    /// happens for an activity whose outcome the code already has (or that
    /// was never scheduled), nor on a second call.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use steadfast::{ActivityDef, ActivityOptions, WorkflowContext, WorkflowError};
    /// # const CHARGE: ActivityDef<u32, String> = ActivityDef::new("charge");
    /// # async fn body(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    /// let options = ActivityOptions::start_to_close(Duration::from_secs(60));
    /// let mut charge = ctx.execute_activity(CHARGE, 42, options);
    /// let deadline = ctx.sleep(Duration::from_secs(10));
    /// futures::pin_mut!(deadline);
    /// futures::select_biased! {
    ///     receipt = charge => println!("{receipt:?}"),
    ///     _ = deadline => {
    ///         charge.cancel();
    ///         let _ = charge.await; // Err(ActivityFailure::Cancelled { .. })
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cancel(&mut self) {
        if self.done || self.refused.is_some() || self.cancel_requested {
            return;
        }
        self.cancel_requested = true;
        lock(&self.core).cancel_activity(self.seq, self.cancellation);
    }
}

impl<O> std::fmt::Debug for ActivityFuture<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityFuture")
            .field("activity_type", &self.activity_type)
            .field("seq", &self.seq)
            .finish()
    }
}

impl<O: DeserializeOwned> Future for ActivityFuture<O> {
    type Output = Result<O, ActivityFailure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        if let Some(refused) = self.refused.take() {
            self.done = true;
            return Poll::Ready(Err(refused));
        }
        let resolution = lock(&self.core).take_resolution(self.seq, cx.waker());
        if resolution.is_some() {
            self.done = true;
        }
        match resolution {
            Some(Resolution::ActivityCompleted(payload)) => Poll::Ready(
                payload
                    .decode()
                    .map_err(|e| ActivityFailure::decode(self.activity_type, e)),
            ),
            // Its end after the code cancelled it (wait-cancellation-completed).
            Some(Resolution::ActivityFailed { .. }) if self.cancel_requested => {
                Poll::Ready(Err(ActivityFailure::Cancelled {
                    activity_type: self.activity_type.to_string(),
                }))
            }
            Some(Resolution::ActivityFailed { attempt, failure }) => {
                Poll::Ready(Err(ActivityFailure::Failed {
                    activity_type: self.activity_type.to_string(),
                    attempt,
                    failure,
                }))
            }
            Some(Resolution::Cancelled) => Poll::Ready(Err(ActivityFailure::Cancelled {
                activity_type: self.activity_type.to_string(),
            })),
            Some(_) | None => Poll::Pending,
        }
    }
}

impl<O: DeserializeOwned> FusedFuture for ActivityFuture<O> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// A durable timer; see [`WorkflowContext::sleep`](crate::WorkflowContext::sleep).
///
/// Dropping it before it fires cancels the timer (as [`cancel`](Self::cancel)
/// does): a timer that lost a `select_biased!` is not left pending.
#[must_use = "a timer only waits when it is awaited"]
pub struct TimerFuture {
    core: Arc<Mutex<RunCore>>,
    seq: u32,
    done: bool,
}

impl TimerFuture {
    pub(crate) fn new(core: Arc<Mutex<RunCore>>, seq: u32) -> Self {
        TimerFuture {
            core,
            seq,
            done: false,
        }
    }

    /// Cancels the timer: it never fires, `describe` no longer lists it,
    /// and a `TimerCanceled` event records it, so replay cancels it at the
    /// same point. Nothing happens for a timer that already fired or was
    /// resolved by a cancellation of the workflow. Dropping the future
    /// does the same.
    pub fn cancel(self) {
        drop(self);
    }
}

impl Drop for TimerFuture {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Not `lock`: a drop while this thread holds the core (an unwind
        // out of the engine's own code) must not deadlock; the machine
        // then parks the run anyway.
        let mut core = match self.core.try_lock() {
            Ok(core) => core,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        core.cancel_timer(self.seq);
    }
}

impl std::fmt::Debug for TimerFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerFuture")
            .field("seq", &self.seq)
            .finish()
    }
}

impl Future for TimerFuture {
    /// `Err(Cancelled)` when the workflow was cancelled before the timer fired.
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        let resolution = lock(&self.core).take_resolution(self.seq, cx.waker());
        let output = match resolution {
            Some(Resolution::Cancelled) => Err(Cancelled),
            Some(_) => Ok(()),
            None => return Poll::Pending,
        };
        self.done = true;
        Poll::Ready(output)
    }
}

impl FusedFuture for TimerFuture {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// The next signal of a name; see [`WorkflowContext::recv_signal`](crate::WorkflowContext::recv_signal).
#[must_use = "a signal is only taken when the future is awaited"]
pub struct SignalFuture<T> {
    core: Arc<Mutex<RunCore>>,
    name: &'static str,
    /// Cancellation requests applied before this wait began do not end it.
    epoch: u32,
    done: bool,
    payload: PhantomData<fn() -> T>,
}

impl<T> SignalFuture<T> {
    pub(crate) fn new(core: Arc<Mutex<RunCore>>, name: &'static str) -> Self {
        let epoch = lock(&core).cancel_epoch();
        SignalFuture {
            core,
            name,
            epoch,
            done: false,
            payload: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SignalFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalFuture")
            .field("name", &self.name)
            .finish()
    }
}

impl<T: DeserializeOwned> Future for SignalFuture<T> {
    type Output = Result<T, SignalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        let mut core = lock(&self.core);
        let output = if let Some(payload) = core.take_signal(self.name, cx.waker()) {
            payload.decode().map_err(SignalError::from)
        } else if core.cancel_epoch() > self.epoch {
            Err(Cancelled.into())
        } else {
            return Poll::Pending;
        };
        drop(core);
        self.done = true;
        Poll::Ready(output)
    }
}

impl<T: DeserializeOwned> FusedFuture for SignalFuture<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}
