//! A simulated power cut at the storage boundary, for tests (feature
//! `fault-injection`, hidden from the docs).
//!
//! Killing a process keeps the operating system's page cache, so every
//! write reaches the disk in the end; a power cut loses what no sync made
//! durable. [`PowerCutBackend`] keeps the two apart, as redb's own crash
//! tests do: the live file (redb's file backend, which plays the page cache)
//! and, in memory, the durable image as of the last `sync_data` plus the
//! writes and resizes since. [`PowerCut::cut`] freezes the backend at once,
//! so the running engine can acknowledge nothing more, and returns the image
//! a power cut would leave on the disk.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use redb::backends::FileBackend;
use redb::{DatabaseError, StorageBackend};

/// A disk sector: a write of one sector lands whole or not at all, a longer
/// write may stop at any sector boundary (the size redb's header fits in).
const SECTOR: u64 = 512;

/// Which writes a power cut leaves on the disk.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Only what the last sync made durable; every later write is lost.
    SyncedOnly,
    /// What the last sync made durable, plus a random subset of the later
    /// writes and resizes (a disk may write back in any order), the last
    /// kept write torn at a random sector boundary. The same seed keeps the
    /// same writes, so a failure can be replayed.
    Torn {
        /// Chooses the kept writes and the tear.
        seed: u64,
    },
}

/// The disk as a power cut left it.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct CutImage {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The bytes of the journal beside it (`<file>-journal`; empty if the
    /// engine wrote none), to be written beside the image's file.
    pub journal: Vec<u8>,
    /// Writes and resizes issued since the last sync, when the power went.
    pub unsynced: usize,
    /// How many of those are in `bytes` (whole or torn).
    pub kept: usize,
    /// The write torn at a sector boundary, as (offset, bytes kept, bytes
    /// written), if one was.
    pub torn: Option<(u64, usize, usize)>,
}

/// A handle that cuts the power under an engine; cheap to clone, every
/// clone controls the same simulated disk. Give one to the engine builder's
/// hidden `power_cut` and keep a clone to cut the power while the engine
/// runs.
///
/// The images are of the last file the engine opened through it; the file
/// as found at that open counts as durable (it was closed, so synced).
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct PowerCut {
    state: Arc<CutState>,
}

#[derive(Debug, Default)]
struct CutState {
    /// Set once the power is off. Checked without the lock by reads, which
    /// are the hot path and change nothing.
    off: AtomicBool,
    disk: Mutex<Disks>,
}

/// The two files on the simulated disk: the engine's file and its journal.
#[derive(Debug, Default)]
struct Disks {
    file: Disk,
    journal: Disk,
    /// An armed cut: the power goes just before this many more writes,
    /// resizes and syncs have been made (to either file).
    armed: Option<(u64, CutMode)>,
    /// The image once the power is off.
    image: Option<CutImage>,
}

/// Which of the two files a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    File,
    Journal,
}

impl Disks {
    fn of(&mut self, which: Which) -> &mut Disk {
        match which {
            Which::File => &mut self.file,
            Which::Journal => &mut self.journal,
        }
    }

    /// What the disk holds if the power goes now: both files cut alike
    /// (the journal's writes chosen by another draw of the same seed).
    fn image(&self, mode: CutMode) -> CutImage {
        let file = self.file.image(mode);
        let journal_mode = match mode {
            CutMode::SyncedOnly => mode,
            CutMode::Torn { seed } => CutMode::Torn {
                seed: seed ^ 0x9e37_79b9_7f4a_7c15,
            },
        };
        let journal = self.journal.image(journal_mode);
        CutImage {
            bytes: file.bytes,
            journal: journal.bytes,
            unsynced: file.unsynced + journal.unsynced,
            kept: file.kept + journal.kept,
            torn: file.torn.or(journal.torn),
        }
    }
}

#[derive(Debug, Default)]
struct Disk {
    /// The file the images are of.
    path: Option<PathBuf>,
    /// The file as of the last sync.
    durable: Vec<u8>,
    /// Writes and resizes since the last sync, in the order they were made.
    unsynced: Vec<Change>,
}

