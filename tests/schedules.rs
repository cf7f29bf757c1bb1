//! Promise: schedules act as Temporal's do, on the engine's clock (here the
//! test engine's virtual one): one workflow per nominal time with the time
//! in its ID, every overlap policy, the catch-up window after downtime,
//! pause with a note and unpause, trigger (also while paused), backfill,
//! a limit on actions, describe with next and recent actions, list,
//! update and delete, each refusal a typed error; and schedules persist
//! across a reopen. With `STEADFAST_TEST_STORE=postgres` the test engines
//! run on PostgreSQL (`TestEngine::open_postgres_at`); the read-only
//! engine reads a file either way.

mod support;

use std::time::{Duration, SystemTime};

use steadfast::testing::TestEngine;
use steadfast::{
    Engine, EngineBuilder, ListFilter, SCHEDULED_BY_ID, Schedule, ScheduleAction, ScheduleBackfill,
    ScheduleError, ScheduleIntervalSpec, ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec,
    ScheduleState, WorkflowContext, WorkflowDef, WorkflowError, WorkflowExecutionInfo,
    WorkflowOptions, WorkflowStatus, scheduled_workflow_id,
};
use support::temp_db;

const SECOND: Duration = Duration::from_secs(1);
/// Real time after which a wait counts as hung.
const HUNG: Duration = Duration::from_secs(60);

/// Sleeps for the given milliseconds of workflow time, then returns.
const NAP: WorkflowDef<u64, ()> = WorkflowDef::new("Nap");

async fn nap(ctx: WorkflowContext, millis: u64) -> Result<(), WorkflowError> {
    if millis > 0 {
        ctx.sleep(Duration::from_millis(millis)).await?;
    }
    Ok(())
}

fn builder() -> EngineBuilder {
    Engine::builder().workflow(NAP, nap)
}

/// A whole second well in the future of any test machine's clock, plus a
/// half: nominal times (whole seconds) then fall between clock ticks.
fn start_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000) + Duration::from_millis(500)
}

/// A test engine at `start` on the store this run uses (see
/// `support::STORE_VAR`): the file at `path`, or on PostgreSQL the schema
/// that stands for it.
async fn open_env(builder: EngineBuilder, path: &std::path::Path, start: SystemTime) -> TestEngine {
    if support::on_postgres() {
        let url = support::postgres::url().expect("PostgreSQL is installed");
        let builder = builder.postgres_schema(support::postgres::schema_for(path));
        return TestEngine::open_postgres_at(builder, &url, start)
            .await
            .unwrap();
    }
    TestEngine::open_path_at(builder, path, start)
        .await
        .unwrap()
}

async fn test_engine() -> (TestEngine, support::TempDb) {
    let db = temp_db();
    let env = open_env(builder(), &db.path, start_time()).await;
    (env, db)
}

fn every_second(millis: u64, overlap: ScheduleOverlapPolicy) -> Schedule {
    let action =
        ScheduleAction::start_workflow(NAP, "nap", &millis, WorkflowOptions::new()).unwrap();
    Schedule::new(
        action,
        ScheduleSpec::interval(ScheduleIntervalSpec::new(SECOND)),
    )
    .with_policy(SchedulePolicy::default().overlap(overlap))
}

async fn sleep(env: &TestEngine, d: Duration) {
    tokio::time::timeout(HUNG, env.sleep(d))
        .await
        .expect("the virtual clock hung");
}

/// Every run the schedule started, oldest start first.
async fn runs_of(engine: &Engine, schedule_id: &str) -> Vec<WorkflowExecutionInfo> {
    let filter = ListFilter::new()
        .with_search_attribute(SCHEDULED_BY_ID, schedule_id)
        .with_page_size(1000);
    let mut runs = engine.list(&filter).await.unwrap().executions;
    runs.sort_by_key(|r| r.start_time);
    runs
}

/// The nominal second `n` after the start.
fn nominal(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000 + n)
}

