//! The store in one redb file: the only module that imports redb.
//!
//! Writes go through the group-commit writer thread ([`writer`]); reads use
//! their own read transactions from any thread. The file's layout is in
//! [`tables`] and `FORMAT.md`; [`visibility`] keeps the indexes `list`
//! reads, [`retention`] sweeps expired runs, [`create`] makes a new file
//! atomically and [`format`] checks (and migrates) an existing one.

/// The file-lock methods of a `StorageBackend` that wraps another in its
/// `inner` field, passed through unchanged (the test backends').
#[cfg(feature = "fault-injection")]
macro_rules! locks_of_inner {
    () => {
        fn try_lock_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<bool, ::redb::BackendError> {
            self.inner.try_lock_range(start, end)
        }

        fn try_lock_shared_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<bool, ::redb::BackendError> {
            self.inner.try_lock_shared_range(start, end)
        }

        fn lock_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<(), ::redb::BackendError> {
            self.inner.lock_range(start, end)
        }

        fn lock_shared_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<(), ::redb::BackendError> {
            self.inner.lock_shared_range(start, end)
        }

        fn unlock_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<(), ::redb::BackendError> {
            self.inner.unlock_range(start, end)
        }

        fn query_lock_range(
            &self,
            start: std::ops::Bound<u64>,
            end: std::ops::Bound<u64>,
        ) -> Result<bool, ::redb::BackendError> {
            self.inner.query_lock_range(start, end)
        }
    };
}

mod children;
mod counts;
mod create;
mod external;
#[cfg(feature = "fault-injection")]
mod faults;
mod file;
mod format;
mod journal;
#[cfg(feature = "fault-injection")]
mod power_cut;
mod read_only;
mod reads;
mod redo;
mod retention;
mod schedules;
mod tables;
mod visibility;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use ::redb::{Database, ReadableDatabase};
use futures::future::{BoxFuture, ready};
use std::sync::mpsc;
use tokio::sync::oneshot;

use super::{Query, QueryPage, RunRecord, Store, StoreError, WriteOp, WriteOutcome};
use crate::error::OpenError;
use crate::history::{Event, EventId, RunId, WorkflowStatus};

#[cfg(feature = "fault-injection")]
pub use faults::FaultInjector;
pub(crate) use file::{Backend, DbCell};
#[cfg(feature = "fault-injection")]
pub use power_cut::{CutImage, CutMode, PowerCut};
pub(crate) use read_only::ReadOnlyStore;
#[cfg(feature = "postgres")]
pub(crate) use tables::STORE_FORMAT_VERSION;

/// Classifies a redb error: an I/O error (a full disk or another), damage,
/// or redb's "previous I/O error".
pub(crate) fn redb_err(err: impl Into<::redb::Error>) -> StoreError {
    let err = err.into();
    match &err {
        ::redb::Error::Io(io) => io_err(io),
        ::redb::Error::Backend(inner) => match inner.downcast_ref::<std::io::Error>() {
            Some(io) => io_err(io),
            None => StoreError::Io(err.to_string()),
        },
        // A table of the wrong kind or an old redb layout is not a disk
        // fault: retrying cannot help, the file is not what it should be.
        ::redb::Error::Corrupted(_)
        | ::redb::Error::TableTypeMismatch { .. }
        | ::redb::Error::TableIsMultimap(_)
        | ::redb::Error::TableIsNotMultimap(_)
        | ::redb::Error::UpgradeRequired(_) => StoreError::Damaged(format!(
            "the file is damaged (redb: {err}); restore it from a backup"
        )),
        ::redb::Error::PreviousIo => StoreError::Broken,
        _ => StoreError::Io(err.to_string()),
    }
}

/// Classifies an I/O error: a full disk, or another I/O error.
pub(crate) fn io_err(err: &std::io::Error) -> StoreError {
    if is_disk_full(err) {
        StoreError::Full(err.to_string())
    } else {
        StoreError::Io(err.to_string())
    }
}

/// No space (`ENOSPC`) or no quota (`EDQUOT`) left, also when wrapped in
/// another I/O error (std maps both raw OS errors to these kinds).
fn is_disk_full(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    ) || err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .is_some_and(is_disk_full)
}

