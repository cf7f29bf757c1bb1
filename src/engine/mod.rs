//! The front door: `Engine`, its builder, and the calls a client makes.

mod handle;
mod options;

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, de::DeserializeOwned};
use tracing::{info, warn};

pub use handle::{WorkflowDescription, WorkflowHandle};
pub use options::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowOptions};

use crate::activity::{ActivityContext, ActivityDef, ActivityError};
use crate::codec;
use crate::error::{ClientError, OpenError};
use crate::history::{
    DEFAULT_MAX_PAYLOAD_BYTES, Event, EventKind, MAX_WORKFLOW_ID_LEN, Payload, RunId,
    WorkflowStatus,
};
use crate::store::{ReuseRule, RunRecord, Store, WriteOp, WriteOutcome};
use crate::worker::{DEFAULT_TASK_QUEUE, Shared, Worker};
use crate::workflow::{WorkflowContext, WorkflowDef, WorkflowError};

/// Builds an [`Engine`]: register workers, workflows and activities, then
/// [`open`](Self::open) the file.
///
/// Defaults: task queue `"default"` for the `workflow`/`activity` shortcuts;
/// payload limit 2 MiB.
pub struct EngineBuilder {
    queues: HashMap<String, Worker>,
    max_payload_bytes: usize,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("queues", &self.queues)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish()
    }
}

