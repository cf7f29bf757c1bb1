//! Promise: an acknowledged signal is never dropped silently. A workflow
//! can take buffered signals without waiting (`try_recv_signal`, the same
//! on replay, also across a restart), so it can drain them before it
//! returns; the signals it still leaves unread are recorded by its close
//! (`SignalsUnread`, just before the close event), `describe` shows them,
//! and a `tracing` warning names them.

mod support;

use std::path::Path;

use steadfast::{
    Engine, EventKind, SignalDef, UnreadSignals, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::temp_db;

/// Waits for `go`, then returns without reading `cancel`.
const CARELESS: WorkflowDef<(), ()> = WorkflowDef::new("Careless");
/// Waits for `go`, drains `cancel`, waits for `finish`, drains `cancel`
/// again; returns both counts.
const DRAINING: WorkflowDef<(), (u32, u32)> = WorkflowDef::new("Draining");

const GO: SignalDef<()> = SignalDef::new("go");
const FINISH: SignalDef<()> = SignalDef::new("finish");
const CANCEL: SignalDef<String> = SignalDef::new("cancel");

async fn careless(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn draining(ctx: WorkflowContext, _: ()) -> Result<(u32, u32), WorkflowError> {
    ctx.recv_signal(GO).await?;
    let mut first = 0;
    while ctx.try_recv_signal(CANCEL)?.is_some() {
        first += 1;
    }
    ctx.recv_signal(FINISH).await?;
    let mut second = 0;
    while ctx.try_recv_signal(CANCEL)?.is_some() {
        second += 1;
    }
    Ok((first, second))
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(CARELESS, careless)
        .workflow(DRAINING, draining)
        .open(path)
        .await
        .expect("open the engine")
}

#[tokio::test]
async fn signals_left_unread_are_recorded_by_the_close_and_described() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(CARELESS, "careless", (), WorkflowOptions::new())
        .await
        .unwrap();
    for i in 0..3 {
        engine
            .signal("careless", CANCEL, format!("reason {i}"))
            .await
            .unwrap();
    }
    engine.signal("careless", GO, ()).await.unwrap();
    run.result().await.unwrap();

    let history = engine.history("careless").await.unwrap();
    let n = history.len();
    assert!(
        matches!(history[n - 1].kind, EventKind::WorkflowCompleted { .. }),
        "{history:#?}"
    );
    let expected = vec![UnreadSignals {
        signal_name: "cancel".into(),
        count: 3,
    }];
    assert!(
        matches!(&history[n - 2].kind, EventKind::SignalsUnread { signals } if *signals == expected),
        "{history:#?}"
    );
    let description = engine.describe("careless").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.unread_signals, expected);

    // The same after a reopen, and a query-free replay of the closed run
    // does not record anything again.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    assert_eq!(
        engine.describe("careless").await.unwrap().unread_signals,
        expected
    );
    assert_eq!(engine.history("careless").await.unwrap(), history);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_workflow_that_drains_its_signals_leaves_none_unread() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(DRAINING, "drained", (), WorkflowOptions::new())
        .await
        .unwrap();
    for i in 0..3 {
        engine
            .signal("drained", CANCEL, format!("early {i}"))
            .await
            .unwrap();
    }
    engine.signal("drained", GO, ()).await.unwrap();
    for i in 0..2 {
        engine
            .signal("drained", CANCEL, format!("late {i}"))
            .await
            .unwrap();
    }
    // Replayed from the file: `try_recv_signal` must see, at each point,
    // exactly the signals it saw live (three, not all five).
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    engine.signal("drained", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(DRAINING, run.workflow_id())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), (3, 2));
    let history = engine.history("drained").await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::SignalsUnread { .. })),
        "{history:#?}"
    );
    assert!(
        engine
            .describe("drained")
            .await
            .unwrap()
            .unread_signals
            .is_empty()
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_close_warns_naming_the_unread_signals() {
    // The single-threaded test runtime runs the run's actor on this thread,
    // so this thread's subscriber sees its warning.
    let captured = support::CapturedWarnings::start();
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(CARELESS, "warned", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .signal("warned", CANCEL, "too late".to_string())
        .await
        .unwrap();
    engine.signal("warned", GO, ()).await.unwrap();
    run.result().await.unwrap();
    engine.shutdown().await.unwrap();
    let log = captured.text();
    let line = log
        .lines()
        .find(|l| l.contains("never read"))
        .unwrap_or_else(|| panic!("no warning about unread signals in:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(r#""cancel" x1"#), "{line}");
    assert!(line.contains("warned"), "{line}");
}
