//! Promise: workflow code cancels one activity on its own, deterministically,
//! with Temporal's cancellation types (temporalio/features `activity/cancel_*`):
//! try-cancel and wait-cancellation-requested resolve at once and record the
//! request (`ActivityCancelRequested`); wait-cancellation-completed records it
//! and resolves with the activity's own end; abandon records nothing and the
//! activity is never told. The running attempt sees the request through
//! `ActivityContext::is_cancelled` (and `cancelled()`, which its sleeps obey);
//! an attempt that had not begun never begins. The run-level cancel is
//! unchanged, the request survives a restart, and histories holding it
//! replay (a changed cancellation type is a nondeterminism).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityCancellationType, ActivityContext, ActivityDef, ActivityError, ActivityFailure,
    ActivityOptions, Engine, EngineBuilder, EventKind, Replayer, RetryPolicy, RetryState,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{assert_history_well_formed, eventually, temp_db};

/// What the activity does once it is told to stop.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum OnCancel {
    /// Returns an error at once.
    Stop,
    /// Finishes its work anyway and returns a value.
    Finish,
    /// Does not look: works on for 20 s, then returns a value.
    Ignore,
}

/// Heartbeats until cancelled (or for ever), then does what it is told.
const WORK: ActivityDef<OnCancel, String> = ActivityDef::new("cancel.work");
/// Fails every attempt: its retries wait an hour.
const FLAKY: ActivityDef<(), String> = ActivityDef::new("cancel.flaky");

/// (which activity, cancellation type) in, what the code saw out.
const CANCEL_ONE: WorkflowDef<(bool, Type, OnCancel), Outcome> = WorkflowDef::new("Cancel.One");
const GO_ON: SignalDef<()> = SignalDef::new("go_on");

/// `ActivityCancellationType`, as the workflow's input.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Type {
    TryCancel,
    Requested,
    Completed,
    Abandon,
}

impl Type {
    fn cancellation(self) -> ActivityCancellationType {
        match self {
            Type::TryCancel => ActivityCancellationType::TryCancel,
            Type::Requested => ActivityCancellationType::WaitCancellationRequested,
            Type::Completed => ActivityCancellationType::WaitCancellationCompleted,
            Type::Abandon => ActivityCancellationType::Abandon,
        }
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Outcome {
    Cancelled,
    Value(String),
    Other(String),
}

/// What the activity saw, shared with the test.
#[derive(Clone, Default)]
struct Seen {
    started: Arc<AtomicU32>,
    told: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

async fn work(
    seen: Seen,
    ctx: ActivityContext,
    on_cancel: OnCancel,
) -> Result<String, ActivityError> {
    seen.started.fetch_add(1, Ordering::SeqCst);
    let mut beats = 0u32;
    // Up to 2 s of heartbeating; a cancelled attempt stops at once.
    if let OnCancel::Ignore = on_cancel {
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    while !ctx.is_cancelled() && beats < 20 {
        ctx.heartbeat(&beats).unwrap();
        ctx.sleep(Duration::from_millis(100)).await;
        beats += 1;
    }
    let told = ctx.is_cancelled();
    seen.told.store(told, Ordering::SeqCst);
    seen.finished.store(true, Ordering::SeqCst);
    match (told, on_cancel) {
        (true, OnCancel::Stop) => Err(ActivityError::retryable("stopped on cancel")),
        _ => Ok(format!("finished after {beats} beats")),
    }
}

async fn cancel_one(
    ctx: WorkflowContext,
    (flaky, kind, on_cancel): (bool, Type, OnCancel),
) -> Result<Outcome, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(30))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_secs(3600)))
        .with_cancellation_type(kind.cancellation());
    let mut activity = if flaky {
        ctx.execute_activity(FLAKY, (), options)
    } else {
        ctx.execute_activity(WORK, on_cancel, options)
    };
    // Let the attempt begin (or fail, for the flaky one) first.
    ctx.sleep(Duration::from_millis(300)).await?;
    activity.cancel();
    let outcome = match activity.await {
        Ok(value) => Outcome::Value(value),
        Err(ActivityFailure::Cancelled { .. }) => Outcome::Cancelled,
        Err(other) => Outcome::Other(other.to_string()),
    };
    // The test lets the workflow close once it has checked the activity.
    ctx.recv_signal(GO_ON).await?;
    Ok(outcome)
}

fn builder(seen: &Seen) -> EngineBuilder {
    let seen = seen.clone();
    Engine::builder()
        .workflow(CANCEL_ONE, cancel_one)
        .activity(WORK, move |ctx, on_cancel| {
            work(seen.clone(), ctx, on_cancel)
        })
        .activity(FLAKY, |_ctx: ActivityContext, ()| async {
            Err::<String, _>(ActivityError::retryable("not yet"))
        })
}

