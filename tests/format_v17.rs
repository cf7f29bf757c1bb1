//! Promise: files written by store format 17 keep opening and running: a
//! parent whose child handle's signal is recorded as
//! `SignalChildWorkflowInitiated` replays it and signals its child's
//! current run again; format-16 files open as format 17.
//!
//! Format 17 keeps format 16's tables and record versions; histories may
//! hold one more event kind, `SignalChildWorkflowInitiated` (a child
//! handle's signal, told apart from a signal naming the child's first
//! run). `tests/fixtures/format-17.steadfast` was written once, by the
//! build that introduced format 17, with `STEADFAST_WRITE_FIXTURES=1 cargo
//! test --test format_v17 -- --ignored write_format_17_fixture`, and is
//! never regenerated. It holds:
//!
//! | ID | What | State in the file |
//! |---|---|---|
//! | `format17-parent` | `Format17.Parent` | Running: started its child, signalled it `1` through the handle (`SignalChildWorkflowInitiated`, `ExternalWorkflowSignaled`), waiting for `format17.go` |
//! | `format17-parent/child` | `Format17.Child` | two runs: the first got `1` and continued as new; the second waiting for `format17.item` |

mod support;

use std::time::Duration;

use steadfast::{
    ChildWorkflowOptions, Engine, EngineBuilder, EventKind, RunId, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-17.steadfast";
const PATIENCE: Duration = Duration::from_secs(20);

const PARENT: WorkflowDef<(), (Vec<u32>, bool)> = WorkflowDef::new("Format17.Parent");
const CHILD: WorkflowDef<Vec<u32>, Vec<u32>> = WorkflowDef::new("Format17.Child");
const ITEM: SignalDef<u32> = SignalDef::new("format17.item");
const GO: SignalDef<()> = SignalDef::new("format17.go");
/// Ends the child.
const LAST: u32 = 0;

/// Signals its child `1` through the handle, waits for `go`, signals it
/// `2` and `LAST`; answers the child's items and whether the second signal
/// reached a later run than the child's first.
async fn parent(ctx: WorkflowContext, (): ()) -> Result<(Vec<u32>, bool), WorkflowError> {
    let id = format!("{}/child", ctx.workflow_id());
    let child = ctx
        .start_child_workflow(CHILD, id, Vec::new(), ChildWorkflowOptions::new())
        .await?;
    child.signal(ITEM, 1).await?;
    ctx.recv_signal(GO).await?;
    let got: RunId = child.signal(ITEM, 2).await?;
    child.signal(ITEM, LAST).await?;
    Ok((child.result().await?, got != child.first_execution_run_id()))
}

/// Collects items until `LAST`, continuing as new after the first.
async fn child(ctx: WorkflowContext, mut items: Vec<u32>) -> Result<Vec<u32>, WorkflowError> {
    loop {
        let item = ctx.recv_signal(ITEM).await?;
        if item == LAST {
            return Ok(items);
        }
        items.push(item);
        if items.len() == 1 {
            return Err(ctx.continue_as_new(CHILD, items));
        }
    }
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(PARENT, parent)
        .workflow(CHILD, child)
}

/// The child's second run is current (its first got `1`).
async fn continued(engine: &Engine) {
    eventually(PATIENCE, || async {
        let history = engine.history("format17-parent/child").await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::WorkflowContinuedFrom { .. }))
            .then_some(())
    })
    .await;
}

/// Writes `tests/fixtures/format-17.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_17_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    engine
        .start_workflow(PARENT, "format17-parent", (), WorkflowOptions::new())
        .await
        .unwrap();
    continued(&engine).await;
    // The parent's signal outcome is in the commit that initiated it.
    eventually(PATIENCE, || async {
        let history = engine.history("format17-parent").await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ExternalWorkflowSignaled { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_17_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 17);

    // Read-only: what the file holds, as written.
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    let history = reader.history("format17-parent").await.unwrap();
    let (child_seq, first) = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::StartChildWorkflowInitiated { seq, .. } => Some(*seq),
            _ => None,
        })
        .zip(history.iter().find_map(|e| match e.kind {
            EventKind::ChildWorkflowStarted { run_id, .. } => Some(run_id),
            _ => None,
        }))
        .unwrap();
    let signal = history
        .iter()
        .position(|e| {
            matches!(
                &e.kind,
                EventKind::SignalChildWorkflowInitiated { child_seq: c, workflow_id, run_id, signal_name, .. }
                    if *c == child_seq
                        && workflow_id == "format17-parent/child"
                        && *run_id == first
                        && signal_name == "format17.item"
            )
        })
        .expect("a child handle's signal");
    assert!(matches!(
        history[signal + 1].kind,
        EventKind::ExternalWorkflowSignaled { run_id, .. } if run_id == first
    ));
    let child = reader.describe("format17-parent/child").await.unwrap();
    assert_ne!(child.run_id, first, "the child continued as new");
    assert_eq!(child.status, WorkflowStatus::Running);
    reader.shutdown().await.unwrap();

    // The parent replays its recorded signal and signals the child's
    // current run next.
    let engine = builder().open(&db.path).await.unwrap();
    engine.signal("format17-parent", GO, ()).await.unwrap();
    let (items, later) = engine
        .get_workflow_handle(PARENT, "format17-parent")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(items, [1, 2]);
    assert!(later);
    let saved = engine.workflow_history("format17-parent").await.unwrap();
    steadfast::Replayer::new()
        .workflow(PARENT, parent)
        .replay(&saved)
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_16_files_open_as_format_17() {
    let db = support::copy_fixture("tests/fixtures/format-16.steadfast");
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    assert!(reader.describe("format16-held").await.is_ok());
    reader.shutdown().await.unwrap();
    assert_eq!(support::stored_format_version(&db.path), 16);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        CURRENT_STORE_FORMAT
    );
}
