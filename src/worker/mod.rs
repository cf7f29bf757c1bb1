//! Workers: what runs on each task queue, and the machinery that runs it
//! (run actors, activity attempts, timers).

mod attempt;
mod run;
mod timers;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::{self, ActivityContext, ActivityDef, ActivityError, ActivityFn};
use crate::history::{Event, RunId, WorkflowStatus};
use crate::store::{RunRecord, Store};
use crate::workflow::{self, ParkReason, WorkflowContext, WorkflowDef, WorkflowError, WorkflowFn};

use timers::Timers;

/// The task queue used when none is named.
pub const DEFAULT_TASK_QUEUE: &str = "default";

/// The workflows and activities served on one task queue, as a Temporal
/// worker registers them. Give it to [`EngineBuilder::worker`](crate::EngineBuilder::worker).
///
/// ```
/// use steadfast::{ActivityContext, ActivityDef, ActivityError, Worker};
/// const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
/// async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
///     Ok(format!("Hello, {name}!"))
/// }
/// let worker = Worker::new("my-task-queue").activity(SAY_HELLO, say_hello);
/// ```
pub struct Worker {
    pub(crate) task_queue: String,
    pub(crate) workflows: HashMap<String, WorkflowFn>,
    pub(crate) activities: HashMap<String, ActivityFn>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("task_queue", &self.task_queue)
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("activities", &self.activities.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Worker {
    /// A worker for `task_queue` with nothing registered yet.
    pub fn new(task_queue: impl Into<String>) -> Self {
        Worker {
            task_queue: task_queue.into(),
            workflows: HashMap::new(),
            activities: HashMap::new(),
        }
    }

    /// Registers a workflow: an async function of a [`WorkflowContext`] and
    /// the definition's input type, returning its output type.
    pub fn workflow<I, O, F, Fut>(mut self, def: WorkflowDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        self.workflows
            .insert(def.name().to_string(), workflow::erase(f));
        self
    }

    /// Registers an async activity: a function of an [`ActivityContext`] and
    /// the definition's input type, returning its output type.
    pub fn activity<I, O, F, Fut>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        self.activities
            .insert(def.name().to_string(), activity::erase_async(f));
        self
    }

    /// Registers a blocking (non-async) activity; its attempts run on a
    /// blocking thread pool, so they never stall the engine.
    pub fn blocking_activity<I, O, F>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Result<O, ActivityError> + Send + Sync + 'static,
    {
        self.activities
            .insert(def.name().to_string(), activity::erase_blocking(f));
        self
    }

    pub(crate) fn merge(&mut self, other: Worker) {
        self.workflows.extend(other.workflows);
        self.activities.extend(other.activities);
    }
}

/// What a live run is doing, as seen by handles waiting on it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RunState {
    Running,
    Parked(ParkReason),
    Closed(WorkflowStatus),
}

pub(crate) struct LiveRun {
    state: watch::Receiver<RunState>,
}

/// Everything the engine's tasks share.
pub(crate) struct Shared {
    pub(crate) store: Store,
    /// Registrations by task queue.
    queues: HashMap<String, Worker>,
    /// Runs with an actor, by run ID; an actor removes itself when its run closes.
    runs: Mutex<HashMap<RunId, LiveRun>>,
    timers: Timers,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) max_payload_bytes: usize,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("queues", &self.queues.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Shared {
    pub(crate) fn new(
        store: Store,
        queues: HashMap<String, Worker>,
        max_payload_bytes: usize,
    ) -> Arc<Self> {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let timers = Timers::start(shutdown.clone(), &tracker);
        Arc::new(Shared {
            store,
            queues,
            runs: Mutex::new(HashMap::new()),
            timers,
            shutdown,
            tracker,
            max_payload_bytes,
        })
    }

    pub(crate) fn workflow_fn(&self, task_queue: &str, workflow_type: &str) -> Option<WorkflowFn> {
        self.queues
            .get(task_queue)?
            .workflows
            .get(workflow_type)
            .cloned()
    }

    fn activity_fn(&self, task_queue: &str, activity_type: &str) -> Option<ActivityFn> {
        self.queues
            .get(task_queue)?
            .activities
            .get(activity_type)
            .cloned()
    }

    /// Starts the actor of a run from its history (new or recovered).
    pub(crate) fn spawn_run(
        self: &Arc<Self>,
        run_id: RunId,
        record: RunRecord,
        history: Vec<Event>,
    ) {
        run::spawn(self.clone(), run_id, record, history);
    }

    /// Starts an actor for a run whose history cannot be read, so that it is
    /// visible as parked instead of silently missing.
    pub(crate) fn park_unreadable(self: &Arc<Self>, run_id: RunId, reason: String) {
        let (_tx, state) = watch::channel(RunState::Parked(ParkReason::Unrunnable(reason)));
        self.register(run_id, LiveRun { state });
    }

    fn register(&self, run_id: RunId, run: LiveRun) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(run_id, run);
        }
    }

    fn unregister(&self, run_id: RunId) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(&run_id);
        }
    }

    /// Watches a live run; `None` when it has no actor (closed, or unknown).
    pub(crate) fn watch(&self, run_id: RunId) -> Option<watch::Receiver<RunState>> {
        let runs = self.runs.lock().ok()?;
        runs.get(&run_id).map(|r| r.state.clone())
    }
}
