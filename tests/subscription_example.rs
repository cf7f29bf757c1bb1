//! Promise: `examples/subscription.rs` (updates with a validator, a signal
//! handler, a query, continue-as-new) prints the same final line however
//! often it is killed with SIGKILL and started again on the same file.

mod support;

#[path = "../examples/subscription.rs"]
#[allow(dead_code, unreachable_pub)]
mod subscription;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use support::{SplitMix, child_report, seed_from_env, spawn_crash_child, temp_db};

const DB_ENV: &str = "STEADFAST_SUBSCRIPTION_DB";
const FINAL: &str = "Workflow result: 12 charges, last plan gold";

/// The example's program on the file named by the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_subscription() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = subscription::open(Path::new(&db)).await.unwrap();
    let (line, runs) = subscription::run(&engine).await.unwrap();
    child_report(&format!("{line} in {runs} runs"));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_example_survives_kills_and_prints_the_same_result() {
    let db = temp_db();
    let env = [(DB_ENV, db.path.as_os_str() as &OsStr)];
    let mut rng = SplitMix(seed_from_env("STEADFAST_SUBSCRIPTION_SEED"));
    let mut finished = None;
    for _ in 0..6 {
        let child = spawn_crash_child("child_subscription", &env);
        // Anywhere in the ~2.5 s the program takes, startup included.
        tokio::time::sleep(Duration::from_millis(rng.between(50, 1200))).await;
        let lines = child.kill();
        if let Some(done) = lines.iter().find(|l| l.starts_with("Workflow result")) {
            finished = Some(done.clone());
            break;
        }
    }
    // Then once to its end.
    let child = spawn_crash_child("child_subscription", &env);
    let (ok, lines) = child.wait(Duration::from_secs(120)).await;
    assert!(ok, "{lines:?}");
    let line = lines
        .iter()
        .find(|l| l.starts_with("Workflow result"))
        .expect("a final line");
    assert_eq!(line, &format!("{FINAL} in 3 runs"));
    if let Some(earlier) = finished {
        assert_eq!(earlier, *line);
    }
    let engine = subscription::open(&db.path).await.unwrap();
    let history = engine.history(subscription::WORKFLOW_ID).await.unwrap();
    support::assert_history_well_formed(&history);
    engine.shutdown().await.unwrap();
}
