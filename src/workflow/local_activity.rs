//! Local activities: short work run by the workflow's own worker, in its
//! process and without a task queue, recorded as one event when it ends
//! (Temporal's `ExecuteLocalActivity`, its result in a marker).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::FusedFuture;
use serde::{Serialize, de::DeserializeOwned};

use super::context::WorkflowContext;
use super::error::ActivityFailure;
use super::replay::{Awaited, Resolution, RunCore, lock};
use crate::activity::{ActivityCancellationType, ActivityDef, RetryPolicy};
use crate::history::{ActivityOptionsRecord, Payload};

/// Options of one local activity call: Temporal's local activity timeouts,
/// retry policy, `local_retry_threshold` and cancellation type. At least
/// one of the schedule-to-close and start-to-close timeouts is required, as
/// in Temporal. There is no schedule-to-start (nothing queues) and no
/// heartbeat timeout (a local activity's heartbeats are not recorded).
///
/// ```
/// use std::time::Duration;
/// use steadfast::{LocalActivityOptions, RetryPolicy};
/// let options = LocalActivityOptions::start_to_close(Duration::from_secs(2))
///     .with_retry_policy(RetryPolicy::default().with_maximum_attempts(3));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LocalActivityOptions {
    /// Time allowed from the call to the final result, across all attempts
    /// and retry delays.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Time allowed for one attempt (a retryable `StartToCloseTimeout`).
    pub start_to_close_timeout: Option<Duration>,
    /// How failed attempts are retried, in place, by the same worker.
    pub retry_policy: RetryPolicy,
    /// The longest backoff slept in the worker (Temporal's
    /// `local_retry_threshold`, default 1 minute): a longer one is
    /// recorded (`LocalActivityBackoff`) and waited for as a durable timer,
    /// so a restart meanwhile resumes with the next attempt at its time and
    /// nothing is held until then.
    pub local_retry_threshold: Duration,
    /// What [`LocalActivityFuture::cancel`] does
    /// ([`ActivityCancellationType`]; default `TryCancel`, as for
    /// activities).
    pub cancellation_type: ActivityCancellationType,
}

/// Temporal's default `local_retry_threshold`.
const DEFAULT_LOCAL_RETRY_THRESHOLD: Duration = Duration::from_secs(60);

impl Default for LocalActivityOptions {
    fn default() -> Self {
        LocalActivityOptions {
            schedule_to_close_timeout: None,
            start_to_close_timeout: None,
            retry_policy: RetryPolicy::default(),
            local_retry_threshold: DEFAULT_LOCAL_RETRY_THRESHOLD,
            cancellation_type: ActivityCancellationType::default(),
        }
    }
}

impl LocalActivityOptions {
    /// Sets the longest backoff slept in the worker; a longer one becomes
    /// a durable timer (Temporal's `local_retry_threshold`).
    pub fn with_local_retry_threshold(mut self, threshold: Duration) -> Self {
        self.local_retry_threshold = threshold;
        self
    }

    /// Sets what cancelling the local activity does
    /// ([`LocalActivityFuture::cancel`]).
    pub fn with_cancellation_type(mut self, cancellation_type: ActivityCancellationType) -> Self {
        self.cancellation_type = cancellation_type;
        self
    }

    /// Options with a schedule-to-close timeout and the default retry policy.
    pub fn schedule_to_close(timeout: Duration) -> Self {
        LocalActivityOptions {
            schedule_to_close_timeout: Some(timeout),
            ..LocalActivityOptions::default()
        }
    }

    /// Options with a start-to-close timeout and the default retry policy.
    pub fn start_to_close(timeout: Duration) -> Self {
        LocalActivityOptions {
            start_to_close_timeout: Some(timeout),
            ..LocalActivityOptions::default()
        }
    }

    /// Sets the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// Sets the schedule-to-close timeout.
    pub fn with_schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_to_close_timeout = Some(timeout);
        self
    }

    /// Sets the start-to-close timeout.
    pub fn with_start_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.start_to_close_timeout = Some(timeout);
        self
    }

    /// The options as an activity's, checked as an activity's are.
    fn to_record(&self) -> Result<ActivityOptionsRecord, String> {
        let mut options = crate::activity::ActivityOptions::default()
            .with_retry_policy(self.retry_policy.clone());
        options.schedule_to_close_timeout = self.schedule_to_close_timeout;
        options.start_to_close_timeout = self.start_to_close_timeout;
        options.to_record()
    }
}

/// A local activity the code asked for: what the engine runs (live, or
/// again after a restart when its history has no result for it).
#[derive(Clone, Debug)]
pub(crate) struct LocalRequest {
    pub(crate) seq: u32,
    pub(crate) activity_type: String,
    pub(crate) input: Payload,
    pub(crate) options: ActivityOptionsRecord,
    /// See [`LocalActivityOptions::local_retry_threshold`].
    pub(crate) retry_threshold: Duration,
}

