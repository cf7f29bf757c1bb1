//! Promise: a child's cancellation type (`ChildWorkflowOptions::
//! with_cancellation_type`) decides what `ChildWorkflowHandle::cancel` does
//! and when the child's `result()` then resolves, as Temporal's child
//! cancellation types: `Abandon` (nothing sent, resolves at once),
//! `TryCancel` (the request recorded and delivered, resolves at once),
//! `WaitCancellationRequested` (resolves once the request is in the child's
//! history, which is the same commit) and `WaitCancellationCompleted`, the
//! default (resolves with the child's own close: its value if it completed
//! anyway). Each replays alike.

mod support;

use std::time::Duration;

use steadfast::{
    ChildWorkflowCancellationType, ChildWorkflowError, ChildWorkflowOptions, Engine, EngineBuilder,
    EventKind, ParentClosePolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, temp_db};

const FINISH: SignalDef<bool> = SignalDef::new("finish");

/// Sleeps an hour; once cancelled, waits for `finish`: `true` returns
/// `"cleaned up"` anyway, `false` ends cancelled.
const CHILD: WorkflowDef<(), String> = WorkflowDef::new("cancellable_child");

async fn child(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    match ctx.sleep(Duration::from_secs(3600)).await {
        Ok(()) => Ok("slept".into()),
        Err(cancelled) => {
            if ctx.recv_signal(FINISH).await.unwrap_or(false) {
                Ok("cleaned up".into())
            } else {
                Err(cancelled.into())
            }
        }
    }
}

/// Starts its child with the given cancellation type (and parent-close
/// policy Abandon, so the child outlives it), cancels it, and reports what
/// its result gave.
const PARENT: WorkflowDef<u8, String> = WorkflowDef::new("cancelling_parent");

fn cancellation_type(code: u8) -> ChildWorkflowCancellationType {
    match code {
        0 => ChildWorkflowCancellationType::Abandon,
        1 => ChildWorkflowCancellationType::TryCancel,
        2 => ChildWorkflowCancellationType::WaitCancellationRequested,
        _ => ChildWorkflowCancellationType::WaitCancellationCompleted,
    }
}

async fn parent(ctx: WorkflowContext, code: u8) -> Result<String, WorkflowError> {
    let options = ChildWorkflowOptions::new()
        .with_cancellation_type(cancellation_type(code))
        .with_parent_close_policy(ParentClosePolicy::Abandon);
    let id = format!("{}/child", ctx.workflow_id());
    let handle = ctx.start_child_workflow(CHILD, id, (), options).await?;
    handle.cancel();
    Ok(match handle.result().await {
        Ok(value) => format!("value {value}"),
        Err(ChildWorkflowError::CancelRequested { .. }) => "cancel requested".into(),
        Err(ChildWorkflowError::Cancelled { .. }) => "child cancelled".into(),
        Err(other) => other.to_string(),
    })
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CHILD, child)
        .workflow(PARENT, parent)
}

fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            format!("{:?}", e.kind)
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn cancel_requests(history: &[steadfast::Event]) -> usize {
    history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowCancelRequested { .. }))
        .count()
}

async fn run(engine: &Engine, id: &str, code: u8) -> steadfast::WorkflowHandle<String> {
    engine
        .start_workflow(PARENT, id, code, WorkflowOptions::default())
        .await
        .unwrap()
}

fn replay(history: &steadfast::WorkflowHistory) {
    steadfast::Replayer::new()
        .workflow(CHILD, child)
        .workflow(PARENT, parent)
        .replay(history)
        .unwrap_or_else(|e| panic!("{}: {e}", history.workflow_id));
}

