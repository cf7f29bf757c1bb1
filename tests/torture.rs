//! Promise: nothing acknowledged is ever lost, whatever moment a SIGKILL
//! hits, however often. Crash torture: a child process runs hundreds of
//! concurrent workflows of mixed shape on one file (activities in sequence
//! and in parallel, activities retried after failing on their first attempts,
//! activities that fail for good and are handled by the workflow, durable
//! timers, waits for signals) and is killed with SIGKILL at random moments
//! (mostly 20–400 ms after it opened the file, sometimes while it opens it),
//! then restarted, many times. One child in three keeps only a few runs in
//! memory, so runs also leave memory and are replayed from history between
//! kills. At the end the driver opens the file itself, lets every workflow
//! finish, and checks each one: it finished with the right result; every
//! acknowledged start and signal is in its history exactly once; no activity
//! ran again after a later step of its workflow had started; its history is
//! well formed; and the history agrees with the activities' own fsync'd log
//! (every attempt the log shows was recorded as started, every recorded
//! outcome is the last attempt the log shows, no attempt ran twice).
//!
//! Only one process may open the file, so the child makes the driver's calls
//! on its behalf: the driver writes the starts and signals not yet
//! acknowledged to a command file, and each child issues them again. A start
//! of an ID that exists is refused (`AlreadyStarted`, or `IdReuseRejected`
//! once it closed), which counts as done. The child prints `try …` before
//! each call and `ack …` once it returned `Ok`; a signal whose call a kill
//! cut off may be in history at most once per such call, so each signal
//! carries its own number and the check allows exactly the acknowledged
//! sends plus at most the cut-off ones.
//!
//! The driver re-runs this test binary as the child (`child_torture`, which
//! returns at once unless its environment variables are set). The seed of
//! the kill schedule and of the workflows is printed;
//! `STEADFAST_TORTURE_SEED=<seed>` replays it. The default run (CI) kills 40
//! times over 800 workflows; `STEADFAST_TORTURE_SECS=<N>` soaks instead: it
//! kills and restarts for N seconds, adding fresh workflows every cycle, and
//! prints `survived K kills, W workflows`.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EngineBuilder, Event, EventKind, ListFilter, RetryPolicy, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowDescription, WorkflowError, WorkflowIdReusePolicy, WorkflowOptions,
};
use support::{
    SplitMix, append_synced, assert_history_well_formed, child_report, read_log, seed_from_env,
    spawn_crash_child, temp_db,
};

/// Replays a run: the seed of the kill schedule and of the workflows.
const SEED_ENV: &str = "STEADFAST_TORTURE_SEED";
/// Soak mode: how many seconds to keep killing and restarting.
const SECS_ENV: &str = "STEADFAST_TORTURE_SECS";
/// The child: the file to open.
const DB_ENV: &str = "STEADFAST_TORTURE_DB";
/// The child: the log its activities append to.
const LOG_ENV: &str = "STEADFAST_TORTURE_LOG";
/// The child: the command file (JSON list of [`Task`]s).
const CMD_ENV: &str = "STEADFAST_TORTURE_CMD";
/// The child: the seed of its small random delays.
const CHILD_SEED_ENV: &str = "STEADFAST_TORTURE_CHILD_SEED";
/// The child: keep at most this many runs in memory (some children do, so
/// that runs leave memory and are replayed from history between kills).
const CHILD_CACHE_ENV: &str = "STEADFAST_TORTURE_CHILD_CACHE";

/// CI mode: kills, and fresh workflows per child.
const CI_KILLS: usize = 40;
const WORKFLOWS_PER_CYCLE: usize = 20;
/// A kill lands this long after the child reported that the engine opened.
const KILL_AFTER_MS: (u64, u64) = (20, 400);
/// One kill in this many lands at most this long after the child started,
/// before it reports the engine open: during redb's repair of the previous
/// kill, or the first commits after it.
const EARLY_KILL_ONE_IN: u64 = 8;
const EARLY_KILL_MS: u64 = 80;
/// After the last kill, every workflow finishes within this (in well under
/// a second, normally).
const FINISH_LIMIT: Duration = Duration::from_secs(60);

const MIXED: WorkflowDef<Vec<Op>, Vec<String>> = WorkflowDef::new("Mixed");
const WORK: ActivityDef<Work, String> = ActivityDef::new("work");
/// Signals carry their number, 1, 2, … per workflow.
const SEQ: SignalDef<u32> = SignalDef::new("seq");

