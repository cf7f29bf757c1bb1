//! Promise: the test engine (`steadfast::testing::TestEngine`) runs
//! workflows on virtual time. Waiting on a result skips to the next due
//! time whenever nothing runs (a year of monthly billing takes no wall
//! time); every activity timeout, retry backoff and the run timeout fire in
//! virtual time; an activity that really runs holds the clock; `sleep`
//! moves time by hand; the test holds the clock between its own calls; and
//! history, describe and query read the runs afterwards.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use steadfast::testing::TestEngine;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EngineBuilder, EventKind, QueryDef, ResultError, RetryPolicy, SignalDef, Worker,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::temp_db;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Real time after which a wait counts as hung: far more than any of these
/// runs takes, so only a regression (a frozen clock) reaches it.
const HUNG: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test if it hangs instead of hanging it.
async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(HUNG, future)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from)
        .expect("virtual time went backwards")
}

// ----- A year of monthly billing -----

const SUBSCRIPTION: WorkflowDef<u32, u32> = WorkflowDef::new("Subscription");
const CHARGE: ActivityDef<u32, String> = ActivityDef::new("charge");
const CHARGES: QueryDef<u32> = QueryDef::new("charges");

/// Charges every 30 days for `days` days; returns how many charges it made.
async fn subscription(ctx: WorkflowContext, days: u32) -> Result<u32, WorkflowError> {
    let charged = Arc::new(AtomicU32::new(0));
    let seen = charged.clone();
    ctx.handle_query(CHARGES, move || seen.load(Ordering::SeqCst));
    let start = ctx.now();
    let end = start + DAY * days;
    loop {
        ctx.sleep(DAY * 30).await?;
        if ctx.now() > end {
            return Ok(charged.load(Ordering::SeqCst));
        }
        let n = charged.load(Ordering::SeqCst) + 1;
        let options = ActivityOptions::start_to_close(Duration::from_secs(30));
        ctx.execute_activity(CHARGE, n, options).await?;
        charged.store(n, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_year_of_monthly_billing_runs_in_virtual_time() {
    // The test double for the payment API, on the same definition.
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let builder = Engine::builder()
        .workflow(SUBSCRIPTION, subscription)
        .activity(CHARGE, move |_ctx: ActivityContext, n: u32| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ActivityError>(format!("receipt-{n}"))
            }
        });
    let env = TestEngine::open(builder).await.unwrap();
    let start = env.now();
    let run = env
        .start_workflow(SUBSCRIPTION, "sub-1", 365, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 12);
    assert_eq!(calls.load(Ordering::SeqCst), 12);
    // Thirteen 30-day sleeps: the last one ends past the year.
    let passed = elapsed(start, env.now());
    assert!(passed >= DAY * 390, "only {passed:?} passed");

    // History, describe and query, after the run.
    let history = env.history("sub-1").await.unwrap();
    let fired: Vec<SystemTime> = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .map(|e| e.timestamp)
        .collect();
    assert_eq!(fired.len(), 13);
    for (i, at) in fired.iter().enumerate() {
        // Each timer fired at its own virtual time, 30 days after the last.
        let expected = DAY * 30 * (i as u32 + 1);
        let got = elapsed(start, *at);
        assert!(
            got >= expected && got < expected + Duration::from_secs(1),
            "timer {i} fired at {got:?}, expected {expected:?}"
        );
    }
    let completed = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
        .count();
    assert_eq!(completed, 12);
    let description = env.describe("sub-1").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    let closed = description.close_time.expect("a close time");
    assert!(elapsed(description.start_time, closed) >= DAY * 390);
    assert_eq!(env.query("sub-1", CHARGES).await.unwrap(), 12);
    env.shutdown().await.unwrap();
}

// ----- Activity timeouts in virtual time -----

const CALL: WorkflowDef<(), String> = WorkflowDef::new("Call");
const SLOW: ActivityDef<(), String> = ActivityDef::new("slow");

/// Calls `SLOW` once with `options` (no retries); returns the failure's
/// type, or "completed".
fn caller(
    options: ActivityOptions,
) -> impl Fn(WorkflowContext, ()) -> futures::future::BoxFuture<'static, Result<String, WorkflowError>>
+ Send
+ Sync
+ 'static {
    move |ctx, ()| {
        let options = options.clone().with_retry_policy(RetryPolicy::no_retry());
        Box::pin(async move {
            match ctx.execute_activity(SLOW, (), options).await {
                Ok(_) => Ok("completed".to_string()),
                Err(ActivityFailure::Failed { failure, .. }) => Ok(failure.error_type),
                Err(other) => Err(WorkflowError::new(other.to_string())),
            }
        })
    }
}

