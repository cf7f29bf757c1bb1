//! Promise: a signal that arrives while the workflow is returning, before
//! its close is committed, is not refused (Temporal's `signal/prevent_close`).
//! The close is withdrawn and the code runs again with the signal delivered
//! together with the event it had returned on: code that drains its
//! signals before returning reads it, and code that does not has it
//! recorded as unread by its close. Either way the signal is acknowledged,
//! and the history replays to the same result after a reopen.
//!
//! The race is made certain, not likely: on the single-threaded runtime of
//! `#[tokio::test]`, `join!` of two signals puts both messages in the run's
//! inbox before its actor runs, so the second one arrives while the
//! activation of the first (which returns) has not been committed; and a
//! signal sent from a task an activity spawns arrives right after the
//! activity's result, before the actor runs.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, EventKind,
    QueryDef, SignalDef, SignalDelivery, UnreadSignals, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};
use support::temp_db;

/// Waits for `go`, drains `extra`, returns what it read.
const DRAINS: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Drains");
/// Waits for `go` and returns at once.
const RETURNS: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Returns");

/// Runs `signal_late`, then drains `extra`, returns what it read.
const AFTER_ACTIVITY: WorkflowDef<(), Vec<String>> = WorkflowDef::new("AfterActivity");
/// Sends `extra` to `after-activity` from a task it spawns, then returns.
const SIGNAL_LATE: ActivityDef<(), ()> = ActivityDef::new("signal_late");

const GO: SignalDef<String> = SignalDef::new("go");
const EXTRA: SignalDef<String> = SignalDef::new("extra");
const SEEN: QueryDef<Vec<String>> = QueryDef::new("seen");

async fn drains(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = seen.clone();
    ctx.handle_query(SEEN, move || shared.lock().unwrap().clone());
    let go = ctx.recv_signal(GO).await?;
    seen.lock().unwrap().push(go);
    while let Some(extra) = ctx.try_recv_signal(EXTRA)? {
        seen.lock().unwrap().push(extra);
    }
    let seen = seen.lock().unwrap().clone();
    Ok(seen)
}

/// The engine `signal_late` signals through, and its signal's outcome.
static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
#[allow(clippy::type_complexity)]
static LATE: Mutex<Option<tokio::task::JoinHandle<Result<(), ClientError>>>> = Mutex::new(None);

async fn after_activity(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    ctx.execute_activity(SIGNAL_LATE, (), options).await?;
    let mut seen = Vec::new();
    while let Some(extra) = ctx.try_recv_signal(EXTRA)? {
        seen.push(extra);
    }
    Ok(seen)
}

async fn signal_late(_ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
    let engine = ENGINE
        .lock()
        .unwrap()
        .clone()
        .expect("the test set the engine");
    // Runs once this attempt's task yields, which is after it has handed
    // its result to the run: so the signal arrives while the activation
    // that result wakes (which returns) is not committed.
    let late = tokio::spawn(async move {
        engine
            .signal("after-activity", EXTRA, "late".to_string())
            .await
    });
    *LATE.lock().unwrap() = Some(late);
    Ok(())
}

async fn returns(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    Ok(vec![ctx.recv_signal(GO).await?])
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(DRAINS, drains)
        .workflow(RETURNS, returns)
        .workflow(AFTER_ACTIVITY, after_activity)
        .activity(SIGNAL_LATE, signal_late)
        .open(path)
        .await
        .expect("open the engine")
}

/// Sends `go` and `extra` so that `extra` arrives while the activation that
/// `go` woke is returning.
async fn race_the_close(engine: &Engine, workflow_id: &str) {
    let (go, extra) = futures::join!(
        engine.signal(workflow_id, GO, "go".to_string()),
        engine.signal(workflow_id, EXTRA, "late".to_string()),
    );
    go.unwrap();
    extra.expect("a signal sent before the close is committed is not refused");
}

#[tokio::test]
async fn a_signal_racing_the_close_is_read_by_code_that_drains() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(DRAINS, "drains", (), WorkflowOptions::new())
        .await
        .unwrap();
    race_the_close(&engine, "drains").await;
    let expected = vec!["go".to_string(), "late".to_string()];
    assert_eq!(run.result().await.unwrap(), expected);
    let history = engine.history("drains").await.unwrap();
    support::assert_history_well_formed(&history);
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::SignalsUnread { .. })),
        "{history:#?}"
    );
    // Replayed from the file (a query of the closed run), the code reads
    // both signals again, at the same point.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    assert_eq!(
        engine.query("drains", SEEN).await.unwrap(),
        expected,
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signal_racing_the_close_of_code_that_does_not_read_it_is_recorded_unread() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(RETURNS, "returns", (), WorkflowOptions::new())
        .await
        .unwrap();
    race_the_close(&engine, "returns").await;
    assert_eq!(run.result().await.unwrap(), vec!["go".to_string()]);
    assert_eq!(
        engine.describe("returns").await.unwrap().unread_signals,
        vec![UnreadSignals {
            signal_name: "extra".into(),
            count: 1,
        }]
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signal_racing_the_close_after_an_activity_is_delivered_with_its_result() {
    let db = temp_db();
    let engine = open(&db.path).await;
    *ENGINE.lock().unwrap() = Some(engine.clone());
    let run = engine
        .start_workflow(AFTER_ACTIVITY, "after-activity", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), vec!["late".to_string()]);
    let late = LATE.lock().unwrap().take().expect("the activity ran");
    late.await
        .unwrap()
        .expect("a signal sent before the close is committed is not refused");
    // The close was withdrawn: the signal is recorded before the result the
    // code had returned on, delivered with it.
    let history = engine.history("after-activity").await.unwrap();
    support::assert_history_well_formed(&history);
    let kinds: Vec<&EventKind> = history.iter().map(|e| &e.kind).collect();
    let signal = kinds
        .iter()
        .position(|k| {
            matches!(
                k,
                EventKind::WorkflowSignaledWithOptions {
                    delivery: SignalDelivery::WithNext,
                    ..
                }
            )
        })
        .unwrap_or_else(|| panic!("no signal delivered with the next event: {history:#?}"));
    assert!(
        matches!(kinds[signal + 1], EventKind::ActivityCompleted { .. }),
        "{history:#?}"
    );
    *ENGINE.lock().unwrap() = None;
    engine.shutdown().await.unwrap();
}
