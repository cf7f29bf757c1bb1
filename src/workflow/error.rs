//! Errors seen by and raised from workflow code.

use std::fmt;

use super::continue_as_new::ContinueAsNew;
use serde::{Serialize, de::DeserializeOwned};

use crate::history::{EventId, Failure, Payload, PayloadError, RetryState, RunId};

/// A workflow's failure: returning it fails the run (status `Failed`).
///
/// Any error converts into it with `?`, including [`ActivityFailure`].
pub struct WorkflowError {
    error_type: String,
    message: String,
    details: Option<Payload>,
    /// Set by [`WorkflowContext::continue_as_new`](crate::WorkflowContext::continue_as_new):
    /// returning this error continues the run as new instead of failing it.
    continue_as_new: Option<Box<ContinueAsNew>>,
}

impl WorkflowError {
    /// A failure with a message, of type `"WorkflowError"`.
    pub fn new(message: impl Into<String>) -> Self {
        WorkflowError {
            error_type: "WorkflowError".into(),
            message: message.into(),
            details: None,
            continue_as_new: None,
        }
    }

    pub(crate) fn continuing(request: ContinueAsNew) -> Self {
        let mut err = WorkflowError::new(format!(
            "the run continues as new (workflow type {:?})",
            request.workflow_type
        ))
        .with_type("ContinueAsNew");
        err.continue_as_new = Some(Box::new(request));
        err
    }

    /// True when returning this error continues the run as new (it came
    /// from [`WorkflowContext::continue_as_new`](crate::WorkflowContext::continue_as_new)).
    pub fn is_continue_as_new(&self) -> bool {
        self.continue_as_new.is_some()
    }

    pub(crate) fn take_continue_as_new(&mut self) -> Option<ContinueAsNew> {
        self.continue_as_new.take().map(|b| *b)
    }

    /// Sets the failure type recorded in history.
    pub fn with_type(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = error_type.into();
        self
    }

    /// Attaches typed details, which reach the client with the run's
    /// failure: `handle.result()` returns
    /// [`ResultError::Failed`](crate::ResultError::Failed) (or `Cancelled`)
    /// whose `failure.details::<T>()` reads them back. A later call
    /// replaces them. Details that do not encode as JSON are left out, and
    /// the message says why.
    ///
    /// ```
    /// use steadfast::WorkflowError;
    /// let err = WorkflowError::new("order rejected")
    ///     .with_type("OrderRejected")
    ///     .with_details(vec!["out of stock".to_string()]);
    /// ```
    pub fn with_details<T: Serialize>(mut self, details: T) -> Self {
        match Payload::encode(&details) {
            Ok(payload) => self.details = Some(payload),
            Err(e) => {
                self.details = None;
                self.message = format!("{} (its details did not encode: {e})", self.message);
            }
        }
        self
    }

    /// The details attached with [`with_details`](Self::with_details).
    pub fn details(&self) -> Option<&Payload> {
        self.details.as_ref()
    }

    /// The failure type.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The failure as recorded: workflows are not retried.
    pub(crate) fn into_failure(self) -> Failure {
        Failure {
            details: self.details,
            ..Failure::new(self.error_type, self.message)
                .with_non_retryable(true)
                .with_retry_state(RetryState::RetryPolicyNotSet)
        }
    }
}

impl<E: std::error::Error> From<E> for WorkflowError {
    fn from(err: E) -> Self {
        let full = std::any::type_name::<E>();
        let short = full.rsplit("::").next().unwrap_or(full);
        WorkflowError::new(err.to_string()).with_type(short)
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl fmt::Debug for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowError")
            .field("error_type", &self.error_type)
            .field("message", &self.message)
            .field("details", &self.details)
            .finish()
    }
}

