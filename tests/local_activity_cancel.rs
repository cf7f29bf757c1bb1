//! Promise: `LocalActivityFuture::cancel` honours the local activity's
//! `ActivityCancellationType` as Temporal's SDKs do when the scope of a
//! local activity is cancelled: try-cancel tells the running attempt and
//! resolves `Cancelled` at once (its end not recorded); wait-cancellation-
//! completed tells it and resolves with its recorded end; abandon does not
//! tell it and resolves `Cancelled` at once; one waiting out a recorded
//! backoff never begins its next attempt. Each replays alike. One cancelled
//! while the attempt after a recorded backoff runs (try-cancel,
//! wait-cancellation-requested, abandon) has its end recorded at once, so
//! a reopen leaves the history as it was and the run waits for its next
//! timer, not for the backoff's past time.
//! Each engine runs on a redb file, or on PostgreSQL with
//! `STEADFAST_TEST_STORE=postgres` (as `.ci/run` runs this file too).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityCancellationType, ActivityContext, ActivityDef, ActivityError, ActivityFailure, Engine,
    EngineBuilder, Event, EventKind, LocalActivityOptions, Replayer, RetryPolicy, RetryState,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{OpenDb, assert_history_well_formed, temp_db};

/// How the cancelled local activity was called.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Case {
    TryCancel,
    WaitCompleted,
    Abandon,
    /// Wait-cancellation-completed, cancelled during a recorded backoff.
    InBackoff,
}

/// Runs until told to stop (then returns a value), or for 2 s untold.
const WORK: ActivityDef<Case, String> = ActivityDef::new("cancel.work");

/// Calls `WORK`, cancels it after 300 ms, and reports what the future
/// gave.
const CALL: WorkflowDef<Case, String> = WorkflowDef::new("Cancel.Call");

fn options(case: Case) -> LocalActivityOptions {
    let base = LocalActivityOptions::start_to_close(Duration::from_secs(30));
    match case {
        Case::TryCancel => base.with_cancellation_type(ActivityCancellationType::TryCancel),
        Case::WaitCompleted => {
            base.with_cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        }
        Case::Abandon => base.with_cancellation_type(ActivityCancellationType::Abandon),
        Case::InBackoff => base
            .with_cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
            .with_retry_policy(
                RetryPolicy::default().with_initial_interval(Duration::from_secs(3600)),
            )
            .with_local_retry_threshold(Duration::from_millis(10)),
    }
}

async fn call(ctx: WorkflowContext, case: Case) -> Result<String, WorkflowError> {
    let mut work = ctx.execute_local_activity(WORK, case, options(case));
    let timer = ctx.sleep(Duration::from_millis(300));
    futures::pin_mut!(timer);
    futures::select_biased! {
        early = work => return Ok(format!("ended first: {early:?}")),
        _ = timer => {}
    }
    work.cancel();
    Ok(match work.await {
        Ok(value) => format!("value {value}"),
        Err(ActivityFailure::Cancelled { .. }) => "cancelled".to_string(),
        Err(other) => format!("other {other}"),
    })
}

/// What each attempt of `WORK` saw, in order.
type Seen = Arc<Mutex<Vec<String>>>;

async fn work(seen: Seen, ctx: ActivityContext, case: Case) -> Result<String, ActivityError> {
    let note = |s: String| seen.lock().unwrap().push(s);
    if matches!(case, Case::InBackoff) {
        note(format!("attempt {}", ctx.attempt()));
        return Err(ActivityError::retryable("again later"));
    }
    tokio::select! {
        () = ctx.cancelled() => {
            note(format!("{case:?}: told"));
            Ok("stopped when told".to_string())
        }
        () = tokio::time::sleep(Duration::from_secs(2)) => {
            note(format!("{case:?}: finished untold"));
            Ok("finished".to_string())
        }
    }
}

fn builder(seen: &Seen) -> EngineBuilder {
    let seen = seen.clone();
    Engine::builder()
        .workflow(CALL, call)
        .activity(WORK, move |ctx, case| work(seen.clone(), ctx, case))
}

fn kinds(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap_or("").to_string()
        })
        .collect()
}

