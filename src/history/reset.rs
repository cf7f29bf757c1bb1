//! Where a run can be reset, and the history its new run starts with:
//! pure, so the engine, the CLI's checks and the tests agree.
//!
//! # Workflow task boundaries
//!
//! Temporal resets to a workflow task: the new run keeps the history up to
//! the events that started a task and re-runs that task under current code.
//! steadfast's workflow code runs in activations: one event wakes the code
//! (replay feeds it to the code), the code runs until it waits again, and
//! the commands it issued are recorded after that event. So a boundary is
//! the ID of an event that wakes the code, and resetting to it keeps events
//! `1..=id` and drops everything after, including the commands that
//! activation issued, which the new run's code issues again:
//!
//! - the first task: the last of the run's leading events
//!   (`WorkflowStarted`, a continued or child run's link, a signal-with-start
//!   signal), after which the code first runs;
//! - every later event that wakes the code: an activity's result or final
//!   failure, a local activity's end, a timer firing, a signal (not one
//!   recorded to be delivered with the next event), a cancellation request,
//!   an accepted update, a child's start, failed start, completion or close.
//!
//! Events after the run's close are never boundaries.

use std::collections::VecDeque;

use super::{Event, EventId, EventKind, RunId, SignalDelivery};

/// True for an event that wakes the workflow code: a boundary (see the
/// module).
pub(crate) fn wakes_code(kind: &EventKind) -> bool {
    match kind {
        EventKind::ActivityCompleted { .. }
        | EventKind::ActivityFailed {
            next_attempt_at: None,
            ..
        }
        | EventKind::LocalActivityRecorded { .. }
        | EventKind::TimerFired { .. }
        | EventKind::WorkflowSignaled { .. }
        | EventKind::WorkflowCancelRequested { .. }
        | EventKind::WorkflowUpdateAccepted { .. }
        | EventKind::ChildWorkflowStarted { .. }
        | EventKind::StartChildWorkflowFailed { .. }
        | EventKind::ChildWorkflowCompleted { .. }
        | EventKind::ChildWorkflowClosed { .. } => true,
        EventKind::WorkflowSignaledWithOptions { delivery, .. } => {
            *delivery == SignalDelivery::Alone
        }
        _ => false,
    }
}

/// True for the events a run begins with, before its code first runs.
fn leading(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::WorkflowStarted { .. }
            | EventKind::WorkflowContinuedFrom { .. }
            | EventKind::WorkflowStartedAsChild { .. }
            | EventKind::WorkflowStartedBySchedule { .. }
            | EventKind::WorkflowSignaledWithOptions {
                delivery: SignalDelivery::BeforeStart,
                ..
            }
    )
}

/// Every workflow task boundary of a history, in order (empty for a
/// history that does not begin with `WorkflowStarted`).
pub(crate) fn boundaries(history: &[Event]) -> Vec<EventId> {
    let Some(first) = history.first() else {
        return Vec::new();
    };
    if !matches!(first.kind, EventKind::WorkflowStarted { .. }) {
        return Vec::new();
    }
    let lead = history.iter().take_while(|e| leading(&e.kind)).count();
    let mut points = vec![history[lead - 1].event_id];
    for event in &history[lead..] {
        if event.kind.is_close() {
            break;
        }
        if wakes_code(&event.kind) {
            points.push(event.event_id);
        }
    }
    points
}

/// Why a history cannot be reset to the point asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResetRefusal {
    /// The event is not a boundary; `boundaries` lists those there are.
    NotABoundary {
        event_id: EventId,
        boundaries: Vec<EventId>,
    },
}

/// What a reset delivers again to the new run of what the old run received
/// after the point (Temporal's reapply types; both by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reapply {
    /// The signals, each delivered alone.
    pub(crate) signals: bool,
    /// The accepted updates: accepted again under the same update ID, so
    /// their handlers run again in the new run (Temporal turns them into
    /// admitted updates of the new run).
    pub(crate) updates: bool,
}

