//! Promise: storage faults never lose or invent an acknowledged change. A
//! call whose write failed returns a typed error and was not acknowledged
//! (`ClientError::DiskFull` for a full disk, `ClientError::Storage` for an
//! I/O error or a failed fsync); everything
//! acknowledged before the fault is in the file after it; and once the disk
//! heals the engine goes on by itself: a run whose step could not be stored
//! is parked, then resumes from its last durable step (on its next message,
//! on its own, or when the file is opened again), with each completed
//! activity run once.
//!
//! Faults come from a `FaultInjector` wrapped around redb's file backend
//! (the hidden `fault-injection` feature): run with
//! `cargo test --features fault-injection --test faults`.
#![cfg(feature = "fault-injection")]

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, FaultInjector, OpenError, ParkReason, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{eventually, temp_db};

/// Waits for one `go` signal and returns it.
const WAIT: WorkflowDef<(), u32> = WorkflowDef::new("Wait");
/// Runs `record("a")`, waits for `go` (n), runs `record("b{n}")`.
const STEPS: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Steps");
/// Runs `record("x")`, sleeps 200 ms on a durable timer, runs `record("y")`.
const TIMED: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Timed");
/// Receives `item` signals forever.
const COLLECT: WorkflowDef<(), ()> = WorkflowDef::new("Collect");

const GO: SignalDef<u32> = SignalDef::new("go");
const ITEM: SignalDef<u32> = SignalDef::new("item");

/// Counts its runs per name, and returns the name.
const RECORD: ActivityDef<String, String> = ActivityDef::new("record");

/// How many times each `record` name ran.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
}

async fn wait(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    Ok(ctx.recv_signal(GO).await?)
}

async fn steps(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let a = ctx
        .execute_activity(RECORD, "a".to_string(), options())
        .await?;
    let n = ctx.recv_signal(GO).await?;
    let b = ctx
        .execute_activity(RECORD, format!("b{n}"), options())
        .await?;
    Ok(vec![a, b])
}

async fn timed(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let x = ctx
        .execute_activity(RECORD, "x".to_string(), options())
        .await?;
    ctx.sleep(Duration::from_millis(200)).await?;
    let y = ctx
        .execute_activity(RECORD, "y".to_string(), options())
        .await?;
    Ok(vec![x, y])
}

async fn collect(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    loop {
        ctx.recv_signal(ITEM).await?;
    }
}

fn builder(runs: &Runs) -> EngineBuilder {
    let runs = runs.clone();
    Engine::builder()
        .workflow(WAIT, wait)
        .workflow(STEPS, steps)
        .workflow(TIMED, timed)
        .workflow(COLLECT, collect)
        .activity(RECORD, move |_ctx: ActivityContext, name: String| {
            let runs = runs.clone();
            async move {
                let mut runs = runs.lock().expect("runs lock");
                *runs.entry(name.clone()).or_default() += 1;
                Ok::<_, ActivityError>(name)
            }
        })
}

async fn open_faulty(path: &Path, runs: &Runs, faults: &FaultInjector) -> Engine {
    builder(runs)
        .fault_injector(faults.clone())
        .open(path)
        .await
        .expect("open with a fault injector")
}

async fn open_plain(path: &Path, runs: &Runs) -> Engine {
    builder(runs).open(path).await.expect("open without faults")
}

fn ran(runs: &Runs, name: &str) -> u32 {
    runs.lock()
        .expect("runs lock")
        .get(name)
        .copied()
        .unwrap_or(0)
}

/// Bounds a step of a test, so that a hang fails the test instead of
/// stalling it.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within 20 s"),
    }
}

fn assert_storage_error<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    match result {
        Err(ClientError::Storage(message)) => {
            assert!(!message.is_empty(), "{what}: the error says what failed");
        }
        other => panic!("{what}: expected ClientError::Storage, got {other:?}"),
    }
}

