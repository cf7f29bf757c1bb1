//! Promise: a failed activity attempt is retried as its `RetryPolicy` says,
//! with Temporal's backoff (`initial_interval × backoff_coefficient^n`, capped
//! at `maximum_interval`), until an attempt succeeds, the attempts run out or
//! the failure is non-retryable; every failed attempt is in the history, and
//! options Temporal would refuse are refused before anything is recorded.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Event, EventKind,
    RetryPolicy, RetryState, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{OpenDb, Seen, TempDb, failed_events, failure, since, temp_db};

/// Succeeds on the attempt named by its input (0: never), failing before.
const FLAKY: ActivityDef<u32, String> = ActivityDef::new("flaky");
/// Calls `FLAKY` once and reports what it saw.
const CALL_FLAKY: WorkflowDef<u32, Seen> = WorkflowDef::new("CallFlaky");

/// Each attempt's number and start time, as the activity saw them.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<(u32, SystemTime)>>>);

impl Attempts {
    fn record(&self, ctx: &ActivityContext) {
        self.0
            .lock()
            .unwrap()
            .push((ctx.attempt(), SystemTime::now()));
    }

    fn numbers(&self) -> Vec<u32> {
        self.0.lock().unwrap().iter().map(|(n, _)| *n).collect()
    }

    fn start_times(&self) -> Vec<SystemTime> {
        self.0.lock().unwrap().iter().map(|(_, t)| *t).collect()
    }
}

/// What the activity does on a failing attempt.
#[derive(Clone, Copy)]
enum FailWith {
    Retryable,
    Typed(&'static str),
    NonRetryable,
    /// A std error converted with `?`.
    ParseError,
}

async fn flaky(
    attempts: Attempts,
    fail_with: FailWith,
    ctx: ActivityContext,
    succeed_on: u32,
) -> Result<String, ActivityError> {
    attempts.record(&ctx);
    let attempt = ctx.attempt();
    if succeed_on != 0 && attempt >= succeed_on {
        return Ok(format!("done on attempt {attempt}"));
    }
    match fail_with {
        FailWith::Retryable => Err(ActivityError::retryable(format!(
            "attempt {attempt} failed"
        ))),
        FailWith::Typed(error_type) => {
            Err(ActivityError::retryable(format!("attempt {attempt} failed")).with_type(error_type))
        }
        FailWith::NonRetryable => Err(ActivityError::non_retryable(format!(
            "attempt {attempt} failed for good"
        ))),
        FailWith::ParseError => {
            let n: u64 = "forty-two".parse()?;
            Ok(n.to_string())
        }
    }
}

/// An engine running `CALL_FLAKY` with `options` for its activity call.
async fn engine(
    db: &TempDb,
    options: ActivityOptions,
    attempts: Attempts,
    fail_with: FailWith,
) -> Engine {
    Engine::builder()
        .workflow(CALL_FLAKY, move |ctx: WorkflowContext, succeed_on: u32| {
            let options = options.clone();
            async move {
                let result = ctx.execute_activity(FLAKY, succeed_on, options).await;
                Ok::<_, WorkflowError>(Seen::from(result))
            }
        })
        .activity(FLAKY, move |ctx, succeed_on| {
            flaky(attempts.clone(), fail_with, ctx, succeed_on)
        })
        .open_db(&db.path)
        .await
        .expect("open the engine")
}

/// A policy with small intervals, so tests take milliseconds.
fn fast_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(10))
        .with_maximum_interval(Duration::from_millis(20))
}

async fn run(engine: &Engine, workflow_id: &str, succeed_on: u32) -> Seen {
    engine
        .start_workflow(CALL_FLAKY, workflow_id, succeed_on, WorkflowOptions::new())
        .await
        .expect("start the workflow")
        .result()
        .await
        .expect("the workflow completes")
}

