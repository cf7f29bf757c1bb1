//! Promise: the engine opens a PostgreSQL database by URL, in a schema it
//! creates and versions itself: a run started there survives the engine
//! closing and resumes on the next open; a schema written by a newer build
//! (a newer layout or a newer store format) is refused with
//! `OpenError::NewerSchema`, an older format is raised; while one engine
//! writes a schema a second one is refused with `OpenError::DatabaseInUse`;
//! an unreachable server and a bad schema name are typed errors; when the
//! server drops the engine's sessions, the engine connects again (taking the
//! schema's lock again) and its runs go on.
//!
//! The storage contract itself runs on PostgreSQL in the store's
//! conformance suite, and the engine's files for signals, timers, retries,
//! cancellation and children run on it with `STEADFAST_TEST_STORE=postgres`.

mod support;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, OpenError,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

const GREET: ActivityDef<String, String> = ActivityDef::new("greet");
const GO: SignalDef<String> = SignalDef::new("go");
/// Greets, waits for a signal, greets its value, returns both greetings.
const TWO_GREETINGS: WorkflowDef<String, String> = WorkflowDef::new("TwoGreetings");

async fn greet(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

async fn two_greetings(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    let first = ctx.execute_activity(GREET, name, options.clone()).await?;
    let next = ctx.recv_signal(GO).await?;
    let second = ctx.execute_activity(GREET, next, options).await?;
    Ok(format!("{first} {second}"))
}

fn builder(schema: &str) -> EngineBuilder {
    Engine::builder()
        .workflow(TWO_GREETINGS, two_greetings)
        .activity(GREET, greet)
        .postgres_schema(schema)
}

/// A session of the test's own on the cluster, in `schema`.
async fn sql(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search path");
    client
}

#[tokio::test]
async fn a_run_on_postgres_resumes_after_the_engine_reopens() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("resume");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    let handle = engine
        .start_workflow(
            TWO_GREETINGS,
            "greetings",
            "Alice".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    let run_id = handle.run_id();
    // The first activity has completed once the run waits for the signal.
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("greetings").await.expect("history");
        history
            .iter()
            .any(|e| matches!(e.kind, steadfast::EventKind::ActivityCompleted { .. }))
            .then_some(())
    })
    .await;
    engine.shutdown().await.expect("shutdown");

    let engine = builder(&schema).postgres(&url).await.expect("reopen");
    engine
        .signal("greetings", GO, "Bob".to_string())
        .await
        .expect("signal");
    let handle = engine
        .get_workflow_handle(TWO_GREETINGS, "greetings")
        .await
        .expect("handle");
    assert_eq!(handle.run_id(), run_id, "the same run resumed");
    assert_eq!(
        handle.result().await.expect("result"),
        "Hello, Alice! Hello, Bob!"
    );
    let history = engine.history("greetings").await.expect("history");
    support::assert_history_well_formed(&history);
    engine.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused_and_an_older_format_raised() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("versions");
    let engine = builder(&schema).postgres(&url).await.expect("create");
    engine.shutdown().await.expect("shutdown");
    let client = sql(&url, &schema).await;
    let version = |key: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one("SELECT value FROM meta WHERE key = $1", &[&key])
                .await
                .expect("read the version");
            row.get::<_, String>(0).parse::<u32>().expect("a number")
        }
    };
    let (layout, format) = (
        version("schema_version").await,
        version("format_version").await,
    );
    let set = |key: &'static str, value: u32| {
        let client = &client;
        async move {
            client
                .execute(
                    "UPDATE meta SET value = $2 WHERE key = $1",
                    &[&key, &value.to_string()],
                )
                .await
                .expect("set the version");
        }
    };

    for (key, newer) in [
        ("schema_version", (layout + 1, format)),
        ("format_version", (layout, format + 1)),
    ] {
        let value = if key == "schema_version" {
            newer.0
        } else {
            newer.1
        };
        set(key, value).await;
        match builder(&schema).postgres(&url).await {
            Err(OpenError::NewerSchema {
                schema: named,
                found,
                supported,
            }) => {
                assert_eq!(named, schema);
                assert_eq!(found, newer);
                assert_eq!(supported, (layout, format));
            }
            other => panic!("expected NewerSchema for a newer {key}, got {other:?}"),
        }
        set(
            key,
            if key == "schema_version" {
                layout
            } else {
                format
            },
        )
        .await;
    }

    // An older store format opens, and is raised to this build's.
    set("format_version", format - 1).await;
    let engine = builder(&schema)
        .postgres(&url)
        .await
        .expect("open an older format");
    engine.shutdown().await.expect("shutdown");
    assert_eq!(version("format_version").await, format);
}

