//! Promise: engines sharing a PostgreSQL schema race without breaking the
//! rules one engine keeps: two starts of the same new workflow ID at the
//! same moment, from two engines, start one run; the other start is
//! refused with `ClientError::AlreadyStarted` naming that run; a shard
//! locked by a stopped transaction of another process does not stall the
//! renewal of the leases of the process that would take it; an inbox
//! request its owner cannot decode is answered with a failure; a child
//! start racing another starter of the same new workflow ID is recorded in
//! the parent as `StartChildWorkflowFailed` naming the other's run (as on
//! a redb file), and fails nothing else of the parent's step.

mod support;

use std::time::Duration;

use steadfast::{
    ChildWorkflowError, ChildWorkflowOptions, ClientError, Engine, EngineBuilder,
    ParentClosePolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

const GO: SignalDef<()> = SignalDef::new("go");
/// Waits for a signal: stays running for the whole test.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

/// Waits for `GO`, then starts a child named by its input and answers
/// how that went.
const SPAWNER: WorkflowDef<String, String> = WorkflowDef::new("Spawner");

async fn spawner(ctx: WorkflowContext, child_id: String) -> Result<String, WorkflowError> {
    ctx.recv_signal(GO).await?;
    let options = ChildWorkflowOptions::new().with_parent_close_policy(ParentClosePolicy::Abandon);
    match ctx
        .start_child_workflow(WAITER, child_id, (), options)
        .await
    {
        Ok(_) => Ok("started".into()),
        Err(ChildWorkflowError::AlreadyStarted { run_id, .. }) => Ok(format!("running {run_id}")),
        Err(other) => Ok(format!("other {other}")),
    }
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(WAITER, waiter)
        .workflow(SPAWNER, spawner)
        .postgres_schema(schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_starting_one_new_workflow_id_at_once_start_one_run() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("start_race");
    let first = builder(&schema).postgres(&url).await.expect("open");
    let second = builder(&schema)
        .postgres(&url)
        .await
        .expect("open a second");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    for i in 0..40 {
        let id = format!("race-{i}");
        let (a, b) = tokio::join!(
            first.start_workflow(WAITER, id.clone(), (), WorkflowOptions::default()),
            second.start_workflow(WAITER, id.clone(), (), WorkflowOptions::default()),
        );
        let started = match (a, b) {
            (Ok(handle), Err(ClientError::AlreadyStarted { run_id, .. }))
            | (Err(ClientError::AlreadyStarted { run_id, .. }), Ok(handle)) => {
                assert_eq!(run_id, handle.run_id(), "{id}: the refusal names the run");
                handle.run_id()
            }
            (a, b) => panic!(
                "{id}: exactly one start must succeed, the other be refused: {:?} / {:?}",
                a.map(|h| h.run_id()),
                b.map(|h| h.run_id())
            ),
        };
        let runs: Vec<String> = client
            .query(
                &format!("SELECT run_id::text FROM {schema}.runs WHERE workflow_id = $1"),
                &[&id],
            )
            .await
            .expect("runs")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(runs.len(), 1, "{id}: one run stored, not {runs:?}");
        assert_eq!(runs[0], started.to_string(), "{id}");
    }
    first.shutdown().await.expect("shutdown");
    second.shutdown().await.expect("shutdown");
}

/// A paused owner holds its shard's row locked inside a transaction (as
/// every fenced write does until it commits); its lease runs out. The
/// other process cannot take that shard while the lock is held, but its
/// own leases stay renewed: its runs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_locked_by_a_stopped_transaction_does_not_stall_the_survivors_leases() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("locked_shard");
    let lease = Duration::from_secs(1);
    let engine = builder(&schema)
        .shard_lease(lease)
        .postgres(&url)
        .await
        .expect("open");
    let handle = engine
        .start_workflow(WAITER, "survivor", (), WorkflowOptions::default())
        .await
        .expect("start");
    let sql = |url: String| async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    };
    let admin = sql(url.clone()).await;
    let shard: i32 = admin
        .query_one(
            &format!("SELECT shard FROM {schema}.workflows WHERE workflow_id = 'survivor'"),
            &[],
        )
        .await
        .expect("shard")
        .get(0);
    let other = (shard + 1) % 64;
    // Another process owns `other` (its lease runs for a moment) ...
    admin
        .execute(
            &format!(
                "UPDATE {schema}.shards SET owner = gen_random_uuid(), epoch = epoch + 1, \
                 lease_until = now() + interval '500 milliseconds' WHERE shard_id = $1"
            ),
            &[&other],
        )
        .await
        .expect("another owner");
    // ... and stops inside a transaction that has its row locked.
    let paused = sql(url.clone()).await;
    paused.batch_execute("BEGIN").await.expect("begin");
    paused
        .execute(
            &format!("SELECT 1 FROM {schema}.shards WHERE shard_id = $1 FOR SHARE"),
            &[&other],
        )
        .await
        .expect("lock");
    // Past the other's lease and several of the survivor's.
    tokio::time::sleep(lease * 4).await;
    engine
        .signal("survivor", GO, ())
        .await
        .expect("the survivor's signal is written");
    tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the survivor's run goes on")
        .expect("result");
    paused.batch_execute("ROLLBACK").await.expect("rollback");
    engine.shutdown().await.expect("shutdown");
}

