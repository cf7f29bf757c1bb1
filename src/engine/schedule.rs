//! The schedule calls: `create_schedule`, `schedule_handle`,
//! `describe_schedule`, `list_schedules`, and a [`ScheduleHandle`]'s
//! pause, unpause, trigger, backfill, update and delete (Temporal's names).
//!
//! Each call that changes a schedule rewrites its record conditionally on
//! the revision it read (retried when the schedule's driver or another
//! call wrote meanwhile), then wakes the driver, which acts on it.

use std::time::{Duration, SystemTime};

use super::{Engine, check_workflow_id, scheduler};
use crate::error::ClientError;
use crate::history::MAX_WORKFLOW_ID_LEN;
use crate::schedule::progress;
use crate::schedule::record::{ActionRecord, ScheduleRecord, SpecRecord};
use crate::schedule::{
    BufferedAction, MAX_BUFFERED_ACTIONS, MIN_CATCHUP_WINDOW, Schedule, ScheduleBackfill,
    ScheduleDescription, ScheduleError, ScheduleListEntry, ScheduleOverlapPolicy, ScheduleSpec,
};
use crate::store::{EncodedSchedule, ScheduleOp, StoreError, WriteOp, WriteOutcome};

/// Longest schedule ID, leaving room in workflow IDs for the time suffix.
pub const MAX_SCHEDULE_ID_LEN: usize = 200;
/// Room a workflow ID needs for the `-<RFC 3339 time>` suffix.
const SUFFIX_LEN: usize = 40;
/// Times a call rereads and writes again when the schedule changed meanwhile.
const WRITE_ATTEMPTS: usize = 32;
/// Schedules read per page by `list_schedules`.
const LIST_PAGE: usize = 1000;

