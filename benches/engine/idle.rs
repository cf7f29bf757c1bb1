//! `idle`: N workflows parked on durable one-hour timers. A child process
//! does only this (so its peak memory is not the other workloads'): it
//! starts them all at once, waits until every timer is durable, and reports
//! its peak resident memory (VmHWM) and the file's size per workflow.
//! N = 100,000, or 1,000,000 with `STEADFAST_BENCH_LARGE=1`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use steadfast::{Engine, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};

use crate::common::{self, BenchResult, CHILD_ENV};

const PARK: WorkflowDef<(), ()> = WorkflowDef::new("Park");

async fn park(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

pub fn run() -> BenchResult {
    let workflows: u32 = if common::large() { 1_000_000 } else { 100_000 };
    let dir = common::temp_dir()?;
    let path = dir.path().join("idle.steadfast");
    let status = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "idle")
        .env("STEADFAST_BENCH_FILE", &path)
        .env("STEADFAST_BENCH_WORKFLOWS", workflows.to_string())
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("the idle child failed: {status}").into());
    }
    Ok(())
}

/// The child: parks the workflows, then prints the result line.
pub fn child() -> BenchResult {
    let path = common::child_var("STEADFAST_BENCH_FILE")?;
    let workflows: u32 = common::child_var("STEADFAST_BENCH_WORKFLOWS")?.parse()?;
    let start = Instant::now();
    common::runtime()?.block_on(async {
        let mut builder = Engine::builder().workflow(PARK, park);
        if let Ok(bytes) = std::env::var("STEADFAST_BENCH_FILE_CACHE") {
            builder = builder.file_cache_bytes(bytes.parse().unwrap_or(64 << 20));
        }
        let engine = builder.open(&path).await?;
        // IDs are made as they are needed, and the client keeps a bounded
        // number of calls in flight, so the peak measures the engine holding
        // idle workflows, not the client's list of a million IDs or calls.
        let id = |i: u32| format!("idle-{i}");
        {
            let mut starts = futures::stream::iter(0..workflows)
                .map(|i| engine.start_workflow(PARK, id(i), (), WorkflowOptions::new()))
                .buffer_unordered(1_000);
            while let Some(started) = starts.next().await {
                started?;
            }
        }
        let started = start.elapsed();
        // Parked = its TimerStarted event is durable.
        for i in 0..workflows {
            while engine.history(&id(i)).await?.len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        eprintln!(
            "# idle {workflows}: started in {:.1} s, all parked after {:.1} s",
            started.as_secs_f64(),
            start.elapsed().as_secs_f64()
        );
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    let peak_rss_bytes = common::peak_rss_bytes()?;
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmRSS")) {
            eprintln!("# idle: {line}");
        }
    }
    let file_bytes = std::fs::metadata(&path)?.len();
    common::emit(&[
        ("workload", json!("idle")),
        ("workflows", json!(workflows)),
        ("peak_rss_bytes", json!(peak_rss_bytes)),
        (
            "file_bytes_per_workflow",
            json!(common::round(file_bytes as f64 / f64::from(workflows), 1)),
        ),
    ]);
    Ok(())
}
