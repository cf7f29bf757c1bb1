//! Promise: files written by store format 14 keep opening, with their
//! schedules as they were written and acting again; a format-13 file is
//! opened as format 14 with no schedules, and takes new ones.
//!
//! Format 14 keeps format 13's tables and records and adds the table
//! `schedules` (one `ScheduleRecord` per schedule: its configuration and
//! progress). `tests/fixtures/format-14.steadfast` was written once, by the
//! build that introduced format 14, with `STEADFAST_WRITE_FIXTURES=1 cargo
//! test --test format_v14 -- --ignored write_format_14_fixture`, and is
//! never regenerated. It holds:
//!
//! | Schedule ID | Spec | State in the file |
//! |---|---|---|
//! | `format14-hourly` | every hour at minute 7 (an interval with an offset), overlap allow-all | triggered once: one recent action, its workflow `format14-hourly-<time>` Completed |
//! | `format14-nightly` | cron `30 2 * * *` in `Europe/Paris`, jitter 1 min, bounds 2030 to 2040, overlap buffer-all, catch-up 1 day | paused with the note `fixture`, 5 actions left, none taken |

mod support;

use std::time::{Duration, SystemTime};

use steadfast::{
    Engine, EngineBuilder, Schedule, ScheduleAction, ScheduleIntervalSpec, ScheduleOverlapPolicy,
    SchedulePolicy, ScheduleSpec, ScheduleState, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{CURRENT_STORE_FORMAT, eventually};

const FIXTURE: &str = "tests/fixtures/format-14.steadfast";
const PATIENCE: Duration = Duration::from_secs(20);

const REPORT: WorkflowDef<String, String> = WorkflowDef::new("Format14.Report");

fn builder() -> EngineBuilder {
    Engine::builder().workflow(REPORT, |_ctx: WorkflowContext, name: String| async move {
        Ok::<_, WorkflowError>(format!("report {name}"))
    })
}

fn year(y: u64) -> SystemTime {
    // 2030-01-01 and 2040-01-01, midnight UTC.
    let secs = match y {
        2030 => 1_893_456_000,
        _ => 2_208_988_800,
    };
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn hourly() -> Schedule {
    let action = ScheduleAction::start_workflow(
        REPORT,
        "format14-hourly",
        &"hourly".to_string(),
        WorkflowOptions::new(),
    )
    .unwrap();
    let spec = ScheduleSpec::interval(
        ScheduleIntervalSpec::new(Duration::from_secs(3600)).with_offset(Duration::from_secs(420)),
    );
    Schedule::new(action, spec)
        .with_policy(SchedulePolicy::default().overlap(ScheduleOverlapPolicy::AllowAll))
}

fn nightly() -> Schedule {
    let action = ScheduleAction::start_workflow(
        REPORT,
        "format14-nightly",
        &"nightly".to_string(),
        WorkflowOptions::new(),
    )
    .unwrap();
    let spec = ScheduleSpec::cron("30 2 * * *")
        .time_zone("Europe/Paris")
        .jitter(Duration::from_secs(60))
        .start_at(year(2030))
        .end_at(year(2040));
    Schedule::new(action, spec)
        .with_policy(
            SchedulePolicy::default()
                .overlap(ScheduleOverlapPolicy::BufferAll)
                .catchup_window(Duration::from_secs(24 * 3600)),
        )
        .with_state(ScheduleState::paused("fixture").with_remaining_actions(5))
}

async fn completed(engine: &Engine, workflow_id: &str) {
    eventually(PATIENCE, || async {
        let d = engine.describe(workflow_id).await.ok()?;
        (d.status == WorkflowStatus::Completed).then_some(())
    })
    .await;
}

/// Writes `tests/fixtures/format-14.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_format_14_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let hourly = engine
        .create_schedule("format14-hourly", hourly())
        .await
        .unwrap();
    engine
        .create_schedule("format14-nightly", nightly())
        .await
        .unwrap();
    hourly.trigger(None).await.unwrap();
    let id = eventually(PATIENCE, || async {
        let d = hourly.describe().await.ok()?;
        d.info
            .recent_actions
            .first()
            .map(|a| a.workflow.workflow_id.clone())
    })
    .await;
    completed(&engine, &id).await;
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_14_files_keep_their_schedules() {
    let db = support::copy_fixture(FIXTURE);
    assert_eq!(support::stored_format_version(&db.path), 14);
    // Read-only first: no schedule driver runs, so what the file holds is
    // read as it was written, whatever the clock says now (an engine that
    // writes catches up on the hourly actions missed since the fixture was
    // written).
    let engine = Engine::builder().read_only().open(&db.path).await.unwrap();
    let listed = engine.list_schedules().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.schedule_id.as_str()).collect();
    assert_eq!(ids, ["format14-hourly", "format14-nightly"]);

    let hourly_d = engine.describe_schedule("format14-hourly").await.unwrap();
    assert_eq!(hourly_d.schedule.spec, hourly().spec);
    assert_eq!(hourly_d.schedule.policy, hourly().policy);
    assert_eq!(hourly_d.schedule.action, hourly().action);
    assert_eq!(hourly_d.info.recent_actions.len(), 1);
    let ran = &hourly_d.info.recent_actions[0].workflow.workflow_id;
    assert!(ran.starts_with("format14-hourly-"), "{ran}");
    let run = engine.describe(ran).await.unwrap();
    assert_eq!(run.status, WorkflowStatus::Completed);
    let next = hourly_d.info.next_action_times[0]
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(next % 3600, 420);

    let nightly_d = engine.describe_schedule("format14-nightly").await.unwrap();
    assert_eq!(nightly_d.schedule.spec, nightly().spec);
    assert_eq!(nightly_d.schedule.policy, nightly().policy);
    assert_eq!(nightly_d.schedule.state, nightly().state);
    assert_eq!(nightly_d.info.action_count, 0);
    assert!(nightly_d.info.next_action_times.is_empty());
    engine.shutdown().await.unwrap();
    let engine = builder().open(&db.path).await.unwrap();

    // The schedules act again: a trigger of the paused one starts its workflow.
    engine
        .schedule_handle("format14-nightly")
        .trigger(None)
        .await
        .unwrap();
    let id = eventually(PATIENCE, || async {
        let d = engine.describe_schedule("format14-nightly").await.ok()?;
        d.info
            .recent_actions
            .first()
            .map(|a| a.workflow.workflow_id.clone())
    })
    .await;
    completed(&engine, &id).await;
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_13_file_opens_as_format_14_and_takes_schedules() {
    let db = support::copy_fixture("tests/fixtures/format-13.steadfast");
    let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
    assert!(reader.list_schedules().await.unwrap().is_empty());
    reader.shutdown().await.unwrap();
    assert_eq!(support::stored_format_version(&db.path), 13);
    let engine = builder().open(&db.path).await.unwrap();
    assert!(engine.list_schedules().await.unwrap().is_empty());
    engine
        .create_schedule("format14-hourly", hourly())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    assert_eq!(
        support::stored_format_version(&db.path),
        CURRENT_STORE_FORMAT
    );
    let engine = builder().open(&db.path).await.unwrap();
    assert_eq!(engine.list_schedules().await.unwrap().len(), 1);
    engine.shutdown().await.unwrap();
}
