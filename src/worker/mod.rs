//! Workers: what runs on each task queue, and the machinery that runs it
//! (run actors, activity attempts, task queue limits, timers).

mod attempt;
mod local_activity;
mod queue;
mod registration;
mod remote;
pub(crate) mod retention;
mod run;
mod shutdown;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::{self, ActivityContext, ActivityDef, ActivityError, ActivityFn};
use crate::clock::{Clock, Hold};
use crate::error::ClientError;
use crate::history::{
    Event, Payload, PendingActivityInfo, PendingTimerInfo, RunId, WorkflowStatus,
};
use crate::store::{RunRecord, Store, StoreError};
use crate::workflow::{self, ParkReason, WorkflowContext, WorkflowDef, WorkflowError, WorkflowFn};

use queue::TaskQueue;
pub(crate) use registration::{Kind, Signature};
use registration::{Registration, Registrations};
pub(crate) use remote::{ScheduleHint, spawn_events};
pub(crate) use run::{
    Ack, PreparedRun, ResetRun, RunMsg, StartUpdate, close_telling_parent, tell_parent_after_close,
};
pub(crate) use shutdown::Drain;
use timers::Timers;

/// Loader tasks at most (each loads one run at a time).
const CONCURRENT_LOADS: usize = 2;

/// The task queue used when none is named.
pub const DEFAULT_TASK_QUEUE: &str = "default";

