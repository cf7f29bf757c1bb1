//! `list`: the first page of 100 runs, and filtered pages, with 10,000 and
//! then 1,000,000 runs in the file (`STEADFAST_BENCH_LIST_RUNS` sets the
//! larger size). The runs are started through the engine, 1,000 calls in
//! flight; each completes in its first activation (so start and close are
//! one commit), with a type of two and a `CustomerId` keyword of 1,000;
//! 1,000 more wait on a timer, so the first page is of open runs. Each time
//! is the median of 21 calls; one line per size:
//! `{"workload":"list","runs","first_page_ms","filtered_page_ms",...}`.
//! `filtered_page_ms` filters by type and search attribute together;
//! `type_page_ms` and `attribute_page_ms` by each alone.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use steadfast::{
    Engine, ListFilter, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};

use crate::common::{self, BenchResult};

const DONE_A: WorkflowDef<(), ()> = WorkflowDef::new("ListA");
const DONE_B: WorkflowDef<(), ()> = WorkflowDef::new("ListB");
const PARK: WorkflowDef<(), ()> = WorkflowDef::new("ListPark");

async fn done(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    Ok(())
}

async fn park(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

const CALLS: usize = 21;

pub fn run() -> BenchResult {
    let large: u64 = match std::env::var("STEADFAST_BENCH_LIST_RUNS") {
        Ok(n) => n.parse()?,
        Err(_) => 1_000_000,
    };
    let dir = common::temp_dir()?;
    let path = dir.path().join("list.steadfast");
    common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .workflow(DONE_A, done)
            .workflow(DONE_B, done)
            .workflow(PARK, park)
            .open(&path)
            .await?;
        let mut made = 0u64;
        for size in [10_000u64, large] {
            let started = Instant::now();
            let closed = size.saturating_sub(1_000).max(made);
            fill(&engine, made, closed).await?;
            made = closed;
            if size == 10_000 {
                park_some(&engine).await?;
            }
            eprintln!(
                "# list: {} runs in the file ({:.1} s to add)",
                made + 1_000,
                started.elapsed().as_secs_f64()
            );
            measure(&engine, made + 1_000).await?;
        }
        engine.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// Starts runs `from..to`, each closed in its first activation.
async fn fill(engine: &Engine, from: u64, to: u64) -> Result<(), steadfast::Error> {
    let mut starts = futures::stream::iter(from..to)
        .map(|i| {
            let def = if i % 2 == 0 { DONE_A } else { DONE_B };
            let options = WorkflowOptions::new()
                .with_search_attribute("CustomerId", format!("c-{}", i % 1000));
            engine.start_workflow(def, format!("list-{i}"), (), options)
        })
        .buffer_unordered(1_000);
    while let Some(started) = starts.next().await {
        started?;
    }
    Ok(())
}

/// 1,000 runs that stay open, so the first page is of open runs.
async fn park_some(engine: &Engine) -> Result<(), steadfast::Error> {
    for i in 0..1_000 {
        engine
            .start_workflow(PARK, format!("park-{i}"), (), WorkflowOptions::new())
            .await?;
    }
    Ok(())
}

async fn median_ms(engine: &Engine, filter: &ListFilter) -> Result<f64, steadfast::Error> {
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        let page = engine.list(filter).await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(!page.executions.is_empty(), "the filter matches runs");
    }
    times.sort_by(f64::total_cmp);
    Ok(common::percentile(&times, 50.0))
}

async fn measure(engine: &Engine, runs: u64) -> Result<(), steadfast::Error> {
    let first = ListFilter::new().with_page_size(100);
    let by_type = first.clone().with_workflow_type("ListB");
    let by_attribute = first.clone().with_search_attribute("CustomerId", "c-7");
    let both = by_type.clone().with_search_attribute("CustomerId", "c-7");
    let closed = first.clone().with_status(WorkflowStatus::Completed);
    // The pages really are what they say.
    let page = engine.list(&both).await?;
    assert!(page.executions.iter().all(|e| e.workflow_type == "ListB"));
    let first_page_ms = median_ms(engine, &first).await?;
    let filtered_page_ms = median_ms(engine, &both).await?;
    let type_page_ms = median_ms(engine, &by_type).await?;
    let attribute_page_ms = median_ms(engine, &by_attribute).await?;
    let closed_page_ms = median_ms(engine, &closed).await?;
    common::emit(&[
        ("workload", json!("list")),
        ("runs", json!(runs)),
        ("first_page_ms", json!(common::round(first_page_ms, 2))),
        (
            "filtered_page_ms",
            json!(common::round(filtered_page_ms, 2)),
        ),
        ("type_page_ms", json!(common::round(type_page_ms, 2))),
        (
            "attribute_page_ms",
            json!(common::round(attribute_page_ms, 2)),
        ),
        ("completed_page_ms", json!(common::round(closed_page_ms, 2))),
    ]);
    Ok(())
}
