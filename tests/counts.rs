//! Promise: `engine.count_workflows()` answers how many runs of each status
//! the file holds, the same numbers `list` would find status by status:
//! after starts, completions, failures, cancellations, terminations and
//! continue-as-new, after `delete` and retention remove runs, after the
//! file is reopened, and from a read-only engine. Runs parked on
//! nondeterminism are counted as running and in `parked`.

mod support;

use std::path::Path;
use std::time::Duration;

use steadfast::{
    Engine, SignalDef, WorkflowContext, WorkflowCounts, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{eventually, temp_db};

/// Completes at once.
const QUICK: WorkflowDef<(), ()> = WorkflowDef::new("Quick");
/// Fails at once.
const FAILS: WorkflowDef<(), ()> = WorkflowDef::new("Fails");
/// Waits for `go`, then completes.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");
/// Continues as new `n` times, then completes.
const CHAIN: WorkflowDef<u32, ()> = WorkflowDef::new("Chain");
const GO: SignalDef<()> = SignalDef::new("go");

const PATIENCE: Duration = Duration::from_secs(20);

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn chain(ctx: WorkflowContext, n: u32) -> Result<(), WorkflowError> {
    if n == 0 {
        return Ok(());
    }
    Err(ctx.continue_as_new(CHAIN, n - 1))
}

async fn open(path: &Path, retention: Option<Duration>) -> Engine {
    let mut builder = Engine::builder()
        .workflow(QUICK, |_ctx: WorkflowContext, _: ()| async { Ok(()) })
        .workflow(FAILS, |_ctx: WorkflowContext, _: ()| async {
            Err(WorkflowError::new("no"))
        })
        .workflow(WAITER, waiter)
        .workflow(CHAIN, chain);
    if let Some(period) = retention {
        builder = builder.retention(period);
    }
    builder.open(path).await.expect("open the engine")
}

fn counted(counts: &WorkflowCounts) -> Vec<(WorkflowStatus, u64)> {
    counts.by_status().collect()
}

fn expect(
    running: u64,
    completed: u64,
    failed: u64,
    cancelled: u64,
    terminated: u64,
    continued: u64,
) -> Vec<(WorkflowStatus, u64)> {
    vec![
        (WorkflowStatus::Running, running),
        (WorkflowStatus::Completed, completed),
        (WorkflowStatus::Failed, failed),
        (WorkflowStatus::Cancelled, cancelled),
        (WorkflowStatus::Terminated, terminated),
        (WorkflowStatus::TimedOut, 0),
        (WorkflowStatus::ContinuedAsNew, continued),
    ]
}

async fn wait_closed(engine: &Engine, workflow_id: &str) {
    eventually(PATIENCE, || async {
        let d = engine.describe(workflow_id).await.ok()?;
        d.status.is_closed().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_follow_every_status_change_and_match_the_list() {
    let db = temp_db();
    let engine = open(&db.path, None).await;
    let fresh = engine.count_workflows().await.unwrap();
    assert_eq!(counted(&fresh), expect(0, 0, 0, 0, 0, 0));
    assert_eq!(fresh.total(), 0);

    for i in 0..3 {
        let run = engine
            .start_workflow(QUICK, &format!("quick-{i}"), (), WorkflowOptions::new())
            .await
            .unwrap();
        run.result().await.unwrap();
    }
    let failed = engine
        .start_workflow(FAILS, "fails", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert!(failed.result().await.is_err());
    for id in ["wait-1", "wait-2", "cancel-me", "terminate-me"] {
        engine
            .start_workflow(WAITER, id, (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    let chained = engine
        .start_workflow(CHAIN, "chain", 2, WorkflowOptions::new())
        .await
        .unwrap();
    chained.result().await.unwrap();
    engine.cancel("cancel-me").await.unwrap();
    wait_closed(&engine, "cancel-me").await;
    engine.terminate("terminate-me", "done here").await.unwrap();

    let counts = engine.count_workflows().await.unwrap();
    // 3 quick + the chain's last run completed; its 2 earlier runs continued.
    assert_eq!(counted(&counts), expect(2, 4, 1, 1, 1, 2));
    assert_eq!(counts.total(), 11);
    assert_eq!(counts.get(WorkflowStatus::Running), 2);
    assert_eq!(counts.parked(), 0);
    assert_eq!(counted(&counts), support::listed_counts(&engine).await);

    // A running run completes: one moves from Running to Completed.
    engine.signal("wait-1", GO, ()).await.unwrap();
    wait_closed(&engine, "wait-1").await;
    let counts = engine.count_workflows().await.unwrap();
    assert_eq!(counted(&counts), expect(1, 5, 1, 1, 1, 2));

    // A delete removes every run of the ID (the chain: three runs).
    engine.delete("chain").await.unwrap();
    engine.delete("fails").await.unwrap();
    let counts = engine.count_workflows().await.unwrap();
    assert_eq!(counted(&counts), expect(1, 4, 0, 1, 1, 0));
    assert_eq!(counted(&counts), support::listed_counts(&engine).await);
    engine.shutdown().await.unwrap();

    // The counts are in the file: reopened, and read-only, they agree.
    let engine = open(&db.path, None).await;
    assert_eq!(
        counted(&engine.count_workflows().await.unwrap()),
        expect(1, 4, 0, 1, 1, 0)
    );
    engine.shutdown().await.unwrap();
    let reader = Engine::builder()
        .read_only()
        .open(&db.path)
        .await
        .expect("open read-only");
    assert_eq!(
        counted(&reader.count_workflows().await.unwrap()),
        expect(1, 4, 0, 1, 1, 0)
    );
    reader.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_removed_by_retention_leave_the_counts() {
    let db = temp_db();
    let engine = open(&db.path, None).await;
    for i in 0..4 {
        let run = engine
            .start_workflow(QUICK, &format!("old-{i}"), (), WorkflowOptions::new())
            .await
            .unwrap();
        run.result().await.unwrap();
    }
    engine
        .start_workflow(WAITER, "kept", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = open(&db.path, Some(Duration::from_millis(100))).await;
    let counts = eventually(PATIENCE, || async {
        let counts = engine.count_workflows().await.ok()?;
        (counts.get(WorkflowStatus::Completed) == 0).then_some(counts)
    })
    .await;
    assert_eq!(counted(&counts), expect(1, 0, 0, 0, 0, 0));
    assert_eq!(counted(&counts), support::listed_counts(&engine).await);
    engine.shutdown().await.unwrap();
}
