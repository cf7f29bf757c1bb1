//! Promise: every acknowledged start, signal and step result survives a
//! power cut, and the file opens after it without a repair error.
//!
//! A SIGKILL keeps the page cache (see `crash` and `torture`); a power cut
//! loses every write no sync made durable. Each cut here opens an engine on
//! a `PowerCut` backend (the hidden `fault-injection` feature), runs a few
//! workflows of mixed shape at once (activities, some retried, in sequence
//! and in parallel; timers of a few ms; waits for signals) and cuts the
//! power at a random storage operation: mostly inside a commit, sometimes
//! after the workload went idle. Half the cuts keep only what the last sync
//! made durable; the others also keep a random subset of the later writes
//! (a disk writes back in any order), the last one torn at a 512-byte
//! boundary. The image is written to a file and opened with a plain engine,
//! which must open it (redb may repair it) and hold everything a caller was
//! told before the cut: each acknowledged start (its run ID), each
//! acknowledged signal, each result `WorkflowHandle::result` returned, and
//! each history a caller read, event for event. History IDs run 1..n. Then
//! the reopened engine finishes every run the file holds, with the right
//! results and well-formed histories.
//!
//! What a caller was told is the measure, not what a workflow did: a step a
//! workflow took but nobody read may be lost with the commit the cut cut off.
//!
//! The default run (CI) makes a few hundred cuts; `STEADFAST_POWER_CUT_SOAK=N`
//! makes N. Cut `i` uses seed `S + i`, where `S` is printed and set by
//! `STEADFAST_POWER_CUT_SEED=S`; a failure prints the seed that replays it
//! alone (the seed fixes the workflows, the cut's moment and which writes
//! survive; the threads' interleaving may still differ).
//! Run with `cargo test --features fault-injection --test power_cut`.
#![cfg(feature = "fault-injection")]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, CutImage, CutMode,
    Engine, EngineBuilder, Event, EventKind, PowerCut, RetryPolicy, RunId, SignalDef,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::{SplitMix, assert_history_well_formed, seed_from_env, temp_db};

/// The seed of the first cut.
const SEED_ENV: &str = "STEADFAST_POWER_CUT_SEED";
/// Soak mode: how many cuts.
const SOAK_ENV: &str = "STEADFAST_POWER_CUT_SOAK";
/// Cuts in the default run.
const CI_CUTS: u64 = 300;
/// The power goes before this many writes, resizes and syncs (at most)
/// after the engine opened; a workload makes about this many.
const CUT_WITHIN_CHANGES: u64 = 100;
/// One cut in this many is followed by a second one while the engine opens
/// the image (during redb's repair) or just after.
const CUT_AGAIN_ONE_IN: u64 = 4;
/// The second cut comes before this many writes, resizes and syncs.
const CUT_AGAIN_WITHIN_CHANGES: u64 = 40;
/// A workload that is still running this long after it started is cut
/// anyway.
const WORKLOAD_LIMIT: Duration = Duration::from_secs(5);
/// After the cut, the reopened engine finishes every run within this.
const FINISH_LIMIT: Duration = Duration::from_secs(30);

const MIXED: WorkflowDef<Vec<Op>, Vec<String>> = WorkflowDef::new("Mixed");
const WORK: ActivityDef<Work, String> = ActivityDef::new("work");
/// Signals carry their number, 1, 2, … per workflow.
const SEQ: SignalDef<u32> = SignalDef::new("seq");

/// One step of a workflow's plan; the workflow's input is its plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Op {
    /// One activity; its attempts up to `fail_until` fail (retryably).
    Activity { fail_until: u32 },
    /// Two activities at once.
    Parallel,
    /// An activity with a large result, so that the file grows (and
    /// redb resizes it) while the power may go.
    Blob { bytes: u32 },
    /// A durable timer.
    Timer { ms: u64 },
    /// Waits until the signals `first..first + count` have all arrived
    /// (a signal sent again counts once).
    Signals { first: u32, count: u32 },
}

/// The activity's input: where in its workflow it runs, and how it fails.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Work {
    step: u32,
    branch: u32,
    fail_until: u32,
    /// Returns this many bytes instead, when not zero.
    blob: u32,
}

