//! Promise: `ctx.start_child_workflow` returns a typed handle once the
//! child's start is durable (the ID check, the child's first events and the
//! parent's record of the start in one commit); a child ID already running
//! is a typed error at the start, in the parent, the same on replay; the
//! child's close (completed, failed, cancelled, terminated, timed out)
//! reaches the parent as an event carrying the cause, exactly once, also
//! across kill -9 at any moment; `describe` shows a parent's pending
//! children and names a child's parent.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ChildWorkflowError,
    ChildWorkflowOptions, Engine, EngineBuilder, EventKind, ListFilter, ParentClosePolicy,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

const GO: SignalDef<u32> = SignalDef::new("go");

/// A child: doubles its input, after waiting for a `go` signal when the
/// input is odd.
const DOUBLE: WorkflowDef<u32, u32> = WorkflowDef::new("double");

async fn double(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    if n % 2 == 1 {
        ctx.recv_signal(GO).await?;
    }
    Ok(n * 2)
}

/// A child that fails, or sleeps an hour when told to (for timeouts,
/// terminations and cancellations).
const FAIL_OR_WAIT: WorkflowDef<bool, u32> = WorkflowDef::new("fail_or_wait");

async fn fail_or_wait(ctx: WorkflowContext, wait: bool) -> Result<u32, WorkflowError> {
    if wait {
        ctx.sleep(Duration::from_secs(3600)).await?;
        return Ok(1);
    }
    Err(WorkflowError::new("out of stock").with_type("OutOfStock"))
}

/// Runs one child of `DOUBLE` and returns its result.
const PARENT: WorkflowDef<(String, u32), u32> = WorkflowDef::new("parent");

async fn parent(ctx: WorkflowContext, (id, n): (String, u32)) -> Result<u32, WorkflowError> {
    Ok(ctx
        .execute_child_workflow(DOUBLE, id, n, ChildWorkflowOptions::new())
        .await?)
}

/// Starts a `FAIL_OR_WAIT` child with the given options; cancels it when
/// asked to; returns how its result ended, as text.
const OUTCOME: WorkflowDef<(bool, bool, Option<u64>), String> = WorkflowDef::new("outcome");

async fn outcome(
    ctx: WorkflowContext,
    (wait, cancel, run_timeout_ms): (bool, bool, Option<u64>),
) -> Result<String, WorkflowError> {
    let mut options = ChildWorkflowOptions::new();
    if let Some(ms) = run_timeout_ms {
        options = options.with_run_timeout(Duration::from_millis(ms));
    }
    let id = format!("{}/child", ctx.workflow_id());
    let child = ctx
        .start_child_workflow(FAIL_OR_WAIT, id, wait, options)
        .await?;
    if cancel {
        child.cancel();
    }
    Ok(match child.result().await {
        Ok(v) => format!("ok {v}"),
        Err(ChildWorkflowError::Failed { failure, .. }) => format!("failed {}", failure.error_type),
        Err(ChildWorkflowError::Cancelled { .. }) => "cancelled".to_string(),
        Err(ChildWorkflowError::Terminated { failure, .. }) => {
            format!("terminated {}", failure.message)
        }
        Err(ChildWorkflowError::TimedOut { failure, .. }) => {
            format!("timed out {}", failure.error_type)
        }
        Err(other) => format!("other {other}"),
    })
}

/// Starts a child with an ID the caller chose and reports the start's error.
const COLLIDE: WorkflowDef<String, String> = WorkflowDef::new("collide");

async fn collide(ctx: WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let options = ChildWorkflowOptions::new().with_parent_close_policy(ParentClosePolicy::Abandon);
    match ctx.start_child_workflow(DOUBLE, id, 3, options).await {
        Ok(_) => Ok("started".into()),
        Err(ChildWorkflowError::AlreadyStarted { run_id, .. }) => Ok(format!("running {run_id}")),
        Err(other) => Ok(format!("other {other}")),
    }
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(DOUBLE, double)
        .workflow(FAIL_OR_WAIT, fail_or_wait)
        .workflow(PARENT, parent)
        .workflow(OUTCOME, outcome)
        .workflow(COLLIDE, collide)
        .workflow(BATCH, batch)
        .activity(APPEND, append)
}

