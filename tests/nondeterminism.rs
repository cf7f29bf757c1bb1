//! Promise: workflow code that no longer matches a run's history (a code
//! change that is not replay-safe) parks the run instead of failing it: the
//! run stays Running, the nondeterminism error names the workflow, the event,
//! what the history holds and what the code did, nothing recorded is
//! discarded, and the run resumes and completes once code that matches is
//! deployed. Changes made through `ctx.patched(..)` replay old runs on the
//! old branch and run new ones on the new branch. A panicking workflow is
//! parked the same way. A signal to another workflow is checked by its
//! target, run ID included.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, Event,
    EventKind, ParkReason, RunId, SignalDef, WorkflowContext, WorkflowDef, WorkflowDescription,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::OpenDb;

const ACTIVITY_A: ActivityDef<String, String> = ActivityDef::new("A");
const ACTIVITY_B: ActivityDef<String, String> = ActivityDef::new("B");
/// The same durable name is registered with different code per engine,
/// as a deployment of changed code would.
const ORDER: WorkflowDef<u64, String> = WorkflowDef::new("Order");

// Per-test counters: each test uses its own activity implementations.
static NDE_A_RUNS: AtomicUsize = AtomicUsize::new(0);
static NDE_B_RUNS: AtomicUsize = AtomicUsize::new(0);
static PATCH_A_RUNS: AtomicUsize = AtomicUsize::new(0);
static PATCH_B_RUNS: AtomicUsize = AtomicUsize::new(0);

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5))
}

async fn nde_a(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    NDE_A_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("A({input})"))
}

async fn nde_b(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    NDE_B_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("B({input})"))
}

async fn patch_a(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    PATCH_A_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("A({input})"))
}

async fn patch_b(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    PATCH_B_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("B({input})"))
}

async fn uncounted_a(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(format!("A({input})"))
}

/// The original code: activity A, then a timer of `millis`.
async fn order_v1(ctx: WorkflowContext, millis: u64) -> Result<String, WorkflowError> {
    let a = ctx
        .execute_activity(ACTIVITY_A, "x".to_string(), options())
        .await?;
    ctx.sleep(Duration::from_millis(millis)).await?;
    Ok(a)
}

/// A change that is not replay-safe: activity B where A was.
async fn order_v2_broken(ctx: WorkflowContext, millis: u64) -> Result<String, WorkflowError> {
    let b = ctx
        .execute_activity(ACTIVITY_B, "x".to_string(), options())
        .await?;
    ctx.sleep(Duration::from_millis(millis)).await?;
    Ok(b)
}

/// Another change that is not replay-safe: the timer removed.
async fn order_v2_no_timer(ctx: WorkflowContext, _millis: u64) -> Result<String, WorkflowError> {
    Ok(ctx
        .execute_activity(ACTIVITY_A, "x".to_string(), options())
        .await?)
}

/// The same change made replay-safe with `patched`.
async fn order_v2_patched(ctx: WorkflowContext, millis: u64) -> Result<String, WorkflowError> {
    let result = if ctx.patched("use-b") {
        ctx.execute_activity(ACTIVITY_B, "x".to_string(), options())
            .await?
    } else {
        ctx.execute_activity(ACTIVITY_A, "x".to_string(), options())
            .await?
    };
    ctx.sleep(Duration::from_millis(millis)).await?;
    Ok(result)
}

fn nde_engine() -> EngineBuilder {
    Engine::builder()
        .activity(ACTIVITY_A, nde_a)
        .activity(ACTIVITY_B, nde_b)
}

fn patch_engine() -> EngineBuilder {
    Engine::builder()
        .activity(ACTIVITY_A, patch_a)
        .activity(ACTIVITY_B, patch_b)
}

async fn wait_for_timer_started(engine: &Engine, workflow_id: &str) {
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(workflow_id).await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
            .then_some(())
    })
    .await;
}

async fn wait_for_parked(engine: &Engine, workflow_id: &str) -> WorkflowDescription {
    support::eventually(Duration::from_secs(10), || async {
        let description = engine.describe(workflow_id).await.ok()?;
        description.parked.is_some().then_some(description)
    })
    .await
}

fn activity_types(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityScheduled { activity_type, .. } => Some(activity_type.clone()),
            _ => None,
        })
        .collect()
}

