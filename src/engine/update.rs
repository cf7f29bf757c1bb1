//! Updates from the client: `Engine::update`, `UpdateOptions`, and the
//! typed handle's `update`.

use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use super::{Engine, Started, WorkflowHandle, WorkflowOptions};
use crate::error::{ClientError, UpdateError};
use crate::history::{MutableState, Payload, UpdateOutcome, UpdateStatus, WorkflowStatus};
use crate::worker::{RunMsg, Shared, StartUpdate};
use crate::workflow::{UpdateDef, WorkflowDef};

/// The longest update ID, in bytes.
pub const MAX_UPDATE_ID_LEN: usize = 1000;

/// Options of [`Engine::update_with_options`].
///
/// ```
/// use steadfast::UpdateOptions;
/// let options = UpdateOptions::new().with_update_id("sub-7/plan/2");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpdateOptions {
    /// The update's ID: an update whose ID the run has accepted already is
    /// not run again; the call gets the first one's outcome (waiting for
    /// it if the handler has not returned), also after a restart. As in
    /// Temporal, IDs are known to the run that accepted them, not to the
    /// next run of a continue-as-new. Default: a new random ID per call.
    pub update_id: Option<String>,
}

impl UpdateOptions {
    /// A new random update ID per call.
    pub fn new() -> Self {
        UpdateOptions::default()
    }

    /// Sets the update ID: send the same one when retrying an update whose
    /// outcome is unknown (a storage error, a crash of the caller).
    pub fn with_update_id(mut self, update_id: impl Into<String>) -> Self {
        self.update_id = Some(update_id.into());
        self
    }

    pub(super) fn update_id(&self) -> Result<String, ClientError> {
        match &self.update_id {
            None => Ok(uuid::Uuid::new_v4().to_string()),
            Some(id) if id.is_empty() => Err(ClientError::InvalidArgument(
                "an update ID must not be empty; leave it unset for a random one".into(),
            )),
            Some(id) if id.len() > MAX_UPDATE_ID_LEN => Err(ClientError::InvalidArgument(format!(
                "an update ID is {} bytes, over the limit of {MAX_UPDATE_ID_LEN}; use a \
                 shorter one (a hash of it)",
                id.len()
            ))),
            Some(id) => Ok(id.clone()),
        }
    }
}

impl Engine {
    /// Sends an update to the running run of a workflow ID and returns its
    /// handler's result (Temporal's `UpdateWorkflow`, waiting for
    /// completion). The workflow's validator runs first, in-process: a
    /// rejection writes nothing. An accepted update is durable before its
    /// handler runs, and its outcome is recorded: a crash in between does
    /// not lose it (the handler goes on when the run resumes; call again
    /// with the same update ID, see [`update_with_options`](Self::update_with_options),
    /// to get the outcome).
    ///
    /// ```no_run
    /// # use steadfast::{Engine, UpdateDef, UpdateError};
    /// const CHANGE_PLAN: UpdateDef<String, u32> = UpdateDef::new("change_plan");
    /// # async fn call(engine: &Engine) -> Result<(), UpdateError> {
    /// match engine.update("sub-7", CHANGE_PLAN, "gold".to_string()).await {
    ///     Ok(price) => println!("update change_plan: gold at {price}"),
    ///     Err(UpdateError::Rejected { message, .. }) => println!("update rejected: {message}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`UpdateError::Rejected`] by the validator, [`UpdateError::UnknownUpdate`]
    /// when the workflow has no handler of that name,
    /// [`UpdateError::InvalidInput`] when the input is not of the handler's
    /// type, [`UpdateError::Failed`] when the handler returned an error,
    /// [`UpdateError::Aborted`] when the run closed before the handler
    /// returned, [`UpdateError::TooManyInFlight`] and
    /// [`UpdateError::TooManyUpdates`] over the run's limits (nothing
    /// written; see [`EngineBuilder::update_limits`](crate::EngineBuilder::update_limits));
    /// [`ClientError::NotFound`], [`ClientError::WorkflowClosed`],
    /// [`ClientError::PayloadTooLarge`], storage errors (inside
    /// [`UpdateError::Client`]); a payload error when the result does not
    /// decode as `O`.
    pub async fn update<I, O>(
        &self,
        workflow_id: &str,
        update: UpdateDef<I, O>,
        input: I,
    ) -> Result<O, UpdateError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        self.update_with_options(workflow_id, update, input, UpdateOptions::new())
            .await
    }

    /// [`update`](Self::update) with options: an update ID makes the call
    /// safe to repeat. A call with the ID of an update the run accepted
    /// before gets that update's outcome (waiting for it while the handler
    /// runs) and runs nothing again; this holds after a restart, and on a
    /// closed run (its history answers).
    ///
    /// # Errors
    /// As [`update`](Self::update), and [`ClientError::InvalidArgument`]
    /// for an empty or over-long update ID.
    pub async fn update_with_options<I, O>(
        &self,
        workflow_id: &str,
        update: UpdateDef<I, O>,
        input: I,
        options: UpdateOptions,
    ) -> Result<O, UpdateError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let update_id = options.update_id()?;
        let input = self.encode_checked(&input, || {
            format!("the input of update {:?}", update.name())
        })?;
        let outcome = send(&self.shared, workflow_id, update_id, update.name(), input).await?;
        decode(workflow_id, outcome)
    }
}

