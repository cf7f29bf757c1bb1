//! Promise: an activity attempt starts when its code starts. An attempt that
//! waits for a worker slot (`max_concurrent_activities`) or for a worker
//! keeps its number across a SIGKILL or a clean shutdown, never begins once
//! its run is cancelled or terminated (a compensation does not wait behind
//! it), and is still bounded by schedule-to-close and schedule-to-start.
//! A shutdown during running attempts leaves a well-formed history.
//!
//! The crash test re-runs this test binary as a child process
//! (`child_backlog`, which returns at once unless its environment variables
//! are set) and kills it with SIGKILL.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind,
    ResultError, RetryPolicy, Worker, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{
    Seen, append_synced, assert_history_well_formed, eventually, read_log, spawn_crash_child,
    temp_db,
};

/// The backlog child: the file to open.
const DB_ENV: &str = "STEADFAST_SLOTS_DB";
/// The backlog child: the log its activities append to.
const LOG_ENV: &str = "STEADFAST_SLOTS_LOG";

/// Logs `label attempt=N` when its code begins, then works: for ever in
/// the processes that are killed or shut down, not at all in the last one.
const WORK: ActivityDef<String, String> = ActivityDef::new("work");
/// Runs `work` for each label at once and reports what each call saw.
const FAN_OUT: WorkflowDef<(Vec<String>, u32), Vec<Seen>> = WorkflowDef::new("FanOut");

const LONG: Duration = Duration::from_secs(60);

async fn fan_out(
    ctx: WorkflowContext,
    (labels, maximum_attempts): (Vec<String>, u32),
) -> Result<Vec<Seen>, WorkflowError> {
    // Start-to-close only: a schedule-to-close timeout would count the time
    // the process spends dead.
    let options = ActivityOptions::start_to_close(LONG).with_retry_policy(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(10))
            .with_maximum_attempts(maximum_attempts),
    );
    let calls = labels
        .into_iter()
        .map(|label| ctx.execute_activity(WORK, label, options.clone()));
    let seen = futures::future::join_all(calls).await;
    Ok(seen.into_iter().map(Seen::from).collect())
}

/// One `work` attempt: logs durably that its code began, then hangs when
/// `hang`, else returns `label@attempt`.
async fn work(
    log: Arc<PathBuf>,
    hang: bool,
    ctx: ActivityContext,
    label: String,
) -> Result<String, ActivityError> {
    let line = format!("{label} attempt={}", ctx.attempt());
    tokio::task::spawn_blocking(move || append_synced(&log, &line))
        .await
        .map_err(|e| ActivityError::retryable(e.to_string()))??;
    if hang {
        std::future::pending::<()>().await;
    }
    Ok(format!("{label}@{}", ctx.attempt()))
}

/// An engine whose default queue runs at most `slots` attempts at once.
fn fan_engine(log: &Path, hang: bool, slots: usize) -> EngineBuilder {
    let log = Arc::new(log.to_path_buf());
    let worker = Worker::new("default")
        .workflow(FAN_OUT, fan_out)
        .activity(WORK, move |ctx, label| work(log.clone(), hang, ctx, label))
        .max_concurrent_activities(slots);
    Engine::builder().worker(worker)
}

fn labels(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("a{i}")).collect()
}

/// How many times each label's code began, by attempt, from the log.
fn began(log: &Path) -> Vec<(String, u32)> {
    read_log(log)
        .iter()
        .map(|line| {
            let (label, attempt) = line.split_once(" attempt=").expect("a log line");
            (
                label.to_string(),
                attempt.parse().expect("an attempt number"),
            )
        })
        .collect()
}

/// Waits until the log holds `n` lines.
async fn log_reaches(log: &Path, n: usize) {
    eventually(LONG, || async { (read_log(log).len() >= n).then_some(()) }).await;
}

