//! Promise: cancellation is cooperative, termination is immediate.
//! `engine.cancel` is seen by the workflow at its next wait as a cancellation
//! error (of the activity, timer or signal it waits on); it may run a
//! compensation activity and then ends as `Cancelled`, or it may complete
//! normally. A pending activity attempt is told through its context.
//! `engine.terminate` closes the run at once as `Terminated`: no more
//! workflow code runs, also for a run parked by a nondeterminism error.
//! Neither works on a closed workflow (`ClientError::WorkflowClosed`).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EngineBuilder, Event, EventKind, ParkReason, ResultError, SignalDef, SignalError,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, temp_db};

/// What the workflow waits on when the cancellation comes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum WaitOn {
    Activity,
    Timer,
    Signal,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Plan {
    wait_on: WaitOn,
    /// After compensating, return a value instead of an error.
    complete_anyway: bool,
}

/// Reserves, waits on `wait_on`, and on cancellation releases the
/// reservation (a compensation activity) and reports what it saw.
const RESERVATION: WorkflowDef<Plan, String> = WorkflowDef::new("Reservation");
/// Counts its steps in a loop of 20 ms timers, forever.
const TICKER: WorkflowDef<(), ()> = WorkflowDef::new("Ticker");
/// Waits on a one-hour timer; once cancelled, waits on a 50 ms timer and a
/// signal (waits begun after the cancellation are not cancelled by it).
const AFTER_CANCEL: WorkflowDef<(), String> = WorkflowDef::new("AfterCancel");
/// Waits on the `hold` activity.
const HOLDER: WorkflowDef<(), ()> = WorkflowDef::new("Holder");
/// Runs activity `a` (or `b` in the changed code), then sleeps an hour.
const CHANGED: WorkflowDef<(), ()> = WorkflowDef::new("Changed");

const RESERVE: ActivityDef<(), ()> = ActivityDef::new("reserve");
const RELEASE: ActivityDef<(), ()> = ActivityDef::new("release");
/// Runs until its attempt is cancelled, then reports how it learned.
const HOLD: ActivityDef<(), ()> = ActivityDef::new("hold");
/// The same, as a blocking activity that polls `is_cancelled`.
const HOLD_BLOCKING: ActivityDef<(), ()> = ActivityDef::new("hold_blocking");
const STEP_A: ActivityDef<(), ()> = ActivityDef::new("a");
const STEP_B: ActivityDef<(), ()> = ActivityDef::new("b");

const APPROVE: SignalDef<String> = SignalDef::new("approve");

/// What the activities and workflows observed, per engine.
#[derive(Default)]
struct Seen {
    reserved: AtomicU32,
    released: AtomicU32,
    /// `hold` saw `cancelled()` resolve.
    hold_told: AtomicBool,
    /// `hold_blocking` saw `is_cancelled()` turn true.
    blocking_told: AtomicBool,
    /// Steps of the ticker workflow's code.
    ticks: AtomicU32,
    /// Attempts of `hold` started.
    holds: AtomicU32,
}

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(30))
}

async fn reservation(ctx: WorkflowContext, plan: Plan) -> Result<String, WorkflowError> {
    ctx.execute_activity(RESERVE, (), options()).await?;
    let saw = match plan.wait_on {
        WaitOn::Activity => match ctx.execute_activity(HOLD, (), options()).await {
            Err(ActivityFailure::Cancelled { activity_type }) => {
                format!("ActivityFailure::Cancelled({activity_type})")
            }
            other => return Err(WorkflowError::new(format!("unexpected: {other:?}"))),
        },
        WaitOn::Timer => match ctx.sleep(Duration::from_secs(3600)).await {
            Err(steadfast::Cancelled) => "TimerFuture::Cancelled".to_string(),
            Ok(()) => return Err(WorkflowError::new("the timer fired")),
        },
        WaitOn::Signal => match ctx.recv_signal(APPROVE).await {
            Err(SignalError::Cancelled(_)) => "SignalError::Cancelled".to_string(),
            other => return Err(WorkflowError::new(format!("unexpected: {other:?}"))),
        },
    };
    if !ctx.is_cancel_requested() {
        return Err(WorkflowError::new(
            "is_cancel_requested is false after a cancellation",
        ));
    }
    // Compensation: activities still run after the cancellation.
    ctx.execute_activity(RELEASE, (), options()).await?;
    if plan.complete_anyway {
        Ok(format!("compensated after {saw}"))
    } else {
        Err(WorkflowError::new(format!("cancelled: saw {saw}")).with_type("Cancelled"))
    }
}

