//! A read-only handle on a file: redb's `ReadOnlyDatabase`, which never
//! writes (not even a repair or a format migration), so a command-line tool
//! can read a file without changing a byte of it, also while an engine that
//! shares its file has it open (redb's single-writer mode: each read sees
//! the engine's latest commit). Every write is refused with [`StoreError::ReadOnly`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ::redb::{ReadOnlyDatabase, ReadableDatabase};
use futures::future::{BoxFuture, ready};

use super::tables::{FORMAT_KEY, META, STORE_FORMAT_V1, STORE_FORMAT_V2, STORE_FORMAT_VERSION};
use super::{file, open_read, reads, redb_err};
use crate::error::OpenError;
use crate::history::{Event, EventId, RunId, WorkflowStatus};
use crate::store::{Query, QueryPage, RunRecord, Store, StoreError, WriteOp, WriteOutcome};

/// The file, opened read-only.
pub(crate) struct ReadOnlyStore {
    /// `None` once closed: the file's shared lock is released then, not
    /// when the engine's last clone drops.
    db: Mutex<Option<Arc<ReadOnlyDatabase>>>,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore").finish_non_exhaustive()
    }
}

impl ReadOnlyStore {
    /// Opens an existing file without writing to it and checks that this
    /// build reads its format as it is.
    pub(crate) fn open(path: &Path, cache_bytes: usize) -> Result<ReadOnlyStore, OpenError> {
        if !path.exists() {
            return Err(OpenError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let unreadable = |message: String| OpenError::Unreadable {
            path: path.to_path_buf(),
            message,
        };
        let opened = file::contain(|| {
            let mut builder = ::redb::Builder::new();
            builder.set_cache_size(cache_bytes);
            // The mode of an engine that shares its file: beside one
            // (`EngineBuilder::shared_reads(true)`), this handle reads its
            // commits as they land; beside one that does not (the default,
            // or a build before it), the open is refused as the file is in
            // use.
            builder.set_concurrency_mode(file::concurrency_mode(true));
            builder.open_read_only(path)
        })
        .map_err(unreadable)?;
        let db = opened.map_err(|e| match e {
            ::redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyInUse {
                path: path.to_path_buf(),
            },
            ::redb::DatabaseError::RepairAborted => OpenError::NeedsRecovery {
                path: path.to_path_buf(),
            },
            other => unreadable(redb_err(other).to_string()),
        })?;
        let store = ReadOnlyStore {
            db: Mutex::new(Some(Arc::new(db))),
        };
        match store.format().map_err(|e| unreadable(e.to_string()))? {
            None => Err(unreadable(
                "it holds no steadfast format record: it is not a steadfast file, or one \
                 that was never opened"
                    .to_string(),
            )),
            Some(v) if v > STORE_FORMAT_VERSION => Err(OpenError::NewerFormat {
                found: v,
                supported: STORE_FORMAT_VERSION,
            }),
            Some(STORE_FORMAT_V1) => Err(OpenError::NeedsMigration {
                path: path.to_path_buf(),
                found: STORE_FORMAT_V1,
            }),
            // From format 2 on the tables are today's; later formats only
            // add event kinds and statuses, which this build decodes. A
            // crash may have left commits in the journal only (format 18):
            // then the file alone is not what was acknowledged.
            Some(v) if v >= STORE_FORMAT_V2 => {
                let db = store.handle().map_err(|e| unreadable(e.to_string()))?;
                if super::journal::pending(path, &*db).map_err(|e| unreadable(e.to_string()))? {
                    return Err(OpenError::NeedsRecovery {
                        path: path.to_path_buf(),
                    });
                }
                drop(db);
                Ok(store)
            }
            Some(v) => Err(unreadable(format!(
                "it records store format {v}, which no steadfast wrote"
            ))),
        }
    }

    fn format(&self) -> Result<Option<u32>, StoreError> {
        let db = self.handle()?;
        let txn = db.begin_read().map_err(redb_err)?;
        let Some(meta) = open_read(&txn, META)? else {
            return Ok(None);
        };
        let Some(bytes) = meta.get(FORMAT_KEY).map_err(redb_err)? else {
            return Ok(None);
        };
        let arr: [u8; 4] = bytes
            .value()
            .try_into()
            .map_err(|_| StoreError::Damaged("the format version record is corrupt".to_string()))?;
        Ok(Some(u32::from_le_bytes(arr)))
    }

    /// A read; a panic of redb on a damaged page becomes an error naming
    /// the workflow (as the engine's own reads do).
    fn read<T>(
        &self,
        workflow_id: Option<&str>,
        f: impl FnOnce(&dyn ReadableDatabase) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.handle()?;
        reads::contained(workflow_id, || f(&*db))
    }

    fn handle(&self) -> Result<Arc<ReadOnlyDatabase>, StoreError> {
        let db = self.db.lock().map_err(|_| StoreError::Closed)?;
        db.clone().ok_or(StoreError::Closed)
    }
}

impl Store for ReadOnlyStore {
    fn write(&self, _op: WriteOp) -> BoxFuture<'_, Result<WriteOutcome, StoreError>> {
        Box::pin(ready(Err(StoreError::ReadOnly)))
    }

    fn current_run<'a>(
        &'a self,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(RunId, RunRecord)>, StoreError>> {
        Box::pin(ready(self.read(Some(workflow_id), |db| {
            reads::current_run(db, workflow_id)
        })))
    }

    fn run<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(ready(self.read(Some(workflow_id), |db| {
            reads::run(db, run_id, workflow_id)
        })))
    }

    fn history_page<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
        from: EventId,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(ready(self.read(Some(workflow_id), |db| {
            reads::history(db, run_id, workflow_id, from, limit)
        })))
    }

    fn history<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        self.history_page(run_id, workflow_id, 1, usize::MAX)
    }

    fn history_len<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(ready(
            self.read(Some(workflow_id), |db| reads::history_len(db, run_id)),
        ))
    }

    fn last_event<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Event>, StoreError>> {
        Box::pin(ready(self.read(Some(workflow_id), |db| {
            reads::last_event(db, run_id, workflow_id)
        })))
    }

    /// None: nothing is woken in a file read, so no run is loaded and no
    /// workflow code runs.
    fn wakeups(
        &self,
        _from: u64,
        _to: u64,
    ) -> BoxFuture<'_, Result<Vec<(u64, RunId)>, StoreError>> {
        Box::pin(ready(Ok(Vec::new())))
    }

    fn list<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<QueryPage, StoreError>> {
        Box::pin(ready(self.read(None, |db| reads::list(db, query))))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<(WorkflowStatus, u64)>, StoreError>> {
        Box::pin(ready(self.read(None, reads::counts)))
    }

    fn schedule<'a>(
        &'a self,
        schedule_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(ready(
            self.read(None, |db| super::schedules::schedule(db, schedule_id)),
        ))
    }

    fn schedules<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(ready(
            self.read(None, |db| super::schedules::schedules(db, after, limit)),
        ))
    }

    /// Never asked: a read-only engine runs no retention.
    fn any_closed_by(&self, _cutoff: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(ready(Ok(false)))
    }

    fn retry_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }

    fn failure(&self) -> StoreError {
        StoreError::ReadOnly
    }

    fn close(&self) {
        let taken = self.db.lock().ok().and_then(|mut db| db.take());
        // A read in flight holds a clone for a moment; the last one closes.
        if let Some(db) = taken.and_then(|db| Arc::try_unwrap(db).ok()) {
            let _ = db.close();
        }
    }
}