async fn open(path: &Path) -> Engine {
    builder().open_db(path).await.expect("open")
}

fn kinds(history: &[steadfast::Event]) -> Vec<String> {
    history
        .iter()
        .map(|e| {
            format!("{:?}", e.kind)
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_child_runs_and_its_result_reaches_the_parent_as_an_event() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(
            PARENT,
            "p1",
            ("p1/c".to_string(), 4),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 8);
    let history = engine.history("p1").await.unwrap();
    assert_eq!(
        kinds(&history),
        [
            "WorkflowStarted",
            "StartChildWorkflowInitiated",
            "ChildWorkflowStarted",
            "ChildWorkflowCompleted",
            "WorkflowCompleted"
        ]
    );
    support::assert_history_well_formed(&history);
    let EventKind::ChildWorkflowStarted { run_id, .. } = history[2].kind else {
        panic!("{:?}", history[2].kind)
    };
    let child = engine.describe("p1/c").await.unwrap();
    assert_eq!(child.run_id, run_id);
    assert_eq!(child.status, WorkflowStatus::Completed);
    let parent = child.parent.expect("the child names its parent");
    assert_eq!(parent.workflow_id, "p1");
    assert_eq!(parent.run_id, handle.run_id());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_pending_children_and_the_childs_parent_also_after_a_restart() {
    let db = temp_db();
    {
        let engine = open(&db.path).await;
        engine
            .start_workflow(
                PARENT,
                "p2",
                ("p2/c".to_string(), 5),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        let d = support::eventually(Duration::from_secs(10), || async {
            let d = engine.describe("p2").await.unwrap();
            (d.pending_children.len() == 1 && d.pending_children[0].run_id.is_some()).then_some(d)
        })
        .await;
        assert_eq!(d.pending_children[0].workflow_id, "p2/c");
        assert_eq!(d.pending_children[0].workflow_type, "double");
        engine.shutdown().await.unwrap();
    }
    // From the file, without live actors (nothing loads them before a message).
    let engine = open(&db.path).await;
    let d = engine.describe("p2").await.unwrap();
    assert_eq!(d.pending_children.len(), 1);
    let child = engine.describe("p2/c").await.unwrap();
    assert_eq!(child.parent.unwrap().workflow_id, "p2");
    engine.signal("p2/c", GO, 1).await.unwrap();
    let handle = engine.get_workflow_handle(PARENT, "p2").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 10);
    assert!(
        engine
            .describe("p2")
            .await
            .unwrap()
            .pending_children
            .is_empty()
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_id_already_running_is_a_typed_error_at_the_start_and_replays_alike() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let busy = engine
        .start_workflow(DOUBLE, "taken", 1, WorkflowOptions::default())
        .await
        .unwrap();
    let handle = engine
        .start_workflow(
            COLLIDE,
            "c1",
            "taken".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    let expected = format!("running {}", busy.run_id());
    assert_eq!(handle.result().await.unwrap(), expected);
    let history = engine.history("c1").await.unwrap();
    assert!(matches!(
        history[2].kind,
        EventKind::StartChildWorkflowFailed { .. }
    ));
    // The busy workflow got no second run.
    let runs = engine
        .list(&ListFilter::new().with_workflow_id_prefix("taken"))
        .await
        .unwrap();
    assert_eq!(runs.executions.len(), 1);
    // Replay of the recorded history agrees with the code.
    let saved = engine.workflow_history("c1").await.unwrap();
    steadfast::Replayer::new()
        .workflow(COLLIDE, collide)
        .replay(&saved)
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_way_a_child_closes_reaches_the_parent_as_a_typed_failure() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = |id: &'static str, input: (bool, bool, Option<u64>)| {
        let engine = engine.clone();
        async move {
            engine
                .start_workflow(OUTCOME, id, input, WorkflowOptions::default())
                .await
                .unwrap()
        }
    };
    let failed = run("o-failed", (false, false, None)).await;
    let cancelled = run("o-cancelled", (true, true, None)).await;
    let timed_out = run("o-timeout", (true, false, Some(50))).await;
    let terminated = run("o-terminated", (true, false, None)).await;
    support::eventually(Duration::from_secs(10), || async {
        engine.describe("o-terminated/child").await.ok()
    })
    .await;
    engine
        .terminate("o-terminated/child", "no longer needed")
        .await
        .unwrap();
    assert_eq!(failed.result().await.unwrap(), "failed OutOfStock");
    assert_eq!(cancelled.result().await.unwrap(), "cancelled");
    assert_eq!(
        timed_out.result().await.unwrap(),
        "timed out WorkflowRunTimeout"
    );
    assert_eq!(
        terminated.result().await.unwrap(),
        "terminated no longer needed"
    );
    let history = engine.history("o-cancelled").await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| matches!(e.kind, EventKind::ChildWorkflowCancelRequested { .. }))
    );
    for id in ["o-failed", "o-cancelled", "o-timeout", "o-terminated"] {
        support::assert_history_well_formed(&engine.history(id).await.unwrap());
    }
    engine.shutdown().await.unwrap();
}

/// Runs a child of `DOUBLE` (input 4: it returns at once), then waits for
/// `go`; returns both.
const THEN_WAIT: WorkflowDef<(), (u32, u32)> = WorkflowDef::new("then_wait");

async fn then_wait(ctx: WorkflowContext, (): ()) -> Result<(u32, u32), WorkflowError> {
    let id = format!("{}/c", ctx.workflow_id());
    let child = ctx
        .execute_child_workflow(DOUBLE, id, 4, ChildWorkflowOptions::new())
        .await?;
    Ok((child, ctx.recv_signal(GO).await?))
}

#[tokio::test]
async fn a_childs_close_durable_before_the_parents_event_is_recorded_once_on_the_next_open() {
    // Edits the redb file under the engine: on redb whichever store the
    // other tests of this run use.
    let db = temp_db();
    let parent_run = {
        let engine = builder()
            .workflow(THEN_WAIT, then_wait)
            .open(&db.path)
            .await
            .unwrap();
        let handle = engine
            .start_workflow(THEN_WAIT, "tw", (), WorkflowOptions::default())
            .await
            .unwrap();
        support::eventually(Duration::from_secs(10), || async {
            let history = engine.history("tw").await.unwrap();
            history
                .iter()
                .any(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { .. }))
                .then_some(())
        })
        .await;
        engine.shutdown().await.unwrap();
        handle.run_id().as_uuid().as_u128()
    };
    // The file as a kill -9 between the child's close and the parent's
    // record of it leaves it: the child closed, the parent's history ending
    // at the child's start, and the parent due at once (the hint the step
    // that started the child stored).
    {
        use redb::ReadableTable;
        let file = redb::Database::create(&db.path).unwrap();
        let txn = file.begin_write().unwrap();
        {
            let mut history = txn.open_table(support::HISTORY).unwrap();
            let last = history
                .range((parent_run, 0)..=(parent_run, u64::MAX))
                .unwrap()
                .next_back()
                .unwrap()
                .unwrap()
                .0
                .value()
                .1;
            assert_eq!(
                last, 4,
                "started, initiated, child started, child completed"
            );
            let closed =
                support::decode_event(history.get((parent_run, 4)).unwrap().unwrap().value());
            assert!(matches!(
                closed.kind,
                EventKind::ChildWorkflowCompleted { .. }
            ));
            history.remove((parent_run, 4)).unwrap();
            let mut running = txn
                .open_table(redb::TableDefinition::<u128, u64>::new("running"))
                .unwrap();
            let old = running.insert(parent_run, 0).unwrap().unwrap().value();
            let mut wakeups = txn
                .open_table(redb::TableDefinition::<(u64, u128), ()>::new("wakeups"))
                .unwrap();
            if old != u64::MAX {
                wakeups.remove((old, parent_run)).unwrap();
            }
            wakeups.insert((0, parent_run), ()).unwrap();
        }
        txn.commit().unwrap();
    }
    let engine = builder()
        .workflow(THEN_WAIT, then_wait)
        .open(&db.path)
        .await
        .unwrap();
    // Loaded on open, it finds the child's close and records it.
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("tw").await.unwrap();
        (history.len() == 4).then_some(())
    })
    .await;
    engine.signal("tw", GO, 7).await.unwrap();
    let handle = engine.get_workflow_handle(THEN_WAIT, "tw").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), (8, 7));
    let history = engine.history("tw").await.unwrap();
    support::assert_history_well_formed(&history);
    let recorded = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { .. }))
        .count();
    assert_eq!(recorded, 1);
    engine.shutdown().await.unwrap();
}

