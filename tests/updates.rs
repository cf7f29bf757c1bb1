//! Promise: an update is validated in-process before anything is written,
//! durable once accepted, run by deterministic workflow code, and answered
//! with its recorded outcome: once per update ID, also after a restart or a
//! kill -9 between acceptance and completion; refusals are typed errors.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, QueryDef, Replayer, SignalDef, UpdateDef, UpdateError, UpdateOptions,
    UpdateOutcome, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

const SUBSCRIPTION: WorkflowDef<(), (String, u32)> = WorkflowDef::new("Updates.Subscription");
/// Returns a plan's price; the handler records how often it ran.
const CHANGE_PLAN: UpdateDef<String, u32> = UpdateDef::new("change_plan");
const FAIL: UpdateDef<(), ()> = UpdateDef::new("fail");
const STOP: SignalDef<()> = SignalDef::new("stop");
const STATE: QueryDef<(String, u32)> = QueryDef::new("state");
const PRICE: ActivityDef<String, u32> = ActivityDef::new("updates.price");

/// Its update handler waits for `RELEASE`; the main code returns on `STOP`
/// or continues as new on `NEXT`.
const WAITER: WorkflowDef<u32, u32> = WorkflowDef::new("Updates.Waiter");
const HOLD: UpdateDef<(), u32> = UpdateDef::new("hold");
const RELEASE: SignalDef<u32> = SignalDef::new("release");
const NEXT: SignalDef<()> = SignalDef::new("next");

async fn price(_ctx: ActivityContext, plan: String) -> Result<u32, ActivityError> {
    Ok(if plan == "gold" { 30 } else { 10 })
}

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
}

async fn subscription(ctx: WorkflowContext, _: ()) -> Result<(String, u32), WorkflowError> {
    let state = Arc::new(Mutex::new(("basic".to_string(), 0u32)));
    let query = state.clone();
    ctx.handle_query(STATE, move || query.lock().unwrap().clone());
    let handled = state.clone();
    ctx.handle_update(
        CHANGE_PLAN,
        |plan: &String| match plan.as_str() {
            "basic" | "gold" => Ok(()),
            other => Err(format!("unknown plan {other:?}")),
        },
        move |ctx, plan: String| {
            let state = handled.clone();
            async move {
                // Workflow code: an activity and a timer, replayed alike.
                let price = ctx.execute_activity(PRICE, plan.clone(), options()).await?;
                ctx.sleep(Duration::from_millis(1)).await?;
                let mut state = state.lock().unwrap();
                state.0 = plan;
                state.1 += 1;
                Ok(price)
            }
        },
    );
    ctx.handle_update(
        FAIL,
        |_: &()| Ok(()),
        |_ctx, _: ()| async { Err::<(), _>(WorkflowError::new("the handler said no")) },
    );
    ctx.recv_signal(STOP).await?;
    let result = state.lock().unwrap().clone();
    Ok(result)
}

async fn waiter(ctx: WorkflowContext, round: u32) -> Result<u32, WorkflowError> {
    ctx.handle_update(
        HOLD,
        |_: &()| Ok(()),
        |ctx, _: ()| async move { Ok(ctx.recv_signal(RELEASE).await?) },
    );
    futures::select_biased! {
        _ = ctx.recv_signal(STOP) => Ok(round),
        _ = ctx.recv_signal(NEXT) => Err(ctx.continue_as_new(WAITER, round + 1)),
    }
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(SUBSCRIPTION, subscription)
        .workflow(WAITER, waiter)
        .activity(PRICE, price)
}

fn replayer() -> Replayer {
    Replayer::new()
        .workflow(SUBSCRIPTION, subscription)
        .workflow(WAITER, waiter)
}

fn accepted(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowUpdateAccepted { update_id, .. } => Some(update_id.clone()),
            _ => None,
        })
        .collect()
}

