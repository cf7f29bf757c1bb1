//! Promise: bad input is a clear typed error and corrupts nothing. An
//! unknown workflow or activity type, an input of the wrong type, a payload
//! over the engine's limit, an empty or over-long workflow ID, invalid
//! options, calls on unknown or closed workflows and calls after shutdown
//! each give a typed error that says what is wrong; and afterwards the file
//! still opens, its workflows are intact, and new ones run.

mod support;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EngineBuilder, EventKind, MAX_WORKFLOW_ID_LEN, ParkReason, QueryDef, ResultError,
    RetryPolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
    WorkflowStatus,
};
use support::{eventually, temp_db};

/// Returns its input.
const ECHO: WorkflowDef<String, String> = WorkflowDef::new("Echo");
/// Waits for one `go` signal and returns it; answers `state` with "waiting".
const WAIT: WorkflowDef<(), u32> = WorkflowDef::new("Wait");
/// Never registered anywhere.
const UNREGISTERED: WorkflowDef<(), ()> = WorkflowDef::new("NobodyRunsThis");
/// Calls an activity no worker registers, with one attempt, and returns the
/// failure type it saw.
const CALL_MISSING: WorkflowDef<(), String> = WorkflowDef::new("CallMissing");
/// Calls `make_bytes(n)` once and returns the failure type, or "ok".
const BIG_RESULT: WorkflowDef<usize, String> = WorkflowDef::new("BigResult");
/// Calls an activity with each kind of invalid options and returns what
/// each refusal said.
const BAD_OPTIONS: WorkflowDef<(), Vec<String>> = WorkflowDef::new("BadOptions");

/// Stored with a `String` input, then read back as `u64`.
const TYPED_AS_STRING: WorkflowDef<String, String> = WorkflowDef::new("Typed");
const TYPED_AS_NUMBER: WorkflowDef<u64, String> = WorkflowDef::new("Typed");

const GO: SignalDef<u32> = SignalDef::new("go");
const BLOB: SignalDef<String> = SignalDef::new("blob");
const STATE: QueryDef<String> = QueryDef::new("state");

const MISSING: ActivityDef<(), ()> = ActivityDef::new("nobody_registers_this");
const MAKE_BYTES: ActivityDef<usize, String> = ActivityDef::new("make_bytes");
const NOOP: ActivityDef<(), ()> = ActivityDef::new("noop");
/// Fails every attempt with a retryable error.
const FAIL: ActivityDef<(), ()> = ActivityDef::new("fail");
/// Calls `noop` and then `fail` with the longest timeouts and retry
/// intervals a `Duration` holds, then waits for `go`; returns what `fail`
/// ended with.
const HUGE_TIMEOUTS: WorkflowDef<(), String> = WorkflowDef::new("HugeTimeouts");

async fn echo(_ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    Ok(input)
}

async fn wait(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    ctx.handle_query(STATE, || "waiting".to_string());
    Ok(ctx.recv_signal(GO).await?)
}

fn one_attempt() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(RetryPolicy::default().with_maximum_attempts(1))
}

fn failure_type<T>(result: Result<T, ActivityFailure>) -> Result<String, WorkflowError> {
    match result {
        Ok(_) => Ok("ok".to_string()),
        Err(ActivityFailure::Failed { failure, .. }) => Ok(failure.error_type),
        Err(other) => Err(WorkflowError::new(format!("unexpected: {other}"))),
    }
}

async fn call_missing(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    failure_type(ctx.execute_activity(MISSING, (), one_attempt()).await)
}

async fn big_result(ctx: WorkflowContext, n: usize) -> Result<String, WorkflowError> {
    failure_type(ctx.execute_activity(MAKE_BYTES, n, one_attempt()).await)
}

async fn make_bytes(_ctx: ActivityContext, n: usize) -> Result<String, ActivityError> {
    Ok("x".repeat(n))
}

async fn noop(_ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
    Ok(())
}

async fn fail(_ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
    Err(ActivityError::retryable("always"))
}

async fn huge_timeouts(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::MAX)
        .with_schedule_to_close_timeout(Duration::MAX)
        .with_heartbeat_timeout(Duration::MAX)
        .with_retry_policy(
            RetryPolicy::default()
                .with_initial_interval(Duration::MAX)
                .with_maximum_interval(Duration::MAX),
        );
    ctx.execute_activity(NOOP, (), options.clone()).await?;
    let failed = failure_type(ctx.execute_activity(FAIL, (), options).await)?;
    ctx.recv_signal(GO).await?;
    Ok(failed)
}

