//! The `steadfast schedule` commands, run as the binary: against a running
//! application's endpoint (create, list, describe, pause, unpause, trigger,
//! backfill, delete; tables and `-o json`; exit codes with the error on
//! stderr) and on a file no application holds (`--db`: reads leave it as
//! it was, writes change it).

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use steadfast::{Engine, WorkflowContext, WorkflowDef, WorkflowError};
use steadfast_admin::{AdminAddress, AdminEndpoint};
use support::{stderr, stdout};

const REPORT: WorkflowDef<String, String> = WorkflowDef::new("Report");

fn builder() -> steadfast::EngineBuilder {
    Engine::builder().workflow(REPORT, |_ctx: WorkflowContext, name: String| async move {
        Ok::<_, WorkflowError>(format!("report {name}"))
    })
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(&args)
            .env_remove("STEADFAST_ADDRESS")
            .env_remove("STEADFAST_TOKEN")
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

fn args(list: &[&str], tail: &[&str]) -> Vec<String> {
    list.iter().chain(tail).map(|s| s.to_string()).collect()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap()
}

const CREATE: &[&str] = &[
    "schedule",
    "create",
    "-s",
    "nightly",
    "--cron",
    "30 2 * * *",
    "--time-zone",
    "Europe/Paris",
    "--type",
    "Report",
    "-w",
    "report-nightly",
    "-i",
    "\"nightly\"",
    "--overlap-policy",
    "buffer-all",
    "--catchup-window",
    "1d",
    "--notes",
    "from the CLI",
];

#[tokio::test]
async fn schedule_commands_against_a_running_app() {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder()
        .open(dir.path().join("app.steadfast"))
        .await
        .unwrap();
    let server = AdminEndpoint::new(engine.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .serve()
        .await
        .unwrap();
    let address = match server.address() {
        AdminAddress::Tcp(a) => a.to_string(),
        other => panic!("{other:?}"),
    };
    let at = ["--address", address.as_str()];
    let cli = |list: &[&str]| run(args(list, &at));

    let created = cli(CREATE).await;
    assert_eq!(stdout(&created), "Schedule created: nightly\n");
    let again = cli(CREATE).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let listed = stdout(&cli(&["schedule", "list"]).await);
    let mut lines = listed.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("ScheduleId") && header.contains("NextRun"),
        "{listed}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains("nightly") && row.contains("Report") && row.contains("no"),
        "{listed}"
    );

    let described = stdout(&cli(&["schedule", "describe", "-s", "nightly"]).await);
    for wanted in [
        "30 2 * * *",
        "Europe/Paris",
        "buffer-all",
        "CatchupWindow",
        "1d",
        "from the CLI",
        "Next actions:",
    ] {
        assert!(described.contains(wanted), "{wanted:?} in {described}");
    }
    let d = json(&cli(&["schedule", "describe", "-s", "nightly", "-o", "json"]).await);
    assert_eq!(d["workflow_id"], "report-nightly");
    assert_eq!(d["input"], "nightly");
    assert_eq!(d["pause_on_failure"], false, "off unless asked for");
    // 02:30 in Paris in winter is 01:30 UTC.
    let next = d["info"]["next_action_times"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        next.contains("T01:30:") || next.contains("T00:30:"),
        "{next}"
    );

    let paused = cli(&["schedule", "pause", "-s", "nightly", "--reason", "audit"]).await;
    assert_eq!(stdout(&paused), "Schedule paused: nightly\n");
    let d = json(&cli(&["schedule", "describe", "-s", "nightly", "-o", "json"]).await);
    assert_eq!(
        (d["paused"].as_bool(), d["note"].as_str()),
        (Some(true), Some("audit"))
    );

    let triggered = cli(&["schedule", "trigger", "-s", "nightly", "-o", "json"]).await;
    assert_eq!(json(&triggered)["outcome"], "triggered");
    let backfilled = cli(&[
        "schedule",
        "backfill",
        "-s",
        "nightly",
        "--start-time",
        "2026-01-01T00:00:00Z",
        "--end-time",
        "2026-01-03T00:00:00Z",
        "--overlap-policy",
        "allow-all",
    ])
    .await;
    assert_eq!(stdout(&backfilled), "Schedule backfilled: nightly\n");
    // One triggered and two backfilled nights, each started and completed.
    let mut count = 0;
    for _ in 0..500 {
        let d = json(&cli(&["schedule", "describe", "-s", "nightly", "-o", "json"]).await);
        count = d["info"]["action_count"].as_u64().unwrap();
        if count == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(count, 3);
    // The last completion result: the newest action's workflow's result.
    let mut last = serde_json::Value::Null;
    for _ in 0..500 {
        let d = json(&cli(&["schedule", "describe", "-s", "nightly", "-o", "json"]).await);
        last = d["info"]["last_completion_result"].clone();
        if !last.is_null() {
            assert!(d["info"]["last_failure"].is_null());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(last, "report nightly");
    let described = stdout(&cli(&["schedule", "describe", "-s", "nightly"]).await);
    assert!(
        described.contains("LastCompletionResult") && described.contains("\"report nightly\""),
        "{described}"
    );
    assert!(described.contains("Recent actions:"), "{described}");
    assert!(
        described.contains("report-nightly-2026-01-01T01:30:00Z"),
        "{described}"
    );

    let unpaused = cli(&["schedule", "unpause", "-s", "nightly"]).await;
    assert_eq!(stdout(&unpaused), "Schedule unpaused: nightly\n");

    // Update replaces the configuration with the flags'; progress stays.
    let updated = cli(&[
        "schedule",
        "update",
        "-s",
        "nightly",
        "--interval",
        "6h",
        "--type",
        "Report",
        "-w",
        "report-6h",
        "--notes",
        "every six hours",
        "--pause-on-failure",
    ])
    .await;
    assert_eq!(
        stdout(&updated),
        "Schedule updated: nightly\n",
        "{}",
        stderr(&updated)
    );
    let d = json(&cli(&["schedule", "describe", "-s", "nightly", "-o", "json"]).await);
    assert_eq!(d["workflow_id"], "report-6h");
    assert_eq!(d["intervals"][0]["every"], "6h");
    assert!(d["cron"].as_array().unwrap().is_empty());
    assert_eq!(d["overlap"], "skip", "left out: the default");
    assert_eq!(d["note"], "every six hours");
    assert_eq!(d["pause_on_failure"], true);
    assert_eq!(d["info"]["action_count"], 3);
    let described = stdout(&cli(&["schedule", "describe", "-s", "nightly"]).await);
    assert!(described.contains("PauseOnFailure"), "{described}");
    let unknown = cli(&[
        "schedule",
        "update",
        "-s",
        "nobody",
        "--interval",
        "1h",
        "--type",
        "Report",
    ])
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("schedule_not_found"),
        "{}",
        stderr(&unknown)
    );
    let deleted = cli(&["schedule", "delete", "-s", "nightly"]).await;
    assert_eq!(stdout(&deleted), "Schedule deleted: nightly\n");

    // Refusals: exit 1 with the endpoint's message; bad arguments: exit 2.
    let missing = cli(&["schedule", "describe", "-s", "nightly"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("schedule_not_found"),
        "{}",
        stderr(&missing)
    );
    let bad_cron = cli(&[
        "schedule",
        "create",
        "-s",
        "x",
        "--cron",
        "61 * * * *",
        "--type",
        "Report",
    ])
    .await;
    assert_eq!(bad_cron.status.code(), Some(1));
    assert!(
        stderr(&bad_cron).contains("61 * * * *"),
        "{}",
        stderr(&bad_cron)
    );
    let no_spec = cli(&["schedule", "create", "-s", "x", "--type", "Report"]).await;
    assert_eq!(no_spec.status.code(), Some(2));
    let no_id = cli(&["schedule", "describe"]).await;
    assert_eq!(no_id.status.code(), Some(2));
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

fn on_file(list: &[&str], db: &Path) -> Vec<String> {
    let mut all = args(list, &["--db"]);
    all.push(db.display().to_string());
    all
}

#[tokio::test]
async fn schedule_commands_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.steadfast");
    builder().open(&db).await.unwrap().shutdown().await.unwrap();

    let created = run(on_file(CREATE, &db)).await;
    assert_eq!(stdout(&created), "Schedule created: nightly\n");
    let before = std::fs::read(&db).unwrap();
    let listed = stdout(&run(on_file(&["schedule", "list"], &db)).await);
    assert!(listed.contains("nightly"), "{listed}");
    let described = run(on_file(
        &["schedule", "describe", "-s", "nightly", "-o", "json"],
        &db,
    ))
    .await;
    assert_eq!(json(&described)["overlap"], "buffer-all");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "a read changed the file"
    );

    let paused = run(on_file(
        &["schedule", "pause", "-s", "nightly", "--reason", "offline"],
        &db,
    ))
    .await;
    assert_eq!(stdout(&paused), "Schedule paused: nightly\n");
    let engine = builder().open(&db).await.unwrap();
    let d = engine.describe_schedule("nightly").await.unwrap();
    assert!(d.schedule.state.paused);
    assert_eq!(d.schedule.state.note, "offline");
    engine.shutdown().await.unwrap();

    let deleted = run(on_file(&["schedule", "delete", "-s", "nightly"], &db)).await;
    assert_eq!(stdout(&deleted), "Schedule deleted: nightly\n");
    let missing = run(on_file(&["schedule", "describe", "-s", "nightly"], &db)).await;
    assert_eq!(missing.status.code(), Some(1));
}
