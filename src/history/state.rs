//! The one fold of a run's history into its state (Temporal's "mutable
//! state", hence the name): the only code that decides what an event does to a run.
//!
//! The live actor applies each event it records, loading a run folds its
//! stored history, `describe` of a run without an actor folds it from the
//! file, and the fuzz targets fold the histories they make; all through
//! [`MutableState::apply`]. Pure: no tokio, no redb, no clock (every time comes
//! from the events).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::{
    ActivityOptionsRecord, Event, EventId, EventKind, Failure, ParentClosePolicy, ParentInfo,
    Payload, PendingChildInfo, PendingUpdateInfo, RunId, UnreadSignals, UpdateStatus,
    WorkflowStatus,
};

/// The failure type of an attempt cut off by a crash or a kill.
pub(crate) const INTERRUPTED: &str = "AttemptInterrupted";

/// Which limit a run deadline enforces, as named in `WorkflowTimedOut`.
pub(crate) const RUN_TIMEOUT: &str = "WorkflowRunTimeout";
/// See [`RUN_TIMEOUT`].
pub(crate) const EXECUTION_TIMEOUT: &str = "WorkflowExecutionTimeout";

/// An activity scheduled and not yet resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingActivity {
    pub(crate) activity_type: String,
    pub(crate) input: Payload,
    pub(crate) options: ActivityOptionsRecord,
    pub(crate) scheduled_at: SystemTime,
    /// The attempt running now, or the next one when `retry_at` is set.
    pub(crate) attempt: u32,
    /// When attempt `attempt` is (or was) due, while it has not begun:
    /// waiting for a retry's backoff, or for a worker slot.
    pub(crate) retry_at: Option<SystemTime>,
    /// When attempt `attempt` became (or becomes) due: the scheduling for
    /// the first, the planned retry time for later ones. Schedule-to-start
    /// counts from it.
    pub(crate) due_at: SystemTime,
    pub(crate) last_failure: Option<Failure>,
    pub(crate) last_heartbeat: Option<Payload>,
    /// Attempts in a row cut off by a crash; past the first, retries wait
    /// their backoff, so an activity that crashes the process cannot spin.
    pub(crate) interruptions: u32,
    /// The workflow cancelled it (`ActivityCancelRequested`): its failures
    /// are final.
    pub(crate) cancel_requested: bool,
}

/// A child workflow started (or being started) and not closed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingChild {
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    /// The child's first run, once its start is recorded.
    pub(crate) run_id: Option<RunId>,
    pub(crate) parent_close_policy: ParentClosePolicy,
    pub(crate) cancel_requested: bool,
}

/// A local activity's next attempt after a backoff over its retry
/// threshold, as its `LocalActivityBackoff` event says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LocalBackoff {
    /// The attempt that begins then.
    pub(crate) attempt: u32,
    /// When it begins.
    pub(crate) at: SystemTime,
    /// When the code asked for the local activity (schedule-to-close
    /// counts from it).
    pub(crate) scheduled_at: SystemTime,
    /// The local activity's registered name (what `describe` shows).
    pub(crate) activity_type: String,
    /// The failure of the attempt before (what `describe` shows).
    pub(crate) last_failure: Failure,
}

/// A run's state as its history so far says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MutableState {
    pub(crate) status: WorkflowStatus,
    /// The ID of the last event applied (0 before any).
    pub(crate) last_event_id: EventId,
    /// When the run started and closed (the events' timestamps).
    pub(crate) start_time: Option<SystemTime>,
    pub(crate) close_time: Option<SystemTime>,
    /// Activities scheduled and not resolved, by seq.
    pub(crate) activities: BTreeMap<u32, PendingActivity>,
    /// Timers started and not fired, by seq, with their due times.
    pub(crate) timers: BTreeMap<u32, SystemTime>,
    /// When the run or execution timeout ends the run, with which one.
    pub(crate) deadlines: Vec<(SystemTime, &'static str)>,
    /// Signals delivered so far (the workflow code reads them in order).
    pub(crate) signals_received: u64,
    /// The request IDs of the signals delivered so far: a signal with one
    /// of them is a retry, acknowledged without a second delivery.
    pub(crate) signal_request_ids: BTreeSet<String>,
    /// The signals the workflow returned without reading, as its close
    /// recorded them.
    pub(crate) unread_signals: Vec<UnreadSignals>,
    pub(crate) cancel_requested: bool,
    /// A cancellation request held while the run was paused (its reason),
    /// until the engine records the `WorkflowCancelRequested` the code
    /// sees: at the unpause, or at once in a run that is not paused (a
    /// reset's copy).
    pub(crate) cancel_deferred: Option<String>,
    /// The run's own run timeout, as its start gave it (a continue-as-new
    /// gives the next run the same).
    pub(crate) run_timeout: Option<std::time::Duration>,
    /// The run this one continues, when a continue-as-new started it.
    pub(crate) previous_run_id: Option<RunId>,
    /// The run that continues this one, once it continued as new.
    pub(crate) next_run_id: Option<RunId>,
    /// The updates accepted so far, by update ID: a later update with one
    /// of these IDs gets the first one's outcome (or waits for it).
    pub(crate) updates: BTreeMap<String, UpdateStatus>,
    /// Child workflows started and not closed, by the start's seq. Kept as
    /// they were when the run closes: what its parent-close policy applies to.
    pub(crate) children: BTreeMap<u32, PendingChild>,
    /// Local activities waiting out a recorded backoff
    /// (`LocalActivityBackoff`) for their next attempt, by seq; gone once
    /// their end is recorded (or the run is asked to cancel, which ends
    /// the code's wait on them).
    pub(crate) local_backoffs: BTreeMap<u32, LocalBackoff>,
    /// The parent, when this run is (part of) a child workflow.
    pub(crate) parent: Option<ParentInfo>,
    /// While an operator has the run paused: the reason given. No attempt
    /// begins and no timer fires meanwhile (see [`next_due`](Self::next_due)).
    pub(crate) paused: Option<String>,
    /// The run a reset replaced this one with, once it was reset.
    pub(crate) reset_to: Option<RunId>,
    /// The run this one was reset from, and the last event copied from it.
    pub(crate) reset_from: Option<(RunId, EventId)>,
}

