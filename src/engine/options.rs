//! `WorkflowOptions`: how a workflow is started.

use std::time::Duration;

use serde::Serialize;

use crate::history::{Payload, SearchAttributeValue, SearchAttributes};
use crate::worker::DEFAULT_TASK_QUEUE;

/// Whether a workflow ID whose last run has closed may be started again.
/// Temporal's default is [`AllowDuplicate`](Self::AllowDuplicate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkflowIdReusePolicy {
    /// Always allowed.
    #[default]
    AllowDuplicate,
    /// Allowed only when the last run did not complete successfully.
    AllowDuplicateFailedOnly,
    /// Never allowed.
    RejectDuplicate,
}

/// What starting a workflow ID that has a running run does.
/// Temporal's default is [`Fail`](Self::Fail).
///
/// # An idempotent start
///
/// A caller that may send the same start twice (a retried request, a
/// restarted process) wants one run per ID, and its handle either way.
/// [`UseExisting`](Self::UseExisting) answers a start of a running ID with
/// the running run; with [`WorkflowIdReusePolicy::RejectDuplicate`] an ID
/// whose run has closed is not started again, and
/// [`Engine::get_workflow_handle`](crate::Engine::get_workflow_handle)
/// gives that run:
///
/// ```
/// use steadfast::{
///     ClientError, Engine, WorkflowContext, WorkflowDef, WorkflowError, WorkflowHandle,
///     WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowOptions,
/// };
/// const ORDER: WorkflowDef<u32, u32> = WorkflowDef::new("Order");
///
/// /// Starts order `id` at most once, ever; returns its run either way.
/// async fn start_once(engine: &Engine, id: &str, qty: u32) -> Result<WorkflowHandle<u32>, ClientError> {
///     let once = WorkflowOptions::new()
///         .with_id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
///         .with_id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate);
///     match engine.start_workflow(ORDER, id, qty, once).await {
///         Err(ClientError::IdReuseRejected { .. }) => engine.get_workflow_handle(ORDER, id).await,
///         started => started,
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), steadfast::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::builder()
///     .workflow(ORDER, |_ctx: WorkflowContext, qty: u32| async move { Ok::<_, WorkflowError>(qty) })
///     .open(dir.path().join("orders.steadfast"))
///     .await?;
/// let first = start_once(&engine, "order-7", 3).await?;
/// assert_eq!(first.result().await?, 3);
/// let again = start_once(&engine, "order-7", 3).await?;
/// assert_eq!(again.run_id(), first.run_id());
/// # engine.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkflowIdConflictPolicy {
    /// Fail with [`ClientError::AlreadyStarted`](crate::ClientError::AlreadyStarted).
    #[default]
    Fail,
    /// Return a handle to the running run instead (Temporal's
    /// `USE_EXISTING`); the start's input and options are then ignored.
    UseExisting,
}

/// Options of [`Engine::start_workflow`](crate::Engine::start_workflow).
///
/// ```
/// use steadfast::WorkflowOptions;
/// let options = WorkflowOptions::new()
///     .with_task_queue("my-task-queue")
///     .with_search_attribute("CustomerId", "c-42")
///     .with_memo(serde_json::json!({ "note": "first order" }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowOptions {
    /// The task queue whose worker runs the workflow and, by default, its
    /// activities. Default: `"default"`.
    pub task_queue: String,
    /// See [`WorkflowIdReusePolicy`].
    pub id_reuse_policy: WorkflowIdReusePolicy,
    /// See [`WorkflowIdConflictPolicy`].
    pub id_conflict_policy: WorkflowIdConflictPolicy,
    /// Time allowed for the run; past it the run ends as `TimedOut`.
    /// Default: unlimited.
    pub run_timeout: Option<Duration>,
    /// Time allowed for the whole workflow execution; past it the run ends
    /// as `TimedOut`. Default: unlimited.
    pub execution_timeout: Option<Duration>,
    /// Search attributes the run starts with; `list` can filter on them
    /// and the workflow can change them
    /// ([`WorkflowContext::upsert_search_attributes`](crate::WorkflowContext::upsert_search_attributes)).
    /// Kept with the run's record, not in its history.
    pub search_attributes: SearchAttributes,
    /// Free JSON shown by `describe` and `list`, not indexed. Set it with
    /// [`with_memo`](Self::with_memo).
    pub memo: Option<Payload>,
    /// Why the value given to `with_memo` did not encode, reported by the start.
    memo_error: Option<String>,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        WorkflowOptions {
            task_queue: DEFAULT_TASK_QUEUE.to_string(),
            id_reuse_policy: WorkflowIdReusePolicy::default(),
            id_conflict_policy: WorkflowIdConflictPolicy::default(),
            run_timeout: None,
            execution_timeout: None,
            search_attributes: SearchAttributes::new(),
            memo: None,
            memo_error: None,
        }
    }
}

impl WorkflowOptions {
    /// The defaults: task queue `"default"`, Temporal's ID policies.
    pub fn new() -> Self {
        WorkflowOptions::default()
    }

    /// Sets the task queue.
    pub fn with_task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = task_queue.into();
        self
    }

    /// Sets the ID reuse policy.
    pub fn with_id_reuse_policy(mut self, policy: WorkflowIdReusePolicy) -> Self {
        self.id_reuse_policy = policy;
        self
    }

    /// Sets the run timeout.
    pub fn with_run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = Some(timeout);
        self
    }

    /// Sets the execution timeout.
    pub fn with_execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Adds a search attribute the run starts with (see
    /// [`SearchAttributes::with`] for the kinds values convert to).
    pub fn with_search_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<SearchAttributeValue>,
    ) -> Self {
        self.search_attributes.insert(name, value);
        self
    }

    /// Sets the search attributes the run starts with.
    pub fn with_search_attributes(mut self, attributes: SearchAttributes) -> Self {
        self.search_attributes = attributes;
        self
    }

    /// Sets the memo, stored as JSON. A value serde cannot encode makes the
    /// start fail with [`ClientError::InvalidArgument`](crate::ClientError::InvalidArgument).
    pub fn with_memo(mut self, memo: impl Serialize) -> Self {
        match Payload::encode(&memo) {
            Ok(payload) => {
                self.memo = Some(payload);
                self.memo_error = None;
            }
            Err(e) => {
                self.memo = None;
                self.memo_error = Some(e.to_string());
            }
        }
        self
    }

    /// Why the memo given to `with_memo` could not be encoded.
    pub(crate) fn memo_error(&self) -> Option<&str> {
        self.memo_error.as_deref()
    }

    /// Sets the ID conflict policy.
    pub fn with_id_conflict_policy(mut self, policy: WorkflowIdConflictPolicy) -> Self {
        self.id_conflict_policy = policy;
        self
    }
}
