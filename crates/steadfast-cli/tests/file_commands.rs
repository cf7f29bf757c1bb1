//! The `steadfast` binary on a file no application holds (`--db`): the
//! reading commands leave the file byte for byte as it was, the writing
//! ones change it, and a file held by an app, left by a killed process
//! (SIGKILL of a real child) or missing each get a clear error and exit 1.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use steadfast::{Engine, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions};
use support::{stderr, stdout};

const GREETER: WorkflowDef<String, String> = WorkflowDef::new("Greeter");
const NAME: SignalDef<String> = SignalDef::new("name");

async fn greeter(ctx: WorkflowContext, greeting: String) -> Result<String, WorkflowError> {
    let name = ctx.recv_signal(NAME).await?;
    Ok(format!("{greeting}, {name}!"))
}

fn cli(args: &[&str], db: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("STEADFAST_ADDRESS")
        .env_remove("STEADFAST_TOKEN")
        .output()
        .expect("the binary runs")
}

/// A file with a completed run (`done`) and a running one (`waiting`).
async fn written(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("app.steadfast");
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .open(&path)
        .await
        .unwrap();
    let done = engine
        .start_workflow(GREETER, "done", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("done", NAME, "Ada".into()).await.unwrap();
    done.result().await.unwrap();
    engine
        .start_workflow(GREETER, "waiting", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    path
}

#[tokio::test]
async fn reading_commands_leave_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    let bytes = std::fs::read(&path).unwrap();

    let list = stdout(&cli(&["workflow", "list"], &path));
    assert!(
        list.lines()
            .any(|l| l.contains("done") && l.contains("Completed")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("waiting") && l.contains("Running")),
        "{list}"
    );
    let describe = stdout(&cli(&["workflow", "describe", "-w", "waiting"], &path));
    assert!(describe.contains("Greeter"), "{describe}");
    let show = stdout(&cli(
        &["workflow", "show", "-w", "done", "-o", "json"],
        &path,
    ));
    let history = steadfast::WorkflowHistory::from_json(&show).expect("history JSON");
    assert_eq!(history.workflow_id, "done");
    assert_eq!(history.events.len(), 3);
    let running = stdout(&cli(
        &["workflow", "list", "--status", "Running", "-o", "json"],
        &path,
    ));
    let running: serde_json::Value = serde_json::from_str(&running).unwrap();
    assert_eq!(running.as_array().unwrap().len(), 1);
    let counts = stdout(&cli(&["workflow", "count", "-o", "json"], &path));
    let counts: serde_json::Value = serde_json::from_str(&counts).unwrap();
    assert_eq!(counts["total"], 2, "{counts}");
    assert_eq!(counts["statuses"][0]["status"], "Running");
    assert_eq!(counts["statuses"][0]["count"], 1);
    let unknown = cli(&["workflow", "describe", "-w", "nobody"], &path);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("nobody"));

    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a read changed the file"
    );
}

#[tokio::test]
async fn writing_commands_change_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    stdout(&cli(
        &[
            "workflow", "signal", "-w", "waiting", "--name", "name", "-i", "\"Bo\"",
        ],
        &path,
    ));
    let show = stdout(&cli(&["workflow", "show", "-w", "waiting"], &path));
    assert!(
        show.contains("WorkflowSignaled") && show.contains("Bo"),
        "{show}"
    );
    stdout(&cli(
        &[
            "workflow",
            "terminate",
            "-w",
            "waiting",
            "--reason",
            "by hand",
        ],
        &path,
    ));
    let list = stdout(&cli(&["workflow", "list", "--status", "Terminated"], &path));
    assert!(list.contains("waiting"), "{list}");
    stdout(&cli(&["workflow", "delete", "-w", "waiting"], &path));
    let gone = cli(&["workflow", "describe", "-w", "waiting"], &path);
    assert_eq!(gone.status.code(), Some(1));
}

#[tokio::test]
async fn a_held_or_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    // An app that shares its file is read, but written only through its
    // endpoint; one that does not (the default) is not even read.
    let engine = Engine::builder()
        .shared_reads(true)
        .open(&path)
        .await
        .unwrap();
    let held = cli(&["workflow", "cancel", "-w", "waiting"], &path);
    assert_eq!(held.status.code(), Some(1));
    assert!(stderr(&held).contains("--address"), "{}", stderr(&held));
    engine.shutdown().await.unwrap();
    let engine = Engine::builder().open(&path).await.unwrap();
    let held = cli(&["workflow", "list"], &path);
    assert_eq!(held.status.code(), Some(1));
    assert!(stderr(&held).contains("--address"), "{}", stderr(&held));
    engine.shutdown().await.unwrap();

    let missing = dir.path().join("nothing.steadfast");
    for args in [
        &["workflow", "list"][..],
        &["workflow", "cancel", "-w", "x"][..],
    ] {
        let out = cli(args, &missing);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
    assert!(!missing.exists());
}

