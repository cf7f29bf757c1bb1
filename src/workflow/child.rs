//! Child workflows, as workflow code sees them: the options of a start, the
//! future of the start, the typed handle it gives, the future of the
//! child's result, and the error of either.
//!
//! A child's start is one command (`StartChildWorkflowInitiated`) whose
//! outcome the engine records in the same commit (`ChildWorkflowStarted` or
//! `StartChildWorkflowFailed`); the child's close comes later as a second
//! outcome of the same command (`ChildWorkflowCompleted` or
//! `ChildWorkflowClosed`). Both are fed back like an activity's result, so
//! they replay alike.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::FusedFuture;
use serde::de::DeserializeOwned;

use super::external::ExternalWorkflowFuture;
use super::replay::{Resolution, RunCore, lock};
use crate::WorkflowIdReusePolicy;
use crate::history::{
    ChildIdReuse, ChildOptionsRecord, EventKind, Failure, MAX_WORKFLOW_ID_LEN, ParentClosePolicy,
    RunId, SearchAttributes, StartChildFailedCause, WorkflowStatus,
};

/// The key a child's close is awaited under: its start's seq with the top
/// bit set (seqs never reach it), since the start and the close are two
/// outcomes of one command and each is taken by its own future.
const RESULT_BIT: u32 = 1 << 31;

pub(crate) fn result_key(seq: u32) -> u32 {
    seq | RESULT_BIT
}

pub(crate) fn seq_of(key: u32) -> u32 {
    key & !RESULT_BIT
}

/// The outcome an event brings to a child's start or result, with the key
/// it resolves.
pub(crate) fn resolution(kind: &EventKind) -> Option<(u32, Resolution)> {
    Some(match kind {
        EventKind::ChildWorkflowStarted { seq, run_id } => {
            (*seq, Resolution::ChildStarted(*run_id))
        }
        EventKind::StartChildWorkflowFailed { seq, cause } => {
            (*seq, Resolution::ChildStartFailed(cause.clone()))
        }
        EventKind::ChildWorkflowCompleted { seq, result } => {
            (result_key(*seq), Resolution::ChildCompleted(result.clone()))
        }
        EventKind::ChildWorkflowClosed {
            seq,
            status,
            failure,
        } => (
            result_key(*seq),
            Resolution::ChildClosed {
                status: *status,
                failure: failure.clone(),
            },
        ),
        _ => return None,
    })
}

/// What [`ChildWorkflowHandle::cancel`] does and when the child's
/// [`result`](ChildWorkflowHandle::result) then resolves, as Temporal's
/// `ChildWorkflowCancellationType` (temporalio/features
/// `child_workflow/cancel_*`). Set with
/// [`ChildWorkflowOptions::with_cancellation_type`].
///
/// The parent's own cancellation does the same to each child still open
/// (Temporal's SDKs cancel a child with the scope that started it), in
/// the activation that sees the request, in start order: an abandoned
/// child is not told and its `result()` resolves as
/// [`ChildWorkflowError::ParentCancelled`] at once, a try-cancelled one is
/// told and resolves so at once, a wait-cancellation-requested one once
/// its request is recorded, and a wait-cancellation-completed one (the
/// default) with its own close. Children still open when the parent then
/// closes get their [`ParentClosePolicy`] in the closing commit, whatever
/// their cancellation type.
///
/// Except for [`Abandon`](Self::Abandon) the request is a command recorded
/// in the parent's history (`ChildWorkflowCancelRequested`), delivered to the
/// child's current run in the same commit (its `WorkflowCancelRequested`),
/// with the delivery's outcome recorded in the parent
/// (`ExternalWorkflowCancelRequested`, or `RequestCancelExternalWorkflowFailed`
/// when the child had closed meanwhile), so replay cancels at the same point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildWorkflowCancellationType {
    /// Nothing is recorded and the child is not told: `result()` resolves
    /// as [`ChildWorkflowError::CancelRequested`] at once, and the child
    /// runs on (its close is still recorded, not seen by the code).
    Abandon,
    /// The request is recorded and delivered; `result()` resolves as
    /// [`ChildWorkflowError::CancelRequested`] at once, and whatever the
    /// child does afterwards is recorded and not seen by the code.
    TryCancel,
    /// The request is recorded and delivered; `result()` resolves as
    /// [`ChildWorkflowError::CancelRequested`] once the parent's history
    /// records that the child has it (the same commit, so at the next
    /// activation); if the child had closed already, with its close.
    WaitCancellationRequested,
    /// The request is recorded and delivered; `result()` resolves with the
    /// child's own close: its value if it completed anyway, else its
    /// failure (usually [`ChildWorkflowError::Cancelled`]). Temporal's
    /// default for children.
    #[default]
    WaitCancellationCompleted,
}