impl Default for MutableState {
    fn default() -> Self {
        MutableState {
            status: WorkflowStatus::Running,
            last_event_id: 0,
            start_time: None,
            close_time: None,
            activities: BTreeMap::new(),
            timers: BTreeMap::new(),
            deadlines: Vec::new(),
            signals_received: 0,
            signal_request_ids: BTreeSet::new(),
            unread_signals: Vec::new(),
            cancel_requested: false,
            cancel_deferred: None,
            run_timeout: None,
            previous_run_id: None,
            next_run_id: None,
            updates: BTreeMap::new(),
            children: BTreeMap::new(),
            local_backoffs: BTreeMap::new(),
            parent: None,
            paused: None,
            reset_to: None,
            reset_from: None,
        }
    }
}

impl MutableState {
    /// The state after `history`.
    pub(crate) fn fold<'a>(history: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = MutableState::default();
        for event in history {
            state.apply(event);
        }
        state
    }

    /// Applies one event. Events of a closed run change nothing but the
    /// count (a damaged file can hold anything; the fold never panics).
    pub(crate) fn apply(&mut self, event: &Event) {
        self.last_event_id = event.event_id;
        if self.status.is_closed() {
            return;
        }
        let at = event.timestamp;
        match &event.kind {
            EventKind::WorkflowStarted {
                run_timeout,
                execution_timeout,
                ..
            } => {
                self.start_time = Some(at);
                self.run_timeout = *run_timeout;
                for (limit, timeout) in [
                    (run_timeout, RUN_TIMEOUT),
                    (execution_timeout, EXECUTION_TIMEOUT),
                ] {
                    // A deadline past what the clock holds is none.
                    if let Some(deadline) = limit.and_then(|l| at.checked_add(l)) {
                        self.deadlines.push((deadline, timeout));
                    }
                }
            }
            EventKind::ActivityScheduled {
                seq,
                activity_type,
                input,
                options,
            } => {
                let pending = PendingActivity {
                    activity_type: activity_type.clone(),
                    input: input.clone(),
                    options: options.clone(),
                    scheduled_at: at,
                    attempt: 1,
                    retry_at: None,
                    due_at: at,
                    last_failure: None,
                    last_heartbeat: None,
                    interruptions: 0,
                    cancel_requested: false,
                };
                self.activities.insert(*seq, pending);
            }
            EventKind::ActivityAttemptStarted { seq, attempt } => {
                if let Some(p) = self.activities.get_mut(seq)
                    && p.attempt == *attempt
                {
                    p.retry_at = None;
                }
            }
            // Not begun: due since now, as a retry whose time has come is.
            EventKind::ActivityAttemptWaiting { seq, attempt } => {
                if let Some(p) = self.activities.get_mut(seq)
                    && p.attempt == *attempt
                {
                    p.retry_at = Some(at);
                }
            }
            EventKind::ActivityFailed {
                seq,
                attempt,
                failure,
                next_attempt_at: Some(next),
            } => {
                if let Some(p) = self.activities.get_mut(seq) {
                    // Saturating: a damaged file can hold any number.
                    p.attempt = attempt.saturating_add(1);
                    p.retry_at = Some(*next);
                    p.due_at = *next;
                    p.last_failure = Some(failure.clone());
                    if failure.error_type == INTERRUPTED {
                        p.interruptions = p.interruptions.saturating_add(1);
                    } else {
                        p.interruptions = 0;
                    }
                }
            }
            EventKind::ActivityCompleted { seq, .. }
            | EventKind::ActivityFailed {
                seq,
                next_attempt_at: None,
                ..
            } => {
                self.activities.remove(seq);
            }
            EventKind::ActivityHeartbeat { seq, details, .. } => {
                if let Some(p) = self.activities.get_mut(seq) {
                    p.last_heartbeat = Some(details.clone());
                }
            }
            EventKind::TimerStarted { seq, fire_at } => {
                self.timers.insert(*seq, *fire_at);
            }
            EventKind::TimerFired { seq } | EventKind::TimerCanceled { seq } => {
                self.timers.remove(seq);
            }
            EventKind::WorkflowSignaled { .. } => {
                self.signals_received = self.signals_received.saturating_add(1);
            }
            EventKind::WorkflowSignaledWithOptions { request_id, .. } => {
                self.signals_received = self.signals_received.saturating_add(1);
                if let Some(id) = request_id {
                    self.signal_request_ids.insert(id.clone());
                }
            }
            EventKind::SignalsUnread { signals } => self.unread_signals = signals.clone(),
            EventKind::WorkflowCancelRequested { .. } => {
                // Everything pending is resolved as cancelled for the
                // workflow (Temporal's try-cancel).
                self.cancel_requested = true;
                self.cancel_deferred = None;
                self.activities.clear();
                self.timers.clear();
                self.local_backoffs.clear();
            }
            EventKind::LocalActivityBackoff {
                seq,
                activity_type,
                attempt,
                failure,
                next_attempt_at,
                original_scheduled_time,
            } => {
                let backoff = LocalBackoff {
                    attempt: attempt.saturating_add(1),
                    at: *next_attempt_at,
                    scheduled_at: *original_scheduled_time,
                    activity_type: activity_type.clone(),
                    last_failure: failure.clone(),
                };
                self.local_backoffs.insert(*seq, backoff);
            }
            EventKind::LocalActivityRecorded { seq, .. } => {
                self.local_backoffs.remove(seq);
            }
            // Only the first request counts, as for a delivered one.
            EventKind::WorkflowCancelRequestDeferred { reason } => {
                if !self.cancel_requested && self.cancel_deferred.is_none() {
                    self.cancel_deferred = Some(reason.clone());
                }
            }
            // What the code reads at start; nothing of the run's state.
            EventKind::WorkflowStartedBySchedule { .. } => {}
            EventKind::ParentWorkflowReset { parent_run_id } => {
                if let Some(parent) = &mut self.parent {
                    parent.run_id = *parent_run_id;
                }
            }
            // Visibility, not run state: search attributes are kept in the
            // run record, since those given at start are not in history.
            EventKind::SideEffectRecorded { .. }
            | EventKind::PatchRecorded { .. }
            | EventKind::SearchAttributesUpserted { .. } => {}
            EventKind::WorkflowCompleted { .. } => self.close(WorkflowStatus::Completed, at),
            EventKind::WorkflowFailed { .. } => self.close(WorkflowStatus::Failed, at),
            EventKind::WorkflowCancelled { .. } => self.close(WorkflowStatus::Cancelled, at),
            EventKind::WorkflowTerminated { .. } => self.close(WorkflowStatus::Terminated, at),
            EventKind::WorkflowTimedOut { .. } => self.close(WorkflowStatus::TimedOut, at),
            EventKind::WorkflowContinuedAsNew { new_run_id, .. } => {
                self.next_run_id = Some(*new_run_id);
                self.close(WorkflowStatus::ContinuedAsNew, at);
            }
            EventKind::WorkflowContinuedFrom { previous_run_id } => {
                self.previous_run_id = Some(*previous_run_id);
            }
            EventKind::ActivityCancelRequested { seq } => {
                if let Some(p) = self.activities.get_mut(seq) {
                    p.cancel_requested = true;
                }
            }
            EventKind::WorkflowUpdateAccepted {
                update_id,
                update_name,
                ..
            } => {
                self.updates
                    .entry(update_id.clone())
                    .or_insert_with(|| UpdateStatus::Accepted {
                        update_name: update_name.clone(),
                        event_id: event.event_id,
                        accepted_at: event.timestamp,
                    });
            }
            EventKind::WorkflowUpdateCompleted { update_id, outcome } => {
                if let Some(status) = self.updates.get_mut(update_id) {
                    *status = UpdateStatus::Completed(outcome.clone());
                }
            }
            EventKind::StartChildWorkflowInitiated {
                seq,
                workflow_id,
                workflow_type,
                options,
                ..
            } => {
                let child = PendingChild {
                    workflow_id: workflow_id.clone(),
                    workflow_type: workflow_type.clone(),
                    run_id: None,
                    parent_close_policy: options.parent_close_policy,
                    cancel_requested: false,
                };
                self.children.insert(*seq, child);
            }
            EventKind::ChildWorkflowStarted { seq, run_id } => {
                if let Some(child) = self.children.get_mut(seq) {
                    child.run_id = Some(*run_id);
                }
            }
            EventKind::StartChildWorkflowFailed { seq, .. }
            | EventKind::ChildWorkflowCompleted { seq, .. }
            | EventKind::ChildWorkflowClosed { seq, .. } => {
                self.children.remove(seq);
            }
            EventKind::ChildWorkflowCancelRequested { seq } => {
                if let Some(child) = self.children.get_mut(seq) {
                    child.cancel_requested = true;
                }
            }
            EventKind::WorkflowStartedAsChild {
                parent_workflow_id,
                parent_run_id,
                seq,
                parent_close_policy,
            } => {
                self.parent = Some(ParentInfo {
                    workflow_id: parent_workflow_id.clone(),
                    run_id: *parent_run_id,
                    seq: *seq,
                    parent_close_policy: *parent_close_policy,
                });
            }
            // Each is committed with its outcome (and the delivery to the
            // target, in the target's history): nothing stays pending.
            EventKind::SignalExternalWorkflowInitiated { .. }
            | EventKind::SignalChildWorkflowInitiated { .. }
            | EventKind::ExternalWorkflowSignaled { .. }
            | EventKind::SignalExternalWorkflowFailed { .. }
            | EventKind::RequestCancelExternalWorkflowInitiated { .. }
            | EventKind::ExternalWorkflowCancelRequested { .. }
            | EventKind::RequestCancelExternalWorkflowFailed { .. } => {}
            EventKind::WorkflowPaused { reason } => self.paused = Some(reason.clone()),
            EventKind::WorkflowUnpaused { .. } => self.paused = None,
            EventKind::WorkflowReset { new_run_id, .. } => {
                self.reset_to = Some(*new_run_id);
                // Temporal's reading: the reset run is terminated.
                self.close(WorkflowStatus::Terminated, at);
            }
            EventKind::WorkflowResetFrom {
                previous_run_id,
                reset_event_id,
                ..
            } => {
                self.reset_from = Some((*previous_run_id, *reset_event_id));
                // A reset run starts unpaused, whatever its copy says, and
                // its run timeout counts from the reset (a run timeout is
                // per run; counting it from the copied start would time the
                // new run out at once, temporalio/temporal#1913). The
                // execution timeout spans the chain and is kept.
                self.paused = None;
                self.deadlines.retain(|(_, which)| *which != RUN_TIMEOUT);
                if let Some(deadline) = self.run_timeout.and_then(|l| at.checked_add(l)) {
                    self.deadlines.push((deadline, RUN_TIMEOUT));
                }
            }
        }
    }

    fn close(&mut self, status: WorkflowStatus, at: SystemTime) {
        self.status = status;
        self.close_time = Some(at);
        // A closed run holds nothing back.
        self.paused = None;
        self.activities.clear();
        self.timers.clear();
        self.deadlines.clear();
    }

    /// When the execution timeout ends the chain, if it has one (it spans
    /// every run of a continue-as-new chain).
    pub(crate) fn execution_deadline(&self) -> Option<SystemTime> {
        self.deadlines
            .iter()
            .find(|(_, which)| *which == EXECUTION_TIMEOUT)
            .map(|(at, _)| *at)
    }

    /// The ID the next event takes. At the top of the range it stays
    /// there: the store refuses such an append, it never wraps.
    pub(crate) fn next_event_id(&self) -> EventId {
        self.last_event_id.saturating_add(1)
    }

    /// True when no attempt is in flight (every pending activity waits for
    /// a retry): the run may leave memory and lose nothing.
    pub(crate) fn idle(&self) -> bool {
        self.activities.values().all(|p| p.retry_at.is_some())
    }

    /// The earliest time the run needs the engine while idle: a timer, a
    /// retry (a local activity's recorded backoff too) or a deadline. While paused only a deadline (timeouts keep
    /// running, as in Temporal): timers and retries are held until the
    /// unpause, which acts on those that came due meanwhile.
    pub(crate) fn next_due(&self) -> Option<SystemTime> {
        let deadlines = self.deadlines.iter().map(|(at, _)| *at);
        if self.paused.is_some() {
            return deadlines.min();
        }
        self.timers
            .values()
            .copied()
            .chain(self.activities.values().filter_map(|p| p.retry_at))
            .chain(self.local_backoffs.values().map(|b| b.at))
            .chain(deadlines)
            .min()
    }

    /// The pending activities as `describe` shows them.
    pub(crate) fn pending_activities(&self) -> Vec<PendingActivityInfo> {
        let activities = self.activities.iter().map(|(seq, p)| PendingActivityInfo {
            seq: *seq,
            activity_type: p.activity_type.clone(),
            attempt: p.attempt,
            next_attempt_at: p.retry_at,
            last_failure: p.last_failure.clone(),
            last_heartbeat: p.last_heartbeat.clone(),
            cancel_requested: p.cancel_requested,
            local: false,
        });
        // A local activity is pending to an operator only while it waits
        // out a recorded backoff: its attempts run inside the workflow's
        // step and leave nothing in history until it ends.
        let local = self
            .local_backoffs
            .iter()
            .map(|(seq, b)| PendingActivityInfo {
                seq: *seq,
                activity_type: b.activity_type.clone(),
                attempt: b.attempt,
                next_attempt_at: Some(b.at),
                last_failure: Some(b.last_failure.clone()),
                last_heartbeat: None,
                cancel_requested: false,
                local: true,
            });
        let mut pending: Vec<PendingActivityInfo> = activities.chain(local).collect();
        pending.sort_by_key(|a| a.seq);
        pending
    }

    /// The pending child workflows as `describe` shows them (none once the
    /// run closed).
    pub(crate) fn pending_children(&self) -> Vec<PendingChildInfo> {
        if self.status.is_closed() {
            return Vec::new();
        }
        self.children
            .iter()
            .map(|(seq, c)| PendingChildInfo {
                seq: *seq,
                workflow_id: c.workflow_id.clone(),
                workflow_type: c.workflow_type.clone(),
                run_id: c.run_id,
                parent_close_policy: c.parent_close_policy,
                cancel_requested: c.cancel_requested,
            })
            .collect()
    }

    /// The updates accepted and not completed, in acceptance order, as
    /// `describe` shows them (none for a closed run: it aborted them).
    pub(crate) fn pending_updates(&self) -> Vec<PendingUpdateInfo> {
        if self.status.is_closed() {
            return Vec::new();
        }
        let mut pending: Vec<PendingUpdateInfo> = self
            .updates
            .iter()
            .filter_map(|(update_id, status)| match status {
                UpdateStatus::Accepted {
                    update_name,
                    event_id,
                    accepted_at,
                } => Some(PendingUpdateInfo {
                    update_id: update_id.clone(),
                    update_name: update_name.clone(),
                    accepted_event_id: *event_id,
                    accepted_at: *accepted_at,
                }),
                UpdateStatus::Completed(_) => None,
            })
            .collect();
        pending.sort_by_key(|u| u.accepted_event_id);
        pending
    }

    /// The pending timers as `describe` shows them.
    pub(crate) fn pending_timers(&self) -> Vec<PendingTimerInfo> {
        self.timers
            .iter()
            .map(|(seq, at)| PendingTimerInfo {
                seq: *seq,
                fire_at: *at,
            })
            .collect()
    }
}

