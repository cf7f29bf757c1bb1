//! `Engine::delete`: removing a closed workflow and everything of it.

use super::Engine;
use crate::error::ClientError;
use crate::store::{WriteOp, WriteOutcome};

impl Engine {
    /// Deletes a closed workflow: every run of the ID, their histories,
    /// their entries in `list`, and the ID itself, in one durable commit.
    /// Afterwards `describe` and `history` answer
    /// [`ClientError::NotFound`] and the ID can be started again as new.
    ///
    /// ```no_run
    /// # async fn example(engine: steadfast::Engine) -> Result<(), steadfast::ClientError> {
    /// engine.delete("order-42").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::StillRunning`] when the ID's latest run is running
    /// (terminate or cancel it first), [`ClientError::NotFound`] for an
    /// unknown ID, a client error when the file could not be written.
    pub async fn delete(&self, workflow_id: &str) -> Result<(), ClientError> {
        self.writable("delete")?;
        let op = WriteOp::Delete {
            workflow_id: workflow_id.to_string(),
        };
        match self.shared.store.write(op).await? {
            WriteOutcome::Deleted(runs) => {
                // A closed run has left memory already; this is for a run
                // that closed a moment ago and is still on its way out.
                for run_id in runs {
                    self.shared.unregister(run_id);
                }
                Ok(())
            }
            WriteOutcome::NotFound => Err(ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            }),
            WriteOutcome::StillRunning(run_id) => Err(ClientError::StillRunning {
                workflow_id: workflow_id.to_string(),
                run_id,
            }),
            other => Err(ClientError::Storage(format!(
                "the store answered a delete with {other:?}"
            ))),
        }
    }
}
