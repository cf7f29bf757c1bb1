//! Promise: a run can be reset to a workflow task boundary
//! (`Engine::reset_workflow`): a new run of the same workflow ID starts with
//! the history up to that point and runs the rest under the code registered
//! now, the old run closes as reset (Terminated, naming the new run;
//! `describe` links both ways; a handle follows it), and signals received
//! after the point are delivered again. This rescues a run parked on
//! nondeterminism without redeploying the old code. A closed run (failed,
//! completed, terminated, ...) is reset too, as in Temporal: it stays
//! closed as it was and a new run starts from the point. Points that are
//! not boundaries and unknown IDs get typed errors.

mod support;

use support::OpenDb;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, EventKind,
    ParkReason, PauseReason, ResetOptions, ResetTo, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};

const A: ActivityDef<String, String> = ActivityDef::new("Reset.A");
const B: ActivityDef<String, String> = ActivityDef::new("Reset.B");
const ORDER: WorkflowDef<(), String> = WorkflowDef::new("Reset.Order");
const GO: SignalDef<String> = SignalDef::new("go");
const THEN: SignalDef<String> = SignalDef::new("then");

async fn a(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(format!("A({input})"))
}

async fn b(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(format!("B({input})"))
}

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5))
}

/// The code deployed first: activity A, then two signals.
async fn order_v1(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let first = ctx.execute_activity(A, "x".into(), options()).await?;
    let go = ctx.recv_signal(GO).await?;
    let then = ctx.recv_signal(THEN).await?;
    Ok(format!("{first}+{go}+{then}"))
}

/// A change that is not replay-safe: activity B where A was.
async fn order_v2(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let first = ctx.execute_activity(B, "x".into(), options()).await?;
    let go = ctx.recv_signal(GO).await?;
    let then = ctx.recv_signal(THEN).await?;
    Ok(format!("{first}+{go}+{then}"))
}

async fn open_v1(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(ORDER, order_v1)
        .activity(A, a)
        .open_db(path)
        .await
        .unwrap()
}

async fn open_v2(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(ORDER, order_v2)
        .activity(B, b)
        .open_db(path)
        .await
        .unwrap()
}

