//! Promise: durable timers. `ctx.sleep` and `ctx.sleep_until` never fire
//! before their due time; a timer is kept in the file, so it survives the
//! engine being shut down and reopened and fires at its original due time
//! (not restarted from the reopen); a timer that came due while the engine
//! was closed fires at once when it is opened again.

mod support;

use support::OpenDb;

use std::time::{Duration, SystemTime};

use steadfast::{
    Engine, Event, EventKind, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};

/// Sleeps for the given number of milliseconds; returns the workflow's time
/// before and after.
const SLEEP: WorkflowDef<u64, (SystemTime, SystemTime)> = WorkflowDef::new("Sleep");
/// Sleeps until the given time; returns the workflow's time after.
const SLEEP_UNTIL: WorkflowDef<SystemTime, SystemTime> = WorkflowDef::new("SleepUntil");
/// Two timers awaited together; returns the workflow's time after both.
const TWO_TIMERS: WorkflowDef<(), SystemTime> = WorkflowDef::new("TwoTimers");

async fn sleep_workflow(
    ctx: WorkflowContext,
    millis: u64,
) -> Result<(SystemTime, SystemTime), WorkflowError> {
    let before = ctx.now();
    ctx.sleep(Duration::from_millis(millis)).await?;
    Ok((before, ctx.now()))
}

async fn sleep_until_workflow(
    ctx: WorkflowContext,
    until: SystemTime,
) -> Result<SystemTime, WorkflowError> {
    ctx.sleep_until(until).await?;
    Ok(ctx.now())
}

async fn two_timers_workflow(ctx: WorkflowContext, _: ()) -> Result<SystemTime, WorkflowError> {
    let long = ctx.sleep(Duration::from_millis(400));
    let short = ctx.sleep(Duration::from_millis(150));
    let (long, short) = futures::join!(long, short);
    long?;
    short?;
    Ok(ctx.now())
}

async fn open(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(SLEEP, sleep_workflow)
        .workflow(SLEEP_UNTIL, sleep_until_workflow)
        .workflow(TWO_TIMERS, two_timers_workflow)
        .open_db(path)
        .await
        .expect("open the engine")
}