async fn after_cancel(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    if ctx.sleep(Duration::from_secs(3600)).await.is_ok() {
        return Err(WorkflowError::new("the timer fired"));
    }
    ctx.sleep(Duration::from_millis(50)).await?;
    let approver = ctx.recv_signal(APPROVE).await?;
    Ok(format!("carried on, approved by {approver}"))
}

async fn holder(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    let hold = ctx.execute_activity(HOLD, (), options());
    let blocking = ctx.execute_activity(HOLD_BLOCKING, (), options());
    let (hold, blocking) = futures::join!(hold, blocking);
    hold?;
    blocking?;
    Ok(())
}

async fn changed_v1(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.execute_activity(STEP_A, (), options()).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

async fn changed_v2(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.execute_activity(STEP_B, (), options()).await?;
    ctx.execute_activity(STEP_A, (), options()).await?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

fn builder(seen: &Arc<Seen>) -> EngineBuilder {
    let (s1, s2, s3, s4, s5) = (
        seen.clone(),
        seen.clone(),
        seen.clone(),
        seen.clone(),
        seen.clone(),
    );
    Engine::builder()
        .workflow(RESERVATION, reservation)
        .workflow(HOLDER, holder)
        .workflow(AFTER_CANCEL, after_cancel)
        .workflow(TICKER, move |ctx: WorkflowContext, _: ()| {
            let seen = s1.clone();
            async move {
                loop {
                    seen.ticks.fetch_add(1, Ordering::SeqCst);
                    ctx.sleep(Duration::from_millis(20)).await?;
                }
            }
        })
        .activity(RESERVE, move |_ctx: ActivityContext, _: ()| {
            let seen = s2.clone();
            async move {
                seen.reserved.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ActivityError>(())
            }
        })
        .activity(RELEASE, move |_ctx: ActivityContext, _: ()| {
            let seen = s3.clone();
            async move {
                seen.released.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ActivityError>(())
            }
        })
        .activity(HOLD, move |ctx: ActivityContext, _: ()| {
            let seen = s4.clone();
            async move {
                seen.holds.fetch_add(1, Ordering::SeqCst);
                ctx.cancelled().await;
                assert!(ctx.is_cancelled());
                seen.hold_told.store(true, Ordering::SeqCst);
                Err::<(), _>(ActivityError::retryable("stopped: cancelled"))
            }
        })
        .blocking_activity(HOLD_BLOCKING, move |ctx: ActivityContext, _: ()| {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !ctx.is_cancelled() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if ctx.is_cancelled() {
                s5.blocking_told.store(true, Ordering::SeqCst);
            }
            Err::<(), _>(ActivityError::retryable("stopped"))
        })
}

async fn open(path: &Path, seen: &Arc<Seen>) -> Engine {
    builder(seen).open_db(path).await.expect("open the engine")
}

fn has(history: &[Event], pred: impl Fn(&EventKind) -> bool) -> bool {
    history.iter().any(|e| pred(&e.kind))
}

/// Waits until the workflow's history holds an event matching `pred`.
async fn wait_for_event(engine: &Engine, workflow_id: &str, pred: impl Fn(&EventKind) -> bool) {
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(workflow_id).await.ok()?;
        has(&history, &pred).then_some(())
    })
    .await;
}

