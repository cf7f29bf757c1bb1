//! The store in a PostgreSQL database: the only module that imports
//! tokio-postgres (behind the `postgres` feature).
//!
//! Its tables live in one schema ([`schema`]), so several applications may
//! share a database. Writes go through the group-commit writer task
//! ([`writer`]) on a connection of its own; reads share another connection
//! (tokio-postgres pipelines concurrent queries on it). Both connections,
//! and the writer, run on a small runtime the store owns, so that the
//! engine's timer thread may wait for a read with `block_on` and a caller's
//! runtime never has to drive the store.
//!
//! Several processes may share a schema: each owns some of its shards
//! by a lease ([`shards`]), advances only the runs of those, fences every
//! write by its lease, and reaches the runs of the others through the
//! inbox ([`inbox`]). One process alone owns every shard.

mod children;
mod closes;
mod external;
mod inbox;
mod reads;
mod schedules;
mod schema;
mod shards;
mod writer;

pub use shards::DEFAULT_SHARD_LEASE;
#[cfg(test)]
pub(crate) use shards::shard_of;
pub(crate) use shards::{MAX_LEASE, MIN_LEASE};

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Config, NoTls};

use super::{
    Query, QueryPage, RemoteReply, RemoteRequest, RunRecord, Store, StoreError, StoreEvent,
    WriteOp, WriteOutcome,
};
use crate::error::OpenError;
use crate::history::{Event, EventId, RunId};

/// The schema steadfast's tables go in unless the builder names another.
pub const DEFAULT_SCHEMA: &str = "steadfast";

/// Longest wait between retries while the database fails.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a call for a run another process owns waits for its answer
/// (past the longest lease, so that a takeover answers it first).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(90);
/// How often the wake-up scan also reads every overdue wake-up of the
/// owned shards again (a backstop for a hint gone missing).
const OVERDUE_SWEEP: Duration = Duration::from_secs(5);

/// Classifies a PostgreSQL error. Every failure of the database or of the
/// connection to it is a storage failure: the same call may succeed once
/// the server is back.
pub(crate) fn db_err(err: tokio_postgres::Error) -> StoreError {
    let message = match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => err.to_string(),
    };
    StoreError::Database(message)
}

/// What the store needs to connect (again).
#[derive(Clone, Debug)]
struct Target {
    config: Config,
    schema: String,
}

impl Target {
    /// A new session with steadfast's schema first on its search path.
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(db_err)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a PostgreSQL connection ended");
            }
        });
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .await
            .map_err(db_err)?;
        Ok(client)
    }
}

/// How storage is faring: failures in a row, and the last one.
#[derive(Debug, Default)]
struct Health {
    failures: u32,
    last: Option<StoreError>,
}

/// The store in a PostgreSQL schema.
#[derive(Debug)]
pub(crate) struct PgStore {
    target: Target,
    /// Runs the connections and the writer; taken on close.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    /// The readers' session, opened again when it drops.
    reader: tokio::sync::Mutex<Option<Arc<reads::Reader>>>,
    /// Requests to the writer; `None` once closed.
    tx: Mutex<Option<mpsc::UnboundedSender<writer::Request>>>,
    /// Answered when the writer has stopped.
    stopped: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    health: Arc<Mutex<Health>>,
    /// The shards this process owns.
    ownership: Arc<shards::Ownership>,
    /// Requests sent to other processes, and taken from the inbox.
    mailbox: Arc<inbox::Mailbox>,
    /// Results waited for here of runs another process advances.
    closes: Arc<closes::Closes>,
    /// What the store tells the engine; taken by its open.
    events: Mutex<Option<mpsc::UnboundedReceiver<StoreEvent>>>,
    /// Stops the lease task, which releases the shards, and says when done.
    leases_stop: Mutex<Option<oneshot::Sender<std::sync::mpsc::Sender<()>>>>,
    /// When the wake-up scan last read the overdue wake-ups again.
    last_sweep: Mutex<std::time::Instant>,
}