impl Engine {
    /// Creates a schedule and starts acting on it; returns its handle once
    /// it is durable. Its first action is the spec's first time after now.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use steadfast::{Engine, Schedule, ScheduleAction, ScheduleIntervalSpec, ScheduleSpec,
    /// #     WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};
    /// const TICK: WorkflowDef<(), ()> = WorkflowDef::new("Tick");
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), steadfast::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::builder()
    ///     .workflow(TICK, |_ctx: WorkflowContext, ()| async { Ok::<_, WorkflowError>(()) })
    ///     .open(dir.path().join("ticks.steadfast"))
    ///     .await?;
    /// let action = ScheduleAction::start_workflow(TICK, "tick", &(), WorkflowOptions::new())
    ///     .map_err(steadfast::ClientError::from)?;
    /// let spec = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(60)));
    /// let handle = engine.create_schedule("every-minute", Schedule::new(action, spec)).await?;
    /// assert_eq!(handle.describe().await?.info.next_action_times.len(), 5);
    /// # engine.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ScheduleError::AlreadyRunning`] when the ID is taken,
    /// [`ScheduleError::InvalidSpec`] for a spec that does not parse (with
    /// the parser's message), [`ScheduleError::InvalidArgument`] for an
    /// empty or long ID, a catch-up window under ten seconds or an action
    /// workflow ID too long for its time suffix; [`ScheduleError::Client`]
    /// with [`ClientError::UnknownWorkflowType`] when the action's task
    /// queue is served here without that type, a read-only engine, or a
    /// storage failure.
    pub async fn create_schedule(
        &self,
        schedule_id: impl Into<String>,
        schedule: Schedule,
    ) -> Result<ScheduleHandle, ScheduleError> {
        self.writable("create_schedule")?;
        let schedule_id = schedule_id.into();
        check_schedule_id(&schedule_id)?;
        self.check_schedule(&schedule)?;
        let now = self.shared.clock.now();
        let record = ScheduleRecord {
            schedule_id: schedule_id.clone(),
            revision: 1,
            spec: SpecRecord::from(&schedule.spec),
            action: action_record(&schedule),
            overlap: schedule.policy.overlap,
            catchup_window: schedule.policy.catchup_window,
            paused: schedule.state.paused,
            notes: schedule.state.note.clone(),
            remaining_actions: schedule.state.remaining_actions,
            created_at: now,
            updated_at: None,
            high_water: now,
            buffer: Vec::new(),
            running: Vec::new(),
            recent: Vec::new(),
            action_count: 0,
            missed_catchup_window: 0,
            overlap_skipped: 0,
            buffer_dropped: 0,
            pause_on_failure: schedule.policy.pause_on_failure,
            last_completion_result: None,
            last_failure: None,
        };
        let op = ScheduleOp {
            schedule_id: schedule_id.clone(),
            expect: None,
            record: Some(EncodedSchedule::new(&record)?),
            starts: Vec::new(),
            driver: false,
        };
        match self
            .shared
            .store
            .write(WriteOp::Schedule(Box::new(op)))
            .await
        {
            Ok(WriteOutcome::ScheduleWritten(_)) => {}
            Ok(other) => {
                return Err(ClientError::Storage(format!(
                    "the store answered a schedule's create with {other:?}"
                ))
                .into());
            }
            Err(StoreError::ScheduleConflict { .. }) => {
                return Err(ScheduleError::AlreadyRunning { schedule_id });
            }
            Err(err) => return Err(err.into()),
        }
        scheduler::spawn(&self.owner, schedule_id.clone());
        Ok(self.schedule_handle(schedule_id))
    }

    /// A handle to the schedule `schedule_id` (not checked: its calls say
    /// when no schedule has the ID).
    pub fn schedule_handle(&self, schedule_id: impl Into<String>) -> ScheduleHandle {
        ScheduleHandle {
            engine: self.clone(),
            schedule_id: schedule_id.into(),
        }
    }

    /// A schedule with its progress: recent actions, next action times,
    /// running workflows and counters.
    ///
    /// # Errors
    /// [`ScheduleError::NotFound`]; [`ScheduleError::Client`] for a storage
    /// failure.
    pub async fn describe_schedule(
        &self,
        schedule_id: &str,
    ) -> Result<ScheduleDescription, ScheduleError> {
        let mut record = self.read_schedule(schedule_id).await?;
        // The record is as of the driver's last step: the runs that closed
        // since are taken in as its next step takes them, on this copy
        // (nothing is written): the running list, the last completion
        // result and the last failure. Those two are stored in the record,
        // so they outlive the histories they came from (retention). A
        // pause on failure shows once the driver has committed it.
        let (paused, notes) = (record.paused, record.notes.clone());
        record.running = scheduler::settle_running(&self.shared, &mut record).await?;
        (record.paused, record.notes) = (paused, notes);
        Ok(ScheduleDescription::from_record(&record))
    }

    /// Every schedule, in ID order.
    ///
    /// # Errors
    /// [`ScheduleError::Client`] for a storage failure.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleListEntry>, ScheduleError> {
        let mut entries = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .shared
                .store
                .schedules(after.as_deref(), LIST_PAGE)
                .await?;
            let full = page.len() == LIST_PAGE;
            after = page.last().map(|r| r.schedule_id.clone());
            entries.extend(page.iter().map(ScheduleListEntry::from_record));
            if !full {
                return Ok(entries);
            }
        }
    }

    async fn read_schedule(&self, schedule_id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.shared
            .store
            .schedule(schedule_id)
            .await?
            .ok_or_else(|| ScheduleError::NotFound {
                schedule_id: schedule_id.to_string(),
            })
    }

    fn check_schedule(&self, schedule: &Schedule) -> Result<(), ScheduleError> {
        schedule.spec.compile()?;
        if schedule.policy.catchup_window < MIN_CATCHUP_WINDOW {
            return Err(ScheduleError::InvalidArgument(format!(
                "the catch-up window is {:?}, under the minimum of {MIN_CATCHUP_WINDOW:?}",
                schedule.policy.catchup_window
            )));
        }
        let action = &schedule.action;
        check_workflow_id(&action.workflow_id)?;
        if action.workflow_id.len() + SUFFIX_LEN > MAX_WORKFLOW_ID_LEN {
            return Err(ScheduleError::InvalidArgument(format!(
                "the action's workflow ID is {} bytes; with its time suffix it must stay within \
                 {MAX_WORKFLOW_ID_LEN}: shorten it",
                action.workflow_id.len()
            )));
        }
        if action.task_queue.is_empty() {
            return Err(ScheduleError::InvalidArgument(
                "the action's task queue name is empty; name a task queue".into(),
            ));
        }
        if action.input.len() > self.shared.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: "the schedule action's input".into(),
                size: action.input.len(),
                limit: self.shared.max_payload_bytes,
            }
            .into());
        }
        action
            .search_attributes
            .check()
            .map_err(|e| ScheduleError::InvalidArgument(format!("the action: {e}")))?;
        if self.shared.has_queue(&action.task_queue)
            && self
                .shared
                .workflow_fn(&action.task_queue, &action.workflow_type)
                .is_none()
        {
            return Err(ClientError::UnknownWorkflowType {
                workflow_type: action.workflow_type.clone(),
                task_queue: action.task_queue.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Rewrites a schedule's record with `change`, conditionally on the
    /// revision read, again while it moved meanwhile; then wakes its driver.
    async fn change_schedule(
        &self,
        schedule_id: &str,
        call: &'static str,
        mut change: impl FnMut(&mut ScheduleRecord, SystemTime) -> Result<(), ScheduleError>,
    ) -> Result<(), ScheduleError> {
        self.writable(call)?;
        for _ in 0..WRITE_ATTEMPTS {
            let mut record = self.read_schedule(schedule_id).await?;
            let now = self.shared.clock.now();
            let expect = record.revision;
            change(&mut record, now)?;
            record.revision = expect + 1;
            record.updated_at = Some(now);
            let op = ScheduleOp {
                schedule_id: schedule_id.to_string(),
                expect: Some(expect),
                record: Some(EncodedSchedule::new(&record)?),
                starts: Vec::new(),
                driver: false,
            };
            match self
                .shared
                .store
                .write(WriteOp::Schedule(Box::new(op)))
                .await
            {
                Ok(_) => {
                    self.owner.schedules.poke(&self.shared.clock, schedule_id);
                    return Ok(());
                }
                Err(StoreError::ScheduleConflict { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ClientError::Storage(format!(
            "schedule {schedule_id:?} kept changing while {call} wrote it; try again"
        ))
        .into())
    }

    /// Removes a schedule; its running workflows go on.
    async fn delete_schedule(&self, schedule_id: &str) -> Result<(), ScheduleError> {
        self.writable("delete_schedule")?;
        for _ in 0..WRITE_ATTEMPTS {
            let record = self.read_schedule(schedule_id).await?;
            let op = ScheduleOp {
                schedule_id: schedule_id.to_string(),
                expect: Some(record.revision),
                record: None,
                starts: Vec::new(),
                driver: false,
            };
            match self
                .shared
                .store
                .write(WriteOp::Schedule(Box::new(op)))
                .await
            {
                Ok(_) => {
                    self.owner.schedules.poke(&self.shared.clock, schedule_id);
                    return Ok(());
                }
                Err(StoreError::ScheduleConflict { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ClientError::Storage(format!(
            "schedule {schedule_id:?} kept changing while it was deleted; try again"
        ))
        .into())
    }
}

/// A schedule of an engine, by ID (Temporal's `ScheduleHandle`). Cheap to
/// clone; it keeps the engine open.
#[derive(Clone, Debug)]
pub struct ScheduleHandle {
    engine: Engine,
    schedule_id: String,
}

impl ScheduleHandle {
    /// The schedule's ID.
    pub fn id(&self) -> &str {
        &self.schedule_id
    }

    /// See [`Engine::describe_schedule`].
    ///
    /// # Errors
    /// As [`Engine::describe_schedule`].
    pub async fn describe(&self) -> Result<ScheduleDescription, ScheduleError> {
        self.engine.describe_schedule(&self.schedule_id).await
    }

    /// Pauses the schedule with a note: the spec's times pass without
    /// actions until it is unpaused (trigger and backfill still act).
    /// Pausing a paused schedule only replaces the note.
    ///
    /// # Errors
    /// [`ScheduleError::NotFound`]; [`ScheduleError::Client`] for a
    /// read-only engine or a storage failure.
    pub async fn pause(&self, note: impl Into<String>) -> Result<(), ScheduleError> {
        let note = note.into();
        self.engine
            .change_schedule(&self.schedule_id, "pause_schedule", |r, _| {
                r.paused = true;
                r.notes = note.clone();
                Ok(())
            })
            .await
    }

    /// Unpauses the schedule with a note; its next action is the spec's
    /// first time after now (the times it was paused through are not made
    /// up for).
    ///
    /// # Errors
    /// As [`pause`](Self::pause).
    pub async fn unpause(&self, note: impl Into<String>) -> Result<(), ScheduleError> {
        let note = note.into();
        self.engine
            .change_schedule(&self.schedule_id, "unpause_schedule", |r, now| {
                if r.paused {
                    r.high_water = r.high_water.max(now);
                }
                r.paused = false;
                r.notes = note.clone();
                Ok(())
            })
            .await
    }

    /// Takes an action now, even while paused, under the schedule's overlap
    /// policy (or `overlap`, when given); its workflow ID has the current
    /// time as its suffix.
    ///
    /// # Errors
    /// As [`pause`](Self::pause).
    pub async fn trigger(
        &self,
        overlap: Option<ScheduleOverlapPolicy>,
    ) -> Result<(), ScheduleError> {
        self.engine
            .change_schedule(&self.schedule_id, "trigger_schedule", |r, now| {
                push_manual(
                    r,
                    BufferedAction {
                        nominal: now,
                        overlap: overlap.unwrap_or(r.overlap),
                        manual: true,
                    },
                )
            })
            .await
    }

    /// Takes the actions of past ranges, as if the schedule had acted then,
    /// each range under its own overlap policy. A nominal time whose
    /// workflow ID has run already (the schedule acted then) is not started
    /// again.
    ///
    /// # Errors
    /// [`ScheduleError::InvalidArgument`] for a range that ends before it
    /// starts, or with more than [`MAX_BUFFERED_ACTIONS`] times in all
    /// (split it); otherwise as [`pause`](Self::pause).
    pub async fn backfill(&self, backfills: Vec<ScheduleBackfill>) -> Result<(), ScheduleError> {
        let mut actions = Vec::new();
        let record = self.engine.read_schedule(&self.schedule_id).await?;
        let spec = ScheduleSpec::from(&record.spec).compile()?;
        for backfill in &backfills {
            if backfill.end_at < backfill.start_at {
                return Err(ScheduleError::InvalidArgument(
                    "a backfill ends before it starts; give an end at or after the start".into(),
                ));
            }
            let mut after = backfill
                .start_at
                .checked_sub(Duration::from_nanos(1))
                .unwrap_or(backfill.start_at);
            while let Some(nominal) = spec.next_after(after) {
                if nominal > backfill.end_at {
                    break;
                }
                if actions.len() >= MAX_BUFFERED_ACTIONS {
                    return Err(ScheduleError::InvalidArgument(format!(
                        "the backfill covers more than {MAX_BUFFERED_ACTIONS} action times; \
                         split it into shorter ranges"
                    )));
                }
                actions.push(BufferedAction {
                    nominal,
                    overlap: backfill.overlap,
                    manual: true,
                });
                after = nominal;
            }
        }
        self.engine
            .change_schedule(&self.schedule_id, "backfill_schedule", |r, _| {
                for action in &actions {
                    push_manual(r, action.clone())?;
                }
                Ok(())
            })
            .await
    }

    /// Changes the schedule: `update` gets its current configuration and
    /// state and changes what it likes (spec, action, policies, state); its
    /// progress (recent and running actions, counters) stays.
    ///
    /// # Errors
    /// As [`Engine::create_schedule`] for the changed schedule, and
    /// [`ScheduleError::NotFound`].
    pub async fn update(&self, mut update: impl FnMut(&mut Schedule)) -> Result<(), ScheduleError> {
        let engine = &self.engine;
        engine
            .change_schedule(&self.schedule_id, "update_schedule", |r, now| {
                let mut schedule = ScheduleDescription::from_record(r).schedule;
                update(&mut schedule);
                engine.check_schedule(&schedule)?;
                if r.paused && !schedule.state.paused {
                    r.high_water = r.high_water.max(now);
                }
                r.spec = SpecRecord::from(&schedule.spec);
                r.action = action_record(&schedule);
                r.overlap = schedule.policy.overlap;
                r.catchup_window = schedule.policy.catchup_window;
                r.pause_on_failure = schedule.policy.pause_on_failure;
                r.paused = schedule.state.paused;
                r.notes = schedule.state.note.clone();
                r.remaining_actions = schedule.state.remaining_actions;
                Ok(())
            })
            .await
    }

    /// Deletes the schedule; workflows it started go on.
    ///
    /// # Errors
    /// As [`pause`](Self::pause).
    pub async fn delete(&self) -> Result<(), ScheduleError> {
        self.engine.delete_schedule(&self.schedule_id).await
    }
}

/// Buffers a triggered or backfilled action, within the buffer's bound.
fn push_manual(record: &mut ScheduleRecord, action: BufferedAction) -> Result<(), ScheduleError> {
    if record.buffer.len() >= MAX_BUFFERED_ACTIONS {
        return Err(ScheduleError::InvalidArgument(format!(
            "schedule {:?} has {MAX_BUFFERED_ACTIONS} actions waiting already; wait for them \
             to start",
            record.schedule_id
        )));
    }
    record.buffer.push(action);
    Ok(())
}

fn action_record(schedule: &Schedule) -> ActionRecord {
    let a = &schedule.action;
    ActionRecord {
        workflow_type: a.workflow_type.clone(),
        workflow_id: a.workflow_id.clone(),
        task_queue: a.task_queue.clone(),
        input: a.input.clone(),
        run_timeout: a.run_timeout,
        execution_timeout: a.execution_timeout,
        memo: a.memo.clone(),
        search_attributes: a.search_attributes.clone(),
    }
}

fn check_schedule_id(schedule_id: &str) -> Result<(), ScheduleError> {
    if schedule_id.is_empty() {
        return Err(ScheduleError::InvalidArgument(
            "the schedule ID is empty; pass a non-empty ID".into(),
        ));
    }
    if schedule_id.len() > MAX_SCHEDULE_ID_LEN {
        return Err(ScheduleError::InvalidArgument(format!(
            "the schedule ID is {} bytes, over the limit of {MAX_SCHEDULE_ID_LEN}",
            schedule_id.len()
        )));
    }
    Ok(())
}

/// The workflow ID the action of `schedule` for `nominal` gets; for tests
/// and tools that look a schedule's runs up.
pub fn scheduled_workflow_id(action_workflow_id: &str, nominal: SystemTime) -> String {
    progress::workflow_id(action_workflow_id, nominal)
}