/// The first events of the run that resets `run_id` to boundary
/// `reset_event_id`: its history up to that event, as it was, then a
/// `WorkflowResetFrom`, then the last `ParentWorkflowReset` after the
/// point (a child keeps its parent's latest run), then what `reapply`
/// names of what the run received after the point (signals, accepted
/// updates), in the order received.
/// Times of the new events are `now`. Children open at the point are open
/// in the copy too: the reset's commit hands those still open to the new
/// run (it names it their parent), of an open run and of a closed one
/// alike; the new run records the closes of the others when it loads.
pub(crate) fn reset_history(
    run_id: RunId,
    history: &[Event],
    reset_event_id: EventId,
    reapply: Reapply,
    reason: &str,
    now: std::time::SystemTime,
) -> Result<Vec<Event>, ResetRefusal> {
    let points = boundaries(history);
    if !points.contains(&reset_event_id) {
        return Err(ResetRefusal::NotABoundary {
            event_id: reset_event_id,
            boundaries: points,
        });
    }
    let cut = history
        .iter()
        .position(|e| e.event_id == reset_event_id)
        .map_or(0, |i| i + 1);
    let (kept, after) = history.split_at(cut);
    let mut events: Vec<Event> = kept.to_vec();
    let mut kinds = vec![EventKind::WorkflowResetFrom {
        previous_run_id: run_id,
        reset_event_id,
        seed_run_id: seed_at(run_id, history, reset_event_id),
        reason: reason.to_string(),
    }];
    // A child's parent may have been reset after the point, naming its new
    // run (`ParentWorkflowReset`): the copy names that run again, or the new
    // run would report its close to, and take its parent-close policy from,
    // a closed parent run. Only the last counts (the fold keeps the last);
    // the code never sees it, so replay is unchanged.
    kinds.extend(
        after
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::ParentWorkflowReset { .. }))
            .map(|e| e.kind.clone()),
    );
    kinds.extend(after.iter().filter_map(|e| match &e.kind {
        EventKind::WorkflowSignaled { signal_name, input } if reapply.signals => {
            Some(EventKind::WorkflowSignaled {
                signal_name: signal_name.clone(),
                input: input.clone(),
            })
        }
        EventKind::WorkflowSignaledWithOptions {
            signal_name,
            input,
            request_id,
            ..
        } if reapply.signals => Some(EventKind::WorkflowSignaledWithOptions {
            signal_name: signal_name.clone(),
            input: input.clone(),
            request_id: request_id.clone(),
            delivery: SignalDelivery::Alone,
        }),
        EventKind::WorkflowUpdateAccepted { .. } if reapply.updates => Some(e.kind.clone()),
        _ => None,
    }));
    for kind in kinds {
        let event_id = events.len() as EventId + 1;
        events.push(Event {
            event_id,
            timestamp: now,
            kind,
        });
    }
    Ok(events)
}

