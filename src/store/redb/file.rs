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

#[cfg(feature = "fault-injection")]
use super::faults::{FaultInjector, FaultyBackend};
use super::journal::Journal;
#[cfg(feature = "fault-injection")]
use super::power_cut::{PowerCut, PowerCutBackend, Which};
use crate::store::StoreError;

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
    /// panicking on it. `shared` opens it in redb's single-writer mode:
    /// this handle alone writes, and other processes may open the file
    /// read-only ([`ReadOnlyStore`](super::ReadOnlyStore)) and follow its
    /// commits; otherwise the whole file is locked against every other
    /// process.
    pub(super) fn open(
        &self,
        path: &Path,
        checked: bool,
        cache_bytes: usize,
        shared: bool,
    ) -> Result<Database, redb::DatabaseError> {
        let mut builder = redb::Builder::new();
        builder.set_check_integrity_on_open(checked);
        builder.set_cache_size(cache_bytes);
        builder.set_concurrency_mode(concurrency_mode(shared));
        match self {
            Backend::File => builder.create(path),
            #[cfg(feature = "fault-injection")]
            Backend::Faulty(faults) => {
                builder.create_with_backend(FaultyBackend::open(path, faults.clone())?)
            }
            #[cfg(feature = "fault-injection")]
            Backend::PowerCut(power) => builder.create_with_backend(PowerCutBackend::open(
                path,
                power.clone(),
                Which::File,
            )?),
        }
    }

    /// Opens (or creates) the journal beside the file at `path`, through
    /// the same backend as the file, so that the fault and power-cut tests
    /// reach it too.
    pub(super) fn open_journal(&self, path: &Path) -> Result<Journal, redb::DatabaseError> {
        let path = super::journal::path_of(path);
        let file: Box<dyn redb::StorageBackend> = match self {
            Backend::File => Box::new(redb::backends::FileBackend::new(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)?,
            )?),
            #[cfg(feature = "fault-injection")]
            Backend::Faulty(faults) => Box::new(FaultyBackend::open(&path, faults.clone())?),
            #[cfg(feature = "fault-injection")]
            Backend::PowerCut(power) => {
                Box::new(PowerCutBackend::open(&path, power.clone(), Which::Journal)?)
            }
        };
        Ok(Journal::new(file, path))
    }
}

/// redb's mode for a writer that shares the file with readers or not.
pub(super) fn concurrency_mode(shared: bool) -> redb::ConcurrencyMode {
    if shared {
        redb::ConcurrencyMode::SingleWriter
    } else {
        redb::ConcurrencyMode::ExclusiveWriter
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
///
/// While storage keeps failing (a full disk stays full), commits back off:
/// after the first failure the next commit is attempted at once, after each
/// further one in a row the next attempt waits twice as long, up to
/// [`BACKOFF_MAX`], and commits meanwhile get the last failure at once, with
/// no I/O. The file is opened again right after a failure breaks the handle,
/// so reads go on (unless that fails too: then it is tried again after the
/// backoff). A successful commit ends the backoff
/// ([`committed`](Self::committed)).
#[derive(Debug)]
pub(crate) struct DbCell {
    path: PathBuf,
    backend: Backend,
    /// redb's page cache size, for opening the file again.
    cache_bytes: usize,
    /// Opened in redb's single-writer mode (readers of other processes
    /// allowed), for opening the file again the same way.
    shared: bool,
    state: Mutex<CellState>,
    /// Set once redb panicked on the file: later opens check every page.
    damaged: AtomicBool,
    /// The journal beside the file; none when it is shared (redb makes
    /// every commit of a file shared with other processes durable itself).
    /// Locked by the writer thread for each commit, and by an open of the
    /// file again (with `state` locked first), which recovers from it.
    journal: Option<Mutex<Journal>>,
}

#[derive(Debug)]
struct CellState {
    db: DbState,
    /// Storage failures (failed commits and failed opens) since the last
    /// successful commit.
    failures: u32,
    /// The latest of them, and when the next attempt is worth making.
    /// Real time, not the engine's clock (`crate::clock`): the backoff
    /// paces a failing disk, whatever time the workflows see.
    last: Option<(StoreError, Instant)>,
}

#[derive(Debug)]
enum DbState {
    Open(Arc<Database>),
    /// Dropped after a storage failure; opened again on the first use once
    /// the backoff (`CellState::last`) has passed.
    Failed,
    Closed,
}

/// The first wait between attempts that fail in a row (the attempt right
/// after a first failure is made at once).
const BACKOFF_FIRST: Duration = Duration::from_millis(50);

/// The longest wait between attempts while storage fails: an attempt may
/// walk the whole file (redb's repair when opening it again), so a full
/// disk must not turn into a busy loop; and once space is freed the engine
/// goes on within this time.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The wait after `failures` failures in a row.
fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => BACKOFF_FIRST
            .saturating_mul(1u32 << (n - 2).min(16))
            .min(BACKOFF_MAX),
    }
}

