//! Testing your workflows: [`TestEngine`], an engine on a virtual clock
//! that skips time, as Temporal's time-skipping `TestWorkflowEnvironment`.
//!
//! ```
//! use std::time::Duration;
//! use steadfast::testing::TestEngine;
//! use steadfast::{Engine, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};
//!
//! const TRIAL: WorkflowDef<(), String> = WorkflowDef::new("Trial");
//!
//! async fn trial(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
//!     ctx.sleep(Duration::from_secs(30 * 24 * 3600)).await?;
//!     Ok("trial over".into())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), steadfast::Error> {
//! let env = TestEngine::open(Engine::builder().workflow(TRIAL, trial)).await?;
//! let start = env.now();
//! let run = env.start_workflow(TRIAL, "trial-1", (), WorkflowOptions::new()).await?;
//! // Thirty days pass in virtual time while the test waits for the result.
//! assert_eq!(run.result().await?, "trial over");
//! assert!(env.now().duration_since(start).unwrap() >= Duration::from_secs(30 * 24 * 3600));
//! env.shutdown().await?;
//! # Ok(())
//! # }
//! ```

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::engine::{Engine, EngineBuilder};
use crate::error::{ClientError, OpenError};

/// An [`Engine`] on a virtual clock, for tests: workflows that sleep for
/// months finish in milliseconds, and every timeout (start-to-close,
/// schedule-to-start, schedule-to-close, heartbeat, run and execution),
/// retry backoff and retention cutoff runs on the same virtual time.
///
/// It dereferences to [`Engine`], so a test starts, signals, queries,
/// describes and reads the history of its runs as production code does.
/// Register test doubles as usual: the same [`ActivityDef`](crate::ActivityDef)
/// with a different function (a mocked payment API) on the builder given
/// to [`open`](Self::open).
///
/// # How time moves
///
/// The clock starts at the wall-clock time of the open and stands still
/// until it is moved. A file opened again with
/// [`open_path`](Self::open_path) keeps the times an earlier test engine
/// recorded, which may be ahead of the new clock: its runs' next events
/// then carry earlier timestamps than their last ones, and a timer
/// recorded for a virtual date waits for the new clock to reach that date. It jumps to the next due time (a timer, a retry, a
/// timeout) whenever the test waits on the engine (a
/// [`WorkflowHandle::result`](crate::WorkflowHandle::result), or
/// [`sleep`](Self::sleep)) and the engine is quiescent: no activity
/// attempt is running, no run has work in progress, nothing is being
/// committed. As in Temporal's test server, the test itself holds the clock
/// between its calls, so a test can start a workflow and signal it before
/// any time passes.
///
/// An activity attempt holds the clock while its code runs, whatever it
/// does: blocking I/O, `std::thread::sleep`, a real `tokio::time::sleep`.
/// Virtual time does not pass meanwhile, so no workflow timer or timeout
/// fires while it runs. An activity that waits with
/// [`ActivityContext::sleep`](crate::ActivityContext::sleep) lets time skip
/// past its wait (its timeouts then fire in virtual time). An attempt
/// waiting for a slot of a queue whose
/// [`max_concurrent_activities`](crate::Worker::max_concurrent_activities)
/// are all taken waits on the attempts that hold them, not on time: it
/// does not hold the clock until it gets its slot (so those attempts may
/// sleep), and its schedule-to-start timeout fires in virtual time.
///
/// # Clones of the engine
///
/// A clone of the [`Engine`] (`(*env).clone()`) keeps the engine, its
/// virtual clock and its file alive after the test engine is dropped:
/// they go when the engine has stopped, at the first
/// [`shutdown`](Self::shutdown) from any clone or when the last clone
/// drops.
pub struct TestEngine {
    engine: Engine,
    /// The engine's clock, also for reading it after a shutdown.
    clock: Clock,
    /// The engine's file.
    path: PathBuf,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine")
            .field("now", &self.now())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a test engine leaves behind: its clock's thread, its temporary
/// directory. Kept by the engine until it has stopped (see
/// `EngineBuilder::on_close`), so that no clone of it outlives them.
struct Cleanup {
    clock: Clock,
    /// Removed with everything in it, when the test engine made it.
    dir: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.clock.stop();
        if let Some(dir) = &self.dir {
            // Best effort: a leftover temporary directory harms nothing.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestEngine {
    /// Opens `builder`'s registrations on a virtual clock, on a new file in
    /// a temporary directory that is removed when the engine stops: when
    /// it is shut down, or when the test engine and every clone of its
    /// [`Engine`] are dropped. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// As [`EngineBuilder::open`]; [`OpenError::Unreadable`] when the
    /// temporary directory cannot be created (check that the system's
    /// temporary directory is writable), [`OpenError::Thread`] when the
    /// clock's thread cannot be started.
    pub async fn open(builder: EngineBuilder) -> Result<TestEngine, OpenError> {
        let dir = std::env::temp_dir().join(format!("steadfast-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).map_err(|e| OpenError::Unreadable {
            path: dir.clone(),
            message: format!(
                "the test engine could not create its temporary directory ({e}); check that the system's temporary directory is writable"
            ),
        })?;
        let path = dir.join("test.steadfast");
        Self::open_in(builder, &path, Some(dir)).await
    }

    /// Opens `builder`'s registrations on a virtual clock, on the file at
    /// `path` (created if missing, kept afterwards), for example to look at
    /// it after the test or to open it again.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_path(
        builder: EngineBuilder,
        path: impl AsRef<Path>,
    ) -> Result<TestEngine, OpenError> {
        Self::open_in(builder, path.as_ref(), None).await
    }

