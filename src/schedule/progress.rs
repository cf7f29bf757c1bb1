//! One step of a schedule, pure: from its stored record, its spec and the
//! time, what it starts, cancels or terminates now, and its new record.
//! The engine makes the starts and commits the record with them.

use std::time::{Duration, SystemTime};

use super::CompiledSpec;
use super::overlap::{self, BufferedAction};
use super::record::{RECENT_ACTIONS, RecentAction, ScheduleRecord};
use crate::history::{Failure, Payload, RunId, WorkflowStatus};

/// Most spec times one step takes, so that a long outage is caught up in
/// bounded steps (the next one follows at once).
const MAX_TAKEN_PER_STEP: usize = 1000;
/// Most times a step counts one by one as missed before it jumps the
/// high-water mark to the catch-up window's start.
const MAX_COUNTED_MISSED: usize = 100_000;

/// What one step decided.
#[derive(Debug)]
pub(crate) struct Step {
    /// The record as it stands after the step (without the starts: see
    /// [`record_start`]).
    pub(crate) record: ScheduleRecord,
    /// The actions to start now, in order.
    pub(crate) starts: Vec<BufferedAction>,
    /// The running workflows to ask to cancel.
    pub(crate) cancel: Vec<(String, RunId)>,
    /// The running workflows to terminate before the step is taken again.
    pub(crate) terminate: Vec<(String, RunId)>,
    /// Whether the record changed (a step that changes nothing commits
    /// nothing).
    pub(crate) changed: bool,
    /// More spec times are due at once (the step stopped at its bound).
    pub(crate) more: bool,
}

/// Takes the spec's times due by `now` into the buffer (or counts them
/// missed or unused), then decides the buffer. `running` is the record's
/// running list with the workflows found closed removed.
pub(crate) fn step(
    mut record: ScheduleRecord,
    spec: &CompiledSpec,
    now: SystemTime,
    running: Vec<(String, RunId)>,
) -> Step {
    let mut changed = running != record.running;
    record.running = running;
    let mut more = false;
    let acting = !record.paused && record.remaining_actions != Some(0);
    if acting {
        let window_start = now.checked_sub(record.catchup_window);
        let mut taken = 0;
        let mut counted = 0;
        while let Some(nominal) = spec.next_after(record.high_water) {
            let due = spec.due(&record.schedule_id, nominal);
            if due > now {
                break;
            }
            if window_start.is_some_and(|start| due < start) {
                record.high_water = nominal;
                record.missed_catchup_window += 1;
                changed = true;
                counted += 1;
                if counted >= MAX_COUNTED_MISSED {
                    // Too many to count: the rest before the window pass
                    // uncounted.
                    if let Some(start) = window_start
                        && start > record.high_water
                    {
                        record.high_water = start - Duration::from_nanos(1);
                    }
                    counted = 0;
                }
                continue;
            }
            if taken >= MAX_TAKEN_PER_STEP || record.remaining_actions == Some(0) {
                more = record.remaining_actions != Some(0);
                break;
            }
            record.high_water = nominal;
            changed = true;
            if let Some(left) = &mut record.remaining_actions {
                *left -= 1;
            }
            record.buffer.push(BufferedAction {
                nominal,
                overlap: record.overlap,
                manual: false,
            });
            taken += 1;
        }
    }
    let before = record.buffer.clone();
    let decided = decide_buffer(&mut record);
    if !decided.start.is_empty() || decided.counted || record.buffer != before {
        changed = true;
    }
    let terminate = if decided.terminate_running {
        record.running.clone()
    } else {
        Vec::new()
    };
    let cancel = if decided.cancel_running {
        record.running.clone()
    } else {
        Vec::new()
    };
    Step {
        record,
        starts: decided.start,
        cancel,
        terminate,
        changed,
        more,
    }
}

/// What [`decide_buffer`] decided.
struct Decided {
    start: Vec<BufferedAction>,
    cancel_running: bool,
    terminate_running: bool,
    /// An action was counted as skipped or dropped.
    counted: bool,
}

