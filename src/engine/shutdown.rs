//! The owner behind every clone of an [`Engine`](super::Engine): it shuts
//! the engine down once, when asked or when the last clone drops.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::worker::Shared;

/// Shared by the clones of one engine.
pub(super) struct Owner {
    pub(super) shared: Arc<Shared>,
    /// How long running activity attempts may go on once shutdown begins.
    grace: Duration,
    /// Set when the first shutdown has finished; concurrent callers wait
    /// for it, later ones return at once.
    done: OnceCell<()>,
    /// Task queues already warned about having no worker here.
    warned: Mutex<HashSet<String>>,
    /// Dropped once the engine has stopped: at the end of the first
    /// shutdown, or when the last clone drops (the test engine's clock
    /// and temporary directory, which no clone may outlive).
    on_close: Mutex<Option<OnClose>>,
    /// The schedules' drivers, to wake when a call changes a schedule.
    pub(super) schedules: super::scheduler::Drivers,
}

/// What [`Owner::on_close`] keeps; its drop does the work.
pub(crate) type OnClose = Box<dyn Any + Send + Sync>;

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("shared", &self.shared)
            .field("grace", &self.grace)
            .finish()
    }
}

impl Owner {
    pub(super) fn new(shared: Arc<Shared>, grace: Duration, on_close: Option<OnClose>) -> Self {
        Owner {
            shared,
            grace,
            done: OnceCell::new(),
            warned: Mutex::new(HashSet::new()),
            on_close: Mutex::new(on_close),
            schedules: super::scheduler::Drivers::default(),
        }
    }

    /// Drops what was kept for the engine's close, once.
    fn close(&self) {
        let on_close = self
            .on_close
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(on_close);
    }

    /// Logs, once per queue, that a run was started on a task queue no
    /// worker of this engine serves: it waits until one does.
    pub(super) fn warn_unserved(&self, task_queue: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task_queue.to_string());
        if first {
            tracing::warn!(
                task_queue,
                "a workflow was started on a task queue no worker of this engine serves; \
                 it waits until the engine is opened with a worker for that queue"
            );
        }
    }

    /// Drains and stops the engine, once; see [`Engine::shutdown`](super::Engine::shutdown).
    pub(super) async fn shutdown(&self) {
        self.done
            .get_or_init(|| async {
                let shared = &self.shared;
                shared.drain.start();
                // First, so that no timer delivers (and starts a task) after
                // the tracker is done.
                let stopping = shared.clone();
                let _ = tokio::task::spawn_blocking(move || stopping.stop_timers()).await;
                let abandoned = shared.drain(self.grace).await;
                if abandoned > 0 {
                    tracing::warn!(
                        abandoned,
                        grace = ?self.grace,
                        "shutdown abandoned running activity attempts; \
                         each runs again after the next open"
                    );
                }
                shared.shutdown.cancel();
                shared.tracker.close();
                shared.tracker.wait().await;
                let closing = shared.clone();
                let _ = tokio::task::spawn_blocking(move || closing.store.close()).await;
                self.close();
            })
            .await;
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Tasks end at their next await; the file closes when the last of
        // them lets go of it. Nothing acknowledged depends on this. The
        // timer thread is not a task: it is stopped here, so that it never
        // outlives the engine and the runtime holding the file.
        self.shared.shutdown.cancel();
        self.shared.stop_timers();
        self.close();
    }
}