    /// As [`open_path`](Self::open_path), with the virtual clock reading
    /// `start` at first: to open a file again after a downtime (what a
    /// schedule catches up then), or at a chosen calendar time.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_path_at(
        builder: EngineBuilder,
        path: impl AsRef<Path>,
        start: SystemTime,
    ) -> Result<TestEngine, OpenError> {
        Self::open_with(builder, path.as_ref(), None, Some(start)).await
    }

    /// As [`open_path_at`](Self::open_path_at), on the PostgreSQL
    /// database at `url` instead of a file, in the builder's schema
    /// ([`EngineBuilder::postgres_schema`]), which is kept afterwards (open
    /// it again to test a downtime). [`path`](Self::path) is then the
    /// schema's name. Shard leases are timed by the database's clock, not
    /// the virtual one.
    ///
    /// # Errors
    /// As [`EngineBuilder::postgres`]; [`OpenError::Thread`] when the
    /// clock's thread cannot be started.
    #[cfg(feature = "postgres")]
    pub async fn open_postgres_at(
        builder: EngineBuilder,
        url: &str,
        start: SystemTime,
    ) -> Result<TestEngine, OpenError> {
        let schema = PathBuf::from(builder.schema_name());
        let (builder, clock) = Self::on_virtual_clock(builder, None, Some(start))?;
        let engine = builder.postgres(url).await?;
        Ok(TestEngine {
            engine,
            clock,
            path: schema,
        })
    }

    async fn open_in(
        builder: EngineBuilder,
        path: &Path,
        dir: Option<PathBuf>,
    ) -> Result<TestEngine, OpenError> {
        Self::open_with(builder, path, dir, None).await
    }

    async fn open_with(
        builder: EngineBuilder,
        path: &Path,
        dir: Option<PathBuf>,
        start: Option<SystemTime>,
    ) -> Result<TestEngine, OpenError> {
        let (builder, clock) = Self::on_virtual_clock(builder, dir, start)?;
        let engine = builder.open(path).await?;
        Ok(TestEngine {
            engine,
            clock,
            path: path.to_path_buf(),
        })
    }

    /// The builder on a new virtual clock, with what the engine leaves
    /// behind (the clock's thread, `dir`) dropped once it has stopped, or
    /// at once if the open fails.
    fn on_virtual_clock(
        builder: EngineBuilder,
        dir: Option<PathBuf>,
        start: Option<SystemTime>,
    ) -> Result<(EngineBuilder, Clock), OpenError> {
        // Made before the clock, so a failed start still cleans up.
        let mut cleanup = Cleanup {
            clock: Clock::system(),
            dir,
        };
        let clock = match start {
            Some(start) => Clock::virtual_at(start),
            None => Clock::virtual_now(),
        }
        .map_err(|source| OpenError::Thread {
            thread: "virtual clock",
            source,
        })?;
        cleanup.clock = clock.clone();
        let builder = builder.clock(clock.clone()).on_close(Box::new(cleanup));
        Ok((builder, clock))
    }

    /// The engine, for code that takes an `&Engine`.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The file the engine runs on (inside the temporary directory of
    /// [`open`](Self::open), which goes with the test engine).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current virtual time: what `WorkflowContext::now` reads in a
    /// workflow step taken now, and what event timestamps record.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Moves virtual time forward by `duration`, as Temporal's
    /// `env.sleep`: every timer, retry and timeout due on the way fires in
    /// order, each at its own time. Returns once the clock reached
    /// `now + duration` and the engine settled there (nothing running,
    /// nothing due), so what the workflows did by then is visible to
    /// `describe`, `query` and `history`. An activity that runs for real
    /// meanwhile holds the clock, and so delays the return, until it ends.
    pub async fn sleep(&self, duration: Duration) {
        self.clock.advance(duration).await
    }

    /// Shuts the engine down (see [`Engine::shutdown`]), then stops the
    /// clock and removes the temporary directory of [`open`](Self::open);
    /// clones of the engine get [`ClientError::ShutDown`] from then on.
    ///
    /// # Errors
    /// As [`Engine::shutdown`].
    pub async fn shutdown(self) -> Result<(), ClientError> {
        self.engine.shutdown().await
    }
}

impl Deref for TestEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// Decodes one record of a file's `history` table (see FORMAT.md) as the
/// engine reads it, whatever record version this build reads wrote it: for
/// tests and tools that read a file's tables directly.
///
/// # Errors
/// What is wrong with the record, as text: empty, of a newer version, or
/// not decodable.
#[doc(hidden)]
pub fn decode_event_record(bytes: &[u8]) -> Result<crate::history::Event, String> {
    crate::codec::decode(bytes).map_err(|e| e.to_string())
}
