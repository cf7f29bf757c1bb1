//! Promise: `examples/schedules.rs` (its own code, included here), killed
//! with SIGKILL at random moments and restarted within the catch-up
//! window, starts no second twice and misses none inside the window: every
//! second of the schedule is started once or counted as skipped by the
//! overlap policy, none is counted as missed, and it ends with
//! `schedule: N actions, 0 duplicates`.

mod support;

#[path = "../examples/schedules.rs"]
#[allow(dead_code)]
mod schedules;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::{child_report, spawn_crash_child, temp_db};

const DB_ENV: &str = "STEADFAST_SCHEDULES_DB";
/// The schedule's length: long enough for several kills.
const SECONDS: u64 = 8;

fn args() -> Option<schedules::Args> {
    Some(schedules::Args {
        db: PathBuf::from(std::env::var_os(DB_ENV)?),
        seconds: SECONDS,
    })
}

#[tokio::test]
async fn crash_child_schedules_example() {
    let Some(args) = args() else {
        return;
    };
    child_report("started");
    let summary = schedules::run(args, |id| child_report(&format!("id {id}")))
        .await
        .unwrap();
    child_report(&format!(
        "schedule: {} actions, {} duplicates",
        summary.actions, summary.duplicates
    ));
}

#[tokio::test]
async fn the_schedules_example_survives_kill_9_without_repeating_a_second() {
    let db = temp_db();
    let env = [(DB_ENV, db.path.as_os_str() as &OsStr)];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_SCHEDULES_SEED"));
    let mut printed: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut finished = None;
    while finished.is_none() {
        let mut child = spawn_crash_child("crash_child_schedules_example", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "started")
            .await;
        let last = kills >= 3;
        if !last {
            // Killed somewhere in the next 0.2 to 2.5 s of the schedule.
            let wait = Duration::from_millis(rng.between(200, 2500));
            tokio::time::sleep(wait).await;
        } else {
            child
                .wait_for_line(Duration::from_secs(120), |l| l.starts_with("schedule: "))
                .await;
        }
        let lines = child.kill();
        kills += 1;
        for line in &lines {
            if let Some(id) = line.strip_prefix("id ") {
                printed.push(id.to_string());
            }
            if line.starts_with("schedule: ") {
                finished = Some(line.clone());
            }
        }
    }
    let line = finished.unwrap();
    let actions: usize = line
        .strip_prefix("schedule: ")
        .and_then(|rest| rest.strip_suffix(" actions, 0 duplicates"))
        .unwrap_or_else(|| panic!("unexpected summary {line:?}"))
        .parse()
        .unwrap();
    assert!(actions > 0);

    // The file's truth: one run per second at most, each the second's ID,
    // and every second started or skipped by the policy, none missed.
    let engine = schedules::builder().open(&db.path).await.unwrap();
    let info = engine
        .describe_schedule(schedules::SCHEDULE_ID)
        .await
        .unwrap();
    assert_eq!(info.info.missed_catchup_window, 0, "{:?}", info.info);
    let created = secs(info.info.created_at);
    let end = secs(info.schedule.spec.end_at.unwrap());
    let seconds: BTreeSet<String> = (created + 1..=end)
        .map(|s| {
            steadfast::scheduled_workflow_id(
                schedules::WORKFLOW_ID,
                SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            )
        })
        .collect();
    let filter = steadfast::ListFilter::new()
        .with_search_attribute(steadfast::SCHEDULED_BY_ID, schedules::SCHEDULE_ID)
        .with_page_size(1000);
    let runs = engine.list(&filter).await.unwrap().executions;
    assert_eq!(runs.len(), actions);
    let ids: BTreeSet<String> = runs.iter().map(|r| r.workflow_id.clone()).collect();
    assert_eq!(ids.len(), runs.len(), "a second started twice: {runs:?}");
    assert!(ids.is_subset(&seconds), "{ids:?} not within {seconds:?}");
    assert_eq!(
        actions as u64 + info.info.overlap_skipped,
        seconds.len() as u64,
        "every second is started or skipped: {:?}",
        info.info
    );
    // What the processes printed: each ID once, each one the file holds.
    let unique: BTreeSet<&String> = printed.iter().collect();
    assert_eq!(unique.len(), printed.len(), "printed twice: {printed:?}");
    assert!(printed.iter().all(|id| ids.contains(id)));
    engine.shutdown().await.unwrap();
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}