/// One step of a workflow's plan; the workflow's input is its plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Op {
    /// One activity; its attempts up to `fail_until` fail (retryably).
    Activity { fail_until: u32, work_ms: u64 },
    /// Three activities at once (`futures::join!`), each with its own
    /// number of failing attempts.
    Parallel { fail_until: [u32; 3], work_ms: u64 },
    /// An activity that fails with a non-retryable error; the workflow
    /// handles the failure and goes on.
    Fatal,
    /// A durable timer.
    Timer { ms: u64 },
    /// Waits until the signals `first..first + count` have all arrived
    /// (duplicates of a signal count once).
    Signals { first: u32, count: u32 },
}

/// The activity's input: where in its workflow it runs, and how it fails.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Work {
    step: u32,
    branch: u32,
    fail_until: u32,
    fatal: bool,
    work_ms: u64,
}

/// What a workflow's result must be: one entry per step of its plan.
fn expected_result(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .enumerate()
        .map(|(step, op)| match op {
            Op::Activity { .. } => format!("{step}.0"),
            Op::Parallel { .. } => format!("{step}.0+{step}.1+{step}.2"),
            Op::Fatal => format!("handled Fatal: step {step} refuses"),
            Op::Timer { ms } => format!("slept {ms}"),
            Op::Signals { first, count } => format!("signals {first}..{}", first + count),
        })
        .collect()
}

