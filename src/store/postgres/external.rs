//! Writes of signals and cancellation requests from one run to others: the
//! sender's step, the deliveries and their outcomes in the batch's
//! transaction (see `store::external`; the decisions are the redb store's,
//! made from rows read and locked in this transaction).

use tokio_postgres::Transaction;

use super::children::fold_run;
use super::writer::{OpResult, Statements, apply, locked_run};
use super::{db_err, run_id_of};
use crate::codec;
use crate::history::{Event, ExternalFailedCause, RunId};
use crate::store::{
    ExternalOp, ExternalOutcome, ExternalRequest, StoreError, WAKE_NOW, WriteOutcome,
};

/// Applies a step and its deliveries: the step first (a refusal of it
/// writes nothing), then each delivery, never a refusal, and the outcome
/// events after everything the step wrote to the sender.
pub(super) async fn external(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ExternalOp,
) -> Result<OpResult, StoreError> {
    let inner = match apply(txn, statements, &op.inner).await? {
        Ok(inner) => inner,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let sender = txn
        .query_opt(
            "SELECT status, last_event FROM runs WHERE run_id = $1 FOR UPDATE",
            &[&op.run_id.as_uuid()],
        )
        .await
        .map_err(db_err)?;
    let (sender_open, last) = sender.map_or((false, 0), |row| {
        (
            row.get::<_, i16>(0) == 0,
            row.get::<_, i64>(1).max(0) as u64,
        )
    });
    let mut next_outcome = last.saturating_add(1);
    let mut outcomes = Vec::new();
    let mut delivered = Vec::new();
    for request in &op.requests {
        let result = deliver(txn, statements, op, request).await?;
        if let Ok((run_id, Some(event))) = &result {
            if *run_id == op.run_id {
                // A signal to the sender itself: written at the sender's
                // next event, its outcome after it.
                next_outcome = event.event_id.saturating_add(1);
                outcomes.push(event.clone());
            } else {
                delivered.push((*run_id, event.clone()));
            }
        }
        if !sender_open {
            continue;
        }
        let kind = request
            .action
            .outcome(request.seq, result.map(|(run_id, _)| run_id));
        let event = Event {
            event_id: next_outcome,
            timestamp: op.at,
            kind,
        };
        let bytes = codec::encode(&event).map_err(StoreError::encode)?;
        let id = event.event_id as i64;
        txn.execute(
            "INSERT INTO history (run_id, event_id, event) VALUES ($1, $2, $3)",
            &[&op.run_id.as_uuid(), &id, &bytes],
        )
        .await
        .map_err(db_err)?;
        txn.execute(
            "UPDATE runs SET last_event = $2 WHERE run_id = $1",
            &[&op.run_id.as_uuid(), &id],
        )
        .await
        .map_err(db_err)?;
        next_outcome = next_outcome.saturating_add(1);
        outcomes.push(event);
    }
    Ok(Ok(WriteOutcome::External(Box::new(ExternalOutcome {
        inner,
        outcomes,
        delivered,
    }))))
}

/// Makes one delivery: the target run, and the event written to it
/// (`None` when it has it already), or why not.
async fn deliver(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ExternalOp,
    request: &ExternalRequest,
) -> Result<Result<(RunId, Option<Event>), ExternalFailedCause>, StoreError> {
    let run_id = match request.run_id {
        Some(run_id) => run_id,
        None => {
            let latest = txn
                .query_opt(
                    "SELECT latest_run FROM workflows WHERE workflow_id = $1",
                    &[&request.workflow_id],
                )
                .await
                .map_err(db_err)?;
            match latest {
                Some(row) => run_id_of(row.get(0)),
                None => return Ok(Err(ExternalFailedCause::NotFound)),
            }
        }
    };
    let record = match locked_run(txn, run_id, &request.workflow_id).await? {
        Some(Ok((record, _))) => record,
        Some(Err(e)) => {
            return Ok(Err(ExternalFailedCause::Unreadable {
                message: e.to_string(),
            }));
        }
        None => return Ok(Err(ExternalFailedCause::NotFound)),
    };
    // The row is locked: its status is the run's (no separate open set).
    if let Err(cause) = crate::store::check_target_record(request, run_id, &record, true) {
        return Ok(Err(cause));
    }
    let state = fold_run(txn, run_id).await?;
    let event = match crate::store::delivery(op, request, run_id, state.as_ref()) {
        Ok(Some(event)) => event,
        Ok(None) => return Ok(Ok((run_id, None))),
        Err(cause) => return Ok(Err(cause)),
    };
    let bytes = codec::encode(&event).map_err(StoreError::encode)?;
    // Loaded on the next open, should the process stop before the
    // target's actor takes the event in.
    let events = [(event.event_id, bytes)];
    let written =
        super::writer::deliver(txn, statements, run_id, event.event_id, &events, WAKE_NOW).await?;
    if !matches!(written, Ok(WriteOutcome::Appended)) {
        // Decided from rows locked in this transaction: only damage gets
        // here, after the step was written, so the batch must not commit.
        return Err(StoreError::Database(format!(
            "a delivery to run {run_id} failed after its sender's step: {written:?}"
        )));
    }
    Ok(Ok((run_id, Some(event))))
}
