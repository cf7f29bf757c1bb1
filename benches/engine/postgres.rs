//! The PostgreSQL workloads: the same shapes as the redb ones, with the
//! engine on a PostgreSQL database, each compared with the floor measured
//! in the same run on the same server.
//!
//! - `pg_floor`: one small commit from one connection (an autocommit
//!   `INSERT` of one ~200-byte row), the baseline of the others.
//! - `pg_sequential`: one workflow of 100 no-op activities, time per step.
//! - `pg_fanout`: 1,000 workflows × 3 no-op activities, all started at once.
//! - `pg_timers`: 1,000 workflows sleep 1 s, their timers due within one
//!   second; lateness of the step after the timer.
//! - `pg_fanout_two`: 10,000 workflows × 3 no-op activities across two
//!   processes sharing the schema, half started by each (a `pg_fanout`
//!   line with `processes: 2`).
//! - `pg_takeover`: two processes share a schema, one is killed with
//!   SIGKILL: the time from the kill to each of its runs' first step
//!   resumed in the other, and the runs left stranded (`"owner":
//!   "sigkill"`; on one machine the survivor sees the process gone and
//!   need not wait for its lease).
//! - `pg_takeover_stopped`: the same with the owner stopped by SIGSTOP, so
//!   that its shards are taken over only once its lease runs out (the
//!   path of a paused process, or of one on another machine): a
//!   `pg_takeover` line with `"owner": "sigstop"`.
//!
//! The server: `STEADFAST_BENCH_PG_URL` when set (a schema of the bench's
//! own is created and dropped in it), otherwise a throwaway cluster of the
//! workload's own under the bench folder (on the project's disk), started
//! with the installed server binaries (`STEADFAST_PG_BIN`, or Debian's) as
//! the `postgres` user when run as root, with PostgreSQL's durable
//! defaults: `fsync` and `synchronous_commit` on. Without PostgreSQL the
//! workloads say so on stderr and print nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, EngineBuilder, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult, NOOP};

#[path = "../../tests/support/postgres.rs"]
mod cluster;

/// Names a server to use instead of a throwaway cluster.
pub const URL_ENV: &str = "STEADFAST_BENCH_PG_URL";

/// How long the floor is measured.
const FLOOR_FOR: Duration = Duration::from_secs(2);

/// A server for one workload and a fresh schema in it; the cluster (if
/// the bench started it) stops when this drops.
pub struct Server {
    pub url: String,
    pub schema: String,
    _cluster: Option<cluster::Cluster>,
}

impl Server {
    /// The server of [`URL_ENV`], or a cluster of the workload's own;
    /// `None` (said on stderr) when PostgreSQL is not installed.
    pub fn start(workload: &str) -> Result<Option<Server>, Box<dyn std::error::Error>> {
        let schema = format!("bench_{workload}_{}", std::process::id());
        if let Ok(url) = std::env::var(URL_ENV) {
            return Ok(Some(Server {
                url,
                schema,
                _cluster: None,
            }));
        }
        let root = common::bench_root();
        std::fs::create_dir_all(&root)?;
        match cluster::Cluster::start_in(&root, true) {
            Some(cluster) => Ok(Some(Server {
                url: cluster.url(),
                schema,
                _cluster: Some(cluster),
            })),
            None => {
                eprintln!("# {workload}: PostgreSQL is not installed (no initdb); left out");
                Ok(None)
            }
        }
    }

    /// An engine builder on this server's schema.
    pub fn builder(&self) -> EngineBuilder {
        Engine::builder().postgres_schema(&self.schema)
    }

    /// A plain session of the bench's own.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Drops the bench's schema (on a server the bench did not start).
    async fn drop_schema(&self) -> BenchResult {
        if self._cluster.is_none() {
            let client = self.connect().await?;
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await?;
        }
        Ok(())
    }
}

