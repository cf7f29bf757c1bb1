//! Resetting a run to an earlier workflow task boundary, as Temporal's
//! `ResetWorkflowExecution` does: the run closes (as `Terminated`, on a
//! `WorkflowReset` event naming its successor) and a new run of the same
//! workflow ID starts, in the same commit, with the history up to the
//! boundary; its code replays that copy and runs the rest under the code
//! registered now. This is how a run parked on nondeterminism is rescued
//! without redeploying the old code. A closed run (a failed one, say) is
//! reset the same way, except that it stays closed as it was: only the new
//! run is written.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::Engine;
use crate::codec;
use crate::error::ClientError;
use crate::history::{
    Event, EventId, MutableState, Reapply, ResetRefusal, RunId, WorkflowStatus, boundaries,
    reset_history,
};
use crate::store::{
    ChildCloseOp, CloseParentOp, EncodedRecord, RemoteReply, RemoteRequest, RemoteResetTo,
    ReuseRule, RunRecord, WAKE_NOW, WriteOp, WriteOutcome,
};
use crate::worker::{ResetRun, RunMsg, Shared};
use crate::workflow::ParkReason;

/// How often a reset is prepared again when the run moved on meanwhile.
const RESET_ATTEMPTS: usize = 5;

/// Where [`Engine::reset_workflow`] resets a run to: a workflow task
/// boundary (the `history::reset` rules; in short, the event that woke the
/// code for a task: the start, an activity's result, a timer firing, a
/// signal, a cancellation request, an accepted update, a child's outcome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetTo {
    /// The boundary with this event ID (Temporal's `--event-id`).
    EventId(EventId),
    /// The run's first workflow task: everything after its start runs again
    /// (`FirstWorkflowTask`).
    FirstWorkflowTask,
    /// The last workflow task that completed well (`LastWorkflowTask`):
    /// for a run parked on nondeterminism, the last boundary before the
    /// event where the code diverged, so the new code re-runs from there;
    /// otherwise the run's last boundary.
    LastWorkflowTask,
}

/// What [`Engine::reset_workflow`] does: where to, why, and whether the
/// signals and updates received after the point are delivered again to the
/// new run (by default both are, as in Temporal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetOptions {
    to: ResetTo,
    reason: String,
    reapply: Reapply,
}

impl ResetOptions {
    /// A reset to `to`, with the reason recorded in both runs' histories.
    pub fn new(to: ResetTo, reason: impl Into<String>) -> Self {
        ResetOptions {
            to,
            reason: reason.into(),
            reapply: Reapply {
                signals: true,
                updates: true,
            },
        }
    }

    /// Drops the signals received after the reset point instead of
    /// delivering them to the new run (Temporal's `--reapply-exclude Signal`).
    pub fn exclude_signals(mut self) -> Self {
        self.reapply.signals = false;
        self
    }

    /// Drops the updates accepted after the reset point instead of
    /// accepting them again in the new run (Temporal's `--reapply-exclude
    /// Update`). By default each is accepted again there, under its update
    /// ID and with its input, after the point in the order received, and
    /// its handler runs again under the code registered now (its validator
    /// does not: it passed already); its outcome in the old run is not
    /// copied.
    pub fn exclude_updates(mut self) -> Self {
        self.reapply.updates = false;
        self
    }
}

