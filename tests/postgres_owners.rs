//! Promise: on a PostgreSQL schema several processes share, a run is
//! advanced and judged only by the process that owns its shard:
//! - a start committed by a process whose lease on the shard ran out
//!   unnoticed (paused past it, or taken over) does not run there: its
//!   owner runs it, once;
//! - `describe` from a process that does not own the run gives no verdict
//!   found by replaying with that process's code (which may differ from
//!   the owner's), only what the run's history says;
//! - `terminate` sent from another process terminates a run parked at its
//!   owner without an actor (its records could not be loaded), as a
//!   terminate made at the owner does;
//! - a terminate whose owner made it but left it unanswered (died, or
//!   handed the shard over, before its answer) is delivered again by the
//!   next owner and answered as done, not as a run found closed;
//! - `reset_workflow` from another process is made by the run's owner.
//!
//! Another process is played by a session of the test's own (a member ID
//! nobody runs takes a shard over) or by a second engine on the schema.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, SignalDef,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::postgres::{shard_of, sql};
use support::split;

const GO: SignalDef<()> = SignalDef::new("go");
/// Waits for a signal.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");
/// Runs one activity at once, which counts its attempts.
const EAGER: WorkflowDef<(), u32> = WorkflowDef::new("Eager");
const COUNT: ActivityDef<(), u32> = ActivityDef::new("count");

static COUNTED: AtomicUsize = AtomicUsize::new(0);

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn eager(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    Ok(ctx.execute_activity(COUNT, (), options).await?)
}

async fn count(_ctx: ActivityContext, _: ()) -> Result<u32, ActivityError> {
    Ok(COUNTED.fetch_add(1, Ordering::SeqCst) as u32 + 1)
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(WAITER, waiter)
        .workflow(EAGER, eager)
        .activity(COUNT, count)
        .postgres_schema(schema)
}

/// The member that owns `workflow_id`'s shard.
async fn owner_of(c: &tokio_postgres::Client, workflow_id: &str) -> Option<uuid::Uuid> {
    c.query_one(
        "SELECT owner FROM shards WHERE shard_id = $1",
        &[&shard_of(workflow_id)],
    )
    .await
    .expect("owner")
    .get(0)
}

