//! Promise: the engine is a cheap cloneable handle that shuts down cleanly
//! from any clone (also through an `Arc`), once: shutdown is idempotent,
//! and calls after it fail with `ClientError::ShutDown`. Shutdown drains:
//! no activity attempt starts once it began, attempts already running get
//! the `graceful_shutdown_timeout` period to finish and their results are recorded;
//! those still running after it are abandoned and run again after the
//! next open. Opening outside a tokio runtime is an error, not a panic.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, EventKind,
    ListFilter, OpenError, SignalDef, Worker, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::{TempDb, temp_db};
use tokio::sync::Semaphore;

/// Runs `hold` `n` times at once and returns how many completed.
const HOLDERS: WorkflowDef<u32, u32> = WorkflowDef::new("Holders");
const PING: SignalDef<()> = SignalDef::new("ping");
/// Waits for a permit of the test's gate (never on attempt 2 and later),
/// counting the attempts whose code started.
const HOLD: ActivityDef<u32, u32> = ActivityDef::new("hold");

/// What the activity shares with the test.
#[derive(Clone)]
struct Gate {
    /// Attempts whose code started.
    started: Arc<AtomicU32>,
    /// Permits to finish, given by the test.
    release: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            started: Arc::default(),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    fn started(&self) -> u32 {
        self.started.load(Ordering::SeqCst)
    }
}

async fn holders(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(600));
    let calls = (0..n).map(|i| ctx.execute_activity(HOLD, i, options.clone()));
    let done = futures::future::try_join_all(calls).await?;
    Ok(done.len() as u32)
}

async fn open(db: &TempDb, gate: &Gate, grace: Duration, slots: usize) -> Engine {
    let gate = gate.clone();
    Engine::builder()
        .graceful_shutdown_timeout(grace)
        .workflow(HOLDERS, holders)
        .worker(
            Worker::new("default")
                .activity(HOLD, move |ctx: ActivityContext, i: u32| {
                    let gate = gate.clone();
                    async move {
                        gate.started.fetch_add(1, Ordering::SeqCst);
                        if ctx.attempt() == 1 {
                            // A permit is never closed: only waits.
                            let _ = gate.release.acquire().await.map(|p| p.forget());
                        }
                        Ok::<_, ActivityError>(i)
                    }
                })
                .max_concurrent_activities(slots),
        )
        .open(&db.path)
        .await
        .expect("open")
}

/// Waits until `engine` refuses new starts: shutdown has begun.
async fn until_shutdown_began(engine: &Engine) {
    support::eventually(Duration::from_secs(10), || async {
        let refused = engine
            .start_workflow(HOLDERS, "probe", 0, WorkflowOptions::new())
            .await;
        matches!(refused, Err(ClientError::ShutDown)).then_some(())
    })
    .await;
}

/// Shuts the engine down and, once the shutdown has begun (so during its
/// drain), lets one held attempt finish.
async fn shut_down_releasing(engine: &Engine, gate: &Gate) {
    let stopping = tokio::spawn({
        let engine = engine.clone();
        async move { engine.shutdown().await }
    });
    until_shutdown_began(engine).await;
    gate.release.add_permits(1);
    stopping.await.unwrap().expect("shutdown");
}

