//! The SayHello tutorial: an activity, a workflow that calls it, a worker on
//! task queue `my-task-queue`, and a client that runs the workflow and prints
//! its result. No server to start first: the engine is this process and the
//! file `hello.steadfast` in the current folder.
//!
//! Run it with `cargo run --example hello` (as often as you like: each run
//! starts the workflow ID again once the previous run has closed).

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Worker, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions,
};

// The durable names, typed once.
const SAY_HELLO: ActivityDef<String, String> = ActivityDef::new("say_hello");
const SAY_HELLO_WORKFLOW: WorkflowDef<String, String> = WorkflowDef::new("SayHello");

// Activity: may do anything (I/O, calls to other services); retried on failure.
async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

// Workflow: deterministic orchestration; every step is recorded before it moves on.
async fn say_hello_workflow(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::schedule_to_close(Duration::from_secs(5));
    Ok(ctx.execute_activity(SAY_HELLO, name, options).await?)
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    // The worker: registers the workflow and the activity on a task queue.
    let worker = Worker::new("my-task-queue")
        .workflow(SAY_HELLO_WORKFLOW, say_hello_workflow)
        .activity(SAY_HELLO, say_hello);
    let engine = Engine::builder()
        .worker(worker)
        .open("hello.steadfast")
        .await?;

    // The client: starts the workflow and waits for its result.
    let run = engine
        .start_workflow(
            SAY_HELLO_WORKFLOW,
            "hello-world-workflow-id-001",
            "Alice".to_string(),
            WorkflowOptions::new().with_task_queue("my-task-queue"),
        )
        .await?;
    println!("Workflow result: {}", run.result().await?);
    engine.shutdown().await?;
    Ok(())
}