fn assert_disk_full<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    match result {
        Err(err @ ClientError::DiskFull { .. }) => {
            let text = err.to_string();
            assert!(
                text.contains("free space"),
                "{what}: says what to do: {text}"
            );
            assert!(!text.contains("open the engine again"), "{what}: {text}");
        }
        other => panic!("{what}: expected ClientError::DiskFull, got {other:?}"),
    }
}

/// How a fault is reported to the caller of a call that met it.
#[derive(Clone, Copy)]
enum Reported {
    /// `ClientError::Storage`: an I/O error.
    Storage,
    /// `ClientError::DiskFull`.
    DiskFull,
}

impl Reported {
    fn check<T: std::fmt::Debug>(self, result: Result<T, ClientError>, what: &str) {
        match self {
            Reported::Storage => assert_storage_error(result, what),
            Reported::DiskFull => assert_disk_full(result, what),
        }
    }
}

async fn history_has(
    engine: &Engine,
    workflow_id: &str,
    pred: impl Fn(&EventKind) -> bool,
) -> bool {
    match engine.history(workflow_id).await {
        Ok(events) => events.iter().any(|e| pred(&e.kind)),
        Err(_) => false,
    }
}

/// Starts `fresh` under `fault`, expects a storage error, heals the disk and
/// checks that the engine goes on and that `fresh` was never stored.
async fn a_start_that_could_not_be_stored(fault: impl Fn(&FaultInjector), reported: Reported) {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    bounded(
        "the first start",
        engine.start_workflow(WAIT, "before", (), WorkflowOptions::new()),
    )
    .await
    .expect("a start before the fault");

    fault(&faults);
    let failed = bounded(
        "a start under the fault",
        engine.start_workflow(WAIT, "fresh", (), WorkflowOptions::new()),
    )
    .await;
    reported.check(failed, "a start under the fault");
    assert!(faults.injected() > 0, "the fault was hit");

    // Healed: the same engine takes writes again, without a restart.
    faults.clear();
    let after = bounded(
        "a start after the fault",
        engine.start_workflow(WAIT, "after", (), WorkflowOptions::new()),
    )
    .await
    .expect("a start once the disk is healthy");
    bounded("signal", engine.signal("after", GO, 7))
        .await
        .unwrap();
    assert_eq!(bounded("result", after.result()).await.unwrap(), 7);
    bounded("signal", engine.signal("before", GO, 3))
        .await
        .unwrap();
    bounded("shutdown", engine.shutdown()).await.unwrap();

    let engine = open_plain(&db.path, &runs).await;
    match bounded("describe", engine.describe("fresh")).await {
        Err(ClientError::NotFound { workflow_id }) => assert_eq!(workflow_id, "fresh"),
        other => panic!("the failed start must not be stored, got {other:?}"),
    }
    let before = engine.describe("before").await.unwrap();
    assert_eq!(before.status, WorkflowStatus::Completed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_start_whose_write_fails_is_refused_and_not_stored() {
    a_start_that_could_not_be_stored(FaultInjector::fail_writes, Reported::Storage).await;
}

#[tokio::test]
async fn a_start_on_a_full_disk_is_refused_and_not_stored() {
    a_start_that_could_not_be_stored(FaultInjector::disk_full, Reported::DiskFull).await;
}

/// A failed fsync leaves the outcome unknown (the bytes may have reached the
/// file): the call is not acknowledged, and after reopening the run is
/// either absent or a normal running workflow, never half a start.
#[tokio::test]
async fn a_start_whose_sync_fails_is_refused_and_whole_or_absent() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    faults.fail_syncs();
    let failed = bounded(
        "a start under the fault",
        engine.start_workflow(WAIT, "fresh", (), WorkflowOptions::new()),
    )
    .await;
    assert_storage_error(failed, "a start whose sync failed");
    assert!(faults.injected() > 0, "the fault was hit");
    bounded("shutdown", engine.shutdown()).await.unwrap();

    let engine = open_plain(&db.path, &runs).await;
    match bounded("describe", engine.describe("fresh")).await {
        Err(ClientError::NotFound { .. }) => {}
        Ok(description) => {
            assert_eq!(description.status, WorkflowStatus::Running);
            bounded("signal", engine.signal("fresh", GO, 5))
                .await
                .unwrap();
            let handle = engine.get_workflow_handle(WAIT, "fresh").await.unwrap();
            assert_eq!(bounded("result", handle.result()).await.unwrap(), 5);
        }
        Err(other) => panic!("expected the run or NotFound, got {other:?}"),
    }
    engine.shutdown().await.unwrap();
}

/// Concurrent signals (and starts) while writes begin to fail: every
/// acknowledged one is in the file after reopening, exactly once and in
/// order; none that failed is; and the workflows take signals again once
/// the disk heals.
#[tokio::test]
async fn nothing_acknowledged_is_lost_when_writes_fail() {
    nothing_acknowledged_is_lost(FaultInjector::fail_writes, Reported::Storage).await;
}

/// As above, with a full disk.
#[tokio::test]
async fn nothing_acknowledged_is_lost_when_the_disk_is_full() {
    nothing_acknowledged_is_lost(FaultInjector::disk_full, Reported::DiskFull).await;
}

/// As above, with writes failing in the middle of commits: a few pages of a
/// commit reach the file, the rest do not.
#[tokio::test]
async fn nothing_acknowledged_is_lost_when_a_commit_is_cut_short() {
    for allowed in [1, 3, 7] {
        nothing_acknowledged_is_lost(
            |faults| faults.fail_writes_after(allowed),
            Reported::Storage,
        )
        .await;
    }
}

async fn nothing_acknowledged_is_lost(fault: impl Fn(&FaultInjector), reported: Reported) {
    const WORKFLOWS: u32 = 6;
    const SIGNALS: u32 = 60;
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = Arc::new(open_faulty(&db.path, &runs, &faults).await);
    for w in 0..WORKFLOWS {
        engine
            .start_workflow(COLLECT, format!("collect-{w}"), (), WorkflowOptions::new())
            .await
            .unwrap();
    }

    // Senders: each sends increasing values in order, remembering which
    // were acknowledged, until one is acknowledged after the disk healed.
    // The fault starts while they run, and ends later.
    let healed = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for w in 0..WORKFLOWS {
        let engine = engine.clone();
        let healed = healed.clone();
        senders.push(tokio::spawn(async move {
            let id = format!("collect-{w}");
            let mut acked = Vec::new();
            let mut refused = Vec::new();
            for value in 0.. {
                let after_healing = healed.load(Ordering::SeqCst);
                match engine.signal(&id, ITEM, value).await {
                    Ok(()) => {
                        acked.push(value);
                        if after_healing && value >= SIGNALS {
                            break;
                        }
                    }
                    // A full disk is told apart: never an I/O error, nor
                    // "parked" with the advice to open the engine again.
                    Err(ClientError::DiskFull { .. }) if matches!(reported, Reported::DiskFull) => {
                        refused.push(value)
                    }
                    Err(
                        ClientError::Storage(_)
                        | ClientError::Parked { .. }
                        | ClientError::Corrupt { .. },
                    ) if matches!(reported, Reported::Storage) => refused.push(value),
                    Err(other) => panic!("signal {value} to {id}: unexpected error {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (acked, refused)
        }));
    }
    let starter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..30u32 {
                let id = format!("late-{i}");
                if engine
                    .start_workflow(WAIT, id.clone(), (), WorkflowOptions::new())
                    .await
                    .is_ok()
                {
                    acked.push(id);
                }
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(40)).await;
    fault(&faults);
    tokio::time::sleep(Duration::from_millis(60)).await;
    faults.clear();
    healed.store(true, Ordering::SeqCst);

    let mut acked_signals = Vec::new();
    for sender in senders {
        acked_signals.push(bounded("a sender", sender).await.unwrap());
    }
    let acked_starts = bounded("the starter", starter).await.unwrap();
    assert!(faults.injected() > 0, "the fault was hit");
    let refused: usize = acked_signals.iter().map(|(_, r)| r.len()).sum();
    assert!(refused > 0, "some signals met the fault");
    let engine = Arc::into_inner(engine).expect("no other engine reference");
    bounded("shutdown", engine.shutdown()).await.unwrap();

    let engine = open_plain(&db.path, &runs).await;
    for (w, (acked, refused)) in acked_signals.iter().enumerate() {
        let history = engine.history(&format!("collect-{w}")).await.unwrap();
        let stored: Vec<u32> = history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::WorkflowSignaled { input, .. } => Some(input.decode::<u32>().unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(
            &stored, acked,
            "collect-{w}: the stored signals are exactly the acknowledged ones, in order \
             (refused: {refused:?})"
        );
    }
    for id in &acked_starts {
        let description = engine.describe(id).await.unwrap();
        assert_eq!(description.status, WorkflowStatus::Running, "{id}");
    }
    engine.shutdown().await.unwrap();
}

/// Starts `STEPS` as "steps" and waits until its first activity completed
/// (the run then waits for `go`).
async fn start_steps(engine: &Engine) -> steadfast::WorkflowHandle<Vec<String>> {
    let handle = engine
        .start_workflow(STEPS, "steps", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        history_has(engine, "steps", |k| {
            matches!(k, EventKind::ActivityCompleted { .. })
        })
        .await
        .then_some(())
    })
    .await;
    handle
}

/// A signal whose step cannot be stored fails and parks the run, which
/// says so (never "open the engine again"); a message to it while the disk
/// fails gets the storage error; once the disk heals the run resumes from
/// its last durable step on its next message, and no completed activity
/// runs again.
#[tokio::test]
async fn a_parked_run_resumes_on_its_next_message() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    let handle = start_steps(&engine).await;

    faults.fail_writes();
    let failed = bounded("a signal under the fault", engine.signal("steps", GO, 1)).await;
    assert_storage_error(failed, "a signal whose step could not be stored");
    // While the injected fault lasts the file cannot be opened again, so
    // describe may fail too; when it answers, it names the storage failure.
    match bounded("describe", engine.describe("steps")).await {
        Ok(d) => match &d.parked {
            Some(reason @ ParkReason::Storage(_)) => {
                assert!(reason.to_string().contains("resumes by itself"), "{reason}")
            }
            other => panic!("expected ParkReason::Storage, got {other:?}"),
        },
        failed => assert_storage_error(failed, "describe while the disk fails"),
    }
    let again = bounded("a signal to the parked run", engine.signal("steps", GO, 1)).await;
    match again {
        Err(ClientError::Storage(message)) => {
            assert!(!message.contains("open the engine again"), "{message}")
        }
        other => panic!("expected ClientError::Storage, got {other:?}"),
    }

    faults.clear();
    // The next message loads the run again. A storage error here means the
    // file was not open again yet, and the signal was not recorded.
    eventually(Duration::from_secs(10), || async {
        match engine.signal("steps", GO, 2).await {
            Ok(()) => Some(()),
            Err(ClientError::Storage(_) | ClientError::Parked { .. }) => None,
            Err(other) => panic!("a signal after the fault: {other:?}"),
        }
    })
    .await;
    let result = bounded("the result", handle.result()).await.unwrap();
    assert_eq!(result, vec!["a".to_string(), "b2".to_string()]);
    assert_eq!(ran(&runs, "a"), 1, "a completed activity never runs again");
    assert_eq!(ran(&runs, "b2"), 1);
    assert_eq!(ran(&runs, "b1"), 0, "the refused signal was never seen");
    let description = engine.describe("steps").await.unwrap();
    assert_eq!(description.parked, None);
    engine.shutdown().await.unwrap();
}

/// A describe is a message too: once the disk heals it loads the parked run
/// again, which then reports itself running and no longer parked.
#[tokio::test]
async fn a_parked_run_is_running_again_once_described_after_the_fault() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    engine
        .start_workflow(STEPS, "steps", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        history_has(&engine, "steps", |k| {
            matches!(k, EventKind::ActivityCompleted { .. })
        })
        .await
        .then_some(())
    })
    .await;
    faults.fail_syncs();
    let failed = bounded("a signal under the fault", engine.signal("steps", GO, 1)).await;
    assert_storage_error(failed, "a signal whose sync failed");
    faults.clear();

    let description = eventually(Duration::from_secs(10), || async {
        match engine.describe("steps").await {
            Ok(d) if d.parked.is_none() => Some(d),
            Ok(_) | Err(ClientError::Storage(_)) => None,
            Err(other) => panic!("describe after the fault: {other:?}"),
        }
    })
    .await;
    // The failed sync may or may not have kept the signal: the run either
    // still waits for it or went on with it, never both.
    let history = engine.history("steps").await.unwrap();
    let signaled = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowSignaled { .. }))
        .count();
    assert!(signaled <= 1, "{history:#?}");
    if signaled == 0 {
        assert_eq!(description.status, WorkflowStatus::Running);
        bounded("a signal after the fault", engine.signal("steps", GO, 2))
            .await
            .unwrap();
    }
    let handle = engine.get_workflow_handle(STEPS, "steps").await.unwrap();
    let result = bounded("the result", handle.result()).await.unwrap();
    let expected = if signaled == 0 { "b2" } else { "b1" };
    assert_eq!(result, vec!["a".to_string(), expected.to_string()]);
    assert_eq!(ran(&runs, "a"), 1, "a completed activity never runs again");
    assert_eq!(ran(&runs, expected), 1);
    engine.shutdown().await.unwrap();
}

