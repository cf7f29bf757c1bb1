//! The `schedules` table: a schedule's conditional write with its starts,
//! and the reads of schedules (see `store::schedule`; decided as the redb
//! store decides it).

use tokio_postgres::{Client, Transaction};

use super::children::refusal;
use super::db_err;
use super::writer::{OpResult, Statements, start};
use crate::codec;
use crate::history::StartChildFailedCause;
use crate::schedule::record::ScheduleRecord;
use crate::store::{ReuseRule, ScheduleOp, StoreError, WriteOutcome};

/// Applies a schedule's change: checks the stored revision and decides
/// every start (reads only), then writes the starts and the record.
pub(super) async fn write(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ScheduleOp,
) -> Result<OpResult, StoreError> {
    let conflict = |message: String| StoreError::ScheduleConflict {
        schedule_id: op.schedule_id.clone(),
        message,
    };
    let row = txn
        .query_opt(
            "SELECT record FROM schedules WHERE schedule_id = $1 FOR UPDATE",
            &[&op.schedule_id],
        )
        .await
        .map_err(db_err)?;
    let stored = match row {
        Some(row) => match codec::decode::<ScheduleRecord>(row.get::<_, &[u8]>(0)) {
            Ok(record) => Some(record.revision),
            Err(e) => {
                return Ok(Err(conflict(format!(
                    "its stored record does not decode: {e}"
                ))));
            }
        },
        None => None,
    };
    if stored != op.expect {
        return Ok(Err(conflict(match (stored, op.expect) {
            (Some(_), None) => "a schedule with this ID exists".to_string(),
            (None, Some(_)) => "the schedule was removed".to_string(),
            (found, wanted) => format!("revision {found:?} is stored, {wanted:?} was expected"),
        })));
    }
    let mut outcomes = Vec::with_capacity(op.starts.len());
    let mut seen: Vec<&str> = Vec::new();
    for s in &op.starts {
        let workflow_id = s.record.record.workflow_id.as_str();
        let cause = if seen.contains(&workflow_id) {
            Some(StartChildFailedCause::AlreadyRunning { run_id: s.run_id })
        } else {
            refusal(txn, workflow_id, ReuseRule::Reject).await?
        };
        if cause.is_none() {
            let stored = txn
                .query_opt(
                    "SELECT 1 FROM runs WHERE run_id = $1",
                    &[&s.run_id.as_uuid()],
                )
                .await
                .map_err(db_err)?;
            if stored.is_some() {
                return Ok(Err(StoreError::Conflict {
                    run_id: s.run_id,
                    message: "a run with this ID is already stored".into(),
                }));
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
            let started = start(
                txn,
                statements,
                s.run_id,
                &s.record,
                &s.events,
                ReuseRule::Allow,
                s.wake,
            )
            .await?;
            if !matches!(started, Ok(WriteOutcome::Started)) {
                return Err(StoreError::Database(format!(
                    "a scheduled run {} could not start after its checks: {started:?}",
                    s.run_id
                )));
            }
        }
    }
    match &op.record {
        Some(record) => {
            txn.execute(
                "INSERT INTO schedules (schedule_id, record) VALUES ($1, $2) \
                 ON CONFLICT (schedule_id) DO UPDATE SET record = EXCLUDED.record",
                &[&op.schedule_id, &record.bytes],
            )
            .await
            .map_err(db_err)?;
        }
        None => {
            txn.execute(
                "DELETE FROM schedules WHERE schedule_id = $1",
                &[&op.schedule_id],
            )
            .await
            .map_err(db_err)?;
        }
    }
    Ok(Ok(WriteOutcome::ScheduleWritten(outcomes)))
}

/// The schedule stored under `schedule_id`.
pub(super) async fn schedule(
    c: &Client,
    schedule_id: &str,
) -> Result<Option<ScheduleRecord>, StoreError> {
    let row = c
        .query_opt(
            "SELECT record FROM schedules WHERE schedule_id = $1",
            &[&schedule_id],
        )
        .await
        .map_err(db_err)?;
    row.map(|row| decode(schedule_id, row.get(0))).transpose()
}

/// Up to `limit` schedules in ID order after `after`.
pub(super) async fn schedules(
    c: &Client,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ScheduleRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "SELECT schedule_id, record FROM schedules \
             WHERE $1::text IS NULL OR schedule_id > $1 ORDER BY schedule_id LIMIT $2",
            &[&after, &limit],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| decode(row.get(0), row.get(1)))
        .collect()
}

/// A damaged schedule record is reported under its ID (as the redb store).
fn decode(schedule_id: &str, bytes: &[u8]) -> Result<ScheduleRecord, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Corrupt {
        workflow_id: format!("schedule {schedule_id}"),
        message: e.to_string(),
    })
}