/// What a workflow's result must be: one entry per step of its plan.
fn expected_result(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .enumerate()
        .map(|(step, op)| match op {
            Op::Activity { .. } => format!("{step}.0"),
            Op::Parallel => format!("{step}.0+{step}.1"),
            Op::Blob { bytes } => format!("blob {bytes}"),
            Op::Timer { ms } => format!("slept {ms}"),
            Op::Signals { first, count } => format!("signals {first}..{}", first + count),
        })
        .collect()
}

/// The signal numbers a plan waits for: `1..=n`.
fn signal_count(ops: &[Op]) -> u32 {
    ops.iter()
        .map(|op| match op {
            Op::Signals { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

/// A random plan of one to four steps.
fn random_plan(rng: &mut SplitMix) -> Vec<Op> {
    let mut next_signal = 1;
    (0..rng.between(1, 4))
        .map(|_| match rng.between(0, 5) {
            0 | 1 => Op::Activity {
                fail_until: (rng.between(0, 3) == 0) as u32,
            },
            2 => Op::Parallel,
            3 => Op::Blob {
                bytes: rng.between(4_000, 40_000) as u32,
            },
            4 => Op::Timer {
                ms: rng.between(1, 5),
            },
            _ => {
                let count = rng.between(1, 2) as u32;
                let op = Op::Signals {
                    first: next_signal,
                    count,
                };
                next_signal += count;
                op
            }
        })
        .collect()
}

async fn mixed(ctx: WorkflowContext, ops: Vec<Op>) -> Result<Vec<String>, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(30)).with_retry_policy(
        RetryPolicy::default()
            .with_initial_interval(Duration::from_millis(2))
            .with_maximum_interval(Duration::from_millis(10)),
    );
    let mut received = BTreeSet::new();
    let mut out = Vec::with_capacity(ops.len());
    for (step, op) in ops.into_iter().enumerate() {
        let step = step as u32;
        let work = |branch, fail_until| Work {
            step,
            branch,
            fail_until,
            blob: 0,
        };
        let entry = match op {
            Op::Activity { fail_until } => {
                ctx.execute_activity(WORK, work(0, fail_until), options.clone())
                    .await?
            }
            Op::Parallel => {
                let (a, b) = futures::join!(
                    ctx.execute_activity(WORK, work(0, 0), options.clone()),
                    ctx.execute_activity(WORK, work(1, 0), options.clone()),
                );
                format!("{}+{}", a?, b?)
            }
            Op::Blob { bytes } => {
                let input = Work {
                    blob: bytes,
                    ..work(0, 0)
                };
                let blob = ctx.execute_activity(WORK, input, options.clone()).await?;
                format!("blob {}", blob.len())
            }
            Op::Timer { ms } => {
                ctx.sleep(Duration::from_millis(ms)).await?;
                format!("slept {ms}")
            }
            Op::Signals { first, count } => {
                let wanted = first..first + count;
                while !wanted.clone().all(|k| received.contains(&k)) {
                    received.insert(ctx.recv_signal(SEQ).await?);
                }
                format!("signals {first}..{}", first + count)
            }
        };
        out.push(entry);
    }
    Ok(out)
}

async fn work(ctx: ActivityContext, w: Work) -> Result<String, ActivityError> {
    if ctx.attempt() <= w.fail_until {
        return Err(ActivityError::retryable(format!(
            "attempt {} of step {} fails",
            ctx.attempt(),
            w.step
        )));
    }
    if w.blob > 0 {
        return Ok("b".repeat(w.blob as usize));
    }
    Ok(format!("{}.{}", w.step, w.branch))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(MIXED, mixed)
        .activity(WORK, work)
}

/// What callers were told before the cut.
#[derive(Debug, Default)]
struct Told {
    /// Acknowledged starts: workflow ID → run ID.
    starts: HashMap<String, RunId>,
    /// Acknowledged signals: (workflow ID, signal number).
    signals: Vec<(String, u32)>,
    /// Results `WorkflowHandle::result` returned.
    results: HashMap<String, Vec<String>>,
    /// Histories read with `Engine::history`.
    histories: Vec<(String, Vec<Event>)>,
}

type Ledger = Arc<Mutex<Told>>;

fn tell(ledger: &Ledger, f: impl FnOnce(&mut Told)) {
    f(&mut ledger.lock().expect("ledger lock"));
}

/// A caller of one workflow: starts it, signals it, reads its history now
/// and then, and waits for its result, noting each answer in `ledger`.
/// Stops at the first error (the power is off).
async fn drive(engine: Arc<Engine>, id: String, ops: Vec<Op>, ledger: Ledger, mut rng: SplitMix) {
    tokio::time::sleep(Duration::from_millis(rng.between(0, 3))).await;
    let signals = signal_count(&ops);
    let Ok(run) = engine
        .start_workflow(MIXED, id.as_str(), ops, WorkflowOptions::new())
        .await
    else {
        return;
    };
    tell(&ledger, |t| {
        t.starts.insert(id.clone(), run.run_id());
    });
    let read_history = |rng: &mut SplitMix| {
        let engine = engine.clone();
        let ledger = ledger.clone();
        let id = id.clone();
        let read = rng.between(0, 1) == 0;
        async move {
            if read && let Ok(history) = engine.history(&id).await {
                tell(&ledger, |t| t.histories.push((id, history)));
            }
        }
    };
    read_history(&mut rng).await;
    for k in 1..=signals {
        tokio::time::sleep(Duration::from_millis(rng.between(0, 3))).await;
        if engine.signal(&id, SEQ, k).await.is_err() {
            return;
        }
        tell(&ledger, |t| t.signals.push((id.clone(), k)));
        read_history(&mut rng).await;
    }
    if let Ok(result) = run.result().await {
        tell(&ledger, |t| {
            t.results.insert(id.clone(), result);
        });
        read_history(&mut rng).await;
    }
}

/// What the cuts met, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    cuts: u64,
    /// Cuts with writes not yet synced (inside a commit).
    in_commit: u64,
    /// Cuts that kept some unsynced writes.
    kept_some: u64,
    /// Cuts that tore a write.
    torn: u64,
    /// Cuts after the workload had finished.
    idle: u64,
    /// Cuts followed by a second one while reopening.
    cut_again: u64,
    /// Images redb repaired when it opened them.
    repaired: u64,
    starts: usize,
    signals: usize,
    results: usize,
    histories: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_power_cuts() {
    let seed = seed_from_env(SEED_ENV);
    let cuts = match std::env::var(SOAK_ENV) {
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("{SOAK_ENV} must be a number, got {n:?}")),
        Err(_) => CI_CUTS,
    };
    println!("power cuts: {cuts} from seed {seed} ({SEED_ENV}={seed} replays them)");
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    for i in 0..cuts {
        let cut_seed = seed.wrapping_add(i);
        let outcome = AssertUnwindSafe(one_cut(cut_seed, &mut tally))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            eprintln!(
                "power cut {i} of {cuts} failed; replay it alone with \
                 {SEED_ENV}={cut_seed} {SOAK_ENV}=1"
            );
            std::panic::resume_unwind(panic);
        }
    }
    println!("{tally:?} in {:?}", started.elapsed());
}

