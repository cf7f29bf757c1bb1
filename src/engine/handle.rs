//! `WorkflowHandle`: a typed handle to one run, and its description.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;

use crate::error::{ClientError, ResultError};
use crate::history::{
    EventKind, MutableState, ParentInfo, Payload, PendingActivityInfo, PendingChildInfo,
    PendingTimerInfo, RunId, SearchAttributes, UnreadSignals, WorkflowStatus,
};
use crate::store::{RunRecord, StoreError};
use crate::worker::{RunMsg, RunSnapshot, RunState, Shared};
use crate::workflow::ParkReason;

/// The first pause of [`WorkflowHandle::result`] after a failed read; it
/// doubles up to [`RESULT_RETRY_MAX`].
const RESULT_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(50);
/// The longest pause between reads while storage fails.
const RESULT_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// First and longest pause between reads of a run that another process
/// sharing the database advances, while a result waits for it, when the
/// store gives no word of its close.
const REMOTE_POLL_FIRST: std::time::Duration = std::time::Duration::from_millis(20);
const REMOTE_POLL_MAX: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest wait for the store's word of a remote run's close before
/// reading it again anyway (the store has a backstop of its own).
const REMOTE_HINT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// What [`WorkflowHandle::describe`] and [`Engine::describe`](crate::Engine::describe) report.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkflowDescription {
    /// The workflow ID.
    pub workflow_id: String,
    /// The run described.
    pub run_id: RunId,
    /// The workflow's registered name.
    pub workflow_type: String,
    /// The task queue it runs on.
    pub task_queue: String,
    /// Whether a worker of this engine serves that task queue. When not,
    /// a running run waits: its code runs once the engine is opened with
    /// a worker for the queue (a start on such a queue is accepted, and
    /// logged as a warning once per queue).
    pub task_queue_served: bool,
    /// Its status.
    pub status: WorkflowStatus,
    /// Why a running run cannot make progress (nondeterminism, a panic, an
    /// unregistered type), if it cannot. Cleared when fixed code reopens it.
    /// On a PostgreSQL schema several processes share, only the process
    /// that owns the run's shard gives a verdict found by replaying (its
    /// code decides); described from another process, a run not parked
    /// in memory there shows `None`, its pending work read from its history.
    pub parked: Option<ParkReason>,
    /// When the run started.
    pub start_time: SystemTime,
    /// When it closed.
    pub close_time: Option<SystemTime>,
    /// Number of events in its history.
    pub history_length: u64,
    /// Activities scheduled and not resolved (attempt, last failure, last
    /// heartbeat), for a running run.
    pub pending_activities: Vec<PendingActivityInfo>,
    /// Durable timers started and not fired, for a running run.
    pub pending_timers: Vec<PendingTimerInfo>,
    /// Its search attributes as of its last durable step: those given at
    /// the start, with the workflow's upserts applied.
    pub search_attributes: SearchAttributes,
    /// The memo given at the start (JSON; [`Payload::decode`] reads it).
    pub memo: Option<Payload>,
    /// For a closed run: the signals delivered to it that its code never
    /// read (the history's `SignalsUnread` event). Empty for a run that
    /// is still running, and for one that read every signal.
    pub unread_signals: Vec<UnreadSignals>,
    /// The run this one continues, when a continue-as-new started it.
    pub previous_run_id: Option<RunId>,
    /// The run that continues this one, once it continued as new (status
    /// [`WorkflowStatus::ContinuedAsNew`]).
    pub next_run_id: Option<RunId>,
    /// Child workflows started and not closed, for a running run.
    pub pending_children: Vec<PendingChildInfo>,
    /// Updates accepted and not completed (their handlers are running),
    /// in acceptance order, for a running run; read from the history, so
    /// also without a live actor.
    pub pending_updates: Vec<crate::history::PendingUpdateInfo>,
    /// The parent workflow, when this run is (part of) a child workflow;
    /// read from the run's history, so also without a live actor.
    pub parent: Option<ParentInfo>,
    /// Why a running run is paused, if it is: an operator's pause
    /// ([`Engine::pause_workflow`](crate::Engine::pause_workflow)), or a
    /// park that waits for a fix (nondeterminism, a panic, missing code),
    /// which is a pause too: reset or fix it.
    pub paused: Option<PauseReason>,
    /// The run this one was reset from, when a reset started it.
    pub reset_from: Option<RunId>,
    /// The run that replaced this one, once it was reset. For a run reset
    /// after it closed (nothing more is recorded in its history), shown
    /// while the run reset from it is the ID's latest.
    pub reset_to: Option<RunId>,
}

