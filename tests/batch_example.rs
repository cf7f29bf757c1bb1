//! Promise: `examples/batch.rs` (its own code, included here) finishes
//! after SIGKILL at random moments and restarts with the same arguments:
//! every item is in the log, no child workflow runs twice, and at most four
//! children run at once.

mod support;

#[path = "../examples/batch.rs"]
#[allow(dead_code)]
mod batch;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use steadfast::{EventKind, ListFilter, WorkflowStatus};
use support::{child_report, spawn_crash_child, temp_db};

const DB_ENV: &str = "STEADFAST_BATCH_DB";
const LOG_ENV: &str = "STEADFAST_BATCH_LOG";

fn args() -> Option<batch::Args> {
    Some(batch::Args {
        db: PathBuf::from(std::env::var_os(DB_ENV)?),
        log: PathBuf::from(std::env::var_os(LOG_ENV)?),
        items: 1000,
    })
}

#[tokio::test]
async fn crash_child_batch_example() {
    let Some(args) = args() else {
        return;
    };
    child_report("started");
    let result = batch::run(args).await.unwrap();
    child_report(&format!("Workflow result: {result}"));
}

#[tokio::test]
async fn the_batch_example_survives_kill_9_at_random_moments() {
    let db = temp_db();
    let log = db.path.with_extension("log");
    let env = [
        (DB_ENV, db.path.as_os_str() as &OsStr),
        (LOG_ENV, log.as_os_str() as &OsStr),
    ];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_BATCH_SEED"));
    let mut finished = None;
    for _ in 0..30 {
        let mut child = spawn_crash_child("crash_child_batch_example", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "started")
            .await;
        let wanted = support::read_log(&log).len() as u64 + rng.between(1, 150);
        let done = support::eventually(Duration::from_secs(120), || {
            let grown = support::read_log(&log).len() as u64 >= wanted;
            let done = child
                .lines()
                .into_iter()
                .find(|l| l.starts_with("Workflow result: "));
            async move {
                match done {
                    Some(line) => Some(Some(line)),
                    None => grown.then_some(None),
                }
            }
        })
        .await;
        child.kill();
        if let Some(line) = done {
            finished = Some(line);
            break;
        }
    }
    let line = match finished {
        Some(line) => line,
        // Killed every time before the end: the last run finishes it.
        None => {
            let args = batch::Args {
                db: db.path.clone(),
                log: log.clone(),
                items: 1000,
            };
            format!("Workflow result: {}", batch::run(args).await.unwrap())
        }
    };
    assert_eq!(line, "Workflow result: 1000 items in 10 children");

    // Every item is in the log; repeats only for attempts a kill cut off.
    let lines = support::read_log(&log);
    let items: std::collections::BTreeSet<u32> = lines
        .iter()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("a torn line {l:?}")))
        .collect();
    assert_eq!(items, (0..1000).collect());

    // No child ran twice: one run per child ID, each completed, each
    // started and completed once in the parent, never more than four open.
    let engine = batch::builder(log.clone()).open(&db.path).await.unwrap();
    let page = engine
        .list(
            &ListFilter::new()
                .with_workflow_id_prefix("batch/")
                .with_page_size(100),
        )
        .await
        .unwrap();
    assert_eq!(page.executions.len(), 10);
    assert!(
        page.executions
            .iter()
            .all(|e| e.status == WorkflowStatus::Completed)
    );
    let history = engine.history(batch::BATCH_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    let (mut open, mut most, mut started, mut completed) = (0i32, 0, 0, 0);
    for event in &history {
        match event.kind {
            EventKind::ChildWorkflowStarted { .. } => {
                started += 1;
                open += 1;
                most = most.max(open);
            }
            EventKind::ChildWorkflowCompleted { .. } => {
                completed += 1;
                open -= 1;
            }
            _ => {}
        }
    }
    assert_eq!((started, completed), (10, 10));
    assert!(most <= batch::AT_ONCE as i32, "{most} children at once");
    engine.shutdown().await.unwrap();
}
