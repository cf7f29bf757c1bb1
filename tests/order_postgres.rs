//! Promise: the `order` example on PostgreSQL (`--postgres URL`) survives
//! SIGKILL at any moment: run as a real process, killed at random moments
//! and started again with the same arguments, it finishes the workflow
//! exactly once: one run, completed, the start any copy acknowledged being
//! that run; no activity ran again once a later one had started, and the
//! last logged attempt of each is the one its history completed. Running it
//! once more prints the stored result without running anything. Two
//! copies started at once with the same workflow ID finish it together:
//! either may be killed at any moment, and the other finishes it.
//!
//! The test re-runs this binary as the example's process (`child_order`,
//! which returns at once unless its variable is set): the child parses the
//! example's command line and calls its `run`, as its `main` does.
//! `STEADFAST_ORDER_SEED` replays a kill schedule; `STEADFAST_ORDER_KILLS`
//! asks for more kills (default 5).

mod support;

#[path = "../examples/order.rs"]
#[allow(dead_code, unreachable_pub)]
mod order;

use std::ffi::OsString;
use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use steadfast::{Engine, Event, EventKind, ListFilter, WorkflowStatus};
use support::{SplitMix, assert_history_well_formed, read_log, seed_from_env};

/// The child: the example's arguments, one a line.
const ARGS_ENV: &str = "STEADFAST_ORDER_ARGS";
const SEED_ENV: &str = "STEADFAST_ORDER_SEED";
const KILLS_ENV: &str = "STEADFAST_ORDER_KILLS";

/// The example's activities, in the order its workflow runs them.
const STEPS: [&str; 5] = ["reserve", "charge", "ship", "notify", "archive"];
const WORKFLOW_ID: &str = "order-1";
const RESULT_LINE: &str =
    "Workflow result: order order-1 done: reserved, charged, shipped, notified, archived";

/// The example's process: its `main`, with the arguments from [`ARGS_ENV`].
#[test]
fn child_order() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let args = order::Args::parse_from(std::iter::once("order").chain(args.lines()));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let result = runtime
        .block_on(order::run(args))
        .expect("the example's run completes");
    println!("Workflow result: {result}");
}

