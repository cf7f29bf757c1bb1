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
//! One engine writes a schema at a time: the writer's session holds an
//! advisory lock on it, taken again after every reconnect, and a write
//! transaction only ever runs on that session, so an engine that lost the
//! lock (its connection dropped and another engine took over) cannot write.
//! Sharing a schema among several processes by shard leases is the next
//! step (`shared/SCALE-OUT.md`).

mod children;
mod external;
mod reads;
mod schedules;
mod schema;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Config, NoTls};

use super::{Query, QueryPage, RunRecord, Store, StoreError, WriteOp, WriteOutcome};
use crate::error::OpenError;
use crate::history::{Event, EventId, RunId};

/// The schema steadfast's tables go in unless the builder names another.
pub const DEFAULT_SCHEMA: &str = "steadfast";

/// Longest wait between retries while the database fails.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

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
    reader: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Requests to the writer; `None` once closed.
    tx: Mutex<Option<mpsc::UnboundedSender<writer::Request>>>,
    /// Answered when the writer has stopped.
    stopped: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    health: Arc<Mutex<Health>>,
}

impl PgStore {
    /// Connects, creates or checks the schema, and takes the schema's
    /// writer lock.
    pub(crate) async fn open(url: &str, schema: &str) -> Result<PgStore, OpenError> {
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
        let health = Arc::new(Mutex::new(Health::default()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        let (stopped_tx, stopped) = std::sync::mpsc::channel();
        let writer = writer::Writer::new(target.clone(), health.clone());
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
        Ok(PgStore {
            target,
            runtime: Mutex::new(Some(runtime)),
            handle,
            reader: tokio::sync::Mutex::new(None),
            tx: Mutex::new(Some(tx)),
            stopped: Mutex::new(Some(stopped)),
            health,
        })
    }

    /// The readers' session, connected (again) if needed.
    async fn reader(&self) -> Result<Arc<Client>, StoreError> {
        let mut reader = self.reader.lock().await;
        if let Some(client) = reader.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let target = self.target.clone();
        let client = self
            .handle
            .spawn(async move { target.connect().await })
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
            reads::wakeups(&c, from, to).await
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
}

/// The shard of a workflow ID (FNV-1a, stable across builds and
/// platforms: it is stored).
pub(crate) fn shard_of(workflow_id: &str) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in workflow_id.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(schema::SHARD_COUNT)) as i32
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
