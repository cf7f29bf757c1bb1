//! Signal handlers: [`WorkflowContext::handle_signal`], the style of
//! Temporal's Python, TypeScript and Java SDKs, beside `recv_signal` (Go's).
//!
//! A signal of a name with a handler starts a handler task when it is
//! delivered (in history order, live and on replay); tasks run before the
//! main code continues (see `update::poll_tasks`). Such a signal is never
//! buffered for `recv_signal`, so it is never "unread" either: only a
//! signal whose payload does not decode as the handler's type stays
//! buffered, and is recorded as unread at the close if nothing takes it.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::context::WorkflowContext;
use super::definition::SignalDef;
use super::error::WorkflowError;
use super::replay::lock;
use super::update::{StartTask, Task, TaskKind};
use crate::history::Payload;

impl WorkflowContext {
    /// Handles every signal of a name with `handler`, one call per signal,
    /// in arrival order, each before the main code continues (as Temporal's
    /// Python, TypeScript and Java SDKs run signal handlers). The handler
    /// is workflow code: it may call activities and timers, and it replays
    /// deterministically; while it waits, the main code and other handlers
    /// go on. Signals that arrived before the handler was registered (a
    /// signal-with-start's, those a continue-as-new carried) are handled
    /// at registration, in their order.
    ///
    /// A name with a handler is no longer received by
    /// [`recv_signal`](Self::recv_signal) or
    /// [`try_recv_signal`](Self::try_recv_signal) (they would wait or find
    /// nothing), and its signals are not counted as unread when the run
    /// closes: the handler took each one. A signal whose payload does not
    /// decode as `T` is not given to the handler; it stays buffered (a
    /// `try_recv_signal` of the name reports the decode error) and is
    /// recorded as unread if nothing takes it. A handler that returns an
    /// error fails the workflow, as an exception in a signal handler does
    /// in Temporal. A later call for the same name replaces the handler.
    ///
    /// ```no_run
    /// # use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// # use steadfast::{SignalDef, WorkflowContext};
    /// const CANCEL: SignalDef<String> = SignalDef::new("cancel");
    /// # fn body(ctx: WorkflowContext) {
    /// let cancelled = Arc::new(AtomicBool::new(false));
    /// let flag = cancelled.clone();
    /// ctx.handle_signal(CANCEL, move |_ctx, _reason: String| {
    ///     let flag = flag.clone();
    ///     async move {
    ///         flag.store(true, Ordering::SeqCst);
    ///         Ok(())
    ///     }
    /// });
    /// # }
    /// ```
    pub fn handle_signal<T, F, Fut>(&self, signal: SignalDef<T>, handler: F)
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(WorkflowContext, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), WorkflowError>> + Send + 'static,
    {
        let start: StartTask = Arc::new(move |ctx, input: &Payload| {
            let input: T = input.decode()?;
            let future = handler(ctx, input);
            Ok(Box::pin(async move {
                future.await?;
                Payload::encode(&()).map_err(WorkflowError::from)
            }))
        });
        let name = signal.name();
        let buffered = {
            let mut core = lock(self.core());
            core.handlers
                .signals
                .insert(name.to_string(), start.clone());
            core.take_buffered(name)
        };
        // Outside the lock: making a handler's future is user code.
        let mut tasks = Vec::new();
        let mut kept = Vec::new();
        for (arrival, payload) in buffered {
            match start(self.clone(), &payload) {
                Ok(future) => tasks.push(Task {
                    kind: TaskKind::Signal,
                    future,
                }),
                Err(_) => kept.push((arrival, payload)),
            }
        }
        let mut core = lock(self.core());
        core.put_back(name, kept);
        core.handlers.spawned.extend(tasks);
    }
}
