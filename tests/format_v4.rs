//! Promise: files written by store format 4 keep opening and running, and
//! format-2 and format-3 files are opened as format 4.
//!
//! Format 4 keeps format 3's tables and adds the event kind
//! `ActivityAttemptWaiting` (index 21): an attempt that could not begin at
//! once, because its task queue had no free slot or no worker.
//! `tests/fixtures/format-4.steadfast` was written once, by the build that
//! introduced format 4, with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! format_v4 -- --ignored write_format_4_fixture`, and is never regenerated.
//! Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format4-closed-after-waiting` | `Format4.Pair` | Completed: two `format4.greet` activities on the one-slot queue `format4-narrow`; the second waited (`ActivityAttemptWaiting`), then began (`ActivityAttemptStarted`, attempt 1) and completed |
//! | `format4-running-waiting` | `Format4.One` | Running: one `format4.greet` on queue `format4-unserved`, which no worker served, waiting (`ActivityAttemptWaiting`, attempt 1, never begun) |

mod support;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, Event,
    EventKind, Worker, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-4.steadfast";
const FORMAT_2_FIXTURE: &str = "tests/fixtures/format-2.steadfast";
const FORMAT_3_FIXTURE: &str = "tests/fixtures/format-3.steadfast";

const PAIR: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Format4.Pair");
const ONE: WorkflowDef<(), String> = WorkflowDef::new("Format4.One");
/// Returns `hello NAME on attempt N`.
const GREET: ActivityDef<String, String> = ActivityDef::new("format4.greet");

const NARROW: &str = "format4-narrow";
const UNSERVED: &str = "format4-unserved";

fn on(task_queue: &str) -> ActivityOptions {
    ActivityOptions::start_to_close(std::time::Duration::from_secs(60)).with_task_queue(task_queue)
}

async fn pair(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let a = ctx.execute_activity(GREET, "a".to_string(), on(NARROW));
    let b = ctx.execute_activity(GREET, "b".to_string(), on(NARROW));
    let (a, b) = futures::join!(a, b);
    Ok(vec![a?, b?])
}

async fn one(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    Ok(ctx
        .execute_activity(GREET, "c".to_string(), on(UNSERVED))
        .await?)
}

async fn greet(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("hello {name} on attempt {}", ctx.attempt()))
}

/// The workflows on the default queue, `greet` on the one-slot queue, and
/// on `format4-unserved` when `serve_unserved`.
fn builder(serve_unserved: bool) -> EngineBuilder {
    let builder = Engine::builder()
        .workflow(PAIR, pair)
        .workflow(ONE, one)
        .worker(
            Worker::new(NARROW)
                .activity(GREET, greet)
                .max_concurrent_activities(1),
        );
    if serve_unserved {
        builder.worker(Worker::new(UNSERVED).activity(GREET, greet))
    } else {
        builder
    }
}

/// Writes `tests/fixtures/format-4.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_4_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder(false).open(&db.path).await.unwrap();
    let run = engine
        .start_workflow(
            PAIR,
            "format4-closed-after-waiting",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    run.result().await.unwrap();
    engine
        .start_workflow(ONE, "format4-running-waiting", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

fn kinds(history: &[Event]) -> Vec<&EventKind> {
    history.iter().map(|e| &e.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_4_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 4);
    let engine = builder(true).open(&db.path).await.unwrap();

    let history = engine
        .history("format4-closed-after-waiting")
        .await
        .unwrap();
    assert_history_well_formed(&history);
    let closed = kinds(&history);
    let waited = closed
        .iter()
        .position(|k| matches!(k, EventKind::ActivityAttemptWaiting { seq: 2, attempt: 1 }))
        .expect("the second activity waited for the slot");
    let began = closed
        .iter()
        .position(|k| matches!(k, EventKind::ActivityAttemptStarted { seq: 2, attempt: 1 }))
        .expect("then it began");
    assert!(waited < began);
    let pair = engine
        .get_workflow_handle(PAIR, "format4-closed-after-waiting")
        .await
        .unwrap();
    assert_eq!(
        pair.result().await.unwrap(),
        ["hello a on attempt 1", "hello b on attempt 1"]
    );

    // The attempt that waited for a worker never began: with a worker now,
    // it runs as attempt 1.
    let one = engine
        .get_workflow_handle(ONE, "format4-running-waiting")
        .await
        .unwrap();
    assert_eq!(one.result().await.unwrap(), "hello c on attempt 1");
    let history = engine.history("format4-running-waiting").await.unwrap();
    assert_history_well_formed(&history);
    let resumed = kinds(&history);
    assert!(
        resumed
            .iter()
            .all(|k| !matches!(k, EventKind::ActivityFailed { .. })),
        "{history:#?}"
    );
    let waited = resumed
        .iter()
        .position(|k| matches!(k, EventKind::ActivityAttemptWaiting { seq: 1, attempt: 1 }));
    let began = resumed
        .iter()
        .position(|k| matches!(k, EventKind::ActivityAttemptStarted { seq: 1, attempt: 1 }));
    assert!(
        matches!((waited, began), (Some(w), Some(b)) if w < b),
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_2_and_format_3_files_are_opened_as_the_current_format() {
    for (fixture, version, workflow_id) in [
        (FORMAT_2_FIXTURE, 2, "format2-closed-upserted"),
        (FORMAT_3_FIXTURE, 3, "format3-closed-unread"),
    ] {
        let db = support::copy_fixture(fixture);
        assert_eq!(support::stored_format_version(&db.path), version);
        let engine = Engine::builder().open(&db.path).await.unwrap();
        assert_eq!(
            engine.describe(workflow_id).await.unwrap().status,
            steadfast::WorkflowStatus::Completed,
            "{fixture}"
        );
        engine.shutdown().await.unwrap();
        assert_eq!(
            support::stored_format_version(&db.path),
            support::CURRENT_STORE_FORMAT,
            "{fixture}"
        );
    }
}