impl Engine {
    /// Starts a workflow and sends it an update, atomically: the start,
    /// the workflow's first activation (which registers its handlers) and
    /// the update's acceptance are one commit, so there is never a run
    /// started without its update (Temporal's update-with-start is not
    /// atomic). Returns the run's handle and the handler's result.
    ///
    /// When the ID already has a running run, the options' conflict policy
    /// decides, as Temporal requires one: `UseExisting` sends the update
    /// to that run, `Fail` (the default) refuses with
    /// [`ClientError::AlreadyStarted`]. A closed ID is started again under
    /// the reuse policy.
    ///
    /// # Errors
    /// As [`start_workflow`](Self::start_workflow) (inside
    /// [`UpdateError::Client`]) and [`update`](Self::update). A rejected
    /// update (validator, unknown name, input type) starts nothing: no
    /// run, no event.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_with_start<I, O, U, R>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
        input: I,
        options: WorkflowOptions,
        update: UpdateDef<U, R>,
        update_input: U,
        update_options: UpdateOptions,
    ) -> Result<(WorkflowHandle<O>, R), UpdateError>
    where
        I: Serialize,
        O: DeserializeOwned,
        U: Serialize,
        R: DeserializeOwned,
    {
        let workflow_id = workflow_id.into();
        let start = self.prepare_start(workflow, &workflow_id, &input, &options)?;
        let update_id = update_options.update_id()?;
        let name = update.name();
        let payload =
            self.encode_checked(&update_input, || format!("the input of update {name:?}"))?;
        let (reply, answer) = oneshot::channel();
        let pending = StartUpdate {
            update_id: update_id.clone(),
            name: name.to_string(),
            input: payload.clone(),
            reply,
        };
        let started = self.start_with(start, &options, None, Some(pending)).await;
        let mut answer = answer;
        let outcome = match started {
            Ok(Started::New(run_id)) => match answer.await {
                Ok(result) => (run_id, (update_id, result?)),
                // Started in another process's shard (PostgreSQL shared by
                // several): the update is accepted in the run's history,
                // and its owner answers it by its ID.
                Err(_) if !self.shared.store.owns(&workflow_id) => {
                    let outcome =
                        send(&self.shared, &workflow_id, update_id, name, payload).await?;
                    (run_id, outcome)
                }
                Err(_) => return Err(not_live_error(&self.shared, &workflow_id, run_id).await),
            },
            Ok(Started::Existing(run_id)) => {
                let outcome = send(&self.shared, &workflow_id, update_id, name, payload).await?;
                (run_id, outcome)
            }
            Err(e) => {
                // A refusal by the new run's validator comes with its reason.
                if let Ok(Err(refusal)) = answer.try_recv() {
                    return Err(refusal);
                }
                return Err(e.into());
            }
        };
        let (run_id, outcome) = outcome;
        let result = decode(&workflow_id, outcome)?;
        Ok((self.handle(workflow_id, run_id), result))
    }
}

