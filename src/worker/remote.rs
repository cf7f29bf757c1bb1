//! Runs owned by another process (a PostgreSQL schema shared by several):
//! messages for them are forwarded through the store to their owner, and
//! messages the store takes from this process's inbox are delivered here
//! as local calls. With a redb file every run is local and none of this
//! runs.
//!
//! A run is advanced only by the process that owns its shard
//! ([`Store::owns`](crate::store::Store)): loading one of another shard
//! hands its queued messages here instead ([`Shared::hand_over`]), and
//! losing a shard drops its runs from memory ([`Shared::drop_unowned`])
//! without writing anything; their new owner resumes them from the store.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Actor, RunMsg, Shared};
use crate::error::{ClientError, UpdateError};
use crate::history::RunId;
use crate::store::{InboxBody, InboxMessage, RemoteReply, RemoteRequest, StoreEvent};

/// Where the answer to a forwarded message goes.
enum Answer {
    Ack(super::Ack),
    Query(super::run::QueryReply),
    Update(super::run::UpdateReply),
    None,
}

impl Shared {
    /// Hands the messages queued for a run of another process's shard to
    /// that process and forgets the run here.
    pub(super) fn hand_over(self: &Arc<Self>, run_id: RunId, workflow_id: &str) {
        let queued = {
            let mut runs = self.runs();
            // Only a run being loaded: an actor that went live meanwhile
            // (this process acquired the shard) keeps its messages.
            if !matches!(
                runs.get(&run_id).map(|slot| &slot.actor),
                Some(Actor::Loading(_))
            ) {
                return;
            }
            match runs.remove(&run_id).map(|slot| slot.actor) {
                Some(Actor::Loading(queued)) => queued,
                _ => Vec::new(),
            }
        };
        for (msg, _hold) in queued {
            forward(self, workflow_id.to_string(), run_id, msg);
        }
    }

    /// Drops from memory every run of the shards this process lost (and
    /// their due times): its actor stops (its attempts are told to stop),
    /// and nothing more is written for it here. Exactly the lost shards'
    /// runs, whatever ownership says by now: a shard lost and acquired
    /// again before this runs has been advanced by another process
    /// meanwhile, so what memory holds of it is stale either way. A run
    /// of a shard owned again is loaded afresh from the store at once.
    pub(super) fn drop_unowned(self: &Arc<Self>, shards: &[u32]) {
        let dropped: Vec<(RunId, String)> = {
            let mut runs = self.runs();
            let lost: Vec<(RunId, String)> = runs
                .iter()
                .filter_map(|(run_id, slot)| {
                    let workflow_id = slot.workflow_id.as_deref()?;
                    shards
                        .contains(&self.store.shard_of(workflow_id))
                        .then(|| (*run_id, workflow_id.to_string()))
                })
                .collect();
            for (run_id, _) in &lost {
                runs.remove(run_id);
            }
            lost
        };
        if dropped.is_empty() {
            return;
        }
        tracing::info!(
            runs = dropped.len(),
            ?shards,
            "runs of shards lost left memory"
        );
        let ids: std::collections::HashSet<RunId> = dropped.iter().map(|(id, _)| *id).collect();
        self.timers.forget_runs(&ids);
        for (run_id, workflow_id) in dropped {
            if self.store.owns(&workflow_id) {
                let _ = self.deliver(run_id, RunMsg::Wake);
            }
        }
    }

    /// Forgets a run whose write was refused because this process lost
    /// its shard (its actor stops).
    pub(super) fn drop_lost(&self, run_id: RunId) {
        tracing::debug!(%run_id, "the run's shard was lost: it leaves memory");
        self.runs().remove(&run_id);
    }

    /// Drops a run's actor (what it holds is stale) and loads it again.
    fn reload(self: &Arc<Self>, run_id: RunId) {
        let live = matches!(
            self.runs().get(&run_id).map(|slot| &slot.actor),
            Some(Actor::Live(_))
        );
        if live {
            self.runs().remove(&run_id);
        }
        let _ = self.deliver(run_id, RunMsg::Wake);
    }
}

/// What the schedules' drivers (the engine's) hear of the store's events:
/// only the owner of a schedule ID's shard drives that schedule.
#[derive(Debug)]
pub(crate) enum ScheduleHint {
    /// Shards were acquired or lost: the drivers of schedules in shards
    /// now owned start, those of shards lost stop.
    Rescan,
    /// A call in another process changed this schedule.
    Changed(String),
}