#[tokio::test]
async fn an_interval_starts_one_workflow_per_nominal_time() {
    let (env, _db) = test_engine().await;
    let handle = env
        .create_schedule("tick", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    sleep(&env, Duration::from_secs(10)).await;
    let runs = runs_of(&env, "tick").await;
    let ids: Vec<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    let expected: Vec<String> = (1..=10)
        .map(|n| scheduled_workflow_id("nap", nominal(n)))
        .collect();
    assert_eq!(ids, expected);
    assert!(ids[0].ends_with("-2030-03-17T17:46:41Z"), "{}", ids[0]);
    assert!(runs.iter().all(|r| r.status == WorkflowStatus::Completed));
    let d = handle.describe().await.unwrap();
    assert_eq!(d.info.action_count, 10);
    assert_eq!(d.info.recent_actions.len(), 10);
    assert_eq!(d.info.recent_actions[9].schedule_time, nominal(10));
    assert_eq!(d.info.recent_actions[9].workflow.workflow_id, expected[9]);
    assert_eq!(d.info.next_action_times.len(), 5);
    assert_eq!(d.info.next_action_times[0], nominal(11));
    assert!(d.info.running_workflows.is_empty());
    env.shutdown().await.unwrap();
}

/// Whether any two runs overlapped in time.
fn overlapping(runs: &[WorkflowExecutionInfo]) -> bool {
    runs.windows(2).any(|w| {
        w[0].close_time
            .is_none_or(|closed| closed > w[1].start_time)
    })
}

#[tokio::test]
async fn skip_drops_actions_while_one_runs_and_allow_all_runs_them_beside() {
    let (env, _db) = test_engine().await;
    // Each run takes 2.5 s: with skip, two of every three seconds find one running.
    let skip = env
        .create_schedule("skip", every_second(2500, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    let all = env
        .create_schedule("all", {
            let mut s = every_second(2500, ScheduleOverlapPolicy::AllowAll);
            s.action.workflow_id = "nap-all".into();
            s
        })
        .await
        .unwrap();
    sleep(&env, Duration::from_secs(9)).await;
    let skipped = runs_of(&env, "skip").await;
    assert!(!overlapping(&skipped));
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    let d = skip.describe().await.unwrap();
    assert_eq!(d.info.action_count, 3);
    assert_eq!(d.info.overlap_skipped, 6);
    let everything = runs_of(&env, "all").await;
    assert_eq!(everything.len(), 9);
    assert!(overlapping(&everything));
    assert_eq!(all.describe().await.unwrap().info.overlap_skipped, 0);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn buffer_all_runs_every_action_one_after_another() {
    let (env, _db) = test_engine().await;
    let schedule = every_second(2500, ScheduleOverlapPolicy::BufferAll)
        .with_state(ScheduleState::default().with_remaining_actions(4));
    let handle = env.create_schedule("buffered", schedule).await.unwrap();
    sleep(&env, Duration::from_secs(30)).await;
    let runs = runs_of(&env, "buffered").await;
    assert_eq!(runs.len(), 4);
    assert!(!overlapping(&runs));
    let d = handle.describe().await.unwrap();
    assert_eq!((d.info.overlap_skipped, d.info.buffer_size), (0, 0));
    assert_eq!(d.schedule.state.remaining_actions, Some(0));
    assert!(d.info.next_action_times.is_empty());
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn buffer_one_keeps_one_action_waiting() {
    let (env, _db) = test_engine().await;
    let handle = env
        .create_schedule("one", every_second(2500, ScheduleOverlapPolicy::BufferOne))
        .await
        .unwrap();
    sleep(&env, Duration::from_secs(9)).await;
    let runs = runs_of(&env, "one").await;
    assert!(!overlapping(&runs));
    let d = handle.describe().await.unwrap();
    // Every second is started, skipped, or the one waiting.
    assert_eq!(
        d.info.action_count + d.info.overlap_skipped + d.info.buffer_size as u64,
        9
    );
    assert!(d.info.buffer_size <= 1);
    assert!(d.info.overlap_skipped > 0);
    // More started than with skip: the waiting one starts when the last closes.
    assert!(d.info.action_count >= 4, "{:?}", d.info);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_other_and_terminate_other_end_the_running_workflow() {
    let (env, _db) = test_engine().await;
    let cancel = every_second(10_000, ScheduleOverlapPolicy::CancelOther);
    env.create_schedule("cancel", cancel).await.unwrap();
    let mut terminate = every_second(10_000, ScheduleOverlapPolicy::TerminateOther);
    terminate.action.workflow_id = "nap-terminate".into();
    env.create_schedule("terminate", terminate).await.unwrap();
    sleep(&env, Duration::from_secs(4)).await;
    for (schedule_id, ended) in [
        ("cancel", WorkflowStatus::Cancelled),
        ("terminate", WorkflowStatus::Terminated),
    ] {
        let runs = runs_of(&env, schedule_id).await;
        assert_eq!(runs.len(), 4, "{schedule_id}: {runs:?}");
        assert!(!overlapping(&runs), "{schedule_id}");
        let (last, earlier) = runs.split_last().unwrap();
        assert!(
            earlier.iter().all(|r| r.status == ended),
            "{schedule_id}: {runs:?}"
        );
        assert_eq!(last.status, WorkflowStatus::Running);
    }
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_with_a_note_then_unpause_and_trigger_while_paused() {
    let (env, _db) = test_engine().await;
    let handle = env
        .create_schedule("paused", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    sleep(&env, Duration::from_secs(2)).await;
    handle.pause("maintenance window").await.unwrap();
    sleep(&env, Duration::from_secs(5)).await;
    let d = handle.describe().await.unwrap();
    assert!(d.schedule.state.paused);
    assert_eq!(d.schedule.state.note, "maintenance window");
    assert_eq!(d.info.action_count, 2);
    assert!(d.info.next_action_times.is_empty());
    // A trigger acts even while paused, under the current time.
    handle.trigger(None).await.unwrap();
    sleep(&env, SECOND / 10).await;
    let d = handle.describe().await.unwrap();
    assert_eq!(d.info.action_count, 3);
    let triggered = &d.info.recent_actions[2];
    assert_eq!(
        triggered.workflow.workflow_id,
        scheduled_workflow_id("nap", triggered.schedule_time)
    );
    handle.unpause("done").await.unwrap();
    sleep(&env, Duration::from_secs(3)).await;
    let d = handle.describe().await.unwrap();
    assert!(!d.schedule.state.paused);
    assert_eq!(d.schedule.state.note, "done");
    // The paused seconds are not made up for.
    assert_eq!(d.info.action_count, 6, "{:?}", d.info);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn backfill_takes_the_actions_of_a_past_range_once() {
    let (env, _db) = test_engine().await;
    let handle = env
        .create_schedule("backfill", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    handle.pause("only backfill").await.unwrap();
    let from = nominal(0) - Duration::from_secs(60);
    let to = from + Duration::from_secs(4);
    let range = ScheduleBackfill::new(from, to, ScheduleOverlapPolicy::AllowAll);
    handle.backfill(vec![range]).await.unwrap();
    sleep(&env, SECOND / 10).await;
    // The same range again starts nothing new: its IDs have run.
    handle.backfill(vec![range]).await.unwrap();
    sleep(&env, SECOND / 10).await;
    let runs = runs_of(&env, "backfill").await;
    let mut ids: Vec<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    ids.sort();
    let expected: Vec<String> = (0..=4)
        .map(|n| scheduled_workflow_id("nap", from + Duration::from_secs(n)))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(handle.describe().await.unwrap().info.action_count, 5);
    let err = handle
        .backfill(vec![ScheduleBackfill::new(
            to,
            from,
            ScheduleOverlapPolicy::Skip,
        )])
        .await
        .unwrap_err();
    assert!(matches!(err, ScheduleError::InvalidArgument(_)), "{err}");
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_catchup_window_bounds_what_downtime_makes_up_for() {
    let db = temp_db();
    let env = open_env(builder(), &db.path, start_time()).await;
    let schedule = every_second(0, ScheduleOverlapPolicy::AllowAll).with_policy(
        SchedulePolicy::default()
            .overlap(ScheduleOverlapPolicy::AllowAll)
            .catchup_window(Duration::from_secs(10)),
    );
    env.create_schedule("catchup", schedule).await.unwrap();
    sleep(&env, Duration::from_secs(3)).await;
    env.shutdown().await.unwrap();
    // Down for a minute: seconds 4 to 63 passed without the engine.
    let reopened = start_time() + Duration::from_secs(63);
    let env = open_env(builder(), &db.path, reopened).await;
    sleep(&env, SECOND / 10).await;
    let d = env.describe_schedule("catchup").await.unwrap();
    // The reopen is at 63.5: 54 to 63 are at most 10 s old, taken; 4 to 53
    // are older, missed.
    assert_eq!(d.info.missed_catchup_window, 50, "{:?}", d.info);
    assert_eq!(d.info.action_count, 3 + 10);
    let runs = runs_of(&env, "catchup").await;
    let mut ids: Vec<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    ids.sort();
    let expected: Vec<String> = (1..=3)
        .chain(54..=63)
        .map(|n| scheduled_workflow_id("nap", nominal(n)))
        .collect();
    assert_eq!(ids, expected);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_list_update_and_delete() {
    let (env, _db) = test_engine().await;
    let handle = env
        .create_schedule("b-hourly", {
            let mut s = every_second(0, ScheduleOverlapPolicy::Skip);
            s.spec = ScheduleSpec::cron("0 * * * *").time_zone("Asia/Kolkata");
            s
        })
        .await
        .unwrap();
    env.create_schedule("a-second", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    let listed = env.list_schedules().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.schedule_id.as_str()).collect();
    assert_eq!(ids, ["a-second", "b-hourly"]);
    assert_eq!(listed[1].workflow_type, "Nap");
    // Kolkata is UTC+5:30: its whole hours fall on half past in UTC.
    let next = listed[1].next_action_times[0]
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(next % 3600, 1800);
    handle
        .update(|s| {
            s.spec = ScheduleSpec::interval(
                ScheduleIntervalSpec::new(Duration::from_secs(60))
                    .with_offset(Duration::from_secs(7)),
            );
            s.policy.overlap = ScheduleOverlapPolicy::BufferOne;
        })
        .await
        .unwrap();
    let d = handle.describe().await.unwrap();
    assert_eq!(d.schedule.policy.overlap, ScheduleOverlapPolicy::BufferOne);
    let next = d.info.next_action_times[0]
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(next % 60, 7);
    assert!(d.info.last_updated_at.is_some());
    handle.delete().await.unwrap();
    assert!(matches!(
        handle.describe().await,
        Err(ScheduleError::NotFound { .. })
    ));
    assert_eq!(env.list_schedules().await.unwrap().len(), 1);
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_are_typed_errors() {
    let (env, _db) = test_engine().await;
    env.create_schedule("taken", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap();
    let err = env
        .create_schedule("taken", every_second(0, ScheduleOverlapPolicy::Skip))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ScheduleError::AlreadyRunning { ref schedule_id } if schedule_id == "taken")
    );
    let mut bad = every_second(0, ScheduleOverlapPolicy::Skip);
    bad.spec = ScheduleSpec::cron("61 * * * *");
    let err = env.create_schedule("bad", bad).await.unwrap_err();
    let ScheduleError::InvalidSpec { spec, message } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(spec, "61 * * * *");
    assert!(!message.is_empty());
    assert!(err.to_string().contains("61 * * * *"));
    let mut zone = every_second(0, ScheduleOverlapPolicy::Skip);
    zone.spec = ScheduleSpec::cron("* * * * *").time_zone("Nowhere/Atlantis");
    assert!(matches!(
        env.create_schedule("zone", zone).await,
        Err(ScheduleError::InvalidSpec { .. })
    ));
    let short = every_second(0, ScheduleOverlapPolicy::Skip)
        .with_policy(SchedulePolicy::default().catchup_window(SECOND));
    assert!(matches!(
        env.create_schedule("short", short).await,
        Err(ScheduleError::InvalidArgument(_))
    ));
    let unknown = Schedule::new(
        ScheduleAction::start_workflow_by_name(
            "NoSuchType",
            "x",
            steadfast::Payload::encode(&()).unwrap(),
            WorkflowOptions::new(),
        ),
        ScheduleSpec::cron("* * * * *"),
    );
    assert!(matches!(
        env.create_schedule("unknown", unknown).await,
        Err(ScheduleError::Client(
            steadfast::ClientError::UnknownWorkflowType { .. }
        ))
    ));
    let missing = env.schedule_handle("missing");
    assert!(matches!(
        missing.pause("x").await,
        Err(ScheduleError::NotFound { .. })
    ));
    assert!(matches!(
        missing.trigger(None).await,
        Err(ScheduleError::NotFound { .. })
    ));
    assert!(matches!(
        env.describe_schedule("missing").await,
        Err(ScheduleError::NotFound { .. })
    ));
    env.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_read_only_engine_reads_schedules_and_refuses_changes() {
    let db = temp_db();
    {
        let engine = builder().open(&db.path).await.unwrap();
        engine
            .create_schedule("kept", every_second(0, ScheduleOverlapPolicy::Skip))
            .await
            .unwrap();
        engine
            .schedule_handle("kept")
            .pause("kept for reading")
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
    }
    let engine = Engine::builder().read_only().open(&db.path).await.unwrap();
    let d = engine.describe_schedule("kept").await.unwrap();
    assert_eq!(d.schedule.state.note, "kept for reading");
    assert_eq!(engine.list_schedules().await.unwrap().len(), 1);
    assert!(matches!(
        engine.schedule_handle("kept").unpause("no").await,
        Err(ScheduleError::Client(
            steadfast::ClientError::ReadOnly { .. }
        ))
    ));
    engine.shutdown().await.unwrap();
}

/// Completes with "fine" when told to, fails otherwise.
const FLIP: WorkflowDef<bool, String> = WorkflowDef::new("Flip");

async fn flip(_ctx: WorkflowContext, ok: bool) -> Result<String, WorkflowError> {
    if ok {
        Ok("fine".to_string())
    } else {
        Err(WorkflowError::new("told to fail"))
    }
}

fn flip_action(ok: bool) -> ScheduleAction {
    ScheduleAction::start_workflow(FLIP, "flip", &ok, WorkflowOptions::new()).unwrap()
}

#[tokio::test]
async fn describe_shows_the_last_completion_result_and_the_last_failure() {
    let db = temp_db();
    let env = open_env(builder().workflow(FLIP, flip), &db.path, start_time()).await;
    let schedule = Schedule::new(
        flip_action(true),
        ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(3600))),
    )
    .with_state(ScheduleState::paused("triggered by hand"));
    let handle = env.create_schedule("flip", schedule).await.unwrap();
    let d = handle.describe().await.unwrap();
    assert_eq!(
        (d.info.last_completion_result, d.info.last_failure),
        (None, None)
    );

    // Each trigger under its own second, so each action has its own ID.
    let act = |ok: bool| {
        let (env, handle) = (&env, &handle);
        async move {
            handle.update(|s| s.action = flip_action(ok)).await.unwrap();
            handle.trigger(None).await.unwrap();
            sleep(env, SECOND).await;
        }
    };
    act(true).await;
    let d = handle.describe().await.unwrap();
    let fine = d
        .info
        .last_completion_result
        .map(|p| p.decode::<String>().unwrap());
    assert_eq!(fine.as_deref(), Some("fine"));
    assert_eq!(d.info.last_failure, None);

    act(false).await;
    let d = handle.describe().await.unwrap();
    assert_eq!(
        d.info.last_failure.map(|f| f.message),
        Some("told to fail".to_string())
    );
    let fine = d
        .info
        .last_completion_result
        .map(|p| p.decode::<String>().unwrap());
    assert_eq!(
        fine.as_deref(),
        Some("fine"),
        "kept from the earlier success"
    );

    // A success clears the failure.
    act(true).await;
    let d = handle.describe().await.unwrap();
    assert_eq!(d.info.last_failure, None);
    assert_eq!(d.info.action_count, 3);
    env.shutdown().await.unwrap();
}

/// Counts on from the last completion result the schedule passes it, and
/// fails when the count reaches its input; answers the count and the last
/// failure's message it was given.
const COUNT: WorkflowDef<u32, (u32, Option<String>)> = WorkflowDef::new("Count");

async fn count(ctx: WorkflowContext, fail_at: u32) -> Result<(u32, Option<String>), WorkflowError> {
    let previous: Option<(u32, Option<String>)> = ctx.last_completion_result()?;
    let n = previous.map_or(0, |(n, _)| n) + 1;
    if n == fail_at {
        return Err(WorkflowError::new(format!("failed at {n}")));
    }
    Ok((n, ctx.last_failure().map(|f| f.message)))
}

fn count_schedule(fail_at: u32) -> Schedule {
    let action =
        ScheduleAction::start_workflow(COUNT, "count", &fail_at, WorkflowOptions::new()).unwrap();
    Schedule::new(
        action,
        ScheduleSpec::interval(ScheduleIntervalSpec::new(SECOND)),
    )
    .with_policy(SchedulePolicy::default().pause_on_failure(true))
}

#[tokio::test]
async fn the_last_result_reaches_the_next_action_and_a_failure_pauses_the_schedule() {
    let db = temp_db();
    let env = open_env(builder().workflow(COUNT, count), &db.path, start_time()).await;
    let handle = env
        .create_schedule("count", count_schedule(3))
        .await
        .unwrap();
    assert!(
        handle
            .describe()
            .await
            .unwrap()
            .schedule
            .policy
            .pause_on_failure
    );
    sleep(&env, Duration::from_secs(6)).await;
    // 1 and 2 completed, 3 failed: the schedule paused itself, and took no
    // action since.
    let d = handle.describe().await.unwrap();
    assert_eq!(d.info.action_count, 3, "{d:?}");
    assert!(d.schedule.state.paused);
    let third = &d.info.recent_actions[2].workflow.workflow_id;
    assert!(
        d.schedule.state.note.contains("paused on failure")
            && d.schedule.state.note.contains(third.as_str())
            && d.schedule.state.note.contains("failed at 3"),
        "{}",
        d.schedule.state.note
    );
    let results: Vec<_> = runs_of(&env, "count").await;
    assert_eq!(
        results.iter().map(|r| r.status).collect::<Vec<_>>(),
        [
            WorkflowStatus::Completed,
            WorkflowStatus::Completed,
            WorkflowStatus::Failed
        ]
    );
    // The first action had nothing passed to it: no extra event.
    let first = env.history(&results[0].workflow_id).await.unwrap();
    assert!(!first.iter().any(|e| matches!(
        e.kind,
        steadfast::EventKind::WorkflowStartedBySchedule { .. }
    )));
    let second = env.history(&results[1].workflow_id).await.unwrap();
    assert!(matches!(
        &second[1].kind,
        steadfast::EventKind::WorkflowStartedBySchedule { schedule_id, last_failure: None, .. }
            if schedule_id == "count"
    ));

    // Unpaused with an input that no longer fails: the next action counts
    // on from the last completion (2) and is given the last failure; the
    // one after it, after a success, is not.
    handle.update(|s| *s = count_schedule(0)).await.unwrap();
    handle.unpause("fixed").await.unwrap();
    sleep(&env, Duration::from_secs(2)).await;
    let runs = runs_of(&env, "count").await;
    assert!(runs.len() >= 5, "{runs:?}");
    let result = |i: usize| {
        let id = runs[i].workflow_id.clone();
        let env = &env;
        async move {
            env.get_workflow_handle(COUNT, id)
                .await
                .unwrap()
                .result()
                .await
                .unwrap()
        }
    };
    assert_eq!(result(3).await, (3, Some("failed at 3".to_string())));
    assert_eq!(result(4).await, (4, None));
    let d = handle.describe().await.unwrap();
    assert!(!d.schedule.state.paused);
    env.shutdown().await.unwrap();
}

/// Sleeps for the given milliseconds of workflow time, then fails.
const DOOMED: WorkflowDef<u64, ()> = WorkflowDef::new("Doomed");

async fn doomed(ctx: WorkflowContext, millis: u64) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_millis(millis)).await?;
    Err(WorkflowError::new("doomed"))
}

/// The actions buffered behind a run that fails under `pause_on_failure`
/// are dropped with the pause, as in Temporal (its scheduler does not take
/// a buffered automated start while paused); a triggered one buffered with
/// them still starts, since a trigger acts while paused. After the
/// unpause, none of the dropped ones starts.
#[tokio::test]
async fn a_pause_on_failure_drops_the_actions_buffered_behind_the_failed_run() {
    for overlap in [
        ScheduleOverlapPolicy::BufferOne,
        ScheduleOverlapPolicy::BufferAll,
    ] {
        let db = temp_db();
        let env = open_env(builder().workflow(DOOMED, doomed), &db.path, start_time()).await;
        let action =
            ScheduleAction::start_workflow(DOOMED, "doomed", &2500u64, WorkflowOptions::new())
                .unwrap();
        let schedule = Schedule::new(
            action,
            ScheduleSpec::interval(ScheduleIntervalSpec::new(SECOND)),
        )
        .with_policy(
            SchedulePolicy::default()
                .overlap(overlap)
                .pause_on_failure(true),
        );
        let handle = env.create_schedule("doomed", schedule).await.unwrap();
        // Second 1's run fails at 3.5; second 2's waits behind it, then a
        // trigger (under buffer-all, so it waits too), then second 3's
        // (buffered, or skipped under buffer-one).
        sleep(&env, Duration::from_secs(2)).await;
        let d = handle.describe().await.unwrap();
        assert_eq!((d.info.action_count, d.info.buffer_size), (1, 1), "{d:?}");
        handle
            .trigger(Some(ScheduleOverlapPolicy::BufferAll))
            .await
            .unwrap();
        sleep(&env, Duration::from_secs(10)).await;
        let d = handle.describe().await.unwrap();
        assert!(d.schedule.state.paused, "{overlap}: {d:?}");
        assert!(d.schedule.state.note.contains("paused on failure"));
        assert_eq!(d.info.buffer_size, 0, "{overlap}: dropped");
        let runs = runs_of(&env, "doomed").await;
        let ids: Vec<&str> = runs.iter().map(|r| r.workflow_id.as_str()).collect();
        assert_eq!(
            runs.len(),
            2,
            "{overlap}: the first and the trigger: {ids:?}"
        );
        assert_eq!(
            runs[0].workflow_id,
            scheduled_workflow_id("doomed", nominal(1))
        );
        assert!(
            runs.iter().all(|r| r.status == WorkflowStatus::Failed),
            "{overlap}: {runs:?}"
        );
        let buffered = [nominal(2), nominal(3)].map(|n| scheduled_workflow_id("doomed", n));
        assert!(!ids.iter().any(|id| buffered.iter().any(|b| b == id)));
        assert_eq!(d.info.action_count, 2);

        // Unpaused, the spec acts again from now; the dropped ones stay dropped.
        handle.unpause("fixed").await.unwrap();
        sleep(&env, Duration::from_millis(1200)).await;
        let runs = runs_of(&env, "doomed").await;
        assert_eq!(runs.len(), 3, "{overlap}: {runs:?}");
        assert!(!runs.iter().any(|r| buffered.contains(&r.workflow_id)));
        env.shutdown().await.unwrap();
    }
}

/// The last completion result and last failure are kept in the schedule:
/// `describe` shows them after retention deleted the workflows (and
/// histories) they came from.
#[tokio::test]
async fn the_last_result_and_failure_outlive_their_workflows_under_retention() {
    let db = temp_db();
    let builder = builder()
        .workflow(FLIP, flip)
        .retention(Duration::from_secs(2));
    let env = open_env(builder, &db.path, start_time()).await;
    let schedule = Schedule::new(
        flip_action(true),
        ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(3600))),
    )
    .with_state(ScheduleState::paused("triggered by hand"));
    let handle = env.create_schedule("kept", schedule).await.unwrap();
    // Acts, then waits until retention removed the action's workflow.
    let act = |ok: bool| {
        let (env, handle) = (&env, &handle);
        async move {
            handle.update(|s| s.action = flip_action(ok)).await.unwrap();
            handle.trigger(None).await.unwrap();
            sleep(env, SECOND).await;
            let d = handle.describe().await.unwrap();
            let id = d
                .info
                .recent_actions
                .last()
                .unwrap()
                .workflow
                .workflow_id
                .clone();
            sleep(env, Duration::from_secs(5)).await;
            support::eventually(HUNG, || async {
                env.history(&id).await.is_err().then_some(())
            })
            .await;
        }
    };
    act(true).await;
    let d = handle.describe().await.unwrap();
    let fine = d
        .info
        .last_completion_result
        .map(|p| p.decode::<String>().unwrap());
    assert_eq!(fine.as_deref(), Some("fine"), "kept after retention");
    assert_eq!(d.info.last_failure, None);

    act(false).await;
    let d = handle.describe().await.unwrap();
    assert_eq!(
        d.info.last_failure.map(|f| f.message),
        Some("told to fail".to_string())
    );
    let fine = d
        .info
        .last_completion_result
        .map(|p| p.decode::<String>().unwrap());
    assert_eq!(fine.as_deref(), Some("fine"));
    assert!(runs_of(&env, "kept").await.is_empty(), "all removed");
    env.shutdown().await.unwrap();
}