async fn bad_options(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let secs = Duration::from_secs;
    let cases = [
        ActivityOptions::default(),
        ActivityOptions::start_to_close(Duration::ZERO),
        ActivityOptions::schedule_to_close(Duration::ZERO),
        ActivityOptions::start_to_close(secs(5)).with_heartbeat_timeout(Duration::ZERO),
        ActivityOptions::start_to_close(secs(5)).with_schedule_to_start_timeout(Duration::ZERO),
        ActivityOptions::start_to_close(secs(5))
            .with_retry_policy(RetryPolicy::default().with_backoff_coefficient(0.5)),
        ActivityOptions::start_to_close(secs(5))
            .with_retry_policy(RetryPolicy::default().with_backoff_coefficient(-2.0)),
        ActivityOptions::start_to_close(secs(5))
            .with_retry_policy(RetryPolicy::default().with_backoff_coefficient(f64::NAN)),
        ActivityOptions::start_to_close(secs(5)).with_retry_policy(
            RetryPolicy::default()
                .with_initial_interval(secs(10))
                .with_maximum_interval(secs(1)),
        ),
        ActivityOptions::start_to_close(secs(5))
            .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::ZERO)),
    ];
    let mut refusals = Vec::new();
    for options in cases {
        match ctx.execute_activity(NOOP, (), options).await {
            Err(ActivityFailure::NotScheduled { message, .. }) => refusals.push(message),
            other => {
                return Err(WorkflowError::new(format!(
                    "invalid options were not refused: {other:?}"
                )));
            }
        }
    }
    // A valid call still runs after the refusals.
    ctx.execute_activity(NOOP, (), one_attempt()).await?;
    Ok(refusals)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(ECHO, echo)
        .workflow(WAIT, wait)
        .workflow(CALL_MISSING, call_missing)
        .workflow(BIG_RESULT, big_result)
        .workflow(BAD_OPTIONS, bad_options)
        .workflow(HUGE_TIMEOUTS, huge_timeouts)
        .activity(MAKE_BYTES, make_bytes)
        .activity(NOOP, noop)
        .activity(FAIL, fail)
}

async fn open(path: &Path) -> Engine {
    builder().open(path).await.expect("open the engine")
}

/// Bounds a step, so that a hang fails the test instead of stalling it.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within 20 s"),
    }
}

/// Nothing was corrupted: the file opens again, the given workflows are
/// intact (`(id, status)`), and a new workflow runs to completion.
async fn assert_file_still_works(path: &Path, intact: &[(&str, WorkflowStatus)]) {
    let engine = bounded("reopen", open(path)).await;
    for (id, status) in intact {
        let description = bounded("describe", engine.describe(id))
            .await
            .unwrap_or_else(|e| panic!("{id} is intact after bad input: {e}"));
        assert_eq!(description.status, *status, "{id}");
        let history = engine.history(id).await.unwrap();
        assert!(!history.is_empty(), "{id} keeps its history");
    }
    let handle = engine
        .start_workflow(
            ECHO,
            "still-works",
            "yes".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .expect("a new workflow starts after bad input");
    assert_eq!(bounded("result", handle.result()).await.unwrap(), "yes");
    bounded("shutdown", engine.shutdown()).await.unwrap();
}

async fn assert_not_stored(engine: &Engine, workflow_id: &str) {
    match engine.describe(workflow_id).await {
        Err(ClientError::NotFound { workflow_id: id }) => assert_eq!(id, workflow_id),
        other => panic!("{workflow_id:?} must not be stored, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_workflow_type_is_refused() {
    let db = temp_db();
    let engine = open(&db.path).await;
    match engine
        .start_workflow(UNREGISTERED, "nobody", (), WorkflowOptions::new())
        .await
    {
        Err(err @ ClientError::UnknownWorkflowType { .. }) => {
            let message = err.to_string();
            let ClientError::UnknownWorkflowType {
                workflow_type,
                task_queue,
            } = err
            else {
                unreachable!()
            };
            assert_eq!(workflow_type, "NobodyRunsThis");
            assert_eq!(task_queue, "default");
            assert!(message.contains("NobodyRunsThis"), "{message}");
            assert!(
                message.contains("register"),
                "it says what to do: {message}"
            );
        }
        other => panic!("expected UnknownWorkflowType, got {other:?}"),
    }
    assert_not_stored(&engine, "nobody").await;
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[]).await;
}

#[tokio::test]
async fn an_unknown_activity_type_fails_the_attempt_with_activity_not_registered() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(CALL_MISSING, "missing", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        bounded("result", handle.result()).await.unwrap(),
        "ActivityNotRegistered"
    );
    let history = engine.history("missing").await.unwrap();
    let failure = history
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActivityFailed { failure, .. } => Some(failure.clone()),
            _ => None,
        })
        .expect("the failed attempt is in the history");
    assert_eq!(failure.error_type, "ActivityNotRegistered");
    assert!(
        failure.message.contains("nobody_registers_this"),
        "the failure names the activity: {}",
        failure.message
    );
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[("missing", WorkflowStatus::Completed)]).await;
}

