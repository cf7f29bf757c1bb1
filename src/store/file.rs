//! The redb handle of the file: opening it, opening it again after a storage
//! failure, and turning redb's panics on a damaged file into errors.
//!
//! Two facts about redb 4.6 shape this file:
//! - after a failed write, a `Database` answers every later call with
//!   "previous I/O error" until it is closed and opened again;
//! - an open "trusts a file that was shut down cleanly and may panic if it
//!   was corrupted outside redb", and so may reads and writes of damaged
//!   pages; an open that checks every page reports the damage instead.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redb::Database;

use super::StoreError;
#[cfg(feature = "fault-injection")]
use super::faults::{FaultInjector, FaultyBackend};
#[cfg(feature = "fault-injection")]
use super::power_cut::{PowerCut, PowerCutBackend};

/// How the file is opened: with redb's file backend, or (for the fault
/// tests) with a wrapper of it that fails on demand.
#[derive(Clone, Debug, Default)]
pub(crate) enum Backend {
    #[default]
    File,
    #[cfg(feature = "fault-injection")]
    Faulty(FaultInjector),
    /// For the power-cut tests: keeps what a power cut would leave.
    #[cfg(feature = "fault-injection")]
    PowerCut(PowerCut),
}

impl Backend {
    /// Opens (or creates) the file; `checked` verifies every page first,
    /// which costs a walk of the file but reports damage instead of
    /// panicking on it.
    pub(super) fn open(
        &self,
        path: &Path,
        checked: bool,
        cache_bytes: usize,
    ) -> Result<Database, redb::DatabaseError> {
        let mut builder = redb::Builder::new();
        builder.set_check_integrity_on_open(checked);
        builder.set_cache_size(cache_bytes);
        match self {
            Backend::File => builder.create(path),
            #[cfg(feature = "fault-injection")]
            Backend::Faulty(faults) => {
                builder.create_with_backend(FaultyBackend::open(path, faults.clone())?)
            }
            #[cfg(feature = "fault-injection")]
            Backend::PowerCut(power) => {
                builder.create_with_backend(PowerCutBackend::open(path, power.clone())?)
            }
        }
    }
}

/// Runs `f` and turns a panic into an error carrying its message.
///
/// Only for redb calls on the file: redb panics on pages damaged outside it,
/// and a damaged file must give the caller an error, not take down its task
/// (or the writer thread). redb is left in a usable state, or its later calls
/// fail too, and are caught here the same way.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    crate::panic::catch(f)
        .map_err(|text| format!("the file is damaged (redb: {text}); restore it from a backup"))
}

/// The redb handle of the file, shared by the readers and the writer
/// thread.
///
/// After a failed commit the writer hands the broken handle back
/// ([`discard`](Self::discard)), and the next user of the file opens it again
/// ([`get`](Self::get)): once the disk is healthy the engine goes on, from
/// what was durable, without a restart.
#[derive(Debug)]
pub(crate) struct DbCell {
    path: PathBuf,
    backend: Backend,
    /// redb's page cache size, for opening the file again.
    cache_bytes: usize,
    state: Mutex<DbState>,
    /// Set once redb panicked on the file: later opens check every page.
    damaged: AtomicBool,
}

#[derive(Debug)]
enum DbState {
    Open(Arc<Database>),
    /// Dropped after a storage failure; opened again on next use. Holds the
    /// time and error of the last attempt, while attempts fail.
    Failed(Option<(Instant, String)>),
    Closed,
}

/// Least time between two attempts to open the file again while they fail:
/// an attempt may walk the whole file (redb's repair), so runs that retry
/// must not turn a full disk into a busy loop.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

impl DbCell {
    pub(super) fn new(
        path: &Path,
        backend: Backend,
        cache_bytes: usize,
        db: Database,
        damaged: bool,
    ) -> Self {
        DbCell {
            path: path.to_path_buf(),
            backend,
            cache_bytes,
            state: Mutex::new(DbState::Open(Arc::new(db))),
            damaged: AtomicBool::new(damaged),
        }
    }

    fn state(&self) -> MutexGuard<'_, DbState> {
        // Every change to the state is a single assignment; a panic cannot
        // leave it half-made.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open database, opened again first if a storage failure dropped it.
    pub(crate) fn get(&self) -> Result<Arc<Database>, StoreError> {
        let mut state = self.state();
        match &*state {
            DbState::Open(db) => Ok(db.clone()),
            DbState::Closed => Err(StoreError::Closed),
            DbState::Failed(Some((at, message))) if at.elapsed() < REOPEN_INTERVAL => {
                Err(StoreError::Storage(message.clone()))
            }
            DbState::Failed(_) => {
                let checked = self.damaged.load(Ordering::SeqCst);
                let opened = contain(|| self.backend.open(&self.path, checked, self.cache_bytes))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                match opened {
                    Ok(db) => {
                        tracing::info!(path = %self.path.display(), "file opened again after a storage failure");
                        let db = Arc::new(db);
                        *state = DbState::Open(db.clone());
                        Ok(db)
                    }
                    Err(e) => {
                        let message = format!(
                            "the file could not be opened again after a storage failure: {e}"
                        );
                        *state = DbState::Failed(Some((Instant::now(), message.clone())));
                        Err(StoreError::Storage(message))
                    }
                }
            }
        }
    }

    /// Drops `db` if a failed write left it unusable (or redb panicked on
    /// it: `damaged`), so that the next [`get`](Self::get) opens the file
    /// again. Called by the writer thread, the only writer, after a failed
    /// commit.
    pub(crate) fn discard(&self, db: Arc<Database>, damaged: bool) {
        if damaged {
            self.damaged.store(true, Ordering::SeqCst);
        } else {
            // Still usable when a write transaction begins: the failure did
            // not poison the handle.
            match contain(|| db.begin_write().map(|txn| txn.abort())) {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "storage failed; the file will be opened again")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "storage failed; the file will be opened again");
                    self.damaged.store(true, Ordering::SeqCst);
                }
            }
        }
        let mut state = self.state();
        if matches!(&*state, DbState::Open(current) if Arc::ptr_eq(current, &db)) {
            drop(db);
            let broken = std::mem::replace(&mut *state, DbState::Failed(None));
            // The lock is held until the old handle has let go of the file,
            // so that nobody opens it again meanwhile.
            release(broken);
        }
    }

    /// Closes the file for good.
    pub(super) fn close(&self) {
        let mut state = self.state();
        release(std::mem::replace(&mut *state, DbState::Closed));
    }
}

/// Drops the database of `state` and waits (a little) for reads in flight
/// to drop their clones, so that the file lock is gone when this returns.
fn release(state: DbState) {
    let DbState::Open(mut db) = state else {
        return;
    };
    for _ in 0..1000 {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                // Closing a damaged file may panic in redb too.
                if let Err(e) = contain(|| drop(db)) {
                    tracing::warn!(error = %e, "closing the file failed");
                }
                return;
            }
            Err(shared) => db = shared,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
