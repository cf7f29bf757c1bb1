//! Promise: a query answers at once and changes nothing. `engine.query`
//! returns the workflow's state while it runs, right after a restart without
//! waiting for the run to make progress, and after it completed (the history
//! is replayed to answer), also after the file is reopened. It changes
//! neither the workflow's state nor its history. An unknown query name is
//! `ClientError::UnknownQuery`; an unknown workflow is `ClientError::NotFound`;
//! a run whose task queue no worker of this engine serves is
//! `ClientError::NoWorker`. A query may take an argument (`QueryDef<R, I>`,
//! `engine.query_with`); one of another type is `ClientError::InvalidArgument`.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, QueryDef,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::temp_db;

/// Adds up `add` signals until the total reaches the input; returns it.
const TALLY: WorkflowDef<u32, u32> = WorkflowDef::new("Tally");
/// Runs the `prepare` activity, then sleeps an hour.
const SLEEPER: WorkflowDef<String, String> = WorkflowDef::new("Sleeper");

const ADD: SignalDef<u32> = SignalDef::new("add");
const TOTAL: QueryDef<u32> = QueryDef::new("total");
const PHASE: QueryDef<String> = QueryDef::new("phase");
const UNKNOWN: QueryDef<u32> = QueryDef::new("no-such-query");
/// Registered by `Tally`; its handler always panics.
const BROKEN: QueryDef<u32> = QueryDef::new("broken");
/// The total plus the argument, registered by `Tally`.
const TOTAL_PLUS: QueryDef<u32, u32> = QueryDef::new("total_plus");
/// `total_plus` asked with an argument of another type.
const TOTAL_PLUS_TEXT: QueryDef<u32, String> = QueryDef::new("total_plus");
/// `total` asked with the wrong answer type.
const TOTAL_AS_TEXT: QueryDef<Vec<String>> = QueryDef::new("total");

const PREPARE: ActivityDef<String, String> = ActivityDef::new("prepare");

/// A limit on how long an answer "at once" may take: far longer than any
/// answer needs, far shorter than the waits the workflows are parked on.
const AT_ONCE: Duration = Duration::from_secs(5);

fn set(state: &Mutex<String>, value: impl Into<String>) -> Result<(), WorkflowError> {
    *state
        .lock()
        .map_err(|_| WorkflowError::new("state lock poisoned"))? = value.into();
    Ok(())
}

async fn tally(ctx: WorkflowContext, target: u32) -> Result<u32, WorkflowError> {
    let total = Arc::new(AtomicU32::new(0));
    let phase = Arc::new(Mutex::new("adding".to_string()));
    let (t, p) = (total.clone(), phase.clone());
    ctx.handle_query(TOTAL, move || t.load(Ordering::SeqCst));
    ctx.handle_query(PHASE, move || {
        p.lock().map(|s| s.clone()).unwrap_or_default()
    });
    ctx.handle_query(BROKEN, || -> u32 { panic!("a bug in the handler") });
    let plus = total.clone();
    ctx.handle_query_with(TOTAL_PLUS, move |n: u32| plus.load(Ordering::SeqCst) + n);
    while total.load(Ordering::SeqCst) < target {
        let n = ctx.recv_signal(ADD).await?;
        total.fetch_add(n, Ordering::SeqCst);
    }
    set(&phase, "done")?;
    Ok(total.load(Ordering::SeqCst))
}

async fn sleeper(ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    let phase = Arc::new(Mutex::new("preparing".to_string()));
    let p = phase.clone();
    ctx.handle_query(PHASE, move || {
        p.lock().map(|s| s.clone()).unwrap_or_default()
    });
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    let prepared = ctx.execute_activity(PREPARE, input, options).await?;
    set(&phase, format!("sleeping after {prepared}"))?;
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(prepared)
}

async fn open(path: &Path, prepared: Arc<AtomicU32>) -> Engine {
    Engine::builder()
        .workflow(TALLY, tally)
        .workflow(SLEEPER, sleeper)
        .activity(PREPARE, move |_ctx: ActivityContext, input: String| {
            let prepared = prepared.clone();
            async move {
                prepared.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ActivityError>(format!("prepared {input}"))
            }
        })
        .open(path)
        .await
        .expect("open the engine")
}

async fn query<R: serde::de::DeserializeOwned>(
    engine: &Engine,
    workflow_id: &str,
    def: QueryDef<R>,
) -> Result<R, ClientError> {
    tokio::time::timeout(AT_ONCE, engine.query(workflow_id, def))
        .await
        .unwrap_or_else(|_| panic!("query {def:?} on {workflow_id:?} did not answer at once"))
}

