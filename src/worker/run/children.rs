//! A run's child workflows, as its actor deals with them: committing their
//! starts with the step that initiates them, feeding the outcomes back,
//! telling a parent that its child closed, and reconciling with children whose close is durable but not yet recorded
//! in the parent (a crash between the two commits).

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{NextRun, RunActor, RunMsg, Step};
use crate::codec;
use crate::error::ClientError;
use crate::history::{
    ChildIdReuse, Event, EventKind, MutableState, RunId, WorkflowStatus, child_failure,
};
use crate::history::{ParentClosePolicy, ParentInfo};
use crate::store::{
    ChildCloseOp, ChildStartOp, CloseParentOp, EncodedRecord, ReuseRule, RunRecord,
    StartChildrenOp, StoreError, TellParentOp, WAKE_NOW, WriteOp, WriteOutcome,
};
use crate::worker::Shared;

/// Runs a chain of continue-as-new may have at most, as far as following it
/// to a child's last run goes (a damaged file could link runs in a loop).
const MAX_CHAIN: usize = 100_000;

/// True when the events initiate a child's start.
pub(super) fn initiates(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.kind, EventKind::StartChildWorkflowInitiated { .. }))
}

/// The `WorkflowStartedAsChild` event a continued run of a child carries
/// over, so that the chain is one child to its parent.
pub(super) fn parent_event(state: &MutableState) -> Option<EventKind> {
    state
        .parent
        .as_ref()
        .map(|parent| EventKind::WorkflowStartedAsChild {
            parent_workflow_id: parent.workflow_id.clone(),
            parent_run_id: parent.run_id,
            seq: parent.seq,
            parent_close_policy: parent.parent_close_policy,
        })
}

/// The parent's event for a child's close event: `None` for a close that
/// does not end the child (a continue-as-new) or any other event.
pub(crate) fn parent_event_for_close(seq: u32, close: &EventKind) -> Option<EventKind> {
    match close {
        EventKind::WorkflowCompleted { result } => Some(EventKind::ChildWorkflowCompleted {
            seq,
            result: result.clone(),
        }),
        other => child_failure(other).map(|(status, failure)| EventKind::ChildWorkflowClosed {
            seq,
            status,
            failure,
        }),
    }
}

fn reuse_rule(reuse: ChildIdReuse) -> ReuseRule {
    match reuse {
        ChildIdReuse::AllowDuplicate => ReuseRule::Allow,
        ChildIdReuse::AllowDuplicateFailedOnly => ReuseRule::AllowIfLastNotCompleted,
        ChildIdReuse::RejectDuplicate => ReuseRule::Reject,
    }
}

