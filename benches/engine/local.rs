//! `local`: what a local activity step saves against an ordinary activity
//! step. One workflow runs 100 no-op activities one after another, another
//! 100 no-op local activities, in the same file in the same run; the ratio
//! of their times per step is the figure (the disk's noise cancels out).
//! An ordinary step records the scheduling (with its first attempt's start)
//! and the completion, two commits; a local step records one event, one
//! commit, and takes no task queue slot.

use std::time::{Duration, Instant};

use serde_json::json;
use steadfast::{
    Engine, LocalActivityOptions, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult, NOOP};

pub const STEPS: u32 = 100;

const ORDINARY: WorkflowDef<u32, u32> = WorkflowDef::new("Local.Ordinary");
const LOCAL: WorkflowDef<u32, u32> = WorkflowDef::new("Local.Local");

async fn ordinary(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    for step in 0..steps {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
    }
    Ok(steps)
}

async fn local(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(10));
    for step in 0..steps {
        ctx.execute_local_activity(NOOP, step, options.clone())
            .await?;
    }
    Ok(steps)
}

async fn time(
    engine: &Engine,
    def: WorkflowDef<u32, u32>,
    id: &str,
) -> Result<Duration, steadfast::Error> {
    let start = Instant::now();
    let handle = engine
        .start_workflow(def, id, STEPS, WorkflowOptions::new())
        .await?;
    handle.result().await?;
    Ok(start.elapsed())
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("local.steadfast");
    let (ordinary_time, local_time) = common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .workflow(ORDINARY, ordinary)
            .workflow(LOCAL, local)
            .activity(NOOP, common::noop)
            .open(&path)
            .await?;
        // Warm-ups, so neither pays for the file's first growth.
        time(&engine, ORDINARY, "warm-up-ordinary").await?;
        time(&engine, LOCAL, "warm-up-local").await?;
        let ordinary_time = time(&engine, ORDINARY, "ordinary").await?;
        let local_time = time(&engine, LOCAL, "local").await?;
        let history = engine.history("local").await?.len();
        engine.shutdown().await?;
        eprintln!("# local: {history} events for {STEPS} local activity steps");
        Ok::<_, steadfast::Error>((ordinary_time, local_time))
    })?;
    let per_step = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(STEPS);
    let (ordinary_ms, local_ms) = (per_step(ordinary_time), per_step(local_time));
    common::emit(&[
        ("workload", json!("local")),
        ("steps", json!(STEPS)),
        ("ordinary_ms_per_step", json!(common::round(ordinary_ms, 3))),
        ("local_ms_per_step", json!(common::round(local_ms, 3))),
        (
            "ordinary_to_local_ratio",
            json!(common::round(ordinary_ms / local_ms, 2)),
        ),
    ]);
    Ok(())
}