/// Runs v1 until it received `go`, then closes the engine.
async fn run_v1_until_go(path: &std::path::Path) -> steadfast::RunId {
    let engine = open_v1(path).await;
    let run = engine
        .start_workflow(ORDER, "order", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("order").await.unwrap();
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
            .then_some(())
    })
    .await;
    engine.signal("order", GO, "go".into()).await.unwrap();
    engine.shutdown().await.unwrap();
    run.run_id()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_parked_on_nondeterminism_is_rescued_by_a_reset_under_the_new_code() {
    let db = support::temp_db();
    let old_run = run_v1_until_go(&db.path).await;

    // The new code diverges at the activity: the run parks, shown paused.
    let engine = open_v2(&db.path).await;
    let old_handle = engine.get_workflow_handle(ORDER, "order").await.unwrap();
    let described = support::eventually(Duration::from_secs(30), || async {
        let d = engine.describe("order").await.unwrap();
        d.paused.is_some().then_some(d)
    })
    .await;
    let Some(PauseReason::Parked(ParkReason::Nondeterminism(nde))) = &described.paused else {
        panic!("not parked on nondeterminism: {:?}", described.paused);
    };
    assert_eq!(nde.event_id, 2, "diverges at the activity's scheduling");
    // Once this engine holds it parked (a wait loads it), list shows it.
    assert!(matches!(
        old_handle.result_or_parked().await.unwrap(),
        steadfast::ResultOrParked::Parked(ParkReason::Nondeterminism(_))
    ));
    let listed = engine.list(&steadfast::ListFilter::new()).await.unwrap();
    assert!(matches!(
        listed.executions[0].paused,
        Some(PauseReason::Parked(_))
    ));

    // An event that is not a boundary is refused, naming those there are.
    match engine
        .reset_workflow("order", ResetOptions::new(ResetTo::EventId(2), "x"))
        .await
    {
        Err(ClientError::NotAResetPoint { boundaries, .. }) => assert!(boundaries.contains(&1)),
        other => panic!("{other:?}"),
    }

    // The last good task is the first one: before the divergence.
    let new_run = engine
        .reset_workflow(
            "order",
            ResetOptions::new(ResetTo::LastWorkflowTask, "bad deploy"),
        )
        .await
        .unwrap();
    assert_ne!(new_run, old_run);
    engine.signal("order", THEN, "then".into()).await.unwrap();
    // The old handle follows the reset to the new run; the signal `go`,
    // received after the point, was delivered to it again.
    assert_eq!(old_handle.result().await.unwrap(), "B(x)+go+then");

    let new = engine.describe("order").await.unwrap();
    assert_eq!((new.run_id, new.reset_from), (new_run, Some(old_run)));
    assert_eq!(new.status, WorkflowStatus::Completed);
    let old = engine.describe_run("order", old_run).await.unwrap();
    assert_eq!(old.status, WorkflowStatus::Terminated);
    assert_eq!(old.reset_to, Some(new_run));
    let history = engine.history("order").await.unwrap();
    assert!(matches!(history[0].kind, EventKind::WorkflowStarted { .. }));
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowResetFrom { reset_event_id: 1, previous_run_id, .. } if previous_run_id == old_run
    ));
    support::assert_history_well_formed(&history);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_to_an_event_id_keeps_the_prefix_and_can_drop_later_signals() {
    let db = support::temp_db();
    let old_run = run_v1_until_go(&db.path).await;
    let engine = open_v1(&db.path).await;
    let old = engine.history("order").await.unwrap();
    let completed = old
        .iter()
        .find(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
        .unwrap()
        .event_id;
    let new_run = engine
        .reset_workflow(
            "order",
            ResetOptions::new(ResetTo::EventId(completed), "again").exclude_signals(),
        )
        .await
        .unwrap();
    let history = engine.history("order").await.unwrap();
    assert_eq!(history[..completed as usize], old[..completed as usize]);
    assert!(
        !history[completed as usize..].iter().any(|e| matches!(
            e.kind,
            EventKind::WorkflowSignaled { .. } | EventKind::WorkflowSignaledWithOptions { .. }
        )),
        "the signal after the point was not reapplied: {history:?}"
    );
    // Without the old signal the new run waits for `go` again.
    engine.signal("order", GO, "g2".into()).await.unwrap();
    engine.signal("order", THEN, "t2".into()).await.unwrap();
    let handle = engine.get_workflow_handle(ORDER, "order").await.unwrap();
    assert_eq!(handle.run_id(), new_run);
    assert_eq!(handle.result().await.unwrap(), "A(x)+g2+t2");
    assert_eq!(
        engine
            .describe_run("order", old_run)
            .await
            .unwrap()
            .reset_to,
        Some(new_run)
    );
    assert!(matches!(
        engine
            .reset_workflow("nobody", ResetOptions::new(ResetTo::FirstWorkflowTask, "x"))
            .await,
        Err(ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();
}

const CHECKOUT: WorkflowDef<(), String> = WorkflowDef::new("Reset.Checkout");

/// Fails on the signal `bad`, completes on any other.
async fn checkout(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let card = ctx.recv_signal(GO).await?;
    if card == "bad" {
        return Err(WorkflowError::new("card declined"));
    }
    Ok(format!("paid with {card}"))
}

async fn open_checkout(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(CHECKOUT, checkout)
        .open_db(path)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_reset_it_stays_failed_and_a_new_run_goes_on_from_the_point() {
    let db = support::temp_db();
    let engine = open_checkout(&db.path).await;
    let failed = engine
        .start_workflow(CHECKOUT, "checkout", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("checkout", GO, "bad".into()).await.unwrap();
    assert!(failed.result().await.is_err());
    let failed_history = engine.history("checkout").await.unwrap();

    // Reset to the first task without the signal that failed it.
    let new_run = engine
        .reset_workflow(
            "checkout",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "retry the payment").exclude_signals(),
        )
        .await
        .unwrap();
    assert_ne!(new_run, failed.run_id());
    // The failed run stays failed, its history as it was.
    let old = engine
        .describe_run("checkout", failed.run_id())
        .await
        .unwrap();
    assert_eq!(old.status, WorkflowStatus::Failed);
    assert_eq!(old.reset_to, Some(new_run));
    assert!(
        failed.result().await.is_err(),
        "a closed run keeps its outcome"
    );
    let new = engine.describe("checkout").await.unwrap();
    assert_eq!(
        (new.run_id, new.reset_from),
        (new_run, Some(failed.run_id()))
    );
    assert_eq!(new.status, WorkflowStatus::Running);
    let history = engine.history("checkout").await.unwrap();
    assert_eq!(history[0], failed_history[0]);
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowResetFrom { reset_event_id: 1, previous_run_id, .. }
            if previous_run_id == failed.run_id()
    ));

    engine.signal("checkout", GO, "visa".into()).await.unwrap();
    let handle = engine
        .get_workflow_handle(CHECKOUT, "checkout")
        .await
        .unwrap();
    assert_eq!(handle.run_id(), new_run);
    assert_eq!(handle.result().await.unwrap(), "paid with visa");
    support::assert_history_well_formed(&engine.history("checkout").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_and_terminated_runs_are_reset_and_later_signals_are_reapplied() {
    let db = support::temp_db();
    let engine = open_checkout(&db.path).await;
    let done = engine
        .start_workflow(CHECKOUT, "done", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("done", GO, "cash".into()).await.unwrap();
    assert_eq!(done.result().await.unwrap(), "paid with cash");
    // The signal after the point is delivered again: the new run pays again.
    let again = engine
        .reset_workflow(
            "done",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "again"),
        )
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(CHECKOUT, "done").await.unwrap();
    assert_eq!(handle.run_id(), again);
    assert_eq!(handle.result().await.unwrap(), "paid with cash");
    assert_eq!(
        engine
            .describe_run("done", done.run_id())
            .await
            .unwrap()
            .status,
        WorkflowStatus::Completed
    );

    engine
        .start_workflow(CHECKOUT, "ended", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.terminate("ended", "by hand").await.unwrap();
    // A terminated run's last good task is its last boundary.
    let revived = engine
        .reset_workflow(
            "ended",
            ResetOptions::new(ResetTo::LastWorkflowTask, "undo"),
        )
        .await
        .unwrap();
    engine.signal("ended", GO, "card".into()).await.unwrap();
    let handle = engine.get_workflow_handle(CHECKOUT, "ended").await.unwrap();
    assert_eq!(handle.run_id(), revived);
    assert_eq!(handle.result().await.unwrap(), "paid with card");
    engine.shutdown().await.unwrap();

    // Durable: after a restart the chain is as it was.
    let engine = open_checkout(&db.path).await;
    let described = engine.describe("ended").await.unwrap();
    assert_eq!(
        (described.run_id, described.status),
        (revived, WorkflowStatus::Completed)
    );
    engine.shutdown().await.unwrap();
}

const TALLY: WorkflowDef<(), u32> = WorkflowDef::new("Reset.Tally");
const ADD: steadfast::UpdateDef<u32, u32> = steadfast::UpdateDef::new("add");
const DONE: SignalDef<()> = SignalDef::new("done");

/// Adds each update's number to a total; returns it on `done`.
async fn tally(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let handled = total.clone();
    ctx.handle_update(
        ADD,
        |n: &u32| {
            if *n == 0 {
                Err("add at least one".to_string())
            } else {
                Ok(())
            }
        },
        move |_ctx, n: u32| {
            let total = handled.clone();
            async move { Ok(total.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n) }
        },
    );
    ctx.recv_signal(DONE).await?;
    Ok(total.load(std::sync::atomic::Ordering::SeqCst))
}

async fn open_tally(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(TALLY, tally)
        .open_db(path)
        .await
        .unwrap()
}

fn accepted_updates(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowUpdateAccepted { update_id, .. } => Some(update_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_accepted_after_the_point_run_again_in_the_new_run_unless_excluded() {
    let db = support::temp_db();
    let engine = open_tally(&db.path).await;
    engine
        .start_workflow(TALLY, "tally", (), WorkflowOptions::new())
        .await
        .unwrap();
    let add = |n| {
        engine.update_with_options(
            "tally",
            ADD,
            n,
            steadfast::UpdateOptions::new().with_update_id(format!("add-{n}")),
        )
    };
    assert_eq!(add(2).await.unwrap(), 2);
    assert_eq!(add(3).await.unwrap(), 5);
    let before = accepted_updates(&engine.history("tally").await.unwrap());
    assert_eq!(before, ["add-2", "add-3"]);

    // Both updates are accepted again after the point, in order; their
    // handlers run again, so the new run's total is theirs again.
    engine
        .reset_workflow(
            "tally",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "redo"),
        )
        .await
        .unwrap();
    let history = engine.history("tally").await.unwrap();
    assert_eq!(accepted_updates(&history), before);
    // A caller asking again with the same update ID gets the new run's
    // outcome, without a third run of the handler.
    assert_eq!(add(3).await.unwrap(), 5);
    support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("tally").await.unwrap();
        (history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::WorkflowUpdateCompleted { .. }))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    assert_eq!(add(4).await.unwrap(), 9);

    // Excluded: the new run starts from nothing.
    engine
        .reset_workflow(
            "tally",
            ResetOptions::new(ResetTo::FirstWorkflowTask, "clean").exclude_updates(),
        )
        .await
        .unwrap();
    assert!(accepted_updates(&engine.history("tally").await.unwrap()).is_empty());
    assert_eq!(add(1).await.unwrap(), 1);
    engine.signal("tally", DONE, ()).await.unwrap();
    let handle = engine.get_workflow_handle(TALLY, "tally").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 1);
    support::assert_history_well_formed(&engine.history("tally").await.unwrap());
    engine.shutdown().await.unwrap();
}

const KID: WorkflowDef<(), String> = WorkflowDef::new("Reset.Kid");
const FAMILY: WorkflowDef<(), String> = WorkflowDef::new("Reset.Family");
const KID_DONE: SignalDef<String> = SignalDef::new("kid.done");

/// Waits for `kid.done`, then answers it.
async fn kid(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    Ok(ctx.recv_signal(KID_DONE).await?)
}

/// Starts a child (default policy: Terminate), then waits for its result.
async fn family(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let child = ctx
        .start_child_workflow(
            KID,
            "family-kid",
            (),
            steadfast::ChildWorkflowOptions::new(),
        )
        .await?;
    let answer = child.result().await?;
    Ok(format!("kid said {answer}"))
}

async fn open_family(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(FAMILY, family)
        .workflow(KID, kid)
        .open_db(path)
        .await
        .unwrap()
}

async fn wait_for_status(engine: &Engine, workflow_id: &str, status: WorkflowStatus) {
    for _ in 0..500 {
        if engine
            .describe(workflow_id)
            .await
            .is_ok_and(|d| d.status == status)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{workflow_id} never became {status:?}");
}

/// A reset of a run with an open child started before the point keeps the
/// child (Temporal refuses or breaks such resets): the child is not
/// terminated by the old run's close, names the new run as its parent, its
/// close reaches the new run, and the new run's own close applies the
/// child's parent-close policy; also across a reopen.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_hands_the_open_children_to_the_new_run() {
    let db = support::temp_db();
    let engine = open_family(&db.path).await;
    let handle = engine
        .start_workflow(FAMILY, "family", (), WorkflowOptions::new())
        .await
        .unwrap();
    let old_run = handle.run_id();
    wait_for_status(&engine, "family-kid", WorkflowStatus::Running).await;
    let started = engine
        .history("family")
        .await
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }))
        .expect("the child started")
        .event_id;
    let new_run = engine
        .reset_workflow(
            "family",
            ResetOptions::new(ResetTo::EventId(started), "keep the kid"),
        )
        .await
        .unwrap();
    assert_ne!(new_run, old_run);
    let kid = engine.describe("family-kid").await.unwrap();
    assert_eq!(kid.status, WorkflowStatus::Running, "not terminated");
    assert_eq!(kid.parent.as_ref().map(|p| p.run_id), Some(new_run));
    let described = engine.describe("family").await.unwrap();
    assert_eq!(described.run_id, new_run);
    assert_eq!(described.pending_children.len(), 1);
    assert!(
        engine
            .history("family-kid")
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(
                e.kind,
                EventKind::ParentWorkflowReset { parent_run_id } if parent_run_id == new_run
            ))
    );
    engine.shutdown().await.unwrap();

    // After a reopen, the child's close reaches the new run.
    let engine = open_family(&db.path).await;
    engine
        .signal("family-kid", KID_DONE, "hello".into())
        .await
        .unwrap();
    let result = engine
        .get_workflow_handle(FAMILY, "family")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(result, "kid said hello");

    // A second family, reset the same way, then terminated: the kid it
    // inherited gets the new run's parent-close policy (Terminate).
    engine
        .start_workflow(FAMILY, "family", (), WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_status(&engine, "family-kid", WorkflowStatus::Running).await;
    let started = engine
        .history("family")
        .await
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }))
        .unwrap()
        .event_id;
    engine
        .reset_workflow(
            "family",
            ResetOptions::new(ResetTo::EventId(started), "again"),
        )
        .await
        .unwrap();
    assert_eq!(
        engine.describe("family-kid").await.unwrap().status,
        WorkflowStatus::Running
    );
    engine.terminate("family", "stop all").await.unwrap();
    wait_for_status(&engine, "family-kid", WorkflowStatus::Terminated).await;
    engine.shutdown().await.unwrap();
}

