//! The actor of one run: it owns the run's workflow machine, feeds it events,
//! commits what happened, and only then acts on it.
//!
//! Every change follows the same order: build the events (the outcome that
//! woke the run and the commands the code issued in reply), commit them in
//! one durable write, then answer callers and start activities and timers. A
//! crash between the commit and the actions is repaired by replay on the
//! next open.

mod children;
mod external;

pub(crate) use children::{close_telling_parent, reconcile, tell_parent_after_close};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

mod activity_cancel;
mod local_activity;
mod pause;

pub(crate) use activity_cancel::ACTIVITY_CANCELLED;
pub(crate) use pause::ResetRun;

use super::attempt::{self, Attempt, AttemptOutcome, Begin};
use super::queue::Slot;
use super::{RunSnapshot, RunState, Shared};
use crate::activity::retry;
use crate::codec;
use crate::error::ClientError;
use crate::history::{
    Event, EventKind, Failure, INTERRUPTED, MutableState, Payload, RetryState, RunId,
    SignalDelivery, WorkflowStatus,
};
use crate::store::{
    ContinueAsNewOp, EncodedRecord, RunRecord, StoreError, WAKE_NEVER, WAKE_NOW, WriteOp,
};
use crate::workflow::{ParkReason, QueryFault, WorkflowMachine};

mod update;
pub(crate) use update::{StartUpdate, UpdateReply};

/// Tickets of waiting dispatches, unique in the process (see
/// `RunActor::waiting`).
static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// Where a query's answer goes.
pub(crate) type QueryReply = oneshot::Sender<Result<Payload, ClientError>>;

/// An answer sent once the step that carries the call is durable.
pub(crate) type Ack = oneshot::Sender<Result<(), ClientError>>;

/// Something that happened to a run outside its workflow code.
#[derive(Debug)]
pub(crate) enum RunMsg {
    /// An activity attempt ended.
    AttemptDone {
        seq: u32,
        attempt: u32,
        outcome: AttemptOutcome,
    },
    /// A waiting attempt has a slot and asks to begin: the run records the
    /// start, and answers `go` once it is durable; it drops `go` when the
    /// attempt must not begin (the run was cancelled or closed, or the
    /// attempt is no longer the one waiting).
    SlotReady {
        seq: u32,
        attempt: u32,
        /// Which dispatch asks (see `RunActor::waiting`).
        ticket: u64,
        go: oneshot::Sender<()>,
    },
    /// An attempt heartbeated (already throttled).
    Heartbeat {
        seq: u32,
        attempt: u32,
        details: Payload,
    },
    /// A local activity's task ended: its last attempt's outcome, or a
    /// backoff over its retry threshold (with its request, for the attempt
    /// after it).
    LocalActivityDone {
        seq: u32,
        end: Box<crate::worker::local_activity::LocalEnd>,
        retry: Option<Box<crate::workflow::LocalRequest>>,
    },
    /// A local activity's recorded backoff is over.
    LocalRetryDue { seq: u32 },
    /// A durable timer is due.
    TimerDue { seq: u32 },
    /// The delay before a retry is over.
    RetryDue { seq: u32, attempt: u32 },
    /// The run or execution timeout ran out.
    RunTimeout { timeout: &'static str },
    /// A signal from a client.
    Signal {
        name: String,
        input: Payload,
        /// The caller's deduplication ID, if it gave one.
        request_id: Option<String>,
        ack: Ack,
    },
    /// A query from a client.
    Query {
        name: String,
        /// The query's argument (`()` for one without).
        input: Payload,
        reply: oneshot::Sender<Result<Payload, ClientError>>,
    },
    /// An update from a client: answered with the handler's outcome once
    /// it is durable, or at once when it is not accepted.
    Update {
        update_id: String,
        name: String,
        input: Payload,
        reply: UpdateReply,
    },
    /// A cancellation request from a client.
    Cancel { reason: String, ack: Ack },
    /// A termination from a client.
    Terminate { reason: String, ack: Ack },
    /// A request for the run's pending work.
    Describe { reply: oneshot::Sender<RunSnapshot> },
    /// A child workflow of this run closed: `kind` is the event that
    /// records it here (`ChildWorkflowCompleted` or `ChildWorkflowClosed`).
    /// From the child's actor once its close is durable, or from the
    /// reconciliation when this run is loaded; recorded once.
    ChildClosed {
        child_workflow_id: String,
        /// Boxed: the largest message, and the rarest.
        kind: Box<EventKind>,
    },
    /// An event another run's commit wrote to this run's history (a
    /// signal or a cancellation request from workflow code, see
    /// `external`): taken in once, never written again.
    Recorded {
        /// Boxed, as `ChildClosed`'s kind.
        event: Box<Event>,
    },
    /// An operator pauses the run (see [`pause`]).
    Pause { reason: String, ack: Ack },
    /// An operator unpauses the run.
    Unpause { reason: String, ack: Ack },
    /// An operator resets the run: it closes, and the run the engine
    /// prepared from its history starts in the same commit (boxed: large
    /// and rare).
    Reset(Box<ResetRun>),
    /// Nothing but "be in memory": resumes a run loaded from the file.
    Wake,
    /// The workflow's waker was woken between activations: its code awaits
    /// a future that is not the context's.
    ForeignWake,
}

/// What to do once a step's events are durable.
enum Effect {
    /// Start an attempt: with the slot taken when its start was recorded,
    /// or, without one, waiting for a slot (its history says it has not
    /// begun).
    Dispatch {
        seq: u32,
        attempt: u32,
        slot: Option<Slot>,
    },
    Timer {
        seq: u32,
        at: SystemTime,
    },
    Retry {
        seq: u32,
        attempt: u32,
        at: SystemTime,
    },
}

#[derive(Default)]
struct Step {
    events: Vec<Event>,
    effects: Vec<Effect>,
    acks: Vec<Ack>,
    queries: Vec<(String, Payload, QueryReply)>,
    /// Answered after the commit, so a description never shows work whose
    /// events are not in the file yet.
    describes: Vec<oneshot::Sender<RunSnapshot>>,
    /// Set when an activation of this step ended in the code's own close
    /// (complete, fail, cancelled), not committed yet.
    code_close: Option<CodeClose>,
    /// Signals that arrived after that close and before its commit. As in
    /// Temporal (`signal/prevent_close`) they are not refused: the close is
    /// withdrawn and the code runs again with them (see `reopen`).
    held_signals: Vec<HeldSignal>,
    /// Waiting attempts whose start the step records: they begin once it
    /// is durable.
    starts: Vec<oneshot::Sender<()>>,
    /// The run a continue-as-new of this step starts, committed with the
    /// close (withdrawn with it, see `reopen`).
    next_run: Option<NextRun>,
    /// Local activities the step's activations asked for: started once it
    /// is durable.
    locals: Vec<crate::workflow::LocalRequest>,
    /// Update callers waiting for an outcome (see `update`).
    updates: update::StepUpdates,
    /// Set when another run's commit wrote an event to this run that this
    /// actor cannot place (see `external`): the step is refused and the run
    /// reloads from the file.
    behind: bool,
    /// The step unpauses the run: once it is durable, what the pause held
    /// acts.
    unpaused: bool,
}

/// The successor of a run that continues as new: its record and first
/// events, written in the commit that closes the run.
struct NextRun {
    run_id: RunId,
    record: RunRecord,
    events: Vec<Event>,
}

/// Where the code closed the run in a step, to withdraw the close.
struct CodeClose {
    /// Index in the step's events of the event whose activation closed the
    /// run; its commands follow it.
    input_index: usize,
    /// The run's search attributes before that activation's upserts.
    search_attributes: crate::history::SearchAttributes,
}

/// A signal held back by an uncommitted close.
struct HeldSignal {
    name: String,
    input: Payload,
    request_id: Option<String>,
    ack: Ack,
}

struct RunActor {
    shared: Arc<Shared>,
    run_id: RunId,
    record: RunRecord,
    machine: WorkflowMachine,
    /// What the history says so far (every event recorded goes through
    /// its fold): pending activities and timers, deadlines, status.
    state: MutableState,
    /// Tells each attempt task (running, or waiting for a slot) to stop,
    /// by activity seq.
    attempts: BTreeMap<u32, CancellationToken>,
    /// The attempts waiting for a slot in this actor's memory, by activity
    /// seq: the attempt and the ticket of its dispatch. Only that dispatch
    /// may begin it, so a stale task (of an actor replaced after a park)
    /// never begins an attempt a second time.
    waiting: BTreeMap<u32, (u32, u64)>,
    /// What handles waiting on the run see; set when the actor goes live.
    watch: Arc<watch::Sender<RunState>>,
    /// Local activities in flight (or about to start), by seq: what tells
    /// each to stop. Not in history until they end.
    locals: BTreeMap<u32, local_activity::LocalSlot>,
    /// Local activities waiting out a recorded backoff (no task runs for
    /// them), by seq: their requests, for the next attempt.
    local_waiting: BTreeMap<u32, crate::workflow::LocalRequest>,
    /// Callers of accepted updates waiting for their handler's outcome,
    /// by update ID (answered after the commit that records it).
    update_waiters: Vec<(String, UpdateReply)>,
    /// Local activities asked for while the run is paused: they start at
    /// the unpause (a reload asks for them again, from replay).
    held_locals: Vec<crate::workflow::LocalRequest>,
    /// The wake hint this actor last committed for the run (its start's or
    /// its last append's), or `None` when it does not know it (loaded from
    /// the file, or the last commit was of another kind or failed). Lets a
    /// step that needs the engine "now" keep a hint that is already past
    /// instead of rewriting it (see [`RunActor::step_wake`]).
    committed_wake: Option<u64>,
}

/// A run replayed from its history, with the step that resuming it needs
/// (the commands replay left new, attempts a crash cut off), not yet
/// committed.
pub(crate) struct PreparedRun {
    actor: RunActor,
    step: Step,
}

impl PreparedRun {
    pub(crate) fn run_id(&self) -> RunId {
        self.actor.run_id
    }

