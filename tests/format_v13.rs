//! Promise: files written by store format 13 keep opening and running, and
//! a format-12 file opens as format 13.
//!
//! Format 13 keeps format 12's tables and adds the pause and reset event
//! kinds (`WorkflowPaused`, `WorkflowUnpaused`, `WorkflowReset`,
//! `WorkflowResetFrom`) and run records of version 3 (`paused`,
//! `reset_from`). `tests/fixtures/format-13.steadfast` was written once, by
//! the build that introduced format 13, with `STEADFAST_WRITE_FIXTURES=1
//! cargo test --test format_v13 -- --ignored write_format_13_fixture`, and
//! is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format13-paused` | `Format13.Work` | Running, paused ("fixture pause"), its activity scheduled during the pause and not begun |
//! | `format13-unpaused` | `Format13.Work` | Running, paused then unpaused, waiting for `format13.go` |
//! | `format13-reset` | `Format13.Work` | first run reset (Terminated) to its first task; the second, reset from it, waiting for `format13.go` |

mod support;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder,
    PauseReason, ResetOptions, ResetTo, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-13.steadfast";

const GO: SignalDef<String> = SignalDef::new("format13.go");
const STEP: ActivityDef<String, String> = ActivityDef::new("Format13.Step");
/// Waits for `go`, then runs the activity on its input.
const WORK: WorkflowDef<(), String> = WorkflowDef::new("Format13.Work");

const PATIENCE: Duration = Duration::from_secs(20);

async fn work(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let input = ctx.recv_signal(GO).await?;
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    Ok(ctx.execute_activity(STEP, input, options).await?)
}

async fn step(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(format!("step({input})"))
}

fn builder() -> EngineBuilder {
    Engine::builder().workflow(WORK, work).activity(STEP, step)
}

async fn wait_status(engine: &Engine, workflow_id: &str, status: WorkflowStatus) {
    eventually(PATIENCE, || async {
        let d = engine.describe(workflow_id).await.unwrap();
        (d.status == status).then_some(())
    })
    .await;
}

/// Writes `tests/fixtures/format-13.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_13_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    for id in ["format13-paused", "format13-unpaused", "format13-reset"] {
        engine
            .start_workflow(WORK, id, (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    engine
        .pause_workflow("format13-paused", "fixture pause")
        .await
        .unwrap();
    engine
        .signal("format13-paused", GO, "held".into())
        .await
        .unwrap();
    eventually(PATIENCE, || async {
        let d = engine.describe("format13-paused").await.unwrap();
        (d.pending_activities.len() == 1).then_some(())
    })
    .await;
    engine
        .pause_workflow("format13-unpaused", "a moment")
        .await
        .unwrap();
    engine
        .unpause_workflow("format13-unpaused", "go on")
        .await
        .unwrap();
    engine
        .reset_workflow(
            "format13-reset",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "fixture reset"),
        )
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_13_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 13);
    let engine = builder().open(&db.path).await.unwrap();

    let paused = engine.describe("format13-paused").await.unwrap();
    assert_eq!(
        paused.paused,
        Some(PauseReason::Requested("fixture pause".into()))
    );
    assert_eq!(paused.pending_activities.len(), 1);
    assert_eq!(
        engine.describe("format13-unpaused").await.unwrap().paused,
        None
    );
    let reset = engine.describe("format13-reset").await.unwrap();
    let old = reset.reset_from.expect("the new run names the reset one");
    let before = engine.describe_run("format13-reset", old).await.unwrap();
    assert_eq!(before.status, WorkflowStatus::Terminated);
    assert_eq!(before.reset_to, Some(reset.run_id));

    // Every run goes on to its end.
    engine
        .unpause_workflow("format13-paused", "test")
        .await
        .unwrap();
    for id in ["format13-unpaused", "format13-reset"] {
        engine.signal(id, GO, "go".into()).await.unwrap();
    }
    for id in ["format13-paused", "format13-unpaused", "format13-reset"] {
        wait_status(&engine, id, WorkflowStatus::Completed).await;
    }
    let handle = engine
        .get_workflow_handle(WORK, "format13-paused")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "step(held)");
    engine.shutdown().await.unwrap();
}

/// The previous format's fixture opens as the current one, and its runs
/// can be paused and reset: the signals a reset copies or reapplies are
/// each delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_12_file_opens_as_format_13() {
    const ITEM: SignalDef<u32> = SignalDef::new("format12.item");
    const RECEIVER: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("Format12.Receiver");
    let db = support::copy_fixture("tests/fixtures/format-12.steadfast");
    assert_eq!(support::stored_format_version(&db.path), 12);
    let engine = Engine::builder()
        .workflow(RECEIVER, |ctx: WorkflowContext, _: ()| async move {
            let mut items = Vec::new();
            loop {
                match ctx.recv_signal(ITEM).await? {
                    u32::MAX => return Ok(items),
                    item => items.push(item),
                }
            }
        })
        .open(&db.path)
        .await
        .unwrap();
    assert_eq!(
        engine.describe("format12-receiver").await.unwrap().paused,
        None
    );
    engine
        .pause_workflow("format12-receiver", "after the upgrade")
        .await
        .unwrap();
    engine
        .reset_workflow(
            "format12-receiver",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "after the upgrade"),
        )
        .await
        .unwrap();
    for item in [3, u32::MAX] {
        engine
            .signal("format12-receiver", ITEM, item)
            .await
            .unwrap();
    }
    let handle = engine
        .get_workflow_handle(RECEIVER, "format12-receiver")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), vec![1, 2, 3]);
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        CURRENT_STORE_FORMAT
    );
}