#[derive(Debug)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl PowerCut {
    /// A disk with the power on.
    pub fn new() -> Self {
        PowerCut::default()
    }

    /// Cuts the power now and returns what the disk holds. Every later
    /// read, write, resize or sync fails with an I/O error, and so does
    /// opening the file again. Once the power is off this returns the image
    /// of that first cut, whatever `mode` says.
    pub fn cut(&self, mode: CutMode) -> CutImage {
        let mut disk = self.disk();
        self.power_off(&mut disk, mode);
        disk.image
            .clone()
            .unwrap_or_else(|| unreachable!("set by power_off"))
    }

    /// Arms a cut: the power goes just before `n` more writes, resizes and
    /// syncs have been made (`n = 0`: before the next one), so that the cut
    /// lands inside a commit. Collect the image with [`cut`](Self::cut).
    pub fn cut_after(&self, n: u64, mode: CutMode) {
        self.disk().armed = Some((n, mode));
    }

    /// Whether the power is off.
    pub fn is_cut(&self) -> bool {
        self.state.off.load(Ordering::SeqCst)
    }

    fn disk(&self) -> MutexGuard<'_, Disks> {
        // Every change of the disk completes under the lock or not at all
        // (a push, a copy); a panic elsewhere leaves it whole.
        self.state.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn power_off(&self, disk: &mut Disks, mode: CutMode) {
        if disk.image.is_none() {
            disk.image = Some(disk.image(mode));
            disk.armed = None;
            self.state.off.store(true, Ordering::SeqCst);
        }
    }

    fn check_power(&self) -> io::Result<()> {
        if self.is_cut() {
            return Err(gone());
        }
        Ok(())
    }

    /// Runs a change of the file (a write, resize or sync) with the disk
    /// locked, unless the power is off or an armed cut falls due first.
    fn change<T>(&self, which: Which, f: impl FnOnce(&mut Disk) -> io::Result<T>) -> io::Result<T> {
        let mut disk = self.disk();
        self.check_power()?;
        if let Some((left, mode)) = &mut disk.armed {
            if *left == 0 {
                let mode = *mode;
                self.power_off(&mut disk, mode);
                return Err(gone());
            }
            *left -= 1;
        }
        f(disk.of(which))
    }
}

/// The error of every operation once the power is off.
fn gone() -> io::Error {
    io::Error::other("simulated power cut: the disk is gone")
}

