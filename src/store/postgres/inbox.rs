//! Messages to runs of another process's shard (`shared/SCALE-OUT.md`
//! §4.4): only a shard's owner appends to its runs, so a call made in
//! another process travels through the `inbox` table.
//!
//! - The sender inserts an inbox row (a codec [`RemoteRequest`], keyed by
//!   a request UUID, with the shard and its own member ID) and `NOTIFY`s
//!   the schema's channel, in one statement, then waits for the answer.
//! - The owner's inbox task `LISTEN`s on that channel and, on a hint or
//!   at least once a second (the backstop, should a hint be lost or the
//!   session drop), reads the rows of the shards it owns and hands them to
//!   its engine, which delivers each to its run as a local call.
//! - Once the call's effect is durable (a signal is in the run's history),
//!   the owner answers: in one statement it deletes the row, writes the
//!   reply to `inbox_replies`, and notifies; the sender's task reads its
//!   replies on a hint or at least once a second.
//!
//! A request is therefore delivered at least once; an owner that crashes
//! after the call's commit and before the answer leaves the row to the
//! shard's next owner, which delivers it again, and the run recognises it:
//! a signal by its request ID (the sender gives every signal one), a
//! cancellation or a termination as already made. Queries are answered
//! from the owner's state of the run, never from a stale copy.
//!
//! Rows of other kinds are hints that need no answer, written by commits
//! (see `hint_owner` in [`super::schema`]): a run started in the shard by
//! another process (wake), an event another run delivered into its
//! history, a close made by another run's commit (reload). They are
//! deleted as soon as they are read: an owner that crashes before acting
//! on one leaves nothing undone, since the next owner loads every open
//! run of the shard with work due (and drives every schedule of it: a
//! hint that a schedule changed, kind 4, names the schedule ID as its
//! workflow).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::closes::Closes;
use super::shards::Ownership;
use super::{Target, db_err, run_id_of};
use crate::codec;
use crate::history::Event;
use crate::store::{InboxBody, InboxMessage, RemoteReply, RemoteRequest, StoreError, StoreEvent};

/// The backstop: how often the inbox and the replies are read without a hint.
const POLL: Duration = Duration::from_secs(1);
/// Most rows read per look.
const BATCH: i64 = 512;

/// What the inbox task and the store's calls share.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    /// Requests this process sent, waiting for their answers.
    pending: Mutex<HashMap<uuid::Uuid, oneshot::Sender<RemoteReply>>>,
    /// Requests handed to the engine and not answered yet, with their shard.
    taken: Mutex<HashMap<uuid::Uuid, i32>>,
    /// Told when a request is sent (its answer may come before a hint).
    pub(crate) sent: Notify,
}

impl Mailbox {
    /// Waits for the answer to `request`, registered before it is sent.
    pub(crate) fn expect(&self, request: uuid::Uuid) -> oneshot::Receiver<RemoteReply> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request, tx);
        rx
    }

    /// Stops waiting for `request`.
    pub(crate) fn forget(&self, request: uuid::Uuid) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request);
    }

    /// `request` was answered: it may be taken again only by a new owner.
    pub(crate) fn answered(&self, request: uuid::Uuid) {
        self.taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request);
    }

    /// Forgets the requests taken from shards now lost (their new owner
    /// delivers them again).
    pub(crate) fn lost(&self, shards: &[u32]) {
        self.taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, shard| !shards.contains(&(*shard as u32)));
    }
}

/// The inbox task's settings and handles.
pub(crate) struct InboxTask {
    pub(crate) target: Target,
    pub(crate) ownership: Arc<Ownership>,
    pub(crate) mailbox: Arc<Mailbox>,
    /// Woken by the other processes' word of closes (see [`super::closes`]).
    pub(crate) closes: Arc<Closes>,
    pub(crate) events: mpsc::UnboundedSender<StoreEvent>,
}