/// Why a run is paused, as [`WorkflowDescription::paused`] and
/// [`WorkflowExecutionInfo::paused`](crate::WorkflowExecutionInfo::paused)
/// show it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PauseReason {
    /// An operator paused it, with this reason; unpause it to go on.
    Requested(String),
    /// It is parked until fixed code (or a reset) lets it go on.
    Parked(ParkReason),
}

impl PauseReason {
    /// The pause in one line, as the command-line tool and the web UI show it.
    pub fn message(&self) -> String {
        match self {
            PauseReason::Requested(reason) => format!("paused: {reason}"),
            PauseReason::Parked(reason) => format!("parked: {reason}"),
        }
    }

    /// The pause of a running run: an operator's first, else a park that
    /// needs a fix.
    pub(crate) fn of(requested: Option<&String>, parked: Option<&ParkReason>) -> Option<Self> {
        match (requested, parked) {
            (Some(reason), _) => Some(PauseReason::Requested(reason.clone())),
            (None, Some(reason)) if needs_fix(reason) => Some(PauseReason::Parked(reason.clone())),
            _ => None,
        }
    }
}

/// What [`WorkflowHandle::result_or_parked`] saw first.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResultOrParked<O> {
    /// The run completed with this result.
    Completed(O),
    /// The run is parked and waits for a fix: code that matches its
    /// history, or a worker that registers its type, and a new open.
    Parked(ParkReason),
}

/// True for a park that lasts until someone fixes its cause; a full disk
/// or a storage error heals by itself.
/// How waiting on one run of a chain ended.
enum Ended<O> {
    Done(ResultOrParked<O>),
    /// The run continued as new, as this run.
    Continued(RunId),
}

pub(crate) fn needs_fix(reason: &ParkReason) -> bool {
    !matches!(reason, ParkReason::DiskFull(_) | ParkReason::Storage(_))
}

/// A handle to one run of a workflow, typed by its output.
pub struct WorkflowHandle<O> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) workflow_id: String,
    pub(crate) run_id: RunId,
    pub(crate) output: PhantomData<fn() -> O>,
}

impl<O> fmt::Debug for WorkflowHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl<O> Clone for WorkflowHandle<O> {
    fn clone(&self) -> Self {
        WorkflowHandle {
            shared: self.shared.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id,
            output: PhantomData,
        }
    }
}

impl<O: DeserializeOwned> WorkflowHandle<O> {
    /// The workflow ID.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run this handle follows.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Waits for the run to close and returns its result. A parked run is
    /// still running: this keeps waiting (see
    /// [`result_or_parked`](Self::result_or_parked) to stop waiting then, and
    /// [`describe`](Self::describe)). A transient storage failure (an I/O
    /// error, a full disk, a file being opened again after one) is not an
    /// answer either: the read is retried, with a growing pause (the
    /// store's own backoff, at least 50 ms, at most 5 s), until the file can
    /// be read.
    ///
    /// # Errors
    /// Final answers only: [`ResultError::Failed`], `Cancelled`,
    /// `Terminated` or `TimedOut` with the run's outcome; a decode error
    /// when the result does not fit `O`; [`ClientError::NotFound`] when the
    /// run is not in the file; [`ClientError::Corrupt`] when its records are
    /// damaged; [`ClientError::ShutDown`] once the engine shuts down.
    pub async fn result(&self) -> Result<O, ResultError> {
        match self.wait(false).await? {
            ResultOrParked::Completed(output) => Ok(output),
            // Not asked to stop there; kept as an error, never a panic.
            ResultOrParked::Parked(reason) => Err(ClientError::Parked {
                workflow_id: self.workflow_id.clone(),
                reason: reason.to_string(),
            }
            .into()),
        }
    }

