//! The events of a run's history: pure data, no I/O.
//!
//! A run's history is append-only. Events that record what the workflow code
//! asked for ("commands": an activity scheduled, a timer started, a side effect
//! or patch marker, the run's completion) are checked against the code on
//! replay; events that record what happened outside the code (an activity's
//! result, a timer firing) are fed back to it, one per activation, in history
//! order.

mod children;
mod event_v1;
mod external;
mod failure;
mod ids;
mod json;
mod payload;
mod reset;
mod search_attributes;
mod state;
mod update;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub(crate) use children::child_failure;
pub use children::{
    ChildIdReuse, ChildOptionsRecord, ParentClosePolicy, ParentInfo, PendingChildInfo,
    StartChildFailedCause,
};
pub(crate) use event_v1::EventV1;
pub use external::ExternalFailedCause;
pub(crate) use external::external_signal_request_id;
pub(crate) use failure::is_timeout_type;
pub use failure::{Failure, RetryState};
pub use ids::{MAX_WORKFLOW_ID_LEN, RunId};
pub use json::{HISTORY_JSON_FORMAT, HISTORY_JSON_VERSION, HistoryJsonError, WorkflowHistory};
pub use payload::{DEFAULT_MAX_PAYLOAD_BYTES, Payload, PayloadError};
pub(crate) use reset::{Reapply, ResetRefusal, boundaries, reset_history};
pub use search_attributes::{
    MAX_SEARCH_ATTRIBUTE_NAME_LEN, MAX_SEARCH_ATTRIBUTE_VALUE_BYTES, MAX_SEARCH_ATTRIBUTES,
    SearchAttributeValue, SearchAttributes,
};
pub(crate) use state::{INTERRUPTED, MutableState, PendingChild};
pub use state::{PendingActivityInfo, PendingTimerInfo};
pub(crate) use update::UpdateStatus;
pub use update::{PendingUpdateInfo, UpdateOutcome};

/// The position of an event in its run's history, starting at 1.
pub type EventId = u64;

/// One entry of a run's event history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, starting at 1, without gaps.
    pub event_id: EventId,
    /// Wall-clock time at which the engine recorded the event.
    pub timestamp: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

