//! Promise: a process killed with SIGKILL loses nothing acknowledged.
//! Opening the same file again resumes the unfinished run where it stopped:
//! activities whose results were recorded never run again, an attempt the kill
//! cut off runs again with the next attempt number, the durable timer fires
//! once, and the history stays well formed. While one process has the file
//! open, another gets `OpenError::AlreadyInUse`.
//!
//! The parent tests re-run this test binary as a child process (the
//! `child_*` tests, which return at once unless their environment variables
//! are set) and kill it with SIGKILL. `STEADFAST_CRASH_SEED` replays a random
//! kill schedule; `STEADFAST_CRASH_KILLS` asks for a longer torture run.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, Event, EventKind, OpenError, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::{
    append_synced, assert_history_well_formed, child_report, read_log, spawn_crash_child, temp_db,
};

/// The order child: the file to open.
const DB_ENV: &str = "STEADFAST_CRASH_DB";
/// The order child: the log its activities append to.
const LOG_ENV: &str = "STEADFAST_CRASH_LOG";
/// The order child: an activity that never returns in this process.
const HANG_ENV: &str = "STEADFAST_CRASH_HANG";
/// The holding child: the file to open and keep open.
const HOLD_ENV: &str = "STEADFAST_CRASH_HOLD_DB";

const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
const RESERVE: ActivityDef<String, String> = ActivityDef::new("reserve");
const CHARGE: ActivityDef<String, String> = ActivityDef::new("charge");
const SHIP: ActivityDef<String, String> = ActivityDef::new("ship");
const NOTIFY: ActivityDef<String, String> = ActivityDef::new("notify");
const ARCHIVE: ActivityDef<String, String> = ActivityDef::new("archive");

/// The activities in the order the workflow runs them.
const STEPS: [&str; 5] = ["reserve", "charge", "ship", "notify", "archive"];
const WORKFLOW_ID: &str = "order-1";
const EXPECTED: &str = "order order-1 done: reserved, charged, shipped, notified, archived";

/// The order workflow of `examples/order.rs`: five activities in sequence
/// with a 1 s durable timer between `charge` and `ship`.
async fn order(ctx: WorkflowContext, order_id: String) -> Result<String, WorkflowError> {
    // Start-to-close only: a schedule-to-close timeout would count the time
    // the process spends dead.
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    let reserved = ctx
        .execute_activity(RESERVE, order_id.clone(), options.clone())
        .await?;
    let charged = ctx
        .execute_activity(CHARGE, order_id.clone(), options.clone())
        .await?;
    ctx.sleep(Duration::from_secs(1)).await?;
    let shipped = ctx
        .execute_activity(SHIP, order_id.clone(), options.clone())
        .await?;
    let notified = ctx
        .execute_activity(NOTIFY, order_id.clone(), options.clone())
        .await?;
    let archived = ctx
        .execute_activity(ARCHIVE, order_id.clone(), options)
        .await?;
    Ok(format!(
        "order {order_id} done: {reserved}, {charged}, {shipped}, {notified}, {archived}"
    ))
}

/// One activity attempt: log `name attempt=N` durably, then work 200 ms
/// (forever, for the activity named by `hang`).
async fn step(
    log: Arc<PathBuf>,
    hang: Option<Arc<str>>,
    ctx: ActivityContext,
    done: &'static str,
) -> Result<String, ActivityError> {
    let line = format!("{} attempt={}", ctx.activity_type(), ctx.attempt());
    tokio::task::spawn_blocking(move || append_synced(&log, &line))
        .await
        .map_err(|e| ActivityError::retryable(e.to_string()))??;
    if hang.as_deref() == Some(ctx.activity_type()) {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(done.to_string())
}

fn order_engine(log: &Path, hang: Option<&str>) -> EngineBuilder {
    let log = Arc::new(log.to_path_buf());
    let hang: Option<Arc<str>> = hang.map(Arc::from);
    let activity = |done: &'static str| {
        let (log, hang) = (log.clone(), hang.clone());
        move |ctx: ActivityContext, _order_id: String| step(log.clone(), hang.clone(), ctx, done)
    };
    Engine::builder()
        .workflow(ORDER, order)
        .activity(RESERVE, activity("reserved"))
        .activity(CHARGE, activity("charged"))
        .activity(SHIP, activity("shipped"))
        .activity(NOTIFY, activity("notified"))
        .activity(ARCHIVE, activity("archived"))
}

