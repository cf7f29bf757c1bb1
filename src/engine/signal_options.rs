//! `SignalOptions`: how a signal is sent.

/// The longest request ID a signal may carry, in bytes.
pub const MAX_SIGNAL_REQUEST_ID_LEN: usize = 1000;

/// Options of [`Engine::signal_with_options`](crate::Engine::signal_with_options).
///
/// ```
/// use steadfast::SignalOptions;
/// let options = SignalOptions::new().with_request_id("order-42/cancel/1");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalOptions {
    /// Deduplicates retries, as Temporal's signal request ID does: a signal
    /// whose request ID the run has already recorded is acknowledged
    /// without being delivered again. Kept in the run's history, so this
    /// holds across restarts. Default: none (every call delivers).
    pub request_id: Option<String>,
}

impl SignalOptions {
    /// No request ID.
    pub fn new() -> Self {
        SignalOptions::default()
    }

    /// Sets the request ID: send the same one when retrying a signal whose
    /// outcome is unknown (a storage error, a timeout of your own), so it
    /// is delivered at most once. Use an ID unique to the signal you mean,
    /// not to the call.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Why the options cannot be used, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        match &self.request_id {
            Some(id) if id.is_empty() => {
                Err("a signal's request ID must not be empty; leave it unset instead".into())
            }
            Some(id) if id.len() > MAX_SIGNAL_REQUEST_ID_LEN => Err(format!(
                "a signal's request ID is {} bytes, over the limit of \
                 {MAX_SIGNAL_REQUEST_ID_LEN}; use a shorter one (a hash of it)",
                id.len()
            )),
            _ => Ok(()),
        }
    }
}