fn patches(history: &[Event]) -> Vec<(u64, String)> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::PatchRecorded { patch_id } => Some((e.event_id, patch_id.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn changed_code_parks_the_run_and_fixed_code_resumes_it() {
    let db = support::temp_db();
    let id = "order-nde";

    // First deployment: A, then a 3 s timer. Shut down while it waits.
    let engine = nde_engine()
        .workflow(ORDER, order_v1)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(ORDER, id, 3000, WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = run.run_id();
    wait_for_timer_started(&engine, id).await;
    let recorded = engine.history(id).await.unwrap();
    engine.shutdown().await.unwrap();
    assert_eq!(activity_types(&recorded), ["A"]);
    let scheduled_a = recorded
        .iter()
        .find(|e| matches!(e.kind, EventKind::ActivityScheduled { .. }))
        .unwrap()
        .event_id;

    // Second deployment: B where history has A.
    let engine = nde_engine()
        .workflow(ORDER, order_v2_broken)
        .open(&db.path)
        .await
        .unwrap();
    let description = wait_for_parked(&engine, id).await;
    assert_eq!(
        description.status,
        WorkflowStatus::Running,
        "parked, not failed"
    );
    assert_eq!(description.run_id, run_id);
    assert_eq!(description.close_time, None);
    let error = match description.parked {
        Some(ParkReason::Nondeterminism(error)) => error,
        other => panic!("expected a nondeterminism park, got {other:?}"),
    };
    assert_eq!(error.workflow_id, id);
    assert_eq!(error.run_id, run_id);
    assert_eq!(error.event_id, scheduled_a, "it names the mismatched event");
    assert!(
        error.history.contains("ActivityScheduled") && error.history.contains("\"A\""),
        "it says what history holds: {}",
        error.history
    );
    assert!(
        error.code.contains("ActivityScheduled") && error.code.contains("\"B\""),
        "it says what the code did: {}",
        error.code
    );
    let message = error.to_string();
    for part in [id, &run_id.to_string(), &scheduled_a.to_string()] {
        assert!(message.contains(part), "{message:?} should name {part:?}");
    }

    // Nothing discarded, nothing added: the history is as recorded.
    assert_eq!(engine.history(id).await.unwrap(), recorded);
    // The broken code did not get to run B, and A did not run again.
    assert_eq!(NDE_B_RUNS.load(Ordering::SeqCst), 0);
    assert_eq!(NDE_A_RUNS.load(Ordering::SeqCst), 1);
    // A handle keeps waiting on a parked run rather than reporting a failure.
    let handle = engine.get_workflow_handle(ORDER, id).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), handle.result())
            .await
            .is_err(),
        "a parked run has no result yet"
    );
    engine.shutdown().await.unwrap();

    // Third deployment: the original code again. The run resumes.
    let engine = nde_engine()
        .workflow(ORDER, order_v1)
        .open(&db.path)
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(ORDER, id).await.unwrap();
    assert_eq!(handle.run_id(), run_id);
    assert_eq!(handle.result().await.unwrap(), "A(x)");
    let description = engine.describe(id).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.parked, None);
    let history = engine.history(id).await.unwrap();
    assert_eq!(&history[..recorded.len()], &recorded[..]);
    assert_eq!(activity_types(&history), ["A"]);
    assert_eq!(NDE_A_RUNS.load(Ordering::SeqCst), 1, "A ran once in all");
    assert_eq!(NDE_B_RUNS.load(Ordering::SeqCst), 0);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn code_that_does_less_than_history_is_nondeterminism() {
    let db = support::temp_db();
    let id = "order-removed-timer";
    let engine = Engine::builder()
        .activity(ACTIVITY_A, uncounted_a)
        .workflow(ORDER, order_v1)
        .open(&db.path)
        .await
        .unwrap();
    let run_id = engine
        .start_workflow(ORDER, id, 3000, WorkflowOptions::new())
        .await
        .unwrap()
        .run_id();
    wait_for_timer_started(&engine, id).await;
    let recorded = engine.history(id).await.unwrap();
    engine.shutdown().await.unwrap();
    let timer_started = recorded
        .iter()
        .find(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
        .unwrap()
        .event_id;

    // Without the timer the code would complete where history has the timer.
    let engine = Engine::builder()
        .activity(ACTIVITY_A, uncounted_a)
        .workflow(ORDER, order_v2_no_timer)
        .open(&db.path)
        .await
        .unwrap();
    let description = wait_for_parked(&engine, id).await;
    assert_eq!(
        description.status,
        WorkflowStatus::Running,
        "parked, not completed"
    );
    let error = match description.parked {
        Some(ParkReason::Nondeterminism(error)) => error,
        other => panic!("expected a nondeterminism park, got {other:?}"),
    };
    assert_eq!(error.workflow_id, id);
    assert_eq!(error.run_id, run_id);
    assert_eq!(error.event_id, timer_started);
    assert!(error.history.contains("TimerStarted"), "{}", error.history);
    assert!(error.code.contains("WorkflowCompleted"), "{}", error.code);
    assert_eq!(engine.history(id).await.unwrap(), recorded);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn patched_replays_old_runs_on_the_old_branch_and_new_runs_on_the_new() {
    let db = support::temp_db();

    // A run started by the old code, which has no `patched` call.
    let engine = patch_engine()
        .workflow(ORDER, order_v1)
        .open(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(ORDER, "order-old", 1500, WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_timer_started(&engine, "order-old").await;
    engine.shutdown().await.unwrap();

    // The new code replays it on the old branch (patched is false) ...
    let engine = patch_engine()
        .workflow(ORDER, order_v2_patched)
        .open(&db.path)
        .await
        .unwrap();
    let old = engine
        .get_workflow_handle(ORDER, "order-old")
        .await
        .unwrap();
    // ... and a new run takes the new branch (patched is true).
    let new = engine
        .start_workflow(ORDER, "order-new", 1500, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(old.result().await.unwrap(), "A(x)");
    let description = engine.describe("order-old").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.parked, None);
    let history = engine.history("order-old").await.unwrap();
    assert_eq!(activity_types(&history), ["A"]);
    assert_eq!(patches(&history), [], "an old run records no patch marker");

    // The new run is cut off by a restart too: its marker replays as true.
    wait_for_timer_started(&engine, "order-new").await;
    engine.shutdown().await.unwrap();
    let engine = patch_engine()
        .workflow(ORDER, order_v2_patched)
        .open(&db.path)
        .await
        .unwrap();
    let new = engine
        .get_workflow_handle(ORDER, new.workflow_id())
        .await
        .unwrap();
    assert_eq!(new.result().await.unwrap(), "B(x)");
    let history = engine.history("order-new").await.unwrap();
    assert_eq!(activity_types(&history), ["B"]);
    let markers = patches(&history);
    assert_eq!(markers.len(), 1, "one PatchRecorded: {history:#?}");
    assert_eq!(markers[0].1, "use-b");
    let scheduled_b = history
        .iter()
        .find(|e| matches!(e.kind, EventKind::ActivityScheduled { .. }))
        .unwrap()
        .event_id;
    assert!(markers[0].0 < scheduled_b, "the marker comes before B");

    assert_eq!(PATCH_A_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(PATCH_B_RUNS.load(Ordering::SeqCst), 1);
    engine.shutdown().await.unwrap();
}

const PANICKY: WorkflowDef<(), String> = WorkflowDef::new("Panicky");

async fn panicky(_ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    panic!("deliberate panic in workflow code");
}

async fn fixed(_ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    Ok("fixed".to_string())
}

#[tokio::test]
async fn a_panicking_workflow_is_parked_not_failed() {
    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(PANICKY, panicky)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(PANICKY, "panicky", (), WorkflowOptions::new())
        .await
        .unwrap();
    let description = wait_for_parked(&engine, "panicky").await;
    assert_eq!(
        description.status,
        WorkflowStatus::Running,
        "parked, not failed"
    );
    match &description.parked {
        Some(ParkReason::Panic(message)) => {
            assert!(message.contains("deliberate panic"), "{message}")
        }
        other => panic!("expected a panic park, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), run.result())
            .await
            .is_err(),
        "a parked run has no result yet"
    );
    let history = engine.history("panicky").await.unwrap();
    assert_eq!(history.len(), 1, "only WorkflowStarted: {history:#?}");
    engine.shutdown().await.unwrap();

    // Fixed code resumes it.
    let engine = Engine::builder()
        .workflow(PANICKY, fixed)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .get_workflow_handle(PANICKY, "panicky")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "fixed");
    let description = engine.describe("panicky").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.parked, None);
    engine.shutdown().await.unwrap();
}

// ----- a signal to another workflow that now names a run -----

const PING: SignalDef<u32> = SignalDef::new("ping");
const DONE: SignalDef<()> = SignalDef::new("done");

/// Collects `ping`s until a 0.
const INBOX: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("Inbox");

async fn inbox(ctx: WorkflowContext, _: ()) -> Result<Vec<u32>, WorkflowError> {
    let mut got = Vec::new();
    loop {
        match ctx.recv_signal(PING).await? {
            0 => return Ok(got),
            n => got.push(n),
        }
    }
}

/// Signals the inbox (by its ID and run), then waits for `done`.
const NOTIFY: WorkflowDef<(String, RunId), String> = WorkflowDef::new("Notify");

/// Signals the inbox's latest run.
async fn notify_latest(
    ctx: WorkflowContext,
    (target, _run): (String, RunId),
) -> Result<String, WorkflowError> {
    ctx.signal_external_workflow(target, None, PING, 1).await?;
    ctx.recv_signal(DONE).await?;
    Ok("done".into())
}

/// The same, naming the inbox's run: another command.
async fn notify_run(
    ctx: WorkflowContext,
    (target, run): (String, RunId),
) -> Result<String, WorkflowError> {
    ctx.signal_external_workflow(target, Some(run), PING, 1)
        .await?;
    ctx.recv_signal(DONE).await?;
    Ok("done".into())
}

#[tokio::test]
async fn a_signal_to_another_workflow_that_now_names_its_run_parks_with_the_diff() {
    let db = support::temp_db();
    let id = "notify-nde";
    let engine = Engine::builder()
        .workflow(INBOX, inbox)
        .workflow(NOTIFY, notify_latest)
        .open_db(&db.path)
        .await
        .unwrap();
    let target = engine
        .start_workflow(INBOX, "inbox-nde", (), WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = engine
        .start_workflow(
            NOTIFY,
            id,
            ("inbox-nde".to_string(), target.run_id()),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .run_id();
    let recorded = support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(id).await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ExternalWorkflowSignaled { .. }))
            .then_some(history)
    })
    .await;
    engine.shutdown().await.unwrap();
    let initiated = recorded
        .iter()
        .find(|e| matches!(e.kind, EventKind::SignalExternalWorkflowInitiated { .. }))
        .unwrap()
        .event_id;

    // Code that names the target's run where history named none.
    let engine = Engine::builder()
        .workflow(INBOX, inbox)
        .workflow(NOTIFY, notify_run)
        .open_db(&db.path)
        .await
        .unwrap();
    engine.signal(id, DONE, ()).await.unwrap();
    let description = wait_for_parked(&engine, id).await;
    assert_eq!(description.status, WorkflowStatus::Running);
    let error = match description.parked {
        Some(ParkReason::Nondeterminism(error)) => error,
        other => panic!("expected a nondeterminism park, got {other:?}"),
    };
    assert_eq!(error.run_id, run_id);
    assert_eq!(error.event_id, initiated, "it names the signal's command");
    assert!(
        error.history.contains("SignalExternalWorkflowInitiated")
            && error.history.contains("latest run"),
        "it says what history holds: {}",
        error.history
    );
    assert!(
        error.code.contains("SignalExternalWorkflowInitiated")
            && error.code.contains(&format!("run {}", target.run_id())),
        "it says what the code did: {}",
        error.code
    );
    // Nothing sent again: the inbox got the one signal.
    let pings = |history: &[Event]| {
        history
            .iter()
            .filter(|e| {
                matches!(&e.kind,
                    EventKind::WorkflowSignaled { signal_name, .. }
                    | EventKind::WorkflowSignaledWithOptions { signal_name, .. }
                        if signal_name == "ping")
            })
            .count()
    };
    assert_eq!(pings(&engine.history("inbox-nde").await.unwrap()), 1);
    engine.shutdown().await.unwrap();

    // The original code resumes it.
    let engine = Engine::builder()
        .workflow(INBOX, inbox)
        .workflow(NOTIFY, notify_latest)
        .open_db(&db.path)
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(NOTIFY, id).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "done");
    engine.signal("inbox-nde", PING, 0).await.unwrap();
    let inbox = engine
        .get_workflow_handle(INBOX, "inbox-nde")
        .await
        .unwrap();
    assert_eq!(inbox.result().await.unwrap(), [1]);
    engine.shutdown().await.unwrap();
}
