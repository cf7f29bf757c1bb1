//! Opening a file read-only: for a command-line tool or a person looking at
//! a file no engine holds, without changing a byte of it.

use std::path::Path;
use std::time::Duration;

use super::{Engine, EngineBuilder};
use crate::error::{ClientError, OpenError};
use crate::store::{ReadOnlyStore, Store};

impl EngineBuilder {
    /// Opens the file without writing to it: reads (`list`, `describe`,
    /// `history`, `workflow_history`, and queries, answered by replaying
    /// the history with the registered code) work as on any engine; calls
    /// that would change the file fail with [`ClientError::ReadOnly`]. No
    /// run is loaded, no timer fires and no workflow or activity code runs
    /// on its own, so the file stays as its last engine left it.
    ///
    /// The file must exist, must have been closed cleanly (otherwise
    /// [`OpenError::NeedsRecovery`]: open it once for writing, which
    /// repairs it), and must not be format 1 ([`OpenError::NeedsMigration`]).
    /// While an engine holds the file the open fails with
    /// [`OpenError::AlreadyInUse`]: reach that application instead (its
    /// admin endpoint), unless that engine shares its file
    /// ([`shared_reads(true)`](Self::shared_reads)): then this engine reads
    /// it as it runs, each read seeing its latest commit. Retention cannot
    /// be set.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), steadfast::Error> {
    /// use steadfast::{Engine, ListFilter};
    /// let engine = Engine::builder().read_only().open("orders.steadfast").await?;
    /// for run in engine.list(&ListFilter::new()).await?.executions {
    ///     println!("{} {:?}", run.workflow_id, run.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// The read-only store of `path`, opened off the async threads.
pub(super) async fn open_store(
    path: &Path,
    cache_bytes: usize,
    retention: Option<Duration>,
) -> Result<Box<dyn Store>, OpenError> {
    if retention.is_some() {
        return Err(OpenError::InvalidConfig(
            "retention removes runs, which a read-only engine cannot; drop one of the two".into(),
        ));
    }
    let file = path.to_path_buf();
    let store = tokio::task::spawn_blocking(move || ReadOnlyStore::open(&file, cache_bytes))
        .await
        .map_err(|e| OpenError::InvalidConfig(format!("the open task failed: {e}")))??;
    Ok(Box::new(store))
}

impl Engine {
    /// Refuses `call` on a read-only engine, before anything is tried.
    pub(super) fn writable(&self, call: &'static str) -> Result<(), ClientError> {
        if self.read_only {
            return Err(ClientError::ReadOnly { call });
        }
        Ok(())
    }

    /// True when the engine was opened with [`EngineBuilder::read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}
