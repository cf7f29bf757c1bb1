//! Promise: processes sharing one PostgreSQL schema lose nothing
//! acknowledged and run nothing twice, whatever happens to one of them.
//! Three real processes (this test binary run again as members) share
//! 3,000 workflows: each starts a third of them and sends signals to a
//! third started by another process (activities, durable timers and waits
//! for signals). One member is killed with SIGKILL at random moments and
//! started again; another is stopped with SIGSTOP past its shard lease, so
//! that the others take its shards over, and continued; the third runs
//! throughout. At the end every acknowledged start completed exactly once
//! (one run per workflow ID, closed as completed with the right result),
//! every acknowledged signal is in its run's history exactly once, every
//! history is well formed, and no activity ran again once a later step of
//! its run had started (the activities log each attempt to a file the test
//! reads; the last logged attempt of each activity is the one its history
//! completed). The one line allowed out of that order is an older attempt
//! of the paused member: begun before its pause, its code reached its first
//! line only once the process was continued, after the new owner had given
//! that attempt up (activities run at least once, and an attempt cut off by
//! a lost lease may overlap its retry).
//!
//! A member started again issues all its starts and signals again: a start
//! of an ID that exists is refused as a duplicate (which counts as done),
//! and each signal carries a request ID, so that one delivered already is
//! not delivered again.
//!
//! `STEADFAST_PG_TORTURE_WORKFLOWS` sets the count (default 3,000),
//! `STEADFAST_PG_TORTURE_KILLS` the number of kills (default 6),
//! `STEADFAST_PG_TORTURE_SEED` replays a schedule.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, ListFilter, SignalDef, SignalOptions, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowIdReusePolicy, WorkflowOptions, WorkflowStatus,
};
use support::{
    CrashChild, SplitMix, assert_history_well_formed, child_report, read_log, seed_from_env,
    spawn_crash_child,
};

const WORKFLOWS_ENV: &str = "STEADFAST_PG_TORTURE_WORKFLOWS";
const KILLS_ENV: &str = "STEADFAST_PG_TORTURE_KILLS";
const SEED_ENV: &str = "STEADFAST_PG_TORTURE_SEED";
/// The member: the schema (its presence selects the member role).
const SCHEMA_ENV: &str = "PGT_SCHEMA";
/// The member: its index (0, 1, 2), the workflow count, the log, the stop
/// file.
const INDEX_ENV: &str = "PGT_INDEX";
const COUNT_ENV: &str = "PGT_WORKFLOWS";
const LOG_ENV: &str = "PGT_LOG";
const STOP_ENV: &str = "PGT_STOP";

const MEMBERS: usize = 3;
/// The members' shard lease: short, so that takeovers are quick.
const LEASE: Duration = Duration::from_secs(2);
/// The member killed at random moments, and the one stopped past its lease.
const KILLED: usize = 0;
const PAUSED: usize = 1;

const STEP: ActivityDef<(String, u32), String> = ActivityDef::new("step");
const GO: SignalDef<String> = SignalDef::new("go");
/// Step 0, a durable timer, a wait for `GO` (every other workflow), steps
/// 1 and 2; returns the steps' results and the signal's value.
const TORTURED: WorkflowDef<Shape, String> = WorkflowDef::new("Tortured");

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Shape {
    timer_ms: u64,
    signalled: bool,
}

fn shape(i: usize) -> Shape {
    Shape {
        timer_ms: 100 + (i as u64 * 7919) % 400,
        signalled: i.is_multiple_of(2),
    }
}

fn workflow_id(i: usize) -> String {
    format!("t-{i}")
}

/// The process that starts workflow `i`, and the one that signals it.
fn starter(i: usize) -> usize {
    i % MEMBERS
}
fn signaller(i: usize) -> usize {
    (i + 1) % MEMBERS
}

fn expected_result(i: usize) -> String {
    let id = workflow_id(i);
    let go = if shape(i).signalled {
        format!("go-{i}")
    } else {
        "-".into()
    };
    format!("{id}:0 {id}:1 {id}:2 {go}")
}

