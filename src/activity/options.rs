//! `ActivityOptions`: the timeouts and retry policy of one activity call.

use std::time::Duration;

use super::cancellation::ActivityCancellationType;
use super::retry::RetryPolicy;
use crate::history::ActivityOptionsRecord;

/// Options of one activity call. At least one of the schedule-to-close and
/// start-to-close timeouts is required, as in Temporal.
///
/// ```
/// use std::time::Duration;
/// use steadfast::{ActivityOptions, RetryPolicy};
/// let options = ActivityOptions::start_to_close(Duration::from_secs(10))
///     .with_retry_policy(RetryPolicy::default().with_maximum_attempts(5));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ActivityOptions {
    /// Time allowed from scheduling to the final result, across all attempts
    /// and retry delays. When it runs out, retries end.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Time allowed for one attempt; an attempt that takes longer fails with
    /// a retryable `StartToCloseTimeout`. Defaults to the schedule-to-close
    /// timeout.
    pub start_to_close_timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry_policy: RetryPolicy,
    /// Longest time allowed between heartbeats; an attempt that stays silent
    /// longer fails with a retryable `HeartbeatTimeout`. Default: off.
    pub heartbeat_timeout: Option<Duration>,
    /// Longest time an attempt may wait for a free slot on its task queue;
    /// past it the activity fails with `ScheduleToStartTimeout`, which is
    /// never retried (as in Temporal). Default: unlimited.
    pub schedule_to_start_timeout: Option<Duration>,
    /// The task queue to run on; the workflow's own by default.
    pub task_queue: Option<String>,
    /// What cancelling this one activity from the workflow does
    /// ([`ActivityFuture::cancel`](crate::ActivityFuture::cancel)); a
    /// setting of the workflow code, not recorded. Default: `TryCancel`.
    pub cancellation_type: ActivityCancellationType,
}

impl ActivityOptions {
    /// Options with a schedule-to-close timeout and the default retry policy.
    pub fn schedule_to_close(timeout: Duration) -> Self {
        ActivityOptions {
            schedule_to_close_timeout: Some(timeout),
            ..ActivityOptions::default()
        }
    }

    /// Options with a start-to-close timeout and the default retry policy.
    pub fn start_to_close(timeout: Duration) -> Self {
        ActivityOptions {
            start_to_close_timeout: Some(timeout),
            ..ActivityOptions::default()
        }
    }

    /// Sets what cancelling this one activity from the workflow does
    /// ([`ActivityCancellationType`]; default `TryCancel`).
    pub fn with_cancellation_type(mut self, cancellation_type: ActivityCancellationType) -> Self {
        self.cancellation_type = cancellation_type;
        self
    }

    /// Sets the schedule-to-close timeout: the time allowed from
    /// scheduling to the final result, across all attempts and whatever
    /// the activity waits for (a retry's backoff, a worker slot, a worker
    /// of its queue).
    pub fn with_schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_to_close_timeout = Some(timeout);
        self
    }

    /// Sets the start-to-close timeout.
    pub fn with_start_to_close_timeout(mut self, timeout: Duration) -> Self {
        self.start_to_close_timeout = Some(timeout);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// Sets the heartbeat timeout.
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// Sets the schedule-to-start timeout: the longest an attempt may wait
    /// for a worker slot (or for a worker of its queue) before it begins,
    /// counted from when it became due; it then fails, not retried, with
    /// `ScheduleToStartTimeout`. Schedule-to-close counts during that wait
    /// as well.
    pub fn with_schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
        self.schedule_to_start_timeout = Some(timeout);
        self
    }

    /// Runs the activity on another task queue. An empty name fails the
    /// activity at once, non-retryable, with type `InvalidTaskQueue`.
    pub fn with_task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = Some(task_queue.into());
        self
    }

    /// Checks the options and turns them into their stored form.
    pub(crate) fn to_record(&self) -> Result<ActivityOptionsRecord, String> {
        if self.schedule_to_close_timeout.is_none() && self.start_to_close_timeout.is_none() {
            return Err(
                "either schedule_to_close_timeout or start_to_close_timeout must be set".into(),
            );
        }
        for (name, value) in [
            ("schedule_to_close_timeout", self.schedule_to_close_timeout),
            ("start_to_close_timeout", self.start_to_close_timeout),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("schedule_to_start_timeout", self.schedule_to_start_timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        let maximum_interval = self.retry_policy.validate()?;
        let policy = &self.retry_policy;
        Ok(ActivityOptionsRecord {
            schedule_to_close_timeout: self.schedule_to_close_timeout,
            start_to_close_timeout: self.start_to_close_timeout,
            initial_interval: policy.initial_interval,
            backoff_coefficient: policy.backoff_coefficient,
            maximum_interval,
            maximum_attempts: policy.maximum_attempts,
            non_retryable_error_types: policy.non_retryable_error_types.clone(),
            heartbeat_timeout: self.heartbeat_timeout,
            schedule_to_start_timeout: self.schedule_to_start_timeout,
            task_queue: self.task_queue.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_required() {
        let err = ActivityOptions::default().to_record().unwrap_err();
        assert!(err.contains("schedule_to_close_timeout"), "{err}");
        assert!(
            ActivityOptions::start_to_close(Duration::ZERO)
                .to_record()
                .is_err()
        );
        let r = ActivityOptions::schedule_to_close(Duration::from_secs(5))
            .to_record()
            .unwrap();
        assert_eq!(r.maximum_interval, Duration::from_secs(100));
    }
}