impl PgStore {
    /// Connects, creates or checks the schema, joins the processes that
    /// share it and takes its first shards (those free that it should own).
    pub(crate) async fn open(
        url: &str,
        schema: &str,
        lease: Duration,
    ) -> Result<PgStore, OpenError> {
        if !schema::valid_name(schema) {
            return Err(OpenError::InvalidConfig(format!(
                "{schema:?} cannot name a PostgreSQL schema for steadfast; use lower-case \
                 letters, digits and underscores (at most 63, not starting with a digit)"
            )));
        }
        let config: Config = url.parse().map_err(|e| OpenError::Database {
            message: format!("the PostgreSQL URL {url:?} does not parse ({e}); give a URL such as postgresql://user@host/db or host=... dbname=..."),
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("steadfast-postgres")
            .enable_all()
            .build()
            .map_err(|source| OpenError::Thread {
                thread: "PostgreSQL",
                source,
            })?;
        let handle = runtime.handle().clone();
        let mut config = config;
        // Names the engine's sessions in pg_stat_activity for operators.
        config.application_name(format!("steadfast {schema}"));
        let target = Target {
            config,
            schema: schema.to_string(),
        };
        let prepared = {
            let target = target.clone();
            handle
                .spawn(async move {
                    let unreachable = |e: StoreError| OpenError::Database {
                        message: format!(
                            "{e}; check the URL, that the server runs and that this user may \
                             create a schema in the database"
                        ),
                    };
                    let mut client = target.connect().await.map_err(unreachable)?;
                    let format = crate::store::STORE_FORMAT_VERSION;
                    schema::prepare(&mut client, &target.schema, format)
                        .await
                        .map_err(unreachable)?
                })
                .await
        };
        let shard_count = match prepared {
            Ok(Ok(count)) => count,
            Ok(Err(e)) => {
                runtime.shutdown_background();
                return Err(e);
            }
            Err(e) => {
                runtime.shutdown_background();
                return Err(OpenError::Database {
                    message: format!("opening the schema failed: {e}"),
                });
            }
        };
        let mailbox = Arc::new(inbox::Mailbox::default());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let ownership = Arc::new(shards::Ownership::new(
            shard_count,
            events_tx.clone(),
            mailbox.clone(),
        ));
        let health = Arc::new(Mutex::new(Health::default()));
        let closes = Arc::new(closes::Closes::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        let (stopped_tx, stopped) = std::sync::mpsc::channel();
        let writer = writer::Writer::new(
            target.clone(),
            health.clone(),
            ownership.clone(),
            closes.clone(),
            lease,
        );
        handle.spawn(async move {
            writer.run(rx, ready_tx).await;
            let _ = stopped_tx.send(());
        });
        let opened = ready.await.unwrap_or_else(|_| {
            Err(OpenError::Database {
                message: "the PostgreSQL writer stopped while opening".into(),
            })
        });
        if let Err(e) = opened {
            drop(tx);
            runtime.shutdown_background();
            return Err(e);
        }
        let leases = shards::Leases {
            target: target.clone(),
            ownership: ownership.clone(),
            lease,
        };
        let (leased_tx, leased) = oneshot::channel();
        let (leases_stop, stop_rx) = oneshot::channel();
        handle.spawn(leases.run(leased_tx, stop_rx));
        match leased.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                drop(tx);
                runtime.shutdown_background();
                return Err(OpenError::Database {
                    message: format!("joining the processes that share the schema failed: {e}"),
                });
            }
            Err(_) => {
                drop(tx);
                runtime.shutdown_background();
                return Err(OpenError::Database {
                    message: "the PostgreSQL lease task stopped while opening".into(),
                });
            }
        }
        // The engine's first wake-up scan reads everything due in the
        // shards held now; only later acquisitions need a whole read.
        ownership.take_fresh();
        let teller = closes::Teller {
            target: target.clone(),
            closes: closes.clone(),
            events: events_tx.clone(),
        };
        handle.spawn(teller.run());
        let inbox_task = inbox::InboxTask {
            target: target.clone(),
            ownership: ownership.clone(),
            mailbox: mailbox.clone(),
            closes: closes.clone(),
            events: events_tx,
        };
        handle.spawn(inbox_task.run());
        Ok(PgStore {
            target,
            runtime: Mutex::new(Some(runtime)),
            handle,
            reader: tokio::sync::Mutex::new(None),
            tx: Mutex::new(Some(tx)),
            stopped: Mutex::new(Some(stopped)),
            health,
            ownership,
            mailbox,
            closes,
            events: Mutex::new(Some(events_rx)),
            leases_stop: Mutex::new(Some(leases_stop)),
            last_sweep: Mutex::new(std::time::Instant::now()),
        })
    }

    /// The readers' session, connected (again) if needed.
    async fn reader(&self) -> Result<Arc<reads::Reader>, StoreError> {
        let mut reader = self.reader.lock().await;
        if let Some(client) = reader.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let target = self.target.clone();
        let client = self
            .handle
            .spawn(async move { reads::Reader::connect(&target).await })
            .await
            .map_err(|_| StoreError::Closed)??;
        let client = Arc::new(client);
        *reader = Some(client.clone());
        Ok(client)
    }

    async fn write_op(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let tx = self.tx.lock().map_err(|_| StoreError::Closed)?;
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(writer::Request { op, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn close_store(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(stopped) = self.stopped.lock().ok().and_then(|mut s| s.take()) {
            // The writer answers what was sent before the close, then stops.
            let _ = stopped.recv_timeout(Duration::from_secs(30));
        }
        // Then the shards go back, for the other processes to take at once.
        if let Some(stop) = self.leases_stop.lock().ok().and_then(|mut s| s.take()) {
            let (done_tx, done) = std::sync::mpsc::channel();
            if stop.send(done_tx).is_ok() {
                let _ = done.recv_timeout(Duration::from_secs(10));
            }
        }
        if let Ok(mut events) = self.events.lock() {
            events.take();
        }
        if let Some(runtime) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            runtime.shutdown_background();
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close_store();
    }
}

impl Store for PgStore {
    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<WriteOutcome, StoreError>> {
        Box::pin(self.write_op(op))
    }

    fn current_run<'a>(
        &'a self,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(RunId, RunRecord)>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::current_run(&c, workflow_id).await
        })
    }

    fn run<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::run(&c, run_id, workflow_id).await
        })
    }

    fn history_page<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
        from: EventId,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::history(&c, run_id, workflow_id, from, limit).await
        })
    }

    fn history_len<'a>(
        &'a self,
        run_id: RunId,
        _workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::history_len(&c, run_id).await
        })
    }

    fn last_event<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Event>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::last_event(&c, run_id, workflow_id).await
        })
    }

    fn wakeups(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<(u64, RunId)>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let fresh = self.ownership.take_fresh();
            let owned: Vec<i32> = self
                .ownership
                .owned()
                .into_iter()
                .filter(|s| !fresh.contains(s))
                .collect();
            // The backstop: now and then the owned shards' overdue
            // wake-ups are read again, so that no run of an owned shard
            // stays unloaded whatever hint went missing.
            let overdue_before = {
                let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= OVERDUE_SWEEP {
                    *last = std::time::Instant::now();
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(i64::MIN, |d| {
                            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
                        })
                } else {
                    i64::MIN
                }
            };
            let read = reads::wakeups(&c, (from, to), &owned, &fresh, overdue_before).await;
            if read.is_err() {
                self.ownership.give_back_fresh(fresh);
            }
            read
        })
    }

    fn list<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<QueryPage, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::list(&c, query).await
        })
    }

    fn counts(
        &self,
    ) -> BoxFuture<'_, Result<Vec<(crate::history::WorkflowStatus, u64)>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::counts(&c).await
        })
    }

    fn schedule<'a>(
        &'a self,
        schedule_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            schedules::schedule(&c, schedule_id).await
        })
    }

    fn schedules<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::schedule::record::ScheduleRecord>, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            schedules::schedules(&c, after, limit).await
        })
    }

    fn any_closed_by(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            reads::any_closed_by(&c, cutoff).await
        })
    }

    fn retry_delay(&self) -> Duration {
        let failures = self.health.lock().map_or(0, |h| h.failures);
        if failures == 0 {
            return Duration::ZERO;
        }
        let ms = 50u64.saturating_mul(1 << failures.min(6));
        Duration::from_millis(ms).min(BACKOFF_MAX)
    }

    fn failure(&self) -> StoreError {
        self.health
            .lock()
            .ok()
            .and_then(|h| h.last.clone())
            .unwrap_or_else(|| StoreError::Database("PostgreSQL failed".into()))
    }

    fn close(&self) {
        self.close_store();
    }

    fn owns(&self, workflow_id: &str) -> bool {
        self.ownership
            .owns_shard(self.ownership.shard_of(workflow_id))
    }

    fn shard_of(&self, workflow_id: &str) -> u32 {
        self.ownership.shard_of(workflow_id) as u32
    }

    fn forward<'a>(
        &'a self,
        workflow_id: &'a str,
        run_id: RunId,
        request: RemoteRequest,
    ) -> BoxFuture<'a, Result<RemoteReply, StoreError>> {
        Box::pin(async move {
            let key = uuid::Uuid::new_v4();
            let answer = self.mailbox.expect(key);
            let shard = self.ownership.shard_of(workflow_id);
            let sent = async {
                let c = self.reader().await?;
                inbox::send(
                    &c,
                    key,
                    shard,
                    (workflow_id, run_id),
                    self.ownership.me,
                    &request,
                    &self.target.schema,
                )
                .await
            }
            .await;
            if let Err(e) = sent {
                self.mailbox.forget(key);
                return Err(e);
            }
            self.mailbox.sent.notify_one();
            match tokio::time::timeout(FORWARD_TIMEOUT, answer).await {
                Ok(answer) => answer.map_err(|_| StoreError::Closed),
                Err(_) => {
                    self.mailbox.forget(key);
                    // Taken back if still unread: then nothing was done.
                    let withdrawn = match self.reader().await {
                        Ok(c) => c
                            .execute("DELETE FROM inbox WHERE request = $1", &[&key])
                            .await
                            .is_ok_and(|n| n == 1),
                        Err(_) => false,
                    };
                    let outcome = if withdrawn {
                        "nothing was done; retry the call"
                    } else {
                        "it may have been carried out: read the run's history before retrying"
                    };
                    Err(StoreError::Database(format!(
                        "no process answered within {}s the request for workflow \
                         {workflow_id:?} sent to the owner of its shard {shard} (paused, cut \
                         off or overloaded); {outcome}",
                        FORWARD_TIMEOUT.as_secs()
                    )))
                }
            }
        })
    }

    fn close_hint(&self, run_id: RunId) -> Option<BoxFuture<'static, ()>> {
        let closed = self.closes.wait(run_id);
        Some(Box::pin(async move {
            let _ = closed.await;
        }))
    }

    fn events(&self) -> Option<mpsc::UnboundedReceiver<StoreEvent>> {
        self.events.lock().ok().and_then(|mut e| e.take())
    }

    fn answer(
        &self,
        request: uuid::Uuid,
        reply: Option<RemoteReply>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let c = self.reader().await?;
            let answered = inbox::answer(&c, request, reply.as_ref(), &self.target.schema).await;
            self.mailbox.answered(request);
            answered
        })
    }
}

