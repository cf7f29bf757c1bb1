//! Promise: files written by format 1 keep opening and running.
//!
//! `tests/fixtures/format-1.steadfast` was written once by the build that
//! froze format 1 (`write_format_1_fixture`, ignored, and refusing to
//! overwrite the file) and is never regenerated. The test opens a copy with
//! today's code and checks, through the public API, every run it holds:
//! closed runs keep their histories and results; running runs resume (the
//! activity attempt cut off at shutdown runs again, the past-due timer fires,
//! the buffered signals are read in order, once); the run whose code changed
//! is parked with a nondeterminism error and completes with its old code.
//! It also reads the raw tables with redb: every record starts with the
//! record-version byte 1 and the meta table holds store format 1.
//! See FORMAT.md for the layout.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ActivityOptionsRecord, Engine,
    EngineBuilder, Event, EventKind, ListFilter, ParkReason, Payload, ResultError, RetryPolicy,
    RetryState, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::failure;

/// The fixture, relative to the crate root.
const FIXTURE: &str = "tests/fixtures/format-1.steadfast";

// ----- Workflow IDs, one per case -----

const COMPLETED_ID: &str = "format1-closed-completed";
const FAILED_ID: &str = "format1-closed-failed";
const CANCELLED_ID: &str = "format1-closed-cancelled";
const TERMINATED_ID: &str = "format1-closed-terminated";
const TIMED_OUT_ID: &str = "format1-closed-timed-out";
const PENDING_ACTIVITY_ID: &str = "format1-running-pending-activity";
const PENDING_TIMER_ID: &str = "format1-running-pending-timer";
const FAR_TIMER_ID: &str = "format1-running-far-timer";
const SIGNALS_ID: &str = "format1-running-buffered-signals";
const PARKED_ID: &str = "format1-running-parked-on-nondeterminism";

const ALL_IDS: [&str; 10] = [
    COMPLETED_ID,
    FAILED_ID,
    CANCELLED_ID,
    TERMINATED_ID,
    TIMED_OUT_ID,
    PENDING_ACTIVITY_ID,
    PENDING_TIMER_ID,
    FAR_TIMER_ID,
    SIGNALS_ID,
    PARKED_ID,
];

// ----- Definitions (their names are in the file: never rename them) -----

/// A patch marker, a side effect, an activity, a retried activity, a timer.
const COMPLETED: WorkflowDef<String, String> = WorkflowDef::new("Format1.Completed");
/// Returns an error of type `OutOfStock`.
const FAILED: WorkflowDef<u32, String> = WorkflowDef::new("Format1.Failed");
/// Waits for a signal that never comes (cancelled, terminated).
const WAIT_FOREVER: WorkflowDef<(), String> = WorkflowDef::new("Format1.WaitForever");
/// Sleeps an hour under a short run timeout.
const TIMED_OUT: WorkflowDef<(), String> = WorkflowDef::new("Format1.TimedOut");
/// One activity, whose first attempt was in flight at shutdown.
const PENDING_ACTIVITY: WorkflowDef<String, String> = WorkflowDef::new("Format1.PendingActivity");
/// A timer of `TIMER_MILLIS`, pending at shutdown.
const PENDING_TIMER: WorkflowDef<(), String> = WorkflowDef::new("Format1.PendingTimer");
/// A timer due a hundred years after generation.
const FAR_TIMER: WorkflowDef<(), String> = WorkflowDef::new("Format1.FarTimer");
/// A timer of `TIMER_MILLIS`, then the given number of `item` signals.
const SIGNALS: WorkflowDef<u32, Vec<String>> = WorkflowDef::new("Format1.BufferedSignals");
/// Code A: activity `format1.reserve`, then a `confirm` signal. Code B:
/// activity `format1.reserve_v2` first.
const RESERVE: WorkflowDef<String, String> = WorkflowDef::new("Format1.Reserve");

const GREET: ActivityDef<String, String> = ActivityDef::new("format1.greet");
const FLAKY: ActivityDef<String, String> = ActivityDef::new("format1.flaky");
const DELIVER: ActivityDef<String, String> = ActivityDef::new("format1.deliver");
const RESERVE_A: ActivityDef<String, String> = ActivityDef::new("format1.reserve");
const RESERVE_B: ActivityDef<String, String> = ActivityDef::new("format1.reserve_v2");

const NEVER: SignalDef<String> = SignalDef::new("format1.never");
const ITEM: SignalDef<String> = SignalDef::new("format1.item");
const CONFIRM: SignalDef<String> = SignalDef::new("format1.confirm");

/// The pending timers' length at generation: long enough that the
/// generator shuts down before they fire.
const TIMER_MILLIS: u64 = 2000;
const FAR_TIMER_SECS: u64 = 100 * 365 * 24 * 3600;
const SIGNAL_PAYLOADS: [&str; 3] = ["first", "second", "third"];

fn greet_options() -> ActivityOptions {
    ActivityOptions::schedule_to_close(Duration::from_secs(30))
}

fn flaky_options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(10))
            .with_backoff_coefficient(1.5)
            .with_maximum_interval(Duration::from_secs(1))
            .with_maximum_attempts(3)
            .with_non_retryable_error_type("Fatal"),
    )
}

fn deliver_options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(60))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(10)))
}

fn reserve_options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5))
}

async fn completed(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let patched = ctx.patched("format1-patch");
    let stamp: String = ctx.side_effect(|| "side-effect-value".to_string())?;
    let greeting = ctx.execute_activity(GREET, name, greet_options()).await?;
    let flaky = ctx
        .execute_activity(FLAKY, "retried".to_string(), flaky_options())
        .await?;
    ctx.sleep(Duration::from_millis(10)).await?;
    Ok(format!(
        "{greeting} / {flaky} / {stamp} / patched={patched}"
    ))
}

async fn failed(_ctx: WorkflowContext, order: u32) -> Result<String, WorkflowError> {
    Err(WorkflowError::new(format!("order {order} is out of stock")).with_type("OutOfStock"))
}

async fn wait_forever(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    match ctx.recv_signal(NEVER).await {
        Ok(value) => Ok(value),
        Err(_) => Err(WorkflowError::new("cancelled while waiting").with_type("Cancelled")),
    }
}