/// Decides the record's buffer (Temporal's `ProcessBuffer`, taken again
/// while it frees the slot): the overlap plan, except that a paused
/// schedule starts no action of its spec: one the plan would start now is
/// dropped (Temporal drops a buffered automated start it cannot take while
/// paused, `service/worker/scheduler/workflow.go` `processBuffer` with
/// `canTakeScheduledAction`), and the plan is taken again for the actions
/// behind it, since nothing started. Triggered and backfilled actions
/// start while paused, as in Temporal. Those still waiting behind a
/// running workflow stay buffered (the pause may end before it closes).
fn decide_buffer(record: &mut ScheduleRecord) -> Decided {
    let mut decided = Decided {
        start: Vec::new(),
        cancel_running: false,
        terminate_running: false,
        counted: false,
    };
    let mut running = !record.running.is_empty();
    let mut buffer = std::mem::take(&mut record.buffer);
    loop {
        let plan = overlap::plan(buffer, running);
        record.overlap_skipped += plan.skipped;
        record.buffer_dropped += plan.dropped;
        decided.counted |= plan.skipped > 0 || plan.dropped > 0;
        decided.cancel_running |= plan.cancel_running;
        decided.terminate_running |= plan.terminate_running;
        let (go, held): (Vec<_>, Vec<_>) = plan
            .start
            .into_iter()
            .partition(|action| action.manual || !record.paused);
        running |= !go.is_empty();
        decided.start.extend(go);
        buffer = plan.keep;
        if held.is_empty() {
            break;
        }
        for action in &held {
            tracing::info!(
                schedule_id = record.schedule_id,
                nominal = ?action.nominal,
                "a buffered action was dropped: the schedule is paused"
            );
        }
        if running || buffer.is_empty() {
            break;
        }
    }
    record.buffer = buffer;
    decided
}

/// How an action's workflow ended, as a schedule takes it in.
#[derive(Debug)]
pub(crate) enum ActionOutcome {
    Completed(Payload),
    /// Failed or timed out: the failure, and the status for the note.
    Failed(Failure, WorkflowStatus),
    /// Cancelled or terminated: neither sets nor clears anything.
    Other,
}

/// Takes in the end of an action's workflow (Temporal's rules): a
/// completion is the last completion result and clears the last failure;
/// a failure or timeout is the last failure and, under `pause_on_failure`,
/// pauses the schedule with a note naming the workflow. True when the
/// record changed.
pub(crate) fn record_outcome(
    record: &mut ScheduleRecord,
    workflow_id: &str,
    outcome: ActionOutcome,
) -> bool {
    match outcome {
        ActionOutcome::Completed(result) => {
            record.last_completion_result = Some(result);
            record.last_failure = None;
            true
        }
        ActionOutcome::Failed(failure, status) => {
            if record.pause_on_failure && !record.paused {
                record.paused = true;
                record.notes = format!(
                    "paused on failure: workflow {workflow_id:?} {status:?}: {}",
                    failure.message
                );
            }
            record.last_failure = Some(failure);
            true
        }
        ActionOutcome::Other => false,
    }
}

/// Records in `record` the start of `action` as `workflow_id`/`run_id`.
pub(crate) fn record_start(
    record: &mut ScheduleRecord,
    action: &BufferedAction,
    workflow_id: &str,
    run_id: RunId,
    now: SystemTime,
) {
    record.action_count += 1;
    record.running.push((workflow_id.to_string(), run_id));
    record.recent.push(RecentAction {
        nominal: action.nominal,
        started_at: now,
        workflow_id: workflow_id.to_string(),
        run_id,
    });
    let extra = record.recent.len().saturating_sub(RECENT_ACTIONS);
    record.recent.drain(..extra);
}