/// One cut: a workload on a fresh file, the power cut, the checks.
async fn one_cut(seed: u64, tally: &mut Tally) {
    let mut rng = SplitMix(seed);
    let plans: Vec<(String, Vec<Op>)> = (0..rng.between(1, 4))
        .map(|w| (format!("wf-{w}"), random_plan(&mut rng)))
        .collect();
    let mode = random_mode(&mut rng);
    let db = temp_db();
    let power = PowerCut::new();
    let engine = builder()
        .power_cut(power.clone())
        .open(&db.path)
        .await
        .expect("open a fresh file with the power on");
    power.cut_after(rng.between(0, CUT_WITHIN_CHANGES), mode);

    let engine = Arc::new(engine);
    let ledger = Ledger::default();
    let mut callers = tokio::task::JoinSet::new();
    for (id, ops) in &plans {
        let caller = drive(
            engine.clone(),
            id.clone(),
            ops.clone(),
            ledger.clone(),
            SplitMix(rng.next_u64()),
        );
        callers.spawn(caller);
    }
    let deadline = tokio::time::Instant::now() + WORKLOAD_LIMIT;
    while !power.is_cut() && !callers.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = callers.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    let idle = !power.is_cut();
    let image = power.cut(mode);
    // The answers are all in: nothing is acknowledged with the power off.
    callers.abort_all();
    while callers.join_next().await.is_some() {}
    drop(engine);
    let told = std::mem::take(&mut *ledger.lock().expect("ledger lock"));

    tally.cuts += 1;
    tally.idle += idle as u64;
    tally.in_commit += (image.unsynced > 0) as u64;
    tally.kept_some += (image.kept > 0) as u64;
    tally.torn += image.torn.is_some() as u64;
    tally.starts += told.starts.len();
    tally.signals += told.signals.len();
    tally.results += told.results.len();
    tally.histories += told.histories.len();

    let mut context = format!(
        "seed {seed}, {mode:?}, {} unsynced changes, {} kept, torn {:?}",
        image.unsynced, image.kept, image.torn
    );
    let mut image = image;
    if rng.between(1, CUT_AGAIN_ONE_IN) == 1 {
        let again = cut_again(&image, db.dir.path(), &mut rng).await;
        tally.cut_again += 1;
        context.push_str(&format!(
            "; cut again while reopening: {:?}, {} unsynced changes, {} kept, torn {:?}",
            again.1, again.0.unsynced, again.0.kept, again.0.torn
        ));
        image = again.0;
    }
    let bytes = image.bytes.clone();
    let path = db.dir.path().join("after-the-cut.steadfast");
    write_image(&image, &path);
    tally.repaired += redb_opens(&bytes, db.dir.path(), &context) as u64;
    let engine = builder()
        .open(&path)
        .await
        .unwrap_or_else(|e| panic!("the file must open after a power cut ({context}): {e}"));
    check_told(&engine, &told, &context).await;
    finish(&engine, &plans, &told, &context).await;
    engine.shutdown().await.expect("shut down");
}