/// Runs `CALL` with an activity that waits `wait` on the engine's clock
/// (heartbeating first); returns the outcome and the virtual time it took.
async fn run_slow(options: ActivityOptions, wait: Duration) -> (String, Duration) {
    let builder = Engine::builder().workflow(CALL, caller(options)).activity(
        SLOW,
        move |ctx: ActivityContext, ()| async move {
            ctx.heartbeat(&"started")?;
            ctx.sleep(wait).await;
            Ok::<_, ActivityError>("done".to_string())
        },
    );
    let env = TestEngine::open(builder).await.unwrap();
    let run = env
        .start_workflow(CALL, "call", (), WorkflowOptions::new())
        .await
        .unwrap();
    let outcome = run.result().await.unwrap();
    let took = run_time(&env, "call").await;
    env.shutdown().await.unwrap();
    (outcome, took)
}

/// How much virtual time a closed run took, from start to close.
async fn run_time(env: &TestEngine, workflow_id: &str) -> Duration {
    let description = env.describe(workflow_id).await.unwrap();
    elapsed(description.start_time, description.close_time.unwrap())
}

#[tokio::test]
async fn start_to_close_fires_in_virtual_time() {
    let (outcome, took) = run_slow(ActivityOptions::start_to_close(HOUR), DAY).await;
    assert_eq!(outcome, "StartToCloseTimeout");
    assert!(took >= HOUR && took < DAY, "took {took:?}");
}

#[tokio::test]
async fn heartbeat_timeout_fires_in_virtual_time() {
    let options = ActivityOptions::start_to_close(DAY * 2).with_heartbeat_timeout(HOUR);
    let (outcome, took) = run_slow(options, DAY).await;
    assert_eq!(outcome, "HeartbeatTimeout");
    assert!(took >= HOUR && took < DAY, "took {took:?}");
}

#[tokio::test]
async fn schedule_to_close_fires_in_virtual_time() {
    let (outcome, took) = run_slow(ActivityOptions::schedule_to_close(HOUR * 2), DAY).await;
    assert_eq!(outcome, "ScheduleToCloseTimeout");
    assert!(took >= HOUR * 2 && took < DAY, "took {took:?}");
}

#[tokio::test]
async fn an_activity_that_waits_on_the_clock_completes_in_virtual_time() {
    let (outcome, took) = run_slow(ActivityOptions::start_to_close(DAY * 2), DAY).await;
    assert_eq!(outcome, "completed");
    assert!(took >= DAY && took < DAY * 2, "took {took:?}");
}

#[tokio::test]
async fn schedule_to_start_fires_in_virtual_time() {
    // No worker serves the activity's queue.
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_schedule_to_start_timeout(HOUR * 3)
        .with_task_queue("nobody-serves-this");
    let builder = Engine::builder().workflow(CALL, caller(options));
    let env = TestEngine::open(builder).await.unwrap();
    let run = env
        .start_workflow(CALL, "call", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "ScheduleToStartTimeout");
    let took = run_time(&env, "call").await;
    assert!(took >= HOUR * 3 && took < HOUR * 4, "took {took:?}");
    env.shutdown().await.unwrap();
}

// ----- Run timeout, retry backoff -----

const NAP: WorkflowDef<u64, ()> = WorkflowDef::new("Nap");

async fn nap(ctx: WorkflowContext, days: u64) -> Result<(), WorkflowError> {
    ctx.sleep(DAY * days as u32).await?;
    Ok(())
}