// ----- kill -9 mid-child -----

const DB_ENV: &str = "STEADFAST_CHILDREN_DB";
const LOG_ENV: &str = "STEADFAST_CHILDREN_LOG";

/// Appends `(child, item)` to the log file, fsynced.
const APPEND: ActivityDef<(u32, u32), ()> = ActivityDef::new("append");

async fn append(_ctx: ActivityContext, (child, item): (u32, u32)) -> Result<(), ActivityError> {
    let path = std::env::var_os(LOG_ENV).ok_or_else(|| ActivityError::non_retryable("no log"))?;
    support::append_synced(Path::new(&path), &format!("{child} {item}"))?;
    Ok(())
}

/// A child of the batch: appends its items, one activity each.
const ITEMS: WorkflowDef<(u32, u32), u32> = WorkflowDef::new("items");

async fn items(ctx: WorkflowContext, (child, count): (u32, u32)) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    for item in 0..count {
        ctx.execute_activity(APPEND, (child, item), options.clone())
            .await?;
    }
    Ok(count)
}

/// Runs `children` children of `per_child` items, two at a time; returns
/// the items they report.
const BATCH: WorkflowDef<(u32, u32), u32> = WorkflowDef::new("batch");

async fn batch(
    ctx: WorkflowContext,
    (children, per_child): (u32, u32),
) -> Result<u32, WorkflowError> {
    let mut total = 0;
    for pair in (0..children).collect::<Vec<_>>().chunks(2) {
        let mut handles = Vec::new();
        for child in pair {
            let id = format!("{}/{child}", ctx.workflow_id());
            handles.push(
                ctx.start_child_workflow(
                    ITEMS,
                    id,
                    (*child, per_child),
                    ChildWorkflowOptions::new(),
                )
                .await?,
            );
        }
        for handle in handles {
            total += handle.result().await?;
        }
    }
    Ok(total)
}

