//! `signals`: the round trip from a call of `engine.signal` to the
//! workflow's next step being durable, for 1 and 1,000 concurrent
//! workflows. (Measured from the call, not from its return: the engine
//! commits a signal together with the step the workflow takes on it, and
//! answers the caller after that commit, so the step is often durable, and
//! its activity running, before the caller's task has even resumed.) The
//! next step is an activity: steadfast runs an activity only after the step
//! that scheduled it is committed, so the moment the activity begins is the
//! moment the step was durable (plus the dispatch to the activity, which a
//! user waits for too). p50 and p99, with the floor (one raw redb durable
//! commit) measured in the same run: as ratios to its mean commit time,
//! and the p99 also to the floor's own p99 (a round trip holds at least
//! one commit, and on this disk a commit's p99 is about twice its mean).
//!
//! Two arrival patterns, each its own line (`"arrives"`):
//! - `waiting` (the target's case): each signal comes while its workflow
//!   waits for it, i.e. once the step that completed the previous round's
//!   activity is durable (`describe` shows no pending activity; it is
//!   answered after the run's last step committed).
//! - `busy`: each signal is sent as soon as the previous round's activity
//!   began, while the run is still committing that activity's completion:
//!   the signal's step then waits for that commit first (an actor commits
//!   one step at a time), so this costs about two commits.

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
    let (commits_per_s, floor_p99_ms) = crate::floor::measure_with_p99(dir.path())?;
    let floor_ms = 1000.0 / commits_per_s;
    let runtime = common::runtime()?;
    for arrives in [Arrives::Waiting, Arrives::Busy] {
        for (workflows, rounds) in [(1u32, ROUNDS_ONE), (1_000, ROUNDS_MANY)] {
            let path = dir
                .path()
                .join(format!("signals-{}-{workflows}.steadfast", arrives.name()));
            let mut latencies = runtime.block_on(round_trips(&path, workflows, rounds, arrives))?;
            latencies.sort_by(f64::total_cmp);
            let p50 = common::percentile(&latencies, 50.0);
            let p99 = common::percentile(&latencies, 99.0);
            common::emit(&[
                ("workload", json!("signals")),
                ("arrives", json!(arrives.name())),
                ("workflows", json!(workflows)),
                ("signals", json!(latencies.len())),
                ("p50_ms", json!(common::round(p50, 3))),
                ("p99_ms", json!(common::round(p99, 3))),
                ("p50_to_floor", json!(common::round(p50 / floor_ms, 2))),
                ("p99_to_floor", json!(common::round(p99 / floor_ms, 2))),
                (
                    "p99_to_floor_p99",
                    json!(common::round(p99 / floor_p99_ms, 2)),
                ),
            ]);
        }
    }
    eprintln!("# signals: floor {commits_per_s:.0} commits/s ({floor_ms:.3} ms) just before");
    Ok(())
}

/// When a round's signals are sent (see the module docs).
#[derive(Clone, Copy)]
enum Arrives {
    Waiting,
    Busy,
}

impl Arrives {
    fn name(self) -> &'static str {
        match self {
            Arrives::Waiting => "waiting",
            Arrives::Busy => "busy",
        }
    }
}

/// Runs `rounds` rounds of one signal to each of `workflows` workflows and
/// returns each round trip, in ms.
async fn round_trips(
    path: &std::path::Path,
    workflows: u32,
    rounds: u32,
    arrives: Arrives,
) -> Result<Vec<f64>, steadfast::Error> {
    began().lock().unwrap_or_else(|p| p.into_inner()).clear();
    let engine = Engine::builder()
        .workflow(PINGED, pinged)
        .activity(STEP, step)
        .open(path)
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
        if matches!(arrives, Arrives::Waiting) {
            wait_until_waiting(&engine, workflows).await?;
        }
    }
    for handle in &handles {
        handle.result().await?;
    }
    engine.shutdown().await?;
    let began = began().lock().unwrap_or_else(|p| p.into_inner());
    Ok(sent
        .iter()
        .filter_map(|(key, at)| {
            began
                .get(key)
                .map(|b| b.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect())
}

/// Waits until every workflow's activity completion is durable, so that it
/// waits for its next signal.
async fn wait_until_waiting(engine: &Engine, workflows: u32) -> Result<(), steadfast::Error> {
    let mut left: Vec<u32> = (0..workflows).collect();
    while !left.is_empty() {
        let described = join_all(left.iter().map(|index| {
            let id = format!("pinged-{index}");
            async move { (*index, engine.describe(&id).await) }
        }))
        .await;
        left.clear();
        for (index, description) in described {
            if !description?.pending_activities.is_empty() {
                left.push(index);
            }
        }
        if !left.is_empty() {
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
    }
    Ok(())
}