/// What an [`Event`] records.
///
/// `seq` numbers are assigned by the workflow code in the order it issues
/// commands; they tie a result to the command that asked for it.
// The file format: variants are stored by position and fields in order
// (FORMAT.md). Never reorder, remove or change a variant; a new one goes
// at the end, with a store format bump (codec's tests pin the positions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// The run started.
    WorkflowStarted {
        /// The workflow's registered name.
        workflow_type: String,
        /// The user-chosen workflow ID.
        workflow_id: String,
        /// The task queue whose worker runs the workflow.
        task_queue: String,
        /// The workflow's input.
        input: Payload,
        /// Time allowed for this run; it ends as `TimedOut` after that.
        run_timeout: Option<Duration>,
        /// Time allowed for the workflow execution.
        execution_timeout: Option<Duration>,
    },
    /// The workflow asked for an activity.
    ActivityScheduled {
        /// Command sequence number.
        seq: u32,
        /// The activity's registered name.
        activity_type: String,
        /// The activity's input.
        input: Payload,
        /// Timeouts and retry policy in force for every attempt.
        options: ActivityOptionsRecord,
    },
    /// An attempt's code began: a retry's, or the first attempt's after an
    /// `ActivityAttemptWaiting` (otherwise the first attempt begins with
    /// `ActivityScheduled`). Recorded before the code runs, so that an
    /// attempt cut off by a crash counts, and one that never began does not.
    ActivityAttemptStarted {
        /// Command sequence number.
        seq: u32,
        /// The attempt that started.
        attempt: u32,
    },
    /// An attempt returned a value; the activity is done.
    ActivityCompleted {
        /// Command sequence number.
        seq: u32,
        /// The attempt that succeeded, starting at 1.
        attempt: u32,
        /// The activity's result.
        result: Payload,
    },
    /// An attempt failed. With `next_attempt_at` set the activity will be
    /// retried then; without it the failure is final and goes to the workflow.
    ActivityFailed {
        /// Command sequence number.
        seq: u32,
        /// The attempt that failed, starting at 1.
        attempt: u32,
        /// Why it failed.
        failure: Failure,
        /// When the next attempt is due, if there is one.
        next_attempt_at: Option<SystemTime>,
    },
    /// The workflow started a durable timer.
    TimerStarted {
        /// Command sequence number.
        seq: u32,
        /// When the timer fires.
        fire_at: SystemTime,
    },
    /// A durable timer fired.
    TimerFired {
        /// Command sequence number.
        seq: u32,
    },
    /// A value produced by `side_effect`, `random` or `uuid` seeds is not
    /// recorded; this records `side_effect`'s closure result.
    SideEffectRecorded {
        /// Command sequence number.
        seq: u32,
        /// The recorded value.
        value: Payload,
    },
    /// The workflow took the new branch of `patched(patch_id)`.
    PatchRecorded {
        /// The change ID passed to `patched`.
        patch_id: String,
    },
    /// A signal was delivered to the run.
    WorkflowSignaled {
        /// The signal's name.
        signal_name: String,
        /// The signal's payload.
        input: Payload,
    },
    /// Cancellation of the run was requested; the workflow sees it at its
    /// next wait.
    WorkflowCancelRequested {
        /// Why, as given by the caller.
        reason: String,
    },
    /// An activity attempt reported progress; the details reach later
    /// attempts. Written at most about once per throttle interval.
    ActivityHeartbeat {
        /// Command sequence number.
        seq: u32,
        /// The attempt that heartbeated.
        attempt: u32,
        /// The details passed to `heartbeat`.
        details: Payload,
    },
    /// The workflow returned a value.
    WorkflowCompleted {
        /// The workflow's result.
        result: Payload,
    },
    /// The workflow returned an error.
    WorkflowFailed {
        /// Why it failed.
        failure: Failure,
    },
    /// The workflow ended after a cancellation request by returning an error.
    WorkflowCancelled {
        /// The error it returned.
        failure: Failure,
    },
    /// The run was terminated: no more workflow code ran.
    WorkflowTerminated {
        /// Why, as given by the caller.
        reason: String,
    },
    /// The run's run or execution timeout ran out.
    WorkflowTimedOut {
        /// Which timeout: `"WorkflowRunTimeout"` or `"WorkflowExecutionTimeout"`.
        timeout: String,
    },
    /// The workflow upserted search attributes (`ctx.upsert_search_attributes`):
    /// each replaces the run's attribute of that name; an empty keyword list
    /// removes it. Last in the enum, so records written before it decode.
    SearchAttributesUpserted {
        /// The attributes as the code passed them.
        attributes: SearchAttributes,
    },
    /// The workflow cancelled a durable timer before it fired (it dropped
    /// the timer's future, or called [`TimerFuture::cancel`](crate::TimerFuture::cancel)).
    /// Since format 3.
    TimerCanceled {
        /// Command sequence number of the timer.
        seq: u32,
    },
    /// A signal was delivered to the run, with what format 3 added to
    /// [`WorkflowSignaled`](EventKind::WorkflowSignaled) (which is still
    /// written for a plain signal). Since format 3.
    WorkflowSignaledWithOptions {
        /// The signal's name.
        signal_name: String,
        /// The signal's payload.
        input: Payload,
        /// The caller's request ID: a later signal with the same ID is
        /// acknowledged without being delivered again.
        request_id: Option<String>,
        /// When the workflow code gets the signal.
        delivery: SignalDelivery,
    },
    /// The workflow returned while signals delivered to it were still
    /// unread. Written just before the close event, in the same commit, so
    /// no acknowledged signal is dropped silently. Since format 3.
    SignalsUnread {
        /// Each signal name with unread signals, in name order.
        signals: Vec<UnreadSignals>,
    },
    /// An attempt could not begin at once: it waits for a slot of its task
    /// queue (`max_concurrent_activities`, a rate limit) or for a worker
    /// serving the queue, and none of its code has run. Written only for
    /// the first attempt (with its `ActivityScheduled`, which otherwise
    /// means "attempt 1 began"); a retry that has to wait simply stays due.
    /// `ActivityAttemptStarted` follows once its code begins, so an attempt
    /// that never began keeps its number across kills and shutdowns. Store
    /// format 4.
    ActivityAttemptWaiting {
        /// Command sequence number.
        seq: u32,
        /// The attempt that waits.
        attempt: u32,
    },
    /// The workflow continued as new (`ctx.continue_as_new`): the run
    /// closes as [`WorkflowStatus::ContinuedAsNew`] and its successor, run
    /// `new_run_id` of the same workflow ID, starts in the same commit.
    /// Store format 5.
    WorkflowContinuedAsNew {
        /// The run that continues the chain.
        new_run_id: RunId,
        /// The next run's workflow type (this run's unless changed).
        workflow_type: String,
        /// The next run's task queue (this run's unless changed).
        task_queue: String,
        /// The next run's input.
        input: Payload,
        /// The signals this run had received and not read, in arrival
        /// order: they are delivered to the next run before its code runs.
        signals: Vec<CarriedSignal>,
        /// The next run's search attributes, when the code replaced them
        /// (otherwise this run's carry over).
        search_attributes: Option<SearchAttributes>,
        /// The next run's memo, when the code replaced it (otherwise this
        /// run's carries over).
        memo: Option<Payload>,
    },
    /// The run continues a chain: written second, right after
    /// `WorkflowStarted`, in a run started by a continue-as-new. Store
    /// format 5.
    WorkflowContinuedFrom {
        /// The run that continued as this one.
        previous_run_id: RunId,
    },
    /// The workflow cancelled one activity
    /// ([`ActivityFuture::cancel`](crate::ActivityFuture::cancel), with any
    /// cancellation type but `Abandon`): its running attempt is told, one
    /// that has not begun never begins, and its failures are final. Store
    /// format 7.
    ActivityCancelRequested {
        /// Command sequence number of the activity.
        seq: u32,
    },
    /// A local activity ended
    /// ([`WorkflowContext::execute_local_activity`](crate::WorkflowContext::execute_local_activity)):
    /// the one event a local activity has, written once its last attempt
    /// returned (nothing is recorded before). Replay feeds it to the code
    /// without running the activity. Store format 8.
    LocalActivityRecorded {
        /// Command sequence number.
        seq: u32,
        /// The activity's registered name.
        activity_type: String,
        /// The last attempt, starting at 1.
        attempt: u32,
        /// Its value, or the final failure (with the retry state that ended
        /// retries).
        result: Result<Payload, Failure>,
    },
    /// An update passed its validator and was accepted: durable before its
    /// handler runs, which it wakes (the handler is workflow code, replayed
    /// from here). Store format 9.
    WorkflowUpdateAccepted {
        /// The update's ID: a later update with the same ID gets this
        /// one's outcome instead of running again.
        update_id: String,
        /// The update's name (its `UpdateDef`).
        update_name: String,
        /// The update's input.
        input: Payload,
    },
    /// An update's handler returned: the outcome its callers get. A
    /// command of the workflow code (checked on replay by update ID).
    /// Store format 9.
    WorkflowUpdateCompleted {
        /// The ID of the accepted update.
        update_id: String,
        /// What the handler returned.
        outcome: UpdateOutcome,
    },
    /// The workflow started a child workflow (`ctx.start_child_workflow`).
    /// Always committed together with its outcome, `ChildWorkflowStarted`
    /// or `StartChildWorkflowFailed`, and (when started) the child's first
    /// events: no history holds a start whose outcome is unknown. Store
    /// format 10.
    StartChildWorkflowInitiated {
        /// Command sequence number.
        seq: u32,
        /// The child's workflow ID.
        workflow_id: String,
        /// The child's workflow type.
        workflow_type: String,
        /// The child's task queue.
        task_queue: String,
        /// The child's input.
        input: Payload,
        /// The child's options.
        options: ChildOptionsRecord,
    },
    /// The child workflow of `seq` started, as run `run_id`. Store format 10.
    ChildWorkflowStarted {
        /// Command sequence number of the start.
        seq: u32,
        /// The child's first run.
        run_id: RunId,
    },
    /// The child workflow of `seq` was not started. Store format 10.
    StartChildWorkflowFailed {
        /// Command sequence number of the start.
        seq: u32,
        /// Why.
        cause: StartChildFailedCause,
    },
    /// The child workflow of `seq` completed (the last run of its
    /// continue-as-new chain returned a value). Store format 10.
    ChildWorkflowCompleted {
        /// Command sequence number of the start.
        seq: u32,
        /// The child's result.
        result: Payload,
    },
    /// The child workflow of `seq` closed without a result: it failed, was
    /// cancelled, terminated, or timed out (`status` says which, `failure`
    /// why). Store format 10.
    ChildWorkflowClosed {
        /// Command sequence number of the start.
        seq: u32,
        /// How the child closed.
        status: WorkflowStatus,
        /// The child's failure (for a termination: type `"Terminated"` and
        /// the reason; for a timeout: the timeout's name).
        failure: Failure,
    },
    /// The workflow asked to cancel its child of `seq`
    /// (`ChildWorkflowHandle::cancel`). Store format 10.
    ChildWorkflowCancelRequested {
        /// Command sequence number of the start.
        seq: u32,
    },
    /// The run is (part of) a child workflow: written right after
    /// `WorkflowStarted` (and `WorkflowContinuedFrom` in a continued run).
    /// Store format 10.
    WorkflowStartedAsChild {
        /// The parent's workflow ID.
        parent_workflow_id: String,
        /// The parent's run that started the child.
        parent_run_id: RunId,
        /// The start's command sequence number in the parent's run.
        seq: u32,
        /// What the parent's close does to this child.
        parent_close_policy: ParentClosePolicy,
    },
    /// The workflow signals another workflow
    /// (`ctx.signal_external_workflow`). Always committed together with
    /// its outcome, `ExternalWorkflowSignaled` or
    /// `SignalExternalWorkflowFailed`, and (when delivered) the target's
    /// signal event, whose request ID names this run and event: no history
    /// holds a signal whose delivery is unknown. Store format 12.
    SignalExternalWorkflowInitiated {
        /// Command sequence number.
        seq: u32,
        /// The target's workflow ID.
        workflow_id: String,
        /// The target run; the ID's latest run when `None`.
        run_id: Option<RunId>,
        /// The signal's name.
        signal_name: String,
        /// The signal's payload.
        input: Payload,
    },
    /// The signal of `seq` was delivered to run `run_id`. Store format 12.
    ExternalWorkflowSignaled {
        /// Command sequence number of the signal.
        seq: u32,
        /// The run that got it.
        run_id: RunId,
    },
    /// The signal of `seq` was not delivered. Store format 12.
    SignalExternalWorkflowFailed {
        /// Command sequence number of the signal.
        seq: u32,
        /// Why.
        cause: ExternalFailedCause,
    },
    /// The workflow asks another workflow to cancel
    /// (`ctx.cancel_external_workflow`). Committed together with its
    /// outcome and (when delivered) the target's `WorkflowCancelRequested`.
    /// Store format 12.
    RequestCancelExternalWorkflowInitiated {
        /// Command sequence number.
        seq: u32,
        /// The target's workflow ID.
        workflow_id: String,
        /// The target run; the ID's latest run when `None`.
        run_id: Option<RunId>,
    },
    /// The cancellation request of `seq` reached run `run_id` (or it had
    /// been asked to cancel already). Store format 12.
    ExternalWorkflowCancelRequested {
        /// Command sequence number of the request.
        seq: u32,
        /// The run asked to cancel.
        run_id: RunId,
    },
    /// The cancellation request of `seq` was not delivered. Store format 12.
    RequestCancelExternalWorkflowFailed {
        /// Command sequence number of the request.
        seq: u32,
        /// Why.
        cause: ExternalFailedCause,
    },
    /// An operator paused the run (`Engine::pause_workflow`): until a
    /// `WorkflowUnpaused`, no activity attempt begins and no timer fires
    /// (they are held, and act at the unpause); queries, signals,
    /// cancellation and termination still work. Store format 13.
    WorkflowPaused {
        /// Why, as the operator gave it.
        reason: String,
    },
    /// An operator unpaused the run: what the pause held acts now. Store
    /// format 13.
    WorkflowUnpaused {
        /// Why, as the operator gave it.
        reason: String,
    },
    /// The run was reset (`Engine::reset_workflow`): it closes as
    /// [`WorkflowStatus::Terminated`], and run `new_run_id` of the same
    /// workflow ID, which starts in the same commit with this run's history
    /// up to event `reset_event_id`, re-runs the rest under the code
    /// registered now. Store format 13.
    WorkflowReset {
        /// The run that replaces this one.
        new_run_id: RunId,
        /// The last event of this run's history the new run keeps: a
        /// workflow task boundary (see `Engine::reset_workflow`).
        reset_event_id: EventId,
        /// Why, as the operator gave it.
        reason: String,
    },
    /// The run was started by a reset: written right after the history it
    /// copied from `previous_run_id` (events 1 to `reset_event_id`, kept
    /// as they were), before the signals reapplied to it. Its code replays
    /// the copy, and from here on its randomness is seeded from its own run
    /// ID. Store format 13.
    WorkflowResetFrom {
        /// The run that was reset.
        previous_run_id: RunId,
        /// The last event copied from it.
        reset_event_id: EventId,
        /// The run whose ID seeded `ctx.random` for the events before this
        /// one (the run that recorded them), so a replay of them draws the
        /// same values.
        seed_run_id: RunId,
        /// Why, as the operator gave it.
        reason: String,
    },
    /// Attempt `attempt` of a local activity failed and the backoff before
    /// the next one is longer than its `local_retry_threshold` (Temporal's
    /// marker plus timer): the next attempt, `attempt + 1`, begins at
    /// `next_attempt_at`, also after a restart, with schedule-to-close
    /// still counted from `original_scheduled_time`. Not an activation:
    /// the code goes on waiting for the activity's `LocalActivityRecorded`.
    /// Store format 15.
    LocalActivityBackoff {
        /// Command sequence number.
        seq: u32,
        /// The activity's registered name.
        activity_type: String,
        /// The attempt that failed.
        attempt: u32,
        /// Its failure (retry state `InProgress`).
        failure: Failure,
        /// When the next attempt begins.
        next_attempt_at: SystemTime,
        /// When the code asked for the local activity (its first attempt's
        /// schedule time).
        original_scheduled_time: SystemTime,
    },
    /// Cancellation of the run was requested while it was paused: held,
    /// as Temporal holds it, until the unpause, when the engine records the
    /// `WorkflowCancelRequested` the code then sees. The code never sees
    /// this event itself. Only the first request is held (a second one, or
    /// one after the run was asked to cancel already, records nothing).
    /// Store format 16.
    WorkflowCancelRequestDeferred {
        /// Why, as given by the caller.
        reason: String,
    },
    /// Event 2 of a run a schedule started when the schedule had something
    /// to pass on (Temporal's `last_completion_result` and
    /// `continued_failure` of the start): read by the code through
    /// [`WorkflowContext::last_completion_result`](crate::WorkflowContext::last_completion_result)
    /// and [`WorkflowContext::last_failure`](crate::WorkflowContext::last_failure).
    /// Not a command; the code never sees it as an activation. Store
    /// format 16.
    WorkflowStartedBySchedule {
        /// The schedule that started the run.
        schedule_id: String,
        /// The result of the schedule's most recent action whose workflow
        /// completed, as of this start.
        last_completion_result: Option<Payload>,
        /// The failure of the schedule's most recent action whose workflow
        /// failed or timed out, unless one completed since.
        last_failure: Option<Failure>,
    },
    /// This child's parent was reset while the child was open and started
    /// before the reset point: written by the reset's commit, it names the
    /// run the child belongs to from here on (its close is reported there,
    /// and that run's parent-close policy and cancellation reach it). The
    /// child keeps its start seq. Not a command; the code never sees it.
    /// Store format 16.
    ParentWorkflowReset {
        /// The parent's run that replaced the one named before.
        parent_run_id: RunId,
    },
    /// The workflow signals its child through the child's handle
    /// (`ChildWorkflowHandle::signal`, Temporal's signal with
    /// `child_workflow_only`): delivered to whichever run of the child's
    /// chain is current, only while that run names this run and
    /// `child_seq` as its parent. Committed with its outcome
    /// (`ExternalWorkflowSignaled` or `SignalExternalWorkflowFailed`) and
    /// the child's signal event, as `SignalExternalWorkflowInitiated` is,
    /// which builds before store format 17 recorded such a signal as
    /// (with no run ID, and later with the child's first run). Store
    /// format 17.
    SignalChildWorkflowInitiated {
        /// Command sequence number.
        seq: u32,
        /// The child's start seq (`StartChildWorkflowInitiated`).
        child_seq: u32,
        /// The child's workflow ID.
        workflow_id: String,
        /// The child's first run.
        run_id: RunId,
        /// The signal's name.
        signal_name: String,
        /// The signal's payload.
        input: Payload,
    },
}

