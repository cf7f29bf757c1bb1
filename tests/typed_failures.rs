//! Promise: when an activity's retries end, the workflow gets an
//! `ActivityFailure` that says why (Temporal's retry state: maximum attempts
//! reached, non-retryable failure, timeout), the activity's own error type,
//! and its typed details (`ActivityError::with_details`, read back with
//! `details::<T>()`, a typed error for another type); a workflow's own typed
//! error and details reach `result()` at the client the same way. Both are
//! in history (store format 6), survive a reopen and replay.

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind, Replayer,
    ResultError, RetryPolicy, RetryState, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::{failed_events, temp_db};

/// The typed details of a declined charge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Declined {
    code: u32,
    reason: String,
}

/// How the activity fails.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Mode {
    /// Retryable, every attempt: the policy's attempts run out.
    Always,
    /// `ActivityError::non_retryable`.
    NonRetryable,
    /// A type the policy lists as non-retryable.
    ListedType,
    /// Sleeps past its schedule-to-close timeout.
    Slow,
    /// Details of a size over the engine's payload limit.
    HugeDetails,
}

const CHARGE: ActivityDef<Mode, String> = ActivityDef::new("typed.charge");

/// What the workflow saw of the failure.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Seen {
    attempt: u32,
    retry_state: Option<RetryState>,
    error_type: Option<String>,
    message: String,
    details: Option<Declined>,
    /// Whether reading the details as another type was an error.
    wrong_type_refused: bool,
}

const PAY: WorkflowDef<Mode, Seen> = WorkflowDef::new("Typed.Pay");

async fn charge(ctx: steadfast::ActivityContext, mode: Mode) -> Result<String, ActivityError> {
    let declined = Declined {
        code: 51,
        reason: format!("attempt {}", ctx.attempt()),
    };
    match mode {
        Mode::Always => Err(ActivityError::retryable("declined")
            .with_type("CardDeclined")
            .with_details(declined)),
        Mode::NonRetryable => Err(ActivityError::non_retryable("stolen card")
            .with_type("CardStolen")
            .with_details(declined)),
        Mode::ListedType => Err(ActivityError::retryable("expired")
            .with_type("CardExpired")
            .with_details(declined)),
        Mode::Slow => {
            ctx.sleep(Duration::from_secs(30)).await;
            Ok("late".into())
        }
        Mode::HugeDetails => {
            Err(ActivityError::non_retryable("too much").with_details("x".repeat(4096)))
        }
    }
}

async fn pay(ctx: WorkflowContext, mode: Mode) -> Result<Seen, WorkflowError> {
    let policy = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(5))
        .with_maximum_interval(Duration::from_millis(10))
        .with_maximum_attempts(3)
        .with_non_retryable_error_type("CardExpired");
    let options = match mode {
        Mode::Slow => ActivityOptions::schedule_to_close(Duration::from_millis(300)),
        _ => ActivityOptions::start_to_close(Duration::from_secs(10)),
    }
    .with_retry_policy(policy);
    let failure = match ctx.execute_activity(CHARGE, mode, options).await {
        Ok(value) => return Err(WorkflowError::new(format!("unexpected success {value}"))),
        Err(failure) => failure,
    };
    let attempt = match &failure {
        steadfast::ActivityFailure::Failed { attempt, .. } => *attempt,
        _ => 0,
    };
    Ok(Seen {
        attempt,
        retry_state: failure.retry_state(),
        error_type: failure.error_type().map(str::to_string),
        message: failure
            .failure()
            .map(|f| f.message.clone())
            .unwrap_or_default(),
        details: failure.details::<Declined>().ok().flatten(),
        wrong_type_refused: failure.details::<Vec<bool>>().is_err(),
    })
}

/// A workflow that fails with its own typed error and details.
const REJECT: WorkflowDef<u32, ()> = WorkflowDef::new("Typed.Reject");

async fn reject(_ctx: WorkflowContext, code: u32) -> Result<(), WorkflowError> {
    Err(WorkflowError::new("order rejected")
        .with_type("OrderRejected")
        .with_details(Declined {
            code,
            reason: "out of stock".into(),
        }))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(PAY, pay)
        .workflow(REJECT, reject)
        .activity(CHARGE, charge)
        .max_payload_bytes(1024)
}

