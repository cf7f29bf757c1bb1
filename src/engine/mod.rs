//! The front door: `Engine`, its builder, and the calls a client makes.

mod by_name;
mod count;
mod delete;
mod export;
mod handle;
mod list;
mod options;
mod pause;
#[cfg(feature = "postgres")]
mod postgres;
mod read_only;
mod reset;
mod schedule;
mod scheduler;
mod shutdown;
mod signal_options;
mod start_many;
mod terminate;

pub(crate) use reset::{remote_options as remote_reset_options, reset_run};
pub(crate) use terminate::terminate_run;
mod update;

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

pub use count::WorkflowCounts;
pub use handle::{PauseReason, ResultOrParked, WorkflowDescription, WorkflowHandle};
pub use list::{ListFilter, PageToken, WorkflowExecutionInfo, WorkflowPage};
pub use options::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowOptions};
pub use reset::{ResetOptions, ResetTo};
pub use schedule::{MAX_SCHEDULE_ID_LEN, ScheduleHandle, scheduled_workflow_id};
pub use scheduler::{SCHEDULED_BY_ID, SCHEDULED_START_TIME};
pub use signal_options::{MAX_SIGNAL_REQUEST_ID_LEN, SignalOptions};
pub use update::{MAX_UPDATE_ID_LEN, UpdateOptions};

use crate::activity::{ActivityContext, ActivityDef, ActivityError};
use crate::clock::Clock;
use crate::codec;
use crate::error::{ClientError, OpenError};
use crate::history::{
    DEFAULT_MAX_PAYLOAD_BYTES, Event, EventKind, MAX_WORKFLOW_ID_LEN, Payload, RunId,
    SignalDelivery, WorkflowStatus,
};
use crate::store::{
    Backend, EncodedRecord, RedbStore, ReuseRule, RunRecord, WriteOp, WriteOutcome,
};
use crate::worker::{DEFAULT_TASK_QUEUE, Kind, RunMsg, Shared, Worker};
use crate::workflow::{
    ParkReason, QueryDef, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
};

/// Runs kept in memory by default; see [`EngineBuilder::max_cached_runs`].
pub const DEFAULT_MAX_CACHED_RUNS: usize = 10_000;

/// redb's page cache by default; see [`EngineBuilder::file_cache_bytes`].
pub const DEFAULT_FILE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Builds an [`Engine`]: register workers, workflows and activities, then
/// [`open`](Self::open) the file.
///
/// Defaults: task queue `"default"` for the `workflow`/`activity` shortcuts;
/// payload limit 2 MiB.
pub struct EngineBuilder {
    queues: HashMap<String, Worker>,
    max_payload_bytes: usize,
    max_cached_runs: usize,
    file_cache_bytes: usize,
    /// How long closed runs are kept; `None`: forever.
    retention: Option<Duration>,
    /// How the file is opened (redb's file backend unless a test injects faults).
    backend: Backend,
    /// How long running activity attempts may finish at shutdown.
    graceful_shutdown_timeout: Duration,
    /// The system clock, or the test engine's virtual one.
    clock: Clock,
    /// Dropped once the engine has stopped (see [`EngineBuilder::on_close`]).
    on_close: Option<shutdown::OnClose>,
    /// When runs are told to continue as new, and warned about.
    history_limits: crate::workflow::HistoryLimits,
    /// Open without writing (see [`EngineBuilder::read_only`]).
    read_only: bool,
    /// Let other processes read the file while it is open (see
    /// [`EngineBuilder::shared_reads`]).
    shared_reads: bool,
    /// The PostgreSQL schema of [`EngineBuilder::postgres`].
    #[cfg(feature = "postgres")]
    postgres_schema: String,
    /// The shard lease of [`EngineBuilder::shard_lease`].
    #[cfg(feature = "postgres")]
    shard_lease: Duration,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("queues", &self.queues)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("retention", &self.retention)
            .finish()
    }
}

impl EngineBuilder {
    fn new() -> Self {
        EngineBuilder {
            queues: HashMap::new(),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_cached_runs: DEFAULT_MAX_CACHED_RUNS,
            file_cache_bytes: DEFAULT_FILE_CACHE_BYTES,
            retention: None,
            backend: Backend::default(),
            shared_reads: false,
            graceful_shutdown_timeout: Duration::ZERO,
            clock: Clock::system(),
            on_close: None,
            history_limits: crate::workflow::HistoryLimits::default(),
            read_only: false,
            #[cfg(feature = "postgres")]
            postgres_schema: crate::store::DEFAULT_SCHEMA.to_string(),
            #[cfg(feature = "postgres")]
            shard_lease: crate::store::DEFAULT_SHARD_LEASE,
        }
    }

    /// Keeps `guard` until the engine has stopped (its first shutdown has
    /// finished, or its last clone dropped), then drops it; dropped at
    /// once when the open fails. For the test engine's cleanup, which no
    /// clone of the engine may outlive.
    pub(crate) fn on_close(mut self, guard: shutdown::OnClose) -> Self {
        self.on_close = Some(guard);
        self
    }

