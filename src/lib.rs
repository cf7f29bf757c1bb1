//! steadfast: durable workflows and activities in one local file, with
//! Temporal's programming model and no server.
//!
//! ```
//! use std::time::Duration;
//! use steadfast::{
//!     ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Worker,
//!     WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
//! };
//!
//! const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
//! const SAY_HELLO_WORKFLOW: WorkflowDef<String, String> = WorkflowDef::new("SayHello");
//!
//! async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! async fn say_hello_workflow(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
//!     let options = ActivityOptions::schedule_to_close(Duration::from_secs(5));
//!     Ok(ctx.execute_activity(SAY_HELLO, name, options).await?)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), steadfast::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("hello.steadfast");
//! let worker = Worker::new("my-task-queue")
//!     .workflow(SAY_HELLO_WORKFLOW, say_hello_workflow)
//!     .activity(SAY_HELLO, say_hello);
//! let engine = Engine::builder().worker(worker).open(&path).await?;
//! let run = engine
//!     .start_workflow(
//!         SAY_HELLO_WORKFLOW,
//!         "hello-world-workflow-id-001",
//!         "Alice".to_string(),
//!         WorkflowOptions::new().with_task_queue("my-task-queue"),
//!     )
//!     .await?;
//! assert_eq!(run.result().await?, "Hello, Alice!");
//! engine.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts (Temporal → steadfast)
//!
//! | Temporal | steadfast |
//! |---|---|
//! | Temporal server + its database | one redb file, opened by [`Engine::builder`] |
//! | Client | [`Engine`]: `start_workflow`, `get_workflow_handle`, `describe`, `history` |
//! | Worker on a task queue | [`Worker`], given to [`EngineBuilder::worker`] |
//! | Workflow definition | [`WorkflowDef`] + an async fn of ([`WorkflowContext`], input) |
//! | Activity definition | [`ActivityDef`] + an async (or blocking) fn of ([`ActivityContext`], input) |
//! | Activity options, retry policy | [`ActivityOptions`], [`RetryPolicy`] (Temporal's defaults) |
//! | Local activity | [`WorkflowContext::execute_local_activity`] ([`LocalActivityOptions`]): one event when it ends, retried in place; a backoff over `local_retry_threshold` is a durable timer; [`LocalActivityFuture::cancel`] with its cancellation type |
//! | Activity cancellation types | [`ActivityFuture::cancel`], [`ActivityCancellationType`] on [`ActivityOptions::with_cancellation_type`] |
//! | Activity failure: retry state, error type, details | [`ActivityFailure::retry_state`], [`ActivityFailure::error_type`], [`ActivityFailure::details`] ([`ActivityError::with_details`]); a workflow's: [`Failure::details`] in [`ResultError::Failed`] ([`WorkflowError::with_details`]) |
//! | Workflow ID, Run ID | a `String` you choose, [`RunId`] |
//! | Event history | [`Event`], [`EventKind`], via [`Engine::history`] |
//! | `workflow.now()`, `random()`, `uuid4()`, SideEffect | [`WorkflowContext::now`], [`random`](WorkflowContext::random), [`uuid`](WorkflowContext::uuid), [`side_effect`](WorkflowContext::side_effect) |
//! | `patched()` | [`WorkflowContext::patched`] |
//! | Nondeterminism error (workflow task failure) | [`NondeterminismError`]; the run is parked, see [`WorkflowDescription::parked`] |
//! | Signal, signal-with-start | [`SignalDef`], [`Engine::signal`], [`Engine::signal_with_start`], [`WorkflowContext::recv_signal`] |
//! | Query (with an argument) | [`QueryDef`], [`Engine::query`] ([`query_with`](Engine::query_with)), [`WorkflowContext::handle_query`] ([`handle_query_with`](WorkflowContext::handle_query_with)) |
//! | Update (with a validator), update-with-start, update limits | [`UpdateDef`], [`Engine::update`], [`Engine::update_with_start`] (atomic), [`WorkflowContext::handle_update`]; [`WorkflowDescription::pending_updates`] ([`PendingUpdateInfo`]); [`EngineBuilder::update_limits`] (10 in flight, 2,000 per run, as Temporal) |
//! | Signal handlers | [`WorkflowContext::handle_signal`] |
//! | Cancel, terminate | [`Engine::cancel`] (waits return [`Cancelled`]), [`Engine::terminate`] |
//! | Heartbeat | [`ActivityContext::heartbeat`], [`ActivityContext::heartbeat_details`], [`ActivityContext::is_cancelled`] |
//! | Worker limits | [`Worker::max_concurrent_activities`], [`Worker::max_activities_per_second`] |
//! | Describe, list (visibility) | [`Engine::describe`]; [`Engine::list`] with [`ListFilter`]: by status, type, start and close time, ID prefix and search attributes, open runs first, then newest closed; paged by token, served by indexes |
//! | Search attributes, memo | [`WorkflowOptions::with_search_attribute`], [`WorkflowOptions::with_memo`], [`WorkflowContext::upsert_search_attributes`] ([`SearchAttributes`], [`SearchAttributeValue`]) |
//! | Delete a workflow execution | [`Engine::delete`] (a closed workflow; a running one is refused with [`ClientError::StillRunning`]) |
//! | Continue-as-new | [`WorkflowContext::continue_as_new`] ([`ContinueAsNewOptions`]), one commit; [`WorkflowHandle::result`] follows the chain, [`WorkflowDescription::previous_run_id`]/[`next_run_id`](WorkflowDescription::next_run_id); [`WorkflowContext::continue_as_new_suggested`], [`history_length`](WorkflowContext::history_length), [`history_bytes`](WorkflowContext::history_bytes) |
//! | Child workflows, parent-close policy, child cancellation types | [`WorkflowContext::start_child_workflow`] ([`ChildWorkflowOptions`], [`ParentClosePolicy`], [`ChildWorkflowCancellationType`]) gives a [`ChildWorkflowHandle`] once the start is durable (one commit), with [`ChildWorkflowHandle::signal`] and [`ChildWorkflowHandle::cancel`]; the parent's own cancellation follows each child's cancellation type; [`WorkflowContext::execute_child_workflow`]; [`ChildWorkflowError`]; [`WorkflowDescription::pending_children`], [`WorkflowDescription::parent`] |
//! | Signal and cancel an external workflow | [`WorkflowContext::signal_external_workflow`], [`WorkflowContext::cancel_external_workflow`] (one commit with the delivery; [`ExternalWorkflowFuture`], [`ExternalWorkflowError`]) |
//! | Sticky workflow cache | [`EngineBuilder::max_cached_runs`] |
//! | History JSON, `WorkflowReplayer` | [`Engine::workflow_history`], [`WorkflowHistory`] (`to_json`/`from_json`), [`Replayer`] |
//! | Time-skipping test environment | [`testing::TestEngine`] (virtual time, [`sleep`](testing::TestEngine::sleep)) |
//!
//! # Testing your workflows
//!
//! [`testing::TestEngine`] runs the same registrations on a virtual clock
//! that skips to the next timer, retry or timeout whenever the test waits
//! and nothing runs, so a workflow that sleeps for months finishes in
//! milliseconds, with test doubles registered for its activities. See the
//! [`testing`] module.
//!
//! # Guarantees
//!
//! - A call that changes state (a start, an activity result, a timer firing)
//!   is acknowledged only after its events are committed with redb's
//!   immediate durability. Concurrent changes share one commit.
//! - Activities run at least once; the workflow sees each activity's result
//!   exactly once. [`ActivityContext::idempotency_key`] is stable across
//!   attempts and restarts, for deduplicating external calls.
//! - After a crash, opening the file resumes every unfinished run: completed
//!   activities never run again; an attempt the crash cut off runs again and
//!   counts as an attempt, while one that never began (still waiting for a
//!   worker slot, say) keeps its number; timers keep their due times.
//! - Workflow code that no longer matches its history is parked with a
//!   [`NondeterminismError`], never failed; it resumes once fixed code opens
//!   the file.
//!
//! # File format
//!
//! The file's tables and records, their versions, and the procedure for
//! changing them are in `FORMAT.md` at the repository root. Files written
//! by every earlier format are kept in `tests/fixtures/` and keep opening
//! (format 1 files are migrated in place, atomically, on first open).
//!
//! # Where things live
//!
//! `history` (events, payloads, search attributes, and `state`: the one
//! fold of events into a run's state), `codec` (the only bincode user),
//! `store` (the storage trait, its conformance suite, and the redb store:
//! the only redb user, the group-commit writer, the visibility indexes),
//! `workflow` (context, durable futures, replay), `activity` (options,
//! retry policy, context), `worker` (run actors, activity attempts, timers),
//! `clock` (the one source of time, system or virtual), `engine` (this
//! front door), `replayer` (saved histories replayed against today's code,
//! through the same replay machine; their JSON form is `history`'s `json`),
//! `testing` (the test engine).

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod activity;
mod clock;
mod codec;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod history;
pub mod metrics;
mod panic;
mod replayer;
mod schedule;
mod store;
pub mod testing;
mod worker;
mod workflow;

