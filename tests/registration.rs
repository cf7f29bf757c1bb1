//! Promise: registrations mean what they say. A workflow or activity name
//! registered twice on one task queue (also through two `Worker`s for the
//! queue) is refused at open with `OpenError::InvalidConfig`, naming the
//! name and both registrations; the same name on two queues is fine. A
//! start whose definition has other types than the registration on its
//! queue is refused at once with `ClientError::DefinitionMismatch`, naming
//! both, instead of parking the run.

mod support;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ClientError, Engine, OpenError, SignalDef, Worker,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::temp_db;

const GREET: WorkflowDef<String, String> = WorkflowDef::new("Greet");
/// The same name as `GREET`, with other types: what an edited definition
/// in another module might say.
const GREET_BY_NUMBER: WorkflowDef<u32, String> = WorkflowDef::new("Greet");
const GREET_COUNTING: WorkflowDef<String, u64> = WorkflowDef::new("Greet");
const HELLO: SignalDef<()> = SignalDef::new("hello");
const SHOUT: ActivityDef<String, String> = ActivityDef::new("shout");

async fn greet(_ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    Ok(format!("Hello, {name}!"))
}

async fn greet_politely(_ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    Ok(format!("Good day, {name}."))
}

async fn shout(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

async fn whisper(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
    Ok(text.to_lowercase())
}

fn invalid_config(err: OpenError) -> String {
    match err {
        OpenError::InvalidConfig(message) => message,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test]
async fn a_workflow_registered_twice_is_refused_naming_both() {
    let db = temp_db();
    let first_line = line!() + 2;
    let builder = Engine::builder()
        .workflow(GREET, greet)
        .workflow(GREET, greet_politely);

    let message = invalid_config(builder.open(&db.path).await.unwrap_err());

    assert!(message.contains("\"Greet\""), "{message}");
    assert!(message.contains("\"default\""), "{message}");
    assert!(message.contains("greet_politely"), "{message}");
    assert!(message.contains("registration::greet "), "{message}");
    // Both calls are located in this file, on their own lines.
    for line in [first_line, first_line + 1] {
        assert!(
            message.contains(&format!("registration.rs:{line}:")),
            "line {line}: {message}"
        );
    }
    assert!(!db.path.exists(), "the file was created");
}

#[tokio::test]
async fn an_activity_registered_twice_through_two_workers_is_refused() {
    let db = temp_db();
    let builder = Engine::builder()
        .worker(Worker::new("shouting").activity(SHOUT, shout))
        .worker(Worker::new("shouting").activity(SHOUT, whisper));

    let message = invalid_config(builder.open(&db.path).await.unwrap_err());

    assert!(message.contains("activity type \"shout\""), "{message}");
    assert!(message.contains("\"shouting\""), "{message}");
    assert!(message.contains("registration::shout "), "{message}");
    assert!(message.contains("whisper"), "{message}");
}

#[tokio::test]
async fn one_name_on_two_queues_and_two_workers_for_one_queue_are_fine() {
    let db = temp_db();
    let engine = Engine::builder()
        .worker(Worker::new("a").workflow(GREET, greet))
        .worker(Worker::new("b").workflow(GREET, greet_politely))
        .worker(Worker::new("b").activity(SHOUT, shout))
        .open(&db.path)
        .await
        .unwrap();
    let on_b = WorkflowOptions::new().with_task_queue("b");

    let polite = engine
        .start_workflow(GREET, "on-b", "Ada".to_string(), on_b)
        .await
        .unwrap();

    assert_eq!(polite.result().await.unwrap(), "Good day, Ada.");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_with_an_empty_queue_name_is_refused() {
    let db = temp_db();

    let message = invalid_config(
        Engine::builder()
            .worker(Worker::new("").workflow(GREET, greet))
            .open(&db.path)
            .await
            .unwrap_err(),
    );

    assert!(message.contains("task queue name is empty"), "{message}");
}

#[tokio::test]
async fn a_start_with_other_types_than_registered_is_refused_naming_both() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(GREET, greet)
        .open(&db.path)
        .await
        .unwrap();

    let input = engine
        .start_workflow(GREET_BY_NUMBER, "by-number", 7, WorkflowOptions::new())
        .await
        .unwrap_err();
    let output = engine
        .signal_with_start(
            GREET_COUNTING,
            "counting",
            "Ada".to_string(),
            WorkflowOptions::new(),
            HELLO,
            (),
        )
        .await
        .unwrap_err();

    match &input {
        ClientError::DefinitionMismatch {
            workflow_type,
            task_queue,
            registered,
            given,
        } => {
            assert_eq!(workflow_type, "Greet");
            assert_eq!(task_queue, "default");
            assert!(registered.contains("alloc::string::String, alloc::string::String"));
            assert!(given.contains("u32"), "{given}");
        }
        other => panic!("expected DefinitionMismatch, got {other:?}"),
    }
    assert!(input.to_string().contains("u32"), "{input}");
    assert!(
        matches!(&output, ClientError::DefinitionMismatch { given, .. } if given.contains("u64")),
        "{output:?}"
    );
    // Nothing was started.
    for id in ["by-number", "counting"] {
        assert!(matches!(
            engine.describe(id).await,
            Err(ClientError::NotFound { .. })
        ));
    }
    // The registered definition still starts.
    let run = engine
        .start_workflow(GREET, "matching", "Ada".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "Hello, Ada!");
    engine.shutdown().await.unwrap();
}