    /// Runs the engine on `clock` (the test engine's virtual clock).
    pub(crate) fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the file through a backend that fails writes, syncs and
    /// resizes when `injector` says so; for the fault-injection tests only.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn fault_injector(mut self, injector: crate::store::FaultInjector) -> Self {
        self.backend = Backend::Faulty(injector);
        self
    }

    /// Opens the file through a backend that keeps what a power cut would
    /// leave on the disk, and cuts it when `power` says so; for the
    /// power-cut tests only.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn power_cut(mut self, power: crate::store::PowerCut) -> Self {
        self.backend = Backend::PowerCut(power);
        self
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
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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

    /// Sets the history size at which
    /// [`WorkflowContext::continue_as_new_suggested`](crate::WorkflowContext::continue_as_new_suggested)
    /// turns true: `events` events or `bytes` bytes (as
    /// [`history_bytes`](crate::WorkflowContext::history_bytes) counts
    /// them), whichever comes first. Default: 4,096 events or 4 MiB, as
    /// Temporal suggests. A small value lets a test reach it quickly.
    pub fn suggest_continue_as_new_at(mut self, events: u64, bytes: u64) -> Self {
        self.history_limits.suggest_events = events;
        self.history_limits.suggest_bytes = bytes;
        self
    }

    /// Sets the number of events past which a run that has not continued
    /// as new is named in a warning in the log (once, when its history
    /// passes it). Default: 10,240 ([`DEFAULT_WARN_HISTORY_EVENTS`](crate::DEFAULT_WARN_HISTORY_EVENTS)),
    /// Temporal's warning limit. Nothing is refused past it.
    pub fn warn_history_events(mut self, events: u64) -> Self {
        self.history_limits.warn_events = events;
        self
    }

    /// Sets how many updates a run takes: `in_flight` at once (accepted,
    /// their handler not returned) and `per_run` in all. One more is
    /// refused before anything is written, with
    /// [`UpdateError::TooManyInFlight`](crate::UpdateError::TooManyInFlight)
    /// (retry once one completes) or
    /// [`UpdateError::TooManyUpdates`](crate::UpdateError::TooManyUpdates)
    /// (the run should continue as new); an update ID the run has already
    /// accepted is answered as ever. Default: 10 and 2,000
    /// ([`DEFAULT_MAX_IN_FLIGHT_UPDATES`](crate::DEFAULT_MAX_IN_FLIGHT_UPDATES),
    /// [`DEFAULT_MAX_UPDATES_PER_RUN`](crate::DEFAULT_MAX_UPDATES_PER_RUN)),
    /// Temporal's limits. Zero is taken as one.
    pub fn update_limits(mut self, in_flight: u32, per_run: u32) -> Self {
        self.history_limits.max_in_flight_updates = in_flight.max(1);
        self.history_limits.max_updates_per_run = per_run.max(1);
        self
    }

    /// Sets how many runs are kept in memory at most (Temporal's sticky
    /// workflow cache). Past it, runs that wait only on timers or messages
    /// leave memory and are replayed from their history when they next have
    /// work, so memory does not grow with the number of idle workflows.
    /// Default: 10,000.
    pub fn max_cached_runs(mut self, runs: usize) -> Self {
        self.max_cached_runs = runs.max(1);
        self
    }

    /// Sets the memory redb may use to cache pages of the file, in bytes.
    /// With [`max_cached_runs`](Self::max_cached_runs) it bounds the
    /// engine's memory. Default: 64 MiB.
    pub fn file_cache_bytes(mut self, bytes: usize) -> Self {
        self.file_cache_bytes = bytes;
        self
    }

    /// Whether other processes may open the file read-only while this
    /// engine has it open (`steadfast workflow list --db FILE` on a live
    /// file, or [`read_only`](Self::read_only) in another process), each of
    /// their reads seeing this engine's latest commit: redb's single-writer
    /// mode. Default: `false`, the whole file locked against every other
    /// process, readers included: the shared mode made each sequential
    /// step about twice as slow on this project's machine (the README's
    /// "Benchmarks" section), past the 10 % it was allowed. A second
    /// engine (a second writer) is refused either way
    /// ([`OpenError::AlreadyInUse`]).
    pub fn shared_reads(mut self, shared: bool) -> Self {
        self.shared_reads = shared;
        self
    }

    /// Removes closed runs in the background once they have been closed
    /// for longer than `period`: each run's record, history and `list`
    /// entries, as [`Engine::delete`] does, and the workflow ID itself when
    /// that run is its latest (then `describe` answers
    /// [`ClientError::NotFound`] and the ID may be started again under any
    /// reuse policy, as in Temporal after retention). Running runs are
    /// never touched, and a newer run of the same ID is kept. The sweep
    /// runs about every quarter of `period` (at least every minute, at most
    /// every 50 ms), in small batches that share the group commits of the
    /// other callers, and the space freed is reused by later writes (the
    /// file stops growing under a steady load).
    ///
    /// Default: **none, closed runs are kept forever**. Temporal's
    /// namespaces keep closed runs 72 hours when its CLI creates them, but
    /// there a server operator chose that for a shared cluster; here the
    /// file belongs to the application, and a library deletes its users'
    /// data only when asked. Set a period (Temporal's 72 h is
    /// `Duration::from_secs(72 * 3600)`) or call [`Engine::delete`] to
    /// bound the file's growth.
    ///
    /// A zero period is refused by [`open`](Self::open) with
    /// [`OpenError::InvalidConfig`]: a run would be gone before a caller
    /// could read its result.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), steadfast::OpenError> {
    /// use std::time::Duration;
    /// let engine = steadfast::Engine::builder()
    ///     .retention(Duration::from_secs(72 * 3600))
    ///     .open("app.steadfast")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn retention(mut self, period: Duration) -> Self {
        self.retention = Some(period);
        self
    }

    /// Sets how long [`Engine::shutdown`] lets activity attempts that are
    /// running finish: their results are recorded as usual. Attempts still
    /// running after it are abandoned and count as interrupted: each runs
    /// again after the next open (activities run at least once). No attempt
    /// starts once shutdown has begun, and timers stop firing. The timeout
    /// bounds the whole drain, recording the results included, in real
    /// time (also on a test engine's virtual clock).
    ///
    /// Default: zero, as Temporal workers' option of the same name:
    /// shutdown abandons running attempts at once.
    pub fn graceful_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_shutdown_timeout = timeout;
        self
    }

    /// Opens (or creates) the file, and resumes every run that had not
    /// closed: each is replayed from its history and continues where it
    /// stopped. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`OpenError::AlreadyInUse`] when another engine has the file open,
    /// [`OpenError::NewerFormat`] for a file from a newer steadfast,
    /// [`OpenError::Unreadable`] for a file that is not a steadfast database,
    /// [`OpenError::DiskFull`] when the disk has no room to open or create it,
    /// [`OpenError::NoSuchDirectory`] and [`OpenError::NotADirectory`] when
    /// the directory a new file would go in is missing or is a file,
    /// [`OpenError::NotWritable`] when this process may not write the file
    /// or its directory.
    /// [`OpenError::InvalidConfig`] for a zero [`retention`](Self::retention),
    /// an empty task queue name, or a workflow or activity name registered
    /// twice on one task queue (the error names both registrations);
    /// [`OpenError::NoRuntime`] outside a tokio runtime.
    pub async fn open(mut self, path: impl AsRef<Path>) -> Result<Engine, OpenError> {
        self.check()?;
        let path = path.as_ref().to_path_buf();
        let store = if self.read_only {
            read_only::open_store(&path, self.file_cache_bytes, self.retention).await?
        } else {
            let backend = std::mem::take(&mut self.backend);
            let file = path.clone();
            let cache_bytes = self.file_cache_bytes;
            let shared = self.shared_reads;
            let store = tokio::task::spawn_blocking(move || {
                RedbStore::open(&file, backend, cache_bytes, shared)
            })
            .await
            .map_err(|e| OpenError::InvalidConfig(format!("the open task failed: {e}")))??;
            Box::new(store)
        };
        self.start(store, |message| OpenError::Unreadable { path, message })
            .await
    }

    /// The checks every open makes before it touches storage.
    fn check(&self) -> Result<(), OpenError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(OpenError::NoRuntime);
        }
        for (name, worker) in &self.queues {
            if name.is_empty() {
                return Err(OpenError::InvalidConfig(
                    "a worker's task queue name is empty; name the queue".into(),
                ));
            }
            worker
                .registrations
                .check()
                .map_err(OpenError::InvalidConfig)?;
        }
        if self.retention.is_some_and(|r| r.is_zero()) {
            return Err(OpenError::InvalidConfig(
                "the retention period is zero; give a positive period, or none to keep closed runs"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Starts the engine on an open store; `unreadable` makes the error
    /// of a stored schedule that cannot be read.
    async fn start(
        self,
        store: Box<dyn crate::store::Store>,
        unreadable: impl FnOnce(String) -> OpenError,
    ) -> Result<Engine, OpenError> {
        let shared = Shared::new(
            store,
            self.queues,
            self.max_payload_bytes,
            self.max_cached_runs,
            self.clock,
            self.history_limits,
        )
        .map_err(|source| OpenError::Thread {
            thread: "timer",
            source,
        })?;
        if let Some(period) = self.retention {
            crate::worker::retention::spawn(&shared, period);
        }
        // A store shared with other processes tells of shards lost and of
        // calls for this process's runs (none for a file).
        let hints = shared.store.events().map(|events| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            crate::worker::spawn_events(&shared, events, tx);
            rx
        });
        // Unfinished runs resume lazily: the timer thread's first read of the
        // wake-up index loads those with work now, and later reads load the
        // others when they are due. Opening waits for no replay.
        let owner = Arc::new(shutdown::Owner::new(
            shared.clone(),
            self.graceful_shutdown_timeout,
            self.on_close,
        ));
        if !self.read_only {
            // Schedules move between the processes sharing a store with
            // their shards.
            if let Some(hints) = hints {
                scheduler::follow(&owner, hints);
            }
            // Each stored schedule's driver (of a shard this process owns)
            // catches up from its high-water mark (within its catch-up
            // window) and goes on.
            scheduler::spawn_all(&owner)
                .await
                .map_err(|e| unreadable(format!("its schedules could not be read: {e}")))?;
        }
        Ok(Engine {
            shared,
            owner,
            read_only: self.read_only,
        })
    }
}

/// An open steadfast file with its workers: the client and the worker of
/// Temporal in one value.
///
/// A cheap handle: clones share one engine (put it in an `Arc` or clone
/// it into tasks, as you like). The engine stops on
/// [`shutdown`](Self::shutdown), from any clone, or when the last clone
/// drops.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// Shuts the engine down once, when asked or when the last clone drops.
    owner: Arc<shutdown::Owner>,
    /// Opened with [`EngineBuilder::read_only`]: calls that write are refused.
    read_only: bool,
}

