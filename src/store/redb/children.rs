//! Writes of child workflows: a parent's step with the starts it initiates,
//! in one transaction (see `store::children`).

use redb::ReadableTable;

use super::redb_err;
use super::writer::{Tables, append, apply, close, set_wake, start};
use crate::codec;
use crate::history::{
    Event, EventKind, MutableState, ParentClosePolicy, RunId, StartChildFailedCause, WorkflowStatus,
};
use crate::store::{
    ChildActionKind, CloseParentOp, ReuseRule, RunRecord, StartChildrenOp, StoreError, WAKE_NOW,
    WriteOutcome, child_action,
};

/// Generations of children a close reaches at most: its children, theirs
/// (when it terminates them), and so on.
const MAX_GENERATIONS: usize = 16;

/// Applies a parent's step and its children's starts. Every refusal comes
/// before the first write: the starts' outcomes are decided and their
/// events encoded first (reads only), then the parent's append (refused
/// before it writes), then the starts and the outcome events.
pub(super) fn start_children(
    t: &mut Tables<'_>,
    op: &StartChildrenOp,
) -> Result<WriteOutcome, StoreError> {
    let conflict = |message: &str| StoreError::Conflict {
        run_id: op.run_id,
        message: message.to_string(),
    };
    if op
        .record
        .as_ref()
        .is_some_and(|r| r.record.status.is_closed())
    {
        return Err(conflict("a step that closes the run starts no child"));
    }
    let Some(first_outcome) = op.expect_next.checked_add(op.events.len() as u64) else {
        return Err(conflict("the history is at the end of its range"));
    };
    // Children started earlier in this op, by workflow ID: a second start
    // of the same ID finds the first one running.
    let mut started: Vec<(&str, RunId)> = Vec::new();
    let mut outcomes = Vec::with_capacity(op.starts.len());
    for (i, child) in op.starts.iter().enumerate() {
        let workflow_id = child.record.record.workflow_id.as_str();
        let cause = match started.iter().find(|(id, _)| *id == workflow_id) {
            Some((_, run_id)) => Some(StartChildFailedCause::AlreadyRunning { run_id: *run_id }),
            None => refusal(t, workflow_id, child.reuse)?,
        };
        let kind = match cause {
            Some(cause) => EventKind::StartChildWorkflowFailed {
                seq: child.seq,
                cause,
            },
            None => {
                if t.runs
                    .get(child.run_id.as_u128())
                    .map_err(redb_err)?
                    .is_some()
                {
                    return Err(StoreError::Conflict {
                        run_id: child.run_id,
                        message: "a run with this ID is already stored".into(),
                    });
                }
                started.push((workflow_id, child.run_id));
                EventKind::ChildWorkflowStarted {
                    seq: child.seq,
                    run_id: child.run_id,
                }
            }
        };
        let event = Event {
            event_id: first_outcome + i as u64,
            timestamp: child.at,
            kind,
        };
        let bytes = codec::encode(&event).map_err(StoreError::encode)?;
        outcomes.push((event, bytes));
    }
    match append(
        t,
        op.run_id,
        op.record.as_ref(),
        op.expect_next,
        &op.events,
        op.wake,
    )? {
        WriteOutcome::Appended => {}
        other => return Err(conflict(&format!("unexpected append outcome {other:?}"))),
    }
    let key = op.run_id.as_u128();
    for (child, (event, bytes)) in op.starts.iter().zip(&outcomes) {
        if matches!(event.kind, EventKind::ChildWorkflowStarted { .. }) {
            // Decided above in this transaction: it starts.
            start(
                t,
                child.run_id,
                &child.record,
                &child.events,
                ReuseRule::Allow,
                child.wake,
            )?;
        }
        t.history
            .insert((key, event.event_id), bytes.as_slice())
            .map_err(redb_err)?;
    }
    Ok(WriteOutcome::ChildrenStarted(
        outcomes
            .into_iter()
            .map(|(event, _)| match event.kind {
                EventKind::StartChildWorkflowFailed { cause, .. } => Err(cause),
                _ => Ok(RunId::from_u128(0)),
            })
            .zip(&op.starts)
            .map(|(outcome, child)| outcome.map(|_| child.run_id))
            .collect(),
    ))
}

/// Why the workflow ID refuses a new run, if it does: a running run, the
/// reuse rule, or a latest run that cannot be read (refused rather than
/// risk two runs of one ID).
pub(super) fn refusal(
    t: &Tables<'_>,
    workflow_id: &str,
    reuse: ReuseRule,
) -> Result<Option<StartChildFailedCause>, StoreError> {
    let Some(previous) = t
        .workflows
        .get(workflow_id)
        .map_err(redb_err)?
        .map(|v| v.value())
    else {
        return Ok(None);
    };
    let prev = match t.runs.get(previous).map_err(redb_err)? {
        Some(bytes) => match codec::decode::<RunRecord>(bytes.value()) {
            Ok(record) => record,
            Err(e) => {
                return Ok(Some(StartChildFailedCause::Unreadable {
                    message: e.to_string(),
                }));
            }
        },
        None => {
            return Ok(Some(StartChildFailedCause::Unreadable {
                message: format!(
                    "its latest run {} has no record",
                    RunId::from_u128(previous)
                ),
            }));
        }
    };
    if !prev.status.is_closed() {
        return Ok(Some(StartChildFailedCause::AlreadyRunning {
            run_id: RunId::from_u128(previous),
        }));
    }
    let allowed = match reuse {
        ReuseRule::Allow => true,
        ReuseRule::AllowIfLastNotCompleted => prev.status != WorkflowStatus::Completed,
        ReuseRule::Reject => false,
    };
    Ok((!allowed).then_some(StartChildFailedCause::ReuseRejected {
        last_status: prev.status,
    }))
}

