//! `fanout`: N workflows, each running 3 no-op activities one after another,
//! all started at once; throughput until every result is in. Concurrent
//! workflows share durable commits (group commit).

use std::time::Instant;

use futures::future::join_all;
use serde_json::json;
use steadfast::{Engine, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};

use crate::common::{self, BenchResult, NOOP};

const ACTIVITIES: u32 = 3;

const FANOUT: WorkflowDef<u32, u32> = WorkflowDef::new("Fanout");

async fn fanout(ctx: WorkflowContext, activities: u32) -> Result<u32, WorkflowError> {
    for step in 0..activities {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
    }
    Ok(activities)
}

pub fn run() -> BenchResult {
    for workflows in [1_000u32, 10_000] {
        run_one(workflows)?;
    }
    Ok(())
}

fn run_one(workflows: u32) -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("fanout.steadfast");
    let total = common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .shared_reads(common::shared_reads())
            .workflow(FANOUT, fanout)
            .activity(NOOP, common::noop)
            .open(&path)
            .await?;
        let start = Instant::now();
        let starts = (0..workflows).map(|i| {
            engine.start_workflow(
                FANOUT,
                format!("fanout-{i}"),
                ACTIVITIES,
                WorkflowOptions::new(),
            )
        });
        let handles = join_all(starts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for result in join_all(handles.iter().map(|h| h.result())).await {
            result?;
        }
        let total = start.elapsed();
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(total)
    })?;
    let secs = total.as_secs_f64();
    common::emit(&[
        ("workload", json!("fanout")),
        ("workflows", json!(workflows)),
        (
            "completions_per_s",
            json!((f64::from(workflows * ACTIVITIES) / secs).round() as u64),
        ),
        (
            "workflows_per_s",
            json!((f64::from(workflows) / secs).round() as u64),
        ),
    ]);
    Ok(())
}