/// A member nobody runs takes `shard` over for `lease`.
async fn take_over(c: &tokio_postgres::Client, shard: i32, lease: &str) {
    c.execute(
        &format!(
            "UPDATE shards SET owner = gen_random_uuid(), epoch = epoch + 1, \
             lease_until = now() + interval '{lease}' WHERE shard_id = $1"
        ),
        &[&shard],
    )
    .await
    .expect("take the shard over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_in_a_shard_lost_unnoticed_runs_at_its_owner_not_here() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("zombie_start");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    let c = sql(&url, &schema).await;
    // Another member holds the shard for a while: this engine's lease task
    // has not noticed yet (it renews about once a second), so it still
    // believes it owns the shard, as a process paused past its lease does.
    take_over(&c, shard_of("zombie"), "3 seconds").await;
    let handle = engine
        .start_workflow(EAGER, "zombie", (), WorkflowOptions::default())
        .await
        .expect("the start is durable (its owner runs it)");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        COUNTED.load(Ordering::SeqCst),
        0,
        "the run started where its shard was lost ran its activity there"
    );
    // The other's lease runs out: this engine takes the shard and runs the
    // run, once.
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the run completes once its shard is taken back")
        .expect("result");
    assert_eq!(result, 1, "the activity ran once");
    assert_eq!(COUNTED.load(Ordering::SeqCst), 1);
    engine.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_from_a_process_that_does_not_own_the_run_gives_no_verdict_of_its_code() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("remote_describe");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    engine
        .start_workflow(WAITER, "judged", (), WorkflowOptions::default())
        .await
        .expect("start");
    engine.shutdown().await.expect("shutdown");
    let c = sql(&url, &schema).await;
    take_over(&c, shard_of("judged"), "1 minute").await;
    // A process without the workflow's code: replaying there would park
    // the run (no worker serves its queue), which its owner does not.
    let other = Engine::builder()
        .postgres_schema(&schema)
        .postgres(&url)
        .await
        .expect("open without the code");
    let description = other.describe("judged").await.expect("describe");
    assert_eq!(description.status, WorkflowStatus::Running);
    assert_eq!(
        description.parked, None,
        "a process that does not own the run judged it with its own code"
    );
    assert!(!description.task_queue_served);
    // Where it owns the run, its verdict stands.
    c.execute(
        "UPDATE shards SET owner = NULL, lease_until = NULL WHERE shard_id = $1",
        &[&shard_of("judged")],
    )
    .await
    .expect("release");
    let judged = support::eventually(Duration::from_secs(30), || async {
        let description = other.describe("judged").await.expect("describe");
        description.parked
    })
    .await;
    assert!(judged.to_string().contains("no worker serves"), "{judged}");
    other.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_from_another_process_ends_a_run_parked_at_its_owner() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("remote_terminate");
    let ids: Vec<String> = (0..16).map(|i| format!("doomed-{i}")).collect();
    let first = builder(&schema).postgres(&url).await.expect("open");
    for id in &ids {
        first
            .start_workflow(WAITER, id.as_str(), (), WorkflowOptions::default())
            .await
            .expect("start");
    }
    first.shutdown().await.expect("shutdown");
    // Their histories cannot be read any more: loaded, each parks without
    // an actor.
    let c = sql(&url, &schema).await;
    c.execute(
        "UPDATE history SET event = '\\x00'::bytea WHERE event_id = 1",
        &[],
    )
    .await
    .expect("damage the histories");
    let owner = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the owner");
    let owner_member: uuid::Uuid = c
        .query_one("SELECT member_id FROM members", &[])
        .await
        .expect("the owner is the only member")
        .get(0);
    let caller = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the caller");
    split(&c).await;
    let mut remote = 0;
    for id in &ids {
        if owner_of(&c, id).await != Some(owner_member) {
            continue;
        }
        remote += 1;
        caller
            .terminate(id, "parked at its owner")
            .await
            .unwrap_or_else(|e| panic!("terminate {id} from the other process: {e}"));
        let status: i16 = c
            .query_one("SELECT status FROM runs WHERE workflow_id = $1", &[id])
            .await
            .expect("status")
            .get(0);
        assert_eq!(status, 4, "{id} is terminated");
        match caller.terminate(id, "again").await {
            Err(steadfast::ClientError::WorkflowClosed { status, .. }) => {
                assert_eq!(status, WorkflowStatus::Terminated);
            }
            other => panic!("a second terminate of {id}: {other:?}"),
        }
    }
    assert!(remote > 0, "no run stayed with the first process");
    caller.shutdown().await.expect("shutdown");
    owner.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminate_delivered_again_after_its_owner_left_it_unanswered_answers_done() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("redelivered");
    let c = sql(&url, &schema).await;
    let owner = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the owner");
    let owner_member: uuid::Uuid = c
        .query_one("SELECT member_id FROM members", &[])
        .await
        .expect("the owner is the only member")
        .get(0);
    let caller = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the caller");
    split(&c).await;
    let mut id = None;
    for i in 0..1000 {
        let candidate = format!("left-{i}");
        if owner_of(&c, &candidate).await == Some(owner_member) {
            id = Some(candidate);
            break;
        }
    }
    let id = id.expect("an ID of the owner's");
    owner
        .start_workflow(WAITER, id.as_str(), (), WorkflowOptions::default())
        .await
        .expect("start");
    // From now on the owner's answers fail, as if it died between the
    // call's commit and its answer.
    c.batch_execute(
        "CREATE FUNCTION refuse_replies() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'the owner died before answering'; END $$; \
         CREATE TRIGGER refuse_replies BEFORE INSERT ON inbox_replies \
         FOR EACH ROW EXECUTE FUNCTION refuse_replies();",
    )
    .await
    .expect("refuse the answers");
    let terminate = {
        let (caller, id) = (caller.clone(), id.clone());
        tokio::spawn(async move { caller.terminate(&id, "once").await })
    };
    let (cc, idc) = (&c, &id);
    support::eventually(Duration::from_secs(30), move || async move {
        let status: i16 = cc
            .query_one("SELECT status FROM runs WHERE workflow_id = $1", &[idc])
            .await
            .expect("status")
            .get(0);
        let taken: Option<i32> = cc
            .query_opt(
                "SELECT deliveries FROM inbox WHERE workflow_id = $1 AND kind = 1",
                &[idc],
            )
            .await
            .expect("inbox")
            .map(|row| row.get(0));
        (status == 4 && taken == Some(1)).then_some(())
    })
    .await;
    c.batch_execute("DROP TRIGGER refuse_replies ON inbox_replies")
        .await
        .expect("answers again");
    // The owner goes: the caller takes its shards, and the request again.
    owner.shutdown().await.expect("shutdown");
    tokio::time::timeout(Duration::from_secs(60), terminate)
        .await
        .expect("the terminate is answered")
        .expect("the terminate task")
        .expect("the terminate the owner made answers done");
    let history = caller.history(&id).await.expect("history");
    let terminated = history
        .iter()
        .filter(|e| matches!(e.kind, steadfast::EventKind::WorkflowTerminated { .. }))
        .count();
    assert_eq!(terminated, 1, "terminated once: {history:#?}");
    caller.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_from_another_process_is_made_by_the_runs_owner() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("remote_reset");
    let c = sql(&url, &schema).await;
    let owner = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the owner");
    let owner_member: uuid::Uuid = c
        .query_one("SELECT member_id FROM members", &[])
        .await
        .expect("the owner is the only member")
        .get(0);
    let caller = builder(&schema)
        .postgres(&url)
        .await
        .expect("open the caller");
    split(&c).await;
    let mut id = None;
    for i in 0..1000 {
        let candidate = format!("reset-{i}");
        if owner_of(&c, &candidate).await == Some(owner_member) {
            id = Some(candidate);
            break;
        }
    }
    let id = id.expect("an ID of the owner's");
    let first = owner
        .start_workflow(WAITER, id.as_str(), (), WorkflowOptions::default())
        .await
        .expect("start")
        .run_id();
    let options = steadfast::ResetOptions::new(steadfast::ResetTo::FirstWorkflowTask, "again");
    let next = caller
        .reset_workflow(&id, options)
        .await
        .expect("the reset reaches the run's owner");
    assert_ne!(next, first);
    let old = caller.describe_run(&id, first).await.expect("describe");
    assert_eq!(old.status, WorkflowStatus::Terminated);
    assert_eq!(old.reset_to, Some(next));
    let new = caller.describe(&id).await.expect("describe");
    assert_eq!(new.run_id, next);
    assert_eq!(new.status, WorkflowStatus::Running);
    // The new run goes on at its owner.
    caller.signal(&id, GO, ()).await.expect("signal");
    let handle = owner
        .get_workflow_handle(WAITER, id.as_str())
        .await
        .expect("handle");
    tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the new run completes")
        .expect("result");
    caller.shutdown().await.expect("shutdown");
    owner.shutdown().await.expect("shutdown");
}