#[tokio::test]
async fn one_engine_writes_a_schema_at_a_time() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("in_use");
    let first = builder(&schema).postgres(&url).await.expect("open");
    match builder(&schema).postgres(&url).await {
        Err(OpenError::DatabaseInUse { schema: named }) => assert_eq!(named, schema),
        other => panic!("expected DatabaseInUse, got {other:?}"),
    }
    // Another schema of the same database is free.
    let other = builder(&support::postgres::fresh_schema("in_use_other"))
        .postgres(&url)
        .await
        .expect("open another schema");
    other.shutdown().await.expect("shutdown");
    first.shutdown().await.expect("shutdown");
    let again = builder(&schema)
        .postgres(&url)
        .await
        .expect("open once free");
    again.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn bad_urls_servers_and_schema_names_are_typed_errors() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a folder without a server");
    let nowhere = format!(
        "host={} user=postgres dbname=postgres",
        dir.path().display()
    );
    match builder("steadfast").postgres(&nowhere).await {
        Err(OpenError::Database { message }) => {
            assert!(message.contains("check the URL"), "{message}")
        }
        other => panic!("expected Database, got {other:?}"),
    }
    match builder("steadfast").postgres("postgresql://[bad").await {
        Err(OpenError::Database { message }) => {
            assert!(message.contains("does not parse"), "{message}")
        }
        other => panic!("expected Database, got {other:?}"),
    }
    for name in ["Upper", "with-dash", "1digit", "", "semi;colon"] {
        match builder(name).postgres(&url).await {
            Err(OpenError::InvalidConfig(message)) => {
                assert!(message.contains("schema"), "{message}")
            }
            other => panic!("expected InvalidConfig for {name:?}, got {other:?}"),
        }
    }
    match builder("steadfast").read_only().postgres(&url).await {
        Err(OpenError::InvalidConfig(message)) => {
            assert!(message.contains("read-only"), "{message}")
        }
        other => panic!("expected InvalidConfig for read_only, got {other:?}"),
    }
}

#[tokio::test]
async fn the_engine_connects_again_after_the_server_drops_its_sessions() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("reconnect");
    let engine = builder(&schema).postgres(&url).await.expect("open");
    engine
        .start_workflow(
            TWO_GREETINGS,
            "dropped",
            "Alice".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("dropped").await.expect("history");
        history
            .iter()
            .any(|e| matches!(e.kind, steadfast::EventKind::ActivityCompleted { .. }))
            .then_some(())
    })
    .await;
    let admin = sql(&url, &schema).await;
    let dropped = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("steadfast {schema}")],
        )
        .await
        .expect("terminate the engine's sessions");
    assert!(!dropped.is_empty(), "the engine's sessions were found");
    // A call that met the dropped session is refused as a storage failure
    // (it may or may not have been recorded; a retry with the same request
    // ID is safe); the engine connects again for the next.
    let options = steadfast::SignalOptions::new().with_request_id("go-once");
    support::eventually(Duration::from_secs(10), || async {
        match engine
            .signal_with_options("dropped", GO, "Bob".to_string(), options.clone())
            .await
        {
            Ok(()) => Some(()),
            Err(steadfast::ClientError::Storage(_)) => None,
            Err(other) => panic!("expected a storage failure or success, got {other:?}"),
        }
    })
    .await;
    let handle = engine
        .get_workflow_handle(TWO_GREETINGS, "dropped")
        .await
        .expect("handle");
    assert_eq!(
        handle.result().await.expect("result"),
        "Hello, Alice! Hello, Bob!"
    );
    let history = engine.history("dropped").await.expect("history");
    support::assert_history_well_formed(&history);
    let signals = history
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                steadfast::EventKind::WorkflowSignaled { .. }
                    | steadfast::EventKind::WorkflowSignaledWithOptions { .. }
            )
        })
        .count();
    assert_eq!(signals, 1, "the signal is in the history once");
    engine.shutdown().await.expect("shutdown");
}