pub use activity::{
    ActivityCancellationType, ActivityContext, ActivityDef, ActivityError, ActivityInfo,
    ActivityOptions, RetryPolicy,
};
pub use engine::{
    DEFAULT_FILE_CACHE_BYTES, DEFAULT_MAX_CACHED_RUNS, Engine, EngineBuilder, ListFilter,
    MAX_SIGNAL_REQUEST_ID_LEN, PageToken, ResultOrParked, SignalOptions, WorkflowDescription,
    WorkflowExecutionInfo, WorkflowHandle, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowOptions, WorkflowPage,
};
pub use engine::{
    MAX_SCHEDULE_ID_LEN, SCHEDULED_BY_ID, SCHEDULED_START_TIME, ScheduleHandle,
    scheduled_workflow_id,
};
pub use engine::{MAX_UPDATE_ID_LEN, UpdateOptions, WorkflowCounts};
pub use engine::{PauseReason, ResetOptions, ResetTo};
pub use error::{ClientError, Error, OpenError, ResultError, UpdateError};
pub use history::UpdateOutcome;
pub use history::{
    ActivityOptionsRecord, CarriedSignal, ChildIdReuse, ChildOptionsRecord,
    DEFAULT_MAX_PAYLOAD_BYTES, Event, EventId, EventKind, ExternalFailedCause, Failure,
    HISTORY_JSON_FORMAT, HISTORY_JSON_VERSION, HistoryJsonError, MAX_SEARCH_ATTRIBUTE_NAME_LEN,
    MAX_SEARCH_ATTRIBUTE_VALUE_BYTES, MAX_SEARCH_ATTRIBUTES, MAX_WORKFLOW_ID_LEN,
    ParentClosePolicy, ParentInfo, Payload, PayloadError, PendingActivityInfo, PendingChildInfo,
    PendingTimerInfo, PendingUpdateInfo, RetryState, RunId, SearchAttributeValue, SearchAttributes,
    SignalDelivery, StartChildFailedCause, UnreadSignals, WorkflowHistory, WorkflowStatus,
};
pub use replayer::{ReplayCheckError, ReplayError, ReplayReport, Replayer};
pub use schedule::{
    DEFAULT_CATCHUP_WINDOW, MAX_BUFFERED_ACTIONS, MIN_CATCHUP_WINDOW, Schedule, ScheduleAction,
    ScheduleActionResult, ScheduleBackfill, ScheduleDescription, ScheduleError, ScheduleInfo,
    ScheduleIntervalSpec, ScheduleListEntry, ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec,
    ScheduleState, ScheduleWorkflow,
};
/// The PostgreSQL schema [`EngineBuilder::postgres`] uses unless
/// [`EngineBuilder::postgres_schema`] names another.
#[cfg(feature = "postgres")]
pub use store::DEFAULT_SCHEMA as DEFAULT_POSTGRES_SCHEMA;
/// How long a process's lease on its PostgreSQL shards lasts unless
/// [`EngineBuilder::shard_lease`] sets another: 5 s.
#[cfg(feature = "postgres")]
pub use store::DEFAULT_SHARD_LEASE;
/// Makes the storage under an engine fail on purpose (feature
/// `fault-injection`, for tests); see `EngineBuilder::fault_injector`.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use store::FaultInjector;
/// Simulates a power cut under an engine (feature `fault-injection`, for
/// tests); see `EngineBuilder::power_cut`.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use store::{CutImage, CutMode, PowerCut};
pub use worker::{DEFAULT_TASK_QUEUE, Worker};
pub use workflow::{
    ActivityFailure, ActivityFuture, Cancelled, ChildResultFuture, ChildWorkflowCancellationType,
    ChildWorkflowError, ChildWorkflowHandle, ChildWorkflowOptions, ContinueAsNewOptions,
    DEFAULT_SUGGEST_CONTINUE_AS_NEW_BYTES, DEFAULT_SUGGEST_CONTINUE_AS_NEW_EVENTS,
    DEFAULT_WARN_HISTORY_EVENTS, ExternalWorkflowError, ExternalWorkflowFuture,
    LocalActivityFuture, LocalActivityOptions, NondeterminismError, ParkReason, QueryDef,
    SignalDef, SignalError, SignalFuture, StartChildFuture, TimerFuture, WorkflowContext,
    WorkflowDef, WorkflowError,
};
pub use workflow::{DEFAULT_MAX_IN_FLIGHT_UPDATES, DEFAULT_MAX_UPDATES_PER_RUN, UpdateDef};

/// Compiles the README's Rust blocks as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