/// The least time a run parked on a storage failure waits before it is
/// loaded from the file again; while storage keeps failing it waits for the
/// store's backoff instead (see [`Shared::retry_later`]).
const STORAGE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Where each name was registered, to refuse a name registered twice.
    pub(crate) registrations: Registrations,
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
            registrations: Registrations::default(),
        }
    }

    fn register<I, O, F>(&mut self, kind: Kind, name: &str, location: &'static Location<'static>) {
        let registration = Registration::new::<I, O, F>(kind, location);
        self.registrations
            .add(&self.task_queue, kind, name, registration);
    }

    /// Registers a workflow: an async function of a [`WorkflowContext`] and
    /// the definition's input type, returning its output type.
    ///
    /// A name registered twice on one task queue (also through two
    /// workers) makes [`open`](crate::EngineBuilder::open) fail with
    /// [`OpenError::InvalidConfig`](crate::OpenError::InvalidConfig).
    #[track_caller]
    pub fn workflow<I, O, F, Fut>(mut self, def: WorkflowDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        self.register::<I, O, F>(Kind::Workflow, def.name(), Location::caller());
        self.workflows
            .insert(def.name().to_string(), workflow::erase(f));
        self
    }

    /// Registers an async activity: a function of an [`ActivityContext`] and
    /// the definition's input type, returning its output type. A name
    /// registered twice is refused at open, as for [`workflow`](Self::workflow).
    #[track_caller]
    pub fn activity<I, O, F, Fut>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, ActivityError>> + Send + 'static,
    {
        self.register::<I, O, F>(Kind::Activity, def.name(), Location::caller());
        self.activities
            .insert(def.name().to_string(), activity::erase_async(f));
        self
    }

    /// Registers a blocking (non-async) activity; its attempts run on a
    /// blocking thread pool, so they never stall the engine.
    ///
    /// A blocking thread cannot be interrupted: when a timeout ends such an
    /// attempt, or the engine shuts down, the thread runs on until the
    /// function returns (its result is then ignored), and tokio waits for it
    /// when the runtime is dropped. Check
    /// [`ActivityContext::is_cancelled`] in long loops to stop early.
    #[track_caller]
    pub fn blocking_activity<I, O, F>(mut self, def: ActivityDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(ActivityContext, I) -> Result<O, ActivityError> + Send + Sync + 'static,
    {
        self.register::<I, O, F>(Kind::Activity, def.name(), Location::caller());
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
    /// A rate that is not a positive number is ignored; rates below one
    /// start per 10^9 s (about 32 years) count as that.
    pub fn max_activities_per_second(mut self, per_second: f64) -> Self {
        if per_second.is_finite() && per_second > 0.0 {
            self.max_activities_per_second = Some(per_second);
        }
        self
    }

    pub(crate) fn merge(&mut self, other: Worker) {
        self.registrations
            .merge(&self.task_queue, other.registrations);
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

/// Why a run parks on a failed store call: a full disk has its own reason
/// (the run resumes by itself once space is freed); anything else is
/// `what` failed, with the error.
pub(crate) fn storage_park_reason(err: StoreError, what: &str) -> ParkReason {
    match err {
        StoreError::Full(message) => ParkReason::DiskFull(message),
        other if other.is_storage() => ParkReason::Storage(format!("{what}: {other}")),
        other => ParkReason::Unrunnable(format!("{what}: {other}")),
    }
}

/// A slot held for a run being started; see [`Shared::reserve`].
pub(crate) struct Reservation {
    shared: Arc<Shared>,
    run_id: RunId,
    launched: bool,
}

impl Reservation {
    /// Starts the run's actor; its start is durable.
    pub(crate) fn launch(mut self, prepared: PreparedRun) {
        self.launched = true;
        self.shared.launch(prepared, true);
    }

    /// Starts the run's actor, whose start is durable without the
    /// prepared step: the actor commits the step first.
    pub(crate) fn launch_uncommitted(mut self, prepared: PreparedRun) {
        self.launched = true;
        self.shared.launch(prepared, false);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.launched {
            return;
        }
        // Not started (refused, failed, or the caller stopped waiting):
        // free the slot, and let the file decide whether the run exists; a
        // start that was committed after all resumes from its history.
        self.shared.runs().remove(&self.run_id);
        let _ = self.shared.deliver(self.run_id, RunMsg::Wake);
    }
}

/// What a live run's actor reports about its waits.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunSnapshot {
    pub(crate) activities: Vec<PendingActivityInfo>,
    pub(crate) timers: Vec<PendingTimerInfo>,
    pub(crate) children: Vec<crate::history::PendingChildInfo>,
    pub(crate) updates: Vec<crate::history::PendingUpdateInfo>,
    /// Why the run is parked, as published when the snapshot was taken.
    pub(crate) parked: Option<ParkReason>,
    /// Why an operator paused it, while paused.
    pub(crate) paused: Option<String>,
    /// Events in the run's history (all of them durable).
    pub(crate) history_len: u64,
}

/// What a run in memory is doing, as seen by handles waiting on it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RunState {
    Running,
    Parked(ParkReason),
    Closed(WorkflowStatus),
}

impl RunState {
    /// Why the run is parked, if it is.
    pub(crate) fn parked(&self) -> Option<&ParkReason> {
        match self {
            RunState::Parked(reason) => Some(reason),
            _ => None,
        }
    }
}

/// A run in memory. Runs not in memory (evicted, or not loaded since the
/// file was opened) are loaded again by the first message for them.
struct RunSlot {
    /// Outlives reloads of the actor while the slot exists; handles wait on it.
    state: Arc<watch::Sender<RunState>>,
    actor: Actor,
    /// The run's workflow ID once its actor is live (its shard decides
    /// which process advances it, see `remote`).
    workflow_id: Option<String>,
}

enum Actor {
    /// The actor's inbox.
    Live(Inbox),
    /// Being loaded from the file; messages wait here, in order.
    Loading(Vec<(RunMsg, Hold)>),
    /// Parked without an actor (its records could not be read, or a write
    /// failed); the next message tries to load it again.
    Stopped,
}

/// A run actor's inbox. Each message holds the engine's clock until the
/// step it causes is committed and acted on, so a virtual clock never skips
/// past work on its way.
///
/// Messages go boxed: a channel allocates its first block of slots when
/// it is made, and a `(RunMsg, Hold)` is 112 bytes, so every run in memory
/// (10,000 by default) held ~1.8 KiB of empty slots (heaptrack, `idle`).
pub(crate) type Inbox = mpsc::UnboundedSender<Mail>;

/// One message in a run's inbox (see [`Inbox`]).
pub(crate) type Mail = Box<(RunMsg, Hold)>;

/// An open run read from the store: its record, its history, and what its
/// children owe it (see [`run::reconcile`]).
type LoadedRun = (RunRecord, Vec<Event>, Vec<RunMsg>);

/// The lock of the runs in memory; letting it go sets the cache size
/// gauge when the number changed.
struct RunsGuard<'a> {
    runs: MutexGuard<'a, HashMap<RunId, RunSlot>>,
    cached: &'a AtomicUsize,
}

