//! Promise: files written by store format 6 keep opening and running, and
//! format-5 files are opened as the current format.
//!
//! Format 6 keeps format 5's tables and event kinds; event records are
//! version 2, whose `Failure` carries `details` and `retry_state` (version-1
//! records of older formats keep decoding). `tests/fixtures/format-6.steadfast`
//! was written once, by the build that introduced format 6, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v6 -- --ignored
//! write_format_6_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format6-failed` | `Format6.Charge` | Failed: `format6.charge` failed non-retryably (`CardDeclined`, details `{"code": 51}`, retry state `NonRetryableFailure`); the workflow failed with `PaymentFailed`, the same details, retry state `RetryPolicyNotSet` |
//! | `format6-retrying` | `Format6.Charge` | Running: `format6.charge` failed on attempt 1 (`Busy`, details `{"code": 1}`, retry state `InProgress`), its retry due 2 s later; it succeeds on attempt 2 |

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind,
    ResultError, RetryPolicy, RetryState, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{assert_history_well_formed, failed_events};

const FIXTURE: &str = "tests/fixtures/format-6.steadfast";
const FORMAT_5_FIXTURE: &str = "tests/fixtures/format-5.steadfast";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Code {
    code: u32,
}

/// `true`: fail for good; `false`: fail attempt 1, succeed on attempt 2.
const CHARGE: WorkflowDef<bool, String> = WorkflowDef::new("Format6.Charge");
const CHARGE_CARD: ActivityDef<bool, String> = ActivityDef::new("format6.charge");

async fn charge(ctx: WorkflowContext, for_good: bool) -> Result<String, WorkflowError> {
    let policy = RetryPolicy::default().with_initial_interval(Duration::from_secs(2));
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(policy);
    match ctx.execute_activity(CHARGE_CARD, for_good, options).await {
        Ok(value) => Ok(value),
        Err(failure) => {
            let code: Code = failure.details()?.unwrap_or(Code { code: 0 });
            Err(WorkflowError::new("the payment failed")
                .with_type("PaymentFailed")
                .with_details(code))
        }
    }
}

async fn charge_card(ctx: ActivityContext, for_good: bool) -> Result<String, ActivityError> {
    if for_good {
        return Err(ActivityError::non_retryable("declined")
            .with_type("CardDeclined")
            .with_details(Code { code: 51 }));
    }
    if ctx.attempt() == 1 {
        return Err(ActivityError::retryable("busy")
            .with_type("Busy")
            .with_details(Code { code: 1 }));
    }
    Ok(format!("charged on attempt {}", ctx.attempt()))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CHARGE, charge)
        .activity(CHARGE_CARD, charge_card)
}

/// Writes `tests/fixtures/format-6.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_6_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let failed = engine
        .start_workflow(CHARGE, "format6-failed", true, WorkflowOptions::new())
        .await
        .unwrap();
    assert!(failed.result().await.is_err());
    engine
        .start_workflow(CHARGE, "format6-retrying", false, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("format6-retrying").await.unwrap();
        d.pending_activities
            .first()
            .and_then(|p| p.last_failure.clone())
            .map(|_| ())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_6_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 6);
    let engine = builder().open(&db.path).await.unwrap();

    // The failed run: both failures keep their type, details and state.
    let history = engine.history("format6-failed").await.unwrap();
    assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.error_type, "CardDeclined");
    assert_eq!(
        failed[0].failure.retry_state,
        RetryState::NonRetryableFailure
    );
    assert_eq!(
        failed[0].failure.details::<Code>().unwrap(),
        Some(Code { code: 51 })
    );
    let handle = engine
        .get_workflow_handle(CHARGE, "format6-failed")
        .await
        .unwrap();
    match handle.result().await {
        Err(ResultError::Failed { failure, .. }) => {
            assert_eq!(failure.error_type, "PaymentFailed");
            assert_eq!(failure.retry_state, RetryState::RetryPolicyNotSet);
            assert_eq!(failure.details::<Code>().unwrap(), Some(Code { code: 51 }));
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    // The retrying run shows its last failure, then retries and completes.
    let running = engine.describe("format6-retrying").await.unwrap();
    if running.status == WorkflowStatus::Running
        && let Some(pending) = running.pending_activities.first()
    {
        let last = pending.last_failure.as_ref().expect("a failed attempt");
        assert_eq!(last.retry_state, RetryState::InProgress);
        assert_eq!(last.details::<Code>().unwrap(), Some(Code { code: 1 }));
    }
    let handle = engine
        .get_workflow_handle(CHARGE, "format6-retrying")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "charged on attempt 2");
    let history = engine.history("format6-retrying").await.unwrap();
    assert_history_well_formed(&history);
    assert!(matches!(
        history.last().unwrap().kind,
        EventKind::WorkflowCompleted { .. }
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_5_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_5_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 5);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine
            .describe("format5-closed-chain")
            .await
            .unwrap()
            .status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
