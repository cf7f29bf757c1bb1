//! A batch split into child workflows, surviving `kill -9` at any moment.
//!
//! The workflow `Batch` splits its items into children of 100 items
//! (`BatchPart`), runs at most 4 children at once, and returns how many
//! items they processed. Each item is one activity, `process_item`, that
//! appends the item's number to the log file and fsyncs it.
//!
//! ```text
//! cargo run --example batch -- --db batch.steadfast --log batch.log --items 1000
//! ```
//!
//! Kill it with SIGKILL whenever you like and run the same command again:
//! when the file has no run of the batch the program starts one; otherwise
//! the engine resumed the unfinished run (and its children) when the file
//! opened, and the program waits for it. It always ends with
//!
//! ```text
//! Workflow result: 1000 items in 10 children
//! ```
//!
//! What the log shows: every item, once, plus a line again only for an
//! attempt a kill cut off (activities run at least once). No child runs
//! twice: a child's start is one commit with the parent's record of it, and
//! its result reaches the parent exactly once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ChildWorkflowOptions,
    ClientError, Engine, EngineBuilder, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};

/// The batch's workflow ID.
pub const BATCH_ID: &str = "batch";
/// Items per child workflow.
pub const PER_CHILD: u32 = 100;
/// Children running at once, at most.
pub const AT_ONCE: usize = 4;

/// What the batch is given: its items are `0..items`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchInput {
    /// How many items.
    pub items: u32,
}

// The durable names, typed once.
const BATCH: WorkflowDef<BatchInput, String> = WorkflowDef::new("Batch");
/// A part: the items `first..first + count`.
const PART: WorkflowDef<(u32, u32), u32> = WorkflowDef::new("BatchPart");
const PROCESS_ITEM: ActivityDef<u32, ()> = ActivityDef::new("process_item");

/// Runs (or resumes) the batch in a local steadfast file.
#[derive(Parser, Debug)]
pub struct Args {
    /// The steadfast file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// The log file each item's activity appends its number to.
    #[arg(long)]
    pub log: PathBuf,
    /// How many items the batch has.
    #[arg(long, default_value_t = 1000)]
    pub items: u32,
}

// Parent: starts one child per 100 items, keeping at most 4 running: once 4
// are running it waits for the oldest before starting the next. Each start
// resolves once durable, so a restart never starts a child twice.
async fn batch(ctx: WorkflowContext, input: BatchInput) -> Result<String, WorkflowError> {
    let parts: Vec<(u32, u32)> = (0..input.items)
        .step_by(PER_CHILD as usize)
        .map(|first| (first, PER_CHILD.min(input.items - first)))
        .collect();
    let mut running = std::collections::VecDeque::new();
    let mut processed = 0;
    for (index, part) in parts.iter().enumerate() {
        if running.len() == AT_ONCE {
            let oldest: steadfast::ChildWorkflowHandle<u32> =
                running.pop_front().expect("four are running");
            processed += oldest.result().await?;
        }
        let id = format!("{}/part-{index}", ctx.workflow_id());
        let child = ctx
            .start_child_workflow(PART, id, *part, ChildWorkflowOptions::new())
            .await?;
        running.push_back(child);
    }
    for child in running {
        processed += child.result().await?;
    }
    Ok(format!("{processed} items in {} children", parts.len()))
}

// Child: one activity per item, one after another.
async fn part(ctx: WorkflowContext, (first, count): (u32, u32)) -> Result<u32, WorkflowError> {
    // Start-to-close only: a schedule-to-close timeout would count the time
    // the process spends killed.
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    for item in first..first + count {
        ctx.execute_activity(PROCESS_ITEM, item, options.clone())
            .await?;
    }
    Ok(count)
}

// Activity: appends the item's number to the log, durably.
async fn process_item(log: Arc<PathBuf>, item: u32) -> Result<(), ActivityError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&*log)?;
        // One write: a kill leaves the line whole or absent.
        file.write_all(format!("{item}\n").as_bytes())?;
        file.sync_all()
    })
    .await
    .map_err(|e| ActivityError::retryable(e.to_string()))??;
    Ok(())
}

/// The engine's registrations, with the log the activity appends to.
pub fn builder(log: PathBuf) -> EngineBuilder {
    let log = Arc::new(log);
    Engine::builder()
        .workflow(BATCH, batch)
        .workflow(PART, part)
        .activity(PROCESS_ITEM, move |_ctx: ActivityContext, item: u32| {
            process_item(log.clone(), item)
        })
}

/// Starts the batch, or waits for the run that resumed; returns its result.
///
/// # Errors
/// The engine's, when the file cannot be opened or the run fails.
pub async fn run(args: Args) -> Result<String, steadfast::Error> {
    let engine = builder(args.log).open(&args.db).await?;
    let handle = match engine.get_workflow_handle(BATCH, BATCH_ID).await {
        Ok(handle) => handle,
        Err(ClientError::NotFound { .. }) => {
            let input = BatchInput { items: args.items };
            engine
                .start_workflow(BATCH, BATCH_ID, input, WorkflowOptions::default())
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let result = handle.result().await?;
    engine.shutdown().await?;
    Ok(result)
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    let result = run(Args::parse()).await?;
    println!("Workflow result: {result}");
    Ok(())
}
