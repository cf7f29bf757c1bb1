//! Promise: a process killed while it creates a new file never leaves a file
//! that cannot be opened: the file appears only once it is complete.

mod support;

use std::time::Duration;

use steadfast::Engine;

/// The child: opens (creating) the file named by the environment, then waits
/// to be killed. Returns at once in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_create() {
    let Some(db) = std::env::var_os("STEADFAST_CREATE_DB") else {
        return;
    };
    support::child_report("opening");
    let engine = Engine::builder().open(&db).await.expect("open");
    support::child_report("opened");
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(engine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_creating_the_file_leaves_a_file_that_opens() {
    let mut broken = Vec::new();
    for attempt in 0..120u64 {
        let db = support::temp_db();
        let child = support::spawn_crash_child(
            "child_create",
            &[("STEADFAST_CREATE_DB", db.path.as_os_str())],
        );
        // Spread the kills over the milliseconds the creation takes.
        std::thread::sleep(Duration::from_micros(attempt * 300));
        let lines = child.kill();
        if !db.path.exists() {
            continue;
        }
        let size = std::fs::metadata(&db.path).map(|m| m.len()).unwrap_or(0);
        match Engine::builder().open(&db.path).await {
            Ok(engine) => engine.shutdown().await.expect("shutdown"),
            Err(e) => broken.push(format!(
                "killed {} µs after the spawn (opened: {}), file of {size} bytes: {e}",
                attempt * 300,
                lines.iter().any(|l| l == "opened")
            )),
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