fn completed(history: &[steadfast::Event]) -> Vec<(String, UpdateOutcome)> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowUpdateCompleted { update_id, outcome } => {
                Some((update_id.clone(), outcome.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_returns_its_handlers_result_and_is_recorded() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    let run = engine
        .start_workflow(SUBSCRIPTION, "sub-1", (), WorkflowOptions::new())
        .await
        .unwrap();
    let price = engine
        .update("sub-1", CHANGE_PLAN, "gold".to_string())
        .await
        .unwrap();
    assert_eq!(price, 30);
    // The handler changed the workflow's state before the caller got it.
    assert_eq!(
        engine.query("sub-1", STATE).await.unwrap(),
        ("gold".to_string(), 1)
    );
    // Through the typed handle too.
    assert_eq!(
        run.update(CHANGE_PLAN, "basic".to_string()).await.unwrap(),
        10
    );
    engine.signal("sub-1", STOP, ()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), ("basic".to_string(), 2));

    let history = engine.history("sub-1").await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(accepted(&history).len(), 2);
    let outcomes = completed(&history);
    assert_eq!(outcomes.len(), 2);
    let first = history
        .iter()
        .position(|e| matches!(e.kind, EventKind::WorkflowUpdateAccepted { .. }))
        .unwrap();
    let done = history
        .iter()
        .position(|e| matches!(e.kind, EventKind::WorkflowUpdateCompleted { .. }))
        .unwrap();
    // Accepted before the handler's activity, completed after its timer.
    assert!(matches!(
        history[first + 1].kind,
        EventKind::ActivityScheduled { .. }
    ));
    assert!(
        history[first..done]
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. }))
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_and_write_nothing() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    engine
        .start_workflow(SUBSCRIPTION, "sub-2", (), WorkflowOptions::new())
        .await
        .unwrap();
    let before = engine.history("sub-2").await.unwrap();

    match engine
        .update("sub-2", CHANGE_PLAN, "platinum".to_string())
        .await
    {
        Err(UpdateError::Rejected { message, .. }) => {
            assert_eq!(message, r#"unknown plan "platinum""#)
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    const UNKNOWN: UpdateDef<(), ()> = UpdateDef::new("no_such_update");
    assert!(matches!(
        engine.update("sub-2", UNKNOWN, ()).await,
        Err(UpdateError::UnknownUpdate { update_name, .. }) if update_name == "no_such_update"
    ));
    // The right name with the wrong input type.
    const WRONG_INPUT: UpdateDef<u64, u32> = UpdateDef::new("change_plan");
    assert!(matches!(
        engine.update("sub-2", WRONG_INPUT, 7).await,
        Err(UpdateError::InvalidInput { .. })
    ));
    // A result of another type than the caller's is a payload error.
    const WRONG_OUTPUT: UpdateDef<String, String> = UpdateDef::new("change_plan");
    assert!(matches!(
        engine.update("sub-2", WRONG_OUTPUT, "gold".into()).await,
        Err(UpdateError::Payload(_))
    ));
    // The rejections left nothing; only the last (accepted) update wrote.
    let after = engine.history("sub-2").await.unwrap();
    assert_eq!(accepted(&after).len(), 1);
    assert_eq!(after[..before.len()], before[..]);

    // A rejected ID is not remembered: sent again valid, it runs.
    let options = UpdateOptions::new().with_update_id("retry-me");
    assert!(matches!(
        engine
            .update_with_options("sub-2", CHANGE_PLAN, "nope".into(), options.clone())
            .await,
        Err(UpdateError::Rejected { .. })
    ));
    assert_eq!(
        engine
            .update_with_options("sub-2", CHANGE_PLAN, "gold".into(), options)
            .await
            .unwrap(),
        30
    );

    // A handler's error fails the update only; the run goes on.
    match engine.update("sub-2", FAIL, ()).await {
        Err(UpdateError::Failed { failure, .. }) => {
            assert_eq!(failure.message, "the handler said no")
        }
        other => panic!("expected a failed update, got {other:?}"),
    }
    assert!(matches!(
        engine
            .update_with_options("sub-2", FAIL, (), UpdateOptions::new().with_update_id(""))
            .await,
        Err(UpdateError::Client(ClientError::InvalidArgument(_)))
    ));
    assert!(matches!(
        engine.update("nobody", CHANGE_PLAN, "gold".into()).await,
        Err(UpdateError::Client(ClientError::NotFound { .. }))
    ));
    engine.signal("sub-2", STOP, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(SUBSCRIPTION, "sub-2")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ("gold".to_string(), 2));
    // A closed run takes no new update.
    assert!(matches!(
        engine.update("sub-2", CHANGE_PLAN, "gold".into()).await,
        Err(UpdateError::Client(ClientError::WorkflowClosed {
            status: WorkflowStatus::Completed,
            ..
        }))
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_id_given_twice_returns_the_first_outcome_also_after_a_restart() {
    let db = temp_db();
    let options = UpdateOptions::new().with_update_id("plan-1");
    {
        let engine = builder().open_db(&db.path).await.unwrap();
        engine
            .start_workflow(SUBSCRIPTION, "sub-3", (), WorkflowOptions::new())
            .await
            .unwrap();
        let first = engine
            .update_with_options("sub-3", CHANGE_PLAN, "gold".into(), options.clone())
            .await
            .unwrap();
        // Same ID, other input: the first outcome, nothing run again.
        let second = engine
            .update_with_options("sub-3", CHANGE_PLAN, "basic".into(), options.clone())
            .await
            .unwrap();
        assert_eq!((first, second), (30, 30));
        assert_eq!(
            engine.query("sub-3", STATE).await.unwrap(),
            ("gold".to_string(), 1)
        );
        engine.shutdown().await.unwrap();
    }
    let engine = builder().open_db(&db.path).await.unwrap();
    assert_eq!(
        engine
            .update_with_options("sub-3", CHANGE_PLAN, "basic".into(), options.clone())
            .await
            .unwrap(),
        30
    );
    engine.signal("sub-3", STOP, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(SUBSCRIPTION, "sub-3")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ("gold".to_string(), 1));
    // The closed run's history still answers the ID.
    assert_eq!(
        engine
            .update_with_options("sub-3", CHANGE_PLAN, "basic".into(), options)
            .await
            .unwrap(),
        30
    );
    let history = engine.history("sub-3").await.unwrap();
    assert_eq!(accepted(&history), ["plan-1"]);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_in_flight_when_the_run_closes_or_continues_are_aborted() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    engine
        .start_workflow(WAITER, "waiter", 0, WorkflowOptions::new())
        .await
        .unwrap();
    // Accepted; its handler waits for RELEASE, which never comes before
    // the run continues as new.
    let held = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let options = UpdateOptions::new().with_update_id("held");
            engine
                .update_with_options("waiter", HOLD, (), options)
                .await
        })
    };
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("waiter").await.unwrap();
        (!accepted(&history).is_empty()).then_some(())
    })
    .await;
    let first = engine.describe("waiter").await.unwrap().run_id;
    engine.signal("waiter", NEXT, ()).await.unwrap();
    match held.await.unwrap() {
        Err(UpdateError::Aborted {
            status, update_id, ..
        }) => {
            assert_eq!(status, WorkflowStatus::ContinuedAsNew);
            assert_eq!(update_id, "held");
        }
        other => panic!("expected an aborted update, got {other:?}"),
    }
    // As in Temporal, update IDs are the run's: the same ID sent again now
    // would be a new update of the next run (not done here).
    let second = engine.describe("waiter").await.unwrap();
    assert_ne!(second.run_id, first);

    // A new update goes to the chain's current run, and completes there.
    let released = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.update("waiter", HOLD, ()).await })
    };
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("waiter").await.unwrap();
        (!accepted(&history).is_empty()).then_some(())
    })
    .await;
    engine.signal("waiter", RELEASE, 5).await.unwrap();
    assert_eq!(released.await.unwrap().unwrap(), 5);

    // Another in flight when the run returns.
    let held = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.update("waiter", HOLD, ()).await })
    };
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("waiter").await.unwrap();
        (accepted(&history).len() == 2).then_some(())
    })
    .await;
    engine.signal("waiter", STOP, ()).await.unwrap();
    assert!(matches!(
        held.await.unwrap(),
        Err(UpdateError::Aborted {
            status: WorkflowStatus::Completed,
            ..
        })
    ));
    let handle = engine.get_workflow_handle(WAITER, "waiter").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 1);
    for run_id in [first, second.run_id] {
        let history = engine.workflow_run_history("waiter", run_id).await.unwrap();
        support::assert_history_well_formed(&history.events);
        replayer().replay(&history).unwrap();
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_with_updates_replay_and_a_changed_handler_is_caught() {
    let db = temp_db();
    let engine = builder().open_db(&db.path).await.unwrap();
    engine
        .start_workflow(SUBSCRIPTION, "sub-4", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .update("sub-4", CHANGE_PLAN, "gold".to_string())
        .await
        .unwrap();
    assert!(engine.update("sub-4", FAIL, ()).await.is_err());
    engine.signal("sub-4", STOP, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(SUBSCRIPTION, "sub-4")
        .await
        .unwrap();
    handle.result().await.unwrap();
    let history = engine.workflow_history("sub-4").await.unwrap();
    let text = history.to_json().unwrap();
    assert!(text.contains("WorkflowUpdateAccepted") && text.contains("WorkflowUpdateCompleted"));
    let back = steadfast::WorkflowHistory::from_json(&text).unwrap();
    replayer().replay(&back).unwrap();

    // Code that registers no handler for an update its history accepted.
    async fn no_handler(ctx: WorkflowContext, _: ()) -> Result<(String, u32), WorkflowError> {
        ctx.recv_signal(STOP).await?;
        Ok(("basic".into(), 0))
    }
    let err = Replayer::new()
        .workflow(SUBSCRIPTION, no_handler)
        .replay(&back)
        .unwrap_err();
    assert!(err.to_string().contains("change_plan"), "{err}");
    engine.shutdown().await.unwrap();
}

// ----- kill -9 between an update's acceptance and its completion -----

const CRASH_DB: &str = "STEADFAST_UPDATES_DB";
const SLOW: ActivityDef<String, u32> = ActivityDef::new("updates.price");

/// Opens the file, starts the workflow, and sends an update whose handler's
/// activity never returns in this process.
#[tokio::test]
async fn child_update_in_flight() {
    let Some(db) = std::env::var_os(CRASH_DB) else {
        return;
    };
    async fn stuck(_ctx: ActivityContext, _: String) -> Result<u32, ActivityError> {
        child_report("activity started");
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(0)
    }
    let engine = Engine::builder()
        .workflow(SUBSCRIPTION, subscription)
        .activity(SLOW, stuck)
        .open_db(Path::new(&db))
        .await
        .unwrap();
    engine
        .start_workflow(SUBSCRIPTION, "crashy", (), WorkflowOptions::new())
        .await
        .unwrap();
    child_report("started");
    let options = UpdateOptions::new().with_update_id("crash-1");
    let answer = engine
        .update_with_options("crashy", CHANGE_PLAN, "gold".into(), options)
        .await;
    child_report(&format!("answered {answer:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_acceptance_and_completion_loses_no_update() {
    let db = temp_db();
    let env = [(CRASH_DB, db.path.as_os_str() as &OsStr)];
    let mut child = spawn_crash_child("child_update_in_flight", &env);
    child
        .wait_for_line(Duration::from_secs(60), |l| l == "activity started")
        .await;
    // The update is accepted (its handler's activity runs): kill now.
    let lines = child.kill();
    assert!(
        !lines.iter().any(|l| l.starts_with("answered")),
        "{lines:?}"
    );

    let engine = builder().open_db(&db.path).await.unwrap();
    let history = engine.history("crashy").await.unwrap();
    assert_eq!(accepted(&history), ["crash-1"]);
    assert!(completed(&history).is_empty());
    // A later call with the same ID waits for the resumed handler.
    let options = UpdateOptions::new().with_update_id("crash-1");
    assert_eq!(
        engine
            .update_with_options("crashy", CHANGE_PLAN, "basic".into(), options)
            .await
            .unwrap(),
        30
    );
    engine.signal("crashy", STOP, ()).await.unwrap();
    let handle = engine
        .get_workflow_handle(SUBSCRIPTION, "crashy")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), ("gold".to_string(), 1));
    let history = engine.history("crashy").await.unwrap();
    support::assert_history_well_formed(&history);
    assert_eq!(accepted(&history), ["crash-1"]);
    assert_eq!(completed(&history).len(), 1);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_updates_accepted_and_not_completed_also_after_a_restart() {
    let db = temp_db();
    {
        let engine = builder().open_db(&db.path).await.unwrap();
        engine
            .start_workflow(WAITER, "pending", 0, WorkflowOptions::new())
            .await
            .unwrap();
        assert!(
            engine
                .describe("pending")
                .await
                .unwrap()
                .pending_updates
                .is_empty()
        );
        for id in ["hold-1", "hold-2"] {
            let caller = engine.clone();
            tokio::spawn(async move {
                let options = UpdateOptions::new().with_update_id(id);
                let _ = caller
                    .update_with_options("pending", HOLD, (), options)
                    .await;
            });
            // One at a time, so their order is known.
            support::eventually(Duration::from_secs(10), || async {
                let d = engine.describe("pending").await.ok()?;
                d.pending_updates
                    .iter()
                    .any(|u| u.update_id == id)
                    .then_some(())
            })
            .await;
        }
        let pending = engine.describe("pending").await.unwrap().pending_updates;
        let ids: Vec<&str> = pending.iter().map(|u| u.update_id.as_str()).collect();
        assert_eq!(ids, ["hold-1", "hold-2"]);
        assert!(pending.iter().all(|u| u.update_name == "hold"));
        assert!(pending[0].accepted_event_id < pending[1].accepted_event_id);
        engine.shutdown().await.unwrap();
    }
    let engine = builder().open_db(&db.path).await.unwrap();
    let pending = engine.describe("pending").await.unwrap().pending_updates;
    let ids: Vec<&str> = pending.iter().map(|u| u.update_id.as_str()).collect();
    assert_eq!(
        ids,
        ["hold-1", "hold-2"],
        "read from the history after a restart"
    );
    // The first release completes the first handler; describe drops it.
    engine.signal("pending", RELEASE, 7).await.unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("pending").await.ok()?;
        (d.pending_updates.len() == 1).then_some(d.pending_updates)
    })
    .await;
    engine.signal("pending", RELEASE, 8).await.unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("pending").await.ok()?;
        d.pending_updates.is_empty().then_some(())
    })
    .await;
    engine.signal("pending", STOP, ()).await.unwrap();
    let d = support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("pending").await.ok()?;
        d.status.is_closed().then_some(d)
    })
    .await;
    assert!(d.pending_updates.is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn updates_past_the_runs_limits_are_refused_with_a_typed_error_and_write_nothing() {
    // The defaults are Temporal's.
    assert_eq!(steadfast::DEFAULT_MAX_IN_FLIGHT_UPDATES, 10);
    assert_eq!(steadfast::DEFAULT_MAX_UPDATES_PER_RUN, 2000);
    let db = temp_db();
    let engine = builder()
        .update_limits(2, 3)
        .open_db(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(WAITER, "limited", 0, WorkflowOptions::new())
        .await
        .unwrap();
    let hold = |id: &'static str| {
        let engine = engine.clone();
        tokio::spawn(async move {
            let options = UpdateOptions::new().with_update_id(id);
            engine
                .update_with_options("limited", HOLD, (), options)
                .await
        })
    };
    let accepted_now = |n: usize| {
        let engine = engine.clone();
        async move {
            support::eventually(Duration::from_secs(10), || async {
                let history = engine.history("limited").await.unwrap();
                (accepted(&history).len() == n).then_some(())
            })
            .await
        }
    };
    let a = hold("a");
    accepted_now(1).await;
    let b = hold("b");
    accepted_now(2).await;
    // Two in flight: a third is refused, before its validator, writing
    // nothing.
    match hold("c").await.unwrap() {
        Err(UpdateError::TooManyInFlight {
            update_id, limit, ..
        }) => {
            assert_eq!((update_id.as_str(), limit), ("c", 2));
        }
        other => panic!("expected TooManyInFlight, got {other:?}"),
    }
    assert_eq!(
        accepted(&engine.history("limited").await.unwrap()),
        ["a", "b"]
    );
    // One completes: the third is taken now.
    engine.signal("limited", RELEASE, 1).await.unwrap();
    let first = futures::future::select(a, b).await.factor_first().0;
    assert_eq!(first.unwrap().unwrap(), 1);
    let c = hold("c");
    accepted_now(3).await;
    // Three in all: the run takes no more, however many are in flight.
    engine.signal("limited", RELEASE, 2).await.unwrap();
    engine.signal("limited", RELEASE, 3).await.unwrap();
    // Handlers take releases in no promised order.
    let c_value = c.await.unwrap().unwrap();
    assert!([2, 3].contains(&c_value), "{c_value}");
    let err = hold("d").await.unwrap().unwrap_err();
    assert!(
        matches!(&err, UpdateError::TooManyUpdates { limit: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("continue as new"), "{err}");
    // An update ID the run accepted is still answered with its outcome.
    let again = engine
        .update_with_options(
            "limited",
            HOLD,
            (),
            UpdateOptions::new().with_update_id("c"),
        )
        .await
        .unwrap();
    assert_eq!(again, c_value);
    // The next run of the chain counts from zero.
    engine.signal("limited", NEXT, ()).await.unwrap();
    let d = hold("d");
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("limited").await.ok()?;
        (accepted(&history) == ["d"]).then_some(())
    })
    .await;
    engine.signal("limited", RELEASE, 4).await.unwrap();
    assert_eq!(d.await.unwrap().unwrap(), 4);
    engine.shutdown().await.unwrap();
}