/// A signal a run received and did not read, moved to the next run of a
/// continue-as-new (in [`EventKind::WorkflowContinuedAsNew`]).
// Persisted (FORMAT.md): fields in this order, never changed in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CarriedSignal {
    /// The signal's name.
    pub signal_name: String,
    /// The signal's payload.
    pub input: Payload,
}

/// When the workflow code gets a signal, as recorded in
/// [`EventKind::WorkflowSignaledWithOptions`].
// Persisted by position (FORMAT.md): never reorder; new ones at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SignalDelivery {
    /// As it is recorded: the code is woken for it alone (what a plain
    /// `WorkflowSignaled` means).
    Alone,
    /// Together with the next event of the history: the code is woken once
    /// for both. Written for signals that arrived while the code was
    /// returning on that event (Temporal's `signal/prevent_close`), which
    /// is then recorded again after them.
    WithNext,
    /// Before the code first runs: the signal of a signal-with-start,
    /// right after `WorkflowStarted`.
    BeforeStart,
}

/// Signals of one name that the workflow never read, as recorded in
/// [`EventKind::SignalsUnread`] and shown by `describe`.
// Persisted (FORMAT.md): fields in this order, never changed in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadSignals {
    /// The signal name.
    pub signal_name: String,
    /// How many signals of the name were delivered and never read.
    pub count: u64,
}