    /// The run's record after the step.
    pub(crate) fn record(&self) -> &RunRecord {
        &self.actor.record
    }

    /// The step's events, numbered after the history.
    pub(crate) fn new_events(&self) -> &[Event] {
        &self.step.events
    }

    /// True when the step continues the run as new, starts children, or
    /// signals or cancels other workflows: a start commits only the run's
    /// first events then, and the actor commits the step (with the next
    /// run's start, the children's, or the deliveries, in one commit) as
    /// its first act.
    pub(crate) fn commits_first_step(&self) -> bool {
        self.step.next_run.is_some()
            || children::initiates(&self.step.events)
            || external::initiates(&self.step.events)
    }

    /// When the run next needs the engine, for the `running` index; the
    /// caller commits it with the run's start (the actor then knows the
    /// hint stored for it).
    pub(crate) fn wake(&mut self) -> u64 {
        let wake = self.actor.wake_hint();
        self.actor.committed_wake = Some(wake);
        wake
    }
}

/// Replays a run's history (a new run's first events, or a stored run's
/// whole history) and prepares the step that resumes it.
pub(super) fn prepare(
    shared: &Arc<Shared>,
    run_id: RunId,
    record: RunRecord,
    history: Vec<Event>,
) -> PreparedRun {
    let span = info_span!(
        "workflow_activation",
        workflow_id = %record.workflow_id,
        run_id = %run_id,
        workflow_type = %record.workflow_type,
    );
    let machine = span.in_scope(|| replay(shared, run_id, &record, &history));
    let mut actor = RunActor {
        shared: shared.clone(),
        run_id,
        record,
        machine,
        state: MutableState::default(),
        attempts: BTreeMap::new(),
        waiting: BTreeMap::new(),
        watch: Arc::new(watch::channel(RunState::Running).0),
        locals: BTreeMap::new(),
        local_waiting: BTreeMap::new(),
        update_waiters: Vec::new(),
        held_locals: Vec::new(),
        committed_wake: None,
    };
    actor.watch_foreign_wakes();
    let mut step = Step::default();
    actor.resume(history, &mut step);
    PreparedRun { actor, step }
}

/// Replays a history with the code registered for its run's type and task
/// queue; a machine parked with the reason when there is no such code.
/// Writes nothing: the caller decides what becomes of the machine's
/// commands.
pub(super) fn replay(
    shared: &Shared,
    run_id: RunId,
    record: &RunRecord,
    history: &[Event],
) -> WorkflowMachine {
    match shared.workflow_fn(&record.task_queue, &record.workflow_type) {
        Some(workflow) => {
            WorkflowMachine::replay_with(&workflow, run_id, history, shared.history_limits)
        }
        None if !shared.has_queue(&record.task_queue) => WorkflowMachine::parked_with(
            run_id,
            ParkReason::Unrunnable(format!(
                "no worker serves task queue {:?}; the run waits until the engine is opened with one",
                record.task_queue
            )),
        ),
        None => WorkflowMachine::parked_with(
            run_id,
            ParkReason::Unrunnable(format!(
                "workflow type {:?} is not registered on task queue {:?}; register it and open the engine again",
                record.workflow_type, record.task_queue
            )),
        ),
    }
}

/// Starts a run's actor. A new run's step was committed with its start
/// (`committed`); a run loaded from the file commits its resume step first.
pub(super) fn start(
    prepared: PreparedRun,
    state: Arc<watch::Sender<RunState>>,
    rx: mpsc::UnboundedReceiver<super::Mail>,
    committed: bool,
) {
    let PreparedRun { mut actor, step } = prepared;
    actor.watch = state;
    let tracker = actor.shared.tracker.clone();
    let shutdown = actor.shared.shutdown.clone();
    // Held until the first step's effects (timers, attempts) are registered.
    let hold = actor.shared.clock.hold();
    tracker.spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = async {
                let live = if committed {
                    actor.after_commit(step)
                } else {
                    Box::pin(actor.finish(step)).await
                };
                drop(hold);
                if live {
                    actor.run(rx).await;
                }
            } => {}
        }
        actor.cancel_attempts();
    });
}