async fn tortured(ctx: WorkflowContext, shape: Shape) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(30));
    let id = ctx.workflow_id().to_string();
    let s0 = ctx
        .execute_activity(STEP, (id.clone(), 0), options.clone())
        .await?;
    ctx.sleep(Duration::from_millis(shape.timer_ms)).await?;
    let go = if shape.signalled {
        ctx.recv_signal(GO).await?
    } else {
        "-".into()
    };
    let s1 = ctx
        .execute_activity(STEP, (id.clone(), 1), options.clone())
        .await?;
    let s2 = ctx.execute_activity(STEP, (id, 2), options).await?;
    Ok(format!("{s0} {s1} {s2} {go}"))
}

/// One attempt: appends `ID STEP ATTEMPT PID` to the shared log (one
/// `write` with O_APPEND, so lines of the processes never interleave and
/// their order in the file is the order the attempts began; a SIGKILL does
/// not undo a write), then works 5–40 ms.
fn step(log: &Path, ctx: &ActivityContext, id: &str, step: u32) -> Result<String, ActivityError> {
    let line = format!("{id} {step} {} {}\n", ctx.attempt(), std::process::id());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    file.write_all(line.as_bytes())?;
    std::thread::sleep(Duration::from_millis(
        5 + (id.len() as u64 * 13 + u64::from(step) * 11) % 35,
    ));
    Ok(format!("{id}:{step}"))
}

fn builder(schema: &str, log: PathBuf) -> EngineBuilder {
    Engine::builder()
        .workflow(TORTURED, tortured)
        .blocking_activity(STEP, move |ctx: ActivityContext, (id, n): (String, u32)| {
            step(&log, &ctx, &id, n)
        })
        .postgres_schema(schema)
        .shard_lease(LEASE)
}

