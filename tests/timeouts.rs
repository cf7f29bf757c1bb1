//! Promise: an activity attempt cannot run forever. Start-to-close bounds one
//! attempt and is retried (type `"StartToCloseTimeout"`); schedule-to-close
//! bounds the whole activity, attempts and retry delays included: it ends the
//! retries, and cuts off an attempt still running when it runs out (type
//! `"ScheduleToCloseTimeout"`, not retried).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use steadfast::testing::TestEngine;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, Event,
    EventKind, RetryPolicy, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{Seen, TempDb, failed_events, since, temp_db};

/// Its input lists, per attempt, how long the attempt takes in milliseconds
/// and whether it then succeeds; attempts past the end of the plan fail at
/// once.
const PLANNED: ActivityDef<Vec<Step>, String> = ActivityDef::new("planned");
const CALL_PLANNED: WorkflowDef<Vec<Step>, Seen> = WorkflowDef::new("CallPlanned");

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Step {
    millis: u64,
    succeed: bool,
}

fn step(millis: u64, succeed: bool) -> Step {
    Step { millis, succeed }
}

/// The attempt numbers the activity saw, in order.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<u32>>>);

impl Attempts {
    fn numbers(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }
}

async fn planned(
    attempts: Attempts,
    ctx: ActivityContext,
    plan: Vec<Step>,
) -> Result<String, ActivityError> {
    let attempt = ctx.attempt();
    attempts.0.lock().unwrap().push(attempt);
    let Some(step) = plan.get(attempt as usize - 1) else {
        return Err(ActivityError::retryable(format!(
            "attempt {attempt} failed"
        )));
    };
    tokio::time::sleep(Duration::from_millis(step.millis)).await;
    if step.succeed {
        Ok(format!("done on attempt {attempt}"))
    } else {
        Err(ActivityError::retryable(format!(
            "attempt {attempt} failed"
        )))
    }
}

fn builder(options: ActivityOptions, attempts: Attempts) -> EngineBuilder {
    Engine::builder()
        .workflow(
            CALL_PLANNED,
            move |ctx: WorkflowContext, plan: Vec<Step>| {
                let options = options.clone();
                async move {
                    let result = ctx.execute_activity(PLANNED, plan, options).await;
                    Ok::<_, WorkflowError>(Seen::from(result))
                }
            },
        )
        .activity(PLANNED, move |ctx, plan| {
            planned(attempts.clone(), ctx, plan)
        })
}

async fn engine(db: &TempDb, options: ActivityOptions, attempts: Attempts) -> Engine {
    builder(options, attempts)
        .open(&db.path)
        .await
        .expect("open the engine")
}

async fn run(engine: &Engine, workflow_id: &str, plan: Vec<Step>) -> Seen {
    engine
        .start_workflow(CALL_PLANNED, workflow_id, plan, WorkflowOptions::new())
        .await
        .expect("start the workflow")
        .result()
        .await
        .expect("the workflow completes")
}

fn retry_every(millis: u64) -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(millis))
        .with_backoff_coefficient(1.0)
}

fn scheduled_at(history: &[Event]) -> SystemTime {
    history
        .iter()
        .find(|e| matches!(e.kind, EventKind::ActivityScheduled { .. }))
        .expect("an ActivityScheduled event")
        .timestamp
}

