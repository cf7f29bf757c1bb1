//! Promise: several processes share one PostgreSQL schema. Real processes
//! (this test binary run again as members, see `member`) on one throwaway
//! cluster:
//! - both make progress on the workflows started from either (the shards
//!   split between them), and a signal sent from one to a run the other
//!   owns is delivered exactly once;
//! - one killed with SIGKILL: the other takes over its runs (at once: it
//!   sees the killed one's process gone; a process of another machine is
//!   taken over once its lease runs out, as `tests/postgres_lease.rs`
//!   checks with a process in a PID namespace of its own), and every
//!   workflow completes exactly once, no history with a gap or a
//!   duplicate event ID, no step run again once a later step began;
//! - one stopped with SIGSTOP past its lease while the other takes over,
//!   then resumed: nothing it finished after its lease ran out is written
//!   into any history.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, RetryPolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{
    CrashChild, append_synced, assert_history_well_formed, child_report, read_log,
    spawn_crash_child,
};

const STEP: ActivityDef<u32, String> = ActivityDef::new("step");
const GO: SignalDef<String> = SignalDef::new("go");
/// Runs its steps one after another; with `signal`, waits for `GO` after
/// the first.
const CHORES: WorkflowDef<Chores, Vec<String>> = WorkflowDef::new("Chores");

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Chores {
    steps: u32,
    signal: bool,
    step_ms: u64,
}

/// The lease of the member processes: short, to keep the test quick.
const LEASE: Duration = Duration::from_secs(2);

fn log_path() -> Option<PathBuf> {
    std::env::var_os("PGM_LOG").map(PathBuf::from)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A step: logs its start and end (with a token unique to the attempt,
/// which is also its result), sleeping in between on a thread that no
/// cancellation interrupts.
fn step(ctx: ActivityContext, index: u32) -> Result<String, ActivityError> {
    let pid = std::process::id();
    let token = format!("{pid}:{}:{index}:{}", ctx.workflow_id(), ctx.attempt());
    let log = log_path().expect("PGM_LOG");
    append_synced(
        &log,
        &format!(
            "start {} {index} {pid} {token} {}",
            ctx.workflow_id(),
            now_ms()
        ),
    )
    .expect("log");
    let ms: u64 = std::env::var("PGM_STEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    std::thread::sleep(Duration::from_millis(ms));
    append_synced(
        &log,
        &format!(
            "end {} {index} {pid} {token} {}",
            ctx.workflow_id(),
            now_ms()
        ),
    )
    .expect("log");
    Ok(token)
}

async fn chores(ctx: WorkflowContext, input: Chores) -> Result<Vec<String>, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(30))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(50)));
    let mut done = Vec::new();
    for i in 0..input.steps {
        done.push(ctx.execute_activity(STEP, i, options.clone()).await?);
        if i == 0 && input.signal {
            done.push(ctx.recv_signal(GO).await?);
        }
    }
    let _ = input.step_ms;
    Ok(done)
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(CHORES, chores)
        .blocking_activity(STEP, step)
        .postgres_schema(schema)
        .shard_lease(LEASE)
}