/// The store in one redb file.
#[derive(Debug)]
pub(crate) struct RedbStore {
    /// Shared with the writer thread.
    db: Arc<DbCell>,
    /// Requests to the writer thread; `None` once closed.
    tx: Mutex<Option<mpsc::Sender<writer::Request>>>,
    /// Joined on close, so the file is unlocked when `close` returns.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RedbStore {
    /// Opens or creates the file and checks its format version; `shared`
    /// lets other processes open it read-only while it is open (see
    /// [`Backend::open`]).
    pub(crate) fn open(
        path: &Path,
        backend: Backend,
        cache_bytes: usize,
        shared: bool,
    ) -> Result<RedbStore, OpenError> {
        create::remove_stray_temporaries(path);
        if !path.exists() {
            create::create(path, &backend, cache_bytes)?;
        }
        // redb trusts a cleanly closed file and may panic on one damaged
        // outside it; an open that checks every page reports the damage
        // instead, so it is the fallback (it costs a walk of the file).
        let (db, damaged) = match file::contain(|| {
            open_checked(path, &backend, false, cache_bytes, shared)
        }) {
            Ok(opened) => (opened?, false),
            Err(panic) => {
                tracing::warn!(path = %path.display(), error = %panic, "opening the file again, checking every page");
                let opened =
                    file::contain(|| open_checked(path, &backend, true, cache_bytes, shared))
                        .map_err(|message| OpenError::Unreadable {
                            path: path.to_path_buf(),
                            message,
                        })?;
                (opened?, true)
            }
        };
        // A shared file's commits are durable by themselves (redb makes no
        // other kind in that mode); only an exclusive one keeps a journal.
        // Either recovers from one a crash left (an exclusive engine's),
        // before anything else is written: the file's commits must follow
        // the journal's, and once the file holds them no open applies
        // them again.
        let journal = if shared && !journal::path_of(path).exists() {
            None
        } else {
            let mut journal = backend
                .open_journal(path)
                .map_err(|e| open_error(path, redb_err(e)))?;
            file::contain(|| journal.recover(&db))
                .map_err(|message| OpenError::Unreadable {
                    path: path.to_path_buf(),
                    message,
                })?
                .map_err(|e| open_error(path, e))?;
            (!shared).then_some(journal)
        };
        let db = Arc::new(DbCell::new(
            path,
            backend,
            cache_bytes,
            shared,
            db,
            damaged,
            journal,
        ));
        let (tx, rx) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("steadfast-writer".into())
            .spawn(move || writer::run(writer_db, rx))
            .map_err(|source| OpenError::Thread {
                thread: "writer",
                source,
            })?;
        Ok(RedbStore {
            db,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Applies `op` in a durable commit (possibly shared with other
    /// callers) and answers once it is durable.
    async fn write_op(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let tx = self.tx.lock().map_err(|_| StoreError::Closed)?;
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(writer::Request { op, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        let writer::Reply { outcome, op } = answer.await.map_err(|_| StoreError::Closed)?;
        // Freed here, not on the writer thread (see `writer::Reply`).
        drop(op);
        outcome
    }

    /// Runs a read on the file. A panic of redb on a damaged page becomes
    /// an error naming `workflow_id` (if the read is about one workflow).
    fn read<T>(
        &self,
        workflow_id: Option<&str>,
        f: impl FnOnce(&dyn ReadableDatabase) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db.get()?;
        let result = reads::contained(workflow_id, || f(&*db));
        // A read that failed on the disk may have broken the handle as a
        // failed commit does (redb then refuses every later call): hand it
        // back to be checked and, if broken, opened again, or no read would
        // ever work again without a commit. Otherwise let go of it first: a
        // writer discarding it waits (holding the cell's lock) for every
        // clone to drop, and `failure` takes that lock.
        if matches!(
            result,
            Err(StoreError::Io(_) | StoreError::Full(_) | StoreError::Broken)
        ) {
            self.db.discard(db, false);
        } else {
            drop(db);
        }
        // A read on a handle a failed write broke meanwhile: say what broke it.
        result.map_err(|e| match e {
            StoreError::Broken => self.db.failure(),
            other => other,
        })
    }

    /// The latest run of a workflow ID.
    fn read_current_run(
        &self,
        workflow_id: &str,
    ) -> Result<Option<(RunId, RunRecord)>, StoreError> {
        self.read(Some(workflow_id), |db| reads::current_run(db, workflow_id))
    }

    /// One run's record.
    fn read_run(&self, run_id: RunId, workflow_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read(Some(workflow_id), |db| reads::run(db, run_id, workflow_id))
    }

    /// The number of events in a run's history (its last event ID).
    fn read_history_len(&self, run_id: RunId, workflow_id: &str) -> Result<u64, StoreError> {
        self.read(Some(workflow_id), |db| reads::history_len(db, run_id))
    }

    /// The last event of a run's history.
    fn read_last_event(
        &self,
        run_id: RunId,
        workflow_id: &str,
    ) -> Result<Option<Event>, StoreError> {
        self.read(Some(workflow_id), |db| {
            reads::last_event(db, run_id, workflow_id)
        })
    }

    /// One page of the runs a query matches, in list order, read from the
    /// visibility indexes (see `visibility`).
    fn read_list(&self, query: &Query) -> Result<QueryPage, StoreError> {
        self.read(None, |db| reads::list(db, query))
    }

    /// Runs due to wake in `[from, to)` ms since the epoch, in time order.
    fn read_wakeups(&self, from: u64, to: u64) -> Result<Vec<(u64, RunId)>, StoreError> {
        self.read(None, |db| reads::wakeups(db, from, to))
    }

    /// Up to `limit` events of a run's history from `from` on, read in one
    /// transaction and checked: each stored under its own ID, numbered
    /// without gaps from `from`.
    fn read_history(
        &self,
        run_id: RunId,
        workflow_id: &str,
        from: EventId,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(Some(workflow_id), |db| {
            reads::history(db, run_id, workflow_id, from, limit)
        })
    }

    /// Stops the writer after the requests already sent, and releases the
    /// file once no read is in flight.
    fn close_file(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
        // A read in flight holds a clone for a moment; `close` waits for it
        // so the file lock is gone when this returns.
        self.db.close();
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close_file();
    }
}

fn open_checked(
    path: &Path,
    backend: &Backend,
    checked: bool,
    cache_bytes: usize,
    shared: bool,
) -> Result<Database, OpenError> {
    let db = backend
        .open(path, checked, cache_bytes, shared)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyInUse {
                path: path.to_path_buf(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Io(e))
                if create::is_not_writable(&e) =>
            {
                OpenError::NotWritable {
                    path: path.to_path_buf(),
                    place: path.to_path_buf(),
                    message: e.to_string(),
                }
            }
            other => open_error(path, redb_err(other)),
        })?;
    format::check_format(&db).map_err(|e| open_error(path, e))??;
    Ok(db)
}

/// The open's error for a storage failure while opening or creating the
/// file: a full disk is told apart, anything else makes it unreadable.
fn open_error(path: &Path, err: StoreError) -> OpenError {
    match err {
        StoreError::Full(message) => OpenError::DiskFull {
            path: path.to_path_buf(),
            message,
        },
        other => OpenError::Unreadable {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

/// Opens a table for reading; `None` when no write has created it yet (a
/// new file), which readers treat as empty.
fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: redb::TableDefinition<'static, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(redb_err(e)),
    }
}

/// Reads of one file are quick and local: they run where they are called
/// (as a redb read always has), and the futures are ready at once.
impl Store for RedbStore {
    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<WriteOutcome, StoreError>> {
        Box::pin(self.write_op(op))
    }

    fn current_run<'a>(
        &'a self,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(RunId, RunRecord)>, StoreError>> {
        Box::pin(ready(self.read_current_run(workflow_id)))
    }

    fn run<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(ready(self.read_run(run_id, workflow_id)))
    }

    fn history_page<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
        from: EventId,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(ready(self.read_history(run_id, workflow_id, from, limit)))
    }

    /// One transaction for the whole history: one snapshot, one B-tree walk.
    fn history<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(ready(self.read_history(run_id, workflow_id, 1, usize::MAX)))
    }

    fn history_len<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(ready(self.read_history_len(run_id, workflow_id)))
    }

    fn last_event<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Event>, StoreError>> {
        Box::pin(ready(self.read_last_event(run_id, workflow_id)))
    }

    fn wakeups(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<(u64, RunId)>, StoreError>> {
        Box::pin(ready(self.read_wakeups(from, to)))
    }

    fn list<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<QueryPage, StoreError>> {
        Box::pin(ready(self.read_list(query)))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<(WorkflowStatus, u64)>, StoreError>> {
        Box::pin(ready(self.read(None, reads::counts)))
    }

    fn schedule<'a>(
        &'a self,
        schedule_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(ready(
            self.read(None, |db| schedules::schedule(db, schedule_id)),
        ))
    }

    fn schedules<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(ready(
            self.read(None, |db| schedules::schedules(db, after, limit)),
        ))
    }

    fn any_closed_by(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(ready(self.read_any_closed_by(cutoff)))
    }

    fn retry_delay(&self) -> std::time::Duration {
        self.db.retry_delay()
    }

    fn failure(&self) -> StoreError {
        self.db.failure()
    }

    fn close(&self) {
        self.close_file();
    }
}
