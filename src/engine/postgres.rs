//! Opening the engine on a PostgreSQL database instead of a file (the
//! `postgres` feature).

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

    /// Opens the engine on a PostgreSQL database instead of a file: the
    /// same workflows, the same guarantees (a change is acknowledged once
    /// PostgreSQL has committed it). The schema is created on first use
    /// and versioned by steadfast; every run that had not closed resumes,
    /// as after reopening a file. `url` is a libpq connection string or
    /// URL (`postgresql://user:password@host:5432/db`, or
    /// `host=/run/postgresql dbname=app`); the connection is not
    /// encrypted, so keep it on a trusted network or a Unix socket.
    ///
    /// One engine writes a schema at a time (sharing one among several
    /// processes is not supported yet). Must be called inside a tokio
    /// runtime.
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
    /// by a newer steadfast, [`OpenError::DatabaseInUse`] while another
    /// engine writes the schema (after waiting up to 3 s for the session of
    /// an engine killed a moment ago to end), [`OpenError::InvalidConfig`] as for
    /// [`open`](Self::open) and for a read-only builder (a read-only
    /// engine reads a file), [`OpenError::NoRuntime`] outside a tokio runtime.
    pub async fn postgres(self, url: &str) -> Result<Engine, OpenError> {
        self.check()?;
        if self.read_only {
            return Err(OpenError::InvalidConfig(
                "a read-only engine opens a file; open PostgreSQL without read_only".into(),
            ));
        }
        let store = PgStore::open(url, &self.postgres_schema).await?;
        let schema = self.postgres_schema.clone();
        self.start(Box::new(store), |message| OpenError::Database {
            message: format!("the schema {schema}: {message}"),
        })
        .await
    }
}
