//! Promise: `engine.start_workflows` starts every workflow it is given,
//! answers each in order with its handle or its own error (an ID already
//! running, a bad option, the same ID twice in one call), and every start
//! it acknowledged is durable and runs to its end, also after the engine
//! is reopened.

mod support;

use steadfast::{
    ClientError, Engine, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::temp_db;

/// Waits for `go`, then returns its input doubled.
const DOUBLE: WorkflowDef<u32, u32> = WorkflowDef::new("Double");
const GO: SignalDef<()> = SignalDef::new("go");

async fn double(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(n * 2)
}

async fn open(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(DOUBLE, double)
        .open(path)
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_start_is_answered_on_its_own_and_runs() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(DOUBLE, "taken", 0, WorkflowOptions::new())
        .await
        .unwrap();

    let mut starts: Vec<(String, u32, WorkflowOptions)> = (0..500)
        .map(|i| (format!("bulk-{i}"), i, WorkflowOptions::new()))
        .collect();
    starts.push(("taken".into(), 1, WorkflowOptions::new()));
    starts.push(("bulk-7".into(), 2, WorkflowOptions::new()));
    starts.push((String::new(), 3, WorkflowOptions::new()));
    let answers = engine.start_workflows(DOUBLE, starts).await.unwrap();
    assert_eq!(answers.len(), 503);
    for (i, answer) in answers[..500].iter().enumerate() {
        let handle = answer.as_ref().unwrap_or_else(|e| panic!("bulk-{i}: {e}"));
        assert_eq!(handle.workflow_id(), format!("bulk-{i}"));
    }
    assert!(
        matches!(&answers[500], Err(ClientError::AlreadyStarted { workflow_id, .. }) if workflow_id == "taken"),
        "{:?}",
        answers[500].as_ref().err()
    );
    assert!(
        matches!(&answers[501], Err(ClientError::AlreadyStarted { workflow_id, .. }) if workflow_id == "bulk-7"),
        "{:?}",
        answers[501].as_ref().err()
    );
    assert!(
        matches!(&answers[502], Err(ClientError::InvalidArgument(_))),
        "{:?}",
        answers[502].as_ref().err()
    );
    let counts = engine.count_workflows().await.unwrap();
    assert_eq!(counts.get(WorkflowStatus::Running), 501);
    engine.shutdown().await.unwrap();

    // Durable: after reopening, each runs to its end with its own input.
    let engine = open(&db.path).await;
    for i in 0..500u32 {
        engine.signal(&format!("bulk-{i}"), GO, ()).await.unwrap();
    }
    for i in 0..500u32 {
        let handle = engine
            .get_workflow_handle(DOUBLE, &format!("bulk-{i}"))
            .await
            .unwrap();
        assert_eq!(handle.result().await.unwrap(), i * 2);
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_read_only_engine_refuses_the_whole_call() {
    let db = temp_db();
    open(&db.path).await.shutdown().await.unwrap();
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    let starts = [("x".to_string(), 1, WorkflowOptions::new())];
    assert!(matches!(
        reader.start_workflows(DOUBLE, starts).await,
        Err(ClientError::ReadOnly { .. })
    ));
    reader.shutdown().await.unwrap();
}
