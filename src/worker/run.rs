//! The actor of one run: it owns the run's workflow machine, feeds it events,
//! commits what happened, and only then acts on it.
//!
//! Every change follows the same order: build the events (the outcome that
//! woke the run and the commands the code issued in reply), commit them in
//! one durable write, then answer callers and start activities and timers. A
//! crash between the commit and the actions is repaired by replay on the
//! next open.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use super::attempt::{self, Attempt, AttemptOutcome};
use super::{PendingActivityInfo, PendingTimerInfo, RunSnapshot, RunState, Shared};
use crate::activity::retry;
use crate::codec;
use crate::error::ClientError;
use crate::history::{
    ActivityOptionsRecord, Event, EventKind, Failure, Payload, RunId, WorkflowStatus,
};
use crate::store::{EncodedRecord, RunRecord, WAKE_NEVER, WAKE_NOW, WriteOp};
use crate::workflow::{ParkReason, WorkflowMachine};

/// The failure type of an attempt cut off by a crash or a kill.
const INTERRUPTED: &str = "AttemptInterrupted";

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
    /// An attempt heartbeated (already throttled).
    Heartbeat {
        seq: u32,
        attempt: u32,
        details: Payload,
    },
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
        ack: Ack,
    },
    /// A query from a client.
    Query {
        name: String,
        reply: oneshot::Sender<Result<Payload, ClientError>>,
    },
    /// A cancellation request from a client.
    Cancel { reason: String, ack: Ack },
    /// A termination from a client.
    Terminate { reason: String, ack: Ack },
    /// A request for the run's pending work.
    Describe { reply: oneshot::Sender<RunSnapshot> },
    /// Nothing but "be in memory": resumes a run loaded from the file.
    Wake,
}

/// An activity scheduled and not yet resolved.
#[derive(Debug)]
struct PendingActivity {
    activity_type: String,
    input: Payload,
    options: ActivityOptionsRecord,
    scheduled_at: SystemTime,
    /// The attempt running now, or the next one when `retry_at` is set.
    attempt: u32,
    retry_at: Option<SystemTime>,
    last_failure: Option<Failure>,
    last_heartbeat: Option<Payload>,
    /// Attempts in a row cut off by a crash; past the first, retries wait
    /// their backoff, so an activity that crashes the process cannot spin.
    interruptions: u32,
    /// Tells the running attempt to stop.
    cancel: Option<CancellationToken>,
}

impl PendingActivity {
    fn new(
        activity_type: String,
        input: Payload,
        options: ActivityOptionsRecord,
        at: SystemTime,
    ) -> Self {
        PendingActivity {
            activity_type,
            input,
            options,
            scheduled_at: at,
            attempt: 1,
            retry_at: None,
            last_failure: None,
            last_heartbeat: None,
            interruptions: 0,
            cancel: None,
        }
    }
}

