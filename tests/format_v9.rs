//! Promise: files written by store format 9 keep opening and running, and
//! format-8 files are opened as the current format.
//!
//! Format 9 keeps format 8's tables and event records (version 2) and adds
//! the event kinds `WorkflowUpdateAccepted` (index 26: an update accepted, its ID, name and
//! input) and `WorkflowUpdateCompleted` (index 27: its handler's outcome,
//! the persisted enum `UpdateOutcome`). `tests/fixtures/format-9.steadfast`
//! was written once, by the build that introduced format 9, with
//! `STEADFAST_WRITE_FIXTURES=1 cargo test --test format_v9 -- --ignored
//! write_format_9_fixture`, and is never regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format9-closed` | `Format9.Plans` | Completed with `"gold"`: update `set-1` (`set`, "gold") succeeded with 4, update `fail-1` (`set`, "") failed; then `format9.release` 0 and `format9.stop` |
//! | `format9-running-accepted` | `Format9.Plans` | Running: update `set-2` (`set`, "silver") accepted, its handler waiting for `format9.release` |

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    Engine, EngineBuilder, EventKind, SignalDef, UpdateDef, UpdateError, UpdateOptions,
    UpdateOutcome, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::assert_history_well_formed;

const FIXTURE: &str = "tests/fixtures/format-9.steadfast";
const FORMAT_8_FIXTURE: &str = "tests/fixtures/format-8.steadfast";

const PLANS: WorkflowDef<(), String> = WorkflowDef::new("Format9.Plans");
/// Sets the plan once `RELEASE` comes; returns the plan's length plus the
/// released number; an empty plan fails the update.
const SET: UpdateDef<String, u32> = UpdateDef::new("set");
const RELEASE: SignalDef<u32> = SignalDef::new("format9.release");
const STOP: SignalDef<()> = SignalDef::new("format9.stop");

async fn plans(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let plan = Arc::new(Mutex::new(String::from("basic")));
    let current = plan.clone();
    ctx.handle_update(
        SET,
        |_: &String| Ok(()),
        move |ctx, new: String| {
            let current = current.clone();
            async move {
                if new.is_empty() {
                    return Err(WorkflowError::new("an empty plan"));
                }
                let extra = ctx.recv_signal(RELEASE).await?;
                *current.lock().unwrap() = new.clone();
                Ok(new.len() as u32 + extra)
            }
        },
    );
    ctx.recv_signal(STOP).await?;
    let plan = plan.lock().unwrap().clone();
    Ok(plan)
}

fn builder() -> EngineBuilder {
    Engine::builder().workflow(PLANS, plans)
}

fn with_id(id: &str) -> UpdateOptions {
    UpdateOptions::new().with_update_id(id)
}

/// Writes `tests/fixtures/format-9.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_9_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let run = engine
        .start_workflow(PLANS, "format9-closed", (), WorkflowOptions::new())
        .await
        .unwrap();
    let pending = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .update_with_options("format9-closed", SET, "gold".into(), with_id("set-1"))
                .await
        })
    };
    wait_accepted(&engine, "format9-closed", 1).await;
    engine.signal("format9-closed", RELEASE, 0).await.unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), 4);
    assert!(
        engine
            .update_with_options("format9-closed", SET, String::new(), with_id("fail-1"))
            .await
            .is_err()
    );
    engine.signal("format9-closed", STOP, ()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), "gold");

    engine
        .start_workflow(
            PLANS,
            "format9-running-accepted",
            (),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    let waiting = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .update_with_options(
                    "format9-running-accepted",
                    SET,
                    "silver".into(),
                    with_id("set-2"),
                )
                .await
        })
    };
    wait_accepted(&engine, "format9-running-accepted", 1).await;
    engine.shutdown().await.unwrap();
    assert!(waiting.await.unwrap().is_err(), "answered at shutdown");
    std::fs::copy(&db.path, &target).unwrap();
}

async fn wait_accepted(engine: &Engine, workflow_id: &str, count: usize) {
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history(workflow_id).await.unwrap();
        let accepted = history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::WorkflowUpdateAccepted { .. }))
            .count();
        (accepted >= count).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_9_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 9);
    let engine = builder().open(&db.path).await.unwrap();

    // The closed run: both outcomes are still answered by update ID.
    let closed = engine.describe("format9-closed").await.unwrap();
    assert_eq!(closed.status, WorkflowStatus::Completed);
    let history = engine.history("format9-closed").await.unwrap();
    assert_history_well_formed(&history);
    let outcomes: Vec<&UpdateOutcome> = history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowUpdateCompleted { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(outcomes[0], UpdateOutcome::Success { .. }));
    assert!(matches!(outcomes[1], UpdateOutcome::Failure { .. }));
    assert_eq!(
        engine
            .update_with_options("format9-closed", SET, "x".into(), with_id("set-1"))
            .await
            .unwrap(),
        4
    );
    assert!(matches!(
        engine
            .update_with_options("format9-closed", SET, "x".into(), with_id("fail-1"))
            .await,
        Err(UpdateError::Failed { .. })
    ));

    // The running run replays its accepted update; the caller that asks
    // again by its ID gets the outcome once the handler goes on.
    let pending = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .update_with_options(
                    "format9-running-accepted",
                    SET,
                    "other".into(),
                    with_id("set-2"),
                )
                .await
        })
    };
    engine
        .signal("format9-running-accepted", RELEASE, 1)
        .await
        .unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), 7);
    engine
        .signal("format9-running-accepted", STOP, ())
        .await
        .unwrap();
    let handle = engine
        .get_workflow_handle(PLANS, "format9-running-accepted")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "silver");
    assert_history_well_formed(&engine.history("format9-running-accepted").await.unwrap());
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_8_files_are_opened_as_the_current_format() {
    let db = support::copy_fixture(FORMAT_8_FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 8);
    let engine = Engine::builder().open(&db.path).await.unwrap();
    let page = engine.list(&steadfast::ListFilter::new()).await.unwrap();
    assert!(!page.executions.is_empty());
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        support::CURRENT_STORE_FORMAT
    );
}
