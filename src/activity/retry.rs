//! `RetryPolicy` and the pure retry decision (no clock, no I/O).

use std::time::{Duration, SystemTime};

use crate::history::{ActivityOptionsRecord, Failure, RetryState, is_timeout_type};

/// How failed activity attempts are retried, with Temporal's defaults.
///
/// The delay before attempt `n + 1` is
/// `min(initial_interval × backoff_coefficient^(n − 1), maximum_interval)`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Delay before the first retry. Default: 1 s.
    pub initial_interval: Duration,
    /// Growth of the delay per retry; at least 1. Default: 2.0.
    pub backoff_coefficient: f64,
    /// Largest delay between attempts. Default (`None`): 100 × `initial_interval`.
    pub maximum_interval: Option<Duration>,
    /// Most attempts in all; 0 means unlimited, 1 means no retry. Default: 0.
    pub maximum_attempts: u32,
    /// Failure types (see `ActivityError::with_type`) that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (`maximum_attempts = 1`).
    pub fn no_retry() -> Self {
        RetryPolicy {
            maximum_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Sets `initial_interval`.
    pub fn with_initial_interval(mut self, interval: Duration) -> Self {
        self.initial_interval = interval;
        self
    }

    /// Sets `backoff_coefficient`.
    pub fn with_backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Sets `maximum_interval`.
    pub fn with_maximum_interval(mut self, interval: Duration) -> Self {
        self.maximum_interval = Some(interval);
        self
    }

    /// Sets `maximum_attempts` (0 = unlimited).
    pub fn with_maximum_attempts(mut self, attempts: u32) -> Self {
        self.maximum_attempts = attempts;
        self
    }

    /// Adds a failure type that ends retries.
    pub fn with_non_retryable_error_type(mut self, error_type: impl Into<String>) -> Self {
        self.non_retryable_error_types.push(error_type.into());
        self
    }

    /// Checks the policy, as Temporal does, and returns the maximum interval
    /// in force.
    pub(crate) fn validate(&self) -> Result<Duration, String> {
        if self.initial_interval.is_zero() {
            return Err("retry policy initial_interval must be greater than zero".into());
        }
        if !(self.backoff_coefficient >= 1.0 && self.backoff_coefficient.is_finite()) {
            return Err(format!(
                "retry policy backoff_coefficient must be at least 1, got {}",
                self.backoff_coefficient
            ));
        }
        let maximum = self
            .maximum_interval
            .unwrap_or_else(|| self.initial_interval.saturating_mul(100));
        if maximum < self.initial_interval {
            return Err(format!(
                "retry policy maximum_interval ({maximum:?}) is below initial_interval ({:?})",
                self.initial_interval
            ));
        }
        Ok(maximum)
    }
}

/// The delay after failed attempt `attempt` (1-based).
pub(crate) fn backoff(options: &ActivityOptionsRecord, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(1024) as i32;
    let factor = options.backoff_coefficient.powi(exponent);
    let secs = options.initial_interval.as_secs_f64() * factor;
    let max = options.maximum_interval;
    // Options read from a damaged file may hold any coefficient.
    if !secs.is_finite() || secs >= max.as_secs_f64() {
        max
    } else {
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(max)
    }
}

/// When the next attempt is due after `attempt` failed at `now`, or, when
/// the failure is final, why (Temporal's retry state). `immediate` skips
/// the backoff (for an attempt cut off by a crash, which was not the
/// activity's failure).
pub(crate) fn next_attempt_at(
    options: &ActivityOptionsRecord,
    attempt: u32,
    failure: &Failure,
    scheduled_at: SystemTime,
    now: SystemTime,
    immediate: bool,
) -> Result<SystemTime, RetryState> {
    // The engine records the timeouts that end retries as non-retryable.
    if failure.non_retryable && is_timeout_type(&failure.error_type) {
        return Err(RetryState::Timeout);
    }
    if failure.non_retryable
        || options
            .non_retryable_error_types
            .contains(&failure.error_type)
    {
        return Err(RetryState::NonRetryableFailure);
    }
    // Unlimited attempts still end at the last number an attempt can have.
    if attempt == u32::MAX || (options.maximum_attempts != 0 && attempt >= options.maximum_attempts)
    {
        return Err(RetryState::MaximumAttemptsReached);
    }
    // A retry later than the clock can hold would never come: the failure
    // is final, as if its time ran out. A budget ending past it is no budget.
    let next = if immediate {
        now
    } else {
        now.checked_add(backoff(options, attempt))
            .ok_or(RetryState::Timeout)?
    };
    match options
        .schedule_to_close_timeout
        .and_then(|limit| scheduled_at.checked_add(limit))
    {
        Some(deadline) if next >= deadline => Err(RetryState::Timeout),
        _ => Ok(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ActivityOptionsRecord {
        ActivityOptionsRecord {
            schedule_to_close_timeout: None,
            start_to_close_timeout: Some(Duration::from_secs(1)),
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: Duration::from_secs(100),
            maximum_attempts: 0,
            non_retryable_error_types: vec!["Fatal".into()],
            heartbeat_timeout: None,
            schedule_to_start_timeout: None,
            task_queue: None,
        }
    }

    fn failure(t: &str) -> Failure {
        Failure::new(t, String::new())
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let o = options();
        let secs: Vec<u64> = (1..=9).map(|a| backoff(&o, a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 100, 100]);
        assert_eq!(backoff(&o, u32::MAX), Duration::from_secs(100));
    }

    /// Options decoded from a damaged file may hold what validation
    /// refuses; the backoff stays within its bounds instead of panicking.
    #[test]
    fn backoff_of_unvalidated_options_stays_in_bounds() {
        let mut o = options();
        o.backoff_coefficient = -2.0;
        assert!(backoff(&o, 2) <= o.maximum_interval);
        o.backoff_coefficient = f64::NAN;
        assert_eq!(backoff(&o, 2), o.maximum_interval);
    }

    /// A retry later than the clock can hold would never come: final.
    #[test]
    fn a_retry_past_the_clock_is_final_and_a_budget_past_it_is_none() {
        let mut o = options();
        o.initial_interval = Duration::MAX;
        o.maximum_interval = Duration::MAX;
        let t = SystemTime::now();
        assert!(next_attempt_at(&o, 1, &failure("Other"), t, t, false).is_err());
        let mut o = options();
        o.schedule_to_close_timeout = Some(Duration::MAX);
        assert!(next_attempt_at(&o, 1, &failure("Other"), t, t, false).is_ok());
    }

    #[test]
    fn non_retryable_types_and_attempts_end_retries() {
        let mut o = options();
        let t = SystemTime::UNIX_EPOCH;
        assert!(next_attempt_at(&o, 1, &failure("Fatal"), t, t, false).is_err());
        assert!(next_attempt_at(&o, 50, &failure("Other"), t, t, false).is_ok());
        o.maximum_attempts = 3;
        assert!(next_attempt_at(&o, 2, &failure("Other"), t, t, false).is_ok());
        assert_eq!(
            next_attempt_at(&o, 3, &failure("Other"), t, t, false),
            Err(RetryState::MaximumAttemptsReached)
        );
        assert_eq!(
            next_attempt_at(&o, 1, &failure("Fatal"), t, t, false),
            Err(RetryState::NonRetryableFailure)
        );
        let timeout = Failure::new("ScheduleToCloseTimeout", "").with_non_retryable(true);
        assert_eq!(
            next_attempt_at(&o, 1, &timeout, t, t, false),
            Err(RetryState::Timeout)
        );
    }

    #[test]
    fn schedule_to_close_ends_retries() {
        let mut o = options();
        o.schedule_to_close_timeout = Some(Duration::from_millis(2500));
        let t = SystemTime::UNIX_EPOCH;
        assert!(next_attempt_at(&o, 1, &failure("x"), t, t, false).is_ok());
        assert!(
            next_attempt_at(&o, 2, &failure("x"), t, t + Duration::from_secs(1), false).is_err()
        );
    }

    #[test]
    fn validation_follows_temporal() {
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(
            RetryPolicy::default()
                .with_backoff_coefficient(0.5)
                .validate()
                .is_err()
        );
        assert!(
            RetryPolicy::default()
                .with_maximum_interval(Duration::from_millis(10))
                .validate()
                .is_err()
        );
    }
}
