//! Promise: on a PostgreSQL schema several processes share, a schedule is
//! driven by one process at a time, the owner of its ID's shard:
//! - two real processes (this test binary run again as members, see
//!   `member`) and a schedule firing every second: each action starts
//!   exactly once (one run per action's workflow ID, as many runs as the
//!   schedule counts actions, no second missed), and once the driving
//!   process is killed with SIGKILL the other takes the schedule over and
//!   it keeps firing;
//! - a call made in a process that does not drive the schedule (a
//!   trigger) is acted on by the process that does, at once.

mod support;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use steadfast::{
    Engine, EngineBuilder, Schedule, ScheduleAction, ScheduleIntervalSpec, ScheduleOverlapPolicy,
    SchedulePolicy, ScheduleSpec, ScheduleState, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::postgres::{shard_of, sql};
use support::split;
use support::{child_report, spawn_crash_child};

/// Does nothing: each run is one action of the schedule.
const TICK: WorkflowDef<(), ()> = WorkflowDef::new("Tick");

async fn tick(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    Ok(())
}

/// The schedule of the two-process test, and its actions' workflow ID.
const SCHEDULE: &str = "every-second";
const ACTION: &str = "tick";
/// The lease of the member processes: short, to keep the test quick.
const LEASE: Duration = Duration::from_secs(2);

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(TICK, tick)
        .postgres_schema(schema)
        .shard_lease(LEASE)
}

/// The schedule: every second, each action its own run (overlapping
/// allowed, so that every second is an action).
fn every_second() -> Schedule {
    let action = ScheduleAction::start_workflow(TICK, ACTION, &(), WorkflowOptions::new())
        .expect("the action");
    let spec = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(1)));
    Schedule::new(action, spec)
        .with_policy(SchedulePolicy::default().overlap(ScheduleOverlapPolicy::AllowAll))
}

/// The actions' runs: (workflow ID, start time in ns).
async fn actions(c: &tokio_postgres::Client) -> Vec<(String, i64)> {
    c.query(
        "SELECT workflow_id, start_ns FROM runs WHERE workflow_id LIKE $1 ORDER BY start_ns",
        &[&format!("{ACTION}-%")],
    )
    .await
    .expect("runs")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A member process: opens the schema, creates the schedule when told,
/// then serves until killed or told to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member() {
    let Ok(schema) = std::env::var("PGS_SCHEMA") else {
        return;
    };
    let url = support::postgres::url().expect("the parent's cluster");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    child_report("open");
    if std::env::var_os("PGS_CREATE").is_some() {
        engine
            .create_schedule(SCHEDULE, every_second())
            .await
            .expect("create the schedule");
        child_report("created");
    }
    let stop = PathBuf::from(std::env::var("PGS_STOP").expect("PGS_STOP"));
    while !stop.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await.expect("shutdown");
    child_report("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_starts_once_and_the_schedule_survives_its_drivers_sigkill() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("schedule_driver");
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = dir.path().join("stop");
    let spawn = |create: bool| {
        let mut env: Vec<(&str, &OsStr)> = vec![
            (support::postgres::URL_VAR, OsStr::new(&url)),
            ("PGS_SCHEMA", OsStr::new(&schema)),
            ("PGS_STOP", stop.as_os_str()),
        ];
        if create {
            env.push(("PGS_CREATE", OsStr::new("1")));
        }
        spawn_crash_child("member", &env)
    };
    let mut first = spawn(true);
    first
        .wait_for_line(Duration::from_secs(60), |l| l == "created")
        .await;
    let mut second = spawn(false);
    second
        .wait_for_line(Duration::from_secs(60), |l| l == "open")
        .await;
    let c = sql(&url, &schema).await;
    split(&c).await;
    // A few actions with both processes up.
    support::eventually(Duration::from_secs(30), || async {
        (actions(&c).await.len() >= 3).then_some(())
    })
    .await;
    // The driver: the process owning the schedule ID's shard.
    let driver: i32 = c
        .query_one(
            "SELECT m.pid FROM shards s JOIN members m ON m.member_id = s.owner \
             WHERE s.shard_id = $1",
            &[&shard_of(SCHEDULE)],
        )
        .await
        .expect("the schedule's shard has an owner")
        .get(0);
    let (killed, mut survivor) = if driver as u32 == first.id() {
        (first, second)
    } else {
        assert_eq!(driver as u32, second.id(), "a member drives the schedule");
        (second, first)
    };
    killed.kill();
    let killed_at = nanos(SystemTime::now());
    // The schedule goes on, driven by the survivor.
    support::eventually(Duration::from_secs(60), || async {
        let after = actions(&c)
            .await
            .iter()
            .filter(|(_, start)| *start > killed_at)
            .count();
        (after >= 3).then_some(())
    })
    .await;
    std::fs::write(&stop, b"").expect("stop file");
    survivor
        .wait_for_line(Duration::from_secs(60), |l| l == "stopped")
        .await;

    // Each action once: one run per action's workflow ID, one start in
    // its history.
    let runs = actions(&c).await;
    let ids: HashSet<&str> = runs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), runs.len(), "an action started twice: {runs:?}");
    let reader = builder(&schema).postgres(&url).await.expect("open to read");
    for id in &ids {
        let history = reader.history(id).await.expect("history");
        let starts = history
            .iter()
            .filter(|e| matches!(e.kind, steadfast::EventKind::WorkflowStarted { .. }))
            .count();
        assert_eq!(starts, 1, "{id} started once: {history:#?}");
    }
    // As many runs as the schedule counts actions, and no second left out
    // between the first action and the last (the survivor caught up on
    // those due while it took the shard over).
    let description = reader.describe_schedule(SCHEDULE).await.expect("describe");
    assert_eq!(description.info.action_count, runs.len() as u64);
    let mut seconds: Vec<u64> = (0..)
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .skip_while(|t| *t < description.info.created_at)
        .take_while(|t| *t <= SystemTime::now())
        .filter(|t| ids.contains(steadfast::scheduled_workflow_id(ACTION, *t).as_str()))
        .map(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
        .collect();
    assert_eq!(
        seconds.len(),
        runs.len(),
        "every action is of a whole second"
    );
    seconds.dedup();
    let (low, high) = (seconds[0], seconds[seconds.len() - 1]);
    assert_eq!(
        seconds.len() as u64,
        high - low + 1,
        "no second between the first action and the last was left out: {seconds:?}"
    );
    reader.shutdown().await.expect("shutdown");
}

