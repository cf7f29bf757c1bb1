//! `local`: what a local activity step saves against an ordinary activity
//! step. One workflow runs 100 no-op activities one after another, another
//! 100 no-op local activities, in the same file, in alternating rounds of
//! the same run; the figure is the median ratio of their times per step
//! (the disk's noise falls on both). Both take one durable commit per step
//! (an ordinary activity's scheduling shares the commit of the previous
//! result); an ordinary step writes two events (scheduled, completed) and
//! takes a task queue slot, a local step writes one event and takes none.

use std::time::{Duration, Instant};

use serde_json::json;
use steadfast::{
    Engine, LocalActivityOptions, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult, NOOP};

pub const STEPS: u32 = 100;

const ORDINARY: WorkflowDef<u32, u32> = WorkflowDef::new("Local.Ordinary");
const LOCAL: WorkflowDef<u32, u32> = WorkflowDef::new("Local.Local");

async fn ordinary(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    for step in 0..steps {
        ctx.execute_activity(NOOP, step, common::noop_options())
            .await?;
    }
    Ok(steps)
}

async fn local(ctx: WorkflowContext, steps: u32) -> Result<u32, WorkflowError> {
    let options = LocalActivityOptions::start_to_close(Duration::from_secs(10));
    for step in 0..steps {
        ctx.execute_local_activity(NOOP, step, options.clone())
            .await?;
    }
    Ok(steps)
}

async fn time(
    engine: &Engine,
    def: WorkflowDef<u32, u32>,
    id: &str,
) -> Result<Duration, steadfast::Error> {
    let start = Instant::now();
    let handle = engine
        .start_workflow(def, id, STEPS, WorkflowOptions::new())
        .await?;
    handle.result().await?;
    Ok(start.elapsed())
}

/// Rounds of the two workflows, alternating, so that both see the same
/// disk (it is shared and noisy); the figure is the median of the rounds'
/// ratios.
pub const ROUNDS: usize = 7;

pub fn run() -> BenchResult {
    let dir = common::temp_dir()?;
    let path = dir.path().join("local.steadfast");
    let rounds = common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .workflow(ORDINARY, ordinary)
            .workflow(LOCAL, local)
            .activity(NOOP, common::noop)
            .open(&path)
            .await?;
        // Warm-ups, so neither pays for the file's first growth.
        time(&engine, ORDINARY, "warm-up-ordinary").await?;
        time(&engine, LOCAL, "warm-up-local").await?;
        let mut rounds = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let ordinary = time(&engine, ORDINARY, &format!("ordinary-{round}")).await?;
            let local = time(&engine, LOCAL, &format!("local-{round}")).await?;
            rounds.push((ordinary, local));
        }
        let ordinary_events = engine.history("ordinary-0").await?.len();
        let local_events = engine.history("local-0").await?.len();
        engine.shutdown().await?;
        eprintln!(
            "# local: {ordinary_events} events for {STEPS} ordinary steps, {local_events} for {STEPS} local steps"
        );
        Ok::<_, steadfast::Error>(rounds)
    })?;
    let per_step = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(STEPS);
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        common::percentile(&values, 50.0)
    };
    let ordinary_ms = median(rounds.iter().map(|(o, _)| per_step(*o)).collect());
    let local_ms = median(rounds.iter().map(|(_, l)| per_step(*l)).collect());
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|(o, l)| o.as_secs_f64() / l.as_secs_f64())
        .collect();
    let (low, high) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    common::emit(&[
        ("workload", json!("local")),
        ("steps", json!(STEPS)),
        ("rounds", json!(ROUNDS)),
        ("ordinary_ms_per_step", json!(common::round(ordinary_ms, 3))),
        ("local_ms_per_step", json!(common::round(local_ms, 3))),
        (
            "ordinary_to_local_ratio",
            json!(common::round(median(ratios), 2)),
        ),
        ("ratio_low", json!(common::round(low, 2))),
        ("ratio_high", json!(common::round(high, 2))),
    ]);
    Ok(())
}
