//! Promise: heartbeats report progress durably. `ctx.heartbeat(&details)`
//! resets the heartbeat timeout; an attempt that stays silent longer fails
//! with a retryable `HeartbeatTimeout` and is told to stop. The last details
//! reach the next attempt through `ctx.heartbeat_details()`, also when the
//! engine was shut down mid-attempt and reopened. Heartbeats are throttled:
//! many calls within the throttle interval record few events, and the last
//! details are always recorded. `describe` shows the last heartbeat of a
//! pending activity.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, Event,
    EventKind, RetryPolicy, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::temp_db;
use tokio::sync::Notify;

/// An activity's result: the attempt that returned, and the heartbeat
/// details it was given.
type Outcome = (u32, Option<u32>);

/// Which activity [`RUN_ONE`] runs, with which timeouts.
#[derive(Serialize, Deserialize)]
struct Call {
    activity: String,
    start_to_close_ms: u64,
    heartbeat_timeout_ms: Option<u64>,
}

fn call(activity: &str, heartbeat_timeout_ms: Option<u64>) -> Call {
    Call {
        activity: activity.to_string(),
        start_to_close_ms: 10_000,
        heartbeat_timeout_ms,
    }
}

/// Runs one activity with the given options and returns its result.
const RUN_ONE: WorkflowDef<Call, Outcome> = WorkflowDef::new("RunOne");

/// Attempt 1 heartbeats 1, 2, 3 and goes silent until told to stop; a
/// later attempt returns `(attempt, details it was given)`.
const SILENT_AFTER_THREE: ActivityDef<(), Outcome> = ActivityDef::new("silent_after_three");
/// Attempt 1 heartbeats 7 and never returns; a later attempt returns
/// `(attempt, details it was given)`.
const CHECKPOINT: ActivityDef<(), Outcome> = ActivityDef::new("checkpoint");
/// Heartbeats 0..100 in quick succession, then returns.
const CHATTY: ActivityDef<(), Outcome> = ActivityDef::new("chatty");
/// Heartbeats `halfway`, then waits for the test to let it finish.
const HALFWAY: ActivityDef<(), Outcome> = ActivityDef::new("halfway");

async fn run_one(ctx: WorkflowContext, call: Call) -> Result<Outcome, WorkflowError> {
    let mut options =
        ActivityOptions::start_to_close(Duration::from_millis(call.start_to_close_ms))
            .with_retry_policy(
                RetryPolicy::default()
                    .with_initial_interval(Duration::from_millis(10))
                    .with_maximum_attempts(3),
            );
    if let Some(ms) = call.heartbeat_timeout_ms {
        options = options.with_heartbeat_timeout(Duration::from_millis(ms));
    }
    let def = match call.activity.as_str() {
        "silent_after_three" => SILENT_AFTER_THREE,
        "checkpoint" => CHECKPOINT,
        "chatty" => CHATTY,
        "halfway" => HALFWAY,
        other => return Err(WorkflowError::new(format!("unknown activity {other}"))),
    };
    Ok(ctx.execute_activity(def, (), options).await?)
}

/// What the activities observed, per test.
#[derive(Default)]
struct Seen {
    /// The silent attempt saw `is_cancelled()` turn true.
    silent_told: AtomicBool,
    /// Lets `halfway` finish.
    release: Notify,
}

fn silent_after_three(
    seen: &Arc<Seen>,
) -> impl Fn(ActivityContext, ()) -> Result<Outcome, ActivityError> + Send + Sync + 'static {
    let seen = seen.clone();
    move |ctx: ActivityContext, _: ()| {
        let details = ctx.heartbeat_details::<u32>()?;
        if ctx.attempt() > 1 {
            return Ok((ctx.attempt(), details));
        }
        for i in 1..=3u32 {
            ctx.heartbeat(&i)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ctx.is_cancelled() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        seen.silent_told.store(ctx.is_cancelled(), Ordering::SeqCst);
        Err(ActivityError::retryable("stopped"))
    }
}

async fn checkpoint(ctx: ActivityContext, _: ()) -> Result<Outcome, ActivityError> {
    let details = ctx.heartbeat_details::<u32>()?;
    if details.is_some() {
        return Ok((ctx.attempt(), details));
    }
    ctx.heartbeat(&7u32)?;
    std::future::pending().await
}

