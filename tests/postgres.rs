//! Promise: the engine opens a PostgreSQL database by URL, in a schema it
//! creates and versions itself: a run started there survives the engine
//! closing and resumes on the next open; a schema written by a newer build
//! (a newer layout or a newer store format) is refused with
//! `OpenError::NewerSchema`, an older format is raised; two engines share
//! a schema, each reaching the other's runs; schemas of layouts 1, 2 and
//! 3 are migrated on open (layout 2's counts kept, and kept whole by the
//! folds of layout 4's count changes; a layout-3 schema and its runs as
//! that build wrote them go on); an unreachable server and a
//! bad schema name are typed errors; when the server drops the engine's
//! sessions, the engine connects again and its runs go on; a schema of
//! layout 2 gets the index that keeps one open run per workflow ID, unless
//! it holds duplicates, which a typed error names..
//!
//! The storage contract itself runs on PostgreSQL in the store's
//! conformance suite, and the engine's files for signals, timers, retries,
//! cancellation and children run on it with `STEADFAST_TEST_STORE=postgres`.

mod support;

use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EngineBuilder, EventKind,
    OpenError, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::postgres::sql;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_a_schema_and_reach_each_others_runs() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("shared");
    let first = builder(&schema).postgres(&url).await.expect("open");
    let second = builder(&schema)
        .postgres(&url)
        .await
        .expect("open a second");
    // Started from both, each signalled from the other engine: every
    // workflow reaches its end whichever engine owns it.
    let ids: Vec<String> = (0..16).map(|i| format!("shared-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let (starter, _) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        starter
            .start_workflow(
                TWO_GREETINGS,
                id.clone(),
                format!("a{i}"),
                WorkflowOptions::default(),
            )
            .await
            .expect("start");
    }
    for (i, id) in ids.iter().enumerate() {
        let other = if i % 2 == 0 { &second } else { &first };
        // Retried only while a shard moves between the engines (refused,
        // not delivered: the caller is told to retry).
        support::eventually(Duration::from_secs(30), || async {
            match other.signal(id, GO, format!("b{i}")).await {
                Ok(()) => Some(()),
                Err(steadfast::ClientError::Storage(message)) => {
                    eprintln!("signal {id}: {message}");
                    None
                }
                Err(e) => panic!("signal {id}: {e}"),
            }
        })
        .await;
    }
    for (i, id) in ids.iter().enumerate() {
        let handle = first
            .get_workflow_handle(TWO_GREETINGS, id.clone())
            .await
            .expect("handle");
        let result = tokio::time::timeout(Duration::from_secs(60), handle.result())
            .await
            .expect("in time")
            .expect("result");
        assert_eq!(result, format!("Hello, a{i}! Hello, b{i}!"));
        let history = second.history(id).await.expect("history");
        support::assert_history_well_formed(&history);
        let signals = history
            .iter()
            .filter(|e| match &e.kind {
                EventKind::WorkflowSignaled { signal_name, .. }
                | EventKind::WorkflowSignaledWithOptions { signal_name, .. } => signal_name == "go",
                _ => false,
            })
            .count();
        assert_eq!(signals, 1, "workflow {id} got its signal once");
    }
    first.shutdown().await.expect("shutdown");
    second.shutdown().await.expect("shutdown");
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

#[tokio::test]
async fn a_schema_of_layout_1_is_migrated_unless_an_engine_of_that_build_writes_it() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("layout_1");
    let c = sql(&url, &schema).await;
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("schema");
    c.batch_execute(include_str!("fixtures/postgres-layout-1.sql"))
        .await
        .expect("the layout-1 fixture loads");
    // An engine of that build holds this lock on its writer's session.
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtext('steadfast-writer:' || $1))",
            &[&schema],
        )
        .await
        .expect("lock");
    match builder(&schema).postgres(&url).await {
        Err(OpenError::DatabaseInUse { schema: named }) => assert_eq!(named, schema),
        other => panic!("expected DatabaseInUse, got {other:?}"),
    }
    drop(holder);
    // Once it is gone: migrated, and the engine works on it.
    let engine = support::eventually(Duration::from_secs(10), || async {
        builder(&schema).postgres(&url).await.ok()
    })
    .await;
    let layout: String = c
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await
        .expect("meta")
        .get(0);
    assert_eq!(layout, "4");
    let handle = engine
        .start_workflow(
            TWO_GREETINGS,
            "migrated",
            "a".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    engine
        .signal("migrated", GO, "b".into())
        .await
        .expect("signal");
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("in time")
        .expect("result");
    assert_eq!(result, "Hello, a! Hello, b!");
    engine.shutdown().await.expect("shutdown");
}

