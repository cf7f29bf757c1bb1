//! `long_history`: one workflow grows a history of about 100,000 events
//! (50,000 no-op activities one after another, two events each, no
//! continue-as-new). The time per step near its start (events 100 to 300)
//! is compared with the time per step at its end (the last 100 steps), in
//! the same run; then the engine is reopened and a query on the run, which
//! replays the whole history cold, is timed.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, QueryDef, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult};

const STEPS: u32 = 50_000;
const WORKFLOW_ID: &str = "long-history";

const LONG: WorkflowDef<u32, u32> = WorkflowDef::new("LongHistory");
/// Notes when each step began.
const STEP: ActivityDef<u32, ()> = ActivityDef::new("step");
const STEPS_DONE: QueryDef<u32> = QueryDef::new("steps_done");
const FINISH: SignalDef<()> = SignalDef::new("finish");

fn began() -> &'static Mutex<Vec<Instant>> {
    static BEGAN: OnceLock<Mutex<Vec<Instant>>> = OnceLock::new();
    BEGAN.get_or_init(Default::default)
}

async fn long(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = done.clone();
    ctx.handle_query(STEPS_DONE, move || {
        seen.load(std::sync::atomic::Ordering::Relaxed)
    });
    for step in 0..steps {
        ctx.execute_activity(STEP, step, common::noop_options())
            .await?;
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // Stays open, so the reopened engine replays a running run.
    ctx.recv_signal(FINISH).await?;
    Ok(steps)
}

async fn step(_ctx: ActivityContext, _step: u32) -> Result<(), ActivityError> {
    began()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Instant::now());
    Ok(())
}

fn builder() -> steadfast::EngineBuilder {
    Engine::builder().workflow(LONG, long).activity(STEP, step)
}

/// The median of the intervals between consecutive step starts in
/// `range`, in ms.
fn median_step_ms(began: &[Instant], range: std::ops::Range<usize>) -> f64 {
    let mut gaps: Vec<f64> = began[range]
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    common::percentile(&gaps, 50.0)
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("long-history.steadfast");
    let runtime = common::runtime()?;
    began().lock().unwrap_or_else(|p| p.into_inner()).clear();
    let recording = Instant::now();
    runtime.block_on(async {
        let engine = builder().open(&path).await?;
        engine
            .start_workflow(LONG, WORKFLOW_ID, STEPS, WorkflowOptions::new())
            .await?;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if began().lock().unwrap_or_else(|p| p.into_inner()).len() >= STEPS as usize {
                break;
            }
        }
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    let recorded = recording.elapsed();
    let began = began().lock().unwrap_or_else(|p| p.into_inner()).clone();
    let n = began.len();
    // Events 100 to 300 are steps 50 to 150.
    let early = median_step_ms(&began, 50..151);
    let late = median_step_ms(&began, n - 101..n);
    let (events, replay) = runtime.block_on(async {
        let engine = builder().open(&path).await?;
        let start = Instant::now();
        let answer = engine.query(WORKFLOW_ID, STEPS_DONE).await?;
        let replay = start.elapsed();
        if answer != STEPS {
            return Err(format!("the replayed query answered {answer}, not {STEPS}").into());
        }
        let events = engine.history(WORKFLOW_ID).await?.len();
        engine.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>((events, replay))
    })?;
    common::emit(&[
        ("workload", json!("long_history")),
        ("events", json!(events)),
        ("step_ms_at_start", json!(common::round(early, 3))),
        ("step_ms_at_end", json!(common::round(late, 3))),
        ("end_to_start", json!(common::round(late / early, 2))),
        (
            "cold_replay_ms",
            json!(common::round(replay.as_secs_f64() * 1000.0, 1)),
        ),
    ]);
    eprintln!(
        "# long_history: recording {n} steps took {:.1} s",
        recorded.as_secs_f64()
    );
    Ok(())
}
