//! Testing a workflow on virtual time: a subscription that charges every
//! 30 days, run for a year on the test engine with a mocked payment API.
//!
//! `cargo run --example subscription_test` prints
//! `charged 12 times in 365 days` and the wall time it took (well under a
//! second: the test engine skips from one due time to the next whenever
//! nothing runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use steadfast::testing::TestEngine;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EventKind,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Charges the customer one period's fee; returns the receipt.
const CHARGE: ActivityDef<Charge, String> = ActivityDef::new("charge");
/// Bills every 30 days for the given number of days; returns how many
/// charges it made.
const SUBSCRIPTION: WorkflowDef<u32, u32> = WorkflowDef::new("Subscription");

#[derive(serde::Serialize, serde::Deserialize)]
struct Charge {
    customer: String,
    period: u32,
    cents: u64,
}

async fn subscription(ctx: WorkflowContext, days: u32) -> Result<u32, WorkflowError> {
    let end = ctx.now() + DAY * days;
    let mut charged = 0;
    loop {
        ctx.sleep(DAY * 30).await?;
        if ctx.now() > end {
            return Ok(charged);
        }
        charged += 1;
        let charge = Charge {
            customer: ctx.workflow_id(),
            period: charged,
            cents: 999,
        };
        let options = ActivityOptions::start_to_close(Duration::from_secs(30));
        ctx.execute_activity(CHARGE, charge, options).await?;
    }
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    let started = Instant::now();
    // The test double for the payment API, registered on the same
    // definition the production worker uses for the real one.
    let charges = Arc::new(AtomicU32::new(0));
    let counted = charges.clone();
    let mock_charge = move |ctx: ActivityContext, charge: Charge| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ActivityError>(format!(
                "receipt {} for {} cents (key {})",
                charge.period,
                charge.cents,
                ctx.idempotency_key()
            ))
        }
    };
    let env = TestEngine::open(
        Engine::builder()
            .workflow(SUBSCRIPTION, subscription)
            .activity(CHARGE, mock_charge),
    )
    .await?;
    let run = env
        .start_workflow(SUBSCRIPTION, "customer-42", 365, WorkflowOptions::new())
        .await?;
    let result = run.result().await?;

    let history = env.history("customer-42").await?;
    let completed = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
        .count();
    assert_eq!(result, charges.load(Ordering::SeqCst));
    assert_eq!(completed as u32, result);
    println!("charged {result} times in 365 days");
    println!(
        "({} events of history, {:.0} virtual days, {:?} of wall time)",
        history.len(),
        env.describe("customer-42")
            .await?
            .close_time
            .and_then(|closed| closed.duration_since(history[0].timestamp).ok())
            .unwrap_or_default()
            .as_secs_f64()
            / DAY.as_secs_f64(),
        started.elapsed()
    );
    env.shutdown().await?;
    Ok(())
}