/// A durable timer that fires on a full disk cannot be stored; the run is
/// parked, and resumes by itself once the disk has room again, without any
/// message or restart.
#[tokio::test]
async fn a_parked_run_resumes_by_itself_once_the_disk_heals() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    let handle = engine
        .start_workflow(TIMED, "timed", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        history_has(&engine, "timed", |k| {
            matches!(k, EventKind::TimerStarted { .. })
        })
        .await
        .then_some(())
    })
    .await;
    faults.disk_full();
    // The timer fires into the full disk.
    eventually(Duration::from_secs(10), || async {
        (faults.injected() > 0).then_some(())
    })
    .await;
    // Meanwhile a description is either the parked run, or the full-disk
    // error: the file cannot be read until it can be opened again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    match bounded("describe under the fault", engine.describe("timed")).await {
        Ok(description) => {
            assert_eq!(description.status, WorkflowStatus::Running);
            if let Some(reason) = description.parked {
                assert!(
                    matches!(reason, ParkReason::DiskFull(_)),
                    "expected the run parked on the full disk, got {reason:?}"
                );
                assert!(reason.to_string().contains("resumes by itself"), "{reason}");
            }
        }
        Err(ClientError::DiskFull { message }) => assert!(!message.is_empty()),
        Err(other) => panic!("describe under the fault: {other:?}"),
    }
    assert!(faults.injected() > 0, "the fault was hit");

    faults.clear();
    // No message: the run is loaded again by itself, and no longer parked.
    eventually(Duration::from_secs(10), || async {
        match engine.describe("timed").await {
            Ok(description) => description.parked.is_none().then_some(()),
            Err(_) => None,
        }
    })
    .await;
    let result = bounded("the result", handle.result()).await.unwrap();
    assert_eq!(result, vec!["x".to_string(), "y".to_string()]);
    assert_eq!(ran(&runs, "x"), 1, "a completed activity never runs again");
    assert_eq!(ran(&runs, "y"), 1);
    let history = engine.history("timed").await.unwrap();
    support::assert_history_well_formed(&history);
    engine.shutdown().await.unwrap();
}

