//! An order workflow that survives `kill -9` at any moment.
//!
//! The workflow `Order` runs five activities one after another — `reserve`,
//! `charge`, `ship`, `notify`, `archive` — with a 1 s durable timer between
//! `charge` and `ship`. Each activity takes about 200 ms and first appends
//! one line `ACTIVITY_NAME attempt=N` to the log file (fsynced, so the log
//! tells the truth even when the process is killed right after).
//!
//! ```text
//! cargo run --example order -- --db order.steadfast --log order.log --id order-42
//! ```
//!
//! or, on a PostgreSQL database instead of a file (the tables go in the
//! schema `steadfast`, or the one `--schema` names):
//!
//! ```text
//! cargo run --example order -- --postgres "host=/run/postgresql dbname=app" --log order.log --id order-42
//! ```
//!
//! Kill it with SIGKILL whenever you like and run the same command again:
//! when the store has no run with that workflow ID the program starts one;
//! otherwise the engine has already resumed the unfinished run when the
//! store opened, and the program just waits for it. It always ends with
//!
//! ```text
//! Workflow result: order order-42 done: reserved, charged, shipped, notified, archived
//! ```
//!
//! What the log shows: an activity whose result was recorded never runs
//! again, so once a line for one activity appears, no line for an earlier
//! one follows it. An attempt the kill cut off runs again, with the next
//! attempt number (activities run at least once). The timer keeps its due
//! time: if it passed while the program was down, it fires at once.
//!
//! A run that has already completed is not started again: running the
//! command once more prints the stored result. Two copies started at once
//! with the same workflow ID start one run between them (the second one's
//! start is refused as `AlreadyStarted`, and it waits for that run).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use tokio::io::AsyncWriteExt;

// The durable names, typed once. Every activity takes the order ID and
// returns what it did.
const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
const RESERVE: ActivityDef<String, String> = ActivityDef::new("reserve");
const CHARGE: ActivityDef<String, String> = ActivityDef::new("charge");
const SHIP: ActivityDef<String, String> = ActivityDef::new("ship");
const NOTIFY: ActivityDef<String, String> = ActivityDef::new("notify");
const ARCHIVE: ActivityDef<String, String> = ActivityDef::new("archive");

/// Runs (or resumes) one order workflow in a local steadfast file or on a
/// PostgreSQL database.
#[derive(Parser, Debug)]
#[command(group(clap::ArgGroup::new("store").required(true).args(["db", "postgres"])))]
pub struct Args {
    /// The steadfast file (created if missing).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// A PostgreSQL connection string or URL to use instead of a file
    /// (`postgresql://user@host/db`, or `host=/run/postgresql dbname=app`).
    #[arg(long)]
    pub postgres: Option<String>,
    /// The PostgreSQL schema that holds steadfast's tables (with
    /// `--postgres`).
    #[arg(long, default_value = steadfast::DEFAULT_POSTGRES_SCHEMA, requires = "postgres")]
    pub schema: String,
    /// The log file each activity attempt appends a line to.
    #[arg(long)]
    pub log: PathBuf,
    /// The workflow ID (also the order ID).
    #[arg(long)]
    pub id: String,
}

// Workflow: deterministic orchestration. Each `await` on an activity returns
// only once its result is durable, so a restart never repeats it.
async fn order(ctx: WorkflowContext, order_id: String) -> Result<String, WorkflowError> {
    // A start-to-close timeout bounds each attempt. (A schedule-to-close
    // timeout would also count the time the program spends killed.)
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    let reserved = ctx
        .execute_activity(RESERVE, order_id.clone(), options.clone())
        .await?;
    let charged = ctx
        .execute_activity(CHARGE, order_id.clone(), options.clone())
        .await?;
    // A durable timer: it fires at its recorded due time, across restarts.
    ctx.sleep(Duration::from_secs(1)).await?;
    let shipped = ctx
        .execute_activity(SHIP, order_id.clone(), options.clone())
        .await?;
    let notified = ctx
        .execute_activity(NOTIFY, order_id.clone(), options.clone())
        .await?;
    let archived = ctx
        .execute_activity(ARCHIVE, order_id.clone(), options)
        .await?;
    Ok(format!(
        "order {order_id} done: {reserved}, {charged}, {shipped}, {notified}, {archived}"
    ))
}

// Activity: logs the attempt, then "works" for 200 ms. An activity may do
// anything (I/O, calls to other services); it is retried on failure.
async fn step(
    log: Arc<PathBuf>,
    ctx: ActivityContext,
    done: &'static str,
) -> Result<String, ActivityError> {
    let line = format!("{} attempt={}\n", ctx.activity_type(), ctx.attempt());
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log.as_path())
        .await?;
    file.write_all(line.as_bytes()).await?;
    // On disk before the work starts, so a kill cannot hide the attempt.
    file.sync_all().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(done.to_string())
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    let result = run(Args::parse()).await?;
    println!("Workflow result: {result}");
    Ok(())
}

/// Starts (or waits for) the order run and returns its result, once the
/// engine has shut down (`crates/steadfast-cli/tests/order_example.rs`
/// runs it, then reads the file with the `steadfast` tool).
pub async fn run(args: Args) -> Result<String, steadfast::Error> {
    let log = Arc::new(args.log);
    // Each activity is `step` with the log path and what it reports done.
    let activity = |done: &'static str| {
        let log = log.clone();
        move |ctx: ActivityContext, _order_id: String| step(log.clone(), ctx, done)
    };
    let builder = Engine::builder()
        .workflow(ORDER, order)
        .activity(RESERVE, activity("reserved"))
        .activity(CHARGE, activity("charged"))
        .activity(SHIP, activity("shipped"))
        .activity(NOTIFY, activity("notified"))
        .activity(ARCHIVE, activity("archived"));
    let engine = match (&args.postgres, &args.db) {
        (Some(url), _) => builder.postgres_schema(args.schema).postgres(url).await?,
        (None, Some(db)) => builder.open(db).await?,
        (None, None) => {
            return Err(steadfast::OpenError::InvalidConfig(
                "name the store: --db PATH or --postgres URL".into(),
            )
            .into());
        }
    };

    // Opening the store resumed any unfinished run; start one only if this
    // workflow ID has none yet.
    let run = match engine.get_workflow_handle(ORDER, args.id.clone()).await {
        Ok(run) => {
            println!("Waiting for run {} of workflow {}", run.run_id(), args.id);
            run
        }
        Err(ClientError::NotFound { .. }) => {
            let started = engine
                .start_workflow(
                    ORDER,
                    args.id.clone(),
                    args.id.clone(),
                    WorkflowOptions::new(),
                )
                .await;
            match started {
                Ok(run) => {
                    println!("Started run {} of workflow {}", run.run_id(), args.id);
                    run
                }
                // Another process sharing the database started it first.
                Err(ClientError::AlreadyStarted { .. }) => {
                    let run = engine.get_workflow_handle(ORDER, args.id.clone()).await?;
                    println!("Waiting for run {} of workflow {}", run.run_id(), args.id);
                    run
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let result = run.result().await?;
    engine.shutdown().await?;
    Ok(result)
}