/// The signal numbers a plan waits for: `1..=n`.
fn signal_count(ops: &[Op]) -> u32 {
    ops.iter()
        .map(|op| match op {
            Op::Signals { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

/// The activities a plan schedules, as (step, branch).
fn planned_activities(ops: &[Op]) -> BTreeSet<(u32, u32)> {
    let mut planned = BTreeSet::new();
    for (step, op) in ops.iter().enumerate() {
        let step = step as u32;
        match op {
            Op::Activity { .. } | Op::Fatal => {
                planned.insert((step, 0));
            }
            Op::Parallel { .. } => planned.extend((0..3).map(|b| (step, b))),
            Op::Timer { .. } | Op::Signals { .. } => {}
        }
    }
    planned
}

fn activity_options() -> ActivityOptions {
    // Start-to-close only: a schedule-to-close timeout would count the time
    // the process spends dead. Generous, for debug builds on a busy machine.
    ActivityOptions::start_to_close(Duration::from_secs(60)).with_retry_policy(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(10))
            .with_maximum_interval(Duration::from_millis(100)),
    )
}

/// Runs its plan step by step and returns one entry per step.
async fn mixed(ctx: WorkflowContext, ops: Vec<Op>) -> Result<Vec<String>, WorkflowError> {
    let options = activity_options();
    let mut received = BTreeSet::new();
    let mut out = Vec::with_capacity(ops.len());
    for (step, op) in ops.into_iter().enumerate() {
        let step = step as u32;
        let entry = match op {
            Op::Activity {
                fail_until,
                work_ms,
            } => {
                let work = Work {
                    step,
                    branch: 0,
                    fail_until,
                    fatal: false,
                    work_ms,
                };
                ctx.execute_activity(WORK, work, options.clone()).await?
            }
            Op::Parallel {
                fail_until,
                work_ms,
            } => {
                let call = |branch: u32| {
                    let work = Work {
                        step,
                        branch,
                        fail_until: fail_until[branch as usize],
                        fatal: false,
                        work_ms,
                    };
                    ctx.execute_activity(WORK, work, options.clone())
                };
                // Scheduled in this order when called, run at once.
                let (first, second, third) = (call(0), call(1), call(2));
                let (a, b, c) = futures::join!(first, second, third);
                format!("{}+{}+{}", a?, b?, c?)
            }
            Op::Fatal => {
                let work = Work {
                    step,
                    branch: 0,
                    fail_until: 0,
                    fatal: true,
                    work_ms: 0,
                };
                match ctx.execute_activity(WORK, work, options.clone()).await {
                    Err(ActivityFailure::Failed { failure, .. }) => {
                        format!("handled {}: {}", failure.error_type, failure.message)
                    }
                    Ok(value) => {
                        return Err(WorkflowError::new(format!(
                            "step {step}: the fatal activity returned {value:?}"
                        )));
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            Op::Timer { ms } => {
                ctx.sleep(Duration::from_millis(ms)).await?;
                format!("slept {ms}")
            }
            Op::Signals { first, count } => {
                let wanted = first..first + count;
                while !wanted.clone().all(|k| received.contains(&k)) {
                    received.insert(ctx.recv_signal(SEQ).await?);
                }
                format!("signals {first}..{}", first + count)
            }
        };
        out.push(entry);
    }
    Ok(out)
}

/// One attempt: log `WORKFLOW_ID STEP BRANCH ATTEMPT` durably first, work a
/// little, then fail or succeed as the input says.
async fn work(log: Arc<PathBuf>, ctx: ActivityContext, w: Work) -> Result<String, ActivityError> {
    let line = format!(
        "{} {} {} {}",
        ctx.workflow_id(),
        w.step,
        w.branch,
        ctx.attempt()
    );
    tokio::task::spawn_blocking(move || append_synced(&log, &line))
        .await
        .map_err(|e| ActivityError::retryable(e.to_string()))??;
    if w.work_ms > 0 {
        tokio::time::sleep(Duration::from_millis(w.work_ms)).await;
    }
    if w.fatal {
        let message = format!("step {} refuses", w.step);
        return Err(ActivityError::non_retryable(message).with_type("Fatal"));
    }
    if ctx.attempt() <= w.fail_until {
        let message = format!("attempt {} of step {} fails", ctx.attempt(), w.step);
        return Err(ActivityError::retryable(message).with_type("Flaky"));
    }
    Ok(format!("{}.{}", w.step, w.branch))
}

fn torture_engine(log: &Path) -> EngineBuilder {
    let log = Arc::new(log.to_path_buf());
    Engine::builder()
        .workflow(MIXED, mixed)
        .activity(WORK, move |ctx, w| work(log.clone(), ctx, w))
}

/// A child keeps this few runs in memory one time in three.
const SMALL_CACHE: usize = 4;

// ----- The calls the driver asks for, made by whoever has the file open -----

/// One workflow's calls not yet done, as written to the command file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Task {
    id: String,
    /// The plan to start it with, while no start is known to be done.
    start: Option<Vec<Op>>,
    /// The signals not yet acknowledged, in order.
    signals: Vec<u32>,
}

/// Where report lines go: the child's stdout, or a list in the driver.
type Report = Arc<dyn Fn(String) + Send + Sync>;

/// Makes a task's calls in order, reporting each (`try`, then `ack`,
/// `exists`, `closed` or `error`), then waits for the workflow's result and
/// reports it (`done ID RESULT_JSON`). Returns the result.
async fn drive(
    engine: Arc<Engine>,
    task: Task,
    report: Report,
    mut rng: SplitMix,
) -> Option<Vec<String>> {
    let id = task.id;
    if let Some(ops) = task.start {
        // Spread the starts a little, so kills find them at every stage.
        tokio::time::sleep(Duration::from_millis(rng.between(0, 20))).await;
        report(format!("try start {id}"));
        let options =
            WorkflowOptions::new().with_id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate);
        match engine
            .start_workflow(MIXED, id.as_str(), ops, options)
            .await
        {
            Ok(run) => report(format!("ack start {id} {}", run.run_id())),
            Err(ClientError::AlreadyStarted { .. } | ClientError::IdReuseRejected { .. }) => {
                report(format!("exists start {id}"))
            }
            Err(e) => {
                report(format!("error start {id}: {e}"));
                return None;
            }
        }
    }
    for k in task.signals {
        tokio::time::sleep(Duration::from_millis(rng.between(0, 50))).await;
        report(format!("try signal {id} {k}"));
        match engine.signal(&id, SEQ, k).await {
            Ok(()) => report(format!("ack signal {id} {k}")),
            // Only after every signal arrived, so this one was delivered by
            // a call a kill cut off.
            Err(ClientError::WorkflowClosed { .. }) => report(format!("closed signal {id} {k}")),
            Err(e) => {
                report(format!("error signal {id} {k}: {e}"));
                return None;
            }
        }
    }
    let run = match engine.get_workflow_handle(MIXED, id.as_str()).await {
        Ok(run) => run,
        Err(e) => {
            report(format!("error handle {id}: {e}"));
            return None;
        }
    };
    match run.result().await {
        Ok(result) => {
            let json = serde_json::to_string(&result).expect("a result encodes");
            report(format!("done {id} {json}"));
            Some(result)
        }
        Err(e) => {
            report(format!("error result {id}: {e}"));
            None
        }
    }
}

/// The child: opens the file, prints `opened`, makes the calls of the
/// command file for all its workflows at once and waits for them, then
/// idles until killed (at most 120 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_torture() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let log = PathBuf::from(std::env::var_os(LOG_ENV).expect("the log path is set"));
    let cmd = PathBuf::from(std::env::var_os(CMD_ENV).expect("the command file is set"));
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .expect("the child seed is set")
        .parse()
        .expect("the child seed is a number");
    let text = std::fs::read_to_string(&cmd).expect("read the command file");
    let tasks: Vec<Task> = serde_json::from_str(&text).expect("parse the command file");
    let mut builder = torture_engine(&log);
    if let Some(runs) = std::env::var_os(CHILD_CACHE_ENV) {
        let runs = runs.to_str().and_then(|r| r.parse().ok());
        builder = builder.max_cached_runs(runs.expect("the cache size is a number"));
    }
    let engine = builder.open(&db).await.expect("the child opens the file");
    let engine = Arc::new(engine);
    child_report("opened");
    let report: Report = Arc::new(|line| child_report(&line));
    let mut rng = SplitMix(seed);
    let running: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let rng = SplitMix(rng.next_u64());
            tokio::spawn(drive(engine.clone(), task, report.clone(), rng))
        })
        .collect();
    for task in running {
        let _ = task.await;
    }
    child_report("idle");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

// ----- The driver's ledger -----

/// What the driver knows of one signal of one workflow.
#[derive(Clone, Debug, Default)]
struct SignalLedger {
    /// Calls that returned `Ok`.
    acked: u32,
    /// Calls a kill cut off: each may or may not have been recorded.
    cut_off: u32,
    /// Acknowledged, or refused because the workflow had closed.
    done: bool,
}

/// What the driver knows of one workflow.
#[derive(Debug)]
struct Tracked {
    ops: Vec<Op>,
    /// A start was acknowledged or refused as existing.
    started: bool,
    /// The run of the acknowledged start.
    acked_run: Option<String>,
    /// Signals 1..=n.
    signals: BTreeMap<u32, SignalLedger>,
    /// A child reported its result.
    done_in_child: bool,
    /// Every report about it, each after the number of the process
    /// lifetime that made it (the driver's own is the last), for failures.
    reports: Vec<String>,
}

#[derive(Default)]
struct Ledger {
    workflows: BTreeMap<String, Tracked>,
    /// Report lines that show a failure; the test fails with them at the end.
    errors: Vec<String>,
    acked_starts: usize,
    acked_signals: usize,
    /// Process lifetimes whose reports were taken in.
    lifetimes: usize,
}

impl Ledger {
    /// Adds `n` workflows with random plans. Each gets a leading step of
    /// the shape its number picks, so every shape is always present.
    fn add_workflows(&mut self, rng: &mut SplitMix, n: usize) {
        for _ in 0..n {
            let index = self.workflows.len();
            let mut next_signal = 1;
            let mut op = |shape: u64, rng: &mut SplitMix| match shape {
                0 => Op::Activity {
                    fail_until: 0,
                    work_ms: rng.between(0, 30),
                },
                1 => Op::Parallel {
                    fail_until: [rng.between(0, 2) as u32, 0, rng.between(0, 1) as u32],
                    work_ms: rng.between(0, 30),
                },
                2 => Op::Activity {
                    fail_until: rng.between(1, 3) as u32,
                    work_ms: rng.between(0, 30),
                },
                3 => Op::Fatal,
                4 => Op::Timer {
                    ms: rng.between(10, 300),
                },
                _ => {
                    let count = rng.between(1, 3) as u32;
                    let first = next_signal;
                    next_signal += count;
                    Op::Signals { first, count }
                }
            };
            let mut ops = vec![op(index as u64 % 6, rng)];
            for _ in 0..rng.between(1, 4) {
                let shape = rng.between(0, 5);
                ops.push(op(shape, rng));
            }
            let signals = (1..=signal_count(&ops))
                .map(|k| (k, SignalLedger::default()))
                .collect();
            let tracked = Tracked {
                ops,
                started: false,
                acked_run: None,
                signals,
                done_in_child: false,
                reports: Vec::new(),
            };
            self.workflows.insert(format!("wf-{index}"), tracked);
        }
    }

    /// The calls not yet done, for every workflow whose result is unknown
    /// (for every workflow, with `all`).
    fn tasks(&self, all: bool) -> Vec<Task> {
        self.workflows
            .iter()
            .filter(|(_, t)| all || !t.done_in_child)
            .map(|(id, t)| Task {
                id: id.clone(),
                start: (!t.started).then(|| t.ops.clone()),
                signals: t
                    .signals
                    .iter()
                    .filter(|(_, s)| !s.done)
                    .map(|(k, _)| *k)
                    .collect(),
            })
            .collect()
    }

    /// Takes in the report lines of one process lifetime, in order.
    fn absorb(&mut self, lines: &[String]) {
        self.lifetimes += 1;
        let mut open_signals: HashSet<(String, u32)> = HashSet::new();
        for line in lines {
            let words: Vec<&str> = line.split(' ').collect();
            let named = match words.as_slice() {
                ["done", id, ..] => Some(*id),
                [_, _, id, ..] => Some(id.trim_end_matches(':')),
                _ => None,
            };
            if let Some(t) = named.and_then(|id| self.workflows.get_mut(id)) {
                t.reports.push(format!("{}: {line}", self.lifetimes));
            }
            match words.as_slice() {
                ["opened"] | ["idle"] | ["try", "start", _] => {}
                ["ack", "start", id, run] => {
                    self.acked_starts += 1;
                    let t = self.workflow(id);
                    t.started = true;
                    if let Some(earlier) = t.acked_run.replace(run.to_string()) {
                        let error = format!("{id}: a second acknowledged start ({earlier}, {run})");
                        self.errors.push(error);
                    }
                }
                ["exists", "start", id] => self.workflow(id).started = true,
                ["try", "signal", id, k] => {
                    open_signals.insert((id.to_string(), parse_number(k)));
                }
                [outcome @ ("ack" | "closed"), "signal", id, k] => {
                    let k = parse_number(k);
                    open_signals.remove(&(id.to_string(), k));
                    let acked = *outcome == "ack";
                    self.acked_signals += acked as usize;
                    let signal = self.signal(id, k);
                    signal.acked += acked as u32;
                    signal.done = true;
                }
                ["done", id, ..] => {
                    let json = &line[format!("done {id} ").len()..];
                    let result: Vec<String> =
                        serde_json::from_str(json).expect("a result line parses");
                    let t = self.workflow(id);
                    t.done_in_child = true;
                    if result != expected_result(&t.ops) {
                        let error = format!("{id}: a child saw the result {result:?}");
                        self.errors.push(error);
                    }
                }
                _ => self.errors.push(format!("unexpected report: {line}")),
            }
        }
        for (id, k) in open_signals {
            self.signal(&id, k).cut_off += 1;
        }
    }

    fn workflow(&mut self, id: &str) -> &mut Tracked {
        self.workflows
            .get_mut(id)
            .unwrap_or_else(|| panic!("a report names an unknown workflow {id:?}"))
    }

    fn signal(&mut self, id: &str, k: u32) -> &mut SignalLedger {
        self.workflow(id)
            .signals
            .get_mut(&k)
            .unwrap_or_else(|| panic!("a report names an unknown signal {k} of {id:?}"))
    }
}

fn parse_number(text: &str) -> u32 {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

/// Prints how to replay the run when the test fails.
struct ReplayHint(u64);

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("crash torture failed; replay with {SEED_ENV}={}", self.0);
        }
    }
}