/// Starts the task that acts on what the store tells: shards lost, and
/// requests from other processes for this process's runs; what concerns
/// schedules goes to `schedules`.
pub(crate) fn spawn_events(
    shared: &Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<StoreEvent>,
    schedules: mpsc::UnboundedSender<ScheduleHint>,
) {
    let weak = Arc::downgrade(shared);
    let shutdown = shared.shutdown.clone();
    shared.tracker.spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = shutdown.cancelled() => return,
            };
            let (Some(event), Some(shared)) = (event, weak.upgrade()) else {
                return;
            };
            match event {
                StoreEvent::Lost(shards) => {
                    shared.drop_unowned(&shards);
                    let _ = schedules.send(ScheduleHint::Rescan);
                }
                // The runs the last owner left resume now, not at the
                // timer thread's next read of the wake-ups.
                StoreEvent::Acquired => {
                    shared.timers.rescan();
                    let _ = schedules.send(ScheduleHint::Rescan);
                }
                StoreEvent::Message(InboxMessage {
                    workflow_id,
                    body: InboxBody::Schedule,
                    ..
                }) => {
                    let _ = schedules.send(ScheduleHint::Changed(workflow_id));
                }
                StoreEvent::Message(message) => take(&shared, message),
            }
        }
    });
}

/// Delivers a message from the inbox to its run here, and answers it
/// once its effect is durable.
fn take(shared: &Arc<Shared>, message: InboxMessage) {
    let InboxMessage {
        request,
        workflow_id,
        run_id,
        body,
        redelivered,
    } = message;
    let request_body = match body {
        InboxBody::Wake => {
            let _ = shared.deliver(run_id, RunMsg::Wake);
            return;
        }
        InboxBody::Reload => {
            shared.reload(run_id);
            return;
        }
        InboxBody::Request(RemoteRequest::Recorded { event }) => {
            let _ = shared.deliver(run_id, RunMsg::Recorded { event });
            return;
        }
        InboxBody::Request(request) => request,
        // Taken by the events task before this.
        InboxBody::Schedule => return,
    };
    let shared = shared.clone();
    shared.tracker.clone().spawn(async move {
        // What to look for in the history, should the call find its
        // effect made by the process that took it before.
        let effect = redelivered.then(|| Effect::of(&request_body)).flatten();
        let mut reply = call(&shared, &workflow_id, run_id, request_body).await;
        if let (Some(effect), RemoteReply::Closed(_)) = (&effect, &reply)
            && effect.made(&shared, &workflow_id, run_id).await
        {
            reply = RemoteReply::Done;
        }
        // Refused because this process lost the shard meanwhile: the row
        // stays for the shard's next owner, which delivers it again.
        if !matches!(reply, RemoteReply::Done | RemoteReply::Answer(_) | RemoteReply::Updated(_))
            && !shared.store.owns(&workflow_id)
        {
            return;
        }
        if let Err(error) = shared.store.answer(request, Some(reply)).await {
            tracing::warn!(%error, %request, "answering a request from another process failed; it is delivered again");
        }
    });
}

/// The effect a cancellation or a termination leaves in the run's
/// history. Neither event carries the request's ID, so a request taken
/// again after its first taker died unanswered (its effect perhaps
/// committed, and the run closed since) recognises its effect by it: a
/// cancellation requested, a termination with its reason. The call itself
/// is idempotent already (a second cancellation request is not recorded,
/// a closed run is not terminated again); this makes its answer the one
/// the first taker would have given.
enum Effect {
    CancelRequested,
    Terminated { reason: String },
}

