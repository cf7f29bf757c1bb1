//! Promise: task queues route and limit work. A worker's
//! `max_concurrent_activities` holds under load and its
//! `max_activities_per_second` spaces attempt starts; an activity given
//! another task queue runs on that queue's worker; an attempt that waits
//! longer than its schedule-to-start timeout for a slot fails with a
//! non-retryable `ScheduleToStartTimeout`. A workflow started on a queue no
//! worker serves waits (its description says the queue is not served, and a
//! warning is logged once per queue), and completes once the engine is
//! opened with one; an empty queue name is refused (an activity scheduled
//! on one fails at once, non-retryable).
//! A workflow's run timeout ends the run as `TimedOut`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use steadfast::testing::TestEngine;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EventKind, ParkReason, ResultError, RetryPolicy, Worker, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::temp_db;
use tokio::sync::Notify;

/// Runs the given number of `work` activities at once.
const FAN_OUT: WorkflowDef<u32, u32> = WorkflowDef::new("FanOut");
/// Runs `where` on its own queue, then on the queue named by the input.
const ROUTED: WorkflowDef<String, (String, String)> = WorkflowDef::new("Routed");
/// Runs `block` on the `narrow` queue.
const BLOCKER: WorkflowDef<(), ()> = WorkflowDef::new("Blocker");
/// Runs `work` on the given queue with a 100 ms schedule-to-start timeout;
/// returns the failure's `(attempt, type, non_retryable)`.
const IMPATIENT: WorkflowDef<String, (u32, String, bool)> = WorkflowDef::new("Impatient");
/// Returns a greeting at once.
const GREET: WorkflowDef<String, String> = WorkflowDef::new("Greet");
/// Sleeps an hour.
const SLEEPY: WorkflowDef<(), ()> = WorkflowDef::new("Sleepy");

const WORK: ActivityDef<(), ()> = ActivityDef::new("work");
const WHERE: ActivityDef<(), String> = ActivityDef::new("where");
const BLOCK: ActivityDef<(), ()> = ActivityDef::new("block");

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(30))
}

async fn fan_out(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let calls: Vec<_> = (0..n)
        .map(|_| ctx.execute_activity(WORK, (), options()))
        .collect();
    let mut done = 0;
    for result in futures::future::join_all(calls).await {
        result?;
        done += 1;
    }
    Ok(done)
}

async fn routed(ctx: WorkflowContext, other: String) -> Result<(String, String), WorkflowError> {
    let own = ctx.execute_activity(WHERE, (), options()).await?;
    let routed = ctx
        .execute_activity(WHERE, (), options().with_task_queue(other))
        .await?;
    Ok((own, routed))
}

async fn blocker(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    Ok(ctx
        .execute_activity(BLOCK, (), options().with_task_queue("narrow"))
        .await?)
}

async fn impatient(
    ctx: WorkflowContext,
    queue: String,
) -> Result<(u32, String, bool), WorkflowError> {
    let options = options()
        .with_task_queue(queue)
        .with_schedule_to_start_timeout(Duration::from_millis(100))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(10)));
    match ctx.execute_activity(WORK, (), options).await {
        Err(ActivityFailure::Failed {
            attempt, failure, ..
        }) => Ok((attempt, failure.error_type, failure.non_retryable)),
        other => Err(WorkflowError::new(format!(
            "expected a failure, got {other:?}"
        ))),
    }
}

async fn greet(_ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    Ok(format!("Hello, {name}!"))
}

async fn sleepy(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

/// Counts attempts running at once and the most seen.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    peak: AtomicUsize,
    finished: AtomicUsize,
}