/// A stored input that no longer decodes as the registered input type parks
/// the run with a reason naming the decode problem; nothing is discarded, so
/// the run goes on once the matching code is registered again.
#[tokio::test]
async fn a_stored_input_of_the_wrong_type_parks_the_run() {
    async fn wait_typed(ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
        let n = ctx.recv_signal(GO).await?;
        Ok(format!("{input}-{n}"))
    }
    async fn wait_number(ctx: WorkflowContext, input: u64) -> Result<String, WorkflowError> {
        let n = ctx.recv_signal(GO).await?;
        Ok(format!("{input}-{n}"))
    }
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(TYPED_AS_STRING, wait_typed)
        .open(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(
            TYPED_AS_STRING,
            "typed",
            "hello".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    engine.shutdown().await.unwrap();

    // The same name, another input type.
    let engine = Engine::builder()
        .workflow(TYPED_AS_NUMBER, wait_number)
        .open(&db.path)
        .await
        .unwrap();
    // A parked run still takes signals: they are recorded, and seen once
    // the run can go on.
    bounded("signal", engine.signal("typed", GO, 1))
        .await
        .expect("a parked run still records signals");
    let reason = eventually(Duration::from_secs(10), || async {
        engine.describe("typed").await.unwrap().parked
    })
    .await;
    match reason {
        ParkReason::Unrunnable(reason) => {
            assert!(
                reason.contains("decode"),
                "the reason names the problem: {reason}"
            );
            assert!(
                reason.contains("u64"),
                "the reason names the type: {reason}"
            );
        }
        other => panic!("expected Unrunnable, got {other:?}"),
    }
    let description = engine.describe("typed").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running, "never failed");
    engine.shutdown().await.unwrap();

    // Nothing was lost: with the matching code the run goes on, and sees
    // the signal sent while it was parked.
    let engine = Engine::builder()
        .workflow(TYPED_AS_STRING, wait_typed)
        .open(&db.path)
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(TYPED_AS_STRING, "typed")
        .await
        .unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), "hello-1");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn payloads_over_the_limit_are_refused() {
    const LIMIT: usize = 1024;
    let db = temp_db();
    let engine = builder()
        .max_payload_bytes(LIMIT)
        .open(&db.path)
        .await
        .unwrap();

    // A workflow input.
    match engine
        .start_workflow(
            ECHO,
            "big-input",
            "x".repeat(2 * LIMIT),
            WorkflowOptions::new(),
        )
        .await
    {
        Err(ClientError::PayloadTooLarge { what, size, limit }) => {
            assert!(what.contains("big-input"), "it names the payload: {what}");
            assert!(size > LIMIT);
            assert_eq!(limit, LIMIT);
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_not_stored(&engine, "big-input").await;

    // A signal payload.
    engine
        .start_workflow(WAIT, "waiting", (), WorkflowOptions::new())
        .await
        .unwrap();
    match engine.signal("waiting", BLOB, "y".repeat(2 * LIMIT)).await {
        Err(ClientError::PayloadTooLarge { what, limit, .. }) => {
            assert!(what.contains("blob"), "it names the signal: {what}");
            assert_eq!(limit, LIMIT);
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    let history = engine.history("waiting").await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| matches!(e.kind, EventKind::WorkflowSignaled { .. })),
        "the refused signal is not recorded"
    );

    // An activity result: the attempt fails, without retries.
    let handle = engine
        .start_workflow(BIG_RESULT, "big-result", 2 * LIMIT, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(
        bounded("result", handle.result()).await.unwrap(),
        "PayloadTooLarge"
    );
    // Just under the limit is fine.
    let handle = engine
        .start_workflow(
            BIG_RESULT,
            "small-result",
            LIMIT / 2,
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), "ok");

    bounded("signal", engine.signal("waiting", GO, 1))
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    assert_file_still_works(
        &db.path,
        &[
            ("waiting", WorkflowStatus::Completed),
            ("big-result", WorkflowStatus::Completed),
        ],
    )
    .await;
}

#[tokio::test]
async fn empty_and_over_long_workflow_ids_are_refused() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let too_long = "w".repeat(MAX_WORKFLOW_ID_LEN + 1);
    assert_eq!(too_long.len(), 1001);
    for (label, id) in [("empty", String::new()), ("over-long", too_long.clone())] {
        match engine
            .start_workflow(ECHO, id.clone(), "x".to_string(), WorkflowOptions::new())
            .await
        {
            Err(ClientError::InvalidArgument(message)) => {
                assert!(message.contains("workflow ID"), "{label}: {message}");
            }
            other => panic!("{label} ID: expected InvalidArgument, got {other:?}"),
        }
    }
    assert!(matches!(
        engine.describe(&too_long).await,
        Err(ClientError::NotFound { .. })
    ));
    // The longest allowed ID works.
    let longest = "w".repeat(MAX_WORKFLOW_ID_LEN);
    let handle = engine
        .start_workflow(
            ECHO,
            longest.clone(),
            "x".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), "x");
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[(&longest, WorkflowStatus::Completed)]).await;
}