/// How a child workflow is started, as Temporal's `ChildWorkflowOptions`
/// (trimmed to what steadfast has). Defaults: the parent's task queue, no
/// timeouts, [`ParentClosePolicy::Terminate`],
/// [`WorkflowIdReusePolicy::AllowDuplicate`], no search attributes or memo,
/// [`ChildWorkflowCancellationType::WaitCancellationCompleted`].
///
/// ```
/// use std::time::Duration;
/// use steadfast::{ChildWorkflowOptions, ParentClosePolicy};
/// let options = ChildWorkflowOptions::new()
///     .with_parent_close_policy(ParentClosePolicy::Abandon)
///     .with_run_timeout(Duration::from_secs(60));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ChildWorkflowOptions {
    /// The child's task queue; the parent's when `None`.
    pub task_queue: Option<String>,
    /// Time allowed for each run of the child.
    pub run_timeout: Option<Duration>,
    /// Time allowed for the child's whole continue-as-new chain.
    pub execution_timeout: Option<Duration>,
    /// What the parent's close does to the child.
    pub parent_close_policy: ParentClosePolicy,
    /// Whether the child's ID may be used again once its last run closed.
    pub id_reuse_policy: WorkflowIdReusePolicy,
    /// The child's search attributes.
    pub search_attributes: SearchAttributes,
    /// The child's memo (JSON).
    pub memo: Option<crate::history::Payload>,
    /// What [`ChildWorkflowHandle::cancel`], and the parent's own
    /// cancellation, do to the child and wait for. Not recorded with the
    /// start: it is the code's, as in Temporal.
    pub cancellation_type: ChildWorkflowCancellationType,
}

impl ChildWorkflowOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the child on another task queue.
    pub fn with_task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.task_queue = Some(task_queue.into());
        self
    }

    /// Sets the child's run timeout.
    pub fn with_run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = Some(timeout);
        self
    }

    /// Sets the child's execution timeout.
    pub fn with_execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Sets what the parent's close does to the child.
    pub fn with_parent_close_policy(mut self, policy: ParentClosePolicy) -> Self {
        self.parent_close_policy = policy;
        self
    }

    /// Sets whether a closed ID may be started again.
    pub fn with_id_reuse_policy(mut self, policy: WorkflowIdReusePolicy) -> Self {
        self.id_reuse_policy = policy;
        self
    }

    /// Sets what cancelling the child does and waits for.
    pub fn with_cancellation_type(
        mut self,
        cancellation_type: ChildWorkflowCancellationType,
    ) -> Self {
        self.cancellation_type = cancellation_type;
        self
    }

    /// Gives the child search attributes.
    pub fn with_search_attributes(mut self, attributes: SearchAttributes) -> Self {
        self.search_attributes = attributes;
        self
    }

    /// Gives the child a memo. A memo that does not encode as JSON is
    /// ignored.
    pub fn with_memo(mut self, memo: impl serde::Serialize) -> Self {
        if let Ok(payload) = crate::history::Payload::encode(&memo) {
            self.memo = Some(payload);
        }
        self
    }

    /// The record stored with the start, or why the options are refused.
    pub(crate) fn to_record(&self, workflow_id: &str) -> Result<ChildOptionsRecord, String> {
        if workflow_id.is_empty() {
            return Err("the child's workflow ID is empty; pass a non-empty ID".into());
        }
        if workflow_id.len() > MAX_WORKFLOW_ID_LEN {
            return Err(format!(
                "the child's workflow ID is {} bytes, over the limit of {MAX_WORKFLOW_ID_LEN}",
                workflow_id.len()
            ));
        }
        if self.task_queue.as_ref().is_some_and(|q| q.is_empty()) {
            return Err(
                "the child's task queue name is empty; name one, or leave the default".into(),
            );
        }
        for (name, value) in [
            ("run_timeout", self.run_timeout),
            ("execution_timeout", self.execution_timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(format!("the child's {name} must be greater than zero"));
            }
        }
        self.search_attributes
            .check()
            .map_err(|e| format!("the child's search attributes: {e}"))?;
        let id_reuse = match self.id_reuse_policy {
            WorkflowIdReusePolicy::AllowDuplicate => ChildIdReuse::AllowDuplicate,
            WorkflowIdReusePolicy::AllowDuplicateFailedOnly => {
                ChildIdReuse::AllowDuplicateFailedOnly
            }
            WorkflowIdReusePolicy::RejectDuplicate => ChildIdReuse::RejectDuplicate,
        };
        Ok(ChildOptionsRecord {
            run_timeout: self.run_timeout,
            execution_timeout: self.execution_timeout,
            parent_close_policy: self.parent_close_policy,
            id_reuse,
            search_attributes: self.search_attributes.clone(),
            memo: self.memo.clone(),
        })
    }
}

