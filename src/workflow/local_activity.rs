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
use crate::activity::{ActivityDef, RetryPolicy};
use crate::history::{ActivityOptionsRecord, Payload};

/// Options of one local activity call: Temporal's local activity timeouts
/// and retry policy. At least one of the schedule-to-close and
/// start-to-close timeouts is required, as in Temporal. There is no
/// schedule-to-start (nothing queues) and no heartbeat timeout (a local
/// activity's heartbeats are not recorded).
///
/// ```
/// use std::time::Duration;
/// use steadfast::{LocalActivityOptions, RetryPolicy};
/// let options = LocalActivityOptions::start_to_close(Duration::from_secs(2))
///     .with_retry_policy(RetryPolicy::default().with_maximum_attempts(3));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LocalActivityOptions {
    /// Time allowed from the call to the final result, across all attempts
    /// and retry delays.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Time allowed for one attempt (a retryable `StartToCloseTimeout`).
    pub start_to_close_timeout: Option<Duration>,
    /// How failed attempts are retried, in place, by the same worker.
    pub retry_policy: RetryPolicy,
}

impl LocalActivityOptions {
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
    /// from attempt 1, after the next open.
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
            output: PhantomData,
        };
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
        });
        drop(core);
        LocalActivityFuture {
            core: self.core().clone(),
            seq,
            activity_type: name,
            refused: None,
            done: false,
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
    output: PhantomData<fn() -> O>,
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