/// Counts over all workflows, for the final report.
#[derive(Default, Debug)]
struct Totals {
    interrupted_attempts: usize,
    flaky_failures: usize,
    duplicate_signals: usize,
}

// ----- The driver -----

/// Where the driver and its children keep their files.
struct Files {
    /// Holds the folder of the others.
    db: support::TempDb,
    log: PathBuf,
    cmd: PathBuf,
}

/// How the kills went, for the final report.
#[derive(Default)]
struct KillStats {
    kills: usize,
    /// Kills that landed while the child started and opened the file.
    early: usize,
    /// Of those, kills of the first child, while it created the file.
    early_first: usize,
    /// From starting a child to its engine being open (recovery included).
    slowest_open: Duration,
    last_open: Duration,
}

/// Kill a child running hundreds of mixed workflows at random moments, many
/// times; then finish in this process and check every workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_loses_nothing_acknowledged() {
    let seed = seed_from_env(SEED_ENV);
    let soak: Option<Duration> = std::env::var(SECS_ENV).ok().map(|s| {
        let secs = s.parse();
        Duration::from_secs(secs.unwrap_or_else(|_| panic!("{SECS_ENV} must be seconds")))
    });
    eprintln!("crash torture: {SEED_ENV}={seed}");
    let _hint = ReplayHint(seed);
    let began = Instant::now();
    let mut rng = SplitMix(seed);
    let db = temp_db();
    let files = Files {
        log: db.dir.path().join("activities.log"),
        cmd: db.dir.path().join("commands.json"),
        db,
    };
    let mut ledger = Ledger::default();
    let mut stats = KillStats::default();
    let keep_going = |stats: &KillStats| match soak {
        None => stats.kills < CI_KILLS,
        Some(limit) => began.elapsed() < limit,
    };
    while keep_going(&stats) {
        ledger.add_workflows(&mut rng, WORKFLOWS_PER_CYCLE);
        kill_cycle(&files, &mut rng, &mut ledger, &mut stats).await;
        if soak.is_some() && stats.kills % 50 == 0 {
            eprintln!(
                "{:.1?}: {} kills, {} workflows, {} not yet seen finished; the last child \
                 took {:.1?} to open the file",
                began.elapsed(),
                stats.kills,
                ledger.workflows.len(),
                ledger.tasks(false).len(),
                stats.last_open,
            );
        }
    }
    let finished_in_children = ledger
        .workflows
        .values()
        .filter(|t| t.done_in_child)
        .count();

    let engine = torture_engine(&files.log)
        .open(&files.db.path)
        .await
        .expect("the file opens after the last kill");
    let engine = Arc::new(engine);
    let results = finish_in_process(&engine, &mut ledger, &mut rng).await;
    assert!(
        ledger.errors.is_empty(),
        "failures reported by the calls: {:#?}",
        ledger.errors
    );
    assert_one_run_each(&engine, &ledger).await;
    let log_lines = parse_log(&read_log(&files.log));
    let mut totals = Totals::default();
    for (id, tracked) in &ledger.workflows {
        let history = engine.history(id).await.expect("read a history");
        let description = engine.describe(id).await.expect("describe");
        let check = WorkflowCheck {
            id,
            tracked,
            description,
            result: results.get(id),
            history: &history,
            log: log_lines.get(id.as_str()).map_or(&[], Vec::as_slice),
        };
        check.run(&mut totals);
    }
    Arc::into_inner(engine)
        .expect("no call holds the engine any more")
        .shutdown()
        .await
        .expect("shut down");
    eprintln!(
        "crash torture ({SEED_ENV}={seed}): survived {} kills, {} workflows in {:.1?} ({} \
         kills while the child started and opened the file, {} of the first child creating \
         it; {finished_in_children} seen \
         finished in a child; {} acknowledged starts, {} acknowledged signals, {} duplicate \
         signals from cut-off calls, {} attempts cut off by a kill, {} planned attempt \
         failures; the slowest child took {:.1?} to open the file)",
        stats.kills,
        ledger.workflows.len(),
        began.elapsed(),
        stats.early,
        stats.early_first,
        ledger.acked_starts,
        ledger.acked_signals,
        totals.duplicate_signals,
        totals.interrupted_attempts,
        totals.flaky_failures,
        stats.slowest_open,
    );
}

