//! Counts of runs by status (format 11), so that a count costs one small
//! read however many runs the file holds (the web UI shows them beside the
//! list, which must stay fast with a million runs).
//!
//! Table `status_counts`: status code `u8` (the visibility index's codes,
//! `visibility::status_code`) `-> u64`, the number of runs with that status
//! that have index entries. The index upkeep (`visibility::insert`,
//! `update`, `remove`) adds each change to the batch's [`Deltas`], and the
//! writer applies them in the same transaction just before it commits: one
//! read and write per status a batch changed, none for a batch of plain
//! steps. A file of an older format gets its counts from its indexes, once,
//! in the transaction that brings it to format 11 ([`rebuild`]).

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::redo::Logged;
use super::tables::VISIBILITY;
use super::visibility;
use super::{open_read, redb_err};
use crate::history::WorkflowStatus;
use crate::store::StoreError;

pub(crate) const COUNTS: TableDefinition<u8, u64> = TableDefinition::new("status_counts");

/// Every status, in the order counts are answered.
const STATUSES: [WorkflowStatus; 7] = WorkflowStatus::ALL;

/// The changes one batch made to the counts, by status code.
#[derive(Debug, Default)]
pub(super) struct Deltas([i64; STATUSES.len()]);

impl Deltas {
    pub(super) fn add(&mut self, status: WorkflowStatus, by: i64) {
        if let Some(slot) = self.0.get_mut(usize::from(visibility::status_code(status))) {
            *slot += by;
        }
    }

    /// Applies the changes to the table, opened in the batch's transaction.
    pub(super) fn apply(&self, table: &mut Logged<'_, u8, u64>) -> Result<(), StoreError> {
        if self.0.iter().all(|&d| d == 0) {
            return Ok(());
        }
        for (code, &delta) in self.0.iter().enumerate() {
            if delta == 0 {
                continue;
            }
            let code = code as u8;
            let now = table.get(code).map_err(redb_err)?.map_or(0, |v| v.value());
            // Only a damaged table could make a count negative; a count is
            // a view, never a reason to refuse a write.
            let next = now.saturating_add_signed(delta);
            table.insert(code, next).map_err(redb_err)?;
        }
        Ok(())
    }
}

/// Counts every run of the indexes and writes the table anew (a migration
/// to format 11, inside its transaction).
pub(super) fn rebuild(txn: &WriteTransaction) -> Result<(), StoreError> {
    let counted = {
        let index = txn.open_table(VISIBILITY).map_err(redb_err)?;
        STATUSES
            .iter()
            .map(|&status| visibility::count_status(&index, status))
            .collect::<Result<Vec<u64>, StoreError>>()?
    };
    let mut table = txn.open_table(COUNTS).map_err(redb_err)?;
    for (&status, count) in STATUSES.iter().zip(counted) {
        table
            .insert(visibility::status_code(status), count)
            .map_err(redb_err)?;
    }
    Ok(())
}

/// The number of runs of each status, in [`STATUSES`] order.
pub(super) fn read(txn: &ReadTransaction) -> Result<Vec<(WorkflowStatus, u64)>, StoreError> {
    let Some(table) = open_read(txn, COUNTS)? else {
        // A new file has no table until its first run starts; a file of an
        // older format opened read-only (not migrated) has none either:
        // its indexes are counted, at a cost that grows with its runs.
        let Some(index) = open_read(txn, VISIBILITY)? else {
            return Ok(STATUSES.iter().map(|&s| (s, 0)).collect());
        };
        return STATUSES
            .iter()
            .map(|&status| Ok((status, visibility::count_status(&index, status)?)))
            .collect();
    };
    STATUSES
        .iter()
        .map(|&status| {
            let count = table
                .get(visibility::status_code(status))
                .map_err(redb_err)?
                .map_or(0, |v| v.value());
            Ok((status, count))
        })
        .collect()
}