    /// Waits for the run to close, as [`result`](Self::result) does, or to
    /// park on a cause that needs a fix (nondeterminism, a panic of the
    /// workflow code, a type no worker registers): then it returns
    /// [`ResultOrParked::Parked`] with the reason at once, where `result`
    /// would wait until fixed code reopens the file. A run parked by a full
    /// disk or a storage error resumes by itself, so this keeps waiting on
    /// it.
    ///
    /// ```no_run
    /// # async fn example(handle: steadfast::WorkflowHandle<String>) -> Result<(), steadfast::ResultError> {
    /// use steadfast::ResultOrParked;
    /// match handle.result_or_parked().await? {
    ///     ResultOrParked::Completed(greeting) => println!("{greeting}"),
    ///     ResultOrParked::Parked(reason) => eprintln!("stuck: {reason}"),
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`result`](Self::result).
    pub async fn result_or_parked(&self) -> Result<ResultOrParked<O>, ResultError> {
        self.wait(true).await
    }

    /// Waits for the close, or with `on_park` for a park that needs a fix.
    /// A run that continued as new is followed to the run that continues
    /// its chain, and so on to the chain's last run.
    async fn wait(&self, on_park: bool) -> Result<ResultOrParked<O>, ResultError> {
        let mut run_id = self.run_id;
        loop {
            match self.wait_run(run_id, on_park).await? {
                Ended::Done(outcome) => return Ok(outcome),
                Ended::Continued(next) => run_id = next,
            }
        }
    }

    /// Waits for one run of the chain.
    async fn wait_run(&self, run_id: RunId, on_park: bool) -> Result<Ended<O>, ResultError> {
        let stop = |state: &RunState| match state {
            RunState::Parked(reason) if on_park && needs_fix(reason) => Some(reason.clone()),
            _ => None,
        };
        // On a test engine, waiting for a result lets virtual time skip.
        let _waiting = self.shared.clock.client_waiting();
        // How long to wait before reading again a run that another
        // process advances (it is not in memory here).
        let mut remote_pause = REMOTE_POLL_FIRST;
        loop {
            if let Some(mut state) = self.shared.watch(run_id) {
                loop {
                    let (closed, parked) = {
                        let now = state.borrow_and_update();
                        (matches!(&*now, RunState::Closed(_)), stop(&now))
                    };
                    if closed {
                        return self.closed_result(run_id).await;
                    }
                    if let Some(reason) = parked {
                        return Ok(Ended::Done(ResultOrParked::Parked(reason)));
                    }
                    tokio::select! {
                        changed = state.changed() => if changed.is_err() {
                            // The run left memory: it closed, or the actor
                            // was replaced; look again.
                            break;
                        },
                        _ = self.shared.shutdown.cancelled() => {
                            return Err(ClientError::ShutDown.into());
                        }
                    }
                }
            }
            if self.shared.shutdown.is_cancelled() {
                return Err(ClientError::ShutDown.into());
            }
            // Registered before the read, so that a close committed after
            // it is told, not missed.
            let closed_hint = if self.shared.store.owns(&self.workflow_id) {
                None
            } else {
                self.shared.store.close_hint(run_id)
            };
            let record = self
                .read_waiting_out_failures(|| self.shared.store.run(run_id, &self.workflow_id))
                .await?;
            match record {
                Some(record) if record.status.is_closed() => {
                    return self.closed_result(run_id).await;
                }
                Some(_) if !self.shared.store.owns(&self.workflow_id) => {
                    // Advanced by another process sharing the database:
                    // read again once it may have closed, or in a while.
                    let pause = match closed_hint {
                        Some(hint) => {
                            let told = tokio::select! {
                                _ = hint => true,
                                _ = tokio::time::sleep(REMOTE_HINT_MAX) => false,
                                _ = self.shared.shutdown.cancelled() => {
                                    return Err(ClientError::ShutDown.into());
                                }
                            };
                            if told {
                                // Word of its close: the last event says
                                // (one read, not the record's and then it).
                                let last = self
                                    .read_waiting_out_failures(|| {
                                        self.shared.store.last_event(run_id, &self.workflow_id)
                                    })
                                    .await?;
                                if last.as_ref().is_some_and(|e| e.kind.is_close()) {
                                    return self.outcome_of(run_id, last);
                                }
                            }
                            continue;
                        }
                        None => remote_pause,
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = self.shared.shutdown.cancelled() => {
                            return Err(ClientError::ShutDown.into());
                        }
                    }
                    remote_pause = remote_pause.saturating_mul(2).min(REMOTE_POLL_MAX);
                }
                Some(_) => {
                    // Running but not in memory: load it, to wait on it.
                    if self.shared.deliver(run_id, RunMsg::Wake).is_err() {
                        return Err(ClientError::ShutDown.into());
                    }
                }
                None => {
                    return Err(ClientError::NotFound {
                        workflow_id: self.workflow_id.clone(),
                    }
                    .into());
                }
            }
        }
    }

    /// Runs a store read for [`result`](Self::result), retrying it while
    /// storage fails transiently; other errors are final.
    async fn read_waiting_out_failures<T, F, Fut>(&self, read: F) -> Result<T, ClientError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut pause = RESULT_RETRY_FIRST;
        loop {
            match read().await {
                Err(err) if err.is_storage() => {
                    tracing::debug!(workflow_id = %self.workflow_id, run_id = %self.run_id, error = %err, "result: storage failed, retrying");
                    let wait = self.shared.store.retry_delay().max(pause);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shared.shutdown.cancelled() => return Err(ClientError::ShutDown),
                    }
                    pause = pause.saturating_mul(2).min(RESULT_RETRY_MAX);
                }
                other => return other.map_err(ClientError::from),
            }
        }
    }

    /// A closed run's outcome, or the run that continues it.
    async fn closed_result(&self, run_id: RunId) -> Result<Ended<O>, ResultError> {
        let last = self
            .read_waiting_out_failures(|| self.shared.store.last_event(run_id, &self.workflow_id))
            .await?;
        self.outcome_of(run_id, last)
    }

    /// A closed run's outcome, or the run that continues it, from its
    /// last event.
    fn outcome_of(
        &self,
        run_id: RunId,
        last: Option<crate::history::Event>,
    ) -> Result<Ended<O>, ResultError> {
        let outcome = match last.map(|e| e.kind) {
            // A reset run goes on as its new run.
            Some(
                EventKind::WorkflowContinuedAsNew { new_run_id, .. }
                | EventKind::WorkflowReset { new_run_id, .. },
            ) => {
                return Ok(Ended::Continued(new_run_id));
            }
            Some(EventKind::WorkflowCompleted { result }) => Ok(result.decode()?),
            Some(EventKind::WorkflowFailed { failure }) => Err(ResultError::Failed {
                workflow_id: self.workflow_id.clone(),
                run_id,
                failure,
            }),
            Some(EventKind::WorkflowCancelled { failure }) => Err(ResultError::Cancelled {
                workflow_id: self.workflow_id.clone(),
                run_id,
                failure,
            }),
            Some(EventKind::WorkflowTerminated { reason }) => Err(ResultError::Terminated {
                workflow_id: self.workflow_id.clone(),
                run_id,
                reason,
            }),
            Some(EventKind::WorkflowTimedOut { timeout }) => Err(ResultError::TimedOut {
                workflow_id: self.workflow_id.clone(),
                run_id,
                timeout,
            }),
            _ => Err(ClientError::Corrupt {
                workflow_id: self.workflow_id.clone(),
                message: format!("run {run_id} is not closed but has no live actor"),
            }
            .into()),
        };
        outcome.map(|o| Ended::Done(ResultOrParked::Completed(o)))
    }

    /// Describes the run: status, times, and why it is parked if it is.
    ///
    /// # Errors
    /// A client error when the file could not be read.
    pub async fn describe(&self) -> Result<WorkflowDescription, ClientError> {
        describe_run(&self.shared, &self.workflow_id, self.run_id).await
    }
}