/// Starts a child on the calls not yet done, kills it with SIGKILL at a
/// random moment, and takes in what it reported.
async fn kill_cycle(files: &Files, rng: &mut SplitMix, ledger: &mut Ledger, stats: &mut KillStats) {
    let tasks = serde_json::to_string(&ledger.tasks(false)).expect("tasks encode");
    std::fs::write(&files.cmd, tasks).expect("write the command file");
    let child_seed = rng.next_u64().to_string();
    let small_cache = SMALL_CACHE.to_string();
    let mut env = vec![
        (DB_ENV, files.db.path.as_os_str()),
        (LOG_ENV, files.log.as_os_str()),
        (CMD_ENV, files.cmd.as_os_str()),
        (CHILD_SEED_ENV, OsStr::new(&child_seed)),
    ];
    if rng.between(0, 2) == 0 {
        env.push((CHILD_CACHE_ENV, OsStr::new(&small_cache)));
    }
    let spawned = Instant::now();
    let mut child = spawn_crash_child("child_torture", &env);
    // Also the first child, which creates the file: a kill during its
    // creation must leave either no file or a complete one.
    if rng.between(1, EARLY_KILL_ONE_IN) == 1 {
        let delay = Duration::from_millis(rng.between(0, EARLY_KILL_MS));
        tokio::time::sleep(delay).await;
        stats.early += 1;
        stats.early_first += usize::from(stats.kills == 0);
    } else {
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "opened")
            .await;
        stats.last_open = spawned.elapsed();
        stats.slowest_open = stats.slowest_open.max(stats.last_open);
        let delay = Duration::from_millis(rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1));
        tokio::time::sleep(delay).await;
    }
    assert!(
        !child.has_exited(),
        "the child exited before it was killed (a panic?); it printed {:?}",
        child.lines()
    );
    let lines = child.kill();
    stats.kills += 1;
    ledger.absorb(&lines);
}

