//! `WorkflowContext`: the whole vocabulary of workflow code.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::child::{ChildWorkflowError, ChildWorkflowOptions, StartChildFuture};
use super::continue_as_new::{ContinueAsNew, ContinueAsNewOptions};
use super::definition::{QueryDef, QueryFault, QueryFn, SignalDef, WorkflowDef};
use super::error::WorkflowError;
use super::external::ExternalWorkflowFuture;
use super::future::{ActivityFuture, SignalFuture, TimerFuture};
use super::replay::{Awaited, RunCore, lock};
use crate::activity::{ActivityDef, ActivityOptions};
use crate::history::{
    EventKind, MAX_SEARCH_ATTRIBUTES, Payload, PayloadError, RunId, SearchAttributes,
};

/// Passed to a workflow function; every effect of workflow code goes
/// through it, so that the code replays deterministically.
///
/// Workflow code must wait only on the futures this context returns (not on
/// `tokio::time::sleep`, channels or I/O), and take time, randomness and IDs
/// from it. A run whose code waits on anything else is parked with
/// [`ParkReason::ForeignFuture`](crate::ParkReason::ForeignFuture) rather
/// than left hanging. To wait on several futures, use `futures::join!`,
/// `futures::future::join_all` or `futures::select_biased!` (an unbiased
/// `select` picks at random and would not replay the same way).
///
/// # Chapters
/// - Activities: [`execute_activity`](Self::execute_activity),
///   [`execute_local_activity`](Self::execute_local_activity).
/// - Child workflows: [`start_child_workflow`](Self::start_child_workflow),
///   [`execute_child_workflow`](Self::execute_child_workflow).
/// - Timers: [`sleep`](Self::sleep), [`sleep_until`](Self::sleep_until).
/// - Deterministic values: [`now`](Self::now), [`random`](Self::random),
///   [`uuid`](Self::uuid), [`side_effect`](Self::side_effect).
/// - Signals and queries: [`recv_signal`](Self::recv_signal),
///   [`try_recv_signal`](Self::try_recv_signal),
///   [`handle_query`](Self::handle_query), [`handle_signal`](Self::handle_signal).
/// - Updates: [`handle_update`](Self::handle_update).
/// - Cancellation: every wait returns an error once a cancellation request
///   arrives; [`is_cancel_requested`](Self::is_cancel_requested).
/// - Versioning: [`patched`](Self::patched).
/// - Visibility: [`upsert_search_attributes`](Self::upsert_search_attributes).
/// - Continue-as-new: [`continue_as_new`](Self::continue_as_new),
///   [`history_length`](Self::history_length),
///   [`history_bytes`](Self::history_bytes),
///   [`continue_as_new_suggested`](Self::continue_as_new_suggested).
#[derive(Clone)]
pub struct WorkflowContext {
    core: Arc<Mutex<RunCore>>,
}

impl std::fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = lock(&self.core);
        f.debug_struct("WorkflowContext")
            .field("workflow_id", &core.workflow_id)
            .field("run_id", &core.run_id)
            .finish()
    }
}

impl WorkflowContext {
    pub(crate) fn new(core: Arc<Mutex<RunCore>>) -> Self {
        WorkflowContext { core }
    }

    /// The run's shared state, for the chapters kept in their own files
    /// (updates, signal handlers).
    pub(crate) fn core(&self) -> &Arc<Mutex<RunCore>> {
        &self.core
    }

    /// The workflow ID of this run.
    pub fn workflow_id(&self) -> String {
        lock(&self.core).workflow_id.clone()
    }

    /// This run's ID. Do not branch on it: a later run of the same workflow
    /// ID has another.
    pub fn run_id(&self) -> RunId {
        lock(&self.core).run_id
    }

