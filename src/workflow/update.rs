//! Workflow updates in workflow code: [`UpdateDef`], the handlers a
//! workflow registers with [`WorkflowContext::handle_update`], and the
//! handler tasks the machine runs beside the workflow's main code.
//!
//! An update is validated live only (the validator runs in-process, before
//! anything is written); once accepted, its `WorkflowUpdateAccepted` event
//! starts the handler as a task, on replay as live, and the handler's
//! return is a command (`WorkflowUpdateCompleted`) like any other.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};

use super::context::WorkflowContext;
use super::error::WorkflowError;
use super::replay::{RunCore, lock};
use crate::history::{EventKind, Payload, PayloadError, UpdateOutcome};

/// Updates a run takes at once by default: accepted, their handler not
/// returned (Temporal's `history.maxInFlightUpdates`). One more is refused
/// with [`UpdateError::TooManyInFlight`](crate::UpdateError::TooManyInFlight).
pub const DEFAULT_MAX_IN_FLIGHT_UPDATES: u32 = 10;
/// Updates one run takes in all by default (Temporal's
/// `history.maxTotalUpdates`). One more is refused with
/// [`UpdateError::TooManyUpdates`](crate::UpdateError::TooManyUpdates);
/// the run's successor after a continue-as-new counts from zero.
pub const DEFAULT_MAX_UPDATES_PER_RUN: u32 = 2000;

/// An update's name with its input and result types. An update is a
/// tracked write: the caller gets the handler's result.
///
/// ```
/// use steadfast::UpdateDef;
/// const CHANGE_PLAN: UpdateDef<String, u32> = UpdateDef::new("change_plan");
/// ```
pub struct UpdateDef<I, O> {
    name: &'static str,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O> UpdateDef<I, O> {
    /// Names an update. The name is stored in history with each update.
    pub const fn new(name: &'static str) -> Self {
        UpdateDef {
            name,
            types: PhantomData,
        }
    }

    /// The name stored in history.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> Clone for UpdateDef<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for UpdateDef<I, O> {}

impl<I, O> fmt::Debug for UpdateDef<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpdateDef({:?})", self.name)
    }
}

/// Why the workflow code did not accept an update (nothing was written).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The code registers no handler of that name.
    Unknown,
    /// The input does not decode as the handler's input type.
    BadInput(String),
    /// The validator rejected it, with its message.
    Rejected(String),
}

/// A handler's future, its output type erased.
pub(crate) type TaskFuture = BoxFuture<'static, Result<Payload, WorkflowError>>;

/// Makes a handler's task from its context and the stored input; fails
/// only when the input does not decode.
pub(crate) type StartTask =
    Arc<dyn Fn(WorkflowContext, &Payload) -> Result<TaskFuture, PayloadError> + Send + Sync>;

/// Runs a validator on the stored input.
pub(crate) type Validate = Arc<dyn Fn(&Payload) -> Result<(), Refusal> + Send + Sync>;

/// A registered update handler, types erased.
#[derive(Clone)]
pub(crate) struct UpdateHandler {
    pub(crate) validate: Validate,
    pub(crate) start: StartTask,
}

/// The handlers the workflow code registered, and the tasks it started
/// that the machine has not adopted yet.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) updates: HashMap<String, UpdateHandler>,
    pub(crate) signals: HashMap<String, StartTask>,
    /// Tasks started from inside the code (a signal handler registered
    /// while signals of its name were buffered), for the machine to adopt.
    pub(crate) spawned: Vec<Task>,
}

/// What a handler task is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TaskKind {
    /// The handler of the accepted update of this ID.
    Update(String),
    /// A signal handler.
    Signal,
}

/// A handler running beside the workflow's main code.
pub(crate) struct Task {
    pub(crate) kind: TaskKind,
    pub(crate) future: TaskFuture,
}

