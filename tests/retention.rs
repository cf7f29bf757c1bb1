//! Promise: with `EngineBuilder::retention(period)`, a closed run is
//! removed in the background once it has been closed for longer than the
//! period (`describe` and `history` answer NotFound, `list` no longer shows
//! it), while running runs, recently closed runs and a newer run of the
//! same workflow ID are kept. Without a retention nothing is removed. A
//! zero period is refused at open.

mod support;

use std::path::Path;
use std::time::Duration;

use steadfast::{
    ClientError, Engine, ListFilter, OpenError, RunId, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{eventually, temp_db};

/// Completes at once.
const QUICK: WorkflowDef<(), ()> = WorkflowDef::new("Quick");
/// Waits for `go`, then completes.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");
const GO: SignalDef<()> = SignalDef::new("go");

/// Long enough for every wait here on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn open(path: &Path, retention: Option<Duration>) -> Engine {
    let mut builder = Engine::builder()
        .workflow(QUICK, |_ctx: WorkflowContext, _: ()| async { Ok(()) })
        .workflow(WAITER, waiter);
    if let Some(period) = retention {
        builder = builder.retention(period);
    }
    builder.open(path).await.expect("open the engine")
}

async fn complete_quick(engine: &Engine, workflow_id: &str) -> RunId {
    let run = engine
        .start_workflow(QUICK, workflow_id, (), WorkflowOptions::new())
        .await
        .unwrap();
    run.result().await.unwrap();
    run.run_id()
}

/// The run IDs `list` shows, all pages.
async fn listed(engine: &Engine) -> Vec<RunId> {
    let mut filter = ListFilter::new().with_page_size(100);
    let mut out = Vec::new();
    loop {
        let page = engine.list(&filter).await.unwrap();
        out.extend(page.executions.iter().map(|e| e.run_id));
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => return out,
        }
    }
}

async fn is_gone(engine: &Engine, workflow_id: &str) -> bool {
    matches!(
        engine.describe(workflow_id).await,
        Err(ClientError::NotFound { .. })
    )
}

#[tokio::test]
async fn closed_runs_are_removed_and_running_runs_kept() {
    let db = temp_db();
    let engine = open(&db.path, Some(Duration::from_millis(200))).await;
    let waiting = engine
        .start_workflow(WAITER, "waiting", (), WorkflowOptions::new())
        .await
        .unwrap();
    let mut done = Vec::new();
    for i in 0..5 {
        let id = format!("done-{i}");
        done.push((id.clone(), complete_quick(&engine, &id).await));
    }
    eventually(PATIENCE, || async {
        for (id, _) in &done {
            if !is_gone(&engine, id).await {
                return None;
            }
        }
        Some(())
    })
    .await;
    for (id, run_id) in &done {
        assert!(
            matches!(engine.history(id).await, Err(ClientError::NotFound { .. })),
            "the history of {id} is gone"
        );
        assert!(
            !listed(&engine).await.contains(run_id),
            "{id} is not listed"
        );
    }
    // Well past the retention, the running run is untouched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let described = engine.describe("waiting").await.unwrap();
    assert_eq!(described.status, WorkflowStatus::Running);
    assert_eq!(listed(&engine).await, [waiting.run_id()]);

    // Once it closes, its retention starts.
    engine.signal("waiting", GO, ()).await.unwrap();
    waiting.result().await.unwrap();
    eventually(PATIENCE, || async {
        is_gone(&engine, "waiting").await.then_some(())
    })
    .await;
    assert!(listed(&engine).await.is_empty());
    // The ID may be started again, as new.
    complete_quick(&engine, "waiting").await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_recently_closed_run_stays() {
    let db = temp_db();
    // The sweeper looks every 250 ms: the young run closes 700 ms after the
    // old one, so the sweep that removes the old run is well before the
    // young run's time.
    let engine = open(&db.path, Some(Duration::from_secs(1))).await;
    complete_quick(&engine, "old").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let young = complete_quick(&engine, "young").await;
    eventually(PATIENCE, || async {
        is_gone(&engine, "old").await.then_some(())
    })
    .await;
    let described = engine.describe("young").await.unwrap();
    assert_eq!(described.run_id, young);
    assert_eq!(described.status, WorkflowStatus::Completed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reused_id_keeps_its_newer_running_run() {
    let db = temp_db();
    let engine = open(&db.path, Some(Duration::from_millis(200))).await;
    let old = complete_quick(&engine, "reused").await;
    let new = engine
        .start_workflow(WAITER, "reused", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually(PATIENCE, || async {
        (!listed(&engine).await.contains(&old)).then_some(())
    })
    .await;
    let described = engine.describe("reused").await.unwrap();
    assert_eq!(described.run_id, new.run_id());
    assert_eq!(described.status, WorkflowStatus::Running);
    assert_eq!(listed(&engine).await, [new.run_id()]);
    // The newer run works on.
    engine.signal("reused", GO, ()).await.unwrap();
    new.result().await.unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn runs_expired_while_closed_are_removed_after_reopening() {
    let db = temp_db();
    let engine = open(&db.path, None).await;
    complete_quick(&engine, "kept").await;
    engine.shutdown().await.unwrap();
    // Without a retention, nothing is removed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = open(&db.path, None).await;
    assert_eq!(
        engine.describe("kept").await.unwrap().status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
    // With one, the run (closed for longer already) goes.
    let engine = open(&db.path, Some(Duration::from_millis(200))).await;
    eventually(PATIENCE, || async {
        is_gone(&engine, "kept").await.then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_zero_retention_is_refused() {
    let db = temp_db();
    let opened = Engine::builder()
        .workflow(QUICK, |_ctx: WorkflowContext, _: ()| async { Ok(()) })
        .retention(Duration::ZERO)
        .open(&db.path)
        .await;
    assert!(
        matches!(opened, Err(OpenError::InvalidConfig(_))),
        "{opened:?}"
    );
}