/// The process whose member is `member` in `c`'s schema owns `id`'s shard.
async fn owned_by(c: &tokio_postgres::Client, id: &str, member: uuid::Uuid) -> bool {
    c.query_one(
        "SELECT owner = $2 FROM shards WHERE shard_id = $1",
        &[&shard_of(id), &member],
    )
    .await
    .expect("owner")
    .get::<_, Option<bool>>(0)
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_another_process_is_acted_on_by_the_driving_process() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("schedule_call");
    let c = sql(&url, &schema).await;
    let driver = builder(&schema).postgres(&url).await.expect("open");
    let driver_member: uuid::Uuid = c
        .query_one("SELECT member_id FROM members", &[])
        .await
        .expect("the first engine is the only member")
        .get(0);
    let caller = builder(&schema).postgres(&url).await.expect("open");
    split(&c).await;
    let mut schedule_id = None;
    for i in 0..1000 {
        let candidate = format!("paused-{i}");
        if owned_by(&c, &candidate, driver_member).await {
            schedule_id = Some(candidate);
            break;
        }
    }
    let schedule_id = schedule_id.expect("a schedule ID of the driver's shards");
    // Paused: it acts only when called.
    let schedule = every_second().with_state(ScheduleState::paused("by hand"));
    let handle = caller
        .create_schedule(schedule_id.as_str(), schedule)
        .await
        .expect("create from the caller");
    handle
        .trigger(Some(ScheduleOverlapPolicy::AllowAll))
        .await
        .expect("trigger from the caller");
    support::eventually(Duration::from_secs(30), || async {
        (caller
            .describe_schedule(&schedule_id)
            .await
            .expect("describe")
            .info
            .action_count
            == 1)
            .then_some(())
    })
    .await;
    // The caller's process takes the schedule over when the driver goes
    // (its shards are released at shutdown), and acts on the next call,
    // made at once: a hint left for the shard's next owner, or acted on
    // by the driver the acquisition starts.
    driver.shutdown().await.expect("shutdown");
    handle
        .trigger(Some(ScheduleOverlapPolicy::AllowAll))
        .await
        .expect("trigger again");
    support::eventually(Duration::from_secs(30), || async {
        (caller
            .describe_schedule(&schedule_id)
            .await
            .expect("describe")
            .info
            .action_count
            == 2)
            .then_some(())
    })
    .await;
    caller.shutdown().await.expect("shutdown");
}