/// The name of each event's kind, in order.
fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap_or("").to_string()
        })
        .collect()
}

fn has(history: &[steadfast::Event], kind: &str) -> bool {
    kinds(history).iter().any(|k| k == kind)
}

/// Starts `CANCEL_ONE` and waits until its code has awaited the cancelled
/// activity (it then waits for `GO_ON`).
async fn start(engine: &Engine, id: &str, input: (bool, Type, OnCancel)) {
    engine
        .start_workflow(CANCEL_ONE, id, input, WorkflowOptions::new())
        .await
        .unwrap();
}

async fn finish(engine: &Engine, id: &str) -> Outcome {
    engine.signal(id, GO_ON, ()).await.unwrap();
    let handle = engine.get_workflow_handle(CANCEL_ONE, id).await.unwrap();
    handle.result().await.unwrap()
}

/// The history once it holds an event of `kind`.
async fn history_with(engine: &Engine, id: &str, kind: &str) -> Vec<steadfast::Event> {
    eventually(Duration::from_secs(20), || async {
        let history = engine.history(id).await.unwrap();
        has(&history, kind).then_some(history)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_cancel_resolves_at_once_records_the_request_and_tells_the_attempt() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    start(
        &engine,
        "cancel-try",
        (false, Type::TryCancel, OnCancel::Stop),
    )
    .await;
    // The code saw Cancelled at once: it waits for GO_ON while the
    // attempt's end is recorded (not seen by the code).
    let history = history_with(&engine, "cancel-try", "ActivityFailed").await;
    assert!(
        seen.told.load(Ordering::SeqCst),
        "the attempt saw is_cancelled"
    );
    let k = kinds(&history);
    let requested = k
        .iter()
        .position(|k| k == "ActivityCancelRequested")
        .unwrap();
    let failed = k.iter().position(|k| k == "ActivityFailed").unwrap();
    assert!(requested < failed, "{k:?}");
    match &history[failed].kind {
        EventKind::ActivityFailed {
            failure,
            next_attempt_at,
            ..
        } => {
            // Final: a cancelled activity is not retried.
            assert_eq!(failure.retry_state, RetryState::CancelRequested);
            assert_eq!(*next_attempt_at, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.started.load(Ordering::SeqCst), 1);
    assert_eq!(finish(&engine, "cancel-try").await, Outcome::Cancelled);
    assert_history_well_formed(&engine.history("cancel-try").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_cancellation_requested_resolves_once_the_request_is_recorded() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    start(
        &engine,
        "cancel-requested",
        (false, Type::Requested, OnCancel::Finish),
    )
    .await;
    let history = history_with(&engine, "cancel-requested", "ActivityCompleted").await;
    assert!(has(&history, "ActivityCancelRequested"));
    assert!(seen.told.load(Ordering::SeqCst));
    // The activity finished anyway; the code had resolved as cancelled.
    assert_eq!(
        finish(&engine, "cancel-requested").await,
        Outcome::Cancelled
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_cancellation_completed_waits_for_the_activitys_end() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    // Stops when told: the code sees Cancelled after the failure.
    start(
        &engine,
        "cancel-completed",
        (false, Type::Completed, OnCancel::Stop),
    )
    .await;
    assert_eq!(
        finish(&engine, "cancel-completed").await,
        Outcome::Cancelled
    );
    let history = engine.history("cancel-completed").await.unwrap();
    assert_history_well_formed(&history);
    let failed = support::failed_events(&history);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failure.retry_state, RetryState::CancelRequested);
    engine.shutdown().await.unwrap();

    // Finishes anyway: the code gets the value.
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    start(
        &engine,
        "cancel-completed-anyway",
        (false, Type::Completed, OnCancel::Finish),
    )
    .await;
    let outcome = finish(&engine, "cancel-completed-anyway").await;
    assert!(
        matches!(&outcome, Outcome::Value(v) if v.starts_with("finished")),
        "{outcome:?}"
    );
    assert!(seen.told.load(Ordering::SeqCst));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandon_records_nothing_and_the_activity_is_never_told() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    start(
        &engine,
        "cancel-abandon",
        (false, Type::Abandon, OnCancel::Stop),
    )
    .await;
    // The activity runs its 20 beats untold, and completes.
    let history = history_with(&engine, "cancel-abandon", "ActivityCompleted").await;
    assert!(
        !has(&history, "ActivityCancelRequested"),
        "{:?}",
        kinds(&history)
    );
    assert!(seen.finished.load(Ordering::SeqCst));
    assert!(!seen.told.load(Ordering::SeqCst));
    assert_eq!(finish(&engine, "cancel-abandon").await, Outcome::Cancelled);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_has_not_begun_never_begins() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    // Attempt 1 failed; attempt 2 waits an hour. Cancelling ends it now.
    start(
        &engine,
        "cancel-backoff",
        (true, Type::Completed, OnCancel::Stop),
    )
    .await;
    assert_eq!(finish(&engine, "cancel-backoff").await, Outcome::Cancelled);
    let history = engine.history("cancel-backoff").await.unwrap();
    assert_history_well_formed(&history);
    let failed = support::failed_events(&history);
    assert_eq!(failed.len(), 2, "{:?}", kinds(&history));
    assert_eq!(failed[0].failure.retry_state, RetryState::InProgress);
    assert_eq!(failed[1].failure.error_type, "ActivityCancelled");
    assert_eq!(failed[1].failure.retry_state, RetryState::CancelRequested);
    assert_eq!(failed[1].attempt, 2, "the attempt that never began");
    assert!(!has(&history, "ActivityAttemptStarted"));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_survives_a_restart() {
    let db = temp_db();
    let seen = Seen::default();
    // The attempt does not look, so the code is still waiting for it when
    // the engine shuts down.
    let engine = builder(&seen).open(&db.path).await.unwrap();
    start(
        &engine,
        "cancel-restart",
        (false, Type::Completed, OnCancel::Ignore),
    )
    .await;
    history_with(&engine, "cancel-restart", "ActivityCancelRequested").await;
    engine.shutdown().await.unwrap();

    // The cut-off attempt counts as failed, and a cancelled activity is
    // not retried: the code sees Cancelled.
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    assert_eq!(finish(&engine, "cancel-restart").await, Outcome::Cancelled);
    assert_eq!(
        seen.started.load(Ordering::SeqCst),
        0,
        "no attempt after the restart"
    );
    let history = engine.history("cancel-restart").await.unwrap();
    assert_history_well_formed(&history);
    let failed = support::failed_events(&history);
    assert_eq!(
        failed.last().unwrap().failure.retry_state,
        RetryState::CancelRequested
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_with_cancellations_replay_and_a_changed_type_is_a_nondeterminism() {
    let db = temp_db();
    let seen = Seen::default();
    let engine = builder(&seen).open(&db.path).await.unwrap();
    for (id, kind) in [
        ("replay-try", Type::TryCancel),
        ("replay-completed", Type::Completed),
    ] {
        start(&engine, id, (false, kind, OnCancel::Stop)).await;
        history_with(&engine, id, "ActivityFailed").await;
        assert_eq!(finish(&engine, id).await, Outcome::Cancelled);
    }
    let try_cancel = engine.workflow_history("replay-try").await.unwrap();
    let completed = engine.workflow_history("replay-completed").await.unwrap();
    engine.shutdown().await.unwrap();

    let replayer = Replayer::new().workflow(CANCEL_ONE, cancel_one);
    replayer.replay(&try_cancel).unwrap();
    replayer.replay(&completed).unwrap();
    let text = try_cancel.to_json().unwrap();
    assert!(text.contains("ActivityCancelRequested"), "{text}");
    replayer
        .replay(&steadfast::WorkflowHistory::from_json(&text).unwrap())
        .unwrap();

    // The same code abandoning instead records no request: the history's
    // request is a command it no longer issues.
    let abandoning = Replayer::new().workflow(
        CANCEL_ONE,
        |ctx: WorkflowContext, (flaky, _, on_cancel): (bool, Type, OnCancel)| {
            cancel_one(ctx, (flaky, Type::Abandon, on_cancel))
        },
    );
    assert!(abandoning.replay(&try_cancel).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_activity_changes_nothing() {
    const QUICK: WorkflowDef<(), String> = WorkflowDef::new("Cancel.Quick");
    const ECHO: ActivityDef<(), String> = ActivityDef::new("cancel.echo");
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(QUICK, |ctx: WorkflowContext, ()| async move {
            let options = ActivityOptions::start_to_close(Duration::from_secs(5));
            let mut first = ctx.execute_activity(ECHO, (), options.clone());
            let value = (&mut first).await?;
            first.cancel();
            Ok::<_, WorkflowError>(value)
        })
        .activity(ECHO, |_ctx: ActivityContext, ()| async {
            Ok("echo".to_string())
        })
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(QUICK, "cancel-done", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "echo");
    let history = engine.history("cancel-done").await.unwrap();
    assert!(!has(&history, "ActivityCancelRequested"));
    engine.shutdown().await.unwrap();
}