/// Makes the calls no child got done, in this process, and waits for every
/// workflow's result, at most [`FINISH_LIMIT`]. Returns the results there
/// are; the checks explain the missing ones.
async fn finish_in_process(
    engine: &Arc<Engine>,
    ledger: &mut Ledger,
    rng: &mut SplitMix,
) -> HashMap<String, Vec<String>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let report: Report = Arc::new(move |line| sink.lock().expect("lines lock").push(line));
    let results = Arc::new(Mutex::new(HashMap::new()));
    let mut running = tokio::task::JoinSet::new();
    for task in ledger.tasks(true) {
        let id = task.id.clone();
        let call = drive(
            engine.clone(),
            task,
            report.clone(),
            SplitMix(rng.next_u64()),
        );
        let results = results.clone();
        running.spawn(async move {
            if let Some(result) = call.await {
                results.lock().expect("results lock").insert(id, result);
            }
        });
    }
    let all_joined = async {
        while let Some(joined) = running.join_next().await {
            joined.expect("a call task panicked");
        }
    };
    if tokio::time::timeout(FINISH_LIMIT, all_joined)
        .await
        .is_err()
    {
        eprintln!("some workflows did not finish within {FINISH_LIMIT:?} after the last kill");
        running.abort_all();
    }
    ledger.absorb(&lines.lock().expect("lines lock"));
    let results = results.lock().expect("results lock");
    results.clone()
}

