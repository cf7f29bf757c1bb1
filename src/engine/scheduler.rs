//! The schedules' drivers: one task per schedule that, whenever an action
//! is due, a call changed the schedule, or a workflow it waits on closed,
//! takes a step (`schedule::progress`) and commits the starts it makes with
//! the schedule's new record, in one store operation.
//!
//! In a store several processes share, only the owner of a schedule ID's
//! shard drives the schedule ([`spawn`], [`follow`]), and its writes are
//! fenced by that shard as the owner's other writes: one process at a
//! time starts a schedule's actions, and the next owner of the shard
//! takes over from the stored record.
//!
//! The file is the truth: a driver keeps nothing between steps but when to
//! look again, so a crash (or a call racing a step) loses nothing. A step
//! whose write finds the record changed (its revision moved) is taken again
//! from the new record.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::Engine;
use super::shutdown::Owner;
use crate::clock::{Clock, Hold};
use crate::codec;
use crate::history::{Event, EventKind, Failure, RunId, SearchAttributeValue, WorkflowStatus};
use crate::schedule::progress::{self, ActionOutcome, Step};
use crate::schedule::record::ScheduleRecord;
use crate::schedule::{CompiledSpec, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec};
use crate::store::{
    EncodedRecord, EncodedSchedule, RunRecord, ScheduleOp, ScheduledStart, StoreError, WAKE_NOW,
    WriteOp, WriteOutcome,
};
use crate::worker::{RunMsg, ScheduleHint, Shared};

/// The search attribute naming the schedule that started a run (Temporal's).
pub const SCHEDULED_BY_ID: &str = "TemporalScheduledById";
/// The search attribute holding the nominal time of the action that started
/// a run (Temporal's).
pub const SCHEDULED_START_TIME: &str = "TemporalScheduledStartTime";

/// Steps taken again at most when calls keep changing the record.
const STEP_ATTEMPTS: usize = 16;
/// How long a driver waits after a failed step (storage failing, say)
/// before it tries again, at first; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a driver looks again at the runs it waits on that another
/// process owns (their close is not heard here).
const REMOTE_WATCH: Duration = Duration::from_secs(1);

/// The running drivers, by schedule ID: where to send each a wake-up.
/// A wake-up carries a hold of the clock, taken by whoever wakes the
/// driver, so a virtual clock cannot move on before the driver has acted.
#[derive(Debug, Default)]
pub(super) struct Drivers {
    wakes: Mutex<HashMap<String, mpsc::UnboundedSender<Hold>>>,
}

impl Drivers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Hold>>> {
        self.wakes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the driver of `schedule_id` to take a step now.
    pub(super) fn poke(&self, clock: &Clock, schedule_id: &str) {
        if let Some(wake) = self.lock().get(schedule_id) {
            let _ = wake.send(clock.hold());
        }
    }

    /// Wakes every driver (those of shards lost stop).
    fn poke_all(&self, clock: &Clock) {
        for wake in self.lock().values() {
            let _ = wake.send(clock.hold());
        }
    }
}

/// Starts the driver of `schedule_id` unless it runs (then wakes it), if
/// this process owns the schedule ID's shard: in a store several processes
/// share, only that shard's owner drives the schedule (for a file, this
/// process always does).
pub(super) fn spawn(owner: &Arc<Owner>, schedule_id: String) {
    let shared = owner.shared.clone();
    if !shared.store.owns(&schedule_id) {
        return;
    }
    let (wake, wakes) = {
        let mut drivers = owner.schedules.lock();
        if let Some(wake) = drivers.get(&schedule_id) {
            let _ = wake.send(shared.clock.hold());
            return;
        }
        let (wake, wakes) = mpsc::unbounded_channel();
        drivers.insert(schedule_id.clone(), wake.clone());
        (wake, wakes)
    };
    // Held from here, not from the task's first poll: a virtual clock
    // must not move on before the driver has taken its first step.
    let hold = shared.clock.hold();
    let driver = Driver {
        owner: Arc::downgrade(owner),
        shared: shared.clone(),
        schedule_id,
        wake,
        wakes,
    };
    shared.tracker.spawn(driver.run(hold));
}

/// Starts the driver of every stored schedule (at open).
pub(super) async fn spawn_all(owner: &Arc<Owner>) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let page = owner.shared.store.schedules(after.as_deref(), 1000).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.schedule_id.clone());
        for record in page {
            spawn(owner, record.schedule_id);
        }
    }
}