fn random_mode(rng: &mut SplitMix) -> CutMode {
    match rng.between(0, 1) {
        0 => CutMode::SyncedOnly,
        _ => CutMode::Torn {
            seed: rng.next_u64(),
        },
    }
}

/// Opens the image with an engine on a second `PowerCut`, which strikes
/// while redb repairs the file or soon after, and returns what that cut
/// leaves. Nothing new is acknowledged meanwhile, so the same checks apply.
async fn cut_again(image: &CutImage, dir: &Path, rng: &mut SplitMix) -> (CutImage, CutMode) {
    let path = dir.join("reopening.steadfast");
    write_image(image, &path);
    let mode = random_mode(rng);
    let power = PowerCut::new();
    power.cut_after(rng.between(0, CUT_AGAIN_WITHIN_CHANGES), mode);
    // The open fails when the cut comes first; either way is fine here.
    let engine = builder().power_cut(power.clone()).open(&path).await;
    let image = power.cut(mode);
    drop(engine);
    (image, mode)
}

/// Writes the image's file at `path` and its journal beside it, as the
/// disk would hold them after the cut.
fn write_image(image: &CutImage, path: &Path) {
    std::fs::write(path, &image.bytes).expect("write the image");
    std::fs::write(support::journal_of(path), &image.journal).expect("write the image's journal");
}

/// Opens a copy of the image with redb itself, without the engine's
/// fallbacks: it must neither fail nor panic, and the file must pass redb's
/// integrity check. Returns whether redb repaired it.
fn redb_opens(bytes: &[u8], dir: &Path, context: &str) -> bool {
    let path = dir.join("redb-check.redb");
    std::fs::write(&path, bytes).expect("write the image");
    let repaired = Arc::new(AtomicBool::new(false));
    let flag = repaired.clone();
    let mut db = redb::Builder::new()
        .set_repair_callback(move |_| flag.store(true, Ordering::SeqCst))
        .create(&path)
        .unwrap_or_else(|e| panic!("redb must open the file after a power cut ({context}): {e}"));
    let intact = db
        .check_integrity()
        .unwrap_or_else(|e| panic!("redb's integrity check failed ({context}): {e}"));
    assert!(intact, "redb found the file damaged ({context})");
    drop(db);
    std::fs::remove_file(&path).expect("remove the copy");
    repaired.load(Ordering::SeqCst)
}