#[tokio::test]
async fn abandon_sends_nothing_and_resolves_at_once() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let handle = run(&engine, "abandon", 0).await;
    assert_eq!(handle.result().await.unwrap(), "cancel requested");
    let parent = engine.history("abandon").await.unwrap();
    assert!(!kinds(&parent).contains(&"ChildWorkflowCancelRequested".to_string()));
    // The child was never told and runs on.
    let child = engine.describe("abandon/child").await.unwrap();
    assert_eq!(child.status, WorkflowStatus::Running);
    assert_eq!(
        cancel_requests(&engine.history("abandon/child").await.unwrap()),
        0
    );
    replay(&engine.workflow_history("abandon").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn try_cancel_delivers_the_request_and_resolves_at_once() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let handle = run(&engine, "try", 1).await;
    assert_eq!(handle.result().await.unwrap(), "cancel requested");
    // The code returned in the activation that cancelled: the request and
    // the close are one step (no outcome follows a close).
    let parent = kinds(&engine.history("try").await.unwrap());
    let asked = parent
        .iter()
        .position(|k| k == "ChildWorkflowCancelRequested")
        .unwrap();
    assert_eq!(parent[asked + 1], "WorkflowCompleted", "{parent:?}");
    // The request reached the child, which is still cleaning up.
    let child = engine.history("try/child").await.unwrap();
    assert_eq!(cancel_requests(&child), 1);
    assert_eq!(
        engine.describe("try/child").await.unwrap().status,
        WorkflowStatus::Running
    );
    replay(&engine.workflow_history("try").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_cancellation_requested_resolves_once_the_child_has_the_request() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let handle = run(&engine, "requested", 2).await;
    assert_eq!(handle.result().await.unwrap(), "cancel requested");
    // The parent's record that the request reached the child comes before
    // its close, in the commit that delivered it.
    let parent = kinds(&engine.history("requested").await.unwrap());
    let asked = parent
        .iter()
        .position(|k| k == "ChildWorkflowCancelRequested")
        .unwrap();
    assert_eq!(
        parent[asked + 1],
        "ExternalWorkflowCancelRequested",
        "{parent:?}"
    );
    assert_eq!(parent[asked + 2], "WorkflowCompleted", "{parent:?}");
    assert_eq!(
        cancel_requests(&engine.history("requested/child").await.unwrap()),
        1
    );
    assert_eq!(
        engine.describe("requested/child").await.unwrap().status,
        WorkflowStatus::Running
    );
    replay(&engine.workflow_history("requested").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_cancellation_completed_waits_for_the_childs_own_close() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    // The default type.
    assert_eq!(
        ChildWorkflowOptions::new().cancellation_type,
        ChildWorkflowCancellationType::WaitCancellationCompleted
    );
    let ends_cancelled = run(&engine, "completed", 3).await;
    let completes_anyway = run(&engine, "completed-anyway", 3).await;
    for id in ["completed/child", "completed-anyway/child"] {
        support::eventually(Duration::from_secs(10), || async {
            let history = engine.history(id).await.ok()?;
            (cancel_requests(&history) == 1).then_some(())
        })
        .await;
    }
    // Still waiting: the children have not closed.
    for id in ["completed", "completed-anyway"] {
        assert_eq!(
            engine.describe(id).await.unwrap().status,
            WorkflowStatus::Running
        );
    }
    engine
        .signal("completed/child", FINISH, false)
        .await
        .unwrap();
    engine
        .signal("completed-anyway/child", FINISH, true)
        .await
        .unwrap();
    assert_eq!(ends_cancelled.result().await.unwrap(), "child cancelled");
    assert_eq!(completes_anyway.result().await.unwrap(), "value cleaned up");
    replay(&engine.workflow_history("completed").await.unwrap());
    replay(&engine.workflow_history("completed-anyway").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_changed_cancellation_type_that_records_differently_parks_the_parent() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let handle = run(&engine, "changed", 1).await;
    handle.result().await.unwrap();
    let history = engine.workflow_history("changed").await.unwrap();
    engine.shutdown().await.unwrap();
    // Abandon records no cancellation where TryCancel did.
    let err = steadfast::Replayer::new()
        .workflow(CHILD, child)
        .workflow(PARENT, |ctx: WorkflowContext, _: u8| parent(ctx, 0))
        .replay(&history)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ChildWorkflowCancelRequested"), "{err}");
}