/// Follows the store's hints (a store several processes share): shards
/// acquired or lost start and stop drivers, and a schedule changed by a
/// call in another process has its driver here take a step.
pub(super) fn follow(owner: &Arc<Owner>, mut hints: mpsc::UnboundedReceiver<ScheduleHint>) {
    let weak = Arc::downgrade(owner);
    let shutdown = owner.shared.shutdown.clone();
    owner.shared.tracker.spawn(async move {
        loop {
            let hint = tokio::select! {
                hint = hints.recv() => hint,
                _ = shutdown.cancelled() => return,
            };
            let (Some(hint), Some(owner)) = (hint, weak.upgrade()) else {
                return;
            };
            match hint {
                ScheduleHint::Rescan => {
                    // Hints that came meanwhile are answered by this scan.
                    while let Ok(ScheduleHint::Rescan) = hints.try_recv() {}
                    owner.schedules.poke_all(&owner.shared.clock);
                    if let Err(err) = spawn_all(&owner).await {
                        tracing::warn!(error = %err, "reading the schedules of shards acquired failed; the next change of shards reads them again");
                    }
                }
                ScheduleHint::Changed(schedule_id) => spawn(&owner, schedule_id),
            }
        }
    });
}

/// When a driver looks next.
struct Next {
    /// The next action's due time.
    due: Option<SystemTime>,
    /// Running workflows whose close the schedule takes in.
    watch: Vec<(String, RunId)>,
}

/// One schedule's driver.
struct Driver {
    owner: Weak<Owner>,
    shared: Arc<Shared>,
    schedule_id: String,
    /// Given to the runs it waits on, so their close wakes it.
    wake: mpsc::UnboundedSender<Hold>,
    wakes: mpsc::UnboundedReceiver<Hold>,
}

impl Driver {
    async fn run(mut self, hold: Hold) {
        let shared = self.shared.clone();
        let clock = shared.clock.clone();
        let schedule_id = self.schedule_id.clone();
        let mut cancelled: HashSet<String> = HashSet::new();
        let mut backoff = FIRST_BACKOFF;
        // The hold of the wake-up that began this step: the clock stays
        // put until the step is done.
        let mut hold = Some(hold);
        loop {
            if shared.shutdown.is_cancelled() {
                return;
            }
            if !shared.store.owns(&schedule_id) {
                // Its shard went to another process, which drives it now.
                if let Some(owner) = self.owner.upgrade() {
                    owner.schedules.lock().remove(&schedule_id);
                }
                return;
            }
            let next = {
                let Some(owner) = self.owner.upgrade() else {
                    return;
                };
                let engine = Engine {
                    shared: owner.shared.clone(),
                    owner,
                    read_only: false,
                };
                step(&engine, &schedule_id, &mut cancelled).await
            };
            let next = match next {
                Ok(Some(next)) => {
                    backoff = FIRST_BACKOFF;
                    next
                }
                Ok(None) => {
                    if let Some(owner) = self.owner.upgrade() {
                        owner.schedules.lock().remove(&schedule_id);
                    }
                    return;
                }
                Err(err) => {
                    tracing::warn!(schedule_id, error = %err, "a schedule's step failed; trying again");
                    let wait = backoff.max(shared.store.retry_delay());
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    Next {
                        due: Some(clock.now() + wait),
                        watch: Vec::new(),
                    }
                }
            };
            if self.watch(&next.watch).await {
                // One closed before it could be watched: step again now.
                continue;
            }
            // A run of another process's shard closes there, unheard here:
            // looked at again now and then.
            let due = match next.watch.iter().any(|(id, _)| !shared.store.owns(id)) {
                true => {
                    let poll = clock.now() + REMOTE_WATCH;
                    Some(next.due.map_or(poll, |due| due.min(poll)))
                }
                false => next.due,
            };
            let deadline = due.map(|due| {
                let wait = due.duration_since(clock.now()).unwrap_or(Duration::ZERO);
                clock.instant() + wait
            });
            // The due time is registered before the hold goes, so a virtual
            // clock cannot skip past it in between.
            let sleep = clock.sleep_until_held(deadline);
            drop(hold.take());
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                Some(held) = self.wakes.recv() => hold = Some(held),
                held = sleep => hold = Some(held),
            }
            // Wake-ups that came meanwhile are answered by this step.
            while let Ok(extra) = self.wakes.try_recv() {
                drop(extra);
            }
        }
    }

    /// Asks to be woken when any of `runs` closes; true when one has closed
    /// already (or cannot be read: the next step looks again).
    async fn watch(&self, runs: &[(String, RunId)]) -> bool {
        for (_, run_id) in runs {
            self.shared.wait_close(*run_id, &self.wake);
        }
        for (workflow_id, run_id) in runs {
            match self.shared.store.run(*run_id, workflow_id).await {
                Ok(Some(record)) if !record.status.is_closed() => {}
                _ => return true,
            }
        }
        false
    }
}