impl RunActor {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<super::Mail>) {
        loop {
            // An idle run (no attempt in flight) may leave memory; its timers
            // and messages load it again.
            if self.idle() && self.shared.try_evict(self.run_id, &rx) {
                return;
            }
            let Some((msg, hold)) = rx.recv().await.map(|mail| *mail) else {
                return;
            };
            let mut step = Step::default();
            // Only a virtual clock's holds are kept (no allocation otherwise).
            let mut more_holds = Vec::new();
            self.handle(msg, &mut step);
            // Messages that queued up meanwhile share the commit.
            while let Ok((msg, hold)) = rx.try_recv().map(|mail| *mail) {
                if hold.is_held() {
                    more_holds.push(hold);
                }
                self.handle(msg, &mut step);
            }
            while !step.held_signals.is_empty() {
                step = Box::pin(self.reopen(step)).await;
                while let Ok((msg, hold)) = rx.try_recv().map(|mail| *mail) {
                    if hold.is_held() {
                        more_holds.push(hold);
                    }
                    self.handle(msg, &mut step);
                }
            }
            // The holds go once the step's effects are registered. The
            // commit's future is boxed: held inline it made every idle
            // run's task ~3 KiB (see `start`).
            let live = Box::pin(self.finish(step)).await;
            drop((hold, more_holds));
            if !live {
                return;
            }
        }
    }

    /// Folds the history into the run's state, records the attempts a
    /// crash cut off, and takes the commands replay left new.
    fn resume(&mut self, history: Vec<Event>, step: &mut Step) {
        self.state = MutableState::fold(&history);
        self.sync_record();
        for (at, timeout) in &self.state.deadlines {
            self.shared
                .timers
                .schedule(*at, self.run_id, RunMsg::RunTimeout { timeout });
        }
        let mut interrupted = Vec::new();
        for (seq, p) in &self.state.activities {
            match p.retry_at {
                // The attempt was running when the process stopped: it
                // counts, and the next one follows.
                None => interrupted.push((*seq, p.attempt, p.interruptions == 0)),
                // An attempt that had not begun (a retry not due yet, or
                // one waiting for a worker slot) keeps its number and its
                // time (at once if that passed).
                Some(at) => step.effects.push(Effect::Retry {
                    seq: *seq,
                    attempt: p.attempt,
                    at,
                }),
            }
        }
        for (seq, at) in &self.state.timers {
            step.effects.push(Effect::Timer { seq: *seq, at: *at });
        }
        self.absorb_commands(step);
        // A request a reset copied while the copy ends unpaused.
        self.deliver_deferred_cancel(step);
        for (seq, attempt, first) in interrupted {
            let failure = Failure::new(
                INTERRUPTED,
                "the process stopped while this attempt was running",
            );
            // The first interruption retries at once (the crash was not the
            // activity's fault); repeated ones back off per the retry policy.
            self.fail_attempt(step, seq, attempt, failure, first);
        }
    }

    fn handle(&mut self, msg: RunMsg, step: &mut Step) {
        match msg {
            RunMsg::AttemptDone {
                seq,
                attempt,
                outcome,
            } => self.attempt_done(step, seq, attempt, outcome),
            RunMsg::SlotReady {
                seq,
                attempt,
                ticket,
                go,
            } => self.slot_ready(step, seq, attempt, ticket, go),
            RunMsg::Heartbeat {
                seq,
                attempt,
                details,
            } => self.record_heartbeat(step, seq, attempt, details),
            RunMsg::LocalActivityDone { seq, end, retry } => {
                self.local_done(step, seq, *end, retry.map(|r| *r))
            }
            RunMsg::LocalRetryDue { seq } => self.local_retry_due(seq),
            RunMsg::TimerDue { seq } => {
                // Held while paused: the unpause arms it again.
                if let Some(due) = self.state.timers.get(&seq)
                    && self.state.paused.is_none()
                {
                    // Once per timer: a duplicate delivery finds it fired.
                    let late = self.shared.clock.now().duration_since(*due);
                    crate::metrics::timer_fired(late.unwrap_or_default());
                    let event = self.push(step, EventKind::TimerFired { seq });
                    self.activate(step, &event);
                }
            }
            RunMsg::RetryDue { seq, attempt } => {
                let due = self
                    .state
                    .activities
                    .get(&seq)
                    .is_some_and(|p| p.attempt == attempt && p.retry_at.is_some());
                // Once: a duplicate wake-up finds it dispatched already.
                // Held while paused: the unpause arms it again.
                if due && !self.waiting.contains_key(&seq) && self.state.paused.is_none() {
                    self.begin_attempt(step, seq, attempt);
                }
            }
            RunMsg::RunTimeout { timeout } => {
                if !self.state.status.is_closed() {
                    let timeout = timeout.to_string();
                    self.end(
                        step,
                        EventKind::WorkflowTimedOut { timeout },
                        WorkflowStatus::TimedOut,
                    );
                }
            }
            RunMsg::Signal {
                name,
                input,
                request_id,
                ack,
            } => {
                if request_id
                    .as_ref()
                    .is_some_and(|id| self.state.signal_request_ids.contains(id))
                {
                    // A retry of a delivered signal: acknowledged (after this
                    // step's commit, in case the first is in it), not delivered again.
                    step.acks.push(ack);
                    return;
                }
                if let Some(err) = self.closed_error() {
                    if step.code_close.is_some() {
                        step.held_signals.push(HeldSignal {
                            name,
                            input,
                            request_id,
                            ack,
                        });
                    } else {
                        let _ = ack.send(Err(err));
                    }
                    return;
                }
                let event = self.push(
                    step,
                    signal_event(name, input, request_id, SignalDelivery::Alone),
                );
                step.acks.push(ack);
                self.activate(step, &event);
            }
            RunMsg::Query { name, input, reply } => step.queries.push((name, input, reply)),
            RunMsg::Update {
                update_id,
                name,
                input,
                reply,
            } => self.update(step, update_id, name, input, reply),
            RunMsg::Cancel { reason, ack } => {
                if let Some(err) = self.closed_error() {
                    let _ = ack.send(Err(err));
                    return;
                }
                step.acks.push(ack);
                if self.state.cancel_requested || self.state.cancel_deferred.is_some() {
                    // A cancellation request is state: only the first is delivered.
                    return;
                }
                if self.state.paused.is_some() {
                    // Held, as Temporal holds it, until the unpause: the
                    // code sees it then (see `pause::deliver_deferred_cancel`).
                    self.push(step, EventKind::WorkflowCancelRequestDeferred { reason });
                    return;
                }
                // Try-cancel: the attempts are told, and the workflow sees
                // every pending activity and timer as cancelled at once.
                self.cancel_attempts();
                let event = self.push(step, EventKind::WorkflowCancelRequested { reason });
                self.activate(step, &event);
            }
            RunMsg::Terminate { reason, ack } => {
                if let Some(err) = self.closed_error() {
                    let _ = ack.send(Err(err));
                    return;
                }
                step.acks.push(ack);
                self.end(
                    step,
                    EventKind::WorkflowTerminated { reason },
                    WorkflowStatus::Terminated,
                );
            }
            RunMsg::Describe { reply } => step.describes.push(reply),
            RunMsg::Pause { reason, ack } => self.pause(step, reason, ack),
            RunMsg::Unpause { reason, ack } => self.unpause(step, reason, ack),
            RunMsg::Reset(reset) => self.reset(step, *reset),
            RunMsg::ChildClosed {
                child_workflow_id,
                kind,
            } => self.child_closed(step, &child_workflow_id, *kind),
            RunMsg::Recorded { event } => self.recorded(step, *event),
            RunMsg::Wake => self.arm_due_times(),
            RunMsg::ForeignWake => self.machine.foreign_wake(),
        }
    }

    /// Has the machine tell this actor when its code is woken by a future
    /// that is not the context's, so the run parks saying so instead of
    /// hanging until an unrelated event comes.
    fn watch_foreign_wakes(&self) {
        let shared = Arc::downgrade(&self.shared);
        let run_id = self.run_id;
        self.machine.on_foreign_wake(Arc::new(move || {
            if let Some(shared) = shared.upgrade() {
                // A run that left memory has no code to park.
                let _ = shared.deliver(run_id, RunMsg::ForeignWake);
            }
        }));
    }

    /// Schedules every due time again; the timer thread keeps only those
    /// within its horizon, and the wake-up index brings this run back for
    /// the others. Duplicates are harmless: each is acted on once.
    fn arm_due_times(&self) {
        let timers = &self.shared.timers;
        for (seq, at) in &self.state.timers {
            timers.schedule(*at, self.run_id, RunMsg::TimerDue { seq: *seq });
        }
        for (seq, p) in &self.state.activities {
            if let Some(at) = p.retry_at {
                let msg = RunMsg::RetryDue {
                    seq: *seq,
                    attempt: p.attempt,
                };
                timers.schedule(at, self.run_id, msg);
            }
        }
        for (at, timeout) in &self.state.deadlines {
            timers.schedule(*at, self.run_id, RunMsg::RunTimeout { timeout });
        }
        self.arm_local_backoffs();
    }

    /// True when no attempt is in flight or waiting for a slot in memory:
    /// leaving memory loses nothing.
    fn idle(&self) -> bool {
        self.state.idle()
            && self.waiting.is_empty()
            && self.locals.is_empty()
            && self.update_waiters.is_empty()
    }

    /// When the run next needs the engine: now with an attempt in flight,
    /// else its earliest due time, else only a message wakes it.
    fn wake_hint(&self) -> u64 {
        // A run with open children is loaded on open, to reconcile with a
        // child whose close is durable and not yet recorded here.
        if !self.idle() || !self.state.children.is_empty() {
            return WAKE_NOW;
        }
        match self.state.next_due() {
            Some(at) => at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| {
                    u64::try_from(d.as_millis())
                        .map_or(WAKE_NEVER - 1, |ms| ms.clamp(1, WAKE_NEVER - 1))
                })
                .unwrap_or(1),
            None => WAKE_NEVER,
        }
    }

    /// The hint an append commits: [`wake_hint`](Self::wake_hint), except
    /// that a run which needs the engine now and whose committed hint is a
    /// due time already past keeps that hint. Both mean "load it at once"
    /// to every reader of the hints (an open, or a shard's new owner,
    /// delivers every hint at or before its clock's now at once; the timer
    /// thread has read past it), so the step need not move the run's
    /// `running` and `wakeups` entries: a timer's firing or a retry's
    /// attempt then writes its history alone, two tables fewer in its
    /// commit. A wrong belief about the stored hint costs nothing: the
    /// store writes the past time, which means the same.
    fn step_wake(&self, committed: Option<u64>) -> u64 {
        let wake = self.wake_hint();
        if wake != WAKE_NOW {
            return wake;
        }
        let now_ms = self
            .shared
            .clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        match committed {
            Some(past) if past != WAKE_NEVER && past <= now_ms => past,
            _ => WAKE_NOW,
        }
    }

    fn closed_error(&self) -> Option<ClientError> {
        self.record
            .status
            .is_closed()
            .then(|| ClientError::WorkflowClosed {
                workflow_id: self.record.workflow_id.clone(),
                status: self.record.status,
            })
    }

    /// Closes the run without the workflow code: termination or a timeout.
    fn end(&mut self, step: &mut Step, kind: EventKind, status: WorkflowStatus) {
        self.cancel_attempts();
        let event = self.push(step, kind);
        debug_assert_eq!(self.state.status, status, "{:?}", event.kind);
        step.effects.clear();
    }

    fn attempt_done(&mut self, step: &mut Step, seq: u32, attempt: u32, outcome: AttemptOutcome) {
        // A waiting attempt reports only what ended its wait (a timeout,
        // an unregistered type); none of its code ran.
        let waited = self.waiting.get(&seq).is_some_and(|(a, _)| *a == attempt);
        if waited {
            self.waiting.remove(&seq);
        } else if !self.in_flight(seq, attempt) {
            return;
        }
        if let Some(details) = outcome.unsent_heartbeat {
            self.record_heartbeat(step, seq, attempt, details);
        }
        match outcome.result {
            Ok(result) if result.len() > self.shared.max_payload_bytes => {
                let failure = Failure::new(
                    "PayloadTooLarge",
                    format!(
                        "the result is {} bytes, over the limit of {} bytes",
                        result.len(),
                        self.shared.max_payload_bytes
                    ),
                )
                .with_non_retryable(true);
                self.fail_attempt(step, seq, attempt, failure, false);
            }
            Ok(result) => {
                self.attempts.remove(&seq);
                let event = self.push(
                    step,
                    EventKind::ActivityCompleted {
                        seq,
                        attempt,
                        result,
                    },
                );
                self.activate(step, &event);
            }
            Err(failure) => {
                let failure = failure.with_details_at_most(self.shared.max_payload_bytes);
                self.fail_attempt(step, seq, attempt, failure, false)
            }
        }
    }

    fn record_heartbeat(&mut self, step: &mut Step, seq: u32, attempt: u32, details: Payload) {
        if !self.in_flight(seq, attempt) || details.len() > self.shared.max_payload_bytes {
            return;
        }
        self.push(
            step,
            EventKind::ActivityHeartbeat {
                seq,
                attempt,
                details,
            },
        );
    }

    /// Records a failed attempt and either plans the next one or hands the
    /// final failure to the workflow.
    fn fail_attempt(
        &mut self,
        step: &mut Step,
        seq: u32,
        attempt: u32,
        mut failure: Failure,
        retry_now: bool,
    ) {
        let Some(p) = self.state.activities.get(&seq) else {
            return;
        };
        let now = self.shared.clock.now();
        // A cancelled activity's failure is final.
        let next = if p.cancel_requested {
            Err(RetryState::CancelRequested)
        } else {
            retry::next_attempt_at(
                &p.options,
                attempt,
                &failure,
                p.scheduled_at,
                now,
                retry_now,
            )
        };
        failure.retry_state = match next {
            Ok(_) => RetryState::InProgress,
            Err(why) => why,
        };
        match next {
            Ok(at) => {
                let next = attempt.saturating_add(1);
                self.attempts.remove(&seq);
                // A retry due at once starts in the same commit; a later one
                // waits for its timer and starts with a commit of its own.
                let immediate = at <= now;
                self.push(
                    step,
                    EventKind::ActivityFailed {
                        seq,
                        attempt,
                        failure,
                        next_attempt_at: Some(at),
                    },
                );
                if immediate {
                    self.begin_attempt(step, seq, next);
                } else {
                    step.effects.push(Effect::Retry {
                        seq,
                        attempt: next,
                        at,
                    });
                }
            }
            Err(_) => {
                self.attempts.remove(&seq);
                let event = self.push(
                    step,
                    EventKind::ActivityFailed {
                        seq,
                        attempt,
                        failure,
                        next_attempt_at: None,
                    },
                );
                self.activate(step, &event);
            }
        }
    }

    /// Starts attempt `attempt` of activity `seq`, which is due and has not
    /// begun: with a free slot its start is recorded in this step and it
    /// runs once the step is durable; without one it waits for a slot, and
    /// its start is recorded only when it has one (see
    /// [`slot_ready`](Self::slot_ready)).
    fn begin_attempt(&mut self, step: &mut Step, seq: u32, attempt: u32) {
        // Held while paused: the attempt is due and not begun (its retry
        // time is in the state), and the unpause begins it.
        if self.state.paused.is_some() {
            return;
        }
        let slot = self.try_slot(seq);
        if slot.is_some() {
            self.push(step, EventKind::ActivityAttemptStarted { seq, attempt });
        }
        step.effects.push(Effect::Dispatch { seq, attempt, slot });
    }

    /// A slot of the activity's task queue, if one is free now.
    fn try_slot(&self, seq: u32) -> Option<Slot> {
        let p = self.state.activities.get(&seq)?;
        let task_queue = p
            .options
            .task_queue
            .as_ref()
            .unwrap_or(&self.record.task_queue);
        self.shared.queue(task_queue)?.try_acquire()
    }

    /// A waiting attempt got a slot: records its start, unless the run is
    /// closed or cancelled (the activity is no longer pending then) or the
    /// ask is stale. Dropping `go` tells the attempt not to begin.
    fn slot_ready(
        &mut self,
        step: &mut Step,
        seq: u32,
        attempt: u32,
        ticket: u64,
        go: oneshot::Sender<()>,
    ) {
        if self.waiting.get(&seq) != Some(&(attempt, ticket)) {
            return;
        }
        self.waiting.remove(&seq);
        let due = self
            .state
            .activities
            .get(&seq)
            .is_some_and(|p| p.attempt == attempt && p.retry_at.is_some());
        // Paused: it stays due and waits for the unpause.
        if !due || self.state.status.is_closed() || self.state.paused.is_some() {
            self.attempts.remove(&seq);
            return;
        }
        self.push(step, EventKind::ActivityAttemptStarted { seq, attempt });
        step.starts.push(go);
    }

    /// Appends an event to the step, numbering it after the history.
    /// Nothing is ever appended after the run's close event: such an event
    /// is dropped (and logged), never written, since a history that goes
    /// on past its close no longer reads as closed.
    fn push(&mut self, step: &mut Step, kind: EventKind) -> Event {
        let event = Event {
            event_id: self.state.next_event_id(),
            timestamp: self.shared.clock.now(),
            kind,
        };
        if self.state.status.is_closed() {
            tracing::error!(
                workflow_id = %self.record.workflow_id,
                run_id = %self.run_id,
                event = %event.kind.describe(),
                "an event after the run's close was dropped"
            );
            return event;
        }
        self.state.apply(&event);
        self.machine.observe(&event);
        self.sync_record();
        step.events.push(event.clone());
        event
    }

    /// Keeps the run record (written when the run closes) in step with the
    /// fold.
    fn sync_record(&mut self) {
        self.record.history_len = self.state.last_event_id;
        self.record.status = self.state.status;
        self.record.close_time = self.state.close_time;
        self.record.paused = self.state.paused.clone();
    }

    /// True when `attempt` of activity `seq` is the one running now.
    fn in_flight(&self, seq: u32, attempt: u32) -> bool {
        self.state
            .activities
            .get(&seq)
            .is_some_and(|p| p.attempt == attempt && p.retry_at.is_none())
    }

    /// Feeds an outcome to the workflow code and takes its new commands.
    fn activate(&mut self, step: &mut Step, event: &Event) {
        let span = info_span!(
            "workflow_activation",
            workflow_id = %self.record.workflow_id,
            run_id = %self.run_id,
            workflow_type = %self.record.workflow_type,
            event_id = event.event_id,
        );
        span.in_scope(|| self.machine.apply(event));
        let commands = self.machine.take_commands();
        if commands.iter().any(is_code_close)
            && let Some(input_index) = step
                .events
                .iter()
                .rposition(|e| e.event_id == event.event_id)
        {
            step.code_close = Some(CodeClose {
                input_index,
                search_attributes: self.record.search_attributes.clone(),
            });
        }
        self.absorb(step, commands);
    }

    fn absorb_commands(&mut self, step: &mut Step) {
        let commands = self.machine.take_commands();
        self.absorb(step, commands);
    }

    fn absorb(&mut self, step: &mut Step, commands: Vec<EventKind>) {
        // Activities (and local activities) a cancellation ended, recorded
        // after the activation's commands, so history keeps the code's order.
        let mut ended = self.take_local_requests(step);
        for kind in commands {
            let kind = match kind {
                EventKind::WorkflowContinuedAsNew { .. } => self.continue_as_new(step, kind),
                kind => kind,
            };
            let event = self.push(step, kind);
            match event.kind {
                // The first attempt begins with its scheduling when a slot
                // is free; otherwise the history says it waits.
                // While paused it waits, not begun, for the unpause.
                EventKind::ActivityScheduled { seq, .. } if self.state.paused.is_some() => {
                    self.push(step, EventKind::ActivityAttemptWaiting { seq, attempt: 1 });
                }
                EventKind::ActivityScheduled { seq, .. } => {
                    let slot = self.try_slot(seq);
                    if slot.is_none() {
                        self.push(step, EventKind::ActivityAttemptWaiting { seq, attempt: 1 });
                    }
                    step.effects.push(Effect::Dispatch {
                        seq,
                        attempt: 1,
                        slot,
                    });
                }
                EventKind::TimerStarted { seq, fire_at } => {
                    step.effects.push(Effect::Timer { seq, at: fire_at });
                }
                // Taken out of the timer thread at once: were the step not
                // committed, the reload re-arms it from the file.
                EventKind::TimerCanceled { seq } => {
                    step.effects
                        .retain(|e| !matches!(e, Effect::Timer { seq: s, .. } if *s == seq));
                    self.shared.timers.cancel(self.run_id, seq);
                }
                // Visibility, not run state: the start's attributes live in
                // the run record (not in history), so the upsert merges into
                // it, stored with the step's events (see `commit`).
                EventKind::SearchAttributesUpserted { attributes } => {
                    self.record.search_attributes.merge(&attributes)
                }
                EventKind::ActivityCancelRequested { seq } => {
                    ended.extend(self.cancel_activity(step, seq));
                }
                _ => {}
            }
        }
        for kind in ended {
            // Unless the code closed the run meanwhile.
            if !self.state.status.is_closed() {
                let event = self.push(step, kind);
                self.activate(step, &event);
            }
        }
    }

    /// Gives a continue-as-new its next run (a new run ID, its record and
    /// first events, kept in the step to be committed with the close).
    /// Called before the close is folded: the execution deadline it
    /// carries over is still in the state then.
    fn continue_as_new(&mut self, step: &mut Step, mut kind: EventKind) -> EventKind {
        let EventKind::WorkflowContinuedAsNew {
            new_run_id,
            workflow_type,
            task_queue,
            input,
            signals,
            search_attributes,
            memo,
        } = &mut kind
        else {
            return kind;
        };
        let now = self.shared.clock.now();
        let next_run_id = RunId::new_time_ordered();
        *new_run_id = next_run_id;
        // The execution timeout spans the chain: the next run gets what is
        // left of it (at least a millisecond, so that it is still set).
        let execution_timeout = self.state.execution_deadline().map(|deadline| {
            deadline
                .duration_since(now)
                .unwrap_or_default()
                .max(std::time::Duration::from_millis(1))
        });
        let mut kinds = vec![
            EventKind::WorkflowStarted {
                workflow_type: workflow_type.clone(),
                workflow_id: self.record.workflow_id.clone(),
                task_queue: task_queue.clone(),
                input: input.clone(),
                run_timeout: self.state.run_timeout,
                execution_timeout,
            },
            EventKind::WorkflowContinuedFrom {
                previous_run_id: self.run_id,
            },
        ];
        // The chain is one child to its parent.
        kinds.extend(children::parent_event(&self.state));
        kinds.extend(
            signals
                .iter()
                .map(|s| EventKind::WorkflowSignaledWithOptions {
                    signal_name: s.signal_name.clone(),
                    input: s.input.clone(),
                    request_id: None,
                    delivery: SignalDelivery::BeforeStart,
                }),
        );
        let events: Vec<Event> = kinds
            .into_iter()
            .zip(1..)
            .map(|(kind, event_id)| Event {
                event_id,
                timestamp: now,
                kind,
            })
            .collect();
        let record = RunRecord {
            workflow_id: self.record.workflow_id.clone(),
            workflow_type: workflow_type.clone(),
            task_queue: task_queue.clone(),
            status: WorkflowStatus::Running,
            start_time: now,
            close_time: None,
            history_len: events.len() as u64,
            search_attributes: search_attributes
                .clone()
                .unwrap_or_else(|| self.record.search_attributes.clone()),
            memo: memo.clone().or_else(|| self.record.memo.clone()),
            paused: None,
            reset_from: None,
        };
        step.next_run = Some(NextRun {
            run_id: next_run_id,
            record,
            events,
        });
        kind
    }

    /// Withdraws the code's uncommitted close because signals arrived
    /// before its commit (Temporal's `signal/prevent_close`): the step is
    /// rebuilt from the event the code returned on, with the held signals
    /// delivered to the code together with that event, and the code runs
    /// again from a replay of its history. Every signal is then either
    /// read by the code or recorded as unread by its next close.
    async fn reopen(&mut self, mut step: Step) -> Step {
        let held = std::mem::take(&mut step.held_signals);
        let Some(close) = step.code_close.take() else {
            return step;
        };
        // A continue-as-new is withdrawn with the close; the code decides
        // again, with the held signals.
        let next_run = step.next_run.take();
        let committed = match self
            .shared
            .store
            .history(self.run_id, &self.record.workflow_id)
            .await
        {
            Ok(history) => history,
            Err(err) => {
                // Not acknowledged, so not lost: the caller may retry.
                for signal in held {
                    let _ = signal.ack.send(Err(ClientError::from(err.clone())));
                }
                step.code_close = Some(close);
                step.next_run = next_run;
                return step;
            }
        };
        let mut kept = std::mem::take(&mut step.events);
        kept.truncate(close.input_index + 1);
        let Some(trigger) = kept.pop() else {
            return step;
        };
        let mut history = committed;
        history.extend(kept.iter().cloned());
        self.state = MutableState::fold(&history);
        self.record.search_attributes = close.search_attributes;
        self.sync_record();
        self.machine = replay(&self.shared, self.run_id, &self.record, &history);
        self.watch_foreign_wakes();
        // The activation that closed is gone with its commands, and so are
        // the actions it asked for; those of earlier activations stay.
        let state = &self.state;
        step.effects.retain(|effect| match effect {
            Effect::Dispatch { seq, attempt, .. } | Effect::Retry { seq, attempt, .. } => state
                .activities
                .get(seq)
                .is_some_and(|p| p.attempt == *attempt),
            Effect::Timer { seq, .. } => state.timers.contains_key(seq),
        });
        step.events = kept;
        self.absorb_commands(&mut step);
        // In arrival order; all but the last are delivered with the next
        // event, so the code wakes once and sees every one of them.
        let mut inputs: Vec<(EventKind, Option<Ack>)> = Vec::new();
        let trigger = trigger.kind;
        let trigger_is_signal = trigger.signal().is_some();
        let last_held = held.len().saturating_sub(1);
        if trigger_is_signal {
            inputs.push((with_next(trigger.clone()), None));
        }
        for (i, signal) in held.into_iter().enumerate() {
            let next = !trigger_is_signal || i < last_held;
            let kind = signal_event(signal.name, signal.input, signal.request_id, delivery(next));
            inputs.push((kind, Some(signal.ack)));
        }
        if !trigger_is_signal {
            inputs.push((trigger, None));
        }
        for (kind, ack) in inputs {
            let event = self.push(&mut step, kind);
            if let Some(ack) = ack {
                step.acks.push(ack);
            }
            self.activate(&mut step, &event);
        }
        step
    }

    /// Tells every attempt task to stop; those still waiting for a slot
    /// leave the queue at once and never begin.
    fn cancel_attempts(&mut self) {
        self.cancel_locals();
        self.waiting.clear();
        for token in std::mem::take(&mut self.attempts).into_values() {
            token.cancel();
        }
    }

    fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            activities: self.state.pending_activities(),
            timers: self.state.pending_timers(),
            children: self.state.pending_children(),
            updates: self.state.pending_updates(),
            history_len: self.record.history_len,
            parked: self.watch.borrow().parked().cloned(),
            paused: self.state.paused.clone(),
        }
    }

    /// Commits the step, then acts on it. Returns false when the actor is done.
    async fn finish(&mut self, mut step: Step) -> bool {
        loop {
            let started = match self.finish_one(step).await {
                Some(started) => started,
                None => return false,
            };
            if started.is_empty() {
                return true;
            }
            // The children's starts are durable with the step: their
            // outcomes go to the code, whose reply is the next step.
            step = self.children_started(started);
        }
    }

    /// Commits one step and acts on it. Returns `None` when the actor is
    /// done, else the outcome events of child starts the commit wrote
    /// after the step's own events.
    async fn finish_one(&mut self, step: Step) -> Option<Vec<Event>> {
        let mut started = Vec::new();
        if step.behind && step.events.is_empty() {
            return self.fell_behind(step).await.then_some(Vec::new());
        }
        if !step.events.is_empty() {
            match self.commit(&step.events, step.next_run.as_ref()).await {
                Ok(written) => started = written,
                Err(StoreError::Conflict { .. }) => {
                    return self.fell_behind(step).await.then_some(Vec::new());
                }
                Err(err @ (StoreError::ShardLost { .. } | StoreError::NewerFormat { .. })) => {
                    // Another process owns the run now (see `remote`), or
                    // will (a newer build took over the schema):
                    // nothing was written; the actor stops without a
                    // trace here, and its callers may retry there.
                    for ack in step.acks {
                        let _ = ack.send(Err(ClientError::from(err.clone())));
                    }
                    step.updates.fail(|| ClientError::from(err.clone()));
                    self.shared.drop_lost(self.run_id);
                    return None;
                }
                Err(err) => {
                    for ack in step.acks {
                        let _ = ack.send(Err(ClientError::from(err.clone())));
                    }
                    step.updates.fail(|| ClientError::from(err.clone()));
                    // What the machine holds is ahead of the file now; only a
                    // replay from the file can continue safely. A storage
                    // failure heals by itself: retry then; anything else
                    // (a record that does not encode) waits for a message.
                    let retry = err.is_storage();
                    let reason = match err {
                        StoreError::Full(message) => ParkReason::DiskFull(message),
                        other if retry => ParkReason::Storage(other.to_string()),
                        other => ParkReason::Unrunnable(format!(
                            "storing the run's progress failed ({other}); it resumes from its last durable step on its next message"
                        )),
                    };
                    return self.park(reason, retry).then_some(Vec::new());
                }
            }
        }
        self.after_commit(step).then_some(started)
    }

    /// The store refused the step: the run changed in the file without this
    /// actor (a terminate closed it directly). Nothing of the step was
    /// written; the file is the truth, so the actor stops and its callers
    /// are told what the file says.
    async fn fell_behind(&mut self, step: Step) -> bool {
        let closed = match self
            .shared
            .store
            .run(self.run_id, &self.record.workflow_id)
            .await
        {
            Ok(Some(record)) if record.status.is_closed() => Some(record.status),
            _ => None,
        };
        step.updates.fail(|| match closed {
            Some(status) => ClientError::WorkflowClosed {
                workflow_id: self.record.workflow_id.clone(),
                status,
            },
            None => ClientError::Storage(format!(
                "run {} changed in the file meanwhile; retry the call",
                self.run_id
            )),
        });
        for ack in step.acks {
            let _ = ack.send(Err(match closed {
                Some(status) => ClientError::WorkflowClosed {
                    workflow_id: self.record.workflow_id.clone(),
                    status,
                },
                None => ClientError::Storage(format!(
                    "run {} changed in the file meanwhile; retry the call",
                    self.run_id
                )),
            }));
        }
        match closed {
            Some(status) => {
                self.watch.send_replace(RunState::Closed(status));
                self.shared.unregister(self.run_id);
                false
            }
            None => self.park(
                ParkReason::Unrunnable(format!(
                    "run {} changed in the file meanwhile; it resumes from what the file holds",
                    self.run_id
                )),
                true,
            ),
        }
    }

    /// Acts on a step whose events are durable: answers callers, publishes
    /// the run's state, starts attempts and timers. Returns false when the
    /// actor is done.
    fn after_commit(&mut self, step: Step) -> bool {
        // A step with events that leaves the code running is progress: a
        // park after it is a new one.
        if !step.events.is_empty() && self.machine.parked().is_none() {
            self.shared.progressed(self.run_id);
        }
        for ack in step.acks {
            let _ = ack.send(Ok(()));
        }
        self.answer_updates(step.updates);
        for (name, input, reply) in step.queries {
            let _ = reply.send(self.answer_query(&name, &input));
        }
        self.warn_long_history(&step.events);
        if self.record.status.is_closed() {
            crate::metrics::workflow_closed(
                self.record.status,
                &self.record.workflow_type,
                &self.record.task_queue,
            );
            if let Some(next) = &step.next_run {
                crate::metrics::workflow_started(
                    &next.record.workflow_type,
                    &next.record.task_queue,
                );
            }
            self.notify_parent(&step.events);
            self.warn_unread(&step.events);
            self.watch
                .send_replace(RunState::Closed(self.record.status));
            self.shared.unregister(self.run_id);
            // A continue-as-new's or a reset's next run.
            if let Some(next) = step.next_run {
                // Durable already (and `WAKE_NOW` in the file, so a crash
                // before this loads it on the next open): start it now.
                let _ = self.shared.deliver(next.run_id, RunMsg::Wake);
            }
            return false;
        }
        if let Some(reason) = self.machine.parked()
            && !matches!(&*self.watch.borrow(), RunState::Parked(_))
        {
            warn!(workflow_id = %self.record.workflow_id, run_id = %self.run_id, %reason, "run parked");
            self.shared.count_park(self.run_id, reason);
            self.watch.send_replace(RunState::Parked(reason.clone()));
        }
        for reply in step.describes {
            let _ = reply.send(self.snapshot());
        }
        for go in step.starts {
            let _ = go.send(());
        }
        for request in step.locals {
            if self.state.paused.is_some() {
                self.held_locals.push(request);
            } else {
                self.start_local(request);
            }
        }
        if step.unpaused {
            self.act_on_held();
        }
        for effect in step.effects {
            match effect {
                Effect::Dispatch { seq, attempt, slot } => self.dispatch(seq, attempt, slot),
                Effect::Timer { seq, at } => {
                    self.shared
                        .timers
                        .schedule(at, self.run_id, RunMsg::TimerDue { seq })
                }
                Effect::Retry { seq, attempt, at } => {
                    self.shared
                        .timers
                        .schedule(at, self.run_id, RunMsg::RetryDue { seq, attempt })
                }
            }
        }
        true
    }

    /// Warns once, when a step takes the history past the configured
    /// number of events, that the run should continue as new.
    fn warn_long_history(&self, events: &[Event]) {
        let limit = self.shared.history_limits.warn_events;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let closes = self.record.status == WorkflowStatus::ContinuedAsNew;
        if !closes && first.event_id <= limit && last.event_id >= limit {
            warn!(
                workflow_id = %self.record.workflow_id,
                run_id = %self.run_id,
                events = last.event_id,
                limit,
                "the run's history passed the warning size without continuing as new;                  call ctx.continue_as_new when ctx.continue_as_new_suggested() is true"
            );
        }
    }

    /// Names the signals a committed close recorded as unread: the code
    /// dropped signals its senders were told had arrived.
    fn warn_unread(&self, events: &[Event]) {
        for event in events {
            if let EventKind::SignalsUnread { signals } = &event.kind {
                let unread: Vec<String> = signals
                    .iter()
                    .map(|s| format!("{:?} x{}", s.signal_name, s.count))
                    .collect();
                warn!(
                    workflow_id = %self.record.workflow_id,
                    run_id = %self.run_id,
                    unread = %unread.join(", "),
                    "the workflow returned with signals it never read; they are recorded in \
                     its history (SignalsUnread): drain them with try_recv_signal before returning"
                );
            }
        }
    }

    async fn commit(
        &mut self,
        events: &[Event],
        next_run: Option<&NextRun>,
    ) -> Result<Vec<Event>, StoreError> {
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            let bytes = codec::encode(event).map_err(StoreError::encode)?;
            encoded.push((event.event_id, bytes));
        }
        // The record goes with the events that change it: a close, or an
        // upsert of search attributes (durable together, in one commit).
        let changed = self.record.status.is_closed()
            || events.iter().any(|e| {
                matches!(
                    e.kind,
                    EventKind::SearchAttributesUpserted { .. }
                        | EventKind::WorkflowPaused { .. }
                        | EventKind::WorkflowUnpaused { .. }
                )
            });
        let record = if changed {
            Some(EncodedRecord::new(self.record.clone())?)
        } else {
            None
        };
        let expect_next = events.first().map_or(0, |e| e.event_id);
        // Known again only once this commit is durable as an append.
        let committed = self.committed_wake.take();
        let op = match (next_run, record) {
            // The close and the next run's start, in one commit (a
            // continue-as-new, or a reset: closed as Terminated).
            (Some(next), Some(record))
                if matches!(
                    self.record.status,
                    WorkflowStatus::ContinuedAsNew | WorkflowStatus::Terminated
                ) =>
            {
                let mut next_events = Vec::with_capacity(next.events.len());
                for event in &next.events {
                    next_events.push(codec::encode(event).map_err(StoreError::encode)?);
                }
                WriteOp::ContinueAsNew(Box::new(ContinueAsNewOp {
                    run_id: self.run_id,
                    record,
                    expect_next,
                    events: encoded,
                    next_run_id: next.run_id,
                    next_record: EncodedRecord::new(next.record.clone())?,
                    next_events,
                    next_wake: WAKE_NOW,
                }))
            }
            // A step that starts children commits their starts with it.
            (_, record) if !self.record.status.is_closed() && children::initiates(events) => {
                return self
                    .commit_child_starts(events, record, expect_next, encoded)
                    .await;
            }
            (_, record) => WriteOp::Append {
                run_id: self.run_id,
                record,
                expect_next,
                events: encoded,
                wake: self.step_wake(committed),
            },
        };
        let wake = match &op {
            WriteOp::Append { wake, .. } => Some(*wake),
            _ => None,
        };
        // A close applies its children's parent-close policies with it; a
        // reset's close hands those the new run keeps to it instead.
        let inherits = next_run.filter(|_| self.state.reset_to.is_some());
        let written = self.write_close_with_children(op, events, inherits).await;
        if written.is_ok() {
            self.committed_wake = wake;
        }
        written
    }

    fn answer_query(&self, name: &str, input: &Payload) -> Result<Payload, ClientError> {
        answer_query(&self.machine, &self.record.workflow_id, name, input)
    }

    fn park(&mut self, reason: ParkReason, retry: bool) -> bool {
        // The run stays visible as parked; the actor stops, and the next
        // message (or, with `retry`, the retry a moment later) loads the run
        // again from its last durable step.
        self.shared.stop(self.run_id, reason);
        if retry {
            self.shared.retry_later(self.run_id);
        }
        false
    }

    fn dispatch(&mut self, seq: u32, attempt: u32, slot: Option<Slot>) {
        let Some(p) = self.state.activities.get(&seq) else {
            return;
        };
        let task_queue = p
            .options
            .task_queue
            .clone()
            .unwrap_or_else(|| self.record.task_queue.clone());
        let cancel = self.shared.shutdown.child_token();
        // Cancelled by the workflow in the step that began it.
        if p.cancel_requested {
            cancel.cancel();
        }
        self.attempts.insert(seq, cancel.clone());
        // Held from here until the outcome is handed to the run: the attempt
        // runs, or its outcome is on its way (see `Clock`).
        let hold = self.shared.clock.hold();
        let sink_shared = self.shared.clone();
        let run_id = self.run_id;
        let begin = match slot {
            Some(slot) => Begin::Now(slot),
            None => {
                let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
                self.waiting.insert(seq, (attempt, ticket));
                let shared = self.shared.clone();
                Begin::Wait {
                    ask: Box::new(move || {
                        let (go, agreed) = oneshot::channel();
                        let msg = RunMsg::SlotReady {
                            seq,
                            attempt,
                            ticket,
                            go,
                        };
                        // A run that cannot take it drops `go`: no start.
                        let _ = shared.deliver(run_id, msg);
                        agreed
                    }),
                }
            }
        };
        let work = Attempt {
            queue: self.shared.queue(&task_queue),
            workflow_id: self.record.workflow_id.clone(),
            run_id: self.run_id,
            workflow_type: self.record.workflow_type.clone(),
            task_queue,
            activity_type: p.activity_type.clone(),
            seq,
            attempt,
            input: p.input.clone(),
            options: p.options.clone(),
            scheduled_at: p.scheduled_at,
            due_at: p.due_at,
            heartbeat_details: p.last_heartbeat.clone(),
            clock: self.shared.clock.clone(),
            sink: Arc::new(move |details| {
                let _ = sink_shared.deliver(
                    run_id,
                    RunMsg::Heartbeat {
                        seq,
                        attempt,
                        details,
                    },
                );
            }),
            cancel,
            drain: self.shared.drain.clone(),
        };
        let span = info_span!(
            "activity_attempt",
            workflow_id = %self.record.workflow_id,
            run_id = %self.run_id,
            activity = %p.activity_type,
            attempt,
        );
        let shared = self.shared.clone();
        let shutdown = self.shared.shutdown.clone();
        self.shared.tracker.spawn(
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    outcome = attempt::run(work, begin) => {
                        // A run that closed meanwhile needs nothing.
                        if let Some(outcome) = outcome {
                            let _ = shared.deliver(run_id, RunMsg::AttemptDone { seq, attempt, outcome });
                        }
                    }
                }
                drop(hold);
            }
            .instrument(span),
        );
    }
}