#[tokio::test]
async fn the_run_timeout_fires_in_virtual_time() {
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let options = WorkflowOptions::new().with_run_timeout(DAY);
    let run = env.start_workflow(NAP, "nap", 10, options).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(matches!(err, ResultError::TimedOut { .. }), "{err}");
    let description = env.describe("nap").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::TimedOut);
    let took = elapsed(description.start_time, description.close_time.unwrap());
    assert!(took >= DAY && took < DAY * 2, "took {took:?}");
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_execution_timeout_fires_in_virtual_time() {
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let options = WorkflowOptions::new().with_execution_timeout(DAY * 3);
    let run = env.start_workflow(NAP, "nap", 30, options).await.unwrap();
    let err = run.result().await.unwrap_err();
    assert!(matches!(err, ResultError::TimedOut { .. }), "{err}");
    let took = run_time(&env, "nap").await;
    assert!(took >= DAY * 3 && took < DAY * 4, "took {took:?}");
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn retention_counts_in_virtual_time() {
    let builder = Engine::builder().workflow(NAP, nap).retention(HOUR * 72);
    let env = TestEngine::open(builder).await.unwrap();
    let run = env
        .start_workflow(NAP, "nap", 1, WorkflowOptions::new())
        .await
        .unwrap();
    run.result().await.unwrap();
    env.sleep(DAY).await;
    // Closed for a day: kept.
    assert_eq!(
        env.describe("nap").await.unwrap().status,
        WorkflowStatus::Completed
    );
    env.sleep(DAY * 3).await;
    // Closed for four virtual days: the sweeper, woken by the clock's
    // advance, removes it (it runs beside the engine, so wait for it).
    support::eventually(Duration::from_secs(20), || async {
        matches!(
            env.describe("nap").await,
            Err(steadfast::ClientError::NotFound { .. })
        )
        .then_some(())
    })
    .await;
    env.shutdown().await.unwrap();
}

const FLAKY: ActivityDef<(), u32> = ActivityDef::new("flaky");
const RETRYING: WorkflowDef<(), u32> = WorkflowDef::new("Retrying");

#[tokio::test]
async fn retry_backoff_of_hours_is_skipped() {
    let builder = Engine::builder()
        .workflow(RETRYING, |ctx: WorkflowContext, ()| async move {
            let retry = RetryPolicy::default()
                .with_initial_interval(HOUR * 2)
                .with_backoff_coefficient(2.0)
                .with_maximum_attempts(5);
            let options =
                ActivityOptions::start_to_close(Duration::from_secs(10)).with_retry_policy(retry);
            Ok::<_, WorkflowError>(ctx.execute_activity(FLAKY, (), options).await?)
        })
        .activity(FLAKY, |ctx: ActivityContext, ()| async move {
            match ctx.attempt() {
                n if n < 3 => Err(ActivityError::retryable("payment provider down")),
                n => Ok(n),
            }
        });
    let env = TestEngine::open(builder).await.unwrap();
    let run = env
        .start_workflow(RETRYING, "retrying", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 3);
    // Two hours, then four, before the third attempt.
    let took = run_time(&env, "retrying").await;
    assert!(took >= HOUR * 6 && took < HOUR * 7, "took {took:?}");
    env.shutdown().await.unwrap();
}

// ----- Real work holds the clock -----

const RACE: WorkflowDef<(), String> = WorkflowDef::new("Race");
const REAL_WORK: ActivityDef<(), String> = ActivityDef::new("real_work");

/// Races `REAL_WORK` against a 10 ms timer.
async fn race(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(HOUR);
    let mut work = ctx.execute_activity(REAL_WORK, (), options);
    let mut timer = ctx.sleep(Duration::from_millis(10));
    Ok(futures::select_biased! {
        done = work => done?,
        _ = timer => "the timer fired first".to_string(),
    })
}

async fn run_race(builder: EngineBuilder) {
    let env = TestEngine::open(builder.workflow(RACE, race))
        .await
        .unwrap();
    let run = env
        .start_workflow(RACE, "race", (), WorkflowOptions::new())
        .await
        .unwrap();
    // In real time the 10 ms timer would win against 300 ms of work; in
    // virtual time none passes while the activity runs.
    assert_eq!(run.result().await.unwrap(), "work done");
    assert!(run_time(&env, "race").await < Duration::from_millis(10));
    // The closed run's timer is gone too: waiting on the run again lets
    // the clock skip, and there is nothing left to skip to.
    let now = env.now();
    run.result().await.unwrap();
    assert_eq!(env.now(), now);
    let history = env.history("race").await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
    );
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_real_tokio_sleep_in_an_activity_holds_the_clock() {
    let builder = Engine::builder().activity(REAL_WORK, |_ctx: ActivityContext, ()| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, ActivityError>("work done".to_string())
    });
    run_race(builder).await;
}