/// Runs `body` on a runtime with a server for `workload`, then drops the
/// schema; does nothing without PostgreSQL.
fn with_server<F, Fut>(workload: &str, body: F) -> BenchResult
where
    F: FnOnce(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = BenchResult>,
{
    let Some(server) = Server::start(workload)? else {
        return Ok(());
    };
    let server = Arc::new(server);
    common::runtime()?.block_on(async {
        let outcome = body(server.clone()).await;
        server.drop_schema().await?;
        outcome
    })
}

/// Commits per second of one small row each, from one connection, and the
/// median commit time in ms.
pub async fn measure_floor(server: &Server) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let client = server.connect().await?;
    let table = format!("{}.floor", server.schema);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; DROP TABLE IF EXISTS {table}; \
             CREATE TABLE {table} (k bigint PRIMARY KEY, v bytea NOT NULL)",
            schema = server.schema
        ))
        .await?;
    let insert = client
        .prepare(&format!("INSERT INTO {table} (k, v) VALUES ($1, $2)"))
        .await?;
    let record = vec![0x5au8; 200];
    for k in 0..10i64 {
        client.execute(&insert, &[&k, &record]).await?;
    }
    let start = Instant::now();
    let mut latencies_ms = Vec::new();
    while start.elapsed() < FLOOR_FOR {
        let one = Instant::now();
        let k = 10 + latencies_ms.len() as i64;
        client.execute(&insert, &[&k, &record]).await?;
        latencies_ms.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let rate = latencies_ms.len() as f64 / start.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    let p50 = common::percentile(&latencies_ms, 50.0);
    eprintln!(
        "# pg floor: {} commits, latency p50 {p50:.3} ms, p99 {:.3} ms",
        latencies_ms.len(),
        common::percentile(&latencies_ms, 99.0),
    );
    client.batch_execute(&format!("DROP TABLE {table}")).await?;
    Ok((rate, p50))
}

pub fn floor() -> BenchResult {
    with_server("pg_floor", |server| async move {
        let (rate, p50) = measure_floor(&server).await?;
        common::emit(&[
            ("workload", json!("pg_floor")),
            ("commits_per_s", json!(rate.round() as u64)),
            ("ms_per_commit", json!(common::round(1000.0 / rate, 3))),
            ("p50_ms", json!(common::round(p50, 3))),
        ]);
        Ok(())
    })
}

pub fn sequential() -> BenchResult {
    with_server("pg_sequential", |server| async move {
        let (rate, _) = measure_floor(&server).await?;
        let floor_ms = 1000.0 / rate;
        let engine = crate::sequential::register(server.builder())
            .postgres(&server.url)
            .await?;
        let total = crate::sequential::measure(&engine, "").await?;
        engine.shutdown().await?;
        let steps = crate::sequential::STEPS;
        let ms_per_step = total.as_secs_f64() * 1000.0 / f64::from(steps);
        common::emit(&[
            ("workload", json!("pg_sequential")),
            ("steps", json!(steps)),
            ("ms_per_step", json!(common::round(ms_per_step, 3))),
            ("floor_ms", json!(common::round(floor_ms, 3))),
            (
                "ratio_to_floor",
                json!(common::round(ms_per_step / floor_ms, 2)),
            ),
        ]);
        Ok(())
    })
}

/// 3 no-op activities one after another.
pub const FANOUT: WorkflowDef<u32, u32> = WorkflowDef::new("PgFanout");

pub async fn fanout_workflow(ctx: WorkflowContext, activities: u32) -> Result<u32, WorkflowError> {
    for step in 0..activities {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
    }
    Ok(activities)
}

pub const FANOUT_ACTIVITIES: u32 = 3;

/// How many times a start that answers `ClientError::Storage` (its
/// commit failed, nothing of it written) is made again.
const START_RETRIES: u32 = 20;

