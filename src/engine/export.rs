//! `Engine::workflow_history`: a run's history with its identity, ready to
//! save as a file (HISTORY-JSON in FORMAT.md) and replay with
//! [`Replayer`](crate::Replayer).

use super::Engine;
use crate::error::ClientError;
use crate::history::{RunId, WorkflowHistory};

impl Engine {
    /// The latest run of a workflow ID as a [`WorkflowHistory`]: its events
    /// (as [`history`](Self::history) returns them) with the run ID and
    /// workflow type a replay needs. Save it with
    /// [`WorkflowHistory::to_file`] to keep it as a test input.
    ///
    /// ```no_run
    /// # async fn example(engine: steadfast::Engine) -> Result<(), steadfast::Error> {
    /// let history = engine.workflow_history("order-42").await?;
    /// history.to_file("tests/fixtures/histories/order-42.json")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown ID, a client error when the
    /// file could not be read.
    pub async fn workflow_history(
        &self,
        workflow_id: &str,
    ) -> Result<WorkflowHistory, ClientError> {
        let (run_id, _) = self.current_run(workflow_id).await?;
        self.workflow_run_history(workflow_id, run_id).await
    }

    /// One run of a workflow ID as a [`WorkflowHistory`], by run ID: an
    /// earlier run of a continue-as-new chain, say
    /// ([`WorkflowDescription::previous_run_id`](crate::WorkflowDescription::previous_run_id)
    /// names it).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no such run is stored, a client
    /// error when the file could not be read.
    pub async fn workflow_run_history(
        &self,
        workflow_id: &str,
        run_id: RunId,
    ) -> Result<WorkflowHistory, ClientError> {
        let record = self
            .shared
            .store
            .run(run_id, workflow_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            })?;
        let events = self.shared.store.history(run_id, workflow_id).await?;
        Ok(WorkflowHistory {
            workflow_id: workflow_id.to_string(),
            run_id,
            workflow_type: record.workflow_type,
            events,
        })
    }
}