/// Why a child workflow did not give its result: its start failed, or it
/// closed without a value. Converts into [`WorkflowError`](crate::WorkflowError) with `?`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChildWorkflowError {
    /// The child's workflow ID has a running run (Temporal's
    /// `WorkflowAlreadyStartedError`); nothing was started. Deterministic:
    /// the outcome is in the parent's history.
    #[error(
        "child workflow {workflow_id:?} was not started: its ID has a running run ({run_id}); choose another ID"
    )]
    AlreadyStarted {
        /// The child's workflow ID.
        workflow_id: String,
        /// The running run.
        run_id: RunId,
    },
    /// The ID's last run closed and the reuse policy refuses it.
    #[error(
        "child workflow {workflow_id:?} was not started: its last run closed as {last_status:?} and the ID reuse policy refuses it"
    )]
    IdReuseRejected {
        /// The child's workflow ID.
        workflow_id: String,
        /// How the last run closed.
        last_status: WorkflowStatus,
    },
    /// The start was refused before anything was recorded (invalid options
    /// or an input that does not encode), or the ID's latest run could not
    /// be read.
    #[error("child workflow {workflow_id:?} was not started: {message}")]
    NotStarted {
        /// The child's workflow ID.
        workflow_id: String,
        /// What was wrong.
        message: String,
    },
    /// The child failed (it returned an error).
    #[error("child workflow {workflow_id:?} failed: {failure}")]
    Failed {
        /// The child's workflow ID.
        workflow_id: String,
        /// The child's failure.
        failure: Failure,
    },
    /// The child ended cancelled.
    #[error("child workflow {workflow_id:?} was cancelled: {failure}")]
    Cancelled {
        /// The child's workflow ID.
        workflow_id: String,
        /// The error the child returned.
        failure: Failure,
    },
    /// The child was terminated (type `"Terminated"`, the reason as message).
    #[error("child workflow {workflow_id:?} was terminated: {}", failure.message)]
    Terminated {
        /// The child's workflow ID.
        workflow_id: String,
        /// The termination.
        failure: Failure,
    },
    /// The child's run or execution timeout ran out (the timeout's name as
    /// type).
    #[error("child workflow {workflow_id:?} timed out: {failure}")]
    TimedOut {
        /// The child's workflow ID.
        workflow_id: String,
        /// The timeout.
        failure: Failure,
    },
    /// This workflow cancelled the child ([`ChildWorkflowHandle::cancel`])
    /// and, as its [`ChildWorkflowCancellationType`] says, no longer waits
    /// for the child's close.
    #[error("child workflow {workflow_id:?} was asked to cancel; its close is not awaited")]
    CancelRequested {
        /// The child's workflow ID.
        workflow_id: String,
    },
    /// This (the parent) workflow was cancelled and, as the child's
    /// [`ChildWorkflowCancellationType`] says, no longer waits for the
    /// child's close: an abandoned child was not told and runs on; a
    /// try-cancelled or wait-cancellation-requested one was asked to
    /// cancel. What becomes of it when the parent closes is its
    /// [`ParentClosePolicy`].
    #[error("the wait for child workflow {workflow_id:?} ended: the parent workflow was cancelled")]
    ParentCancelled {
        /// The child's workflow ID.
        workflow_id: String,
    },
    /// The child's result does not decode as the definition's output type.
    #[error("child workflow {workflow_id:?} returned a result that does not decode: {message}")]
    ResultDecode {
        /// The child's workflow ID.
        workflow_id: String,
        /// The decode error.
        message: String,
    },
}

