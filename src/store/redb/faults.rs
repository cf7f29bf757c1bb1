//! Fault injection at the storage boundary, for tests (feature
//! `fault-injection`, hidden from the docs).
//!
//! [`FaultyBackend`] wraps redb's file backend and consults a
//! [`FaultInjector`] before every read, write, sync and resize, so a test
//! can make the disk fail (an I/O error, or a full disk) under a running
//! engine and then heal it. Locks are passed through untouched: the file
//! lock still refuses a second engine on the same file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::backends::FileBackend;
use redb::{DatabaseError, StorageBackend};

/// A handle that makes the storage under an engine fail on purpose; cheap
/// to clone, every clone steers the same faults. Give one to the engine
/// builder's hidden `fault_injector` and keep a clone to flip faults on and
/// off while the engine runs.
///
/// Faults last until [`clear`](Self::clear). Reads fail only when asked to
/// ([`fail_reads`](Self::fail_reads)).
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct FaultInjector {
    state: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    plan: Mutex<Plan>,
    /// Operations failed on purpose so far.
    injected: AtomicU64,
}

/// What fails next; the default fails nothing.
#[derive(Debug, Default)]
struct Plan {
    /// How writes fail once `writes_allowed` is used up.
    writes: Option<Fault>,
    /// Writes that still succeed before `writes` applies.
    writes_allowed: u64,
    /// Whether syncs fail.
    syncs: bool,
    /// Syncs still to fail slowly (each after `slow_sync`) before syncs
    /// succeed again by themselves.
    slow_failing_syncs: u32,
    slow_sync: std::time::Duration,
    /// Whether growing the file fails with a full disk.
    growth: bool,
    /// Whether reads fail with an I/O error.
    reads: bool,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// A plain I/O error (`EIO`-like).
    Io,
    /// No space left on the device (`ENOSPC`-like).
    Full,
}

impl Fault {
    fn error(self, what: &str) -> io::Error {
        match self {
            Fault::Io => io::Error::other(format!("injected I/O error on {what}")),
            Fault::Full => io::Error::new(
                io::ErrorKind::StorageFull,
                format!("injected full disk on {what}: no space left on device"),
            ),
        }
    }
}

impl FaultInjector {
    /// An injector with no fault set.
    pub fn new() -> Self {
        FaultInjector::default()
    }

    /// Every write fails with an I/O error from now on.
    pub fn fail_writes(&self) {
        self.fail_writes_after(0);
    }

    /// The next `n` writes succeed; every later one fails with an I/O
    /// error (a countdown, for fuzzing crashes at every write).
    pub fn fail_writes_after(&self, n: u64) {
        let mut plan = self.plan();
        plan.writes = Some(Fault::Io);
        plan.writes_allowed = n;
    }

    /// Every sync (the fsync that makes a commit durable) fails with an I/O
    /// error from now on.
    pub fn fail_syncs(&self) {
        self.plan().syncs = true;
    }

    /// The next `n` syncs each take `delay` and then fail with an I/O
    /// error; later ones succeed again (a disk that stalls, fails a
    /// commit, and recovers by itself). While a commit waits on such a
    /// sync, more calls can queue up behind it.
    pub fn fail_next_syncs_slowly(&self, n: u32, delay: std::time::Duration) {
        let mut plan = self.plan();
        plan.slow_failing_syncs = n;
        plan.slow_sync = delay;
    }

    /// The disk is full from now on: every write, and every resize that
    /// grows the file, fails with `ErrorKind::StorageFull` (`ENOSPC`).
    pub fn disk_full(&self) {
        let mut plan = self.plan();
        plan.writes = Some(Fault::Full);
        plan.writes_allowed = 0;
        plan.growth = true;
    }

    /// Every read of the file fails with an I/O error from now on (what redb
    /// holds in its cache is still answered from memory; open the engine
    /// with a small `file_cache_bytes` to reach the disk).
    pub fn fail_reads(&self) {
        self.plan().reads = true;
    }

    /// Heals the disk: nothing fails any more.
    pub fn clear(&self) {
        *self.plan() = Plan::default();
    }

    /// How many operations have failed on purpose so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        // The lock guards plain flags; a panic elsewhere cannot leave them
        // half-written.
        self.state.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn injected_error(&self, fault: Fault, what: &str) -> io::Error {
        self.state.injected.fetch_add(1, Ordering::SeqCst);
        fault.error(what)
    }

    fn check_write(&self) -> io::Result<()> {
        let mut plan = self.plan();
        let Some(fault) = plan.writes else {
            return Ok(());
        };
        if plan.writes_allowed > 0 {
            plan.writes_allowed -= 1;
            return Ok(());
        }
        drop(plan);
        Err(self.injected_error(fault, "write"))
    }

    fn check_sync(&self) -> io::Result<()> {
        let slow = {
            let mut plan = self.plan();
            if plan.syncs {
                None
            } else if plan.slow_failing_syncs > 0 {
                plan.slow_failing_syncs -= 1;
                Some(plan.slow_sync)
            } else {
                return Ok(());
            }
        };
        // Slept outside the lock: the test steering the faults is not held up.
        if let Some(delay) = slow {
            std::thread::sleep(delay);
        }
        Err(self.injected_error(Fault::Io, "sync"))
    }

    fn check_read(&self) -> io::Result<()> {
        if self.plan().reads {
            return Err(self.injected_error(Fault::Io, "read"));
        }
        Ok(())
    }

    fn check_growth(&self) -> io::Result<()> {
        if self.plan().growth {
            return Err(self.injected_error(Fault::Full, "resize"));
        }
        Ok(())
    }
}

/// redb's file backend with faults from a [`FaultInjector`] in front of its
/// reads, writes, syncs and resizes.
#[derive(Debug)]
pub(crate) struct FaultyBackend {
    inner: FileBackend,
    faults: FaultInjector,
}

impl FaultyBackend {
    /// Opens (or creates) the file at `path`, as `redb::Builder::create` does.
    pub(crate) fn open(path: &Path, faults: FaultInjector) -> Result<Self, DatabaseError> {
        let file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(FaultyBackend {
            inner: FileBackend::new(file)?,
            faults,
        })
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.faults.check_read()?;
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        if len > self.inner.len()? {
            self.faults.check_growth()?;
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.faults.check_sync()?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.faults.check_write()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    // The locks are the file backend's own (in `inner`), so a second
    // engine on the same file is still refused.
    locks_of_inner!();
}
