//! The admin endpoint and web UI over a few demo workflows.
//!
//! `cargo run --example admin -- --db PATH` opens (or creates) the file,
//! starts five demo workflows unless the file has them (`demo-running`
//! with a pending activity and a timer, `demo-waiting` for signal
//! `approve`, `demo-completed`, `demo-failed`, and `demo-parked`, parked on
//! nondeterminism), and the schedule `demo-hourly` (a `Demo` run every
//! hour), prints `Admin UI: http://127.0.0.1:PORT/`, and serves until
//! Ctrl-C. On loopback no token is needed.

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, QueryDef, Schedule, ScheduleAction, ScheduleError, ScheduleIntervalSpec,
    ScheduleSpec, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use steadfast_admin::AdminEndpoint;

const DEMO: WorkflowDef<String, String> = WorkflowDef::new("Demo");
const PARKED: WorkflowDef<(), ()> = WorkflowDef::new("Parked");
const SLOW_STEP: ActivityDef<String, String> = ActivityDef::new("slow_step");
const APPROVE: SignalDef<String> = SignalDef::new("approve");
const STATE: QueryDef<String> = QueryDef::new("state");

/// What each demo run does is its input.
async fn demo(ctx: WorkflowContext, mode: String) -> Result<String, WorkflowError> {
    match mode.as_str() {
        "running" => {
            let options = ActivityOptions::start_to_close(Duration::from_secs(7200));
            let step = ctx.execute_activity(SLOW_STEP, "an hour of work".into(), options);
            let timer = ctx.sleep(Duration::from_secs(3600));
            let (step, _) = futures::join!(step, timer);
            Ok(step?)
        }
        "waiting" => {
            let approver = ctx.recv_signal(APPROVE).await?;
            Ok(format!("approved by {approver}"))
        }
        "failed" => Err(WorkflowError::new("the card was declined").with_type("PaymentDeclined")),
        _ => Ok("done".into()),
    }
}

async fn slow_step(_ctx: ActivityContext, work: String) -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(work)
}

/// The first version of `Parked`: it waits on a timer.
async fn parked_v1(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.handle_query(STATE, || "v1".to_string());
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

/// A changed version, deployed without `ctx.patched`: it runs an activity
/// where the history has a timer, so the old run parks on nondeterminism.
async fn parked_v2(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.handle_query(STATE, || "v2".to_string());
    let options = ActivityOptions::start_to_close(Duration::from_secs(60));
    ctx.execute_activity(SLOW_STEP, "new first step".into(), options)
        .await?;
    Ok(())
}

fn demo_engine() -> EngineBuilder {
    Engine::builder()
        .workflow(DEMO, demo)
        .activity(SLOW_STEP, slow_step)
}

fn ignore_started<T>(result: Result<T, ClientError>) -> Result<(), ClientError> {
    match result {
        Ok(_) | Err(ClientError::AlreadyStarted { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = match (args.next().as_deref(), args.next()) {
        (Some("--db"), Some(path)) => path,
        _ => return Err("usage: cargo run --example admin -- --db PATH".into()),
    };

    // The parked run: started by the first version, then opened by the
    // second.
    let first = Engine::builder()
        .workflow(PARKED, parked_v1)
        .open(&db)
        .await?;
    let fresh = first.describe("demo-parked").await.is_err();
    if fresh {
        first
            .start_workflow(PARKED, "demo-parked", (), WorkflowOptions::new())
            .await?;
    }
    first.shutdown().await?;
    drop(first);

    let engine = demo_engine().workflow(PARKED, parked_v2).open(&db).await?;
    for mode in ["running", "waiting", "completed", "failed"] {
        let id = format!("demo-{mode}");
        ignore_started(
            engine
                .start_workflow(DEMO, id, mode.to_string(), WorkflowOptions::new())
                .await,
        )?;
    }
    // A schedule: a `Demo` run every hour, each completing at once.
    let hourly = Schedule::new(
        ScheduleAction::start_workflow(
            DEMO,
            "demo-hourly",
            &"scheduled".to_string(),
            WorkflowOptions::new(),
        )?,
        ScheduleSpec::default().with_interval(ScheduleIntervalSpec::new(Duration::from_secs(3600))),
    );
    match engine.create_schedule("demo-hourly", hourly).await {
        Ok(_) | Err(ScheduleError::AlreadyRunning { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // Loading the run replays it under the second version: it parks.
    let _ = engine.query("demo-parked", STATE).await;

    let admin = match AdminEndpoint::new(engine.clone()).serve().await {
        Ok(admin) => admin,
        // 8233 is taken (another app, a Temporal dev server): any free port.
        Err(_) => {
            AdminEndpoint::new(engine.clone())
                .bind("127.0.0.1:0".parse()?)
                .serve()
                .await?
        }
    };
    println!("Admin UI: {}/", admin.address());
    tokio::signal::ctrl_c().await?;
    admin.shutdown().await;
    engine.shutdown().await?;
    Ok(())
}
