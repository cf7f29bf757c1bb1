//! Promise: `update_with_start` is atomic: the start, the workflow's first
//! activation and the update's acceptance are one commit, so no run is ever
//! started without its update (also across kill -9), and a refused update
//! starts nothing.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ClientError, Engine, EngineBuilder, EventKind, ListFilter, SignalDef, UpdateDef, UpdateError,
    UpdateOptions, WorkflowContext, WorkflowDef, WorkflowError, WorkflowIdConflictPolicy,
    WorkflowOptions,
};
use support::{child_report, spawn_crash_child, temp_db};

/// Counts what `ADD` added; returns the total on `STOP`.
const COUNTER: WorkflowDef<u32, u32> = WorkflowDef::new("UwS.Counter");
const ADD: UpdateDef<u32, u32> = UpdateDef::new("add");
const STOP: SignalDef<()> = SignalDef::new("stop");

async fn counter(ctx: WorkflowContext, start: u32) -> Result<u32, WorkflowError> {
    let total = Arc::new(Mutex::new(start));
    let sum = total.clone();
    ctx.handle_update(
        ADD,
        |n: &u32| {
            if *n == 0 {
                Err("adding zero changes nothing".to_string())
            } else {
                Ok(())
            }
        },
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

fn builder() -> EngineBuilder {
    Engine::builder().workflow(COUNTER, counter)
}

fn use_existing() -> WorkflowOptions {
    WorkflowOptions::new().with_id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_and_the_update_are_one_commit_and_a_running_run_takes_the_update() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    let (handle, total) = engine
        .update_with_start(
            COUNTER,
            "uws-1",
            10,
            use_existing(),
            ADD,
            5,
            UpdateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(total, 15);
    // The update's acceptance is in the run's first commit: right after
    // the start (the first activation issued no command).
    let history = engine.history("uws-1").await.unwrap();
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowUpdateAccepted { .. }
    ));

    // Running already: with UseExisting the update goes to that run.
    let (again, total) = engine
        .update_with_start(
            COUNTER,
            "uws-1",
            99,
            use_existing(),
            ADD,
            2,
            UpdateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!((again.run_id(), total), (handle.run_id(), 17));
    // With the default policy (Fail) it is refused, and nothing is sent.
    assert!(matches!(
        engine
            .update_with_start(
                COUNTER,
                "uws-1",
                0,
                WorkflowOptions::new(),
                ADD,
                1,
                UpdateOptions::new()
            )
            .await,
        Err(UpdateError::Client(ClientError::AlreadyStarted { .. }))
    ));
    engine.signal("uws-1", STOP, ()).await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 17);
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_update_starts_nothing() {
    let db = temp_db();
    let engine = builder().open(&db.path).await.unwrap();
    match engine
        .update_with_start(
            COUNTER,
            "uws-2",
            1,
            WorkflowOptions::new(),
            ADD,
            0,
            UpdateOptions::new(),
        )
        .await
    {
        Err(UpdateError::Rejected { message, .. }) => {
            assert_eq!(message, "adding zero changes nothing")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    const OTHER: UpdateDef<(), ()> = UpdateDef::new("not_handled");
    assert!(matches!(
        engine
            .update_with_start(
                COUNTER,
                "uws-2",
                1,
                WorkflowOptions::new(),
                OTHER,
                (),
                UpdateOptions::new()
            )
            .await,
        Err(UpdateError::UnknownUpdate { .. })
    ));
    assert!(matches!(
        engine.describe("uws-2").await,
        Err(ClientError::NotFound { .. })
    ));
    // The ID is free: a valid one starts it.
    let (_, total) = engine
        .update_with_start(
            COUNTER,
            "uws-2",
            1,
            WorkflowOptions::new(),
            ADD,
            1,
            UpdateOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    engine.shutdown().await.unwrap();
}

const CRASH_DB: &str = "STEADFAST_UWS_DB";

/// Update-with-starts new IDs one after another, reporting each answer.
#[tokio::test]
async fn child_update_with_start() {
    let Some(db) = std::env::var_os(CRASH_DB) else {
        return;
    };
    let engine = builder().open(Path::new(&db)).await.unwrap();
    child_report("opened");
    for i in 0u32.. {
        let id = format!("uws-crash-{i}");
        let (_, total) = engine
            .update_with_start(
                COUNTER,
                id.as_str(),
                i,
                // A restarted child sends its last IDs again: the runs
                // and their updates are there already.
                use_existing(),
                ADD,
                1,
                UpdateOptions::new().with_update_id(format!("{id}/add")),
            )
            .await
            .unwrap();
        child_report(&format!("done {i} {total}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_never_leaves_a_run_started_without_its_update() {
    let db = temp_db();
    let env = [(CRASH_DB, db.path.as_os_str() as &OsStr)];
    let mut acknowledged = BTreeSet::new();
    for round in 0..3u64 {
        let mut child = spawn_crash_child("child_update_with_start", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "opened")
            .await;
        let wanted = 5 + round as usize * 7;
        support::eventually(Duration::from_secs(60), || {
            let done = child
                .lines()
                .iter()
                .filter(|l| l.starts_with("done "))
                .count();
            async move { (done >= wanted).then_some(()) }
        })
        .await;
        for line in child.kill() {
            if let Some(rest) = line.strip_prefix("done ") {
                let i: u32 = rest.split(' ').next().unwrap().parse().unwrap();
                acknowledged.insert(i);
            }
        }
    }
    let engine = builder().open(&db.path).await.unwrap();
    let page = engine
        .list(
            &ListFilter::new()
                .with_workflow_id_prefix("uws-crash-")
                .with_page_size(1000),
        )
        .await
        .unwrap();
    let stored: BTreeSet<String> = page
        .executions
        .iter()
        .map(|e| e.workflow_id.clone())
        .collect();
    for i in &acknowledged {
        assert!(stored.contains(&format!("uws-crash-{i}")), "run {i} lost");
    }
    // Every run in the file has its update, accepted and completed.
    for id in &stored {
        let history = engine.history(id).await.unwrap();
        let accepted = history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::WorkflowUpdateAccepted { .. }))
            .count();
        assert_eq!(accepted, 1, "{id}: {history:#?}");
        assert!(
            history
                .iter()
                .any(|e| matches!(e.kind, EventKind::WorkflowUpdateCompleted { .. })),
            "{id}"
        );
        // The same update ID answers the recorded outcome.
        let i: u32 = id.trim_start_matches("uws-crash-").parse().unwrap();
        let again = engine
            .update_with_options(
                id,
                ADD,
                1,
                UpdateOptions::new().with_update_id(format!("{id}/add")),
            )
            .await
            .unwrap();
        assert_eq!(again, i + 1);
    }
    engine.shutdown().await.unwrap();
}