impl std::ops::Deref for RunsGuard<'_> {
    type Target = HashMap<RunId, RunSlot>;

    fn deref(&self) -> &Self::Target {
        &self.runs
    }
}

impl std::ops::DerefMut for RunsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.runs
    }
}

impl Drop for RunsGuard<'_> {
    fn drop(&mut self) {
        let len = self.runs.len();
        if self.cached.swap(len, Ordering::Relaxed) != len {
            crate::metrics::cache_size(len);
        }
    }
}

/// Everything the engine's tasks share.
pub(crate) struct Shared {
    pub(crate) store: Box<dyn Store>,
    /// Task queues with a worker, by name.
    queues: HashMap<String, Arc<TaskQueue>>,
    /// What each queue's worker registered, with which types.
    registrations: HashMap<String, Registrations>,
    /// Runs in memory, by run ID. Every message to a run goes through this
    /// map under its lock, which is what makes eviction race-free.
    runs: Mutex<HashMap<RunId, RunSlot>>,
    /// How many entries `runs` had when its lock was last let go: the
    /// `steadfast_sticky_cache_size` gauge, set when it changes.
    cached: AtomicUsize,
    /// Runs counted as parked (`steadfast_workflow_parked`) that have not
    /// committed a step since: a parked run loaded again (by a wake-up, a
    /// message) that parks again is the same park, not counted twice.
    parks_counted: Mutex<std::collections::HashSet<RunId>>,
    /// How many entries `parks_counted` has, read without its lock on
    /// every commit.
    parks_pending: std::sync::atomic::AtomicUsize,
    timers: Timers,
    /// The one source of time (see [`Clock`]).
    pub(crate) clock: Clock,
    pub(crate) shutdown: CancellationToken,
    /// Shutdown's first phase: attempts running finish, none starts.
    pub(crate) drain: Arc<Drain>,
    pub(crate) tracker: TaskTracker,
    pub(crate) max_payload_bytes: usize,
    /// Runs kept in memory at most, beyond which idle ones are evicted.
    max_cached_runs: usize,
    /// Runs waiting to be loaded from the file, in order.
    load_queue: Mutex<VecDeque<RunId>>,
    /// Loader tasks running, at most [`CONCURRENT_LOADS`].
    loaders: AtomicUsize,
    /// When runs are told to continue as new, and warned about.
    pub(crate) history_limits: crate::workflow::HistoryLimits,
    /// Who waits for a run's close (a schedule's driver with actions
    /// buffered behind it): each is sent a hold of the clock, taken by the
    /// closing actor, so a virtual clock stays put until the waiter acts.
    close_waiters: Mutex<HashMap<RunId, Vec<mpsc::UnboundedSender<Hold>>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("queues", &self.queues.keys().collect::<Vec<_>>())
            .field("max_cached_runs", &self.max_cached_runs)
            .finish()
    }
}

impl Shared {
    pub(crate) fn new(
        store: Box<dyn Store>,
        workers: HashMap<String, Worker>,
        max_payload_bytes: usize,
        max_cached_runs: usize,
        clock: Clock,
        history_limits: crate::workflow::HistoryLimits,
    ) -> std::io::Result<Arc<Self>> {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let registrations = workers
            .iter()
            .map(|(name, worker)| (name.clone(), worker.registrations.clone()))
            .collect();
        let queues = workers
            .into_iter()
            .map(|(name, worker)| (name, Arc::new(TaskQueue::new(worker, clock.clone()))))
            .collect();
        let (timers, timer_queue) = Timers::new(clock.clone());
        let shared = Arc::new(Shared {
            store,
            queues,
            registrations,
            runs: Mutex::new(HashMap::new()),
            cached: AtomicUsize::new(0),
            timers,
            clock,
            shutdown,
            drain: Arc::new(Drain::default()),
            tracker,
            max_payload_bytes,
            max_cached_runs: max_cached_runs.max(1),
            parks_counted: Mutex::default(),
            parks_pending: std::sync::atomic::AtomicUsize::new(0),
            load_queue: Mutex::new(VecDeque::new()),
            loaders: AtomicUsize::new(0),
            close_waiters: Mutex::new(HashMap::new()),
            history_limits,
        });
        // Started only now that `shared` exists: a timer thread started
        // inside `Arc::new_cyclic` could run first, fail to reach it, and
        // stop for good (no timer, retry or wake-up would fire).
        timer_queue.start(Arc::downgrade(&shared), shared.shutdown.clone())?;
        Ok(shared)
    }

