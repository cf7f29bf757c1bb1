//! Writes of signals and cancellation requests from one run to others: the
//! sender's step, the deliveries and their outcomes in one transaction
//! (see `store::external`).

use redb::ReadableTable;

use super::children::fold_run;
use super::redb_err;
use super::tables;
use super::writer::{Tables, apply, set_wake};
use crate::codec;
use crate::history::{Event, ExternalFailedCause, RunId};
use crate::store::{
    ExternalOp, ExternalOutcome, ExternalRequest, RunRecord, StoreError, WAKE_NOW, WriteOutcome,
};

/// Applies a step and its deliveries. The step comes first, so that a
/// refusal of it writes nothing; a delivery is never a refusal (a target
/// that cannot take it gets nothing, and the sender records why), so every
/// write after the step's is part of this op's outcome. Each target is
/// read after the step's writes, which may have changed it (a child the
/// step's close terminated is closed by then).
pub(super) fn external(t: &mut Tables<'_>, op: &ExternalOp) -> Result<WriteOutcome, StoreError> {
    let inner = apply(t, &op.inner)?;
    let sender = op.run_id.as_u128();
    let sender_open = t.running.get(sender).map_err(redb_err)?.is_some();
    let mut next_outcome = tables::last_event_id(&*t.history, sender)?.saturating_add(1);
    let mut outcomes = Vec::new();
    let mut delivered = Vec::new();
    for request in &op.requests {
        let result = deliver(t, op, request)?;
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
        t.history
            .insert((sender, event.event_id), bytes.as_slice())
            .map_err(redb_err)?;
        next_outcome = next_outcome.saturating_add(1);
        outcomes.push(event);
    }
    Ok(WriteOutcome::External(Box::new(ExternalOutcome {
        inner,
        outcomes,
        delivered,
    })))
}

/// Makes one delivery: the target run, and the event written to it
/// (`None` when it has it already: a signal whose request ID it holds, a
/// cancellation request of a run asked to cancel before), or why not.
fn deliver(
    t: &mut Tables<'_>,
    op: &ExternalOp,
    request: &ExternalRequest,
) -> Result<Result<(RunId, Option<Event>), ExternalFailedCause>, StoreError> {
    let key = match target(t, request)? {
        Ok(key) => key,
        Err(cause) => return Ok(Err(cause)),
    };
    let run_id = RunId::from_u128(key);
    let record = match t.runs.get(key).map_err(redb_err)? {
        Some(bytes) => match codec::decode::<RunRecord>(bytes.value()) {
            Ok(record) => record,
            Err(e) => {
                return Ok(Err(ExternalFailedCause::Unreadable {
                    message: e.to_string(),
                }));
            }
        },
        None => return Ok(Err(ExternalFailedCause::NotFound)),
    };
    let open = t.running.get(key).map_err(redb_err)?.is_some();
    if let Err(cause) = crate::store::check_target_record(request, run_id, &record, open) {
        return Ok(Err(cause));
    }
    let state = fold_run(t, key)?;
    let event = match crate::store::delivery(op, request, run_id, state.as_ref()) {
        Ok(Some(event)) => event,
        Ok(None) => return Ok(Ok((run_id, None))),
        Err(cause) => return Ok(Err(cause)),
    };
    let bytes = codec::encode(&event).map_err(StoreError::encode)?;
    t.history
        .insert((key, event.event_id), bytes.as_slice())
        .map_err(redb_err)?;
    // Loaded on the next open, should the process stop before the
    // target's actor takes the event in.
    set_wake(t, key, Some(WAKE_NOW))?;
    Ok(Ok((run_id, Some(event))))
}

/// The run a request names: the given run, or the workflow ID's latest.
fn target(
    t: &Tables<'_>,
    request: &ExternalRequest,
) -> Result<Result<u128, ExternalFailedCause>, StoreError> {
    if let Some(run_id) = request.run_id {
        return Ok(Ok(run_id.as_u128()));
    }
    Ok(t.workflows
        .get(request.workflow_id.as_str())
        .map_err(redb_err)?
        .map(|v| v.value())
        .ok_or(ExternalFailedCause::NotFound))
}
