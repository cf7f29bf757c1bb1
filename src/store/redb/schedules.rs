//! The `schedules` table (format 13): a schedule's conditional write with
//! its starts, and the reads of schedules (see `store::schedule`).

use ::redb::{ReadableDatabase, ReadableTable};

use super::children::refusal;
use super::tables::SCHEDULES;
use super::writer::{Tables, start};
use super::{open_read, redb_err};
use crate::codec;
use crate::history::StartChildFailedCause;
use crate::schedule::record::ScheduleRecord;
use crate::store::{ReuseRule, ScheduleOp, StoreError, WriteOutcome};

/// Applies a schedule's change: checks the stored revision and decides
/// every start (reads only), then writes the starts and the record.
pub(super) fn write(t: &mut Tables<'_>, op: &ScheduleOp) -> Result<WriteOutcome, StoreError> {
    let conflict = |message: String| StoreError::ScheduleConflict {
        schedule_id: op.schedule_id.clone(),
        message,
    };
    let stored = {
        let table = t.txn.open_table(SCHEDULES).map_err(redb_err)?;
        let stored = table.get(op.schedule_id.as_str()).map_err(redb_err)?;
        match stored {
            Some(bytes) => Some(
                codec::decode::<ScheduleRecord>(bytes.value())
                    .map_err(|e| conflict(format!("its stored record does not decode: {e}")))?
                    .revision,
            ),
            None => None,
        }
    };
    if stored != op.expect {
        return Err(conflict(match (stored, op.expect) {
            (Some(_), None) => "a schedule with this ID exists".to_string(),
            (None, Some(_)) => "the schedule was removed".to_string(),
            (found, wanted) => format!("revision {found:?} is stored, {wanted:?} was expected"),
        }));
    }
    let mut outcomes = Vec::with_capacity(op.starts.len());
    let mut seen: Vec<&str> = Vec::new();
    for s in &op.starts {
        let workflow_id = s.record.record.workflow_id.as_str();
        let cause = if seen.contains(&workflow_id) {
            Some(StartChildFailedCause::AlreadyRunning { run_id: s.run_id })
        } else {
            refusal(t, workflow_id, ReuseRule::Reject)?
        };
        if cause.is_none() {
            if t.runs.get(s.run_id.as_u128()).map_err(redb_err)?.is_some() {
                return Err(StoreError::Conflict {
                    run_id: s.run_id,
                    message: "a run with this ID is already stored".into(),
                });
            }
            seen.push(workflow_id);
        }
        outcomes.push(match cause {
            Some(cause) => Err(cause),
            None => Ok(s.run_id),
        });
    }
    for (s, outcome) in op.starts.iter().zip(&outcomes) {
        if outcome.is_ok() {
            // Decided above in this transaction: it starts.
            start(t, s.run_id, &s.record, &s.events, ReuseRule::Allow, s.wake)?;
        }
    }
    let mut table = t.schedules()?;
    match &op.record {
        Some(record) => {
            table
                .insert(op.schedule_id.as_str(), record.bytes.as_slice())
                .map_err(redb_err)?;
        }
        None => {
            table.remove(op.schedule_id.as_str()).map_err(redb_err)?;
        }
    }
    Ok(WriteOutcome::ScheduleWritten(outcomes))
}

/// The schedule stored under `schedule_id`.
pub(super) fn schedule(
    db: &dyn ReadableDatabase,
    schedule_id: &str,
) -> Result<Option<ScheduleRecord>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(table) = open_read(&txn, SCHEDULES)? else {
        return Ok(None);
    };
    let Some(bytes) = table.get(schedule_id).map_err(redb_err)? else {
        return Ok(None);
    };
    decode(schedule_id, bytes.value()).map(Some)
}

/// Up to `limit` schedules in ID order after `after`.
pub(super) fn schedules(
    db: &dyn ReadableDatabase,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ScheduleRecord>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(table) = open_read(&txn, SCHEDULES)? else {
        return Ok(Vec::new());
    };
    let range = match after {
        Some(after) => {
            table.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        }
        None => table.range::<&str>(..),
    }
    .map_err(redb_err)?;
    let mut out = Vec::new();
    for entry in range.take(limit) {
        let (key, value) = entry.map_err(redb_err)?;
        out.push(decode(key.value(), value.value())?);
    }
    Ok(out)
}

/// A damaged schedule record is reported under its ID (in the place of a
/// workflow ID: the error names what to look at).
fn decode(schedule_id: &str, bytes: &[u8]) -> Result<ScheduleRecord, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Corrupt {
        workflow_id: format!("schedule {schedule_id}"),
        message: e.to_string(),
    })
}
