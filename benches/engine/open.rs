//! `open`: time from process start to the first resumed step, on a file
//! with many closed runs (100,000; 1,000,000 with `STEADFAST_BENCH_LARGE=1`)
//! and 10,000 running ones, after a clean shutdown and after a SIGKILL
//! (when redb must repair the file before it opens). A child process builds
//! the file; each measurement spawns a fresh child on it and times, from
//! the spawn, the engine being open and the first step of a running
//! workflow beginning. Three rounds of each; the median is printed.

use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult};

const RUNNING: u32 = 10_000;
const ROUNDS: usize = 3;
const QUIET_LIMIT: Duration = Duration::from_secs(300);

/// Completes in its first activation: a closed run in one commit.
const QUICK: WorkflowDef<(), ()> = WorkflowDef::new("OpenQuick");
/// Runs `tick` forever.
const TICKER: WorkflowDef<(), ()> = WorkflowDef::new("OpenTicker");
const TICK: ActivityDef<(), ()> = ActivityDef::new("tick");

async fn ticker(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(60));
    loop {
        ctx.execute_activity(TICK, (), options.clone()).await?;
    }
}

fn closed_runs() -> u32 {
    if common::large() { 1_000_000 } else { 100_000 }
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("open.steadfast");
    let closed = closed_runs().to_string();
    let spawn = |mode: &str| {
        common::spawn_child(
            "open",
            &[
                ("STEADFAST_BENCH_FILE", path.as_os_str()),
                ("STEADFAST_BENCH_MODE", mode.as_ref()),
                ("STEADFAST_BENCH_CLOSED", closed.as_ref()),
            ],
        )
    };
    let building = Instant::now();
    let (mut child, lines) = spawn("build")?;
    wait_for(&lines, &mut child, "built")?;
    exited(&mut child)?;
    let bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "# open: built {} closed and {RUNNING} running runs in {:.1} s, {bytes} bytes",
        closed_runs(),
        building.elapsed().as_secs_f64()
    );

    for after in ["clean_shutdown", "sigkill"] {
        let (mut to_open, mut to_step) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            if after == "sigkill" {
                // A life that runs until it is killed mid-work.
                let (mut child, lines) = spawn("run")?;
                wait_for(&lines, &mut child, "first")?;
                std::thread::sleep(Duration::from_millis(300));
                child.kill()?;
                child.wait()?;
            }
            let spawned = Instant::now();
            let (mut child, lines) = spawn("resume")?;
            let opened = wait_for(&lines, &mut child, "opened")?;
            let first = wait_for(&lines, &mut child, "first")?;
            exited(&mut child)?;
            to_open.push((opened - spawned).as_secs_f64() * 1000.0);
            to_step.push((first - spawned).as_secs_f64() * 1000.0);
        }
        to_open.sort_by(f64::total_cmp);
        to_step.sort_by(f64::total_cmp);
        common::emit(&[
            ("workload", json!("open")),
            ("after", json!(after)),
            ("closed_runs", json!(closed_runs())),
            ("running_runs", json!(RUNNING)),
            (
                "spawn_to_open_ms",
                json!(common::round(common::percentile(&to_open, 50.0), 1)),
            ),
            (
                "spawn_to_first_step_ms",
                json!(common::round(common::percentile(&to_step, 50.0), 1)),
            ),
        ]);
        eprintln!("# open {after}: spawn to open {to_open:?} ms, to first step {to_step:?} ms");
    }
    Ok(())
}

/// Waits for a line that starts with `want`; fails if the child exits or
/// stays quiet too long.
fn wait_for(
    lines: &common::ChildLines,
    child: &mut Child,
    want: &str,
) -> Result<Instant, Box<dyn std::error::Error>> {
    loop {
        match lines.recv_timeout(QUIET_LIMIT) {
            Ok((at, line)) if line.starts_with(want) => return Ok(at),
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let status = child.wait()?;
                return Err(
                    format!("the open child stopped before {want:?} ({e}; {status})").into(),
                );
            }
        }
    }
}

fn exited(child: &mut Child) -> BenchResult {
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("the open child failed: {status}").into());
    }
    Ok(())
}

/// The child. `build`: writes the closed runs (in bulk starts of 10,000)
/// and starts the running ones, waits until each has begun a step, shuts
/// down cleanly. `run`: opens the file and works until killed. `resume`:
/// opens the file, reports `opened` and `first` (a step began), and shuts
/// down cleanly.
pub fn child() -> BenchResult {
    let path = common::child_var("STEADFAST_BENCH_FILE")?;
    let mode = common::child_var("STEADFAST_BENCH_MODE")?;
    let closed: u32 = common::child_var("STEADFAST_BENCH_CLOSED")?.parse()?;
    let first = Arc::new(AtomicBool::new(false));
    let seen = first.clone();
    let tick = move |_ctx: ActivityContext, (): ()| {
        let seen = seen.clone();
        async move {
            if !seen.swap(true, Ordering::SeqCst) {
                println!("first");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<(), ActivityError>(())
        }
    };
    let builder = || -> EngineBuilder {
        Engine::builder()
            .workflow(QUICK, |_ctx: WorkflowContext, (): ()| async { Ok(()) })
            .workflow(TICKER, ticker)
            .activity(TICK, tick.clone())
    };
    common::runtime()?.block_on(async {
        let engine = builder().open(&path).await?;
        println!("opened");
        match mode.as_str() {
            "build" => {
                let mut next = 0u32;
                while next < closed {
                    let end = (next + 10_000).min(closed);
                    let starts =
                        (next..end).map(|i| (format!("closed-{i}"), (), WorkflowOptions::new()));
                    for started in engine.start_workflows(QUICK, starts).await? {
                        started?;
                    }
                    next = end;
                }
                let starts =
                    (0..RUNNING).map(|i| (format!("running-{i}"), (), WorkflowOptions::new()));
                for started in engine.start_workflows(TICKER, starts).await? {
                    started?;
                }
                while !first.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                engine.shutdown().await?;
                println!("built");
            }
            "run" => std::future::pending::<()>().await,
            _ => {
                while !first.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                engine.shutdown().await?;
            }
        }
        Ok::<_, steadfast::Error>(())
    })?;
    Ok(())
}
