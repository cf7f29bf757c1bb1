//! `Failure`: a failure as history records it (of an activity attempt, of
//! a workflow, of anything else that fails), with Temporal's retry state
//! and typed details; and its frozen format-1 shape.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::payload::{Payload, PayloadError};

/// A failure as recorded in history: of an activity attempt or of a
/// workflow (and of any later event that carries one).
///
/// Since store format 6 it carries the failing code's typed details
/// ([`ActivityError::with_details`](crate::ActivityError::with_details),
/// [`WorkflowError::with_details`](crate::WorkflowError::with_details)),
/// read back with [`details`](Self::details), and why no retry followed
/// ([`retry_state`](Self::retry_state)). Failures recorded by earlier
/// formats read with no details and the retry state their event shows
/// (see [`RetryState::Unspecified`]).
// Persisted (FORMAT.md, `Failure` version 2): fields in this order, never
// changed in place; `FailureV1` below is the format-1 shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The failure's type, matched against a retry policy's
    /// `non_retryable_error_types` (for timeouts: `"StartToCloseTimeout"`,
    /// `"ScheduleToCloseTimeout"`).
    pub error_type: String,
    /// A message for people.
    pub message: String,
    /// True when the failure asked not to be retried.
    pub non_retryable: bool,
    /// The details the failing code attached, as JSON; `None` when it
    /// attached none (and for every failure recorded before format 6).
    // `default`: history JSON documents written before format 6 lack it.
    #[serde(default)]
    pub details: Option<Payload>,
    /// Why retries ended, or that they go on (Temporal's retry state).
    #[serde(default)]
    pub retry_state: RetryState,
}

impl Failure {
    /// A failure with no details and an unspecified retry state.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            error_type: error_type.into(),
            message: message.into(),
            non_retryable: false,
            details: None,
            retry_state: RetryState::Unspecified,
        }
    }

    /// Sets `non_retryable`.
    pub fn with_non_retryable(mut self, non_retryable: bool) -> Self {
        self.non_retryable = non_retryable;
        self
    }

    /// Sets the retry state.
    pub fn with_retry_state(mut self, retry_state: RetryState) -> Self {
        self.retry_state = retry_state;
        self
    }

    /// The details the failing code attached, decoded as `T`: `Ok(None)`
    /// when it attached none.
    ///
    /// # Errors
    /// A [`PayloadError`] when the details do not decode as `T` (they were
    /// given as another type).
    pub fn details<T: DeserializeOwned>(&self) -> Result<Option<T>, PayloadError> {
        self.details.as_ref().map(Payload::decode).transpose()
    }
}

impl Failure {
    /// Leaves out details larger than `limit` bytes (the engine's
    /// `max_payload_bytes`), saying so in the message, so that a failure
    /// is recorded whatever its code attached.
    pub(crate) fn with_details_at_most(mut self, limit: usize) -> Self {
        if let Some(len) = self.details.as_ref().map(Payload::len)
            && len > limit
        {
            self.details = None;
            self.message = format!(
                "{} (its details were left out: {len} bytes, over the limit of {limit} bytes)",
                self.message
            );
        }
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// Why a failure was not retried, or that it will be: Temporal's
/// `RetryState`, as recorded in a [`Failure`].
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RetryState {
    /// Not known: a failure recorded before store format 6 whose event
    /// does not show why retries ended (an attempt limit, a non-retryable
    /// type of the policy).
    #[default]
    Unspecified,
    /// Another attempt follows (an attempt's failure, not the final one).
    InProgress,
    /// The failure was non-retryable: the code said so
    /// ([`ActivityError::non_retryable`](crate::ActivityError::non_retryable)),
    /// or its type is one of the policy's `non_retryable_error_types`.
    NonRetryableFailure,
    /// A timeout ended retries: the schedule-to-close timeout (no retry
    /// could begin in time) or the schedule-to-start timeout.
    Timeout,
    /// The retry policy's `maximum_attempts` were used up.
    MaximumAttemptsReached,
    /// No retry policy applies: a workflow's own failure (workflows are
    /// not retried).
    RetryPolicyNotSet,
    /// Cancellation was requested: the activity's failure after the
    /// workflow cancelled it is not retried.
    CancelRequested,
}

/// [`Failure`] as store format 1 to 5 recorded it (record version 1 of
/// `Event`). Frozen: never changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FailureV1 {
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) non_retryable: bool,
}

impl FailureV1 {
    /// Today's form, with no details and the retry state `retry_state`
    /// (what its event shows).
    pub(crate) fn upgrade(self, retry_state: RetryState) -> Failure {
        Failure {
            error_type: self.error_type,
            message: self.message,
            non_retryable: self.non_retryable,
            details: None,
            retry_state,
        }
    }

    /// The retry state a format-1 activity failure shows by itself: an
    /// attempt with a next one is in progress; a final one that was
    /// non-retryable is a timeout (schedule-to-close, schedule-to-start,
    /// which the engine records as non-retryable) or a non-retryable
    /// failure; other final ones depend on the options, so unspecified.
    pub(crate) fn activity_retry_state(&self, retried: bool) -> RetryState {
        if retried {
            RetryState::InProgress
        } else if self.non_retryable && is_timeout_type(&self.error_type) {
            RetryState::Timeout
        } else if self.non_retryable {
            RetryState::NonRetryableFailure
        } else {
            RetryState::Unspecified
        }
    }
}

/// The failure types of the timeouts that end retries.
pub(crate) fn is_timeout_type(error_type: &str) -> bool {
    matches!(
        error_type,
        "ScheduleToCloseTimeout" | "ScheduleToStartTimeout"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_decode_as_their_type_or_fail_typed() {
        let mut failure = Failure::new("E", "m");
        assert_eq!(failure.details::<u32>().unwrap(), None);
        failure.details = Some(Payload::encode(&(7u32, "x")).unwrap());
        assert_eq!(
            failure.details::<(u32, String)>().unwrap(),
            Some((7, "x".to_string()))
        );
        assert!(failure.details::<bool>().is_err());
    }

    #[test]
    fn format_1_failures_read_with_what_their_event_shows() {
        let v1 = |t: &str, non_retryable| FailureV1 {
            error_type: t.into(),
            message: "m".into(),
            non_retryable,
        };
        assert_eq!(
            v1("E", false).activity_retry_state(true),
            RetryState::InProgress
        );
        assert_eq!(
            v1("ScheduleToCloseTimeout", true).activity_retry_state(false),
            RetryState::Timeout
        );
        assert_eq!(
            v1("E", true).activity_retry_state(false),
            RetryState::NonRetryableFailure
        );
        assert_eq!(
            v1("E", false).activity_retry_state(false),
            RetryState::Unspecified
        );
        let up = v1("E", true).upgrade(RetryState::NonRetryableFailure);
        assert_eq!(up.details, None);
        assert_eq!(up.error_type, "E");
    }
}
