//! Promise: a child's cancellation type (`ChildWorkflowOptions::
//! with_cancellation_type`) decides what `ChildWorkflowHandle::cancel` does
//! and when the child's `result()` then resolves, as Temporal's child
//! cancellation types: `Abandon` (nothing sent, resolves at once),
//! `TryCancel` (the request recorded and delivered, resolves at once),
//! `WaitCancellationRequested` (resolves once the request is in the child's
//! history, which is the same commit) and `WaitCancellationCompleted`, the
//! default (resolves with the child's own close: its value if it completed
//! anyway). Each replays alike. The parent's own cancellation treats each
//! open child as its type says, and the parent's close then applies each
//! child's parent-close policy; a kill -9 at any point of that leaves each
//! request and each close recorded once.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ChildWorkflowCancellationType,
    ChildWorkflowError, ChildWorkflowOptions, Engine, EngineBuilder, EventKind, ParentClosePolicy,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowIdReusePolicy, WorkflowOptions,
    WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

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

// ----- The parent's own cancellation -----

/// Starts one child of each cancellation type (parent-close policy
/// Abandon, so each outlives it), in that order, then waits for all four
/// results and reports each.
const CANCELLED_PARENT: WorkflowDef<(), Vec<String>> = WorkflowDef::new("cancelled_parent");

fn label(result: Result<String, ChildWorkflowError>) -> String {
    match result {
        Ok(value) => format!("value {value}"),
        Err(ChildWorkflowError::ParentCancelled { .. }) => "parent cancelled".into(),
        Err(ChildWorkflowError::Cancelled { .. }) => "child cancelled".into(),
        Err(other) => other.to_string(),
    }
}

async fn cancelled_parent(ctx: WorkflowContext, (): ()) -> Result<Vec<String>, WorkflowError> {
    let mut handles = Vec::new();
    for code in 0..4u8 {
        let options = ChildWorkflowOptions::new()
            .with_cancellation_type(cancellation_type(code))
            .with_parent_close_policy(ParentClosePolicy::Abandon);
        let id = format!("{}/{code}", ctx.workflow_id());
        handles.push(ctx.start_child_workflow(CHILD, id, (), options).await?);
    }
    let results = futures::future::join_all(handles.iter().map(|h| h.result())).await;
    Ok(results.into_iter().map(label).collect())
}

/// Starts an abandon-type child with parent-close policy RequestCancel
/// (`/a`) and a try-cancel child with policy Terminate (`/t`), waits for
/// both, and ends with the cancellation.
const CLOSING_PARENT: WorkflowDef<(), ()> = WorkflowDef::new("closing_parent");

async fn closing_parent(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let abandoned = ChildWorkflowOptions::new()
        .with_cancellation_type(ChildWorkflowCancellationType::Abandon)
        .with_parent_close_policy(ParentClosePolicy::RequestCancel);
    let tried = ChildWorkflowOptions::new()
        .with_cancellation_type(ChildWorkflowCancellationType::TryCancel)
        .with_parent_close_policy(ParentClosePolicy::Terminate);
    let id = ctx.workflow_id().to_string();
    let a = ctx
        .start_child_workflow(CHILD, format!("{id}/a"), (), abandoned)
        .await?;
    let t = ctx
        .start_child_workflow(CHILD, format!("{id}/t"), (), tried)
        .await?;
    let (a, t) = futures::join!(a.result(), t.result());
    a?;
    t?;
    Ok(())
}

fn parent_builder() -> EngineBuilder {
    builder()
        .workflow(CANCELLED_PARENT, cancelled_parent)
        .workflow(CLOSING_PARENT, closing_parent)
}

fn parent_replayer() -> steadfast::Replayer {
    steadfast::Replayer::new()
        .workflow(CHILD, child)
        .workflow(CANCELLED_PARENT, cancelled_parent)
        .workflow(CLOSING_PARENT, closing_parent)
}

/// The seqs the parent's history asks to cancel, in order.
fn cancel_requested_seqs(history: &[steadfast::Event]) -> Vec<u32> {
    history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ChildWorkflowCancelRequested { seq } => Some(seq),
            _ => None,
        })
        .collect()
}

async fn children_started(engine: &Engine, ids: &[String]) {
    for id in ids {
        support::eventually(Duration::from_secs(10), || async {
            engine.describe(id).await.ok().map(|_| ())
        })
        .await;
    }
}