impl Disk {
    /// What the disk holds if the power goes now.
    fn image(&self, mode: CutMode) -> CutImage {
        let mut bytes = self.durable.clone();
        let unsynced = self.unsynced.len();
        let CutMode::Torn { seed } = mode else {
            return CutImage {
                bytes,
                journal: Vec::new(),
                unsynced,
                kept: 0,
                torn: None,
            };
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // How much of the write-back happened varies from cut to cut: some
        // keep nearly everything, some nearly nothing.
        let keep_percent = rng.next_u64() % 101;
        let kept: Vec<&Change> = self
            .unsynced
            .iter()
            .filter(|_| rng.next_u64() % 100 < keep_percent)
            .collect();
        let last_write = kept.iter().rposition(|c| matches!(c, Change::Write { .. }));
        let mut torn = None;
        // Kept changes land in the order they were made: the page cache
        // writes back a page's latest bytes, so of two writes to the same
        // place the later one wins when both reached the disk.
        for (i, change) in kept.iter().enumerate() {
            match change {
                Change::SetLen(len) => bytes.resize(to_usize(*len), 0),
                Change::Write { offset, data } => {
                    let mut data = &data[..];
                    if Some(i) == last_write {
                        let end = offset + data.len() as u64;
                        let first = (offset / SECTOR + 1) * SECTOR;
                        if first < end {
                            let boundaries = (end - 1 - first) / SECTOR + 1;
                            let at = first + rng.next_u64() % boundaries * SECTOR;
                            torn = Some((*offset, to_usize(at - offset), data.len()));
                            data = &data[..to_usize(at - offset)];
                        }
                    }
                    write_at(&mut bytes, *offset, data);
                }
            }
        }
        CutImage {
            bytes,
            journal: Vec::new(),
            unsynced,
            kept: kept.len(),
            torn,
        }
    }

    /// Holds the file at `path`, whose bytes on the disk `read` gives, as
    /// durable. Opening the same file again (after a storage failure)
    /// keeps its unsynced writes unsynced: they are still only in the page
    /// cache.
    fn adopt(&mut self, path: &Path, read: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<()> {
        if self.path.as_deref() != Some(path) {
            self.durable = read()?;
            self.path = Some(path.to_path_buf());
            self.unsynced.clear();
        }
        Ok(())
    }

    /// Makes every change so far durable.
    fn sync(&mut self) {
        for change in std::mem::take(&mut self.unsynced) {
            match change {
                Change::SetLen(len) => self.durable.resize(to_usize(len), 0),
                Change::Write { offset, data } => write_at(&mut self.durable, offset, &data),
            }
        }
    }
}

/// Writes `data` at `offset`, growing `bytes` with zeros as a file grows
/// when written past its end.
fn write_at(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// The files here are test files held in memory, so their offsets fit.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or_else(|_| unreachable!("an in-memory image is under usize::MAX"))
}

/// redb's file backend under a [`PowerCut`]: the file is the page cache,
/// the handle keeps the durable image.
#[derive(Debug)]
pub(crate) struct PowerCutBackend {
    inner: FileBackend,
    power: PowerCut,
    which: Which,
}

impl PowerCutBackend {
    /// Opens (or creates) the file at `path`, as `redb::Builder::create`
    /// does; refused once the power is off.
    pub(crate) fn open(path: &Path, power: PowerCut, which: Which) -> Result<Self, DatabaseError> {
        power.check_power()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let inner = FileBackend::new(file)?;
        let mut disks = power.disk();
        disks.of(which).adopt(path, || {
            let mut bytes = vec![0; to_usize(inner.len()?)];
            inner.read(0, &mut bytes)?;
            Ok(bytes)
        })?;
        // The journal beside the file is on the same disk from the start,
        // even if the power goes before the engine opens it.
        if which == Which::File {
            let journal = super::journal::path_of(path);
            disks
                .journal
                .adopt(&journal, || Ok(std::fs::read(&journal).unwrap_or_default()))?;
        }
        drop(disks);
        Ok(PowerCutBackend {
            inner,
            power,
            which,
        })
    }
}

impl StorageBackend for PowerCutBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.power.check_power()?;
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.power.check_power()?;
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.power.change(self.which, |disk| {
            self.inner.set_len(len)?;
            disk.unsynced.push(Change::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        // The live file is not synced: it is a scratch copy whose durability
        // is simulated by the image, and skipping the fsync keeps thousands
        // of cuts cheap.
        self.power.change(self.which, |disk| {
            disk.sync();
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.power.change(self.which, |disk| {
            self.inner.write(offset, data)?;
            disk.unsynced.push(Change::Write {
                offset,
                data: data.to_vec(),
            });
            Ok(())
        })
    }

    fn close(&self) -> Result<(), io::Error> {
        // Even with the power off: this releases the file's lock.
        self.inner.close()
    }

    // The locks are the file backend's own (in `inner`), so a second
    // engine on the same file is still refused.
    locks_of_inner!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(durable: &[u8], unsynced: Vec<Change>) -> Disk {
        Disk {
            durable: durable.to_vec(),
            unsynced,
            ..Disk::default()
        }
    }

    #[test]
    fn synced_only_drops_every_unsynced_change() {
        let d = disk(
            &[1; 1024],
            vec![
                Change::Write {
                    offset: 0,
                    data: vec![2; 1024],
                },
                Change::SetLen(4096),
            ],
        );
        let image = d.image(CutMode::SyncedOnly);
        assert_eq!(image.bytes, vec![1; 1024]);
        assert_eq!((image.unsynced, image.kept), (2, 0));
    }

    #[test]
    fn a_sync_applies_changes_in_order() {
        let mut d = disk(
            &[1; 1024],
            vec![
                Change::SetLen(512),
                Change::Write {
                    offset: 1024,
                    data: vec![3; 10],
                },
            ],
        );
        d.sync();
        let mut expected = vec![1; 512];
        expected.resize(1024, 0);
        expected.extend([3; 10]);
        assert_eq!(d.durable, expected);
        assert!(d.unsynced.is_empty());
    }

    #[test]
    fn a_torn_write_stops_at_a_sector_boundary() {
        for seed in 0..200 {
            let d = disk(
                &[0; 4096],
                vec![Change::Write {
                    offset: 100,
                    data: vec![7; 2000],
                }],
            );
            let image = d.image(CutMode::Torn { seed });
            let written = image.bytes.iter().filter(|b| **b == 7).count();
            match image.torn {
                Some((offset, kept, len)) => {
                    assert_eq!((offset, len), (100, 2000));
                    assert_eq!((offset + kept as u64) % SECTOR, 0);
                    assert!(kept > 0 && kept < len);
                    assert_eq!(written, kept);
                    assert!(image.bytes[100..100 + kept].iter().all(|b| *b == 7));
                }
                None => assert_eq!((image.kept, written), (0, 0)),
            }
        }
    }

    #[test]
    fn a_write_within_one_sector_is_never_torn() {
        for seed in 0..100 {
            let d = disk(
                &[0; 1024],
                vec![Change::Write {
                    offset: 512,
                    data: vec![9; 512],
                }],
            );
            let image = d.image(CutMode::Torn { seed });
            assert!(image.torn.is_none());
            let written = image.bytes.iter().filter(|b| **b == 9).count();
            assert_eq!(written, image.kept * 512);
        }
    }
}
