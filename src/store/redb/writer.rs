//! The group-commit writer: one thread owns every write transaction.
//!
//! Callers send a request (one operation) and wait for its answer.
//! The thread takes the first waiting request and every other that has
//! queued up behind it, applies them all in one write transaction, makes it
//! durable, and only then answers each caller. A lone request is committed
//! at once; under load many share one fsync.
//!
//! Durable means: for a file of one process, the batch's redo log appended
//! and synced to the journal (`journal.rs`), then the batch committed to
//! redb without durability (redb is checkpointed now and then); for a file
//! shared with readers of other processes, a durable redb commit.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use tokio::sync::oneshot;

use super::file::contain;
use super::journal;
use super::redo::{Log, Logged, Tag};
use super::tables::{self, HISTORY, RUNNING, RUNS, VISIBILITY, WAKEUPS, WORKFLOWS};
use super::{DbCell, counts, redb_err, retention, visibility};
use crate::codec;
use crate::history::{Event, RunId, WorkflowStatus};
use crate::store::{
    ContinueAsNewOp, EncodedRecord, ReuseRule, RunRecord, StoreError, WAKE_NEVER, WriteOp,
    WriteOutcome,
};

/// Most requests folded into one transaction, so one commit stays short.
const MAX_BATCH: usize = 4096;