async fn timed_out(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok("woke".to_string())
}

async fn pending_activity(ctx: WorkflowContext, parcel: String) -> Result<String, WorkflowError> {
    Ok(ctx
        .execute_activity(DELIVER, parcel, deliver_options())
        .await?)
}

async fn pending_timer(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_millis(TIMER_MILLIS)).await?;
    Ok("timer fired".to_string())
}

async fn far_timer(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_secs(FAR_TIMER_SECS)).await?;
    Ok("a century later".to_string())
}

async fn buffered_signals(ctx: WorkflowContext, n: u32) -> Result<Vec<String>, WorkflowError> {
    ctx.sleep(Duration::from_millis(TIMER_MILLIS)).await?;
    let mut received = Vec::new();
    for _ in 0..n {
        received.push(ctx.recv_signal(ITEM).await?);
    }
    Ok(received)
}

/// Code A of `Format1.Reserve`, which wrote the parked run's history.
async fn reserve_a(ctx: WorkflowContext, seat: String) -> Result<String, WorkflowError> {
    let reserved = ctx
        .execute_activity(RESERVE_A, seat, reserve_options())
        .await?;
    let who = ctx.recv_signal(CONFIRM).await?;
    Ok(format!("{reserved}, confirmed by {who}"))
}

/// Code B of `Format1.Reserve`: a different first command.
async fn reserve_b(ctx: WorkflowContext, seat: String) -> Result<String, WorkflowError> {
    let reserved = ctx
        .execute_activity(RESERVE_B, seat, reserve_options())
        .await?;
    let who = ctx.recv_signal(CONFIRM).await?;
    Ok(format!("{reserved} (v2), confirmed by {who}"))
}

async fn greet(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

async fn flaky(ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    match ctx.attempt() {
        1 => Err(ActivityError::retryable("warming up").with_type("WarmingUp")),
        n => Ok(format!("{input} on attempt {n}")),
    }
}

async fn reserve_seat(_ctx: ActivityContext, seat: String) -> Result<String, ActivityError> {
    Ok(format!("reserved {seat}"))
}

async fn reserve_seat_v2(_ctx: ActivityContext, seat: String) -> Result<String, ActivityError> {
    Ok(format!("reserved {seat} with v2"))
}

/// Every definition except `Format1.PendingActivity`'s activity and the two
/// codes of `Format1.Reserve`, which differ per engine.
fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(COMPLETED, completed)
        .workflow(FAILED, failed)
        .workflow(WAIT_FOREVER, wait_forever)
        .workflow(TIMED_OUT, timed_out)
        .workflow(PENDING_ACTIVITY, pending_activity)
        .workflow(PENDING_TIMER, pending_timer)
        .workflow(FAR_TIMER, far_timer)
        .workflow(SIGNALS, buffered_signals)
        .activity(GREET, greet)
        .activity(FLAKY, flaky)
        .activity(RESERVE_A, reserve_seat)
        .activity(RESERVE_B, reserve_seat_v2)
}

async fn wait_for_event(engine: &Engine, workflow_id: &str, pred: fn(&EventKind) -> bool) {
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(workflow_id).await.ok()?;
        history.iter().any(|e| pred(&e.kind)).then_some(())
    })
    .await;
}

// ----- The generator: run once, by the build that froze format 1 -----

/// Writes `tests/fixtures/format-1.steadfast`. Ignored, and a no-op
/// unless `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the fixture.
/// Kept to show how the file was made, never to make it again: a fixture of
/// format N is written by the build that introduced format N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the format 1 fixture; run once with STEADFAST_WRITE_FIXTURES=1"]
async fn write_format_1_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder()
        .workflow(RESERVE, reserve_a)
        .activity(
            DELIVER,
            |ctx: ActivityContext, _parcel: String| async move {
                ctx.heartbeat(&"halfway".to_string())
                    .map_err(|e| ActivityError::non_retryable(e.to_string()))?;
                // In flight when the engine shuts down.
                std::future::pending::<Result<String, ActivityError>>().await
            },
        )
        .open(&db.path)
        .await
        .unwrap();
    let opts = WorkflowOptions::new;

    // Closed runs.
    let result = engine
        .start_workflow(COMPLETED, COMPLETED_ID, "alice".to_string(), opts())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(
        result,
        "Hello, alice! / retried on attempt 2 / side-effect-value / patched=true"
    );
    let run = engine
        .start_workflow(FAILED, FAILED_ID, 42, opts())
        .await
        .unwrap();
    assert!(matches!(
        run.result().await,
        Err(ResultError::Failed { .. })
    ));
    let run = engine
        .start_workflow(WAIT_FOREVER, CANCELLED_ID, (), opts())
        .await
        .unwrap();
    engine.cancel(CANCELLED_ID).await.unwrap();
    assert!(matches!(
        run.result().await,
        Err(ResultError::Cancelled { .. })
    ));
    let run = engine
        .start_workflow(WAIT_FOREVER, TERMINATED_ID, (), opts())
        .await
        .unwrap();
    engine
        .terminate(TERMINATED_ID, "format1: terminated by an operator")
        .await
        .unwrap();
    assert!(matches!(
        run.result().await,
        Err(ResultError::Terminated { .. })
    ));
    let run = engine
        .start_workflow(
            TIMED_OUT,
            TIMED_OUT_ID,
            (),
            opts().with_run_timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    assert!(matches!(
        run.result().await,
        Err(ResultError::TimedOut { .. })
    ));

    // Running runs.
    engine
        .start_workflow(RESERVE, PARKED_ID, "seat-12A".to_string(), opts())
        .await
        .unwrap();
    wait_for_event(&engine, PARKED_ID, |k| {
        matches!(k, EventKind::ActivityCompleted { .. })
    })
    .await;
    engine
        .start_workflow(
            PENDING_ACTIVITY,
            PENDING_ACTIVITY_ID,
            "parcel-7".to_string(),
            opts(),
        )
        .await
        .unwrap();
    wait_for_event(&engine, PENDING_ACTIVITY_ID, |k| {
        matches!(k, EventKind::ActivityHeartbeat { .. })
    })
    .await;
    engine
        .start_workflow(FAR_TIMER, FAR_TIMER_ID, (), opts())
        .await
        .unwrap();
    engine
        .start_workflow(PENDING_TIMER, PENDING_TIMER_ID, (), opts())
        .await
        .unwrap();
    engine
        .start_workflow(SIGNALS, SIGNALS_ID, 3, opts())
        .await
        .unwrap();
    for item in SIGNAL_PAYLOADS {
        engine
            .signal(SIGNALS_ID, ITEM, item.to_string())
            .await
            .unwrap();
    }
    let mut histories = BTreeMap::new();
    for id in ALL_IDS {
        histories.insert(id, engine.history(id).await.unwrap());
    }
    engine.shutdown().await.unwrap();
    for (id, history) in &histories {
        assert!(
            !history
                .iter()
                .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
                || matches!(*id, COMPLETED_ID),
            "{id}: a timer fired before shutdown; lengthen TIMER_MILLIS"
        );
        eprintln!("{id}: {history:#?}");
    }

    // Into place only once complete, never over an existing file.
    let bytes = std::fs::read(&db.path).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .expect("create the fixture (it must not exist)");
    std::io::Write::write_all(&mut out, &bytes).unwrap();
    out.sync_all().unwrap();
    eprintln!("wrote {} ({} bytes)", target.display(), bytes.len());
}

