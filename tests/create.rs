//! Promise: a process killed while it creates a new file never leaves a file
//! that cannot be opened: the file appears only once it is complete. What it
//! leaves beside it (its temporary file) is removed by the next open.

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
        let existed = db.path.exists();
        let size = std::fs::metadata(&db.path).map(|m| m.len()).unwrap_or(0);
        // Opens the file the child made, or creates one if it made none.
        match Engine::builder().open(&db.path).await {
            Ok(engine) => engine.shutdown().await.expect("shutdown"),
            Err(e) => broken.push(format!(
                "killed {} µs after the spawn (opened: {}), file existed: {existed}, of {size} \
                 bytes: {e}",
                attempt * 300,
                lines.iter().any(|l| l == "opened")
            )),
        }
        let strays = leftovers(&db.dir);
        if !strays.is_empty() {
            broken.push(format!(
                "killed {} µs after the spawn: files left beside it after the next open: {strays:?}",
                attempt * 300
            ));
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

/// A temporary file of a process that is gone is removed by the next open,
/// whether or not the file itself exists; one of a live process, or one
/// some process holds locked, is kept (it may be creating the file now).
#[tokio::test]
async fn open_removes_only_the_temporary_files_of_dead_processes() {
    let db = support::temp_db();
    let mut dead = std::process::Command::new("true").spawn().expect("spawn");
    dead.wait().expect("wait");
    let dead_tmp = db
        .dir
        .path()
        .join(format!("test.steadfast.creating-{}", dead.id()));
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn");
    let live_tmp = db
        .dir
        .path()
        .join(format!("test.steadfast.creating-{}", live.id()));
    let other = db.dir.path().join("other.steadfast.creating-1");
    // A creator whose process this /proc does not show (another PID
    // namespace) still holds its file locked while redb has it open.
    let mut dead_again = std::process::Command::new("true").spawn().expect("spawn");
    dead_again.wait().expect("wait");
    let locked_tmp = db
        .dir
        .path()
        .join(format!("test.steadfast.creating-{}", dead_again.id()));
    let not_a_pid = db
        .dir
        .path()
        .join(format!("test.steadfast.creating-+{}", dead.id()));
    for file in [&dead_tmp, &live_tmp, &other, &locked_tmp, &not_a_pid] {
        std::fs::write(file, b"half a file").expect("write");
    }
    let lock = std::fs::File::open(&locked_tmp).expect("open");
    lock.lock().expect("lock");
    let engine = Engine::builder().open(&db.path).await.expect("open");
    engine.shutdown().await.expect("shutdown");
    assert!(
        !dead_tmp.exists(),
        "a dead process's temporary file is removed"
    );
    let _ = live.kill();
    let _ = live.wait();
    assert!(live_tmp.exists(), "a live process's temporary file is kept");
    assert!(other.exists(), "another database's files are not touched");
    assert!(locked_tmp.exists(), "a locked temporary file is kept");
    assert!(
        not_a_pid.exists(),
        "a name that is not a process ID is kept"
    );
    drop(lock);
}

fn leftovers(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_dir(dir.path())
        .expect("read the folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".creating-"))
        .collect()
}