/// A request in the inbox that its owner cannot decode (a process of
/// another build sent it) is answered with a failure, so its sender is
/// told instead of waiting for ever.
#[tokio::test]
async fn an_inbox_request_that_does_not_decode_is_answered_with_a_failure() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("bad_request");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // Shard 0 is the engine's (it is the only process); the sender is a
    // process that waits for the answer.
    let request: String = client
        .query_one(
            &format!(
                "INSERT INTO {schema}.inbox (request, shard, workflow_id, run_id, sender, kind, body) \
                 VALUES (gen_random_uuid(), 0, 'w', gen_random_uuid(), gen_random_uuid(), 1, \
                 '\\xdeadbeef'::bytea) RETURNING request::text"
            ),
            &[],
        )
        .await
        .expect("insert")
        .get(0);
    client
        .batch_execute(&format!("NOTIFY {schema}, '0'"))
        .await
        .expect("notify");
    let (c, r, sc) = (&client, &request, &schema);
    support::eventually(Duration::from_secs(20), move || async move {
        c.query_opt(
            &format!("SELECT 1 FROM {sc}.inbox_replies WHERE request::text = $1"),
            &[r],
        )
        .await
        .expect("replies")
        .map(|_| ())
    })
    .await;
    let left = client
        .query_opt(
            &format!("SELECT 1 FROM {schema}.inbox WHERE request::text = $1"),
            &[&request],
        )
        .await
        .expect("inbox");
    assert!(left.is_none(), "the answered request leaves the inbox");
    engine.shutdown().await.expect("shutdown");
}

/// Another starter (a session of the test's own, as another process's
/// `start_run` would) inserts the child's new workflow ID while the
/// parent's step decides its children, and commits once the parent's
/// start of that ID waits for it. The parent records the child start as
/// failed, naming the other's run; the signal that made the step is
/// acknowledged (the step was not failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_start_racing_another_starter_records_start_child_failed() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("child_race");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    let parent = engine
        .start_workflow(
            SPAWNER,
            "parent",
            "kid".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    let (other, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    other
        .batch_execute(&format!("SET search_path TO {schema}; BEGIN"))
        .await
        .expect("begin");
    // The other starter's run of "kid", not committed yet (its shard is
    // the parent's: both are this engine's, the only process).
    let theirs: uuid::Uuid = other
        .query_one(
            "WITH w AS (INSERT INTO workflows (workflow_id, shard, latest_run) \
             SELECT 'kid', shard, gen_random_uuid() FROM workflows WHERE workflow_id = 'parent' \
             RETURNING shard, latest_run) \
             INSERT INTO runs (run_id, workflow_id, shard, workflow_type, status, start_ns, \
             close_ns, list_order, wake, last_event, record) \
             SELECT latest_run, 'kid', shard, 'Waiter', 0, 0, NULL, '\\x00'::bytea, NULL, 0, \
             '\\x00'::bytea FROM w RETURNING run_id",
            &[],
        )
        .await
        .expect("the other starter's run")
        .get(0);
    let signal = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.signal("parent", GO, ()).await })
    };
    // The parent's step waits on the other's uncommitted ID.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let name = format!("steadfast {schema}");
    let (a, n) = (&admin, &name);
    support::eventually(Duration::from_secs(30), move || async move {
        let waiting: i64 = a
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[n],
            )
            .await
            .expect("activity")
            .get(0);
        (waiting > 0).then_some(())
    })
    .await;
    other.batch_execute("COMMIT").await.expect("commit");
    tokio::time::timeout(Duration::from_secs(30), signal)
        .await
        .expect("the signal is answered")
        .expect("the signal task")
        .expect("the signal's step is written, not failed");
    let outcome = tokio::time::timeout(Duration::from_secs(30), parent.result())
        .await
        .expect("the parent completes")
        .expect("result");
    assert_eq!(outcome, format!("running {theirs}"));
    let history = engine.history("parent").await.expect("history");
    assert!(
        history.iter().any(|e| matches!(
            e.kind,
            steadfast::EventKind::StartChildWorkflowFailed { .. }
        )),
        "the parent records the failed start: {history:#?}"
    );
    engine.shutdown().await.expect("shutdown");
}