/// The child: opens the file, starts the order workflow or waits for the run
/// that resumed, and prints `started RUN_ID` once the start is acknowledged
/// (or `resumed RUN_ID`), then `result RESULT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_order() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var_os(LOG_ENV).expect("the log path is set"));
    let hang = std::env::var(HANG_ENV).ok();
    let engine = order_engine(&log, hang.as_deref())
        .open(&db)
        .await
        .expect("the child opens the file");
    let run = match engine.get_workflow_handle(ORDER, WORKFLOW_ID).await {
        Ok(run) => {
            child_report(&format!("resumed {}", run.run_id()));
            run
        }
        Err(ClientError::NotFound { .. }) => {
            let run = engine
                .start_workflow(
                    ORDER,
                    WORKFLOW_ID,
                    WORKFLOW_ID.to_string(),
                    WorkflowOptions::new(),
                )
                .await
                .expect("the child starts the workflow");
            child_report(&format!("started {}", run.run_id()));
            run
        }
        Err(e) => panic!("the child cannot look up the workflow: {e}"),
    };
    // Bounded, so a child whose parent died does not linger.
    let result = tokio::time::timeout(Duration::from_secs(60), run.result())
        .await
        .expect("the child's run finishes within 60 s")
        .expect("the child's run completes");
    child_report(&format!("result {result}"));
    engine.shutdown().await.expect("the child shuts down");
}

/// The holding child: opens the file, prints `opened`, and keeps it open
/// until killed (at most 60 s).
#[tokio::test]
async fn child_hold_open() {
    let Some(db) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let engine = Engine::builder()
        .open(&db)
        .await
        .expect("the child opens the file");
    child_report("opened");
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(engine);
}

fn order_child(db: &Path, log: &Path, hang: Option<&str>) -> support::CrashChild {
    let mut env: Vec<(&str, &OsStr)> = vec![(DB_ENV, db.as_os_str()), (LOG_ENV, log.as_os_str())];
    if let Some(hang) = hang {
        env.push((HANG_ENV, OsStr::new(hang)));
    }
    spawn_crash_child("child_order", &env)
}

/// Reopens the file in this process and waits for the order run to complete
/// (starting it if no child got as far as an acknowledged start). Returns
/// the run's ID, its result and its history.
async fn finish_in_process(db: &Path, log: &Path) -> (steadfast::RunId, String, Vec<Event>) {
    let engine = order_engine(log, None)
        .open(db)
        .await
        .expect("the file reopens after the kill");
    let run = match engine.get_workflow_handle(ORDER, WORKFLOW_ID).await {
        Ok(run) => run,
        Err(ClientError::NotFound { .. }) => engine
            .start_workflow(
                ORDER,
                WORKFLOW_ID,
                WORKFLOW_ID.to_string(),
                WorkflowOptions::new(),
            )
            .await
            .expect("start the workflow"),
        Err(e) => panic!("look up the workflow: {e}"),
    };
    let result = tokio::time::timeout(Duration::from_secs(30), run.result())
        .await
        .expect("the resumed run finishes within 30 s")
        .expect("the resumed run completes");
    let history = engine.history(WORKFLOW_ID).await.expect("read the history");
    engine.shutdown().await.expect("shut down");
    (run.run_id(), result, history)
}

