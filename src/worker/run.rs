//! The actor of one run: it owns the run's workflow machine, feeds it events,
//! commits what happened, and only then acts on it.
//!
//! Every change follows the same order: build the events (the outcome that
//! woke the run and the commands the code issued in reply), commit them in
//! one durable write, then start activities and timers. A crash between the
//! commit and the actions is repaired by replay on the next open.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info_span, warn};

use super::attempt::{self, Attempt};
use super::{LiveRun, RunState, Shared};
use crate::activity::retry;
use crate::codec;
use crate::history::{
    ActivityOptionsRecord, Event, EventKind, Failure, Payload, RunId, WorkflowStatus,
};
use crate::store::{RunRecord, WriteOp};
use crate::workflow::{ParkReason, WorkflowMachine};

/// Something that happened to a run outside its workflow code.
#[derive(Debug)]
pub(crate) enum RunMsg {
    /// An activity attempt ended.
    AttemptDone {
        seq: u32,
        attempt: u32,
        outcome: Result<Payload, Failure>,
    },
    /// A durable timer is due.
    TimerDue { seq: u32 },
    /// The delay before a retry is over.
    RetryDue { seq: u32, attempt: u32 },
}

/// An activity scheduled and not yet resolved.
#[derive(Debug)]
pub(crate) struct PendingActivity {
    pub(crate) activity_type: String,
    pub(crate) input: Payload,
    pub(crate) options: ActivityOptionsRecord,
    pub(crate) scheduled_at: SystemTime,
    /// The attempt running now, or the next one when `retry_at` is set.
    pub(crate) attempt: u32,
    pub(crate) retry_at: Option<SystemTime>,
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
}

struct RunActor {
    shared: Arc<Shared>,
    run_id: RunId,
    record: RunRecord,
    machine: WorkflowMachine,
    activities: BTreeMap<u32, PendingActivity>,
    /// Timers started and not fired, by seq.
    timers: BTreeMap<u32, SystemTime>,
    /// This run's own inbox, handed to attempts and timers.
    tx: mpsc::UnboundedSender<RunMsg>,
    state: watch::Sender<RunState>,
}

/// Replays `history` and starts the run's actor.
pub(super) fn spawn(shared: Arc<Shared>, run_id: RunId, record: RunRecord, history: Vec<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (state, state_rx) = watch::channel(RunState::Running);
    shared.register(run_id, LiveRun { state: state_rx });
    let span = info_span!(
        "workflow_activation",
        workflow_id = %record.workflow_id,
        run_id = %run_id,
        workflow_type = %record.workflow_type,
    );
    let machine = span.in_scope(|| match shared.workflow_fn(&record.task_queue, &record.workflow_type) {
        Some(workflow) => WorkflowMachine::replay(&workflow, run_id, &history),
        None => WorkflowMachine::parked_with(
            run_id,
            ParkReason::Unrunnable(format!(
                "workflow type {:?} is not registered on task queue {:?}; register it and open the engine again",
                record.workflow_type, record.task_queue
            )),
        ),
    });
    let mut actor = RunActor {
        shared: shared.clone(),
        run_id,
        record,
        machine,
        activities: BTreeMap::new(),
        timers: BTreeMap::new(),
        tx,
        state,
    };
    let shutdown = shared.shutdown.clone();
    shared.tracker.spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = actor.run(history, rx) => {}
        }
    });
}

