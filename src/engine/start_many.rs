//! Starting many workflows in one call: each start is prepared and checked
//! as `start_workflow` does, then every one is sent to the store before any
//! is awaited, so the group-commit writer takes them together (up to 4,096
//! per commit) instead of one commit per awaited start. An application that
//! starts a batch in a loop, awaiting each start, pays one durable commit
//! per workflow; this pays about one per 4,096.

use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Engine, Started, WorkflowHandle, WorkflowOptions};
use crate::error::ClientError;
use crate::workflow::WorkflowDef;

impl Engine {
    /// Starts every workflow of `starts` (`(workflow_id, input, options)`)
    /// and answers each in the order given, once every start is durable:
    /// its handle, or the error `start_workflow` would have returned for it
    /// (an ID already running, a reuse policy that refuses, a bad option).
    /// One start's refusal does not refuse the others; two starts of the
    /// same workflow ID in one call are as two calls, so the second finds
    /// the first running.
    ///
    /// The starts share group commits (up to 4,096 per commit): with the
    /// engine's durable commit costing most of a start, this is how a batch
    /// of workflows starts fastest (`cargo bench --bench engine -- starts`).
    ///
    /// ```
    /// # use steadfast::{Engine, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};
    /// # const CHARGE: WorkflowDef<u32, u32> = WorkflowDef::new("Charge");
    /// # async fn charge(_ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> { Ok(n) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), steadfast::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let engine = Engine::builder().workflow(CHARGE, charge).open(dir.path().join("e")).await?;
    /// let starts = (0..100).map(|i| (format!("charge-{i}"), i, WorkflowOptions::new()));
    /// for started in engine.start_workflows(CHARGE, starts).await? {
    ///     let handle = started?;
    ///     println!("started {}", handle.workflow_id());
    /// }
    /// # engine.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The outer error refuses the whole call ([`ClientError::ReadOnly`],
    /// [`ClientError::ShutDown`]); each start's own error is in its place.
    pub async fn start_workflows<I, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        starts: impl IntoIterator<Item = (String, I, WorkflowOptions)>,
    ) -> Result<Vec<Result<WorkflowHandle<O>, ClientError>>, ClientError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        self.writable("start_workflows")?;
        if self.shared.closing() {
            return Err(ClientError::ShutDown);
        }
        let starts = starts
            .into_iter()
            .map(|(workflow_id, input, options)| async move {
                let start = self.prepare_start(workflow, &workflow_id, &input, &options)?;
                match self.start(start, &options, None).await? {
                    Started::New(run_id) | Started::Existing(run_id) => {
                        Ok(self.handle(workflow_id, run_id))
                    }
                }
            });
        Ok(join_all(starts).await)
    }
}
