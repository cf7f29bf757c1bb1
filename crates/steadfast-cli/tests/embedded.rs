//! The tool embedded in an application's binary (`examples/embedded.rs`,
//! its code included here): replay of a run from a `--db` file and from a
//! history JSON file, the nondeterminism diff and exit 1 when the code
//! changed, and a query answered offline on a file without changing a
//! byte of it. Each command runs in a process of its own: this test binary
//! started again as the embedding application (`STEADFAST_TOOL_ARGS`).

mod support;

#[path = "../examples/embedded.rs"]
mod embedded;

use std::process::{ExitCode, Output};
use std::time::Duration;

use steadfast::{ActivityContext, ActivityError, Engine, WorkflowContext, WorkflowError};
use steadfast_cli::Cli;
use support::{stderr, stdout};

/// The arguments of the child's command, as a JSON array.
const ARGS_ENV: &str = "STEADFAST_TOOL_ARGS";
/// `changed`: the child registers the changed workflow code.
const CODE_ENV: &str = "STEADFAST_TOOL_CODE";

/// The workflow after a change that is not replay-safe: it waits a
/// durable second before the lookup (a timer where the history has the
/// activity).
async fn greeting_changed(ctx: WorkflowContext, prefix: String) -> Result<String, WorkflowError> {
    let name = ctx.recv_signal(embedded::NAME).await?;
    ctx.sleep(Duration::from_secs(1)).await?;
    let options = steadfast::ActivityOptions::start_to_close(Duration::from_secs(5));
    let full = ctx
        .execute_activity(embedded::LOOKUP, name, options)
        .await?;
    Ok(format!("{prefix}, {full}!"))
}

async fn lookup(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("{name} Lovelace"))
}

/// The child: runs one command as the embedding application would, and
/// exits with its code. Does nothing in an ordinary test run.
#[test]
fn tool_child() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("JSON arguments");
    let tool = match std::env::var(CODE_ENV).as_deref() {
        Ok("changed") => Cli::new().register_workflow(embedded::GREETING, greeting_changed),
        _ => embedded::tool(),
    };
    let code = tool.run_from(std::iter::once("app".to_string()).chain(args));
    let number = (0..=255u8)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(101);
    std::process::exit(i32::from(number));
}

/// Runs `app ARGS` (the embedding binary) in a process of its own.
async fn app(args: &[&str], changed: bool) -> Output {
    let args = serde_json::to_string(args).unwrap();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tool_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(ARGS_ENV, args)
            .env(CODE_ENV, if changed { "changed" } else { "same" })
            .env_remove("STEADFAST_ADDRESS")
            .env_remove("STEADFAST_TOKEN")
            .output()
            .expect("the test binary runs again")
    })
    .await
    .unwrap()
}

/// The child's own output, without what the test harness printed before
/// it (`running 1 test`, then `test tool_child ... ` with no line end; the
/// child exits before the harness prints more).
fn own(text: &str) -> String {
    let start = "test tool_child ... ";
    match text.find(start) {
        Some(at) => text[at + start.len()..].to_string(),
        None => text.to_string(),
    }
}

/// A file with a completed run (`greeting-1`) and one waiting for its
/// name (`greeting-2`), written by the application's code.
async fn app_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("app.steadfast");
    let engine = Engine::builder()
        .workflow(embedded::GREETING, embedded::greeting)
        .activity(embedded::LOOKUP, lookup)
        .open(&path)
        .await
        .unwrap();
    let options = steadfast::WorkflowOptions::new;
    let done = engine
        .start_workflow(embedded::GREETING, "greeting-1", "Hello".into(), options())
        .await
        .unwrap();
    engine
        .signal("greeting-1", embedded::NAME, "Ada".to_string())
        .await
        .unwrap();
    assert_eq!(done.result().await.unwrap(), "Hello, Ada Lovelace!");
    engine
        .start_workflow(embedded::GREETING, "greeting-2", "Hi".into(), options())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    path
}