/// A run parked by a full disk needs no reopening: a signal, a cancel or a
/// terminate to it answers the full-disk error (with its advice), not
/// `Parked`; describe says the disk is full; and once space is freed the
/// run takes messages again, from its last durable step.
#[tokio::test]
async fn messages_to_a_run_parked_by_a_full_disk_get_the_disk_full_error() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    let handle = start_steps(&engine).await;

    faults.disk_full();
    let failed = bounded("a signal on the full disk", engine.signal("steps", GO, 1)).await;
    assert_disk_full(failed, "a signal on the full disk");
    // Parked now: every message gets the full-disk error.
    let failed = bounded("a signal to the parked run", engine.signal("steps", GO, 1)).await;
    assert_disk_full(failed, "a signal to the parked run");
    let failed = bounded("a cancel", engine.cancel("steps")).await;
    assert_disk_full(failed, "a cancel to the parked run");
    let failed = bounded("a terminate", engine.terminate("steps", "no")).await;
    assert_disk_full(failed, "a terminate to the parked run");
    match bounded("describe", engine.describe("steps")).await {
        Ok(description) => match description.parked {
            Some(reason @ ParkReason::DiskFull(_)) => {
                let text = reason.to_string();
                assert!(
                    text.contains("full") && text.contains("by itself"),
                    "{text}"
                );
            }
            other => panic!("expected the run parked on the full disk, got {other:?}"),
        },
        // The file could not be opened again on the full disk yet.
        other => assert_disk_full(other, "describe on the full disk"),
    }

    faults.clear();
    eventually(Duration::from_secs(10), || async {
        match engine.signal("steps", GO, 2).await {
            Ok(()) => Some(()),
            Err(ClientError::DiskFull { .. }) => None,
            Err(other) => panic!("a signal after space was freed: {other:?}"),
        }
    })
    .await;
    let result = bounded("the result", handle.result()).await.unwrap();
    assert_eq!(result, vec!["a".to_string(), "b2".to_string()]);
    assert_eq!(ran(&runs, "a"), 1, "a completed activity never runs again");
    assert_eq!(ran(&runs, "b1"), 0, "no refused signal was seen");
    engine.shutdown().await.unwrap();
}