    /// True once shutdown began: calls from clients are refused.
    pub(crate) fn closing(&self) -> bool {
        self.drain.began() || self.shutdown.is_cancelled()
    }

    /// Stops the timer thread and waits for it (see [`Timers::stop`]).
    pub(crate) fn stop_timers(&self) {
        self.timers.stop();
    }

    fn runs(&self) -> RunsGuard<'_> {
        RunsGuard {
            // Nothing panics while holding this lock; recover if it ever did.
            runs: self.runs.lock().unwrap_or_else(|p| p.into_inner()),
            cached: &self.cached,
        }
    }

    /// True when some worker serves `task_queue`.
    pub(crate) fn has_queue(&self, task_queue: &str) -> bool {
        self.queues.contains_key(task_queue)
    }

    /// The definition types `workflow_type` was registered with on
    /// `task_queue`, when a worker of this engine registers it.
    pub(crate) fn workflow_signature(
        &self,
        task_queue: &str,
        workflow_type: &str,
    ) -> Option<Signature> {
        self.registrations
            .get(task_queue)?
            .workflow_signature(workflow_type)
    }

    pub(crate) fn workflow_fn(&self, task_queue: &str, workflow_type: &str) -> Option<WorkflowFn> {
        self.queues.get(task_queue)?.workflow(workflow_type)
    }

    fn queue(&self, task_queue: &str) -> Option<Arc<TaskQueue>> {
        self.queues.get(task_queue).cloned()
    }

    /// Runs the first activation of a new run before its start is
    /// committed, so the start and the workflow's first commands share one
    /// commit.
    pub(crate) fn prepare_run(
        self: &Arc<Self>,
        run_id: RunId,
        record: RunRecord,
        history: Vec<Event>,
    ) -> PreparedRun {
        run::prepare(self, run_id, record, history)
    }

    /// Starts the actor of a prepared run once its start is durable.
    fn launch(self: &Arc<Self>, prepared: PreparedRun, committed: bool) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = {
            let mut runs = self.runs();
            let slot = runs.entry(prepared.run_id()).or_insert_with(|| RunSlot {
                state: Arc::new(watch::channel(RunState::Running).0),
                actor: Actor::Loading(Vec::new()),
                workflow_id: None,
            });
            slot.workflow_id = Some(prepared.record().workflow_id.clone());
            // Messages that came while the start was being committed go
            // first, in order.
            if let Actor::Loading(queued) =
                std::mem::replace(&mut slot.actor, Actor::Live(tx.clone()))
            {
                for queued in queued {
                    let _ = tx.send(Box::new(queued));
                }
            }
            slot.state.clone()
        };
        run::start(prepared, state, rx, committed);
    }

    /// Holds a slot for a run about to be started, so that nothing loads it
    /// from the file (a wake-up read from the index, say) while its start is
    /// being committed: messages for it wait in the slot.
    pub(crate) fn reserve(self: &Arc<Self>, run_id: RunId) -> Reservation {
        self.runs().insert(
            run_id,
            RunSlot {
                state: Arc::new(watch::channel(RunState::Running).0),
                actor: Actor::Loading(Vec::new()),
                workflow_id: None,
            },
        );
        Reservation {
            shared: self.clone(),
            run_id,
            launched: false,
        }
    }

    /// Hands a message to a run, loading the run from the file first when
    /// it is not in memory. Gives the message back when the run has no
    /// actor that can take it.
    pub(crate) fn deliver(self: &Arc<Self>, run_id: RunId, msg: RunMsg) -> Result<(), RunMsg> {
        if self.shutdown.is_cancelled() {
            return Err(msg);
        }
        let held = (msg, self.clock.hold());
        let mut runs = self.runs();
        match runs.get_mut(&run_id) {
            Some(RunSlot {
                actor: Actor::Live(tx),
                ..
            }) => {
                crate::metrics::cache_hit();
                tx.send(Box::new(held)).map_err(|e| e.0.0)
            }
            Some(RunSlot {
                actor: Actor::Loading(queued),
                ..
            }) => {
                queued.push(held);
                Ok(())
            }
            Some(slot) => {
                // Stopped: try again from the file (the fault may be gone).
                slot.actor = Actor::Loading(vec![held]);
                drop(runs);
                self.load(run_id);
                Ok(())
            }
            None => {
                crate::metrics::cache_miss();
                let state = Arc::new(watch::channel(RunState::Running).0);
                runs.insert(
                    run_id,
                    RunSlot {
                        state,
                        actor: Actor::Loading(vec![held]),
                        workflow_id: None,
                    },
                );
                drop(runs);
                self.load(run_id);
                Ok(())
            }
        }
    }

    /// Loads a run from the file and starts its actor, in the background.
    fn load(self: &Arc<Self>, run_id: RunId) {
        tracing::debug!(%run_id, "loading run from the file");
        self.load_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(run_id);
        self.spawn_loader();
    }

    /// Starts a loader task unless enough are running. Few loaders, taking
    /// runs in order and yielding between them: with many runs to resume,
    /// the first ones get going at once instead of after every replay.
    fn spawn_loader(self: &Arc<Self>) {
        let claimed = self
            .loaders
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < CONCURRENT_LOADS).then_some(n + 1)
            });
        if claimed.is_err() {
            return;
        }
        let shared = self.clone();
        self.tracker.spawn(async move {
            loop {
                let next = shared
                    .load_queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front();
                let Some(run_id) = next else { break };
                if shared.shutdown.is_cancelled() {
                    return;
                }
                // A panic while replaying a damaged history parks that run;
                // it must not end the loader, which other runs wait for.
                let loaded = shared.read_open_run(run_id).await;
                if let Err(panic) = crate::panic::catch(|| shared.load_one(run_id, loaded)) {
                    let reason = format!("loading the run from the file failed: {panic}");
                    shared.stop(run_id, ParkReason::Unrunnable(reason));
                }
                tokio::task::yield_now().await;
            }
            shared.loaders.fetch_sub(1, Ordering::SeqCst);
            // A run queued between the last look and the count going down
            // found every loader busy: start one for it.
            let pending = !shared
                .load_queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            if pending {
                shared.spawn_loader();
            }
        });
    }

    /// Reads an open run's record and history from the store; `None` for a
    /// closed or unknown run.
    async fn read_open_run(
        self: &Arc<Self>,
        run_id: RunId,
    ) -> Result<Option<LoadedRun>, StoreError> {
        let label = format!("(run {run_id})");
        match self.store.run(run_id, &label).await? {
            // Another process owns its shard: its messages go there.
            Some(record) if !record.status.is_closed() && !self.store.owns(&record.workflow_id) => {
                self.hand_over(run_id, &record.workflow_id);
                Ok(None)
            }
            Some(mut record) if !record.status.is_closed() => {
                let history = self.store.history(run_id, &record.workflow_id).await?;
                // The history's length is the truth while a run is open.
                record.history_len = history.last().map_or(0, |e| e.event_id);
                let owed = run::reconcile(self, run_id, &history).await;
                Ok(Some((record, history, owed)))
            }
            _ => Ok(None),
        }
    }

    /// Replays a run read from the store and starts its actor.
    fn load_one(self: &Arc<Self>, run_id: RunId, loaded: Result<Option<LoadedRun>, StoreError>) {
        let shared = self;
        // Closed or unknown (a start that failed): the queued messages are
        // dropped, and their senders learn why from the file. Also while
        // storage fails: its slot must not linger, parked, retrying.
        let loaded = match loaded {
            Ok(None) => {
                shared.runs().remove(&run_id);
                return;
            }
            Ok(Some(found)) => Ok(found),
            Err(e) => Err(e),
        };
        if shared.store.retry_delay() > std::time::Duration::ZERO && shared.only_wakes(run_id) {
            // Storage fails and commits back off: a run loaded now (its
            // replay, its activities started again) could store nothing, so
            // nobody waiting on a message, it waits for the backoff instead.
            let reason = storage_park_reason(shared.store.failure(), "loading the run failed");
            shared.stop(run_id, reason);
            shared.retry_later(run_id);
            return;
        }
        {
            match loaded {
                Ok((record, history, owed)) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let state = {
                        let runs = shared.runs();
                        match runs.get(&run_id) {
                            Some(slot) => slot.state.clone(),
                            None => return,
                        }
                    };
                    let prepared = run::prepare(shared, run_id, record, history);
                    // Go live: queued messages first, in order.
                    {
                        let mut runs = shared.runs();
                        let Some(slot) = runs.get_mut(&run_id) else {
                            return;
                        };
                        // Loaded again after a failure: no longer parked
                        // (replay parks it again if the cause remains).
                        slot.state.send_if_modified(|state| {
                            let parked = matches!(state, RunState::Parked(_));
                            if parked {
                                *state = RunState::Running;
                            }
                            parked
                        });
                        slot.workflow_id = Some(prepared.record().workflow_id.clone());
                        if let Actor::Loading(queued) =
                            std::mem::replace(&mut slot.actor, Actor::Live(tx.clone()))
                        {
                            for queued in queued {
                                let _ = tx.send(Box::new(queued));
                            }
                        }
                        // What children owe the run, after what was queued.
                        for msg in owed {
                            let _ = tx.send(Box::new((msg, shared.clock.hold())));
                        }
                    }
                    run::start(prepared, state, rx, false);
                }
                Err(e) => {
                    let retry = e.is_storage();
                    shared.stop(run_id, storage_park_reason(e, "loading the run failed"));
                    if retry {
                        shared.retry_later(run_id);
                    }
                }
            }
        }
    }

    /// Loads a run parked on a storage failure again once the store's
    /// backoff has passed (at least [`STORAGE_RETRY`] from now), so that it
    /// resumes by itself once the disk heals, and a disk that stays full
    /// costs one attempt per backoff, not a busy loop.
    pub(crate) fn retry_later(&self, run_id: RunId) {
        let at = self.clock.now() + self.store.retry_delay().max(STORAGE_RETRY);
        self.timers.schedule(at, run_id, RunMsg::Wake);
    }

    /// True when the run is being loaded for wake-ups only, with no message
    /// that someone waits on.
    fn only_wakes(&self, run_id: RunId) -> bool {
        match self.runs().get(&run_id) {
            Some(RunSlot {
                actor: Actor::Loading(queued),
                ..
            }) => queued.iter().all(|(msg, _)| matches!(msg, RunMsg::Wake)),
            _ => false,
        }
    }

    /// Counts a run's park, once until it commits a step again.
    pub(crate) fn count_park(&self, run_id: RunId, reason: &ParkReason) {
        let mut counted = self.parks_counted.lock().unwrap_or_else(|p| p.into_inner());
        if counted.insert(run_id) {
            self.parks_pending
                .store(counted.len(), std::sync::atomic::Ordering::Relaxed);
            crate::metrics::workflow_parked(reason);
        }
    }

    /// A run committed a step (or closed): a later park counts again.
    pub(crate) fn progressed(&self, run_id: RunId) {
        if self
            .parks_pending
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            return;
        }
        let mut counted = self.parks_counted.lock().unwrap_or_else(|p| p.into_inner());
        if counted.remove(&run_id) {
            self.parks_pending
                .store(counted.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Marks a run as parked without an actor.
    pub(crate) fn stop(&self, run_id: RunId, reason: ParkReason) {
        tracing::warn!(%run_id, %reason, "run parked");
        let mut runs = self.runs();
        if let Some(slot) = runs.get_mut(&run_id) {
            slot.actor = Actor::Stopped;
            self.count_park(run_id, &reason);
            slot.state.send_replace(RunState::Parked(reason));
        }
    }

    /// Removes a closed run from memory.
    pub(crate) fn unregister(&self, run_id: RunId) {
        self.runs().remove(&run_id);
        self.timers.forget(run_id);
        self.progressed(run_id);
        self.tell_closed(run_id);
    }

    /// Sends `waiter` a hold of the clock when `run_id` closes (or is
    /// removed). A close before this call is not told: check the file
    /// after it.
    pub(crate) fn wait_close(&self, run_id: RunId, waiter: &mpsc::UnboundedSender<Hold>) {
        let mut waiters = self.close_waiters.lock().unwrap_or_else(|p| p.into_inner());
        let list = waiters.entry(run_id).or_default();
        list.retain(|w| !w.is_closed());
        if !list.iter().any(|w| w.same_channel(waiter)) {
            list.push(waiter.clone());
        }
    }

    fn tell_closed(&self, run_id: RunId) {
        let waiters = self
            .close_waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run_id);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(self.clock.hold());
        }
    }

    /// Removes a run closed in the file without its actor, unless an actor
    /// went live for it meanwhile: that one's next commit is refused and
    /// it tells its own callers (see `fell_behind`), so its slot stays
    /// until then. Handles waiting on the slot see the close.
    pub(crate) fn closed_without_actor(&self, run_id: RunId, status: WorkflowStatus) {
        self.tell_closed(run_id);
        let mut runs = self.runs();
        if let Some(slot) = runs.get(&run_id)
            && !matches!(slot.actor, Actor::Live(_))
        {
            slot.state.send_replace(RunState::Closed(status));
            runs.remove(&run_id);
            drop(runs);
            self.progressed(run_id);
        }
    }

    /// Evicts an idle run when more runs than the cache allows are in
    /// memory, nobody waits on it, and no message is queued for it. Returns
    /// true when the actor should stop.
    fn try_evict(&self, run_id: RunId, rx: &mpsc::UnboundedReceiver<Mail>) -> bool {
        let mut runs = self.runs();
        if runs.len() <= self.max_cached_runs || !rx.is_empty() {
            return false;
        }
        match runs.get(&run_id) {
            Some(slot) if slot.state.receiver_count() == 0 => {
                runs.remove(&run_id);
                crate::metrics::cache_eviction();
                tracing::debug!(%run_id, "run evicted from memory");
                true
            }
            _ => false,
        }
    }

    /// How many runs in memory are parked (a parked run stays in memory
    /// until the engine stops).
    pub(crate) fn parked_count(&self) -> u64 {
        self.runs()
            .values()
            .filter(|slot| slot.state.borrow().parked().is_some())
            .count() as u64
    }

    /// Watches a run in memory; `None` when it is not in memory.
    pub(crate) fn watch(&self, run_id: RunId) -> Option<watch::Receiver<RunState>> {
        self.runs().get(&run_id).map(|slot| slot.state.subscribe())
    }

    /// What a run in memory is waiting for, from its actor; `None` when no
    /// actor holds the run (then the file answers, see
    /// [`MutableState`](crate::history::MutableState)).
    pub(crate) async fn snapshot(self: &Arc<Self>, run_id: RunId) -> Option<RunSnapshot> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let runs = self.runs();
            let Some(RunSlot {
                actor: Actor::Live(tx),
                ..
            }) = runs.get(&run_id)
            else {
                return None;
            };
            tx.send(Box::new((RunMsg::Describe { reply }, self.clock.hold())))
                .ok()?;
        }
        answer.await.ok()
    }

    /// Why a run without an actor would park if it were loaded now
    /// (nondeterminism, missing code), found by replaying its history;
    /// nothing is written and no actor starts.
    pub(crate) fn replay_parked(
        &self,
        run_id: RunId,
        record: &RunRecord,
        history: &[Event],
    ) -> Option<ParkReason> {
        // Workflow code may panic on a damaged history; that is a park
        // reason too, never a panic of `describe`.
        crate::panic::catch(|| run::replay(self, run_id, record, history).parked().cloned())
            .unwrap_or_else(|panic| Some(ParkReason::Unrunnable(panic)))
    }

    /// Answers a query on a closed run by replaying its history, as
    /// Temporal does; nothing is written.
    pub(crate) async fn query_closed(
        &self,
        run_id: RunId,
        record: &RunRecord,
        name: &str,
        input: &Payload,
    ) -> Result<Payload, ClientError> {
        let history = self.store.history(run_id, &record.workflow_id).await?;
        let workflow = self
            .workflow_fn(&record.task_queue, &record.workflow_type)
            .ok_or_else(|| ClientError::UnknownWorkflowType {
                workflow_type: record.workflow_type.clone(),
                task_queue: record.task_queue.clone(),
            })?;
        let machine = workflow::WorkflowMachine::replay(&workflow, run_id, &history);
        run::answer_query(&machine, &record.workflow_id, name, input)
    }
}