fn crash_builder() -> EngineBuilder {
    builder().workflow(ITEMS, items)
}

#[tokio::test]
async fn crash_child_batch() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = crash_builder().open_db(Path::new(&db)).await.unwrap();
    let handle = match engine
        .start_workflow(BATCH, "batch", (6, 15), WorkflowOptions::default())
        .await
    {
        Ok(handle) => handle,
        Err(steadfast::ClientError::AlreadyStarted { .. }) => {
            engine.get_workflow_handle(BATCH, "batch").await.unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    child_report("started");
    let total = handle.result().await.unwrap();
    child_report(&format!("done {total}"));
}

#[tokio::test]
async fn a_kill_9_mid_child_loses_no_close_and_runs_no_child_twice() {
    let db = temp_db();
    let log = db.path.with_extension("log");
    let env = [
        (DB_ENV, db.path.as_os_str() as &OsStr),
        (LOG_ENV, log.as_os_str() as &OsStr),
    ];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_CHILDREN_SEED"));
    for _ in 0..8 {
        let mut child = spawn_crash_child("crash_child_batch", &env);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == "started")
            .await;
        let before = support::read_log(&log).len() as u64;
        let wanted = before + rng.between(1, 12);
        support::eventually(Duration::from_secs(60), || {
            let now = support::read_log(&log).len() as u64;
            let exited = child.lines().iter().any(|l| l.starts_with("done"));
            async move { (now >= wanted || exited).then_some(()) }
        })
        .await;
        child.kill();
    }
    // SAFETY: set before this test's engine runs the activity that reads it.
    unsafe { std::env::set_var(LOG_ENV, &log) };
    let engine = crash_builder().open_db(&db.path).await.unwrap();
    let handle = engine.get_workflow_handle(BATCH, "batch").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 90);
    // Every item is in the log (extra lines only for attempts a kill cut off).
    let lines: std::collections::BTreeSet<String> = support::read_log(&log).into_iter().collect();
    for child in 0..6 {
        for item in 0..15 {
            assert!(lines.contains(&format!("{child} {item}")), "{child} {item}");
        }
    }
    // One run per child, each closed, each recorded once in the parent.
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("batch/"))
        .await
        .unwrap();
    assert_eq!(page.executions.len(), 6);
    assert!(
        page.executions
            .iter()
            .all(|e| e.status == WorkflowStatus::Completed)
    );
    let history = engine.history("batch").await.unwrap();
    support::assert_history_well_formed(&history);
    let completed = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { .. }))
        .count();
    assert_eq!(completed, 6);
    engine.shutdown().await.unwrap();
}