    /// For a run a schedule started: the result of the schedule's most
    /// recent action whose workflow completed before this one started
    /// (Temporal's `LastCompletionResult`), decoded as `T`. `Ok(None)` for
    /// the schedule's first action, a run no schedule started, and a start
    /// under the overlap policy `AllowAll` (as in Temporal: runs overlap,
    /// so there is no "last"). Not carried to a continued run.
    ///
    /// ```
    /// # use steadfast::{WorkflowContext, WorkflowError};
    /// // A report that counts on from where the previous one ended.
    /// async fn report(ctx: WorkflowContext, _: ()) -> Result<u64, WorkflowError> {
    ///     let previous: u64 = ctx.last_completion_result()?.unwrap_or(0);
    ///     Ok(previous + 1)
    /// }
    /// ```
    ///
    /// # Errors
    /// [`PayloadError`] when the result does not decode as `T`.
    pub fn last_completion_result<T: DeserializeOwned>(&self) -> Result<Option<T>, PayloadError> {
        lock(&self.core)
            .last_completion_result
            .as_ref()
            .map(Payload::decode)
            .transpose()
    }

    /// For a run a schedule started: the failure of the schedule's most
    /// recent action whose workflow failed or timed out, unless one
    /// completed since (Temporal's last failure, `continued_failure`).
    /// `None` otherwise, as for [`last_completion_result`](Self::last_completion_result).
    pub fn last_failure(&self) -> Option<crate::history::Failure> {
        lock(&self.core).last_failure.clone()
    }

    // ----- Activities -----

