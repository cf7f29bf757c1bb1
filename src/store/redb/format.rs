//! The store format of a file: written into a new one, checked (and a
//! format-1 file migrated in place) when an existing one opens.

use ::redb::{Database, ReadableTable, TableHandle};

use super::redb_err;
use super::tables::{
    FORMAT_KEY, META, STORE_FORMAT_V1, STORE_FORMAT_V2, STORE_FORMAT_V3, STORE_FORMAT_V4,
    STORE_FORMAT_V5, STORE_FORMAT_V6, STORE_FORMAT_V7, STORE_FORMAT_V8, STORE_FORMAT_V9,
    STORE_FORMAT_V10, STORE_FORMAT_V11, STORE_FORMAT_V12, STORE_FORMAT_V13, STORE_FORMAT_V14,
    STORE_FORMAT_V15, STORE_FORMAT_V16, STORE_FORMAT_V17, STORE_FORMAT_VERSION,
};
use super::{counts, visibility};
use crate::error::OpenError;
use crate::store::StoreError;

/// Writes the format version into a new file, or checks an existing one.
/// The outer error is a storage failure, the inner one a refusal.
pub(super) fn check_format(db: &Database) -> Result<Result<(), OpenError>, StoreError> {
    let txn = db.begin_write().map_err(redb_err)?;
    let found = {
        let meta = txn.open_table(META).map_err(redb_err)?;
        let found = meta
            .get(FORMAT_KEY)
            .map_err(redb_err)?
            .map(|v| v.value().to_vec());
        match found {
            Some(bytes) => {
                let arr: [u8; 4] = bytes.as_slice().try_into().map_err(|_| {
                    StoreError::Damaged("the format version record is corrupt".to_string())
                })?;
                Some(u32::from_le_bytes(arr))
            }
            None => None,
        }
    };
    if found.is_none() {
        // No format recorded: a new (or empty) file gets the current one.
        // A database that already holds tables of its own is another
        // program's; taking it over would mix our tables into its file.
        let foreign: Vec<String> = txn
            .list_tables()
            .map_err(redb_err)?
            .map(|t| t.name().to_string())
            .filter(|name| name != META.name())
            .collect();
        if !foreign.is_empty() {
            txn.abort().map_err(redb_err)?;
            return Err(StoreError::Damaged(format!(
                "it is a redb database of another program (tables {foreign:?}) with no steadfast \
                 format; open a steadfast file, or a path where none exists yet"
            )));
        }
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        meta.insert(FORMAT_KEY, STORE_FORMAT_VERSION.to_le_bytes().as_slice())
            .map_err(redb_err)?;
    }
    match found {
        Some(v) if v > STORE_FORMAT_VERSION => {
            txn.abort().map_err(redb_err)?;
            Ok(Err(OpenError::NewerFormat {
                found: v,
                supported: STORE_FORMAT_VERSION,
            }))
        }
        Some(STORE_FORMAT_V1) => {
            migrate_v1(txn)?;
            Ok(Ok(()))
        }
        // Formats 2 to 10 have today's tables but `status_counts`; only
        // their event kinds (and statuses, and event record versions) are
        // fewer, so counting their runs and setting the version is the
        // whole migration.
        Some(
            v @ (STORE_FORMAT_V2 | STORE_FORMAT_V3 | STORE_FORMAT_V4 | STORE_FORMAT_V5
            | STORE_FORMAT_V6 | STORE_FORMAT_V7 | STORE_FORMAT_V8 | STORE_FORMAT_V9
            | STORE_FORMAT_V10),
        ) => {
            migrate_v2(txn, v)?;
            Ok(Ok(()))
        }
        // Formats 11 to 16 have today's tables (but `schedules` before 14,
        // which the first schedule creates); only their event kinds (and,
        // before 13, their run record versions; before 16, their schedule
        // record versions) are fewer.
        Some(
            v @ (STORE_FORMAT_V11 | STORE_FORMAT_V12 | STORE_FORMAT_V13 | STORE_FORMAT_V14
            | STORE_FORMAT_V15 | STORE_FORMAT_V16 | STORE_FORMAT_V17),
        ) => {
            set_current(txn, v)?;
            Ok(Ok(()))
        }
        Some(STORE_FORMAT_VERSION) => {
            txn.abort().map_err(redb_err)?;
            Ok(Ok(()))
        }
        // Below the first format: no steadfast wrote it.
        Some(v) => {
            txn.abort().map_err(redb_err)?;
            Err(StoreError::Damaged(format!(
                "the file names store format {v}, which no steadfast writes; \
                 restore it from a backup"
            )))
        }
        None => {
            txn.commit().map_err(redb_err)?;
            Ok(Ok(()))
        }
    }
}

/// Brings a file of formats 2 to 10 (`found`) to the current format: its
/// tables are already today's but for `status_counts` (formats 3 to 10
/// only add event kinds), so its runs are counted from its indexes and the
/// version changes, and from then on an older build refuses the file
/// instead of misreading the new events or leaving the counts behind. One
/// transaction (a pass over the index keys of every run, once), atomic like
/// every redb commit.
fn migrate_v2(txn: redb::WriteTransaction, found: u32) -> Result<(), StoreError> {
    counts::rebuild(&txn)?;
    {
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        meta.insert(FORMAT_KEY, STORE_FORMAT_VERSION.to_le_bytes().as_slice())
            .map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)?;
    tracing::info!("opened a store format {found} file as format {STORE_FORMAT_VERSION}");
    Ok(())
}

/// Brings a file of formats 11 to 16 to the current format by its version
/// alone (formats 12, 13, 15, 16 and 17 add event kinds, 13 a run record
/// version, 16 a schedule record version, format 14 a table the first
/// schedule creates), so that an older build
/// refuses it instead of misreading the new records or missing the
/// schedules.
fn set_current(txn: redb::WriteTransaction, found: u32) -> Result<(), StoreError> {
    {
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        meta.insert(FORMAT_KEY, STORE_FORMAT_VERSION.to_le_bytes().as_slice())
            .map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)?;
    tracing::info!("opened a store format {found} file as format {STORE_FORMAT_VERSION}");
    Ok(())
}

/// Migrates a format-1 file: builds the visibility indexes of every run and
/// sets the current format (formats 3 and 4 change no table), in the one
/// transaction `txn`, committed with immediate durability, so a crash at any moment leaves either the old file or the
/// new one (redb commits are atomic). Its cost is a pass over every run
/// record, once.
fn migrate_v1(txn: redb::WriteTransaction) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let runs = visibility::build_all(&txn)?;
    counts::rebuild(&txn)?;
    {
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        meta.insert(FORMAT_KEY, STORE_FORMAT_VERSION.to_le_bytes().as_slice())
            .map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)?;
    tracing::info!(
        runs,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "migrated the file from store format {STORE_FORMAT_V1} to {STORE_FORMAT_VERSION}"
    );
    Ok(())
}