/// Retries a call while it is refused because its run's shard is moving
/// between processes (the caller is told to retry, nothing was done).
async fn retrying<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(ClientError::Storage(message)) if Instant::now() < deadline => {
                eprintln!("{what}: {message}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A member process: opens the schema, starts its workflows, signals
/// others' when told, then serves until killed or told to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member() {
    let Ok(schema) = std::env::var("PGM_SCHEMA") else {
        return;
    };
    let url = support::postgres::url().expect("the parent's cluster");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    child_report("open");
    let input = Chores {
        steps: std::env::var("PGM_STEPS").map_or(3, |v| v.parse().expect("steps")),
        signal: std::env::var_os("PGM_SIGNALLED").is_some(),
        step_ms: 0,
    };
    for id in std::env::var("PGM_START").unwrap_or_default().split(',') {
        if id.is_empty() {
            continue;
        }
        let input = input.clone();
        retrying("start", || {
            engine.start_workflow(CHORES, id, input.clone(), WorkflowOptions::default())
        })
        .await;
    }
    child_report("started");
    if let Ok(ids) = std::env::var("PGM_SIGNAL") {
        // Once the shards have split between the members.
        tokio::time::sleep(LEASE * 2).await;
        for id in ids.split(',') {
            retrying("signal", || engine.signal(id, GO, format!("go {id}"))).await;
        }
        child_report("signalled");
    }
    let stop = PathBuf::from(std::env::var("PGM_STOP").expect("PGM_STOP"));
    loop {
        if stop.exists() {
            engine.shutdown().await.expect("shutdown");
            child_report("stopped");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One scenario's cluster schema, log and member processes.
struct Scenario {
    url: String,
    schema: String,
    dir: tempfile::TempDir,
}

impl Scenario {
    fn new(label: &str) -> Option<Self> {
        let url = support::postgres::url()?;
        Some(Scenario {
            url,
            schema: support::postgres::fresh_schema(label),
            dir: tempfile::tempdir().expect("temp dir"),
        })
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("steps.log")
    }

    fn stop_file(&self) -> PathBuf {
        self.dir.path().join("stop")
    }

    fn spawn(&self, start: &[String], signal: &[String], vars: &[(&str, &str)]) -> CrashChild {
        let log = self.log();
        let stop = self.stop_file();
        let start = start.join(",");
        let signal = signal.join(",");
        let mut env: Vec<(&str, &OsStr)> = vec![
            (support::postgres::URL_VAR, OsStr::new(&self.url)),
            ("PGM_SCHEMA", OsStr::new(&self.schema)),
            ("PGM_LOG", log.as_os_str()),
            ("PGM_STOP", stop.as_os_str()),
            ("PGM_START", OsStr::new(&start)),
        ];
        if !signal.is_empty() {
            env.push(("PGM_SIGNAL", OsStr::new(&signal)));
        }
        for (key, value) in vars {
            env.push((key, OsStr::new(value)));
        }
        spawn_crash_child("member", &env)
    }

    /// A session of the test's own in the schema.
    async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .await
            .expect("search path");
        client
    }

    /// Waits until both members have run steps (the shards have split).
    async fn wait_both_ran(&self, a: &CrashChild, b: &CrashChild) {
        let pids = [a.id().to_string(), b.id().to_string()];
        support::eventually(Duration::from_secs(30), || {
            let lines = log_lines(&self.log());
            let pids = pids.clone();
            async move {
                pids.iter()
                    .all(|pid| lines.iter().any(|w| w[0] == "start" && &w[3] == pid))
                    .then_some(())
            }
        })
        .await;
    }

    /// Waits until `n` runs have completed.
    async fn wait_completed(&self, n: i64, limit: Duration) {
        let c = self.sql().await;
        let deadline = Instant::now() + limit;
        loop {
            let done: i64 = c
                .query_one("SELECT count(*) FROM runs WHERE status = 1", &[])
                .await
                .expect("count")
                .get(0);
            if done >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {done} of {n} workflows completed within {limit:?}; log: {:?}",
                read_log(&self.log())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The histories of `ids`, read by an engine of the test's own once
    /// the members are gone, each checked well formed and completed once.
    async fn histories(&self, ids: &[String]) -> BTreeMap<String, Vec<steadfast::Event>> {
        let engine = builder(&self.schema)
            .postgres(&self.url)
            .await
            .expect("open to read");
        let mut all = BTreeMap::new();
        for id in ids {
            let history = engine.history(id).await.expect("history");
            assert_history_well_formed(&history);
            let completed = history
                .iter()
                .filter(|e| matches!(e.kind, EventKind::WorkflowCompleted { .. }))
                .count();
            assert_eq!(completed, 1, "workflow {id} completed once: {history:#?}");
            let description = engine.describe(id).await.expect("describe");
            assert_eq!(description.status, WorkflowStatus::Completed);
            all.insert(id.clone(), history);
        }
        engine.shutdown().await.expect("shutdown");
        all
    }
}

/// The log's lines, split into words.
fn log_lines(path: &Path) -> Vec<Vec<String>> {
    read_log(path)
        .iter()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

/// No step of a run ran (started) again once a later step of it began.
fn assert_steps_in_order(path: &Path) {
    let mut latest: BTreeMap<String, u32> = BTreeMap::new();
    for words in log_lines(path) {
        if words[0] != "start" {
            continue;
        }
        let index: u32 = words[2].parse().expect("index");
        let seen = latest.entry(words[1].clone()).or_insert(index);
        assert!(
            index >= *seen,
            "workflow {} ran step {index} after step {seen} had begun",
            words[1]
        );
        *seen = index;
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The activity results (tokens) recorded in a history.
fn recorded_tokens(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActivityCompleted { result, .. } => result.decode::<String>().ok(),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_split_the_shards_and_signal_each_others_runs() {
    let Some(scenario) = Scenario::new("split") else {
        return;
    };
    let a_ids = ids("a", 12);
    let b_ids = ids("b", 12);
    let all: Vec<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    let vars = [("PGM_SIGNALLED", "1"), ("PGM_STEPS", "3")];
    // A signals every workflow, B's included, once the shards have split.
    let mut a = scenario.spawn(&a_ids, &all, &vars);
    a.wait_for_line(Duration::from_secs(30), |l| l == "open")
        .await;
    let mut b = scenario.spawn(&b_ids, &[], &vars);
    a.wait_for_line(Duration::from_secs(60), |l| l == "signalled")
        .await;
    scenario
        .wait_completed(all.len() as i64, Duration::from_secs(120))
        .await;
    std::fs::write(scenario.stop_file(), "").expect("stop");
    a.wait_for_line(Duration::from_secs(30), |l| l == "stopped")
        .await;
    b.wait_for_line(Duration::from_secs(30), |l| l == "stopped")
        .await;
    let (a_pid, b_pid) = (a.id().to_string(), b.id().to_string());
    // Both made progress: each ran steps.
    let ran: HashSet<String> = log_lines(&scenario.log())
        .into_iter()
        .filter(|w| w[0] == "end")
        .map(|w| w[3].clone())
        .collect();
    assert!(
        ran.contains(&a_pid) && ran.contains(&b_pid),
        "both members ran steps: {ran:?} (members {a_pid}, {b_pid})"
    );
    assert_steps_in_order(&scenario.log());
    let histories = scenario.histories(&all).await;
    let mut forwarded = 0;
    for (id, history) in &histories {
        let signals: Vec<&Option<String>> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::WorkflowSignaledWithOptions {
                    signal_name,
                    request_id,
                    ..
                } if signal_name == "go" => Some(request_id),
                EventKind::WorkflowSignaled { signal_name, .. } if signal_name == "go" => {
                    Some(&None)
                }
                _ => None,
            })
            .collect();
        assert_eq!(signals.len(), 1, "workflow {id} got its signal once");
        if signals[0]
            .as_deref()
            .is_some_and(|r| r.starts_with("steadfast-forwarded:"))
        {
            forwarded += 1;
        }
    }
    // Some went to the other process (the shards split), through its inbox.
    assert!(
        forwarded > 0,
        "no signal crossed to the other process: the shards did not split"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_runs_are_taken_over_and_complete_once() {
    let Some(scenario) = Scenario::new("kill") else {
        return;
    };
    let a_ids = ids("a", 12);
    let b_ids = ids("b", 12);
    let all: Vec<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    let vars = [("PGM_STEPS", "12"), ("PGM_STEP_MS", "300")];
    let mut a = scenario.spawn(&a_ids, &[], &vars);
    a.wait_for_line(Duration::from_secs(30), |l| l == "open")
        .await;
    let mut b = scenario.spawn(&b_ids, &[], &vars);
    b.wait_for_line(Duration::from_secs(30), |l| l == "started")
        .await;
    // Kill A once it has steps in flight, after the split.
    let a_pid = a.id().to_string();
    scenario.wait_both_ran(&a, &b).await;
    support::eventually(Duration::from_secs(30), || {
        let log = scenario.log();
        let a_pid = a_pid.clone();
        async move {
            let lines = log_lines(&log);
            let started: Vec<&Vec<String>> = lines
                .iter()
                .filter(|w| w[0] == "start" && w[3] == a_pid)
                .collect();
            let ended: HashSet<&String> = lines
                .iter()
                .filter(|w| w[0] == "end")
                .map(|w| &w[4])
                .collect();
            started.iter().any(|w| !ended.contains(&w[4])).then_some(())
        }
    })
    .await;
    a.kill();
    scenario
        .wait_completed(all.len() as i64, Duration::from_secs(120))
        .await;
    std::fs::write(scenario.stop_file(), "").expect("stop");
    b.wait_for_line(Duration::from_secs(30), |l| l == "stopped")
        .await;
    assert_steps_in_order(&scenario.log());
    let histories = scenario.histories(&all).await;
    let b_pid = b.id().to_string();
    // B finished some of the runs A had: their last steps ran in B.
    let taken_over = histories.values().any(|history| {
        let tokens = recorded_tokens(history);
        tokens.iter().any(|t| t.starts_with(&format!("{a_pid}:")))
            && tokens.iter().any(|t| t.starts_with(&format!("{b_pid}:")))
    });
    assert!(
        taken_over,
        "no run of the killed process was finished by the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_paused_past_its_lease_writes_nothing_once_resumed() {
    let Some(scenario) = Scenario::new("pause") else {
        return;
    };
    let a_ids = ids("a", 12);
    let b_ids = ids("b", 12);
    let all: Vec<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    // Steps long enough that some are in flight when A stops, and end
    // after it resumes.
    let vars = [("PGM_STEPS", "10"), ("PGM_STEP_MS", "600")];
    let mut a = scenario.spawn(&a_ids, &[], &vars);
    a.wait_for_line(Duration::from_secs(30), |l| l == "open")
        .await;
    let mut b = scenario.spawn(&b_ids, &[], &vars);
    b.wait_for_line(Duration::from_secs(30), |l| l == "started")
        .await;
    scenario.wait_both_ran(&a, &b).await;
    let a_pid = a.id().to_string();
    let in_flight = |log: &Path| {
        let lines = log_lines(log);
        let ended: HashSet<String> = lines
            .iter()
            .filter(|w| w[0] == "end")
            .map(|w| w[4].clone())
            .collect();
        lines
            .iter()
            .filter(|w| w[0] == "start" && w[3] == a_pid && !ended.contains(&w[4]))
            .map(|w| w[4].clone())
            .collect::<Vec<String>>()
    };
    support::eventually(Duration::from_secs(30), || {
        let found = in_flight(&scenario.log());
        async move { (!found.is_empty()).then_some(()) }
    })
    .await;
    // SAFETY: kill(2) has no memory effects; the child is not reaped.
    unsafe { libc::kill(a.id() as libc::pid_t, libc::SIGSTOP) };
    let stopped_at = now_ms();
    let paused = in_flight(&scenario.log());
    // B takes every shard over once A's lease ran out.
    let c = scenario.sql().await;
    support::eventually(Duration::from_secs(60), || {
        let c = &c;
        let a_pid: i32 = a_pid.parse().expect("pid");
        async move {
            let held: i64 = c
                .query_one(
                    "SELECT count(*) FROM shards s JOIN members m ON s.owner = m.member_id \
                     WHERE m.pid = $1 AND s.lease_until > now()",
                    &[&a_pid],
                )
                .await
                .expect("count")
                .get(0);
            let free: i64 = c
                .query_one(
                    "SELECT count(*) FROM shards WHERE owner IS NULL OR lease_until <= now()",
                    &[],
                )
                .await
                .expect("count")
                .get(0);
            (held == 0 && free == 0).then_some(())
        }
    })
    .await;
    // SAFETY: as above.
    unsafe { libc::kill(a.id() as libc::pid_t, libc::SIGCONT) };
    scenario
        .wait_completed(all.len() as i64, Duration::from_secs(120))
        .await;
    std::fs::write(scenario.stop_file(), "").expect("stop");
    a.wait_for_line(Duration::from_secs(30), |l| l == "stopped")
        .await;
    b.wait_for_line(Duration::from_secs(30), |l| l == "stopped")
        .await;
    // The attempts A had in flight when it stopped ended after it resumed
    // (their threads slept through the pause): none of them is recorded.
    let late: HashSet<String> = log_lines(&scenario.log())
        .into_iter()
        .filter(|w| w[0] == "end" && paused.contains(&w[4]))
        .filter(|w| w[5].parse::<u128>().expect("time") > stopped_at)
        .map(|w| w[4].clone())
        .collect();
    assert!(
        !late.is_empty(),
        "A had no attempt in flight across its pause"
    );
    assert_steps_in_order(&scenario.log());
    let histories = scenario.histories(&all).await;
    for (id, history) in &histories {
        for token in recorded_tokens(history) {
            assert!(
                !late.contains(&token),
                "workflow {id} recorded {token}, finished by the paused process after its lease ran out"
            );
        }
    }
}
