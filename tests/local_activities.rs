//! Promise: `ctx.execute_local_activity` runs short work in the workflow's
//! own worker, without a task queue, and records it as one event when it
//! ends (`LocalActivityRecorded`: not scheduled + started + completed);
//! failed attempts are retried in place under its policy (nothing
//! recorded between them), with Temporal's local activity timeouts
//! (start-to-close per attempt, schedule-to-close across them, one of them
//! required); replay feeds the recorded result without running it; and a
//! kill -9 of the process mid-local-activity runs it again after the
//! restart (at least once).
//! Each engine runs on a redb file, or on PostgreSQL with
//! `STEADFAST_TEST_STORE=postgres` (as `.ci/run` runs this file too).

mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, Engine, EngineBuilder, EventKind,
    LocalActivityOptions, Replayer, RetryPolicy, RetryState, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{
    OpenDb, append_synced, assert_history_well_formed, read_log, spawn_crash_child, temp_db,
};

/// How the local activity behaves.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Mode {
    /// Fails attempts before this one, then succeeds.
    SucceedOn(u32),
    /// Fails non-retryably.
    Fatal,
    /// Sleeps 10 s per attempt (past its timeouts).
    Slow,
}

const STEP: ActivityDef<Mode, String> = ActivityDef::new("local.step");

/// What the workflow saw, with the options it used.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Seen {
    Value(String),
    Failed {
        attempt: u32,
        retry_state: Option<RetryState>,
        error_type: Option<String>,
    },
    NotScheduled,
    Other(String),
}

/// (mode, options kind) in: 0 = start-to-close 5 s, 1 = start-to-close
/// 100 ms with 3 attempts, 2 = schedule-to-close 300 ms, 3 = no timeout.
const CALL: WorkflowDef<(Mode, u8), Seen> = WorkflowDef::new("Local.Call");

fn options(kind: u8) -> LocalActivityOptions {
    let fast = RetryPolicy::default()
        .with_initial_interval(Duration::from_millis(5))
        .with_maximum_interval(Duration::from_millis(10));
    match kind {
        0 => LocalActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(fast),
        1 => LocalActivityOptions::start_to_close(Duration::from_millis(100))
            .with_retry_policy(fast.with_maximum_attempts(3)),
        2 => LocalActivityOptions::schedule_to_close(Duration::from_millis(300))
            .with_retry_policy(fast),
        _ => LocalActivityOptions::default(),
    }
}

async fn call(ctx: WorkflowContext, (mode, kind): (Mode, u8)) -> Result<Seen, WorkflowError> {
    Ok(
        match ctx.execute_local_activity(STEP, mode, options(kind)).await {
            Ok(value) => Seen::Value(value),
            Err(failure @ ActivityFailure::Failed { .. }) => Seen::Failed {
                attempt: match &failure {
                    ActivityFailure::Failed { attempt, .. } => *attempt,
                    _ => 0,
                },
                retry_state: failure.retry_state(),
                error_type: failure.error_type().map(str::to_string),
            },
            Err(ActivityFailure::NotScheduled { .. }) => Seen::NotScheduled,
            Err(other) => Seen::Other(other.to_string()),
        },
    )
}

async fn step(
    runs: Arc<AtomicU32>,
    ctx: ActivityContext,
    mode: Mode,
) -> Result<String, ActivityError> {
    runs.fetch_add(1, Ordering::SeqCst);
    match mode {
        Mode::SucceedOn(n) if ctx.attempt() >= n => {
            Ok(format!("done on attempt {}", ctx.attempt()))
        }
        Mode::SucceedOn(_) => Err(ActivityError::retryable("not yet").with_type("NotYet")),
        Mode::Fatal => Err(ActivityError::non_retryable("broken")
            .with_type("Broken")
            .with_details(7u32)),
        Mode::Slow => {
            ctx.sleep(Duration::from_secs(10)).await;
            Ok("slow".into())
        }
    }
}

fn builder(runs: &Arc<AtomicU32>) -> EngineBuilder {
    let runs = runs.clone();
    Engine::builder()
        .workflow(CALL, call)
        .activity(STEP, move |ctx, mode| step(runs.clone(), ctx, mode))
}

