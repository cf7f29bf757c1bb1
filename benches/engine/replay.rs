//! `replay`: cold replay of a ~10,000-event history. A workflow runs 5,000
//! no-op activities one after another to completion (two events each); the
//! engine is closed and opened again, and a query on the closed run (which
//! the engine answers by replaying the whole history) is timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::json;
use steadfast::{Engine, QueryDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};

use crate::common::{self, BenchResult, NOOP};

const STEPS: u32 = 5_000;
const WORKFLOW_ID: &str = "replay";

const LONG: WorkflowDef<u32, u32> = WorkflowDef::new("Long");
const PROGRESS: QueryDef<u32> = QueryDef::new("progress");

async fn long(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    let done = Arc::new(AtomicU32::new(0));
    let seen = done.clone();
    ctx.handle_query(PROGRESS, move || seen.load(Ordering::Relaxed));
    for step in 0..steps {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(steps)
}

fn builder() -> steadfast::EngineBuilder {
    Engine::builder()
        .workflow(LONG, long)
        .activity(NOOP, common::noop)
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("replay.steadfast");
    let runtime = common::runtime()?;
    let record_start = Instant::now();
    runtime.block_on(async {
        let engine = builder().open(&path).await?;
        let handle = engine
            .start_workflow(LONG, WORKFLOW_ID, STEPS, WorkflowOptions::new())
            .await?;
        handle.result().await?;
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    eprintln!(
        "# replay: recording the history took {:.1} s",
        record_start.elapsed().as_secs_f64()
    );
    let (events, replay) = runtime.block_on(async {
        let engine = builder().open(&path).await?;
        let start = Instant::now();
        let answer = engine.query(WORKFLOW_ID, PROGRESS).await?;
        let replay = start.elapsed();
        if answer != STEPS {
            return Err(format!("the replayed query answered {answer}, not {STEPS}").into());
        }
        let events = engine.history(WORKFLOW_ID).await?.len();
        engine.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>((events, replay))
    })?;
    common::emit(&[
        ("workload", json!("replay")),
        ("events", json!(events)),
        ("ms", json!(common::round(replay.as_secs_f64() * 1000.0, 3))),
    ]);
    Ok(())
}
