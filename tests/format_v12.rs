//! Promise: files written by store format 12 keep opening and running, and
//! format-11 files are opened as format 12.
//!
//! Format 12 keeps format 11's tables (and event record version 2) and adds
//! the event kinds of signals and cancellation requests sent to other
//! workflows (indexes 35 to 40): `SignalExternalWorkflowInitiated`,
//! `ExternalWorkflowSignaled`, `SignalExternalWorkflowFailed`,
//! `RequestCancelExternalWorkflowInitiated`, `ExternalWorkflowCancelRequested`
//! and `RequestCancelExternalWorkflowFailed` (with the persisted enum
//! `ExternalFailedCause`). `tests/fixtures/format-12.steadfast` was written
//! once, by the build that introduced format 12, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v12 -- --ignored
//! write_format_12_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format12-sender` | `Format12.Sender` | Completed with `"ok not-found ok closed:Completed"`: signalled `format12-receiver` (1), signalled `format12-nobody` (failed, `NotFound`), asked `format12-sleeper` to cancel, asked `format12-closed` to cancel (failed, `Closed`) |
//! | `format12-waiting-sender` | `Format12.Waiting` | Running: signalled `format12-receiver` (2), waiting for `format12.go` to send 3 and the end |
//! | `format12-receiver` | `Format12.Receiver` | Running: got 1 and 2 (each with its request ID), waiting for more |
//! | `format12-sleeper` | `Format12.Sleeper` | Cancelled by `format12-sender`'s request |
//! | `format12-closed` | `Format12.Receiver` | Completed with `[]` before the sender ran |

mod support;

use std::time::Duration;

use steadfast::{
    Engine, EngineBuilder, EventKind, ExternalWorkflowError, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-12.steadfast";
const FORMAT_11_FIXTURE: &str = "tests/fixtures/format-11.steadfast";

const ITEM: SignalDef<u32> = SignalDef::new("format12.item");
const GO: SignalDef<()> = SignalDef::new("format12.go");
const LAST: u32 = u32::MAX;

const RECEIVER: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("Format12.Receiver");

async fn receiver(ctx: WorkflowContext, (): ()) -> Result<Vec<u32>, WorkflowError> {
    let mut items = Vec::new();
    loop {
        match ctx.recv_signal(ITEM).await? {
            LAST => return Ok(items),
            item => items.push(item),
        }
    }
}

const SLEEPER: WorkflowDef<(), ()> = WorkflowDef::new("Format12.Sleeper");

async fn sleeper(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

fn outcome(result: Result<steadfast::RunId, ExternalWorkflowError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(ExternalWorkflowError::NotFound { .. }) => "not-found".into(),
        Err(ExternalWorkflowError::Closed { status, .. }) => format!("closed:{status:?}"),
        Err(other) => other.to_string(),
    }
}

const SENDER: WorkflowDef<(), String> = WorkflowDef::new("Format12.Sender");

async fn sender(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let a = ctx
        .signal_external_workflow("format12-receiver", None, ITEM, 1)
        .await;
    let b = ctx
        .signal_external_workflow("format12-nobody", None, ITEM, 1)
        .await;
    let c = ctx.cancel_external_workflow("format12-sleeper", None).await;
    let d = ctx.cancel_external_workflow("format12-closed", None).await;
    Ok([a, b, c, d].map(outcome).join(" "))
}

const WAITING: WorkflowDef<(), u32> = WorkflowDef::new("Format12.Waiting");

async fn waiting(ctx: WorkflowContext, (): ()) -> Result<u32, WorkflowError> {
    ctx.signal_external_workflow("format12-receiver", None, ITEM, 2)
        .await?;
    ctx.recv_signal(GO).await?;
    ctx.signal_external_workflow("format12-receiver", None, ITEM, 3)
        .await?;
    ctx.signal_external_workflow("format12-receiver", None, ITEM, LAST)
        .await?;
    Ok(2)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(RECEIVER, receiver)
        .workflow(SLEEPER, sleeper)
        .workflow(SENDER, sender)
        .workflow(WAITING, waiting)
}

/// Writes `tests/fixtures/format-12.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_12_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let closed = engine
        .start_workflow(RECEIVER, "format12-closed", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("format12-closed", ITEM, LAST).await.unwrap();
    assert_eq!(closed.result().await.unwrap(), Vec::<u32>::new());
    engine
        .start_workflow(RECEIVER, "format12-receiver", (), WorkflowOptions::new())
        .await
        .unwrap();
    let sleepy = engine
        .start_workflow(SLEEPER, "format12-sleeper", (), WorkflowOptions::new())
        .await
        .unwrap();
    let sent = engine
        .start_workflow(SENDER, "format12-sender", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        sent.result().await.unwrap(),
        "ok not-found ok closed:Completed"
    );
    assert!(sleepy.result().await.is_err());
    engine
        .start_workflow(
            WAITING,
            "format12-waiting-sender",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("format12-receiver").await.unwrap();
        let signals = history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::WorkflowSignaledWithOptions { .. }))
            .count();
        (signals == 2).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_12_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 12);
    let engine = builder().open(&db.path).await.unwrap();

    let sent = engine
        .get_workflow_handle(SENDER, "format12-sender")
        .await
        .unwrap();
    assert_eq!(
        sent.result().await.unwrap(),
        "ok not-found ok closed:Completed"
    );
    let history = engine.history("format12-sender").await.unwrap();
    assert_history_well_formed(&history);
    for wanted in [
        "SignalExternalWorkflowInitiated",
        "ExternalWorkflowSignaled",
        "SignalExternalWorkflowFailed",
        "RequestCancelExternalWorkflowInitiated",
        "ExternalWorkflowCancelRequested",
        "RequestCancelExternalWorkflowFailed",
    ] {
        assert!(
            history
                .iter()
                .any(|e| format!("{:?}", e.kind).starts_with(wanted)),
            "{wanted}"
        );
    }
    assert_eq!(
        engine.describe("format12-sleeper").await.unwrap().status,
        WorkflowStatus::Cancelled
    );

    // The waiting sender resumes: its next signals reach the receiver,
    // which ends with every item once.
    engine
        .signal("format12-waiting-sender", GO, ())
        .await
        .unwrap();
    let waiting = engine
        .get_workflow_handle(WAITING, "format12-waiting-sender")
        .await
        .unwrap();
    assert_eq!(waiting.result().await.unwrap(), 2);
    let received = engine
        .get_workflow_handle(RECEIVER, "format12-receiver")
        .await
        .unwrap();
    assert_eq!(received.result().await.unwrap(), vec![1, 2, 3]);
    let got = engine.history("format12-receiver").await.unwrap();
    let ids: Vec<&String> = got
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowSignaledWithOptions {
                request_id: Some(id),
                ..
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        4
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_11_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_11_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 11);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    assert_eq!(
        engine.describe("format11-failed").await.unwrap().status,
        WorkflowStatus::Failed
    );
    // Its counts by status are kept (format 11's table, not rebuilt).
    let counts = engine.count_workflows().await.unwrap();
    assert_eq!(counts.get(WorkflowStatus::Failed), 1);
    assert_eq!(counts.get(WorkflowStatus::Completed), 2);
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