#[tokio::test]
async fn invalid_activity_options_are_refused_with_the_reason() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(BAD_OPTIONS, "bad-options", (), WorkflowOptions::new())
        .await
        .unwrap();
    let refusals = bounded("result", handle.result()).await.unwrap();
    let expected = [
        "schedule_to_close_timeout or start_to_close_timeout",
        "start_to_close_timeout",
        "schedule_to_close_timeout",
        "heartbeat_timeout",
        "schedule_to_start_timeout",
        "backoff_coefficient",
        "backoff_coefficient",
        "backoff_coefficient",
        "maximum_interval",
        "initial_interval",
    ];
    assert_eq!(refusals.len(), expected.len(), "{refusals:#?}");
    for (refusal, needle) in refusals.iter().zip(expected) {
        assert!(refusal.contains(needle), "{refusal:?} names {needle:?}");
    }
    // Only the valid call was recorded.
    let history = engine.history("bad-options").await.unwrap();
    let scheduled = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActivityScheduled { .. }))
        .count();
    assert_eq!(scheduled, 1, "{history:#?}");
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[("bad-options", WorkflowStatus::Completed)]).await;
}

#[tokio::test]
async fn zero_workflow_timeouts_are_refused() {
    let db = temp_db();
    let engine = open(&db.path).await;
    for (name, options) in [
        (
            "run_timeout",
            WorkflowOptions::new().with_run_timeout(Duration::ZERO),
        ),
        (
            "execution_timeout",
            WorkflowOptions::new().with_execution_timeout(Duration::ZERO),
        ),
    ] {
        match engine
            .start_workflow(ECHO, "zero", "x".to_string(), options)
            .await
        {
            Err(ClientError::InvalidArgument(message)) => {
                assert!(message.contains(name), "{message}")
            }
            other => panic!("{name}: expected InvalidArgument, got {other:?}"),
        }
    }
    assert_not_stored(&engine, "zero").await;
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[]).await;
}