/// Every attempt the history counts (failed or completed) began, as the log
/// shows, and every attempt that began is counted: nothing was burnt
/// without running. The input of each activity is its label.
fn assert_attempts_match_log(history: &[steadfast::Event], log: &Path) {
    let mut labels = std::collections::HashMap::new();
    let mut counted = Vec::new();
    for event in history {
        match &event.kind {
            EventKind::ActivityScheduled { seq, input, .. } => {
                labels.insert(*seq, input.decode::<String>().unwrap());
            }
            EventKind::ActivityFailed { seq, attempt, .. }
            | EventKind::ActivityCompleted { seq, attempt, .. } => {
                counted.push((labels[seq].clone(), *attempt));
            }
            _ => {}
        }
    }
    let mut began = began(log);
    counted.sort();
    began.sort();
    assert_eq!(
        counted, began,
        "the attempts the history counts must be exactly those whose code began"
    );
}

/// The child: opens the file with two slots and activities that hang,
/// starts the fan-out (or lets the run resume), and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_backlog() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var_os(LOG_ENV).expect("the log path is set"));
    let engine = fan_engine(&log, true, 2).open(&db).await.unwrap();
    // In the second process the run resumes by itself; the start is refused.
    let _ = engine
        .start_workflow(FAN_OUT, "backlog", (labels(4), 2), WorkflowOptions::new())
        .await;
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_waiting_for_a_slot_keep_their_number_across_kills() {
    let db = temp_db();
    let log = db.dir.path().join("began.log");
    let env = [(DB_ENV, db.path.as_os_str()), (LOG_ENV, log.as_os_str())];
    let env: Vec<(&str, &OsStr)> = env.to_vec();

    // Four activities, two slots: two begin, two wait; kill.
    let child = spawn_crash_child("child_backlog", &env);
    log_reaches(&log, 2).await;
    child.kill();
    // Reopened: the two that ran are retried, the two that waited still
    // wait (or begin); kill again once two more attempts began.
    let child = spawn_crash_child("child_backlog", &env);
    log_reaches(&log, 4).await;
    child.kill();

    // With `maximum_attempts(2)`, an activity cut off twice has used up its
    // attempts; one that never ran must not have lost any.
    let engine = fan_engine(&log, false, 2).open(&db.path).await.unwrap();
    let handle = engine
        .get_workflow_handle(FAN_OUT, "backlog")
        .await
        .unwrap();
    let seen = tokio::time::timeout(LONG, handle.result())
        .await
        .expect("the run finishes")
        .unwrap();
    let history = engine.history("backlog").await.unwrap();
    assert_history_well_formed(&history);
    let began_before: Vec<(String, u32)> = began(&log);
    for (label, seen) in labels(4).iter().zip(&seen) {
        let runs = began_before.iter().filter(|(l, _)| l == label).count() as u32;
        match seen {
            // Completed in the last process: every attempt before it ran.
            Seen::Value(value) => assert_eq!(value, &format!("{label}@{runs}")),
            Seen::Failed { attempt, failure } => {
                assert_eq!(
                    failure.error_type, "AttemptInterrupted",
                    "{label}: {seen:?}"
                );
                assert_eq!(
                    (*attempt, runs),
                    (2, 2),
                    "{label} failed without running twice"
                );
            }
            other => panic!("{label}: {other:?}"),
        }
    }
    assert!(
        seen.iter().any(|s| matches!(s, Seen::Value(_))),
        "the activities that waited during the kills completed: {seen:?}"
    );
    assert_attempts_match_log(&history, &log);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_during_a_backlog_interrupts_only_attempts_that_began() {
    let db = temp_db();
    let log = db.dir.path().join("began.log");
    let engine = fan_engine(&log, true, 1).open(&db.path).await.unwrap();
    engine
        .start_workflow(FAN_OUT, "backlog", (labels(3), 1), WorkflowOptions::new())
        .await
        .unwrap();
    log_reaches(&log, 1).await;
    engine.shutdown().await.unwrap();

    let engine = fan_engine(&log, false, 1).open(&db.path).await.unwrap();
    let handle = engine
        .get_workflow_handle(FAN_OUT, "backlog")
        .await
        .unwrap();
    let seen = tokio::time::timeout(LONG, handle.result())
        .await
        .expect("the run finishes")
        .unwrap();
    // Only a1 began before the shutdown: it is interrupted (one attempt
    // allowed); a2 and a3 waited, and run as attempt 1.
    assert!(
        matches!(&seen[0], Seen::Failed { attempt: 1, failure } if failure.error_type == "AttemptInterrupted"),
        "{seen:?}"
    );
    assert_eq!(
        seen[1..],
        [Seen::Value("a2@1".into()), Seen::Value("a3@1".into())]
    );
    let history = engine.history("backlog").await.unwrap();
    assert_history_well_formed(&history);
    assert_attempts_match_log(&history, &log);
    engine.shutdown().await.unwrap();
}

// ----- Shutdown while attempts run -----

/// Fails at the first activity that fails.
const ALL_OR_NOTHING: WorkflowDef<(), Vec<String>> = WorkflowDef::new("AllOrNothing");

async fn all_or_nothing(ctx: WorkflowContext, (): ()) -> Result<Vec<String>, WorkflowError> {
    let options = ActivityOptions::start_to_close(LONG)
        .with_retry_policy(RetryPolicy::default().with_maximum_attempts(1));
    let calls = labels(3)
        .into_iter()
        .map(|label| ctx.execute_activity(WORK, label, options.clone()));
    let mut out = Vec::new();
    for result in futures::future::join_all(calls).await {
        out.push(result?);
    }
    Ok(out)
}

fn all_or_nothing_engine(log: &Path, hang: bool) -> EngineBuilder {
    let log = Arc::new(log.to_path_buf());
    Engine::builder()
        .workflow(ALL_OR_NOTHING, all_or_nothing)
        .activity(WORK, move |ctx, label| work(log.clone(), hang, ctx, label))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failed_by_attempts_a_shutdown_cut_off_has_a_well_formed_history() {
    let db = temp_db();
    let log = db.dir.path().join("began.log");
    let engine = all_or_nothing_engine(&log, true)
        .open(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(ALL_OR_NOTHING, "all", (), WorkflowOptions::new())
        .await
        .unwrap();
    log_reaches(&log, 3).await;
    engine.shutdown().await.unwrap();

    let engine = all_or_nothing_engine(&log, false)
        .open(&db.path)
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(ALL_OR_NOTHING, "all")
        .await
        .unwrap();
    // Every time, not only the first: the history reads as closed.
    for _ in 0..2 {
        let result = tokio::time::timeout(LONG, handle.result())
            .await
            .expect("the run finishes");
        match result {
            Err(ResultError::Failed { failure, .. }) => {
                assert!(
                    failure.message.contains("AttemptInterrupted"),
                    "{failure:?}"
                )
            }
            other => panic!("expected the run to fail, got {other:?}"),
        }
    }
    let history = engine.history("all").await.unwrap();
    assert_history_well_formed(&history);
    assert_attempts_match_log(&history, &log);
    engine.shutdown().await.unwrap();
}

// ----- Cancelled and terminated runs -----

/// Logs its label when its code begins, then runs until its attempt is
/// cancelled.
const HOLD: ActivityDef<String, String> = ActivityDef::new("hold");
/// Logs its label when its code begins, and returns it.
const QUICK: ActivityDef<String, String> = ActivityDef::new("quick");
/// Holds three activities at once; once they are cancelled, compensates
/// with `quick` and completes.
const SAGA: WorkflowDef<String, String> = WorkflowDef::new("Saga");
/// Runs `quick` once.
const ONCE: WorkflowDef<String, String> = WorkflowDef::new("Once");

async fn saga(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(LONG);
    let calls = (0..3).map(|i| ctx.execute_activity(HOLD, format!("{name}-{i}"), options.clone()));
    let results = futures::future::join_all(calls).await;
    if results.iter().any(Result::is_err) {
        ctx.execute_activity(QUICK, format!("{name}-compensate"), options)
            .await?;
        return Ok("compensated".into());
    }
    Ok("held".into())
}

async fn once(ctx: WorkflowContext, label: String) -> Result<String, WorkflowError> {
    Ok(ctx
        .execute_activity(QUICK, label, ActivityOptions::start_to_close(LONG))
        .await?)
}

type Began = Arc<Mutex<Vec<String>>>;

/// One slot on the default queue; every activity's code logs to `began`.
async fn one_slot_engine(path: &Path, began: &Began) -> Engine {
    let (hold_log, quick_log) = (began.clone(), began.clone());
    let worker = Worker::new("default")
        .workflow(SAGA, saga)
        .workflow(ONCE, once)
        .activity(HOLD, move |ctx: ActivityContext, label: String| {
            let began = hold_log.clone();
            async move {
                began.lock().unwrap().push(label.clone());
                ctx.cancelled().await;
                Err::<String, _>(ActivityError::retryable(format!("{label} was cancelled")))
            }
        })
        .activity(QUICK, move |_ctx: ActivityContext, label: String| {
            let began = quick_log.clone();
            async move {
                began.lock().unwrap().push(label.clone());
                Ok(label)
            }
        })
        .max_concurrent_activities(1);
    Engine::builder().worker(worker).open(path).await.unwrap()
}

async fn began_reaches(began: &Began, n: usize) {
    eventually(LONG, || async {
        (began.lock().unwrap().len() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_waiting_when_their_run_is_terminated_never_begin() {
    let db = temp_db();
    let began = Began::default();
    let engine = one_slot_engine(&db.path, &began).await;
    engine
        .start_workflow(SAGA, "doomed", "doomed".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    // doomed-0 holds the slot; doomed-1 and doomed-2 wait for it.
    began_reaches(&began, 1).await;
    engine
        .terminate("doomed", "no longer needed")
        .await
        .unwrap();
    // The slot is handed on in order: a later activity of another run gets
    // it only after every attempt that waited before it had its turn.
    let later = engine
        .start_workflow(ONCE, "later", "later".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    let result = tokio::time::timeout(LONG, later.result()).await.unwrap();
    assert_eq!(result.unwrap(), "later");
    assert_eq!(*began.lock().unwrap(), ["doomed-0", "later"]);
    let history = engine.history("doomed").await.unwrap();
    assert_history_well_formed(&history);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensation_does_not_wait_behind_attempts_of_its_cancelled_run() {
    let db = temp_db();
    let began = Began::default();
    let engine = one_slot_engine(&db.path, &began).await;
    let handle = engine
        .start_workflow(SAGA, "saga", "saga".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    began_reaches(&began, 1).await;
    engine.cancel("saga").await.unwrap();
    let result = tokio::time::timeout(LONG, handle.result()).await.unwrap();
    assert_eq!(result.unwrap(), "compensated");
    // The two attempts that waited were cancelled with their activities:
    // the compensation came next, and they never began.
    assert_eq!(*began.lock().unwrap(), ["saga-0", "saga-compensate"]);
    let history = engine.history("saga").await.unwrap();
    assert_history_well_formed(&history);
    engine.shutdown().await.unwrap();
}

// ----- Timeouts while waiting -----

/// Runs `quick` on `task_queue` with the given schedule-to-close and
/// schedule-to-start timeouts, and reports what the call saw.
const WAIT_FOR_WORKER: WorkflowDef<(String, Option<u64>, Option<u64>), Seen> =
    WorkflowDef::new("WaitForWorker");

async fn wait_for_worker(
    ctx: WorkflowContext,
    (task_queue, to_close_ms, to_start_ms): (String, Option<u64>, Option<u64>),
) -> Result<Seen, WorkflowError> {
    let mut options = ActivityOptions::start_to_close(LONG).with_task_queue(task_queue);
    if let Some(ms) = to_close_ms {
        options = options.with_schedule_to_close_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = to_start_ms {
        options = options.with_schedule_to_start_timeout(Duration::from_millis(ms));
    }
    let result = ctx
        .execute_activity(QUICK, "waiting".to_string(), options)
        .await;
    Ok(Seen::from(result))
}

/// Holds the one slot of queue "busy" until it is terminated.
const HOLD_BUSY: WorkflowDef<(), String> = WorkflowDef::new("HoldBusy");

async fn hold_busy(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(LONG).with_task_queue("busy");
    Ok(ctx
        .execute_activity(HOLD, "holder".to_string(), options)
        .await?)
}

async fn timeout_engine(path: &Path, began: &Began) -> Engine {
    let (hold_log, quick_log) = (began.clone(), began.clone());
    // Queue "busy" has one slot, held by `hold` until its run is cancelled.
    let busy = Worker::new("busy")
        .activity(HOLD, move |ctx: ActivityContext, label: String| {
            let began = hold_log.clone();
            async move {
                began.lock().unwrap().push(label.clone());
                ctx.cancelled().await;
                Ok(label)
            }
        })
        .activity(QUICK, move |_ctx: ActivityContext, label: String| {
            let began = quick_log.clone();
            async move {
                began.lock().unwrap().push(label.clone());
                Ok(label)
            }
        })
        .max_concurrent_activities(1);
    Engine::builder()
        .workflow(WAIT_FOR_WORKER, wait_for_worker)
        .workflow(HOLD_BUSY, hold_busy)
        .worker(busy)
        .open(path)
        .await
        .unwrap()
}

/// Waits (with a generous limit) for the run's single activity outcome.
async fn outcome(
    engine: &Engine,
    workflow_id: &str,
    input: (&str, Option<u64>, Option<u64>),
) -> Seen {
    let (queue, to_close, to_start) = input;
    let handle = engine
        .start_workflow(
            WAIT_FOR_WORKER,
            workflow_id,
            (queue.to_string(), to_close, to_start),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    tokio::time::timeout(LONG, handle.result())
        .await
        .expect("the timeout ends the activity")
        .unwrap()
}

fn assert_timed_out(seen: &Seen, error_type: &str) {
    match seen {
        Seen::Failed { attempt, failure } => {
            assert_eq!(failure.error_type, error_type, "{failure:?}");
            assert!(failure.non_retryable, "{failure:?}");
            assert_eq!(*attempt, 1);
        }
        other => panic!("expected {error_type}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_to_close_counts_while_an_activity_waits_for_a_worker_or_a_slot() {
    let db = temp_db();
    let began = Began::default();
    let engine = timeout_engine(&db.path, &began).await;
    // No worker of this engine serves queue "nobody".
    let seen = outcome(&engine, "no-worker", ("nobody", Some(300), None)).await;
    assert_timed_out(&seen, "ScheduleToCloseTimeout");
    let Seen::Failed { failure, .. } = &seen else {
        unreachable!()
    };
    assert!(failure.message.contains("nobody"), "{failure:?}");

    // Queue "busy": its one slot is held by another run's activity.
    engine
        .start_workflow(HOLD_BUSY, "holder", (), WorkflowOptions::new())
        .await
        .unwrap();
    began_reaches(&began, 1).await;
    let seen = outcome(&engine, "no-slot", ("busy", Some(300), None)).await;
    assert_timed_out(&seen, "ScheduleToCloseTimeout");
    // Schedule-to-start fires while waiting, too.
    let seen = outcome(&engine, "no-slot-start", ("busy", None, Some(300))).await;
    assert_timed_out(&seen, "ScheduleToStartTimeout");
    let seen = outcome(&engine, "no-worker-start", ("nobody", None, Some(300))).await;
    assert_timed_out(&seen, "ScheduleToStartTimeout");
    assert!(
        !began.lock().unwrap().contains(&"waiting".to_string()),
        "no timed-out attempt began: {:?}",
        began.lock().unwrap()
    );
    for id in ["no-worker", "no-slot", "no-slot-start", "no-worker-start"] {
        assert_history_well_formed(&engine.history(id).await.unwrap());
    }
    engine.terminate("holder", "done").await.unwrap();
    engine.shutdown().await.unwrap();
}