// ----- The test: today's code opens the format 1 file -----

/// A copy of the fixture in a temporary folder: opening a file writes to it.
/// The name of an event's kind, for comparing histories at a glance.
fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::WorkflowStarted { .. } => "WorkflowStarted",
        EventKind::ActivityScheduled { .. } => "ActivityScheduled",
        EventKind::ActivityAttemptStarted { .. } => "ActivityAttemptStarted",
        EventKind::ActivityCompleted { .. } => "ActivityCompleted",
        EventKind::ActivityFailed { .. } => "ActivityFailed",
        EventKind::TimerStarted { .. } => "TimerStarted",
        EventKind::TimerFired { .. } => "TimerFired",
        EventKind::SideEffectRecorded { .. } => "SideEffectRecorded",
        EventKind::PatchRecorded { .. } => "PatchRecorded",
        EventKind::WorkflowSignaled { .. } => "WorkflowSignaled",
        EventKind::WorkflowCancelRequested { .. } => "WorkflowCancelRequested",
        EventKind::ActivityHeartbeat { .. } => "ActivityHeartbeat",
        EventKind::WorkflowCompleted { .. } => "WorkflowCompleted",
        EventKind::WorkflowFailed { .. } => "WorkflowFailed",
        EventKind::WorkflowCancelled { .. } => "WorkflowCancelled",
        EventKind::WorkflowTerminated { .. } => "WorkflowTerminated",
        EventKind::WorkflowTimedOut { .. } => "WorkflowTimedOut",
        _ => "a kind format 1 does not have",
    }
}

/// Checks event IDs 1..n and the kinds in order.
fn assert_kinds(workflow_id: &str, history: &[Event], expected: &[&str]) {
    let kinds: Vec<&str> = history.iter().map(|e| kind_name(&e.kind)).collect();
    assert_eq!(kinds, expected, "{workflow_id}: {history:#?}");
    for (i, event) in history.iter().enumerate() {
        assert_eq!(
            event.event_id,
            i as u64 + 1,
            "{workflow_id}: event ids 1..n"
        );
    }
}

fn json(payload: &Payload) -> String {
    payload.as_json()
}

/// Checks a `WorkflowStarted` event's fields.
fn assert_started(event: &Event, workflow_type: &str, workflow_id: &str, input: &str) {
    match &event.kind {
        EventKind::WorkflowStarted {
            workflow_type: t,
            workflow_id: id,
            task_queue,
            input: i,
            execution_timeout,
            ..
        } => {
            assert_eq!(t, workflow_type);
            assert_eq!(id, workflow_id);
            assert_eq!(task_queue, steadfast::DEFAULT_TASK_QUEUE);
            assert_eq!(json(i), input, "{workflow_id}: input");
            assert_eq!(*execution_timeout, None);
        }
        other => panic!("{workflow_id}: expected WorkflowStarted, got {other:?}"),
    }
}

fn options_record(
    schedule_to_close: Option<Duration>,
    start_to_close: Option<Duration>,
    initial_interval: Duration,
    backoff_coefficient: f64,
    maximum_interval: Duration,
    maximum_attempts: u32,
    non_retryable_error_types: &[&str],
) -> ActivityOptionsRecord {
    ActivityOptionsRecord {
        schedule_to_close_timeout: schedule_to_close,
        start_to_close_timeout: start_to_close,
        initial_interval,
        backoff_coefficient,
        maximum_interval,
        maximum_attempts,
        non_retryable_error_types: non_retryable_error_types
            .iter()
            .map(|s| s.to_string())
            .collect(),
        heartbeat_timeout: None,
        schedule_to_start_timeout: None,
        task_queue: None,
    }
}

fn assert_scheduled(
    event: &Event,
    seq: u32,
    activity_type: &str,
    input: &str,
    options: &ActivityOptionsRecord,
) {
    match &event.kind {
        EventKind::ActivityScheduled {
            seq: s,
            activity_type: t,
            input: i,
            options: o,
        } => {
            assert_eq!(
                (*s, t.as_str(), json(i).as_str()),
                (seq, activity_type, input)
            );
            assert_eq!(o, options, "{activity_type}: options");
        }
        other => panic!("expected ActivityScheduled, got {other:?}"),
    }
}

fn assert_activity_completed(event: &Event, seq: u32, attempt: u32, result: &str) {
    match &event.kind {
        EventKind::ActivityCompleted {
            seq: s,
            attempt: a,
            result: r,
        } => assert_eq!((*s, *a, json(r).as_str()), (seq, attempt, result)),
        other => panic!("expected ActivityCompleted, got {other:?}"),
    }
}

fn timer_started(event: &Event, seq: u32) -> SystemTime {
    match &event.kind {
        EventKind::TimerStarted { seq: s, fire_at } => {
            assert_eq!(*s, seq);
            *fire_at
        }
        other => panic!("expected TimerStarted, got {other:?}"),
    }
}

