//! Promise: files written by store format 7 keep opening and running, and
//! format-6 files are opened as the current format.
//!
//! Format 7 keeps format 6's tables and record versions and adds the event
//! kind `ActivityCancelRequested` (index 24: the workflow cancelled one
//! activity). `tests/fixtures/format-7.steadfast` was written once, by the
//! build that introduced format 7, with `STEADFAST_WRITE_FIXTURES=1 cargo
//! test --test format_v7 -- --ignored write_format_7_fixture`, and is never
//! regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format7-closed` | `Format7.Cancel` | Completed with `"cancelled"`: `format7.wait` cancelled while its retry waited (`ActivityCancelRequested`, then `ActivityFailed` of type `ActivityCancelled`, `CancelRequested`) |
//! | `format7-running` | `Format7.Cancel` | Running: `format7.wait` cancelled (wait-cancellation-completed) while its attempt ran; the attempt did not look, and the code waits for its end |

mod support;

use std::time::Duration;

use steadfast::{
    ActivityCancellationType, ActivityContext, ActivityDef, ActivityError, ActivityFailure,
    ActivityOptions, Engine, EngineBuilder, EventKind, RetryPolicy, RetryState, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{assert_history_well_formed, failed_events};

const FIXTURE: &str = "tests/fixtures/format-7.steadfast";
const FORMAT_6_FIXTURE: &str = "tests/fixtures/format-6.steadfast";

/// `true`: the activity fails (its retry waits an hour); `false`: it
/// works for a minute without looking at cancellation.
const CANCEL: WorkflowDef<bool, String> = WorkflowDef::new("Format7.Cancel");
const WAIT: ActivityDef<bool, String> = ActivityDef::new("format7.wait");

async fn cancel(ctx: WorkflowContext, fails: bool) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(120))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_secs(3600)))
        .with_cancellation_type(ActivityCancellationType::WaitCancellationCompleted);
    let mut activity = ctx.execute_activity(WAIT, fails, options);
    ctx.sleep(Duration::from_millis(200)).await?;
    activity.cancel();
    match activity.await {
        Ok(value) => Ok(value),
        Err(ActivityFailure::Cancelled { .. }) => Ok("cancelled".into()),
        Err(other) => Err(other.into()),
    }
}

async fn wait(_ctx: ActivityContext, fails: bool) -> Result<String, ActivityError> {
    if fails {
        return Err(ActivityError::retryable("not yet"));
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok("worked a minute".into())
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CANCEL, cancel)
        .activity(WAIT, wait)
}

/// Writes `tests/fixtures/format-7.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_7_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let closed = engine
        .start_workflow(CANCEL, "format7-closed", true, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(closed.result().await.unwrap(), "cancelled");
    engine
        .start_workflow(CANCEL, "format7-running", false, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("format7-running").await.unwrap();
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCancelRequested { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_7_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 7);
    let engine = builder().open(&db.path).await.unwrap();

    let history = engine.history("format7-closed").await.unwrap();
    assert_history_well_formed(&history);
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCancelRequested { seq: 1 }))
    );
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1].failure.error_type, "ActivityCancelled");
    assert_eq!(failed[1].failure.retry_state, RetryState::CancelRequested);
    let closed = engine
        .get_workflow_handle(CANCEL, "format7-closed")
        .await
        .unwrap();
    assert_eq!(closed.result().await.unwrap(), "cancelled");

    // The attempt the shutdown cut off counts as failed; a cancelled
    // activity is not retried, so the code sees the cancellation.
    let described = engine.describe("format7-running").await.unwrap();
    if described.status == WorkflowStatus::Running
        && let Some(pending) = described.pending_activities.first()
    {
        assert!(pending.cancel_requested);
    }
    let running = engine
        .get_workflow_handle(CANCEL, "format7-running")
        .await
        .unwrap();
    assert_eq!(running.result().await.unwrap(), "cancelled");
    let history = engine.history("format7-running").await.unwrap();
    assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(
        failed.last().unwrap().failure.retry_state,
        RetryState::CancelRequested
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_6_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_6_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 6);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine.describe("format6-failed").await.unwrap().status,
        WorkflowStatus::Failed
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
