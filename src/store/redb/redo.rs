//! The redo log of a write transaction: every insert and removal a batch
//! makes in the file's tables, recorded as bytes while the batch is applied
//! (by [`Logged`] tables), so that the journal (`journal.rs`) can make the
//! batch durable with one small write and replay it onto the file after a
//! crash.
//!
//! The log is physical, not logical: it names tables and the bytes of keys
//! and values as redb stores them, not the operations that chose them. So
//! its encoding does not change when an operation does, and replaying it
//! decides nothing again: the file ends as the live transaction left it.
//!
//! Encoding of one transaction's log (a journal entry's payload), a
//! sequence of records, lengths little-endian:
//! - insert: `tag u8`, `0u8`, key length `u32`, key, value length `u32`, value;
//! - removal: `tag u8`, `1u8`, key length `u32`, key;
//! - removal of a key range, both ends included: `tag u8`, `2u8`, length
//!   `u32`, first key, length `u32`, last key.
//!
//! The table tags are part of the file format (FORMAT.md) and never change.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::ops::Deref;
use std::rc::Rc;

use redb::{AccessGuard, Key, Table, TableDefinition, Value, WriteTransaction};

use super::counts::COUNTS;
use super::redb_err;
use super::tables::{HISTORY, RUNNING, RUNS, SCHEDULES, VISIBILITY, WAKEUPS, WORKFLOWS};
use crate::store::StoreError;

/// A table's tag in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Tag {
    Workflows = 1,
    Runs = 2,
    Running = 3,
    Wakeups = 4,
    History = 5,
    Visibility = 6,
    Counts = 7,
    Schedules = 8,
}

const INSERT: u8 = 0;
const REMOVE: u8 = 1;
const REMOVE_RANGE: u8 = 2;

/// The log of the transaction being applied, shared by its tables; off
/// (records nothing, costs nothing) when the file is not journaled.
#[derive(Clone, Debug, Default)]
pub(super) struct Log(Option<Rc<RefCell<Vec<u8>>>>);

impl Log {
    /// A log that records.
    pub(super) fn recording() -> Self {
        Log(Some(Rc::default()))
    }

    /// What was recorded so far, leaving the log empty.
    pub(super) fn take(&self) -> Vec<u8> {
        self.0
            .as_ref()
            .map(|log| std::mem::take(&mut *log.borrow_mut()))
            .unwrap_or_default()
    }

    fn record(&self, tag: Tag, kind: u8, parts: &[&[u8]]) {
        if let Some(log) = &self.0 {
            let mut log = log.borrow_mut();
            log.push(tag as u8);
            log.push(kind);
            for part in parts {
                // A redb key or value is under 4 GiB (redb's own limit).
                log.extend_from_slice(&(part.len() as u32).to_le_bytes());
                log.extend_from_slice(part);
            }
        }
    }
}

/// A table of the batch's transaction whose changes are recorded in its
/// log. Reads go to the table itself (through `Deref`); every change goes
/// through the methods here, since the table is not reachable mutably
/// otherwise.
pub(super) struct Logged<'txn, K: Key + 'static, V: Value + 'static> {
    table: Table<'txn, K, V>,
    tag: Tag,
    log: Log,
}

impl<'txn, K: Key + 'static, V: Value + 'static> Logged<'txn, K, V> {
    /// Opens `definition` in `txn`, recording into `log` under `tag`.
    pub(super) fn open(
        txn: &'txn WriteTransaction,
        definition: TableDefinition<K, V>,
        tag: Tag,
        log: &Log,
    ) -> Result<Self, StoreError> {
        Ok(Logged {
            table: txn.open_table(definition).map_err(redb_err)?,
            tag,
            log: log.clone(),
        })
    }

    pub(super) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, redb::StorageError> {
        self.log.record(
            self.tag,
            INSERT,
            &[
                K::as_bytes(key.borrow()).as_ref(),
                V::as_bytes(value.borrow()).as_ref(),
            ],
        );
        self.table.insert(key, value)
    }

