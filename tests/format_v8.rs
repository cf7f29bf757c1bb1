//! Promise: files written by store format 8 keep opening and running, and
//! format-7 files are opened as the current format.
//!
//! Format 8 keeps format 7's tables and record versions and adds the event
//! kind `LocalActivityRecorded` (index 25: a local activity's one event).
//! `tests/fixtures/format-8.steadfast` was written once, by the build that
//! introduced format 8, with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! format_v8 -- --ignored write_format_8_fixture`, and is never
//! regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format8-closed` | `Format8.Local` | Completed with `["HELLO", "failed"]`: `LocalActivityRecorded` seq 1 (`format8.upper`, attempt 2, `"HELLO"`), then waited for `format8.go`, then seq 3 failed for good (`Broken`, `NonRetryableFailure`) |
//! | `format8-running` | `Format8.Local` | Running: `LocalActivityRecorded` seq 1 (`"HELLO"`), waiting for `format8.go` |

mod support;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, EngineBuilder, EventKind,
    LocalActivityOptions, RetryPolicy, RetryState, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-8.steadfast";
const FORMAT_7_FIXTURE: &str = "tests/fixtures/format-7.steadfast";

const LOCAL: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Format8.Local");
/// Fails its first attempt, then upper-cases; `"!"` fails for good.
const UPPER: ActivityDef<String, String> = ActivityDef::new("format8.upper");
const GO: SignalDef<()> = SignalDef::new("format8.go");

async fn local(ctx: WorkflowContext, (): ()) -> Result<Vec<String>, WorkflowError> {
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(5))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(10)));
    let first = ctx
        .execute_local_activity(UPPER, "hello".into(), options.clone())
        .await?;
    ctx.recv_signal(GO).await?;
    let second = match ctx.execute_local_activity(UPPER, "!".into(), options).await {
        Ok(value) => value,
        Err(_) => "failed".to_string(),
    };
    Ok(vec![first, second])
}

async fn upper(ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
    if text == "!" {
        return Err(ActivityError::non_retryable("no").with_type("Broken"));
    }
    if ctx.attempt() == 1 {
        return Err(ActivityError::retryable("warming up"));
    }
    Ok(text.to_uppercase())
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(LOCAL, local)
        .activity(UPPER, upper)
}

/// Writes `tests/fixtures/format-8.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_8_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let closed = engine
        .start_workflow(LOCAL, "format8-closed", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("format8-closed", GO, ()).await.unwrap();
    assert_eq!(closed.result().await.unwrap(), ["HELLO", "failed"]);
    engine
        .start_workflow(LOCAL, "format8-running", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("format8-running").await.unwrap();
        (history.len() == 2).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_8_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 8);
    let engine = builder().open(&db.path).await.unwrap();

    let history = engine.history("format8-closed").await.unwrap();
    assert_history_well_formed(&history);
    let recorded: Vec<&EventKind> = history
        .iter()
        .map(|e| &e.kind)
        .filter(|k| matches!(k, EventKind::LocalActivityRecorded { .. }))
        .collect();
    assert_eq!(recorded.len(), 2);
    match recorded[0] {
        EventKind::LocalActivityRecorded {
            seq: 1,
            attempt: 2,
            result: Ok(value),
            ..
        } => assert_eq!(value.decode::<String>().unwrap(), "HELLO"),
        other => panic!("{other:?}"),
    }
    match recorded[1] {
        EventKind::LocalActivityRecorded {
            result: Err(failure),
            ..
        } => assert_eq!(failure.retry_state, RetryState::NonRetryableFailure),
        other => panic!("{other:?}"),
    }
    let closed = engine
        .get_workflow_handle(LOCAL, "format8-closed")
        .await
        .unwrap();
    assert_eq!(closed.result().await.unwrap(), ["HELLO", "failed"]);

    // The running run replays its recorded local activity and goes on.
    engine.signal("format8-running", GO, ()).await.unwrap();
    let running = engine
        .get_workflow_handle(LOCAL, "format8-running")
        .await
        .unwrap();
    assert_eq!(running.result().await.unwrap(), ["HELLO", "failed"]);
    assert_history_well_formed(&engine.history("format8-running").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_7_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_7_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 7);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine.describe("format7-closed").await.unwrap().status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