/// A child kept by its parent's reset and then reset itself still names
/// the parent's new run: its new run's close reaches that run (whose
/// `child.result()` resolves), and that run's parent-close policy reaches
/// it.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_child_reset_afterwards_still_belongs_to_the_new_parent_run() {
    async fn reset_family_then_kid(engine: &Engine) -> steadfast::RunId {
        wait_for_status(engine, "family-kid", WorkflowStatus::Running).await;
        let started = engine
            .history("family")
            .await
            .unwrap()
            .into_iter()
            .find(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }))
            .expect("the child started")
            .event_id;
        let new_parent = engine
            .reset_workflow(
                "family",
                ResetOptions::new(ResetTo::EventId(started), "keep the kid"),
            )
            .await
            .unwrap();
        let old_kid = engine.describe("family-kid").await.unwrap().run_id;
        let new_kid = engine
            .reset_workflow(
                "family-kid",
                ResetOptions::new(ResetTo::FirstWorkflowTask, "redo the kid"),
            )
            .await
            .unwrap();
        assert_ne!(new_kid, old_kid);
        let kid = engine.describe("family-kid").await.unwrap();
        assert_eq!(kid.run_id, new_kid);
        assert_eq!(kid.status, WorkflowStatus::Running);
        assert_eq!(
            kid.parent.as_ref().map(|p| p.run_id),
            Some(new_parent),
            "the parent's new run, not the one the kid started under"
        );
        new_parent
    }

    let db = support::temp_db();
    let engine = open_family(&db.path).await;
    let handle = engine
        .start_workflow(FAMILY, "family", (), WorkflowOptions::new())
        .await
        .unwrap();
    let new_parent = reset_family_then_kid(&engine).await;
    assert_ne!(new_parent, handle.run_id());
    engine
        .signal("family-kid", KID_DONE, "again".into())
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the new parent run hears of the reset kid's close")
        .unwrap();
    assert_eq!(result, "kid said again");
    assert_eq!(engine.describe("family").await.unwrap().run_id, new_parent);

    // The parent's new run closing applies its policy (Terminate) to the
    // kid's reset run.
    engine
        .start_workflow(FAMILY, "family", (), WorkflowOptions::new())
        .await
        .unwrap();
    reset_family_then_kid(&engine).await;
    engine.terminate("family", "stop all").await.unwrap();
    wait_for_status(&engine, "family-kid", WorkflowStatus::Terminated).await;
    engine.shutdown().await.unwrap();
}