/// Starts `id`, again while it answers `Storage`, as a client should.
async fn start_retrying(
    engine: &Engine,
    id: String,
) -> Result<steadfast::WorkflowHandle<u32>, steadfast::ClientError> {
    let mut tries = 0;
    loop {
        match engine
            .start_workflow(
                FANOUT,
                id.clone(),
                FANOUT_ACTIVITIES,
                WorkflowOptions::new(),
            )
            .await
        {
            Err(steadfast::ClientError::Storage(message)) if tries < START_RETRIES => {
                tries += 1;
                eprintln!("# start of {id} answered Storage ({message}); starting it again");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

/// Starts `ids` at once on `engine` and waits for every result.
pub async fn run_fanout(
    engine: &Engine,
    ids: impl Iterator<Item = String>,
) -> Result<(), steadfast::Error> {
    let starts = ids.map(|id| start_retrying(engine, id));
    let handles = join_all(starts)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    for result in join_all(handles.iter().map(|h| h.result())).await {
        result?;
    }
    Ok(())
}

pub fn fanout() -> BenchResult {
    with_server("pg_fanout", |server| async move {
        let (rate, _) = measure_floor(&server).await?;
        let workflows = 1_000u32;
        let engine = server
            .builder()
            .workflow(FANOUT, fanout_workflow)
            .activity(NOOP, common::noop)
            .postgres(&server.url)
            .await?;
        let start = Instant::now();
        run_fanout(&engine, (0..workflows).map(|i| format!("fanout-{i}"))).await?;
        let secs = start.elapsed().as_secs_f64();
        engine.shutdown().await?;
        let completions = f64::from(workflows * FANOUT_ACTIVITIES) / secs;
        common::emit(&[
            ("workload", json!("pg_fanout")),
            ("workflows", json!(workflows)),
            ("processes", json!(1)),
            ("completions_per_s", json!(completions.round() as u64)),
            (
                "workflows_per_s",
                json!((f64::from(workflows) / secs).round() as u64),
            ),
            ("floor_commits_per_s", json!(rate.round() as u64)),
            (
                "completions_per_floor_commit",
                json!(common::round(completions / rate, 2)),
            ),
        ]);
        Ok(())
    })
}

const SLEEPER: WorkflowDef<(), ()> = WorkflowDef::new("PgSleeper");
const RECORD_WAKE: ActivityDef<u64, ()> = ActivityDef::new("record_wake");
const SLEEP: Duration = Duration::from_secs(1);

async fn sleeper(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    let fire_at = ctx.now() + SLEEP;
    ctx.sleep_until(fire_at).await?;
    ctx.execute_activity(
        RECORD_WAKE,
        nanos_since_epoch(fire_at),
        common::noop_options(),
    )
    .await?;
    Ok(())
}

fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn timers() -> BenchResult {
    with_server("pg_timers", |server| async move {
        let (rate, _) = measure_floor(&server).await?;
        let timers = 1_000u32;
        let lateness_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
        let sink = lateness_ms.clone();
        let record_wake = move |_ctx: ActivityContext, due_ns: u64| {
            let late_ms = (nanos_since_epoch(SystemTime::now()) as f64 - due_ns as f64) / 1e6;
            let sink = sink.clone();
            async move {
                sink.lock()
                    .map_err(|_| ActivityError::non_retryable("poisoned"))?
                    .push(late_ms);
                Ok(())
            }
        };
        let engine = server
            .builder()
            .workflow(SLEEPER, sleeper)
            .activity(RECORD_WAKE, record_wake)
            .postgres(&server.url)
            .await?;
        // Started evenly over one second, so the timers fall due within
        // the same second (as the redb `timers` row's p50/p99).
        let begin = tokio::time::Instant::now();
        let runs = (0..timers).map(|i| {
            let engine = &engine;
            async move {
                tokio::time::sleep_until(begin + SLEEP * i / timers).await;
                engine
                    .start_workflow(SLEEPER, format!("timer-{i}"), (), WorkflowOptions::new())
                    .await?
                    .result()
                    .await?;
                Ok::<_, steadfast::Error>(())
            }
        });
        for run in join_all(runs).await {
            run?;
        }
        engine.shutdown().await?;
        let mut late = std::mem::take(&mut *lateness_ms.lock().map_err(|_| "poisoned")?);
        if late.len() != timers as usize {
            return Err(format!("{} of {timers} wake-ups were recorded", late.len()).into());
        }
        late.sort_by(f64::total_cmp);
        common::emit(&[
            ("workload", json!("pg_timers")),
            ("timers", json!(timers)),
            (
                "p50_ms",
                json!(common::round(common::percentile(&late, 50.0), 3)),
            ),
            (
                "p99_ms",
                json!(common::round(common::percentile(&late, 99.0), 3)),
            ),
            ("floor_ms", json!(common::round(1000.0 / rate, 3))),
        ]);
        Ok(())
    })
}

/// The lease of the two-process workloads' members.
const MEMBER_LEASE_ENV: &str = "STEADFAST_BENCH_PG_LEASE_MS";

/// The child role of the two-process workloads (`pg_member`): opens the
/// schema with the lease it is given, reports `open`, waits for the go
/// file, then in mode `fanout` starts its workflows and awaits them
/// (reporting `done`), or in mode `steps` starts slow-step workflows (if
/// given any) and reports each step `step WORKFLOW N` as it begins; then
/// serves until killed or the stop file appears.
pub fn member() -> BenchResult {
    let url = common::child_var("STEADFAST_BENCH_PG_MEMBER_URL")?;
    let schema = common::child_var("STEADFAST_BENCH_PG_MEMBER_SCHEMA")?;
    let mode = common::child_var("STEADFAST_BENCH_PG_MEMBER_MODE")?;
    let ids: Vec<String> = common::child_var("STEADFAST_BENCH_PG_MEMBER_IDS")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let go = std::path::PathBuf::from(common::child_var("STEADFAST_BENCH_PG_MEMBER_GO")?);
    let lease = Duration::from_millis(common::child_var(MEMBER_LEASE_ENV)?.parse()?);
    common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .postgres_schema(&schema)
            .shard_lease(lease)
            .workflow(FANOUT, fanout_workflow)
            .activity(NOOP, common::noop)
            .workflow(STEPS_WORKFLOW, steps_workflow)
            .activity(SLOW_STEP, slow_step)
            .postgres(&url)
            .await?;
        println!("open");
        while !go.exists() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match mode.as_str() {
            "fanout" => {
                run_fanout(&engine, ids.into_iter()).await?;
                println!("done");
            }
            _ => {
                for id in ids {
                    engine
                        .start_workflow(STEPS_WORKFLOW, id, TAKEOVER_STEPS, WorkflowOptions::new())
                        .await?;
                }
                println!("started");
            }
        }
        let stop = go.with_extension("stop");
        while !stop.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    Ok(())
}

const STEPS_WORKFLOW: WorkflowDef<u32, u32> = WorkflowDef::new("PgTakeoverSteps");
const SLOW_STEP: ActivityDef<u32, ()> = ActivityDef::new("slow_step");
const TAKEOVER_STEPS: u32 = 40;
const TAKEOVER_WORKFLOWS: usize = 200;
const STEP_TIME: Duration = Duration::from_millis(50);

async fn steps_workflow(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    for step in 1..=steps {
        ctx.execute_activity(SLOW_STEP, step, common::noop_options())
            .await?;
    }
    Ok(steps)
}

async fn slow_step(ctx: ActivityContext, step: u32) -> Result<(), ActivityError> {
    println!("step {} {step}", ctx.workflow_id());
    tokio::time::sleep(STEP_TIME).await;
    Ok(())
}

/// Two members on one schema (and a go file for them, in a folder removed
/// when this drops).
struct Pair {
    _dir: tempfile::TempDir,
    go: std::path::PathBuf,
    children: Vec<(std::process::Child, common::ChildLines)>,
}

impl Pair {
    /// Starts two members, member `i` with `ids[i]`, and waits until both
    /// are open.
    fn start(
        server: &Server,
        mode: &str,
        ids: [Vec<String>; 2],
        lease: Duration,
    ) -> Result<Pair, Box<dyn std::error::Error>> {
        let dir = common::temp_dir()?;
        let go = dir.path().join("go");
        let lease_ms = lease.as_millis().to_string();
        let mut children = Vec::new();
        for ids in ids {
            let ids = ids.join(",");
            let (child, lines) = common::spawn_child(
                "pg_member",
                &[
                    ("STEADFAST_BENCH_PG_MEMBER_URL", server.url.as_ref()),
                    ("STEADFAST_BENCH_PG_MEMBER_SCHEMA", server.schema.as_ref()),
                    ("STEADFAST_BENCH_PG_MEMBER_MODE", mode.as_ref()),
                    ("STEADFAST_BENCH_PG_MEMBER_IDS", ids.as_ref()),
                    ("STEADFAST_BENCH_PG_MEMBER_GO", go.as_os_str()),
                    (MEMBER_LEASE_ENV, lease_ms.as_ref()),
                ],
            )?;
            children.push((child, lines));
        }
        let mut pair = Pair {
            _dir: dir,
            go,
            children,
        };
        for i in 0..2 {
            pair.wait_for(i, |line| line == "open")?;
        }
        Ok(pair)
    }

    /// Waits for a line of member `i` matching `want`; returns when it
    /// arrived.
    fn wait_for(
        &mut self,
        i: usize,
        mut want: impl FnMut(&str) -> bool,
    ) -> Result<Instant, Box<dyn std::error::Error>> {
        let (child, lines) = &mut self.children[i];
        loop {
            match lines.recv_timeout(Duration::from_secs(120)) {
                Ok((at, line)) if want(&line) => return Ok(at),
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    return Err(format!("member {i} stopped reporting ({e}; {status})").into());
                }
            }
        }
    }

    fn go(&self) -> std::io::Result<()> {
        std::fs::write(&self.go, b"go")
    }

    /// Tells the members to shut down and waits for them.
    fn stop(mut self) -> BenchResult {
        std::fs::write(self.go.with_extension("stop"), b"stop")?;
        for (child, _) in &mut self.children {
            if child.try_wait()?.is_none() {
                child.wait()?;
            }
        }
        Ok(())
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `pg_fanout_two`: 10,000 workflows × 3 no-op activities, half started by
/// each of two processes sharing the schema (each run advanced by the
/// owner of its shard, wherever it was started); from the go to the last
/// result.
pub fn fanout_two() -> BenchResult {
    with_server("pg_fanout_two", |server| async move {
        let (rate, _) = measure_floor(&server).await?;
        let workflows = 10_000usize;
        let ids = [0, 1].map(|member| {
            (0..workflows / 2)
                .map(|i| format!("fanout-{member}-{i}"))
                .collect()
        });
        let lease = Duration::from_secs(2);
        let mut pair = Pair::start(&server, "fanout", ids, lease)?;
        // Once both members hold their share of the shards (a member
        // joining takes its share within a lease round or two).
        tokio::time::sleep(lease * 2).await;
        let start = Instant::now();
        pair.go()?;
        let mut last = start;
        for i in 0..2 {
            last = last.max(pair.wait_for(i, |line| line == "done")?);
        }
        let secs = (last - start).as_secs_f64();
        pair.stop()?;
        let completions = (workflows as f64) * f64::from(FANOUT_ACTIVITIES) / secs;
        common::emit(&[
            ("workload", json!("pg_fanout")),
            ("workflows", json!(workflows)),
            ("processes", json!(2)),
            ("completions_per_s", json!(completions.round() as u64)),
            (
                "workflows_per_s",
                json!((workflows as f64 / secs).round() as u64),
            ),
            ("floor_commits_per_s", json!(rate.round() as u64)),
            (
                "completions_per_floor_commit",
                json!(common::round(completions / rate, 2)),
            ),
        ]);
        Ok(())
    })
}

/// How the owner of the runs taken over goes away in `pg_takeover`.
#[derive(Clone, Copy)]
enum Gone {
    /// Killed with SIGKILL: on the same machine, the survivor sees its
    /// process gone and ends its leases at once.
    Killed,
    /// Stopped with SIGSTOP (a paused or cut-off process, or one of
    /// another machine): its process is still there, so its shards are
    /// taken over only once its lease runs out.
    Stopped,
}

/// `pg_takeover`: two processes share a schema (default lease, 5 s); one
/// starts 200 workflows of 40 steps of 50 ms, spread over both by their
/// shards; once every workflow has run a few steps, one member is killed
/// with SIGKILL. For each workflow whose last step before the kill ran in
/// the killed member: the time from the kill to its next step beginning in
/// the survivor (p50, p99, max), and the runs left unfinished (stranded).
pub fn takeover() -> BenchResult {
    takeover_after(Gone::Killed)
}

/// `pg_takeover_stopped`: as `pg_takeover`, with the member stopped by
/// SIGSTOP instead of killed: the lease-expiry path (a line with
/// `"owner": "sigstop"`); the stopped member is killed at the end.
pub fn takeover_stopped() -> BenchResult {
    takeover_after(Gone::Stopped)
}

fn takeover_after(gone: Gone) -> BenchResult {
    with_server("pg_takeover", |server| async move {
        let lease = Duration::from_secs(5);
        let ids: Vec<String> = (0..TAKEOVER_WORKFLOWS)
            .map(|i| format!("takeover-{i}"))
            .collect();
        let mut pair = Pair::start(&server, "steps", [ids, Vec::new()], lease)?;
        tokio::time::sleep(lease * 2).await;
        pair.go()?;
        // Which member ran each workflow's latest step, until every
        // workflow has run 5 steps.
        let mut last_in: HashMap<String, usize> = HashMap::new();
        let mut steps: HashMap<String, u32> = HashMap::new();
        let parse = |line: &str| {
            let mut words = line.strip_prefix("step ")?.split(' ');
            Some((
                words.next()?.to_string(),
                words.next()?.parse::<u32>().ok()?,
            ))
        };
        let (victim, survivor) = (0usize, 1usize);
        // Workflows that reached their last step (in either member).
        let mut finished: HashSet<String> = HashSet::new();
        'until_ready: loop {
            for i in 0..2 {
                while let Ok((_, line)) = pair.children[i].1.try_recv() {
                    if let Some((id, step)) = parse(&line) {
                        if step == TAKEOVER_STEPS {
                            finished.insert(id.clone());
                        }
                        last_in.insert(id.clone(), i);
                        steps.insert(id, step);
                    }
                }
            }
            if steps.len() == TAKEOVER_WORKFLOWS && steps.values().all(|s| *s >= 5) {
                break 'until_ready;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pid = pair.children[victim].0.id() as libc::pid_t;
        let signal = match gone {
            Gone::Killed => libc::SIGKILL,
            Gone::Stopped => libc::SIGSTOP,
        };
        // SAFETY: kill(2) has no memory effects; the child is not reaped
        // yet, so its process ID is still its own.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let killed_at = Instant::now();
        if let Gone::Killed = gone {
            pair.children[victim].0.wait()?;
        } else {
            // Whatever it printed before it stopped is read by now.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Lines the victim printed before it died still count as its.
        while let Ok((_, line)) = pair.children[victim].1.try_recv() {
            if let Some((id, step)) = parse(&line) {
                if step == TAKEOVER_STEPS {
                    finished.insert(id.clone());
                }
                last_in.insert(id.clone(), victim);
                steps.insert(id, step);
            }
        }
        let orphans: HashSet<String> = last_in
            .iter()
            .filter(|(id, member)| **member == victim && !finished.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let mut resumed: HashMap<String, f64> = HashMap::new();
        let deadline = killed_at + lease * 6;
        while finished.len() < TAKEOVER_WORKFLOWS && Instant::now() < deadline {
            let Ok((at, line)) = pair.children[survivor]
                .1
                .recv_timeout(Duration::from_millis(200))
            else {
                continue;
            };
            if let Some((id, step)) = parse(&line) {
                if orphans.contains(&id) && !resumed.contains_key(&id) {
                    resumed.insert(id.clone(), (at - killed_at).as_secs_f64());
                }
                if step == TAKEOVER_STEPS {
                    finished.insert(id);
                }
            }
        }
        if let Gone::Stopped = gone {
            // Never resumed: its work is the survivor's now.
            pair.children[victim].0.kill()?;
            pair.children[victim].0.wait()?;
        }
        pair.stop()?;
        let mut times: Vec<f64> = resumed.values().copied().collect();
        times.sort_by(f64::total_cmp);
        let stranded = TAKEOVER_WORKFLOWS - finished.len();
        let owner = match gone {
            Gone::Killed => "sigkill",
            Gone::Stopped => "sigstop",
        };
        common::emit(&[
            ("workload", json!("pg_takeover")),
            ("owner", json!(owner)),
            ("workflows", json!(TAKEOVER_WORKFLOWS)),
            ("taken_over", json!(orphans.len())),
            ("lease_s", json!(lease.as_secs_f64())),
            (
                "kill_to_first_resumed_step_s",
                json!(times.first().map(|t| common::round(*t, 3))),
            ),
            (
                "p50_s",
                json!(common::round(common::percentile(&times, 50.0), 3)),
            ),
            (
                "p99_s",
                json!(common::round(common::percentile(&times, 99.0), 3)),
            ),
            ("max_s", json!(times.last().map(|t| common::round(*t, 3)))),
            ("not_resumed", json!(orphans.len() - resumed.len())),
            ("stranded", json!(stranded)),
        ]);
        Ok(())
    })
}
