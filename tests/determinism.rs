//! Promise: the context's `now()`, `random()`, `uuid()` and `side_effect(..)`
//! give workflow code the same values when it is replayed after a restart as
//! on its first execution, and a side effect's closure runs only once.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EventKind,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

/// The values a workflow took from its context before the restart point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Values {
    now: SystemTime,
    randoms: Vec<u64>,
    uuids: Vec<String>,
    side_effect: u128,
}

const RECORD: ActivityDef<Values, ()> = ActivityDef::new("record");
const DETERMINISTIC: WorkflowDef<u64, Values> = WorkflowDef::new("Deterministic");
const RANDOMS: WorkflowDef<(), (u64, String)> = WorkflowDef::new("Randoms");

/// How many times the side effect's closure ran, in the whole test binary
/// (only one test runs it).
static SIDE_EFFECT_RUNS: AtomicUsize = AtomicUsize::new(0);
/// What the `record` activity was given, by workflow ID.
static RECORDED: Mutex<Option<HashMap<String, Vec<Values>>>> = Mutex::new(None);

fn recorded(workflow_id: &str) -> Vec<Values> {
    RECORDED
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(workflow_id).cloned())
        .unwrap_or_default()
}

async fn record(ctx: ActivityContext, values: Values) -> Result<(), ActivityError> {
    RECORDED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(ctx.workflow_id().to_string())
        .or_default()
        .push(values);
    Ok(())
}

/// Takes values from the context, hands them to an activity, waits on a
/// timer of `millis` (the restart point), hands the same values to the
/// activity again and returns them.
async fn deterministic(ctx: WorkflowContext, millis: u64) -> Result<Values, WorkflowError> {
    let now = ctx.now();
    let randoms = vec![ctx.random(), ctx.random(), ctx.random()];
    let uuids = vec![ctx.uuid().to_string(), ctx.uuid().to_string()];
    let side_effect = ctx.side_effect(|| {
        SIDE_EFFECT_RUNS.fetch_add(1, Ordering::SeqCst);
        // Different on every call: only a recorded value can repeat.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    })?;
    let values = Values {
        now,
        randoms,
        uuids,
        side_effect,
    };
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    ctx.execute_activity(RECORD, values.clone(), options.clone())
        .await?;
    ctx.sleep(Duration::from_millis(millis)).await?;
    ctx.execute_activity(RECORD, values.clone(), options)
        .await?;
    Ok(values)
}

async fn randoms(ctx: WorkflowContext, _: ()) -> Result<(u64, String), WorkflowError> {
    Ok((ctx.random(), ctx.uuid().to_string()))
}

async fn open(path: &std::path::Path) -> Engine {
    Engine::builder()
        .workflow(DETERMINISTIC, deterministic)
        .workflow(RANDOMS, randoms)
        .activity(RECORD, record)
        .open(path)
        .await
        .expect("open the engine")
}

#[tokio::test]
async fn values_are_the_same_after_a_restart() {
    let db = support::temp_db();
    let id = "deterministic-values";
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(DETERMINISTIC, id, 1000, WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = run.run_id();
    // Shut down while the workflow waits on its timer, after the first
    // `record` is done.
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(id).await.ok()?;
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerStarted { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    let before_restart = recorded(id);
    assert_eq!(
        before_restart.len(),
        1,
        "the first record ran before the restart"
    );
    assert_eq!(SIDE_EFFECT_RUNS.load(Ordering::SeqCst), 1);

    // The reopened engine replays the workflow from its history.
    let engine = open(&db.path).await;
    let run = engine.get_workflow_handle(DETERMINISTIC, id).await.unwrap();
    assert_eq!(run.run_id(), run_id);
    let returned = run.result().await.unwrap();

    let all = recorded(id);
    assert_eq!(all.len(), 2, "one record before and one after the restart");
    let first = &all[0];
    assert_eq!(first, &before_restart[0]);
    assert_eq!(
        &all[1], first,
        "replayed values equal the first execution's"
    );
    assert_eq!(&returned, first);
    assert_eq!(
        SIDE_EFFECT_RUNS.load(Ordering::SeqCst),
        1,
        "the side effect's closure is not run on replay"
    );

    // The values are real ones, not defaults.
    let history = engine.history(id).await.unwrap();
    assert_eq!(first.now, history[0].timestamp, "now() is the start's time");
    assert!(
        first.randoms.windows(2).all(|w| w[0] != w[1]),
        "successive random() values differ: {:?}",
        first.randoms
    );
    assert_ne!(first.uuids[0], first.uuids[1]);
    let side_effects: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SideEffectRecorded { value, .. } => Some(value.decode::<u128>().unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        side_effects,
        vec![first.side_effect],
        "the side effect is recorded once, with the value the code saw"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_run_gets_its_own_random_values() {
    let db = support::temp_db();
    let engine = open(&db.path).await;
    let a = engine
        .start_workflow(RANDOMS, "randoms-a", (), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    let b = engine
        .start_workflow(RANDOMS, "randoms-b", (), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_ne!(a.0, b.0, "random() is seeded per run");
    assert_ne!(a.1, b.1, "uuid() is seeded per run");
    engine.shutdown().await.unwrap();
}