const LONER: WorkflowDef<(), String> = WorkflowDef::new("Reset.Loner");
const MODE: SignalDef<String> = SignalDef::new("mode");

/// Starts a child it abandons at its close, then fails when told `fail`,
/// or waits for the child's result when told anything else.
async fn loner(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let options = steadfast::ChildWorkflowOptions::new()
        .with_parent_close_policy(steadfast::ParentClosePolicy::Abandon);
    let child = ctx
        .start_child_workflow(KID, "loner-kid", (), options)
        .await?;
    if ctx.recv_signal(MODE).await? == "fail" {
        return Err(WorkflowError::new("gave up on the kid"));
    }
    let answer = child.result().await?;
    Ok(format!("kid said {answer}"))
}

async fn open_loner(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(LONER, loner)
        .workflow(KID, kid)
        .open_db(path)
        .await
        .unwrap()
}

/// Starts `loner`, waits for its child, fails it, and resets it (without
/// the `fail` signal) to the child's start; returns the new run.
async fn fail_and_reset_loner(engine: &Engine, kid_done_first: bool) -> steadfast::RunId {
    let failed = engine
        .start_workflow(LONER, "loner", (), WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_status(engine, "loner-kid", WorkflowStatus::Running).await;
    engine.signal("loner", MODE, "fail".into()).await.unwrap();
    assert!(failed.result().await.is_err());
    assert_eq!(
        engine.describe("loner-kid").await.unwrap().status,
        WorkflowStatus::Running,
        "abandoned, not closed, by the parent's close"
    );
    if kid_done_first {
        // Closes after its parent: its close reaches no open run.
        engine
            .signal("loner-kid", KID_DONE, "late".into())
            .await
            .unwrap();
        wait_for_status(engine, "loner-kid", WorkflowStatus::Completed).await;
    }
    let started = engine
        .history("loner")
        .await
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }))
        .expect("the child started")
        .event_id;
    let options =
        ResetOptions::new(ResetTo::EventId(started), "wait for the kid").exclude_signals();
    let new_run = engine.reset_workflow("loner", options).await.unwrap();
    assert_ne!(new_run, failed.run_id());
    new_run
}