impl ChildWorkflowError {
    fn from_start(workflow_id: &str, cause: StartChildFailedCause) -> Self {
        let workflow_id = workflow_id.to_string();
        match cause {
            StartChildFailedCause::AlreadyRunning { run_id } => {
                ChildWorkflowError::AlreadyStarted {
                    workflow_id,
                    run_id,
                }
            }
            StartChildFailedCause::ReuseRejected { last_status } => {
                ChildWorkflowError::IdReuseRejected {
                    workflow_id,
                    last_status,
                }
            }
            other => ChildWorkflowError::NotStarted {
                workflow_id,
                message: other.to_string(),
            },
        }
    }

    fn from_close(workflow_id: &str, status: WorkflowStatus, failure: Failure) -> Self {
        let workflow_id = workflow_id.to_string();
        match status {
            WorkflowStatus::Cancelled => ChildWorkflowError::Cancelled {
                workflow_id,
                failure,
            },
            WorkflowStatus::Terminated => ChildWorkflowError::Terminated {
                workflow_id,
                failure,
            },
            WorkflowStatus::TimedOut => ChildWorkflowError::TimedOut {
                workflow_id,
                failure,
            },
            _ => ChildWorkflowError::Failed {
                workflow_id,
                failure,
            },
        }
    }
}

/// The start of a child workflow; see
/// [`WorkflowContext::start_child_workflow`](crate::WorkflowContext::start_child_workflow).
/// Resolves once the start is durable.
#[must_use = "a child's start is only seen when the future is awaited"]
pub struct StartChildFuture<O> {
    core: Arc<Mutex<RunCore>>,
    seq: u32,
    workflow_id: String,
    cancellation: ChildWorkflowCancellationType,
    refused: Option<ChildWorkflowError>,
    done: bool,
    output: PhantomData<fn() -> O>,
}

impl<O> StartChildFuture<O> {
    pub(crate) fn initiated(
        core: Arc<Mutex<RunCore>>,
        seq: u32,
        workflow_id: String,
        cancellation: ChildWorkflowCancellationType,
    ) -> Self {
        StartChildFuture {
            core,
            seq,
            workflow_id,
            cancellation,
            refused: None,
            done: false,
            output: PhantomData,
        }
    }

    pub(crate) fn refused(core: Arc<Mutex<RunCore>>, workflow_id: String, message: String) -> Self {
        StartChildFuture {
            core,
            seq: 0,
            refused: Some(ChildWorkflowError::NotStarted {
                workflow_id: workflow_id.clone(),
                message,
            }),
            workflow_id,
            cancellation: ChildWorkflowCancellationType::default(),
            done: false,
            output: PhantomData,
        }
    }
}

impl<O> std::fmt::Debug for StartChildFuture<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartChildFuture")
            .field("workflow_id", &self.workflow_id)
            .field("seq", &self.seq)
            .finish()
    }
}

impl<O> Future for StartChildFuture<O> {
    type Output = Result<ChildWorkflowHandle<O>, ChildWorkflowError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        if let Some(refused) = self.refused.take() {
            self.done = true;
            return Poll::Ready(Err(refused));
        }
        let resolution = lock(&self.core).take_resolution(self.seq, cx.waker());
        let output = match resolution {
            Some(Resolution::ChildStarted(run_id)) => Ok(ChildWorkflowHandle {
                core: self.core.clone(),
                seq: self.seq,
                workflow_id: self.workflow_id.clone(),
                run_id,
                cancellation: self.cancellation,
                output: PhantomData,
            }),
            Some(Resolution::ChildStartFailed(cause)) => {
                Err(ChildWorkflowError::from_start(&self.workflow_id, cause))
            }
            Some(Resolution::Cancelled) => Err(ChildWorkflowError::ParentCancelled {
                workflow_id: self.workflow_id.clone(),
            }),
            Some(_) | None => return Poll::Pending,
        };
        self.done = true;
        Poll::Ready(output)
    }
}