/// The workflow ID of the action for `nominal`: the action's ID, `-`, and
/// the time in RFC 3339 (UTC; fractions of a second only when there are).
pub(crate) fn workflow_id(prefix: &str, nominal: SystemTime) -> String {
    match jiff::Timestamp::try_from(nominal) {
        Ok(ts) => format!("{prefix}-{ts}"),
        Err(_) => {
            let nanos = nominal
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{prefix}-{nanos}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{BufferedAction, ScheduleOverlapPolicy, ScheduleSpec};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn every_second() -> (ScheduleRecord, CompiledSpec) {
        let record = ScheduleRecord::sample("s", 1, at(100));
        let spec = ScheduleSpec::from(&record.spec).compile().unwrap();
        (record, spec)
    }

    #[test]
    fn times_past_the_window_are_missed_and_the_rest_taken() {
        let (record, spec) = every_second();
        // Down from 100 to 130: 101..=119 are older than 10 s.
        let step = step(record, &spec, at(130), Vec::new());
        assert_eq!(step.record.missed_catchup_window, 19);
        // 120..=130 are inside the window: the first starts, the rest are
        // skipped behind it (overlap skip).
        assert_eq!(step.starts.len(), 1);
        assert_eq!(step.starts[0].nominal, at(120));
        assert_eq!(step.record.overlap_skipped, 10);
        assert_eq!(step.record.high_water, at(130));
    }

    #[test]
    fn paused_and_exhausted_schedules_take_nothing() {
        let (mut record, spec) = every_second();
        record.paused = true;
        let s = step(record.clone(), &spec, at(105), Vec::new());
        assert!(s.starts.is_empty() && !s.changed);
        record.paused = false;
        record.remaining_actions = Some(2);
        record.overlap = ScheduleOverlapPolicy::AllowAll;
        let s = step(record, &spec, at(105), Vec::new());
        assert_eq!(s.starts.len(), 2);
        assert_eq!(s.record.remaining_actions, Some(0));
    }

    #[test]
    fn a_paused_schedule_drops_its_buffered_actions_as_they_come_up_but_starts_manual_ones() {
        let (mut record, spec) = every_second();
        let buffered = |secs, overlap, manual| BufferedAction {
            nominal: at(secs),
            overlap,
            manual,
        };
        record.paused = true;
        record.buffer = vec![
            buffered(101, ScheduleOverlapPolicy::BufferAll, false),
            buffered(102, ScheduleOverlapPolicy::BufferAll, false),
            buffered(103, ScheduleOverlapPolicy::BufferAll, true),
            buffered(104, ScheduleOverlapPolicy::BufferAll, false),
        ];
        // Behind a running workflow they wait: the pause may end first.
        let running = vec![("s-1".to_string(), RunId::from_u128(1))];
        let s = step(record.clone(), &spec, at(105), running.clone());
        record.running = running;
        assert!(s.starts.is_empty());
        assert_eq!(s.record.buffer, record.buffer);
        // Once it closed: the spec's two are dropped, the triggered one
        // starts, and the one behind it waits for that one.
        let s = step(record.clone(), &spec, at(105), Vec::new());
        assert_eq!(s.starts, vec![record.buffer[2].clone()]);
        assert_eq!(s.record.buffer, vec![record.buffer[3].clone()]);
        assert!(s.changed);
        assert_eq!((s.record.overlap_skipped, s.record.buffer_dropped), (0, 0));
        // Buffer one: the one waiting is dropped.
        record.buffer = vec![buffered(101, ScheduleOverlapPolicy::BufferOne, false)];
        let s = step(record.clone(), &spec, at(105), Vec::new());
        assert!(s.starts.is_empty() && s.record.buffer.is_empty() && s.changed);
        // Unpaused, it would have started.
        record.paused = false;
        let s = step(record, &spec, at(101), Vec::new());
        assert_eq!(s.starts.len(), 1);
    }

    #[test]
    fn a_failure_pauses_under_pause_on_failure_and_a_completion_clears_it() {
        let (mut record, _) = every_second();
        let done = || ActionOutcome::Completed(Payload::encode(&1).unwrap());
        let failed =
            || ActionOutcome::Failed(Failure::new("Boom", "it broke"), WorkflowStatus::Failed);
        assert!(record_outcome(&mut record, "s-1", failed()));
        assert!(!record.paused, "pause_on_failure is off");
        assert!(record.last_failure.is_some());
        assert!(record_outcome(&mut record, "s-2", done()));
        assert_eq!(record.last_failure, None);
        assert!(!record_outcome(&mut record, "s-3", ActionOutcome::Other));
        assert!(record.last_completion_result.is_some());
        record.pause_on_failure = true;
        record_outcome(&mut record, "s-4", failed());
        assert!(record.paused);
        assert!(record.notes.contains("\"s-4\"") && record.notes.contains("it broke"));
        // The result stays for the next action.
        assert!(record.last_completion_result.is_some());
    }

    #[test]
    fn workflow_ids_end_with_the_nominal_time() {
        assert_eq!(
            workflow_id("s", at(1_796_169_600)),
            "s-2026-12-02T00:00:00Z"
        );
    }
}
