//! The journal beside the file (format 18): what makes a commit durable
//! with one small write and one `fdatasync`.
//!
//! A durable redb commit writes and syncs its pages and then its header,
//! 1.8 to 2.7 raw `fdatasync`s on the disks measured (README). So the
//! writer appends each batch's redo log (`redo.rs`) to this journal, syncs
//! it once, commits the batch to redb without durability (only then can a
//! read see it), and answers the callers. Every so often, and when the writer is idle or stops, a
//! checkpoint makes redb's state durable (with its allocator state saved,
//! so that opening after a crash needs no walk of the file) and the journal
//! starts over from its beginning.
//!
//! After a crash, redb opens at its last durable commit, whose `META`
//! record `journal_seq` names the last entry it holds (every journaled
//! transaction writes it); the journal's entries after that one are
//! replayed in one transaction and checkpointed before anything new is
//! written.
//!
//! The file is `<path>-journal`. Each entry, integers little-endian:
//! `b"SFJ1"`, payload length `u32`, sequence number `u64`, the file's
//! journal ID `u128` (`META` record `journal_id`, random, so that a journal
//! left beside another file is never applied to this one), CRC-32 of the
//! sequence number's, the ID's and the payload's bytes `u32`, then the
//! payload. The entries read back are those from offset 0 whose checksums
//! hold, whose ID is the file's and whose numbers follow each other: a
//! torn last write, or an older round's entry after the newest, ends them.
//! An entry is written over older rounds' in place, so once the file has
//! its size, a sync is of data alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, StorageBackend};

use super::redb_err;
use super::tables::META;
use crate::store::StoreError;

const MAGIC: &[u8; 4] = b"SFJ1";
const HEADER: usize = 4 + 4 + 8 + 16 + 4;

/// The `META` key naming the last journal entry the file holds.
pub(super) const SEQ_KEY: &str = "journal_seq";
/// The `META` key holding the file's journal ID.
const ID_KEY: &str = "journal_id";

/// A checkpoint is due once the journal holds this much since the last
/// (what a replay after a crash must apply stays small, and so does the
/// checkpoint: commits wait behind it. Under 10,000 timers a second, one
/// took up to 19 ms at 4 MiB and the timers' p99 was 18 ms; at 1 MiB, 7 ms;
/// at 256 KiB, 4 ms, as before the journal), ...
const CHECKPOINT_BYTES: u64 = 256 << 10;
/// ... or its oldest entry is this old while commits keep coming, ...
const CHECKPOINT_AGE: Duration = Duration::from_millis(500);
/// ... or the writer has been idle this long since its last commit.
pub(super) const CHECKPOINT_IDLE: Duration = Duration::from_millis(50);

/// The journal's size once opened: what a checkpoint interval writes, and
/// room for the batch that passes [`CHECKPOINT_BYTES`]. An append that
/// grows the file makes its sync write the file's size too, which cost
/// about half as much again as one within it on the disks measured.
const PREALLOCATED: u64 = CHECKPOINT_BYTES + (4 << 20);

/// The journal of one file; owned by its [`DbCell`](super::DbCell), used
/// by the writer thread.
pub(crate) struct Journal {
    file: Box<dyn StorageBackend>,
    path: PathBuf,
    /// Where the next entry goes.
    offset: u64,
    /// The next entry's number.
    next_seq: u64,
    /// The file's journal ID, written in every entry.
    id: u128,
    /// When the oldest entry since the last checkpoint was written.
    since: Option<Instant>,
    /// The entry being written, kept for its capacity.
    buf: Vec<u8>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// The journal's path for the file at `path`.
pub(crate) fn path_of(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push("-journal");
    PathBuf::from(name)
}

impl Journal {
    /// The journal in `file` (at `path`, for messages), not yet recovered.
    pub(super) fn new(file: Box<dyn StorageBackend>, path: PathBuf) -> Journal {
        Journal {
            file,
            path,
            offset: 0,
            next_seq: 1,
            id: 0,
            since: None,
            buf: Vec::new(),
        }
    }

