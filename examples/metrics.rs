//! The engine's metrics in the Prometheus text format: installs
//! `metrics-exporter-prometheus`'s recorder, runs a few workflows (one
//! whose activity fails once and is retried, one that fails, one on a
//! durable timer), and prints what a `/metrics` scrape would answer.
//!
//! ```sh
//! cargo run --example metrics
//! ```
//!
//! An application serves `handle.render()` at `/metrics` from its own HTTP
//! server (or enables the exporter's `http-listener` feature).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, RetryPolicy,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

const ORDER: WorkflowDef<u32, String> = WorkflowDef::new("Order");
const CHARGE: ActivityDef<u32, String> = ActivityDef::new("charge");

static DECLINED_ONCE: AtomicBool = AtomicBool::new(false);

async fn charge(_ctx: ActivityContext, cents: u32) -> Result<String, ActivityError> {
    if !DECLINED_ONCE.swap(true, Ordering::SeqCst) {
        return Err(ActivityError::retryable("card network timed out"));
    }
    Ok(format!("charged {cents}"))
}

/// 0 cents fails the order; otherwise waits 100 ms and charges.
async fn order(ctx: WorkflowContext, cents: u32) -> Result<String, WorkflowError> {
    if cents == 0 {
        return Err(WorkflowError::new("empty order"));
    }
    ctx.sleep(Duration::from_millis(100)).await?;
    let retry = RetryPolicy::default().with_initial_interval(Duration::from_millis(50));
    let options = ActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(retry);
    Ok(ctx.execute_activity(CHARGE, cents, options).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Installed before the engine opens, so it sees every recording.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    steadfast::metrics::describe();

    let dir = tempfile::tempdir()?;
    let engine = Engine::builder()
        .workflow(ORDER, order)
        .activity(CHARGE, charge)
        .open(dir.path().join("metrics.steadfast"))
        .await?;
    for (id, cents) in [("order-1", 1200), ("order-2", 0), ("order-3", 300)] {
        let run = engine
            .start_workflow(ORDER, id, cents, WorkflowOptions::new())
            .await?;
        match run.result().await {
            Ok(result) => eprintln!("{id}: {result}"),
            Err(e) => eprintln!("{id}: {e}"),
        }
    }
    engine.shutdown().await?;

    // GET /metrics
    print!("{}", prometheus.render());
    Ok(())
}