/// One step, taken again while calls change the record meanwhile. `None`
/// once the schedule is deleted.
async fn step(
    engine: &Engine,
    schedule_id: &str,
    cancelled: &mut HashSet<String>,
) -> Result<Option<Next>, ScheduleError> {
    let shared = &engine.shared;
    for _ in 0..STEP_ATTEMPTS {
        let Some(record) = shared.store.schedule(schedule_id).await? else {
            return Ok(None);
        };
        let spec = match ScheduleSpec::from(&record.spec).compile() {
            Ok(spec) => spec,
            Err(err) => {
                // Checked at create and update; a stored one that no
                // longer parses (a zone this machine lacks) waits for an
                // update.
                tracing::warn!(schedule_id, error = %err, "a schedule's spec does not parse");
                return Ok(Some(Next {
                    due: None,
                    watch: Vec::new(),
                }));
            }
        };
        let mut record = record;
        let running = settle_running(shared, &mut record).await?;
        cancelled.retain(|id| running.iter().any(|(w, _)| w == id));
        let now = shared.clock.now();
        let expect = record.revision;
        let step = progress::step(record, &spec, now, running);
        if !step.terminate.is_empty() {
            for (workflow_id, _) in &step.terminate {
                let reason = format!("terminated by schedule {schedule_id:?} (overlap policy)");
                if let Err(err) = engine.terminate(workflow_id, &reason).await {
                    tracing::debug!(schedule_id, workflow_id, error = %err, "terminate-other");
                }
            }
            continue;
        }
        for (workflow_id, _) in &step.cancel {
            if cancelled.insert(workflow_id.clone())
                && let Err(err) = engine.cancel(workflow_id).await
            {
                tracing::debug!(schedule_id, workflow_id, error = %err, "cancel-other");
            }
        }
        if !step.changed {
            return Ok(Some(next(&step.record, &spec, step.more, now)));
        }
        match commit(shared, step, expect, now).await {
            Ok(next_record) => {
                let more = next_record.1;
                return Ok(Some(next(&next_record.0, &spec, more, now)));
            }
            Err(StoreError::ScheduleConflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ScheduleError::Client(crate::ClientError::Storage(format!(
        "schedule {schedule_id:?} kept changing while it took a step; it tries again"
    ))))
}

/// The record's running workflows that are still open, each as its
/// chain's latest run (a workflow that continued as new or was reset goes
/// on in another run, and still runs for the overlap policy); the ends of
/// those that closed are taken into `record` (last completion result, last
/// failure, pause on failure), oldest start first.
pub(super) async fn settle_running(
    shared: &Arc<Shared>,
    record: &mut ScheduleRecord,
) -> Result<Vec<(String, RunId)>, StoreError> {
    let mut running = Vec::with_capacity(record.running.len());
    for (workflow_id, run_id) in record.running.clone() {
        match shared.store.run(run_id, &workflow_id).await? {
            Some(run) if !run.status.is_closed() => {
                running.push((workflow_id, run_id));
                continue;
            }
            // Gone (deleted): nothing to take in.
            None => continue,
            Some(_) => {}
        }
        let Some((latest, run)) = shared.store.current_run(&workflow_id).await? else {
            continue;
        };
        if !run.status.is_closed() {
            running.push((workflow_id, latest));
            continue;
        }
        let outcome = match shared.store.last_event(latest, &workflow_id).await? {
            Some(Event {
                kind: EventKind::WorkflowCompleted { result },
                ..
            }) => ActionOutcome::Completed(result),
            Some(Event {
                kind: EventKind::WorkflowFailed { failure },
                ..
            }) => ActionOutcome::Failed(failure, WorkflowStatus::Failed),
            Some(Event {
                kind: EventKind::WorkflowTimedOut { timeout },
                ..
            }) => ActionOutcome::Failed(
                Failure::new(timeout.clone(), format!("the workflow hit its {timeout}")),
                WorkflowStatus::TimedOut,
            ),
            _ => ActionOutcome::Other,
        };
        progress::record_outcome(record, &workflow_id, outcome);
    }
    Ok(running)
}

/// Commits a step's record with its starts, and wakes the started runs.
async fn commit(
    shared: &Arc<Shared>,
    step: Step,
    expect: u64,
    now: SystemTime,
) -> Result<(ScheduleRecord, bool), StoreError> {
    let Step {
        mut record,
        starts: actions,
        more,
        ..
    } = step;
    record.revision = expect + 1;
    let mut starts = Vec::with_capacity(actions.len());
    let mut taken: HashSet<String> = HashSet::new();
    for action in &actions {
        let workflow_id = progress::workflow_id(&record.action.workflow_id, action.nominal);
        if !taken.insert(workflow_id.clone()) {
            // The same time twice in one step (a trigger and a backfill of
            // one instant): one start.
            continue;
        }
        // An ID that has run is not started again (the store refuses it
        // too, in the commit); looked up first so the record lists only
        // the runs this step starts.
        if shared.store.current_run(&workflow_id).await?.is_some() {
            tracing::warn!(
                schedule_id = record.schedule_id,
                workflow_id,
                "a schedule's action was not started: its workflow ID has a run already"
            );
            continue;
        }
        let run_id = RunId::new_time_ordered();
        starts.push(scheduled_start(
            &record,
            &workflow_id,
            action.nominal,
            action.overlap,
            run_id,
            now,
        )?);
        progress::record_start(&mut record, action, &workflow_id, run_id, now);
    }
    let op = ScheduleOp {
        schedule_id: record.schedule_id.clone(),
        expect: Some(expect),
        record: Some(EncodedSchedule::new(&record)?),
        starts,
        driver: true,
    };
    match shared.store.write(WriteOp::Schedule(Box::new(op))).await? {
        WriteOutcome::ScheduleWritten(outcomes) => {
            for outcome in outcomes {
                match outcome {
                    Ok(run_id) => {
                        let _ = shared.deliver(run_id, RunMsg::Wake);
                    }
                    Err(cause) => tracing::warn!(
                        schedule_id = record.schedule_id,
                        %cause,
                        "a schedule's action was not started"
                    ),
                }
            }
            Ok((record, more))
        }
        other => Err(StoreError::ScheduleConflict {
            schedule_id: record.schedule_id.clone(),
            message: format!("the store answered a schedule's write with {other:?}"),
        }),
    }
}

/// A start of the schedule's action for `nominal`, as its first event and
/// record (the run's first activation follows once it is loaded).
fn scheduled_start(
    record: &ScheduleRecord,
    workflow_id: &str,
    nominal: SystemTime,
    overlap: ScheduleOverlapPolicy,
    run_id: RunId,
    now: SystemTime,
) -> Result<ScheduledStart, StoreError> {
    let action = &record.action;
    let mut kinds = vec![EventKind::WorkflowStarted {
        workflow_type: action.workflow_type.clone(),
        workflow_id: workflow_id.to_string(),
        task_queue: action.task_queue.clone(),
        input: action.input.clone(),
        run_timeout: action.run_timeout,
        execution_timeout: action.execution_timeout,
    }];
    // What the schedule passes on (Temporal's last completion result and
    // last failure), except to overlapping runs: under AllowAll there is
    // no "last" (as in Temporal).
    let passes = record.last_completion_result.is_some() || record.last_failure.is_some();
    if passes && overlap != ScheduleOverlapPolicy::AllowAll {
        kinds.push(EventKind::WorkflowStartedBySchedule {
            schedule_id: record.schedule_id.clone(),
            last_completion_result: record.last_completion_result.clone(),
            last_failure: record.last_failure.clone(),
        });
    }
    let mut events = Vec::with_capacity(kinds.len());
    for (kind, event_id) in kinds.into_iter().zip(1..) {
        let event = Event {
            event_id,
            timestamp: now,
            kind,
        };
        events.push(codec::encode(&event).map_err(StoreError::encode)?);
    }
    let mut search_attributes = action.search_attributes.clone();
    search_attributes.insert(
        SCHEDULED_BY_ID,
        SearchAttributeValue::Keyword(record.schedule_id.clone()),
    );
    search_attributes.insert(
        SCHEDULED_START_TIME,
        SearchAttributeValue::Datetime(nominal),
    );
    let run = RunRecord {
        workflow_id: workflow_id.to_string(),
        workflow_type: action.workflow_type.clone(),
        task_queue: action.task_queue.clone(),
        status: WorkflowStatus::Running,
        start_time: now,
        close_time: None,
        history_len: events.len() as u64,
        search_attributes,
        memo: action.memo.clone(),
        paused: None,
        reset_from: None,
    };
    Ok(ScheduledStart {
        run_id,
        record: EncodedRecord::new(run)?,
        events,
        // Loaded at the next open if the process stops before it is woken.
        wake: WAKE_NOW,
    })
}

/// When to look next: at once when the step stopped at its bound, else at
/// the next action's due time (none while paused or out of actions), and
/// when a running workflow closes while actions wait behind it.
fn next(record: &ScheduleRecord, spec: &CompiledSpec, more: bool, now: SystemTime) -> Next {
    let due = if more {
        Some(now)
    } else if record.paused || record.remaining_actions == Some(0) {
        None
    } else {
        spec.next_after(record.high_water)
            .map(|nominal| spec.due(&record.schedule_id, nominal))
    };
    // Every close is taken in when it happens: the actions buffered behind
    // it may start, a failure pauses under pause_on_failure (and shows at
    // once), and the last completion result and last failure are stored
    // before retention may delete the history they come from.
    Next {
        due,
        watch: record.running.clone(),
    }
}