impl WorkflowContext {
    /// Runs a short activity in this workflow's own worker, in this
    /// process, without a task queue or a worker slot, and returns a future
    /// of its result (Temporal's local activity). The activity is looked up
    /// among those registered on the workflow's task queue.
    ///
    /// Nothing is recorded when it starts or between its attempts: failed
    /// attempts are retried in place under `options`' policy, and only its
    /// end (a value, or the final failure) is recorded, as one event
    /// (`LocalActivityRecorded`). Replay feeds that result without running
    /// it. At least once: a crash or kill before its end runs it again,
    /// from attempt 1, after the next open. The exception is a backoff
    /// longer than [`LocalActivityOptions::local_retry_threshold`]: it is
    /// recorded (`LocalActivityBackoff`) and waited for as a durable timer,
    /// and the next attempt begins at its time, also after a restart.
    /// [`LocalActivityFuture::cancel`] cancels it on its own.
    ///
    /// Options that are invalid or an input that does not encode make the
    /// future resolve to
    /// [`ActivityFailure::NotScheduled`](crate::ActivityFailure::NotScheduled).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use steadfast::{ActivityDef, LocalActivityOptions, WorkflowContext, WorkflowError};
    /// const NORMALIZE: ActivityDef<String, String> = ActivityDef::new("normalize");
    /// # async fn body(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    /// let options = LocalActivityOptions::start_to_close(Duration::from_secs(1));
    /// let email = ctx
    ///     .execute_local_activity(NORMALIZE, " Ada@Example.org ".into(), options)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn execute_local_activity<I, O>(
        &self,
        activity: ActivityDef<I, O>,
        input: I,
        options: LocalActivityOptions,
    ) -> LocalActivityFuture<O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let name = activity.name();
        let refused = |message: String| LocalActivityFuture {
            core: self.core().clone(),
            seq: 0,
            activity_type: name,
            refused: Some(ActivityFailure::NotScheduled {
                activity_type: name.to_string(),
                message,
            }),
            done: false,
            cancellation: ActivityCancellationType::default(),
            cancel_requested: false,
            output: PhantomData,
        };
        let retry_threshold = options.local_retry_threshold;
        let cancellation = options.cancellation_type;
        let options = match options.to_record() {
            Ok(r) => r,
            Err(message) => return refused(message),
        };
        let input = match Payload::encode(&input) {
            Ok(p) => p,
            Err(e) => return refused(e.to_string()),
        };
        let mut core = lock(self.core());
        let seq = core.next_seq();
        core.track(seq, Awaited::LocalActivity);
        core.request_local(LocalRequest {
            seq,
            activity_type: name.to_string(),
            input,
            options,
            retry_threshold,
        });
        drop(core);
        LocalActivityFuture {
            core: self.core().clone(),
            seq,
            activity_type: name,
            refused: None,
            done: false,
            cancellation,
            cancel_requested: false,
            output: PhantomData,
        }
    }
}

/// The result of a local activity call; see
/// [`WorkflowContext::execute_local_activity`].
#[must_use = "a local activity's result is only seen when the future is awaited"]
pub struct LocalActivityFuture<O> {
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

impl<O> LocalActivityFuture<O> {
    /// Cancels this local activity on its own (the run goes on), as its
    /// options' [`ActivityCancellationType`] says, as Temporal's SDKs do
    /// when the scope of a local activity is cancelled:
    ///
    /// - `TryCancel` (default) and `WaitCancellationRequested`: the running
    ///   attempt is told ([`ActivityContext::is_cancelled`](crate::ActivityContext::is_cancelled)),
    ///   no later attempt begins, and awaiting the future returns
    ///   [`ActivityFailure::Cancelled`] at once; the activity's end is not
    ///   recorded.
    /// - `WaitCancellationCompleted`: the attempt is told, and the future
    ///   resolves with the activity's recorded end: its value if it
    ///   completed anyway, else `Cancelled` (an attempt that had not begun,
    ///   in a backoff, never begins).
    /// - `Abandon`: the attempt is not told and runs on; the future returns
    ///   `Cancelled` at once and its end is not recorded.
    ///
    /// Nothing is recorded by the request itself: the code makes it at the
    /// same point on replay, so it replays alike. Nothing happens for a
    /// local activity whose outcome the code already has, nor on a second
    /// call. (A cancellation of the whole run resolves every local activity
    /// as `Cancelled` at once, as it does activities.)
    pub fn cancel(&mut self) {
        if self.done || self.refused.is_some() || self.cancel_requested {
            return;
        }
        self.cancel_requested = true;
        lock(&self.core).cancel_local(self.seq, self.cancellation);
    }
}

impl<O> std::fmt::Debug for LocalActivityFuture<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalActivityFuture")
            .field("activity_type", &self.activity_type)
            .field("seq", &self.seq)
            .finish()
    }
}

impl<O: DeserializeOwned> Future for LocalActivityFuture<O> {
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
        let output = match resolution {
            Some(Resolution::ActivityCompleted(payload)) => payload
                .decode()
                .map_err(|e| ActivityFailure::decode(self.activity_type, e)),
            // Its end after the code cancelled it (wait-cancellation-completed).
            Some(Resolution::ActivityFailed { .. }) if self.cancel_requested => {
                Err(ActivityFailure::Cancelled {
                    activity_type: self.activity_type.to_string(),
                })
            }
            Some(Resolution::ActivityFailed { attempt, failure }) => Err(ActivityFailure::Failed {
                activity_type: self.activity_type.to_string(),
                attempt,
                failure,
            }),
            Some(Resolution::Cancelled) => Err(ActivityFailure::Cancelled {
                activity_type: self.activity_type.to_string(),
            }),
            Some(_) | None => return Poll::Pending,
        };
        self.done = true;
        Poll::Ready(output)
    }
}

impl<O: DeserializeOwned> FusedFuture for LocalActivityFuture<O> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}