/// Creating a file on a full disk is refused as `OpenError::DiskFull`,
/// naming the file, and leaves nothing behind; with space it opens.
#[tokio::test]
async fn creating_a_file_on_a_full_disk_is_refused_as_disk_full() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    faults.disk_full();
    match builder(&runs)
        .fault_injector(faults.clone())
        .open(&db.path)
        .await
    {
        Err(err @ OpenError::DiskFull { .. }) => {
            let OpenError::DiskFull { path, .. } = &err else {
                unreachable!()
            };
            assert_eq!(path, &db.path, "the error names the file");
            assert!(err.to_string().contains("free space"), "{err}");
        }
        Err(other) => panic!("expected OpenError::DiskFull, got {other:?}"),
        Ok(_) => panic!("a file cannot be created on a full disk"),
    }
    let left: Vec<_> = std::fs::read_dir(db.dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is left behind: {left:?}");
    faults.clear();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    engine.shutdown().await.unwrap();
}

/// A run parked on a failed write resumes when the file is opened again
/// (here without faults), from its last durable step.
#[tokio::test]
async fn a_parked_run_resumes_when_the_file_is_opened_again() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    engine
        .start_workflow(STEPS, "steps", (), WorkflowOptions::new())
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        history_has(&engine, "steps", |k| {
            matches!(k, EventKind::ActivityCompleted { .. })
        })
        .await
        .then_some(())
    })
    .await;
    faults.fail_writes();
    let failed = bounded("a signal under the fault", engine.signal("steps", GO, 1)).await;
    assert_storage_error(failed, "a signal whose step could not be stored");
    bounded("shutdown under the fault", engine.shutdown())
        .await
        .unwrap();

    let engine = open_plain(&db.path, &runs).await;
    bounded("a signal after reopening", engine.signal("steps", GO, 2))
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(STEPS, "steps").await.unwrap();
    let result = bounded("the result", handle.result()).await.unwrap();
    assert_eq!(result, vec!["a".to_string(), "b2".to_string()]);
    assert_eq!(ran(&runs, "a"), 1);
    assert_eq!(ran(&runs, "b2"), 1);
    assert_eq!(ran(&runs, "b1"), 0);
    engine.shutdown().await.unwrap();
}