impl EventKind {
    /// True for events that record a command of the workflow code and are
    /// matched against the code on replay.
    pub(crate) fn is_command(&self) -> bool {
        matches!(
            self,
            EventKind::ActivityScheduled { .. }
                | EventKind::TimerStarted { .. }
                | EventKind::SideEffectRecorded { .. }
                | EventKind::PatchRecorded { .. }
                | EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled { .. }
                | EventKind::SearchAttributesUpserted { .. }
                | EventKind::TimerCanceled { .. }
                | EventKind::WorkflowContinuedAsNew { .. }
                | EventKind::ActivityCancelRequested { .. }
                | EventKind::WorkflowUpdateCompleted { .. }
                | EventKind::StartChildWorkflowInitiated { .. }
                | EventKind::ChildWorkflowCancelRequested { .. }
                | EventKind::SignalExternalWorkflowInitiated { .. }
                | EventKind::RequestCancelExternalWorkflowInitiated { .. }
                | EventKind::SignalChildWorkflowInitiated { .. }
        )
    }

    /// The name and payload of a signal event, of either form.
    pub(crate) fn signal(&self) -> Option<(&str, &Payload)> {
        match self {
            EventKind::WorkflowSignaled { signal_name, input }
            | EventKind::WorkflowSignaledWithOptions {
                signal_name, input, ..
            } => Some((signal_name, input)),
            _ => None,
        }
    }