/// Everything a caller was told is in the reopened file.
async fn check_told(engine: &Engine, told: &Told, context: &str) {
    for (id, run_id) in &told.starts {
        let description = engine.describe(id).await.unwrap_or_else(|e| {
            panic!("acknowledged start of {id} lost ({context}): {e}");
        });
        assert_eq!(
            description.run_id, *run_id,
            "{id}: the acknowledged run is not the stored one ({context})"
        );
        let history = engine.history(id).await.expect("read the history");
        for (i, event) in history.iter().enumerate() {
            assert_eq!(
                event.event_id,
                i as u64 + 1,
                "{id}: event ids must run 1..n ({context}): {history:#?}"
            );
        }
        assert!(
            matches!(history[0].kind, EventKind::WorkflowStarted { .. }),
            "{id}: the history must start with WorkflowStarted ({context})"
        );
    }
    for (id, k) in &told.signals {
        let history = engine.history(id).await.expect("read the history");
        let found = history.iter().any(|e| match &e.kind {
            EventKind::WorkflowSignaled { signal_name, input } => {
                signal_name == SEQ.name() && input.decode::<u32>().ok() == Some(*k)
            }
            _ => false,
        });
        assert!(
            found,
            "{id}: acknowledged signal {k} lost ({context}): {history:#?}"
        );
    }
    for (id, result) in &told.results {
        let handle = engine
            .get_workflow_handle(MIXED, id.as_str())
            .await
            .unwrap_or_else(|e| panic!("{id}: a run with a result lost ({context}): {e}"));
        let stored = tokio::time::timeout(FINISH_LIMIT, handle.result())
            .await
            .unwrap_or_else(|_| panic!("{id}: a closed run is running again ({context})"));
        assert_eq!(
            stored.as_ref().ok(),
            Some(result),
            "{id}: the result a caller got is not the stored one ({context}): {stored:?}"
        );
    }
    check_histories(engine, told, context).await;
}

/// Each history read before the cut is the start of the stored one, event
/// for event.
async fn check_histories(engine: &Engine, told: &Told, context: &str) {
    for (id, seen) in &told.histories {
        let history = engine.history(id).await.expect("read the history");
        assert!(
            history.len() >= seen.len() && history[..seen.len()] == seen[..],
            "{id}: events read before the cut changed or were lost ({context}):\n\
             read {seen:#?}\nstored {history:#?}"
        );
    }
}

/// The reopened engine finishes every run the file holds: the signals are
/// sent again (a workflow counts each number once), and each run must end
/// with its plan's result and a well-formed history.
async fn finish(engine: &Engine, plans: &[(String, Vec<Op>)], told: &Told, context: &str) {
    for (id, ops) in plans {
        match engine.describe(id).await {
            Ok(_) => {}
            Err(ClientError::NotFound { .. }) => {
                assert!(!told.starts.contains_key(id), "{id}: lost ({context})");
                continue;
            }
            Err(e) => panic!("{id}: describe failed after the cut ({context}): {e}"),
        }
        for k in 1..=signal_count(ops) {
            match engine.signal(id, SEQ, k).await {
                Ok(()) | Err(ClientError::WorkflowClosed { .. }) => {}
                Err(e) => panic!("{id}: signal {k} refused after the cut ({context}): {e}"),
            }
        }
        let handle = engine
            .get_workflow_handle(MIXED, id.as_str())
            .await
            .expect("a handle of a stored run");
        let result = tokio::time::timeout(FINISH_LIMIT, handle.result())
            .await
            .unwrap_or_else(|_| panic!("{id}: did not finish after the cut ({context})"));
        assert_eq!(
            result.as_ref().ok(),
            Some(&expected_result(ops)),
            "{id}: wrong result after the cut ({context}): {result:?}"
        );
        let history = engine.history(id).await.expect("read the history");
        assert_history_well_formed(&history);
    }
    check_histories(engine, told, context).await;
}
