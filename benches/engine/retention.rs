//! `retention`: two questions about `EngineBuilder::retention`.
//!
//! 1. Is freed space reused? A steady load of short workflows (one no-op
//!    activity each, [`CLIENTS`] at a time) runs for [`LOAD_FOR`] with a
//!    retention of [`RETENTION`], so the file's runs are replaced many
//!    times over. The file size is printed every second (stderr). The
//!    first turnover is over at [`FIRST_TURNOVER`]: by then every run of
//!    the first retention period has been swept. Target: the size stops
//!    growing after it, `file_bytes_end` ≈ `file_bytes_after_first_turnover`.
//!    One line: `{"workload":"retention","workflows",
//!    "file_bytes_after_first_turnover","file_bytes_end",…}`.
//! 2. Does sweeping stall commits? The `sequential` workload is measured
//!    on copies of one file holding [`EXPIRED`] closed runs, opened without
//!    a retention and with one that has expired them all, so the sweeper
//!    is removing them (in its paced batches) while the sequential workflow
//!    runs. The two alternate [`ROUNDS`] times; the medians are printed as
//!    `{"workload":"sequential","retention":true,…}` with the time per step
//!    of each.
//! 3. How fast is a backlog swept? Copies of the same file are opened with
//!    that retention and nothing else to do, [`ROUNDS`] times; the median
//!    time until no run is left (the counts are 0), as runs per second and
//!    as the time per run in floor commits:
//!    `{"workload":"retention","measure":"sweep",…}`. The sweeper paces
//!    itself (it holds the writer at most about an eighth of the time), so
//!    this is its designed rate, not the writer's limit.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use steadfast::{
    ClientError, Engine, EngineBuilder, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};

use crate::common::{self, BenchResult, NOOP};

/// How long closed runs are kept under the steady load.
const RETENTION: Duration = Duration::from_secs(1);
/// How long the steady load runs.
const LOAD_FOR: Duration = Duration::from_secs(24);
/// When the first turnover is over: twice the retention plus the sweeper's
/// period, rounded up to a whole sample.
const FIRST_TURNOVER: Duration = Duration::from_secs(3);
/// Workflows in flight at once.
const CLIENTS: usize = 16;
/// Closed runs in the file of the sequential comparison.
const EXPIRED: u64 = 20_000;
/// Rounds of the sequential comparison (without, then with, each round).
const ROUNDS: usize = 5;

const SHORT: WorkflowDef<u32, ()> = WorkflowDef::new("Short");

async fn short(ctx: WorkflowContext, n: u32) -> Result<(), WorkflowError> {
    ctx.execute_activity(NOOP, n, common::noop_options())
        .await?;
    Ok(())
}

fn register(builder: EngineBuilder) -> EngineBuilder {
    crate::sequential::register(builder.workflow(SHORT, short))
}

pub fn run() -> BenchResult {
    steady_load()?;
    sequential_while_sweeping()
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn steady_load() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("retention.steadfast");
    let (workflows, after_first, max_after_first, end) = common::runtime()?.block_on(async {
        let engine = Arc::new(
            register(Engine::builder())
                .retention(RETENTION)
                .open(&path)
                .await?,
        );
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (engine, done, stop) = (engine.clone(), done.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("load-{client}-{i}");
                    let run = engine
                        .start_workflow(SHORT, id, 0, WorkflowOptions::new())
                        .await?;
                    run.result().await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, steadfast::Error>(())
            }));
        }
        let start = Instant::now();
        let mut after_first = 0;
        let mut max_after_first = 0;
        let mut second = 0u64;
        while start.elapsed() < LOAD_FOR {
            second += 1;
            let next = Duration::from_secs(second);
            tokio::time::sleep(next.saturating_sub(start.elapsed())).await;
            let bytes = file_bytes(&path);
            if next == FIRST_TURNOVER {
                after_first = bytes;
            }
            if next >= FIRST_TURNOVER {
                max_after_first = max_after_first.max(bytes);
            }
            eprintln!(
                "# retention: {second:>3} s, {:>7} workflows, file {:>6.2} MiB",
                done.load(Ordering::Relaxed),
                bytes as f64 / (1024.0 * 1024.0)
            );
        }
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client
                .await
                .map_err(|e| ClientError::Storage(e.to_string()))??;
        }
        let end = file_bytes(&path);
        let engine = Arc::into_inner(engine).expect("the clients are done");
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>((
            done.load(Ordering::Relaxed),
            after_first,
            max_after_first,
            end,
        ))
    })?;
    common::emit(&[
        ("workload", json!("retention")),
        ("workflows", json!(workflows)),
        ("file_bytes_after_first_turnover", json!(after_first)),
        ("file_bytes_end", json!(end)),
        (
            "file_bytes_max_after_first_turnover",
            json!(max_after_first),
        ),
        ("retention_s", json!(RETENTION.as_secs_f64())),
        ("seconds", json!(LOAD_FOR.as_secs())),
        (
            "workflows_per_s",
            json!((workflows as f64 / LOAD_FOR.as_secs_f64()).round() as u64),
        ),
    ]);
    Ok(())
}

/// Writes [`EXPIRED`] closed runs of `SHORT`, [`CLIENTS`] at a time.
async fn populate(path: &Path) -> Result<(), steadfast::Error> {
    let engine = Arc::new(register(Engine::builder()).open(path).await?);
    let next = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS * 2 {
        let (engine, next) = (engine.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= EXPIRED {
                    return Ok::<_, steadfast::Error>(());
                }
                let run = engine
                    .start_workflow(SHORT, format!("old-{i}"), 0, WorkflowOptions::new())
                    .await?;
                run.result().await?;
            }
        }));
    }
    for client in clients {
        client
            .await
            .map_err(|e| ClientError::Storage(e.to_string()))??;
    }
    let engine = Arc::into_inner(engine).expect("the clients are done");
    engine.shutdown().await?;
    Ok(())
}

