//! Promise: a terminated run stays terminated, and no history is ever
//! overwritten, even when `terminate` of a run without an actor (parked by
//! a storage failure) races with signals that load the same run again.
//!
//! Each round parks a batch of runs by failing the disk under a step, then
//! heals it at a random moment while terminates and signals are in flight.
//! A terminate that finds no actor closes the run in the file directly; a
//! signal meanwhile loads the run from the file and appends after what it
//! read. The store refuses any append that does not follow the stored
//! history of an open run, so after every round: each history numbers its
//! events 1..n and ends with the closing event; each acknowledged signal
//! and termination is in it; a run acknowledged as terminated is
//! `Terminated` and never runs again.
//!
//! Half the rounds stall the step's sync and then fail it (the disk heals
//! by itself): terminates queued behind that step find no actor and close
//! their runs directly, while later signals load the runs again. Measured
//! with counters while writing this test, a run of it makes a few to a few
//! dozen direct closes, each racing reloads: closes refused because a
//! reloaded actor appended first (and retried), and reloaded actors
//! refused because the close came first. The other rounds heal a failing
//! disk at a random moment. The store's own suite refuses such writes
//! deterministically (`src/store/conformance.rs`).
//!
//! Needs the hidden `fault-injection` feature:
//! `cargo test --features fault-injection --test terminate_race`.
#![cfg(feature = "fault-injection")]

mod support;

use std::time::Duration;

use steadfast::{
    ClientError, Engine, EventKind, FaultInjector, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{SplitMix, assert_history_well_formed, seed_from_env, temp_db};

/// Receives `item` signals forever.
const COLLECT: WorkflowDef<(), ()> = WorkflowDef::new("Collect");
const ITEM: SignalDef<u32> = SignalDef::new("item");

async fn collect(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    loop {
        ctx.recv_signal(ITEM).await?;
    }
}

/// How long the failing sync of a stalled round takes.
const STALL: Duration = Duration::from_millis(30);

/// Runs per round, and rounds (more with `STEADFAST_RACE_ROUNDS`).
const RUNS: usize = 100;
const ROUNDS: usize = 20;

/// What one run's callers were told in a round.
#[derive(Default)]
struct Told {
    /// Signal values acknowledged.
    signals: Vec<u32>,
    /// Whether a terminate was acknowledged.
    terminated: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_racing_reloads_never_overwrites_history() {
    let seed = seed_from_env("STEADFAST_RACE_SEED");
    let rounds = std::env::var("STEADFAST_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS);
    println!("seed {seed} (STEADFAST_RACE_SEED to repeat), {rounds} rounds of {RUNS} runs");
    let mut rng = SplitMix(seed);
    let db = temp_db();
    let faults = FaultInjector::new();
    let engine = Engine::builder()
        .workflow(COLLECT, collect)
        .fault_injector(faults.clone())
        .open(&db.path)
        .await
        .expect("open");
    for round in 0..rounds {
        let ids: Vec<String> = (0..RUNS).map(|i| format!("race-{round}-{i}")).collect();
        for id in &ids {
            engine
                .start_workflow(COLLECT, id.as_str(), (), WorkflowOptions::new())
                .await
                .expect("start");
        }
        // The disk fails under the first signal's step: the actor parks and
        // the messages queued behind it find no actor. Even rounds: the
        // step's sync stalls for STALL and fails, then the disk heals by
        // itself, so terminates queued meanwhile close their runs directly
        // every time. Odd rounds: writes fail until a random moment.
        let stalled = round % 2 == 0;
        let (terminate_at, signal_at, heal_after) = if stalled {
            faults.fail_next_syncs_slowly(1, STALL);
            let stall = STALL.as_micros() as u64;
            ((stall / 10, stall / 2), (stall / 2, stall * 2), None)
        } else {
            faults.fail_writes();
            let heal = Duration::from_micros(rng.between(200, 3_000));
            ((0, 1_500), (0, 3_000), Some(heal))
        };
        let mut tasks = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let value = (round * RUNS + i) as u32;
            let terminates_at: Vec<u64> = (0..4)
                .map(|_| rng.between(terminate_at.0, terminate_at.1))
                .collect();
            let signals_at: Vec<u64> = (0..4)
                .map(|_| rng.between(signal_at.0, signal_at.1))
                .collect();
            let engine = &engine;
            let id = id.clone();
            tasks.push(async move {
                let first = engine.signal(&id, ITEM, value * 10);
                // Terminates and signals at random offsets behind the first
                // signal's step: some wait in the actor's inbox while that
                // step fails, find no actor, and close the run in the file,
                // while others load the run again.
                let terminates = terminates_at.iter().map(|offset| async {
                    tokio::time::sleep(Duration::from_micros(*offset)).await;
                    engine.terminate(&id, "race").await.is_ok()
                });
                let later = signals_at.iter().enumerate().map(|(k, offset)| {
                    let id = &id;
                    async move {
                        tokio::time::sleep(Duration::from_micros(*offset)).await;
                        let v = value * 10 + k as u32 + 1;
                        engine.signal(id, ITEM, v).await.is_ok().then_some(v)
                    }
                });
                let (first, terminates, later) = tokio::join!(
                    first,
                    futures::future::join_all(terminates),
                    futures::future::join_all(later)
                );
                let mut told = Told::default();
                if first.is_ok() {
                    told.signals.push(value * 10);
                }
                told.signals.extend(later.into_iter().flatten());
                told.terminated = terminates.into_iter().any(|ok| ok);
                (id, told)
            });
        }
        let heal = async {
            if let Some(after) = heal_after {
                tokio::time::sleep(after).await;
                faults.clear();
            }
        };
        let (told, ()) = tokio::join!(futures::future::join_all(tasks), heal);
        for (id, told) in told {
            check_run(&engine, &id, &told).await;
        }
    }
    engine.shutdown().await.expect("shutdown");
}

/// Terminates the run for good (the round's terminate may have failed with
/// the disk) and checks its history against what its callers were told.
async fn check_run(engine: &Engine, id: &str, told: &Told) {
    let terminated = support::eventually(Duration::from_secs(10), || async {
        match engine.terminate(id, "end of round").await {
            Ok(()) => Some(false),
            Err(ClientError::WorkflowClosed { status, .. }) => {
                Some(status == WorkflowStatus::Terminated)
            }
            Err(_) => None,
        }
    })
    .await;
    assert!(
        terminated || !told.terminated,
        "{id}: terminate was acknowledged, but the run closed otherwise"
    );
    let history = engine.history(id).await.expect("history");
    assert_history_well_formed(&history);
    let closes = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowTerminated { .. }))
        .count();
    assert_eq!(closes, 1, "{id}: one termination in {history:#?}");
    let signaled: Vec<u32> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowSignaled { input, .. } => input.decode::<u32>().ok(),
            _ => None,
        })
        .collect();
    for value in &told.signals {
        assert!(
            signaled.contains(value),
            "{id}: acknowledged signal {value} is missing from {history:#?}"
        );
    }
    let description = engine.describe(id).await.expect("describe");
    assert_eq!(description.status, WorkflowStatus::Terminated, "{id}");
    // Closed for good: a signal is refused and the history no longer grows.
    assert!(matches!(
        engine.signal(id, ITEM, 0).await,
        Err(ClientError::WorkflowClosed { .. })
    ));
    assert_eq!(engine.history(id).await.expect("history"), history, "{id}");
}