/// The faulty backend keeps redb's file lock: a second engine on the same
/// file is refused, as with the plain backend.
#[tokio::test]
async fn the_faulty_backend_still_locks_the_file() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    match builder(&runs).open(&db.path).await {
        Err(OpenError::AlreadyInUse { path }) => assert_eq!(path, db.path),
        Err(other) => panic!("expected AlreadyInUse, got {other:?}"),
        Ok(_) => panic!("a second engine must not open the file"),
    }
    match builder(&runs)
        .fault_injector(FaultInjector::new())
        .open(&db.path)
        .await
    {
        Err(OpenError::AlreadyInUse { .. }) => {}
        Err(other) => panic!("expected AlreadyInUse, got {other:?}"),
        Ok(_) => panic!("a second engine must not open the file"),
    }
    engine.shutdown().await.unwrap();
    let engine = open_plain(&db.path, &runs).await;
    engine.shutdown().await.unwrap();
}

/// A signal whose fsync failed has an unknown outcome (it may be in the
/// file): retried with the same request ID until acknowledged, it is in
/// the history exactly once, after a reopen too.
#[tokio::test]
async fn a_signal_retried_with_its_request_id_after_a_failed_sync_is_delivered_once() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    let engine = open_faulty(&db.path, &runs, &faults).await;
    bounded(
        "start",
        engine.start_workflow(COLLECT, "dedup", (), WorkflowOptions::new()),
    )
    .await
    .unwrap();
    let options = steadfast::SignalOptions::new().with_request_id("item-1");
    faults.fail_syncs();
    let failed = bounded(
        "a signal under the fault",
        engine.signal_with_options("dedup", ITEM, 1, options.clone()),
    )
    .await;
    assert_storage_error(failed, "a signal whose sync failed");
    faults.clear();
    // The caller does not know whether it arrived: it retries, same ID.
    eventually(Duration::from_secs(20), || {
        let (engine, options) = (&engine, options.clone());
        async move {
            match engine.signal_with_options("dedup", ITEM, 1, options).await {
                Ok(()) => Some(()),
                Err(ClientError::Storage(_) | ClientError::Parked { .. }) => None,
                Err(other) => panic!("unexpected error on retry: {other:?}"),
            }
        }
    })
    .await;
    bounded("shutdown", engine.shutdown()).await.unwrap();
    let engine = open_plain(&db.path, &runs).await;
    let history = engine.history("dedup").await.unwrap();
    let delivered = history
        .iter()
        .filter(|e| {
            matches!(
                &e.kind,
                EventKind::WorkflowSignaledWithOptions { request_id: Some(id), .. } if id == "item-1"
            )
        })
        .count();
    assert_eq!(delivered, 1, "{history:#?}");
    engine.shutdown().await.unwrap();
}