/// Starts `workflow_id`, signals it and waits for its result.
async fn greet_twice(engine: &Engine, workflow_id: &str) {
    let handle = engine
        .start_workflow(
            TWO_GREETINGS,
            workflow_id,
            "a".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    engine
        .signal(workflow_id, GO, "b".into())
        .await
        .expect("signal");
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("in time")
        .expect("result");
    assert_eq!(result, "Hello, a! Hello, b!");
}

#[tokio::test]
async fn a_schema_of_layout_2_is_migrated_keeping_its_counts_which_later_folds_keep_whole() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("layout_2");
    let c = sql(&url, &schema).await;
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("schema");
    // Its counts: 2 completed runs, 1 failed.
    c.batch_execute(include_str!("fixtures/postgres-layout-2.sql"))
        .await
        .expect("the layout-2 fixture loads");
    let engine = builder(&schema).postgres(&url).await.expect("migrate");
    let layout: String = c
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await
        .expect("meta")
        .get(0);
    assert_eq!(layout, "4");
    let counts = engine.count_workflows().await.expect("count");
    assert_eq!(
        (
            counts.get(steadfast::WorkflowStatus::Completed),
            counts.get(steadfast::WorkflowStatus::Failed),
            counts.total()
        ),
        (2, 1, 3),
        "the migration keeps the counts"
    );
    // Runs completed across several folds (one at most each second, after
    // a commit) are each counted once.
    for round in 0..3 {
        greet_twice(&engine, &format!("after-{round}")).await;
        let counts = engine.count_workflows().await.expect("count");
        assert_eq!(
            (
                counts.get(steadfast::WorkflowStatus::Completed),
                counts.get(steadfast::WorkflowStatus::Running),
                counts.total()
            ),
            (3 + round, 0, 4 + round),
            "round {round}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let folded: i64 = c
        .query_one("SELECT runs FROM status_counts WHERE status = 1", &[])
        .await
        .expect("the folded count")
        .get(0);
    assert!(
        folded > 2,
        "the changes were folded into status_counts ({folded} completed there)"
    );
    engine.shutdown().await.expect("shutdown");
}

/// The workflows of `tests/fixtures/postgres-layout-3.sql`, as the program
/// that wrote it had them: greets, waits for a signal, greets its value.
const GREETER: WorkflowDef<String, String> = WorkflowDef::new("Greeter");
/// Fails at once (the action of the fixture's paused schedule).
const FAILER: WorkflowDef<(), ()> = WorkflowDef::new("Failer");

async fn greeter(ctx: WorkflowContext, name: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    let first = ctx.execute_activity(GREET, name, options.clone()).await?;
    let other = ctx.recv_signal(GO).await?;
    let second = ctx.execute_activity(GREET, other, options).await?;
    Ok(format!("{first} {second}"))
}

async fn failer(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    Err(WorkflowError::from(std::io::Error::other("on purpose")))
}

#[tokio::test]
async fn a_schema_of_layout_3_written_by_its_build_is_migrated_and_its_runs_go_on() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("layout_3");
    let c = sql(&url, &schema).await;
    c.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("schema");
    // Two Greeters completed, a Failer failed, a Greeter open waiting for
    // its signal, a paused schedule; all shards released.
    c.batch_execute(include_str!("fixtures/postgres-layout-3.sql"))
        .await
        .expect("the layout-3 fixture loads");
    let engine = Engine::builder()
        .workflow(GREETER, greeter)
        .workflow(FAILER, failer)
        .activity(GREET, greet)
        .postgres_schema(&schema)
        .postgres(&url)
        .await
        .expect("migrate");
    let meta = |key: &'static str| {
        let c = &c;
        async move {
            c.query_one("SELECT value FROM meta WHERE key = $1", &[&key])
                .await
                .expect("meta")
                .get::<_, String>(0)
                .parse::<u32>()
                .expect("a number")
        }
    };
    assert_eq!(meta("schema_version").await, 4);
    // The functions replaced by this build's revision (FORMAT.md).
    assert_eq!(meta("functions_revision").await, 5);
    // Format 16 as written, raised to this build's (not lower).
    assert!(meta("format_version").await >= 16);
    let counts = engine.count_workflows().await.expect("count");
    assert_eq!(
        (
            counts.get(steadfast::WorkflowStatus::Running),
            counts.get(steadfast::WorkflowStatus::Completed),
            counts.get(steadfast::WorkflowStatus::Failed),
            counts.total()
        ),
        (1, 2, 1, 4),
        "the migration keeps the counts"
    );
    // The closed runs read as their build wrote them.
    for id in ["done-1", "done-2"] {
        let handle = engine
            .get_workflow_handle(GREETER, id)
            .await
            .expect("handle");
        assert_eq!(
            handle.result().await.expect("result"),
            "Hello, a! Hello, b!"
        );
    }
    let failed = engine.describe("failed-1").await.expect("describe");
    assert_eq!(failed.status, steadfast::WorkflowStatus::Failed);
    // The open run replays its history with this build and goes on.
    engine
        .signal("open-1", GO, "d".to_string())
        .await
        .expect("signal");
    let handle = engine
        .get_workflow_handle(GREETER, "open-1")
        .await
        .expect("handle");
    let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
        .await
        .expect("in time")
        .expect("result");
    assert_eq!(result, "Hello, c! Hello, d!");
    let history = engine.history("open-1").await.expect("history");
    assert_eq!(
        history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. }))
            .count(),
        2,
        "the activity done before the migration ran once: {history:#?}"
    );
    // The schedule is there, paused as it was.
    let schedule = engine.describe_schedule("hourly").await.expect("schedule");
    assert!(schedule.schedule.state.paused);
    assert_eq!(schedule.info.action_count, 0);
    let counts = engine.count_workflows().await.expect("count");
    assert_eq!(
        (
            counts.get(steadfast::WorkflowStatus::Completed),
            counts.total()
        ),
        (3, 4)
    );
    engine.shutdown().await.expect("shutdown");
}

