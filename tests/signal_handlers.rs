//! Promise: `ctx.handle_signal` runs its handler once per signal, in
//! arrival order, before the main code continues, deterministically on
//! replay; a handled name is never buffered for `recv_signal` nor counted
//! as unread, and `recv_signal` keeps working for other names.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind,
    Replayer, ResultError, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::temp_db;

/// Collects every `ADD` through a handler (which calls an activity), and
/// returns on `DONE` with what the handlers saw.
const COLLECT: WorkflowDef<(), Vec<u32>> = WorkflowDef::new("SignalHandlers.Collect");
const ADD: SignalDef<u32> = SignalDef::new("add");
const DONE: SignalDef<()> = SignalDef::new("done");
const DOUBLE: ActivityDef<u32, u32> = ActivityDef::new("signal_handlers.double");

/// Its handler records each `ADD` at once; the main code reads the record
/// each time it wakes for `PEEK`.
const ORDER: WorkflowDef<(), Vec<Vec<u32>>> = WorkflowDef::new("SignalHandlers.Order");
const PEEK: SignalDef<()> = SignalDef::new("peek");

/// A handler that fails the workflow on a zero.
const STRICT: WorkflowDef<(), ()> = WorkflowDef::new("SignalHandlers.Strict");

async fn double(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    Ok(n * 2)
}

async fn collect(ctx: WorkflowContext, _: ()) -> Result<Vec<u32>, WorkflowError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ctx.handle_signal(ADD, move |ctx, n: u32| {
        let sink = sink.clone();
        async move {
            let options = ActivityOptions::start_to_close(Duration::from_secs(10));
            let doubled = ctx.execute_activity(DOUBLE, n, options).await?;
            sink.lock().unwrap().push(doubled);
            Ok(())
        }
    });
    ctx.recv_signal(DONE).await?;
    // Every handler's activity is done by the time DONE is read: wait for
    // them deterministically.
    ctx.sleep(Duration::from_millis(50)).await?;
    let seen = seen.lock().unwrap().clone();
    Ok(seen)
}

async fn order(ctx: WorkflowContext, _: ()) -> Result<Vec<Vec<u32>>, WorkflowError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ctx.handle_signal(ADD, move |_ctx, n: u32| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(n);
            Ok(())
        }
    });
    let mut views = Vec::new();
    for _ in 0..2 {
        ctx.recv_signal(PEEK).await?;
        views.push(seen.lock().unwrap().clone());
    }
    // A handled name is not received by recv_signal: nothing buffered.
    assert_eq!(ctx.try_recv_signal(ADD)?, None);
    Ok(views)
}

async fn strict(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.handle_signal(ADD, |_ctx, n: u32| async move {
        if n == 0 {
            return Err(WorkflowError::new("zero is not allowed"));
        }
        Ok(())
    });
    ctx.recv_signal(DONE).await?;
    Ok(())
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(COLLECT, collect)
        .workflow(ORDER, order)
        .workflow(STRICT, strict)
        .activity(DOUBLE, double)
}

fn replayer() -> Replayer {
    Replayer::new()
        .workflow(COLLECT, collect)
        .workflow(ORDER, order)
        .workflow(STRICT, strict)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signal_runs_the_handler_in_order_before_the_main_code_continues() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let run = engine
        .start_workflow(ORDER, "order", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("order", ADD, 1).await.unwrap();
    engine.signal("order", ADD, 2).await.unwrap();
    engine.signal("order", PEEK, ()).await.unwrap();
    engine.signal("order", ADD, 3).await.unwrap();
    engine.signal("order", PEEK, ()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), [vec![1, 2], vec![1, 2, 3]]);
    let history = engine.workflow_history("order").await.unwrap();
    // Nothing unread: the handler took every ADD.
    assert!(
        !history
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::SignalsUnread { .. }))
    );
    replayer().replay(&history).unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_workflow_code_and_replay_after_a_restart() {
    let db = temp_db();
    {
        let engine = builder().open(&db.path).await.unwrap();
        // The signal-with-start's signal arrives before the handler is
        // registered: it is handled at registration.
        engine
            .signal_with_start(COLLECT, "collect", (), WorkflowOptions::new(), ADD, 1)
            .await
            .unwrap();
        engine.signal("collect", ADD, 2).await.unwrap();
        support::eventually(Duration::from_secs(10), || async {
            let history = engine.history("collect").await.unwrap();
            let done = history
                .iter()
                .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
                .count();
            (done == 2).then_some(())
        })
        .await;
        engine.shutdown().await.unwrap();
    }
    // Reopened: the handlers' history replays, and new signals go on.
    let engine = builder().open(&db.path).await.unwrap();
    engine.signal("collect", ADD, 3).await.unwrap();
    engine.signal("collect", DONE, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(COLLECT, "collect")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), [2, 4, 6]);
    let history = engine.workflow_history("collect").await.unwrap();
    support::assert_history_well_formed(&history.events);
    replayer().replay(&history).unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handlers_error_fails_the_workflow_and_an_undecodable_signal_stays_unread() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    // A payload of another type is not given to the handler: kept, and
    // recorded as unread at the close.
    const ADD_TEXT: SignalDef<String> = SignalDef::new("add");
    engine
        .start_workflow(STRICT, "lenient", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .signal("lenient", ADD_TEXT, "seven".into())
        .await
        .unwrap();
    engine.signal("lenient", ADD, 7).await.unwrap();
    engine.signal("lenient", DONE, ()).await.unwrap();
    let handle = engine.get_workflow_handle(STRICT, "lenient").await.unwrap();
    handle.result().await.unwrap();
    let description = engine.describe("lenient").await.unwrap();
    assert_eq!(description.unread_signals.len(), 1);
    assert_eq!(description.unread_signals[0].signal_name, "add");
    assert_eq!(description.unread_signals[0].count, 1);

    let run = engine
        .start_workflow(STRICT, "strict", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("strict", ADD, 0).await.unwrap();
    match run.result().await {
        Err(ResultError::Failed { failure, .. }) => {
            assert_eq!(failure.message, "zero is not allowed")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    for id in ["lenient", "strict"] {
        let history = engine.workflow_history(id).await.unwrap();
        replayer().replay(&history).unwrap();
    }
    engine.shutdown().await.unwrap();
}