impl RunActor {
    /// Commits a step that initiates child starts, with the starts (see
    /// `StartChildrenOp`). Returns the outcome events the commit wrote
    /// after the step's events, one per start.
    pub(super) async fn commit_child_starts(
        &mut self,
        events: &[Event],
        record: Option<EncodedRecord>,
        expect_next: u64,
        encoded: Vec<(u64, Vec<u8>)>,
    ) -> Result<Vec<Event>, StoreError> {
        let now = self.shared.clock.now();
        let mut starts = Vec::new();
        // Type and queue of each start, for the started metric.
        let mut started = Vec::new();
        for event in events {
            let EventKind::StartChildWorkflowInitiated {
                seq,
                workflow_id,
                workflow_type,
                task_queue,
                input,
                options,
            } = &event.kind
            else {
                continue;
            };
            let child_events = [
                EventKind::WorkflowStarted {
                    workflow_type: workflow_type.clone(),
                    workflow_id: workflow_id.clone(),
                    task_queue: task_queue.clone(),
                    input: input.clone(),
                    run_timeout: options.run_timeout,
                    execution_timeout: options.execution_timeout,
                },
                EventKind::WorkflowStartedAsChild {
                    parent_workflow_id: self.record.workflow_id.clone(),
                    parent_run_id: self.run_id,
                    seq: *seq,
                    parent_close_policy: options.parent_close_policy,
                },
            ];
            let mut child_encoded = Vec::with_capacity(child_events.len());
            for (kind, event_id) in child_events.into_iter().zip(1..) {
                let event = Event {
                    event_id,
                    timestamp: now,
                    kind,
                };
                child_encoded.push(codec::encode(&event).map_err(StoreError::encode)?);
            }
            started.push((workflow_type.clone(), task_queue.clone()));
            let child_record = RunRecord {
                workflow_id: workflow_id.clone(),
                workflow_type: workflow_type.clone(),
                task_queue: task_queue.clone(),
                status: WorkflowStatus::Running,
                start_time: now,
                close_time: None,
                history_len: child_encoded.len() as u64,
                search_attributes: options.search_attributes.clone(),
                memo: options.memo.clone(),
                paused: None,
                reset_from: None,
            };
            starts.push(ChildStartOp {
                seq: *seq,
                run_id: RunId::new_time_ordered(),
                record: EncodedRecord::new(child_record)?,
                events: child_encoded,
                reuse: reuse_rule(options.id_reuse),
                // Loaded on the next open if the process stops before the
                // child's actor goes live.
                wake: WAKE_NOW,
                at: now,
            });
        }
        let first = expect_next.saturating_add(encoded.len() as u64);
        let seqs: Vec<u32> = starts.iter().map(|s| s.seq).collect();
        let op = WriteOp::StartChildren(Box::new(StartChildrenOp {
            run_id: self.run_id,
            record,
            expect_next,
            events: encoded,
            wake: self.wake_hint(),
            starts,
        }));
        let (outcome, external) = self.write_step(op, events).await?;
        match outcome {
            WriteOutcome::ChildrenStarted(outcomes) => Ok(outcomes
                .into_iter()
                .zip(started)
                .map(|(outcome, (workflow_type, task_queue))| {
                    if outcome.is_ok() {
                        crate::metrics::workflow_started(&workflow_type, &task_queue);
                    }
                    outcome
                })
                .zip(seqs)
                .zip(first..)
                .map(|((outcome, seq), event_id)| Event {
                    event_id,
                    timestamp: now,
                    kind: match outcome {
                        Ok(run_id) => EventKind::ChildWorkflowStarted { seq, run_id },
                        Err(cause) => EventKind::StartChildWorkflowFailed { seq, cause },
                    },
                })
                // The outcomes of deliveries to other workflows follow.
                .chain(external)
                .collect()),
            other => Err(StoreError::Conflict {
                run_id: self.run_id,
                message: format!("the store answered a child start with {other:?}"),
            }),
        }
    }

