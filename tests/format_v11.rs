//! Promise: files written by store format 11 keep opening and running, and
//! files of every older format are opened as format 11 with counts by
//! status that match what `list` finds.
//!
//! Format 11 keeps format 10's tables and records and adds the table
//! `status_counts` (the number of runs of each status, which
//! `engine.count_workflows()` reads). `tests/fixtures/format-11.steadfast`
//! was written once, by the build that introduced format 11, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v11 -- --ignored
//! write_format_11_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format11-done-1`, `format11-done-2` | `Format11.Quick` | Completed |
//! | `format11-failed` | `Format11.Fails` | Failed |
//! | `format11-cancelled` | `Format11.Waiter` | Cancelled |
//! | `format11-terminated` | `Format11.Waiter` | Terminated |
//! | `format11-chain` | `Format11.Chain` | two runs ContinuedAsNew, the third running, waiting for `format11.go` |
//! | `format11-waiting` | `Format11.Waiter` | Running, waiting for `format11.go` |

mod support;

use std::time::Duration;

use steadfast::{
    Engine, EngineBuilder, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-11.steadfast";

const GO: SignalDef<()> = SignalDef::new("format11.go");
const QUICK: WorkflowDef<(), ()> = WorkflowDef::new("Format11.Quick");
const FAILS: WorkflowDef<(), ()> = WorkflowDef::new("Format11.Fails");
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Format11.Waiter");
/// Continues as new `n` times, then waits for `go`.
const CHAIN: WorkflowDef<u32, ()> = WorkflowDef::new("Format11.Chain");

const PATIENCE: Duration = Duration::from_secs(20);

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn chain(ctx: WorkflowContext, n: u32) -> Result<(), WorkflowError> {
    if n == 0 {
        ctx.recv_signal(GO).await?;
        return Ok(());
    }
    Err(ctx.continue_as_new(CHAIN, n - 1))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(QUICK, |_ctx: WorkflowContext, _: ()| async { Ok(()) })
        .workflow(FAILS, |_ctx: WorkflowContext, _: ()| async {
            Err(WorkflowError::new("no"))
        })
        .workflow(WAITER, waiter)
        .workflow(CHAIN, chain)
}

/// Counts by status as the engine answers them.
async fn counts(engine: &Engine) -> Vec<(WorkflowStatus, u64)> {
    engine
        .count_workflows()
        .await
        .unwrap()
        .by_status()
        .collect()
}

fn count_of(counts: &[(WorkflowStatus, u64)], status: WorkflowStatus) -> u64 {
    counts
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(0, |&(_, n)| n)
}

async fn wait_status(engine: &Engine, workflow_id: &str, status: WorkflowStatus) {
    eventually(PATIENCE, || async {
        let d = engine.describe(workflow_id).await.ok()?;
        (d.status == status).then_some(())
    })
    .await;
}

/// Writes `tests/fixtures/format-11.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_11_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let options = WorkflowOptions::new;
    for id in ["format11-done-1", "format11-done-2"] {
        let run = engine
            .start_workflow(QUICK, id, (), options())
            .await
            .unwrap();
        run.result().await.unwrap();
    }
    let failed = engine
        .start_workflow(FAILS, "format11-failed", (), options())
        .await
        .unwrap();
    assert!(failed.result().await.is_err());
    for id in [
        "format11-cancelled",
        "format11-terminated",
        "format11-waiting",
    ] {
        engine
            .start_workflow(WAITER, id, (), options())
            .await
            .unwrap();
    }
    engine.cancel("format11-cancelled").await.unwrap();
    wait_status(&engine, "format11-cancelled", WorkflowStatus::Cancelled).await;
    engine
        .terminate("format11-terminated", "fixture")
        .await
        .unwrap();
    engine
        .start_workflow(CHAIN, "format11-chain", 2, options())
        .await
        .unwrap();
    eventually(PATIENCE, || async {
        let c = counts(&engine).await;
        (count_of(&c, WorkflowStatus::ContinuedAsNew) == 2).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

fn fixture_counts() -> Vec<(WorkflowStatus, u64)> {
    vec![
        (WorkflowStatus::Running, 2),
        (WorkflowStatus::Completed, 2),
        (WorkflowStatus::Failed, 1),
        (WorkflowStatus::Cancelled, 1),
        (WorkflowStatus::Terminated, 1),
        (WorkflowStatus::TimedOut, 0),
        (WorkflowStatus::ContinuedAsNew, 2),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_11_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 11);
    let engine = builder().open(&db.path).await.unwrap();
    assert_eq!(counts(&engine).await, fixture_counts());
    assert_eq!(support::listed_counts(&engine).await, fixture_counts());

    // The running runs resume and complete; the counts move with them.
    engine.signal("format11-waiting", GO, ()).await.unwrap();
    engine.signal("format11-chain", GO, ()).await.unwrap();
    wait_status(&engine, "format11-waiting", WorkflowStatus::Completed).await;
    wait_status(&engine, "format11-chain", WorkflowStatus::Completed).await;
    let now = counts(&engine).await;
    assert_eq!(count_of(&now, WorkflowStatus::Running), 0);
    assert_eq!(count_of(&now, WorkflowStatus::Completed), 4);
    assert_eq!(now, support::listed_counts(&engine).await);
    engine.shutdown().await.unwrap();
}

/// Every older fixture is brought to the current format with counts that
/// match its list; before that, read-only, its counts are counted from its
/// indexes and match too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_files_are_opened_as_the_current_format_with_their_counts() {
    for format in 1..=10u32 {
        let db = support::copy_fixture(&format!("tests/fixtures/format-{format}.steadfast"));
        assert_eq!(support::stored_format_version(&db.path), format);
        let mut unmigrated = None;
        if format >= 2 {
            let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
            let found = counts(&reader).await;
            assert_eq!(
                found,
                support::listed_counts(&reader).await,
                "format {format}"
            );
            assert!(found.iter().any(|&(_, n)| n > 0), "format {format}");
            reader.shutdown().await.unwrap();
            unmigrated = Some(found);
        }
        // Opened for writing (only this test's workflows registered, so
        // the fixture's runs do not move), with one more run counted on top
        // of what the migration counted; then read back read-only, where
        // nothing can move.
        let engine = Engine::builder()
            .workflow(QUICK, |_ctx: WorkflowContext, _: ()| async { Ok(()) })
            .open(&db.path)
            .await
            .unwrap();
        let run = engine
            .start_workflow(
                QUICK,
                "format11-after-migration",
                (),
                WorkflowOptions::new(),
            )
            .await
            .unwrap();
        run.result().await.unwrap();
        engine.shutdown().await.unwrap();
        assert_eq!(
            support::stored_format_version(&db.path),
            CURRENT_STORE_FORMAT,
            "format {format}"
        );
        let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
        let migrated = counts(&reader).await;
        assert_eq!(
            migrated,
            support::listed_counts(&reader).await,
            "format {format}"
        );
        assert!(migrated.iter().any(|&(_, n)| n > 0), "format {format}");
        if let Some(mut unmigrated) = unmigrated {
            unmigrated[1].1 += 1; // the new run, completed
            assert_eq!(migrated, unmigrated, "format {format}");
        }
        reader.shutdown().await.unwrap();
    }
}