impl Engine {
    /// Resets the latest run of a workflow ID to a workflow task boundary
    /// and returns the new run's ID. The old run closes as `Terminated`
    /// (its last event, `WorkflowReset`, names the new run; `describe`
    /// shows the link both ways) and the new run starts in the same
    /// commit, with the old history up to the boundary and a
    /// `WorkflowResetFrom` event after it; signals received and updates
    /// accepted after the point are delivered to it again unless
    /// [`ResetOptions::exclude_signals`] or
    /// [`ResetOptions::exclude_updates`]. Its code replays the copy and
    /// runs everything after under the code registered now: activities
    /// after the point run again (with the new run's idempotency keys),
    /// its run timeout counts from the reset (the execution timeout still
    /// spans the chain), and it starts unpaused. A handle's
    /// [`result`](crate::WorkflowHandle::result) follows the reset to the
    /// new run.
    ///
    /// Child workflows: those started before the point and still open go
    /// on as the new run's children, of an open run and of a closed one
    /// (whose close abandoned them, or which they outlived) alike: the
    /// reset's commit writes `ParentWorkflowReset` into each, naming the
    /// new run, so their closes are reported there, and its parent-close
    /// policies and cancellation reach them, also once such a child is
    /// reset itself: its new run carries that link (Temporal keeps them
    /// too, `history.allowResetWithPendingChildren`, and forwards their
    /// closes along the closed run's reset link). Those started after the
    /// point get their parent-close policy as an open old run closes (the
    /// new run's code starts them again); those that closed after the
    /// point are recorded in the new run when it loads.
    ///
    /// The latest run may also have closed (completed, failed, timed out,
    /// terminated, cancelled): as in Temporal, the usual case is resetting
    /// a failed run. That run stays closed as it was (nothing is added to
    /// its history; a handle on it still answers its outcome) and the new
    /// run starts from the point, provided no other run of the ID is open;
    /// the ID's reuse policy does not apply. `describe` links both ways
    /// (`reset_to` on the closed run while the run reset from it is the
    /// ID's latest).
    ///
    /// ```no_run
    /// # use steadfast::{ClientError, Engine, ResetOptions, ResetTo};
    /// # async fn rescue(engine: &Engine) -> Result<(), ClientError> {
    /// // The run is parked on nondeterminism after a deploy: re-run it
    /// // from its last good workflow task under the new code.
    /// let options = ResetOptions::new(ResetTo::LastWorkflowTask, "bad deploy");
    /// let new_run = engine.reset_workflow("order-7", options).await?;
    /// # let _ = new_run; Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown ID;
    /// [`ClientError::NotAResetPoint`] for an event that is not a boundary
    /// (the error lists them); [`ClientError::ResetRefused`] for a run that
    /// kept moving on while being reset, or a closed run whose ID has
    /// another run open meanwhile; [`ClientError::Parked`] for a run no actor can
    /// load (terminate it instead); storage errors. On a PostgreSQL schema
    /// several processes share, a run another process owns is reset by
    /// that process (with its code); its refusals reach the caller as
    /// [`ClientError::Storage`] carrying the owner's message.
    pub async fn reset_workflow(
        &self,
        workflow_id: &str,
        options: ResetOptions,
    ) -> Result<RunId, ClientError> {
        self.writable("reset")?;
        reset_run(&self.shared, workflow_id, options).await
    }
}