// ----- replay, JSON, nondeterminism, continue-as-new -----

/// Continues as new once, then doubles its input: a chain the parent sees
/// as one child.
const CHAINED: WorkflowDef<(u32, bool), u32> = WorkflowDef::new("chained");

async fn chained(ctx: WorkflowContext, (n, continued): (u32, bool)) -> Result<u32, WorkflowError> {
    if !continued {
        return Err(ctx.continue_as_new(CHAINED, (n + 1, true)));
    }
    Ok(n * 2)
}

const CHAIN_PARENT: WorkflowDef<(), u32> = WorkflowDef::new("chain_parent");

async fn chain_parent(ctx: WorkflowContext, (): ()) -> Result<u32, WorkflowError> {
    let id = format!("{}/c", ctx.workflow_id());
    Ok(ctx
        .execute_child_workflow(CHAINED, id, (4, false), ChildWorkflowOptions::new())
        .await?)
}

#[tokio::test]
async fn a_child_that_continues_as_new_is_one_child_with_its_last_runs_result() {
    let db = temp_db();
    let engine = builder()
        .workflow(CHAINED, chained)
        .workflow(CHAIN_PARENT, chain_parent)
        .open_db(&db.path)
        .await
        .unwrap();
    let handle = engine
        .start_workflow(CHAIN_PARENT, "cp", (), WorkflowOptions::default())
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 10);
    let last = engine.describe("cp/c").await.unwrap();
    assert!(last.previous_run_id.is_some(), "the child continued");
    assert_eq!(last.parent.unwrap().workflow_id, "cp");
    let completed = engine
        .history("cp")
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ChildWorkflowCompleted { .. }))
        .count();
    assert_eq!(completed, 1);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn histories_with_every_child_event_replay_and_round_trip_through_json() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let p = engine
        .start_workflow(
            PARENT,
            "r-p",
            ("r-p/c".to_string(), 2),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    let o = engine
        .start_workflow(
            OUTCOME,
            "r-o",
            (true, true, None),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    let c = engine
        .start_workflow(
            COLLIDE,
            "r-c",
            "r-p/c-busy".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(p.result().await.unwrap(), 4);
    assert_eq!(o.result().await.unwrap(), "cancelled");
    assert_eq!(c.result().await.unwrap(), "started");
    let busy = engine
        .get_workflow_handle(DOUBLE, "r-p/c-busy")
        .await
        .unwrap();
    let c2 = engine
        .start_workflow(
            COLLIDE,
            "r-c2",
            "r-p/c-busy".to_string(),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    assert!(c2.result().await.unwrap().starts_with("running"));
    engine.signal("r-p/c-busy", GO, 1).await.unwrap();
    busy.result().await.unwrap();
    let replayer = steadfast::Replayer::new()
        .workflow(PARENT, parent)
        .workflow(OUTCOME, outcome)
        .workflow(COLLIDE, collide)
        .workflow(DOUBLE, double)
        .workflow(FAIL_OR_WAIT, fail_or_wait);
    let mut seen = std::collections::BTreeSet::new();
    for id in ["r-p", "r-o", "r-c2", "r-p/c", "r-o/child"] {
        let history = engine.workflow_history(id).await.unwrap();
        replayer
            .replay(&history)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let json = history.to_json().unwrap();
        let back = steadfast::WorkflowHistory::from_json(&json).unwrap();
        assert_eq!(back.events, history.events, "{id}");
        replayer.replay(&back).unwrap();
        seen.extend(kinds(&history.events));
    }
    for wanted in [
        "StartChildWorkflowInitiated",
        "ChildWorkflowStarted",
        "StartChildWorkflowFailed",
        "ChildWorkflowCompleted",
        "ChildWorkflowClosed",
        "ChildWorkflowCancelRequested",
        "WorkflowStartedAsChild",
    ] {
        assert!(seen.contains(wanted), "{wanted} in {seen:?}");
    }
    // Code that starts another child than the history records does not
    // replay: the report names the recorded start and what the code did.
    let changed = steadfast::Replayer::new().workflow(
        PARENT,
        |ctx: WorkflowContext, (id, _): (String, u32)| async move {
            Ok(ctx
                .execute_child_workflow(FAIL_OR_WAIT, id, false, ChildWorkflowOptions::new())
                .await?)
        },
    );
    let err = changed
        .replay(&engine.workflow_history("r-p").await.unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("StartChildWorkflowInitiated"), "{err}");
    assert!(err.contains("fail_or_wait"), "{err}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_parent_whose_code_starts_another_child_on_replay_is_parked_with_the_diff() {
    let db = temp_db();
    {
        let engine = open(&db.path).await;
        engine
            .start_workflow(
                PARENT,
                "nd",
                ("nd/c".to_string(), 3),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        support::eventually(Duration::from_secs(10), || async {
            let d = engine.describe("nd").await.unwrap();
            d.pending_children
                .first()
                .and_then(|c| c.run_id)
                .map(|_| ())
        })
        .await;
        engine.shutdown().await.unwrap();
    }
    let engine = Engine::builder()
        .workflow(DOUBLE, double)
        .workflow(FAIL_OR_WAIT, fail_or_wait)
        .workflow(
            PARENT,
            |ctx: WorkflowContext, (id, _): (String, u32)| async move {
                Ok(ctx
                    .execute_child_workflow(FAIL_OR_WAIT, id, false, ChildWorkflowOptions::new())
                    .await?)
            },
        )
        .open_db(&db.path)
        .await
        .unwrap();
    let reason = support::eventually(Duration::from_secs(10), || async {
        engine.describe("nd").await.unwrap().parked
    })
    .await;
    let text = reason.to_string();
    assert!(
        matches!(reason, steadfast::ParkReason::Nondeterminism(_)),
        "{text}"
    );
    assert!(text.contains("StartChildWorkflowInitiated"), "{text}");
    engine.shutdown().await.unwrap();
}

/// A child parked on nondeterminism has no actor: terminating it closes it
/// in the store directly, and the close still reaches its waiting parent
/// (in the close's own commit on PostgreSQL, then to the parent's actor).
#[tokio::test]
async fn terminating_a_parked_child_reaches_its_waiting_parent() {
    let db = temp_db();
    {
        let engine = open(&db.path).await;
        engine
            .start_workflow(
                OUTCOME,
                "tpk",
                (true, false, None),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        support::eventually(Duration::from_secs(10), || async {
            let d = engine.describe("tpk/child").await.ok()?;
            (!d.pending_timers.is_empty()).then_some(())
        })
        .await;
        engine.shutdown().await.unwrap();
    }
    // The child's code now runs an activity where its history has a timer.
    let engine = Engine::builder()
        .workflow(
            FAIL_OR_WAIT,
            |ctx: WorkflowContext, _wait: bool| async move {
                let options = ActivityOptions::start_to_close(Duration::from_secs(5));
                ctx.execute_activity(APPEND, (0, 0), options).await?;
                Ok(1)
            },
        )
        .workflow(OUTCOME, outcome)
        .activity(APPEND, append)
        .open_db(&db.path)
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        engine
            .describe("tpk/child")
            .await
            .unwrap()
            .parked
            .map(|_| ())
    })
    .await;
    engine.terminate("tpk/child", "stuck").await.unwrap();
    let handle = engine.get_workflow_handle(OUTCOME, "tpk").await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), handle.result())
        .await
        .expect("the parent heard of its child's close")
        .unwrap();
    assert!(result.starts_with("terminated"), "{result}");
    assert!(result.contains("stuck"), "{result}");
    let history = engine.workflow_history("tpk").await.unwrap().events;
    let closes = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ChildWorkflowClosed { .. }))
        .count();
    assert_eq!(closes, 1, "{:?}", kinds(&history));
    engine.shutdown().await.unwrap();
}