    /// True for the events that close a run; nothing follows one in a
    /// history.
    pub(crate) fn is_close(&self) -> bool {
        matches!(
            self,
            EventKind::WorkflowCompleted { .. }
                | EventKind::WorkflowFailed { .. }
                | EventKind::WorkflowCancelled { .. }
                | EventKind::WorkflowTerminated { .. }
                | EventKind::WorkflowTimedOut { .. }
                | EventKind::WorkflowContinuedAsNew { .. }
                | EventKind::WorkflowReset { .. }
        )
    }

    /// An approximation of the event's stored size in bytes: the bytes of
    /// its payloads and names, plus 16 for the rest (IDs, times, tags) and
    /// 64 more for an activity's options.
    /// Cheap (nothing is encoded), and the same on every replay.
    pub(crate) fn approx_bytes(&self) -> u64 {
        let payloads: usize = match self {
            EventKind::WorkflowStarted {
                workflow_type,
                workflow_id,
                task_queue,
                input,
                ..
            } => workflow_type.len() + workflow_id.len() + task_queue.len() + input.len(),
            EventKind::ActivityScheduled {
                activity_type,
                input,
                ..
            } => activity_type.len() + input.len() + 64,
            EventKind::ActivityCompleted { result, .. } => result.len(),
            EventKind::LocalActivityRecorded {
                activity_type,
                result,
                ..
            } => {
                activity_type.len()
                    + match result {
                        Ok(value) => value.len(),
                        Err(failure) => failure.error_type.len() + failure.message.len(),
                    }
            }
            EventKind::LocalActivityBackoff {
                activity_type,
                failure,
                ..
            } => activity_type.len() + failure.error_type.len() + failure.message.len(),
            EventKind::ActivityFailed { failure, .. }
            | EventKind::WorkflowFailed { failure }
            | EventKind::WorkflowCancelled { failure } => {
                failure.error_type.len() + failure.message.len()
            }
            EventKind::SideEffectRecorded { value, .. } => value.len(),
            EventKind::PatchRecorded { patch_id } => patch_id.len(),
            EventKind::WorkflowSignaled { signal_name, input }
            | EventKind::WorkflowSignaledWithOptions {
                signal_name, input, ..
            } => signal_name.len() + input.len(),
            EventKind::ActivityHeartbeat { details, .. } => details.len(),
            EventKind::WorkflowCompleted { result } => result.len(),
            EventKind::WorkflowUpdateAccepted {
                update_id,
                update_name,
                input,
            } => update_id.len() + update_name.len() + input.len(),
            EventKind::WorkflowUpdateCompleted { update_id, outcome } => {
                update_id.len() + outcome.approx_bytes()
            }
            EventKind::ChildWorkflowCompleted { result, .. } => result.len(),
            EventKind::StartChildWorkflowInitiated {
                workflow_id,
                workflow_type,
                task_queue,
                input,
                ..
            } => workflow_id.len() + workflow_type.len() + task_queue.len() + input.len() + 64,
            EventKind::ChildWorkflowClosed { failure, .. } => {
                failure.error_type.len() + failure.message.len()
            }
            EventKind::SignalExternalWorkflowInitiated {
                workflow_id,
                signal_name,
                input,
                ..
            }
            | EventKind::SignalChildWorkflowInitiated {
                workflow_id,
                signal_name,
                input,
                ..
            } => workflow_id.len() + signal_name.len() + input.len(),
            EventKind::RequestCancelExternalWorkflowInitiated { workflow_id, .. } => {
                workflow_id.len()
            }
            EventKind::WorkflowContinuedAsNew { input, signals, .. } => {
                input.len()
                    + signals
                        .iter()
                        .map(|s| s.signal_name.len() + s.input.len())
                        .sum::<usize>()
            }
            EventKind::WorkflowStartedBySchedule {
                schedule_id,
                last_completion_result,
                last_failure,
            } => {
                schedule_id.len()
                    + last_completion_result.as_ref().map_or(0, Payload::len)
                    + last_failure
                        .as_ref()
                        .map_or(0, |f| f.message.len() + f.error_type.len())
            }
            _ => 0,
        };
        payloads as u64 + 16
    }