#[tokio::test]
async fn replay_from_the_file_and_from_a_history_file_agrees_with_the_same_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_file(dir.path()).await;
    let db_arg = db.to_str().unwrap();
    let before = std::fs::read(&db).unwrap();

    let replayed = app(
        &["workflow", "replay", "--db", db_arg, "-w", "greeting-1"],
        false,
    )
    .await;
    let text = own(&stdout(&replayed));
    assert!(
        text.starts_with("Replay ok: workflow \"greeting-1\""),
        "{text}"
    );
    assert!(text.contains("of type \"Greeting\""), "{text}");

    // A history saved with `show -o json`, replayed from its file.
    let shown = app(
        &[
            "workflow",
            "show",
            "--db",
            db_arg,
            "-w",
            "greeting-1",
            "-o",
            "json",
        ],
        false,
    )
    .await;
    let saved = dir.path().join("greeting-1.json");
    std::fs::write(&saved, own(&stdout(&shown))).unwrap();
    let from_file = app(
        &[
            "workflow",
            "replay",
            "--history-file",
            saved.to_str().unwrap(),
        ],
        false,
    )
    .await;
    assert!(own(&stdout(&from_file)).starts_with("Replay ok"));

    // The open run replays too (its history so far).
    let open = app(
        &["workflow", "replay", "--db", db_arg, "-w", "greeting-2"],
        false,
    )
    .await;
    assert!(own(&stdout(&open)).starts_with("Replay ok"));
    assert_eq!(std::fs::read(&db).unwrap(), before, "replay writes nothing");
}

#[tokio::test]
async fn replay_with_changed_code_prints_the_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_file(dir.path()).await;
    let db_arg = db.to_str().unwrap();
    let replayed = app(
        &["workflow", "replay", "--db", db_arg, "-w", "greeting-1"],
        true,
    )
    .await;
    assert_eq!(replayed.status.code(), Some(1), "{}", stderr(&replayed));
    let message = stderr(&replayed);
    assert!(message.contains("disagrees with the code"), "{message}");
    // The diff: the event, what the history holds and what the code did.
    assert!(message.contains("nondetermin"), "{message}");
    assert!(message.contains("lookup"), "{message}");
    assert!(own(&String::from_utf8_lossy(&replayed.stdout)).is_empty());

    // The plain tool has no code to replay with: a usage error.
    let plain = tokio::task::spawn_blocking({
        let db_arg = db_arg.to_string();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
                .args(["workflow", "replay", "--db", &db_arg, "-w", "greeting-1"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(plain.status.code(), Some(2));
    assert!(
        stderr(&plain).contains("steadfast_cli::Cli"),
        "{}",
        stderr(&plain)
    );
}

#[tokio::test]
async fn a_query_on_a_file_is_answered_offline_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_file(dir.path()).await;
    let db_arg = db.to_str().unwrap();
    let before = std::fs::read(&db).unwrap();

    let waiting = app(
        &[
            "workflow",
            "query",
            "--db",
            db_arg,
            "-w",
            "greeting-2",
            "--name",
            "status",
        ],
        false,
    )
    .await;
    assert_eq!(own(&stdout(&waiting)).trim(), "\"waiting for a name\"");
    let done = app(
        &[
            "workflow",
            "query",
            "--db",
            db_arg,
            "-w",
            "greeting-1",
            "--name",
            "status",
        ],
        false,
    )
    .await;
    assert_eq!(own(&stdout(&done)).trim(), "\"greeted Ada Lovelace\"");
    let unknown = app(
        &[
            "workflow",
            "query",
            "--db",
            db_arg,
            "-w",
            "greeting-1",
            "--name",
            "nope",
        ],
        false,
    )
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is unchanged");
    // Nothing ran forward: greeting-2 still waits.
    let engine = Engine::builder().read_only().open(&db).await.unwrap();
    let described = engine.describe("greeting-2").await.unwrap();
    assert_eq!(described.status, steadfast::WorkflowStatus::Running);
    engine.shutdown().await.unwrap();

    // The plain tool cannot answer: no code for the workflow.
    let plain = tokio::task::spawn_blocking({
        let db_arg = db_arg.to_string();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
                .args([
                    "workflow",
                    "query",
                    "--db",
                    &db_arg,
                    "-w",
                    "greeting-2",
                    "--name",
                    "status",
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(plain.status.code(), Some(1));
}
