//! Opening the engine on a PostgreSQL database instead of a file (the
//! `postgres` feature), alone or with other processes on the same schema.

use std::time::Duration;

use super::{Engine, EngineBuilder};
use crate::error::OpenError;
use crate::store::PgStore;

impl EngineBuilder {
    /// Names the PostgreSQL schema that holds steadfast's tables, so that
    /// several applications (or tests) can share one database, each in its
    /// own schema. Default: `steadfast`
    /// ([`DEFAULT_POSTGRES_SCHEMA`](crate::DEFAULT_POSTGRES_SCHEMA)). Lower-case
    /// letters, digits and underscores; anything else is refused by
    /// [`postgres`](Self::postgres) with [`OpenError::InvalidConfig`].
    pub fn postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.postgres_schema = schema.into();
        self
    }

    /// The schema [`postgres`](Self::postgres) opens.
    pub(crate) fn schema_name(&self) -> &str {
        &self.postgres_schema
    }

    /// Sets how long this process's lease on its PostgreSQL shards lasts
    /// (renewed every second, or every fifth of the lease when shorter):
    /// after a crash, the other processes sharing the schema take over its
    /// runs within about the lease plus a second or two; a process that
    /// cannot renew for this long (paused, cut off from the database) loses
    /// its shards and writes nothing more to them. Between 1 s and 60 s;
    /// anything else is refused by [`postgres`](Self::postgres) with
    /// [`OpenError::InvalidConfig`]. Default: 5 s
    /// ([`DEFAULT_SHARD_LEASE`](crate::DEFAULT_SHARD_LEASE)). Processes
    /// sharing a schema should use the same lease.
    pub fn shard_lease(mut self, lease: Duration) -> Self {
        self.shard_lease = lease;
        self
    }

    /// Opens the engine on a PostgreSQL database instead of a file: the
    /// same workflows, the same guarantees (a change is acknowledged once
    /// PostgreSQL has committed it). The schema is created on first use
    /// and versioned by steadfast; every run that had not closed resumes,
    /// as after reopening a file. `url` is a libpq connection string or
    /// URL (`postgresql://user:password@host:5432/db`, or
    /// `host=/run/postgresql dbname=app`); the connection is not
    /// encrypted, so keep it on a trusted network or a Unix socket.
    ///
    /// Several processes (on one machine or several) may open the same
    /// schema with the same workflows registered: they share its runs.
    /// The schema's runs are split into a fixed number of shards (64, set
    /// when the schema is created) by a stable hash of the workflow ID, so
    /// every run of one workflow ID is in one shard; each process owns
    /// some shards by a lease (see [`shard_lease`](Self::shard_lease)),
    /// and only a shard's owner advances its runs (runs their code and
    /// activities, fires their timers). The processes split the shards
    /// evenly among themselves; one joining or leaving moves only its
    /// share. What each process can rely on:
    ///
    /// - A start, signal, cancel, terminate, query or update made in any
    ///   process reaches the run wherever it is: a start is committed by
    ///   the process that makes it (the database decides between two
    ///   starts of one ID), and the other calls travel to the run's owner
    ///   through the schema's inbox and are answered from there. A signal
    ///   is delivered exactly once, also when its owner crashes meanwhile.
    ///   Queries are answered by the owner, from its state of the run.
    /// - A process killed (SIGKILL) loses nothing acknowledged: once its
    ///   lease runs out, the others take its shards over and resume its
    ///   runs, and the activity attempts it had running are retried under
    ///   their retry policy, as after a crash on a file. On the same
    ///   machine a member whose process has exited is noticed at once (by
    ///   its PID), so a restart after a crash does not wait for the lease.
    /// - Every write of an owner is fenced by its lease: a process paused
    ///   past its lease (SIGSTOP) or cut off from the database, once it
    ///   resumes, writes nothing more to the shards it lost (its writes are
    ///   refused) and drops those runs from memory.
    /// - [`Engine::shutdown`] hands this process's shards over at once.
    ///
    /// Not done yet: resetting a run of another process's shard; a child
    /// whose close and its parent live in different processes reaches the
    /// parent by a message after the close (if the child's process dies in
    /// between, the parent learns of it when it is next loaded); schedules
    /// are driven by every process (each action's start is still made
    /// once, the database refusing the others).
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), steadfast::OpenError> {
    /// let engine = steadfast::Engine::builder()
    ///     .postgres("postgresql://app@localhost/app")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`OpenError::Database`] when the server cannot be reached or refuses
    /// to create the schema, [`OpenError::NewerSchema`] for a schema written
    /// by a newer steadfast, [`OpenError::DatabaseInUse`] while an engine
    /// of an older steadfast (layout 1, one engine per schema) writes the
    /// schema this one would migrate, [`OpenError::InvalidConfig`] as for
    /// [`open`](Self::open), for a lease out of bounds and for a read-only
    /// builder (a read-only engine reads a file), [`OpenError::NoRuntime`]
    /// outside a tokio runtime.
    pub async fn postgres(self, url: &str) -> Result<Engine, OpenError> {
        self.check()?;
        if self.read_only {
            return Err(OpenError::InvalidConfig(
                "a read-only engine opens a file; open PostgreSQL without read_only".into(),
            ));
        }
        let lease = self.shard_lease;
        if !(crate::store::MIN_LEASE..=crate::store::MAX_LEASE).contains(&lease) {
            return Err(OpenError::InvalidConfig(format!(
                "a shard lease of {lease:?} is out of bounds; give one between 1 s and 60 s"
            )));
        }
        let store = PgStore::open(url, &self.postgres_schema, lease).await?;
        let schema = self.postgres_schema.clone();
        self.start(Box::new(store), |message| OpenError::Database {
            message: format!("the schema {schema}: {message}"),
        })
        .await
    }
}
