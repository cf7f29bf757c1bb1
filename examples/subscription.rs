//! A customer's subscription: workflow updates with a validator, a signal
//! handler, a query, and continue-as-new, surviving kill -9 at any moment.
//!
//! `cargo run --example subscription -- --db PATH` runs workflow
//! `subscription-1`: it charges the customer every 200 ms (an activity),
//! continues as new every 5 charges (the plan and the count carry over),
//! accepts update `change_plan` (its validator rejects an unknown plan; the
//! handler returns the new plan's price) and signal `cancel` (handled by
//! `ctx.handle_signal`; it carries the number of charges after which the
//! subscription ends), and answers query `state`. The program changes the
//! plan once (`update change_plan: gold at 30`), tries a bad plan
//! (`update rejected: unknown plan "platinum"`), sends `cancel` for 12
//! charges, and prints `Workflow result: 12 charges, last plan gold` and
//! the number of runs in the chain.
//!
//! Killed and started again with the same arguments, it finds the run the
//! file holds (it resumed on open) instead of starting another, sends the
//! same update and signal again (the signal's request ID and the update's
//! ID make that safe), and prints the same final line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, QueryDef,
    SignalDef, SignalOptions, UpdateDef, UpdateError, UpdateOptions, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};

/// The workflow ID the program runs.
pub const WORKFLOW_ID: &str = "subscription-1";

/// What carries over from run to run of the chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    /// The current plan.
    pub plan: String,
    /// Charges made so far, over the whole chain.
    pub charges: u32,
    /// The charge after which the subscription ends (`cancel` sets it).
    pub end_after: Option<u32>,
}

const SUBSCRIPTION: WorkflowDef<Subscription, String> = WorkflowDef::new("Subscription");
/// Charges one period of a plan; returns the amount.
const CHARGE: ActivityDef<(String, u32), u32> = ActivityDef::new("charge");
/// Changes the plan; returns the new plan's price.
const CHANGE_PLAN: UpdateDef<String, u32> = UpdateDef::new("change_plan");
/// Ends the subscription once it has made this many charges.
const CANCEL: SignalDef<u32> = SignalDef::new("cancel");
/// The plan and the number of charges so far.
const STATE: QueryDef<(String, u32)> = QueryDef::new("state");

const CHARGES_PER_RUN: u32 = 5;

fn price(plan: &str) -> Option<u32> {
    match plan {
        "basic" => Some(10),
        "silver" => Some(20),
        "gold" => Some(30),
        _ => None,
    }
}

async fn charge(_ctx: ActivityContext, (plan, n): (String, u32)) -> Result<u32, ActivityError> {
    let _period = n;
    price(&plan).ok_or_else(|| ActivityError::non_retryable(format!("no price for {plan:?}")))
}

async fn subscription(ctx: WorkflowContext, start: Subscription) -> Result<String, WorkflowError> {
    let state = Arc::new(Mutex::new(start));

    let read = state.clone();
    ctx.handle_query(STATE, move || {
        let s = read.lock().unwrap_or_else(|p| p.into_inner());
        (s.plan.clone(), s.charges)
    });
    let changed = state.clone();
    ctx.handle_update(
        CHANGE_PLAN,
        |plan: &String| match price(plan) {
            Some(_) => Ok(()),
            None => Err(format!("unknown plan {plan:?}")),
        },
        move |_ctx, plan: String| {
            let state = changed.clone();
            async move {
                let amount = price(&plan).ok_or_else(|| WorkflowError::new("no price"))?;
                state.lock().unwrap_or_else(|p| p.into_inner()).plan = plan;
                Ok(amount)
            }
        },
    );
    let cancelled = state.clone();
    ctx.handle_signal(CANCEL, move |_ctx, after: u32| {
        let state = cancelled.clone();
        async move {
            // Kept in the state, so it carries over a continue-as-new.
            state.lock().unwrap_or_else(|p| p.into_inner()).end_after = Some(after);
            Ok(())
        }
    });

    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    let mut in_this_run = 0;
    loop {
        let (plan, charges, end_after) = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            (s.plan.clone(), s.charges, s.end_after)
        };
        // Checked before every step: a handled `cancel` has run by now.
        if end_after.is_some_and(|end| charges >= end) {
            return Ok(format!("{charges} charges, last plan {plan}"));
        }
        if in_this_run == CHARGES_PER_RUN {
            let next = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(ctx.continue_as_new(SUBSCRIPTION, next));
        }
        ctx.sleep(Duration::from_millis(200)).await?;
        ctx.execute_activity(CHARGE, (plan, charges + 1), options.clone())
            .await?;
        state.lock().unwrap_or_else(|p| p.into_inner()).charges += 1;
        in_this_run += 1;
    }
}

/// Opens the file with the subscription's workflow and activity.
pub async fn open(db: &Path) -> Result<Engine, steadfast::Error> {
    Ok(Engine::builder()
        .workflow(SUBSCRIPTION, subscription)
        .activity(CHARGE, charge)
        .open(db)
        .await?)
}

/// The whole program on an open engine: returns the final line and the
/// number of runs in the chain.
pub async fn run(engine: &Engine) -> Result<(String, u32), steadfast::Error> {
    match engine.describe(WORKFLOW_ID).await {
        Ok(_) => println!("found workflow {WORKFLOW_ID} in the file"),
        Err(ClientError::NotFound { .. }) => {
            let start = Subscription {
                plan: "basic".into(),
                charges: 0,
                end_after: None,
            };
            engine
                .start_workflow(SUBSCRIPTION, WORKFLOW_ID, start, WorkflowOptions::new())
                .await?;
            println!("started workflow {WORKFLOW_ID}");
        }
        Err(e) => return Err(e.into()),
    }
    let running = !engine.describe(WORKFLOW_ID).await?.status.is_closed();
    if running {
        let options = UpdateOptions::new().with_update_id("plan-gold");
        match engine
            .update_with_options(WORKFLOW_ID, CHANGE_PLAN, "gold".into(), options)
            .await
        {
            Ok(price) => println!("update change_plan: gold at {price}"),
            Err(UpdateError::Client(ClientError::WorkflowClosed { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        match engine
            .update(WORKFLOW_ID, CHANGE_PLAN, "platinum".into())
            .await
        {
            Err(UpdateError::Rejected { message, .. }) => println!("update rejected: {message}"),
            Err(UpdateError::Client(ClientError::WorkflowClosed { .. })) => {}
            other => println!("update change_plan: platinum answered {other:?}"),
        }
        let options = SignalOptions::new().with_request_id("cancel-after-12");
        match engine
            .signal_with_options(WORKFLOW_ID, CANCEL, 12, options)
            .await
        {
            Ok(()) | Err(ClientError::WorkflowClosed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let handle = engine
        .get_workflow_handle(SUBSCRIPTION, WORKFLOW_ID)
        .await?;
    let result = handle.result().await?;
    // Count the runs of the chain, from the last back to the first.
    let mut runs = 1;
    let mut description = engine.describe(WORKFLOW_ID).await?;
    while let Some(previous) = description.previous_run_id {
        description = engine.describe_run(WORKFLOW_ID, previous).await?;
        runs += 1;
    }
    Ok((format!("Workflow result: {result}"), runs))
}

fn db_path() -> Result<PathBuf, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--db"), Some(path)) => Ok(PathBuf::from(path)),
        _ => Err("usage: cargo run --example subscription -- --db PATH".into()),
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = db_path()?;
    let engine = open(&db).await?;
    let (line, runs) = run(&engine).await?;
    println!("{line}");
    println!("runs in the chain: {runs}");
    engine.shutdown().await?;
    Ok(())
}