fn counted_work(
    counter: &Arc<Concurrency>,
) -> impl Fn(ActivityContext, ()) -> futures::future::BoxFuture<'static, Result<(), ActivityError>>
+ Send
+ Sync
+ 'static {
    let counter = counter.clone();
    move |_ctx, _| {
        let counter = counter.clone();
        Box::pin(async move {
            let now = counter.running.fetch_add(1, Ordering::SeqCst) + 1;
            counter.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            counter.running.fetch_sub(1, Ordering::SeqCst);
            counter.finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrent_activities_holds_under_load() {
    const LIMIT: usize = 3;
    const WORKFLOWS: u32 = 4;
    const EACH: u32 = 6;
    let db = temp_db();
    let counter = Arc::new(Concurrency::default());
    let worker = Worker::new("limited")
        .workflow(FAN_OUT, fan_out)
        .activity(WORK, counted_work(&counter))
        .max_concurrent_activities(LIMIT);
    let engine = Engine::builder()
        .worker(worker)
        .open(&db.path)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..WORKFLOWS {
        let options = WorkflowOptions::new().with_task_queue("limited");
        runs.push(
            engine
                .start_workflow(FAN_OUT, format!("fan-out-{i}"), EACH, options)
                .await
                .unwrap(),
        );
    }
    for run in runs {
        assert_eq!(run.result().await.unwrap(), EACH);
    }
    let peak = counter.peak.load(Ordering::SeqCst);
    assert!(
        peak <= LIMIT,
        "{peak} attempts ran at once, the limit is {LIMIT}"
    );
    assert!(
        peak >= 2,
        "the load should have used parallel slots (peak {peak})"
    );
    assert_eq!(
        counter.finished.load(Ordering::SeqCst),
        (WORKFLOWS * EACH) as usize
    );
    engine.shutdown().await.unwrap();
}

/// A rate far below one start a year and more slots than a semaphore holds
/// are accepted, never panic, and let the first attempt start at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slowest_rate_starts_the_first_attempt_at_once() {
    let db = temp_db();
    let worker = Worker::new("glacial")
        .workflow(FAN_OUT, fan_out)
        .activity(WORK, |_ctx: ActivityContext, _: ()| async {
            Ok::<_, ActivityError>(())
        })
        .max_activities_per_second(1e-300)
        // More slots than any semaphore holds: no limit, not a panic.
        .max_concurrent_activities(usize::MAX);
    let engine = Engine::builder()
        .worker(worker)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(
            FAN_OUT,
            "glacial",
            1,
            WorkflowOptions::new().with_task_queue("glacial"),
        )
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), run.result()).await;
    assert_eq!(
        result.expect("the first attempt starts at once").unwrap(),
        1
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_activities_per_second_spaces_attempt_starts() {
    const RATE: f64 = 20.0;
    const N: u32 = 8;
    // On the virtual clock the limiter's start times are the only thing
    // that moves time, so a loaded machine cannot bunch or stretch the
    // starts the test sees.
    let env: Arc<std::sync::OnceLock<TestEngine>> = Arc::new(std::sync::OnceLock::new());
    let starts = Arc::new(std::sync::Mutex::new(Vec::<SystemTime>::new()));
    let (recorded, clock) = (starts.clone(), env.clone());
    let worker = Worker::new("rated")
        .workflow(FAN_OUT, fan_out)
        .activity(WORK, move |_ctx: ActivityContext, _: ()| {
            let (recorded, clock) = (recorded.clone(), clock.clone());
            async move {
                let now = clock.get().expect("the test engine is open").now();
                recorded.lock().unwrap().push(now);
                Ok::<_, ActivityError>(())
            }
        })
        .max_activities_per_second(RATE);
    let opened = TestEngine::open(Engine::builder().worker(worker))
        .await
        .unwrap();
    let env = env.get_or_init(|| opened);
    let run = env
        .start_workflow(
            FAN_OUT,
            "rated",
            N,
            WorkflowOptions::new().with_task_queue("rated"),
        )
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), N);
    let mut starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), N as usize);
    starts.sort();
    // Each start comes at least one spacing after the one before.
    let spacing = Duration::from_secs_f64(1.0 / RATE);
    for pair in starts.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(
            gap >= spacing,
            "attempts started {gap:?} apart, expected at least {spacing:?}: {starts:?}"
        );
    }
    env.engine().shutdown().await.unwrap();
}