pub(crate) async fn describe_run(
    shared: &Arc<Shared>,
    workflow_id: &str,
    run_id: RunId,
) -> Result<WorkflowDescription, ClientError> {
    let record = shared
        .store
        .run(run_id, workflow_id)
        .await?
        .ok_or_else(|| ClientError::NotFound {
            workflow_id: workflow_id.to_string(),
        })?;
    let mut unread_signals = Vec::new();
    let (record, snapshot) = if record.status.is_closed() {
        // The close is the last event, and what went unread is recorded
        // just before it, in the same commit: one event, not the history.
        // A damaged one leaves the list empty; `history` reports it.
        if record.history_len >= 2 {
            let before_close = shared
                .store
                .history_page(run_id, workflow_id, record.history_len - 1, 1)
                .await
                .unwrap_or_default();
            unread_signals = MutableState::fold(&before_close).unread_signals;
        }
        (record, None)
    } else {
        let snapshot = match shared.snapshot(run_id).await {
            Some(snapshot) => snapshot,
            // No actor holds the run (evicted, not loaded since the file
            // was opened, or parked without one): its history says what it
            // waits for, through the same fold the actor uses.
            None => from_file(shared, workflow_id, run_id, &record).await?,
        };
        // Read again: the actor answers only after committing what the
        // snapshot shows, so the record is at least as new as it.
        let record = shared
            .store
            .run(run_id, workflow_id)
            .await?
            .unwrap_or(record);
        (record, Some(snapshot))
    };
    // The actor answers a snapshot only after publishing its state, so a
    // run parked on opening shows as parked; a run without an actor (parked
    // on a failed write or an unreadable record) shows its published state.
    let parked = snapshot.as_ref().and_then(|s| s.parked.clone());
    let history_length = match &snapshot {
        Some(snapshot) => snapshot.history_len,
        None => record.history_len,
    };
    let snapshot = snapshot.unwrap_or_default();
    // The chain: a continued run's second event names its predecessor, and
    // a run that continued closed on an event naming its successor (one
    // event each, read through the fold).
    // A child's run names its parent right after (these) first events.
    let second = shared
        .store
        .history_page(run_id, workflow_id, 2, 2)
        .await
        .unwrap_or_default();
    let links = MutableState::fold(&second);
    let (previous_run_id, mut parent) = (links.previous_run_id, links.parent);
    if parent.is_some() {
        // A reset of the parent may have named another parent run since
        // (`ParentWorkflowReset`): the whole history says.
        let history = shared.store.history(run_id, workflow_id).await?;
        parent = MutableState::fold(&history).parent;
    }
    let (next_run_id, reset_to) = if matches!(
        record.status,
        WorkflowStatus::ContinuedAsNew | WorkflowStatus::Terminated
    ) {
        let last = shared.store.last_event(run_id, workflow_id).await?;
        let close = MutableState::fold(last.iter());
        (close.next_run_id, close.reset_to)
    } else {
        (None, None)
    };
    // A closed run reset afterwards records nothing more: the ID's latest
    // run names it if it was reset from it.
    let reset_to = match reset_to {
        None if record.status.is_closed() => match shared.store.current_run(workflow_id).await? {
            Some((latest, latest_record)) if latest_record.reset_from == Some(run_id) => {
                Some(latest)
            }
            _ => None,
        },
        known => known,
    };
    let paused = if record.status.is_closed() {
        None
    } else {
        PauseReason::of(snapshot.paused.as_ref(), parked.as_ref())
    };
    Ok(WorkflowDescription {
        previous_run_id,
        next_run_id,
        paused,
        reset_from: record.reset_from,
        reset_to,
        pending_activities: snapshot.activities,
        pending_timers: snapshot.timers,
        pending_children: snapshot.children,
        pending_updates: snapshot.updates,
        parent,
        workflow_id: record.workflow_id,
        run_id,
        workflow_type: record.workflow_type,
        task_queue_served: shared.has_queue(&record.task_queue),
        task_queue: record.task_queue,
        status: record.status,
        parked,
        start_time: record.start_time,
        close_time: record.close_time,
        history_length,
        search_attributes: record.search_attributes,
        memo: record.memo,
        unread_signals,
    })
}

