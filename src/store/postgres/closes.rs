//! What a commit tells the other processes sharing the schema, after it
//! and outside its transaction: the closes it made, so that a result
//! awaited in another process for one of those runs is woken by the
//! owner's word instead of reading the run again and again; and the
//! shards whose owner (another process) a start of it hinted, so that the
//! owner reads its inbox at once.
//!
//! - The writer hands every close it commits to [`Closes::committed`];
//!   while other processes share the schema, the teller task sends them
//!   (a `NOTIFY` on the schema's channel whose payload is `c` and the run
//!   IDs, as many as fit), coalesced: one notification in flight at a
//!   time, on a session of its own, never inside a write transaction (a
//!   transaction that notifies holds a database-wide lock through its
//!   commit, which would make the writers of every process wait for each
//!   other's `fsync`).
//! - Each process's inbox session listens on that channel and wakes the
//!   waiters of the runs named ([`Closes::closed`]).
//! - The backstop: at least once a second the teller reads which of the
//!   runs waited for have closed (one statement for all of them), so a
//!   notification lost (a session reconnecting, a process of an earlier
//!   build closing the run) delays a result by a second at most.
//!
//! - A start hinted to another process's shard wrote its inbox row in
//!   its commit (`hinted_owner` in [`super::schema`]); the teller then
//!   notifies the shard's number, as the inbox's other hints do, instead
//!   of the start's own transaction.
//!
//! A wake is a hint: the waiter reads the run again and decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio_postgres::Client;

use super::{Target, db_err, run_id_of};
use crate::history::RunId;
use crate::store::{StoreError, StoreEvent, WriteOp};

/// The backstop: how often the runs waited for are read.
const POLL: Duration = Duration::from_secs(1);
/// What starts a payload that names closed runs (the inbox's hints are a
/// shard number or `reply`).
const PREFIX: char = 'c';
/// Most run IDs in one payload (33 bytes each, under PostgreSQL's 8,000).
const PER_PAYLOAD: usize = 230;
/// Most closes kept to tell while the teller cannot reach the database;
/// past it they are dropped (each process's backstop finds its own).
const OUTGOING_MAX: usize = 100_000;
/// Most notification payloads kept unsent over failed tries.
const UNSENT_MAX: usize = 1_000;
/// The longest a round of the teller may take before its session is
/// dropped and connected again (a half-open connection answers nothing).
const ROUND_MAX: Duration = Duration::from_secs(10);

/// Who waits for which close here, and the closes to tell the others.
#[derive(Debug, Default)]
pub(crate) struct Closes {
    waiting: Mutex<HashMap<RunId, Vec<oneshot::Sender<()>>>>,
    outgoing: Mutex<Vec<RunId>>,
    /// Shards whose owner is to be told of starts committed here.
    hinted: Mutex<std::collections::BTreeSet<i32>>,
    /// Told when there is something to tell.
    told: Notify,
}

impl Closes {
    /// Registers a wait for `run_id`'s close: the receiver answers on a
    /// word that it closed (or at the backstop's read that found it so).
    pub(crate) fn wait(&self, run_id: RunId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiting_lock().entry(run_id).or_default().push(tx);
        rx
    }

    /// Wakes the waiters of these runs.
    pub(crate) fn closed(&self, runs: impl IntoIterator<Item = RunId>) {
        let mut waiting = self.waiting_lock();
        for run_id in runs {
            for tx in waiting.remove(&run_id).unwrap_or_default() {
                let _ = tx.send(());
            }
        }
    }

    /// Runs this writer closed, committed: their waiters here wake, and
    /// the other processes are told when any share the schema.
    pub(crate) fn committed(&self, runs: Vec<RunId>, others: bool) {
        if runs.is_empty() {
            return;
        }
        self.closed(runs.iter().copied());
        if others {
            let mut outgoing = self.outgoing.lock().unwrap_or_else(|p| p.into_inner());
            let room = OUTGOING_MAX.saturating_sub(outgoing.len());
            outgoing.extend(runs.into_iter().take(room));
            drop(outgoing);
            self.told.notify_one();
        }
    }

    /// Shards a commit's starts hinted to their owners (other processes).
    pub(crate) fn hinted(&self, shards: Vec<i32>) {
        if shards.is_empty() {
            return;
        }
        self.hinted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(shards);
        self.told.notify_one();
    }