/// Why an activity called from a workflow did not return a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ActivityFailure {
    /// The last attempt failed and no retry is left: `failure.retry_state`
    /// says why (a non-retryable failure, attempts used up, a timeout),
    /// `failure.error_type` is the activity's own error type and
    /// `failure.details::<T>()` its typed details (see
    /// [`ActivityError::with_details`](crate::ActivityError::with_details)).
    #[error("activity {activity_type:?} failed on attempt {attempt}: {failure}")]
    Failed {
        /// The activity's name.
        activity_type: String,
        /// The last attempt.
        attempt: u32,
        /// The last attempt's failure. Timeouts have the types
        /// `"StartToCloseTimeout"` and `"ScheduleToCloseTimeout"`.
        failure: Failure,
    },
    /// The call was refused before scheduling (invalid options or input).
    #[error("activity {activity_type:?} was not scheduled: {message}")]
    NotScheduled {
        /// The activity's name.
        activity_type: String,
        /// What was wrong.
        message: String,
    },
    /// The activity was cancelled: by the workflow code
    /// ([`ActivityFuture::cancel`](crate::ActivityFuture::cancel), when
    /// and how its [`ActivityCancellationType`](crate::ActivityCancellationType)
    /// says), or with its workflow while the code waited for it (Temporal's
    /// try-cancel: the attempt is told and its result, if any, is dropped).
    #[error("activity {activity_type:?} was cancelled with its workflow")]
    Cancelled {
        /// The activity's name.
        activity_type: String,
    },
    /// The activity's result does not decode as the definition's output type.
    #[error("activity {activity_type:?} returned a result that does not decode: {message}")]
    ResultDecode {
        /// The activity's name.
        activity_type: String,
        /// The decode error.
        message: String,
    },
}

impl ActivityFailure {
    /// The last attempt's failure, for [`Failed`](Self::Failed).
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            ActivityFailure::Failed { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// Why retries ended: the failure's retry state for
    /// [`Failed`](Self::Failed), [`RetryState::CancelRequested`] for
    /// [`Cancelled`](Self::Cancelled), `None` when it was never scheduled
    /// or its result does not decode.
    pub fn retry_state(&self) -> Option<RetryState> {
        match self {
            ActivityFailure::Failed { failure, .. } => Some(failure.retry_state),
            ActivityFailure::Cancelled { .. } => Some(RetryState::CancelRequested),
            _ => None,
        }
    }

    /// The activity's own error type, for [`Failed`](Self::Failed).
    pub fn error_type(&self) -> Option<&str> {
        self.failure().map(|f| f.error_type.as_str())
    }

    /// The typed details the last attempt attached
    /// ([`ActivityError::with_details`](crate::ActivityError::with_details)):
    /// `Ok(None)` when there are none (or it did not fail).
    ///
    /// # Errors
    /// A [`PayloadError`] when the details do not decode as `T`.
    pub fn details<T: DeserializeOwned>(&self) -> Result<Option<T>, PayloadError> {
        match self.failure() {
            Some(failure) => failure.details(),
            None => Ok(None),
        }
    }

    pub(crate) fn decode(activity_type: &str, err: PayloadError) -> Self {
        ActivityFailure::ResultDecode {
            activity_type: activity_type.to_string(),
            message: err.to_string(),
        }
    }
}

/// The workflow was cancelled: what a wait returns when a cancellation
/// request arrives while it is pending. Only the first request is delivered;
/// the workflow may catch it, run cleanup activities, and return. A run
/// that returns an error after a cancellation request ends as `Cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the workflow was cancelled")]
pub struct Cancelled;

/// Why waiting for a signal ended without one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The workflow was cancelled while waiting.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    /// The signal's payload does not decode as the definition's type.
    #[error(transparent)]
    Decode(#[from] PayloadError),
}

/// The workflow code did something its history does not record: a code
/// change that is not replay-safe. The run is parked, not failed, and no data
/// is discarded; deploy code that matches (or uses `patched`) and open the
/// engine again to resume it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nondeterminism in workflow {workflow_id:?} (run {run_id}) at event {event_id}: \
     history has {history}, code did {code}; the run is parked until code that \
     matches its history is deployed (use ctx.patched for changes)"
)]
pub struct NondeterminismError {
    /// The workflow.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The event of the history that did not match (0 when the history
    /// ended before what the code did).
    pub event_id: EventId,
    /// What the history holds there.
    pub history: String,
    /// What the code did instead.
    pub code: String,
}