#[tokio::test]
async fn an_activity_routed_to_another_queue_runs_on_its_worker() {
    let db = temp_db();
    let home = Worker::new("home")
        .workflow(ROUTED, routed)
        .activity(WHERE, |_ctx: ActivityContext, _: ()| async {
            Ok::<_, ActivityError>("home".to_string())
        });
    let away = Worker::new("away").activity(WHERE, |_ctx: ActivityContext, _: ()| async {
        Ok::<_, ActivityError>("away".to_string())
    });
    let engine = Engine::builder()
        .worker(home)
        .worker(away)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(
            ROUTED,
            "routed",
            "away".to_string(),
            WorkflowOptions::new().with_task_queue("home"),
        )
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        ("home".to_string(), "away".to_string())
    );
    let description = engine.describe("routed").await.unwrap();
    assert_eq!(description.task_queue, "home");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_start_timeout_fails_when_the_queue_is_saturated() {
    let db = temp_db();
    let release = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let worked = Arc::new(AtomicUsize::new(0));
    let (r, s, w) = (release.clone(), started.clone(), worked.clone());
    let narrow = Worker::new("narrow")
        .activity(BLOCK, move |_ctx: ActivityContext, _: ()| {
            let (release, started) = (r.clone(), s.clone());
            async move {
                started.notify_one();
                release.notified().await;
                Ok::<_, ActivityError>(())
            }
        })
        .activity(WORK, move |_ctx: ActivityContext, _: ()| {
            let worked = w.clone();
            async move {
                worked.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ActivityError>(())
            }
        })
        .max_concurrent_activities(1);
    let engine = Engine::builder()
        .workflow(BLOCKER, blocker)
        .workflow(IMPATIENT, impatient)
        .worker(narrow)
        .open(&db.path)
        .await
        .unwrap();
    let blocking = engine
        .start_workflow(BLOCKER, "blocker", (), WorkflowOptions::new())
        .await
        .unwrap();
    // The only slot is taken.
    started.notified().await;
    let impatient = engine
        .start_workflow(
            IMPATIENT,
            "impatient",
            "narrow".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    let (attempt, error_type, non_retryable) = impatient.result().await.unwrap();
    assert_eq!(error_type, "ScheduleToStartTimeout");
    assert!(non_retryable);
    assert_eq!(attempt, 1, "never retried, whatever the retry policy says");
    assert_eq!(worked.load(Ordering::SeqCst), 0);
    let history = engine.history("impatient").await.unwrap();
    let failures: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityFailed {
                failure,
                next_attempt_at,
                ..
            } => Some((failure.error_type.clone(), *next_attempt_at)),
            _ => None,
        })
        .collect();
    assert_eq!(failures, vec![("ScheduleToStartTimeout".to_string(), None)]);

    release.notify_one();
    blocking.result().await.unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn schedule_to_start_timeout_fails_on_a_queue_without_worker() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(IMPATIENT, impatient)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(
            IMPATIENT,
            "nobody-polls",
            "nowhere".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        run.result().await.unwrap(),
        (1, "ScheduleToStartTimeout".to_string(), true)
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_workflow_on_a_queue_without_worker_waits_for_one() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(GREET, greet)
        .open(&db.path)
        .await
        .unwrap();
    let options = WorkflowOptions::new().with_task_queue("later");
    let run = engine
        .start_workflow(GREET, "waits", "Alice".to_string(), options)
        .await
        .expect("a queue without a worker is accepted");
    let description = engine.describe("waits").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert_eq!(description.task_queue, "later");
    assert!(!description.task_queue_served, "{description:#?}");
    assert!(
        matches!(&description.parked, Some(ParkReason::Unrunnable(m)) if m.contains("later")),
        "{description:#?}"
    );
    // Not progressing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(engine.history("waits").await.unwrap().len(), 1);
    let run_id = run.run_id();
    engine.shutdown().await.unwrap();

    let engine = Engine::builder()
        .worker(Worker::new("later").workflow(GREET, greet))
        .open(&db.path)
        .await
        .unwrap();
    let run = engine.get_workflow_handle(GREET, "waits").await.unwrap();
    assert_eq!(run.run_id(), run_id);
    assert_eq!(run.result().await.unwrap(), "Hello, Alice!");
    let description = engine.describe("waits").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert!(description.task_queue_served);
    assert!(description.parked.is_none());
    engine.shutdown().await.unwrap();
}