/// Each workflow ID has exactly one run: no start made a second one.
async fn assert_one_run_each(engine: &Engine, ledger: &Ledger) {
    let mut runs: HashMap<String, usize> = HashMap::new();
    let mut filter = ListFilter::new().with_page_size(500);
    loop {
        let page = engine.list(&filter).await.expect("list runs");
        for run in &page.executions {
            *runs.entry(run.workflow_id.clone()).or_default() += 1;
        }
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    let extra: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(extra.is_empty(), "IDs with several runs: {extra:?}");
    assert_eq!(
        runs.len(),
        ledger.workflows.len(),
        "every workflow has a run"
    );
}

/// One logged attempt: step, branch, attempt.
type Logged = (u32, u32, u32);

/// The activity log, per workflow ID, in order.
fn parse_log(lines: &[String]) -> HashMap<String, Vec<Logged>> {
    let mut by_workflow: HashMap<String, Vec<Logged>> = HashMap::new();
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        let [id, step, branch, attempt] = words.as_slice() else {
            panic!("a malformed log line {line:?}");
        };
        let entry = (
            parse_number(step),
            parse_number(branch),
            parse_number(attempt),
        );
        by_workflow.entry(id.to_string()).or_default().push(entry);
    }
    by_workflow
}

/// One activity as its history records it.
#[derive(Debug)]
struct Recorded {
    work: Work,
    /// Attempts recorded as started (the first by `ActivityScheduled`).
    started: Vec<u32>,
    /// The final outcome: completed (true) or failed for good, and its attempt.
    outcome: Option<(bool, u32)>,
    /// Attempts that failed by the activity's own error (not a kill).
    own_failures: Vec<u32>,
}

/// Everything known about one workflow at the end, to check.
struct WorkflowCheck<'a> {
    id: &'a str,
    tracked: &'a Tracked,
    description: WorkflowDescription,
    result: Option<&'a Vec<String>>,
    history: &'a [Event],
    log: &'a [Logged],
}

