//! Calls that name a signal, a query or an update at run time and carry JSON: what an
//! admin endpoint or a command-line tool sends on a person's behalf, where
//! no typed definition is at hand. The typed calls
//! ([`Engine::signal`](super::Engine::signal)) stay the way to use them
//! from code.

use tokio::sync::oneshot;

use super::{Engine, SignalOptions, UpdateOptions};
use crate::error::{ClientError, UpdateError};
use crate::history::{Payload, UpdateOutcome};
use crate::worker::RunMsg;

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

    /// Asks the query `query_name` with an already encoded argument (JSON;
    /// `null` for a query without one) and returns the handler's answer as
    /// JSON, as [`query_with`](Self::query_with) does for a typed
    /// [`QueryDef`](crate::QueryDef). A closed run (and every run of a
    /// read-only engine) is answered by replaying its history.
    ///
    /// # Errors
    /// As [`query_with`](Self::query_with); an argument of the wrong shape
    /// is the handler's decode error, [`ClientError::QueryFailed`].
    pub async fn query_by_name(
        &self,
        workflow_id: &str,
        query_name: &str,
        input: Payload,
    ) -> Result<Payload, ClientError> {
        if input.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: format!("the argument of query {query_name:?}"),
                size: input.len(),
                limit: self.shared.max_payload_bytes,
            });
        }
        let (run_id, record) = self.current_run(workflow_id).await?;
        // Without the workflow's code no handler is registered: say why,
        // rather than that the code registers none.
        if !self.shared.has_queue(&record.task_queue) {
            return Err(ClientError::NoWorker {
                workflow_id: workflow_id.to_string(),
                task_queue: record.task_queue,
            });
        }
        if self
            .shared
            .workflow_fn(&record.task_queue, &record.workflow_type)
            .is_none()
        {
            return Err(ClientError::UnknownWorkflowType {
                workflow_type: record.workflow_type,
                task_queue: record.task_queue,
            });
        }
        // A read-only engine loads no run: the history is replayed to answer.
        let answer = if record.status.is_closed() || self.read_only {
            self.shared
                .query_closed(run_id, &record, query_name, &input)
                .await?
        } else {
            let (reply, answer) = oneshot::channel();
            let msg = RunMsg::Query {
                name: query_name.to_string(),
                input: input.clone(),
                reply,
            };
            match self.ask(workflow_id, run_id, msg, answer).await {
                Ok(answer) => answer?,
                // It closed meanwhile: answer from its history.
                Err(ClientError::WorkflowClosed { .. }) => {
                    let record = self.current_run(workflow_id).await?.1;
                    self.shared
                        .query_closed(run_id, &record, query_name, &input)
                        .await?
                }
                Err(e) => return Err(e),
            }
        };
        Ok(answer)
    }

    /// Sends the update `update_name` with an already encoded input (JSON)
    /// to a workflow's running run and returns the handler's result as
    /// JSON, as [`update_with_options`](Self::update_with_options) does for
    /// a typed [`UpdateDef`](crate::UpdateDef): the validator runs first
    /// and a rejection writes nothing; an update ID makes the call safe to
    /// repeat.
    ///
    /// ```no_run
    /// # use steadfast::{Engine, Payload, UpdateError, UpdateOptions};
    /// # async fn send(engine: &Engine) -> Result<(), UpdateError> {
    /// let input = Payload::encode(&"gold").map_err(steadfast::ClientError::from)?;
    /// let options = UpdateOptions::new().with_update_id("sub-7/plan/2");
    /// let price = engine.update_by_name("sub-7", "change_plan", input, options).await?;
    /// println!("{}", price.as_json());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`update_with_options`](Self::update_with_options):
    /// [`UpdateError::Rejected`] by the validator,
    /// [`UpdateError::InvalidInput`] for an input of the wrong shape,
    /// [`UpdateError::UnknownUpdate`], [`UpdateError::Failed`]; and
    /// [`ClientError::InvalidArgument`] for an empty update name,
    /// [`ClientError::ReadOnly`] on a read-only engine.
    pub async fn update_by_name(
        &self,
        workflow_id: &str,
        update_name: &str,
        input: Payload,
        options: UpdateOptions,
    ) -> Result<Payload, UpdateError> {
        self.writable("update")?;
        if update_name.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the update name is empty; name the update the workflow handles".to_string(),
            )
            .into());
        }
        let update_id = options.update_id()?;
        if input.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: format!("the input of update {update_name:?}"),
                size: input.len(),
                limit: self.shared.max_payload_bytes,
            }
            .into());
        }
        match super::update::send(&self.shared, workflow_id, update_id, update_name, input).await? {
            (_, UpdateOutcome::Success { result }) => Ok(result),
            (update_id, UpdateOutcome::Failure { failure }) => Err(UpdateError::Failed {
                workflow_id: workflow_id.to_string(),
                update_id,
                failure: Box::new(failure),
            }),
        }
    }
}
