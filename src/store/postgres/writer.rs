//! The group-commit writer: one task, one session, every write transaction.
//!
//! The task takes the first waiting request and every other queued behind
//! it, applies them all in one transaction, commits, and only then answers
//! each caller. Starts and appends, the ops of the hot path, are one call
//! each of a function of the schema that decides its own outcome (see
//! [`super::schema`]), sent back to back (pipelined); a batch of only
//! those is sent with its `BEGIN` and `COMMIT` as one round trip (a
//! statement that fails aborts the transaction, and the `COMMIT` behind it
//! then rolls back). The rarer ops read what they need first and run one
//! after another. A refused op answers its refusal and writes nothing; any
//! other failure rolls the whole transaction back and every caller is
//! told, but a deadlock or serialisation failure, which rolled back
//! everything, is tried again first.
//!
//! About once a second after a commit the writer folds the counts' changes
//! ([`super::schema::FOLD`]) in a statement of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Statement, Transaction};

use super::closes::Closes;
use super::shards::Ownership;
use super::{Health, Target, db_err, nanos_column, status_code, wake_column};
use crate::codec;
use crate::error::OpenError;
use crate::history::{Event, RunId, WorkflowStatus};
use crate::store::query::suffix;
use crate::store::{
    ContinueAsNewOp, EncodedRecord, ReuseRule, RunRecord, StoreError, WriteOp, WriteOutcome,
};

/// Most requests folded into one transaction, so one commit stays short.
const MAX_BATCH: usize = 4096;
/// Most statements sent back to back before their answers are read.
const PIPELINE: usize = 256;
/// How often the counts' changes are folded, at most.
const FOLD_EVERY: Duration = Duration::from_secs(1);
/// How many times a batch rolled back by a deadlock or a serialisation
/// failure is tried again before its callers are told.
const ROLLED_BACK_RETRIES: usize = 3;
/// The index of a pipelined `BEGIN` or `COMMIT`, which answers no caller.
const CONTROL: usize = usize::MAX;
/// Runs one sweep removes at most, and history rows (the same bounds as
/// the redb store's, so a sweep holds the writer about as long).
pub(super) const SWEEP_MAX_RUNS: i64 = 32;
pub(super) const SWEEP_MAX_EVENTS: u64 = 1024;

/// An op's answer: what it did, or its refusal.
pub(super) type OpResult = Result<WriteOutcome, StoreError>;

/// An op under way: its answer, or a failure of the whole transaction.
type OpFuture<'a> = BoxFuture<'a, Result<OpResult, StoreError>>;

pub(crate) struct Request {
    pub(crate) op: WriteOp,
    pub(crate) reply: oneshot::Sender<OpResult>,
}

/// The writer's session and the statements prepared on it.
struct Session {
    client: Client,
    start_run: Statement,
    append_events: Statement,
}

pub(super) struct Writer {
    target: Target,
    health: Arc<Mutex<Health>>,
    session: Option<Session>,
    ownership: Arc<Ownership>,
    /// Told of the closes each commit makes (see [`super::closes`]).
    closes: Arc<Closes>,
    /// The sessions' `idle_in_transaction_session_timeout`, in ms.
    idle_timeout_ms: u64,
    /// When the counts' changes were last folded, and whether a commit
    /// came since.
    folded_at: Instant,
    unfolded: bool,
}

/// Both hot-path statements, by name (see [`super::schema`]), and what
/// this batch's fenced writes check: this process's member ID and the
/// epoch it holds each shard under (0: not owned).
pub(super) struct Statements<'a> {
    pub(super) start_run: &'a Statement,
    pub(super) append_events: &'a Statement,
    pub(super) me: uuid::Uuid,
    pub(super) epochs: &'a [i64],
    pub(super) ownership: &'a Ownership,
    /// The shards whose owner (another process) a start of this batch
    /// hinted: told after the commit, outside the transaction.
    pub(super) hinted: &'a Mutex<Vec<i32>>,
}