fn scheduled(name: &'static str) -> impl Fn(&EventKind) -> bool {
    move |k| matches!(k, EventKind::ActivityScheduled { activity_type, .. } if activity_type == name)
}

/// Starts a reservation, waits until it waits on `wait_on`, cancels it and
/// returns its result.
async fn cancel_reservation(
    engine: &Engine,
    seen: &Seen,
    workflow_id: &str,
    plan: Plan,
) -> Result<String, ResultError> {
    let run = engine
        .start_workflow(RESERVATION, workflow_id, plan, WorkflowOptions::new())
        .await
        .unwrap();
    match plan.wait_on {
        WaitOn::Activity => {
            wait_for_event(engine, workflow_id, scheduled("hold")).await;
            // The attempt is running (not just scheduled) when the cancel comes.
            support::eventually(Duration::from_secs(10), || async {
                (seen.holds.load(Ordering::SeqCst) > 0).then_some(())
            })
            .await;
        }
        WaitOn::Timer => {
            wait_for_event(engine, workflow_id, |k| {
                matches!(k, EventKind::TimerStarted { .. })
            })
            .await
        }
        WaitOn::Signal => {
            // Nothing is recorded for a signal wait: the reservation's result
            // is the last event before it.
            wait_for_event(engine, workflow_id, |k| {
                matches!(k, EventKind::ActivityCompleted { .. })
            })
            .await
        }
    }
    engine.cancel(workflow_id).await.unwrap();
    run.result().await
}