/// A copy of the example running as a child process; every line it prints
/// is collected as it arrives. Dropping it kills it.
struct OrderProcess {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl OrderProcess {
    /// Starts `cargo run --example order -- ARGS`, in effect.
    fn spawn(args: &[OsString]) -> OrderProcess {
        let joined = args
            .iter()
            .map(|a| a.to_str().expect("UTF-8 arguments"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut child = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .args(["--exact", "child_order", "--nocapture", "--test-threads=1"])
            .env(ARGS_ENV, joined)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the example's process");
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(line);
            }
        });
        OrderProcess {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills it with SIGKILL; returns what it printed.
    fn kill(mut self) -> Vec<String> {
        if !self.has_exited() {
            // SAFETY: kill(2) has no memory effects; the child is not
            // reaped yet, so its PID cannot have been reused.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.child.wait();
        self.finish_reading()
    }

    /// Waits up to `limit` for it to exit; returns whether it succeeded and
    /// what it printed.
    async fn wait(mut self, limit: Duration) -> (bool, Vec<String>) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.success(), self.finish_reading());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the example did not exit within {limit:?}; it printed {:?}",
                self.lines.lock().expect("lines")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn finish_reading(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines.lock().expect("lines").clone()
    }
}

impl Drop for OrderProcess {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The example's command line on `schema`, logging to `log`.
fn example_args(url: &str, schema: &str, log: &Path) -> Vec<OsString> {
    vec![
        "--postgres".into(),
        url.into(),
        "--schema".into(),
        schema.into(),
        "--log".into(),
        log.into(),
        "--id".into(),
        WORKFLOW_ID.into(),
    ]
}

/// The run IDs the copies printed as acknowledged starts.
fn acknowledged_starts(lines: &[String]) -> Vec<String> {
    let suffix = format!(" of workflow {WORKFLOW_ID}");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("Started run ")?.strip_suffix(&suffix))
        .map(str::to_string)
        .collect()
}

/// Checks the example's log against the completed run's history: no
/// activity ran again once a later one had started; each one's attempt
/// numbers rise; the last logged attempt of each is the one history
/// completed; the only failures in history are attempts a kill cut off.
fn assert_log_matches_history(log: &[String], history: &[Event], context: &str) {
    let mut latest = 0;
    let mut attempts: Vec<Vec<u32>> = vec![Vec::new(); STEPS.len()];
    for line in log {
        let (name, attempt) = line
            .split_once(" attempt=")
            .unwrap_or_else(|| panic!("{context}: a malformed log line {line:?}"));
        let index = STEPS
            .iter()
            .position(|s| *s == name)
            .unwrap_or_else(|| panic!("{context}: an unknown activity in {line:?}"));
        let attempt: u32 = attempt.parse().expect("a numeric attempt");
        assert!(
            index >= latest,
            "{context}: {line:?} ran after {} had started: {log:#?}",
            STEPS[latest]
        );
        latest = index;
        assert!(
            attempts[index].last().is_none_or(|&last| attempt > last),
            "{context}: the attempts of {name} do not rise: {log:#?}"
        );
        attempts[index].push(attempt);
    }
    let mut names = std::collections::HashMap::new();
    let mut completed = vec![None; STEPS.len()];
    for event in history {
        match &event.kind {
            EventKind::ActivityScheduled {
                seq, activity_type, ..
            } => {
                names.insert(*seq, activity_type.clone());
            }
            EventKind::ActivityFailed { failure, .. } => assert_eq!(
                failure.error_type, "AttemptInterrupted",
                "{context}: only a kill fails these activities: {event:?}"
            ),
            EventKind::ActivityCompleted { seq, attempt, .. } => {
                let index = STEPS
                    .iter()
                    .position(|s| *s == names[seq])
                    .expect("a known activity");
                completed[index] = Some(*attempt);
            }
            _ => {}
        }
    }
    for (index, name) in STEPS.iter().enumerate() {
        let completed =
            completed[index].unwrap_or_else(|| panic!("{context}: {name} never completed"));
        assert_eq!(
            attempts[index].last().copied(),
            Some(completed),
            "{context}: the last logged attempt of {name} is not the completed one: {log:#?}"
        );
    }
}

/// Opens an engine of the test's own on `schema` (after the copies have
/// exited) and checks that the workflow ran exactly once: one run, completed,
/// the acknowledged start (if any) being that run, and the log agreeing with
/// its history.
async fn assert_finished_once(
    url: &str,
    schema: &str,
    log: &Path,
    printed: &[String],
    context: &str,
) {
    let engine = Engine::builder()
        .postgres_schema(schema)
        .postgres(url)
        .await
        .expect("the test opens the schema");
    let runs = engine
        .list(&ListFilter::new().with_workflow_id_prefix(WORKFLOW_ID))
        .await
        .expect("list the runs")
        .executions;
    assert_eq!(
        runs.len(),
        1,
        "{context}: one run of the workflow: {runs:?}"
    );
    assert_eq!(runs[0].status, WorkflowStatus::Completed, "{context}");
    let starts = acknowledged_starts(printed);
    assert!(
        starts.iter().all(|s| *s == runs[0].run_id.to_string()),
        "{context}: every acknowledged start is the run that completed: {starts:?}, {runs:?}"
    );
    assert!(
        starts.len() <= 1,
        "{context}: one start acknowledged at most: {printed:?}"
    );
    let history = engine.history(WORKFLOW_ID).await.expect("the history");
    assert_history_well_formed(&history);
    let fired = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TimerFired { .. }))
        .count();
    assert_eq!(fired, 1, "{context}: the durable timer fired once");
    assert_log_matches_history(&read_log(log), &history, context);
    engine.shutdown().await.expect("shut down");
}