/// `(fire_at, fired timestamp)` of the timer with `seq`, from a history.
fn timer_times(history: &[Event], seq: u32) -> (SystemTime, SystemTime) {
    let fire_at = history
        .iter()
        .find_map(|e| match e.kind {
            EventKind::TimerStarted { seq: s, fire_at } if s == seq => Some(fire_at),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TimerStarted for seq {seq} in {history:#?}"));
    let fired = history
        .iter()
        .find_map(|e| match e.kind {
            EventKind::TimerFired { seq: s } if s == seq => Some(e.timestamp),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TimerFired for seq {seq} in {history:#?}"));
    (fire_at, fired)
}

fn count(history: &[Event], pred: impl Fn(&EventKind) -> bool) -> usize {
    history.iter().filter(|e| pred(&e.kind)).count()
}

fn timer_seq(history: &[Event]) -> u32 {
    history
        .iter()
        .find_map(|e| match e.kind {
            EventKind::TimerStarted { seq, .. } => Some(seq),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no TimerStarted in {history:#?}"))
}

/// Waits until the workflow's TimerStarted is durable in the file.
async fn wait_for_timer_started(engine: &Engine, workflow_id: &str) {
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(workflow_id).await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
            .then_some(())
    })
    .await;
}

fn started_at(history: &[Event]) -> SystemTime {
    match &history[0].kind {
        EventKind::WorkflowStarted { .. } => history[0].timestamp,
        other => panic!("the history should begin with WorkflowStarted, not {other:?}"),
    }
}

#[tokio::test]
async fn sleep_fires_no_earlier_than_due() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let before_start = SystemTime::now();
    let run = engine
        .start_workflow(SLEEP, "sleep-300ms", 300, WorkflowOptions::new())
        .await
        .unwrap();
    let (workflow_before, workflow_after) = run.result().await.unwrap();
    let after_result = SystemTime::now();

    let history = engine.history("sleep-300ms").await.unwrap();
    let (fire_at, fired) = timer_times(&history, timer_seq(&history));
    // The due time is the workflow's now() plus the duration.
    assert_eq!(workflow_before, started_at(&history));
    assert_eq!(fire_at, workflow_before + Duration::from_millis(300));
    assert!(fire_at >= before_start + Duration::from_millis(300));
    // Never early: neither the recorded firing, nor the workflow's view of
    // time after waking, nor the client getting the result.
    assert!(fired >= fire_at, "fired at {fired:?}, due {fire_at:?}");
    assert!(workflow_after >= fire_at);
    assert_eq!(
        workflow_after, fired,
        "now() after waking is the firing's time"
    );
    assert!(after_result >= fire_at);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn concurrent_timers_each_fire_no_earlier_than_due() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(TWO_TIMERS, "two-timers", (), WorkflowOptions::new())
        .await
        .unwrap();
    let after = run.result().await.unwrap();

    let history = engine.history("two-timers").await.unwrap();
    let start = started_at(&history);
    // seq 1 is the 400 ms timer, seq 2 the 150 ms one (the order of the calls).
    let (long_due, long_fired) = timer_times(&history, 1);
    let (short_due, short_fired) = timer_times(&history, 2);
    assert_eq!(long_due, start + Duration::from_millis(400));
    assert_eq!(short_due, start + Duration::from_millis(150));
    assert!(long_fired >= long_due);
    assert!(short_fired >= short_due);
    assert!(after >= long_due);
    // The shorter timer's firing is recorded first.
    let position = |seq: u32| {
        history
            .iter()
            .position(|e| matches!(e.kind, EventKind::TimerFired { seq: s } if s == seq))
            .unwrap()
    };
    assert!(position(2) < position(1), "history: {history:#?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn sleep_until_fires_no_earlier_than_the_given_time() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let until = SystemTime::now() + Duration::from_millis(300);
    let run = engine
        .start_workflow(SLEEP_UNTIL, "sleep-until", until, WorkflowOptions::new())
        .await
        .unwrap();
    let workflow_after = run.result().await.unwrap();

    let history = engine.history("sleep-until").await.unwrap();
    let (fire_at, fired) = timer_times(&history, timer_seq(&history));
    assert_eq!(fire_at, until, "the due time is the one given");
    assert!(fired >= until);
    assert!(workflow_after >= until);
    assert!(SystemTime::now() >= until);

    // A time already passed fires (at once).
    let past = SystemTime::now() - Duration::from_secs(3600);
    let run = engine
        .start_workflow(
            SLEEP_UNTIL,
            "sleep-until-past",
            past,
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    run.result().await.unwrap();
    let history = engine.history("sleep-until-past").await.unwrap();
    let (fire_at, fired) = timer_times(&history, timer_seq(&history));
    assert_eq!(fire_at, past);
    assert!(fired >= past);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timer_survives_a_reopen_and_keeps_its_due_time() {
    survives_a_reopen("sleep-across-reopen", true).await;
}

#[tokio::test]
async fn a_timer_survives_a_shutdown_right_after_start() {
    // The shutdown may come before the TimerStarted is recorded; the due
    // time is the workflow's start time plus the duration either way.
    survives_a_reopen("sleep-shutdown-at-once", false).await;
}

async fn survives_a_reopen(id: &str, wait_for_timer: bool) {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(SLEEP, id, 1500, WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = run.run_id();
    if wait_for_timer {
        wait_for_timer_started(&engine, id).await;
    }
    let recorded = engine.history(id).await.unwrap();
    engine.shutdown().await.unwrap();

    // Nothing has to be started again: opening the file resumes the run.
    let engine = open(&db.path).await;
    let run = engine.get_workflow_handle(SLEEP, id).await.unwrap();
    assert_eq!(run.run_id(), run_id);
    let (workflow_before, workflow_after) = run.result().await.unwrap();

    let history = engine.history(id).await.unwrap();
    assert_eq!(
        &history[..recorded.len()],
        &recorded[..],
        "what was recorded before the shutdown is kept as it was"
    );
    assert_eq!(
        count(&history, |k| matches!(k, EventKind::TimerStarted { .. })),
        1,
        "the timer is not started again: {history:#?}"
    );
    let (fire_at, fired) = timer_times(&history, timer_seq(&history));
    assert_eq!(
        fire_at,
        started_at(&history) + Duration::from_millis(1500),
        "the original due time is kept"
    );
    assert!(fired >= fire_at, "fired at {fired:?}, due {fire_at:?}");
    assert_eq!(workflow_before, started_at(&history));
    assert!(workflow_after >= fire_at);
    let description = engine.describe(id).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timer_due_while_closed_fires_after_reopen() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(SLEEP, "due-while-closed", 2000, WorkflowOptions::new())
        .await
        .unwrap();
    wait_for_timer_started(&engine, "due-while-closed").await;
    let recorded = engine.history("due-while-closed").await.unwrap();
    let fire_at = match recorded.iter().find_map(|e| match e.kind {
        EventKind::TimerStarted { fire_at, .. } => Some(fire_at),
        _ => None,
    }) {
        Some(at) => at,
        None => panic!("no TimerStarted in {recorded:#?}"),
    };
    engine.shutdown().await.unwrap();

    // Stay closed until well past the due time.
    while SystemTime::now() < fire_at + Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let reopened_at = SystemTime::now();
    let engine = open(&db.path).await;
    let run = engine
        .get_workflow_handle(SLEEP, "due-while-closed")
        .await
        .unwrap();
    run.result().await.unwrap();
    let history = engine.history("due-while-closed").await.unwrap();
    let (due, fired) = timer_times(&history, timer_seq(&history));
    assert_eq!(due, fire_at);
    assert!(fired >= reopened_at, "it fired after the reopen");
    // Not restarted from the reopen: a restarted 2 s timer could not have
    // fired before reopen + 2 s. (A bound on behaviour, not on speed: the
    // margin is the whole timer.)
    assert!(
        fired < reopened_at + Duration::from_millis(2000),
        "the overdue timer waited as if restarted: reopened {reopened_at:?}, fired {fired:?}"
    );
    engine.shutdown().await.unwrap();
}

/// Every engine fires its timers, however its start-up tasks were scheduled
/// (the timer task once could run before the engine finished building and
/// stop for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_opened_engine_fires_its_timers() {
    for round in 0..20 {
        let db = support::temp_db();
        let engine = open(&db.path).await;
        let run = engine
            .start_workflow(SLEEP, format!("open-{round}"), 5, WorkflowOptions::new())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), run.result())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the timer never fired"))
            .unwrap();
        engine.shutdown().await.unwrap();
    }
}
