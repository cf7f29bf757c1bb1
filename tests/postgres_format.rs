//! Promise: a process on a PostgreSQL schema whose store format a process
//! of a newer build raised after it opened (the newer one's histories may
//! hold events this build cannot read) takes no shard over: it gives back
//! the shards it holds and leaves the members at its next lease round,
//! acquires none after, and refuses every write with
//! `ClientError::NewerFormat`; the runs it held are the newer processes'
//! to advance.

mod support;

use std::time::Duration;

use steadfast::{
    ClientError, Engine, EngineBuilder, OpenError, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};

const GO: SignalDef<()> = SignalDef::new("go");
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

const LEASE: Duration = Duration::from_secs(1);

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(WAITER, waiter)
        .postgres_schema(schema)
        .shard_lease(LEASE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_format_raised_after_open_makes_this_process_give_up_its_shards() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("newer_format");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    engine
        .start_workflow(WAITER, "held", (), WorkflowOptions::default())
        .await
        .expect("start");
    let (c, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    c.batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search path");
    let ours: u32 = c
        .query_one("SELECT value FROM meta WHERE key = 'format_version'", &[])
        .await
        .expect("format")
        .get::<_, String>(0)
        .parse()
        .expect("a number");
    let owned = "SELECT count(*) FROM shards WHERE owner IS NOT NULL AND lease_until > now()";
    let held: i64 = c.query_one(owned, &[]).await.expect("owned").get(0);
    assert_eq!(held, 64, "the only process holds every shard");

    // A process of a newer build opens the schema: it raises the format.
    c.execute(
        "UPDATE meta SET value = $1 WHERE key = 'format_version'",
        &[&(ours + 1).to_string()],
    )
    .await
    .expect("raise the format");

    // At its next round this process gives every shard back and leaves.
    support::eventually(Duration::from_secs(30), || async {
        let held: i64 = c.query_one(owned, &[]).await.expect("owned").get(0);
        let members: i64 = c
            .query_one("SELECT count(*) FROM members", &[])
            .await
            .expect("members")
            .get(0);
        (held == 0 && members == 0).then_some(())
    })
    .await;
    // Every write is refused, with what to do.
    match engine
        .start_workflow(WAITER, "refused", (), WorkflowOptions::default())
        .await
    {
        Err(ClientError::NewerFormat { found, supported }) => {
            assert_eq!((found, supported), (ours + 1, ours));
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    // Free shards are not taken again, round after round.
    tokio::time::sleep(LEASE * 4).await;
    let held: i64 = c.query_one(owned, &[]).await.expect("owned").get(0);
    assert_eq!(held, 0, "a process of an older build took a shard back");
    let run: i16 = c
        .query_one("SELECT status FROM runs WHERE workflow_id = 'held'", &[])
        .await
        .expect("the run")
        .get(0);
    assert_eq!(run, 0, "the run it held is left open for a newer process");
    // And a new open of this build is refused, as before.
    match builder(&schema).postgres(&url).await {
        Err(OpenError::NewerSchema { found, .. }) => assert_eq!(found.1, ours + 1),
        other => panic!("expected NewerSchema, got {:?}", other.map(|_| ())),
    }
    engine.shutdown().await.expect("shutdown");
}
