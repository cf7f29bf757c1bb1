//! Promise: files written by store format 16 keep opening and running:
//! their schedules of record version 2 keep pausing on failure and passing
//! the last completion result on, a cancellation request a paused run held
//! is delivered at its unpause, and a child a reset handed to its parent's
//! new run reports there; format-14 and format-15 files open as format 16.
//!
//! Format 16 keeps format 15's tables; histories may hold three more event
//! kinds (`WorkflowCancelRequestDeferred`, `WorkflowStartedBySchedule`,
//! `ParentWorkflowReset`) and schedule records are of version 2
//! (`pause_on_failure`, the last completion result, the last failure).
//! `tests/fixtures/format-16.steadfast` was written once, by the build that
//! introduced format 16, with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! format_v16 -- --ignored write_format_16_fixture`, and is never
//! regenerated. It holds:
//!
//! | ID | What | State in the file |
//! |---|---|---|
//! | schedule `format16-count` | every hour, paused ("fixture"), pause on failure | triggered twice: `Format16.Count` answered 1, then 2 (the second run's event 2 is `WorkflowStartedBySchedule` with the result 1); its record's last completion result is 2 |
//! | `format16-held` | `Format16.Wait` | Running, paused, a client's cancellation held (`WorkflowCancelRequestDeferred`) |
//! | `format16-parent` | `Format16.Parent` | the first run reset to its child's start (Terminated); the second run waiting for the child |
//! | `format16-child` | `Format16.Wait` | Running, started by the first parent run, `ParentWorkflowReset` naming the second; waiting for `format16.go` |

mod support;

use std::time::Duration;

use steadfast::{
    ChildWorkflowOptions, Engine, EngineBuilder, EventKind, ResetOptions, ResetTo, ResultError,
    Schedule, ScheduleAction, ScheduleIntervalSpec, SchedulePolicy, ScheduleSpec, ScheduleState,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-16.steadfast";
const PATIENCE: Duration = Duration::from_secs(20);

const COUNT: WorkflowDef<(), u32> = WorkflowDef::new("Format16.Count");
const WAIT: WorkflowDef<(), String> = WorkflowDef::new("Format16.Wait");
const PARENT: WorkflowDef<(), String> = WorkflowDef::new("Format16.Parent");
const GO: SignalDef<String> = SignalDef::new("format16.go");

/// One more than the last completion result the schedule passed on.
async fn count(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    Ok(ctx.last_completion_result::<u32>()?.unwrap_or(0) + 1)
}

async fn wait(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    Ok(ctx.recv_signal(GO).await?)
}

async fn parent(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    let child = ctx
        .start_child_workflow(WAIT, "format16-child", (), ChildWorkflowOptions::new())
        .await?;
    Ok(format!("child said {}", child.result().await?))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(COUNT, count)
        .workflow(WAIT, wait)
        .workflow(PARENT, parent)
}

fn count_schedule() -> Schedule {
    let action =
        ScheduleAction::start_workflow(COUNT, "format16-count", &(), WorkflowOptions::new())
            .unwrap();
    Schedule::new(
        action,
        ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(3600))),
    )
    .with_policy(SchedulePolicy::default().pause_on_failure(true))
    .with_state(ScheduleState::paused("fixture"))
}

async fn status(engine: &Engine, workflow_id: &str, wanted: WorkflowStatus) {
    eventually(PATIENCE, || async {
        let d = engine.describe(workflow_id).await.ok()?;
        (d.status == wanted).then_some(())
    })
    .await;
}

/// The workflow IDs of a schedule's recent actions, once it has `n`.
async fn actions(engine: &Engine, schedule_id: &str, n: usize) -> Vec<String> {
    eventually(PATIENCE, || async {
        let d = engine.describe_schedule(schedule_id).await.ok()?;
        let ids: Vec<String> = d
            .info
            .recent_actions
            .iter()
            .map(|a| a.workflow.workflow_id.clone())
            .collect();
        (ids.len() >= n).then_some(ids)
    })
    .await
}

async fn result_of(engine: &Engine, workflow_id: &str) -> u32 {
    status(engine, workflow_id, WorkflowStatus::Completed).await;
    engine
        .get_workflow_handle(COUNT, workflow_id)
        .await
        .unwrap()
        .result()
        .await
        .unwrap()
}

