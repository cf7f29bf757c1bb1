//! Workers: what runs on each task queue, and the machinery that runs it
//! (run actors, activity attempts, task queue limits, timers).

mod attempt;
mod info;
mod queue;
mod run;
mod timers;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::{self, ActivityContext, ActivityDef, ActivityError, ActivityFn};
use crate::error::ClientError;
use crate::history::{Event, Payload, RunId, WorkflowStatus};
use crate::store::{RunRecord, Store};
use crate::workflow::{self, ParkReason, WorkflowContext, WorkflowDef, WorkflowError, WorkflowFn};

pub use info::{PendingActivityInfo, PendingTimerInfo};
use queue::TaskQueue;
pub(crate) use run::RunMsg;
use timers::Timers;

/// The task queue used when none is named.
pub const DEFAULT_TASK_QUEUE: &str = "default";

/// The workflows and activities served on one task queue, as a Temporal
/// worker registers them, with the queue's limits. Give it to
/// [`EngineBuilder::worker`](crate::EngineBuilder::worker).
///
/// ```
/// use steadfast::{ActivityContext, ActivityDef, ActivityError, Worker};
/// const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
/// async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
///     Ok(format!("Hello, {name}!"))
/// }
/// let worker = Worker::new("my-task-queue")
///     .activity(SAY_HELLO, say_hello)
///     .max_concurrent_activities(8);
/// ```
pub struct Worker {
    pub(crate) task_queue: String,
    pub(crate) workflows: HashMap<String, WorkflowFn>,
    pub(crate) activities: HashMap<String, ActivityFn>,
    pub(crate) max_concurrent_activities: Option<usize>,
    pub(crate) max_activities_per_second: Option<f64>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("task_queue", &self.task_queue)
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("activities", &self.activities.keys().collect::<Vec<_>>())
            .field("max_concurrent_activities", &self.max_concurrent_activities)
            .field("max_activities_per_second", &self.max_activities_per_second)
            .finish()
    }
}

impl Worker {
    /// A worker for `task_queue` with nothing registered and no limits.
    pub fn new(task_queue: impl Into<String>) -> Self {
        Worker {
            task_queue: task_queue.into(),
            workflows: HashMap::new(),
            activities: HashMap::new(),
            max_concurrent_activities: None,
            max_activities_per_second: None,
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

    /// Runs at most `n` activity attempts of this queue at once (Temporal's
    /// `max_concurrent_activities`); further attempts wait for a slot.
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.max_concurrent_activities = Some(n.max(1));
        self
    }

    /// Starts at most `per_second` activity attempts of this queue per second.
    pub fn max_activities_per_second(mut self, per_second: f64) -> Self {
        if per_second.is_finite() && per_second > 0.0 {
            self.max_activities_per_second = Some(per_second);
        }
        self
    }

    pub(crate) fn merge(&mut self, other: Worker) {
        self.workflows.extend(other.workflows);
        self.activities.extend(other.activities);
        self.max_concurrent_activities = other
            .max_concurrent_activities
            .or(self.max_concurrent_activities);
        self.max_activities_per_second = other
            .max_activities_per_second
            .or(self.max_activities_per_second);
    }
}

/// What a live run's actor reports about its waits.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunSnapshot {
    pub(crate) activities: Vec<PendingActivityInfo>,
    pub(crate) timers: Vec<PendingTimerInfo>,
}

/// What a live run is doing, as seen by handles waiting on it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RunState {
    Running,
    Parked(ParkReason),
    Closed(WorkflowStatus),
}

pub(crate) struct LiveRun {
    /// The actor's inbox; `None` for a run parked without an actor.
    tx: Option<mpsc::UnboundedSender<RunMsg>>,
    state: watch::Receiver<RunState>,
}

/// Everything the engine's tasks share.
pub(crate) struct Shared {
    pub(crate) store: Store,
    /// Task queues with a worker, by name.
    queues: HashMap<String, Arc<TaskQueue>>,
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
        workers: HashMap<String, Worker>,
        max_payload_bytes: usize,
    ) -> Arc<Self> {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let timers = Timers::start(shutdown.clone(), &tracker);
        let queues = workers
            .into_iter()
            .map(|(name, worker)| (name, Arc::new(TaskQueue::new(worker))))
            .collect();
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

    /// True when some worker serves `task_queue`.
    pub(crate) fn has_queue(&self, task_queue: &str) -> bool {
        self.queues.contains_key(task_queue)
    }

    pub(crate) fn workflow_fn(&self, task_queue: &str, workflow_type: &str) -> Option<WorkflowFn> {
        self.queues.get(task_queue)?.workflow(workflow_type)
    }

    fn queue(&self, task_queue: &str) -> Option<Arc<TaskQueue>> {
        self.queues.get(task_queue).cloned()
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

    /// Registers a run whose records cannot be read, so that it is visible
    /// as parked instead of silently missing.
    pub(crate) fn park_unreadable(self: &Arc<Self>, run_id: RunId, reason: String) {
        let (_tx, state) = watch::channel(RunState::Parked(ParkReason::Unrunnable(reason)));
        self.register(run_id, LiveRun { tx: None, state });
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

    /// Drops a run's entry (closed directly in the file).
    pub(crate) fn forget(&self, run_id: RunId) {
        self.unregister(run_id);
    }

    /// What a live run's actor is waiting for; `None` without an actor.
    pub(crate) async fn snapshot(&self, run_id: RunId) -> Option<RunSnapshot> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(run_id, RunMsg::Describe { reply }).ok()?;
        answer.await.ok()
    }

    /// Answers a query on a closed run by replaying its history, as
    /// Temporal does; nothing is written.
    pub(crate) fn query_closed(
        &self,
        run_id: RunId,
        record: &RunRecord,
        name: &str,
    ) -> Result<Payload, ClientError> {
        let history = self.store.history(run_id, &record.workflow_id)?;
        let workflow = self
            .workflow_fn(&record.task_queue, &record.workflow_type)
            .ok_or_else(|| ClientError::UnknownWorkflowType {
                workflow_type: record.workflow_type.clone(),
                task_queue: record.task_queue.clone(),
            })?;
        let machine = workflow::WorkflowMachine::replay(&workflow, run_id, &history);
        let handler = machine
            .query_handler(name)
            .ok_or_else(|| ClientError::UnknownQuery {
                workflow_id: record.workflow_id.clone(),
                query: name.to_string(),
            })?;
        Ok(handler()?)
    }

    /// Hands a message to a live run's actor; gives it back when the run has
    /// no actor that takes messages.
    pub(crate) fn send(&self, run_id: RunId, msg: RunMsg) -> Result<(), RunMsg> {
        let Ok(runs) = self.runs.lock() else {
            return Err(msg);
        };
        match runs.get(&run_id).and_then(|r| r.tx.as_ref()) {
            Some(tx) => tx.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }
}