impl Effect {
    fn of(request: &RemoteRequest) -> Option<Self> {
        match request {
            RemoteRequest::Cancel { .. } => Some(Effect::CancelRequested),
            RemoteRequest::Terminate { reason } => Some(Effect::Terminated {
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Whether the run's history holds the effect.
    async fn made(&self, shared: &Shared, workflow_id: &str, run_id: RunId) -> bool {
        use crate::history::EventKind;
        match self {
            Effect::CancelRequested => shared
                .store
                .history(run_id, workflow_id)
                .await
                .is_ok_and(|history| {
                    history
                        .iter()
                        .any(|e| matches!(e.kind, EventKind::WorkflowCancelRequested { .. }))
                }),
            Effect::Terminated { reason } => shared
                .store
                .last_event(run_id, workflow_id)
                .await
                .ok()
                .flatten()
                .is_some_and(|e| {
                    matches!(&e.kind, EventKind::WorkflowTerminated { reason: r } if r == reason)
                }),
        }
    }
}

/// Makes a call another process forwarded, as a local one.
async fn call(
    shared: &Arc<Shared>,
    workflow_id: &str,
    run_id: RunId,
    request: RemoteRequest,
) -> RemoteReply {
    match request {
        RemoteRequest::Signal {
            name,
            input,
            request_id,
        } => {
            acked(shared, run_id, |ack| RunMsg::Signal {
                name,
                input,
                request_id,
                ack,
            })
            .await
        }
        RemoteRequest::Cancel { reason } => {
            acked(shared, run_id, |ack| RunMsg::Cancel { reason, ack }).await
        }
        // As a local terminate: a run parked here without an actor is
        // closed in the store directly (only its owner may write it).
        RemoteRequest::Terminate { reason } => {
            match crate::engine::terminate_run(shared, workflow_id, run_id, &reason).await {
                Ok(()) => RemoteReply::Done,
                Err(e) => reply_of(e),
            }
        }
        RemoteRequest::Pause { reason } => {
            acked(shared, run_id, |ack| RunMsg::Pause { reason, ack }).await
        }
        RemoteRequest::Unpause { reason } => {
            acked(shared, run_id, |ack| RunMsg::Unpause { reason, ack }).await
        }
        RemoteRequest::Query { name, input } => {
            let (reply, answer) = oneshot::channel();
            if shared
                .deliver(run_id, RunMsg::Query { name, input, reply })
                .is_err()
            {
                return RemoteReply::Gone;
            }
            match answer.await {
                Ok(Ok(payload)) => RemoteReply::Answer(payload),
                Ok(Err(e)) => reply_of(e),
                Err(_) => RemoteReply::Gone,
            }
        }
        RemoteRequest::Update {
            update_id,
            name,
            input,
        } => {
            let (reply, answer) = oneshot::channel();
            let msg = RunMsg::Update {
                update_id,
                name,
                input,
                reply,
            };
            if shared.deliver(run_id, msg).is_err() {
                return RemoteReply::Gone;
            }
            match answer.await {
                Ok(Ok(outcome)) => RemoteReply::Updated(outcome),
                Ok(Err(UpdateError::Client(e))) => reply_of(e),
                Ok(Err(e)) => RemoteReply::UpdateRefused(e.to_string()),
                Err(_) => RemoteReply::Gone,
            }
        }
        RemoteRequest::ChildClosed {
            child_workflow_id,
            kind,
        } => {
            let msg = RunMsg::ChildClosed {
                child_workflow_id,
                kind,
            };
            let _ = shared.deliver(run_id, msg);
            RemoteReply::Done
        }
        RemoteRequest::Recorded { event } => {
            let _ = shared.deliver(run_id, RunMsg::Recorded { event });
            RemoteReply::Done
        }
        RemoteRequest::Reset {
            to,
            reason,
            reapply_signals,
            reapply_updates,
        } => {
            let options =
                crate::engine::remote_reset_options(to, reason, reapply_signals, reapply_updates);
            match crate::engine::reset_run(shared, workflow_id, options).await {
                Ok(next) => RemoteReply::ResetTo(next),
                Err(e) => reply_of(e),
            }
        }
    }
}

/// Delivers a message answered by an acknowledgement (a signal, cancel,
/// terminate, pause or unpause) and waits for it.
async fn acked(
    shared: &Arc<Shared>,
    run_id: RunId,
    msg: impl FnOnce(super::Ack) -> RunMsg,
) -> RemoteReply {
    let (ack, answer) = oneshot::channel();
    if shared.deliver(run_id, msg(ack)).is_err() {
        return RemoteReply::Gone;
    }
    match answer.await {
        Ok(Ok(())) => RemoteReply::Done,
        Ok(Err(e)) => reply_of(e),
        Err(_) => RemoteReply::Gone,
    }
}

/// A client error as an answer to another process.
fn reply_of(error: ClientError) -> RemoteReply {
    match error {
        ClientError::WorkflowClosed { status, .. } => RemoteReply::Closed(status),
        ClientError::UnknownQuery { query, .. } => RemoteReply::UnknownQuery { query_name: query },
        other => RemoteReply::Failed(other.to_string()),
    }
}

/// Forwards a message for a run of another process's shard to its owner,
/// in the background; its caller gets the owner's answer. Messages that
/// only the owner makes (timers, attempts, wake-ups) are dropped: the
/// owner has its own.
pub(super) fn forward(shared: &Arc<Shared>, workflow_id: String, run_id: RunId, msg: RunMsg) {
    let (request, answer) = match msg {
        RunMsg::Signal {
            name,
            input,
            request_id,
            ack,
        } => {
            // Every forwarded signal has a request ID: delivered again by
            // a new owner after a crash, the run recognises it.
            let request_id = request_id
                .or_else(|| Some(format!("steadfast-forwarded:{}", uuid::Uuid::new_v4())));
            (
                RemoteRequest::Signal {
                    name,
                    input,
                    request_id,
                },
                Answer::Ack(ack),
            )
        }
        RunMsg::Cancel { reason, ack } => (RemoteRequest::Cancel { reason }, Answer::Ack(ack)),
        RunMsg::Terminate { reason, ack } => {
            (RemoteRequest::Terminate { reason }, Answer::Ack(ack))
        }
        RunMsg::Pause { reason, ack } => (RemoteRequest::Pause { reason }, Answer::Ack(ack)),
        RunMsg::Unpause { reason, ack } => (RemoteRequest::Unpause { reason }, Answer::Ack(ack)),
        RunMsg::Query { name, input, reply } => {
            (RemoteRequest::Query { name, input }, Answer::Query(reply))
        }
        RunMsg::Update {
            update_id,
            name,
            input,
            reply,
        } => (
            RemoteRequest::Update {
                update_id,
                name,
                input,
            },
            Answer::Update(reply),
        ),
        RunMsg::ChildClosed {
            child_workflow_id,
            kind,
        } => (
            RemoteRequest::ChildClosed {
                child_workflow_id,
                kind,
            },
            Answer::None,
        ),
        // Written into the run's history by a commit that hinted its
        // owner in the same transaction; everything else is the owner's.
        _ => return,
    };
    let shared = shared.clone();
    shared.tracker.clone().spawn(async move {
        let reply = tokio::select! {
            reply = shared.store.forward(&workflow_id, run_id, request) => reply,
            _ = shared.shutdown.cancelled() => return,
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => RemoteReply::Failed(ClientError::from(e).to_string()),
        };
        answer_with(answer, &workflow_id, reply);
    });
}

/// Sends the owner's answer to the caller of a forwarded message; `Gone`
/// drops it, and the caller reads the store to say why.
fn answer_with(answer: Answer, workflow_id: &str, reply: RemoteReply) {
    let error = |reply: RemoteReply| match reply {
        RemoteReply::Closed(status) => ClientError::WorkflowClosed {
            workflow_id: workflow_id.to_string(),
            status,
        },
        RemoteReply::UnknownQuery { query_name } => ClientError::UnknownQuery {
            workflow_id: workflow_id.to_string(),
            query: query_name,
        },
        RemoteReply::Failed(message) | RemoteReply::UpdateRefused(message) => ClientError::Storage(
            format!("the run's owner (another process) answered: {message}"),
        ),
        other => ClientError::Storage(format!(
            "the run's owner (another process) answered {other:?}"
        )),
    };
    if matches!(reply, RemoteReply::Gone) {
        return;
    }
    match answer {
        Answer::Ack(ack) => {
            let _ = ack.send(match reply {
                RemoteReply::Done => Ok(()),
                other => Err(error(other)),
            });
        }
        Answer::Query(tx) => {
            let _ = tx.send(match reply {
                RemoteReply::Answer(payload) => Ok(payload),
                other => Err(error(other)),
            });
        }
        Answer::Update(tx) => {
            let _ = tx.send(match reply {
                RemoteReply::Updated(outcome) => Ok(outcome),
                other => Err(UpdateError::Client(error(other))),
            });
        }
        Answer::None => {}
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use std::time::Duration;

    use crate::store::conformance::cluster;
    use crate::{Engine, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};

    const GO: SignalDef<()> = SignalDef::new("go");
    const WAITER: WorkflowDef<(), u32> = WorkflowDef::new("Waiter");

    async fn waiter(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
        ctx.recv_signal(GO).await?;
        Ok(7)
    }

    /// A shard lost and acquired again before the engine acts on the loss
    /// (the loss is told while this process owns the shard once more):
    /// its runs leave memory all the same, since another process may have
    /// advanced them meanwhile, and are loaded afresh from the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_of_a_shard_lost_and_owned_again_are_loaded_afresh() {
        let Some(url) = cluster::url() else {
            return;
        };
        let schema = cluster::fresh_schema("lost_again");
        let engine = Engine::builder()
            .workflow(WAITER, waiter)
            .postgres_schema(&schema)
            .postgres(&url)
            .await
            .expect("open");
        let handle = engine
            .start_workflow(WAITER, "stale", (), WorkflowOptions::default())
            .await
            .expect("start");
        let shared = engine.shared_for_tests().clone();
        let run_id = handle.run_id();
        let before = shared.watch(run_id).expect("the run is in memory");
        assert!(
            shared.store.owns("stale"),
            "the only process owns every shard"
        );
        shared.drop_unowned(&[shared.store.shard_of("stale")]);
        // The actor that held the run is gone: the run is out of memory,
        // or in it again under a fresh slot.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while shared
            .watch(run_id)
            .is_some_and(|now| now.same_channel(&before))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stale actor of a shard lost stayed in memory"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine.signal("stale", GO, ()).await.expect("signal");
        let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
            .await
            .expect("the run loaded afresh completes")
            .expect("result");
        assert_eq!(result, 7);
        engine.shutdown().await.expect("shutdown");
    }
}