/// While this process's engine holds the file (sharing it), the binary
/// (another process) reads it, and each command sees the engine's latest
/// commit.
#[tokio::test]
async fn a_live_file_is_read_by_another_process_as_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    let engine = Engine::builder()
        .shared_reads(true)
        .workflow(GREETER, greeter)
        .open(&path)
        .await
        .unwrap();
    let list = stdout(&cli(&["workflow", "list", "--status", "Running"], &path));
    assert!(list.lines().any(|l| l.contains("waiting")), "{list}");

    engine.signal("waiting", NAME, "Bo".into()).await.unwrap();
    let handle = engine
        .get_workflow_handle(GREETER, "waiting")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "Hi, Bo!");
    let list = stdout(&cli(&["workflow", "list"], &path));
    assert!(
        list.lines()
            .any(|l| l.contains("waiting") && l.contains("Completed")),
        "{list}"
    );
    let started = engine
        .start_workflow(GREETER, "later", "Yo".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let shown = stdout(&cli(
        &["workflow", "show", "-w", "later", "-o", "json"],
        &path,
    ));
    let history = steadfast::WorkflowHistory::from_json(&shown).unwrap();
    assert_eq!(history.run_id, started.run_id());
    engine.shutdown().await.unwrap();
}

const CHILD_ENV: &str = "STEADFAST_CLI_TEST_CHILD_DB";

/// The child: opens the file, starts a run, prints `started`, and waits to
/// be killed.
#[tokio::test]
async fn child_hold() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .open(&db)
        .await
        .unwrap();
    engine
        .start_workflow(GREETER, "killed", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    println!("child: started");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_file_left_by_a_killed_app_is_repaired_then_read() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.steadfast");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_hold", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout_pipe = child.stdout.take().unwrap();
    let started = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout_pipe)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("child: started"))
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(60), started)
            .await
            .unwrap()
            .unwrap()
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let read = cli(&["workflow", "list"], &path);
    assert_eq!(read.status.code(), Some(1));
    assert!(
        stderr(&read).contains("steadfast repair --db"),
        "{}",
        stderr(&read)
    );
    stdout(&cli(&["repair"], &path));
    let list = stdout(&cli(&["workflow", "list"], &path));
    assert!(
        list.lines()
            .any(|l| l.contains("killed") && l.contains("Running")),
        "{list}"
    );
}

#[tokio::test]
async fn pause_and_reset_change_the_file_and_the_app_goes_on_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = written(dir.path()).await;
    let paused = stdout(&cli(
        &["workflow", "pause", "-w", "waiting", "--reason", "offline"],
        &path,
    ));
    assert_eq!(paused, "Paused: workflow waiting\n");
    let described = stdout(&cli(&["workflow", "describe", "-w", "waiting"], &path));
    assert!(described.contains("Requested: offline"), "{described}");
    let reset = stdout(&cli(
        &[
            "workflow",
            "reset",
            "-w",
            "waiting",
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "offline reset",
        ],
        &path,
    ));
    assert!(
        reset.starts_with("Reset: workflow waiting, new run "),
        "{reset}"
    );
    // A closed run is reset too: it stays completed, a new run starts.
    let again = stdout(&cli(
        &[
            "workflow",
            "reset",
            "-w",
            "done",
            "--event-id",
            "1",
            "--reason",
            "x",
            "--reapply-exclude",
            "Signal",
        ],
        &path,
    ));
    assert!(
        again.starts_with("Reset: workflow done, new run "),
        "{again}"
    );

    // The app opens the file and runs the new run, unpaused, to its end.
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .open(&path)
        .await
        .unwrap();
    let described = engine.describe("waiting").await.unwrap();
    assert!(described.reset_from.is_some());
    assert_eq!(described.paused, None);
    engine.signal("waiting", NAME, "Cy".into()).await.unwrap();
    let handle = engine
        .get_workflow_handle(GREETER, "waiting")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), "Hi, Cy!");
    engine.signal("done", NAME, "Bo".into()).await.unwrap();
    let handle = engine.get_workflow_handle(GREETER, "done").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), "Hello, Bo!");
    engine.shutdown().await.unwrap();
}
