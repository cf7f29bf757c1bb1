//! Promise: on a PostgreSQL schema several processes share, what a commit
//! tells the other processes is sent after the commit, on the schema's
//! channel (`FORMAT.md`, functions revision 5):
//! - a start made in one process for a run of another process's shard
//!   notifies that shard's number, so its owner reads its inbox at once,
//!   and the owner runs it;
//! - a run closed by its owner is told as `c` and the run's ID, and a
//!   result awaited in another process answers (woken by it, or by the
//!   backstop read of the runs awaited there).
//!
//! The two processes are two engines on one schema; the test listens on
//! the channel with a session of its own.

mod support;

use std::time::Duration;

use futures::StreamExt;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::postgres::shard_of;
use support::split;
use tokio::sync::mpsc;

/// Runs one activity, then completes with its result.
const ONE_STEP: WorkflowDef<u32, u32> = WorkflowDef::new("OneStep");
const DOUBLE: ActivityDef<u32, u32> = ActivityDef::new("double");

async fn one_step(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    Ok(ctx.execute_activity(DOUBLE, n, options).await?)
}

async fn double(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    Ok(n * 2)
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(ONE_STEP, one_step)
        .activity(DOUBLE, double)
        .postgres_schema(schema)
        .shard_lease(Duration::from_secs(2))
}

/// A session of the test's own in `schema`, listening on its channel:
/// the payloads notified come on the receiver.
async fn listen(
    url: &str,
    schema: &str,
) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(note) = message {
                let _ = tx.send(note.payload().to_string());
            }
        }
    });
    client
        .batch_execute(&format!("SET search_path TO {schema}; LISTEN {schema}"))
        .await
        .expect("listen");
    (client, rx)
}

/// A workflow ID whose shard `owner` holds.
async fn id_owned_by(c: &tokio_postgres::Client, owner: uuid::Uuid) -> String {
    for i in 0.. {
        let id = format!("tell-{i}");
        let held: Option<uuid::Uuid> = c
            .query_one(
                "SELECT owner FROM shards WHERE shard_id = $1",
                &[&shard_of(&id)],
            )
            .await
            .expect("owner")
            .get(0);
        if held == Some(owner) {
            return id;
        }
    }
    unreachable!("some ID falls in a shard of every member")
}

/// Waits until every one of `wants` has accepted a payload notified (in
/// any order); answers the payloads each accepted first.
async fn payloads(
    rx: &mut mpsc::UnboundedReceiver<String>,
    wants: &[&dyn Fn(&str) -> bool],
) -> Vec<String> {
    let mut found: Vec<Option<String>> = wants.iter().map(|_| None).collect();
    tokio::time::timeout(Duration::from_secs(30), async {
        while found.iter().any(Option::is_none) {
            let got = rx.recv().await.expect("the listening session ended");
            for (want, slot) in wants.iter().zip(found.iter_mut()) {
                if slot.is_none() && want(&got) {
                    *slot = Some(got.clone());
                }
            }
        }
    })
    .await
    .expect("every payload is notified");
    found.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_and_a_close_for_another_process_are_told_on_the_schemas_channel() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("tell");
    let first = builder(&schema).postgres(&url).await.expect("open first");
    let (c, mut notes) = listen(&url, &schema).await;
    // The first member alone owns every shard: its ID is the only owner.
    let me: uuid::Uuid = c
        .query_one("SELECT owner FROM shards LIMIT 1", &[])
        .await
        .expect("owner")
        .get(0);
    let second = builder(&schema).postgres(&url).await.expect("open second");
    split(&c).await;
    let id = id_owned_by(&c, me).await;
    let shard = shard_of(&id);
    // Started in the second, for a run of the first's shard.
    let handle = second
        .start_workflow(ONE_STEP, id.as_str(), 21, WorkflowOptions::default())
        .await
        .expect("start");
    // The first runs it and closes it; the second's result answers.
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the result comes")
        .expect("result");
    assert_eq!(result, 42);
    let hex = handle.run_id().as_uuid().simple().to_string();
    let shard = shard.to_string();
    let hinted = |p: &str| p == shard;
    let closed = |p: &str| {
        p.strip_prefix('c')
            .is_some_and(|ids| ids.split(',').any(|i| i == hex))
    };
    payloads(&mut notes, &[&hinted, &closed]).await;
    first.shutdown().await.expect("shutdown first");
    second.shutdown().await.expect("shutdown second");
}
