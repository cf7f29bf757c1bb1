//! Reads of the file, written once for both handles: the engine's own
//! (`RedbStore`, which also writes) and a read-only one
//! (`read_only::ReadOnlyStore`, for a file no engine holds).

use ::redb::ReadableDatabase;

use super::tables::{self, HISTORY, RUNS, WAKEUPS, WORKFLOWS};
use super::{counts, file, open_read, redb_err, visibility};
use crate::codec;
use crate::history::{Event, EventId, RunId, WorkflowStatus};
use crate::store::{Query, QueryPage, RunRecord, StoreError};

/// Runs a read of the file; a panic of redb on a damaged page becomes an
/// error naming `workflow_id` (if the read is about one workflow), or the
/// file's damage.
pub(super) fn contained<T>(
    workflow_id: Option<&str>,
    read: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    file::contain(read).unwrap_or_else(|message| {
        Err(match workflow_id {
            Some(id) => StoreError::Corrupt {
                workflow_id: id.to_string(),
                message,
            },
            None => StoreError::Damaged(message),
        })
    })
}

/// The latest run of a workflow ID.
pub(super) fn current_run(
    db: &dyn ReadableDatabase,
    workflow_id: &str,
) -> Result<Option<(RunId, RunRecord)>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(workflows) = open_read(&txn, WORKFLOWS)? else {
        return Ok(None);
    };
    let Some(run) = workflows.get(workflow_id).map_err(redb_err)? else {
        return Ok(None);
    };
    let run_id = RunId::from_u128(run.value());
    let runs = txn.open_table(RUNS).map_err(redb_err)?;
    let bytes = runs
        .get(run_id.as_u128())
        .map_err(redb_err)?
        .ok_or_else(|| StoreError::missing_run(workflow_id, run_id))?;
    let record = codec::decode(bytes.value()).map_err(|e| StoreError::corrupt(workflow_id, e))?;
    Ok(Some((run_id, record)))
}

/// One run's record.
pub(super) fn run(
    db: &dyn ReadableDatabase,
    run_id: RunId,
    workflow_id: &str,
) -> Result<Option<RunRecord>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(runs) = open_read(&txn, RUNS)? else {
        return Ok(None);
    };
    let Some(bytes) = runs.get(run_id.as_u128()).map_err(redb_err)? else {
        return Ok(None);
    };
    let record = codec::decode(bytes.value()).map_err(|e| StoreError::corrupt(workflow_id, e))?;
    Ok(Some(record))
}

/// The number of events in a run's history (its last event ID).
pub(super) fn history_len(db: &dyn ReadableDatabase, run_id: RunId) -> Result<u64, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(history) = open_read(&txn, HISTORY)? else {
        return Ok(0);
    };
    tables::last_event_id(&history, run_id.as_u128())
}

/// The last event of a run's history.
pub(super) fn last_event(
    db: &dyn ReadableDatabase,
    run_id: RunId,
    workflow_id: &str,
) -> Result<Option<Event>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(history) = open_read(&txn, HISTORY)? else {
        return Ok(None);
    };
    let key = run_id.as_u128();
    let last = history
        .range((key, 0)..=(key, u64::MAX))
        .map_err(redb_err)?
        .next_back();
    match last {
        None => Ok(None),
        Some(entry) => {
            let (_, v) = entry.map_err(redb_err)?;
            let event =
                codec::decode(v.value()).map_err(|e| StoreError::corrupt(workflow_id, e))?;
            Ok(Some(event))
        }
    }
}

/// One page of the runs a query matches, in list order, read from the
/// visibility indexes (see `visibility`).
pub(super) fn list(db: &dyn ReadableDatabase, query: &Query) -> Result<QueryPage, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let mut page = visibility::query(&txn, query)?;
    // An open run's record is not rewritten by every step: its
    // history's length, read in the same snapshot, is the truth.
    if let Some(history) = open_read(&txn, HISTORY)? {
        for (run_id, record) in page.runs.iter_mut() {
            if !record.status.is_closed() {
                record.history_len = tables::last_event_id(&history, run_id.as_u128())?;
            }
        }
    }
    Ok(page)
}

/// The number of runs of each status (see `counts`).
pub(super) fn counts(db: &dyn ReadableDatabase) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    counts::read(&txn)
}

/// Runs due to wake in `[from, to)` ms since the epoch, in time order.
pub(super) fn wakeups(
    db: &dyn ReadableDatabase,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, RunId)>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(wakeups) = open_read(&txn, WAKEUPS)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in wakeups.range((from, 0)..(to, 0)).map_err(redb_err)? {
        let (key, _) = entry.map_err(redb_err)?;
        let (wake, run) = key.value();
        out.push((wake, RunId::from_u128(run)));
    }
    Ok(out)
}

/// Up to `limit` events of a run's history from `from` on, read in one
/// transaction and checked: each stored under its own ID, numbered
/// without gaps from `from`.
pub(super) fn history(
    db: &dyn ReadableDatabase,
    run_id: RunId,
    workflow_id: &str,
    from: EventId,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(history) = open_read(&txn, HISTORY)? else {
        return Ok(Vec::new());
    };
    let key = run_id.as_u128();
    let mut events = Vec::new();
    for entry in history
        .range((key, from.max(1))..=(key, u64::MAX))
        .map_err(redb_err)?
        .take(limit)
    {
        let (k, v) = entry.map_err(redb_err)?;
        let event: Event =
            codec::decode(v.value()).map_err(|e| StoreError::corrupt(workflow_id, e))?;
        if event.event_id != k.value().1 {
            return Err(StoreError::Corrupt {
                workflow_id: workflow_id.to_string(),
                message: format!(
                    "event stored under id {} claims id {}",
                    k.value().1,
                    event.event_id
                ),
            });
        }
        // Histories are numbered 1, 2, … without gaps; a gap (or an
        // ID near the top of the range) is damage, not history.
        let expected = from.max(1) + events.len() as u64;
        if event.event_id != expected {
            return Err(StoreError::Corrupt {
                workflow_id: workflow_id.to_string(),
                message: format!(
                    "event {} follows event {} in the history",
                    event.event_id,
                    expected - 1
                ),
            });
        }
        events.push(event);
    }
    Ok(events)
}