pub(crate) struct Request {
    pub(crate) op: WriteOp,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// The answer to a request. It hands the operation back so that its buffers
/// are freed by the caller's thread: with glibc's allocator, a free of
/// memory another thread allocated waits for that thread's arena lock, and
/// the writer thread is the one every commit waits for.
pub(crate) struct Reply {
    pub(crate) outcome: Result<WriteOutcome, StoreError>,
    pub(crate) op: WriteOp,
}

/// Runs the writer loop until every sender is gone.
pub(crate) fn run(cell: Arc<DbCell>, rx: mpsc::Receiver<Request>) {
    while let Some(first) = next_request(&rx, &cell) {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let began = Instant::now();
        let (mut result, broken) = match cell.get_for_write() {
            // redb panics on pages damaged outside it: nothing of the batch
            // is durable then, and the handle is not trusted again.
            Ok(db) => match contain(|| commit_batch(&db, &batch, &cell)) {
                Ok(result) => {
                    let failed = result.iter().find_map(|r| match r {
                        Err(e) if e.is_storage() => Some(e.clone()),
                        _ => None,
                    });
                    if failed.is_none() {
                        cell.committed();
                        crate::metrics::committed(batch.len(), began.elapsed());
                    }
                    (result, failed.map(|e| (db, e, false)))
                }
                Err(message) => {
                    let err = StoreError::Damaged(message);
                    (
                        batch.iter().map(|_| Err(err.clone())).collect(),
                        Some((db, err, true)),
                    )
                }
            },
            Err(err) => (batch.iter().map(|_| Err(err.clone())).collect(), None),
        };
        // Recorded before the callers are answered, so that a run they park
        // waits for the backoff.
        let broken = broken.map(|(db, err, damaged)| {
            // A handle refused at once ("previous I/O error") was broken by
            // an earlier failure: answer that one.
            let err = match err {
                StoreError::Broken => cell.failure(),
                other => other,
            };
            for outcome in &mut result {
                if matches!(outcome, Err(StoreError::Broken)) {
                    *outcome = Err(err.clone());
                }
            }
            cell.failed(err);
            (db, damaged)
        });
        for (request, outcome) in batch.into_iter().zip(result) {
            // A caller that stopped waiting has nothing to be told.
            let _ = request.reply.send(Reply {
                outcome,
                op: request.op,
            });
        }
        // After a storage failure redb refuses every later transaction until
        // the file is opened again; the next use of the file does that (once
        // the backoff has passed).
        if let Some((db, damaged)) = broken {
            cell.discard(db, damaged);
        } else if cell.journal().is_some_and(|j| j.checkpoint_due()) {
            checkpoint(&cell);
        }
    }
    // Stopped: everything journaled goes into the file, so that the file
    // alone holds it.
    checkpoint(&cell);
}

/// Checkpoints the journal (if anything was journaled since the last). A
/// failure breaks the handle as a failed commit does: the file is opened
/// again and recovered from the journal, which still holds every entry.
fn checkpoint(cell: &DbCell) {
    if !cell.journal().is_some_and(|j| j.dirty()) {
        return;
    }
    let Ok(db) = cell.get_for_write() else {
        return;
    };
    let done = contain(|| match cell.journal() {
        Some(mut journal) => journal.checkpoint(&db),
        None => Ok(()),
    });
    let (err, damaged) = match done {
        Ok(Ok(())) => return,
        Ok(Err(err)) => (err, false),
        Err(message) => (StoreError::Damaged(message), true),
    };
    tracing::warn!(error = %err, "a checkpoint of the journal failed; the file will be opened again");
    cell.failed(err);
    cell.discard(db, damaged);
}

/// How long the writer polls for the next request before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// Waits for the next request. After a commit the next one often follows
/// within tens of microseconds (a sequential workflow's next step), sooner
/// than a sleeping thread can be woken (~30 µs here), so the writer polls
/// for a moment first, yielding its core to any thread that wants it.
///
/// A writer that stays idle with entries in the journal checkpoints them
/// first, so that an idle engine's file holds everything by itself.
fn next_request(rx: &mpsc::Receiver<Request>, cell: &DbCell) -> Option<Request> {
    // Real time, not the engine's clock (`crate::clock`): the spin is about
    // waking this thread, not about workflow time.
    let until = Instant::now() + SPIN;
    loop {
        match rx.try_recv() {
            Ok(request) => return Some(request),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(TryRecvError::Empty) => break,
        }
    }
    if cell.journal().is_some_and(|j| j.dirty()) {
        match rx.recv_timeout(journal::CHECKPOINT_IDLE) {
            Ok(request) => return Some(request),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => checkpoint(cell),
        }
    }
    rx.recv().ok()
}

type BatchResult = Vec<Result<WriteOutcome, StoreError>>;

fn commit_batch(db: &Database, batch: &[Request], cell: &DbCell) -> BatchResult {
    let mut journal = cell.journal();
    let mut attempt = || -> Result<BatchResult, StoreError> {
        let mut txn = db.begin_write().map_err(redb_err)?;
        let log = match &journal {
            Some(_) => Log::recording(),
            None => Log::default(),
        };
        let durability = match &journal {
            Some(_) => Durability::None,
            None => Durability::Immediate,
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut answers = Vec::with_capacity(batch.len());
        {
            // Opened once per batch: opening a table costs more than a
            // small insert.
            let mut tables = Tables::open(&txn, log.clone())?;
            for request in batch {
                let answer = apply(&mut tables, &request.op);
                // A refusal is decided before its operation writes anything;
                // any other failure may come after some of its writes, which
                // redb can undo only with the whole transaction: then nothing
                // of the batch is committed, and every caller is told.
                if let Err(err) = &answer
                    && !err.is_refusal()
                {
                    return Err(err.clone());
                }
                answers.push(answer);
            }
            tables.counts.apply(&mut tables.log_counts()?)?;
        }
        let Some(journal) = journal.as_mut() else {
            txn.commit().map_err(redb_err)?;
            return Ok(answers);
        };
        // Journaled before redb's commit makes the batch visible: a read
        // (a history, a result) never sees what a power cut could still
        // take back. A failed append leaves the batch uncommitted (the
        // transaction is dropped) and the next entry is written in its
        // place, under its number; a power cut may still find this one
        // whole, which is why callers are told the change may have been
        // made, as after any failed sync.
        let seq = journal.next_seq();
        journal::write_seq(&txn, seq)?;
        journal.append(seq, &log.take())?;
        txn.commit().map_err(redb_err)?;
        Ok(answers)
    };
    match attempt() {
        Ok(answers) => answers,
        // Nothing of a failed transaction is durable, so no caller may be
        // told its change was made.
        Err(err) => batch.iter().map(|_| Err(err.clone())).collect(),
    }
}

/// The tables a batch writes, open for the whole batch; every change is
/// recorded in the batch's redo log (when the file is journaled).
pub(super) struct Tables<'txn> {
    pub(super) workflows: Logged<'txn, &'static str, u128>,
    pub(super) runs: Logged<'txn, u128, &'static [u8]>,
    pub(super) running: Logged<'txn, u128, u64>,
    pub(super) wakeups: Logged<'txn, (u64, u128), ()>,
    pub(super) history: Logged<'txn, (u128, u64), &'static [u8]>,
    pub(super) visibility: Logged<'txn, &'static [u8], ()>,
    /// What the batch changed in the counts by status, applied before it
    /// commits.
    pub(super) counts: counts::Deltas,
    /// The transaction and its log, for tables few batches write
    /// (`schedules`), opened by the operation that needs them rather than
    /// by every batch.
    pub(super) txn: &'txn WriteTransaction,
    pub(super) log: Log,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction, log: Log) -> Result<Self, StoreError> {
        Ok(Tables {
            workflows: Logged::open(txn, WORKFLOWS, Tag::Workflows, &log)?,
            runs: Logged::open(txn, RUNS, Tag::Runs, &log)?,
            running: Logged::open(txn, RUNNING, Tag::Running, &log)?,
            wakeups: Logged::open(txn, WAKEUPS, Tag::Wakeups, &log)?,
            history: Logged::open(txn, HISTORY, Tag::History, &log)?,
            visibility: Logged::open(txn, VISIBILITY, Tag::Visibility, &log)?,
            counts: counts::Deltas::default(),
            txn,
            log,
        })
    }