impl RunActor {
    async fn run(&mut self, history: Vec<Event>, mut rx: mpsc::UnboundedReceiver<RunMsg>) {
        let mut step = Step::default();
        self.resume(history, &mut step);
        if !self.finish(step).await {
            return;
        }
        while let Some(msg) = rx.recv().await {
            let mut step = Step::default();
            self.handle(msg, &mut step);
            // Outcomes that queued up meanwhile share the commit.
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
                EventKind::ActivityScheduled {
                    seq,
                    activity_type,
                    input,
                    options,
                } => {
                    self.activities.insert(
                        *seq,
                        PendingActivity {
                            activity_type: activity_type.clone(),
                            input: input.clone(),
                            options: options.clone(),
                            scheduled_at: event.timestamp,
                            attempt: 1,
                            retry_at: None,
                        },
                    );
                }
                EventKind::ActivityFailed {
                    seq,
                    attempt,
                    next_attempt_at: Some(at),
                    ..
                } => {
                    if let Some(p) = self.activities.get_mut(seq) {
                        p.attempt = attempt + 1;
                        p.retry_at = Some(*at);
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
                _ => {}
            }
        }
        let now = SystemTime::now();
        let mut interrupted = Vec::new();
        for (seq, p) in &self.activities {
            match p.retry_at {
                // The attempt was running (or due to run) when the process
                // stopped: it counts, and the next one starts at once.
                None => interrupted.push((*seq, p.attempt)),
                Some(at) if at <= now => interrupted.push((*seq, p.attempt)),
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
        for (seq, attempt) in interrupted {
            let failure = Failure {
                error_type: "AttemptInterrupted".into(),
                message: "the process stopped while this attempt was running".into(),
                non_retryable: false,
            };
            self.fail_attempt(step, seq, attempt, failure, true);
        }
    }

    fn handle(&mut self, msg: RunMsg, step: &mut Step) {
        match msg {
            RunMsg::AttemptDone {
                seq,
                attempt,
                outcome,
            } => {
                let current = self
                    .activities
                    .get(&seq)
                    .is_some_and(|p| p.attempt == attempt && p.retry_at.is_none());
                if !current {
                    return;
                }
                match outcome {
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
            RunMsg::TimerDue { seq } => {
                if self.timers.remove(&seq).is_some() {
                    let event = self.push(step, EventKind::TimerFired { seq });
                    self.activate(step, &event);
                }
            }
            RunMsg::RetryDue { seq, attempt } => {
                if let Some(p) = self.activities.get_mut(&seq)
                    && p.attempt == attempt
                    && p.retry_at.is_some()
                {
                    p.retry_at = None;
                    step.effects.push(Effect::Dispatch { seq, attempt });
                }
            }
        }
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
        let next = retry::next_attempt_at(&p.options, attempt, &failure, p.scheduled_at, now)
            .map(|at| if retry_now { now } else { at });
        match next {
            Some(at) => {
                p.attempt = attempt + 1;
                p.retry_at = Some(at);
                step.effects.push(Effect::Retry {
                    seq,
                    attempt: attempt + 1,
                    at,
                });
                self.push(
                    step,
                    EventKind::ActivityFailed {
                        seq,
                        attempt,
                        failure,
                        next_attempt_at: Some(at),
                    },
                );
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
                    self.activities.insert(
                        seq,
                        PendingActivity {
                            activity_type,
                            input,
                            options,
                            scheduled_at: event.timestamp,
                            attempt: 1,
                            retry_at: None,
                        },
                    );
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
                _ => {}
            }
        }
    }

    fn close(&mut self, status: WorkflowStatus, at: SystemTime) {
        self.record.status = status;
        self.record.close_time = Some(at);
    }

    /// Commits the step, then acts on it. Returns false when the actor is done.
    async fn finish(&mut self, step: Step) -> bool {
        if !step.events.is_empty() {
            let mut events = Vec::with_capacity(step.events.len());
            for event in &step.events {
                match codec::encode(event) {
                    Ok(bytes) => events.push((event.event_id, bytes)),
                    Err(e) => return self.park(format!("an event could not be encoded: {e}")),
                }
            }
            let op = WriteOp::Append {
                run_id: self.run_id,
                record: self.record.clone(),
                events,
            };
            if let Err(e) = self.shared.store.write(vec![op]).await {
                // What the machine holds is ahead of the file now; only a
                // replay from the file can continue safely.
                return self.park(format!(
                    "storing the run's progress failed ({e}); open the engine again to resume from the last durable step"
                ));
            }
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
        for effect in step.effects {
            match effect {
                Effect::Dispatch { seq, attempt } => self.dispatch(seq, attempt),
                Effect::Timer { seq, at } => {
                    self.shared
                        .timers
                        .schedule(at, self.tx.clone(), RunMsg::TimerDue { seq })
                }
                Effect::Retry { seq, attempt, at } => self.shared.timers.schedule(
                    at,
                    self.tx.clone(),
                    RunMsg::RetryDue { seq, attempt },
                ),
            }
        }
        true
    }

    fn park(&mut self, message: String) -> bool {
        warn!(workflow_id = %self.record.workflow_id, run_id = %self.run_id, %message, "run parked");
        self.state
            .send_replace(RunState::Parked(ParkReason::Unrunnable(message)));
        // Keep the actor's entry so the run stays visible as parked; stop work.
        false
    }

    fn dispatch(&self, seq: u32, attempt: u32) {
        let Some(p) = self.activities.get(&seq) else {
            return;
        };
        let work = Attempt {
            function: self
                .shared
                .activity_fn(&self.record.task_queue, &p.activity_type),
            workflow_id: self.record.workflow_id.clone(),
            run_id: self.run_id,
            task_queue: self.record.task_queue.clone(),
            activity_type: p.activity_type.clone(),
            seq,
            attempt,
            input: p.input.clone(),
            options: p.options.clone(),
            scheduled_at: p.scheduled_at,
        };
        let span = info_span!(
            "activity_attempt",
            workflow_id = %self.record.workflow_id,
            run_id = %self.run_id,
            activity = %p.activity_type,
            attempt,
        );
        let tx = self.tx.clone();
        let shutdown = self.shared.shutdown.clone();
        self.shared.tracker.spawn(
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    outcome = attempt::run(work) => {
                        // A run that closed meanwhile needs nothing.
                        let _ = tx.send(RunMsg::AttemptDone { seq, attempt, outcome });
                    }
                }
            }
            .instrument(span),
        );
    }
}
