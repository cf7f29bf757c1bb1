//! Pausing and unpausing a run by an operator (Temporal's
//! `PauseWorkflowExecution`): durable events in the run's history, folded
//! like every other (see `worker::run::pause` for what a pause holds).

use tokio::sync::oneshot;

use super::Engine;
use crate::error::ClientError;
use crate::worker::RunMsg;

impl Engine {
    /// Pauses the latest run of a workflow ID: until
    /// [`unpause_workflow`](Self::unpause_workflow), no activity attempt
    /// begins and no durable timer fires. They are held, not lost: a timer
    /// that comes due during the pause fires at the unpause, and an attempt
    /// scheduled or due during the pause begins then. Attempts already
    /// running go on, and their outcomes are recorded; queries answer
    /// (unlike Temporal: a query only reads); signals and termination are
    /// taken as usual; a cancellation request is held and seen by the code
    /// at the unpause (as in Temporal); a new update is rejected with
    /// [`UpdateError::Paused`](crate::UpdateError::Paused), nothing
    /// written, as in Temporal (an update ID accepted before the pause
    /// still answers its outcome); run and execution timeouts keep running
    /// (as in Temporal). Durable:
    /// a paused run stays paused across restarts. Pausing a paused run
    /// keeps its first reason and succeeds.
    ///
    /// # Errors
    /// [`ClientError::NotFound`], [`ClientError::WorkflowClosed`],
    /// [`ClientError::InvalidArgument`] for an empty reason, storage errors.
    pub async fn pause_workflow(&self, workflow_id: &str, reason: &str) -> Result<(), ClientError> {
        self.pause_message(workflow_id, reason, "pause", |reason, ack| RunMsg::Pause {
            reason,
            ack,
        })
        .await
    }

    /// Unpauses a paused run: what the pause held acts now. A run that is
    /// not paused is left as it is, and the call succeeds.
    ///
    /// # Errors
    /// As [`pause_workflow`](Self::pause_workflow).
    pub async fn unpause_workflow(
        &self,
        workflow_id: &str,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.pause_message(workflow_id, reason, "unpause", |reason, ack| {
            RunMsg::Unpause { reason, ack }
        })
        .await
    }

    async fn pause_message(
        &self,
        workflow_id: &str,
        reason: &str,
        call: &'static str,
        msg: impl Fn(String, crate::worker::Ack) -> RunMsg,
    ) -> Result<(), ClientError> {
        self.writable(call)?;
        if reason.trim().is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "the reason of a {call} is empty; say why (it is recorded in the run's history)"
            )));
        }
        let (run_id, _) = self.current_run(workflow_id).await?;
        let (ack, answer) = oneshot::channel();
        self.ask(workflow_id, run_id, msg(reason.to_string(), ack), answer)
            .await?
    }
}
