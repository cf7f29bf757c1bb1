//! `ActivityError`: how an activity attempt reports failure.

use std::fmt;

use serde::Serialize;

use crate::history::{Failure, Payload};

/// An activity attempt's failure. Any error converts into it with `?` and is
/// retried per the retry policy; [`ActivityError::non_retryable`] stops retries.
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself, so
/// that every error type can convert into it.
pub struct ActivityError {
    error_type: String,
    message: String,
    non_retryable: bool,
    details: Option<Payload>,
}

impl ActivityError {
    /// A retryable failure of type `"ActivityError"`.
    pub fn retryable(message: impl Into<String>) -> Self {
        ActivityError {
            error_type: "ActivityError".into(),
            message: message.into(),
            non_retryable: false,
            details: None,
        }
    }

    /// A failure that ends retries at once, whatever the retry policy says.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        ActivityError {
            non_retryable: true,
            ..ActivityError::retryable(message)
        }
    }

    /// Sets the failure type, matched against the retry policy's
    /// `non_retryable_error_types`.
    pub fn with_type(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = error_type.into();
        self
    }

    /// Attaches typed details, which reach the workflow in the
    /// [`ActivityFailure`](crate::ActivityFailure) once retries end
    /// (`failure.details::<T>()`), and `describe` with every attempt's
    /// failure. A later call replaces them. Details that do not encode as
    /// JSON are left out, and the message says why.
    ///
    /// ```
    /// use steadfast::ActivityError;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Declined { code: u32 }
    /// let err = ActivityError::non_retryable("card declined")
    ///     .with_type("CardDeclined")
    ///     .with_details(Declined { code: 51 });
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

    /// True when this failure ends retries.
    pub fn is_non_retryable(&self) -> bool {
        self.non_retryable
    }

    /// The failure as recorded; its retry state is set once the retry
    /// decision is made.
    pub(crate) fn into_failure(self) -> Failure {
        Failure {
            details: self.details,
            ..Failure::new(self.error_type, self.message).with_non_retryable(self.non_retryable)
        }
    }
}

impl<E: std::error::Error> From<E> for ActivityError {
    fn from(err: E) -> Self {
        let full = std::any::type_name::<E>();
        let short = full.rsplit("::").next().unwrap_or(full);
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ActivityError::retryable(message).with_type(short)
    }
}

impl fmt::Display for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl fmt::Debug for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityError")
            .field("error_type", &self.error_type)
            .field("message", &self.message)
            .field("non_retryable", &self.non_retryable)
            .field("details", &self.details)
            .finish()
    }
}