    /// Writes a step; one that closes the run with open children (to
    /// terminate or to cancel) applies their parent-close policies in the
    /// same commit, and then tells their actors. Returns the outcome events
    /// of deliveries to other workflows the commit wrote after the step's.
    pub(super) async fn write_close_with_children(
        &mut self,
        op: WriteOp,
        events: &[Event],
        reset_to: Option<&NextRun>,
    ) -> Result<Vec<Event>, StoreError> {
        // A reset's new run keeps the children open at its point that are
        // open still (the same start, by seq and run): they become its
        // children. The others (started after the point) get their
        // policies, as at any close.
        let inherited = reset_to.map(|next| {
            let kept = MutableState::fold(&next.events).children;
            let keeps = move |seq: &u32, child: &crate::history::PendingChild| {
                kept.get(seq)
                    .is_some_and(|k| k.run_id == child.run_id && k.workflow_id == child.workflow_id)
            };
            (next.run_id, keeps)
        });
        let children: Vec<ChildCloseOp> = if self.record.status.is_closed() {
            self.state
                .children
                .iter()
                .filter(|(_, c)| c.run_id.is_some())
                .filter_map(|(seq, c)| {
                    let reparent_to = inherited
                        .as_ref()
                        .and_then(|(run, keeps)| keeps(seq, c).then_some(*run));
                    let dealt_with = reparent_to.is_some()
                        || c.parent_close_policy != ParentClosePolicy::Abandon;
                    dealt_with.then(|| ChildCloseOp {
                        workflow_id: c.workflow_id.clone(),
                        seq: *seq,
                        policy: c.parent_close_policy,
                        reparent_to,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        if children.is_empty() {
            return self
                .write_step(op, events)
                .await
                .map(|(_, external)| external);
        }
        let op = WriteOp::CloseParent(Box::new(CloseParentOp {
            close: op,
            run_id: self.run_id,
            children,
            at: self.shared.clock.now(),
        }));
        let (outcome, external) = self.write_step(op, events).await?;
        match outcome {
            WriteOutcome::ParentClosed {
                terminated,
                cancel_requested,
                reparented,
            } => {
                // Their actors take the new parent in (or, behind the file,
                // load it).
                for (run_id, event) in reparented {
                    let event = Box::new(event);
                    let _ = self.shared.deliver(run_id, RunMsg::Recorded { event });
                }
                // Durable: an actor of such a run is behind the file now.
                // Its next commit is refused and it stops (terminated) or
                // reloads (cancelled); a message makes that happen now.
                for run_id in terminated {
                    // Closed in the file by this commit, not by its actor:
                    // counted here, with the child's labels.
                    let child_id = self
                        .state
                        .children
                        .values()
                        .find(|c| c.run_id == Some(run_id))
                        .map_or_else(String::new, |c| c.workflow_id.clone());
                    if let Ok(Some(child)) = self.shared.store.run(run_id, &child_id).await {
                        crate::metrics::workflow_closed(
                            WorkflowStatus::Terminated,
                            &child.workflow_type,
                            &child.task_queue,
                        );
                    }
                    self.shared
                        .closed_without_actor(run_id, WorkflowStatus::Terminated);
                    let (ack, _) = oneshot::channel();
                    let reason = "its parent workflow closed".to_string();
                    let _ = self
                        .shared
                        .deliver(run_id, RunMsg::Terminate { reason, ack });
                }
                for run_id in cancel_requested {
                    let (ack, _) = oneshot::channel();
                    let reason = "its parent workflow closed".to_string();
                    let _ = self.shared.deliver(run_id, RunMsg::Cancel { reason, ack });
                }
                Ok(external)
            }
            other => Err(StoreError::Conflict {
                run_id: self.run_id,
                message: format!("the store answered a close with children with {other:?}"),
            }),
        }
    }

    /// Feeds the outcomes of child starts, durable already, to the code,
    /// and starts the children's actors. Returns the step of the code's
    /// reply.
    pub(super) fn children_started(&mut self, started: Vec<Event>) -> Step {
        let mut step = Step::default();
        for event in started {
            // Written by the commit: folded and fed, never written again.
            self.state.apply(&event);
            self.machine.observe(&event);
            self.sync_record();
            if let EventKind::ChildWorkflowStarted { run_id, .. } = event.kind {
                let _ = self.shared.deliver(run_id, RunMsg::Wake);
            }
            // The run asked itself to cancel: as a client's cancellation,
            // the attempts are told.
            if matches!(event.kind, EventKind::WorkflowCancelRequested { .. }) {
                self.cancel_attempts();
            }
            self.activate(&mut step, &event);
        }
        step
    }

    /// Records a child's close, once: a second report (the child's actor
    /// and a reconciliation both sent one) finds the child no longer open.
    pub(super) fn child_closed(
        &mut self,
        step: &mut Step,
        child_workflow_id: &str,
        kind: EventKind,
    ) {
        let seq = match &kind {
            EventKind::ChildWorkflowCompleted { seq, .. }
            | EventKind::ChildWorkflowClosed { seq, .. } => *seq,
            _ => return,
        };
        let open = self
            .state
            .children
            .get(&seq)
            .is_some_and(|c| c.run_id.is_some() && c.workflow_id == child_workflow_id);
        if !open || self.state.status.is_closed() {
            return;
        }
        let event = self.push(step, kind);
        self.activate(step, &event);
    }

    /// What this run's close owes its parent, if the run is a child's
    /// last and `events` close it: the parent and its event.
    fn parent_notice(&self, events: &[Event]) -> Option<(&ParentInfo, EventKind)> {
        let parent = self.state.parent.as_ref()?;
        let kind = events
            .iter()
            .rev()
            .find(|e| e.kind.is_close())
            .and_then(|close| parent_event_for_close(parent.seq, &close.kind))?;
        Some((parent, kind))
    }

    /// A step's op, with the message its close owes the parent written in
    /// the same commit (`TellParentOp`), when the step closes a child's
    /// last run.
    pub(super) fn with_parent_notice(&self, op: WriteOp, events: &[Event]) -> WriteOp {
        match self.parent_notice(events) {
            Some((parent, kind)) => WriteOp::TellParent(Box::new(TellParentOp {
                close: op,
                parent_workflow_id: parent.workflow_id.clone(),
                parent_run_id: parent.run_id,
                child_workflow_id: self.record.workflow_id.clone(),
                kind,
            })),
            None => op,
        }
    }

    /// Tells the parent, if this run is a child's last, that the child
    /// closed (the close is durable). Lost with the process, it is found
    /// again when the parent is loaded (see [`reconcile`]). A parent of
    /// another process's shard is not told from here: the close's commit
    /// wrote the message into its inbox (`TellParentOp`).
    pub(super) fn notify_parent(&self, events: &[Event]) {
        let Some((parent, kind)) = self.parent_notice(events) else {
            return;
        };
        if !self.shared.store.owns(&parent.workflow_id) {
            return;
        }
        let msg = RunMsg::ChildClosed {
            child_workflow_id: self.record.workflow_id.clone(),
            kind: Box::new(kind),
        };
        let _ = self.shared.deliver(parent.run_id, msg);
    }
}

/// Delivers a cancellation request to the current run of a child's chain,
/// if that run is still this child's (an ID reused by an unrelated run is
/// left alone). Idempotent: a run delivers only the first request.
async fn cancel_child(shared: Arc<Shared>, workflow_id: String, parent_run_id: RunId, seq: u32) {
    // A run that continues as new meanwhile refuses it; its successor gets it.
    for _ in 0..MAX_CHAIN {
        let Ok(Some((run_id, record))) = shared.store.current_run(&workflow_id).await else {
            return;
        };
        if record.status.is_closed() {
            return;
        }
        // The whole history: a reset of the parent may have named a new
        // parent run since the start (`ParentWorkflowReset`).
        let history = shared
            .store
            .history(run_id, &workflow_id)
            .await
            .unwrap_or_default();
        let ours = MutableState::fold(&history)
            .parent
            .is_some_and(|p| p.run_id == parent_run_id && p.seq == seq);
        if !ours {
            return;
        }
        let (ack, answer) = oneshot::channel();
        let msg = RunMsg::Cancel {
            reason: "cancelled by its parent workflow".to_string(),
            ack,
        };
        if shared.deliver(run_id, msg).is_err() {
            return;
        }
        match answer.await {
            Ok(Err(ClientError::WorkflowClosed {
                status: WorkflowStatus::ContinuedAsNew,
                ..
            })) => continue,
            _ => return,
        }
    }
}

/// What a run just loaded from the file is owed by its children: a
/// `ChildClosed` for each open child whose chain's last run has closed
/// (durable, and not yet recorded here because the process stopped
/// between the two commits), and, for open children this run asked to
/// cancel, the request delivered again (a run delivers only the first;
/// a history of this build has it already, since its commit delivered it,
/// but an older build delivered it after the commit). This run's own
/// cancellation asks its children through such commands, as each one's
/// cancellation type says, so an abandoned child is not asked.
pub(crate) async fn reconcile(
    shared: &Arc<Shared>,
    run_id: RunId,
    history: &[Event],
) -> Vec<RunMsg> {
    let state = MutableState::fold(history);
    let mut owed = Vec::new();
    for (seq, child) in &state.children {
        let Some(first) = child.run_id else {
            continue;
        };
        match chain_close(shared, &child.workflow_id, first).await {
            Ok(Some(close)) => {
                if let Some(kind) = parent_event_for_close(*seq, &close) {
                    owed.push(RunMsg::ChildClosed {
                        child_workflow_id: child.workflow_id.clone(),
                        kind: Box::new(kind),
                    });
                }
            }
            Ok(None) if child.cancel_requested => {
                let (shared, workflow_id, seq) = (shared.clone(), child.workflow_id.clone(), *seq);
                shared.clone().tracker.spawn(async move {
                    cancel_child(shared, workflow_id, run_id, seq).await;
                });
            }
            // Still running, or unreadable: its own close will report.
            _ => {}
        }
    }
    owed
}

/// What a run closed in the file without its actor (a terminate of a
/// parked run) owes its parent, if it is a child's last run: the close op
/// wrapped with the parent's message in the same commit (`TellParentOp`),
/// as the actor's own close is, and the message to hand a parent of this
/// process at once after the commit ([`tell_parent_after_close`]).
pub(crate) async fn close_telling_parent(
    shared: &Arc<Shared>,
    run_id: RunId,
    workflow_id: &str,
    close: &EventKind,
    op: WriteOp,
) -> (WriteOp, Option<ParentNotice>) {
    // The whole history: a reset of the parent may have named a new parent
    // run since the start (`ParentWorkflowReset`). Unreadable (the reason
    // the run is parked, perhaps): no parent is known, and the parent
    // finds the close when it is loaded (see [`reconcile`]).
    let history = shared
        .store
        .history(run_id, workflow_id)
        .await
        .unwrap_or_default();
    let Some(parent) = MutableState::fold(&history).parent else {
        return (op, None);
    };
    let Some(kind) = parent_event_for_close(parent.seq, close) else {
        return (op, None);
    };
    let op = WriteOp::TellParent(Box::new(TellParentOp {
        close: op,
        parent_workflow_id: parent.workflow_id.clone(),
        parent_run_id: parent.run_id,
        child_workflow_id: workflow_id.to_string(),
        kind: kind.clone(),
    }));
    let notice = ParentNotice {
        parent_workflow_id: parent.workflow_id,
        parent_run_id: parent.run_id,
        child_workflow_id: workflow_id.to_string(),
        kind,
    };
    (op, Some(notice))
}

/// The message a child's close owes its parent, as [`close_telling_parent`]
/// found it.
pub(crate) struct ParentNotice {
    parent_workflow_id: String,
    parent_run_id: RunId,
    child_workflow_id: String,
    kind: EventKind,
}

/// Hands a parent of this process the close its child's commit told it
/// (durable in that commit already: a parent of another process's shard
/// gets it from its inbox, and is not loaded here).
pub(crate) fn tell_parent_after_close(shared: &Arc<Shared>, notice: ParentNotice) {
    if !shared.store.owns(&notice.parent_workflow_id) {
        return;
    }
    let msg = RunMsg::ChildClosed {
        child_workflow_id: notice.child_workflow_id,
        kind: Box::new(notice.kind),
    };
    let _ = shared.deliver(notice.parent_run_id, msg);
}

/// The close event of the last run of a child's chain, from its first run
/// on; `None` while the chain is open (or its runs are gone).
async fn chain_close(
    shared: &Shared,
    workflow_id: &str,
    first: RunId,
) -> Result<Option<EventKind>, StoreError> {
    let mut run_id = first;
    for _ in 0..MAX_CHAIN {
        match shared.store.run(run_id, workflow_id).await? {
            Some(record) if record.status.is_closed() => {}
            _ => return Ok(None),
        }
        let Some(last) = shared.store.last_event(run_id, workflow_id).await? else {
            return Ok(None);
        };
        match last.kind {
            // A reset child goes on in its new run, which keeps its parent.
            EventKind::WorkflowContinuedAsNew { new_run_id, .. }
            | EventKind::WorkflowReset { new_run_id, .. } => run_id = new_run_id,
            close => return Ok(Some(close)),
        }
    }
    Ok(None)
}
