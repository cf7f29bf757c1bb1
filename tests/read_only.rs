//! Promise: `EngineBuilder::read_only` reads a file without changing a byte
//! of it. Lists, describes, histories and queries (answered by replaying
//! the history) work; every call that would write is refused with
//! `ClientError::ReadOnly`; no run is loaded and no timer fires. A missing
//! file, a file another engine holds, a file left by a killed process
//! (SIGKILL of a real child) and a format-1 file each get their own typed
//! error; every older format from 2 on reads as it is.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ClientError, Engine, EventKind, ListFilter, OpenError, QueryDef, SignalDef, WorkflowContext,
    WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{child_report, copy_fixture, spawn_crash_child, temp_db};

const WAITER: WorkflowDef<u64, String> = WorkflowDef::new("Waiter");
const GO: SignalDef<String> = SignalDef::new("go");
const SEEN: QueryDef<String> = QueryDef::new("seen");

/// Sleeps `ms`, then waits for `go`; query `seen` tells how far it got.
async fn waiter(ctx: WorkflowContext, ms: u64) -> Result<String, WorkflowError> {
    let seen = Arc::new(Mutex::new("started".to_string()));
    let answer = seen.clone();
    ctx.handle_query(SEEN, move || {
        answer.lock().map(|s| s.clone()).unwrap_or_default()
    });
    ctx.sleep(Duration::from_millis(ms)).await?;
    *seen.lock().map_err(|_| WorkflowError::new("poisoned"))? = "slept".into();
    let go = ctx.recv_signal(GO).await?;
    Ok(format!("went {go}"))
}

fn builder() -> steadfast::EngineBuilder {
    Engine::builder().workflow(WAITER, waiter)
}

#[tokio::test]
async fn a_read_only_engine_reads_everything_and_writes_nothing() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let done = engine
        .start_workflow(WAITER, "done", 0, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        (engine.query("done", SEEN).await.ok()? == "slept").then_some(())
    })
    .await;
    engine.signal("done", GO, "now".into()).await.unwrap();
    done.result().await.unwrap();
    // Its timer is due in 300 ms: it must not fire while the file is read.
    engine
        .start_workflow(WAITER, "waiting", 300, WorkflowOptions::new())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    let bytes = std::fs::read(&db.path).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    let reader = builder().read_only().open(&db.path).await.unwrap();
    assert!(reader.is_read_only());
    let page = reader.list(&ListFilter::new()).await.unwrap();
    let ids: Vec<&str> = page
        .executions
        .iter()
        .map(|e| e.workflow_id.as_str())
        .collect();
    assert_eq!(ids, ["waiting", "done"]);
    let waiting = reader.describe("waiting").await.unwrap();
    assert_eq!(waiting.status, WorkflowStatus::Running);
    assert_eq!(waiting.pending_timers.len(), 1, "{waiting:?}");
    assert_eq!(
        reader.describe("done").await.unwrap().status,
        WorkflowStatus::Completed
    );
    let history = reader.history("done").await.unwrap();
    assert!(matches!(
        history.last().unwrap().kind,
        EventKind::WorkflowCompleted { .. }
    ));
    assert_eq!(
        reader.workflow_history("done").await.unwrap().events,
        history
    );
    // A query replays the history with the registered code.
    assert_eq!(reader.query("waiting", SEEN).await.unwrap(), "started");
    assert_eq!(reader.query("done", SEEN).await.unwrap(), "slept");

    // Every write is refused before anything is tried.
    let refusals = [
        reader
            .start_workflow(WAITER, "new", 0, WorkflowOptions::new())
            .await
            .err(),
        reader.signal("waiting", GO, "x".into()).await.err(),
        reader.cancel("waiting").await.err(),
        reader.terminate("waiting", "no").await.err(),
        reader.delete("done").await.err(),
    ];
    for refusal in refusals {
        assert!(
            matches!(refusal, Some(ClientError::ReadOnly { .. })),
            "{refusal:?}"
        );
    }
    let message = reader.cancel("waiting").await.unwrap_err().to_string();
    assert!(
        message.contains("read-only") && message.contains("cancel"),
        "{message}"
    );

    // The due timer did not fire: nothing ran.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting_history = reader.history("waiting").await.unwrap();
    assert!(
        !waiting_history
            .iter()
            .any(|e| matches!(e.kind, EventKind::TimerFired { .. })),
        "{waiting_history:?}"
    );
    reader.shutdown().await.unwrap();
    assert_eq!(std::fs::read(&db.path).unwrap(), bytes, "the file changed");

    // The read-only handle let go of the file: a writer opens it, and the
    // timer fires now.
    let engine = builder().open(&db.path).await.unwrap();
    support::eventually(Duration::from_secs(10), || async {
        (engine.query("waiting", SEEN).await.ok()? == "slept").then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_file_is_not_created() {
    let db = temp_db();
    let err = Engine::builder()
        .read_only()
        .open(&db.path)
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::NotFound { .. }), "{err}");
    assert!(!db.path.exists());
    let err = Engine::builder()
        .read_only()
        .retention(Duration::from_secs(60))
        .open(&db.path)
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::InvalidConfig(_)), "{err}");
}