    /// A short description for nondeterminism reports.
    pub(crate) fn describe(&self) -> String {
        match self {
            EventKind::WorkflowStarted { workflow_type, .. } => {
                format!("WorkflowStarted({workflow_type})")
            }
            EventKind::ActivityScheduled {
                seq, activity_type, ..
            } => format!("ActivityScheduled(seq {seq}, activity {activity_type:?})"),
            EventKind::ActivityAttemptStarted { seq, attempt } => {
                format!("ActivityAttemptStarted(seq {seq}, attempt {attempt})")
            }
            EventKind::ActivityCompleted { seq, attempt, .. } => {
                format!("ActivityCompleted(seq {seq}, attempt {attempt})")
            }
            EventKind::ActivityFailed { seq, attempt, .. } => {
                format!("ActivityFailed(seq {seq}, attempt {attempt})")
            }
            EventKind::TimerStarted { seq, .. } => format!("TimerStarted(seq {seq})"),
            EventKind::TimerFired { seq } => format!("TimerFired(seq {seq})"),
            EventKind::SideEffectRecorded { seq, .. } => format!("SideEffectRecorded(seq {seq})"),
            EventKind::PatchRecorded { patch_id } => format!("PatchRecorded({patch_id:?})"),
            EventKind::WorkflowCompleted { .. } => "WorkflowCompleted".to_string(),
            EventKind::WorkflowFailed { .. } => "WorkflowFailed".to_string(),
            EventKind::WorkflowSignaled { signal_name, .. } => {
                format!("WorkflowSignaled({signal_name:?})")
            }
            EventKind::WorkflowCancelRequested { .. } => "WorkflowCancelRequested".to_string(),
            EventKind::ActivityHeartbeat { seq, attempt, .. } => {
                format!("ActivityHeartbeat(seq {seq}, attempt {attempt})")
            }
            EventKind::WorkflowCancelled { .. } => "WorkflowCancelled".to_string(),
            EventKind::WorkflowTerminated { .. } => "WorkflowTerminated".to_string(),
            EventKind::WorkflowTimedOut { timeout } => format!("WorkflowTimedOut({timeout})"),
            EventKind::SearchAttributesUpserted { attributes } => {
                let names: Vec<&str> = attributes.iter().map(|(name, _)| name).collect();
                format!("SearchAttributesUpserted({names:?})")
            }
            EventKind::TimerCanceled { seq } => format!("TimerCanceled(seq {seq})"),
            EventKind::WorkflowSignaledWithOptions { signal_name, .. } => {
                format!("WorkflowSignaled({signal_name:?})")
            }
            EventKind::SignalsUnread { signals } => {
                let names: Vec<&str> = signals.iter().map(|s| s.signal_name.as_str()).collect();
                format!("SignalsUnread({names:?})")
            }
            EventKind::ActivityAttemptWaiting { seq, attempt } => {
                format!("ActivityAttemptWaiting(seq {seq}, attempt {attempt})")
            }
            EventKind::WorkflowContinuedAsNew { workflow_type, .. } => {
                format!("WorkflowContinuedAsNew({workflow_type})")
            }
            EventKind::WorkflowContinuedFrom { previous_run_id } => {
                format!("WorkflowContinuedFrom({previous_run_id})")
            }
            EventKind::ActivityCancelRequested { seq } => {
                format!("ActivityCancelRequested(seq {seq})")
            }
            EventKind::LocalActivityRecorded {
                seq, activity_type, ..
            } => format!("LocalActivityRecorded(seq {seq}, activity {activity_type:?})"),
            EventKind::WorkflowUpdateAccepted {
                update_id,
                update_name,
                ..
            } => format!("WorkflowUpdateAccepted({update_name:?}, id {update_id:?})"),
            EventKind::WorkflowUpdateCompleted { update_id, .. } => {
                format!("WorkflowUpdateCompleted(id {update_id:?})")
            }
            EventKind::StartChildWorkflowInitiated {
                seq,
                workflow_id,
                workflow_type,
                ..
            } => format!(
                "StartChildWorkflowInitiated(seq {seq}, workflow {workflow_type:?}, ID {workflow_id:?})"
            ),
            EventKind::ChildWorkflowStarted { seq, run_id } => {
                format!("ChildWorkflowStarted(seq {seq}, run {run_id})")
            }
            EventKind::StartChildWorkflowFailed { seq, .. } => {
                format!("StartChildWorkflowFailed(seq {seq})")
            }
            EventKind::ChildWorkflowCompleted { seq, .. } => {
                format!("ChildWorkflowCompleted(seq {seq})")
            }
            EventKind::ChildWorkflowClosed { seq, status, .. } => {
                format!("ChildWorkflowClosed(seq {seq}, {status:?})")
            }
            EventKind::ChildWorkflowCancelRequested { seq } => {
                format!("ChildWorkflowCancelRequested(seq {seq})")
            }
            EventKind::WorkflowStartedAsChild {
                parent_workflow_id, ..
            } => format!("WorkflowStartedAsChild(parent {parent_workflow_id:?})"),
            // The run ID too: a command that names a run and one that names
            // none are different commands.
            EventKind::SignalExternalWorkflowInitiated {
                seq,
                workflow_id,
                run_id: Some(run_id),
                signal_name,
                ..
            } => format!(
                "SignalExternalWorkflowInitiated(seq {seq}, signal {signal_name:?}, ID {workflow_id:?}, run {run_id})"
            ),
            EventKind::SignalExternalWorkflowInitiated {
                seq,
                workflow_id,
                run_id: None,
                signal_name,
                ..
            } => format!(
                "SignalExternalWorkflowInitiated(seq {seq}, signal {signal_name:?}, ID {workflow_id:?}, latest run)"
            ),
            EventKind::SignalChildWorkflowInitiated {
                seq,
                child_seq,
                workflow_id,
                signal_name,
                ..
            } => format!(
                "SignalChildWorkflowInitiated(seq {seq}, signal {signal_name:?}, child seq {child_seq}, ID {workflow_id:?})"
            ),
            EventKind::ExternalWorkflowSignaled { seq, run_id } => {
                format!("ExternalWorkflowSignaled(seq {seq}, run {run_id})")
            }
            EventKind::SignalExternalWorkflowFailed { seq, .. } => {
                format!("SignalExternalWorkflowFailed(seq {seq})")
            }
            EventKind::RequestCancelExternalWorkflowInitiated {
                seq,
                workflow_id,
                run_id,
            } => {
                let run = run_id.map_or_else(|| "latest run".to_string(), |r| format!("run {r}"));
                format!(
                    "RequestCancelExternalWorkflowInitiated(seq {seq}, ID {workflow_id:?}, {run})"
                )
            }
            EventKind::ExternalWorkflowCancelRequested { seq, run_id } => {
                format!("ExternalWorkflowCancelRequested(seq {seq}, run {run_id})")
            }
            EventKind::RequestCancelExternalWorkflowFailed { seq, .. } => {
                format!("RequestCancelExternalWorkflowFailed(seq {seq})")
            }
            EventKind::WorkflowPaused { .. } => "WorkflowPaused".to_string(),
            EventKind::WorkflowUnpaused { .. } => "WorkflowUnpaused".to_string(),
            EventKind::WorkflowReset { new_run_id, .. } => {
                format!("WorkflowReset(new run {new_run_id})")
            }
            EventKind::WorkflowResetFrom {
                previous_run_id,
                reset_event_id,
                ..
            } => format!("WorkflowResetFrom(run {previous_run_id}, event {reset_event_id})"),
            EventKind::LocalActivityBackoff {
                seq,
                activity_type,
                attempt,
                ..
            } => format!(
                "LocalActivityBackoff(seq {seq}, activity {activity_type:?}, attempt {attempt})"
            ),
            EventKind::WorkflowCancelRequestDeferred { .. } => {
                "WorkflowCancelRequestDeferred".to_string()
            }
            EventKind::WorkflowStartedBySchedule { schedule_id, .. } => {
                format!("WorkflowStartedBySchedule({schedule_id:?})")
            }
            EventKind::ParentWorkflowReset { parent_run_id } => {
                format!("ParentWorkflowReset(parent run {parent_run_id})")
            }
        }
    }
}