/// What polling the handler tasks came to.
pub(crate) enum Polled {
    /// Nothing that ends the run.
    Fine,
    /// A signal handler returned an error: it fails the workflow (as an
    /// exception in a signal handler does in Temporal's SDKs).
    WorkflowFailed(WorkflowError),
    /// A handler panicked.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Polls each task once, in the order they began (so, live and on replay,
/// each handler runs before the main code continues); records the outcome
/// of each update handler that returns.
pub(crate) fn poll_tasks(
    tasks: &mut Vec<Task>,
    core: &Arc<Mutex<RunCore>>,
    cx: &mut Context<'_>,
) -> Polled {
    let mut i = 0;
    while i < tasks.len() {
        let polled = catch_unwind(AssertUnwindSafe(|| tasks[i].future.as_mut().poll(cx)));
        let result = match polled {
            Err(panic) => return Polled::Panicked(panic),
            Ok(Poll::Pending) => {
                i += 1;
                continue;
            }
            Ok(Poll::Ready(result)) => result,
        };
        let task = tasks.remove(i);
        match (task.kind, result) {
            (TaskKind::Update(update_id), result) => {
                let outcome = match result {
                    Ok(result) => UpdateOutcome::Success { result },
                    Err(e) => UpdateOutcome::Failure {
                        failure: e.into_failure(),
                    },
                };
                lock(core).command(EventKind::WorkflowUpdateCompleted { update_id, outcome });
            }
            (TaskKind::Signal, Ok(_)) => {}
            (TaskKind::Signal, Err(e)) => return Polled::WorkflowFailed(e),
        }
    }
    Polled::Fine
}

/// A task that fails at once: an update whose stored input no longer
/// decodes (live, the actor checks it before accepting).
pub(crate) fn failing(message: String) -> TaskFuture {
    Box::pin(async move { Err(WorkflowError::new(message)) })
}

/// Starts an update handler's task for an accepted update.
pub(crate) fn start_update(
    handler: &UpdateHandler,
    ctx: WorkflowContext,
    update_id: &str,
    input: &Payload,
) -> Task {
    let future = match (handler.start)(ctx, input) {
        Ok(future) => future,
        Err(e) => failing(format!("the update's input does not decode: {e}")),
    };
    Task {
        kind: TaskKind::Update(update_id.to_string()),
        future,
    }
}

/// Runs a validator, turning its panic into a rejection (the run goes on).
pub(crate) fn validate(handler: &UpdateHandler, input: &Payload) -> Result<(), Refusal> {
    catch_unwind(AssertUnwindSafe(|| (handler.validate)(input))).unwrap_or_else(|panic| {
        Err(Refusal::Rejected(format!(
            "the validator panicked: {}",
            crate::panic::message(&*panic)
        )))
    })
}

impl WorkflowContext {
    /// Handles update `update` with `handler`, after `validator` accepted it.
    ///
    /// The validator runs in-process when the update arrives, before
    /// anything is written: an `Err(message)` rejects the update (the
    /// caller gets [`UpdateError::Rejected`](crate::UpdateError::Rejected)
    /// with the message, and history holds nothing of it). It reads the
    /// workflow's state (share it through an `Arc<Mutex<_>>`) and must not
    /// block; it is not run on replay. An accepted update is durable
    /// (`WorkflowUpdateAccepted`) before the handler runs; the handler is
    /// workflow code like the main function (it may call activities and
    /// timers, deterministically), runs beside it, before the main code
    /// continues, and its result (or its error, which fails the update
    /// only) is recorded and returned to the caller. Register handlers
    /// before the workflow first waits; a later call for the same name
    /// replaces the handler.
    ///
    /// ```no_run
    /// # use std::sync::{Arc, Mutex};
    /// # use steadfast::{UpdateDef, WorkflowContext, WorkflowError};
    /// const CHANGE_PLAN: UpdateDef<String, u32> = UpdateDef::new("change_plan");
    /// # fn body(ctx: WorkflowContext) {
    /// let plan = Arc::new(Mutex::new("basic".to_string()));
    /// let current = plan.clone();
    /// ctx.handle_update(
    ///     CHANGE_PLAN,
    ///     |plan: &String| match plan.as_str() {
    ///         "basic" | "gold" => Ok(()),
    ///         other => Err(format!("unknown plan {other:?}")),
    ///     },
    ///     move |_ctx, new_plan: String| {
    ///         let current = current.clone();
    ///         async move {
    ///             let price = if new_plan == "gold" { 30 } else { 10 };
    ///             *current.lock().unwrap() = new_plan;
    ///             Ok(price)
    ///         }
    ///     },
    /// );
    /// # }
    /// ```
    pub fn handle_update<I, O, V, F, Fut>(&self, update: UpdateDef<I, O>, validator: V, handler: F)
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        V: Fn(&I) -> Result<(), String> + Send + Sync + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        let validate: Validate = Arc::new(move |input: &Payload| {
            let input: I = input
                .decode()
                .map_err(|e| Refusal::BadInput(e.to_string()))?;
            validator(&input).map_err(Refusal::Rejected)
        });
        let start: StartTask = Arc::new(move |ctx, input: &Payload| {
            let input: I = input.decode()?;
            let future = handler(ctx, input);
            Ok(Box::pin(async move {
                let output = future.await?;
                Payload::encode(&output).map_err(WorkflowError::from)
            }) as Pin<Box<_>>)
        });
        let handler = UpdateHandler { validate, start };
        lock(self.core())
            .handlers
            .updates
            .insert(update.name().to_string(), handler);
    }
}