#[tokio::test]
async fn a_file_an_engine_holds_is_already_in_use() {
    let db = temp_db();
    let engine = Engine::builder().open(&db.path).await.unwrap();
    let err = Engine::builder()
        .read_only()
        .open(&db.path)
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::AlreadyInUse { .. }), "{err}");
    engine.shutdown().await.unwrap();
}

const HOLD_ENV: &str = "STEADFAST_READ_ONLY_HOLD_DB";

/// The child: opens the file, starts a run, prints `started`, and waits to
/// be killed.
#[tokio::test]
async fn child_start_and_hold() {
    let Some(db) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let engine = builder().open(&db).await.expect("the child opens the file");
    engine
        .start_workflow(WAITER, "killed", 60_000, WorkflowOptions::new())
        .await
        .expect("the child starts a run");
    child_report("started");
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(engine);
}

#[tokio::test]
async fn a_file_left_by_a_killed_process_needs_recovery_first() {
    let db = temp_db();
    let mut child = spawn_crash_child("child_start_and_hold", &[(HOLD_ENV, db.path.as_os_str())]);
    child
        .wait_for_line(Duration::from_secs(30), |l| l == "started")
        .await;
    child.kill();

    let err = builder().read_only().open(&db.path).await.unwrap_err();
    assert!(matches!(err, OpenError::NeedsRecovery { .. }), "{err}");
    assert!(err.to_string().contains("steadfast repair"), "{err}");

    // Opening it for writing repairs it; then it reads, with the run the
    // child acknowledged.
    Engine::builder()
        .open(&db.path)
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let reader = builder().read_only().open(&db.path).await.unwrap();
    assert_eq!(
        reader.describe("killed").await.unwrap().status,
        WorkflowStatus::Running
    );
    reader.shutdown().await.unwrap();
}

#[tokio::test]
async fn older_formats_read_as_they_are_and_format_1_needs_migration() {
    let old = copy_fixture("tests/fixtures/format-1.steadfast");
    let err = Engine::builder()
        .read_only()
        .open(&old.path)
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::NeedsMigration { found: 1, .. }),
        "{err}"
    );

    // Every fixture from format 2 on: each later format gets one.
    let fixtures = (2..)
        .take_while(|v| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/format-{v}.steadfast"))
                .exists()
        })
        .collect::<Vec<u32>>();
    assert!(fixtures.len() >= 5, "fixtures {fixtures:?}");
    // Format 18's fixture is a killed file whose commits are in its journal
    // only: a read-only open refuses it until a writing open recovered it
    // (`tests/format_v18.rs` checks that).
    for version in fixtures.into_iter().filter(|v| *v != 18) {
        let db = copy_fixture(&format!("tests/fixtures/format-{version}.steadfast"));
        let bytes = std::fs::read(&db.path).unwrap();
        let reader = Engine::builder().read_only().open(&db.path).await.unwrap();
        let page = reader.list(&ListFilter::new()).await.unwrap();
        assert!(!page.executions.is_empty(), "format {version} lists no run");
        for run in &page.executions {
            let history = reader.history(&run.workflow_id).await.unwrap();
            assert!(!history.is_empty());
        }
        reader.shutdown().await.unwrap();
        assert_eq!(
            std::fs::read(&db.path).unwrap(),
            bytes,
            "format {version} changed"
        );
        assert_eq!(support::stored_format_version(&db.path), version);
    }
}