async fn run(engine: &Engine, id: &str, mode: Mode, kind: u8) -> Seen {
    engine
        .start_workflow(CALL, id, (mode, kind), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap()
}

/// The names of the events' kinds.
fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            let text = format!("{:?}", e.kind);
            text.split([' ', '{', '(']).next().unwrap_or("").to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_activity_is_one_event_and_retries_in_place() {
    let db = temp_db();
    let runs = Arc::new(AtomicU32::new(0));
    let engine = builder(&runs).open_db(&db.path).await.unwrap();
    assert_eq!(
        run(&engine, "local-one", Mode::SucceedOn(1), 0).await,
        Seen::Value("done on attempt 1".into())
    );
    let history = engine.history("local-one").await.unwrap();
    assert_history_well_formed(&history);
    assert_eq!(
        kinds(&history),
        [
            "WorkflowStarted",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );

    // Two failed attempts, retried in place: still one event, attempt 3.
    assert_eq!(
        run(&engine, "local-retried", Mode::SucceedOn(3), 0).await,
        Seen::Value("done on attempt 3".into())
    );
    let history = engine.history("local-retried").await.unwrap();
    assert_eq!(history.len(), 3, "{:?}", kinds(&history));
    match &history[1].kind {
        EventKind::LocalActivityRecorded {
            seq,
            activity_type,
            attempt,
            result,
        } => {
            assert_eq!(
                (*seq, activity_type.as_str(), *attempt),
                (1, "local.step", 3)
            );
            assert_eq!(
                result.as_ref().unwrap().decode::<String>().unwrap(),
                "done on attempt 3"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_failures_and_timeouts_follow_temporals_local_activity_rules() {
    let db = temp_db();
    let runs = Arc::new(AtomicU32::new(0));
    let engine = builder(&runs).open_db(&db.path).await.unwrap();
    assert_eq!(
        run(&engine, "local-fatal", Mode::Fatal, 0).await,
        Seen::Failed {
            attempt: 1,
            retry_state: Some(RetryState::NonRetryableFailure),
            error_type: Some("Broken".into()),
        }
    );
    let history = engine.history("local-fatal").await.unwrap();
    match &history[1].kind {
        EventKind::LocalActivityRecorded { result: Err(f), .. } => {
            assert_eq!(f.details::<u32>().unwrap(), Some(7));
        }
        other => panic!("{other:?}"),
    }
    // Attempts used up.
    assert_eq!(
        run(&engine, "local-attempts", Mode::SucceedOn(9), 1).await,
        Seen::Failed {
            attempt: 3,
            retry_state: Some(RetryState::MaximumAttemptsReached),
            error_type: Some("NotYet".into()),
        }
    );
    // Start-to-close per attempt: each of three attempts times out.
    assert_eq!(
        run(&engine, "local-start-to-close", Mode::Slow, 1).await,
        Seen::Failed {
            attempt: 3,
            retry_state: Some(RetryState::MaximumAttemptsReached),
            error_type: Some("StartToCloseTimeout".into()),
        }
    );
    // Schedule-to-close across attempts ends retries.
    match run(&engine, "local-schedule-to-close", Mode::Slow, 2).await {
        Seen::Failed {
            retry_state,
            error_type,
            ..
        } => {
            assert_eq!(retry_state, Some(RetryState::Timeout));
            assert_eq!(error_type.as_deref(), Some("ScheduleToCloseTimeout"));
        }
        other => panic!("{other:?}"),
    }
    // One of the two timeouts is required: nothing is recorded without.
    assert_eq!(
        run(&engine, "local-no-timeout", Mode::Fatal, 3).await,
        Seen::NotScheduled
    );
    let history = engine.history("local-no-timeout").await.unwrap();
    assert_eq!(kinds(&history), ["WorkflowStarted", "WorkflowCompleted"]);
    engine.shutdown().await.unwrap();
}

const AFTER: WorkflowDef<(), (String, String)> = WorkflowDef::new("Local.After");
const GO: SignalDef<()> = SignalDef::new("go");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_feeds_the_recorded_result_without_running_it() {
    let db = temp_db();
    let runs = Arc::new(AtomicU32::new(0));
    let after = |ctx: WorkflowContext, ()| async move {
        let first = ctx
            .execute_local_activity(STEP, Mode::SucceedOn(1), options(0))
            .await?;
        ctx.recv_signal(GO).await?;
        let second = ctx
            .execute_local_activity(STEP, Mode::SucceedOn(2), options(0))
            .await?;
        Ok::<_, WorkflowError>((first, second))
    };
    let engine = builder(&runs)
        .workflow(AFTER, after)
        .open_db(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(AFTER, "local-after", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("local-after").await.unwrap();
        (history.len() == 2).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Reopened: the first local activity's result comes from history.
    let engine = builder(&runs)
        .workflow(AFTER, after)
        .open_db(&db.path)
        .await
        .unwrap();
    engine.signal("local-after", GO, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(AFTER, "local-after")
        .await
        .unwrap();
    assert_eq!(
        handle.result().await.unwrap(),
        (
            "done on attempt 1".to_string(),
            "done on attempt 2".to_string()
        )
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "1 + the second's 2 attempts"
    );
    let saved = engine.workflow_history("local-after").await.unwrap();
    engine.shutdown().await.unwrap();

    // The replayer has no activities at all: it feeds the recorded ones.
    Replayer::new()
        .workflow(AFTER, after)
        .replay(&saved)
        .unwrap();
    let text = saved.to_json().unwrap();
    assert!(text.contains("LocalActivityRecorded"), "{text}");
    Replayer::new()
        .workflow(AFTER, after)
        .replay(&steadfast::WorkflowHistory::from_json(&text).unwrap())
        .unwrap();
    // Code that calls another local activity there is a nondeterminism.
    const OTHER: ActivityDef<Mode, String> = ActivityDef::new("local.other");
    let changed = Replayer::new().workflow(AFTER, |ctx: WorkflowContext, ()| async move {
        let first = ctx
            .execute_local_activity(OTHER, Mode::SucceedOn(1), options(0))
            .await?;
        Ok::<_, WorkflowError>((first, String::new()))
    });
    assert!(changed.replay(&saved).is_err());
}

const DB_ENV: &str = "STEADFAST_LOCAL_CRASH_DB";
const LOG_ENV: &str = "STEADFAST_LOCAL_CRASH_LOG";
const CRASH: WorkflowDef<(), String> = WorkflowDef::new("Local.Crash");
const SLOW_ONCE: ActivityDef<(), String> = ActivityDef::new("local.slow_once");

/// The crash child's engine (and the parent's after it): each run of the
/// local activity appends a line, fsynced; in the child it then hangs.
fn crash_engine(log: PathBuf, hang: bool) -> EngineBuilder {
    Engine::builder()
        .workflow(CRASH, |ctx: WorkflowContext, ()| async move {
            let options = LocalActivityOptions::start_to_close(Duration::from_secs(600));
            Ok::<_, WorkflowError>(ctx.execute_local_activity(SLOW_ONCE, (), options).await?)
        })
        .activity(SLOW_ONCE, move |ctx: ActivityContext, ()| {
            let log = log.clone();
            async move {
                append_synced(&log, &format!("attempt {}", ctx.attempt()))
                    .map_err(|e| ActivityError::retryable(e.to_string()))?;
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok("ran".to_string())
            }
        })
}

/// The crash child: starts the workflow and waits (the parent kills it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_mid_local_activity() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var_os(LOG_ENV).expect("the log path is set"));
    let engine = crash_engine(log, true).open_db(&db).await.unwrap();
    engine
        .start_workflow(CRASH, "local-crash", (), WorkflowOptions::new())
        .await
        .unwrap();
    support::child_report("started");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_local_activity_runs_it_again_after_the_restart() {
    let db = temp_db();
    let log = db.dir.path().join("local.log");
    let env: Vec<(&str, &OsStr)> = vec![(DB_ENV, db.path.as_os_str()), (LOG_ENV, log.as_os_str())];
    let mut child = spawn_crash_child("child_mid_local_activity", &env);
    child
        .wait_for_line(Duration::from_secs(30), |l| l == "started")
        .await;
    support::eventually(Duration::from_secs(30), || async {
        (!read_log(&log).is_empty()).then_some(())
    })
    .await;
    child.kill();

    // Nothing of the local activity was recorded; the run is loaded on
    // open (its wake hint says "now"), its code asks again, and it runs
    // again, from attempt 1.
    let engine = crash_engine(log.clone(), false)
        .open_db(&db.path)
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(CRASH, "local-crash")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "ran");
    assert_eq!(read_log(&log), ["attempt 1", "attempt 1"]);
    let history = engine.history("local-crash").await.unwrap();
    assert_history_well_formed(&history);
    assert_eq!(
        kinds(&history),
        [
            "WorkflowStarted",
            "LocalActivityRecorded",
            "WorkflowCompleted"
        ]
    );
    engine.shutdown().await.unwrap();
}
