//! The `steadfast` binary against a running application's admin endpoint:
//! each `workflow` command's output, `--output json`, and the exit codes
//! with the error on stderr.

mod support;

use std::process::Output;

use serde_json::Value;
use steadfast::{
    Engine, QueryDef, SignalDef, UpdateDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use steadfast_admin::{AdminAddress, AdminEndpoint, AdminServer};
use support::{stderr, stdout};

const GREETER: WorkflowDef<String, String> = WorkflowDef::new("Greeter");
const NAME: SignalDef<String> = SignalDef::new("name");
const GREET: QueryDef<String, String> = QueryDef::new("greet");
/// Renames the greeting's prefix and returns the old one; refuses an empty one.
const PREFIX: UpdateDef<String, String> = UpdateDef::new("prefix");
/// An update whose handler waits for signal `release` and returns it.
const HOLD: UpdateDef<(), u32> = UpdateDef::new("hold");
const RELEASE: SignalDef<u32> = SignalDef::new("release");

async fn greeter(ctx: WorkflowContext, greeting: String) -> Result<String, WorkflowError> {
    let prefix = greeting.clone();
    ctx.handle_query_with(GREET, move |who: String| format!("{prefix}, {who}?"));
    let current = std::sync::Arc::new(std::sync::Mutex::new(greeting.clone()));
    ctx.handle_update(
        PREFIX,
        |p: &String| match p.is_empty() {
            true => Err("the prefix must not be empty".to_string()),
            false => Ok(()),
        },
        move |_ctx, p: String| {
            let current = current.clone();
            async move { Ok(std::mem::replace(&mut *current.lock().unwrap(), p)) }
        },
    );
    ctx.handle_update(
        HOLD,
        |_: &()| Ok(()),
        |ctx, _: ()| async move { Ok(ctx.recv_signal(RELEASE).await?) },
    );
    let name = ctx.recv_signal(NAME).await?;
    Ok(format!("{greeting}, {name}!"))
}

struct App {
    engine: Engine,
    server: AdminServer,
    _dir: tempfile::TempDir,
}

async fn app(token: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .open(dir.path().join("cli.steadfast"))
        .await
        .unwrap();
    let mut endpoint = AdminEndpoint::new(engine.clone()).bind("127.0.0.1:0".parse().unwrap());
    if let Some(token) = token {
        endpoint = endpoint.token(token);
    }
    let server = endpoint.serve().await.unwrap();
    App {
        engine,
        server,
        _dir: dir,
    }
}

impl App {
    fn address(&self) -> String {
        match self.server.address() {
            AdminAddress::Tcp(a) => a.to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// Runs `steadfast ARGS --address <this app>`.
    async fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--address".into());
        all.push(self.address());
        run(all, &[]).await
    }
}

async fn run(args: Vec<String>, env: &[(&str, &str)]) -> Output {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(&args)
            .env_remove("STEADFAST_ADDRESS")
            .env_remove("STEADFAST_TOKEN")
            .envs(env)
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn update_prints_the_result_and_a_rejection_exits_1() {
    let app = app(None).await;
    app.engine
        .start_workflow(GREETER, "greet-u", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let first = stdout(
        &app.cli(&[
            "workflow",
            "update",
            "-w",
            "greet-u",
            "--name",
            "prefix",
            "--input",
            "\"Hey\"",
            "--update-id",
            "u-1",
        ])
        .await,
    );
    assert_eq!(first.trim(), "\"Hello\"");
    // The same update ID: the first outcome again, the handler not rerun.
    let again: Value = serde_json::from_str(&stdout(
        &app.cli(&[
            "workflow",
            "update",
            "-w",
            "greet-u",
            "--name",
            "prefix",
            "--input",
            "\"Yo\"",
            "--update-id",
            "u-1",
            "-o",
            "json",
        ])
        .await,
    ))
    .unwrap();
    assert_eq!(again["result"], "Hello");
    assert_eq!(again["update_id"], "u-1");
    let second = stdout(
        &app.cli(&[
            "workflow", "update", "-w", "greet-u", "--name", "prefix", "--input", "\"Yo\"",
        ])
        .await,
    );
    assert_eq!(second.trim(), "\"Hey\"");

    let events = app.engine.history("greet-u").await.unwrap().len();
    let rejected = app
        .cli(&[
            "workflow", "update", "-w", "greet-u", "--name", "prefix", "--input", "\"\"",
        ])
        .await;
    assert_eq!(rejected.status.code(), Some(1));
    let message = stderr(&rejected);
    assert!(message.contains("rejected"), "{message}");
    assert!(
        message.contains("the prefix must not be empty"),
        "{message}"
    );
    assert!(message.contains("update_rejected"), "{message}");
    assert!(rejected.stdout.is_empty());
    assert_eq!(app.engine.history("greet-u").await.unwrap().len(), events);

    let not_json = app
        .cli(&[
            "workflow", "update", "-w", "greet-u", "--name", "prefix", "--input", "Yo",
        ])
        .await;
    assert_eq!(not_json.status.code(), Some(2), "{}", stderr(&not_json));
    let missing = app
        .cli(&[
            "workflow", "update", "-w", "nobody", "--name", "prefix", "--input", "1",
        ])
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not_found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn describe_shows_the_pending_updates() {
    let app = app(None).await;
    app.engine
        .start_workflow(GREETER, "held", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let none = stdout(&app.cli(&["workflow", "describe", "-w", "held"]).await);
    assert!(!none.contains("Pending Updates"), "{none}");
    let caller = app.engine.clone();
    let update = tokio::spawn(async move {
        let options = steadfast::UpdateOptions::new().with_update_id("hold-1");
        caller.update_with_options("held", HOLD, (), options).await
    });
    // The update is accepted once its handler runs: wait for describe to
    // list it.
    let mut described = String::new();
    for _ in 0..200 {
        described = stdout(&app.cli(&["workflow", "describe", "-w", "held"]).await);
        if described.contains("Pending Updates") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(described.contains("Pending Updates: 1"), "{described}");
    let row = described
        .lines()
        .find(|l| l.contains("hold-1"))
        .unwrap_or_else(|| panic!("no row for the update: {described}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], ["hold", "hold-1"], "{row}");
    assert!(
        cells.len() == 3 && cells[2].contains('T') && cells[2].ends_with('Z'),
        "the acceptance time, RFC 3339: {row}"
    );
    app.engine.signal("held", RELEASE, 7).await.unwrap();
    assert_eq!(update.await.unwrap().unwrap(), 7);
    let after = stdout(&app.cli(&["workflow", "describe", "-w", "held"]).await);
    assert!(!after.contains("Pending Updates"), "{after}");
}

#[tokio::test]
async fn list_describe_show_and_signal() {
    let app = app(None).await;
    let handle = app
        .engine
        .start_workflow(GREETER, "greet-1", "Hello".into(), WorkflowOptions::new())
        .await
        .unwrap();
    app.engine
        .start_workflow(GREETER, "greet-2", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();

    let list = stdout(&app.cli(&["workflow", "list"]).await);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].split_whitespace().eq([
        "Status",
        "WorkflowId",
        "Type",
        "StartTime",
        "CloseTime"
    ]));
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("greet-1") && l.contains("Running") && l.contains("Greeter"))
    );

    let json: Value =
        serde_json::from_str(&stdout(&app.cli(&["workflow", "list", "-o", "json"]).await)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let limited: Value = serde_json::from_str(&stdout(
        &app.cli(&["workflow", "list", "--limit", "1", "--output", "json"])
            .await,
    ))
    .unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let describe = stdout(&app.cli(&["workflow", "describe", "-w", "greet-1"]).await);
    assert!(describe.contains("WorkflowId"), "{describe}");
    assert!(
        describe.contains(&handle.run_id().to_string()),
        "{describe}"
    );
    assert!(
        describe
            .lines()
            .any(|l| l.trim_start().starts_with("Status") && l.ends_with("Running"))
    );

    let asked = stdout(
        &app.cli(&[
            "workflow", "query", "-w", "greet-1", "--name", "greet", "--input", "\"Bo\"",
        ])
        .await,
    );
    assert_eq!(asked.trim(), "\"Hello, Bo?\"");
    let unknown = app
        .cli(&["workflow", "query", "-w", "greet-1", "--name", "nope"])
        .await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("nope"), "{}", stderr(&unknown));

    let sent = stdout(
        &app.cli(&[
            "workflow", "signal", "-w", "greet-1", "--name", "name", "--input", "\"Ada\"",
        ])
        .await,
    );
    assert!(sent.contains("Signal sent"), "{sent}");
    assert_eq!(handle.result().await.unwrap(), "Hello, Ada!");

    let show = stdout(
        &app.cli(&["workflow", "show", "--workflow-id", "greet-1"])
            .await,
    );
    for kind in ["WorkflowStarted", "WorkflowSignaled", "WorkflowCompleted"] {
        assert!(show.contains(kind), "{kind} missing in {show}");
    }
    assert!(show.contains("Ada"), "{show}");
    let show_json = stdout(
        &app.cli(&["workflow", "show", "-w", "greet-1", "-o", "json"])
            .await,
    );
    let history = steadfast::WorkflowHistory::from_json(&show_json).expect("history JSON");
    assert_eq!(history.events, app.engine.history("greet-1").await.unwrap());

    let completed = stdout(
        &app.cli(&["workflow", "list", "--status", "Completed"])
            .await,
    );
    assert!(
        completed.contains("greet-1") && !completed.contains("greet-2"),
        "{completed}"
    );
    app.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_and_list_by_search_attribute() {
    let app = app(None).await;
    for (id, customer) in [("c-acme", "acme"), ("c-globex", "globex")] {
        let options = WorkflowOptions::new().with_search_attribute("Customer", customer);
        app.engine
            .start_workflow(GREETER, id, "Hi".into(), options)
            .await
            .unwrap();
    }
    app.engine.terminate("c-globex", "done").await.unwrap();

    let table = app.cli(&["workflow", "count"]).await;
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let table = stdout(&table);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} row in {table}"))
    };
    assert_eq!(row("Running"), "1");
    assert_eq!(row("Terminated"), "1");
    assert_eq!(row("Completed"), "0");
    assert_eq!(row("Total"), "2");
    let json: Value = serde_json::from_str(&stdout(
        &app.cli(&["workflow", "count", "-o", "json"]).await,
    ))
    .unwrap();
    assert_eq!(json["total"], 2);

    let listed = stdout(
        &app.cli(&[
            "workflow",
            "list",
            "--search-attribute",
            "Customer=acme",
            "-o",
            "json",
        ])
        .await,
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c-acme"]);
    let bad = app
        .cli(&["workflow", "list", "--search-attribute", "Customer"])
        .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("Name=Value"), "{}", stderr(&bad));
    app.server.shutdown().await;
    app.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_terminate_delete_and_their_errors() {
    let app = app(None).await;
    for id in ["c-1", "t-1"] {
        app.engine
            .start_workflow(GREETER, id, "Hi".into(), WorkflowOptions::new())
            .await
            .unwrap();
    }
    stdout(&app.cli(&["workflow", "cancel", "-w", "c-1"]).await);
    let done = stdout(
        &app.cli(&[
            "workflow",
            "terminate",
            "-w",
            "t-1",
            "--reason",
            "by hand",
            "-o",
            "json",
        ])
        .await,
    );
    let done: Value = serde_json::from_str(&done).unwrap();
    assert_eq!(done["outcome"], "terminated");
    assert_eq!(
        app.engine.describe("t-1").await.unwrap().status,
        steadfast::WorkflowStatus::Terminated
    );

    // Refused by the endpoint: exit 1, its message on stderr, nothing on stdout.
    let again = app.cli(&["workflow", "terminate", "-w", "t-1"]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stdout.is_empty());
    assert!(stderr(&again).contains("is closed"), "{}", stderr(&again));
    let unknown = app.cli(&["workflow", "describe", "-w", "nobody"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no workflow has ID \"nobody\""),
        "{}",
        stderr(&unknown)
    );

    stdout(&app.cli(&["workflow", "delete", "-w", "t-1"]).await);
    assert!(app.engine.describe("t-1").await.is_err());

    // Bad arguments: exit 2, and nothing is sent.
    let bad = app
        .cli(&[
            "workflow", "signal", "-w", "c-1", "--name", "x", "--input", "{oops",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--input is not JSON"),
        "{}",
        stderr(&bad)
    );
    let missing = app.cli(&["workflow", "describe"]).await;
    assert_eq!(missing.status.code(), Some(2));
    app.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_token_and_the_address_come_from_flags_or_the_environment() {
    let token = "fedcba9876543210fedcba9876543210";
    let app = app(Some(token)).await;
    app.engine
        .start_workflow(GREETER, "tok", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let refused = app.cli(&["workflow", "list"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("needs a token"),
        "{}",
        stderr(&refused)
    );

    let with_flag = stdout(&app.cli(&["workflow", "list", "--token", token]).await);
    assert!(with_flag.contains("tok"));
    let address = app.address();
    let with_env = run(
        vec!["workflow".into(), "list".into()],
        &[
            ("STEADFAST_ADDRESS", address.as_str()),
            ("STEADFAST_TOKEN", token),
        ],
    )
    .await;
    assert!(stdout(&with_env).contains("tok"));
    app.engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_endpoint_at_the_address_is_exit_code_3() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        vec![
            "workflow".into(),
            "list".into(),
            "--address".into(),
            format!("127.0.0.1:{port}"),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("cannot reach the admin endpoint"),
        "{}",
        stderr(&out)
    );
    let bad = run(
        vec![
            "workflow".into(),
            "list".into(),
            "--address".into(),
            "nowhere".into(),
        ],
        &[],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_socket_address() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .open(dir.path().join("unix.steadfast"))
        .await
        .unwrap();
    let socket = dir.path().join("admin.sock");
    let server = AdminEndpoint::new(engine.clone())
        .unix_socket(&socket)
        .serve()
        .await
        .unwrap();
    engine
        .start_workflow(GREETER, "over-unix", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let out = run(
        vec![
            "workflow".into(),
            "describe".into(),
            "-w".into(),
            "over-unix".into(),
            "--address".into(),
            format!("unix:{}", socket.display()),
        ],
        &[],
    )
    .await;
    assert!(stdout(&out).contains("over-unix"));
    server.shutdown().await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn reset_pause_and_unpause() {
    let app = app(None).await;
    let run = app
        .engine
        .start_workflow(GREETER, "r-1", "Hi".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let paused = stdout(
        &app.cli(&["workflow", "pause", "-w", "r-1", "--reason", "look"])
            .await,
    );
    assert_eq!(paused, "Paused: workflow r-1\n");
    let described = stdout(&app.cli(&["workflow", "describe", "-w", "r-1"]).await);
    assert!(described.contains("Requested: look"), "{described}");
    let listed = stdout(&app.cli(&["workflow", "list"]).await);
    assert!(listed.contains("Running (paused)"), "{listed}");
    let unpaused = stdout(
        &app.cli(&["workflow", "unpause", "-w", "r-1", "-o", "json"])
            .await,
    );
    let unpaused: Value = serde_json::from_str(&unpaused).unwrap();
    assert_eq!(unpaused["outcome"], "unpaused");
    assert_eq!(app.engine.describe("r-1").await.unwrap().paused, None);

    // Not a boundary: exit 1, the boundaries named on stderr.
    let refused = app
        .cli(&[
            "workflow",
            "reset",
            "-w",
            "r-1",
            "--event-id",
            "7",
            "--reason",
            "x",
        ])
        .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    assert!(
        stderr(&refused).contains("not a workflow task boundary"),
        "{}",
        stderr(&refused)
    );
    // Bad arguments: exit 2, nothing sent.
    for bad in [
        vec!["workflow", "reset", "-w", "r-1", "--reason", "x"],
        vec![
            "workflow", "reset", "-w", "r-1", "--type", "BuildId", "--reason", "x",
        ],
        vec![
            "workflow",
            "reset",
            "-w",
            "r-1",
            "--event-id",
            "1",
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "x",
        ],
        vec!["workflow", "reset", "-w", "r-1", "--event-id", "1"],
    ] {
        let answer = app.cli(&bad).await;
        assert_eq!(
            answer.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&answer)
        );
    }

    let reset = stdout(
        &app.cli(&[
            "workflow",
            "reset",
            "-w",
            "r-1",
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "again",
            "--reapply-exclude",
            "Signal",
        ])
        .await,
    );
    let new_run = app.engine.describe("r-1").await.unwrap().run_id;
    assert_eq!(reset, format!("Reset: workflow r-1, new run {new_run}\n"));
    let described = stdout(&app.cli(&["workflow", "describe", "-w", "r-1"]).await);
    assert!(
        described.contains(&run.run_id().to_string()),
        "the new run names the old: {described}"
    );
    app.engine.signal("r-1", NAME, "Ada".into()).await.unwrap();
    assert_eq!(run.result().await.unwrap(), "Hi, Ada!");
    let closed = app
        .cli(&["workflow", "pause", "-w", "r-1", "--reason", "late"])
        .await;
    assert_eq!(closed.status.code(), Some(1));
    assert!(stderr(&closed).contains("is closed"), "{}", stderr(&closed));
    // A closed run is reset too: it stays completed, a new run starts.
    let completed = app.engine.describe("r-1").await.unwrap().run_id;
    let reset = stdout(
        &app.cli(&[
            "workflow",
            "reset",
            "-w",
            "r-1",
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "once more",
            "--reapply-exclude",
            "Signal",
            "-o",
            "json",
        ])
        .await,
    );
    let reset: Value = serde_json::from_str(&reset).unwrap();
    let again = app.engine.describe("r-1").await.unwrap();
    assert_eq!(reset["run_id"], again.run_id.to_string().as_str());
    assert_eq!(again.reset_from, Some(completed));
    assert_eq!(again.status, steadfast::WorkflowStatus::Running);
    assert_eq!(
        app.engine
            .describe_run("r-1", completed)
            .await
            .unwrap()
            .status,
        steadfast::WorkflowStatus::Completed
    );
    app.engine.shutdown().await.unwrap();
}