async fn until_started(gate: &Gate, n: u32) {
    support::eventually(Duration::from_secs(10), || async {
        (gate.started() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_shared_through_an_arc_shuts_down_from_any_clone() {
    let db = temp_db();
    let gate = Gate::new();
    let engine = Arc::new(open(&db, &gate, Duration::ZERO, 8).await);
    let clone = (*engine).clone();
    let worker = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .start_workflow(HOLDERS, "shared", 0, WorkflowOptions::new())
                .await
                .map(|run| run.run_id())
        }
    });
    worker.await.unwrap().expect("start from a task");

    clone.shutdown().await.expect("shutdown from a clone");

    let refused = engine
        .start_workflow(HOLDERS, "after", 0, WorkflowOptions::new())
        .await;
    assert!(matches!(refused, Err(ClientError::ShutDown)), "{refused:?}");
    engine.shutdown().await.expect("shutdown through the Arc");
    drop(clone);
    drop(engine);
    // The file was let go: it opens again.
    let again = open(&db, &gate, Duration::ZERO, 8).await;
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_idempotent_and_later_calls_are_refused() {
    let db = temp_db();
    let gate = Gate::new();
    let engine = open(&db, &gate, Duration::ZERO, 8).await;
    engine
        .start_workflow(HOLDERS, "idle", 0, WorkflowOptions::new())
        .await
        .unwrap();

    let (a, b) = tokio::join!(engine.shutdown(), engine.shutdown());
    a.unwrap();
    b.unwrap();
    engine.shutdown().await.expect("a third shutdown");

    let start = engine
        .start_workflow(HOLDERS, "late", 0, WorkflowOptions::new())
        .await;
    assert!(matches!(start, Err(ClientError::ShutDown)), "{start:?}");
    let signal = engine.signal("idle", PING, ()).await;
    assert!(matches!(signal, Err(ClientError::ShutDown)), "{signal:?}");
    let describe = engine.describe("idle").await;
    assert!(
        matches!(describe, Err(ClientError::ShutDown)),
        "{describe:?}"
    );
    let list = engine.list(&ListFilter::new()).await;
    assert!(matches!(list, Err(ClientError::ShutDown)), "{list:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_attempt_finishes_within_the_grace_period_and_is_recorded() {
    let db = temp_db();
    let gate = Gate::new();
    let engine = open(&db, &gate, Duration::from_secs(60), 8).await;
    engine
        .start_workflow(HOLDERS, "drained", 1, WorkflowOptions::new())
        .await
        .unwrap();
    until_started(&gate, 1).await;

    shut_down_releasing(&engine, &gate).await;
    drop(engine);

    let engine = open(&db, &gate, Duration::ZERO, 8).await;
    let run = engine
        .get_workflow_handle(HOLDERS, "drained")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 1);
    assert_eq!(gate.started(), 1, "the attempt ran again after the reopen");
    let history = engine.history("drained").await.unwrap();
    support::assert_history_well_formed(&history);
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCompleted { attempt: 1, .. })),
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attempt_starts_once_shutdown_began() {
    let db = temp_db();
    let gate = Gate::new();
    // One slot: the second attempt waits for the first one's.
    let engine = open(&db, &gate, Duration::from_secs(60), 1).await;
    engine
        .start_workflow(HOLDERS, "queued", 2, WorkflowOptions::new())
        .await
        .unwrap();
    until_started(&gate, 1).await;

    // Frees the slot the queued attempt waits for, during the drain.
    shut_down_releasing(&engine, &gate).await;

    assert_eq!(gate.started(), 1, "an attempt started during shutdown");
    drop(engine);
    let engine = open(&db, &gate, Duration::ZERO, 1).await;
    // The queued attempt never began, so it keeps its number: it runs as
    // attempt 1 after the reopen, and waits for its permit.
    gate.release.add_permits(1);
    let run = engine.get_workflow_handle(HOLDERS, "queued").await.unwrap();
    assert_eq!(run.result().await.unwrap(), 2);
    let history = engine.history("queued").await.unwrap();
    support::assert_history_well_formed(&history);
    assert!(
        history
            .iter()
            .all(|e| !matches!(e.kind, EventKind::ActivityFailed { .. })),
        "no attempt was counted as interrupted: {history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_past_the_grace_period_is_abandoned_and_runs_after_reopen() {
    let db = temp_db();
    let gate = Gate::new();
    let engine = open(&db, &gate, Duration::from_millis(50), 8).await;
    engine
        .start_workflow(HOLDERS, "abandoned", 1, WorkflowOptions::new())
        .await
        .unwrap();
    until_started(&gate, 1).await;

    // Never released: the grace period ends it.
    engine.shutdown().await.expect("shutdown");
    drop(engine);

    let engine = open(&db, &gate, Duration::ZERO, 8).await;
    let run = engine
        .get_workflow_handle(HOLDERS, "abandoned")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 1);
    assert_eq!(gate.started(), 2);
    let history = engine.history("abandoned").await.unwrap();
    support::assert_history_well_formed(&history);
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCompleted { attempt: 2, .. })),
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[test]
fn opening_outside_a_tokio_runtime_is_an_error() {
    let db = temp_db();

    let opened = futures::executor::block_on(Engine::builder().open(&db.path));

    assert!(matches!(opened, Err(OpenError::NoRuntime)), "{opened:?}");
}