async fn assert_cancelled_with(engine: &Engine, seen: &Seen, workflow_id: &str, saw: &str) {
    let run = engine
        .get_workflow_handle(RESERVATION, workflow_id)
        .await
        .unwrap();
    match run.result().await {
        Err(ResultError::Cancelled { failure, .. }) => {
            assert_eq!(failure.message, format!("cancelled: saw {saw}"));
            assert_eq!(failure.error_type, "Cancelled");
        }
        other => panic!("expected a cancelled result, got {other:?}"),
    }
    assert_eq!(seen.reserved.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.released.load(Ordering::SeqCst),
        1,
        "compensation ran once"
    );
    let description = engine.describe(workflow_id).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Cancelled);
    assert!(description.close_time.is_some());
    let history = engine.history(workflow_id).await.unwrap();
    assert!(has(&history, |k| matches!(
        k,
        EventKind::WorkflowCancelRequested { .. }
    )));
    assert!(has(&history, scheduled("release")));
    assert!(
        matches!(
            history.last().map(|e| &e.kind),
            Some(EventKind::WorkflowCancelled { .. })
        ),
        "{history:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_an_activity_tells_the_attempt_and_runs_compensation() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Activity,
        complete_anyway: false,
    };
    let result = cancel_reservation(&engine, &seen, "cancel-activity", plan).await;
    assert!(
        matches!(result, Err(ResultError::Cancelled { .. })),
        "{result:?}"
    );
    assert_cancelled_with(
        &engine,
        &seen,
        "cancel-activity",
        "ActivityFailure::Cancelled(hold)",
    )
    .await;
    // The running attempt was told.
    support::eventually(Duration::from_secs(5), || async {
        seen.hold_told.load(Ordering::SeqCst).then_some(())
    })
    .await;
    assert_eq!(
        seen.holds.load(Ordering::SeqCst),
        1,
        "no retry after cancel"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_during_a_timer_runs_compensation() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Timer,
        complete_anyway: false,
    };
    let result = cancel_reservation(&engine, &seen, "cancel-timer", plan).await;
    assert!(
        matches!(result, Err(ResultError::Cancelled { .. })),
        "{result:?}"
    );
    assert_cancelled_with(&engine, &seen, "cancel-timer", "TimerFuture::Cancelled").await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_during_a_signal_wait_runs_compensation() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Signal,
        complete_anyway: false,
    };
    let result = cancel_reservation(&engine, &seen, "cancel-signal", plan).await;
    assert!(
        matches!(result, Err(ResultError::Cancelled { .. })),
        "{result:?}"
    );
    assert_cancelled_with(&engine, &seen, "cancel-signal", "SignalError::Cancelled").await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_workflow_may_complete_normally() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Timer,
        complete_anyway: true,
    };
    let result = cancel_reservation(&engine, &seen, "cancel-complete", plan).await;
    assert_eq!(result.unwrap(), "compensated after TimerFuture::Cancelled");
    assert_eq!(seen.released.load(Ordering::SeqCst), 1);
    let description = engine.describe("cancel-complete").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_acknowledged_cancellation_survives_a_restart() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Timer,
        complete_anyway: false,
    };
    engine
        .start_workflow(RESERVATION, "cancel-restart", plan, WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_event(&engine, "cancel-restart", |k| {
        matches!(k, EventKind::TimerStarted { .. })
    })
    .await;
    engine.cancel("cancel-restart").await.unwrap();
    // Closed right after the acknowledgement, maybe before the compensation ran.
    engine.shutdown().await.unwrap();

    let engine = open(&db.path, &seen).await;
    let run = engine
        .get_workflow_handle(RESERVATION, "cancel-restart")
        .await
        .unwrap();
    match run.result().await {
        Err(ResultError::Cancelled { failure, .. }) => {
            assert_eq!(failure.message, "cancelled: saw TimerFuture::Cancelled")
        }
        other => panic!("expected a cancelled result, got {other:?}"),
    }
    assert!(seen.released.load(Ordering::SeqCst) >= 1);
    let history = engine.history("cancel-restart").await.unwrap();
    let requests = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowCancelRequested { .. }))
        .count();
    assert_eq!(requests, 1);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_the_first_cancellation_request_is_delivered() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let run = engine
        .start_workflow(AFTER_CANCEL, "after-cancel", (), WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_event(&engine, "after-cancel", |k| {
        matches!(k, EventKind::TimerStarted { .. })
    })
    .await;
    engine.cancel("after-cancel").await.unwrap();
    // A second request is acknowledged and changes nothing.
    engine.cancel("after-cancel").await.unwrap();
    engine
        .signal("after-cancel", APPROVE, "carol".to_string())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "carried on, approved by carol");
    let history = engine.history("after-cancel").await.unwrap();
    let requests = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowCancelRequested { .. }))
        .count();
    assert_eq!(requests, 1, "{history:#?}");
    let fired: Vec<u32> = history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TimerFired { seq } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        fired,
        vec![2],
        "the timer begun after the cancellation fired"
    );
    assert_eq!(
        engine.describe("after-cancel").await.unwrap().status,
        WorkflowStatus::Completed
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_of_a_closed_or_unknown_workflow_is_refused() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let plan = Plan {
        wait_on: WaitOn::Timer,
        complete_anyway: false,
    };
    let result = cancel_reservation(&engine, &seen, "cancel-twice", plan).await;
    assert!(
        matches!(result, Err(ResultError::Cancelled { .. })),
        "{result:?}"
    );
    let err = engine.cancel("cancel-twice").await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::WorkflowClosed {
                status: WorkflowStatus::Cancelled,
                ..
            }
        ),
        "{err:?}"
    );
    let err = engine
        .terminate("cancel-twice", "too late")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::WorkflowClosed { .. }), "{err:?}");
    let err = engine.cancel("nobody").await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound { .. }), "{err:?}");
    let err = engine.terminate("nobody", "no one").await.unwrap_err();
    assert!(matches!(err, ClientError::NotFound { .. }), "{err:?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_stops_the_workflow_code_at_once() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let run = engine
        .start_workflow(TICKER, "ticker", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        (seen.ticks.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    engine
        .terminate("ticker", "operator said stop")
        .await
        .unwrap();
    // Acknowledged means closed: no step of the code runs after it.
    let ticks = seen.ticks.load(Ordering::SeqCst);
    match run.result().await {
        Err(ResultError::Terminated { reason, .. }) => assert_eq!(reason, "operator said stop"),
        other => panic!("expected a terminated result, got {other:?}"),
    }
    let description = engine.describe("ticker").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Terminated);
    assert!(description.close_time.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.ticks.load(Ordering::SeqCst), ticks);
    let history = engine.history("ticker").await.unwrap();
    assert!(
        matches!(
            history.last().map(|e| &e.kind),
            Some(EventKind::WorkflowTerminated { reason }) if reason == "operator said stop"
        ),
        "{history:#?}"
    );
    assert!(!has(&history, |k| matches!(
        k,
        EventKind::WorkflowCancelRequested { .. }
    )));
    // Reopening does not revive it.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path, &seen).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.ticks.load(Ordering::SeqCst), ticks);
    assert_eq!(
        engine.describe("ticker").await.unwrap().status,
        WorkflowStatus::Terminated
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_tells_running_attempts_to_stop() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let run = engine
        .start_workflow(HOLDER, "holder", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        (seen.holds.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    engine.terminate("holder", "stop holding").await.unwrap();
    assert!(matches!(
        run.result().await,
        Err(ResultError::Terminated { .. })
    ));
    support::eventually(Duration::from_secs(5), || async {
        (seen.hold_told.load(Ordering::SeqCst) && seen.blocking_told.load(Ordering::SeqCst))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_tells_a_blocking_attempt_through_is_cancelled() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let run = engine
        .start_workflow(HOLDER, "holder-cancel", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        (seen.holds.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    engine.cancel("holder-cancel").await.unwrap();
    // `hold?` returns the cancellation error: the run ends as Cancelled.
    assert!(matches!(
        run.result().await,
        Err(ResultError::Cancelled { .. })
    ));
    support::eventually(Duration::from_secs(5), || async {
        (seen.hold_told.load(Ordering::SeqCst) && seen.blocking_told.load(Ordering::SeqCst))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn terminate_works_on_a_run_parked_by_nondeterminism() {
    let db = temp_db();
    let step = |_ctx: ActivityContext, _: ()| async { Ok::<_, ActivityError>(()) };
    let engine = Engine::builder()
        .workflow(CHANGED, changed_v1)
        .activity(STEP_A, step)
        .activity(STEP_B, step)
        .open_db(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(CHANGED, "changed", (), WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_event(&engine, "changed", |k| {
        matches!(k, EventKind::TimerStarted { .. })
    })
    .await;
    engine.shutdown().await.unwrap();

    // The new code calls `b` first: its history does not match.
    let engine = Engine::builder()
        .workflow(CHANGED, changed_v2)
        .activity(STEP_A, step)
        .activity(STEP_B, step)
        .open_db(&db.path)
        .await
        .unwrap();
    let description = engine.describe("changed").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert!(
        matches!(description.parked, Some(ParkReason::Nondeterminism(_))),
        "{description:#?}"
    );
    let before = engine.history("changed").await.unwrap();

    engine
        .terminate("changed", "stuck on old code")
        .await
        .unwrap();
    let description = engine.describe("changed").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Terminated);
    let run = engine
        .get_workflow_handle(CHANGED, "changed")
        .await
        .unwrap();
    match run.result().await {
        Err(ResultError::Terminated { reason, .. }) => assert_eq!(reason, "stuck on old code"),
        other => panic!("expected a terminated result, got {other:?}"),
    }
    // Nothing of the new code was recorded; only the termination was added.
    let after = engine.history("changed").await.unwrap();
    assert_eq!(after.len(), before.len() + 1, "{after:#?}");
    assert_eq!(after[..before.len()], before[..]);
    engine.shutdown().await.unwrap();
}