/// Timeouts and retry intervals as long as a `Duration` holds are accepted
/// and never panic, now or when the run is replayed after a restart: a
/// deadline past what the clock can hold is no deadline, and a retry that
/// could never come makes the failure final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_timeouts_mean_no_limit_and_never_panic() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let options = WorkflowOptions::new()
        .with_run_timeout(Duration::MAX)
        .with_execution_timeout(Duration::MAX);
    engine
        .start_workflow(HUGE_TIMEOUTS, "huge", (), options)
        .await
        .expect("start");
    // Wait until it waits for the signal, then restart: the run is
    // replayed with its deadlines.
    eventually(Duration::from_secs(10), || async {
        let history = engine.history("huge").await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityFailed { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    engine.signal("huge", GO, 7).await.expect("signal");
    let handle = engine
        .get_workflow_handle(HUGE_TIMEOUTS, "huge")
        .await
        .unwrap();
    let failed = bounded("the result", handle.result())
        .await
        .expect("result");
    assert_eq!(failed, "ActivityError", "the retry could never come: final");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_on_an_unknown_workflow_are_not_found() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let not_found = |what: &str, result: Result<(), ClientError>| match result {
        Err(ClientError::NotFound { workflow_id }) => assert_eq!(workflow_id, "ghost", "{what}"),
        other => panic!("{what}: expected NotFound, got {other:?}"),
    };
    not_found("signal", engine.signal("ghost", GO, 1).await);
    not_found("query", engine.query("ghost", STATE).await.map(|_| ()));
    not_found("cancel", engine.cancel("ghost").await);
    not_found("terminate", engine.terminate("ghost", "test").await);
    not_found("describe", engine.describe("ghost").await.map(|_| ()));
    not_found("history", engine.history("ghost").await.map(|_| ()));
    not_found(
        "get_workflow_handle",
        engine.get_workflow_handle(WAIT, "ghost").await.map(|_| ()),
    );
    assert_not_stored(&engine, "ghost").await;
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[]).await;
}

#[tokio::test]
async fn calls_on_a_closed_workflow_are_refused_as_closed() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(WAIT, "done", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("done", GO, 5).await.unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), 5);

    let closed = |what: &str, result: Result<(), ClientError>| match result {
        Err(err @ ClientError::WorkflowClosed { .. }) => {
            let message = err.to_string();
            let ClientError::WorkflowClosed {
                workflow_id,
                status,
            } = err
            else {
                unreachable!()
            };
            assert_eq!(workflow_id, "done", "{what}");
            assert_eq!(status, WorkflowStatus::Completed, "{what}");
            assert!(message.contains("closed"), "{what}: {message}");
        }
        other => panic!("{what}: expected WorkflowClosed, got {other:?}"),
    };
    closed("signal", engine.signal("done", GO, 6).await);
    closed("cancel", engine.cancel("done").await);
    closed("terminate", engine.terminate("done", "test").await);
    // A query on a closed workflow is answered from its history, as in
    // Temporal; a query it has no handler for is a typed error.
    assert_eq!(engine.query("done", STATE).await.unwrap(), "waiting");
    match engine
        .query("done", QueryDef::<String>::new("no-such-query"))
        .await
    {
        Err(ClientError::UnknownQuery { workflow_id, query }) => {
            assert_eq!(workflow_id, "done");
            assert_eq!(query, "no-such-query");
        }
        other => panic!("expected UnknownQuery, got {other:?}"),
    }
    let history = engine.history("done").await.unwrap();
    let signals = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowSignaled { .. }))
        .count();
    assert_eq!(signals, 1, "the refused signal is not recorded");
    engine.shutdown().await.unwrap();
    assert_file_still_works(&db.path, &[("done", WorkflowStatus::Completed)]).await;
}

/// `shutdown` consumes the engine; handles taken before it outlive it, and
/// their calls return `ShutDown` at once instead of hanging.
#[tokio::test]
async fn calls_after_shutdown_are_refused_not_hung() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let running = engine
        .start_workflow(WAIT, "running", (), WorkflowOptions::new())
        .await
        .unwrap();
    let finished = engine
        .start_workflow(ECHO, "finished", "x".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(bounded("result", finished.result()).await.unwrap(), "x");
    engine.shutdown().await.unwrap();

    for (what, result) in [
        (
            "result of a running workflow",
            bounded("result", running.result()).await.map(|_| ()),
        ),
        (
            "result of a finished workflow",
            bounded("result", finished.result()).await.map(|_| ()),
        ),
    ] {
        match result {
            Err(ResultError::Client(ClientError::ShutDown)) => {}
            other => panic!("{what}: expected ShutDown, got {other:?}"),
        }
    }
    for (what, described) in [
        ("running", bounded("describe", running.describe()).await),
        ("finished", bounded("describe", finished.describe()).await),
    ] {
        match described {
            Err(ClientError::ShutDown) => {}
            other => panic!("describe {what}: expected ShutDown, got {other:?}"),
        }
    }
    assert_file_still_works(&db.path, &[("running", WorkflowStatus::Running)]).await;
}

/// Dropping the engine without `shutdown` stops it too: its handles return
/// `ShutDown`, and the file opens again.
#[tokio::test]
async fn calls_after_the_engine_is_dropped_are_refused_not_hung() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let running = engine
        .start_workflow(WAIT, "running", (), WorkflowOptions::new())
        .await
        .unwrap();
    drop(engine);
    match bounded("result", running.result()).await {
        Err(ResultError::Client(ClientError::ShutDown)) => {}
        other => panic!("expected ShutDown, got {other:?}"),
    }
    // A description is read from the file while the handle keeps it open,
    // or refused; either way at once.
    match bounded("describe", running.describe()).await {
        Err(ClientError::ShutDown) => {}
        Ok(description) => assert_eq!(description.status, WorkflowStatus::Running),
        other => panic!("expected ShutDown or the description, got {other:?}"),
    }
    // The file lock goes with the last task that held the store.
    drop(running);
    let engine = eventually(Duration::from_secs(10), || async {
        builder().open(&db.path).await.ok()
    })
    .await;
    bounded("signal", engine.signal("running", GO, 3))
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(WAIT, "running").await.unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), 3);
    engine.shutdown().await.unwrap();
}