/// A log line `name attempt=N`, parsed.
fn parse_line(line: &str) -> (usize, u32) {
    let (name, attempt) = line
        .split_once(" attempt=")
        .unwrap_or_else(|| panic!("a malformed log line {line:?}"));
    let index = STEPS
        .iter()
        .position(|s| *s == name)
        .unwrap_or_else(|| panic!("an unknown activity in log line {line:?}"));
    (index, attempt.parse().expect("a numeric attempt"))
}

/// The run IDs the children printed as acknowledged starts.
fn acknowledged_starts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("started "))
        .map(str::to_string)
        .collect()
}

/// Checks the log against the history of the completed run: no activity ran
/// again once a later one started; each activity's logged attempts rise
/// strictly and end with the attempt that history records as completed; the
/// only failed attempts in history are those a kill cut off.
fn assert_log_matches_history(log: &[String], history: &[Event], context: &str) {
    let mut latest = 0usize;
    let mut attempts: Vec<Vec<u32>> = vec![Vec::new(); STEPS.len()];
    for line in log {
        let (index, attempt) = parse_line(line);
        assert!(
            index >= latest,
            "{context}: {line:?} ran after {:?} had started; log: {log:#?}",
            STEPS[latest]
        );
        latest = index;
        if let Some(&previous) = attempts[index].last() {
            assert!(
                attempt > previous,
                "{context}: attempt numbers of {} do not rise: {log:#?}",
                STEPS[index]
            );
        }
        attempts[index].push(attempt);
    }
    let mut seq_names = std::collections::HashMap::new();
    let mut completed = vec![None; STEPS.len()];
    for event in history {
        match &event.kind {
            EventKind::ActivityScheduled {
                seq, activity_type, ..
            } => {
                seq_names.insert(*seq, activity_type.clone());
            }
            EventKind::ActivityFailed { failure, .. } => {
                // These activities never fail by themselves: every failed
                // attempt is one a kill cut off.
                assert_eq!(
                    failure.error_type, "AttemptInterrupted",
                    "{context}: an unexpected failure: {event:?}"
                );
            }
            EventKind::ActivityCompleted { seq, attempt, .. } => {
                let name = &seq_names[seq];
                let index = STEPS.iter().position(|s| s == name).expect("a known step");
                completed[index] = Some(*attempt);
            }
            _ => {}
        }
    }
    for (index, name) in STEPS.iter().enumerate() {
        let completed = completed[index]
            .unwrap_or_else(|| panic!("{context}: {name} has no completion in history"));
        assert_eq!(
            attempts[index].last().copied(),
            Some(completed),
            "{context}: the last logged attempt of {name} is not the one history completed; log: {log:#?}"
        );
    }
}