#[tokio::test]
async fn a_blocking_activity_holds_the_clock() {
    let builder = Engine::builder().blocking_activity(REAL_WORK, |_ctx: ActivityContext, ()| {
        std::thread::sleep(Duration::from_millis(300));
        Ok::<_, ActivityError>("work done".to_string())
    });
    run_race(builder).await;
}

// ----- Moving time by hand; the test holds the clock between its calls -----

const ALARM: WorkflowDef<(), String> = WorkflowDef::new("Alarm");
const SNOOZE: SignalDef<String> = SignalDef::new("snooze");
const STATE: QueryDef<String> = QueryDef::new("state");

/// Sleeps a day (or, when signalled first, a week), then waits for a
/// signal to finish.
async fn alarm(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let state = Arc::new(std::sync::Mutex::new("sleeping".to_string()));
    let shown = state.clone();
    ctx.handle_query(STATE, move || shown.lock().unwrap().clone());
    let mut signal = ctx.recv_signal(SNOOZE);
    let mut timer = ctx.sleep(DAY);
    let snoozed = futures::select_biased! {
        s = signal => Some(s?),
        t = timer => { t?; None },
    };
    if snoozed.is_some() {
        ctx.sleep(DAY * 7).await?;
    }
    *state.lock().unwrap() = "ringing".into();
    Ok(ctx.recv_signal(SNOOZE).await?)
}

#[tokio::test]
async fn sleep_moves_time_by_hand_and_fires_what_is_due() {
    let env = TestEngine::open(Engine::builder().workflow(ALARM, alarm))
        .await
        .unwrap();
    let start = env.now();
    env.start_workflow(ALARM, "alarm", (), WorkflowOptions::new())
        .await
        .unwrap();
    env.sleep(HOUR * 12).await;
    assert_eq!(elapsed(start, env.now()), HOUR * 12);
    assert_eq!(env.query("alarm", STATE).await.unwrap(), "sleeping");
    env.sleep(HOUR * 12).await;
    assert_eq!(elapsed(start, env.now()), DAY);
    // `sleep` returned once the engine settled: the timer's effects show.
    assert_eq!(env.query("alarm", STATE).await.unwrap(), "ringing");
    let history = env.history("alarm").await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
    );
    // Nothing is due any more: time stays put while the run waits.
    env.signal("alarm", SNOOZE, "bye".to_string())
        .await
        .unwrap();
    let run = env.get_workflow_handle(ALARM, "alarm").await.unwrap();
    assert_eq!(run.result().await.unwrap(), "bye");
    assert_eq!(elapsed(start, env.now()), DAY);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_test_holds_the_clock_between_its_calls() {
    let env = TestEngine::open(Engine::builder().workflow(ALARM, alarm))
        .await
        .unwrap();
    let start = env.now();
    env.start_workflow(ALARM, "alarm", (), WorkflowOptions::new())
        .await
        .unwrap();
    // Between the start and the signal no time passes, so the signal beats
    // the day-long timer, and the run snoozes for a week.
    tokio::time::sleep(Duration::from_millis(50)).await;
    env.signal("alarm", SNOOZE, "five more minutes".to_string())
        .await
        .unwrap();
    env.sleep(DAY * 2).await;
    assert_eq!(env.query("alarm", STATE).await.unwrap(), "sleeping");
    env.sleep(DAY * 6).await;
    assert_eq!(env.query("alarm", STATE).await.unwrap(), "ringing");
    assert_eq!(elapsed(start, env.now()), DAY * 8);
    env.shutdown().await.unwrap();
}

// ----- On a file of the test's choosing -----