/// The attempt numbers of the `ActivityCompleted` events.
fn completed_attempts(history: &[Event]) -> Vec<u32> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityCompleted { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

fn scheduled_count(history: &[Event]) -> usize {
    history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityScheduled { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_is_retried_until_an_attempt_succeeds() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(fast_policy());
    let engine = engine(&db, options, attempts.clone(), FailWith::Retryable).await;

    let seen = run(&engine, "retry-until-success", 4).await;

    assert_eq!(seen, Seen::Value("done on attempt 4".into()));
    assert_eq!(attempts.numbers(), [1, 2, 3, 4]);
    let history = engine.history("retry-until-success").await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(scheduled_count(&history), 1, "retries schedule nothing new");
    let failed = failed_events(&history);
    assert_eq!(
        failed.iter().map(|f| f.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for f in &failed {
        assert_eq!(f.failure.error_type, "ActivityError");
        assert_eq!(
            f.failure.message,
            format!("attempt {} failed", f.attempt),
            "the failure keeps the activity's message"
        );
        assert!(!f.failure.non_retryable);
        let next = f
            .next_attempt_at
            .expect("a retried failure names its next attempt");
        assert!(next >= f.timestamp - Duration::from_millis(1));
    }
    assert_eq!(completed_attempts(&history), [4]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_grows_by_the_coefficient_up_to_the_maximum_interval() {
    let db = temp_db();
    let attempts = Attempts::default();
    let initial = Duration::from_millis(40);
    let maximum = Duration::from_millis(100);
    let policy = RetryPolicy::default()
        .with_initial_interval(initial)
        .with_backoff_coefficient(2.0)
        .with_maximum_interval(maximum);
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(policy);
    let engine = engine(&db, options, attempts.clone(), FailWith::Retryable).await;

    let seen = run(&engine, "backoff", 5).await;
    assert_eq!(seen, Seen::Value("done on attempt 5".into()));

    // 40 ms, then doubled to 80 ms, then capped at 100 ms.
    let expected = [40, 80, 100, 100].map(Duration::from_millis);
    let history = engine.history("backoff").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), expected.len());
    for (f, want) in failed.iter().zip(expected) {
        // The delay the engine chose: computed before the event's timestamp
        // was taken, so at most `want` and only a hair below it.
        let planned = since(f.next_attempt_at.unwrap(), f.timestamp);
        assert!(
            planned <= want + Duration::from_millis(1),
            "attempt {}: planned delay {planned:?} is over the policy's {want:?}",
            f.attempt
        );
        assert!(
            planned >= want.mul_f64(0.9),
            "attempt {}: planned delay {planned:?} is well under the policy's {want:?}",
            f.attempt
        );
    }
    // The delays really were waited: each attempt started at least 90% of
    // its backoff after the previous one.
    let starts = attempts.start_times();
    assert_eq!(starts.len(), 5);
    for (k, want) in expected.iter().enumerate() {
        let gap = since(starts[k + 1], starts[k]);
        assert!(
            gap >= want.mul_f64(0.9),
            "attempt {} started {gap:?} after attempt {}, expected at least 90% of {want:?}",
            k + 2,
            k + 1
        );
        assert!(
            starts[k + 1] + Duration::from_millis(5) >= failed[k].next_attempt_at.unwrap(),
            "attempt {} started before its recorded next_attempt_at",
            k + 2
        );
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_attempts_ends_retries_and_the_workflow_sees_the_last_attempt() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(fast_policy().with_maximum_attempts(3));
    let engine = engine(&db, options, attempts.clone(), FailWith::Retryable).await;

    let seen = run(&engine, "max-attempts", 0).await;

    assert_eq!(
        seen,
        Seen::Failed {
            attempt: 3,
            failure: failure("ActivityError", "attempt 3 failed", false)
                .with_retry_state(RetryState::MaximumAttemptsReached),
        }
    );
    assert_eq!(attempts.numbers(), [1, 2, 3]);
    let history = engine.history("max-attempts").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(
        failed
            .iter()
            .map(|f| (f.attempt, f.next_attempt_at.is_some()))
            .collect::<Vec<_>>(),
        [(1, true), (2, true), (3, false)],
        "the last failure is final: no next attempt"
    );
    assert!(completed_attempts(&history).is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_attempts_one_means_no_retry() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(RetryPolicy::no_retry());
    let engine = engine(&db, options, attempts.clone(), FailWith::Retryable).await;

    let seen = run(&engine, "no-retry", 0).await;

    assert!(matches!(seen, Seen::Failed { attempt: 1, .. }), "{seen:?}");
    assert_eq!(attempts.numbers(), [1]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_type_is_not_retried() {
    let db = temp_db();
    let attempts = Attempts::default();
    // Unlimited attempts: only the error type can end the retries.
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(fast_policy().with_non_retryable_error_type("Fatal"));
    let engine = engine(&db, options, attempts.clone(), FailWith::Typed("Fatal")).await;

    let seen = run(&engine, "fatal-type", 0).await;

    assert_eq!(
        seen,
        Seen::Failed {
            attempt: 1,
            failure: failure("Fatal", "attempt 1 failed", false)
                .with_retry_state(RetryState::NonRetryableFailure),
        }
    );
    assert_eq!(attempts.numbers(), [1]);
    let history = engine.history("fatal-type").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].next_attempt_at, None);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_error_types_are_still_retried_under_a_non_retryable_list() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(fast_policy().with_non_retryable_error_type("Fatal"));
    let engine = engine(&db, options, attempts.clone(), FailWith::Typed("Transient")).await;

    let seen = run(&engine, "transient-type", 3).await;

    assert_eq!(seen, Seen::Value("done on attempt 3".into()));
    assert_eq!(attempts.numbers(), [1, 2, 3]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_error_is_not_retried() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(fast_policy());
    let engine = engine(&db, options, attempts.clone(), FailWith::NonRetryable).await;

    let seen = run(&engine, "non-retryable", 0).await;

    assert_eq!(
        seen,
        Seen::Failed {
            attempt: 1,
            failure: failure("ActivityError", "attempt 1 failed for good", true)
                .with_retry_state(RetryState::NonRetryableFailure),
        }
    );
    assert_eq!(attempts.numbers(), [1]);
    let history = engine.history("non-retryable").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].failure.non_retryable);
    assert_eq!(failed[0].next_attempt_at, None);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_converted_with_question_mark_is_retried() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(fast_policy());
    let engine = engine(&db, options, attempts.clone(), FailWith::ParseError).await;

    let seen = run(&engine, "question-mark", 3).await;

    assert_eq!(seen, Seen::Value("done on attempt 3".into()));
    assert_eq!(attempts.numbers(), [1, 2, 3]);
    let history = engine.history("question-mark").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 2);
    for f in &failed {
        assert_eq!(
            f.failure.error_type, "ParseIntError",
            "the type is the std error's type name"
        );
        assert!(
            f.failure.message.contains("invalid digit"),
            "the message is the std error's: {:?}",
            f.failure.message
        );
        assert!(!f.failure.non_retryable);
        assert!(f.next_attempt_at.is_some());
    }
    engine.shutdown().await.unwrap();
}

#[test]
fn the_default_retry_policy_is_temporals() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.initial_interval, Duration::from_secs(1));
    assert_eq!(policy.backoff_coefficient, 2.0);
    assert_eq!(
        policy.maximum_interval, None,
        "None means 100 × initial_interval"
    );
    assert_eq!(policy.maximum_attempts, 0, "0 means unlimited");
    assert!(policy.non_retryable_error_types.is_empty());

    let options = ActivityOptions::schedule_to_close(Duration::from_secs(5));
    assert_eq!(options.retry_policy, policy);
    assert_eq!(options.start_to_close_timeout, None);
    assert_eq!(RetryPolicy::no_retry().maximum_attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_maximum_interval_is_100_times_the_initial_interval() {
    let db = temp_db();
    let attempts = Attempts::default();
    // No maximum_interval and a coefficient of 1000: the second delay would
    // be 10 s uncapped, 1 s with the default cap of 100 × 10 ms.
    let policy = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(10))
        .with_backoff_coefficient(1000.0)
        .with_maximum_attempts(2);
    let options =
        ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(policy);
    let engine = engine(&db, options, attempts.clone(), FailWith::Retryable).await;

    // Only the recorded plan is checked; the 1 s wait never happens because
    // two attempts are allowed and the second succeeds after 10 ms.
    let seen = run(&engine, "default-cap", 2).await;
    assert_eq!(seen, Seen::Value("done on attempt 2".into()));
    let history = engine.history("default-cap").await.unwrap();
    support::assert_history_well_formed(&history);
    let Some(EventKind::ActivityScheduled { options, .. }) = history
        .iter()
        .map(|e| &e.kind)
        .find(|k| matches!(k, EventKind::ActivityScheduled { .. }))
    else {
        panic!("no ActivityScheduled event in {history:?}");
    };
    assert_eq!(options.maximum_interval, Duration::from_secs(1));
    assert_eq!(options.maximum_attempts, 2);
    engine.shutdown().await.unwrap();
}

/// Calls `FLAKY` with each set of invalid options, then once validly, and
/// returns what each call saw.
const INVALID_OPTIONS: WorkflowDef<(), Vec<Seen>> = WorkflowDef::new("InvalidOptions");

fn invalid_options() -> Vec<(&'static str, ActivityOptions)> {
    let second = Duration::from_secs(1);
    let mut no_timeout = ActivityOptions::default();
    no_timeout.retry_policy = RetryPolicy::no_retry();
    vec![
        ("start_to_close_timeout", no_timeout),
        (
            "start_to_close_timeout",
            ActivityOptions::start_to_close(Duration::ZERO),
        ),
        (
            "schedule_to_close_timeout",
            ActivityOptions::schedule_to_close(Duration::ZERO),
        ),
        (
            "schedule_to_close_timeout",
            ActivityOptions::start_to_close(second).with_schedule_to_close_timeout(Duration::ZERO),
        ),
        (
            "backoff_coefficient",
            ActivityOptions::start_to_close(second)
                .with_retry_policy(RetryPolicy::default().with_backoff_coefficient(0.5)),
        ),
        (
            "backoff_coefficient",
            ActivityOptions::start_to_close(second)
                .with_retry_policy(RetryPolicy::default().with_backoff_coefficient(f64::NAN)),
        ),
        (
            "maximum_interval",
            ActivityOptions::start_to_close(second).with_retry_policy(
                RetryPolicy::default()
                    .with_initial_interval(Duration::from_millis(100))
                    .with_maximum_interval(Duration::from_millis(50)),
            ),
        ),
        (
            "initial_interval",
            ActivityOptions::start_to_close(second)
                .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::ZERO)),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_refused_before_anything_is_recorded() {
    let db = temp_db();
    let attempts = Attempts::default();
    let engine = Engine::builder()
        .workflow(INVALID_OPTIONS, |ctx: WorkflowContext, ()| async move {
            let mut seen = Vec::new();
            for (_, options) in invalid_options() {
                seen.push(Seen::from(ctx.execute_activity(FLAKY, 1, options).await));
            }
            Ok::<_, WorkflowError>(seen)
        })
        .activity(FLAKY, {
            let attempts = attempts.clone();
            move |ctx, n| flaky(attempts.clone(), FailWith::Retryable, ctx, n)
        })
        .open_db(&db.path)
        .await
        .unwrap();

    let seen = engine
        .start_workflow(
            INVALID_OPTIONS,
            "invalid-options",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    let cases = invalid_options();
    assert_eq!(seen.len(), cases.len());
    for ((field, options), seen) in cases.iter().zip(&seen) {
        match seen {
            Seen::NotScheduled(message) => assert!(
                message.contains(field),
                "the refusal of {options:?} should name {field}: {message:?}"
            ),
            other => panic!("{options:?} was not refused: {other:?}"),
        }
    }
    assert!(attempts.numbers().is_empty(), "no attempt ran");
    let history = engine.history("invalid-options").await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(
        scheduled_count(&history),
        0,
        "a refused call records no ActivityScheduled: {history:?}"
    );
    assert!(matches!(
        history.last().map(|e| &e.kind),
        Some(EventKind::WorkflowCompleted { .. })
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_call_after_a_refused_one_runs_normally() {
    const REFUSED_THEN_VALID: WorkflowDef<(), (Seen, Seen)> = WorkflowDef::new("RefusedThenValid");
    let db = temp_db();
    let attempts = Attempts::default();
    let engine = Engine::builder()
        .workflow(REFUSED_THEN_VALID, |ctx: WorkflowContext, ()| async move {
            let refused = ctx
                .execute_activity(FLAKY, 1, ActivityOptions::default())
                .await;
            let valid = ctx
                .execute_activity(
                    FLAKY,
                    1,
                    ActivityOptions::start_to_close(Duration::from_secs(10)),
                )
                .await;
            Ok::<_, WorkflowError>((Seen::from(refused), Seen::from(valid)))
        })
        .activity(FLAKY, {
            let attempts = attempts.clone();
            move |ctx, n| flaky(attempts.clone(), FailWith::Retryable, ctx, n)
        })
        .open_db(&db.path)
        .await
        .unwrap();

    let (refused, valid) = engine
        .start_workflow(
            REFUSED_THEN_VALID,
            "refused-then-valid",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    assert!(matches!(refused, Seen::NotScheduled(_)), "{refused:?}");
    assert_eq!(valid, Seen::Value("done on attempt 1".into()));
    let history = engine.history("refused-then-valid").await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(scheduled_count(&history), 1);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_attempt_is_retried() {
    const PANICKY: ActivityDef<(), String> = ActivityDef::new("panicky");
    const CALL_PANICKY: WorkflowDef<(), Seen> = WorkflowDef::new("CallPanicky");
    let db = temp_db();
    let attempts = Attempts::default();
    let recorded = attempts.clone();
    let engine = Engine::builder()
        .workflow(CALL_PANICKY, |ctx: WorkflowContext, ()| async move {
            let options = ActivityOptions::start_to_close(Duration::from_secs(10))
                .with_retry_policy(fast_policy());
            Ok::<_, WorkflowError>(Seen::from(ctx.execute_activity(PANICKY, (), options).await))
        })
        .activity(PANICKY, move |ctx: ActivityContext, ()| {
            recorded.record(&ctx);
            async move {
                if ctx.attempt() == 1 {
                    panic!("the first attempt panics");
                }
                Ok(format!("done on attempt {}", ctx.attempt()))
            }
        })
        .open_db(&db.path)
        .await
        .unwrap();

    let seen = engine
        .start_workflow(CALL_PANICKY, "panicky", (), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    assert_eq!(seen, Seen::Value("done on attempt 2".into()));
    assert_eq!(attempts.numbers(), [1, 2]);
    let history = engine.history("panicky").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.error_type, "ActivityPanic");
    // The panic's own message is kept, as a workflow panic's is.
    assert!(
        failed[0]
            .failure
            .message
            .contains("the first attempt panics"),
        "{:?}",
        failed[0].failure.message
    );
    assert!(failed[0].next_attempt_at.is_some());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_blocking_attempt_keeps_its_message() {
    const BLOCKING_PANICKY: ActivityDef<(), String> = ActivityDef::new("blocking_panicky");
    const CALL_BLOCKING: WorkflowDef<(), Seen> = WorkflowDef::new("CallBlockingPanicky");
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(CALL_BLOCKING, |ctx: WorkflowContext, ()| async move {
            let options = ActivityOptions::start_to_close(Duration::from_secs(10))
                .with_retry_policy(fast_policy());
            Ok::<_, WorkflowError>(Seen::from(
                ctx.execute_activity(BLOCKING_PANICKY, (), options).await,
            ))
        })
        .blocking_activity(BLOCKING_PANICKY, |ctx: ActivityContext, ()| {
            if ctx.attempt() == 1 {
                panic!("the blocking attempt panics");
            }
            Ok(format!("done on attempt {}", ctx.attempt()))
        })
        .open_db(&db.path)
        .await
        .unwrap();

    let seen = engine
        .start_workflow(
            CALL_BLOCKING,
            "blocking-panicky",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    assert_eq!(seen, Seen::Value("done on attempt 2".into()));
    let history = engine.history("blocking-panicky").await.unwrap();
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.error_type, "ActivityPanic");
    assert_eq!(
        failed[0].failure.message,
        "the activity panicked: the blocking attempt panics"
    );
    engine.shutdown().await.unwrap();
}

/// A retry that comes due while the engine is closed never started, so it
/// keeps its attempt number: reopening runs it, and `maximum_attempts` counts
/// only attempts that ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_while_closed_keeps_its_attempt_number() {
    let db = temp_db();
    let options = ActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(1500))
            .with_maximum_attempts(2),
    );
    let attempts = Attempts::default();
    let first = engine(&db, options.clone(), attempts.clone(), FailWith::Retryable).await;
    first
        .start_workflow(CALL_FLAKY, "due-while-closed", 2, WorkflowOptions::new())
        .await
        .expect("start");
    support::eventually(Duration::from_secs(5), || {
        let attempts = attempts.clone();
        async move { (!attempts.numbers().is_empty()).then_some(()) }
    })
    .await;
    // Attempt 1 failed; close well before attempt 2 is due, reopen after.
    first.shutdown().await.expect("shutdown");
    assert_eq!(attempts.numbers(), [1], "attempt 2 ran before the shutdown");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = engine(&db, options, attempts.clone(), FailWith::Retryable).await;
    let handle = second
        .get_workflow_handle(CALL_FLAKY, "due-while-closed")
        .await
        .expect("handle");
    assert_eq!(
        handle.result().await.expect("completes"),
        Seen::Value("done on attempt 2".into())
    );
    assert_eq!(attempts.numbers(), [1, 2]);
    let history = second.history("due-while-closed").await.expect("history");
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1, "only attempt 1 failed: {failed:?}");
    assert_eq!(completed_attempts(&history), [2]);
    second.shutdown().await.expect("shutdown");
}