impl Writer {
    pub(super) fn new(
        target: Target,
        health: Arc<Mutex<Health>>,
        ownership: Arc<Ownership>,
        closes: Arc<Closes>,
        lease: std::time::Duration,
    ) -> Self {
        Writer {
            target,
            health,
            session: None,
            ownership,
            closes,
            // At least two seconds: a loaded machine's pauses between
            // statements are not taken for a stopped process.
            idle_timeout_ms: lease.max(std::time::Duration::from_secs(2)).as_millis() as u64,
            folded_at: Instant::now(),
            unfolded: false,
        }
    }

    /// Opens the schema, then commits batches until every sender is gone.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Request>,
        ready: oneshot::Sender<Result<(), OpenError>>,
    ) {
        let opened = self.open().await;
        let failed = opened.is_err();
        let _ = ready.send(opened);
        if failed {
            return;
        }
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let answers = self.commit(&batch).await;
            for (request, answer) in batch.into_iter().zip(answers) {
                // A caller that stopped waiting has nothing to be told.
                let _ = request.reply.send(answer);
            }
            self.fold_if_due().await;
        }
    }

    /// Folds the counts' changes when a commit came since the last fold a
    /// while ago; a failure leaves them for the next (the counts add
    /// them up meanwhile).
    async fn fold_if_due(&mut self) {
        if !self.unfolded || self.folded_at.elapsed() < FOLD_EVERY {
            return;
        }
        let Some(session) = self.session.as_ref().filter(|s| !s.client.is_closed()) else {
            return;
        };
        if let Err(error) = session.client.batch_execute(super::schema::FOLD).await {
            tracing::debug!(%error, "folding the PostgreSQL counts' changes failed");
        }
        self.folded_at = Instant::now();
        self.unfolded = false;
    }

    /// Connects the writer's session (the schema is prepared already).
    async fn open(&mut self) -> Result<(), OpenError> {
        let unreachable = |e: StoreError| OpenError::Database {
            message: format!(
                "{e}; check the URL, that the server runs and that this user may create \
                 a schema in the database"
            ),
        };
        let client = self.target.connect().await.map_err(unreachable)?;
        self.keep(client).await.map_err(unreachable)
    }

    /// Keeps `client` as the session, with the hot-path statements
    /// prepared on it.
    async fn keep(&mut self, client: Client) -> Result<(), StoreError> {
        // A process stopped inside a transaction (paused, cut off) keeps
        // its shards' rows locked: the server ends it after about a lease,
        // so that the shards' next owner may take them.
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {}",
                self.idle_timeout_ms
            ))
            .await
            .map_err(db_err)?;
        let start_run = client
            .prepare(
                "SELECT o_outcome, o_run, o_status FROM start_run($1::uuid, $2::text, \
                 $3::integer, $4::text, $5::smallint, $6::bigint, $7::bigint, $8::bytea, \
                 $9::bytea, $10::bytea[], $11::smallint, $12::bigint, $13::uuid)",
            )
            .await
            .map_err(db_err)?;
        let append_events = client
            .prepare(
                "SELECT o_outcome, o_last FROM append_events($1::uuid, $2::bigint, \
                 $3::bytea[], $4::bigint, $5::bytea, $6::smallint, $7::bigint, $8::bytea, \
                 $9::uuid, $10::bigint[], $11::boolean)",
            )
            .await
            .map_err(db_err)?;
        self.session = Some(Session {
            client,
            start_run,
            append_events,
        });
        Ok(())
    }

    /// The session, connected again after it dropped (what was lost
    /// meanwhile is fenced by every write, not by the session).
    async fn session(&mut self) -> Result<&mut Session, StoreError> {
        if self.session.as_ref().is_none_or(|s| s.client.is_closed()) {
            self.session = None;
            let client = self.target.connect().await?;
            self.keep(client).await?;
        }
        self.session
            .as_mut()
            .ok_or_else(|| StoreError::Database("no PostgreSQL session".into()))
    }

    async fn commit(&mut self, batch: &[Request]) -> Vec<OpResult> {
        let mut result = self.try_commit(batch).await;
        for _ in 0..ROLLED_BACK_RETRIES {
            match &result {
                Err(err) if rolled_back(err) => {
                    tracing::warn!(error = %err, ops = batch.len(), "a PostgreSQL commit was rolled back; trying it again");
                    result = self.try_commit(batch).await;
                }
                _ => break,
            }
        }
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((answers, hinted)) => {
                health.failures = 0;
                health.last = None;
                self.unfolded = true;
                let mut closed = Vec::new();
                for (request, answer) in batch.iter().zip(&answers) {
                    if answer.is_ok() {
                        super::closes::closed_by(&request.op, &mut closed);
                    }
                }
                self.closes.committed(closed, self.ownership.others());
                self.closes.hinted(hinted);
                answers
            }
            Err(err) => {
                health.failures = health.failures.saturating_add(1);
                health.last = Some(err.clone());
                tracing::warn!(error = %err, ops = batch.len(), "a PostgreSQL commit failed");
                // Nothing of a failed transaction is durable (or, for a
                // COMMIT that lost its connection, it is unknown): no
                // caller may be told its change was made.
                batch.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }

    /// One try at a batch: each op's answer, and the shards hinted.
    async fn try_commit(
        &mut self,
        batch: &[Request],
    ) -> Result<(Vec<OpResult>, Vec<i32>), StoreError> {
        let ownership = self.ownership.clone();
        // A newer build raised the schema's format: nothing is written.
        if let Some(refusal) = ownership.outdated() {
            return Ok((
                batch.iter().map(|_| Err(refusal.clone())).collect(),
                Vec::new(),
            ));
        }
        let epochs = ownership.epochs();
        let hinted = Mutex::new(Vec::new());
        let session = self.session().await?;
        let statements = Statements {
            start_run: &session.start_run,
            append_events: &session.append_events,
            me: ownership.me,
            epochs: &epochs,
            ownership: &ownership,
            hinted: &hinted,
        };
        let whole = batch
            .iter()
            .all(|request| matches!(request.op, WriteOp::Start { .. } | WriteOp::Append { .. }));
        let answers = if whole {
            let client = &session.client;
            let futures = batch
                .iter()
                .filter_map(|request| pipelined(client, &statements, &request.op))
                .collect();
            in_one_round_trip(client, futures).await?
        } else {
            step_by_step(&mut session.client, &statements, batch).await?
        };
        // A write refused by its fence: the shard is lost (the engine
        // drops its runs now, not at the next lease renewal).
        for answer in answers.iter().flatten() {
            if let Err(StoreError::ShardLost { shard }) = answer {
                let shard = *shard as i32;
                let epoch = epochs.get(shard as usize).copied().unwrap_or(0);
                ownership.refused(shard, epoch);
            }
        }
        let answers = answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(StoreError::Closed)))
            .collect();
        Ok((
            answers,
            hinted.into_inner().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// Whether a failed commit was rolled back whole by the server for a
/// reason that may not come again (a deadlock, a serialisation failure),
/// so that the same batch may be tried again: [`db_err`] puts the
/// SQLSTATE first.
fn rolled_back(err: &StoreError) -> bool {
    matches!(err, StoreError::Database(m) if m.starts_with("40P01") || m.starts_with("40001"))
}

/// A batch of pipelined ops only: `BEGIN`, the ops and `COMMIT` sent back
/// to back (one round trip when the batch fits in one pipeline).
async fn in_one_round_trip<'a>(
    client: &'a Client,
    futures: Vec<OpFuture<'a>>,
) -> Result<Vec<Option<OpResult>>, StoreError> {
    let control = |sql: &'static str| -> OpFuture<'a> {
        Box::pin(async move {
            client.batch_execute(sql).await.map_err(db_err)?;
            Ok(Ok(WriteOutcome::Appended))
        })
    };
    let mut answers: Vec<Option<OpResult>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, OpFuture<'a>)> = vec![(CONTROL, control("BEGIN"))];
    for (i, future) in futures.into_iter().enumerate() {
        pending.push((i, future));
        if pending.len() >= PIPELINE
            && let Err(e) = flush(&mut pending, &mut answers).await
        {
            // No COMMIT was sent behind the failed statement: end the
            // aborted transaction before the next batch.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    pending.push((CONTROL, control("COMMIT")));
    // A failed op aborted the transaction: the COMMIT sent behind it
    // rolled it back, and the failure is the batch's.
    flush(&mut pending, &mut answers).await?;
    Ok(answers)
}

/// Any batch: in a transaction, the pipelined ops sent back to back
/// between the others, each of which waits for its statements in turn.
async fn step_by_step(
    client: &mut Client,
    statements: &Statements<'_>,
    batch: &[Request],
) -> Result<Vec<Option<OpResult>>, StoreError> {
    let txn = client.transaction().await.map_err(db_err)?;
    let mut answers: Vec<Option<OpResult>> = batch.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, OpFuture<'_>)> = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        match pipelined(txn.client(), statements, &request.op) {
            Some(future) => {
                pending.push((i, future));
                if pending.len() >= PIPELINE {
                    flush(&mut pending, &mut answers).await?;
                }
            }
            None => {
                flush(&mut pending, &mut answers).await?;
                answers[i] = Some(apply(&txn, statements, &request.op).await?);
            }
        }
    }
    flush(&mut pending, &mut answers).await?;
    drop(pending);
    txn.commit().await.map_err(db_err)?;
    Ok(answers)
}

/// Waits for the pipelined ops, sent in their order: each future is
/// polled first in order (tokio-postgres sends a statement when its future
/// is first polled), then all until done.
async fn flush(
    pending: &mut Vec<(usize, OpFuture<'_>)>,
    answers: &mut [Option<OpResult>],
) -> Result<(), StoreError> {
    let mut futures: Vec<(usize, Option<OpFuture<'_>>)> =
        pending.drain(..).map(|(i, f)| (i, Some(f))).collect();
    let mut failed = None;
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in futures.iter_mut() {
            if let Some(future) = slot {
                match Pin::new(future).poll(cx) {
                    Poll::Ready(Ok(answer)) => {
                        // CONTROL (a BEGIN or COMMIT) answers no caller.
                        if let Some(answer_slot) = answers.get_mut(*i) {
                            *answer_slot = Some(answer);
                        }
                        *slot = None;
                    }
                    Poll::Ready(Err(e)) => {
                        failed.get_or_insert(e);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    failed.map_or(Ok(()), Err)
}

/// The op as one pipelined statement on `client` (in its transaction),
/// when it is a start or an append; `None` for the ops that read before
/// they write.
fn pipelined<'a>(
    client: &'a Client,
    statements: &'a Statements<'_>,
    op: &'a WriteOp,
) -> Option<OpFuture<'a>> {
    match op {
        WriteOp::Start {
            run_id,
            record,
            events,
            reuse,
            wake,
        } => Some(Box::pin(start_on(
            client, statements, *run_id, record, events, *reuse, *wake,
        ))),
        WriteOp::Append {
            run_id,
            record,
            expect_next,
            events,
            wake,
        } => Some(Box::pin(append_on(
            client,
            statements,
            (*run_id, record.as_ref(), *expect_next),
            events,
            *wake,
            false,
        ))),
        _ => None,
    }
}

/// Applies any op, waiting for each statement in turn.
pub(super) fn apply<'a>(
    txn: &'a Transaction<'_>,
    statements: &'a Statements<'_>,
    op: &'a WriteOp,
) -> OpFuture<'a> {
    Box::pin(async move {
        if let Some(future) = pipelined(txn.client(), statements, op) {
            return future.await;
        }
        match op {
            WriteOp::Close {
                run_id,
                workflow_id,
                event_id,
                at,
                event,
                status,
            } => {
                close(
                    txn,
                    statements,
                    *run_id,
                    workflow_id,
                    (*event_id, *at, event),
                    (*status, false),
                )
                .await
            }
            WriteOp::ContinueAsNew(op) => continue_as_new(txn, statements, op).await,
            WriteOp::StartChildren(op) => {
                super::children::start_children(txn, statements, op).await
            }
            WriteOp::CloseParent(op) => super::children::close_parent(txn, statements, op).await,
            WriteOp::External(op) => super::external::external(txn, statements, op).await,
            WriteOp::TellParent(op) => super::children::tell_parent(txn, statements, op).await,
            WriteOp::Schedule(op) => super::schedules::write(txn, statements, op).await,
            WriteOp::Delete { workflow_id } => delete(txn, workflow_id).await,
            WriteOp::Sweep { cutoff } => sweep(txn, *cutoff).await,
            WriteOp::Start { .. } | WriteOp::Append { .. } => {
                unreachable!("starts and appends are pipelined")
            }
        }
    })
}

fn reuse_code(reuse: ReuseRule) -> i16 {
    match reuse {
        ReuseRule::Allow => 0,
        ReuseRule::AllowIfLastNotCompleted => 1,
        ReuseRule::Reject => 2,
    }
}

/// The columns a record sets beside its bytes.
fn record_columns(run_id: RunId, record: &RunRecord) -> (i16, Option<i64>, Vec<u8>) {
    let close = record
        .close_time
        .filter(|_| record.status.is_closed())
        .map(nanos_column);
    (
        status_code(record.status),
        close,
        suffix(run_id, record).to_vec(),
    )
}

pub(super) async fn start(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    run_id: RunId,
    encoded: &EncodedRecord,
    events: &[Vec<u8>],
    reuse: ReuseRule,
    wake: u64,
) -> Result<OpResult, StoreError> {
    start_on(
        txn.client(),
        statements,
        run_id,
        encoded,
        events,
        reuse,
        wake,
    )
    .await
}

/// [`start`] on a client inside its transaction.
async fn start_on(
    txn: &Client,
    statements: &Statements<'_>,
    run_id: RunId,
    encoded: &EncodedRecord,
    events: &[Vec<u8>],
    reuse: ReuseRule,
    wake: u64,
) -> Result<OpResult, StoreError> {
    let record = &encoded.record;
    let (status, close, order) = record_columns(run_id, record);
    let events: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let row = txn
        .query_one(
            statements.start_run,
            &[
                &run_id.as_uuid(),
                &record.workflow_id,
                &statements.ownership.shard_of(&record.workflow_id),
                &record.workflow_type,
                &status,
                &nanos_column(record.start_time),
                &close,
                &order,
                &encoded.bytes,
                &events,
                &reuse_code(reuse),
                &wake_column(wake),
                &statements.me,
            ],
        )
        .await
        .map_err(db_err)?;
    let outcome: i16 = row.get(0);
    let other = row.get::<_, Option<uuid::Uuid>>(1).map(super::run_id_of);
    let other_status = row.get::<_, Option<i16>>(2).and_then(super::status_of);
    Ok(match (outcome, other, other_status) {
        (0, _, hinted) => {
            let shard = statements.ownership.shard_of(&record.workflow_id);
            if hinted.is_some() {
                // Its owner is notified after the commit (see `hinted_owner`).
                statements
                    .hinted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(shard);
            }
            // Hinted to another owner while this process believed it owned
            // the shard (its lease ran out unnoticed, or it was taken
            // over): the shard is lost here, so the engine leaves the run
            // to its owner instead of running it where nothing is written.
            if hinted.is_some() && statements.ownership.owns_shard(shard) {
                let epoch = statements.epochs.get(shard as usize).copied().unwrap_or(0);
                statements.ownership.refused(shard, epoch);
            }
            Ok(WriteOutcome::Started)
        }
        (1, Some(other), _) => Ok(WriteOutcome::AlreadyRunning(other)),
        (2, _, Some(status)) => Ok(WriteOutcome::ReuseRejected(status)),
        (3, _, _) => Err(StoreError::Conflict {
            run_id,
            message: "a run with this ID is already stored".into(),
        }),
        (4, Some(other), _) => Err(StoreError::missing_run(&record.workflow_id, other)),
        _ => Err(StoreError::Corrupt {
            workflow_id: record.workflow_id.clone(),
            message: format!("the start of run {run_id} answered outcome {outcome}"),
        }),
    })
}

/// The checks of an append that need no read: events numbered from
/// `expect_next`, and a closing append ending with its close event.
fn check_append(
    run_id: RunId,
    record: Option<&EncodedRecord>,
    expect_next: u64,
    events: &[(u64, Vec<u8>)],
) -> Result<(), StoreError> {
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
    Ok(())
}

/// An owner's append to one of its runs: fenced (refused with
/// [`StoreError::ShardLost`] unless this process owns the run's shard).
pub(super) async fn append(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    run_id: RunId,
    record: Option<&EncodedRecord>,
    expect_next: u64,
    events: &[(u64, Vec<u8>)],
    wake: u64,
) -> Result<OpResult, StoreError> {
    append_as(
        txn,
        statements,
        (run_id, record, expect_next),
        events,
        wake,
        false,
    )
    .await
}

/// A delivery into another run's history by a run's commit (a signal, a
/// cancellation request): not fenced, and hinted to the target's owner
/// when that is another process, which takes the event in.
pub(super) async fn deliver(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    run_id: RunId,
    expect_next: u64,
    events: &[(u64, Vec<u8>)],
    wake: u64,
) -> Result<OpResult, StoreError> {
    append_as(
        txn,
        statements,
        (run_id, None, expect_next),
        events,
        wake,
        true,
    )
    .await
}

async fn append_as(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    run: (RunId, Option<&EncodedRecord>, u64),
    events: &[(u64, Vec<u8>)],
    wake: u64,
    delivery: bool,
) -> Result<OpResult, StoreError> {
    append_on(txn.client(), statements, run, events, wake, delivery).await
}

/// [`append_as`] on a client inside its transaction.
async fn append_on(
    txn: &Client,
    statements: &Statements<'_>,
    (run_id, record, expect_next): (RunId, Option<&EncodedRecord>, u64),
    events: &[(u64, Vec<u8>)],
    wake: u64,
    delivery: bool,
) -> Result<OpResult, StoreError> {
    if let Err(refusal) = check_append(run_id, record, expect_next, events) {
        return Ok(Err(refusal));
    }
    let Ok(expect) = i64::try_from(expect_next) else {
        return Ok(Err(StoreError::Conflict {
            run_id,
            message: format!("event ID {expect_next} is past what the database keeps"),
        }));
    };
    let bytes: Vec<&[u8]> = events.iter().map(|(_, b)| b.as_slice()).collect();
    let columns = record.map(|r| record_columns(run_id, &r.record));
    let row = txn
        .query_one(
            statements.append_events,
            &[
                &run_id.as_uuid(),
                &expect,
                &bytes,
                &wake_column(wake),
                &record.map(|r| r.bytes.as_slice()),
                &columns.as_ref().map(|c| c.0),
                &columns.as_ref().and_then(|c| c.1),
                &columns.as_ref().map(|c| c.2.as_slice()),
                &statements.me,
                &statements.epochs,
                &delivery,
            ],
        )
        .await
        .map_err(db_err)?;
    let outcome: i16 = row.get(0);
    let last: Option<i64> = row.get(1);
    Ok(match outcome {
        0 => Ok(WriteOutcome::Appended),
        3 => Err(StoreError::ShardLost {
            shard: last.unwrap_or(0).max(0) as u32,
        }),
        1 => Err(StoreError::Conflict {
            run_id,
            message: "the run is closed (or unknown) in the database".into(),
        }),
        _ => Err(StoreError::Conflict {
            run_id,
            message: format!(
                "the append expects event {expect_next} next, the stored history ends at {}",
                last.unwrap_or(0)
            ),
        }),
    })
}

/// A stored run's record, decoded, with its history's last event ID,
/// locked for the transaction; `None` for an unknown run.
pub(super) async fn locked_run(
    txn: &Transaction<'_>,
    run_id: RunId,
    workflow_id: &str,
) -> Result<Option<Result<(RunRecord, u64), StoreError>>, StoreError> {
    let row = txn
        .query_opt(
            "SELECT record, last_event FROM runs WHERE run_id = $1 FOR UPDATE",
            &[&run_id.as_uuid()],
        )
        .await
        .map_err(db_err)?;
    Ok(row.map(|row| {
        let last: i64 = row.get(1);
        codec::decode::<RunRecord>(row.get::<_, &[u8]>(0))
            .map(|record| (record, last.max(0) as u64))
            .map_err(|e| StoreError::corrupt(workflow_id, e))
    }))
}

/// Closes a run with one event: fenced for an owner's close (`by_parent:
/// false`); a parent's close policy closes its children wherever they
/// are, and tells another process's child through its inbox.
pub(super) async fn close(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    run_id: RunId,
    workflow_id: &str,
    (event_id, at, event): (u64, SystemTime, &[u8]),
    (status, by_parent): (WorkflowStatus, bool),
) -> Result<OpResult, StoreError> {
    let shard = statements.ownership.shard_of(workflow_id);
    if !by_parent && !fenced(txn, statements, shard).await? {
        return Ok(Err(StoreError::ShardLost {
            shard: shard as u32,
        }));
    }
    let (mut record, last) = match locked_run(txn, run_id, workflow_id).await? {
        Some(Ok(found)) => found,
        Some(Err(refusal)) => return Ok(Err(refusal)),
        None => return Ok(Err(StoreError::missing_run(workflow_id, run_id))),
    };
    if record.status.is_closed() {
        return Ok(Ok(WriteOutcome::AlreadyClosed(record.status)));
    }
    if last.checked_add(1) != Some(event_id) {
        return Ok(Err(StoreError::Conflict {
            run_id,
            message: format!(
                "the close expects event {event_id} next, the stored history ends at {last}"
            ),
        }));
    }
    record.history_len = event_id;
    record.status = status;
    record.close_time = Some(at);
    let encoded = codec::encode(&record).map_err(StoreError::encode)?;
    let (code, close, order) = record_columns(run_id, &record);
    let id = event_id as i64;
    txn.execute(
        "INSERT INTO history (run_id, event_id, event) VALUES ($1, $2, $3)",
        &[&run_id.as_uuid(), &id, &event],
    )
    .await
    .map_err(db_err)?;
    txn.execute(
        "UPDATE runs SET record = $2, status = $3, close_ns = $4, list_order = $5, \
         wake = NULL, last_event = $6 WHERE run_id = $1",
        &[&run_id.as_uuid(), &encoded, &code, &close, &order, &id],
    )
    .await
    .map_err(db_err)?;
    if by_parent {
        txn.execute(
            "SELECT hint_owner($1, $2, $3, $4, 3::smallint, NULL)",
            &[&shard, &workflow_id, &run_id.as_uuid(), &statements.me],
        )
        .await
        .map_err(db_err)?;
    }
    Ok(Ok(WriteOutcome::Closed))
}

/// Whether this process owns `shard` under the epoch it holds; the
/// shard's row stays locked against a takeover until the commit.
pub(super) async fn fenced(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    shard: i32,
) -> Result<bool, StoreError> {
    let row = txn
        .query_one(
            "SELECT fenced($1, $2, $3)",
            &[&shard, &statements.me, &statements.epochs],
        )
        .await
        .map_err(db_err)?;
    Ok(row.get::<_, bool>(0))
}

/// Closes a run as continued and starts its successor; every refusal
/// comes before the first write.
pub(super) async fn continue_as_new(
    txn: &Transaction<'_>,
    statements: &Statements<'_>,
    op: &ContinueAsNewOp,
) -> Result<OpResult, StoreError> {
    let run_id = op.run_id;
    let conflict = |message: &str| {
        Ok(Err(StoreError::Conflict {
            run_id,
            message: message.to_string(),
        }))
    };
    // A reset closes the run as Terminated and starts its successor the
    // same way.
    if !matches!(
        op.record.record.status,
        WorkflowStatus::ContinuedAsNew | WorkflowStatus::Terminated
    ) {
        return conflict(
            "a continue-as-new (or reset) must close the run as ContinuedAsNew (or Terminated)",
        );
    }
    if let Err(refusal) = check_append(run_id, Some(&op.record), op.expect_next, &op.events) {
        return Ok(Err(refusal));
    }
    let latest = txn
        .query_opt(
            "SELECT latest_run FROM workflows WHERE workflow_id = $1 FOR UPDATE",
            &[&op.record.record.workflow_id],
        )
        .await
        .map_err(db_err)?
        .map(|row| super::run_id_of(row.get(0)));
    if latest != Some(run_id) {
        return conflict("the run is not its workflow ID's latest run");
    }
    let stored = txn
        .query_opt(
            "SELECT 1 FROM runs WHERE run_id = $1",
            &[&op.next_run_id.as_uuid()],
        )
        .await
        .map_err(db_err)?;
    if stored.is_some() {
        return Ok(Err(StoreError::Conflict {
            run_id: op.next_run_id,
            message: "a run with this ID is already stored".into(),
        }));
    }
    // The wake is unused: a closed run has none.
    match append(
        txn,
        statements,
        run_id,
        Some(&op.record),
        op.expect_next,
        &op.events,
        0,
    )
    .await?
    {
        Ok(WriteOutcome::Appended) => {}
        Ok(other) => return conflict(&format!("unexpected append outcome {other:?}")),
        Err(refusal) => return Ok(Err(refusal)),
    }
    let started = start(
        txn,
        statements,
        op.next_run_id,
        &op.next_record,
        &op.next_events,
        ReuseRule::Allow,
        op.next_wake,
    )
    .await?;
    match started {
        Ok(WriteOutcome::Started) => Ok(Ok(WriteOutcome::ContinuedAsNew)),
        // Checked above in this transaction: only damage gets here, after
        // the close was written, so the whole batch must not commit.
        other => Err(StoreError::Database(format!(
            "the successor of run {run_id} could not start after its close: {other:?}"
        ))),
    }
}

/// Removes every run of a closed workflow ID and the ID.
async fn delete(txn: &Transaction<'_>, workflow_id: &str) -> Result<OpResult, StoreError> {
    let row = txn
        .query_opt(
            "SELECT w.latest_run, r.status FROM workflows w \
             LEFT JOIN runs r ON r.run_id = w.latest_run \
             WHERE w.workflow_id = $1 FOR UPDATE OF w",
            &[&workflow_id],
        )
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(Ok(WriteOutcome::NotFound));
    };
    let current = super::run_id_of(row.get(0));
    let Some(status) = row.get::<_, Option<i16>>(1) else {
        return Ok(Err(StoreError::missing_run(workflow_id, current)));
    };
    if status == 0 {
        return Ok(Ok(WriteOutcome::StillRunning(current)));
    }
    let rows = txn
        .query(
            "DELETE FROM runs WHERE workflow_id = $1 RETURNING run_id, list_order",
            &[&workflow_id],
        )
        .await
        .map_err(db_err)?;
    let mut runs: Vec<(Vec<u8>, RunId)> = rows
        .iter()
        .map(|r| (r.get::<_, Vec<u8>>(1), super::run_id_of(r.get(0))))
        .collect();
    runs.sort();
    let mut runs: Vec<RunId> = runs.into_iter().map(|(_, r)| r).collect();
    if !runs.contains(&current) {
        runs.push(current);
    }
    let ids: Vec<uuid::Uuid> = runs.iter().map(RunId::as_uuid).collect();
    txn.execute("DELETE FROM history WHERE run_id = ANY($1)", &[&ids])
        .await
        .map_err(db_err)?;
    txn.execute(
        "DELETE FROM workflows WHERE workflow_id = $1",
        &[&workflow_id],
    )
    .await
    .map_err(db_err)?;
    Ok(Ok(WriteOutcome::Deleted(runs)))
}

/// Removes a bounded batch of the runs closed at or before `cutoff`,
/// oldest close first, each whole.
async fn sweep(txn: &Transaction<'_>, cutoff: SystemTime) -> Result<OpResult, StoreError> {
    let began = Instant::now();
    let rows = txn
        .query(
            "SELECT run_id, workflow_id, last_event FROM runs \
             WHERE status <> 0 AND close_ns <= $1 ORDER BY close_ns, run_id LIMIT $2 FOR UPDATE",
            &[&nanos_column(cutoff), &SWEEP_MAX_RUNS],
        )
        .await
        .map_err(db_err)?;
    let mut more = rows.len() as i64 == SWEEP_MAX_RUNS;
    let mut removed = Vec::new();
    let mut events = 0u64;
    for row in &rows {
        let run_id = super::run_id_of(row.get(0));
        let workflow_id: &str = row.get(1);
        let len = (row.get::<_, i64>(2).max(1)) as u64;
        if !removed.is_empty() && events.saturating_add(len) > SWEEP_MAX_EVENTS {
            more = true;
            break;
        }
        events = events.saturating_add(len);
        let id = run_id.as_uuid();
        txn.execute("DELETE FROM history WHERE run_id = $1", &[&id])
            .await
            .map_err(db_err)?;
        txn.execute("DELETE FROM runs WHERE run_id = $1", &[&id])
            .await
            .map_err(db_err)?;
        txn.execute(
            "DELETE FROM workflows WHERE workflow_id = $1 AND latest_run = $2",
            &[&workflow_id, &id],
        )
        .await
        .map_err(db_err)?;
        removed.push(run_id);
    }
    Ok(Ok(WriteOutcome::Swept {
        runs: removed,
        more,
        took: began.elapsed(),
    }))
}