impl WorkflowCheck<'_> {
    fn run(&self, totals: &mut Totals) {
        let id = self.id;
        // First what holds for a run that is still running too, to explain
        // one that did not finish.
        assert!(self.tracked.started, "{id}: no start was ever done");
        if let Some(acked) = &self.tracked.acked_run {
            assert_eq!(
                *acked,
                self.description.run_id.to_string(),
                "{id}: the acknowledged start is not the run in the file"
            );
        }
        self.check_signals(totals);
        assert_eq!(
            self.result,
            Some(&expected_result(&self.tracked.ops)),
            "{id}: the wrong result (none: it did not finish); plan {:?}; reports (by process \
             lifetime) {:#?}; {:#?}; history {:#?}",
            self.tracked.ops,
            self.tracked.reports,
            self.description,
            self.history
        );
        assert_history_well_formed(self.history);
        let recorded = self.recorded_activities(totals);
        self.check_log(&recorded);
    }

    /// Each acknowledged signal is in history once per acknowledged call;
    /// a call a kill cut off added it at most once more.
    fn check_signals(&self, totals: &mut Totals) {
        let id = self.id;
        let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
        for event in self.history {
            if let EventKind::WorkflowSignaled { signal_name, input } = &event.kind {
                assert_eq!(signal_name, "seq", "{id}: an unknown signal");
                let k: u32 = input.decode().expect("a signal number");
                *counts.entry(k).or_default() += 1;
            }
        }
        for (k, ledger) in &self.tracked.signals {
            let count = counts.remove(k).unwrap_or(0);
            assert!(
                count >= 1 && count >= ledger.acked && count <= ledger.acked + ledger.cut_off,
                "{id}: signal {k} is in history {count} times, with {} acknowledged calls and \
                 {} cut off by a kill",
                ledger.acked,
                ledger.cut_off
            );
            totals.duplicate_signals += (count - 1) as usize;
        }
        assert!(counts.is_empty(), "{id}: signals no one sent: {counts:?}");
    }

    /// The activities of the history, by (step, branch); checks their
    /// failures are the planned ones and each was scheduled once, as planned.
    fn recorded_activities(&self, totals: &mut Totals) -> BTreeMap<(u32, u32), Recorded> {
        let id = self.id;
        let mut by_seq: HashMap<u32, Recorded> = HashMap::new();
        for event in self.history {
            match &event.kind {
                EventKind::ActivityScheduled { seq, input, .. } => {
                    let work: Work = input.decode().expect("an activity input decodes");
                    let recorded = Recorded {
                        work,
                        started: vec![1],
                        outcome: None,
                        own_failures: Vec::new(),
                    };
                    by_seq.insert(*seq, recorded);
                }
                EventKind::ActivityAttemptStarted { seq, attempt } => {
                    by_seq
                        .get_mut(seq)
                        .expect("a scheduled activity")
                        .started
                        .push(*attempt);
                }
                EventKind::ActivityCompleted { seq, attempt, .. } => {
                    let r = by_seq.get_mut(seq).expect("a scheduled activity");
                    assert!(
                        !r.work.fatal && *attempt > r.work.fail_until,
                        "{id}: {:?} completed on attempt {attempt}",
                        r.work
                    );
                    r.outcome = Some((true, *attempt));
                }
                EventKind::ActivityFailed {
                    seq,
                    attempt,
                    failure,
                    next_attempt_at,
                } => {
                    let r = by_seq.get_mut(seq).expect("a scheduled activity");
                    match failure.error_type.as_str() {
                        "AttemptInterrupted" => totals.interrupted_attempts += 1,
                        "Flaky" => {
                            assert!(
                                !r.work.fatal && *attempt <= r.work.fail_until,
                                "{id}: {:?} failed on attempt {attempt}",
                                r.work
                            );
                            totals.flaky_failures += 1;
                            r.own_failures.push(*attempt);
                        }
                        "Fatal" => {
                            assert!(r.work.fatal, "{id}: {:?} failed as fatal", r.work);
                            r.own_failures.push(*attempt);
                        }
                        other => panic!("{id}: an unexpected failure {other}: {event:?}"),
                    }
                    if next_attempt_at.is_none() {
                        r.outcome = Some((false, *attempt));
                    }
                }
                _ => {}
            }
        }
        let mut recorded = BTreeMap::new();
        for r in by_seq.into_values() {
            let key = (r.work.step, r.work.branch);
            assert!(
                r.outcome
                    .is_some_and(|(completed, _)| completed != r.work.fatal),
                "{id}: activity {key:?} ended with {:?}",
                r.outcome
            );
            let previous = recorded.insert(key, r);
            assert!(previous.is_none(), "{id}: activity {key:?} scheduled twice");
        }
        let keys: BTreeSet<(u32, u32)> = recorded.keys().copied().collect();
        assert_eq!(
            keys,
            planned_activities(&self.tracked.ops),
            "{id}: the activities scheduled are not the planned ones"
        );
        recorded
    }

    /// The log agrees with history: no step ran after a later one started;
    /// per activity, logged attempts rise, each was recorded as started, the
    /// last is the recorded outcome's, and every failure the activity
    /// reported itself is logged.
    fn check_log(&self, recorded: &BTreeMap<(u32, u32), Recorded>) {
        let id = self.id;
        let log = self.log;
        let mut latest_step = 0;
        let mut attempts: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
        for &(step, branch, attempt) in log {
            assert!(
                step >= latest_step,
                "{id}: step {step} ran (attempt {attempt}) after step {latest_step} had \
                 started; log {log:?}"
            );
            latest_step = step;
            let r = recorded.get(&(step, branch)).unwrap_or_else(|| {
                panic!("{id}: the log has an unscheduled activity {step}.{branch}")
            });
            assert!(
                r.started.contains(&attempt),
                "{id}: attempt {attempt} of {step}.{branch} ran without being recorded as \
                 started ({:?}); log {log:?}",
                r.started
            );
            let seen = attempts.entry((step, branch)).or_default();
            assert!(
                seen.last().is_none_or(|last| attempt > *last),
                "{id}: attempt {attempt} of {step}.{branch} ran again or out of order (after \
                 attempts {seen:?}); log {log:?}"
            );
            seen.push(attempt);
        }
        for (key, r) in recorded {
            let seen = attempts.get(key).map_or(&[][..], Vec::as_slice);
            let (_, last) = r.outcome.expect("checked: every activity ended");
            assert_eq!(
                seen.last(),
                Some(&last),
                "{id}: activity {key:?} ended on attempt {last} in history, but its log shows \
                 attempts {seen:?}"
            );
            for failed in &r.own_failures {
                assert!(
                    seen.contains(failed),
                    "{id}: activity {key:?} failed on attempt {failed} in history, but its log \
                     shows attempts {seen:?}"
                );
            }
        }
    }
}
