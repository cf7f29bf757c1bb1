//! `WorkflowOptions`: how a workflow is started.

use std::time::Duration;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkflowIdConflictPolicy {
    /// Fail with [`ClientError::AlreadyStarted`](crate::ClientError::AlreadyStarted).
    #[default]
    Fail,
    /// Return a handle to the running run instead.
    UseExisting,
}

/// Options of [`Engine::start_workflow`](crate::Engine::start_workflow).
///
/// ```
/// use steadfast::WorkflowOptions;
/// let options = WorkflowOptions::new().with_task_queue("my-task-queue");
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
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        WorkflowOptions {
            task_queue: DEFAULT_TASK_QUEUE.to_string(),
            id_reuse_policy: WorkflowIdReusePolicy::default(),
            id_conflict_policy: WorkflowIdConflictPolicy::default(),
            run_timeout: None,
            execution_timeout: None,
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

    /// Sets the ID conflict policy.
    pub fn with_id_conflict_policy(mut self, policy: WorkflowIdConflictPolicy) -> Self {
        self.id_conflict_policy = policy;
        self
    }
}