#[tokio::test]
async fn a_test_engine_on_a_given_file_leaves_it_for_a_normal_engine() {
    let db = temp_db();
    let env = TestEngine::open_path(Engine::builder().workflow(NAP, nap), &db.path)
        .await
        .unwrap();
    let run = env
        .start_workflow(NAP, "nap", 30, WorkflowOptions::new())
        .await
        .unwrap();
    run.result().await.unwrap();
    env.shutdown().await.unwrap();

    let engine = Engine::builder()
        .worker(Worker::new("default").workflow(NAP, nap))
        .open(&db.path)
        .await
        .unwrap();
    let description = engine.describe("nap").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    let took = elapsed(description.start_time, description.close_time.unwrap());
    assert!(took >= DAY * 30, "took {took:?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_temporary_file_goes_with_the_test_engine() {
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let path = env.path().to_path_buf();
    assert!(path.exists());
    env.shutdown().await.unwrap();
    assert!(!path.exists());
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let path = env.path().to_path_buf();
    drop(env);
    assert!(!path.exists());
}

#[tokio::test]
async fn activity_sleep_returns_on_a_normal_engine() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(CALL, caller(ActivityOptions::start_to_close(HOUR)))
        .activity(SLOW, |ctx: ActivityContext, ()| async move {
            ctx.sleep(Duration::from_millis(50)).await;
            Ok::<_, ActivityError>("done".to_string())
        })
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(CALL, "call", (), WorkflowOptions::new())
        .await
        .unwrap();
    // The sleep ended by itself (no timeout, no cancellation): the attempt
    // completed within its start-to-close timeout.
    assert_eq!(within("the run", run.result()).await.unwrap(), "completed");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_test_engine_reopened_on_its_file_resumes_in_virtual_time() {
    let db = temp_db();
    let env = TestEngine::open_path(Engine::builder().workflow(NAP, nap), &db.path)
        .await
        .unwrap();
    env.start_workflow(NAP, "nap", 30, WorkflowOptions::new())
        .await
        .unwrap();
    env.sleep(DAY).await;
    env.shutdown().await.unwrap();

    // The run waits in the file's wake-up index; the new clock starts at
    // today's wall time, and the timer is still 29 days off.
    let env = TestEngine::open_path(Engine::builder().workflow(NAP, nap), &db.path)
        .await
        .unwrap();
    let run = env.get_workflow_handle(NAP, "nap").await.unwrap();
    run.result().await.unwrap();
    let took = run_time(&env, "nap").await;
    assert!(took >= DAY * 30, "took {took:?}");
    env.shutdown().await.unwrap();
}

// ----- Far due times -----

const CENTURIES: WorkflowDef<(), ()> = WorkflowDef::new("Centuries");
/// Longer than a `u64` of nanoseconds holds (about 584 years).
const SEVEN_CENTURIES: Duration = Duration::from_secs(700 * 365 * 24 * 3600);

async fn centuries(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.sleep(SEVEN_CENTURIES).await?;
    Ok(())
}

#[tokio::test]
async fn a_timer_seven_centuries_away_fires_in_virtual_time() {
    let env = TestEngine::open(Engine::builder().workflow(CENTURIES, centuries))
        .await
        .unwrap();
    let start = env.now();
    let run = env
        .start_workflow(CENTURIES, "centuries", (), WorkflowOptions::new())
        .await
        .unwrap();
    within("a 700-year timer", run.result()).await.unwrap();
    let took = elapsed(start, env.now());
    assert!(took >= SEVEN_CENTURIES, "took {took:?}");
    env.shutdown().await.unwrap();
}

// ----- Clones of the engine -----

#[tokio::test]
async fn a_clone_of_the_engine_outlives_its_test_engine() {
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let engine: Engine = (*env).clone();
    let path = env.path().to_path_buf();
    drop(env);
    // The clone still runs on the file, in virtual time.
    assert!(path.exists());
    let run = engine
        .start_workflow(NAP, "nap", 30, WorkflowOptions::new())
        .await
        .unwrap();
    within("a clone's run", run.result()).await.unwrap();
    // The last clone takes the temporary file with it.
    drop(run);
    drop(engine);
    assert!(!path.exists());
}

#[tokio::test]
async fn a_clone_of_a_shut_down_test_engine_is_refused() {
    let env = TestEngine::open(Engine::builder().workflow(NAP, nap))
        .await
        .unwrap();
    let engine: Engine = (*env).clone();
    let path = env.path().to_path_buf();
    env.shutdown().await.unwrap();
    assert!(!path.exists());
    let refused = within(
        "a start on a shut-down engine",
        engine.start_workflow(NAP, "nap", 30, WorkflowOptions::new()),
    )
    .await;
    assert!(matches!(refused, Err(ClientError::ShutDown)), "{refused:?}");
}

// ----- Several sleeps of one attempt -----

const TWIN: WorkflowDef<(), ()> = WorkflowDef::new("Twin");
const TWIN_NAPS: ActivityDef<(), ()> = ActivityDef::new("twin_naps");

async fn twin(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(DAY).with_retry_policy(RetryPolicy::no_retry());
    ctx.execute_activity(TWIN_NAPS, (), options).await?;
    Ok(())
}

/// An engine whose activity tells `tx` it began, then sleeps `first` and
/// `second` at once.
fn twin_naps(
    first: Duration,
    second: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> EngineBuilder {
    Engine::builder()
        .workflow(TWIN, twin)
        .activity(TWIN_NAPS, move |ctx: ActivityContext, ()| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
                futures::join!(ctx.sleep(first), ctx.sleep(second));
                Ok::<_, ActivityError>(())
            }
        })
}