async fn chatty(ctx: ActivityContext, _: ()) -> Result<Outcome, ActivityError> {
    for i in 0..100u32 {
        ctx.heartbeat(&i)?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((ctx.attempt(), None))
}

fn builder(seen: &Arc<Seen>) -> EngineBuilder {
    let halfway_seen = seen.clone();
    Engine::builder()
        .workflow(RUN_ONE, run_one)
        .blocking_activity(SILENT_AFTER_THREE, silent_after_three(seen))
        .activity(CHECKPOINT, checkpoint)
        .activity(CHATTY, chatty)
        .activity(HALFWAY, move |ctx: ActivityContext, _: ()| {
            let seen = halfway_seen.clone();
            async move {
                ctx.heartbeat(&"halfway")?;
                seen.release.notified().await;
                Ok((ctx.attempt(), None))
            }
        })
}

async fn open(path: &Path, seen: &Arc<Seen>) -> Engine {
    builder(seen).open(path).await.expect("open the engine")
}

/// `(attempt, details)` of every `ActivityHeartbeat` in the history.
fn heartbeats<T: serde::de::DeserializeOwned>(history: &[Event]) -> Vec<(u32, T)> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityHeartbeat {
                attempt, details, ..
            } => Some((*attempt, details.decode().expect("details decode"))),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_timeout_fails_the_attempt_and_the_next_gets_the_details() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let input = call("silent_after_three", Some(300));
    let run = engine
        .start_workflow(RUN_ONE, "silent", input, WorkflowOptions::new())
        .await
        .unwrap();
    // Attempt 2 got the last details attempt 1 gave, 3, though the throttle
    // held them back until the attempt ended.
    assert_eq!(run.result().await.unwrap(), (2, Some(3)));

    let history = engine.history("silent").await.unwrap();
    let failure = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityFailed {
                attempt: 1,
                failure,
                next_attempt_at,
                ..
            } => Some((failure.clone(), *next_attempt_at)),
            _ => None,
        })
        .expect("attempt 1 failed");
    assert_eq!(failure.0.error_type, "HeartbeatTimeout");
    assert!(!failure.0.non_retryable);
    assert!(failure.1.is_some(), "the timeout was retried");
    let beats: Vec<(u32, u32)> = heartbeats(&history);
    assert_eq!(beats.first(), Some(&(1, 1)), "{beats:?}");
    assert_eq!(beats.last(), Some(&(1, 3)), "{beats:?}");
    // The silent attempt was told to stop.
    support::eventually(Duration::from_secs(10), || async {
        seen.silent_told.load(Ordering::SeqCst).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeat_details_reach_the_attempt_run_after_a_restart() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let input = call("checkpoint", None);
    engine
        .start_workflow(RUN_ONE, "checkpoint", input, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("checkpoint").await.ok()?;
        (!heartbeats::<u32>(&history).is_empty()).then_some(())
    })
    .await;
    // Shut down in the middle of attempt 1.
    engine.shutdown().await.unwrap();

    let engine = open(&db.path, &seen).await;
    let run = engine
        .get_workflow_handle(RUN_ONE, "checkpoint")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), (2, Some(7)));
    let history = engine.history("checkpoint").await.unwrap();
    assert_eq!(heartbeats::<u32>(&history), vec![(1, 7)]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeats_are_throttled_and_the_last_is_recorded() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    // Heartbeat timeout 3 s: throttle 2.4 s, far longer than the ~100 ms
    // the 100 heartbeats take.
    let input = call("chatty", Some(3_000));
    let run = engine
        .start_workflow(RUN_ONE, "chatty", input, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), (1, None));
    let history = engine.history("chatty").await.unwrap();
    let beats: Vec<(u32, u32)> = heartbeats(&history);
    assert!(
        !beats.is_empty() && beats.len() <= 3,
        "100 heartbeats within one throttle interval recorded {} events: {beats:?}",
        beats.len()
    );
    assert_eq!(
        beats.first(),
        Some(&(1, 0)),
        "the first is recorded at once"
    );
    assert_eq!(
        beats.last(),
        Some(&(1, 99)),
        "the last is recorded at the end"
    );

    // Without a heartbeat timeout the throttle is 30 s.
    let input = call("chatty", None);
    let run = engine
        .start_workflow(RUN_ONE, "chatty-default", input, WorkflowOptions::new())
        .await
        .unwrap();
    run.result().await.unwrap();
    let history = engine.history("chatty-default").await.unwrap();
    let beats: Vec<(u32, u32)> = heartbeats(&history);
    assert!(beats.len() <= 3, "{beats:?}");
    assert_eq!(beats.last(), Some(&(1, 99)));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_the_last_heartbeat_of_a_pending_activity() {
    let db = temp_db();
    let seen = Arc::new(Seen::default());
    let engine = open(&db.path, &seen).await;
    let input = call("halfway", None);
    let run = engine
        .start_workflow(RUN_ONE, "halfway", input, WorkflowOptions::new())
        .await
        .unwrap();
    let pending = support::eventually(Duration::from_secs(10), || async {
        let description = engine.describe("halfway").await.ok()?;
        let pending = description.pending_activities.into_iter().next()?;
        pending.last_heartbeat.is_some().then_some(pending)
    })
    .await;
    assert_eq!(pending.activity_type, "halfway");
    assert_eq!(pending.attempt, 1);
    let details: String = pending.last_heartbeat.unwrap().decode().unwrap();
    assert_eq!(details, "halfway");

    seen.release.notify_one();
    assert_eq!(run.result().await.unwrap(), (1, None));
    let description = engine.describe("halfway").await.unwrap();
    assert!(description.pending_activities.is_empty());
    engine.shutdown().await.unwrap();
}