    /// Schedules an activity and returns a future of its result.
    ///
    /// The call is recorded when this method is called, not when the future
    /// is first polled, so the order of calls is the order in history.
    /// Options that are invalid (no timeout, a bad retry policy) or an input
    /// that does not encode make the future resolve to
    /// [`ActivityFailure::NotScheduled`](crate::ActivityFailure::NotScheduled)
    /// without recording anything.
    pub fn execute_activity<I, O>(
        &self,
        activity: ActivityDef<I, O>,
        input: I,
        options: ActivityOptions,
    ) -> ActivityFuture<O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let name = activity.name();
        let record = match options.to_record() {
            Ok(r) => r,
            Err(message) => return ActivityFuture::refused(self.core.clone(), name, message),
        };
        let input = match Payload::encode(&input) {
            Ok(p) => p,
            Err(e) => return ActivityFuture::refused(self.core.clone(), name, e.to_string()),
        };
        let mut core = lock(&self.core);
        let seq = core.next_seq();
        core.track(seq, Awaited::Activity);
        core.command(EventKind::ActivityScheduled {
            seq,
            activity_type: name.to_string(),
            input,
            options: record,
        });
        drop(core);
        ActivityFuture::scheduled(self.core.clone(), seq, name, options.cancellation_type)
    }

    // ----- Other workflows -----

    /// Signals another workflow (Temporal's `SignalExternalWorkflow`):
    /// the run `run_id` of `workflow_id`, or its latest run when `None`.
    /// Resolves to the run that got the signal once the delivery is
    /// durable: this run's record of it, the signal in the target's history
    /// and the outcome are one commit, and the signal carries a request ID
    /// made of this run and event, so it is delivered exactly once whatever
    /// stops the process. A target that does not exist or is closed gives
    /// [`ExternalWorkflowError`]; replay checks the call like any command.
    /// A run may signal itself (as in Temporal): the signal is written to
    /// its own history in the same commit, before the outcome, and is
    /// received like any other.
    ///
    /// ```no_run
    /// # use steadfast::{SignalDef, WorkflowContext, WorkflowError};
    /// const APPROVE: SignalDef<String> = SignalDef::new("approve");
    /// # async fn wf(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    /// ctx.signal_external_workflow("order-17", None, APPROVE, "ok".to_string()).await?;
    /// # Ok(()) }
    /// ```
    pub fn signal_external_workflow<T: Serialize>(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<RunId>,
        signal: SignalDef<T>,
        input: T,
    ) -> ExternalWorkflowFuture {
        let input = Payload::encode(&input).map_err(|e| e.to_string());
        super::external::signal(&self.core, workflow_id.into(), run_id, signal.name(), input)
    }

    /// Asks another workflow to cancel (Temporal's
    /// `RequestCancelExternalWorkflow`), as a client's
    /// [`Engine::cancel`](crate::Engine::cancel) would: the run `run_id` of
    /// `workflow_id`, or its latest run when `None`. Resolves once the
    /// request is durable in the target's history (in the same commit as
    /// this run's record of it), not when the target ends; a run asked
    /// twice sees one request. A target that does not exist or is closed
    /// gives [`ExternalWorkflowError`].
    ///
    /// A run may ask itself to cancel (its own workflow ID, with its run ID
    /// or `None`), as Temporal allows: its own history gets
    /// `WorkflowCancelRequested` in the same commit, before the outcome;
    /// this future resolves to its run ID, and from then on the run is
    /// being cancelled as by [`Engine::cancel`](crate::Engine::cancel)
    /// (its other waits end with a cancellation error). Replay repeats it
    /// from the recorded events.
    pub fn cancel_external_workflow(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<RunId>,
    ) -> ExternalWorkflowFuture {
        super::external::cancel(&self.core, workflow_id.into(), run_id)
    }

    // ----- Child workflows -----

    /// Starts a child workflow and resolves to its typed handle once the
    /// start is durable: the check of the child's workflow ID, the child's
    /// first events and this run's record of the start are one commit.
    ///
    /// The call is recorded when this method is called (as an activity's
    /// is), and the outcome is in this run's history, so replay repeats it.
    /// Await the start before the workflow returns: a start issued by the
    /// step that closes the run is never made.
    ///
    /// The child's close reaches this run as an event (completed, or
    /// failed, cancelled, terminated, timed out); a child that continues as
    /// new is one child, whose result is its chain's last run's. When this
    /// run closes, each child still open is dealt with per its
    /// [`ParentClosePolicy`](crate::ParentClosePolicy). When this workflow is
    /// cancelled, each open child is asked to cancel too, and waits on its
    /// result end with its close.
    ///
    /// # Errors
    /// The future resolves to [`ChildWorkflowError::AlreadyStarted`] when
    /// the ID has a running run, [`ChildWorkflowError::IdReuseRejected`]
    /// when the reuse policy refuses a closed one, and
    /// [`ChildWorkflowError::NotStarted`] for invalid options or an input
    /// that does not encode (nothing is recorded then).
    ///
    /// ```no_run
    /// use steadfast::{ChildWorkflowOptions, WorkflowContext, WorkflowDef, WorkflowError};
    /// const PART: WorkflowDef<u32, u32> = WorkflowDef::new("Part");
    /// # async fn body(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    /// let child = ctx
    ///     .start_child_workflow(PART, "order-7/part-1", 10, ChildWorkflowOptions::new())
    ///     .await?;
    /// let doubled = child.result().await?;
    /// # Ok(doubled)
    /// # }
    /// ```
    pub fn start_child_workflow<I, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
        input: I,
        options: ChildWorkflowOptions,
    ) -> StartChildFuture<O>
    where
        I: Serialize,
    {
        super::child::start(
            &self.core,
            workflow.name(),
            workflow_id.into(),
            &input,
            &options,
        )
    }

    /// Starts a child workflow and waits for its result:
    /// [`start_child_workflow`](Self::start_child_workflow) and then
    /// [`ChildWorkflowHandle::result`](crate::ChildWorkflowHandle::result).
    /// The start is recorded when this method is called.
    ///
    /// # Errors
    /// Either call's [`ChildWorkflowError`].
    pub fn execute_child_workflow<I, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        workflow_id: String,
        input: I,
        options: ChildWorkflowOptions,
    ) -> impl std::future::Future<Output = Result<O, ChildWorkflowError>> + use<I, O>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let start = self.start_child_workflow(workflow, workflow_id, input, options);
        async move { start.await?.result().await }
    }

    // ----- Timers -----

    /// A durable timer that fires `duration` after [`now`](Self::now).
    /// It survives restarts and fires at its original due time, or at once
    /// if that passed while the process was down. A due time past the last
    /// one `SystemTime` holds (`Duration::MAX`) becomes that last one.
    pub fn sleep(&self, duration: Duration) -> TimerFuture {
        let now = self.now();
        let fire_at = now
            .checked_add(duration)
            .unwrap_or_else(|| latest_time_after(now));
        self.sleep_until(fire_at)
    }

    /// A durable timer that fires at `fire_at`.
    pub fn sleep_until(&self, fire_at: SystemTime) -> TimerFuture {
        let mut core = lock(&self.core);
        let seq = core.next_seq();
        core.track(seq, Awaited::Timer);
        core.command(EventKind::TimerStarted { seq, fire_at });
        drop(core);
        TimerFuture::new(self.core.clone(), seq)
    }

    // ----- Signals and queries -----

    /// Waits for the next signal of a name. Signals of a name are received
    /// in arrival order; those that arrived before the workflow waits are
    /// kept until it does; each is received once.
    ///
    /// Resolves to `Err(SignalError::Cancelled)` when the workflow is
    /// cancelled while waiting.
    pub fn recv_signal<T: DeserializeOwned>(&self, signal: SignalDef<T>) -> SignalFuture<T> {
        SignalFuture::new(self.core.clone(), signal.name())
    }

    /// Takes the next signal of a name if one has been delivered, without
    /// waiting: `Ok(None)` when none is buffered. Deterministic: on replay
    /// it sees exactly the signals that had arrived at this point live.
    ///
    /// A workflow that returns with signals unread does not lose them
    /// silently (the close records them, see
    /// [`EventKind::SignalsUnread`](crate::EventKind::SignalsUnread)), but
    /// their senders were acknowledged and their effect is lost. Drain the
    /// signals that matter before returning, as Temporal users do:
    ///
    /// ```no_run
    /// # use steadfast::{SignalDef, WorkflowContext, WorkflowError};
    /// const CANCEL: SignalDef<String> = SignalDef::new("cancel");
    /// # async fn body(ctx: WorkflowContext) -> Result<u32, WorkflowError> {
    /// let mut cancels = 0;
    /// while let Some(_reason) = ctx.try_recv_signal(CANCEL)? {
    ///     cancels += 1;
    /// }
    /// Ok(cancels)
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`PayloadError`] when the signal's payload does not decode as `T`
    /// (the signal is taken all the same).
    pub fn try_recv_signal<T: DeserializeOwned>(
        &self,
        signal: SignalDef<T>,
    ) -> Result<Option<T>, PayloadError> {
        let payload = lock(&self.core).try_take_signal(signal.name());
        payload.map(|p| p.decode()).transpose()
    }

    /// Answers a query with `handler`, which reads the workflow's state
    /// (share it with the workflow through an `Arc<Mutex<_>>`). The handler
    /// must not block; it runs between workflow steps and changes nothing.
    /// A later call for the same name replaces the handler.
    pub fn handle_query<R, F>(&self, query: QueryDef<R>, handler: F)
    where
        R: Serialize,
        F: Fn() -> R + Send + Sync + 'static,
    {
        self.handle_query_with(query, move |()| handler());
    }

    /// [`handle_query`](Self::handle_query) for a query that takes an
    /// argument ([`QueryDef<R, I>`](QueryDef)): the handler gets the
    /// caller's argument (see [`Engine::query_with`](crate::Engine::query_with)).
    pub fn handle_query_with<R, I, F>(&self, query: QueryDef<R, I>, handler: F)
    where
        R: Serialize,
        I: DeserializeOwned,
        F: Fn(I) -> R + Send + Sync + 'static,
    {
        let handler: QueryFn = Arc::new(move |argument: &Payload| {
            let argument: I = argument.decode().map_err(QueryFault::Argument)?;
            Payload::encode(&handler(argument)).map_err(QueryFault::Answer)
        });
        lock(&self.core).set_query(query.name(), handler);
    }

    /// True once a cancellation of the workflow was requested.
    pub fn is_cancel_requested(&self) -> bool {
        lock(&self.core).cancel_requested()
    }

    // ----- Deterministic values -----

    /// The workflow's current time: the time at which the event that woke
    /// the workflow was recorded. The same value on replay.
    pub fn now(&self) -> SystemTime {
        lock(&self.core).now()
    }

    /// A random number from a generator seeded by the run ID: the same
    /// sequence on replay.
    pub fn random(&self) -> u64 {
        lock(&self.core).next_random()
    }

    /// A random (version 4) UUID from the same generator as
    /// [`random`](Self::random): the same values on replay.
    pub fn uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        lock(&self.core).fill_random(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Runs `f` once and records its value in history; on replay `f` is not
    /// run and the recorded value is returned. For reading non-deterministic
    /// things (the environment, a quick local computation) without an activity.
    ///
    /// # Errors
    /// A [`PayloadError`] when the value does not encode, or the recorded one
    /// no longer decodes as `T`.
    pub fn side_effect<T, F>(&self, f: F) -> Result<T, PayloadError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        let seq = lock(&self.core).next_seq();
        let probe = lock(&self.core).command(EventKind::SideEffectRecorded {
            seq,
            value: Payload::encode(&())?,
        });
        match probe {
            Some(EventKind::SideEffectRecorded { value, .. }) => value.decode(),
            // The code no longer matches its history: the run is being
            // parked, and the closure must not run. Unwinding (without the
            // panic hook) stops the workflow code; the machine reports the
            // nondeterminism, not a panic.
            None if lock(&self.core).diverged() => {
                std::panic::resume_unwind(Box::new("nondeterminism detected in side_effect"))
            }
            _ => {
                let value = f();
                let payload = Payload::encode(&value)?;
                lock(&self.core).replace_last_side_effect(seq, payload);
                Ok(value)
            }
        }
    }

    // ----- Versioning -----

    /// Whether to take the new branch of a code change: `true` on new
    /// executions (and a marker is recorded), `false` when replaying a
    /// history recorded before the change. Once a run has seen `false` for
    /// an ID, it keeps seeing it.
    ///
    /// ```no_run
    /// # async fn body(ctx: steadfast::WorkflowContext) {
    /// if ctx.patched("send-receipt") {
    ///     // new code
    /// } else {
    ///     // old code, for runs started before the change
    /// }
    /// # }
    /// ```
    pub fn patched(&self, change_id: &str) -> bool {
        lock(&self.core).patched(change_id)
    }

    // ----- Visibility -----

    /// Changes the run's search attributes, which `Engine::list` filters
    /// on: each attribute given replaces the run's attribute of that name,
    /// and an empty `KeywordList` removes it. A command like any other: it
    /// is recorded in history (`SearchAttributesUpserted`), checked on
    /// replay (by attribute names), and the run's new attributes are
    /// durable, and listed, with the step that issued it.
    ///
    /// ```no_run
    /// # fn body(ctx: steadfast::WorkflowContext) -> Result<(), steadfast::WorkflowError> {
    /// use steadfast::SearchAttributes;
    /// ctx.upsert_search_attributes(SearchAttributes::new().with("OrderState", "shipped"))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// A [`WorkflowError`] (nothing is recorded) when a name or value is
    /// over the limits ([`MAX_SEARCH_ATTRIBUTE_VALUE_BYTES`](crate::MAX_SEARCH_ATTRIBUTE_VALUE_BYTES)
    /// and its neighbours), when the attributes this run has upserted
    /// would number more than [`MAX_SEARCH_ATTRIBUTES`] together (besides
    /// those given at start), or a datetime is before the Unix epoch.
    pub fn upsert_search_attributes(
        &self,
        attributes: SearchAttributes,
    ) -> Result<(), WorkflowError> {
        attributes
            .check()
            .map_err(|e| WorkflowError::new(format!("upsert_search_attributes: {e}")))?;
        if attributes.is_empty() {
            return Ok(());
        }
        let mut core = lock(&self.core);
        // Bounded over the run, not only per call: each upsert merges into
        // what earlier ones set (the same on replay, so it replays alike).
        let mut merged = core.upserted.clone();
        merged.merge(&attributes);
        if merged.len() > MAX_SEARCH_ATTRIBUTES {
            return Err(WorkflowError::new(format!(
                "upsert_search_attributes: the run would have {} upserted search attributes, \
                 over the limit of {MAX_SEARCH_ATTRIBUTES}; remove some (an empty KeywordList \
                 removes one) before adding others",
                merged.len()
            )));
        }
        core.upserted = merged;
        core.command(EventKind::SearchAttributesUpserted { attributes });
        Ok(())
    }

    // ----- Continue-as-new -----

    /// Ends this run and continues the workflow in a new run of the same
    /// workflow ID, with `input`: return the error this gives from the
    /// workflow function. Closing this run (status `ContinuedAsNew`) and
    /// starting the next (a new run ID, an empty history) are one commit,
    /// so there is never a closed run without its successor. Signals this
    /// run received and did not read move to the next run (delivered
    /// before its code runs, in arrival order), as do those that arrive
    /// while this run is returning: none is lost or delivered twice. The
    /// search attributes, memo, task queue, run timeout and execution
    /// timeout (which spans the chain) carry over;
    /// [`continue_as_new_with_options`](Self::continue_as_new_with_options)
    /// changes some. `workflow` is usually the workflow's own definition
    /// (its input type checks `input`); another registered type continues
    /// the chain as that type.
    ///
    /// ```no_run
    /// # use steadfast::{WorkflowContext, WorkflowDef, WorkflowError};
    /// const COUNTER: WorkflowDef<u64, u64> = WorkflowDef::new("counter");
    /// async fn counter(ctx: WorkflowContext, count: u64) -> Result<u64, WorkflowError> {
    ///     if count < 20 {
    ///         return Err(ctx.continue_as_new(COUNTER, count + 5));
    ///     }
    ///     Ok(count)
    /// }
    /// ```
    ///
    /// Returned as an error so that `?` and early returns stay plain; it
    /// records nothing until the workflow function returns it. Any other
    /// use (dropping it, wrapping it) is an ordinary failure.
    pub fn continue_as_new<I: Serialize, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        input: I,
    ) -> WorkflowError {
        self.continue_as_new_with_options(workflow, input, ContinueAsNewOptions::new())
    }

    /// [`continue_as_new`](Self::continue_as_new), changing what the
    /// options set for the next run.
    pub fn continue_as_new_with_options<I: Serialize, O>(
        &self,
        workflow: WorkflowDef<I, O>,
        input: I,
        options: ContinueAsNewOptions,
    ) -> WorkflowError {
        match Payload::encode(&input) {
            Ok(input) => WorkflowError::continuing(ContinueAsNew {
                workflow_type: workflow.name().to_string(),
                input,
                options,
            }),
            Err(e) => {
                WorkflowError::new(format!("continue_as_new: the input does not encode: {e}"))
            }
        }
    }

    /// Events in this run's history as of the current activation (the
    /// event that woke the code and everything before it). The same on
    /// every replay.
    pub fn history_length(&self) -> u64 {
        lock(&self.core).history_len
    }

    /// An approximation of this run's history size in bytes as of the
    /// current activation: the bytes of its payloads and names plus 16 per
    /// event (64 more per scheduled activity, for its options); not the
    /// exact stored size, which would cost an encoding per event. The same
    /// on every replay.
    pub fn history_bytes(&self) -> u64 {
        lock(&self.core).history_bytes
    }

    /// True once this run's history reached the size at which continuing
    /// as new is suggested: 4,096 events or 4 MiB
    /// ([`history_bytes`](Self::history_bytes)) by default, as in
    /// Temporal; the engine builder's
    /// [`suggest_continue_as_new_at`](crate::EngineBuilder::suggest_continue_as_new_at)
    /// changes both.
    pub fn continue_as_new_suggested(&self) -> bool {
        lock(&self.core).continue_as_new_suggested()
    }
}

/// The last time `SystemTime` holds after `start` (its range is platform-specific).
fn latest_time_after(start: SystemTime) -> SystemTime {
    let mut latest = start;
    let mut step = Duration::MAX;
    while !step.is_zero() {
        match latest.checked_add(step) {
            Some(later) => latest = later,
            None => step /= 2,
        }
    }
    latest
}
