//! Promise: the SayHello tutorial works as written, with no server: a worker
//! on `my-task-queue` runs the workflow `hello-world-workflow-id-001` with
//! input "Alice" and the client gets "Hello, Alice!"; the same workflow ID
//! can be run again on the same file once the previous run has closed; and
//! the run's event history is readable, typed, ordered and timestamped.

mod support;

use std::time::{Duration, SystemTime};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Event, EventKind, Worker,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};

const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
const SAY_HELLO_WORKFLOW: WorkflowDef<String, String> = WorkflowDef::new("SayHello");
const WORKFLOW_ID: &str = "hello-world-workflow-id-001";
const TASK_QUEUE: &str = "my-task-queue";

async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

async fn say_hello_workflow(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::schedule_to_close(Duration::from_secs(5));
    Ok(ctx.execute_activity(SAY_HELLO, name, options).await?)
}

fn worker() -> Worker {
    Worker::new(TASK_QUEUE)
        .workflow(SAY_HELLO_WORKFLOW, say_hello_workflow)
        .activity(SAY_HELLO, say_hello)
}

async fn open(path: &std::path::Path) -> Engine {
    Engine::builder()
        .worker(worker())
        .open(path)
        .await
        .expect("open the engine")
}

/// Runs the tutorial's client part once and returns the run's result.
async fn run_hello(engine: &Engine) -> (steadfast::RunId, String) {
    let run = engine
        .start_workflow(
            SAY_HELLO_WORKFLOW,
            WORKFLOW_ID,
            "Alice".to_string(),
            WorkflowOptions::new().with_task_queue(TASK_QUEUE),
        )
        .await
        .expect("start the workflow");
    let result = run.result().await.expect("the workflow's result");
    (run.run_id(), result)
}

/// Checks that `history` is exactly the SayHello run: started, activity
/// scheduled, activity completed, workflow completed, numbered 1..=4 with
/// timestamps that never go back and lie within `[before, after]`.
fn assert_hello_history(history: &[Event], before: SystemTime, after: SystemTime) {
    assert_eq!(history.len(), 4, "history: {history:#?}");
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event.event_id, i as u64 + 1, "event ids are 1, 2, 3, 4");
        assert!(
            event.timestamp >= before && event.timestamp <= after,
            "event {} has timestamp {:?} outside the run's time span",
            event.event_id,
            event.timestamp
        );
    }
    for pair in history.windows(2) {
        assert!(
            pair[0].timestamp <= pair[1].timestamp,
            "timestamps go back: {pair:#?}"
        );
    }

    match &history[0].kind {
        EventKind::WorkflowStarted {
            workflow_type,
            workflow_id,
            task_queue,
            input,
            ..
        } => {
            assert_eq!(workflow_type, "SayHello");
            assert_eq!(workflow_id, WORKFLOW_ID);
            assert_eq!(task_queue, TASK_QUEUE);
            assert_eq!(input.decode::<String>().unwrap(), "Alice");
        }
        other => panic!("event 1 should be WorkflowStarted, got {other:?}"),
    }
    let scheduled_seq = match &history[1].kind {
        EventKind::ActivityScheduled {
            seq,
            activity_type,
            input,
            options,
            ..
        } => {
            assert_eq!(activity_type, "say_hello");
            assert_eq!(input.decode::<String>().unwrap(), "Alice");
            assert_eq!(
                options.schedule_to_close_timeout,
                Some(Duration::from_secs(5))
            );
            *seq
        }
        other => panic!("event 2 should be ActivityScheduled, got {other:?}"),
    };
    match &history[2].kind {
        EventKind::ActivityCompleted {
            seq,
            attempt,
            result,
            ..
        } => {
            assert_eq!(
                *seq, scheduled_seq,
                "the result belongs to the scheduled activity"
            );
            assert_eq!(*attempt, 1);
            assert_eq!(result.decode::<String>().unwrap(), "Hello, Alice!");
        }
        other => panic!("event 3 should be ActivityCompleted, got {other:?}"),
    }
    match &history[3].kind {
        EventKind::WorkflowCompleted { result, .. } => {
            assert_eq!(result.decode::<String>().unwrap(), "Hello, Alice!");
        }
        other => panic!("event 4 should be WorkflowCompleted, got {other:?}"),
    }
}

#[tokio::test]
async fn say_hello_returns_the_greeting() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let (_, result) = run_hello(&engine).await;
    assert_eq!(result, "Hello, Alice!");

    let description = engine.describe(WORKFLOW_ID).await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(description.workflow_type, "SayHello");
    assert_eq!(description.task_queue, TASK_QUEUE);
    assert_eq!(description.parked, None);
    assert_eq!(description.history_length, 4);
    assert!(description.close_time.is_some());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn history_is_typed_ordered_and_timestamped() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let before = SystemTime::now();
    let (_, result) = run_hello(&engine).await;
    let after = SystemTime::now();
    assert_eq!(result, "Hello, Alice!");

    let history = engine.history(WORKFLOW_ID).await.unwrap();
    assert_hello_history(&history, before, after);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_same_workflow_id_runs_again_once_closed() {
    let db = support::temp_db();

    // Twice in one engine: the second start comes after the first closed.
    let engine = open(&db.path).await;
    let (first, result) = run_hello(&engine).await;
    assert_eq!(result, "Hello, Alice!");
    let (second, result) = run_hello(&engine).await;
    assert_eq!(result, "Hello, Alice!");
    assert_ne!(first, second, "each run gets its own run ID");
    engine.shutdown().await.unwrap();

    // And again after reopening the file, as `cargo run --example hello`
    // run a second time does.
    let engine = open(&db.path).await;
    let before = SystemTime::now();
    let (third, result) = run_hello(&engine).await;
    let after = SystemTime::now();
    assert_eq!(result, "Hello, Alice!");
    assert_ne!(third, first);
    assert_ne!(third, second);

    // The history of the workflow ID is the latest run's alone.
    let description = engine.describe(WORKFLOW_ID).await.unwrap();
    assert_eq!(description.run_id, third);
    assert_eq!(description.status, WorkflowStatus::Completed);
    let history = engine.history(WORKFLOW_ID).await.unwrap();
    assert_hello_history(&history, before, after);
    engine.shutdown().await.unwrap();
}
