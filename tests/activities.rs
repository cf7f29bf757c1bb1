//! Promise: workflows call activities as plain typed futures (joined, raced
//! against timers, blocking or async), each activity has a stable idempotency
//! key, and mistakes at the front door or in payload types come back as typed
//! errors, never panics.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityFailure, ActivityOptions, ClientError,
    Engine, EventKind, ResultError, RetryPolicy, Worker, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowOptions,
    WorkflowStatus,
};
use support::{eventually, temp_db};

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(30))
}

/// Sleeps the given milliseconds, then returns the label.
const DELAYED_ECHO: ActivityDef<(u64, String), String> = ActivityDef::new("delayed_echo");

async fn delayed_echo(
    _ctx: ActivityContext,
    (millis, label): (u64, String),
) -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    Ok(label)
}

// ----- join -----

const JOIN_THREE: WorkflowDef<(), Vec<String>> = WorkflowDef::new("JoinThree");

async fn join_three(ctx: WorkflowContext, (): ()) -> Result<Vec<String>, WorkflowError> {
    // They finish in another order than they are called: b, c, then a.
    let a = ctx.execute_activity(DELAYED_ECHO, (60, "a".into()), options());
    let b = ctx.execute_activity(DELAYED_ECHO, (0, "b".into()), options());
    let c = ctx.execute_activity(DELAYED_ECHO, (30, "c".into()), options());
    let (a, b, c) = futures::join!(a, b, c);
    Ok(vec![a?, b?, c?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_activities_give_their_results_in_call_order() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(JOIN_THREE, join_three)
        .activity(DELAYED_ECHO, delayed_echo)
        .open(&db.path)
        .await
        .unwrap();

    let handle = engine
        .start_workflow(JOIN_THREE, "join-three", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ["a", "b", "c"]);

    // All three were scheduled before any of them finished: they ran
    // concurrently, not one after another.
    let history = engine.history("join-three").await.unwrap();
    support::assert_history_well_formed(&history);
    let kinds: Vec<&EventKind> = history.iter().map(|e| &e.kind).collect();
    let first_completion = kinds
        .iter()
        .position(|k| matches!(k, EventKind::ActivityCompleted { .. }))
        .unwrap();
    let scheduled: Vec<u32> = kinds[..first_completion]
        .iter()
        .filter_map(|k| match k {
            EventKind::ActivityScheduled { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, [1, 2, 3]);
    engine.shutdown().await.unwrap();
}

// ----- select against a timer -----

/// Races `DELAYED_ECHO` (first number: its delay) against a timer (second
/// number), and says who won.
const RACE: WorkflowDef<(u64, u64), String> = WorkflowDef::new("Race");

async fn race(
    ctx: WorkflowContext,
    (activity_ms, timer_ms): (u64, u64),
) -> Result<String, WorkflowError> {
    let activity = ctx
        .execute_activity(DELAYED_ECHO, (activity_ms, "activity".into()), options())
        .fuse();
    let timer = ctx.sleep(Duration::from_millis(timer_ms)).fuse();
    futures::pin_mut!(activity, timer);
    futures::select_biased! {
        result = activity => Ok(result?),
        fired = timer => {
            fired?;
            Ok("timer".to_string())
        }
    }
}

/// The same race with `futures::future::select`.
const RACE_SELECT: WorkflowDef<(u64, u64), String> = WorkflowDef::new("RaceSelect");

async fn race_select(
    ctx: WorkflowContext,
    (activity_ms, timer_ms): (u64, u64),
) -> Result<String, WorkflowError> {
    let activity = ctx.execute_activity(DELAYED_ECHO, (activity_ms, "activity".into()), options());
    let timer = ctx.sleep(Duration::from_millis(timer_ms));
    match futures::future::select(activity, timer).await {
        futures::future::Either::Left((result, _timer)) => Ok(result?),
        futures::future::Either::Right((fired, _activity)) => {
            fired?;
            Ok("timer".to_string())
        }
    }
}

fn has_event(history: &[steadfast::Event], want: fn(&EventKind) -> bool) -> bool {
    history.iter().any(|e| want(&e.kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_raced_against_a_timer_wins_when_fast_and_loses_when_slow() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(RACE, race)
        .workflow(RACE_SELECT, race_select)
        .activity(DELAYED_ECHO, delayed_echo)
        .open(&db.path)
        .await
        .unwrap();

    for (def, name) in [(RACE, "select_biased"), (RACE_SELECT, "future::select")] {
        // A quick activity against a 60 s timer.
        let fast_id = format!("race-fast-{name}");
        let fast = engine
            .start_workflow(def, fast_id.as_str(), (0, 60_000), WorkflowOptions::new())
            .await
            .unwrap();
        assert_eq!(fast.result().await.unwrap(), "activity", "{name}");
        let history = engine.history(&fast_id).await.unwrap();
        support::assert_history_well_formed(&history);
        assert!(has_event(&history, |k| matches!(
            k,
            EventKind::ActivityCompleted { .. }
        )));
        assert!(!has_event(&history, |k| matches!(
            k,
            EventKind::TimerFired { .. }
        )));

        // A 60 s activity against a 50 ms timer.
        let slow_id = format!("race-slow-{name}");
        let slow = engine
            .start_workflow(def, slow_id.as_str(), (60_000, 50), WorkflowOptions::new())
            .await
            .unwrap();
        assert_eq!(slow.result().await.unwrap(), "timer", "{name}");
        let history = engine.history(&slow_id).await.unwrap();
        support::assert_history_well_formed(&history);
        assert!(has_event(&history, |k| matches!(
            k,
            EventKind::TimerFired { .. }
        )));
        assert!(!has_event(&history, |k| matches!(
            k,
            EventKind::ActivityCompleted { .. }
        )));
    }
    engine.shutdown().await.unwrap();
}

// ----- blocking activities -----

const BLOCKING_WAIT: ActivityDef<(), String> = ActivityDef::new("blocking_wait");
const CALL_BLOCKING: WorkflowDef<(), String> = WorkflowDef::new("CallBlocking");
const CALL_ECHO: WorkflowDef<String, String> = WorkflowDef::new("CallEcho");

/// Flags shared between the test and the blocking activity.
#[derive(Clone, Default)]
struct Gate {
    started: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_activity_does_not_stall_other_workflows() {
    let db = temp_db();
    let gate = Gate::default();
    let activity_gate = gate.clone();
    let worker = Worker::new("blocking-queue")
        .workflow(CALL_BLOCKING, |ctx: WorkflowContext, ()| async move {
            Ok::<_, WorkflowError>(ctx.execute_activity(BLOCKING_WAIT, (), options()).await?)
        })
        .blocking_activity(BLOCKING_WAIT, move |_ctx, ()| {
            let gate = &activity_gate;
            gate.started.store(true, Ordering::SeqCst);
            // Blocks its thread until the test releases it (10 s at most, so
            // that a stalled engine fails the test instead of hanging it).
            for _ in 0..1000 {
                if gate.released.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            gate.finished.store(true, Ordering::SeqCst);
            Ok("unblocked".to_string())
        });
    let engine = Engine::builder()
        .worker(worker)
        .workflow(
            CALL_ECHO,
            |ctx: WorkflowContext, label: String| async move {
                Ok::<_, WorkflowError>(
                    ctx.execute_activity(DELAYED_ECHO, (10, label), options())
                        .await?,
                )
            },
        )
        .activity(DELAYED_ECHO, delayed_echo)
        .open(&db.path)
        .await
        .unwrap();

    // One runtime thread: if the blocking activity ran on it, nothing else
    // could run until it returned.
    let blocked = engine
        .start_workflow(
            CALL_BLOCKING,
            "blocked",
            (),
            WorkflowOptions::new().with_task_queue("blocking-queue"),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || {
        let started = gate.started.load(Ordering::SeqCst);
        async move { started.then_some(()) }
    })
    .await;

    let other = engine
        .start_workflow(
            CALL_ECHO,
            "not-blocked",
            "free".to_string(),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(other.result().await.unwrap(), "free");
    assert!(
        !gate.finished.load(Ordering::SeqCst),
        "the other workflow had to wait for the blocking activity"
    );

    gate.released.store(true, Ordering::SeqCst);
    assert_eq!(blocked.result().await.unwrap(), "unblocked");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_activity_registered_on_the_builder_runs() {
    const SQUARE: ActivityDef<u64, u64> = ActivityDef::new("square");
    const CALL_SQUARE: WorkflowDef<u64, u64> = WorkflowDef::new("CallSquare");
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(CALL_SQUARE, |ctx: WorkflowContext, n: u64| async move {
            Ok::<_, WorkflowError>(ctx.execute_activity(SQUARE, n, options()).await?)
        })
        .blocking_activity(SQUARE, |_ctx, n: u64| {
            std::thread::sleep(Duration::from_millis(5));
            Ok(n * n)
        })
        .open(&db.path)
        .await
        .unwrap();

    let handle = engine
        .start_workflow(CALL_SQUARE, "square", 12, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 144);
    engine.shutdown().await.unwrap();
}

// ----- idempotency keys -----

/// Fails on its first two attempts, recording the key of every attempt.
const KEYED: ActivityDef<(), ()> = ActivityDef::new("keyed");
const CALL_KEYED_TWICE: WorkflowDef<(), ()> = WorkflowDef::new("CallKeyedTwice");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_key_is_workflow_run_and_sequence_on_every_attempt() {
    let db = temp_db();
    let keys: Arc<Mutex<Vec<(u32, String)>>> = Arc::default();
    let recorded = keys.clone();
    let engine = Engine::builder()
        .workflow(CALL_KEYED_TWICE, |ctx: WorkflowContext, ()| async move {
            let options = options().with_retry_policy(
                RetryPolicy::default().with_initial_interval(Duration::from_millis(10)),
            );
            ctx.execute_activity(KEYED, (), options.clone()).await?;
            ctx.execute_activity(KEYED, (), options).await?;
            Ok::<_, WorkflowError>(())
        })
        .activity(KEYED, move |ctx: ActivityContext, ()| {
            let recorded = recorded.clone();
            async move {
                let mut keys = recorded.lock().unwrap();
                keys.push((ctx.attempt(), ctx.idempotency_key()));
                // Only the very first activity's first two attempts fail.
                if keys.len() <= 2 {
                    return Err(ActivityError::retryable("try again"));
                }
                Ok(())
            }
        })
        .open(&db.path)
        .await
        .unwrap();

    let handle = engine
        .start_workflow(CALL_KEYED_TWICE, "keyed", (), WorkflowOptions::new())
        .await
        .unwrap();
    handle.result().await.unwrap();

    let run_id = handle.run_id();
    let first = format!("keyed/{run_id}/1");
    let second = format!("keyed/{run_id}/2");
    assert_eq!(
        *keys.lock().unwrap(),
        [
            (1, first.clone()),
            (2, first.clone()),
            (3, first),
            (1, second)
        ]
    );
    engine.shutdown().await.unwrap();
}

// ----- activity info -----

/// Fails on its first attempt; records what each attempt knows about itself.
const INFORMED: ActivityDef<(), ()> = ActivityDef::new("informed");
const CALL_INFORMED: WorkflowDef<(), ()> = WorkflowDef::new("CallInformed");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_knows_its_sequence_attempt_times_and_deadlines() {
    let db = temp_db();
    let infos: Arc<Mutex<Vec<steadfast::ActivityInfo>>> = Arc::default();
    let recorded = infos.clone();
    let worker =
        Worker::new("informed-queue").activity(INFORMED, move |ctx: ActivityContext, ()| {
            let recorded = recorded.clone();
            async move {
                let attempt = ctx.attempt();
                recorded.lock().unwrap().push(ctx.info().clone());
                if attempt == 1 {
                    return Err(ActivityError::retryable("try again"));
                }
                Ok(())
            }
        });
    let engine = Engine::builder()
        .workflow(CALL_INFORMED, |ctx: WorkflowContext, ()| async move {
            ctx.side_effect(|| 7u8)?;
            let options = ActivityOptions::start_to_close(Duration::from_secs(30))
                .with_schedule_to_close_timeout(Duration::from_secs(3600))
                .with_heartbeat_timeout(Duration::from_secs(20))
                .with_task_queue("informed-queue")
                .with_retry_policy(
                    RetryPolicy::default().with_initial_interval(Duration::from_millis(10)),
                );
            ctx.execute_activity(INFORMED, (), options).await?;
            Ok::<_, WorkflowError>(())
        })
        .worker(worker)
        .open(&db.path)
        .await
        .unwrap();
    let handle = engine
        .start_workflow(CALL_INFORMED, "informed", (), WorkflowOptions::new())
        .await
        .unwrap();
    handle.result().await.unwrap();

    let infos = infos.lock().unwrap().clone();
    assert_eq!(infos.len(), 2);
    for (i, info) in infos.iter().enumerate() {
        // The side effect took sequence number 1.
        assert_eq!(info.sequence, 2);
        assert_eq!(info.activity_id, "2");
        assert_eq!(info.attempt, i as u32 + 1);
        assert_eq!(info.workflow_id, "informed");
        assert_eq!(info.run_id, handle.run_id());
        assert_eq!(info.workflow_type, "CallInformed");
        assert_eq!(info.activity_type, "informed");
        assert_eq!(info.task_queue, "informed-queue");
        assert_eq!(info.start_to_close_timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            info.schedule_to_close_timeout,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(info.heartbeat_timeout, Some(Duration::from_secs(20)));
        assert!(info.scheduled_time <= info.current_attempt_scheduled_time);
        assert!(info.current_attempt_scheduled_time <= info.started_time);
        // Start-to-close ends the attempt first: 30 s from its start.
        assert_eq!(
            info.deadline,
            Some(info.started_time + Duration::from_secs(30))
        );
    }
    assert_eq!(
        infos[0].current_attempt_scheduled_time,
        infos[0].scheduled_time
    );
    // The retry became due after its backoff, later than the scheduling.
    assert!(infos[1].current_attempt_scheduled_time > infos[1].scheduled_time);
    assert_eq!(infos[0].scheduled_time, infos[1].scheduled_time);
    engine.shutdown().await.unwrap();
}

/// Fails on its first attempt only; the key of every attempt is recorded.
const KEYED_ONCE_FAILING: ActivityDef<(), ()> = ActivityDef::new("keyed_once_failing");
const CALL_KEYED_ONCE: WorkflowDef<(), ()> = WorkflowDef::new("CallKeyedOnce");

async fn keyed_engine(path: &std::path::Path, keys: Arc<Mutex<Vec<(u32, String)>>>) -> Engine {
    Engine::builder()
        .workflow(CALL_KEYED_ONCE, |ctx: WorkflowContext, ()| async move {
            // The retry waits long enough for the test to restart the engine.
            let options = options().with_retry_policy(
                RetryPolicy::default().with_initial_interval(Duration::from_millis(200)),
            );
            ctx.execute_activity(KEYED_ONCE_FAILING, (), options)
                .await?;
            Ok::<_, WorkflowError>(())
        })
        .activity(KEYED_ONCE_FAILING, move |ctx: ActivityContext, ()| {
            let keys = keys.clone();
            async move {
                keys.lock()
                    .unwrap()
                    .push((ctx.attempt(), ctx.idempotency_key()));
                if ctx.attempt() == 1 {
                    return Err(ActivityError::retryable("try again"));
                }
                Ok(())
            }
        })
        .open(path)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_key_survives_a_restart() {
    let db = temp_db();
    let keys: Arc<Mutex<Vec<(u32, String)>>> = Arc::default();
    let engine = keyed_engine(&db.path, keys.clone()).await;
    let handle = engine
        .start_workflow(CALL_KEYED_ONCE, "keyed-restart", (), WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = handle.run_id();
    // Stop the engine while the retry is waiting.
    eventually(Duration::from_secs(10), || async {
        let history = engine.history("keyed-restart").await.unwrap();
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityFailed { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();

    let engine = keyed_engine(&db.path, keys.clone()).await;
    let handle = engine
        .get_workflow_handle(CALL_KEYED_ONCE, "keyed-restart")
        .await
        .unwrap();
    assert_eq!(handle.run_id(), run_id);
    handle.result().await.unwrap();
    support::assert_history_well_formed(&engine.history("keyed-restart").await.unwrap());

    let key = format!("keyed-restart/{run_id}/1");
    assert_eq!(*keys.lock().unwrap(), [(1, key.clone()), (2, key)]);
    engine.shutdown().await.unwrap();
}

// ----- typed errors at the front door -----

const QUICK: WorkflowDef<String, String> = WorkflowDef::new("Quick");
const WAITS: WorkflowDef<(), ()> = WorkflowDef::new("Waits");
const FAILS: WorkflowDef<(), String> = WorkflowDef::new("Fails");

async fn quick(_ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    Ok(input)
}

async fn waits(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

async fn fails(_ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    Err(WorkflowError::new("the order was refused").with_type("OrderRefused"))
}

async fn front_door_engine(db: &support::TempDb) -> Engine {
    Engine::builder()
        .workflow(QUICK, quick)
        .workflow(WAITS, waits)
        .workflow(FAILS, fails)
        .worker(Worker::new("elsewhere").workflow(
            WorkflowDef::<(), ()>::new("OnlyElsewhere"),
            |_ctx: WorkflowContext, ()| async { Ok::<_, WorkflowError>(()) },
        ))
        .max_payload_bytes(64)
        .open(&db.path)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_an_unknown_workflow_type_is_a_typed_error() {
    let db = temp_db();
    let engine = front_door_engine(&db).await;

    let unknown = WorkflowDef::<(), ()>::new("NeverRegistered");
    let err = engine
        .start_workflow(unknown, "unknown", (), WorkflowOptions::new())
        .await
        .unwrap_err();
    match &err {
        ClientError::UnknownWorkflowType {
            workflow_type,
            task_queue,
        } => {
            assert_eq!(workflow_type, "NeverRegistered");
            assert_eq!(task_queue, "default");
        }
        other => panic!("expected UnknownWorkflowType, got {other:?}"),
    }
    assert!(err.to_string().contains("NeverRegistered"), "{err}");

    // Registered, but on another task queue than the one asked for.
    let elsewhere = WorkflowDef::<(), ()>::new("OnlyElsewhere");
    let err = engine
        .start_workflow(elsewhere, "elsewhere", (), WorkflowOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownWorkflowType { .. }),
        "{err:?}"
    );
    // Nothing was recorded for either.
    assert!(matches!(
        engine.describe("unknown").await,
        Err(ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_workflow_id_cannot_be_started_again_unless_use_existing() {
    let db = temp_db();
    let engine = front_door_engine(&db).await;

    let running = engine
        .start_workflow(WAITS, "busy", (), WorkflowOptions::new())
        .await
        .unwrap();

    let err = engine
        .start_workflow(WAITS, "busy", (), WorkflowOptions::new())
        .await
        .unwrap_err();
    match err {
        ClientError::AlreadyStarted {
            workflow_id,
            run_id,
        } => {
            assert_eq!(workflow_id, "busy");
            assert_eq!(run_id, running.run_id());
        }
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }

    let existing = engine
        .start_workflow(
            WAITS,
            "busy",
            (),
            WorkflowOptions::new().with_id_conflict_policy(WorkflowIdConflictPolicy::UseExisting),
        )
        .await
        .unwrap();
    assert_eq!(existing.run_id(), running.run_id());
    assert_eq!(existing.workflow_id(), "busy");
    let description = engine.describe("busy").await.unwrap();
    assert_eq!(description.run_id, running.run_id());
    assert_eq!(description.status, WorkflowStatus::Running);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_workflow_id_may_be_reused_as_the_policy_allows() {
    let db = temp_db();
    let engine = front_door_engine(&db).await;

    let first = engine
        .start_workflow(QUICK, "reused", "one".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(first.result().await.unwrap(), "one");

    // Default policy: allowed, as a new run.
    let second = engine
        .start_workflow(QUICK, "reused", "two".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_ne!(second.run_id(), first.run_id());
    assert_eq!(second.result().await.unwrap(), "two");

    for policy in [
        WorkflowIdReusePolicy::RejectDuplicate,
        WorkflowIdReusePolicy::AllowDuplicateFailedOnly,
    ] {
        let err = engine
            .start_workflow(
                QUICK,
                "reused",
                "three".to_string(),
                WorkflowOptions::new().with_id_reuse_policy(policy),
            )
            .await
            .unwrap_err();
        match err {
            ClientError::IdReuseRejected {
                workflow_id,
                last_status,
            } => {
                assert_eq!(workflow_id, "reused");
                assert_eq!(last_status, WorkflowStatus::Completed);
            }
            other => panic!("{policy:?}: expected IdReuseRejected, got {other:?}"),
        }
    }
    // The last run is still the second one.
    assert_eq!(
        engine.describe("reused").await.unwrap().run_id,
        second.run_id()
    );

    // After a failed run, AllowDuplicateFailedOnly allows a new one.
    let failed = engine
        .start_workflow(FAILS, "failed-once", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert!(failed.result().await.is_err());
    let retried = engine
        .start_workflow(
            QUICK,
            "failed-once",
            "again".to_string(),
            WorkflowOptions::new()
                .with_id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly),
        )
        .await
        .unwrap();
    assert_eq!(retried.result().await.unwrap(), "again");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_workflow_ids_and_oversize_inputs_are_typed_errors() {
    let db = temp_db();
    let engine = front_door_engine(&db).await;

    let err = engine
        .start_workflow(QUICK, "", "x".to_string(), WorkflowOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("empty"), "{err}");

    let too_long = "x".repeat(steadfast::MAX_WORKFLOW_ID_LEN + 1);
    let err = engine
        .start_workflow(QUICK, too_long, "x".to_string(), WorkflowOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");

    // The builder set a 64-byte limit.
    let err = engine
        .start_workflow(QUICK, "big", "y".repeat(100), WorkflowOptions::new())
        .await
        .unwrap_err();
    match err {
        ClientError::PayloadTooLarge { size, limit, .. } => {
            assert_eq!(limit, 64);
            assert!(size > 100, "the size is the encoded size: {size}");
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert!(matches!(
        engine.describe("big").await,
        Err(ClientError::NotFound { .. })
    ));

    // An input within the limit is fine.
    let small = engine
        .start_workflow(QUICK, "small", "y".repeat(10), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(small.result().await.unwrap(), "y".repeat(10));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_returning_err_fails_its_run() {
    let db = temp_db();
    let engine = front_door_engine(&db).await;

    let handle = engine
        .start_workflow(FAILS, "fails", (), WorkflowOptions::new())
        .await
        .unwrap();
    match handle.result().await {
        Err(ResultError::Failed {
            workflow_id,
            run_id,
            failure,
        }) => {
            assert_eq!(workflow_id, "fails");
            assert_eq!(run_id, handle.run_id());
            assert_eq!(failure.error_type, "OrderRefused");
            assert_eq!(failure.message, "the order was refused");
        }
        other => panic!("expected ResultError::Failed, got {other:?}"),
    }
    assert_eq!(
        engine.describe("fails").await.unwrap().status,
        WorkflowStatus::Failed
    );
    // The result can be asked for again, after the run closed.
    assert!(matches!(
        handle.result().await,
        Err(ResultError::Failed { .. })
    ));
    engine.shutdown().await.unwrap();
}

// ----- a result that does not decode -----

/// The implementation returns a `String`...
const WORDS: ActivityDef<(), String> = ActivityDef::new("words");
/// ...but the workflow calls the same name expecting a `u64`.
const WORDS_AS_NUMBER: ActivityDef<(), u64> = ActivityDef::new("words");
const CALL_WORDS_AS_NUMBER: WorkflowDef<(), String> = WorkflowDef::new("CallWordsAsNumber");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_result_of_the_wrong_type_is_a_result_decode_failure() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(
            CALL_WORDS_AS_NUMBER,
            |ctx: WorkflowContext, ()| async move {
                let seen = match ctx.execute_activity(WORDS_AS_NUMBER, (), options()).await {
                    Ok(n) => format!("decoded {n}"),
                    Err(ActivityFailure::ResultDecode {
                        activity_type,
                        message,
                    }) => format!("ResultDecode {activity_type}: {message}"),
                    Err(other) => format!("other: {other}"),
                };
                Ok::<_, WorkflowError>(seen)
            },
        )
        .activity(WORDS, |_ctx, ()| async {
            Ok::<_, ActivityError>("forty-two".to_string())
        })
        .open(&db.path)
        .await
        .unwrap();

    let seen = engine
        .start_workflow(
            CALL_WORDS_AS_NUMBER,
            "wrong-type",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert!(seen.starts_with("ResultDecode words: "), "{seen}");
    assert!(
        seen.contains("forty-two"),
        "the message shows the payload: {seen}"
    );
    assert!(
        seen.contains("u64"),
        "the message names the expected type: {seen}"
    );
    engine.shutdown().await.unwrap();
}

// ----- inputs and results that do not fit -----

/// The implementation takes a `u64`...
const DOUBLE: ActivityDef<u64, u64> = ActivityDef::new("double");
/// ...but the workflow sends a `String` under the same name.
const DOUBLE_WITH_TEXT: ActivityDef<String, u64> = ActivityDef::new("double");
/// Returns a string as long as its input says.
const BIG_RESULT: ActivityDef<usize, String> = ActivityDef::new("big_result");
const MISFITS: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Misfits");

fn describe_failure(result: Result<impl std::fmt::Debug, ActivityFailure>) -> String {
    match result {
        Ok(value) => format!("value {value:?}"),
        Err(ActivityFailure::Failed {
            attempt, failure, ..
        }) => format!(
            "failed on attempt {attempt}: {} (non_retryable: {})",
            failure.error_type, failure.non_retryable
        ),
        Err(other) => format!("other: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_does_not_decode_or_an_oversize_result_fails_without_retries() {
    let db = temp_db();
    let calls: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let (double_calls, big_calls) = (calls.clone(), calls.clone());
    let engine = Engine::builder()
        .workflow(MISFITS, |ctx: WorkflowContext, ()| async move {
            // Unlimited attempts with a short interval: only the kind of
            // failure can end the retries.
            let options = options().with_retry_policy(
                RetryPolicy::default().with_initial_interval(Duration::from_millis(10)),
            );
            let text = ctx
                .execute_activity(DOUBLE_WITH_TEXT, "seven".into(), options.clone())
                .await;
            let big = ctx
                .execute_activity(BIG_RESULT, 1000, options.clone())
                .await;
            let small = ctx.execute_activity(BIG_RESULT, 3, options).await;
            Ok::<_, WorkflowError>(vec![
                describe_failure(text),
                describe_failure(big),
                describe_failure(small),
            ])
        })
        .activity(DOUBLE, move |_ctx, n: u64| {
            double_calls.lock().unwrap().push("double");
            async move { Ok::<_, ActivityError>(n * 2) }
        })
        .activity(BIG_RESULT, move |_ctx, len: usize| {
            big_calls.lock().unwrap().push("big_result");
            async move { Ok::<_, ActivityError>("z".repeat(len)) }
        })
        .max_payload_bytes(100)
        .open(&db.path)
        .await
        .unwrap();

    let seen = engine
        .start_workflow(MISFITS, "misfits", (), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(
        seen,
        [
            "failed on attempt 1: PayloadDecodeError (non_retryable: true)",
            "failed on attempt 1: PayloadTooLarge (non_retryable: true)",
            "value \"zzz\"",
        ]
    );
    // The input that does not decode never reaches the function.
    assert_eq!(*calls.lock().unwrap(), ["big_result", "big_result"]);
    engine.shutdown().await.unwrap();
}
