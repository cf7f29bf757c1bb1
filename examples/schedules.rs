//! A schedule that starts a short workflow every second, surviving
//! `kill -9` at any moment.
//!
//! ```text
//! cargo run --example schedules -- --db schedules.steadfast --seconds 10
//! ```
//!
//! The first run creates the schedule `every-second` (an interval of one
//! second, overlap policy skip, a catch-up window of one minute, ending
//! `--seconds` after it was created); each action starts the workflow
//! `Tick` under the ID `tick-<the second, RFC 3339>`. The program prints
//! each workflow ID it sees started, and once the schedule's last second
//! has passed and every run closed, what the file holds:
//!
//! ```text
//! tick-2026-12-02T06:00:01Z
//! …
//! accounted: 10 started + 0 skipped + 0 missed = 10 seconds
//! schedule: 10 actions, 0 duplicates
//! ```
//!
//! Kill it with SIGKILL whenever you like and run the same command again
//! within the minute: the schedule goes on from its high-water mark, so no
//! second is started twice (an action's start and the schedule's progress
//! are one commit) and none inside the catch-up window is lost. Seconds
//! that passed while the program was down are due at once when it is back;
//! the first of them starts and, as Temporal's skip policy does, the others
//! are skipped while it runs (counted, not lost: `skipped` above).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Parser;
use steadfast::{
    Engine, EngineBuilder, ListFilter, SCHEDULED_BY_ID, Schedule, ScheduleAction, ScheduleError,
    ScheduleIntervalSpec, ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowExecutionInfo, WorkflowOptions,
};

/// The schedule's ID.
pub const SCHEDULE_ID: &str = "every-second";
/// The prefix of its workflows' IDs.
pub const WORKFLOW_ID: &str = "tick";
/// The catch-up window: a restart within it loses no second.
pub const CATCHUP_WINDOW: Duration = Duration::from_secs(60);

const TICK: WorkflowDef<(), ()> = WorkflowDef::new("Tick");

async fn tick(_ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    Ok(())
}

/// Runs (or resumes) the schedule in a local steadfast file.
#[derive(Parser, Debug)]
pub struct Args {
    /// The steadfast file (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// How many seconds the schedule acts for, from its creation.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

/// What the file holds once the schedule is done.
#[derive(Debug)]
pub struct Summary {
    /// Runs the schedule started.
    pub actions: usize,
    /// Runs beyond one per workflow ID (a second started twice).
    pub duplicates: usize,
    /// Seconds skipped because the previous tick still ran.
    pub skipped: u64,
    /// Seconds older than the catch-up window when the program came back.
    pub missed: u64,
    /// The schedule's seconds: from its creation to its end.
    pub seconds: u64,
    /// The started workflow IDs.
    pub workflow_ids: Vec<String>,
}

/// The engine with the example's workflow.
pub fn builder() -> EngineBuilder {
    Engine::builder().workflow(TICK, tick)
}

/// Creates the schedule unless the file has it, prints (through `print`)
/// each workflow ID seen started, and returns the summary once the
/// schedule's last second has passed and its runs are closed.
pub async fn run(args: Args, mut print: impl FnMut(&str)) -> Result<Summary, steadfast::Error> {
    let engine = builder().open(&args.db).await?;
    let schedule = match engine.describe_schedule(SCHEDULE_ID).await {
        Ok(found) => found,
        Err(ScheduleError::NotFound { .. }) => {
            let action =
                ScheduleAction::start_workflow(TICK, WORKFLOW_ID, &(), WorkflowOptions::new())
                    .map_err(steadfast::ClientError::from)?;
            let end = SystemTime::now() + Duration::from_secs(args.seconds);
            let spec = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(1)))
                .end_at(end);
            let policy = SchedulePolicy::default()
                .overlap(ScheduleOverlapPolicy::Skip)
                .catchup_window(CATCHUP_WINDOW);
            let handle = engine
                .create_schedule(SCHEDULE_ID, Schedule::new(action, spec).with_policy(policy))
                .await?;
            handle.describe().await?
        }
        Err(e) => return Err(e.into()),
    };
    let end = schedule
        .schedule
        .spec
        .end_at
        .unwrap_or(schedule.info.created_at);
    // IDs started before this process began were printed by an earlier one.
    let mut seen: BTreeSet<String> = runs(&engine)
        .await?
        .into_iter()
        .map(|r| r.workflow_id)
        .collect();
    loop {
        let runs = runs(&engine).await?;
        for run in &runs {
            if seen.insert(run.workflow_id.clone()) {
                print(&run.workflow_id);
            }
        }
        let open = runs.iter().any(|r| r.close_time.is_none());
        if SystemTime::now() > end + Duration::from_millis(200) && !open {
            let info = engine.describe_schedule(SCHEDULE_ID).await?.info;
            let ids: BTreeSet<&str> = runs.iter().map(|r| r.workflow_id.as_str()).collect();
            let created = info
                .created_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let ended = end
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let summary = Summary {
                actions: runs.len(),
                duplicates: runs.len() - ids.len(),
                skipped: info.overlap_skipped,
                missed: info.missed_catchup_window,
                seconds: ended.as_secs() - created.as_secs(),
                workflow_ids: runs.iter().map(|r| r.workflow_id.clone()).collect(),
            };
            engine.shutdown().await?;
            return Ok(summary);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every run the schedule started, oldest first.
async fn runs(engine: &Engine) -> Result<Vec<WorkflowExecutionInfo>, steadfast::Error> {
    let mut runs = Vec::new();
    let mut filter = ListFilter::new()
        .with_search_attribute(SCHEDULED_BY_ID, SCHEDULE_ID)
        .with_page_size(1000);
    loop {
        let page = engine.list(&filter).await?;
        runs.extend(page.executions);
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    runs.sort_by_key(|r| r.start_time);
    Ok(runs)
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    let summary = run(Args::parse(), |id| println!("{id}")).await?;
    println!(
        "accounted: {} started + {} skipped + {} missed = {} seconds",
        summary.actions, summary.skipped, summary.missed, summary.seconds
    );
    println!(
        "schedule: {} actions, {} duplicates",
        summary.actions, summary.duplicates
    );
    Ok(())
}