/// A reset of a closed (failed) run whose child is still open (abandoned
/// by the close) hands the child to the new run, as the reset of an open
/// run does: `describe` shows it as the new run's child and the child
/// names the new run as its parent; its close, after a reopen, reaches
/// the new run, whose wait on it resolves.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_of_a_closed_run_hands_its_open_children_to_the_new_run() {
    let db = support::temp_db();
    let engine = open_loner(&db.path).await;
    let new_run = fail_and_reset_loner(&engine, false).await;
    let kid = engine.describe("loner-kid").await.unwrap();
    assert_eq!(kid.status, WorkflowStatus::Running);
    assert_eq!(kid.parent.as_ref().map(|p| p.run_id), Some(new_run));
    assert!(
        engine
            .history("loner-kid")
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(
                e.kind,
                EventKind::ParentWorkflowReset { parent_run_id } if parent_run_id == new_run
            ))
    );
    let described = engine.describe("loner").await.unwrap();
    assert_eq!(described.run_id, new_run);
    assert_eq!(described.status, WorkflowStatus::Running);
    assert_eq!(described.pending_children.len(), 1);
    assert_eq!(described.pending_children[0].workflow_id, "loner-kid");
    engine.shutdown().await.unwrap();

    let engine = open_loner(&db.path).await;
    engine.signal("loner", MODE, "wait".into()).await.unwrap();
    engine
        .signal("loner-kid", KID_DONE, "hello".into())
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(LONER, "loner").await.unwrap();
    assert_eq!(handle.run_id(), new_run);
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the new run hears of the kid's close")
        .unwrap();
    assert_eq!(result, "kid said hello");
    engine.shutdown().await.unwrap();
}

/// A child open at the point that closed after its parent (its close
/// reached no open run) is not handed over: the new run records its close
/// when it loads, and its wait on it resolves with that result.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_of_a_closed_run_records_a_child_that_closed_after_it() {
    let db = support::temp_db();
    let engine = open_loner(&db.path).await;
    let new_run = fail_and_reset_loner(&engine, true).await;
    let kid_history = engine.history("loner-kid").await.unwrap();
    assert!(
        !kid_history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ParentWorkflowReset { .. })),
        "a closed child is left as it closed: {kid_history:?}"
    );
    engine.signal("loner", MODE, "wait".into()).await.unwrap();
    let handle = engine.get_workflow_handle(LONER, "loner").await.unwrap();
    assert_eq!(handle.run_id(), new_run);
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("the new run records the kid's close")
        .unwrap();
    assert_eq!(result, "kid said late");
    engine.shutdown().await.unwrap();
}