/// The event of a client's signal: the format-1 form when nothing of
/// format 3 is needed, so older tools keep reading plain signals.
fn signal_event(
    name: String,
    input: Payload,
    request_id: Option<String>,
    delivery: SignalDelivery,
) -> EventKind {
    if request_id.is_none() && delivery == SignalDelivery::Alone {
        return EventKind::WorkflowSignaled {
            signal_name: name,
            input,
        };
    }
    EventKind::WorkflowSignaledWithOptions {
        signal_name: name,
        input,
        request_id,
        delivery,
    }
}

fn delivery(with_next: bool) -> SignalDelivery {
    if with_next {
        SignalDelivery::WithNext
    } else {
        SignalDelivery::Alone
    }
}

/// A signal event, marked to be delivered with the next event.
fn with_next(kind: EventKind) -> EventKind {
    match kind {
        EventKind::WorkflowSignaled { signal_name, input } => {
            signal_event(signal_name, input, None, SignalDelivery::WithNext)
        }
        EventKind::WorkflowSignaledWithOptions {
            signal_name,
            input,
            request_id,
            ..
        } => signal_event(signal_name, input, request_id, SignalDelivery::WithNext),
        other => other,
    }
}

/// True for a command by which the workflow code closes its run.
fn is_code_close(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::WorkflowCompleted { .. }
            | EventKind::WorkflowFailed { .. }
            | EventKind::WorkflowCancelled { .. }
            | EventKind::WorkflowContinuedAsNew { .. }
    )
}

/// Runs a query handler of the workflow code, live or replayed.
pub(super) fn answer_query(
    machine: &WorkflowMachine,
    workflow_id: &str,
    name: &str,
    input: &Payload,
) -> Result<Payload, ClientError> {
    let handler = machine
        .query_handler(name)
        .ok_or_else(|| ClientError::UnknownQuery {
            workflow_id: workflow_id.to_string(),
            query: name.to_string(),
        })?;
    // The handler is user code: its panic fails this query, not the run.
    let answer =
        crate::panic::catch(|| handler(input)).map_err(|message| ClientError::QueryFailed {
            workflow_id: workflow_id.to_string(),
            query: name.to_string(),
            message,
        })?;
    answer.map_err(|fault| match fault {
        QueryFault::Argument(e) => ClientError::InvalidArgument(format!(
            "the argument of query {name:?} of workflow {workflow_id:?} does not decode as \
             what its handler takes ({e}); send it with the QueryDef the workflow registers"
        )),
        QueryFault::Answer(e) => ClientError::Payload(e),
    })
}