#[tokio::test]
async fn a_query_answers_a_running_workflow_at_once() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    engine
        .start_workflow(TALLY, "tally", 10, WorkflowOptions::new())
        .await
        .unwrap();
    // Right after the start: the handler was registered before the first wait.
    assert_eq!(query(&engine, "tally", TOTAL).await.unwrap(), 0);
    engine.signal("tally", ADD, 3).await.unwrap();
    assert_eq!(query(&engine, "tally", TOTAL).await.unwrap(), 3);
    engine.signal("tally", ADD, 4).await.unwrap();
    assert_eq!(query(&engine, "tally", TOTAL).await.unwrap(), 7);
    assert_eq!(query(&engine, "tally", PHASE).await.unwrap(), "adding");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_changes_neither_state_nor_history() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    let run = engine
        .start_workflow(TALLY, "unchanged", 10, WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("unchanged", ADD, 5).await.unwrap();
    let history = engine.history("unchanged").await.unwrap();
    let described = engine.describe("unchanged").await.unwrap();
    for _ in 0..20 {
        assert_eq!(query(&engine, "unchanged", TOTAL).await.unwrap(), 5);
        assert_eq!(query(&engine, "unchanged", PHASE).await.unwrap(), "adding");
    }
    assert_eq!(engine.history("unchanged").await.unwrap(), history);
    let after = engine.describe("unchanged").await.unwrap();
    assert_eq!(after.history_length, described.history_length);
    assert_eq!(after.history_length, history.len() as u64);

    engine.signal("unchanged", ADD, 5).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 10);
    // Completed: queries replay the history and still write nothing.
    let closed = engine.history("unchanged").await.unwrap();
    for _ in 0..5 {
        assert_eq!(query(&engine, "unchanged", TOTAL).await.unwrap(), 10);
    }
    assert_eq!(engine.history("unchanged").await.unwrap(), closed);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_answers_right_after_a_restart() {
    let db = temp_db();
    let prepared = Arc::new(AtomicU32::new(0));
    let engine = open(&db.path, prepared.clone()).await;
    engine
        .start_workflow(
            SLEEPER,
            "sleeper",
            "order-7".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    let phase = support::eventually(Duration::from_secs(10), || async {
        let phase = engine.query("sleeper", PHASE).await.ok()?;
        phase.starts_with("sleeping").then_some(phase)
    })
    .await;
    assert_eq!(phase, "sleeping after prepared order-7");
    let history = engine.history("sleeper").await.unwrap();
    engine.shutdown().await.unwrap();

    // The run is parked on a one-hour timer; the first call after opening
    // is the query, and it answers from the replayed state.
    let engine = open(&db.path, prepared.clone()).await;
    assert_eq!(
        query(&engine, "sleeper", PHASE).await.unwrap(),
        "sleeping after prepared order-7"
    );
    assert_eq!(engine.history("sleeper").await.unwrap(), history);
    assert_eq!(
        prepared.load(Ordering::SeqCst),
        1,
        "replay did not run the activity again"
    );
    let description = engine.describe("sleeper").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert_eq!(description.pending_timers.len(), 1);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_answers_after_completion_and_after_reopening() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    let run = engine
        .start_workflow(TALLY, "finished", 6, WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("finished", ADD, 2).await.unwrap();
    engine.signal("finished", ADD, 4).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 6);
    assert_eq!(query(&engine, "finished", TOTAL).await.unwrap(), 6);
    assert_eq!(query(&engine, "finished", PHASE).await.unwrap(), "done");
    engine.shutdown().await.unwrap();

    let engine = open(&db.path, Arc::default()).await;
    let description = engine.describe("finished").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert_eq!(query(&engine, "finished", TOTAL).await.unwrap(), 6);
    assert_eq!(query(&engine, "finished", PHASE).await.unwrap(), "done");
    let err = query(&engine, "finished", UNKNOWN).await.unwrap_err();
    assert!(matches!(err, ClientError::UnknownQuery { .. }), "{err:?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_query_name_is_a_typed_error() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    engine
        .start_workflow(TALLY, "unknown-query", 1, WorkflowOptions::new())
        .await
        .unwrap();
    let err = query(&engine, "unknown-query", UNKNOWN).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::UnknownQuery { workflow_id, query }
                if workflow_id == "unknown-query" && query == "no-such-query"
        ),
        "{err:?}"
    );
    // The run is unharmed.
    engine.signal("unknown-query", ADD, 1).await.unwrap();
    let run = engine
        .get_workflow_handle(TALLY, "unknown-query")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 1);
    engine.shutdown().await.unwrap();
}