    fn take_hinted(&self) -> Vec<String> {
        std::mem::take(&mut *self.hinted.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .map(|shard| shard.to_string())
            .collect()
    }

    /// The runs waited for (waits given up are forgotten).
    fn waited(&self) -> Vec<uuid::Uuid> {
        let mut waiting = self.waiting_lock();
        waiting.retain(|_, senders| {
            senders.retain(|tx| !tx.is_closed());
            !senders.is_empty()
        });
        waiting.keys().map(RunId::as_uuid).collect()
    }

    fn waiting_lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Vec<oneshot::Sender<()>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_outgoing(&self) -> Vec<RunId> {
        std::mem::take(&mut *self.outgoing.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The payloads that name `runs` (each under PostgreSQL's limit).
pub(crate) fn payloads(runs: &[RunId]) -> Vec<String> {
    runs.chunks(PER_PAYLOAD)
        .map(|chunk| {
            let mut payload = String::with_capacity(1 + chunk.len() * 33);
            payload.push(PREFIX);
            for (i, run_id) in chunk.iter().enumerate() {
                if i > 0 {
                    payload.push(',');
                }
                payload.push_str(&run_id.as_uuid().simple().to_string());
            }
            payload
        })
        .collect()
}

/// The runs a payload names, when it names closes (`None`: another hint).
pub(crate) fn parse(payload: &str) -> Option<Vec<RunId>> {
    let ids = payload.strip_prefix(PREFIX)?;
    Some(
        ids.split(',')
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .map(run_id_of)
            .collect(),
    )
}

/// Which closes in a committed op (the runs it closed here).
pub(crate) fn closed_by(op: &WriteOp, runs: &mut Vec<RunId>) {
    match op {
        WriteOp::Start { run_id, record, .. } if record.record.status.is_closed() => {
            runs.push(*run_id)
        }
        WriteOp::Append {
            run_id,
            record: Some(record),
            ..
        } if record.record.status.is_closed() => runs.push(*run_id),
        WriteOp::Close { run_id, .. } => runs.push(*run_id),
        WriteOp::ContinueAsNew(op) => runs.push(op.run_id),
        WriteOp::CloseParent(op) => closed_by(&op.close, runs),
        WriteOp::External(op) => closed_by(&op.inner, runs),
        WriteOp::TellParent(op) => closed_by(&op.close, runs),
        _ => {}
    }
}

/// The teller task: tells the other processes the closes and hinted
/// starts committed here, and reads now and then which of the runs waited
/// for here have closed.
pub(crate) struct Teller {
    pub(crate) target: Target,
    pub(crate) closes: Arc<Closes>,
    pub(crate) events: tokio::sync::mpsc::UnboundedSender<StoreEvent>,
}

impl Teller {
    /// Tells and reads until the engine stops taking events.
    pub(crate) async fn run(self) {
        let mut client: Option<Client> = None;
        // Payloads not sent yet (kept over a failed try).
        let mut unsent: Vec<String> = Vec::new();
        let mut polled = tokio::time::Instant::now();
        loop {
            if self.events.is_closed() {
                return;
            }
            let round = async {
                if client.as_ref().is_none_or(Client::is_closed) {
                    client = Some(self.target.connect().await?);
                }
                let c = client.as_ref().ok_or(StoreError::Closed)?;
                unsent.extend(self.closes.take_hinted());
                unsent.extend(payloads(&self.closes.take_outgoing()));
                // The oldest go first when too many piled up.
                if unsent.len() > UNSENT_MAX {
                    unsent.drain(..unsent.len() - UNSENT_MAX);
                }
                if !unsent.is_empty() {
                    // One statement, one small transaction, for all.
                    c.execute(
                        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                        &[&self.target.schema, &unsent],
                    )
                    .await
                    .map_err(db_err)?;
                    unsent.clear();
                }
                if polled.elapsed() >= POLL {
                    polled = tokio::time::Instant::now();
                    self.backstop(c).await?;
                }
                Ok::<_, StoreError>(())
            };
            let round = match tokio::time::timeout(ROUND_MAX, round).await {
                Ok(round) => round,
                Err(_) => Err(StoreError::Database(
                    "the teller's session answered nothing in time".into(),
                )),
            };
            if let Err(error) = round {
                tracing::debug!(%error, "telling closes to the other processes failed; retrying");
                client = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            tokio::select! {
                _ = self.closes.told.notified() => {}
                _ = tokio::time::sleep_until(polled + POLL) => {}
                _ = self.events.closed() => return,
            }
        }
    }

    /// Wakes the waiters of the runs waited for here that have closed.
    async fn backstop(&self, c: &Client) -> Result<(), StoreError> {
        let waited = self.closes.waited();
        if waited.is_empty() {
            return Ok(());
        }
        let rows = c
            .query(
                "SELECT run_id FROM runs WHERE run_id = ANY($1) AND status <> 0",
                &[&waited],
            )
            .await
            .map_err(db_err)?;
        self.closes.closed(rows.iter().map(|r| run_id_of(r.get(0))));
        Ok(())
    }
}