    pub(super) fn remove<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuard<'_, V>>, redb::StorageError> {
        self.log
            .record(self.tag, REMOVE, &[K::as_bytes(key.borrow()).as_ref()]);
        self.table.remove(key)
    }

    /// Removes every key from `first` to `last`, both included.
    pub(super) fn remove_range<'k>(
        &mut self,
        first: K::SelfType<'k>,
        last: K::SelfType<'k>,
    ) -> Result<(), redb::StorageError> {
        self.log.record(
            self.tag,
            REMOVE_RANGE,
            &[K::as_bytes(&first).as_ref(), K::as_bytes(&last).as_ref()],
        );
        self.table.retain_in(first..=last, |_, _| false)
    }
}

impl<'txn, K: Key + 'static, V: Value + 'static> Deref for Logged<'txn, K, V> {
    type Target = Table<'txn, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

/// Applies recorded logs to `txn`'s tables, in order, as the transactions
/// that recorded them did. Tables are opened as the first record of each
/// needs them, once per replay.
pub(super) struct Replay<'txn> {
    txn: &'txn WriteTransaction,
    workflows: Option<Table<'txn, &'static str, u128>>,
    runs: Option<Table<'txn, u128, &'static [u8]>>,
    running: Option<Table<'txn, u128, u64>>,
    wakeups: Option<Table<'txn, (u64, u128), ()>>,
    history: Option<Table<'txn, (u128, u64), &'static [u8]>>,
    visibility: Option<Table<'txn, &'static [u8], ()>>,
    counts: Option<Table<'txn, u8, u64>>,
    schedules: Option<Table<'txn, &'static str, &'static [u8]>>,
}

impl<'txn> Replay<'txn> {
    pub(super) fn new(txn: &'txn WriteTransaction) -> Self {
        Replay {
            txn,
            workflows: None,
            runs: None,
            running: None,
            wakeups: None,
            history: None,
            visibility: None,
            counts: None,
            schedules: None,
        }
    }

    /// Applies one transaction's log.
    pub(super) fn apply(&mut self, log: &[u8]) -> Result<(), StoreError> {
        let txn = self.txn;
        let mut records = Records { rest: log };
        while let Some((tag, kind, first, second)) = records.next()? {
            let change = (kind, first, second);
            match tag {
                t if t == Tag::Workflows as u8 => {
                    apply(txn, &mut self.workflows, WORKFLOWS, change)?
                }
                t if t == Tag::Runs as u8 => apply(txn, &mut self.runs, RUNS, change)?,
                t if t == Tag::Running as u8 => apply(txn, &mut self.running, RUNNING, change)?,
                t if t == Tag::Wakeups as u8 => apply(txn, &mut self.wakeups, WAKEUPS, change)?,
                t if t == Tag::History as u8 => apply(txn, &mut self.history, HISTORY, change)?,
                t if t == Tag::Visibility as u8 => {
                    apply(txn, &mut self.visibility, VISIBILITY, change)?
                }
                t if t == Tag::Counts as u8 => apply(txn, &mut self.counts, COUNTS, change)?,
                t if t == Tag::Schedules as u8 => {
                    apply(txn, &mut self.schedules, SCHEDULES, change)?
                }
                other => return Err(damaged(format!("names table tag {other}, which is none"))),
            }
        }
        Ok(())
    }
}

fn apply<'txn, K: Key + 'static, V: Value + 'static>(
    txn: &'txn WriteTransaction,
    table: &mut Option<Table<'txn, K, V>>,
    definition: TableDefinition<K, V>,
    (kind, first, second): (u8, &[u8], &[u8]),
) -> Result<(), StoreError> {
    let table = match table {
        Some(table) => table,
        None => table.insert(txn.open_table(definition).map_err(redb_err)?),
    };
    match kind {
        INSERT => {
            table
                .insert(K::from_bytes(first), V::from_bytes(second))
                .map_err(redb_err)?;
        }
        REMOVE => {
            table.remove(K::from_bytes(first)).map_err(redb_err)?;
        }
        REMOVE_RANGE => table
            .retain_in(K::from_bytes(first)..=K::from_bytes(second), |_, _| false)
            .map_err(redb_err)?,
        other => {
            return Err(damaged(format!(
                "holds a change of kind {other}, which is none"
            )));
        }
    }
    Ok(())
}