/// An activity waiting for its result, as [`describe`](crate::Engine::describe) shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PendingActivityInfo {
    /// Command sequence number in the run.
    pub seq: u32,
    /// The activity's name.
    pub activity_type: String,
    /// The attempt running, or the next one while it has not begun.
    pub attempt: u32,
    /// While attempt `attempt` has not begun: when it is due (a retry's
    /// backoff), or since when it has been due and waits for a worker slot
    /// or a worker of its task queue. `None` while it runs.
    pub next_attempt_at: Option<SystemTime>,
    /// The last failed attempt's failure.
    pub last_failure: Option<Failure>,
    /// The last recorded heartbeat details.
    pub last_heartbeat: Option<Payload>,
    /// True once the workflow cancelled it (it runs on to its end).
    pub cancel_requested: bool,
    /// True for a local activity
    /// ([`execute_local_activity`](crate::WorkflowContext::execute_local_activity)),
    /// shown only while it waits out a backoff longer than its
    /// `local_retry_threshold` (recorded as `LocalActivityBackoff`):
    /// `attempt` is the next one, `next_attempt_at` when it begins (once
    /// that is past, the attempt may be running: a local activity's
    /// attempts leave nothing in history until it ends) and
    /// `last_failure` the failure of the attempt before.
    pub local: bool,
}

