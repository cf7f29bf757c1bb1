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

    /// Drops from memory every run in memory whose shard this process no
    /// longer owns: its actor stops (its attempts are told to stop), and
    /// nothing more is written for it here.
    pub(super) fn drop_unowned(&self, shards: &[u32]) {
        let mut runs = self.runs();
        let before = runs.len();
        runs.retain(|_, slot| {
            slot.workflow_id
                .as_deref()
                .is_none_or(|workflow_id| self.store.owns(workflow_id))
        });
        let dropped = before - runs.len();
        if dropped > 0 {
            tracing::info!(runs = dropped, ?shards, "runs of shards lost left memory");
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

/// Starts the task that acts on what the store tells: shards lost, and
/// requests from other processes for this process's runs.
pub(crate) fn spawn_events(shared: &Arc<Shared>, mut events: mpsc::UnboundedReceiver<StoreEvent>) {
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
                StoreEvent::Lost(shards) => shared.drop_unowned(&shards),
                // The runs the last owner left resume now, not at the
                // timer thread's next read of the wake-ups.
                StoreEvent::Acquired => shared.timers.rescan(),
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
    };
    let shared = shared.clone();
    shared.tracker.clone().spawn(async move {
        let reply = call(&shared, run_id, request_body).await;
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

/// Makes a call another process forwarded, as a local one.
async fn call(shared: &Arc<Shared>, run_id: RunId, request: RemoteRequest) -> RemoteReply {
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
        RemoteRequest::Terminate { reason } => {
            acked(shared, run_id, |ack| RunMsg::Terminate { reason, ack }).await
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