fn assert_closed_description(
    description: &steadfast::WorkflowDescription,
    status: WorkflowStatus,
    len: u64,
) {
    assert_eq!(description.status, status, "{description:?}");
    assert_eq!(description.history_length, len, "{description:?}");
    assert_eq!(description.parked, None);
    assert!(description.pending_activities.is_empty());
    assert!(description.pending_timers.is_empty());
    let closed = description
        .close_time
        .expect("a closed run has a close time");
    assert!(closed >= description.start_time, "{description:?}");
}

async fn check_closed_runs(engine: &Engine) {
    // Completed: a patch marker, a side effect, two activities (one
    // retried) and a timer.
    let history = engine.history(COMPLETED_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        COMPLETED_ID,
        &history,
        &[
            "WorkflowStarted",
            "PatchRecorded",
            "SideEffectRecorded",
            "ActivityScheduled",
            "ActivityCompleted",
            "ActivityScheduled",
            "ActivityFailed",
            "ActivityAttemptStarted",
            "ActivityCompleted",
            "TimerStarted",
            "TimerFired",
            "WorkflowCompleted",
        ],
    );
    assert_started(&history[0], "Format1.Completed", COMPLETED_ID, "\"alice\"");
    assert!(
        matches!(&history[1].kind, EventKind::PatchRecorded { patch_id } if patch_id == "format1-patch")
    );
    assert!(matches!(
        &history[2].kind,
        EventKind::SideEffectRecorded { seq: 1, value } if json(value) == "\"side-effect-value\""
    ));
    let greet = options_record(
        Some(Duration::from_secs(30)),
        None,
        Duration::from_secs(1),
        2.0,
        Duration::from_secs(100),
        0,
        &[],
    );
    assert_scheduled(&history[3], 2, "format1.greet", "\"alice\"", &greet);
    assert_activity_completed(&history[4], 2, 1, "\"Hello, alice!\"");
    let flaky = options_record(
        None,
        Some(Duration::from_secs(5)),
        Duration::from_millis(10),
        1.5,
        Duration::from_secs(1),
        3,
        &["Fatal"],
    );
    assert_scheduled(&history[5], 3, "format1.flaky", "\"retried\"", &flaky);
    match &history[6].kind {
        EventKind::ActivityFailed {
            seq: 3,
            attempt: 1,
            failure: f,
            next_attempt_at: Some(at),
        } => {
            // Recorded before format 6: no details, and the retry state
            // its event shows (a next attempt: in progress).
            assert_eq!(
                f,
                &failure("WarmingUp", "warming up", false).with_retry_state(RetryState::InProgress)
            );
            assert!(*at >= history[6].timestamp);
        }
        other => panic!("expected a retried ActivityFailed, got {other:?}"),
    }
    assert!(matches!(
        history[7].kind,
        EventKind::ActivityAttemptStarted { seq: 3, attempt: 2 }
    ));
    assert_activity_completed(&history[8], 3, 2, "\"retried on attempt 2\"");
    timer_started(&history[9], 4);
    assert!(matches!(history[10].kind, EventKind::TimerFired { seq: 4 }));
    let result = "Hello, alice! / retried on attempt 2 / side-effect-value / patched=true";
    assert!(matches!(
        &history[11].kind,
        EventKind::WorkflowCompleted { result: r } if json(r) == format!("{result:?}")
    ));
    let handle = engine
        .get_workflow_handle(COMPLETED, COMPLETED_ID)
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), result);
    let description = engine.describe(COMPLETED_ID).await.unwrap();
    assert_closed_description(&description, WorkflowStatus::Completed, 12);
    assert_eq!(description.workflow_type, "Format1.Completed");
    assert_eq!(description.run_id, handle.run_id());

    // Failed.
    let history = engine.history(FAILED_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(FAILED_ID, &history, &["WorkflowStarted", "WorkflowFailed"]);
    assert_started(&history[0], "Format1.Failed", FAILED_ID, "42");
    let out_of_stock = failure("OutOfStock", "order 42 is out of stock", true)
        .with_retry_state(RetryState::RetryPolicyNotSet);
    assert!(
        matches!(&history[1].kind, EventKind::WorkflowFailed { failure: f } if *f == out_of_stock)
    );
    let handle = engine.get_workflow_handle(FAILED, FAILED_ID).await.unwrap();
    match handle.result().await {
        Err(ResultError::Failed {
            workflow_id,
            run_id,
            failure: f,
        }) => {
            assert_eq!((workflow_id.as_str(), run_id), (FAILED_ID, handle.run_id()));
            assert_eq!(f, out_of_stock);
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let description = engine.describe(FAILED_ID).await.unwrap();
    assert_closed_description(&description, WorkflowStatus::Failed, 2);

    // Cancelled.
    let history = engine.history(CANCELLED_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        CANCELLED_ID,
        &history,
        &[
            "WorkflowStarted",
            "WorkflowCancelRequested",
            "WorkflowCancelled",
        ],
    );
    assert_started(&history[0], "Format1.WaitForever", CANCELLED_ID, "null");
    assert!(matches!(
        &history[1].kind,
        EventKind::WorkflowCancelRequested { reason } if reason == "cancelled by a client"
    ));
    let cancelled = failure("Cancelled", "cancelled while waiting", true)
        .with_retry_state(RetryState::RetryPolicyNotSet);
    assert!(
        matches!(&history[2].kind, EventKind::WorkflowCancelled { failure: f } if *f == cancelled)
    );
    let handle = engine
        .get_workflow_handle(WAIT_FOREVER, CANCELLED_ID)
        .await
        .unwrap();
    match handle.result().await {
        Err(ResultError::Cancelled { failure: f, .. }) => assert_eq!(f, cancelled),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    let description = engine.describe(CANCELLED_ID).await.unwrap();
    assert_closed_description(&description, WorkflowStatus::Cancelled, 3);

    // Terminated.
    let history = engine.history(TERMINATED_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        TERMINATED_ID,
        &history,
        &["WorkflowStarted", "WorkflowTerminated"],
    );
    let reason = "format1: terminated by an operator";
    assert!(matches!(&history[1].kind, EventKind::WorkflowTerminated { reason: r } if r == reason));
    let handle = engine
        .get_workflow_handle(WAIT_FOREVER, TERMINATED_ID)
        .await
        .unwrap();
    match handle.result().await {
        Err(ResultError::Terminated { reason: r, .. }) => assert_eq!(r, reason),
        other => panic!("expected Terminated, got {other:?}"),
    }
    let description = engine.describe(TERMINATED_ID).await.unwrap();
    assert_closed_description(&description, WorkflowStatus::Terminated, 2);

    // Timed out: its hour's timer never fired.
    let history = engine.history(TIMED_OUT_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        TIMED_OUT_ID,
        &history,
        &["WorkflowStarted", "TimerStarted", "WorkflowTimedOut"],
    );
    assert!(matches!(
        history[0].kind,
        EventKind::WorkflowStarted { run_timeout: Some(t), .. } if t == Duration::from_millis(50)
    ));
    timer_started(&history[1], 1);
    assert!(matches!(
        &history[2].kind,
        EventKind::WorkflowTimedOut { timeout } if timeout == "WorkflowRunTimeout"
    ));
    let handle = engine
        .get_workflow_handle(TIMED_OUT, TIMED_OUT_ID)
        .await
        .unwrap();
    match handle.result().await {
        Err(ResultError::TimedOut { timeout, .. }) => assert_eq!(timeout, "WorkflowRunTimeout"),
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let description = engine.describe(TIMED_OUT_ID).await.unwrap();
    assert_closed_description(&description, WorkflowStatus::TimedOut, 3);
}

/// What `Format1.PendingActivity`'s activity saw: its attempt and the
/// heartbeat details of the attempt before.
type Seen = (u32, Option<String>);

/// The test's `format1.deliver`: reports its start, then waits for `gate`.
fn deliver(
    gate: Arc<tokio::sync::Semaphore>,
    seen: tokio::sync::mpsc::UnboundedSender<Seen>,
) -> impl Fn(
    ActivityContext,
    String,
) -> futures::future::BoxFuture<'static, Result<String, ActivityError>>
+ Send
+ Sync
+ 'static {
    move |ctx: ActivityContext, parcel: String| {
        let gate = gate.clone();
        let seen = seen.clone();
        Box::pin(async move {
            let before: Option<String> = ctx
                .heartbeat_details()
                .map_err(|e| ActivityError::non_retryable(e.to_string()))?;
            let _ = seen.send((ctx.attempt(), before.clone()));
            let _permit = gate
                .acquire()
                .await
                .map_err(|e| ActivityError::non_retryable(e.to_string()))?;
            Ok(format!(
                "delivered {parcel} on attempt {}, after {}",
                ctx.attempt(),
                before.unwrap_or_default()
            ))
        })
    }
}

/// The events of the running runs as the fixture holds them.
fn assert_running_prefixes(histories: &BTreeMap<String, Vec<Event>>) {
    let h = |id: &str| &histories[id];

    let pending = h(PENDING_ACTIVITY_ID);
    assert_kinds(
        PENDING_ACTIVITY_ID,
        &pending[..3],
        &["WorkflowStarted", "ActivityScheduled", "ActivityHeartbeat"],
    );
    assert_started(
        &pending[0],
        "Format1.PendingActivity",
        PENDING_ACTIVITY_ID,
        "\"parcel-7\"",
    );
    let deliver = options_record(
        None,
        Some(Duration::from_secs(60)),
        Duration::from_millis(10),
        2.0,
        Duration::from_secs(1),
        0,
        &[],
    );
    assert_scheduled(&pending[1], 1, "format1.deliver", "\"parcel-7\"", &deliver);
    assert!(matches!(
        &pending[2].kind,
        EventKind::ActivityHeartbeat { seq: 1, attempt: 1, details } if json(details) == "\"halfway\""
    ));

    for (id, workflow_type) in [
        (PENDING_TIMER_ID, "Format1.PendingTimer"),
        (FAR_TIMER_ID, "Format1.FarTimer"),
    ] {
        assert_kinds(id, &h(id)[..2], &["WorkflowStarted", "TimerStarted"]);
        assert_started(&h(id)[0], workflow_type, id, "null");
        let fire_at = timer_started(&h(id)[1], 1);
        assert!(fire_at > h(id)[1].timestamp);
    }

    let signals = h(SIGNALS_ID);
    assert_kinds(
        SIGNALS_ID,
        &signals[..5],
        &[
            "WorkflowStarted",
            "TimerStarted",
            "WorkflowSignaled",
            "WorkflowSignaled",
            "WorkflowSignaled",
        ],
    );
    assert_started(&signals[0], "Format1.BufferedSignals", SIGNALS_ID, "3");
    for (event, item) in signals[2..5].iter().zip(SIGNAL_PAYLOADS) {
        assert!(
            matches!(
                &event.kind,
                EventKind::WorkflowSignaled { signal_name, input }
                    if signal_name == "format1.item" && json(input) == format!("{item:?}")
            ),
            "{event:?}"
        );
    }

    let parked = h(PARKED_ID);
    assert_kinds(
        PARKED_ID,
        &parked[..3],
        &["WorkflowStarted", "ActivityScheduled", "ActivityCompleted"],
    );
    assert_started(&parked[0], "Format1.Reserve", PARKED_ID, "\"seat-12A\"");
    let reserve = options_record(
        None,
        Some(Duration::from_secs(5)),
        Duration::from_secs(1),
        2.0,
        Duration::from_secs(100),
        0,
        &[],
    );
    assert_scheduled(&parked[1], 1, "format1.reserve", "\"seat-12A\"", &reserve);
    assert_activity_completed(&parked[2], 1, 1, "\"reserved seat-12A\"");
}

async fn list_statuses(engine: &Engine) -> BTreeMap<String, WorkflowStatus> {
    let page = engine
        .list(&ListFilter::new().with_page_size(100))
        .await
        .unwrap();
    assert_eq!(page.next_page_token, None);
    let statuses: BTreeMap<String, WorkflowStatus> = page
        .executions
        .iter()
        .map(|run| (run.workflow_id.clone(), run.status))
        .collect();
    assert_eq!(
        page.executions.len(),
        statuses.len(),
        "one run per workflow ID"
    );
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_1_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    let raw = raw::check(&db.path);

    // Open with code B of `Format1.Reserve`, and a `format1.deliver` that
    // waits for the test.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = builder()
        .workflow(RESERVE, reserve_b)
        .activity(DELIVER, deliver(gate.clone(), seen_tx.clone()))
        .open(&db.path)
        .await
        .unwrap();

    // Every run is listed; the closed ones with their status.
    let statuses = list_statuses(&engine).await;
    let ids: Vec<&str> = statuses.keys().map(String::as_str).collect();
    let mut expected_ids = ALL_IDS.to_vec();
    expected_ids.sort();
    assert_eq!(ids, expected_ids);
    for (id, status) in [
        (COMPLETED_ID, WorkflowStatus::Completed),
        (FAILED_ID, WorkflowStatus::Failed),
        (CANCELLED_ID, WorkflowStatus::Cancelled),
        (TERMINATED_ID, WorkflowStatus::Terminated),
        (TIMED_OUT_ID, WorkflowStatus::TimedOut),
    ] {
        assert_eq!(statuses[id], status, "{id}");
    }

    // What the engine reads is what the raw tables hold, for the closed
    // runs; the running ones may have moved on, never rewritten.
    check_closed_runs(&engine).await;
    let mut histories = BTreeMap::new();
    for id in ALL_IDS {
        let history = engine.history(id).await.unwrap();
        let stored = &raw.histories[id];
        assert_eq!(
            &history[..stored.len()],
            &stored[..],
            "{id}: the stored events"
        );
        histories.insert(id.to_string(), history);
    }
    assert_running_prefixes(&histories);

    // The attempt in flight at shutdown counts as interrupted; the next one
    // gets its heartbeat.
    assert_eq!(
        seen_rx.recv().await.unwrap(),
        (2, Some("halfway".to_string()))
    );
    let description = engine.describe(PENDING_ACTIVITY_ID).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert_eq!(description.parked, None);
    assert!(description.pending_timers.is_empty());
    let [pending] = &description.pending_activities[..] else {
        panic!("one pending activity: {description:?}");
    };
    assert_eq!(
        (pending.seq, pending.activity_type.as_str()),
        (1, "format1.deliver")
    );
    assert_eq!(pending.attempt, 2);
    assert_eq!(pending.next_attempt_at, None);
    assert_eq!(
        pending.last_failure.as_ref().map(|f| f.error_type.as_str()),
        Some("AttemptInterrupted")
    );
    assert_eq!(
        pending.last_heartbeat.as_ref().map(json).as_deref(),
        Some("\"halfway\"")
    );
    gate.add_permits(1);
    let handle = engine
        .get_workflow_handle(PENDING_ACTIVITY, PENDING_ACTIVITY_ID)
        .await
        .unwrap();
    assert_eq!(
        handle.result().await.unwrap(),
        "delivered parcel-7 on attempt 2, after halfway"
    );
    let history = engine.history(PENDING_ACTIVITY_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        PENDING_ACTIVITY_ID,
        &history,
        &[
            "WorkflowStarted",
            "ActivityScheduled",
            "ActivityHeartbeat",
            "ActivityFailed",
            "ActivityAttemptStarted",
            "ActivityCompleted",
            "WorkflowCompleted",
        ],
    );
    assert!(matches!(
        &history[3].kind,
        EventKind::ActivityFailed { seq: 1, attempt: 1, failure: f, next_attempt_at: Some(_) }
            if f.error_type == "AttemptInterrupted" && !f.non_retryable
    ));
    assert!(matches!(
        history[4].kind,
        EventKind::ActivityAttemptStarted { seq: 1, attempt: 2 }
    ));
    assert_activity_completed(
        &history[5],
        1,
        2,
        "\"delivered parcel-7 on attempt 2, after halfway\"",
    );
    assert!(seen_rx.try_recv().is_err(), "no other attempt ran");

    // The past-due timer fires.
    let handle = engine
        .get_workflow_handle(PENDING_TIMER, PENDING_TIMER_ID)
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "timer fired");
    let history = engine.history(PENDING_TIMER_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        PENDING_TIMER_ID,
        &history,
        &[
            "WorkflowStarted",
            "TimerStarted",
            "TimerFired",
            "WorkflowCompleted",
        ],
    );

    // The buffered signals are read in order, once each.
    let handle = engine
        .get_workflow_handle(SIGNALS, SIGNALS_ID)
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), SIGNAL_PAYLOADS);
    let history = engine.history(SIGNALS_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_kinds(
        SIGNALS_ID,
        &history,
        &[
            "WorkflowStarted",
            "TimerStarted",
            "WorkflowSignaled",
            "WorkflowSignaled",
            "WorkflowSignaled",
            "TimerFired",
            "WorkflowCompleted",
        ],
    );

    // The far timer is pending, due when the fixture said.
    let far_fire_at = timer_started(&raw.histories[FAR_TIMER_ID][1], 1);
    let description = engine.describe(FAR_TIMER_ID).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert_eq!(description.parked, None);
    assert_eq!(description.history_length, 2);
    assert!(description.pending_activities.is_empty());
    let [timer] = &description.pending_timers[..] else {
        panic!("one pending timer: {description:?}");
    };
    assert_eq!((timer.seq, timer.fire_at), (1, far_fire_at));

    // Code B parks the run written by code A, naming the first command.
    let parked = support::eventually(Duration::from_secs(10), || async {
        let description = engine.describe(PARKED_ID).await.ok()?;
        description.parked.is_some().then_some(description)
    })
    .await;
    assert_eq!(parked.status, WorkflowStatus::Running, "parked, not failed");
    assert_eq!(parked.close_time, None);
    let error = match &parked.parked {
        Some(ParkReason::Nondeterminism(error)) => error,
        other => panic!("expected a nondeterminism park, got {other:?}"),
    };
    assert_eq!(error.workflow_id, PARKED_ID);
    assert_eq!(error.run_id, parked.run_id);
    assert_eq!(
        error.event_id, 2,
        "the ActivityScheduled of format1.reserve"
    );
    assert!(
        error.history.contains("\"format1.reserve\""),
        "{}",
        error.history
    );
    assert!(
        error.code.contains("\"format1.reserve_v2\""),
        "{}",
        error.code
    );
    assert_eq!(
        engine.history(PARKED_ID).await.unwrap(),
        raw.histories[PARKED_ID],
        "a parked run's history is left as it was"
    );

    let statuses = list_statuses(&engine).await;
    for id in [PENDING_ACTIVITY_ID, PENDING_TIMER_ID, SIGNALS_ID] {
        assert_eq!(statuses[id], WorkflowStatus::Completed, "{id}");
    }
    for id in [FAR_TIMER_ID, PARKED_ID] {
        assert_eq!(statuses[id], WorkflowStatus::Running, "{id}");
    }
    engine.shutdown().await.unwrap();

    // Code A again: the parked run resumes and completes.
    let engine = builder()
        .workflow(RESERVE, reserve_a)
        .activity(DELIVER, deliver(gate.clone(), seen_tx))
        .open(&db.path)
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(RESERVE, PARKED_ID)
        .await
        .unwrap();
    assert_eq!(handle.run_id(), parked.run_id);
    engine
        .signal(PARKED_ID, CONFIRM, "bob".to_string())
        .await
        .unwrap();
    assert_eq!(
        handle.result().await.unwrap(),
        "reserved seat-12A, confirmed by bob"
    );
    let description = engine.describe(PARKED_ID).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.parked, None);
    let history = engine.history(PARKED_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(&history[..3], &raw.histories[PARKED_ID][..]);
    assert_kinds(
        PARKED_ID,
        &history,
        &[
            "WorkflowStarted",
            "ActivityScheduled",
            "ActivityCompleted",
            "WorkflowSignaled",
            "WorkflowCompleted",
        ],
    );
    assert!(seen_rx.try_recv().is_err());
    let far = engine.describe(FAR_TIMER_ID).await.unwrap();
    assert_eq!(far.status, WorkflowStatus::Running);
    assert_eq!(far.pending_timers.len(), 1);
    engine.shutdown().await.unwrap();
}

/// The fixture read with redb and bincode directly, as FORMAT.md lays it
/// out, with frozen copies of the format 1 types that the crate keeps
/// private.
mod raw {
    use super::*;

    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("steadfast_meta");
    const WORKFLOWS: redb::TableDefinition<&str, u128> = redb::TableDefinition::new("workflows");
    const RUNS: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("runs");
    const RUNNING: redb::TableDefinition<u128, u64> = redb::TableDefinition::new("running");
    const WAKEUPS: redb::TableDefinition<(u64, u128), ()> = redb::TableDefinition::new("wakeups");
    const HISTORY: redb::TableDefinition<(u128, u64), &[u8]> = support::HISTORY;

    const WAKE_NOW: u64 = 0;
    const WAKE_NEVER: u64 = u64::MAX;

    /// `RunRecord` of format 1, field by field in order.
    #[derive(Debug, serde::Deserialize)]
    struct RunRecordV1 {
        workflow_id: String,
        workflow_type: String,
        task_queue: String,
        status: StatusV1,
        start_time: SystemTime,
        close_time: Option<SystemTime>,
        history_len: u64,
    }

    /// `WorkflowStatus` of format 1: the variant index is the value.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum StatusV1 {
        Running = 0,
        Completed = 1,
        Failed = 2,
        Cancelled = 3,
        Terminated = 4,
        TimedOut = 5,
    }

    pub(super) struct Raw {
        /// Each run's events, decoded from the history table.
        pub(super) histories: BTreeMap<String, Vec<Event>>,
    }

    fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        assert_eq!(bytes.first(), Some(&1), "the record-version byte");
        let (value, read) =
            bincode::serde::decode_from_slice(&bytes[1..], bincode::config::standard()).unwrap();
        assert_eq!(read, bytes.len() - 1, "no trailing bytes");
        value
    }

    // bincode 2's standard configuration, written out by hand.
    fn varint(out: &mut Vec<u8>, v: u64) {
        if v < 251 {
            out.push(v as u8);
        } else if v <= u16::MAX as u64 {
            out.push(251);
            out.extend((v as u16).to_le_bytes());
        } else if v <= u32::MAX as u64 {
            out.push(252);
            out.extend((v as u32).to_le_bytes());
        } else {
            out.push(253);
            out.extend(v.to_le_bytes());
        }
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        varint(out, s.len() as u64);
        out.extend(s.as_bytes());
    }

    fn time(out: &mut Vec<u8>, t: SystemTime) {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        varint(out, d.as_secs());
        varint(out, d.subsec_nanos() as u64);
    }

    /// An event's bytes: version 1, event ID, timestamp, the `EventKind`
    /// variant index, then the variant's fields.
    fn event_bytes(event: &Event, variant: u64, fields: &[u8]) -> Vec<u8> {
        let mut out = vec![1];
        varint(&mut out, event.event_id);
        time(&mut out, event.timestamp);
        varint(&mut out, variant);
        out.extend(fields);
        out
    }

    /// Reads every table; checks the format version, the version byte of
    /// every record, the indexes, and a few records byte for byte.
    pub(super) fn check(path: &Path) -> Raw {
        let db = redb::Database::create(path).expect("open the fixture with redb");
        let txn = db.begin_read().unwrap();

        let meta = txn.open_table(META).unwrap();
        let version = meta.get("format_version").unwrap().expect("format_version");
        assert_eq!(
            version.value(),
            1u32.to_le_bytes(),
            "store format 1, little-endian u32"
        );
        assert_eq!(meta.len().unwrap(), 1);

        let workflows = txn.open_table(WORKFLOWS).unwrap();
        let mut run_of = BTreeMap::new();
        for entry in workflows.iter().unwrap() {
            let (id, run) = entry.unwrap();
            run_of.insert(run.value(), id.value().to_string());
        }
        let mut ids: Vec<&str> = run_of.values().map(String::as_str).collect();
        ids.sort();
        let mut expected = ALL_IDS.to_vec();
        expected.sort();
        assert_eq!(ids, expected);

        let runs = txn.open_table(RUNS).unwrap();
        let mut records = BTreeMap::new();
        let mut failed_run_bytes = Vec::new();
        for entry in runs.iter().unwrap() {
            let (run, bytes) = entry.unwrap();
            let record: RunRecordV1 = decode_record(bytes.value());
            assert_eq!(run_of.get(&run.value()), Some(&record.workflow_id));
            assert_eq!(record.task_queue, steadfast::DEFAULT_TASK_QUEUE);
            if record.workflow_id == FAILED_ID {
                failed_run_bytes = bytes.value().to_vec();
            }
            records.insert(record.workflow_id.clone(), record);
        }
        assert_eq!(records.len(), ALL_IDS.len());

        let history = txn.open_table(HISTORY).unwrap();
        let mut histories: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        let mut raw_events: BTreeMap<(String, u64), Vec<u8>> = BTreeMap::new();
        for entry in history.iter().unwrap() {
            let (key, bytes) = entry.unwrap();
            let (run, event_id) = key.value();
            let id = run_of
                .get(&run)
                .expect("every history belongs to a run")
                .clone();
            let event = support::decode_event(bytes.value());
            assert_eq!(
                bytes.value()[0],
                1,
                "format 1 wrote event records version 1"
            );
            assert_eq!(event.event_id, event_id, "{id}: key and event ID agree");
            let events = histories.entry(id.clone()).or_default();
            assert_eq!(event_id, events.len() as u64 + 1, "{id}: event IDs 1..n");
            events.push(event);
            raw_events.insert((id, event_id), bytes.value().to_vec());
        }

        // Each record's status and length; closed runs' records are
        // written at the close, open runs' at the start.
        for (id, status, len) in [
            (COMPLETED_ID, StatusV1::Completed, 12),
            (FAILED_ID, StatusV1::Failed, 2),
            (CANCELLED_ID, StatusV1::Cancelled, 3),
            (TERMINATED_ID, StatusV1::Terminated, 2),
            (TIMED_OUT_ID, StatusV1::TimedOut, 3),
            (PENDING_ACTIVITY_ID, StatusV1::Running, 2),
            (PENDING_TIMER_ID, StatusV1::Running, 2),
            (FAR_TIMER_ID, StatusV1::Running, 2),
            (SIGNALS_ID, StatusV1::Running, 2),
            (PARKED_ID, StatusV1::Running, 2),
        ] {
            let record = &records[id];
            assert_eq!(record.status, status, "{id}");
            assert_eq!(record.history_len, len, "{id}");
            assert_eq!(
                record.close_time.is_some(),
                status != StatusV1::Running,
                "{id}"
            );
            assert!(record.start_time <= histories[id][0].timestamp, "{id}");
            assert!(!record.workflow_type.is_empty());
            if status != StatusV1::Running {
                assert_eq!(histories[id].len() as u64, len, "{id}");
            }
        }
        let fixture_lengths = [
            (PENDING_ACTIVITY_ID, 3),
            (PENDING_TIMER_ID, 2),
            (FAR_TIMER_ID, 2),
            (SIGNALS_ID, 5),
            (PARKED_ID, 3),
        ];
        for (id, len) in fixture_lengths {
            assert_eq!(histories[id].len(), len, "{id}");
        }

        // The wake hints: now for the attempt in flight, never for the run
        // waiting on a signal, the timer's due time in milliseconds for the
        // others; `wakeups` holds the same without the never.
        let due_ms = |id: &str| match histories[id][1].kind {
            EventKind::TimerStarted { fire_at, .. } => fire_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
            _ => panic!("{id}: a TimerStarted second"),
        };
        let expected_hints: BTreeMap<String, u64> = [
            (PENDING_ACTIVITY_ID, WAKE_NOW),
            (PARKED_ID, WAKE_NEVER),
            (PENDING_TIMER_ID, due_ms(PENDING_TIMER_ID)),
            (FAR_TIMER_ID, due_ms(FAR_TIMER_ID)),
            (SIGNALS_ID, due_ms(SIGNALS_ID)),
        ]
        .into_iter()
        .map(|(id, hint)| (id.to_string(), hint))
        .collect();
        let running = txn.open_table(RUNNING).unwrap();
        let mut wake_hints = BTreeMap::new();
        for entry in running.iter().unwrap() {
            let (run, hint) = entry.unwrap();
            wake_hints.insert(run_of[&run.value()].clone(), hint.value());
        }
        assert_eq!(wake_hints, expected_hints);
        let wakeups = txn.open_table(WAKEUPS).unwrap();
        let mut woken = BTreeMap::new();
        for entry in wakeups.iter().unwrap() {
            let (key, _) = entry.unwrap();
            let (hint, run) = key.value();
            woken.insert(run_of[&run].clone(), hint);
        }
        let mut expected_wakeups = expected_hints.clone();
        expected_wakeups.remove(PARKED_ID);
        assert_eq!(woken, expected_wakeups);

        // Byte for byte: WorkflowTimedOut (variant 16).
        let timed_out = &histories[TIMED_OUT_ID][2];
        let mut fields = Vec::new();
        string(&mut fields, "WorkflowRunTimeout");
        assert_eq!(
            raw_events[&(TIMED_OUT_ID.to_string(), 3)],
            event_bytes(timed_out, 16, &fields)
        );
        // TimerFired (variant 6) with seq 4.
        let fired = &histories[COMPLETED_ID][10];
        assert_eq!(
            raw_events[&(COMPLETED_ID.to_string(), 11)],
            event_bytes(fired, 6, &[4])
        );
        // WorkflowFailed (variant 13): a Failure is two strings and a bool.
        let failed = &histories[FAILED_ID][1];
        let mut fields = Vec::new();
        string(&mut fields, "OutOfStock");
        string(&mut fields, "order 42 is out of stock");
        fields.push(1);
        assert_eq!(
            raw_events[&(FAILED_ID.to_string(), 2)],
            event_bytes(failed, 13, &fields)
        );
        // WorkflowSignaled (variant 9): a payload is JSON bytes, length first.
        let signaled = &histories[SIGNALS_ID][2];
        let mut fields = Vec::new();
        string(&mut fields, "format1.item");
        string(&mut fields, "\"first\"");
        assert_eq!(
            raw_events[&(SIGNALS_ID.to_string(), 3)],
            event_bytes(signaled, 9, &fields)
        );
        // The failed run's record.
        let record = &records[FAILED_ID];
        let mut expected = vec![1];
        string(&mut expected, FAILED_ID);
        string(&mut expected, "Format1.Failed");
        string(&mut expected, "default");
        varint(&mut expected, 2);
        time(&mut expected, record.start_time);
        expected.push(1);
        time(&mut expected, record.close_time.unwrap());
        varint(&mut expected, 2);
        assert_eq!(failed_run_bytes, expected);

        Raw { histories }
    }
}