/// Kill the child while `ship` (after the durable timer) is running, reopen
/// in this process: `reserve` and `charge` do not run again, `ship` runs
/// again as attempt 2, and the run completes with a well-formed history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_activity_then_resume() {
    let db = temp_db();
    let log = db.dir.path().join("activities.log");
    let mut child = order_child(&db.path, &log, Some("ship"));
    child
        .wait_for_line(Duration::from_secs(30), |l| l.starts_with("started "))
        .await;
    // `ship` starts only after `charge`'s result and the timer's firing are
    // durable, and hangs in this child: the kill always cuts it off.
    support::eventually(Duration::from_secs(30), || {
        let log = log.clone();
        async move {
            read_log(&log)
                .iter()
                .any(|l| l == "ship attempt=1")
                .then_some(())
        }
    })
    .await;
    let printed = child.kill();
    assert_eq!(
        read_log(&log),
        ["reserve attempt=1", "charge attempt=1", "ship attempt=1"],
        "the log before the kill"
    );

    let (run_id, result, history) = finish_in_process(&db.path, &log).await;
    assert_eq!(result, EXPECTED);
    assert_eq!(
        acknowledged_starts(&printed),
        [run_id.to_string()],
        "the acknowledged start is the run that completed"
    );
    assert_eq!(
        read_log(&log),
        [
            "reserve attempt=1",
            "charge attempt=1",
            "ship attempt=1",
            "ship attempt=2",
            "notify attempt=1",
            "archive attempt=1",
        ],
        "completed activities never run again; the cut-off one runs again as attempt 2"
    );
    assert_history_well_formed(&history);
    assert_log_matches_history(&read_log(&log), &history, "kill_mid_activity_then_resume");
    // History holds the cut-off attempt as a failure with a retry planned.
    let interrupted: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityFailed {
                attempt,
                failure,
                next_attempt_at: Some(_),
                ..
            } => Some((*attempt, failure.error_type.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(interrupted, [(1, "AttemptInterrupted".to_string())]);
    let fired = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .count();
    assert_eq!(fired, 1, "the timer fired once, before the kill");
}

/// A small deterministic generator (splitmix64), so a failing schedule can
/// be replayed from its printed seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Kill the child at random moments, several times, then finish the run in
/// this process: it completes, the acknowledged start survived, no activity
/// ran again once a later one had started, and the history is well formed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_random_kills_always_finish() {
    let seed = match std::env::var("STEADFAST_CRASH_SEED") {
        Ok(s) => s.parse().expect("STEADFAST_CRASH_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    let kills: usize = std::env::var("STEADFAST_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // Shown with the test's output when it fails.
    eprintln!("repeated_random_kills_always_finish: STEADFAST_CRASH_SEED={seed}");
    let context = format!("STEADFAST_CRASH_SEED={seed}");
    let mut rng = SplitMix(seed);
    let db = temp_db();
    let log = db.dir.path().join("activities.log");
    let mut printed = Vec::new();
    let mut finished_in_child = false;
    for _ in 0..kills {
        let mut child = order_child(&db.path, &log, None);
        // The workflow needs about 2.2 s of work; each child gets up to
        // 0.8 s of it, so the kills land at every stage, start included.
        let delay = Duration::from_millis(rng.next() % 800);
        tokio::time::sleep(delay).await;
        if child.has_exited() {
            let (success, lines) = child.wait(Duration::from_secs(1)).await;
            assert!(success, "{context}: the child failed: {lines:?}");
            printed.extend(lines);
            finished_in_child = true;
            break;
        }
        printed.extend(child.kill());
        eprintln!(
            "killed after {delay:?}; log: {:?}",
            read_log(&log).join(", ")
        );
    }
    let (run_id, result, history) = finish_in_process(&db.path, &log).await;
    assert_eq!(result, EXPECTED, "{context}");
    if finished_in_child {
        assert!(
            printed.iter().any(|l| l == &format!("result {EXPECTED}")),
            "{context}: {printed:?}"
        );
    }
    let starts = acknowledged_starts(&printed);
    assert!(
        starts.len() <= 1,
        "{context}: only one start can be acknowledged: {printed:?}"
    );
    if let Some(start) = starts.first() {
        assert_eq!(
            *start,
            run_id.to_string(),
            "{context}: the acknowledged run is the one that completed"
        );
    }
    assert_history_well_formed(&history);
    assert_log_matches_history(&read_log(&log), &history, &context);
}

/// A second process opening a file in use gets `AlreadyInUse`; once the
/// holder is killed, the file opens.
#[tokio::test]
async fn a_second_process_gets_already_in_use() {
    let db = temp_db();
    let mut child = spawn_crash_child("child_hold_open", &[(HOLD_ENV, db.path.as_os_str())]);
    child
        .wait_for_line(Duration::from_secs(30), |l| l == "opened")
        .await;
    let err = Engine::builder()
        .open(&db.path)
        .await
        .expect_err("the file is held by the child");
    assert!(matches!(err, OpenError::AlreadyInUse { .. }), "{err}");
    child.kill();
    let engine = Engine::builder()
        .open(&db.path)
        .await
        .expect("the file opens once its holder is gone");
    engine.shutdown().await.expect("shut down");
}