impl<O> FusedFuture for StartChildFuture<O> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// A started child workflow, typed by its output: its IDs, its
/// [`result`](Self::result), [`signal`](Self::signal) and
/// [`cancel`](Self::cancel).
pub struct ChildWorkflowHandle<O> {
    core: Arc<Mutex<RunCore>>,
    seq: u32,
    workflow_id: String,
    run_id: RunId,
    cancellation: ChildWorkflowCancellationType,
    output: PhantomData<fn() -> O>,
}

impl<O> Clone for ChildWorkflowHandle<O> {
    fn clone(&self) -> Self {
        ChildWorkflowHandle {
            core: self.core.clone(),
            seq: self.seq,
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id,
            cancellation: self.cancellation,
            output: PhantomData,
        }
    }
}

impl<O> std::fmt::Debug for ChildWorkflowHandle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildWorkflowHandle")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl<O> ChildWorkflowHandle<O> {
    /// The child's workflow ID.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The child's first run (Temporal's `firstExecutionRunId`): if the
    /// child continues as new, its chain goes on in later runs, and its
    /// result is the last run's.
    pub fn first_execution_run_id(&self) -> RunId {
        self.run_id
    }

    /// Waits for the child to close: its result, or a
    /// [`ChildWorkflowError`] carrying the child's failure. May be awaited
    /// from several places; each sees the same outcome.
    pub fn result(&self) -> ChildResultFuture<O> {
        ChildResultFuture {
            core: self.core.clone(),
            key: result_key(self.seq),
            workflow_id: self.workflow_id.clone(),
            done: false,
            output: PhantomData,
        }
    }

    /// Signals the child (Temporal's `ChildWorkflowHandle.signal`), as
    /// [`WorkflowContext::signal_external_workflow`](crate::WorkflowContext::signal_external_workflow)
    /// does, by the same path: this run's record of it
    /// (`SignalChildWorkflowInitiated`), the signal in the child's
    /// history and the outcome are one commit, and the signal carries a
    /// request ID made of this run and event, so it is delivered exactly
    /// once whatever stops the process. It targets the child (the
    /// command names the child's start and first run ID), and reaches it
    /// whichever run of its chain is current (one that continued as new
    /// gets it), only while that run is this run's child, as Temporal's
    /// signal to a child (`child_workflow_only`) does; a
    /// `signal_external_workflow` naming the child's first run reaches that
    /// run only. Resolves to the run that got it, or to
    /// [`ExternalWorkflowError::Closed`](crate::ExternalWorkflowError::Closed)
    /// once the child closed, or
    /// [`ExternalWorkflowError::NotFound`](crate::ExternalWorkflowError::NotFound)
    /// when its workflow ID now belongs to another workflow: a reused ID
    /// never gets a signal meant for this child.
    ///
    /// ```no_run
    /// # use steadfast::{ChildWorkflowOptions, SignalDef, WorkflowContext, WorkflowDef, WorkflowError};
    /// const APPROVE: SignalDef<String> = SignalDef::new("approve");
    /// const ORDER: WorkflowDef<(), String> = WorkflowDef::new("order");
    /// # async fn wf(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    /// let order = ctx
    ///     .start_child_workflow(ORDER, "order-17", (), ChildWorkflowOptions::new())
    ///     .await?;
    /// order.signal(APPROVE, "ok".to_string()).await?;
    /// # Ok(()) }
    /// ```
    pub fn signal<T: serde::Serialize>(
        &self,
        signal: crate::SignalDef<T>,
        input: T,
    ) -> ExternalWorkflowFuture {
        let input = crate::history::Payload::encode(&input).map_err(|e| e.to_string());
        super::external::signal_child(
            &self.core,
            self.seq,
            self.workflow_id.clone(),
            self.run_id,
            signal.name(),
            input,
        )
    }

    /// Asks the child to cancel (as a client's
    /// [`Engine::cancel`](crate::Engine::cancel) would), as the
    /// [`ChildWorkflowCancellationType`] of its options says: by default
    /// (`WaitCancellationCompleted`) the request is recorded as a command
    /// (`ChildWorkflowCancelRequested`) and delivered to the child in the
    /// same commit; the child sees it at its next wait and usually ends
    /// [`Cancelled`](ChildWorkflowError::Cancelled), which its
    /// [`result`](Self::result) then reports. The other types resolve
    /// `result()` as [`ChildWorkflowError::CancelRequested`] sooner. Does
    /// nothing once the child's close is recorded, or when asked twice
    /// (also after the parent's own cancellation asked it, see
    /// [`ChildWorkflowCancellationType`]).
    pub fn cancel(&self) {
        lock(&self.core).cancel_child(self.seq, self.cancellation, false);
    }
}