// ----- parent-close policies -----

/// Sleeps an hour (a cancellation ends it Cancelled); with `nest`, first
/// starts a child of its own, `<id>/g`, that does the same.
const WAITER: WorkflowDef<bool, u32> = WorkflowDef::new("waiter");

async fn waiter(ctx: WorkflowContext, nest: bool) -> Result<u32, WorkflowError> {
    if nest {
        let id = format!("{}/g", ctx.workflow_id());
        ctx.start_child_workflow(WAITER, id, false, ChildWorkflowOptions::new())
            .await?;
    }
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(1)
}

fn policy(index: u8) -> ParentClosePolicy {
    match index {
        0 => ParentClosePolicy::Terminate,
        1 => ParentClosePolicy::RequestCancel,
        _ => ParentClosePolicy::Abandon,
    }
}

/// Starts a `WAITER` child `<id>/c` with a policy, then returns at once, or
/// (with `continues`) continues as new first and returns in the next run.
const CLOSER: WorkflowDef<(u8, bool, bool), u32> = WorkflowDef::new("closer");

async fn closer(
    ctx: WorkflowContext,
    (policy_index, continues, nest): (u8, bool, bool),
) -> Result<u32, WorkflowError> {
    if policy_index == u8::MAX {
        return Ok(0);
    }
    let id = format!("{}/c", ctx.workflow_id());
    let options = ChildWorkflowOptions::new().with_parent_close_policy(policy(policy_index));
    ctx.start_child_workflow(WAITER, id, nest, options).await?;
    if nest {
        // Until the grandchild is there (the test says so).
        ctx.recv_signal(GO).await?;
    }
    if continues {
        return Err(ctx.continue_as_new(CLOSER, (u8::MAX, false, false)));
    }
    Ok(7)
}