#[cfg(test)]
impl Engine {
    /// What the engine's tasks share, for the crate's own tests.
    pub(crate) fn shared_for_tests(&self) -> &Arc<Shared> {
        &self.shared
    }
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
    /// [`ClientError::UnknownWorkflowType`] when the task queue's worker does
    /// not register the type (a queue with no worker at all is accepted: the
    /// run waits until the engine is opened with one),
    /// [`ClientError::InvalidArgument`] for an empty or over-long ID,
    /// [`ClientError::PayloadTooLarge`]; [`ClientError::DiskFull`] while the
    /// disk is full, [`ClientError::Storage`] for an I/O error,
    /// [`ClientError::Damaged`] for a damaged file: the start was not
    /// acknowledged (see each error for whether it may still have been
    /// recorded; a retry with the same ID is safe either way).
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
        self.writable("start_workflow")?;
        let workflow_id = workflow_id.into();
        let start = self.prepare_start(workflow, &workflow_id, &input, &options)?;
        match self.start(start, &options, None).await? {
            Started::New(run_id) | Started::Existing(run_id) => {
                Ok(self.handle(workflow_id, run_id))
            }
        }
    }

    /// Sends a signal to a running workflow, starting the workflow first
    /// (with the signal as its first event, atomically) when it is not
    /// running. Returns the handle of the run that got the signal.
    ///
    /// # Errors
    /// As [`start_workflow`](Self::start_workflow) and [`signal`](Self::signal).
    #[allow(clippy::too_many_arguments)]
    pub async fn signal_with_start<I, O, T>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
        input: I,
        options: WorkflowOptions,
        signal: SignalDef<T>,
        payload: T,
    ) -> Result<WorkflowHandle<O>, ClientError>
    where
        I: Serialize,
        O: DeserializeOwned,
        T: Serialize,
    {
        self.writable("signal_with_start")?;
        let workflow_id = workflow_id.into();
        let start = self.prepare_start(workflow, &workflow_id, &input, &options)?;
        let payload = self.encode_checked(&payload, || format!("signal {:?}", signal.name()))?;
        // A run that closes between "already running" and the signal is
        // started anew on the second pass.
        for _ in 0..2 {
            let signaled = Some((signal.name().to_string(), payload.clone()));
            match self.start(start.clone(), &options, signaled).await {
                Ok(Started::New(run_id)) => return Ok(self.handle(workflow_id, run_id)),
                Ok(Started::Existing(run_id)) | Err(ClientError::AlreadyStarted { run_id, .. }) => {
                    match self
                        .signal_run(&workflow_id, run_id, signal.name(), payload.clone(), None)
                        .await
                    {
                        Ok(()) => return Ok(self.handle(workflow_id, run_id)),
                        Err(ClientError::WorkflowClosed { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Storage(format!(
            "workflow {workflow_id:?} kept closing while it was signaled; try again"
        )))
    }

    fn encode_checked<T: Serialize>(
        &self,
        value: &T,
        what: impl FnOnce() -> String,
    ) -> Result<Payload, ClientError> {
        let payload = Payload::encode(value)?;
        if payload.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: what(),
                size: payload.len(),
                limit: self.shared.max_payload_bytes,
            });
        }
        Ok(payload)
    }

    fn prepare_start<I: Serialize, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: &str,
        input: &I,
        options: &WorkflowOptions,
    ) -> Result<StartRequest, ClientError> {
        let workflow_type = workflow.name();
        check_workflow_id(workflow_id)?;
        if options.task_queue.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the task queue name is empty; name a task queue, or leave the default".into(),
            ));
        }
        if self.shared.closing() {
            return Err(ClientError::ShutDown);
        }
        if let Some(e) = options.memo_error() {
            return Err(ClientError::InvalidArgument(format!(
                "the memo of workflow {workflow_id:?} does not encode: {e}"
            )));
        }
        if let Some(memo) = &options.memo
            && memo.len() > self.shared.max_payload_bytes
        {
            return Err(ClientError::PayloadTooLarge {
                what: format!("the memo of workflow {workflow_id:?}"),
                size: memo.len(),
                limit: self.shared.max_payload_bytes,
            });
        }
        options
            .search_attributes
            .check()
            .map_err(|e| ClientError::InvalidArgument(format!("workflow {workflow_id:?}: {e}")))?;
        for (name, value) in [
            ("run_timeout", options.run_timeout),
            ("execution_timeout", options.execution_timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(ClientError::InvalidArgument(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        if self.shared.has_queue(&options.task_queue)
            && self
                .shared
                .workflow_fn(&options.task_queue, workflow_type)
                .is_none()
        {
            return Err(ClientError::UnknownWorkflowType {
                workflow_type: workflow_type.to_string(),
                task_queue: options.task_queue.clone(),
            });
        }
        if let Some(registered) = self
            .shared
            .workflow_signature(&options.task_queue, workflow_type)
        {
            let given = crate::worker::Signature::of::<I, O>(Kind::Workflow);
            if registered != given {
                return Err(ClientError::DefinitionMismatch {
                    workflow_type: workflow_type.to_string(),
                    task_queue: options.task_queue.clone(),
                    registered: registered.to_string(),
                    given: given.to_string(),
                });
            }
        }
        if !self.shared.has_queue(&options.task_queue) {
            self.owner.warn_unserved(&options.task_queue);
        }
        let input =
            self.encode_checked(input, || format!("the input of workflow {workflow_id:?}"))?;
        Ok(StartRequest {
            workflow_type: workflow_type.to_string(),
            workflow_id: workflow_id.to_string(),
            input,
        })
    }

    /// Commits a new run (with a first signal, for signal-with-start) and
    /// starts its actor.
    async fn start(
        &self,
        start: StartRequest,
        options: &WorkflowOptions,
        signal: Option<(String, Payload)>,
    ) -> Result<Started, ClientError> {
        self.start_with(start, options, signal, None).await
    }

    /// [`start`](Self::start), with the update of an update-with-start
    /// accepted by the first activation and committed with the start (see
    /// `update::update_with_start`).
    async fn start_with(
        &self,
        start: StartRequest,
        options: &WorkflowOptions,
        signal: Option<(String, Payload)>,
        update: Option<crate::worker::StartUpdate>,
    ) -> Result<Started, ClientError> {
        // A virtual clock stays put until the run's first due times exist.
        let _hold = self.shared.clock.hold();
        // Settle the common refusal before running any workflow code; the
        // store checks again atomically when it commits.
        if let Some((existing, record)) = self.shared.store.current_run(&start.workflow_id).await?
            && !record.status.is_closed()
        {
            return match options.id_conflict_policy {
                WorkflowIdConflictPolicy::UseExisting => Ok(Started::Existing(existing)),
                WorkflowIdConflictPolicy::Fail => Err(ClientError::AlreadyStarted {
                    workflow_id: start.workflow_id,
                    run_id: existing,
                }),
            };
        }
        let run_id = RunId::new_time_ordered();
        let now = self.shared.clock.now();
        let mut events = vec![Event {
            event_id: 1,
            timestamp: now,
            kind: EventKind::WorkflowStarted {
                workflow_type: start.workflow_type.clone(),
                workflow_id: start.workflow_id.clone(),
                task_queue: options.task_queue.clone(),
                input: start.input,
                run_timeout: options.run_timeout,
                execution_timeout: options.execution_timeout,
            },
        }];
        if let Some((signal_name, input)) = signal {
            events.push(Event {
                event_id: 2,
                timestamp: now,
                // Delivered with the code's first run: visible from its
                // first line, as Temporal's signal-with-start is.
                kind: EventKind::WorkflowSignaledWithOptions {
                    signal_name,
                    input,
                    request_id: None,
                    delivery: SignalDelivery::BeforeStart,
                },
            });
        }
        let start_type = start.workflow_type.clone();
        let record = RunRecord {
            workflow_id: start.workflow_id.clone(),
            workflow_type: start.workflow_type,
            task_queue: options.task_queue.clone(),
            status: WorkflowStatus::Running,
            start_time: now,
            close_time: None,
            history_len: events.len() as u64,
            search_attributes: options.search_attributes.clone(),
            memo: options.memo.clone(),
            paused: None,
            reset_from: None,
        };
        // The first activation runs before the commit, so the start and the
        // workflow's first commands are durable together, in one commit.
        let reservation = self.shared.reserve(run_id);
        let start_record = record.clone();
        let mut prepared = self.shared.prepare_run(run_id, record, events.clone());
        if let Some(update) = update
            && prepared.accept_update(update).is_err()
        {
            // Refused (its caller has the typed reason): nothing is written.
            return Err(ClientError::InvalidArgument(
                "the update of an update-with-start was not accepted".into(),
            ));
        }
        // A run that continues as new (or starts children) in its first
        // activation is started with its first events alone; its actor then
        // commits the step together with the next run's start (or the
        // children's), in one commit as always.
        let continues = prepared.commits_first_step();
        let first_step = if continues {
            &[][..]
        } else {
            prepared.new_events()
        };
        let mut encoded = Vec::with_capacity(events.len() + first_step.len());
        for event in events.iter().chain(first_step) {
            encoded.push(codec::encode(event).map_err(|e| ClientError::Storage(e.to_string()))?);
        }
        let (record, wake) = if continues {
            (start_record, crate::store::WAKE_NOW)
        } else {
            (prepared.record().clone(), prepared.wake())
        };
        let reuse = match options.id_reuse_policy {
            WorkflowIdReusePolicy::AllowDuplicate => ReuseRule::Allow,
            WorkflowIdReusePolicy::AllowDuplicateFailedOnly => ReuseRule::AllowIfLastNotCompleted,
            WorkflowIdReusePolicy::RejectDuplicate => ReuseRule::Reject,
        };
        let op = WriteOp::Start {
            run_id,
            record: EncodedRecord::new(record)?,
            events: encoded,
            reuse,
            wake,
        };
        let outcome = self.shared.store.write(op).await?;
        let workflow_id = start.workflow_id;
        if matches!(outcome, WriteOutcome::Started) {
            crate::metrics::workflow_started(&start_type, &options.task_queue);
        }
        match outcome {
            // Committed into another process's shard: its owner was told
            // in the same commit, and runs it (see `worker::remote`).
            WriteOutcome::Started if !self.shared.store.owns(&workflow_id) => {
                drop(reservation);
                Ok(Started::New(run_id))
            }
            WriteOutcome::Started if continues => {
                reservation.launch_uncommitted(prepared);
                Ok(Started::New(run_id))
            }
            WriteOutcome::Started => {
                reservation.launch(prepared);
                Ok(Started::New(run_id))
            }
            WriteOutcome::AlreadyRunning(existing) => match options.id_conflict_policy {
                WorkflowIdConflictPolicy::UseExisting => Ok(Started::Existing(existing)),
                WorkflowIdConflictPolicy::Fail => Err(ClientError::AlreadyStarted {
                    workflow_id,
                    run_id: existing,
                }),
            },
            WriteOutcome::ReuseRejected(last_status) => Err(ClientError::IdReuseRejected {
                workflow_id,
                last_status,
            }),
            other => Err(ClientError::Storage(format!(
                "the store answered a start with {other:?}"
            ))),
        }
    }

    /// Sends a signal to the running run of a workflow ID. Acknowledged only
    /// once the signal is durable; the workflow receives it with
    /// [`WorkflowContext::recv_signal`] (or `try_recv_signal`), in arrival
    /// order, exactly once. A signal that arrives while the workflow is
    /// returning, before its close is committed, is not refused: as in
    /// Temporal the close is withdrawn and the code runs again with it.
    /// A signal the code never reads is recorded as unread by its close
    /// ([`WorkflowDescription::unread_signals`]), never dropped silently.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown ID,
    /// [`ClientError::WorkflowClosed`] when its latest run has closed,
    /// [`ClientError::PayloadTooLarge`]; [`ClientError::DiskFull`] while the
    /// disk is full (also for a run parked by it), [`ClientError::Storage`]
    /// for an I/O error: the signal was not acknowledged (it may still have
    /// been recorded if the failure came at the commit's very end: check
    /// `history` before sending it again).
    pub async fn signal<T: Serialize>(
        &self,
        workflow_id: &str,
        signal: SignalDef<T>,
        payload: T,
    ) -> Result<(), ClientError> {
        self.signal_with_options(workflow_id, signal, payload, SignalOptions::new())
            .await
    }

    /// [`signal`](Self::signal) with options: a request ID makes retrying
    /// safe. A signal whose request ID the run has recorded already is
    /// acknowledged without a second delivery (the ID is in the history
    /// event, so this survives restarts), as in Temporal:
    ///
    /// ```no_run
    /// # use steadfast::{ClientError, Engine, SignalDef, SignalOptions};
    /// # const CANCEL: SignalDef<String> = SignalDef::new("cancel");
    /// # async fn send(engine: &Engine) -> Result<(), ClientError> {
    /// let options = SignalOptions::new().with_request_id("sub-7/cancel");
    /// loop {
    ///     match engine.signal_with_options("sub-7", CANCEL, "moved".into(), options.clone()).await {
    ///         Err(ClientError::Storage(_)) => continue, // outcome unknown: retry, same ID
    ///         other => return other,
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`signal`](Self::signal), and [`ClientError::InvalidArgument`] for
    /// an empty or over-long request ID. A retry that finds the run closed
    /// answers [`ClientError::WorkflowClosed`] even if its first attempt was
    /// delivered: read `history` to tell.
    pub async fn signal_with_options<T: Serialize>(
        &self,
        workflow_id: &str,
        signal: SignalDef<T>,
        payload: T,
        options: SignalOptions,
    ) -> Result<(), ClientError> {
        options.check().map_err(ClientError::InvalidArgument)?;
        let payload = self.encode_checked(&payload, || format!("signal {:?}", signal.name()))?;
        self.signal_chain(workflow_id, signal.name(), payload, options)
            .await
    }

    /// Delivers an encoded signal to the chain's current run.
    async fn signal_chain(
        &self,
        workflow_id: &str,
        name: &str,
        payload: Payload,
        options: SignalOptions,
    ) -> Result<(), ClientError> {
        self.writable("signal")?;
        // A run that continued as new meanwhile refused the signal without
        // recording it: it goes to the run that continues the chain.
        loop {
            let (run_id, _) = self.current_run(workflow_id).await?;
            let result = self
                .signal_run(
                    workflow_id,
                    run_id,
                    name,
                    payload.clone(),
                    options.request_id.clone(),
                )
                .await;
            if !continued(&result) {
                return result;
            }
        }
    }

    async fn signal_run(
        &self,
        workflow_id: &str,
        run_id: RunId,
        name: &str,
        input: Payload,
        request_id: Option<String>,
    ) -> Result<(), ClientError> {
        let (ack, answer) = oneshot::channel();
        let msg = RunMsg::Signal {
            name: name.to_string(),
            input,
            request_id,
            ack,
        };
        self.ask(workflow_id, run_id, msg, answer).await?
    }

    /// Hands a message to a run's actor and waits for its answer; explains
    /// why when the run has no actor.
    async fn ask<T>(
        &self,
        workflow_id: &str,
        run_id: RunId,
        msg: RunMsg,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, ClientError> {
        if self.shared.closing() {
            return Err(ClientError::ShutDown);
        }
        if self.shared.deliver(run_id, msg).is_ok()
            && let Ok(answer) = answer.await
        {
            return Ok(answer);
        }
        Err(self.not_live(workflow_id, run_id).await)
    }

    /// Why a run took no message: closed, parked, or the engine stopped.
    async fn not_live(&self, workflow_id: &str, run_id: RunId) -> ClientError {
        not_live(&self.shared, workflow_id, run_id).await
    }

    /// Asks a workflow a query and returns the answer at once. Works while
    /// the run is running (also right after a restart) and after it closed
    /// (the history is replayed to answer). Changes neither the workflow's
    /// state nor its history.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown ID,
    /// [`ClientError::NoWorker`] when no worker of this engine serves the
    /// run's task queue, [`ClientError::UnknownWorkflowType`] when the
    /// queue's worker does not register the workflow's type (in both cases
    /// no code is here to answer),
    /// [`ClientError::UnknownQuery`] when the workflow has no handler for it,
    /// a payload error when the answer does not decode as `R`.
    pub async fn query<R: DeserializeOwned>(
        &self,
        workflow_id: &str,
        query: QueryDef<R>,
    ) -> Result<R, ClientError> {
        self.query_with(workflow_id, query, ()).await
    }

    /// [`query`](Self::query) with an argument, for a query defined as
    /// [`QueryDef<R, I>`](QueryDef); its handler is registered with
    /// [`WorkflowContext::handle_query_with`].
    ///
    /// # Errors
    /// As [`query`](Self::query), and [`ClientError::InvalidArgument`]
    /// when the argument does not decode as what the handler takes.
    pub async fn query_with<R: DeserializeOwned, I: Serialize>(
        &self,
        workflow_id: &str,
        query: QueryDef<R, I>,
        argument: I,
    ) -> Result<R, ClientError> {
        let input = self.encode_checked(&argument, || {
            format!("the argument of query {:?}", query.name())
        })?;
        let answer = self.query_by_name(workflow_id, query.name(), input).await?;
        Ok(answer.decode()?)
    }

    /// Requests cancellation of a workflow's running run. Recorded durably;
    /// the workflow sees it at its next wait (every pending activity, timer
    /// and signal wait returns a cancellation error), may run cleanup
    /// activities, and ends as `Cancelled` if it then returns an error (or
    /// `Completed` if it returns a value). Pending activity attempts are
    /// told through [`ActivityContext::is_cancelled`] (Temporal's try-cancel).
    /// A run paused by [`pause_workflow`](Self::pause_workflow) holds the
    /// request (recorded as `WorkflowCancelRequestDeferred`, so it survives
    /// restarts) and sees it at the unpause, as Temporal does; the call
    /// answers the same either way.
    ///
    /// # Errors
    /// [`ClientError::NotFound`], [`ClientError::WorkflowClosed`].
    pub async fn cancel(&self, workflow_id: &str) -> Result<(), ClientError> {
        self.writable("cancel")?;
        // A run that continued as new meanwhile refused it: the chain's
        // current run gets it.
        loop {
            let (run_id, _) = self.current_run(workflow_id).await?;
            let (ack, answer) = oneshot::channel();
            let msg = RunMsg::Cancel {
                reason: "cancelled by a client".to_string(),
                ack,
            };
            let result = self.ask(workflow_id, run_id, msg, answer).await?;
            if !continued(&result) {
                return result;
            }
        }
    }

    /// Terminates a workflow's running run at once: no more workflow code
    /// runs, pending attempts are told to stop, and the run ends as
    /// `Terminated`. Works on a run parked by a nondeterminism error.
    ///
    /// # Errors
    /// [`ClientError::NotFound`], [`ClientError::WorkflowClosed`].
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<(), ClientError> {
        self.writable("terminate")?;
        loop {
            let result = self.terminate_once(workflow_id, reason).await;
            if !continued(&result) {
                return result;
            }
        }
    }

    /// Terminates the current run, unless it continued as new meanwhile.
    async fn terminate_once(&self, workflow_id: &str, reason: &str) -> Result<(), ClientError> {
        let (run_id, _) = self.current_run(workflow_id).await?;
        terminate::terminate_run(&self.shared, workflow_id, run_id, reason).await
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
        let (run_id, _) = self.current_run(&workflow_id).await?;
        Ok(self.handle(workflow_id, run_id))
    }

    async fn current_run(&self, workflow_id: &str) -> Result<(RunId, RunRecord), ClientError> {
        self.shared
            .store
            .current_run(workflow_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                workflow_id: workflow_id.to_string(),
            })
    }

    /// Describes the latest run of a workflow ID.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no run has this ID.
    pub async fn describe(&self, workflow_id: &str) -> Result<WorkflowDescription, ClientError> {
        let (run_id, _) = self.current_run(workflow_id).await?;
        handle::describe_run(&self.shared, workflow_id, run_id).await
    }

    /// Describes one run of a workflow ID, by run ID: an earlier run of a
    /// continue-as-new chain (its description names the runs before and
    /// after it), or any run `list` shows.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no such run is stored (never, or
    /// removed by retention or a delete).
    pub async fn describe_run(
        &self,
        workflow_id: &str,
        run_id: RunId,
    ) -> Result<WorkflowDescription, ClientError> {
        handle::describe_run(&self.shared, workflow_id, run_id).await
    }

    /// Lists runs that match `filter`, one page at a time: open runs first,
    /// then closed runs, newest first (see [`ListFilter`]); pass the
    /// returned `next_page_token` back for the next page.
    ///
    /// # Errors
    /// [`ClientError::InvalidArgument`] for a search attribute range whose
    /// bounds are not two `Int`, `Double` or `Datetime` values; a client
    /// error when the file could not be read.
    pub async fn list(&self, filter: &ListFilter) -> Result<WorkflowPage, ClientError> {
        list::list(&self.shared, filter).await
    }

    /// How many runs the store holds of each status (see
    /// [`WorkflowCounts`]). One small read, however many runs the file
    /// holds.
    ///
    /// ```
    /// # async fn counts(engine: steadfast::Engine) -> Result<(), steadfast::ClientError> {
    /// let counts = engine.count_workflows().await?;
    /// println!(
    ///     "{} runs, {} running",
    ///     counts.total(),
    ///     counts.get(steadfast::WorkflowStatus::Running)
    /// );
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A client error when the file could not be read.
    pub async fn count_workflows(&self) -> Result<WorkflowCounts, ClientError> {
        count::count(&self.shared).await
    }

    /// The event history of the latest run of a workflow ID, in order.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when no run has this ID;
    /// [`ClientError::Corrupt`] when a stored event does not decode.
    pub async fn history(&self, workflow_id: &str) -> Result<Vec<Event>, ClientError> {
        let (run_id, _) = self.current_run(workflow_id).await?;
        Ok(self.shared.store.history(run_id, workflow_id).await?)
    }

    /// Stops all work and closes the file; from any clone, as often as you
    /// like: calls while one runs wait for it, calls after it return at
    /// once. Every acknowledged change is already durable.
    ///
    /// Once shutdown begins, calls from clients (on every clone) fail with
    /// [`ClientError::ShutDown`], timers stop firing and no activity attempt
    /// starts. Attempts already running get the builder's
    /// [`graceful_shutdown_timeout`](EngineBuilder::graceful_shutdown_timeout) to finish (their
    /// results are recorded); those still running then are abandoned and run
    /// again after the next open (activities run at least once). Attempts
    /// still waiting for a worker slot never began: they keep their attempt
    /// number and start after the next open.
    ///
    /// # Errors
    /// None today; the result leaves room for flush failures.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.owner.shutdown().await;
        Ok(())
    }
}