/// A run on a task queue no worker of this engine serves has no code here
/// to answer: the error says so, for a running run and for a closed one
/// whose file is opened without that queue's worker.
#[tokio::test]
async fn a_query_to_a_run_whose_queue_no_worker_serves_says_so() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    let elsewhere = WorkflowOptions::new().with_task_queue("elsewhere");
    engine
        .start_workflow(TALLY, "unserved", 1, elsewhere)
        .await
        .unwrap();
    let no_worker = |err: &ClientError| {
        matches!(
            err,
            ClientError::NoWorker { workflow_id, task_queue }
                if workflow_id == "unserved" && task_queue == "elsewhere"
        ) && err
            .to_string()
            .contains("no worker of this engine serves task queue")
    };
    let err = query(&engine, "unserved", TOTAL).await.unwrap_err();
    assert!(no_worker(&err), "{err}");

    // Closed on an engine that serves the queue, then queried on one that
    // does not.
    engine.shutdown().await.unwrap();
    let served = Engine::builder()
        .worker(steadfast::Worker::new("elsewhere").workflow(TALLY, tally))
        .open(&db.path)
        .await
        .unwrap();
    served.signal("unserved", ADD, 1).await.unwrap();
    let run = served.get_workflow_handle(TALLY, "unserved").await.unwrap();
    assert_eq!(run.result().await.unwrap(), 1);
    assert_eq!(query(&served, "unserved", TOTAL).await.unwrap(), 1);
    served.shutdown().await.unwrap();
    let engine = open(&db.path, Arc::default()).await;
    let err = query(&engine, "unserved", TOTAL).await.unwrap_err();
    assert!(no_worker(&err), "{err}");
    engine.shutdown().await.unwrap();
}

/// A handler that panics fails its query with a typed error; the run goes
/// on (other queries, signals, its result), also once it has closed.
#[tokio::test]
async fn a_panicking_handler_fails_the_query_not_the_run() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    engine
        .start_workflow(TALLY, "broken", 2, WorkflowOptions::new())
        .await
        .unwrap();
    let assert_failed = |result: Result<u32, ClientError>| match result {
        Err(ClientError::QueryFailed {
            workflow_id,
            query,
            message,
        }) => {
            assert_eq!((workflow_id.as_str(), query.as_str()), ("broken", "broken"));
            assert!(message.contains("a bug in the handler"), "{message}");
        }
        other => panic!("expected QueryFailed, got {other:?}"),
    };
    assert_failed(query(&engine, "broken", BROKEN).await);
    assert_eq!(query(&engine, "broken", TOTAL).await.unwrap(), 0);
    engine.signal("broken", ADD, 2).await.unwrap();
    let run = engine.get_workflow_handle(TALLY, "broken").await.unwrap();
    assert_eq!(run.result().await.unwrap(), 2);
    assert_failed(query(&engine, "broken", BROKEN).await);
    assert_eq!(query(&engine, "broken", TOTAL).await.unwrap(), 2);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_of_an_unknown_workflow_is_not_found() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    let err = query(&engine, "nobody", TOTAL).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::NotFound { workflow_id } if workflow_id == "nobody"),
        "{err:?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_answer_of_the_wrong_type_is_a_payload_error() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    engine
        .start_workflow(TALLY, "wrong-type", 1, WorkflowOptions::new())
        .await
        .unwrap();
    let err = query(&engine, "wrong-type", TOTAL_AS_TEXT)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Payload(_)), "{err:?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_query_takes_an_argument_running_and_after_completion() {
    let db = temp_db();
    let engine = open(&db.path, Arc::default()).await;
    engine
        .start_workflow(TALLY, "tally-arg", 5, WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("tally-arg", ADD, 2).await.unwrap();
    assert_eq!(
        engine
            .query_with("tally-arg", TOTAL_PLUS, 40)
            .await
            .unwrap(),
        42
    );
    assert!(matches!(
        engine
            .query_with("tally-arg", TOTAL_PLUS_TEXT, "forty".into())
            .await,
        Err(ClientError::InvalidArgument(_))
    ));
    engine.signal("tally-arg", ADD, 3).await.unwrap();
    let handle = engine
        .get_workflow_handle(TALLY, "tally-arg")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 5);
    // Closed: the history is replayed, and the argument reaches the handler.
    assert_eq!(
        engine.query_with("tally-arg", TOTAL_PLUS, 1).await.unwrap(),
        6
    );
    // A query without an argument is a `QueryDef<R>`, as before.
    assert_eq!(query(&engine, "tally-arg", TOTAL).await.unwrap(), 5);
    engine.shutdown().await.unwrap();
}