/// What a running run without an actor waits for, folded from its history
/// (the fold the actor uses), and why it would park if loaded now.
async fn from_file(
    shared: &Shared,
    workflow_id: &str,
    run_id: RunId,
    record: &RunRecord,
) -> Result<RunSnapshot, ClientError> {
    let published = shared
        .watch(run_id)
        .and_then(|state| state.borrow().parked().cloned());
    let history = match shared.store.history(run_id, workflow_id).await {
        Ok(history) => history,
        // A damaged history parks the run; describe says why.
        Err(err @ StoreError::Corrupt { .. }) => {
            return Ok(RunSnapshot {
                parked: published.or(Some(ParkReason::Unrunnable(err.to_string()))),
                history_len: shared.store.history_len(run_id, workflow_id).await?,
                ..RunSnapshot::default()
            });
        }
        Err(err) => return Err(err.into()),
    };
    let state = MutableState::fold(&history);
    // Only the run's owner replays it: another process's code (another
    // build, another set of workers) could find a verdict the owner does
    // not, so a run of another process's shard has none here.
    let owned = shared.store.owns(workflow_id);
    Ok(RunSnapshot {
        activities: state.pending_activities(),
        timers: state.pending_timers(),
        children: state.pending_children(),
        updates: state.pending_updates(),
        parked: published.or_else(|| {
            if owned {
                shared.replay_parked(run_id, record, &history)
            } else {
                None
            }
        }),
        paused: state.paused.clone(),
        history_len: state.last_event_id,
    })
}
