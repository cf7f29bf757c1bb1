//! Promise: an operator can pause a run (`Engine::pause_workflow`): while
//! paused no activity attempt begins and no durable timer fires, and both
//! are held, not lost: a timer that came due during the pause fires at the
//! unpause, and an activity scheduled during the pause begins then.
//! Queries answer and signals are accepted and recorded while paused; the
//! pause shows in `describe` and `list`; it survives a kill -9 (a real
//! killed process) and a reopen; bad calls get typed errors.

mod support;

use support::OpenDb;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::testing::TestEngine;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, ListFilter, PauseReason, QueryDef, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};

const WORK: ActivityDef<String, String> = ActivityDef::new("Pause.Work");
const TIMED: WorkflowDef<(), String> = WorkflowDef::new("Pause.Timed");
const SCHEDULES: WorkflowDef<(), String> = WorkflowDef::new("Pause.Schedules");
const GO: SignalDef<String> = SignalDef::new("go");
const STAGE: QueryDef<String> = QueryDef::new("stage");

static WORK_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn work(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    WORK_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("worked({input})"))
}

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5))
}

/// A timer of ten seconds, then the activity.
async fn timed(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.handle_query(STAGE, || "sleeping".to_string());
    ctx.sleep(Duration::from_secs(10)).await?;
    Ok(ctx.execute_activity(WORK, "t".into(), options()).await?)
}

/// A signal, then the activity.
async fn schedules(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let input = ctx.recv_signal(GO).await?;
    Ok(ctx.execute_activity(WORK, input, options()).await?)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(TIMED, timed)
        .workflow(SCHEDULES, schedules)
        .activity(WORK, work)
}