/// Makes a call until it is acknowledged: retried while its run's shard
/// moves between processes or the run is not started yet.
async fn until_acknowledged<F, Fut>(mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    loop {
        match call().await {
            Ok(()) => return,
            Err(ClientError::Storage(_) | ClientError::NotFound { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("a member's call failed: {e}"),
        }
    }
}

/// A member: opens the schema, starts its third of the workflows and
/// signals its third, reporting `ack start I` and `ack signal I` as each is
/// acknowledged, then reports the completed count every half second until
/// the stop file appears; then shuts down (handing its shards over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member() {
    let Ok(schema) = std::env::var(SCHEMA_ENV) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let index: usize = var(INDEX_ENV).parse().expect("an index");
    let count: usize = var(COUNT_ENV).parse().expect("a count");
    let stop = PathBuf::from(var(STOP_ENV));
    let url = support::postgres::url().expect("the parent's cluster");
    let engine = builder(&schema, PathBuf::from(var(LOG_ENV)))
        .postgres(&url)
        .await
        .expect("a member opens the schema");
    child_report("open");
    let engine = &engine;
    let reporter = async {
        loop {
            if let Ok(counts) = engine.count_workflows().await {
                child_report(&format!(
                    "completed {}",
                    counts.get(WorkflowStatus::Completed)
                ));
            }
            if stop.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let sender = async {
        let options =
            WorkflowOptions::new().with_id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate);
        let mine: Vec<usize> = (0..count).filter(|i| starter(*i) == index).collect();
        for chunk in mine.chunks(50) {
            futures::future::join_all(chunk.iter().map(|&i| {
                let options = options.clone();
                async move {
                    until_acknowledged(|| async {
                        match engine
                            .start_workflow(TORTURED, workflow_id(i), shape(i), options.clone())
                            .await
                        {
                            Ok(_)
                            | Err(
                                ClientError::AlreadyStarted { .. }
                                | ClientError::IdReuseRejected { .. },
                            ) => Ok(()),
                            Err(e) => Err(e),
                        }
                    })
                    .await;
                    child_report(&format!("ack start {i}"));
                }
            }))
            .await;
        }
        let to_signal: Vec<usize> = (0..count)
            .filter(|i| shape(*i).signalled && signaller(*i) == index)
            .collect();
        for chunk in to_signal.chunks(50) {
            futures::future::join_all(chunk.iter().map(|&i| async move {
                let options = SignalOptions::new().with_request_id(format!("sig-{i}"));
                let id = workflow_id(i);
                until_acknowledged(|| async {
                    match engine
                        .signal_with_options(&id, GO, format!("go-{i}"), options.clone())
                        .await
                    {
                        // Sent again by a member started again: the run
                        // closes only once it has had its signal.
                        Err(ClientError::WorkflowClosed { .. }) => Ok(()),
                        other => other,
                    }
                })
                .await;
                child_report(&format!("ack signal {i}"));
            }))
            .await;
        }
        child_report("sent");
    };
    futures::future::join(reporter, sender).await;
    engine.shutdown().await.expect("a member shuts down");
    child_report("stopped");
}

/// The members' processes and what they acknowledged, over every
/// incarnation.
struct Members {
    schema: String,
    url: String,
    log: PathBuf,
    stop: PathBuf,
    count: usize,
    running: Vec<Option<CrashChild>>,
    /// Lines of the incarnations that have exited.
    printed: Vec<String>,
}

impl Members {
    fn spawn(&mut self, index: usize) {
        let index_text = index.to_string();
        let count = self.count.to_string();
        let env: Vec<(&str, &OsStr)> = vec![
            (support::postgres::URL_VAR, OsStr::new(&self.url)),
            (SCHEMA_ENV, OsStr::new(&self.schema)),
            (INDEX_ENV, OsStr::new(&index_text)),
            (COUNT_ENV, OsStr::new(&count)),
            (LOG_ENV, self.log.as_os_str()),
            (STOP_ENV, self.stop.as_os_str()),
        ];
        self.running[index] = Some(spawn_crash_child("member", &env));
    }

    fn kill(&mut self, index: usize) {
        if let Some(child) = self.running[index].take() {
            self.printed.extend(child.kill());
        }
    }

    fn signal(&self, index: usize, signal: libc::c_int) {
        let child = self.running[index].as_ref().expect("the member runs");
        // SAFETY: kill(2) has no memory effects; the child is not reaped
        // while it is held here, so its PID cannot have been reused.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    }

    fn lines(&self) -> Vec<String> {
        let mut all = self.printed.clone();
        for child in self.running.iter().flatten() {
            all.extend(child.lines());
        }
        all
    }

    /// The starts and signals acknowledged so far, and the highest
    /// completed count reported.
    fn progress(&self) -> (HashSet<usize>, HashSet<usize>, usize) {
        let (mut starts, mut signals, mut completed) = (HashSet::new(), HashSet::new(), 0);
        for line in self.lines() {
            if let Some(i) = line.strip_prefix("ack start ") {
                starts.insert(i.parse().expect("an index"));
            } else if let Some(i) = line.strip_prefix("ack signal ") {
                signals.insert(i.parse().expect("an index"));
            } else if let Some(n) = line.strip_prefix("completed ") {
                completed = completed.max(n.parse().expect("a count"));
            }
        }
        (starts, signals, completed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_the_workflows_through_kills_and_pauses() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let count: usize = std::env::var(WORKFLOWS_ENV)
        .ok()
        .map_or(3_000, |v| v.parse().expect("a workflow count"));
    let kills: usize = std::env::var(KILLS_ENV)
        .ok()
        .map_or(6, |v| v.parse().expect("a kill count"));
    let seed = seed_from_env(SEED_ENV);
    eprintln!("{SEED_ENV}={seed} {WORKFLOWS_ENV}={count} {KILLS_ENV}={kills}");
    let context = format!("{SEED_ENV}={seed}");
    let mut rng = SplitMix(seed);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let schema = support::postgres::fresh_schema("torture");
    let mut members = Members {
        schema: schema.clone(),
        url: url.clone(),
        log: dir.path().join("attempts.log"),
        stop: dir.path().join("stop"),
        count,
        running: (0..MEMBERS).map(|_| None).collect(),
        printed: Vec::new(),
    };
    for index in 0..MEMBERS {
        members.spawn(index);
    }

    // Chaos until every workflow has completed: the killed member dies
    // every 1–4 s (up to `kills` times) and is started again at once; the
    // paused one is stopped for twice its lease, twice, once a fifth and
    // once three fifths of the workflows have completed.
    let begin = Instant::now();
    let limit = Duration::from_secs(60 + count as u64 / 20);
    let mut next_kill = Instant::now() + Duration::from_millis(rng.between(1000, 4000));
    let (mut killed, mut pauses) = (0, 0);
    let mut paused_until: Option<Instant> = None;
    loop {
        let (starts, signals, completed) = members.progress();
        let signalled = (0..count).filter(|i| shape(*i).signalled).count();
        if starts.len() == count && signals.len() == signalled && completed >= count {
            break;
        }
        assert!(
            begin.elapsed() < limit,
            "{context}: not done within {limit:?}: {} of {count} starts and {} of {signalled} \
             signals acknowledged, {completed} completed",
            starts.len(),
            signals.len()
        );
        for (index, member) in members.running.iter_mut().enumerate() {
            let member = member.as_mut().expect("a member runs");
            if member.has_exited() {
                let lines = member.lines();
                panic!(
                    "{context}: member {index} exited; the last it printed: {:?}",
                    &lines[lines.len().saturating_sub(20)..]
                );
            }
        }
        let now = Instant::now();
        if killed < kills && now >= next_kill {
            members.kill(KILLED);
            killed += 1;
            eprintln!(
                "{:?}: killed member {KILLED} ({completed} completed)",
                begin.elapsed()
            );
            members.spawn(KILLED);
            next_kill = now + Duration::from_millis(rng.between(1000, 4000));
        }
        if paused_until.is_none() && pauses < 2 && completed >= count * (1 + 2 * pauses) / 5 {
            members.signal(PAUSED, libc::SIGSTOP);
            paused_until = Some(now + LEASE * 2 + Duration::from_millis(rng.between(0, 1000)));
            pauses += 1;
            eprintln!(
                "{:?}: stopped member {PAUSED} ({completed} completed)",
                begin.elapsed()
            );
        }
        if paused_until.is_some_and(|until| now >= until) {
            members.signal(PAUSED, libc::SIGCONT);
            paused_until = None;
            eprintln!("{:?}: continued member {PAUSED}", begin.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if paused_until.is_some() {
        members.signal(PAUSED, libc::SIGCONT);
    }
    eprintln!(
        "{:?}: all {count} completed after {killed} kills and {pauses} pauses",
        begin.elapsed()
    );
    let paused_pid = members.running[PAUSED].as_ref().expect("a member").id();
    std::fs::write(&members.stop, b"stop").expect("the stop file");
    for index in 0..MEMBERS {
        let child = members.running[index].take().expect("a member");
        let (success, lines) = child.wait(Duration::from_secs(60)).await;
        assert!(
            success,
            "{context}: member {index} failed; the last it printed: {:?}",
            &lines[lines.len().saturating_sub(20)..]
        );
        members.printed.extend(lines);
    }
    let (starts, signals, _) = members.progress();
    let checks = Checks {
        count,
        starts,
        signals,
        paused_pid,
        context,
    };
    check(&schema, &url, &members.log, &checks).await;
}

/// What the members acknowledged, and who was paused.
struct Checks {
    count: usize,
    starts: HashSet<usize>,
    signals: HashSet<usize>,
    /// The process ID of the paused member (its only incarnation).
    paused_pid: u32,
    context: String,
}

/// Opens an engine of the test's own (the members are gone) and checks
/// every workflow's run, history and log.
async fn check(schema: &str, url: &str, log: &Path, checks: &Checks) {
    let Checks {
        count,
        starts,
        signals,
        paused_pid,
        context,
    } = checks;
    let (count, paused_pid) = (*count, *paused_pid);
    let engine = builder(schema, log.to_path_buf())
        .postgres(url)
        .await
        .expect("the test opens the schema");
    // One run per workflow ID.
    let mut runs: HashMap<String, usize> = HashMap::new();
    let mut filter = ListFilter::new()
        .with_workflow_type("Tortured")
        .with_page_size(1000);
    loop {
        let page = engine.list(&filter).await.expect("list");
        for run in &page.executions {
            assert_eq!(run.status, WorkflowStatus::Completed, "{context}: {run:?}");
            *runs.entry(run.workflow_id.clone()).or_default() += 1;
        }
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    assert_eq!(runs.len(), count, "{context}: a run for every workflow");
    assert!(
        runs.values().all(|n| *n == 1),
        "{context}: one run per workflow ID: {:?}",
        runs.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );

    // The log: by workflow, (step, attempt, process) in the order their
    // code began.
    let mut logged: BTreeMap<String, Vec<(u32, u32, u32)>> = BTreeMap::new();
    for line in read_log(log) {
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 4, "{context}: a log line {line:?}");
        logged.entry(words[0].to_string()).or_default().push((
            words[1].parse().expect("a step"),
            words[2].parse().expect("an attempt"),
            words[3].parse().expect("a process ID"),
        ));
    }

    // Each workflow: its result, signal, history and log (a few at once).
    let (engine_ref, logged) = (&engine, &logged);
    let check_one = |i: usize| async move {
        let engine = engine_ref;
        let id = workflow_id(i);
        assert!(
            starts.contains(&i),
            "{context}: the start of {id} was acknowledged"
        );
        let handle = engine
            .get_workflow_handle(TORTURED, id.clone())
            .await
            .expect("a handle");
        assert_eq!(
            handle.result().await.expect("a result"),
            expected_result(i),
            "{context}: {id}"
        );
        let history = engine.history(&id).await.expect("a history");
        assert_history_well_formed(&history);
        let signalled: Vec<Option<&String>> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::WorkflowSignaledWithOptions { request_id, .. } => {
                    Some(request_id.as_ref())
                }
                EventKind::WorkflowSignaled { .. } => Some(None),
                _ => None,
            })
            .collect();
        if shape(i).signalled {
            assert!(
                signals.contains(&i),
                "{context}: the signal to {id} was acknowledged"
            );
            assert_eq!(
                signalled,
                [Some(&format!("sig-{i}"))],
                "{context}: {id}'s signal is in its history exactly once"
            );
        } else {
            assert!(signalled.is_empty(), "{context}: {id} got no signal");
        }
        // The completed attempt of each step, by the step's input.
        let mut steps = HashMap::new();
        let mut completed = BTreeMap::new();
        for event in &history {
            match &event.kind {
                EventKind::ActivityScheduled { seq, input, .. } => {
                    let (_, n): (String, u32) = input.decode().expect("a step's input");
                    steps.insert(*seq, n);
                }
                EventKind::ActivityCompleted { seq, attempt, .. } => {
                    completed.insert(steps[seq], *attempt);
                }
                _ => {}
            }
        }
        let lines = logged.get(&id).map(Vec::as_slice).unwrap_or_default();
        let mut latest = 0;
        let mut last_attempt: BTreeMap<u32, u32> = BTreeMap::new();
        for &(n, attempt, pid) in lines {
            let in_order =
                n >= latest && last_attempt.get(&n).is_none_or(|&before| attempt > before);
            // The one exception: an attempt the paused member had begun
            // (recorded as started) before it was stopped, whose code got
            // to its first line only once the process was continued, after
            // the shard's new owner had given that attempt up and gone on.
            // It is an older attempt than the one history completed.
            let stale = pid == paused_pid && completed.get(&n).is_some_and(|&c| attempt < c);
            assert!(
                in_order || stale,
                "{context}: {id} step {n} attempt {attempt} ran after a later attempt or step \
                 had started: {lines:?}"
            );
            if in_order {
                latest = n;
                last_attempt.insert(n, attempt);
            }
        }
        assert_eq!(
            last_attempt, completed,
            "{context}: {id}: the last attempt of each step to begin is the one its history \
             completed: {lines:?}"
        );
    };
    futures::StreamExt::for_each_concurrent(futures::stream::iter(0..count), 16, check_one).await;
    engine.shutdown().await.expect("shut down");
}