/// What to do once a step's events are durable.
enum Effect {
    Dispatch {
        seq: u32,
        attempt: u32,
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
    queries: Vec<(String, oneshot::Sender<Result<Payload, ClientError>>)>,
    /// Answered after the commit, so a description never shows work whose
    /// events are not in the file yet.
    describes: Vec<oneshot::Sender<RunSnapshot>>,
}

struct RunActor {
    shared: Arc<Shared>,
    run_id: RunId,
    record: RunRecord,
    machine: WorkflowMachine,
    activities: BTreeMap<u32, PendingActivity>,
    /// Timers started and not fired, by seq.
    timers: BTreeMap<u32, SystemTime>,
    /// When the run or execution timeout ends the run.
    deadlines: Vec<(SystemTime, &'static str)>,
    cancel_requested: bool,
    /// What handles waiting on the run see; set when the actor goes live.
    state: Arc<watch::Sender<RunState>>,
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

    /// When the run next needs the engine, for the `running` index.
    pub(crate) fn wake(&self) -> u64 {
        self.actor.wake_hint()
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
    let machine = span.in_scope(|| {
        match shared.workflow_fn(&record.task_queue, &record.workflow_type) {
            Some(workflow) => WorkflowMachine::replay(&workflow, run_id, &history),
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
    });
    let mut actor = RunActor {
        shared: shared.clone(),
        run_id,
        record,
        machine,
        activities: BTreeMap::new(),
        timers: BTreeMap::new(),
        deadlines: Vec::new(),
        cancel_requested: false,
        state: Arc::new(watch::channel(RunState::Running).0),
    };
    let mut step = Step::default();
    actor.resume(history, &mut step);
    PreparedRun { actor, step }
}

/// Starts a run's actor. A new run's step was committed with its start
/// (`committed`); a run loaded from the file commits its resume step first.
pub(super) fn start(
    prepared: PreparedRun,
    state: Arc<watch::Sender<RunState>>,
    rx: mpsc::UnboundedReceiver<RunMsg>,
    committed: bool,
) {
    let PreparedRun { mut actor, step } = prepared;
    actor.state = state;
    let tracker = actor.shared.tracker.clone();
    let shutdown = actor.shared.shutdown.clone();
    tracker.spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = async {
                let live = if committed {
                    actor.after_commit(step)
                } else {
                    actor.finish(step).await
                };
                if live {
                    actor.run(rx).await;
                }
            } => {}
        }
        actor.cancel_attempts();
    });
}

impl RunActor {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<RunMsg>) {
        loop {
            // An idle run (no attempt in flight) may leave memory; its timers
            // and messages load it again.
            if self.idle() && self.shared.try_evict(self.run_id, &rx) {
                return;
            }
            let Some(msg) = rx.recv().await else {
                return;
            };
            let mut step = Step::default();
            self.handle(msg, &mut step);
            // Messages that queued up meanwhile share the commit.
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg, &mut step);
            }
            if !self.finish(step).await {
                return;
            }
        }
    }

    /// Rebuilds pending activities and timers from the history, records the
    /// attempts a crash cut off, and takes the commands replay left new.
    fn resume(&mut self, history: Vec<Event>, step: &mut Step) {
        for event in &history {
            match &event.kind {
                EventKind::WorkflowStarted {
                    run_timeout,
                    execution_timeout,
                    ..
                } => {
                    let limits = [
                        (run_timeout, "WorkflowRunTimeout"),
                        (execution_timeout, "WorkflowExecutionTimeout"),
                    ];
                    for (limit, timeout) in limits {
                        // A deadline past what the clock holds is none.
                        if let Some(at) = limit.and_then(|l| event.timestamp.checked_add(l)) {
                            self.deadlines.push((at, timeout));
                            self.shared.timers.schedule(
                                at,
                                self.run_id,
                                RunMsg::RunTimeout { timeout },
                            );
                        }
                    }
                }
                EventKind::ActivityScheduled {
                    seq,
                    activity_type,
                    input,
                    options,
                } => {
                    let p = PendingActivity::new(
                        activity_type.clone(),
                        input.clone(),
                        options.clone(),
                        event.timestamp,
                    );
                    self.activities.insert(*seq, p);
                }
                EventKind::ActivityFailed {
                    seq,
                    attempt,
                    failure,
                    next_attempt_at: Some(at),
                } => {
                    if let Some(p) = self.activities.get_mut(seq) {
                        // Saturating: a damaged file can hold any number.
                        p.attempt = attempt.saturating_add(1);
                        p.retry_at = Some(*at);
                        p.last_failure = Some(failure.clone());
                        if failure.error_type == INTERRUPTED {
                            p.interruptions = p.interruptions.saturating_add(1);
                        } else {
                            p.interruptions = 0;
                        }
                    }
                }
                EventKind::ActivityAttemptStarted { seq, attempt } => {
                    if let Some(p) = self.activities.get_mut(seq)
                        && p.attempt == *attempt
                    {
                        p.retry_at = None;
                    }
                }
                EventKind::ActivityHeartbeat { seq, details, .. } => {
                    if let Some(p) = self.activities.get_mut(seq) {
                        p.last_heartbeat = Some(details.clone());
                    }
                }
                EventKind::ActivityCompleted { seq, .. }
                | EventKind::ActivityFailed { seq, .. } => {
                    self.activities.remove(seq);
                }
                EventKind::TimerStarted { seq, fire_at } => {
                    self.timers.insert(*seq, *fire_at);
                }
                EventKind::TimerFired { seq } => {
                    self.timers.remove(seq);
                }
                EventKind::WorkflowCancelRequested { .. } => {
                    // Everything pending then was resolved as cancelled.
                    self.cancel_requested = true;
                    self.activities.clear();
                    self.timers.clear();
                }
                _ => {}
            }
        }
        let mut interrupted = Vec::new();
        for (seq, p) in &self.activities {
            match p.retry_at {
                // The attempt was running when the process stopped: it
                // counts, and the next one follows.
                None => interrupted.push((*seq, p.attempt, p.interruptions == 0)),
                // A retry that had not started keeps its number and its time
                // (at once if that passed).
                Some(at) => step.effects.push(Effect::Retry {
                    seq: *seq,
                    attempt: p.attempt,
                    at,
                }),
            }
        }
        for (seq, at) in &self.timers {
            step.effects.push(Effect::Timer { seq: *seq, at: *at });
        }
        self.absorb_commands(step);
        for (seq, attempt, first) in interrupted {
            let failure = Failure {
                error_type: INTERRUPTED.into(),
                message: "the process stopped while this attempt was running".into(),
                non_retryable: false,
            };
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
            RunMsg::Heartbeat {
                seq,
                attempt,
                details,
            } => self.record_heartbeat(step, seq, attempt, details),
            RunMsg::TimerDue { seq } => {
                if !self.record.status.is_closed() && self.timers.remove(&seq).is_some() {
                    let event = self.push(step, EventKind::TimerFired { seq });
                    self.activate(step, &event);
                }
            }
            RunMsg::RetryDue { seq, attempt } => {
                if self.record.status.is_closed() {
                    return;
                }
                if let Some(p) = self.activities.get_mut(&seq)
                    && p.attempt == attempt
                    && p.retry_at.is_some()
                {
                    p.retry_at = None;
                    step.effects.push(Effect::Dispatch { seq, attempt });
                    self.push(step, EventKind::ActivityAttemptStarted { seq, attempt });
                }
            }
            RunMsg::RunTimeout { timeout } => {
                if !self.record.status.is_closed() {
                    let timeout = timeout.to_string();
                    self.end(
                        step,
                        EventKind::WorkflowTimedOut { timeout },
                        WorkflowStatus::TimedOut,
                    );
                }
            }
            RunMsg::Signal { name, input, ack } => {
                if let Some(err) = self.closed_error() {
                    let _ = ack.send(Err(err));
                    return;
                }
                let event = self.push(
                    step,
                    EventKind::WorkflowSignaled {
                        signal_name: name,
                        input,
                    },
                );
                step.acks.push(ack);
                self.activate(step, &event);
            }
            RunMsg::Query { name, reply } => step.queries.push((name, reply)),
            RunMsg::Cancel { reason, ack } => {
                if let Some(err) = self.closed_error() {
                    let _ = ack.send(Err(err));
                    return;
                }
                step.acks.push(ack);
                if self.cancel_requested {
                    // A cancellation request is state: only the first is delivered.
                    return;
                }
                self.cancel_requested = true;
                let event = self.push(step, EventKind::WorkflowCancelRequested { reason });
                // Try-cancel: the attempts are told, and the workflow sees
                // every pending activity and timer as cancelled at once.
                self.cancel_attempts();
                self.activities.clear();
                self.timers.clear();
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
            RunMsg::Wake => self.arm_due_times(),
        }
    }

    /// Schedules every due time again; the timer thread keeps only those
    /// within its horizon, and the wake-up index brings this run back for
    /// the others. Duplicates are harmless: each is acted on once.
    fn arm_due_times(&self) {
        let timers = &self.shared.timers;
        for (seq, at) in &self.timers {
            timers.schedule(*at, self.run_id, RunMsg::TimerDue { seq: *seq });
        }
        for (seq, p) in &self.activities {
            if let Some(at) = p.retry_at {
                let msg = RunMsg::RetryDue {
                    seq: *seq,
                    attempt: p.attempt,
                };
                timers.schedule(at, self.run_id, msg);
            }
        }
        for (at, timeout) in &self.deadlines {
            timers.schedule(*at, self.run_id, RunMsg::RunTimeout { timeout });
        }
    }

    /// True when no attempt is in flight: leaving memory loses nothing.
    fn idle(&self) -> bool {
        self.activities.values().all(|p| p.retry_at.is_some())
    }

    /// When the run next needs the engine: now with an attempt in flight,
    /// else its earliest due time, else only a message wakes it.
    fn wake_hint(&self) -> u64 {
        if !self.idle() {
            return WAKE_NOW;
        }
        let next = self
            .timers
            .values()
            .copied()
            .chain(self.activities.values().filter_map(|p| p.retry_at))
            .chain(self.deadlines.iter().map(|(at, _)| *at))
            .min();
        match next {
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
        let event = self.push(step, kind);
        self.close(status, event.timestamp);
        self.cancel_attempts();
        self.activities.clear();
        self.timers.clear();
        step.effects.clear();
    }

    fn attempt_done(&mut self, step: &mut Step, seq: u32, attempt: u32, outcome: AttemptOutcome) {
        let current = self
            .activities
            .get(&seq)
            .is_some_and(|p| p.attempt == attempt && p.retry_at.is_none());
        if !current || self.record.status.is_closed() {
            return;
        }
        if let Some(details) = outcome.unsent_heartbeat {
            self.record_heartbeat(step, seq, attempt, details);
        }
        match outcome.result {
            Ok(result) if result.len() > self.shared.max_payload_bytes => {
                let failure = Failure {
                    error_type: "PayloadTooLarge".into(),
                    message: format!(
                        "the result is {} bytes, over the limit of {} bytes",
                        result.len(),
                        self.shared.max_payload_bytes
                    ),
                    non_retryable: true,
                };
                self.fail_attempt(step, seq, attempt, failure, false);
            }
            Ok(result) => {
                self.activities.remove(&seq);
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
            Err(failure) => self.fail_attempt(step, seq, attempt, failure, false),
        }
    }

    fn record_heartbeat(&mut self, step: &mut Step, seq: u32, attempt: u32, details: Payload) {
        let current = self
            .activities
            .get(&seq)
            .is_some_and(|p| p.attempt == attempt && p.retry_at.is_none());
        if !current
            || self.record.status.is_closed()
            || details.len() > self.shared.max_payload_bytes
        {
            return;
        }
        if let Some(p) = self.activities.get_mut(&seq) {
            p.last_heartbeat = Some(details.clone());
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
        failure: Failure,
        retry_now: bool,
    ) {
        let Some(p) = self.activities.get_mut(&seq) else {
            return;
        };
        let now = SystemTime::now();
        let next = retry::next_attempt_at(
            &p.options,
            attempt,
            &failure,
            p.scheduled_at,
            now,
            retry_now,
        );
        match next {
            Some(at) => {
                let next = attempt.saturating_add(1);
                p.attempt = next;
                p.last_failure = Some(failure.clone());
                p.cancel = None;
                // A retry due at once starts in the same commit; a later one
                // waits for its timer and starts with a commit of its own.
                let immediate = at <= now;
                p.retry_at = (!immediate).then_some(at);
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
                    self.push(
                        step,
                        EventKind::ActivityAttemptStarted { seq, attempt: next },
                    );
                    step.effects.push(Effect::Dispatch { seq, attempt: next });
                } else {
                    step.effects.push(Effect::Retry {
                        seq,
                        attempt: next,
                        at,
                    });
                }
            }
            None => {
                self.activities.remove(&seq);
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

    /// Appends an event to the step, numbering it after the history.
    fn push(&mut self, step: &mut Step, kind: EventKind) -> Event {
        self.record.history_len += 1;
        let event = Event {
            event_id: self.record.history_len,
            timestamp: SystemTime::now(),
            kind,
        };
        step.events.push(event.clone());
        event
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
        self.absorb_commands(step);
    }

    fn absorb_commands(&mut self, step: &mut Step) {
        for kind in self.machine.take_commands() {
            let event = self.push(step, kind);
            match event.kind {
                EventKind::ActivityScheduled {
                    seq,
                    activity_type,
                    input,
                    options,
                } => {
                    let p = PendingActivity::new(activity_type, input, options, event.timestamp);
                    self.activities.insert(seq, p);
                    step.effects.push(Effect::Dispatch { seq, attempt: 1 });
                }
                EventKind::TimerStarted { seq, fire_at } => {
                    self.timers.insert(seq, fire_at);
                    step.effects.push(Effect::Timer { seq, at: fire_at });
                }
                EventKind::WorkflowCompleted { .. } => {
                    self.close(WorkflowStatus::Completed, event.timestamp)
                }
                EventKind::WorkflowFailed { .. } => {
                    self.close(WorkflowStatus::Failed, event.timestamp)
                }
                EventKind::WorkflowCancelled { .. } => {
                    self.close(WorkflowStatus::Cancelled, event.timestamp)
                }
                // Stored with the step's events (see `commit`).
                EventKind::SearchAttributesUpserted { attributes } => {
                    self.record.search_attributes.merge(&attributes)
                }
                _ => {}
            }
        }
    }

    fn close(&mut self, status: WorkflowStatus, at: SystemTime) {
        self.record.status = status;
        self.record.close_time = Some(at);
    }

    fn cancel_attempts(&mut self) {
        for p in self.activities.values_mut() {
            if let Some(token) = p.cancel.take() {
                token.cancel();
            }
        }
    }

    fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            activities: self
                .activities
                .iter()
                .map(|(seq, p)| PendingActivityInfo {
                    seq: *seq,
                    activity_type: p.activity_type.clone(),
                    attempt: p.attempt,
                    next_attempt_at: p.retry_at,
                    last_failure: p.last_failure.clone(),
                    last_heartbeat: p.last_heartbeat.clone(),
                })
                .collect(),
            timers: self
                .timers
                .iter()
                .map(|(seq, at)| PendingTimerInfo {
                    seq: *seq,
                    fire_at: *at,
                })
                .collect(),
            history_len: self.record.history_len,
            parked: self.state.borrow().parked().cloned(),
        }
    }

    /// Commits the step, then acts on it. Returns false when the actor is done.
    async fn finish(&mut self, step: Step) -> bool {
        if !step.events.is_empty() {
            let committed = self.commit(&step.events).await;
            if let Err(message) = committed {
                for ack in step.acks {
                    let _ = ack.send(Err(ClientError::Storage(message.clone())));
                }
                // What the machine holds is ahead of the file now; only a
                // replay from the file can continue safely.
                return self.park(format!(
                    "storing the run's progress failed ({message}); it resumes from its last durable step once the file can be written again"
                ));
            }
        }
        self.after_commit(step)
    }

    /// Acts on a step whose events are durable: answers callers, publishes
    /// the run's state, starts attempts and timers. Returns false when the
    /// actor is done.
    fn after_commit(&mut self, step: Step) -> bool {
        for ack in step.acks {
            let _ = ack.send(Ok(()));
        }
        for (name, reply) in step.queries {
            let _ = reply.send(self.answer_query(&name));
        }
        if self.record.status.is_closed() {
            self.state
                .send_replace(RunState::Closed(self.record.status));
            self.shared.unregister(self.run_id);
            return false;
        }
        if let Some(reason) = self.machine.parked()
            && !matches!(&*self.state.borrow(), RunState::Parked(_))
        {
            warn!(workflow_id = %self.record.workflow_id, run_id = %self.run_id, %reason, "run parked");
            self.state.send_replace(RunState::Parked(reason.clone()));
        }
        for reply in step.describes {
            let _ = reply.send(self.snapshot());
        }
        for effect in step.effects {
            match effect {
                Effect::Dispatch { seq, attempt } => self.dispatch(seq, attempt),
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

    async fn commit(&mut self, events: &[Event]) -> Result<(), String> {
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            let bytes = codec::encode(event).map_err(|e| e.to_string())?;
            encoded.push((event.event_id, bytes));
        }
        // The record goes with the events that change it: a close, or an
        // upsert of search attributes (durable together, in one commit).
        let changed = self.record.status.is_closed()
            || events
                .iter()
                .any(|e| matches!(e.kind, EventKind::SearchAttributesUpserted { .. }));
        let record = if changed {
            Some(EncodedRecord::new(self.record.clone()).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let op = WriteOp::Append {
            run_id: self.run_id,
            record,
            events: encoded,
            wake: self.wake_hint(),
        };
        self.shared
            .store
            .write(op)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn answer_query(&self, name: &str) -> Result<Payload, ClientError> {
        answer_query(&self.machine, &self.record.workflow_id, name)
    }

    fn park(&mut self, message: String) -> bool {
        // The run stays visible as parked; the actor stops, and the next
        // message (or the retry a moment later) loads the run again from its
        // last durable step.
        self.shared
            .stop(self.run_id, ParkReason::Unrunnable(message));
        self.shared.retry_later(self.run_id);
        false
    }

    fn dispatch(&mut self, seq: u32, attempt: u32) {
        let Some(p) = self.activities.get_mut(&seq) else {
            return;
        };
        let task_queue = p
            .options
            .task_queue
            .clone()
            .unwrap_or_else(|| self.record.task_queue.clone());
        let cancel = self.shared.shutdown.child_token();
        p.cancel = Some(cancel.clone());
        let sink_shared = self.shared.clone();
        let run_id = self.run_id;
        let work = Attempt {
            queue: self.shared.queue(&task_queue),
            workflow_id: self.record.workflow_id.clone(),
            run_id: self.run_id,
            task_queue,
            activity_type: p.activity_type.clone(),
            seq,
            attempt,
            input: p.input.clone(),
            options: p.options.clone(),
            scheduled_at: p.scheduled_at,
            heartbeat_details: p.last_heartbeat.clone(),
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
                    outcome = attempt::run(work) => {
                        // A run that closed meanwhile needs nothing.
                        let _ = shared.deliver(run_id, RunMsg::AttemptDone { seq, attempt, outcome });
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// Runs a query handler of the workflow code, live or replayed.
pub(super) fn answer_query(
    machine: &WorkflowMachine,
    workflow_id: &str,
    name: &str,
) -> Result<Payload, ClientError> {
    let handler = machine
        .query_handler(name)
        .ok_or_else(|| ClientError::UnknownQuery {
            workflow_id: workflow_id.to_string(),
            query: name.to_string(),
        })?;
    // The handler is user code: its panic fails this query, not the run.
    let answer = crate::panic::catch(|| handler()).map_err(|message| ClientError::QueryFailed {
        workflow_id: workflow_id.to_string(),
        query: name.to_string(),
        message,
    })?;
    Ok(answer?)
}