/// One measurement of `sequential` on a fresh copy of `populated`; with
/// `retention`, once the sweeper has begun removing the expired runs.
/// Returns the time per step and, with retention, whether runs were
/// still left to sweep when the measurement ended.
async fn measure_once(
    dir: &Path,
    populated: &Path,
    retention: Option<Duration>,
    round: usize,
) -> Result<(f64, bool), Box<dyn std::error::Error>> {
    let path = dir.join(format!("copy-{round}-{}.steadfast", retention.is_some()));
    std::fs::copy(populated, &path)?;
    let mut builder = register(Engine::builder());
    if let Some(period) = retention {
        builder = builder.retention(period);
    }
    let engine = builder.open(&path).await?;
    let gone = |id: String| {
        let engine = &engine;
        async move {
            matches!(
                engine.describe(&id).await,
                Err(ClientError::NotFound { .. })
            )
        }
    };
    if retention.is_some() {
        // The sweeper has begun once any of the expired runs is gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gone("old-0".into()).await && !gone("old-1".into()).await {
            if Instant::now() > deadline {
                return Err("the sweeper did not start within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let total = crate::sequential::measure(&engine, &format!("-{round}")).await?;
    let mut still_sweeping = false;
    for i in EXPIRED - CLIENTS as u64 * 2..EXPIRED {
        still_sweeping |= !gone(format!("old-{i}")).await;
    }
    engine.shutdown().await?;
    std::fs::remove_file(&path)?;
    let ms_per_step = total.as_secs_f64() * 1000.0 / f64::from(crate::sequential::STEPS);
    Ok((ms_per_step, still_sweeping))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn sequential_while_sweeping() -> BenchResult {
    let dir = common::temp_dir()?;
    let populated = dir.path().join("populated.steadfast");
    let runtime = common::runtime()?;
    let began = Instant::now();
    runtime.block_on(populate(&populated))?;
    eprintln!(
        "# retention: {EXPIRED} closed runs written in {:.1} s, file {:.2} MiB",
        began.elapsed().as_secs_f64(),
        file_bytes(&populated) as f64 / (1024.0 * 1024.0)
    );
    let commits_per_s = crate::floor::measure(dir.path())?;
    let floor_ms = 1000.0 / commits_per_s;
    // Every populated run is older than this by the time it is used.
    let retention = Some(Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(200));
    let (mut without, mut with, mut sweeping) = (Vec::new(), Vec::new(), 0);
    for round in 0..ROUNDS {
        let (ms, _) = runtime.block_on(measure_once(dir.path(), &populated, None, round))?;
        without.push(ms);
        let (ms, still) =
            runtime.block_on(measure_once(dir.path(), &populated, retention, round))?;
        with.push(ms);
        sweeping += usize::from(still);
        eprintln!(
            "# retention: round {round}: sequential {:.3} ms/step without, {ms:.3} with sweeping{}",
            without[round],
            if still {
                ""
            } else {
                " (the sweep ended first)"
            }
        );
    }
    let (without, with) = (median(without), median(with));
    common::emit(&[
        ("workload", json!("sequential")),
        ("retention", json!(true)),
        ("steps", json!(crate::sequential::STEPS)),
        ("ms_per_step", json!(common::round(with, 3))),
        (
            "ms_per_step_without_retention",
            json!(common::round(without, 3)),
        ),
        ("ratio_to_without", json!(common::round(with / without, 2))),
        ("ratio_to_floor", json!(common::round(with / floor_ms, 2))),
        ("rounds_swept_throughout", json!(sweeping)),
        ("rounds", json!(ROUNDS)),
    ]);
    let mut sweeps = Vec::new();
    for round in 0..ROUNDS {
        sweeps.push(runtime.block_on(sweep_backlog(dir.path(), &populated, round))?);
    }
    eprintln!("# retention: backlog of {EXPIRED} swept in {sweeps:.3?} s");
    let secs = median(sweeps);
    let ms_per_run = secs * 1000.0 / EXPIRED as f64;
    common::emit(&[
        ("workload", json!("retention")),
        ("measure", json!("sweep")),
        ("runs", json!(EXPIRED)),
        ("seconds", json!(common::round(secs, 3))),
        ("runs_per_s", json!((EXPIRED as f64 / secs).round() as u64)),
        (
            "ms_per_run_to_floor",
            json!(common::round(ms_per_run / floor_ms, 3)),
        ),
        ("floor_commits_per_s", json!(commits_per_s.round() as u64)),
    ]);
    Ok(())
}

/// The sweep itself: a fresh copy of `populated` opened with a retention
/// that has expired all of its [`EXPIRED`] runs, and nothing else running.
/// Returns the seconds from the open until the counts show no run left.
async fn sweep_backlog(
    dir: &Path,
    populated: &Path,
    round: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let path = dir.join(format!("sweep-{round}.steadfast"));
    std::fs::copy(populated, &path)?;
    let began = Instant::now();
    let engine = register(Engine::builder())
        .retention(Duration::from_millis(100))
        .open(&path)
        .await?;
    let deadline = began + Duration::from_secs(120);
    while engine.count_workflows().await?.total() > 0 {
        if Instant::now() > deadline {
            return Err("the sweep did not finish within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = began.elapsed().as_secs_f64();
    engine.shutdown().await?;
    std::fs::remove_file(&path)?;
    Ok(secs)
}