/// A checked start, ready to commit.
#[derive(Clone)]
struct StartRequest {
    workflow_type: String,
    workflow_id: String,
    input: Payload,
}

/// Which run a start ended with.
enum Started {
    New(RunId),
    Existing(RunId),
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

/// True when a call found its run closed by a continue-as-new (the run
/// refused it without recording it): it is retried on the run that
/// continues the chain.
fn continued(result: &Result<(), ClientError>) -> bool {
    matches!(
        result,
        Err(ClientError::WorkflowClosed {
            status: crate::history::WorkflowStatus::ContinuedAsNew,
            ..
        })
    )
}

/// Why a run took no message: closed, parked, or the engine stopped.
async fn not_live(shared: &Shared, workflow_id: &str, run_id: RunId) -> ClientError {
    if shared.closing() {
        return ClientError::ShutDown;
    }
    match shared.store.run(run_id, workflow_id).await {
        Ok(Some(record)) if record.status.is_closed() => ClientError::WorkflowClosed {
            workflow_id: workflow_id.to_string(),
            status: record.status,
        },
        // Swept by retention or deleted meanwhile.
        Ok(None) => ClientError::NotFound {
            workflow_id: workflow_id.to_string(),
        },
        Ok(Some(_)) => {
            let reason = shared
                .watch(run_id)
                .and_then(|s| s.borrow().parked().cloned());
            match reason {
                // Not a cause to fix in code: the call waits for space,
                // and the run resumes by itself.
                Some(ParkReason::DiskFull(message)) => ClientError::DiskFull { message },
                Some(ParkReason::Storage(message)) => ClientError::Storage(message),
                // Its shard moved to another process while the call was on
                // its way: nothing to fix, the same call reaches it there.
                None if !shared.store.owns(workflow_id) => ClientError::Storage(format!(
                    "workflow {workflow_id:?} moved to another process while the call was on its way; send it again"
                )),
                reason => ClientError::Parked {
                    workflow_id: workflow_id.to_string(),
                    reason: reason
                        .map_or_else(|| "its actor stopped".to_string(), |r| r.to_string()),
                },
            }
        }
        Err(e) => e.into(),
    }
}