    /// The counts table, opened for the batch's last change.
    fn log_counts(&self) -> Result<Logged<'txn, u8, u64>, StoreError> {
        Logged::open(self.txn, counts::COUNTS, Tag::Counts, &self.log)
    }

    /// The schedules table, for the operations that write it.
    pub(super) fn schedules(
        &self,
    ) -> Result<Logged<'txn, &'static str, &'static [u8]>, StoreError> {
        Logged::open(self.txn, tables::SCHEDULES, Tag::Schedules, &self.log)
    }
}

pub(super) fn apply(t: &mut Tables<'_>, op: &WriteOp) -> Result<WriteOutcome, StoreError> {
    match op {
        WriteOp::Start {
            run_id,
            record,
            events,
            reuse,
            wake,
        } => start(t, *run_id, record, events, *reuse, *wake),
        WriteOp::Append {
            run_id,
            record,
            expect_next,
            events,
            wake,
        } => append(t, *run_id, record.as_ref(), *expect_next, events, *wake),
        WriteOp::Close {
            run_id,
            workflow_id,
            event_id,
            at,
            event,
            status,
        } => close(t, *run_id, workflow_id, (*event_id, *at, event), *status),
        WriteOp::ContinueAsNew(op) => {
            continue_as_new(t, op)?;
            start(
                t,
                op.next_run_id,
                &op.next_record,
                &op.next_events,
                ReuseRule::Allow,
                op.next_wake,
            )?;
            Ok(WriteOutcome::ContinuedAsNew)
        }
        WriteOp::StartChildren(op) => super::children::start_children(t, op),
        WriteOp::CloseParent(op) => super::children::close_parent(t, op),
        WriteOp::External(op) => super::external::external(t, op),
        // One process: its actor tells the parent after the commit.
        WriteOp::TellParent(op) => apply(t, &op.close),
        WriteOp::Schedule(op) => super::schedules::write(t, op),
        WriteOp::Delete { workflow_id } => visibility::delete_workflow(t, workflow_id),
        WriteOp::Sweep { cutoff } => retention::sweep(t, *cutoff),
    }
}

/// Closes a run as continued, as an append does, after checking what the
/// successor's start will check: every refusal comes before the first
/// write, so that the start that follows in the same transaction cannot be
/// refused once the close is written.
fn continue_as_new(t: &mut Tables<'_>, op: &ContinueAsNewOp) -> Result<(), StoreError> {
    let ContinueAsNewOp {
        run_id,
        record,
        expect_next,
        events,
        next_run_id,
        ..
    } = op;
    let (run_id, expect_next, next_run_id) = (*run_id, *expect_next, *next_run_id);
    let conflict = |message: &str| StoreError::Conflict {
        run_id,
        message: message.to_string(),
    };
    // A reset closes the run as Terminated and starts its successor the
    // same way.
    if !matches!(
        record.record.status,
        WorkflowStatus::ContinuedAsNew | WorkflowStatus::Terminated
    ) {
        return Err(conflict(
            "a continue-as-new (or reset) must close the run as ContinuedAsNew (or Terminated)",
        ));
    }
    // The workflow ID must name this run (so the successor's start finds
    // it, closed, and nothing else).
    let latest = t
        .workflows
        .get(record.record.workflow_id.as_str())
        .map_err(redb_err)?
        .map(|v| v.value());
    if latest != Some(run_id.as_u128()) {
        return Err(conflict("the run is not its workflow ID's latest run"));
    }
    if t.runs
        .get(next_run_id.as_u128())
        .map_err(redb_err)?
        .is_some()
    {
        return Err(StoreError::Conflict {
            run_id: next_run_id,
            message: "a run with this ID is already stored".into(),
        });
    }
    // The wake is unused: a closed run has none.
    match append(t, run_id, Some(record), expect_next, events, 0)? {
        WriteOutcome::Appended => Ok(()),
        other => Err(conflict(&format!("unexpected append outcome {other:?}"))),
    }
}