/// A durable timer that has not fired, as [`describe`](crate::Engine::describe) shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PendingTimerInfo {
    /// Command sequence number in the run.
    pub seq: u32,
    /// When it fires.
    pub fire_at: SystemTime,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn history(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Event {
                event_id: i as u64 + 1,
                timestamp: at(100 + i as u64),
                kind,
            })
            .collect()
    }

    fn started(run_timeout: Option<Duration>) -> EventKind {
        EventKind::WorkflowStarted {
            workflow_type: "T".into(),
            workflow_id: "w".into(),
            task_queue: "q".into(),
            input: Payload::encode(&()).unwrap(),
            run_timeout,
            execution_timeout: None,
        }
    }

    fn scheduled(seq: u32) -> EventKind {
        EventKind::ActivityScheduled {
            seq,
            activity_type: "a".into(),
            input: Payload::encode(&seq).unwrap(),
            options: ActivityOptionsRecord {
                schedule_to_close_timeout: None,
                start_to_close_timeout: Some(Duration::from_secs(1)),
                initial_interval: Duration::from_secs(1),
                backoff_coefficient: 2.0,
                maximum_interval: Duration::from_secs(100),
                maximum_attempts: 0,
                non_retryable_error_types: Vec::new(),
                heartbeat_timeout: None,
                schedule_to_start_timeout: None,
                task_queue: None,
            },
        }
    }

    fn failure(error_type: &str) -> Failure {
        Failure::new(error_type, "m")
    }

    #[test]
    fn attempts_retries_heartbeats_and_timers() {
        let state = MutableState::fold(&history(vec![
            started(Some(Duration::from_secs(60))),
            scheduled(1),
            EventKind::ActivityHeartbeat {
                seq: 1,
                attempt: 1,
                details: Payload::encode(&"half").unwrap(),
            },
            EventKind::ActivityFailed {
                seq: 1,
                attempt: 1,
                failure: failure("Boom"),
                next_attempt_at: Some(at(500)),
            },
            EventKind::TimerStarted {
                seq: 2,
                fire_at: at(300),
            },
            scheduled(3),
            EventKind::ActivityCompleted {
                seq: 3,
                attempt: 1,
                result: Payload::encode(&()).unwrap(),
            },
            EventKind::WorkflowSignaled {
                signal_name: "s".into(),
                input: Payload::encode(&1).unwrap(),
            },
        ]));
        assert_eq!(state.status, WorkflowStatus::Running);
        assert_eq!(state.next_event_id(), 9);
        assert_eq!(state.deadlines, vec![(at(160), RUN_TIMEOUT)]);
        assert_eq!(state.signals_received, 1);
        let pending = state.pending_activities();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].attempt, 2);
        assert_eq!(pending[0].next_attempt_at, Some(at(500)));
        assert_eq!(pending[0].last_failure, Some(failure("Boom")));
        assert_eq!(
            pending[0].last_heartbeat,
            Some(Payload::encode(&"half").unwrap())
        );
        assert_eq!(state.pending_timers()[0].fire_at, at(300));
        assert!(state.idle());
        assert_eq!(state.next_due(), Some(at(160)));
    }

    #[test]
    fn a_started_retry_is_in_flight_and_interruptions_count() {
        let mut state = MutableState::fold(&history(vec![
            started(None),
            scheduled(1),
            EventKind::ActivityFailed {
                seq: 1,
                attempt: 1,
                failure: failure(INTERRUPTED),
                next_attempt_at: Some(at(1)),
            },
            EventKind::ActivityAttemptStarted { seq: 1, attempt: 2 },
        ]));
        assert!(!state.idle());
        assert_eq!(state.activities[&1].interruptions, 1);
        // A stale attempt number changes nothing.
        state.apply(&Event {
            event_id: 5,
            timestamp: at(200),
            kind: EventKind::ActivityAttemptStarted { seq: 1, attempt: 7 },
        });
        assert_eq!(state.activities[&1].attempt, 2);
    }

    #[test]
    fn format_3_events_cancel_timers_keep_request_ids_and_unread_signals() {
        let unread = vec![UnreadSignals {
            signal_name: "s".into(),
            count: 2,
        }];
        let state = MutableState::fold(&history(vec![
            started(None),
            EventKind::TimerStarted {
                seq: 1,
                fire_at: at(300),
            },
            EventKind::TimerCanceled { seq: 1 },
            EventKind::WorkflowSignaledWithOptions {
                signal_name: "s".into(),
                input: Payload::encode(&1).unwrap(),
                request_id: Some("r".into()),
                delivery: super::super::SignalDelivery::Alone,
            },
            EventKind::SignalsUnread {
                signals: unread.clone(),
            },
            EventKind::WorkflowCompleted {
                result: Payload::encode(&()).unwrap(),
            },
        ]));
        assert!(state.pending_timers().is_empty());
        assert_eq!(state.next_due(), None);
        assert_eq!(state.signals_received, 1);
        assert!(state.signal_request_ids.contains("r"));
        assert_eq!(state.unread_signals, unread);
        assert_eq!(state.status, WorkflowStatus::Completed);
    }

    #[test]
    fn a_continue_as_new_closes_the_run_and_names_both_neighbours() {
        let previous = RunId::from_u128(1);
        let next = RunId::from_u128(3);
        let state = MutableState::fold(&history(vec![
            started(Some(Duration::from_secs(5))),
            EventKind::WorkflowContinuedFrom {
                previous_run_id: previous,
            },
            EventKind::TimerStarted {
                seq: 1,
                fire_at: at(300),
            },
            EventKind::WorkflowContinuedAsNew {
                new_run_id: next,
                workflow_type: "T".into(),
                task_queue: "q".into(),
                input: Payload::encode(&1).unwrap(),
                signals: Vec::new(),
                search_attributes: None,
                memo: None,
            },
        ]));
        assert_eq!(state.status, WorkflowStatus::ContinuedAsNew);
        assert_eq!(state.previous_run_id, Some(previous));
        assert_eq!(state.next_run_id, Some(next));
        assert_eq!(state.run_timeout, Some(Duration::from_secs(5)));
        assert!(state.timers.is_empty() && state.deadlines.is_empty());
        assert_eq!(state.close_time, Some(at(103)));
    }

    #[test]
    fn a_cancel_request_marks_the_activity_and_keeps_it_pending() {
        let state = MutableState::fold(&history(vec![
            started(None),
            scheduled(1),
            scheduled(2),
            EventKind::ActivityCancelRequested { seq: 1 },
            // A request for an activity no longer pending changes nothing.
            EventKind::ActivityCancelRequested { seq: 9 },
        ]));
        assert!(state.activities[&1].cancel_requested);
        assert!(!state.activities[&2].cancel_requested);
        let pending = state.pending_activities();
        assert_eq!(pending.len(), 2);
        assert!(pending[0].cancel_requested);
        assert_eq!(state.activities.len(), 2);
    }

    #[test]
    fn updates_are_accepted_then_completed_and_an_unknown_completion_changes_nothing() {
        let outcome = super::super::UpdateOutcome::Success {
            result: Payload::encode(&30).unwrap(),
        };
        let state = MutableState::fold(&history(vec![
            started(None),
            EventKind::WorkflowUpdateAccepted {
                update_id: "a".into(),
                update_name: "u".into(),
                input: Payload::encode(&1).unwrap(),
            },
            EventKind::WorkflowUpdateAccepted {
                update_id: "b".into(),
                update_name: "u".into(),
                input: Payload::encode(&2).unwrap(),
            },
            EventKind::WorkflowUpdateCompleted {
                update_id: "a".into(),
                outcome: outcome.clone(),
            },
            EventKind::WorkflowUpdateCompleted {
                update_id: "zzz".into(),
                outcome: outcome.clone(),
            },
        ]));
        assert_eq!(state.updates["a"], UpdateStatus::Completed(outcome));
        assert!(matches!(
            &state.updates["b"],
            UpdateStatus::Accepted { update_name, .. } if update_name == "u"
        ));
        let pending = state.pending_updates();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].update_id, "b");
        assert_eq!(state.updates.len(), 2);
    }

    #[test]
    fn children_are_pending_from_their_start_to_their_close_and_a_child_names_its_parent() {
        let initiated = |seq: u32| EventKind::StartChildWorkflowInitiated {
            seq,
            workflow_id: format!("c{seq}"),
            workflow_type: "T".into(),
            task_queue: "q".into(),
            input: Payload::encode(&()).unwrap(),
            options: super::super::ChildOptionsRecord {
                run_timeout: None,
                execution_timeout: None,
                parent_close_policy: ParentClosePolicy::RequestCancel,
                id_reuse: super::super::ChildIdReuse::AllowDuplicate,
                search_attributes: super::super::SearchAttributes::new(),
                memo: None,
            },
        };
        let mut state = MutableState::fold(&history(vec![
            started(None),
            initiated(1),
            EventKind::ChildWorkflowStarted {
                seq: 1,
                run_id: RunId::from_u128(5),
            },
            initiated(2),
            EventKind::StartChildWorkflowFailed {
                seq: 2,
                cause: super::super::StartChildFailedCause::AlreadyRunning {
                    run_id: RunId::from_u128(6),
                },
            },
            EventKind::ChildWorkflowCancelRequested { seq: 1 },
            // A parent's cancellation leaves its children pending.
            EventKind::WorkflowCancelRequested { reason: "r".into() },
        ]));
        let pending = state.pending_children();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].run_id, Some(RunId::from_u128(5)));
        assert!(pending[0].cancel_requested);
        assert_eq!(
            pending[0].parent_close_policy,
            ParentClosePolicy::RequestCancel
        );
        state.apply(&Event {
            event_id: 8,
            timestamp: at(300),
            kind: EventKind::ChildWorkflowClosed {
                seq: 1,
                status: WorkflowStatus::Cancelled,
                failure: failure("Cancelled"),
            },
        });
        assert!(state.children.is_empty());

        let child = MutableState::fold(&history(vec![
            started(None),
            EventKind::WorkflowStartedAsChild {
                parent_workflow_id: "p".into(),
                parent_run_id: RunId::from_u128(9),
                seq: 3,
                parent_close_policy: ParentClosePolicy::Terminate,
            },
        ]));
        let parent = child.parent.unwrap();
        assert_eq!((parent.workflow_id.as_str(), parent.seq), ("p", 3));
        assert_eq!(parent.run_id, RunId::from_u128(9));
    }

    #[test]
    fn a_pause_holds_timers_and_retries_and_a_reset_links_both_runs() {
        let mut state = MutableState::fold(&history(vec![
            started(Some(Duration::from_secs(5))),
            EventKind::TimerStarted {
                seq: 1,
                fire_at: at(300),
            },
            EventKind::WorkflowPaused {
                reason: "look".into(),
            },
        ]));
        assert_eq!(state.paused.as_deref(), Some("look"));
        // Only the run timeout is due while paused.
        assert_eq!(state.next_due(), Some(at(105)));
        state.apply(&Event {
            event_id: 4,
            timestamp: at(200),
            kind: EventKind::WorkflowUnpaused {
                reason: "ok".into(),
            },
        });
        assert_eq!(state.paused, None);
        assert_eq!(state.next_due(), Some(at(105)));

        let copied = MutableState::fold(&history(vec![
            started(Some(Duration::from_secs(5))),
            EventKind::WorkflowPaused { reason: "p".into() },
            EventKind::WorkflowResetFrom {
                previous_run_id: RunId::from_u128(1),
                reset_event_id: 2,
                seed_run_id: RunId::from_u128(1),
                reason: "fix".into(),
            },
        ]));
        assert_eq!(copied.paused, None);
        assert_eq!(copied.reset_from, Some((RunId::from_u128(1), 2)));
        // The run timeout counts from the reset (event 3, at 102).
        assert_eq!(copied.deadlines, vec![(at(107), RUN_TIMEOUT)]);

        state.apply(&Event {
            event_id: 5,
            timestamp: at(400),
            kind: EventKind::WorkflowReset {
                new_run_id: RunId::from_u128(7),
                reset_event_id: 2,
                reason: "fix".into(),
            },
        });
        assert_eq!(state.status, WorkflowStatus::Terminated);
        assert_eq!(state.reset_to, Some(RunId::from_u128(7)));
        assert!(state.timers.is_empty());
    }

    #[test]
    fn a_held_cancellation_keeps_the_first_reason_and_leaves_pending_work_alone() {
        let state = MutableState::fold(&history(vec![
            started(None),
            EventKind::TimerStarted {
                seq: 1,
                fire_at: at(300),
            },
            EventKind::WorkflowPaused { reason: "p".into() },
            EventKind::WorkflowCancelRequestDeferred {
                reason: "first".into(),
            },
            EventKind::WorkflowCancelRequestDeferred {
                reason: "second".into(),
            },
        ]));
        assert_eq!(state.cancel_deferred.as_deref(), Some("first"));
        assert!(!state.cancel_requested);
        assert_eq!(state.timers.len(), 1, "the code has not seen it");
        let mut delivered = state.clone();
        delivered.apply(&Event {
            event_id: 6,
            timestamp: at(200),
            kind: EventKind::WorkflowCancelRequested {
                reason: "first".into(),
            },
        });
        assert!(delivered.cancel_requested && delivered.cancel_deferred.is_none());
    }

    #[test]
    fn a_parent_reset_names_the_childs_new_parent_run() {
        let state = MutableState::fold(&history(vec![
            started(None),
            EventKind::WorkflowStartedAsChild {
                parent_workflow_id: "p".into(),
                parent_run_id: RunId::from_u128(1),
                seq: 3,
                parent_close_policy: ParentClosePolicy::Terminate,
            },
            EventKind::ParentWorkflowReset {
                parent_run_id: RunId::from_u128(2),
            },
        ]));
        let parent = state.parent.expect("a child");
        assert_eq!((parent.run_id, parent.seq), (RunId::from_u128(2), 3));
        assert_eq!(parent.workflow_id, "p");
    }

    #[test]
    fn cancellation_clears_pending_and_a_close_ends_everything() {
        let mut state = MutableState::fold(&history(vec![
            started(Some(Duration::from_secs(5))),
            scheduled(1),
            EventKind::TimerStarted {
                seq: 2,
                fire_at: at(300),
            },
            EventKind::WorkflowCancelRequested { reason: "r".into() },
        ]));
        assert!(state.cancel_requested);
        assert!(state.activities.is_empty() && state.timers.is_empty());
        state.apply(&Event {
            event_id: 5,
            timestamp: at(400),
            kind: EventKind::WorkflowTerminated { reason: "r".into() },
        });
        assert_eq!(state.status, WorkflowStatus::Terminated);
        assert_eq!(state.close_time, Some(at(400)));
        assert!(state.deadlines.is_empty());
        // Nothing after the close changes the state but the count.
        state.apply(&Event {
            event_id: 6,
            timestamp: at(500),
            kind: scheduled(9),
        });
        assert!(state.activities.is_empty());
        assert_eq!(state.status, WorkflowStatus::Terminated);
        assert_eq!(state.last_event_id, 6);
    }
}