impl EngineBuilder {
    fn new() -> Self {
        EngineBuilder {
            queues: HashMap::new(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Adds a worker's registrations for its task queue (merged with any
    /// already given for the same queue).
    pub fn worker(mut self, worker: Worker) -> Self {
        match self.queues.get_mut(&worker.task_queue) {
            Some(existing) => existing.merge(worker),
            None => {
                self.queues.insert(worker.task_queue.clone(), worker);
            }
        }
        self
    }

    fn default_queue(&mut self) -> &mut Worker {
        self.queues
            .entry(DEFAULT_TASK_QUEUE.to_string())
            .or_insert_with(|| Worker::new(DEFAULT_TASK_QUEUE))
    }

    /// Registers a workflow on the default task queue; see [`Worker::workflow`].
    pub fn workflow<I, O, F, Fut>(mut self, def: WorkflowDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        let queue = self.default_queue();
        *queue = std::mem::replace(queue, Worker::new(DEFAULT_TASK_QUEUE)).workflow(def, f);
        self
    }

    /// Registers an async activity on the default task queue; see [`Worker::activity`].
    pub fn activity<I, O, F, Fut>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        let queue = self.default_queue();
        *queue = std::mem::replace(queue, Worker::new(DEFAULT_TASK_QUEUE)).activity(def, f);
        self
    }

    /// Registers a blocking activity on the default task queue; see
    /// [`Worker::blocking_activity`].
    pub fn blocking_activity<I, O, F>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Result<O, ActivityError> + Send + Sync + 'static,
    {
        let queue = self.default_queue();
        *queue =
            std::mem::replace(queue, Worker::new(DEFAULT_TASK_QUEUE)).blocking_activity(def, f);
        self
    }

    /// Sets the largest payload (workflow input, activity result) accepted,
    /// in bytes. Default: 2 MiB, as Temporal.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Opens (or creates) the file, and resumes every run that had not
    /// closed: each is replayed from its history and continues where it
    /// stopped. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`OpenError::AlreadyInUse`] when another engine has the file open,
    /// [`OpenError::NewerFormat`] for a file from a newer steadfast,
    /// [`OpenError::Unreadable`] for a file that is not a steadfast database.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<Engine, OpenError> {
        let path = path.as_ref().to_path_buf();
        let store = tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(|e| OpenError::InvalidConfig(format!("the open task failed: {e}")))??;
        let shared = Shared::new(store, self.queues, self.max_payload_bytes);
        resume_runs(&shared).await?;
        Ok(Engine { shared })
    }
}

/// Starts an actor for every run that had not closed.
async fn resume_runs(shared: &Arc<Shared>) -> Result<(), OpenError> {
    let unreadable = |message: String| OpenError::Unreadable {
        path: Default::default(),
        message,
    };
    let running = shared
        .store
        .running_runs()
        .map_err(|e| unreadable(e.to_string()))?;
    let mut resumed = 0usize;
    for (run_id, record) in running {
        let loaded = record.and_then(|record| {
            let history = shared.store.history(run_id, &record.workflow_id)?;
            Ok((record, history))
        });
        match loaded {
            Ok((record, history)) => {
                shared.spawn_run(run_id, record, history);
                resumed += 1;
            }
            Err(e) => {
                // One bad record parks its run; the others go on.
                warn!(%run_id, error = %e, "run cannot be resumed");
                shared.park_unreadable(run_id, e.to_string());
            }
        }
    }
    if resumed > 0 {
        info!(runs = resumed, "resumed unfinished workflow runs");
    }
    Ok(())
}

/// An open steadfast file with its workers: the client and the worker of
/// Temporal in one value.
///
/// See the [crate documentation](crate) for an example.
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Engine {
    /// A builder; see [`EngineBuilder`].
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// Starts a workflow run and returns its handle once the start is
    /// durable.
    ///
    /// # Errors
    /// [`ClientError::AlreadyStarted`] when the ID has a running run (unless
    /// the conflict policy is `UseExisting`), [`ClientError::IdReuseRejected`]
    /// when the reuse policy refuses a closed ID,
    /// [`ClientError::UnknownWorkflowType`], [`ClientError::InvalidArgument`]
    /// for an empty or over-long ID, [`ClientError::PayloadTooLarge`].
    pub async fn start_workflow<I, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
        input: I,
        options: WorkflowOptions,
    ) -> Result<WorkflowHandle<O>, ClientError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let workflow_id = workflow_id.into();
        check_workflow_id(&workflow_id)?;
        if self.shared.shutdown.is_cancelled() {
            return Err(ClientError::ShutDown);
        }
        let workflow_type = workflow.name().to_string();
        if self
            .shared
            .workflow_fn(&options.task_queue, &workflow_type)
            .is_none()
        {
            return Err(ClientError::UnknownWorkflowType {
                workflow_type,
                task_queue: options.task_queue,
            });
        }
        let input = Payload::encode(&input)?;
        if input.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: format!("the input of workflow {workflow_id:?}"),
                size: input.len(),
                limit: self.shared.max_payload_bytes,
            });
        }
        let run_id = RunId::new_random();
        let now = SystemTime::now();
        let started = Event {
            event_id: 1,
            timestamp: now,
            kind: EventKind::WorkflowStarted {
                workflow_type: workflow_type.clone(),
                workflow_id: workflow_id.clone(),
                task_queue: options.task_queue.clone(),
                input,
            },
        };
        let record = RunRecord {
            workflow_id: workflow_id.clone(),
            workflow_type,
            task_queue: options.task_queue.clone(),
            status: WorkflowStatus::Running,
            start_time: now,
            close_time: None,
            history_len: 1,
        };
        let encoded = codec::encode(&started).map_err(|e| ClientError::Storage(e.to_string()))?;
        let reuse = match options.id_reuse_policy {
            WorkflowIdReusePolicy::AllowDuplicate => ReuseRule::Allow,
            WorkflowIdReusePolicy::AllowDuplicateFailedOnly => ReuseRule::AllowIfLastNotCompleted,
            WorkflowIdReusePolicy::RejectDuplicate => ReuseRule::Reject,
        };
        let op = WriteOp::Start {
            run_id,
            record: record.clone(),
            events: vec![encoded],
            reuse,
        };
        let outcome = self.shared.store.write(vec![op]).await?;
        match outcome.into_iter().next() {
            Some(WriteOutcome::Started) => {
                self.shared.spawn_run(run_id, record, vec![started]);
                Ok(self.handle(workflow_id, run_id))
            }
            Some(WriteOutcome::AlreadyRunning(existing)) => match options.id_conflict_policy {
                WorkflowIdConflictPolicy::UseExisting => Ok(self.handle(workflow_id, existing)),
                WorkflowIdConflictPolicy::Fail => Err(ClientError::AlreadyStarted {
                    workflow_id,
                    run_id: existing,
                }),
            },
            Some(WriteOutcome::ReuseRejected(last_status)) => Err(ClientError::IdReuseRejected {
                workflow_id,
                last_status,
            }),
            _ => Err(ClientError::Storage(
                "the store gave no answer to a start".into(),
            )),
        }
    }

    fn handle<O>(&self, workflow_id: String, run_id: RunId) -> WorkflowHandle<O> {
        WorkflowHandle {
            shared: self.shared.clone(),
            workflow_id,
            run_id,
            output: PhantomData,
        }
    }

    /// A handle to the latest run of a workflow ID, running or closed; for
    /// example to wait for a run that resumed after a restart.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no run has this ID.
    pub async fn get_workflow_handle<I, O>(
        &self,
        _workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
    ) -> Result<WorkflowHandle<O>, ClientError> {
        let workflow_id = workflow_id.into();
        let (run_id, _) = self.current_run(&workflow_id)?;
        Ok(self.handle(workflow_id, run_id))
    }

    fn current_run(&self, workflow_id: &str) -> Result<(RunId, RunRecord), ClientError> {
        self.shared
            .store
            .current_run(workflow_id)?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            })
    }

    /// Describes the latest run of a workflow ID.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no run has this ID.
    pub async fn describe(&self, workflow_id: &str) -> Result<WorkflowDescription, ClientError> {
        let (run_id, _) = self.current_run(workflow_id)?;
        handle::describe_run(&self.shared, workflow_id, run_id)
    }

    /// The event history of the latest run of a workflow ID, in order.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no run has this ID;
    /// [`ClientError::Corrupt`] when a stored event does not decode.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, ClientError> {
        let (run_id, _) = self.current_run(workflow_id)?;
        Ok(self.shared.store.history(run_id, workflow_id)?)
    }

    /// Stops all work and closes the file. Every acknowledged change is
    /// already durable; activity attempts still running are abandoned and
    /// run again after the next open (activities run at least once).
    ///
    /// # Errors
    /// None today; the result leaves room for flush failures.
    pub async fn shutdown(self) -> Result<(), ClientError> {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.store.close()).await;
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Tasks end at their next await; the file closes when the last of
        // them lets go of it. Nothing acknowledged depends on this.
        self.shared.shutdown.cancel();
    }
}

fn check_workflow_id(workflow_id: &str) -> Result<(), ClientError> {
    if workflow_id.is_empty() {
        return Err(ClientError::InvalidArgument(
            "the workflow ID is empty; pass a non-empty ID".into(),
        ));
    }
    if workflow_id.len() > MAX_WORKFLOW_ID_LEN {
        return Err(ClientError::InvalidArgument(format!(
            "the workflow ID is {} bytes, over the limit of {MAX_WORKFLOW_ID_LEN}",
            workflow_id.len()
        )));
    }
    Ok(())
}