/// `result` waits out a storage failure instead of answering it: a read of
/// the file that fails is retried until it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_waits_out_a_storage_failure() {
    let db = temp_db();
    let runs = Runs::default();
    let faults = FaultInjector::new();
    // No page cache to speak of: reads reach the disk.
    let engine = builder(&runs)
        .fault_injector(faults.clone())
        .file_cache_bytes(0)
        .open(&db.path)
        .await
        .expect("open with a fault injector");
    let done = engine
        .start_workflow(WAIT, "done", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("done", GO, 5).await.unwrap();
    assert_eq!(bounded("the first result", done.result()).await.unwrap(), 5);

    faults.fail_reads();
    let failed = bounded("describe under the fault", engine.describe("done")).await;
    assert_storage_error(failed, "a read while reads fail");
    // The closed run is not in memory: `result` reads the file, and fails.
    let waiting = tokio::spawn(async move { done.result().await });
    // Reads keep failing meanwhile (each describe is a read of its own).
    for _ in 0..3 {
        let failed = bounded("describe under the fault", engine.describe("done")).await;
        assert_storage_error(failed, "a read while reads fail");
        tokio::task::yield_now().await;
    }
    assert!(
        !waiting.is_finished(),
        "result answered a storage failure: {:?}",
        waiting.await
    );
    faults.clear();
    let result = bounded("the result after the fault", waiting)
        .await
        .unwrap();
    assert_eq!(result.unwrap(), 5);
    engine.shutdown().await.unwrap();
}