/// Collects what the engine logs, for the assertions on warnings.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A start on a queue no worker serves is logged once per queue; a
/// current-thread runtime, so the subscriber set for this thread sees the
/// start's log.
#[tokio::test(flavor = "current_thread")]
async fn a_start_on_an_unserved_queue_is_logged_once_per_queue() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(GREET, greet)
        .open(&db.path)
        .await
        .unwrap();

    for (id, queue) in [("a1", "later-a"), ("a2", "later-a"), ("b1", "later-b")] {
        let options = WorkflowOptions::new().with_task_queue(queue);
        engine
            .start_workflow(GREET, id, "Alice".to_string(), options)
            .await
            .expect("a queue without a worker is accepted");
    }
    engine
        .start_workflow(GREET, "served", "Bob".to_string(), WorkflowOptions::new())
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<_> = text
        .lines()
        .filter(|l| l.contains("no worker of this engine serves"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(warnings[0].contains("later-a"), "{text}");
    assert!(warnings[1].contains("later-b"), "{text}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_empty_task_queue_name_is_refused() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(GREET, greet)
        .open(&db.path)
        .await
        .unwrap();

    let err = engine
        .start_workflow(
            GREET,
            "nowhere",
            "Alice".to_string(),
            WorkflowOptions::new().with_task_queue(""),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ClientError::InvalidArgument(m) if m.contains("task queue name is empty")),
        "{err:?}"
    );
    assert!(matches!(
        engine.describe("nowhere").await,
        Err(ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unregistered_type_on_a_served_queue_is_refused() {
    let db = temp_db();
    let engine = Engine::builder()
        .worker(Worker::new("served").workflow(SLEEPY, sleepy))
        .open(&db.path)
        .await
        .unwrap();
    let options = WorkflowOptions::new().with_task_queue("served");
    let err = engine
        .start_workflow(GREET, "refused", "Bob".to_string(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::UnknownWorkflowType { workflow_type, task_queue }
            if workflow_type == "Greet" && task_queue == "served"),
        "{err:?}"
    );
    engine.shutdown().await.unwrap();
}

/// Runs `Sleepy` under `options` and checks that `timeout` ends it: the
/// result, the status and close time, the last event, and that it takes no
/// more signals.
async fn assert_times_out(options: WorkflowOptions, workflow_id: &str, timeout: &str) {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(SLEEPY, sleepy)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(SLEEPY, workflow_id, (), options)
        .await
        .unwrap();
    match run.result().await {
        Err(ResultError::TimedOut { timeout: seen, .. }) => assert_eq!(seen, timeout),
        other => panic!("expected a timed-out result, got {other:?}"),
    }
    let description = engine.describe(workflow_id).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::TimedOut);
    let closed = description.close_time.expect("a close time");
    assert!(closed >= description.start_time + Duration::from_millis(200));
    let history = engine.history(workflow_id).await.unwrap();
    assert!(matches!(
        history.last().map(|e| &e.kind),
        Some(EventKind::WorkflowTimedOut { .. })
    ));
    let err = engine
        .signal(workflow_id, steadfast::SignalDef::<()>::new("x"), ())
        .await;
    assert!(
        matches!(err, Err(ClientError::WorkflowClosed { .. })),
        "{err:?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_run_timeout_ends_the_run_as_timed_out() {
    let options = WorkflowOptions::new().with_run_timeout(Duration::from_millis(200));
    assert_times_out(options, "timed-out", "WorkflowRunTimeout").await;
}

#[tokio::test]
async fn the_execution_timeout_ends_the_run_as_timed_out() {
    let options = WorkflowOptions::new().with_execution_timeout(Duration::from_millis(200));
    assert_times_out(options, "execution-timed-out", "WorkflowExecutionTimeout").await;
}

#[tokio::test]
async fn a_run_timeout_that_passed_while_closed_ends_the_run_on_open() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(SLEEPY, sleepy)
        .open(&db.path)
        .await
        .unwrap();
    let options = WorkflowOptions::new().with_run_timeout(Duration::from_millis(300));
    engine
        .start_workflow(SLEEPY, "timed-out-closed", (), options)
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let engine = Engine::builder()
        .workflow(SLEEPY, sleepy)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .get_workflow_handle(SLEEPY, "timed-out-closed")
        .await
        .unwrap();
    assert!(
        matches!(run.result().await, Err(ResultError::TimedOut { .. })),
        "the deadline counts while the engine is closed"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_activity_on_an_empty_queue_name_fails_at_once() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(IMPATIENT, impatient)
        .activity(WORK, |_ctx: ActivityContext, ()| async {
            Ok::<_, ActivityError>(())
        })
        .open(&db.path)
        .await
        .unwrap();

    let (attempt, error_type, non_retryable) = engine
        .start_workflow(
            IMPATIENT,
            "empty-queue",
            String::new(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    assert_eq!(
        (attempt, error_type.as_str(), non_retryable),
        (1, "InvalidTaskQueue", true)
    );
    engine.shutdown().await.unwrap();
}