pub(super) fn start(
    t: &mut Tables<'_>,
    run_id: RunId,
    encoded: &EncodedRecord,
    events: &[Vec<u8>],
    reuse: ReuseRule,
    wake: u64,
) -> Result<WriteOutcome, StoreError> {
    let record = &encoded.record;
    let previous = t
        .workflows
        .get(record.workflow_id.as_str())
        .map_err(redb_err)?
        .map(|v| v.value());
    if let Some(previous) = previous {
        let prev_id = RunId::from_u128(previous);
        let prev = match t.runs.get(previous).map_err(redb_err)? {
            Some(bytes) => codec::decode::<RunRecord>(bytes.value())
                .map_err(|e| StoreError::corrupt(&record.workflow_id, e))?,
            None => return Err(StoreError::missing_run(&record.workflow_id, prev_id)),
        };
        if !prev.status.is_closed() {
            return Ok(WriteOutcome::AlreadyRunning(prev_id));
        }
        let allowed = match reuse {
            ReuseRule::Allow => true,
            ReuseRule::AllowIfLastNotCompleted => prev.status != WorkflowStatus::Completed,
            ReuseRule::Reject => false,
        };
        if !allowed {
            return Ok(WriteOutcome::ReuseRejected(prev.status));
        }
    }
    let key = run_id.as_u128();
    // Run IDs come from the engine; one already stored is never written
    // over (its history would be mixed with the new one's).
    if t.runs.get(key).map_err(redb_err)?.is_some() {
        return Err(StoreError::Conflict {
            run_id,
            message: "a run with this ID is already stored".into(),
        });
    }
    t.workflows
        .insert(record.workflow_id.as_str(), key)
        .map_err(redb_err)?;
    t.runs
        .insert(key, encoded.bytes.as_slice())
        .map_err(redb_err)?;
    visibility::insert(t, run_id, record)?;
    // A workflow that returned in its first activation is closed already.
    let wake = (!record.status.is_closed()).then_some(wake);
    set_wake(t, key, wake)?;
    for (i, event) in events.iter().enumerate() {
        t.history
            .insert((key, i as u64 + 1), event.as_slice())
            .map_err(redb_err)?;
    }
    Ok(WriteOutcome::Started)
}

pub(super) fn append(
    t: &mut Tables<'_>,
    run_id: RunId,
    record: Option<&EncodedRecord>,
    expect_next: u64,
    events: &[(u64, Vec<u8>)],
    wake: u64,
) -> Result<WriteOutcome, StoreError> {
    let key = run_id.as_u128();
    // Checked before anything is written: a refused operation leaves the
    // batch's transaction as it found it.
    let Some(old_wake) = t.running.get(key).map_err(redb_err)?.map(|v| v.value()) else {
        return Err(StoreError::Conflict {
            run_id,
            message: "the run is closed (or unknown) in the file".into(),
        });
    };
    let last = tables::last_event_id(&*t.history, key)?;
    if last.checked_add(1) != Some(expect_next) {
        return Err(StoreError::Conflict {
            run_id,
            message: format!(
                "the append expects event {expect_next} next, the stored history ends at {last}"
            ),
        });
    }
    let numbered = events
        .iter()
        .zip(expect_next..)
        .all(|((id, _), expected)| *id == expected);
    if !numbered {
        return Err(StoreError::Conflict {
            run_id,
            message: format!("the appended events are not numbered from {expect_next} on"),
        });
    }
    // Nothing follows a close: an append that closes the run ends with its
    // close event. (Only the last event is decoded, once per run.)
    if let Some(encoded) = record
        && encoded.record.status.is_closed()
    {
        let ends_closed = events
            .last()
            .and_then(|(_, bytes)| codec::decode::<Event>(bytes).ok())
            .is_some_and(|event| event.kind.is_close());
        if !ends_closed {
            return Err(StoreError::Conflict {
                run_id,
                message: "the append closes the run but does not end with its close event; \
                          nothing may follow a close"
                    .into(),
            });
        }
    }
    for (event_id, bytes) in events {
        t.history
            .insert((key, *event_id), bytes.as_slice())
            .map_err(redb_err)?;
    }
    // The record changes only when the run closes or its search attributes
    // do: while it runs, its history (whose length is its last event ID) is
    // the truth, and one B-tree write per step is saved.
    match record {
        Some(encoded) => {
            let old = t
                .runs
                .insert(key, encoded.bytes.as_slice())
                .map_err(redb_err)?
                .map(|bytes| codec::decode::<RunRecord>(bytes.value()));
            match old {
                Some(Ok(old)) => visibility::update(t, run_id, &old, &encoded.record)?,
                _ => visibility::insert(t, run_id, &encoded.record)?,
            }
            let closed = encoded.record.status.is_closed();
            move_wake(t, key, Some(old_wake), (!closed).then_some(wake))?;
        }
        None => move_wake(t, key, Some(old_wake), Some(wake))?,
    }
    Ok(WriteOutcome::Appended)
}