#[tokio::test]
async fn two_sleeps_at_once_in_one_attempt_leave_the_test_holding_the_clock() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let env = TestEngine::open(twin_naps(HOUR, HOUR, tx)).await.unwrap();
    let start = env.now();
    env.start_workflow(TWIN, "twin", (), WorkflowOptions::new())
        .await
        .unwrap();
    within("the attempt's start", rx.recv()).await.unwrap();
    // Room for a regression to show: two sleeps letting go of two holds
    // would let go of the test's, and the clock would skip an hour.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        env.now(),
        start,
        "virtual time moved while the test held it"
    );
    assert_eq!(
        env.describe("twin").await.unwrap().status,
        WorkflowStatus::Running
    );
    // Moved by hand, the hour passes and both sleeps end.
    within("an hour's advance", env.sleep(HOUR)).await;
    assert_eq!(elapsed(start, env.now()), HOUR);
    assert_eq!(
        env.describe("twin").await.unwrap().status,
        WorkflowStatus::Completed
    );
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn sleeps_of_different_lengths_at_once_each_end_in_virtual_time() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let env = TestEngine::open(twin_naps(HOUR, HOUR * 5, tx))
        .await
        .unwrap();
    let run = env
        .start_workflow(TWIN, "twin", (), WorkflowOptions::new())
        .await
        .unwrap();
    within("the run", run.result()).await.unwrap();
    let took = run_time(&env, "twin").await;
    assert!(took >= HOUR * 5, "took {took:?}");
    env.shutdown().await.unwrap();
}

// ----- An attempt whose run closed -----

#[tokio::test]
async fn activity_sleep_returns_once_the_attempt_is_cancelled() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let builder = Engine::builder()
        .workflow(CALL, caller(ActivityOptions::start_to_close(DAY * 365)))
        .activity(SLOW, move |ctx: ActivityContext, ()| {
            let tx = tx.clone();
            async move {
                let _ = tx.send("began");
                while !ctx.is_cancelled() {
                    ctx.sleep(HOUR).await;
                }
                let _ = tx.send("stopped");
                Ok::<_, ActivityError>("done".to_string())
            }
        });
    let env = TestEngine::open(builder).await.unwrap();
    env.start_workflow(CALL, "call", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        within("the attempt's start", rx.recv()).await,
        Some("began")
    );
    env.terminate("call", "the test is done with it")
        .await
        .unwrap();
    // The test holds the clock: only the cancellation can end the sleep.
    assert_eq!(
        within("the orphaned sleep", rx.recv()).await,
        Some("stopped")
    );
    env.shutdown().await.unwrap();
}

// ----- Waiting for a slot -----

const PAIR: WorkflowDef<(), ()> = WorkflowDef::new("Pair");
const NAPPER: ActivityDef<(), ()> = ActivityDef::new("napper");

async fn pair(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(HOUR * 2);
    let first = ctx.execute_activity(NAPPER, (), options.clone());
    let second = ctx.execute_activity(NAPPER, (), options);
    let (first, second) = futures::join!(first, second);
    first?;
    second?;
    Ok(())
}

#[tokio::test]
async fn an_attempt_waiting_for_a_slot_lets_the_one_in_it_sleep() {
    let worker = Worker::new("default")
        .max_concurrent_activities(1)
        .workflow(PAIR, pair)
        .activity(NAPPER, |ctx: ActivityContext, ()| async move {
            ctx.sleep(Duration::from_secs(60)).await;
            Ok::<_, ActivityError>(())
        });
    let env = TestEngine::open(Engine::builder().worker(worker))
        .await
        .unwrap();
    let run = env
        .start_workflow(PAIR, "pair", (), WorkflowOptions::new())
        .await
        .unwrap();
    within("two sleeping activities on one slot", run.result())
        .await
        .unwrap();
    // One after the other: the second began once the first had slept.
    let took = run_time(&env, "pair").await;
    assert!(took >= Duration::from_secs(120), "took {took:?}");
    env.shutdown().await.unwrap();
}