/// What a parent's close does to one open run of a child.
struct ChildAction {
    run_id: RunId,
    workflow_id: String,
    kind: ChildActionKind,
    /// The event appended to the child, and its encoding.
    event: Event,
    bytes: Vec<u8>,
}

/// Applies a close with its children's parent-close policies (see
/// `CloseParentOp`; or the start of a closed run's reset, with the
/// children it keeps). Every decision is made, and every event encoded,
/// before the first write; then the close (refused before it writes), then
/// the children's events.
pub(super) fn close_parent(
    t: &mut Tables<'_>,
    op: &CloseParentOp,
) -> Result<WriteOutcome, StoreError> {
    let actions = decide_children(t, op)?;
    match apply(t, &op.close)? {
        WriteOutcome::Appended | WriteOutcome::ContinuedAsNew | WriteOutcome::Started => {}
        // The reset of a closed run whose ID has another run open: the
        // start wrote nothing, so neither do the children.
        refused @ WriteOutcome::AlreadyRunning(_) => return Ok(refused),
        other => {
            return Err(StoreError::Conflict {
                run_id: op.run_id,
                message: format!("unexpected close outcome {other:?}"),
            });
        }
    }
    let mut terminated = Vec::new();
    let mut cancel_requested = Vec::new();
    let mut reparented = Vec::new();
    for action in actions {
        let key = action.run_id.as_u128();
        if action.kind == ChildActionKind::Terminate {
            let event = (action.event.event_id, op.at, action.bytes.as_slice());
            close(
                t,
                action.run_id,
                &action.workflow_id,
                event,
                WorkflowStatus::Terminated,
            )?;
            terminated.push(action.run_id);
        } else {
            t.history
                .insert((key, action.event.event_id), action.bytes.as_slice())
                .map_err(redb_err)?;
            // Loaded on the next open, should the process stop before the
            // child's actor hears of it.
            set_wake(t, key, Some(WAKE_NOW))?;
            if action.kind == ChildActionKind::Cancel {
                cancel_requested.push(action.run_id);
            } else {
                reparented.push((action.run_id, action.event));
            }
        }
    }
    Ok(WriteOutcome::ParentClosed {
        terminated,
        cancel_requested,
        reparented,
    })
}

/// The open runs a close's policies reach, and what each gets. Reads
/// only. A child whose records do not decode is left alone (its own load
/// reports the damage).
fn decide_children(t: &Tables<'_>, op: &CloseParentOp) -> Result<Vec<ChildAction>, StoreError> {
    let mut actions: Vec<ChildAction> = Vec::new();
    let mut generation: Vec<(RunId, String, u32, ParentClosePolicy, Option<RunId>)> = op
        .children
        .iter()
        .map(|c| {
            let (id, seq) = (c.workflow_id.clone(), c.seq);
            (op.run_id, id, seq, c.policy, c.reparent_to)
        })
        .collect();
    for _ in 0..MAX_GENERATIONS {
        let mut next = Vec::new();
        for (parent_run, workflow_id, seq, policy, reparent_to) in generation {
            if policy == ParentClosePolicy::Abandon && reparent_to.is_none() {
                continue;
            }
            let Some(key) = t
                .workflows
                .get(workflow_id.as_str())
                .map_err(redb_err)?
                .map(|v| v.value())
            else {
                continue;
            };
            let run_id = RunId::from_u128(key);
            let open = t.running.get(key).map_err(redb_err)?.is_some();
            if !open || actions.iter().any(|a| a.run_id == run_id) {
                continue;
            }
            let decodes = match t.runs.get(key).map_err(redb_err)? {
                Some(bytes) => codec::decode::<RunRecord>(bytes.value()).is_ok(),
                None => false,
            };
            let Some(state) = fold_run(t, key)? else {
                continue;
            };
            if !decodes {
                continue;
            }
            let Some((kind, event)) =
                child_action(&state, parent_run, seq, policy, reparent_to, op.at)
            else {
                continue;
            };
            let bytes = codec::encode(&event).map_err(StoreError::encode)?;
            if kind == ChildActionKind::Terminate {
                // Its own open children are dealt with as its close would.
                next.extend(state.children.iter().map(|(seq, c)| {
                    let id = c.workflow_id.clone();
                    (run_id, id, *seq, c.parent_close_policy, None)
                }));
            }
            actions.push(ChildAction {
                run_id,
                workflow_id,
                kind,
                event,
                bytes,
            });
        }
        if next.is_empty() {
            break;
        }
        generation = next;
    }
    Ok(actions)
}

/// A stored run's state, folded from its history; `None` when an event
/// does not decode.
pub(super) fn fold_run(t: &Tables<'_>, key: u128) -> Result<Option<MutableState>, StoreError> {
    let mut state = MutableState::default();
    for entry in t
        .history
        .range((key, 0)..=(key, u64::MAX))
        .map_err(redb_err)?
    {
        let (_, bytes) = entry.map_err(redb_err)?;
        match codec::decode::<Event>(bytes.value()) {
            Ok(event) => state.apply(&event),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(state))
}