    /// Brings `db` up to the journal's last entry (a crash left the entries
    /// after its last durable commit only here) and checkpoints it, so that
    /// the journal can start over. Called on every open of the file, before
    /// anything is written.
    pub(super) fn recover(&mut self, db: &Database) -> Result<(), StoreError> {
        let (held, id) = held(db)?;
        let len = self.file.len().map_err(|e| io(&e))?;
        let mut bytes = vec![0; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 31)];
        self.file.read(0, &mut bytes).map_err(|e| io(&e))?;
        let newer: Vec<(u64, &[u8])> = match id {
            Some(id) => entries(&bytes, id)
                .into_iter()
                .filter(|(seq, _)| *seq > held)
                .collect(),
            None => Vec::new(),
        };
        let mut last = held;
        // Where zeros go before the journal is used: from its end (it is
        // extended), or from its start when what it holds must never be
        // read again.
        let mut zero_from = len;
        match newer.first() {
            Some((first, _)) if *first != held + 1 => {
                // Not this file's continuation (a backup of the file put
                // back beside a later journal): nothing of it is applied,
                // and it is wiped, so that no entry of it can ever follow
                // one written from now on.
                tracing::warn!(
                    journal = %self.path.display(),
                    first,
                    held,
                    "the journal does not continue the file; it is not applied"
                );
                zero_from = 0;
            }
            Some(_) => {
                let started = Instant::now();
                let txn = db.begin_write().map_err(redb_err)?;
                {
                    let mut replay = super::redo::Replay::new(&txn);
                    for (seq, payload) in &newer {
                        replay.apply(payload)?;
                        last = *seq;
                    }
                }
                write_seq(&txn, last)?;
                commit_checkpoint(txn)?;
                tracing::info!(
                    entries = newer.len(),
                    elapsed = ?started.elapsed(),
                    "replayed the journal after a crash"
                );
            }
            None => {}
        }
        self.id = match id {
            Some(id) => id,
            // A new file, or one of an older format: it gets its ID, made
            // durable before any entry names it.
            None => {
                let id = uuid::Uuid::new_v4().as_u128();
                let txn = db.begin_write().map_err(redb_err)?;
                {
                    let mut meta = txn.open_table(META).map_err(redb_err)?;
                    meta.insert(ID_KEY, id.to_le_bytes().as_slice())
                        .map_err(redb_err)?;
                }
                commit_checkpoint(txn)?;
                id
            }
        };
        let zero_to = len.max(PREALLOCATED);
        if zero_from < zero_to {
            // Zeros written, not a hole: an append into a hole allocates
            // its blocks, and its sync then commits the file system's own
            // journal too. Zeros end the entries when read back.
            let zeros = vec![0; 1 << 20];
            let mut at = zero_from;
            while at < zero_to {
                let n = (zero_to - at).min(zeros.len() as u64);
                self.file
                    .write(at, &zeros[..n as usize])
                    .map_err(|e| io(&e))?;
                at += n;
            }
            self.file.sync_data().map_err(|e| io(&e))?;
        }
        self.offset = 0;
        self.next_seq = last + 1;
        self.since = None;
        Ok(())
    }

    /// The number the next entry gets; the batch's transaction records it
    /// with [`write_seq`].
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends the entry `seq` (the number [`next_seq`](Self::next_seq)
    /// gave) and syncs it: once this returns, the batch is durable. After a
    /// failure the next entry goes in the same place with the same number.
    pub(super) fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), StoreError> {
        // Refused, not truncated: an entry whose length field lies would
        // end the journal at the next recovery, and every later entry too.
        let len = u32::try_from(payload.len()).map_err(|_| {
            StoreError::Io(format!(
                "one batch of changes holds {} bytes, more than a journal entry's 4 GiB; \
                 retry the calls with smaller payloads or fewer at a time",
                payload.len()
            ))
        })?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&self.id.to_le_bytes());
        buf.extend_from_slice(&checksum(seq, self.id, payload).to_le_bytes());
        buf.extend_from_slice(payload);
        let written = self
            .file
            .write(self.offset, &buf)
            .and_then(|()| self.file.sync_data());
        let len = buf.len() as u64;
        self.buf = buf;
        written.map_err(|e| io(&e))?;
        self.offset += len;
        self.next_seq = seq + 1;
        self.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether a checkpoint is due while commits keep coming.
    pub(super) fn checkpoint_due(&self) -> bool {
        self.offset >= CHECKPOINT_BYTES || self.since.is_some_and(|t| t.elapsed() >= CHECKPOINT_AGE)
    }

    /// Whether anything was journaled since the last checkpoint.
    pub(super) fn dirty(&self) -> bool {
        self.offset > 0
    }

    /// Makes `db`'s state durable (everything journaled so far) and starts
    /// the journal over.
    pub(super) fn checkpoint(&mut self, db: &Database) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(redb_err)?;
        commit_checkpoint(txn)?;
        self.offset = 0;
        self.since = None;
        Ok(())
    }
}