/// Kill the example at random moments (while it opens the schema, starts
/// the run, runs an activity, waits on the timer), start it again each time;
/// the last copy finishes the workflow, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_example_on_postgres_killed_at_random_finishes_once() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let seed = seed_from_env(SEED_ENV);
    let kills: usize = std::env::var(KILLS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    eprintln!("{SEED_ENV}={seed}");
    let context = format!("{SEED_ENV}={seed}");
    let mut rng = SplitMix(seed);
    let schema = support::postgres::fresh_schema("order_kills");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let log = dir.path().join("order.log");
    let args = example_args(&url, &schema, &log);

    let mut printed = Vec::new();
    for _ in 0..kills {
        let mut copy = OrderProcess::spawn(&args);
        // The workflow needs about 2.2 s of work after the process has
        // opened the schema: kills land at every stage, the open included.
        tokio::time::sleep(Duration::from_millis(rng.between(0, 1800))).await;
        if copy.has_exited() {
            let (success, lines) = copy.wait(Duration::from_secs(1)).await;
            assert!(success, "{context}: a copy failed: {lines:?}");
            printed.extend(lines);
            break;
        }
        printed.extend(copy.kill());
        eprintln!("killed; log so far: {}", read_log(&log).join(", "));
    }
    let (success, lines) = OrderProcess::spawn(&args)
        .wait(Duration::from_secs(60))
        .await;
    assert!(success, "{context}: the last copy failed: {lines:?}");
    assert!(
        lines.iter().any(|l| l == RESULT_LINE),
        "{context}: {lines:?}"
    );
    printed.extend(lines);

    // Once more: the stored result, nothing run again.
    let log_before = read_log(&log);
    let (success, lines) = OrderProcess::spawn(&args)
        .wait(Duration::from_secs(60))
        .await;
    assert!(
        success,
        "{context}: the copy run after the end failed: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == RESULT_LINE),
        "{context}: {lines:?}"
    );
    assert!(
        acknowledged_starts(&lines).is_empty(),
        "{context}: a completed workflow is not started again: {lines:?}"
    );
    assert_eq!(read_log(&log), log_before, "{context}: nothing ran again");
    printed.extend(lines);

    assert_finished_once(&url, &schema, &log, &printed, &context).await;
}

/// Two copies started at once on the same database with the same workflow
/// ID finish it together: either may be killed at any moment (and started
/// again), and when one is killed for good the other finishes the
/// workflow; the workflow ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_of_the_order_example_finish_it_whichever_is_killed() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let seed = seed_from_env(SEED_ENV);
    let kills: usize = std::env::var(KILLS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    eprintln!("{SEED_ENV}={seed}");
    let context = format!("{SEED_ENV}={seed}");
    let mut rng = SplitMix(seed);
    let schema = support::postgres::fresh_schema("order_pair");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let log = dir.path().join("order.log");
    let args = example_args(&url, &schema, &log);

    let mut copies = [
        Some(OrderProcess::spawn(&args)),
        Some(OrderProcess::spawn(&args)),
    ];
    let mut printed = Vec::new();
    // Kill either at random and start it again; the last kill is for good.
    for round in 0..=kills {
        tokio::time::sleep(Duration::from_millis(rng.between(200, 1500))).await;
        let victim = (rng.next_u64() % 2) as usize;
        let copy = copies[victim].take().expect("a copy");
        printed.extend(copy.kill());
        eprintln!(
            "killed copy {victim}; log so far: {}",
            read_log(&log).join(", ")
        );
        if round < kills {
            copies[victim] = Some(OrderProcess::spawn(&args));
        }
    }
    let survivor = copies
        .into_iter()
        .flatten()
        .next()
        .expect("one copy runs on");
    // The survivor takes the killed copy's shards over once their lease
    // (5 s by default) runs out.
    let (success, lines) = survivor.wait(Duration::from_secs(90)).await;
    assert!(success, "{context}: the surviving copy failed: {lines:?}");
    assert!(
        lines.iter().any(|l| l == RESULT_LINE),
        "{context}: {lines:?}"
    );
    printed.extend(lines);
    assert_finished_once(&url, &schema, &log, &printed, &context).await;
}