const COUNTER: WorkflowDef<u32, u32> = WorkflowDef::new("Counter");
const ADD: steadfast::UpdateDef<u32, u32> = steadfast::UpdateDef::new("add");
const TOTAL: steadfast::QueryDef<u32> = steadfast::QueryDef::new("total");
const STOP: SignalDef<()> = SignalDef::new("stop");

/// Adds what each update brings; answers its total; stops on a signal.
async fn counter(ctx: WorkflowContext, start: u32) -> Result<u32, WorkflowError> {
    let total = std::sync::Arc::new(std::sync::Mutex::new(start));
    let (sum, read) = (total.clone(), total.clone());
    ctx.handle_query(TOTAL, move || *read.lock().unwrap());
    ctx.handle_update(
        ADD,
        |_: &u32| Ok(()),
        move |_ctx, n: u32| {
            let sum = sum.clone();
            async move {
                let mut sum = sum.lock().unwrap();
                *sum += n;
                Ok(*sum)
            }
        },
    );
    ctx.recv_signal(STOP).await?;
    let total = *total.lock().unwrap();
    Ok(total)
}

/// Retries a call while its run's shard moves between the engines (it
/// was refused, nothing done: the caller is told to retry).
async fn retrying<T, E: std::fmt::Display, Fut: std::future::Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> Fut,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if e.to_string().contains("retry") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_queries_and_terminations_reach_the_run_in_the_other_engine() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("calls");
    let counting = |schema: &str| {
        Engine::builder()
            .workflow(COUNTER, counter)
            .postgres_schema(schema)
    };
    let first = counting(&schema).postgres(&url).await.expect("open");
    let second = counting(&schema)
        .postgres(&url)
        .await
        .expect("open a second");
    // Once both own shards.
    let c = sql(&url, &schema).await;
    support::eventually(Duration::from_secs(30), || async {
        let owners: i64 = c
            .query_one(
                "SELECT count(DISTINCT owner) FROM shards WHERE owner IS NOT NULL",
                &[],
            )
            .await
            .expect("owners")
            .get(0);
        let free: i64 = c
            .query_one("SELECT count(*) FROM shards WHERE owner IS NULL", &[])
            .await
            .expect("free")
            .get(0);
        (owners == 2 && free == 0).then_some(())
    })
    .await;
    for i in 0..12u32 {
        let id = format!("counter-{i}");
        // Started (with an update) from one engine, whichever owns it.
        let (handle, total) = retrying(|| {
            first.update_with_start(
                COUNTER,
                id.clone(),
                10,
                WorkflowOptions::default(),
                ADD,
                i,
                steadfast::UpdateOptions::new(),
            )
        })
        .await;
        assert_eq!(total, 10 + i);
        // Updated and queried from the other.
        let total = retrying(|| second.update(&id, ADD, 100)).await;
        assert_eq!(total, 110 + i);
        let asked = retrying(|| second.query(&id, TOTAL)).await;
        assert_eq!(asked, 110 + i);
        assert_eq!(retrying(|| first.query(&id, TOTAL)).await, 110 + i);
        if i % 2 == 0 {
            retrying(|| second.signal(&id, STOP, ())).await;
            let result = tokio::time::timeout(Duration::from_secs(30), handle.result())
                .await
                .expect("in time")
                .expect("result");
            assert_eq!(result, 110 + i);
        } else {
            retrying(|| second.terminate(&id, "enough")).await;
            let description = first.describe(&id).await.expect("describe");
            assert_eq!(description.status, steadfast::WorkflowStatus::Terminated);
            match second.terminate(&id, "again").await {
                Err(steadfast::ClientError::WorkflowClosed { .. }) => {}
                other => panic!("a second terminate: {other:?}"),
            }
        }
        let history = second.history(&id).await.expect("history");
        support::assert_history_well_formed(&history);
    }
    first.shutdown().await.expect("shutdown");
    second.shutdown().await.expect("shutdown");
}