async fn not_live_error(
    shared: &Arc<Shared>,
    workflow_id: &str,
    run_id: crate::history::RunId,
) -> UpdateError {
    super::not_live(shared, workflow_id, run_id).await.into()
}

impl<O> WorkflowHandle<O> {
    /// Sends an update to this handle's workflow ID (its current run, so
    /// across a continue-as-new too) and returns the handler's result; see
    /// [`Engine::update`].
    ///
    /// # Errors
    /// As [`Engine::update`].
    pub async fn update<I, U>(&self, update: UpdateDef<I, U>, input: I) -> Result<U, UpdateError>
    where
        I: Serialize,
        U: DeserializeOwned,
    {
        let input = Payload::encode(&input).map_err(ClientError::from)?;
        if input.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: format!("the input of update {:?}", update.name()),
                size: input.len(),
                limit: self.shared.max_payload_bytes,
            }
            .into());
        }
        let update_id = UpdateOptions::new().update_id()?;
        let outcome = send(
            &self.shared,
            &self.workflow_id,
            update_id,
            update.name(),
            input,
        )
        .await?;
        decode(&self.workflow_id, outcome)
    }
}

/// The handler's outcome as the caller's result.
pub(super) fn decode<O: DeserializeOwned>(
    workflow_id: &str,
    outcome: (String, UpdateOutcome),
) -> Result<O, UpdateError> {
    match outcome {
        (_, UpdateOutcome::Success { result }) => Ok(result.decode()?),
        (update_id, UpdateOutcome::Failure { failure }) => Err(UpdateError::Failed {
            workflow_id: workflow_id.to_string(),
            update_id,
            failure: Box::new(failure),
        }),
    }
}

/// Sends an update to the chain's current run and waits for its outcome.
/// A run that closed answers from its history: the outcome of an update
/// ID it accepted, or, after a continue-as-new, the next run takes it.
pub(super) async fn send(
    shared: &Arc<Shared>,
    workflow_id: &str,
    update_id: String,
    name: &str,
    input: Payload,
) -> Result<(String, UpdateOutcome), UpdateError> {
    loop {
        if shared.closing() {
            return Err(ClientError::ShutDown.into());
        }
        let (run_id, _) = shared
            .store
            .current_run(workflow_id)
            .await
            .map_err(ClientError::from)?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            })?;
        let (reply, answer) = oneshot::channel();
        let msg = RunMsg::Update {
            update_id: update_id.clone(),
            name: name.to_string(),
            input: input.clone(),
            reply,
        };
        let answered = match shared.deliver(run_id, msg) {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        let result = match answered {
            Some(result) => result,
            None => Err(super::not_live(shared, workflow_id, run_id).await.into()),
        };
        let status = match result {
            Ok(outcome) => return Ok((update_id, outcome)),
            Err(UpdateError::Client(ClientError::WorkflowClosed { status, .. })) => status,
            Err(e) => return Err(e),
        };
        // Closed: its history knows the updates it accepted.
        let history = shared
            .store
            .history(run_id, workflow_id)
            .await
            .map_err(ClientError::from)?;
        match MutableState::fold(&history).updates.remove(&update_id) {
            Some(UpdateStatus::Completed(outcome)) => return Ok((update_id, outcome)),
            Some(UpdateStatus::Accepted { .. }) => {
                return Err(UpdateError::Aborted {
                    workflow_id: workflow_id.to_string(),
                    update_id,
                    status,
                });
            }
            // Not accepted: the chain's next run takes it.
            None if status == WorkflowStatus::ContinuedAsNew => continue,
            None => {
                return Err(ClientError::WorkflowClosed {
                    workflow_id: workflow_id.to_string(),
                    status,
                }
                .into());
            }
        }
    }
}