fn damaged(what: String) -> StoreError {
    StoreError::Damaged(format!(
        "the journal beside the file {what}; restore the file and its journal from a backup"
    ))
}

/// Reads a log's records one by one.
struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    /// The next record: its tag, kind and one or two byte strings (the
    /// second empty for a removal).
    #[allow(clippy::type_complexity)]
    fn next(&mut self) -> Result<Option<(u8, u8, &'a [u8], &'a [u8])>, StoreError> {
        let [tag, kind, rest @ ..] = self.rest else {
            return match self.rest {
                [] => Ok(None),
                _ => Err(damaged("ends inside a change".into())),
            };
        };
        let (tag, kind) = (*tag, *kind);
        self.rest = rest;
        let first = self.part()?;
        let second = match kind {
            REMOVE => &[][..],
            _ => self.part()?,
        };
        Ok(Some((tag, kind, first, second)))
    }

    fn part(&mut self) -> Result<&'a [u8], StoreError> {
        let short = || damaged("ends inside a change".into());
        let (len, rest) = self.rest.split_at_checked(4).ok_or_else(short)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| short())?) as usize;
        let (part, rest) = rest.split_at_checked(len).ok_or_else(short)?;
        self.rest = rest;
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_replays_onto_another_file_as_it_was_written() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let written = redb::Database::create(dir.path().join("a")).expect("create a");
        let log = Log::recording();
        let txn = written.begin_write().expect("write a");
        {
            let mut runs = Logged::open(&txn, RUNS, Tag::Runs, &log).expect("runs");
            let mut history = Logged::open(&txn, HISTORY, Tag::History, &log).expect("history");
            runs.insert(7u128, b"seven".as_slice()).expect("insert");
            runs.insert(8u128, b"eight".as_slice()).expect("insert");
            runs.remove(8u128).expect("remove");
            for id in 1..=5u64 {
                history.insert((7u128, id), b"e".as_slice()).expect("event");
                history.insert((9u128, id), b"e".as_slice()).expect("event");
            }
            history.remove_range((9u128, 2), (9u128, 4)).expect("range");
        }
        txn.commit().expect("commit a");
        let bytes = log.take();
        assert!(log.take().is_empty(), "take empties the log");

        let replayed = redb::Database::create(dir.path().join("b")).expect("create b");
        let txn = replayed.begin_write().expect("write b");
        Replay::new(&txn).apply(&bytes).expect("replay");
        txn.commit().expect("commit b");

        let contents = |db: &redb::Database| {
            use redb::{ReadableDatabase, ReadableTable};
            let txn = db.begin_read().expect("read");
            let runs: Vec<(u128, Vec<u8>)> = txn
                .open_table(RUNS)
                .expect("runs")
                .iter()
                .expect("iter")
                .map(|e| {
                    e.map(|(k, v)| (k.value(), v.value().to_vec()))
                        .expect("entry")
                })
                .collect();
            let history: Vec<(u128, u64)> = txn
                .open_table(HISTORY)
                .expect("history")
                .iter()
                .expect("iter")
                .map(|e| e.map(|(k, _)| k.value()).expect("entry"))
                .collect();
            (runs, history)
        };
        let (runs, history) = contents(&replayed);
        assert_eq!(runs, vec![(7, b"seven".to_vec())]);
        assert_eq!(
            history.len(),
            7,
            "run 9's events 2 to 4 removed: {history:?}"
        );
        assert_eq!(contents(&written), (runs, history));
    }

    #[test]
    fn a_damaged_log_is_refused_not_half_understood() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = redb::Database::create(dir.path().join("a")).expect("create");
        for bad in [
            &[2u8][..],
            &[2, 0, 4, 0, 0, 0, 1][..],
            &[99, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[2, 9, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            let txn = db.begin_write().expect("write");
            let err = Replay::new(&txn).apply(bad).expect_err("refused");
            assert!(matches!(err, StoreError::Damaged(_)), "{err:?}");
            txn.abort().expect("abort");
        }
    }
}