fn requested(reason: &str) -> Option<PauseReason> {
    Some(PauseReason::Requested(reason.to_string()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_paused_run_holds_its_timer_and_activities_until_unpaused() {
    let env = TestEngine::open(builder()).await.unwrap();
    let runs_before = WORK_RUNS.load(Ordering::SeqCst);

    // A timer that comes due during the pause.
    let timed_run = env
        .start_workflow(TIMED, "timed", (), WorkflowOptions::new())
        .await
        .unwrap();
    env.pause_workflow("timed", "inspect it").await.unwrap();
    // Pausing again keeps the first reason.
    env.pause_workflow("timed", "again").await.unwrap();
    env.sleep(Duration::from_secs(60)).await;
    let described = env.describe("timed").await.unwrap();
    assert_eq!(described.paused, requested("inspect it"));
    assert_eq!(described.pending_timers.len(), 1, "the timer is held");
    assert!(described.pending_timers[0].fire_at < env.now());
    // Queries answer and signals are recorded while paused.
    assert_eq!(env.query("timed", STAGE).await.unwrap(), "sleeping");
    env.signal("timed", GO, "ignored".into()).await.unwrap();
    let listed = env.list(&ListFilter::new()).await.unwrap();
    let entry = listed
        .executions
        .iter()
        .find(|e| e.workflow_id == "timed")
        .unwrap();
    assert_eq!(entry.paused, requested("inspect it"));

    // An activity scheduled during the pause waits, not begun.
    let scheduled_run = env
        .start_workflow(SCHEDULES, "schedules", (), WorkflowOptions::new())
        .await
        .unwrap();
    env.pause_workflow("schedules", "hold").await.unwrap();
    env.signal("schedules", GO, "s".into()).await.unwrap();
    env.sleep(Duration::from_secs(60)).await;
    let described = env.describe("schedules").await.unwrap();
    assert_eq!(described.pending_activities.len(), 1);
    assert!(described.pending_activities[0].next_attempt_at.is_some());
    assert_eq!(WORK_RUNS.load(Ordering::SeqCst), runs_before, "nothing ran");

    env.unpause_workflow("timed", "done looking").await.unwrap();
    env.unpause_workflow("schedules", "go on").await.unwrap();
    assert_eq!(timed_run.result().await.unwrap(), "worked(t)");
    assert_eq!(scheduled_run.result().await.unwrap(), "worked(s)");
    assert_eq!(WORK_RUNS.load(Ordering::SeqCst), runs_before + 2);

    let kinds: Vec<EventKind> = env
        .history("timed")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let paused = kinds
        .iter()
        .position(|k| matches!(k, EventKind::WorkflowPaused { .. }))
        .unwrap();
    let unpaused = kinds
        .iter()
        .position(|k| matches!(k, EventKind::WorkflowUnpaused { .. }))
        .unwrap();
    let fired = kinds
        .iter()
        .position(|k| matches!(k, EventKind::TimerFired { .. }))
        .unwrap();
    assert!(paused < unpaused && unpaused < fired, "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, EventKind::WorkflowPaused { .. }))
            .count(),
        1
    );
    assert_eq!(env.describe("timed").await.unwrap().paused, None);
    env.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn pause_and_unpause_refuse_what_they_cannot_do() {
    let env = TestEngine::open(builder()).await.unwrap();
    assert!(matches!(
        env.pause_workflow("nobody", "r").await,
        Err(ClientError::NotFound { .. })
    ));
    let run = env
        .start_workflow(SCHEDULES, "closes", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert!(matches!(
        env.pause_workflow("closes", "  ").await,
        Err(ClientError::InvalidArgument(_))
    ));
    // Unpausing a run that is not paused changes nothing.
    env.unpause_workflow("closes", "r").await.unwrap();
    env.signal("closes", GO, "x".into()).await.unwrap();
    run.result().await.unwrap();
    assert!(matches!(
        env.pause_workflow("closes", "r").await,
        Err(ClientError::WorkflowClosed { .. })
    ));
    assert!(matches!(
        env.unpause_workflow("closes", "r").await,
        Err(ClientError::WorkflowClosed { .. })
    ));
    env.shutdown().await.unwrap();
}

/// The crash child: starts a run whose timer is due in 300 ms, pauses it,
/// reports, and waits to be killed.
#[tokio::test(flavor = "multi_thread")]
async fn pause_crash_child() {
    let Some(path) = std::env::var_os("STEADFAST_PAUSE_CHILD_DB") else {
        return;
    };
    let engine = Engine::builder()
        .workflow(SHORT, short)
        .activity(WORK, work)
        .open_db(&path)
        .await
        .unwrap();
    engine
        .start_workflow(SHORT, "paused", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .pause_workflow("paused", "before the kill")
        .await
        .unwrap();
    support::child_report("paused");
    std::future::pending::<()>().await;
}

const SHORT: WorkflowDef<(), String> = WorkflowDef::new("Pause.Short");

async fn short(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.sleep(Duration::from_millis(300)).await?;
    Ok(ctx
        .execute_activity(WORK, "short".into(), options())
        .await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_survives_a_kill_and_a_reopen() {
    let db = support::temp_db();
    let mut child = support::spawn_crash_child(
        "pause_crash_child",
        &[("STEADFAST_PAUSE_CHILD_DB", db.path.as_os_str())],
    );
    child
        .wait_for_line(Duration::from_secs(60), |l| l == "paused")
        .await;
    child.kill();

    let engine = Engine::builder()
        .workflow(SHORT, short)
        .activity(WORK, work)
        .open_db(&db.path)
        .await
        .unwrap();
    let described = engine.describe("paused").await.unwrap();
    assert_eq!(described.paused, requested("before the kill"));
    let fire_at = described.pending_timers[0].fire_at;
    // Well past the timer's due time, it is still held.
    while std::time::SystemTime::now() < fire_at + Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let described = engine.describe("paused").await.unwrap();
    assert_eq!(described.pending_timers.len(), 1);
    let history = engine.history("paused").await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
    );
    engine.unpause_workflow("paused", "after").await.unwrap();
    let handle = engine.get_workflow_handle(SHORT, "paused").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "worked(short)");
    engine.shutdown().await.unwrap();
}

const COUNTER: WorkflowDef<(), u32> = WorkflowDef::new("Pause.Counter");
const ADD: steadfast::UpdateDef<u32, u32> = steadfast::UpdateDef::new("add");

/// Adds each update's number; returns the total on `go`.
async fn counter(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let handled = total.clone();
    ctx.handle_update(
        ADD,
        |_: &u32| Ok(()),
        move |_ctx, n: u32| {
            let total = handled.clone();
            async move { Ok(total.fetch_add(n, Ordering::SeqCst) + n) }
        },
    );
    ctx.recv_signal(GO).await?;
    Ok(total.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_run_rejects_new_updates_and_takes_them_again_once_unpaused() {
    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(COUNTER, counter)
        .open_db(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(COUNTER, "counter", (), WorkflowOptions::new())
        .await
        .unwrap();
    let add = |n: u32, id: &str| {
        engine.update_with_options(
            "counter",
            ADD,
            n,
            steadfast::UpdateOptions::new().with_update_id(id),
        )
    };
    assert_eq!(add(2, "first").await.unwrap(), 2);
    engine.pause_workflow("counter", "look").await.unwrap();
    let before = engine.history("counter").await.unwrap();
    match add(3, "second").await {
        Err(steadfast::UpdateError::Paused { reason, .. }) => assert_eq!(reason, "look"),
        other => panic!("{other:?}"),
    }
    // Nothing of it was written; an update accepted before the pause still
    // answers its outcome.
    assert_eq!(engine.history("counter").await.unwrap(), before);
    assert_eq!(add(2, "first").await.unwrap(), 2);
    engine.unpause_workflow("counter", "go on").await.unwrap();
    assert_eq!(add(3, "second").await.unwrap(), 5);
    engine.signal("counter", GO, "end".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 5);
    engine.shutdown().await.unwrap();
}

/// A cancellation request sent to a paused run is held, as Temporal holds
/// it: the call answers as usual, the run goes on paused (signals still
/// recorded), the request survives a reopen, a second one adds nothing,
/// and the code sees the first one at the unpause.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_sent_to_a_paused_run_is_held_until_the_unpause() {
    let db = support::temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    engine
        .start_workflow(SCHEDULES, "held-cancel", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .pause_workflow("held-cancel", "investigate")
        .await
        .unwrap();
    engine.cancel("held-cancel").await.unwrap();
    let kinds = |history: Vec<steadfast::Event>| -> Vec<EventKind> {
        history.into_iter().map(|e| e.kind).collect()
    };
    let held = kinds(engine.history("held-cancel").await.unwrap());
    assert!(
        matches!(
            held.last(),
            Some(EventKind::WorkflowCancelRequestDeferred { reason }) if reason == "cancelled by a client"
        ),
        "{held:?}"
    );
    assert!(
        !held
            .iter()
            .any(|k| matches!(k, EventKind::WorkflowCancelRequested { .. })),
        "the code has not seen it: {held:?}"
    );
    // Still a running, paused run that takes signals; a second cancel adds nothing.
    engine.cancel("held-cancel").await.unwrap();
    let described = engine.describe("held-cancel").await.unwrap();
    assert_eq!(described.status, steadfast::WorkflowStatus::Running);
    assert_eq!(described.paused, requested("investigate"));
    engine.shutdown().await.unwrap();

    // Durable: the reopened run still holds it.
    let engine = builder().open_db(&db.path).await.unwrap();
    let before = engine.history("held-cancel").await.unwrap();
    assert_eq!(before.len(), held.len(), "{:?}", kinds(before.clone()));
    engine
        .unpause_workflow("held-cancel", "go on")
        .await
        .unwrap();
    let result = engine
        .get_workflow_handle(SCHEDULES, "held-cancel")
        .await
        .unwrap()
        .result()
        .await;
    assert!(
        matches!(result, Err(steadfast::ResultError::Cancelled { .. })),
        "{result:?}"
    );
    let after = kinds(engine.history("held-cancel").await.unwrap());
    let unpaused = after
        .iter()
        .position(|k| matches!(k, EventKind::WorkflowUnpaused { .. }))
        .expect("unpaused");
    assert!(
        matches!(
            &after[unpaused + 1],
            EventKind::WorkflowCancelRequested { reason } if reason == "cancelled by a client"
        ),
        "the request is delivered with the unpause: {after:?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|k| matches!(k, EventKind::WorkflowCancelRequested { .. }))
            .count(),
        1
    );
    engine.shutdown().await.unwrap();
}

const LOCAL_WORK: ActivityDef<String, String> = ActivityDef::new("Pause.LocalWork");
const LOCAL: WorkflowDef<(), String> = WorkflowDef::new("Pause.Local");

/// Runs of `local_work`, counted apart from `work`'s.
static LOCAL_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn local_work(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    LOCAL_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("locally({input})"))
}

/// A signal, then a local activity that waits for its end when cancelled;
/// a cancellation of the run is caught and answered.
async fn local(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let input = ctx.recv_signal(GO).await?;
    let options = steadfast::LocalActivityOptions::start_to_close(Duration::from_secs(5))
        .with_cancellation_type(steadfast::ActivityCancellationType::WaitCancellationCompleted);
    match ctx.execute_local_activity(LOCAL_WORK, input, options).await {
        Ok(out) => Ok(out),
        Err(_) if ctx.is_cancel_requested() => Ok("cancelled before it ran".to_string()),
        Err(e) => Err(e.into()),
    }
}

fn local_builder() -> EngineBuilder {
    builder()
        .workflow(LOCAL, local)
        .activity(LOCAL_WORK, local_work)
}

/// A local activity the code asks for while the run is paused is held;
/// a cancellation sent meanwhile is held too, and at the unpause the
/// cancellation wins: it is recorded with the unpause, the run's
/// cancellation ends the code's wait on the local activity (whatever its
/// cancellation type), and the held local activity never runs; also when
/// the held request comes from a replay after a reopen.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_activity_held_by_a_pause_does_not_run_when_a_held_cancel_comes_with_the_unpause() {
    held_local_then_cancel(false).await;
    held_local_then_cancel(true).await;
}

async fn held_local_then_cancel(reopen: bool) {
    let db = support::temp_db();
    let mut engine = local_builder().open_db(&db.path).await.unwrap();
    let runs_before = LOCAL_RUNS.load(Ordering::SeqCst);
    engine
        .start_workflow(LOCAL, "held-local", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .pause_workflow("held-local", "investigate")
        .await
        .unwrap();
    // The code asks for the local activity: held.
    engine.signal("held-local", GO, "x".into()).await.unwrap();
    engine.cancel("held-local").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(LOCAL_RUNS.load(Ordering::SeqCst), runs_before, "held");
    if reopen {
        // Reopened, the replayed code asks again, and it is held again.
        engine.shutdown().await.unwrap();
        engine = local_builder().open_db(&db.path).await.unwrap();
    }
    engine
        .unpause_workflow("held-local", "go on")
        .await
        .unwrap();
    let result = engine
        .get_workflow_handle(LOCAL, "held-local")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(result, "cancelled before it ran");
    assert_eq!(
        LOCAL_RUNS.load(Ordering::SeqCst),
        runs_before,
        "the held local activity never ran (reopen: {reopen})"
    );
    let kinds: Vec<EventKind> = engine
        .history("held-local")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    let unpaused = kinds
        .iter()
        .position(|k| matches!(k, EventKind::WorkflowUnpaused { .. }))
        .expect("unpaused");
    assert!(
        matches!(
            kinds[unpaused + 1],
            EventKind::WorkflowCancelRequested { .. }
        ),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, EventKind::LocalActivityRecorded { .. })),
        "{kinds:?}"
    );
    engine.shutdown().await.unwrap();
}