impl CellState {
    /// The last failure, while the next attempt is not yet worth making.
    fn backing_off(&self) -> Option<StoreError> {
        match &self.last {
            Some((error, retry_at)) if Instant::now() < *retry_at => Some(error.clone()),
            _ => None,
        }
    }

    fn failed(&mut self, error: StoreError) {
        self.failures = self.failures.saturating_add(1);
        let retry_at = Instant::now() + backoff(self.failures);
        self.last = Some((error, retry_at));
    }
}

impl DbCell {
    pub(super) fn new(
        path: &Path,
        backend: Backend,
        cache_bytes: usize,
        shared: bool,
        db: Database,
        damaged: bool,
        journal: Option<Journal>,
    ) -> Self {
        DbCell {
            journal: journal.map(Mutex::new),
            path: path.to_path_buf(),
            backend,
            cache_bytes,
            shared,
            state: Mutex::new(CellState {
                db: DbState::Open(Arc::new(db)),
                failures: 0,
                last: None,
            }),
            damaged: AtomicBool::new(damaged),
        }
    }

    /// The journal, for the writer thread's commits; `None` for a shared
    /// file, whose commits are durable by themselves.
    pub(crate) fn journal(&self) -> Option<MutexGuard<'_, Journal>> {
        // A journal left by a panic is in a state a reopen recovers from:
        // a panic while writing makes the writer answer a failure and
        // discard the handle, and the open again recovers from the file.
        self.journal
            .as_ref()
            .map(|j| j.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn state(&self) -> MutexGuard<'_, CellState> {
        // Every change to the state is made of plain assignments that
        // cannot panic; a panic elsewhere cannot leave it half-made.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open database, for reads: opened again first if a storage
    /// failure dropped it and the backoff has passed; otherwise the last
    /// failure, at once.
    pub(crate) fn get(&self) -> Result<Arc<Database>, StoreError> {
        let mut state = self.state();
        match &state.db {
            DbState::Open(db) => return Ok(db.clone()),
            DbState::Closed => return Err(StoreError::Closed),
            DbState::Failed => {}
        }
        if let Some(error) = state.backing_off() {
            return Err(error);
        }
        self.open_again(&mut state, true)
    }

    /// The open database, for a commit: while storage fails, only once the
    /// backoff has passed (a commit is what finds out whether the disk has
    /// room again); meanwhile the last failure, at once, with no I/O.
    pub(crate) fn get_for_write(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(error) = self.state().backing_off() {
            return Err(error);
        }
        self.get()
    }

    /// Opens the file again; a failure counts toward the backoff when
    /// `counted` (an attempt of its own, not the one right after a failed
    /// commit, which that commit already counted).
    fn open_again(
        &self,
        state: &mut CellState,
        counted: bool,
    ) -> Result<Arc<Database>, StoreError> {
        let checked = self.damaged.load(Ordering::SeqCst);
        let opened = contain(|| {
            self.backend
                .open(&self.path, checked, self.cache_bytes, self.shared)
        })
        .map_err(StoreError::Damaged)
        .and_then(|r| {
            r.map_err(|e| match e {
                // The dropped handle still holds the file's lock (a read
                // in flight keeps it a moment longer, see `release`): the
                // failure that dropped it is still the one to answer.
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Broken,
                other => super::redb_err(other),
            })
        })
        .and_then(|db| {
            // What the dropped handle committed but did not make durable
            // is in the journal: the file is brought up to it first.
            if let Some(mut journal) = self.journal() {
                contain(|| journal.recover(&db))
                    .map_err(StoreError::Damaged)
                    .and_then(|r| r)?;
            }
            Ok(db)
        });
        match opened {
            Ok(db) => {
                tracing::info!(path = %self.path.display(), "file opened again after a storage failure");
                let db = Arc::new(db);
                state.db = DbState::Open(db.clone());
                Ok(db)
            }
            Err(e) => {
                let e = match e {
                    StoreError::Broken => match &state.last {
                        Some((error, _)) => error.clone(),
                        None => StoreError::Io(
                            "the file is still held by the handle a storage failure \
                             dropped; retry the call"
                                .into(),
                        ),
                    },
                    other => other,
                };
                tracing::warn!(path = %self.path.display(), error = %e, "the file could not be opened again after a storage failure");
                // Right after a failed commit, that commit's failure stays
                // the one answered.
                if counted {
                    state.failed(e.clone());
                }
                Err(e)
            }
        }
    }

    /// The failure that broke the handle, for a call that redb refused with
    /// "previous I/O error".
    pub(crate) fn failure(&self) -> StoreError {
        match &self.state().last {
            Some((error, _)) => error.clone(),
            None => StoreError::Io(
                "an earlier write failed; the file is being opened again, retry the call".into(),
            ),
        }
    }

    /// How long a run parked on a storage failure should wait before it
    /// tries again: until the next attempt on the file is worth making.
    pub(crate) fn retry_delay(&self) -> Duration {
        match &self.state().last {
            Some((_, retry_at)) => retry_at.saturating_duration_since(Instant::now()),
            None => Duration::ZERO,
        }
    }

    /// A commit succeeded: storage works again, the backoff ends.
    pub(crate) fn committed(&self) {
        let mut state = self.state();
        if state.failures > 0 {
            tracing::info!(path = %self.path.display(), failures = state.failures, "storage works again");
            state.failures = 0;
            state.last = None;
        }
    }

    /// Records a failed commit: the backoff grows, and calls refused meanwhile
    /// get `error`.
    pub(crate) fn failed(&self, error: StoreError) {
        self.state().failed(error);
    }

    /// Drops `db` if a failed write left it unusable (or redb panicked on
    /// it: `damaged`), so that the next [`get`](Self::get) opens the file
    /// again, once the backoff has passed. Called by the writer thread, the
    /// only writer, after a failed commit (and [`failed`](Self::failed)),
    /// and by a read that failed on the disk.
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
        if matches!(&state.db, DbState::Open(current) if Arc::ptr_eq(current, &db)) {
            drop(db);
            let broken = std::mem::replace(&mut state.db, DbState::Failed);
            // The lock is held until the old handle has let go of the file,
            // so that nobody opens it again meanwhile.
            release(broken);
            // Opened again at once, so that reads (describe, history, list,
            // loading runs) go on while commits back off; the next commit is
            // attempted once the backoff has passed (`get_for_write`). A
            // failure here leaves the cell failed, tried again after the
            // backoff.
            let _ = self.open_again(&mut state, false);
        }
    }

    /// Closes the file for good.
    pub(super) fn close(&self) {
        let mut state = self.state();
        release(std::mem::replace(&mut state.db, DbState::Closed));
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
