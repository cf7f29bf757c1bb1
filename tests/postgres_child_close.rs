//! Promise: on a PostgreSQL schema several processes share, a child's
//! close reaches its parent owned by another process even when no message
//! leaves the child's process after the close's commit: the message is
//! written into the parent's inbox by that commit. Here the parent lives
//! in the test's process, in memory all along (never loaded again, so it
//! would not find the close by itself); the child lives in another process
//! (this test binary run again, see `member`), whose every message sent
//! after a commit is refused by the database, and which is killed with
//! SIGKILL as soon as the child's close is committed.

mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use steadfast::{
    ChildWorkflowOptions, Engine, EngineBuilder, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::postgres::shard_of;
use support::{child_report, spawn_crash_child};

/// Starts the child named by its input and returns the child's result.
const PARENT: WorkflowDef<String, u32> = WorkflowDef::new("Parent");
/// Sleeps a while, then returns 7.
const CHILD: WorkflowDef<(), u32> = WorkflowDef::new("Child");

async fn parent(ctx: WorkflowContext, child_id: String) -> Result<u32, WorkflowError> {
    let options = ChildWorkflowOptions::new();
    Ok(ctx
        .execute_child_workflow(CHILD, child_id, (), options)
        .await?)
}

async fn child(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    ctx.sleep(Duration::from_secs(3)).await?;
    Ok(7)
}

const LEASE: Duration = Duration::from_secs(2);

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(PARENT, parent)
        .workflow(CHILD, child)
        .postgres_schema(schema)
        .shard_lease(LEASE)
}

/// The other process: serves until killed (or told to stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member() {
    let Ok(schema) = std::env::var("PGC_SCHEMA") else {
        return;
    };
    let url = support::postgres::url().expect("the parent's cluster");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    child_report("open");
    let stop = PathBuf::from(std::env::var("PGC_STOP").expect("PGC_STOP"));
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_close_reaches_its_parent_in_another_process_when_the_childs_process_dies() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("child_close");
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = dir.path().join("stop");
    let (c, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let engine = builder(&schema).postgres(&url).await.expect("open");
    c.batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search path");
    let here: uuid::Uuid = c
        .query_one("SELECT member_id FROM members", &[])
        .await
        .expect("the test's engine is the only member")
        .get(0);
    let env: Vec<(&str, &OsStr)> = vec![
        (support::postgres::URL_VAR, OsStr::new(&url)),
        ("PGC_SCHEMA", OsStr::new(&schema)),
        ("PGC_STOP", stop.as_os_str()),
    ];
    let mut other = spawn_crash_child("member", &env);
    other
        .wait_for_line(Duration::from_secs(60), |l| l == "open")
        .await;
    // Both hold shards, every one held.
    support::eventually(Duration::from_secs(30), || async {
        let row = c
            .query_one(
                "SELECT count(DISTINCT owner) FILTER (WHERE lease_until > now()), \
                 count(*) FILTER (WHERE owner IS NULL OR lease_until <= now()) FROM shards",
                &[],
            )
            .await
            .expect("owners");
        (row.get::<_, i64>(0) == 2 && row.get::<_, i64>(1) == 0).then_some(())
    })
    .await;
    let owner = |id: String| {
        let c = &c;
        async move {
            c.query_one(
                "SELECT owner FROM shards WHERE shard_id = $1",
                &[&shard_of(&id)],
            )
            .await
            .expect("owner")
            .get::<_, Option<uuid::Uuid>>(0)
        }
    };
    let mut parent_id = None;
    let mut child_id = None;
    for i in 0..1000 {
        let candidate = format!("wf-{i}");
        match owner(candidate.clone()).await {
            Some(o) if o == here && parent_id.is_none() => parent_id = Some(candidate),
            Some(o) if o != here && child_id.is_none() => child_id = Some(candidate),
            _ => {}
        }
    }
    let (parent_id, child_id) = (
        parent_id.expect("an ID of this process's shards"),
        child_id.expect("an ID of the other's"),
    );
    let handle = engine
        .start_workflow(
            PARENT,
            parent_id.as_str(),
            child_id.clone(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start the parent");
    support::eventually(Duration::from_secs(30), || async {
        let rows = c
            .query(
                "SELECT 1 FROM runs WHERE workflow_id = $1 AND status = 0",
                &[&child_id],
            )
            .await
            .expect("child");
        (!rows.is_empty()).then_some(())
    })
    .await;
    // From now on, nothing the other process sends after a commit reaches
    // the database: a request with a sender (a forwarded message) is
    // refused. The close's own commit writes its message without one.
    c.batch_execute(
        "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'messages after commits are cut off'; END $$; \
         CREATE TRIGGER refuse_sent BEFORE INSERT ON inbox FOR EACH ROW \
         WHEN (NEW.sender IS NOT NULL) EXECUTE FUNCTION refuse_sent();",
    )
    .await
    .expect("cut off messages sent after commits");
    // Killed as soon as the child's close is durable.
    support::eventually(Duration::from_secs(30), || async {
        let rows = c
            .query(
                "SELECT 1 FROM runs WHERE workflow_id = $1 AND status = 1",
                &[&child_id],
            )
            .await
            .expect("child");
        (!rows.is_empty()).then_some(())
    })
    .await;
    other.kill();
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the parent learns of its child's close")
        .expect("the parent's result");
    assert_eq!(result, 7);
    let history = engine.history(&parent_id).await.expect("history");
    let closes = history
        .iter()
        .filter(|e| matches!(e.kind, steadfast::EventKind::ChildWorkflowCompleted { .. }))
        .count();
    assert_eq!(
        closes, 1,
        "the child's close is recorded once: {history:#?}"
    );
    engine.shutdown().await.expect("shutdown");
}