impl InboxTask {
    /// Listens and reads until the engine stops taking events.
    pub(crate) async fn run(self) {
        loop {
            if self.events.is_closed() {
                return;
            }
            match self.session().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "the inbox session failed; connecting again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// One listening session: `Ok` once the engine is gone.
    async fn session(&self) -> Result<(), StoreError> {
        let (client, mut connection) = self.target.config.connect(NoTls).await.map_err(db_err)?;
        let hint = Arc::new(Notify::new());
        let (gone_tx, mut gone) = oneshot::channel::<()>();
        {
            let hint = hint.clone();
            let closes = self.closes.clone();
            tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(note)) => {
                            match super::closes::parse(note.payload()) {
                                Some(runs) => closes.closed(runs),
                                None => hint.notify_one(),
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::debug!(%error, "the inbox session ended");
                            break;
                        }
                    }
                }
                drop(gone_tx);
            });
        }
        client
            .batch_execute(&format!(
                "SET search_path TO {schema}; LISTEN {schema}",
                schema = self.target.schema
            ))
            .await
            .map_err(db_err)?;
        loop {
            // After (re)connecting, and after every hint or poll: hints
            // sent while the session was away are covered by the read.
            self.replies(&client).await?;
            self.drain(&client).await?;
            tokio::select! {
                _ = hint.notified() => {}
                _ = self.ownership.acquired.notified() => {}
                _ = self.mailbox.sent.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut gone => {
                    return Err(StoreError::Database("the inbox session ended".into()));
                }
                _ = self.events.closed() => return Ok(()),
            }
        }
    }

    /// Reads the answers to this process's requests.
    async fn replies(&self, c: &Client) -> Result<(), StoreError> {
        let waiting: Vec<uuid::Uuid> = {
            let mut pending = self
                .mailbox
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, tx| !tx.is_closed());
            pending.keys().copied().collect()
        };
        if waiting.is_empty() {
            return Ok(());
        }
        let rows = c
            .query(
                "DELETE FROM inbox_replies WHERE request = ANY($1) RETURNING request, body",
                &[&waiting],
            )
            .await
            .map_err(db_err)?;
        let mut pending = self
            .mailbox
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for row in rows {
            let request: uuid::Uuid = row.get(0);
            let reply = codec::decode::<RemoteReply>(row.get::<_, &[u8]>(1)).unwrap_or_else(|e| {
                RemoteReply::Failed(format!("the answer does not decode: {e}"))
            });
            if let Some(tx) = pending.remove(&request) {
                let _ = tx.send(reply);
            }
        }
        Ok(())
    }

    /// Hands the requests of the owned shards to the engine.
    async fn drain(&self, c: &Client) -> Result<(), StoreError> {
        let owned = self.ownership.owned();
        if owned.is_empty() {
            return Ok(());
        }
        let taken: Vec<uuid::Uuid> = self
            .mailbox
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        // Fenced as a write: only shards held under the epoch this process
        // believes it holds, with a lease running by the database's clock
        // (a process paused past its lease takes nothing, deletes nothing).
        let me = self.ownership.me;
        let epochs = self.ownership.epochs();
        // Each row taken counts a delivery, so that the next taker of a
        // row left unanswered knows it was delivered before.
        let mut rows = c
            .query(
                "UPDATE inbox u SET deliveries = u.deliveries + 1 FROM ( \
                     SELECT i.request FROM inbox i JOIN shards s ON s.shard_id = i.shard \
                     WHERE i.shard = ANY($1) AND NOT (i.request = ANY($2)) \
                     AND s.owner = $4 AND s.epoch = ($5::bigint[])[i.shard + 1] \
                     AND s.lease_until > clock_timestamp() \
                     ORDER BY i.created_at, i.request LIMIT $3) picked \
                 WHERE u.request = picked.request \
                 RETURNING u.request, u.shard, u.workflow_id, u.run_id, u.kind, u.body, \
                     u.deliveries, u.created_at",
                &[&owned, &taken, &BATCH, &me, &epochs],
            )
            .await
            .map_err(db_err)?;
        // In the order they were sent (RETURNING keeps none).
        rows.sort_by_key(|row| {
            (
                row.get::<_, std::time::SystemTime>(7),
                row.get::<_, uuid::Uuid>(0),
            )
        });
        let mut hints = Vec::new();
        for row in rows {
            let request: uuid::Uuid = row.get(0);
            let shard: i32 = row.get(1);
            let workflow_id: String = row.get(2);
            let run_id = run_id_of(row.get(3));
            let kind: i16 = row.get(4);
            let body: Option<&[u8]> = row.get(5);
            let redelivered = row.get::<_, i32>(6) > 1;
            let body = match (kind, body) {
                (0, _) => Some(InboxBody::Wake),
                (3, _) => Some(InboxBody::Reload),
                (super::schedules::SCHEDULE_HINT, _) => Some(InboxBody::Schedule),
                (1, Some(bytes)) => match codec::decode::<RemoteRequest>(bytes) {
                    Ok(request) => Some(InboxBody::Request(request)),
                    Err(error) => {
                        // Its sender waits: it is told, not left hanging.
                        tracing::warn!(%error, %request, "an inbox request does not decode; it is refused");
                        let reply = RemoteReply::Failed(format!(
                            "the run's owner could not decode the request ({error}); \
                             it was not carried out (are both processes of builds that \
                             share this schema's store format?)"
                        ));
                        answer(c, request, Some(&reply), &self.target.schema).await?;
                        continue;
                    }
                },
                (2, Some(bytes)) => match codec::decode::<Event>(bytes) {
                    Ok(event) => Some(InboxBody::Request(RemoteRequest::Recorded {
                        event: Box::new(event),
                    })),
                    Err(error) => {
                        tracing::warn!(%error, %request, "an inbox event does not decode; it is dropped");
                        None
                    }
                },
                _ => {
                    tracing::warn!(%request, kind, "an inbox row of an unknown kind is dropped");
                    None
                }
            };
            // Only requests wait for an answer; hints go at once.
            let answers = matches!((&body, kind), (Some(InboxBody::Request(_)), 1));
            if answers {
                self.mailbox
                    .taken
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(request, shard);
            } else {
                hints.push(request);
            }
            if let Some(body) = body {
                let message = InboxMessage {
                    request,
                    workflow_id,
                    run_id,
                    body,
                    redelivered,
                };
                if self.events.send(StoreEvent::Message(message)).is_err() {
                    return Ok(());
                }
            }
        }
        if !hints.is_empty() {
            c.execute(
                "DELETE FROM inbox i USING shards s WHERE i.request = ANY($1) \
                 AND s.shard_id = i.shard AND s.owner = $2 \
                 AND s.epoch = ($3::bigint[])[i.shard + 1] AND s.lease_until > clock_timestamp()",
                &[&hints, &me, &epochs],
            )
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }
}

