//! Promise: files written by store format 10 keep opening and running, and
//! format-9 files are opened as format 10.
//!
//! Format 10 keeps format 9's tables (and event record version 2) and adds the child-workflow event kinds
//! (indexes 28 to 34): `StartChildWorkflowInitiated`, `ChildWorkflowStarted`,
//! `StartChildWorkflowFailed`, `ChildWorkflowCompleted`,
//! `ChildWorkflowClosed`, `ChildWorkflowCancelRequested` and
//! `WorkflowStartedAsChild`. `tests/fixtures/format-10.steadfast` was written
//! once, by the build that introduced format 10, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v10 -- --ignored
//! write_format_10_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format10-closed-parent` | `Format10.Parent` | Completed with `"12 failed:Boom cancelled taken"`: child `format10-closed-parent/ok` completed (12), `/fails` failed (`Boom`), `/waits` cancel requested and cancelled, a start of `format10-taken` failed (running) |
//! | `format10-closed-parent/ok`, `/fails`, `/waits` | `Format10.Child` | Closed children, each naming the parent (`WorkflowStartedAsChild`) |
//! | `format10-taken` | `Format10.Child` | Running, waiting for `format10.go` |
//! | `format10-running-parent` | `Format10.Wait` | Running, waiting for child `format10-running-parent/c` (itself waiting for `format10.go`) |

mod support;

use std::time::Duration;

use steadfast::{
    ChildWorkflowError, ChildWorkflowOptions, Engine, EngineBuilder, EventKind, SignalDef,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-10.steadfast";
const FORMAT_9_FIXTURE: &str = "tests/fixtures/format-9.steadfast";

const GO: SignalDef<u32> = SignalDef::new("format10.go");

/// 0: fails; 1: waits for `go` (or a cancellation); n: returns n * 2.
const CHILD: WorkflowDef<u32, u32> = WorkflowDef::new("Format10.Child");

async fn child(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    match n {
        0 => Err(WorkflowError::new("no").with_type("Boom")),
        1 => Ok(ctx.recv_signal(GO).await?),
        n => Ok(n * 2),
    }
}

const PARENT: WorkflowDef<(), String> = WorkflowDef::new("Format10.Parent");

async fn parent(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let id = ctx.workflow_id();
    let options = ChildWorkflowOptions::new;
    let ok = ctx
        .execute_child_workflow(CHILD, format!("{id}/ok"), 6, options())
        .await?;
    let fails = match ctx
        .execute_child_workflow(CHILD, format!("{id}/fails"), 0, options())
        .await
    {
        Err(ChildWorkflowError::Failed { failure, .. }) => format!("failed:{}", failure.error_type),
        other => format!("{other:?}"),
    };
    let waits = ctx
        .start_child_workflow(CHILD, format!("{id}/waits"), 1, options())
        .await?;
    waits.cancel();
    let cancelled = match waits.result().await {
        Err(ChildWorkflowError::Cancelled { .. }) => "cancelled".to_string(),
        other => format!("{other:?}"),
    };
    let taken = match ctx
        .start_child_workflow(CHILD, "format10-taken".to_string(), 1, options())
        .await
    {
        Err(ChildWorkflowError::AlreadyStarted { .. }) => "taken".to_string(),
        other => format!("{other:?}"),
    };
    Ok(format!("{ok} {fails} {cancelled} {taken}"))
}

const WAIT: WorkflowDef<(), u32> = WorkflowDef::new("Format10.Wait");

async fn wait(ctx: WorkflowContext, (): ()) -> Result<u32, WorkflowError> {
    let id = format!("{}/c", ctx.workflow_id());
    Ok(ctx
        .execute_child_workflow(CHILD, id, 1, ChildWorkflowOptions::new())
        .await?)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CHILD, child)
        .workflow(PARENT, parent)
        .workflow(WAIT, wait)
}

/// Writes `tests/fixtures/format-10.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_10_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    engine
        .start_workflow(CHILD, "format10-taken", 1, WorkflowOptions::new())
        .await
        .unwrap();
    let closed = engine
        .start_workflow(PARENT, "format10-closed-parent", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        closed.result().await.unwrap(),
        "12 failed:Boom cancelled taken"
    );
    engine
        .start_workflow(WAIT, "format10-running-parent", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        engine
            .describe("format10-running-parent/c")
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_10_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 10);
    let engine = builder().open(&db.path).await.unwrap();

    let closed = engine
        .get_workflow_handle(PARENT, "format10-closed-parent")
        .await
        .unwrap();
    assert_eq!(
        closed.result().await.unwrap(),
        "12 failed:Boom cancelled taken"
    );
    let history = engine.history("format10-closed-parent").await.unwrap();
    assert_history_well_formed(&history);
    for wanted in [
        "StartChildWorkflowInitiated",
        "ChildWorkflowStarted",
        "StartChildWorkflowFailed",
        "ChildWorkflowCompleted",
        "ChildWorkflowClosed",
        "ChildWorkflowCancelRequested",
    ] {
        assert!(
            history
                .iter()
                .any(|e| format!("{:?}", e.kind).starts_with(wanted)),
            "{wanted}"
        );
    }
    for suffix in ["ok", "fails", "waits"] {
        let id = format!("format10-closed-parent/{suffix}");
        let d = engine.describe(&id).await.unwrap();
        assert!(d.status.is_closed(), "{id}");
        assert_eq!(d.parent.unwrap().workflow_id, "format10-closed-parent");
        let child_history = engine.history(&id).await.unwrap();
        assert!(matches!(
            child_history[1].kind,
            EventKind::WorkflowStartedAsChild { .. }
        ));
    }

    // The running parent resumes its wait and gets the child's result.
    let d = engine.describe("format10-running-parent").await.unwrap();
    assert_eq!(d.pending_children.len(), 1);
    engine
        .signal("format10-running-parent/c", GO, 21)
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(WAIT, "format10-running-parent")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 21);
    assert_eq!(
        engine.describe("format10-taken").await.unwrap().status,
        WorkflowStatus::Running
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_9_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_9_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 9);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine.describe("format9-closed").await.unwrap().status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