/// A wake hint as stored: `WAKE_NEVER` as NULL, a time past what a
/// `bigint` holds as its largest value.
pub(crate) fn wake_column(wake: u64) -> Option<i64> {
    (wake != super::WAKE_NEVER).then(|| i64::try_from(wake).unwrap_or(i64::MAX))
}

/// A time as stored: nanoseconds since the epoch, saturated.
pub(crate) fn nanos_column(t: SystemTime) -> i64 {
    i64::try_from(super::query::nanos(t)).unwrap_or(i64::MAX)
}

/// The stored status code of a status (fixed: it is stored).
pub(crate) fn status_code(status: crate::history::WorkflowStatus) -> i16 {
    use crate::history::WorkflowStatus;
    match status {
        WorkflowStatus::Running => 0,
        WorkflowStatus::Completed => 1,
        WorkflowStatus::Failed => 2,
        WorkflowStatus::Cancelled => 3,
        WorkflowStatus::Terminated => 4,
        WorkflowStatus::TimedOut => 5,
        WorkflowStatus::ContinuedAsNew => 6,
    }
}

/// The status a stored code names.
pub(crate) fn status_of(code: i16) -> Option<crate::history::WorkflowStatus> {
    use crate::history::WorkflowStatus;
    Some(match code {
        0 => WorkflowStatus::Running,
        1 => WorkflowStatus::Completed,
        2 => WorkflowStatus::Failed,
        3 => WorkflowStatus::Cancelled,
        4 => WorkflowStatus::Terminated,
        5 => WorkflowStatus::TimedOut,
        6 => WorkflowStatus::ContinuedAsNew,
        _ => return None,
    })
}

pub(crate) fn run_id_of(uuid: uuid::Uuid) -> RunId {
    RunId::from_u128(uuid.as_u128())
}
