//! Promise: a local activity's backoff longer than its
//! `local_retry_threshold` (Temporal's, default 1 minute) is not slept in
//! the worker: it is recorded (`LocalActivityBackoff`, store format 15) and
//! waited for as a durable timer, so the next attempt (`attempt + 1`, not
//! the first again) begins at its time, also after a kill -9 during the
//! backoff; a shorter one stays a sleep with nothing recorded. Histories holding the
//! new event replay and round-trip through JSON.
//! Each engine runs on a redb file, or on PostgreSQL with
//! `STEADFAST_TEST_STORE=postgres` (as `.ci/run` runs this file too).

mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, EngineBuilder, Event, EventKind,
    LocalActivityOptions, Replayer, RetryPolicy, RetryState, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};
use support::{
    OpenDb, append_synced, assert_history_well_formed, read_log, spawn_crash_child, temp_db,
};

const DB_ENV: &str = "STEADFAST_LOCAL_BACKOFF_DB";
const LOG_ENV: &str = "STEADFAST_LOCAL_BACKOFF_LOG";

/// Fails its first attempt; each attempt appends `attempt N at MS` (the
/// attempt's start, in milliseconds since the epoch) to the log, fsynced.
const FLAKY: ActivityDef<(), String> = ActivityDef::new("backoff.flaky");

/// (initial retry interval, threshold) in milliseconds.
const CALL: WorkflowDef<(u64, u64), String> = WorkflowDef::new("Backoff.Call");

fn options((interval, threshold): (u64, u64)) -> LocalActivityOptions {
    let policy = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(interval))
        .with_maximum_attempts(5);
    LocalActivityOptions::start_to_close(Duration::from_secs(30))
        .with_retry_policy(policy)
        .with_local_retry_threshold(Duration::from_millis(threshold))
}

async fn call(ctx: WorkflowContext, args: (u64, u64)) -> Result<String, WorkflowError> {
    Ok(ctx.execute_local_activity(FLAKY, (), options(args)).await?)
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn builder(log: PathBuf) -> EngineBuilder {
    Engine::builder()
        .workflow(CALL, call)
        .activity(FLAKY, move |ctx: ActivityContext, ()| {
            let log = log.clone();
            async move {
                let line = format!(
                    "attempt {} at {}",
                    ctx.attempt(),
                    millis(ctx.info().started_time)
                );
                append_synced(&log, &line).map_err(|e| ActivityError::retryable(e.to_string()))?;
                if ctx.attempt() == 1 {
                    return Err(ActivityError::retryable("first attempt").with_type("Flaky"));
                }
                Ok(format!("done on attempt {}", ctx.attempt()))
            }
        })
}

fn replayer() -> Replayer {
    Replayer::new().workflow(CALL, call)
}

/// The names of the events' kinds.
fn kinds(history: &[Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap_or("").to_string()
        })
        .collect()
}

/// The attempts the log holds, with their start times.
fn attempts(log: &std::path::Path) -> Vec<(u32, u64)> {
    read_log(log)
        .iter()
        .map(|line| {
            let mut words = line.split(' ');
            let attempt = words.nth(1).unwrap().parse().unwrap();
            let at = words.nth(1).unwrap().parse().unwrap();
            (attempt, at)
        })
        .collect()
}

