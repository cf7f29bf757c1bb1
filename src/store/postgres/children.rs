//! Writes of child workflows: a parent's step with the starts it initiates,
//! and a close with its children's parent-close policies, each in the
//! batch's transaction (see `store::children`; the decisions are the redb
//! store's, made from rows read and locked in this transaction).

use tokio_postgres::Transaction;

use super::writer::{OpResult, Statements, append, apply, close, deliver, locked_run, start};
use super::{db_err, run_id_of};
use crate::codec;
use crate::history::{
    Event, EventKind, MutableState, ParentClosePolicy, RunId, StartChildFailedCause, WorkflowStatus,
};
use crate::store::{
    ChildActionKind, CloseParentOp, RemoteRequest, ReuseRule, StartChildrenOp, StoreError,
    TellParentOp, WAKE_NOW, WriteOutcome, child_action,
};

/// Applies a child's last close and, once it is made, writes the message
/// its parent is owed into the parent's inbox, in the same transaction: a
/// request (kind 1) without a sender, so answered by no reply, delivered by
/// the parent's owner whichever process it is, this one included (the
/// actor also tells a parent of its own process at once; the parent takes
/// a child's close in once). Nothing is lost if this process dies right
/// after the commit, before any message it would send.
pub(super) async fn tell_parent(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &TellParentOp,
) -> Result<OpResult, StoreError> {
    let result = apply(txn, statements, &op.close).await?;
    // Refused, or closed before (a terminate meeting a close): this op
    // closed nothing, so it owes the parent nothing.
    if matches!(result, Err(_) | Ok(WriteOutcome::AlreadyClosed(_))) {
        return Ok(result);
    }
    let request = RemoteRequest::ChildClosed {
        child_workflow_id: op.child_workflow_id.clone(),
        kind: Box::new(op.kind.clone()),
    };
    let body = codec::encode(&request).map_err(StoreError::encode)?;
    let shard = statements.ownership.shard_of(&op.parent_workflow_id);
    txn.execute(
        "WITH i AS (INSERT INTO inbox (request, shard, workflow_id, run_id, kind, body) \
         VALUES (gen_random_uuid(), $1, $2, $3, 1, $4) RETURNING shard) \
         SELECT pg_notify(current_schema(), i.shard::text) FROM i",
        &[
            &shard,
            &op.parent_workflow_id,
            &op.parent_run_id.as_uuid(),
            &body,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(result)
}

/// Generations of children a close reaches at most (as the redb store).
const MAX_GENERATIONS: usize = 16;

/// How often a parent's step is decided again when another starter took
/// one of its children's IDs meanwhile (each time that ID is decided as
/// taken, so more than a few means the IDs keep being taken).
const RACES: usize = 8;

/// What one decision of a parent's step came to.
enum Decided {
    Done(OpResult),
    /// Another starter committed a child's (new) workflow ID between the
    /// decision and the child's start: decide again.
    Raced,
}

/// Applies a parent's step and its children's starts: the outcomes are
/// decided first (reads only), then the parent's append with the outcome
/// events after its own (refused before it writes), then the starts.
///
/// A child's new workflow ID has no row to lock while the outcomes are
/// decided, so another starter (another process's `start_run`) may commit
/// it before the child's start: that start then finds the ID taken. The
/// step is undone to a savepoint and decided again, which finds the
/// other's run and records `StartChildWorkflowFailed` in the parent, as the
/// redb store does (its single writer never races).
pub(super) async fn start_children(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &StartChildrenOp,
) -> Result<OpResult, StoreError> {
    for _ in 0..RACES {
        txn.batch_execute("SAVEPOINT start_children")
            .await
            .map_err(db_err)?;
        match decide_and_start(txn, statements, op).await? {
            Decided::Done(result) => {
                txn.batch_execute("RELEASE SAVEPOINT start_children")
                    .await
                    .map_err(db_err)?;
                return Ok(result);
            }
            Decided::Raced => {
                txn.batch_execute("ROLLBACK TO SAVEPOINT start_children")
                    .await
                    .map_err(db_err)?;
            }
        }
    }
    Err(StoreError::Database(format!(
        "the children's workflow IDs of run {} kept being taken by other starters while its \
         step was written; it is written again",
        op.run_id
    )))
}

/// One decision and write of a parent's step with its children's starts.
async fn decide_and_start(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &StartChildrenOp,
) -> Result<Decided, StoreError> {
    let conflict = |message: &str| {
        Ok(Decided::Done(Err(StoreError::Conflict {
            run_id: op.run_id,
            message: message.to_string(),
        })))
    };
    if op
        .record
        .as_ref()
        .is_some_and(|r| r.record.status.is_closed())
    {
        return conflict("a step that closes the run starts no child");
    }
    let Some(first_outcome) = op.expect_next.checked_add(op.events.len() as u64) else {
        return conflict("the history is at the end of its range");
    };
    let mut started: Vec<(&str, RunId)> = Vec::new();
    let mut outcomes = Vec::with_capacity(op.starts.len());
    for (i, child) in op.starts.iter().enumerate() {
        let workflow_id = child.record.record.workflow_id.as_str();
        let cause = match started.iter().find(|(id, _)| *id == workflow_id) {
            Some((_, run_id)) => Some(StartChildFailedCause::AlreadyRunning { run_id: *run_id }),
            None => refusal(txn, workflow_id, child.reuse).await?,
        };
        let kind = match cause {
            Some(cause) => EventKind::StartChildWorkflowFailed {
                seq: child.seq,
                cause,
            },
            None => {
                let stored = txn
                    .query_opt(
                        "SELECT 1 FROM runs WHERE run_id = $1",
                        &[&child.run_id.as_uuid()],
                    )
                    .await
                    .map_err(db_err)?;
                if stored.is_some() {
                    return Ok(Decided::Done(Err(StoreError::Conflict {
                        run_id: child.run_id,
                        message: "a run with this ID is already stored".into(),
                    })));
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
    let mut events = op.events.clone();
    events.extend(outcomes.iter().map(|(e, b)| (e.event_id, b.clone())));
    match append(
        txn,
        statements,
        op.run_id,
        op.record.as_ref(),
        op.expect_next,
        &events,
        op.wake,
    )
    .await?
    {
        Ok(WriteOutcome::Appended) => {}
        Ok(other) => return conflict(&format!("unexpected append outcome {other:?}")),
        Err(refusal) => return Ok(Decided::Done(Err(refusal))),
    }
    let mut answer = Vec::with_capacity(op.starts.len());
    for (child, (event, _)) in op.starts.iter().zip(&outcomes) {
        match &event.kind {
            EventKind::StartChildWorkflowFailed { cause, .. } => answer.push(Err(cause.clone())),
            _ => {
                // Decided above in this transaction: it starts.
                let outcome = start(
                    txn,
                    statements,
                    child.run_id,
                    &child.record,
                    &child.events,
                    ReuseRule::Allow,
                    child.wake,
                )
                .await?;
                match outcome {
                    Ok(WriteOutcome::Started) => {}
                    // Taken by another starter since the decision.
                    Ok(WriteOutcome::AlreadyRunning(_) | WriteOutcome::ReuseRejected(_)) => {
                        return Ok(Decided::Raced);
                    }
                    other => {
                        return Err(StoreError::Database(format!(
                            "child run {} could not start after its parent's step: {other:?}",
                            child.run_id
                        )));
                    }
                }
                answer.push(Ok(child.run_id));
            }
        }
    }
    Ok(Decided::Done(Ok(WriteOutcome::ChildrenStarted(answer))))
}

/// Why the workflow ID refuses a new run, if it does (as the redb store).
pub(super) async fn refusal(
    txn: &Transaction<'_>,
    workflow_id: &str,
    reuse: ReuseRule,
) -> Result<Option<StartChildFailedCause>, StoreError> {
    let row = txn
        .query_opt(
            "SELECT w.latest_run, r.status FROM workflows w \
             LEFT JOIN runs r ON r.run_id = w.latest_run \
             WHERE w.workflow_id = $1 FOR UPDATE OF w",
            &[&workflow_id],
        )
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let previous = run_id_of(row.get(0));
    let Some(status) = row.get::<_, Option<i16>>(1).and_then(super::status_of) else {
        return Ok(Some(StartChildFailedCause::Unreadable {
            message: format!("its latest run {previous} has no record"),
        }));
    };
    if !status.is_closed() {
        return Ok(Some(StartChildFailedCause::AlreadyRunning {
            run_id: previous,
        }));
    }
    let allowed = match reuse {
        ReuseRule::Allow => true,
        ReuseRule::AllowIfLastNotCompleted => status != WorkflowStatus::Completed,
        ReuseRule::Reject => false,
    };
    Ok((!allowed).then_some(StartChildFailedCause::ReuseRejected {
        last_status: status,
    }))
}

/// What a parent's close does to one open run of a child.
struct ChildAction {
    run_id: RunId,
    workflow_id: String,
    kind: ChildActionKind,
    event: Event,
    bytes: Vec<u8>,
}

/// Applies a close with its children's parent-close policies (or the
/// start of a closed run's reset, with the children it keeps): every
/// decision first, then the close (refused before it writes), then the
/// children's events.
pub(super) async fn close_parent(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &CloseParentOp,
) -> Result<OpResult, StoreError> {
    let actions = decide_children(txn, op).await?;
    match apply(txn, statements, &op.close).await? {
        Ok(WriteOutcome::Appended | WriteOutcome::ContinuedAsNew | WriteOutcome::Started) => {}
        // The reset of a closed run whose ID has another run open: the
        // start wrote nothing, so neither do the children.
        Ok(refused @ WriteOutcome::AlreadyRunning(_)) => return Ok(Ok(refused)),
        Ok(other) => {
            return Ok(Err(StoreError::Conflict {
                run_id: op.run_id,
                message: format!("unexpected close outcome {other:?}"),
            }));
        }
        Err(refusal) => return Ok(Err(refusal)),
    }
    let mut terminated = Vec::new();
    let mut cancel_requested = Vec::new();
    let mut reparented = Vec::new();
    for action in actions {
        let event_id = action.event.event_id;
        let outcome = if action.kind == ChildActionKind::Terminate {
            let event = (event_id, op.at, action.bytes.as_slice());
            close(
                txn,
                statements,
                action.run_id,
                &action.workflow_id,
                event,
                (WorkflowStatus::Terminated, true),
            )
            .await?
        } else {
            // Loaded on the next open, should the process stop before the
            // child's actor hears of it.
            let events = [(event_id, action.bytes)];
            deliver(txn, statements, action.run_id, event_id, &events, WAKE_NOW).await?
        };
        // Decided from rows locked in this transaction: only damage gets
        // here, after the close was written, so the batch must not commit.
        if !matches!(outcome, Ok(WriteOutcome::Closed | WriteOutcome::Appended)) {
            return Err(StoreError::Database(format!(
                "the parent-close policy for run {} failed after its parent closed: {outcome:?}",
                action.run_id
            )));
        }
        match action.kind {
            ChildActionKind::Terminate => terminated.push(action.run_id),
            ChildActionKind::Cancel => cancel_requested.push(action.run_id),
            ChildActionKind::Reparent => reparented.push((action.run_id, action.event)),
        }
    }
    Ok(Ok(WriteOutcome::ParentClosed {
        terminated,
        cancel_requested,
        reparented,
    }))
}

/// The open runs a close's policies reach, and what each gets (reads
/// only; as the redb store decides them).
async fn decide_children(
    txn: &Transaction<'_>,
    op: &CloseParentOp,
) -> Result<Vec<ChildAction>, StoreError> {
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
            let latest = txn
                .query_opt(
                    "SELECT latest_run FROM workflows WHERE workflow_id = $1",
                    &[&workflow_id],
                )
                .await
                .map_err(db_err)?;
            let Some(latest) = latest else { continue };
            let run_id = run_id_of(latest.get(0));
            if actions.iter().any(|a| a.run_id == run_id) {
                continue;
            }
            let (record, _) = match locked_run(txn, run_id, &workflow_id).await? {
                Some(Ok(found)) => found,
                _ => continue,
            };
            if record.status.is_closed() {
                continue;
            }
            let Some(state) = fold_run(txn, run_id).await? else {
                continue;
            };
            let Some((kind, event)) =
                child_action(&state, parent_run, seq, policy, reparent_to, op.at)
            else {
                continue;
            };
            let bytes = codec::encode(&event).map_err(StoreError::encode)?;
            if kind == ChildActionKind::Terminate {
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
pub(super) async fn fold_run(
    txn: &Transaction<'_>,
    run_id: RunId,
) -> Result<Option<MutableState>, StoreError> {
    let rows = txn
        .query(
            "SELECT event FROM history WHERE run_id = $1 ORDER BY event_id",
            &[&run_id.as_uuid()],
        )
        .await
        .map_err(db_err)?;
    let mut state = MutableState::default();
    for row in rows {
        match codec::decode::<Event>(row.get::<_, &[u8]>(0)) {
            Ok(event) => state.apply(&event),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(state))
}