#[tokio::test]
async fn a_parents_cancellation_treats_each_child_as_its_cancellation_type_says() {
    let db = temp_db();
    let engine = parent_builder().open_db(&db.path).await.unwrap();
    let handle = engine
        .start_workflow(CANCELLED_PARENT, "pc", (), WorkflowOptions::default())
        .await
        .unwrap();
    let ids: Vec<String> = (0..4).map(|code| format!("pc/{code}")).collect();
    children_started(&engine, &ids).await;
    engine.cancel("pc").await.unwrap();
    // Abandon, try-cancel and wait-requested no longer wait; the default
    // waits for its child's own close.
    let child_requests = |id: &'static str| {
        let engine = engine.clone();
        async move { cancel_requests(&engine.history(id).await.unwrap()) }
    };
    support::eventually(Duration::from_secs(10), || async {
        (child_requests("pc/3").await == 1).then_some(())
    })
    .await;
    assert_eq!(
        engine.describe("pc").await.unwrap().status,
        WorkflowStatus::Running
    );
    engine.signal("pc/3", FINISH, false).await.unwrap();
    assert_eq!(
        handle.result().await.unwrap(),
        [
            "parent cancelled",
            "parent cancelled",
            "parent cancelled",
            "child cancelled"
        ]
    );
    // The abandoned child was never told; the others once each, by
    // commands in the parent's history, in start order.
    assert_eq!(child_requests("pc/0").await, 0);
    for id in ["pc/1", "pc/2", "pc/3"] {
        assert_eq!(child_requests(id).await, 1, "{id}");
    }
    let parent = engine.history("pc").await.unwrap();
    support::assert_history_well_formed(&parent);
    let seqs = cancel_requested_seqs(&parent);
    assert_eq!(seqs.len(), 3, "{:?}", kinds(&parent));
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let k = kinds(&parent);
    let asked = k
        .iter()
        .position(|k| k == "WorkflowCancelRequested")
        .unwrap();
    assert_eq!(
        k[asked + 1..asked + 4],
        [
            "ChildWorkflowCancelRequested",
            "ChildWorkflowCancelRequested",
            "ChildWorkflowCancelRequested"
        ],
        "{k:?}"
    );
    // Abandon and try-cancel children are still running (cleaning up, or
    // never told), wait-requested's too; the parent-close policy is
    // Abandon.
    for id in ["pc/0", "pc/1", "pc/2"] {
        assert_eq!(
            engine.describe(id).await.unwrap().status,
            WorkflowStatus::Running,
            "{id}"
        );
    }
    assert_eq!(
        engine.describe("pc/3").await.unwrap().status,
        WorkflowStatus::Cancelled
    );
    parent_replayer()
        .replay(&engine.workflow_history("pc").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_a_parents_cancellation_its_close_applies_each_childs_parent_close_policy() {
    let db = temp_db();
    let engine = parent_builder().open_db(&db.path).await.unwrap();
    let handle = engine
        .start_workflow(CLOSING_PARENT, "cp", (), WorkflowOptions::default())
        .await
        .unwrap();
    children_started(&engine, &["cp/a".to_string(), "cp/t".to_string()]).await;
    engine.cancel("cp").await.unwrap();
    assert!(matches!(
        handle.result().await,
        Err(steadfast::ResultError::Cancelled { .. })
    ));
    // The abandon-type child was not told by the cancellation, but the
    // parent's close asked it to cancel (RequestCancel): one request, and
    // it is still cleaning up.
    assert_eq!(cancel_requests(&engine.history("cp/a").await.unwrap()), 1);
    assert_eq!(
        engine.describe("cp/a").await.unwrap().status,
        WorkflowStatus::Running
    );
    // The try-cancel child's request is recorded, but the parent returned
    // in that activation: its closing commit terminated the child
    // (Terminate), which the request, delivered after the close in the
    // same commit, then found closed.
    let parent = engine.history("cp").await.unwrap();
    let k = kinds(&parent);
    assert_eq!(
        k[k.len() - 3..],
        [
            "WorkflowCancelRequested",
            "ChildWorkflowCancelRequested",
            "WorkflowCancelled"
        ],
        "{k:?}"
    );
    let t = engine.history("cp/t").await.unwrap();
    assert_eq!(
        engine.describe("cp/t").await.unwrap().status,
        WorkflowStatus::Terminated
    );
    assert!(
        matches!(t.last().unwrap().kind, EventKind::WorkflowTerminated { .. }),
        "{:?}",
        kinds(&t)
    );
    parent_replayer()
        .replay(&engine.workflow_history("cp").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

// ----- kill -9 while a parent is cancelling its children -----

const DB_ENV: &str = "STEADFAST_CHILD_CANCEL_DB";
const LOG_ENV: &str = "STEADFAST_CHILD_CANCEL_LOG";
/// Cleanup steps each child runs once cancelled.
const STEPS: u32 = 6;

/// Appends a line to the log file, fsynced: the killer's progress.
const NOTE: ActivityDef<String, ()> = ActivityDef::new("child_cancellation.note");

async fn note(_ctx: ActivityContext, line: String) -> Result<(), ActivityError> {
    let path = std::env::var_os(LOG_ENV).ok_or_else(|| ActivityError::non_retryable("no log"))?;
    support::append_synced(Path::new(&path), &line)?;
    Ok(())
}

/// Sleeps an hour; once cancelled, notes `STEPS` cleanup steps, then ends
/// cancelled.
const CLEANING_CHILD: WorkflowDef<(), ()> = WorkflowDef::new("cleaning_child");

async fn cleaning_child(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let Err(cancelled) = ctx.sleep(Duration::from_secs(3600)).await else {
        return Ok(());
    };
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    for step in 0..STEPS {
        let line = format!("{} {step}", ctx.workflow_id());
        ctx.execute_activity(NOTE, line, options.clone()).await?;
    }
    Err(cancelled.into())
}

/// Starts a wait-cancellation-completed child (`/wait`) and a try-cancel
/// one (`/try`, parent-close policy Abandon, so it cleans up on its own
/// after the parent's close), and reports both results.
const KILLED_PARENT: WorkflowDef<(), Vec<String>> = WorkflowDef::new("killed_parent");

async fn killed_parent(ctx: WorkflowContext, (): ()) -> Result<Vec<String>, WorkflowError> {
    let id = ctx.workflow_id().to_string();
    let wait = ctx
        .start_child_workflow(
            CLEANING_CHILD,
            format!("{id}/wait"),
            (),
            ChildWorkflowOptions::new(),
        )
        .await?;
    let tried = ChildWorkflowOptions::new()
        .with_cancellation_type(ChildWorkflowCancellationType::TryCancel)
        .with_parent_close_policy(ParentClosePolicy::Abandon);
    let try_child = ctx
        .start_child_workflow(CLEANING_CHILD, format!("{id}/try"), (), tried)
        .await?;
    let (wait, try_child) = futures::join!(wait.result(), try_child.result());
    let label = |r: Result<(), ChildWorkflowError>| match r {
        Ok(()) => "value".to_string(),
        Err(ChildWorkflowError::ParentCancelled { .. }) => "parent cancelled".into(),
        Err(ChildWorkflowError::Cancelled { .. }) => "child cancelled".into(),
        Err(other) => other.to_string(),
    };
    Ok(vec![label(wait), label(try_child)])
}

fn crash_builder() -> EngineBuilder {
    builder()
        .workflow(CLEANING_CHILD, cleaning_child)
        .workflow(KILLED_PARENT, killed_parent)
        .activity(NOTE, note)
}

/// Run as a child process: starts the parent (once), cancels it once both
/// children are running, and waits for its result.
#[tokio::test]
async fn crash_child_cancelling_parent() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = crash_builder().open_db(Path::new(&db)).await.unwrap();
    // Once: a round killed after the parent closed must not start a second
    // parent, whose children would meet the first's still cleaning up.
    let once =
        WorkflowOptions::default().with_id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate);
    match engine.start_workflow(KILLED_PARENT, "kp", (), once).await {
        Ok(_)
        | Err(
            steadfast::ClientError::AlreadyStarted { .. }
            | steadfast::ClientError::IdReuseRejected { .. },
        ) => {}
        Err(e) => panic!("{e}"),
    }
    child_report("started");
    children_started(&engine, &["kp/wait".to_string(), "kp/try".to_string()]).await;
    match engine.cancel("kp").await {
        Ok(()) | Err(steadfast::ClientError::WorkflowClosed { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    child_report("cancelled");
    let parent = engine
        .get_workflow_handle(KILLED_PARENT, "kp")
        .await
        .unwrap();
    let result = parent.result().await.unwrap();
    child_report(&format!("done {}", result.join(",")));
}

#[tokio::test]
async fn a_kill_9_while_a_parent_cancels_its_children_cancels_each_once() {
    let db = temp_db();
    let log = db.path.with_extension("log");
    let env = [
        (DB_ENV, db.path.as_os_str() as &OsStr),
        (LOG_ENV, log.as_os_str() as &OsStr),
    ];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_CHILD_CANCEL_SEED"));
    let done = |lines: &[String]| lines.iter().any(|l| l.starts_with("done"));
    let mut mid_cleanup = 0;
    // Kill points in turn: as soon as the parent is started, as soon as its
    // cancellation is acknowledged, and after a few more cleanup steps.
    for round in 0..8 {
        let mut child = spawn_crash_child("crash_child_cancelling_parent", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "started")
            .await;
        match round % 3 {
            0 => {}
            1 => {
                child
                    .wait_for_line(Duration::from_secs(60), |l| {
                        l == "cancelled" || l.starts_with("done")
                    })
                    .await;
            }
            _ => {
                let wanted = support::read_log(&log).len() as u64 + rng.between(1, 4);
                support::eventually(Duration::from_secs(60), || {
                    let now = support::read_log(&log).len() as u64;
                    let exited = done(&child.lines());
                    async move { (now >= wanted || exited).then_some(()) }
                })
                .await;
            }
        }
        let lines = child.kill();
        let logged = support::read_log(&log).len() as u32;
        if !done(&lines) && logged > 0 && logged < 2 * STEPS {
            mid_cleanup += 1;
        }
    }
    assert!(mid_cleanup >= 1, "no kill landed mid-cleanup");
    // SAFETY: set before this test's engine runs the activity that reads it.
    unsafe { std::env::set_var(LOG_ENV, &log) };
    let engine = crash_builder().open_db(&db.path).await.unwrap();
    if engine.describe("kp").await.is_err() {
        panic!("the parent was never started");
    }
    // A kill before the cancellation was acknowledged: ask again (a
    // request is state, a second one changes nothing).
    match engine.cancel("kp").await {
        Ok(()) | Err(steadfast::ClientError::WorkflowClosed { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    let parent = engine
        .get_workflow_handle(KILLED_PARENT, "kp")
        .await
        .unwrap();
    assert_eq!(
        parent.result().await.unwrap(),
        ["child cancelled", "parent cancelled"]
    );
    for id in ["kp/wait", "kp/try"] {
        support::eventually(Duration::from_secs(60), || async {
            let status = engine.describe(id).await.ok()?.status;
            (status == WorkflowStatus::Cancelled).then_some(())
        })
        .await;
    }
    // The parent: its cancellation once, each child asked once, each ask's
    // outcome once, the waited-for child's close once.
    let history = engine.history("kp").await.unwrap();
    support::assert_history_well_formed(&history);
    let k = kinds(&history);
    let count = |kind: &str| k.iter().filter(|k| *k == kind).count();
    assert_eq!(cancel_requests(&history), 1, "{k:?}");
    let mut seqs = cancel_requested_seqs(&history);
    assert_eq!(seqs.len(), 2, "{k:?}");
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 2, "{k:?}");
    assert_eq!(count("ExternalWorkflowCancelRequested"), 2, "{k:?}");
    // The waited-for child's close once; the try-cancel child's at most
    // once (recorded if it closed before the parent did, not seen).
    let mut closed: Vec<u32> = history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ChildWorkflowClosed { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    let all = closed.len();
    closed.sort();
    closed.dedup();
    assert_eq!(closed.len(), all, "{k:?}");
    assert!(closed.contains(&seqs[0]), "{k:?}");
    // Each child: asked to cancel once, every cleanup step recorded once
    // (the log may repeat a step a kill cut off), closed cancelled.
    let logged = support::read_log(&log);
    for id in ["kp/wait", "kp/try"] {
        let history = engine.history(id).await.unwrap();
        support::assert_history_well_formed(&history);
        assert_eq!(cancel_requests(&history), 1, "{id}");
        let completed = history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
            .count() as u32;
        assert_eq!(completed, STEPS, "{id}");
        for step in 0..STEPS {
            let line = format!("{id} {step}");
            assert!(logged.contains(&line), "{line} missing from the log");
        }
    }
    let replayer = steadfast::Replayer::new()
        .workflow(CLEANING_CHILD, cleaning_child)
        .workflow(KILLED_PARENT, killed_parent);
    for id in ["kp", "kp/wait", "kp/try"] {
        replayer
            .replay(&engine.workflow_history(id).await.unwrap())
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    engine.shutdown().await.unwrap();
}