/// Checks the history of one run that backed off once: the backoff event
/// (attempt 1, its failure, the time of attempt 2) and the end (attempt
/// 2); returns the time attempt 2 was to begin.
fn check_backoff_history(history: &[Event]) -> SystemTime {
    assert_history_well_formed(history);
    assert_eq!(
        kinds(history),
        [
            "WorkflowStarted",
            "LocalActivityBackoff",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    let (next_at, scheduled) = match &history[1].kind {
        EventKind::LocalActivityBackoff {
            seq,
            activity_type,
            attempt,
            failure,
            next_attempt_at,
            original_scheduled_time,
        } => {
            assert_eq!(
                (*seq, activity_type.as_str(), *attempt),
                (1, "backoff.flaky", 1)
            );
            assert_eq!(failure.error_type, "Flaky");
            assert_eq!(failure.retry_state, RetryState::InProgress);
            (*next_attempt_at, *original_scheduled_time)
        }
        other => panic!("{other:?}"),
    };
    assert!(scheduled <= history[1].timestamp);
    match &history[2].kind {
        EventKind::LocalActivityRecorded {
            attempt, result, ..
        } => {
            assert_eq!(*attempt, 2);
            assert_eq!(
                result.as_ref().ok().map(|p| p.decode::<String>().unwrap()),
                Some("done on attempt 2".to_string())
            );
        }
        other => panic!("{other:?}"),
    }
    next_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backoff_over_the_threshold_is_recorded_and_waited_for_as_a_timer() {
    let db = temp_db();
    let log = db.dir.path().join("attempts.log");
    let engine = builder(log.clone()).open_db(&db.path).await.unwrap();
    // A 1.5 s backoff over a 100 ms threshold: recorded.
    let run = engine
        .start_workflow(CALL, "long", (1_500, 100), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "done on attempt 2");
    let history = engine.history("long").await.unwrap();
    let next_at = check_backoff_history(&history);
    let seen = attempts(&log);
    assert_eq!(seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [1, 2]);
    // The second attempt began at the recorded time, not before.
    assert!(seen[1].1 >= millis(next_at), "{seen:?} {next_at:?}");

    // A 50 ms backoff under the threshold (the default minute): slept in
    // place, nothing recorded but the end.
    std::fs::remove_file(&log).unwrap();
    let short = engine
        .start_workflow(CALL, "short", (50, 60_000), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(short.result().await.unwrap(), "done on attempt 2");
    assert_eq!(
        kinds(&engine.history("short").await.unwrap()),
        [
            "WorkflowStarted",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    assert_eq!(
        LocalActivityOptions::default().local_retry_threshold,
        Duration::from_secs(60)
    );

    // The history replays, also after a round trip through JSON, without
    // running the activity; code that asks for another activity there
    // does not.
    let saved = engine.workflow_history("long").await.unwrap();
    replayer().replay(&saved).unwrap();
    let json = saved.to_json().unwrap();
    assert!(json.contains("LocalActivityBackoff"), "{json}");
    let back = steadfast::WorkflowHistory::from_json(&json).unwrap();
    assert_eq!(back, saved);
    replayer().replay(&back).unwrap();
    const OTHER: ActivityDef<(), String> = ActivityDef::new("backoff.other");
    let changed =
        Replayer::new().workflow(CALL, |ctx: WorkflowContext, args: (u64, u64)| async move {
            Ok::<_, WorkflowError>(ctx.execute_local_activity(OTHER, (), options(args)).await?)
        });
    let err = changed.replay(&saved).unwrap_err().to_string();
    assert!(err.contains("LocalActivityBackoff"), "{err}");
    engine.shutdown().await.unwrap();
}

/// The crash child: starts a run whose local activity backs off 4 s over
/// a 200 ms threshold, reports once the backoff is durable, and waits to
/// be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_in_local_backoff() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var_os(LOG_ENV).expect("the log path is set"));
    let engine = builder(log).open_db(&db).await.unwrap();
    engine
        .start_workflow(CALL, "killed", (4_000, 200), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("killed").await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::LocalActivityBackoff { .. }))
            .then_some(())
    })
    .await;
    support::child_report("backing off");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_long_backoff_resumes_with_the_next_attempt_at_its_time() {
    let db = temp_db();
    let log = db.dir.path().join("attempts.log");
    let env: Vec<(&str, &OsStr)> = vec![(DB_ENV, db.path.as_os_str()), (LOG_ENV, log.as_os_str())];
    let mut child = spawn_crash_child("child_in_local_backoff", &env);
    child
        .wait_for_line(Duration::from_secs(60), |l| l == "backing off")
        .await;
    child.kill();
    // Killed during the backoff: only attempt 1 ran.
    assert_eq!(
        attempts(&log).iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1]
    );

    // Reopened: the run resumes with attempt 2 (not attempt 1 again), at
    // the recorded time.
    let engine = builder(log.clone()).open_db(&db.path).await.unwrap();
    let handle = engine.get_workflow_handle(CALL, "killed").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "done on attempt 2");
    let history = engine.history("killed").await.unwrap();
    let next_at = check_backoff_history(&history);
    let seen = attempts(&log);
    assert_eq!(seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [1, 2]);
    assert!(seen[1].1 >= millis(next_at), "{seen:?} {next_at:?}");
    replayer()
        .replay(&engine.workflow_history("killed").await.unwrap())
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_threshold_makes_an_hours_backoff_a_timer_on_virtual_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("attempts.log");
    let env = steadfast::testing::TestEngine::open(builder(log.clone()))
        .await
        .unwrap();
    // An hour's backoff under the default threshold of a minute.
    let run = env
        .start_workflow(CALL, "hour", (3_600_000, 60_000), WorkflowOptions::new())
        .await
        .unwrap();
    env.sleep(Duration::from_secs(60)).await;
    let waiting = env.history("hour").await.unwrap();
    assert_eq!(kinds(&waiting), ["WorkflowStarted", "LocalActivityBackoff"]);
    let next_at = match &waiting[1].kind {
        EventKind::LocalActivityBackoff {
            next_attempt_at, ..
        } => *next_attempt_at,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        next_at.duration_since(waiting[1].timestamp).unwrap(),
        Duration::from_secs(3600)
    );
    env.sleep(Duration::from_secs(3600)).await;
    assert_eq!(run.result().await.unwrap(), "done on attempt 2");
    let history = env.history("hour").await.unwrap();
    assert_eq!(check_backoff_history(&history), next_at);
    let seen = attempts(&log);
    assert_eq!(seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(), [1, 2]);
    assert!(seen[1].1 >= millis(next_at), "{seen:?} {next_at:?}");
    env.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_a_local_activity_waiting_out_a_recorded_backoff() {
    let db = temp_db();
    let log = db.dir.path().join("attempts.log");
    let engine = builder(log.clone()).open_db(&db.path).await.unwrap();
    // An hour's backoff over a 100 ms threshold.
    let run = engine
        .start_workflow(CALL, "shown", (3_600_000, 100), WorkflowOptions::new())
        .await
        .unwrap();
    let next_at = support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("shown").await.ok()?;
        history.iter().find_map(|e| match e.kind {
            EventKind::LocalActivityBackoff {
                next_attempt_at, ..
            } => Some(next_attempt_at),
            _ => None,
        })
    })
    .await;
    let check = |d: steadfast::WorkflowDescription| {
        assert_eq!(d.pending_activities.len(), 1, "{:?}", d.pending_activities);
        let a = &d.pending_activities[0];
        assert!(a.local);
        assert_eq!((a.seq, a.activity_type.as_str()), (1, "backoff.flaky"));
        assert_eq!(a.attempt, 2, "the next attempt");
        assert_eq!(a.next_attempt_at, Some(next_at));
        let failure = a
            .last_failure
            .as_ref()
            .expect("the first attempt's failure");
        assert_eq!(failure.error_type, "Flaky");
        assert_eq!(failure.message, "first attempt");
        assert!(!a.cancel_requested);
    };
    // From the live run, then from the file after a restart.
    check(engine.describe("shown").await.unwrap());
    engine.shutdown().await.unwrap();
    let engine = builder(log.clone()).open_db(&db.path).await.unwrap();
    check(engine.describe("shown").await.unwrap());
    // Its end takes it off the list.
    engine.cancel("shown").await.unwrap();
    let handle = engine.get_workflow_handle(CALL, "shown").await.unwrap();
    assert!(handle.result().await.is_err());
    assert!(
        engine
            .describe("shown")
            .await
            .unwrap()
            .pending_activities
            .is_empty()
    );
    drop(run);
    engine.shutdown().await.unwrap();
    assert_eq!(attempts(&log).len(), 1, "attempt 2 never began");
}