/// Resets the latest run of `workflow_id` (see [`Engine::reset_workflow`]):
/// here when this process owns the run's shard, else by its owner, which
/// replays it with its own code and writes it (the call is forwarded).
pub(crate) async fn reset_run(
    shared: &Arc<Shared>,
    workflow_id: &str,
    options: ResetOptions,
) -> Result<RunId, ClientError> {
    for _ in 0..RESET_ATTEMPTS {
        let (run_id, record) = current_run(shared, workflow_id).await?;
        if !shared.store.owns(workflow_id) {
            return forward_reset(shared, workflow_id, run_id, &options).await;
        }
        let closed = record.status.is_closed();
        let history = shared.store.history(run_id, workflow_id).await?;
        let point = reset_point(shared, workflow_id, run_id, &record, &history, options.to)?;
        let now = shared.clock.now();
        let events = reset_history(
            run_id,
            &history,
            point,
            options.reapply,
            &options.reason,
            now,
        )
        .map_err(|refusal| refused(workflow_id, refusal))?;
        let next_run_id = RunId::new_time_ordered();
        let next_record = RunRecord {
            status: WorkflowStatus::Running,
            start_time: now,
            close_time: None,
            history_len: events.len() as u64,
            paused: None,
            reset_from: Some(run_id),
            ..record
        };
        if closed {
            return reset_closed(
                shared,
                workflow_id,
                run_id,
                next_run_id,
                next_record,
                events,
            )
            .await;
        }
        let (ack, answer) = oneshot::channel();
        let msg = RunMsg::Reset(Box::new(ResetRun {
            expect_last: history.last().map_or(0, |e| e.event_id),
            reset_event_id: point,
            reason: options.reason.clone(),
            next_run_id,
            next_record,
            next_events: events,
            ack,
        }));
        let answered = match shared.deliver(run_id, msg) {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        let answered = match answered {
            Some(answered) => answered,
            None => return Err(super::not_live(shared, workflow_id, run_id).await),
        };
        match answered {
            Ok(()) => return Ok(next_run_id),
            // Moved on (or the outcome is unknown): the file says.
            Err(ClientError::Storage(_)) => {
                let (latest, _) = current_run(shared, workflow_id).await?;
                if latest == next_run_id {
                    return Ok(next_run_id);
                }
            }
            Err(other) => return Err(other),
        }
    }
    Err(ClientError::ResetRefused {
        workflow_id: workflow_id.to_string(),
        message: "the run kept moving on while it was being reset; pause it \
                  (pause_workflow) and reset it again"
            .to_string(),
    })
}

async fn current_run(
    shared: &Shared,
    workflow_id: &str,
) -> Result<(RunId, RunRecord), ClientError> {
    shared
        .store
        .current_run(workflow_id)
        .await?
        .ok_or_else(|| ClientError::NotFound {
            workflow_id: workflow_id.to_string(),
        })
}

/// Has the owner of the run's shard (another process) reset it, and
/// answers the new run's ID.
async fn forward_reset(
    shared: &Shared,
    workflow_id: &str,
    run_id: RunId,
    options: &ResetOptions,
) -> Result<RunId, ClientError> {
    let request = RemoteRequest::Reset {
        to: match options.to {
            ResetTo::EventId(id) => RemoteResetTo::EventId(id),
            ResetTo::FirstWorkflowTask => RemoteResetTo::FirstWorkflowTask,
            ResetTo::LastWorkflowTask => RemoteResetTo::LastWorkflowTask,
        },
        reason: options.reason.clone(),
        reapply_signals: options.reapply.signals,
        reapply_updates: options.reapply.updates,
    };
    match shared.store.forward(workflow_id, run_id, request).await? {
        RemoteReply::ResetTo(next) => Ok(next),
        RemoteReply::Failed(message) => Err(ClientError::Storage(format!(
            "the run's owner (another process) answered: {message}"
        ))),
        RemoteReply::Gone => Err(ClientError::Storage(format!(
            "workflow {workflow_id:?} moved to another process while the reset was on its way; \
             send it again"
        ))),
        other => Err(ClientError::Storage(format!(
            "the run's owner (another process) answered a reset with {other:?}"
        ))),
    }
}

/// The options of a reset another process forwarded.
pub(crate) fn remote_options(
    to: RemoteResetTo,
    reason: String,
    reapply_signals: bool,
    reapply_updates: bool,
) -> ResetOptions {
    ResetOptions {
        to: match to {
            RemoteResetTo::EventId(id) => ResetTo::EventId(id),
            RemoteResetTo::FirstWorkflowTask => ResetTo::FirstWorkflowTask,
            RemoteResetTo::LastWorkflowTask => ResetTo::LastWorkflowTask,
        },
        reason,
        reapply: Reapply {
            signals: reapply_signals,
            updates: reapply_updates,
        },
    }
}

/// Starts the new run of a reset of a closed run: the closed run stays
/// as it closed, and the new run is written as a start that any other
/// open run of the ID refuses (the ID's reuse policy does not apply, as
/// in Temporal). Its actor loads it from the file, as a continued run's.
/// The children open at the point that are still open (abandoned by the
/// old run's close, or still closing) go on as the new run's, as at a
/// reset of an open run: the start's commit writes `ParentWorkflowReset`
/// into each (Temporal forwards such a child's close along the closed
/// parent's reset link instead); the new run records the closes of the
/// others when it loads.
async fn reset_closed(
    shared: &Arc<Shared>,
    workflow_id: &str,
    run_id: RunId,
    next_run_id: RunId,
    next_record: RunRecord,
    events: Vec<Event>,
) -> Result<RunId, ClientError> {
    let encoded = events
        .iter()
        .map(|e| codec::encode(e).map_err(|e| ClientError::Storage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let (workflow_type, task_queue) = (
        next_record.workflow_type.clone(),
        next_record.task_queue.clone(),
    );
    let start = WriteOp::Start {
        run_id: next_run_id,
        record: EncodedRecord::new(next_record)?,
        events: encoded,
        reuse: ReuseRule::Allow,
        wake: WAKE_NOW,
    };
    let children: Vec<ChildCloseOp> = MutableState::fold(&events)
        .children
        .into_iter()
        .filter(|(_, c)| c.run_id.is_some())
        .map(|(seq, c)| ChildCloseOp {
            workflow_id: c.workflow_id,
            seq,
            policy: c.parent_close_policy,
            reparent_to: Some(next_run_id),
        })
        .collect();
    let op = if children.is_empty() {
        start
    } else {
        WriteOp::CloseParent(Box::new(CloseParentOp {
            close: start,
            run_id,
            children,
            at: shared.clock.now(),
        }))
    };
    let outcome = match shared.store.write(op).await {
        Ok(outcome) => outcome,
        // The outcome is unknown: the file says.
        Err(err) => match current_run(shared, workflow_id).await {
            Ok((latest, _)) if latest == next_run_id => WriteOutcome::Started,
            _ => return Err(err.into()),
        },
    };
    match outcome {
        WriteOutcome::Started | WriteOutcome::ParentClosed { .. } => {
            // The kept children's actors take the new parent in (or,
            // behind the file, load it).
            if let WriteOutcome::ParentClosed { reparented, .. } = outcome {
                for (child, event) in reparented {
                    let event = Box::new(event);
                    let _ = shared.deliver(child, RunMsg::Recorded { event });
                }
            }
            crate::metrics::workflow_started(&workflow_type, &task_queue);
            let _ = shared.deliver(next_run_id, RunMsg::Wake);
            Ok(next_run_id)
        }
        WriteOutcome::AlreadyRunning(open) => Err(ClientError::ResetRefused {
            workflow_id: workflow_id.to_string(),
            message: format!(
                "run {run_id} is closed, but run {open} of the same ID is open; a closed \
                     run is reset only while no run of its ID is open: reset the open run, \
                     or terminate it and reset again"
            ),
        }),
        other => Err(ClientError::Storage(format!(
            "the store answered a reset's start with {other:?}"
        ))),
    }
}

/// The boundary `to` names in the run's history.
fn reset_point(
    shared: &Shared,
    workflow_id: &str,
    run_id: RunId,
    record: &RunRecord,
    history: &[crate::history::Event],
    to: ResetTo,
) -> Result<EventId, ClientError> {
    let points = boundaries(history);
    let not_a_point = |event_id| ClientError::NotAResetPoint {
        workflow_id: workflow_id.to_string(),
        event_id,
        boundaries: points.clone(),
    };
    match to {
        ResetTo::EventId(id) if points.contains(&id) => Ok(id),
        ResetTo::EventId(id) => Err(not_a_point(id)),
        ResetTo::FirstWorkflowTask => points.first().copied().ok_or_else(|| not_a_point(1)),
        ResetTo::LastWorkflowTask => {
            // Diverged at event D under today's code: the last task
            // that completed well is the last boundary before D.
            let diverged = match shared.replay_parked(run_id, record, history) {
                Some(ParkReason::Nondeterminism(e)) if e.event_id > 0 => Some(e.event_id),
                _ => None,
            };
            points
                .iter()
                .rev()
                .find(|p| diverged.is_none_or(|d| **p < d))
                .copied()
                .ok_or_else(|| not_a_point(diverged.unwrap_or(1)))
        }
    }
}

fn refused(workflow_id: &str, refusal: ResetRefusal) -> ClientError {
    match refusal {
        ResetRefusal::NotABoundary {
            event_id,
            boundaries,
        } => ClientError::NotAResetPoint {
            workflow_id: workflow_id.to_string(),
            event_id,
            boundaries,
        },
    }
}