/// Sends a request for a run of `shard` and answers its key; the answer
/// comes through the mailbox.
pub(crate) async fn send(
    c: &Client,
    request: uuid::Uuid,
    shard: i32,
    (workflow_id, run_id): (&str, crate::history::RunId),
    sender: uuid::Uuid,
    body: &RemoteRequest,
    channel: &str,
) -> Result<(), StoreError> {
    let bytes = codec::encode(body).map_err(StoreError::encode)?;
    c.execute(
        "WITH i AS (INSERT INTO inbox (request, shard, workflow_id, run_id, sender, kind, body) \
         VALUES ($1, $2, $3, $4, $5, 1, $6) RETURNING shard) \
         SELECT pg_notify($7, i.shard::text) FROM i",
        &[
            &request,
            &shard,
            &workflow_id,
            &run_id.as_uuid(),
            &sender,
            &bytes,
            &channel,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Removes an answered request and, when it waits for one, writes its
/// answer and hints its sender, in one statement.
pub(crate) async fn answer(
    c: &Client,
    request: uuid::Uuid,
    reply: Option<&RemoteReply>,
    channel: &str,
) -> Result<(), StoreError> {
    let bytes = reply
        .map(codec::encode)
        .transpose()
        .map_err(StoreError::encode)?;
    c.execute(
        "WITH d AS (DELETE FROM inbox WHERE request = $1 RETURNING sender), \
         r AS (INSERT INTO inbox_replies (request, body) \
               SELECT $1, $2::bytea FROM d WHERE d.sender IS NOT NULL AND $2::bytea IS NOT NULL \
               ON CONFLICT (request) DO NOTHING RETURNING 1) \
         SELECT pg_notify($3, 'reply') FROM r",
        &[&request, &bytes, &channel],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}