/// Records in the batch's transaction that the file holds entry `seq`.
pub(super) fn write_seq(txn: &redb::WriteTransaction, seq: u64) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(redb_err)?;
    meta.insert(SEQ_KEY, seq.to_le_bytes().as_slice())
        .map_err(redb_err)?;
    Ok(())
}

/// Whether the journal beside the file at `path` holds entries `db` does
/// not (a crash left them there, and only a writing open applies them).
pub(super) fn pending(path: &Path, db: &impl ReadableDatabase) -> Result<bool, StoreError> {
    let bytes = match std::fs::read(path_of(path)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(&e)),
    };
    let (held, id) = held(db)?;
    let Some(id) = id else {
        return Ok(false);
    };
    Ok(entries(&bytes, id).iter().any(|(seq, _)| *seq == held + 1))
}

/// The last journal entry `db` holds (0: none) and its journal ID (none
/// yet: no entry is of this file).
fn held(db: &impl ReadableDatabase) -> Result<(u64, Option<u128>), StoreError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let Some(meta) = super::open_read(&txn, META)? else {
        return Ok((0, None));
    };
    let corrupt = || {
        StoreError::Damaged(
            "the journal records of the file are corrupt; restore the file from a backup".into(),
        )
    };
    let seq = match meta.get(SEQ_KEY).map_err(redb_err)? {
        Some(value) => u64::from_le_bytes(value.value().try_into().map_err(|_| corrupt())?),
        None => 0,
    };
    let id = match meta.get(ID_KEY).map_err(redb_err)? {
        Some(value) => Some(u128::from_le_bytes(
            value.value().try_into().map_err(|_| corrupt())?,
        )),
        None => None,
    };
    Ok((seq, id))
}

/// A durable commit that saves redb's allocator state, so that an open
/// after a crash loads it instead of walking the whole file.
fn commit_checkpoint(mut txn: redb::WriteTransaction) -> Result<(), StoreError> {
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    txn.set_quick_repair(true);
    txn.commit().map_err(redb_err)
}

fn checksum(seq: u64, id: u128, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(&id.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The entries of the file `id`'s journal bytes, from the start while they
/// are whole, of that file, and numbered one after another.
fn entries(mut bytes: &[u8], id: u128) -> Vec<(u64, &[u8])> {
    let mut out: Vec<(u64, &[u8])> = Vec::new();
    while let Some(header) = bytes.get(..HEADER)
        && &header[..4] == MAGIC
    {
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let len = word(4) as usize;
        let seq = u64::from(word(8)) | (u64::from(word(12)) << 32);
        let of = u128::from(word(16))
            | (u128::from(word(20)) << 32)
            | (u128::from(word(24)) << 64)
            | (u128::from(word(28)) << 96);
        let crc = word(32);
        let Some(payload) = bytes.get(HEADER..HEADER + len) else {
            break;
        };
        if of != id
            || checksum(seq, of, payload) != crc
            || out.last().is_some_and(|(last, _)| seq != last + 1)
        {
            break;
        }
        out.push((seq, payload));
        bytes = &bytes[HEADER + len..];
    }
    out
}

fn io(err: &std::io::Error) -> StoreError {
    super::io_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u128 = 0x5eed;

    fn entry(seq: u64, id: u128, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&checksum(seq, id, payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn entries_end_at_a_torn_write_an_older_round_or_another_file() {
        let mut bytes = entry(5, ID, b"five");
        bytes.extend(entry(6, ID, b"six"));
        let whole = bytes.clone();
        let two = vec![(5, &b"five"[..]), (6, &b"six"[..])];
        // An older round's entry after the newest.
        bytes.extend(entry(3, ID, b"three"));
        assert_eq!(entries(&bytes, ID), two);
        // Another file's entry, numbered as the next.
        let mut foreign = whole.clone();
        foreign.extend(entry(7, ID + 1, b"seven"));
        assert_eq!(entries(&foreign, ID), two);
        assert!(entries(&whole, ID + 1).is_empty());
        // A torn last entry.
        let mut torn = whole.clone();
        torn.extend(&entry(7, ID, b"seven")[..HEADER + 2]);
        assert_eq!(entries(&torn, ID), two);
        // A flipped byte in the last entry's payload.
        let mut flipped = whole.clone();
        let at = flipped.len() - 1;
        flipped[at] ^= 1;
        assert_eq!(entries(&flipped, ID), vec![(5, &b"five"[..])]);
        assert!(entries(&[0; 64], ID).is_empty());
    }
}
