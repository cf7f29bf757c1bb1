//! Calls that name a signal at run time and carry a JSON payload: what an
//! admin endpoint or a command-line tool sends on a person's behalf, where
//! no typed definition is at hand. The typed calls
//! ([`Engine::signal`](super::Engine::signal)) stay the way to use them
//! from code.

use super::{Engine, SignalOptions};
use crate::error::ClientError;
use crate::history::Payload;

impl Engine {
    /// Sends the signal `signal_name` with an already encoded payload
    /// (JSON, as [`Payload::encode`] makes it) to a workflow's running
    /// run, as [`signal_with_options`](Self::signal_with_options) does for
    /// a typed [`SignalDef`](crate::SignalDef). The workflow decodes the
    /// payload as its definition's type when it reads the signal; a payload
    /// of the wrong shape fails there, as a typed read would.
    ///
    /// ```no_run
    /// # use steadfast::{ClientError, Engine, Payload, SignalOptions};
    /// # async fn send(engine: &Engine) -> Result<(), ClientError> {
    /// let payload = Payload::encode(&serde_json::json!({"reason": "moved"}))?;
    /// engine.signal_by_name("sub-7", "cancel", payload, SignalOptions::new()).await
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`signal_with_options`](Self::signal_with_options), and
    /// [`ClientError::InvalidArgument`] for an empty signal name.
    pub async fn signal_by_name(
        &self,
        workflow_id: &str,
        signal_name: &str,
        payload: Payload,
        options: SignalOptions,
    ) -> Result<(), ClientError> {
        if signal_name.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the signal name is empty; name the signal the workflow reads".to_string(),
            ));
        }
        options.check().map_err(ClientError::InvalidArgument)?;
        if payload.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: format!("signal {signal_name:?}"),
                size: payload.len(),
                limit: self.shared.max_payload_bytes,
            });
        }
        self.signal_chain(workflow_id, signal_name, payload, options)
            .await
    }
}