/// Writes `tests/fixtures/format-16.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_16_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();

    let schedule = engine
        .create_schedule("format16-count", count_schedule())
        .await
        .unwrap();
    schedule.trigger(None).await.unwrap();
    let first = actions(&engine, "format16-count", 1).await;
    assert_eq!(result_of(&engine, &first[0]).await, 1);
    // A second apart, so the second action has its own ID.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    schedule.trigger(None).await.unwrap();
    let both = actions(&engine, "format16-count", 2).await;
    assert_eq!(result_of(&engine, &both[1]).await, 2);
    // The driver takes the second result in at its next step.
    eventually(PATIENCE, || async {
        let d = engine.describe_schedule("format16-count").await.ok()?;
        d.info.running_workflows.is_empty().then_some(())
    })
    .await;
    schedule.pause("fixture").await.unwrap();

    engine
        .start_workflow(WAIT, "format16-held", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .pause_workflow("format16-held", "fixture pause")
        .await
        .unwrap();
    engine.cancel("format16-held").await.unwrap();

    engine
        .start_workflow(PARENT, "format16-parent", (), WorkflowOptions::new())
        .await
        .unwrap();
    status(&engine, "format16-child", WorkflowStatus::Running).await;
    let started = engine
        .history("format16-parent")
        .await
        .unwrap()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }))
        .unwrap()
        .event_id;
    engine
        .reset_workflow(
            "format16-parent",
            ResetOptions::new(ResetTo::EventId(started), "fixture reset"),
        )
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_16_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 16);

    // Read-only: what the file holds, as written.
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    let d = reader.describe_schedule("format16-count").await.unwrap();
    assert!(d.schedule.policy.pause_on_failure);
    assert!(d.schedule.state.paused);
    assert_eq!(d.info.action_count, 2);
    let second = d.info.recent_actions[1].workflow.workflow_id.clone();
    let passed = reader.history(&second).await.unwrap();
    assert!(matches!(
        &passed[1].kind,
        EventKind::WorkflowStartedBySchedule { schedule_id, last_completion_result: Some(_), .. }
            if schedule_id == "format16-count"
    ));
    let held = reader.history("format16-held").await.unwrap();
    assert!(
        held.iter()
            .any(|e| matches!(e.kind, EventKind::WorkflowCancelRequestDeferred { .. }))
    );
    let parent_run = reader.describe("format16-parent").await.unwrap().run_id;
    let child = reader.describe("format16-child").await.unwrap();
    assert_eq!(child.parent.map(|p| p.run_id), Some(parent_run));
    reader.shutdown().await.unwrap();

    let engine = builder().open(&db.path).await.unwrap();
    // The schedule passes its stored last result (2) to its next action.
    engine
        .schedule_handle("format16-count")
        .trigger(None)
        .await
        .unwrap();
    let ids = actions(&engine, "format16-count", 3).await;
    assert_eq!(result_of(&engine, &ids[2]).await, 3);

    // The held cancellation reaches the code at the unpause.
    engine
        .unpause_workflow("format16-held", "after the upgrade")
        .await
        .unwrap();
    let result = engine
        .get_workflow_handle(WAIT, "format16-held")
        .await
        .unwrap()
        .result()
        .await;
    assert!(
        matches!(result, Err(ResultError::Cancelled { .. })),
        "{result:?}"
    );

    // The child reports to the parent's new run.
    engine
        .signal("format16-child", GO, "hi".into())
        .await
        .unwrap();
    let said = engine
        .get_workflow_handle(PARENT, "format16-parent")
        .await
        .unwrap()
        .result()
        .await
        .unwrap();
    assert_eq!(said, "child said hi");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_14_and_15_files_open_as_format_16() {
    for (fixture, found) in [
        ("tests/fixtures/format-14.steadfast", 14),
        ("tests/fixtures/format-15.steadfast", 15),
    ] {
        let db = support::copy_fixture(fixture);
        let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
        if found == 14 {
            // Version-1 schedule records read as not pausing on failure.
            let d = reader.describe_schedule("format14-nightly").await.unwrap();
            assert!(!d.schedule.policy.pause_on_failure);
        }
        reader.shutdown().await.unwrap();
        assert_eq!(support::stored_format_version(&db.path), found);
        let engine = builder().open(&db.path).await.unwrap();
        engine.shutdown().await.unwrap();
        assert_eq!(
            support::stored_format_version(&db.path),
            CURRENT_STORE_FORMAT
        );
    }
}
