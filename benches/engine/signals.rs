//! `signals`: the round trip from a call of `engine.signal` to the
//! workflow's next step being durable, for 1 and 1,000 concurrent
//! workflows. (Measured from the call, not from its return: the engine
//! commits a signal together with the step the workflow takes on it, and
//! answers the caller after that commit, so the step is often durable, and
//! its activity running, before the caller's task has even resumed.) The next step is an activity: steadfast runs an activity only
//! after the step that scheduled it is committed, so the moment the
//! activity begins is the moment the step was durable (plus the dispatch to
//! the activity, which a user waits for too). p50 and p99, with the floor
//! (one raw redb durable commit) measured in the same run.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use futures::future::join_all;
use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult};

/// Waits for `rounds` signals; after each, runs `step` with its number.
const PINGED: WorkflowDef<(u32, u32), ()> = WorkflowDef::new("Pinged");
const PING: SignalDef<u32> = SignalDef::new("ping");
/// Notes when it began, by (workflow, round).
const STEP: ActivityDef<(u32, u32), ()> = ActivityDef::new("step");

const ROUNDS_ONE: u32 = 200;
const ROUNDS_MANY: u32 = 10;

/// When each step began, by (workflow, round).
fn began() -> &'static Mutex<HashMap<(u32, u32), Instant>> {
    static BEGAN: OnceLock<Mutex<HashMap<(u32, u32), Instant>>> = OnceLock::new();
    BEGAN.get_or_init(Default::default)
}

async fn pinged(ctx: WorkflowContext, (index, rounds): (u32, u32)) -> Result<(), WorkflowError> {
    for _ in 0..rounds {
        let round = ctx.recv_signal(PING).await?;
        ctx.execute_activity(STEP, (index, round), common::noop_options())
            .await?;
    }
    Ok(())
}

async fn step(_ctx: ActivityContext, key: (u32, u32)) -> Result<(), ActivityError> {
    let now = Instant::now();
    began()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert(now);
    Ok(())
}

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let commits_per_s = crate::floor::measure(dir.path())?;
    let floor_ms = 1000.0 / commits_per_s;
    let runtime = common::runtime()?;
    for (workflows, rounds) in [(1u32, ROUNDS_ONE), (1_000, ROUNDS_MANY)] {
        began().lock().unwrap_or_else(|p| p.into_inner()).clear();
        let path = dir.path().join(format!("signals-{workflows}.steadfast"));
        let mut latencies = runtime.block_on(async {
            let engine = Engine::builder()
                .workflow(PINGED, pinged)
                .activity(STEP, step)
                .open(&path)
                .await?;
            let mut handles = Vec::new();
            for index in 0..workflows {
                let id = format!("pinged-{index}");
                handles.push(
                    engine
                        .start_workflow(PINGED, id, (index, rounds), WorkflowOptions::new())
                        .await?,
                );
            }
            let mut sent: HashMap<(u32, u32), Instant> = HashMap::new();
            for round in 0..rounds {
                // Each workflow's signal from its own task, all at once.
                let signals = (0..workflows).map(|index| {
                    let engine = engine.clone();
                    async move {
                        let id = format!("pinged-{index}");
                        let called = Instant::now();
                        engine.signal(&id, PING, round).await?;
                        Ok::<_, steadfast::ClientError>(((index, round), called))
                    }
                });
                for answer in join_all(signals).await {
                    let (key, at) = answer?;
                    sent.insert(key, at);
                }
                // The next round starts once every step of this one began.
                loop {
                    let done = {
                        let began = began().lock().unwrap_or_else(|p| p.into_inner());
                        (0..workflows).all(|index| began.contains_key(&(index, round)))
                    };
                    if done {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                }
            }
            for handle in &handles {
                handle.result().await?;
            }
            engine.shutdown().await?;
            let began = began().lock().unwrap_or_else(|p| p.into_inner());
            let latencies: Vec<f64> = sent
                .iter()
                .filter_map(|(key, at)| {
                    began
                        .get(key)
                        .map(|b| b.saturating_duration_since(*at).as_secs_f64() * 1000.0)
                })
                .collect();
            Ok::<_, steadfast::Error>(latencies)
        })?;
        latencies.sort_by(f64::total_cmp);
        let p50 = common::percentile(&latencies, 50.0);
        let p99 = common::percentile(&latencies, 99.0);
        common::emit(&[
            ("workload", json!("signals")),
            ("workflows", json!(workflows)),
            ("signals", json!(latencies.len())),
            ("p50_ms", json!(common::round(p50, 3))),
            ("p99_ms", json!(common::round(p99, 3))),
            ("p99_to_floor", json!(common::round(p99 / floor_ms, 2))),
        ]);
    }
    eprintln!("# signals: floor {commits_per_s:.0} commits/s ({floor_ms:.3} ms) just before");
    Ok(())
}