/// The close of a child workflow; see [`ChildWorkflowHandle::result`].
#[must_use = "a child's result is only seen when the future is awaited"]
pub struct ChildResultFuture<O> {
    core: Arc<Mutex<RunCore>>,
    key: u32,
    workflow_id: String,
    done: bool,
    output: PhantomData<fn() -> O>,
}

impl<O> std::fmt::Debug for ChildResultFuture<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildResultFuture")
            .field("workflow_id", &self.workflow_id)
            .finish()
    }
}

impl<O: DeserializeOwned> Future for ChildResultFuture<O> {
    type Output = Result<O, ChildWorkflowError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Pending;
        }
        let resolution = lock(&self.core).child_result(self.key, cx.waker());
        let workflow_id = &self.workflow_id;
        let output = match resolution {
            Some(Resolution::ChildCompleted(payload)) => {
                payload
                    .decode()
                    .map_err(|e| ChildWorkflowError::ResultDecode {
                        workflow_id: workflow_id.clone(),
                        message: e.to_string(),
                    })
            }
            Some(Resolution::ChildClosed { status, failure }) => {
                Err(ChildWorkflowError::from_close(workflow_id, status, failure))
            }
            Some(Resolution::ChildCancelRequested) => Err(ChildWorkflowError::CancelRequested {
                workflow_id: workflow_id.clone(),
            }),
            Some(Resolution::Cancelled) => Err(ChildWorkflowError::ParentCancelled {
                workflow_id: workflow_id.clone(),
            }),
            Some(_) | None => return Poll::Pending,
        };
        self.done = true;
        Poll::Ready(output)
    }
}

impl<O: DeserializeOwned> FusedFuture for ChildResultFuture<O> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// Records a child's start as a command; see
/// [`WorkflowContext::start_child_workflow`](crate::WorkflowContext::start_child_workflow).
pub(crate) fn start<I: serde::Serialize, O>(
    core: &Arc<Mutex<RunCore>>,
    workflow_type: &str,
    workflow_id: String,
    input: &I,
    options: &ChildWorkflowOptions,
) -> StartChildFuture<O> {
    let record = match options.to_record(&workflow_id) {
        Ok(record) => record,
        Err(message) => return StartChildFuture::refused(core.clone(), workflow_id, message),
    };
    let input = match crate::history::Payload::encode(input) {
        Ok(input) => input,
        Err(e) => return StartChildFuture::refused(core.clone(), workflow_id, e.to_string()),
    };
    let mut guard = lock(core);
    let task_queue = options
        .task_queue
        .clone()
        .unwrap_or_else(|| guard.task_queue.clone());
    let seq = guard.next_seq();
    guard.track(seq, super::replay::Awaited::ChildStart);
    guard.set_child_cancellation_type(seq, options.cancellation_type);
    guard.command(EventKind::StartChildWorkflowInitiated {
        seq,
        workflow_id: workflow_id.clone(),
        workflow_type: workflow_type.to_string(),
        task_queue,
        input,
        options: record,
    });
    drop(guard);
    StartChildFuture::initiated(core.clone(), seq, workflow_id, options.cancellation_type)
}