/// An activity's options as stored with its `ActivityScheduled` event, so that
/// retries and timeouts keep working after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityOptionsRecord {
    /// Time allowed from scheduling to the final result, across all attempts.
    pub schedule_to_close_timeout: Option<Duration>,
    /// Time allowed for one attempt.
    pub start_to_close_timeout: Option<Duration>,
    /// Delay before the first retry.
    pub initial_interval: Duration,
    /// Growth of the delay per retry.
    pub backoff_coefficient: f64,
    /// Largest delay between attempts.
    pub maximum_interval: Duration,
    /// Most attempts in all; 0 means unlimited.
    pub maximum_attempts: u32,
    /// Failure types that end retries.
    pub non_retryable_error_types: Vec<String>,
    /// Longest time allowed between heartbeats of an attempt.
    pub heartbeat_timeout: Option<Duration>,
    /// Longest time an attempt may wait for a worker slot.
    pub schedule_to_start_timeout: Option<Duration>,
    /// The task queue the activity runs on; the workflow's when `None`.
    pub task_queue: Option<String>,
}

/// Where a run stands.
// Stored by position in run records: never reorder (see `EventKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WorkflowStatus {
    /// Not closed yet: running, waiting, or parked by a nondeterminism error.
    Running,
    /// The workflow returned a value.
    Completed,
    /// The workflow returned an error.
    Failed,
    /// The workflow ended after a cancellation request.
    Cancelled,
    /// The run was terminated.
    Terminated,
    /// The run's run or execution timeout ran out.
    TimedOut,
    /// The workflow continued as new: the chain goes on in a next run of
    /// the same workflow ID (store format 5).
    ContinuedAsNew,
}

impl WorkflowStatus {
    /// Every status, in their stored order.
    pub(crate) const ALL: [WorkflowStatus; 7] = [
        WorkflowStatus::Running,
        WorkflowStatus::Completed,
        WorkflowStatus::Failed,
        WorkflowStatus::Cancelled,
        WorkflowStatus::Terminated,
        WorkflowStatus::TimedOut,
        WorkflowStatus::ContinuedAsNew,
    ];

    /// True once the run can make no more progress.
    pub fn is_closed(self) -> bool {
        !matches!(self, WorkflowStatus::Running)
    }
}