/// A schema of layout 2 (before the index `runs_one_open`) is migrated on
/// open; one holding two open runs of a workflow ID (an earlier build's
/// race) is refused with `OpenError::DuplicateOpenRuns` naming the ID and
/// left as it was, and opens once the duplicate is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_of_layout_2_gets_one_open_run_per_id_or_names_its_duplicates() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    let schema = support::postgres::fresh_schema("layout_2");
    let engine = builder(&schema).postgres(&url).await.expect("create");
    engine
        .start_workflow(
            TWO_GREETINGS,
            "twice",
            "a".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .expect("start");
    engine.shutdown().await.expect("shutdown");
    let c = sql(&url, &schema).await;
    // As layout 2 had it: no index, and (made by a race of that build) a
    // second open run of one ID.
    c.batch_execute(
        "DROP INDEX runs_one_open; ALTER TABLE inbox DROP COLUMN deliveries; \
         UPDATE meta SET value = '2' WHERE key = 'schema_version'; \
         INSERT INTO runs (run_id, workflow_id, shard, workflow_type, status, start_ns, close_ns, \
             list_order, wake, last_event, record) \
         SELECT gen_random_uuid(), workflow_id, shard, workflow_type, status, start_ns, close_ns, \
             list_order, NULL, last_event, record FROM runs WHERE workflow_id = 'twice'",
    )
    .await
    .expect("a layout-2 schema with a duplicate");
    match builder(&schema).postgres(&url).await {
        Err(OpenError::DuplicateOpenRuns {
            schema: named,
            workflow_ids,
            count,
        }) => {
            assert_eq!(named, schema);
            assert_eq!(workflow_ids, vec!["twice".to_string()]);
            assert_eq!(count, 1);
        }
        other => panic!("expected DuplicateOpenRuns, got {other:?}"),
    }
    let layout: String = c
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await
        .expect("meta")
        .get(0);
    assert_eq!(layout, "2", "a refused migration changes nothing");
    // Closed by hand (the run the ID does not name), it opens, migrated.
    c.execute(
        "UPDATE runs SET status = 4 WHERE workflow_id = 'twice' \
         AND run_id <> (SELECT latest_run FROM workflows WHERE workflow_id = 'twice')",
        &[],
    )
    .await
    .expect("close the duplicate");
    let engine = builder(&schema).postgres(&url).await.expect("migrated");
    let layout: String = c
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await
        .expect("meta")
        .get(0);
    assert_eq!(layout, "4");
    // The index holds: a second open run of the ID cannot be written.
    let refused = c
        .execute(
            "INSERT INTO runs (run_id, workflow_id, shard, workflow_type, status, start_ns, \
             close_ns, list_order, wake, last_event, record) \
             SELECT gen_random_uuid(), workflow_id, shard, workflow_type, 0, start_ns, NULL, \
             list_order, NULL, last_event, record FROM runs WHERE workflow_id = 'twice' \
             AND status = 0",
            &[],
        )
        .await;
    assert!(refused.is_err(), "a second open run of one ID is refused");
    engine
        .signal("twice", GO, "b".into())
        .await
        .expect("signal");
    engine.shutdown().await.expect("shutdown");
}
