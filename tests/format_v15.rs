//! Promise: files written by store format 15 keep opening, with their
//! local activities' recorded backoffs (`LocalActivityBackoff`, index 45)
//! read back as written and acted on: a run left waiting out a backoff
//! resumes with its next attempt; a format-14 file is opened as format 15.
//!
//! Format 15 keeps format 14's tables and records and adds one event kind.
//! `tests/fixtures/format-15.steadfast` was written once, by the build that
//! introduced format 15, with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! format_v15 -- --ignored write_format_15_fixture`, and is never
//! regenerated. It holds:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format15-done` | `Format15.Call` | Completed with `"done on attempt 2"`: `LocalActivityBackoff` (attempt 1), then `LocalActivityRecorded` (attempt 2) |
//! | `format15-waiting` | `Format15.Call` | Running: `LocalActivityBackoff` (attempt 1, the next 2 s after it), no attempt 2 yet |

mod support;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, EngineBuilder, EventKind,
    LocalActivityOptions, Replayer, RetryPolicy, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-15.steadfast";
const PATIENCE: Duration = Duration::from_secs(30);

/// Fails its first attempt.
const FLAKY: ActivityDef<(), String> = ActivityDef::new("format15.flaky");
/// Calls `FLAKY` locally with a backoff of `input` ms over a 100 ms
/// threshold.
const CALL: WorkflowDef<u64, String> = WorkflowDef::new("Format15.Call");

async fn call(ctx: WorkflowContext, backoff: u64) -> Result<String, WorkflowError> {
    let policy = RetryPolicy::default().with_initial_interval(Duration::from_millis(backoff));
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(30))
        .with_retry_policy(policy)
        .with_local_retry_threshold(Duration::from_millis(100));
    Ok(ctx.execute_local_activity(FLAKY, (), options).await?)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CALL, call)
        .activity(FLAKY, |ctx: ActivityContext, ()| async move {
            if ctx.attempt() == 1 {
                return Err(ActivityError::retryable("first attempt"));
            }
            Ok(format!("done on attempt {}", ctx.attempt()))
        })
}

fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap_or("").to_string()
        })
        .collect()
}

fn has_backoff(history: &[steadfast::Event]) -> bool {
    history
        .iter()
        .any(|e| matches!(e.kind, EventKind::LocalActivityBackoff { attempt: 1, .. }))
}

/// Writes `tests/fixtures/format-15.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_15_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let done = engine
        .start_workflow(CALL, "format15-done", 300, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(done.result().await.unwrap(), "done on attempt 2");
    engine
        .start_workflow(CALL, "format15-waiting", 2_000, WorkflowOptions::new())
        .await
        .unwrap();
    eventually(PATIENCE, || async {
        has_backoff(&engine.history("format15-waiting").await.ok()?).then_some(())
    })
    .await;
    // Nothing runs during the backoff: the shutdown leaves it as it is.
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_15_files_keep_their_local_backoffs() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 15);
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    let done = reader.history("format15-done").await.unwrap();
    assert_eq!(
        kinds(&done),
        [
            "WorkflowStarted",
            "LocalActivityBackoff",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    let waiting = reader.history("format15-waiting").await.unwrap();
    assert_eq!(kinds(&waiting), ["WorkflowStarted", "LocalActivityBackoff"]);
    reader.shutdown().await.unwrap();

    let engine = builder().open(&db.path).await.unwrap();
    let replayer = Replayer::new().workflow(CALL, call);
    replayer
        .replay(&engine.workflow_history("format15-done").await.unwrap())
        .unwrap();
    // The waiting run's backoff is long over: attempt 2 begins on open.
    let handle = engine
        .get_workflow_handle(CALL, "format15-waiting")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "done on attempt 2");
    let history = engine.history("format15-waiting").await.unwrap();
    support::assert_history_well_formed(&history);
    match &history[2].kind {
        EventKind::LocalActivityRecorded { attempt, .. } => assert_eq!(*attempt, 2),
        other => panic!("{other:?}"),
    }
    replayer
        .replay(&engine.workflow_history("format15-waiting").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_14_file_opens_as_format_15() {
    let db = support::copy_fixture("tests/fixtures/format-14.steadfast");
    assert_eq!(support::stored_format_version(&db.path), 14);
    let engine = Engine::builder()
        .workflow(CALL, call)
        .open(&db.path)
        .await
        .unwrap();
    let d = engine.describe_schedule("format14-nightly").await.unwrap();
    assert!(d.schedule.state.paused);
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        CURRENT_STORE_FORMAT
    );
}