async fn run(engine: &Engine, id: &str, mode: Mode) -> Seen {
    engine
        .start_workflow(PAY, id, mode, WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_that_run_out_say_so_with_the_type_and_typed_details() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let seen = run(&engine, "typed-always", Mode::Always).await;
    assert_eq!(
        seen,
        Seen {
            attempt: 3,
            retry_state: Some(RetryState::MaximumAttemptsReached),
            error_type: Some("CardDeclined".into()),
            message: "declined".into(),
            details: Some(Declined {
                code: 51,
                reason: "attempt 3".into(),
            }),
            wrong_type_refused: true,
        }
    );
    // Every attempt's failure is in history with its details; the retried
    // ones are in progress.
    let history = engine.history("typed-always").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    let states: Vec<RetryState> = failed.iter().map(|f| f.failure.retry_state).collect();
    assert_eq!(
        states,
        [
            RetryState::InProgress,
            RetryState::InProgress,
            RetryState::MaximumAttemptsReached
        ]
    );
    let first: Declined = failed[0].failure.details().unwrap().unwrap();
    assert_eq!(first.reason, "attempt 1");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_failures_and_timeouts_have_their_retry_state() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let seen = run(&engine, "typed-non-retryable", Mode::NonRetryable).await;
    assert_eq!(seen.attempt, 1);
    assert_eq!(seen.retry_state, Some(RetryState::NonRetryableFailure));
    assert_eq!(seen.error_type.as_deref(), Some("CardStolen"));
    assert_eq!(seen.details.unwrap().code, 51);

    // A type the policy names as non-retryable.
    let seen = run(&engine, "typed-listed", Mode::ListedType).await;
    assert_eq!(seen.attempt, 1);
    assert_eq!(seen.retry_state, Some(RetryState::NonRetryableFailure));
    assert_eq!(seen.error_type.as_deref(), Some("CardExpired"));

    // The schedule-to-close timeout ends retries.
    let seen = run(&engine, "typed-slow", Mode::Slow).await;
    assert_eq!(seen.retry_state, Some(RetryState::Timeout));
    assert_eq!(seen.error_type.as_deref(), Some("ScheduleToCloseTimeout"));
    assert_eq!(seen.details, None);
    assert!(
        !seen.wrong_type_refused,
        "no details: Ok(None) for any type"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_over_the_payload_limit_are_left_out_and_the_message_says_so() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let seen = run(&engine, "typed-huge", Mode::HugeDetails).await;
    assert_eq!(seen.retry_state, Some(RetryState::NonRetryableFailure));
    assert_eq!(seen.details, None);
    assert!(
        seen.message.contains("details were left out") && seen.message.contains("1024"),
        "{}",
        seen.message
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_typed_error_and_details_reach_the_client_and_survive_a_reopen() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let handle = engine
        .start_workflow(REJECT, "typed-reject", 7, WorkflowOptions::new())
        .await
        .unwrap();
    let check = |result: Result<(), ResultError>| match result {
        Err(ResultError::Failed { failure, .. }) => {
            assert_eq!(failure.error_type, "OrderRejected");
            assert_eq!(failure.message, "order rejected");
            assert_eq!(failure.retry_state, RetryState::RetryPolicyNotSet);
            let details: Declined = failure.details().unwrap().unwrap();
            assert_eq!(details.code, 7);
            assert!(
                failure.details::<u64>().is_err(),
                "another type is an error"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    };
    check(handle.result().await);
    engine.shutdown().await.unwrap();

    let engine = builder().open(&db.path).await.unwrap();
    let handle = engine
        .get_workflow_handle(REJECT, "typed-reject")
        .await
        .unwrap();
    check(handle.result().await);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_with_details_and_retry_states_replay_and_round_trip_as_json() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    run(&engine, "typed-replay", Mode::Always).await;
    let handle = engine
        .start_workflow(REJECT, "typed-replay-reject", 3, WorkflowOptions::new())
        .await
        .unwrap();
    assert!(handle.result().await.is_err());
    let pay_history = engine.workflow_history("typed-replay").await.unwrap();
    let reject_history = engine
        .workflow_history("typed-replay-reject")
        .await
        .unwrap();
    engine.shutdown().await.unwrap();

    let replayer = Replayer::new().workflow(PAY, pay).workflow(REJECT, reject);
    for history in [&pay_history, &reject_history] {
        let text = history.to_json().unwrap();
        assert!(text.contains("\"retry_state\""), "{text}");
        let read = steadfast::WorkflowHistory::from_json(&text).unwrap();
        assert_eq!(&read, history);
        replayer.replay(&read).unwrap();
    }
    // Code that now attaches other details does not end as history says.
    let changed = Replayer::new().workflow(REJECT, |_ctx: WorkflowContext, _: u32| async {
        Err::<(), _>(
            WorkflowError::new("order rejected")
                .with_type("OrderRejected")
                .with_details("something else"),
        )
    });
    assert!(changed.replay(&reject_history).is_err());
    match &reject_history.events.last().unwrap().kind {
        EventKind::WorkflowFailed { failure } => assert!(failure.details.is_some()),
        other => panic!("{other:?}"),
    }
}
