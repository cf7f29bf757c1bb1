//! Promise: a workflow that awaits a future that is not its context's
//! (`tokio::time::sleep`, a channel, I/O) does not hang silently. The run
//! is parked with `ParkReason::ForeignFuture`, which names the mistake
//! (and is logged): at once when the code waits on nothing of its context,
//! or as soon as the foreign future wakes it between activations.

mod support;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use steadfast::{
    Engine, ParkReason, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::{eventually, temp_db};

/// Awaits `tokio::time::sleep` and nothing else.
const TOKIO_SLEEP: WorkflowDef<(), ()> = WorkflowDef::new("TokioSleep");
/// Holds an hour's durable timer (not awaited), and awaits a channel.
const CHANNEL: WorkflowDef<(), ()> = WorkflowDef::new("Channel");

/// The sending half of the channel `CHANNEL` waits on.
static SENDER: Mutex<Option<tokio::sync::oneshot::Sender<()>>> = Mutex::new(None);
static RECEIVER: Mutex<Option<tokio::sync::oneshot::Receiver<()>>> = Mutex::new(None);

async fn tokio_sleep(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}

async fn channel(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    let _timer = ctx.sleep(Duration::from_secs(3600));
    let receiver = RECEIVER.lock().unwrap().take();
    if let Some(receiver) = receiver {
        let _ = receiver.await;
    }
    Ok(())
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(TOKIO_SLEEP, tokio_sleep)
        .workflow(CHANNEL, channel)
        .open(path)
        .await
        .expect("open the engine")
}

async fn parked_reason(engine: &Engine, workflow_id: &str) -> ParkReason {
    eventually(Duration::from_secs(10), || async {
        engine.describe(workflow_id).await.unwrap().parked
    })
    .await
}

#[tokio::test]
async fn a_workflow_waiting_on_nothing_of_its_context_is_parked_at_once() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(TOKIO_SLEEP, "tokio-sleep", (), WorkflowOptions::new())
        .await
        .unwrap();
    // Parked by its first activation, before anything could wake it.
    let description = engine.describe("tokio-sleep").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    let reason = description.parked.expect("the run is parked");
    assert!(matches!(reason, ParkReason::ForeignFuture(_)), "{reason:?}");
    assert!(
        reason.to_string().contains("tokio::time::sleep"),
        "{reason}"
    );
    // The same when the run is replayed from the file.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    assert!(matches!(
        parked_reason(&engine, "tokio-sleep").await,
        ParkReason::ForeignFuture(_)
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_foreign_wake_between_activations_parks_the_run() {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    *SENDER.lock().unwrap() = Some(sender);
    *RECEIVER.lock().unwrap() = Some(receiver);
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(CHANNEL, "channel", (), WorkflowOptions::new())
        .await
        .unwrap();
    // It waits with a timer outstanding, so nothing looks wrong yet.
    assert_eq!(engine.describe("channel").await.unwrap().parked, None);
    let sender = SENDER.lock().unwrap().take().unwrap();
    sender.send(()).unwrap();
    let reason = parked_reason(&engine, "channel").await;
    assert!(
        matches!(&reason, ParkReason::ForeignFuture(detail) if detail.contains("between activations")),
        "{reason:?}"
    );
    // Parked, not closed: the code never ran past the channel.
    let history = engine.history("channel").await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, steadfast::EventKind::WorkflowCompleted { .. })),
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}