/// `(timestamp, attempt, failure, next_attempt_at)` of each `ActivityFailed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_to_close_times_out_an_attempt_and_a_later_attempt_succeeds() {
    let db = temp_db();
    let attempts = Attempts::default();
    let start_to_close = Duration::from_millis(100);
    let options =
        ActivityOptions::start_to_close(start_to_close).with_retry_policy(retry_every(10));
    let engine = engine(&db, options, attempts.clone()).await;

    // The first attempt would take 10 s; the second is quick.
    let seen = run(
        &engine,
        "start-to-close",
        vec![step(10_000, true), step(0, true)],
    )
    .await;

    assert_eq!(seen, Seen::Value("done on attempt 2".into()));
    assert_eq!(attempts.numbers(), [1, 2]);
    let history = engine.history("start-to-close").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1, "{history:?}");
    let first = &failed[0];
    assert_eq!(first.attempt, 1);
    assert_eq!(first.failure.error_type, "StartToCloseTimeout");
    assert!(
        !first.failure.non_retryable,
        "a start-to-close timeout is retried"
    );
    assert!(first.next_attempt_at.is_some());
    assert!(
        since(first.timestamp, scheduled_at(&history)) >= start_to_close.mul_f64(0.9),
        "the attempt was cut no earlier than its start-to-close timeout"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_to_close_timeouts_use_up_maximum_attempts() {
    let db = temp_db();
    let attempts = Attempts::default();
    let options = ActivityOptions::start_to_close(Duration::from_millis(50))
        .with_retry_policy(retry_every(10).with_maximum_attempts(2));
    let engine = engine(&db, options, attempts.clone()).await;

    let seen = run(
        &engine,
        "start-to-close-exhausted",
        vec![step(10_000, true); 3],
    )
    .await;

    match seen {
        Seen::Failed { attempt, failure } => {
            assert_eq!(attempt, 2);
            assert_eq!(failure.error_type, "StartToCloseTimeout");
        }
        other => panic!("expected a final StartToCloseTimeout, got {other:?}"),
    }
    assert_eq!(attempts.numbers(), [1, 2]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_close_ends_retries() {
    // On the virtual clock: attempts fail at once and only the backoffs
    // move time, so load on the machine cannot change how many fit.
    let attempts = Attempts::default();
    let schedule_to_close = Duration::from_millis(150);
    let backoff = Duration::from_millis(10);
    // Unlimited attempts: only the schedule-to-close timeout can end them.
    let options = ActivityOptions::schedule_to_close(schedule_to_close)
        .with_retry_policy(retry_every(backoff.as_millis() as u64));
    let engine = TestEngine::open(builder(options, attempts.clone()))
        .await
        .expect("open the test engine");

    // An empty plan: every attempt fails at once.
    let seen = run(&engine, "schedule-to-close-retries", vec![]).await;

    let Seen::Failed { attempt, failure } = seen else {
        panic!("expected the activity to fail, got {seen:?}");
    };
    let ran = attempts.numbers();
    assert_eq!(
        ran.len() as u32,
        attempt,
        "the workflow sees the last attempt"
    );
    assert!(ran.len() >= 2, "the activity was retried: {ran:?}");
    // Attempts are at least one backoff apart, so the budget bounds them.
    let bound = (schedule_to_close.as_millis() / backoff.as_millis()) as usize + 1;
    assert!(
        ran.len() <= bound,
        "{} attempts within a {schedule_to_close:?} budget and a {backoff:?} backoff",
        ran.len()
    );
    assert!(
        failure.error_type == "ActivityError" || failure.error_type == "ScheduleToCloseTimeout",
        "{failure:?}"
    );
    let history = engine.history("schedule-to-close-retries").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    let last = failed.last().unwrap();
    assert_eq!(last.attempt, attempt);
    assert_eq!(last.next_attempt_at, None);
    assert!(
        failed[..failed.len() - 1]
            .iter()
            .all(|f| f.next_attempt_at.is_some()),
        "only the last failure is final"
    );
    // Retries stop only once the next one could not start within the budget.
    assert!(
        since(last.timestamp, scheduled_at(&history)) >= (schedule_to_close - backoff).mul_f64(0.9),
        "retries ended early"
    );
    engine.engine().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_close_cuts_a_long_attempt() {
    let db = temp_db();
    let attempts = Attempts::default();
    let schedule_to_close = Duration::from_millis(150);
    // The attempt is bounded by whichever timeout runs out first.
    let options = ActivityOptions::schedule_to_close(schedule_to_close)
        .with_start_to_close_timeout(Duration::from_secs(10))
        .with_retry_policy(retry_every(10));
    let engine = engine(&db, options, attempts.clone()).await;

    let seen = run(&engine, "schedule-to-close-cut", vec![step(10_000, true)]).await;

    let Seen::Failed { attempt, failure } = seen else {
        panic!("expected a timeout, got {seen:?}");
    };
    assert_eq!(attempt, 1);
    assert_eq!(failure.error_type, "ScheduleToCloseTimeout");
    assert_eq!(
        attempts.numbers(),
        [1],
        "a schedule-to-close timeout is final"
    );
    let history = engine.history("schedule-to-close-cut").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].next_attempt_at, None);
    assert!(
        since(failed[0].timestamp, scheduled_at(&history)) >= schedule_to_close.mul_f64(0.9),
        "the attempt was cut no earlier than the schedule-to-close timeout"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_close_cuts_a_retry_with_what_is_left_of_the_budget() {
    let db = temp_db();
    let attempts = Attempts::default();
    let schedule_to_close = Duration::from_millis(200);
    let options =
        ActivityOptions::schedule_to_close(schedule_to_close).with_retry_policy(retry_every(10));
    let engine = engine(&db, options, attempts.clone()).await;

    // Attempt 1 fails at once; attempt 2 would take 10 s.
    let plan = vec![step(0, false), step(10_000, true)];
    let seen = run(&engine, "schedule-to-close-retry-cut", plan).await;

    let Seen::Failed { attempt, failure } = seen else {
        panic!("expected a timeout, got {seen:?}");
    };
    assert_eq!(attempt, 2);
    assert_eq!(failure.error_type, "ScheduleToCloseTimeout");
    assert_eq!(attempts.numbers(), [1, 2]);
    let history = engine.history("schedule-to-close-retry-cut").await.unwrap();
    support::assert_history_well_formed(&history);
    let failed = failed_events(&history);
    assert_eq!(failed.len(), 2);
    assert!(
        since(failed[1].timestamp, scheduled_at(&history)) >= schedule_to_close.mul_f64(0.9),
        "the budget counts from the schedule, so the cut comes at its end"
    );
    engine.shutdown().await.unwrap();
}