pub(super) fn close(
    t: &mut Tables<'_>,
    run_id: RunId,
    workflow_id: &str,
    (event_id, at, event): (u64, SystemTime, &[u8]),
    status: WorkflowStatus,
) -> Result<WriteOutcome, StoreError> {
    let key = run_id.as_u128();
    let mut record = match t.runs.get(key).map_err(redb_err)? {
        Some(bytes) => codec::decode::<RunRecord>(bytes.value())
            .map_err(|e| StoreError::corrupt(workflow_id, e))?,
        None => return Err(StoreError::missing_run(workflow_id, run_id)),
    };
    if record.status.is_closed() {
        return Ok(WriteOutcome::AlreadyClosed(record.status));
    }
    // The stored record's length is as of its last write; the history's
    // last key is the truth.
    let last = tables::last_event_id(&*t.history, key)?;
    if last.checked_add(1) != Some(event_id) {
        return Err(StoreError::Conflict {
            run_id,
            message: format!(
                "the close expects event {event_id} next, the stored history ends at {last}"
            ),
        });
    }
    let old = record.clone();
    record.history_len = event_id;
    record.status = status;
    record.close_time = Some(at);
    // Encoded before the first write: a failure after one would leave
    // part of the close in the transaction.
    let encoded = codec::encode(&record).map_err(StoreError::encode)?;
    t.history.insert((key, event_id), event).map_err(redb_err)?;
    t.runs.insert(key, encoded.as_slice()).map_err(redb_err)?;
    visibility::update(t, run_id, &old, &record)?;
    set_wake(t, key, None)?;
    Ok(WriteOutcome::Closed)
}

/// Removes a run's history and wake hint (for a delete or a sweep; the
/// record and index entries are the caller's, which knows the record).
pub(super) fn remove_history_and_wake(t: &mut Tables<'_>, key: u128) -> Result<(), StoreError> {
    t.history
        .remove_range((key, 0), (key, u64::MAX))
        .map_err(redb_err)?;
    // A closed run has no hint; removed in case damage left one.
    set_wake(t, key, None)
}

/// Keeps `running` and `wakeups` in step: `Some(hint)` for a run still
/// running, `None` once it closed.
pub(super) fn set_wake(t: &mut Tables<'_>, key: u128, wake: Option<u64>) -> Result<(), StoreError> {
    let old = t.running.get(key).map_err(redb_err)?.map(|v| v.value());
    move_wake(t, key, old, wake)
}

/// [`set_wake`] from a hint already read (`old`, as `running` holds it).
fn move_wake(
    t: &mut Tables<'_>,
    key: u128,
    old: Option<u64>,
    wake: Option<u64>,
) -> Result<(), StoreError> {
    if old == wake {
        return Ok(());
    }
    match wake {
        Some(wake) => t.running.insert(key, wake).map_err(redb_err)?,
        None => t.running.remove(key).map_err(redb_err)?,
    };
    if let Some(old) = old.filter(|w| *w != WAKE_NEVER) {
        t.wakeups.remove((old, key)).map_err(redb_err)?;
    }
    if let Some(wake) = wake.filter(|w| *w != WAKE_NEVER) {
        t.wakeups.insert((wake, key), ()).map_err(redb_err)?;
    }
    Ok(())
}
