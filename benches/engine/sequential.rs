//! `sequential`: one workflow runs 100 no-op activities one after another.
//! Each step needs one durable commit, so the time per step is compared with
//! one raw redb commit measured just before, in the same folder.

use std::time::{Duration, Instant};

use serde_json::json;
use steadfast::{
    Engine, EngineBuilder, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult, NOOP};

pub const STEPS: u32 = 100;

const SEQUENTIAL: WorkflowDef<u32, u32> = WorkflowDef::new("Sequential");

async fn sequential(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    for step in 0..steps {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
    }
    Ok(steps)
}

/// Registers the workload's workflow and activity.
pub fn register(builder: EngineBuilder) -> EngineBuilder {
    builder
        .workflow(SEQUENTIAL, sequential)
        .activity(NOOP, common::noop)
}

/// Runs a short warm-up workflow, so the measured one does not pay for the
/// file's first growth, then one of [`STEPS`] steps; returns how long that
/// one took. `tag` makes the workflow IDs unique when one file holds
/// several measurements.
pub async fn measure(engine: &Engine, tag: &str) -> Result<Duration, steadfast::Error> {
    let id = |name: &str| format!("{name}{tag}");
    let warm_up = engine
        .start_workflow(SEQUENTIAL, id("warm-up"), 10, WorkflowOptions::new())
        .await?;
    warm_up.result().await?;
    let start = Instant::now();
    let handle = engine
        .start_workflow(SEQUENTIAL, id("sequential"), STEPS, WorkflowOptions::new())
        .await?;
    handle.result().await?;
    Ok(start.elapsed())
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let commits_per_s = crate::floor::measure(dir.path())?;
    let floor_ms = 1000.0 / commits_per_s;
    let path = dir.path().join("sequential.steadfast");
    let total = common::runtime()?.block_on(async {
        let builder = Engine::builder().shared_reads(common::shared_reads());
        let engine = register(builder).open(&path).await?;
        let total = measure(&engine, "").await?;
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(total)
    })?;
    let ms_per_step = total.as_secs_f64() * 1000.0 / f64::from(STEPS);
    common::emit(&[
        ("workload", json!("sequential")),
        ("steps", json!(STEPS)),
        ("ms_per_step", json!(common::round(ms_per_step, 3))),
        (
            "ratio_to_floor",
            json!(common::round(ms_per_step / floor_ms, 2)),
        ),
    ]);
    // Measured again after, only to show how steady the disk was; the
    // ratio uses the one taken before.
    let after = crate::floor::measure(dir.path())?;
    eprintln!(
        "# sequential: floor {commits_per_s:.0} commits/s ({floor_ms:.3} ms) just before, {after:.0} commits/s just after"
    );
    Ok(())
}
