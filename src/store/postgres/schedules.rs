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

/// How often a schedule's starts are decided again when another starter
/// took one of their new workflow IDs meanwhile (as a parent's children's).
const RACES: usize = 8;

/// The inbox kind of a hint that a schedule changed (`hint_owner`): its
/// row names the schedule ID as its workflow and the nil run.
pub(super) const SCHEDULE_HINT: i16 = 4;

/// What one decision of a schedule's starts came to.
enum Decided {
    Done(Vec<Result<crate::history::RunId, StartChildFailedCause>>),
    /// Another starter committed one of the starts' (new) workflow IDs
    /// between the decision and the start: decide again.
    Raced,
    Refused(StoreError),
}

/// Applies a schedule's change: a driver's is fenced by the schedule's
/// shard; checks the stored revision and decides every start (reads
/// only), then writes the starts and the record. A call's change made in
/// a process that does not own the schedule's shard hints its owner in
/// the same transaction (inbox kind [`SCHEDULE_HINT`]), whose driver then
/// takes a step: the change is never left unseen, whichever process dies.
pub(super) async fn write(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ScheduleOp,
) -> Result<OpResult, StoreError> {
    let conflict = |message: String| StoreError::ScheduleConflict {
        schedule_id: op.schedule_id.clone(),
        message,
    };
    let shard = statements.ownership.shard_of(&op.schedule_id);
    if op.driver {
        // Only the shard's owner drives the schedule: a driver left
        // running where the shard was lost (paused past its lease, say)
        // writes nothing, so no action is started by two processes.
        let owned: bool = txn
            .query_one(
                "SELECT fenced($1, $2, $3)",
                &[&shard, &statements.me, &statements.epochs],
            )
            .await
            .map_err(db_err)?
            .get(0);
        if !owned {
            return Ok(Err(StoreError::ShardLost {
                shard: shard as u32,
            }));
        }
    }
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
    let outcomes = start_all(txn, statements, op).await?;
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(refused) => return Ok(Err(refused)),
    };
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
    if !op.driver {
        txn.execute(
            "SELECT hint_owner($1, $2, $3, $4, $5, NULL)",
            &[
                &shard,
                &op.schedule_id,
                &uuid::Uuid::nil(),
                &statements.me,
                &SCHEDULE_HINT,
            ],
        )
        .await
        .map_err(db_err)?;
    }
    Ok(Ok(WriteOutcome::ScheduleWritten(outcomes)))
}

/// Decides and makes the starts, again from a savepoint while another
/// starter takes one of their new workflow IDs in between: a new ID has no
/// row to lock while it is decided, so another process's start of the
/// same ID may commit before this one's. Decided again, the ID is found
/// taken and the start answered with its refusal, as the redb store
/// answers it (its single writer never races): the action is never
/// started twice, and the batch does not fail.
async fn start_all(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ScheduleOp,
) -> Result<Result<Vec<Result<crate::history::RunId, StartChildFailedCause>>, StoreError>, StoreError>
{
    if op.starts.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    for _ in 0..RACES {
        txn.batch_execute("SAVEPOINT schedule_starts")
            .await
            .map_err(db_err)?;
        match decide_and_start(txn, statements, op).await? {
            Decided::Done(outcomes) => {
                txn.batch_execute("RELEASE SAVEPOINT schedule_starts")
                    .await
                    .map_err(db_err)?;
                return Ok(Ok(outcomes));
            }
            Decided::Refused(refused) => {
                txn.batch_execute("ROLLBACK TO SAVEPOINT schedule_starts")
                    .await
                    .map_err(db_err)?;
                return Ok(Err(refused));
            }
            Decided::Raced => {
                txn.batch_execute("ROLLBACK TO SAVEPOINT schedule_starts")
                    .await
                    .map_err(db_err)?;
            }
        }
    }
    Err(StoreError::Database(format!(
        "the workflow IDs of schedule {:?}'s actions kept being taken by other starters while \
         its step was written; it is written again",
        op.schedule_id
    )))
}

/// One decision of a schedule's starts, and the starts.
async fn decide_and_start(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ScheduleOp,
) -> Result<Decided, StoreError> {
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
                return Ok(Decided::Refused(StoreError::Conflict {
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
            // Decided above in this transaction: it starts, unless another
            // starter committed the ID since.
            let started = start(
                txn,
                statements,
                s.run_id,
                &s.record,
                &s.events,
                ReuseRule::Reject,
                s.wake,
            )
            .await?;
            match started {
                Ok(WriteOutcome::Started) => {}
                Ok(WriteOutcome::AlreadyRunning(_) | WriteOutcome::ReuseRejected(_)) => {
                    return Ok(Decided::Raced);
                }
                other => {
                    return Err(StoreError::Database(format!(
                        "a scheduled run {} could not start after its checks: {other:?}",
                        s.run_id
                    )));
                }
            }
        }
    }
    Ok(Decided::Done(outcomes))
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