async fn run(engine: &Engine, case: Case) -> (String, Vec<Event>) {
    let id = format!("{case:?}");
    let result = engine
        .start_workflow(CALL, &id, case, WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    let history = engine.history(&id).await.unwrap();
    assert_history_well_formed(&history);
    Replayer::new()
        .workflow(CALL, call)
        .replay(&engine.workflow_history(&id).await.unwrap())
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    (result, history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cancellation_type_resolves_and_records_as_temporal_does() {
    let db = temp_db();
    let seen: Seen = Arc::default();
    let engine = builder(&seen).open_db(&db.path).await.unwrap();
    let timer_only = [
        "WorkflowStarted",
        "TimerStarted",
        "TimerFired",
        "WorkflowCompleted",
    ];

    // Try-cancel: told, resolved at once, its end not recorded.
    let (result, history) = run(&engine, Case::TryCancel).await;
    assert_eq!(result, "cancelled");
    assert_eq!(kinds(&history), timer_only);
    support::eventually(Duration::from_secs(10), || async {
        seen.lock()
            .unwrap()
            .contains(&"TryCancel: told".to_string())
            .then_some(())
    })
    .await;

    // Wait-cancellation-completed: told, and its own end (a value here)
    // is recorded and returned.
    let (result, history) = run(&engine, Case::WaitCompleted).await;
    assert_eq!(result, "value stopped when told");
    assert_eq!(
        kinds(&history),
        [
            "WorkflowStarted",
            "TimerStarted",
            "TimerFired",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    assert!(
        seen.lock()
            .unwrap()
            .contains(&"WaitCompleted: told".to_string())
    );

    // Abandon: resolved at once, never told; it runs to its end, which is
    // not recorded.
    let (result, history) = run(&engine, Case::Abandon).await;
    assert_eq!(result, "cancelled");
    assert_eq!(kinds(&history), timer_only);
    support::eventually(Duration::from_secs(10), || async {
        seen.lock()
            .unwrap()
            .contains(&"Abandon: finished untold".to_string())
            .then_some(())
    })
    .await;
    assert!(!seen.lock().unwrap().contains(&"Abandon: told".to_string()));

    // Cancelled while waiting out a recorded backoff of an hour: the next
    // attempt never begins; its end is recorded at once.
    let (result, history) = run(&engine, Case::InBackoff).await;
    assert_eq!(result, "cancelled");
    assert_eq!(
        kinds(&history),
        [
            "WorkflowStarted",
            "TimerStarted",
            "LocalActivityBackoff",
            "TimerFired",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    match &history[4].kind {
        EventKind::LocalActivityRecorded {
            attempt,
            result: Err(failure),
            ..
        } => {
            assert_eq!(*attempt, 2);
            assert_eq!(failure.error_type, "ActivityCancelled");
            assert_eq!(failure.retry_state, RetryState::CancelRequested);
        }
        other => panic!("{other:?}"),
    }
    let attempts: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("attempt"))
        .cloned()
        .collect();
    assert_eq!(attempts, ["attempt 1"]);
    engine.shutdown().await.unwrap();
}

/// The cancellation type `CALL_RETRIED` calls `RETRIED` with.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Retried {
    TryCancel,
    WaitRequested,
    Abandon,
}

impl Retried {
    fn cancellation(self) -> ActivityCancellationType {
        match self {
            Retried::TryCancel => ActivityCancellationType::TryCancel,
            Retried::WaitRequested => ActivityCancellationType::WaitCancellationRequested,
            Retried::Abandon => ActivityCancellationType::Abandon,
        }
    }
}

/// Fails its first attempt; a later one runs until told (or 30 s).
const RETRIED: ActivityDef<(), String> = ActivityDef::new("cancel.retried");

/// Calls `RETRIED` with a recorded backoff of 20 ms, cancels it 300 ms
/// later (attempt 2 running) as told, then sleeps a day.
const CALL_RETRIED: WorkflowDef<Retried, String> = WorkflowDef::new("Cancel.CallRetried");

/// Sent after the reopen only to bring the run into memory (never read).
const POKE: SignalDef<()> = SignalDef::new("poke");

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn call_retried(ctx: WorkflowContext, case: Retried) -> Result<String, WorkflowError> {
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(60))
        .with_cancellation_type(case.cancellation())
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(20)))
        .with_local_retry_threshold(Duration::from_millis(1));
    let mut work = ctx.execute_local_activity(RETRIED, (), options);
    let timer = ctx.sleep(Duration::from_millis(300));
    futures::pin_mut!(timer);
    futures::select_biased! {
        early = work => return Ok(format!("ended first: {early:?}")),
        _ = timer => {}
    }
    work.cancel();
    let outcome = match work.await {
        Err(ActivityFailure::Cancelled { .. }) => "cancelled".to_string(),
        other => format!("other {other:?}"),
    };
    ctx.sleep(DAY).await?;
    Ok(outcome)
}

fn retried_builder(seen: &Seen) -> EngineBuilder {
    let seen = seen.clone();
    Engine::builder()
        .workflow(CALL_RETRIED, call_retried)
        .activity(RETRIED, move |ctx: ActivityContext, ()| {
            let seen = seen.clone();
            async move {
                let attempt = ctx.attempt();
                seen.lock().unwrap().push(format!("attempt {attempt}"));
                if attempt == 1 {
                    return Err(ActivityError::retryable("first attempt"));
                }
                tokio::select! {
                    () = ctx.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                Ok("finished".to_string())
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_attempt_after_a_recorded_backoff_runs_is_recorded_at_once() {
    let db = temp_db();
    let seen: Seen = Arc::default();
    let cases = [Retried::TryCancel, Retried::WaitRequested, Retried::Abandon];
    let engine = retried_builder(&seen).open_db(&db.path).await.unwrap();
    let mut histories = Vec::new();
    for case in cases {
        let id = format!("{case:?}");
        engine
            .start_workflow(CALL_RETRIED, &id, case, WorkflowOptions::new())
            .await
            .unwrap();
        // Waits for the day's timer (the second one started; the cancel's
        // end is recorded in the same step).
        let history = support::eventually(Duration::from_secs(20), || async {
            let history = engine.history(&id).await.unwrap();
            let timers = kinds(&history)
                .iter()
                .filter(|k| *k == "TimerStarted")
                .count();
            (timers == 2).then_some(history)
        })
        .await;
        histories.push((id, history));
    }
    assert!(seen.lock().unwrap().contains(&"attempt 2".to_string()));
    engine.shutdown().await.unwrap();

    // Reopened: each run waits for its day's timer; brought into memory by
    // a signal, it replays and records nothing but that signal.
    let engine = retried_builder(&seen).open_db(&db.path).await.unwrap();
    for (id, before) in &histories {
        let description = engine.describe(id).await.unwrap();
        assert_eq!(description.pending_timers.len(), 1, "{id}");
        let fire_at = description.pending_timers[0].fire_at;
        assert!(
            fire_at >= before[4].timestamp + DAY - Duration::from_secs(1),
            "{id}: {fire_at:?}"
        );
        engine.signal(id, POKE, ()).await.unwrap();
        let after = support::eventually(Duration::from_secs(20), || async {
            let history = engine.history(id).await.unwrap();
            (history.len() > before.len()).then_some(history)
        })
        .await;
        // A false end would have been recorded by the replay before the
        // signal's step; give it the time of that step too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after_settled = engine.history(id).await.unwrap();
        assert_eq!(after.len(), after_settled.len(), "{id}");
        assert_eq!(&after[..before.len()], &before[..], "{id}");
        assert_eq!(kinds(&after[before.len()..]), ["WorkflowSignaled"], "{id}");
        Replayer::new()
            .workflow(CALL_RETRIED, call_retried)
            .replay(&engine.workflow_history(id).await.unwrap())
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        // The cancel's end was recorded when the code cancelled.
        assert_eq!(
            kinds(before),
            [
                "WorkflowStarted",
                "TimerStarted",
                "LocalActivityBackoff",
                "TimerFired",
                "TimerStarted",
                "LocalActivityRecorded"
            ],
            "{id}"
        );
        match &before[5].kind {
            EventKind::LocalActivityRecorded {
                attempt,
                result: Err(failure),
                ..
            } => {
                assert_eq!(*attempt, 2, "{id}");
                assert_eq!(failure.error_type, "ActivityCancelled", "{id}");
                assert_eq!(failure.retry_state, RetryState::CancelRequested, "{id}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    engine.shutdown().await.unwrap();
}