fn policy_builder() -> EngineBuilder {
    builder().workflow(WAITER, waiter).workflow(CLOSER, closer)
}

async fn closed_child(engine: &Engine, id: &str) -> WorkflowStatus {
    support::eventually(Duration::from_secs(10), || async {
        let status = engine.describe(id).await.unwrap().status;
        status.is_closed().then_some(status)
    })
    .await
}

#[tokio::test]
async fn each_parent_close_policy_is_applied_when_the_parent_closes() {
    let db = temp_db();
    let engine = policy_builder().open_db(&db.path).await.unwrap();
    for (id, input) in [
        ("pc-terminate", (0, false, false)),
        ("pc-cancel", (1, false, false)),
        ("pc-abandon", (2, false, false)),
        ("pc-continued", (0, true, false)),
        ("pc-nested", (0, false, true)),
    ] {
        let handle = engine
            .start_workflow(CLOSER, id, input, WorkflowOptions::default())
            .await
            .unwrap();
        if input.2 {
            support::eventually(Duration::from_secs(10), || async {
                engine.describe(&format!("{id}/c/g")).await.ok().map(|_| ())
            })
            .await;
            engine.signal(id, GO, 0).await.unwrap();
        }
        handle.result().await.unwrap();
    }
    // Terminate: closed by the parent's close, in the same commit.
    let terminated = engine.describe("pc-terminate/c").await.unwrap();
    assert_eq!(terminated.status, WorkflowStatus::Terminated);
    let last = engine
        .history("pc-terminate/c")
        .await
        .unwrap()
        .pop()
        .unwrap();
    match last.kind {
        EventKind::WorkflowTerminated { reason } => {
            assert!(reason.contains("parent-close policy Terminate"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // RequestCancel: asked to cancel, and its code ends it Cancelled.
    assert_eq!(
        closed_child(&engine, "pc-cancel/c").await,
        WorkflowStatus::Cancelled
    );
    // Abandon: runs on.
    assert_eq!(
        engine.describe("pc-abandon/c").await.unwrap().status,
        WorkflowStatus::Running
    );
    // A continue-as-new closes the run: its children are dealt with too.
    assert_eq!(
        engine.describe("pc-continued/c").await.unwrap().status,
        WorkflowStatus::Terminated
    );
    // A terminated child's own children follow their policy.
    assert_eq!(
        engine.describe("pc-nested/c").await.unwrap().status,
        WorkflowStatus::Terminated
    );
    assert_eq!(
        engine.describe("pc-nested/c/g").await.unwrap().status,
        WorkflowStatus::Terminated
    );
    for id in [
        "pc-terminate/c",
        "pc-cancel/c",
        "pc-nested/c",
        "pc-nested/c/g",
    ] {
        support::assert_history_well_formed(&engine.history(id).await.unwrap());
    }
    engine.shutdown().await.unwrap();
}

const POLICY_DB_ENV: &str = "STEADFAST_CHILDREN_POLICY_DB";

#[tokio::test]
async fn crash_child_policies() {
    let Some(db) = std::env::var_os(POLICY_DB_ENV) else {
        return;
    };
    let engine = policy_builder().open_db(Path::new(&db)).await.unwrap();
    child_report("started");
    // IDs unique to this process: a parent ID is started once.
    let process = std::process::id();
    for i in 0.. {
        let id = format!("k-{process}-{i}");
        if engine
            .start_workflow(
                CLOSER,
                &id,
                (0, i % 2 == 1, false),
                WorkflowOptions::default(),
            )
            .await
            .is_ok()
        {
            child_report(&id);
        }
    }
}

#[tokio::test]
async fn after_a_kill_9_no_closed_parent_has_a_child_its_policy_should_have_closed() {
    let db = temp_db();
    let env = [(POLICY_DB_ENV, db.path.as_os_str() as &OsStr)];
    let mut rng = support::SplitMix(support::seed_from_env("STEADFAST_CHILDREN_SEED"));
    for round in 0..4 {
        let mut child = spawn_crash_child("crash_child_policies", &env);
        let wanted = 3 + round * 2 + rng.between(0, 3) as usize;
        child
            .wait_for_line(Duration::from_secs(60), |l| {
                l.rsplit('-').next().and_then(|n| n.parse::<usize>().ok()) == Some(wanted)
            })
            .await;
        child.kill();
    }
    // Opened with no code at all, nothing runs: the file is as the kill
    // left it. Every parent run that closed has its children closed (all
    // use Terminate), and so have theirs.
    let engine = Engine::builder().open_db(&db.path).await.unwrap();
    let mut token = None;
    let mut parents = 0;
    loop {
        let mut filter = ListFilter::new().with_workflow_id_prefix("k-");
        if let Some(t) = token.take() {
            filter = filter.with_next_page_token(t);
        }
        let page = engine.list(&filter).await.unwrap();
        for info in &page.executions {
            if info.workflow_id.contains('/') || !info.status.is_closed() {
                continue;
            }
            let history = engine
                .workflow_run_history(&info.workflow_id, info.run_id)
                .await
                .unwrap();
            let started = history
                .events
                .iter()
                .any(|e| matches!(e.kind, EventKind::ChildWorkflowStarted { .. }));
            if !started {
                continue;
            }
            parents += 1;
            let child = format!("{}/c", info.workflow_id);
            let d = engine.describe(&child).await.unwrap();
            assert_eq!(
                d.status,
                WorkflowStatus::Terminated,
                "{child}: parent {:?}, child {:?}",
                kinds(&history.events),
                kinds(&engine.history(&child).await.unwrap())
            );
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert!(parents > 0);
    engine.shutdown().await.unwrap();
}
