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
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use redb::{ReadableDatabase, ReadableTable};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ActivityOptionsRecord, Engine,
    EngineBuilder, Event, EventKind, ListFilter, ParkReason, Payload, ResultError, RetryPolicy,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
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
    Ok(format!("{greeting} / {flaky} / {stamp} / patched={patched}"))
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
    if std::env::var("STEADFAST_WRITE_FIXTURES").as_deref() != Ok("1") {
        eprintln!("set STEADFAST_WRITE_FIXTURES=1 to write {FIXTURE}");
        return;
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    assert!(
        !target.exists(),
        "{} exists; fixtures are never regenerated",
        target.display()
    );
    let db = support::temp_db();
    let engine = builder()
        .workflow(RESERVE, reserve_a)
        .activity(DELIVER, |ctx: ActivityContext, _parcel: String| async move {
            ctx.heartbeat(&"halfway".to_string())
                .map_err(|e| ActivityError::non_retryable(e.to_string()))?;
            // In flight when the engine shuts down.
            std::future::pending::<Result<String, ActivityError>>().await
        })
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
    assert!(matches!(run.result().await, Err(ResultError::Failed { .. })));
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