/// The run whose seed `ctx.random` drew from at event `at` of `run_id`'s
/// history (see `workflow::replay::seeds`).
fn seed_at(run_id: RunId, history: &[Event], at: EventId) -> RunId {
    let mut seeds: VecDeque<RunId> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowResetFrom { seed_run_id, .. } => Some(*seed_run_id),
            _ => None,
        })
        .collect();
    seeds.push_back(run_id);
    let passed = history
        .iter()
        .filter(|e| e.event_id <= at && matches!(e.kind, EventKind::WorkflowResetFrom { .. }))
        .count();
    seeds.get(passed).copied().unwrap_or(run_id)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::history::Payload;

    const ALL: Reapply = Reapply {
        signals: true,
        updates: true,
    };

    fn history(kinds: Vec<EventKind>) -> Vec<Event> {
        kinds
            .into_iter()
            .zip(1..)
            .map(|(kind, event_id)| Event {
                event_id,
                timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(event_id),
                kind,
            })
            .collect()
    }

    fn signal(name: &str) -> EventKind {
        EventKind::WorkflowSignaled {
            signal_name: name.into(),
            input: Payload::encode(&1).unwrap(),
        }
    }

    fn sample() -> Vec<Event> {
        history(vec![
            EventKind::WorkflowStarted {
                workflow_type: "T".into(),
                workflow_id: "w".into(),
                task_queue: "q".into(),
                input: Payload::encode(&()).unwrap(),
                run_timeout: None,
                execution_timeout: None,
            },
            EventKind::TimerStarted {
                seq: 1,
                fire_at: SystemTime::UNIX_EPOCH,
            },
            EventKind::TimerFired { seq: 1 },
            EventKind::TimerStarted {
                seq: 2,
                fire_at: SystemTime::UNIX_EPOCH,
            },
            signal("a"),
            EventKind::WorkflowSignaledWithOptions {
                signal_name: "b".into(),
                input: Payload::encode(&2).unwrap(),
                request_id: Some("r".into()),
                delivery: SignalDelivery::WithNext,
            },
            EventKind::TimerFired { seq: 2 },
            EventKind::WorkflowCompleted {
                result: Payload::encode(&()).unwrap(),
            },
        ])
    }

    #[test]
    fn boundaries_are_the_first_task_and_every_event_that_wakes_the_code() {
        assert_eq!(boundaries(&sample()), vec![1, 3, 5, 7]);
        assert!(boundaries(&[]).is_empty());
    }

    #[test]
    fn a_reset_keeps_the_prefix_links_the_runs_and_reapplies_later_signals() {
        let run = RunId::from_u128(9);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let events = reset_history(run, &sample(), 3, ALL, "fix", now).unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(events[..3], sample()[..3]);
        assert!(matches!(
            &events[3].kind,
            EventKind::WorkflowResetFrom { previous_run_id, reset_event_id: 3, seed_run_id, .. }
                if *previous_run_id == run && *seed_run_id == run
        ));
        assert_eq!(events[4].kind.signal().map(|s| s.0), Some("a"));
        assert!(matches!(
            &events[5].kind,
            EventKind::WorkflowSignaledWithOptions { signal_name, delivery: SignalDelivery::Alone, request_id: Some(_), .. }
                if signal_name == "b"
        ));
        assert!(events.iter().zip(1..).all(|(e, id)| e.event_id == id));
        let without = reset_history(
            run,
            &sample(),
            3,
            Reapply {
                signals: false,
                updates: true,
            },
            "fix",
            now,
        )
        .unwrap();
        assert_eq!(without.len(), 4);
        assert_eq!(
            reset_history(run, &sample(), 4, ALL, "fix", now),
            Err(ResetRefusal::NotABoundary {
                event_id: 4,
                boundaries: vec![1, 3, 5, 7]
            })
        );
        // A reset of a reset run seeds its copy from the run that recorded it.
        let again = reset_history(RunId::from_u128(10), &events, 5, ALL, "x", now).unwrap();
        assert!(matches!(
            again[5].kind,
            EventKind::WorkflowResetFrom { seed_run_id, .. } if seed_run_id == RunId::from_u128(10)
        ));
        let before = reset_history(RunId::from_u128(10), &events, 3, ALL, "x", now).unwrap();
        assert!(matches!(
            before[3].kind,
            EventKind::WorkflowResetFrom { seed_run_id, .. } if seed_run_id == run
        ));
    }

    #[test]
    fn the_last_parent_link_after_the_point_is_carried_into_the_copy() {
        let mut kinds: Vec<EventKind> = sample().into_iter().map(|e| e.kind).collect();
        let link = |n| EventKind::ParentWorkflowReset {
            parent_run_id: RunId::from_u128(n),
        };
        kinds.insert(3, link(1));
        kinds.insert(5, link(2));
        let now = SystemTime::UNIX_EPOCH;
        let events = reset_history(RunId::from_u128(9), &history(kinds), 1, ALL, "x", now).unwrap();
        let links: Vec<&EventKind> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ParentWorkflowReset { .. }))
            .map(|e| &e.kind)
            .collect();
        assert_eq!(links, vec![&link(2)], "the last only");
        assert!(matches!(
            events[1].kind,
            EventKind::WorkflowResetFrom { .. }
        ));
        assert_eq!(events[2].kind, link(2), "before the reapplied signals");
    }

    #[test]
    fn updates_accepted_after_the_point_are_accepted_again_in_order_unless_excluded() {
        let mut kinds: Vec<EventKind> = sample().into_iter().map(|e| e.kind).collect();
        let accepted = EventKind::WorkflowUpdateAccepted {
            update_id: "u-1".into(),
            update_name: "add".into(),
            input: Payload::encode(&3).unwrap(),
        };
        // After the signal `a` (event 5), before the second timer fires.
        kinds.insert(5, accepted.clone());
        kinds.insert(
            6,
            EventKind::WorkflowUpdateCompleted {
                update_id: "u-1".into(),
                outcome: crate::history::UpdateOutcome::Success {
                    result: Payload::encode(&3).unwrap(),
                },
            },
        );
        let run = RunId::from_u128(9);
        let now = SystemTime::UNIX_EPOCH;
        let events = reset_history(run, &history(kinds.clone()), 3, ALL, "fix", now).unwrap();
        let reapplied: Vec<&EventKind> = events[4..].iter().map(|e| &e.kind).collect();
        assert_eq!(reapplied.len(), 3, "{reapplied:?}");
        assert_eq!(reapplied[0].signal().map(|s| s.0), Some("a"));
        assert_eq!(
            reapplied[1], &accepted,
            "accepted again, its completion not copied"
        );
        let signals_only = Reapply {
            signals: true,
            updates: false,
        };
        let without = reset_history(run, &history(kinds), 3, signals_only, "fix", now).unwrap();
        assert!(
            !without[4..]
                .iter()
                .any(|e| matches!(e.kind, EventKind::WorkflowUpdateAccepted { .. }))
        );
        assert_eq!(without.len(), 6);
    }
}
