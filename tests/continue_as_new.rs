//! Promise: `ctx.continue_as_new` closes a run as `ContinuedAsNew` and
//! starts the next run of the same workflow ID in the same commit. The
//! handle's result, `get_workflow_handle` and `describe` follow the chain;
//! `list` shows every run; signals unread at the switch, or sent during it,
//! reach the next run exactly once and in order; a kill -9 mid-chain loses
//! and duplicates no run; the size hints tell the code when to continue.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use steadfast::{
    ContinueAsNewOptions, Engine, EngineBuilder, EventKind, ListFilter, SearchAttributes,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

/// Counts to `target`, one timer step at a time, continuing as new every
/// five steps: (count, target) in, the final count out.
const COUNTER: WorkflowDef<(u64, u64), u64> = WorkflowDef::new("counter");

async fn counter(
    ctx: WorkflowContext,
    (mut count, target): (u64, u64),
) -> Result<u64, WorkflowError> {
    for _ in 0..5 {
        if count == target {
            return Ok(count);
        }
        ctx.sleep(Duration::from_millis(1)).await?;
        count += 1;
    }
    Err(ctx.continue_as_new(COUNTER, (count, target)))
}

/// Collects signals: reads `per_run` of them, then continues as new with
/// what it read so far, until `total` are read. Returns them in order.
const COLLECTOR: WorkflowDef<(Vec<u64>, u64, u64), Vec<u64>> = WorkflowDef::new("collector");
const ITEM: SignalDef<u64> = SignalDef::new("item");

async fn collector(
    ctx: WorkflowContext,
    (mut seen, per_run, total): (Vec<u64>, u64, u64),
) -> Result<Vec<u64>, WorkflowError> {
    for _ in 0..per_run {
        if seen.len() as u64 == total {
            return Ok(seen);
        }
        seen.push(ctx.recv_signal(ITEM).await?);
    }
    if seen.len() as u64 == total {
        return Ok(seen);
    }
    Err(ctx.continue_as_new(COLLECTOR, (seen, per_run, total)))
}

/// Continues once, as soon as it starts, with its input plus one,
/// reporting the hints it saw; the second run returns them.
const HINTS: WorkflowDef<u32, (u64, u64, bool)> = WorkflowDef::new("hints");

async fn hints(ctx: WorkflowContext, round: u32) -> Result<(u64, u64, bool), WorkflowError> {
    if round == 0 {
        return Err(ctx.continue_as_new_with_options(
            HINTS,
            1,
            ContinueAsNewOptions::new()
                .with_search_attributes(SearchAttributes::new().with("Round", 1i64)),
        ));
    }
    // Grow the history until the engine suggests continuing.
    while !ctx.continue_as_new_suggested() {
        ctx.sleep(Duration::from_millis(1)).await?;
    }
    Ok((
        ctx.history_length(),
        ctx.history_bytes(),
        ctx.continue_as_new_suggested(),
    ))
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(COUNTER, counter)
        .workflow(COLLECTOR, collector)
        .workflow(HINTS, hints)
}

async fn open(path: &Path) -> Engine {
    builder().open_db(path).await.expect("open")
}

#[tokio::test]
async fn a_chain_of_runs_ends_in_the_last_runs_result() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(COUNTER, "count-1", (0, 18), WorkflowOptions::default())
        .await
        .unwrap();
    let first = handle.run_id();
    assert_eq!(handle.result().await.unwrap(), 18);

    // Four runs: 0..5, 5..10, 10..15, 15..18.
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("count-1"))
        .await
        .unwrap();
    let mut statuses: Vec<WorkflowStatus> = page.executions.iter().map(|e| e.status).collect();
    statuses.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        statuses,
        vec![
            WorkflowStatus::Completed,
            WorkflowStatus::ContinuedAsNew,
            WorkflowStatus::ContinuedAsNew,
            WorkflowStatus::ContinuedAsNew
        ]
    );

    // The index knows the new status.
    let continued = engine
        .list(
            &ListFilter::new()
                .with_workflow_id_prefix("count-1")
                .with_status(WorkflowStatus::ContinuedAsNew),
        )
        .await
        .unwrap();
    assert_eq!(continued.executions.len(), 3);

    // describe names both neighbours; following next from the first run
    // walks the chain to the last, which get_workflow_handle names too.
    let mut run = first;
    let mut previous = None;
    let mut runs = vec![first];
    loop {
        let description = engine.describe_run("count-1", run).await.unwrap();
        assert_eq!(description.previous_run_id, previous);
        match description.next_run_id {
            Some(next) => {
                assert_eq!(description.status, WorkflowStatus::ContinuedAsNew);
                previous = Some(run);
                run = next;
                runs.push(run);
            }
            None => {
                assert_eq!(description.status, WorkflowStatus::Completed);
                break;
            }
        }
    }
    assert_eq!(runs.len(), 4);
    let latest = engine
        .get_workflow_handle(COUNTER, "count-1")
        .await
        .unwrap();
    assert_eq!(latest.run_id(), run);
    assert_eq!(latest.result().await.unwrap(), 18);
    let described = engine.describe("count-1").await.unwrap();
    assert_eq!(described.run_id, run);
    assert_eq!(described.previous_run_id, Some(runs[2]));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_sent_during_many_switches_arrive_once_and_in_order() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let total = 200u64;
    let handle = engine
        .start_workflow(
            COLLECTOR,
            "collect-1",
            (Vec::new(), 3, total),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    for i in 0..total {
        engine.signal("collect-1", ITEM, i).await.unwrap();
    }
    let seen = handle.result().await.unwrap();
    assert_eq!(seen, (0..total).collect::<Vec<_>>());
    // Many runs, each closed with its successor named.
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("collect-1"))
        .await
        .unwrap();
    assert!(
        page.executions.len() >= (total / 3) as usize,
        "{} runs",
        page.executions.len()
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_during_switches_lose_and_repeat_nothing() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let (senders, each) = (4u64, 40u64);
    let handle = engine
        .start_workflow(
            COLLECTOR,
            "collect-4",
            (Vec::new(), 2, senders * each),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    engine
                        .signal("collect-4", ITEM, sender * 1000 + i)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seen = handle.result().await.unwrap();
    // Each value once; each sender's in the order it sent them.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len() as u64, senders * each, "{seen:?}");
    for sender in 0..senders {
        let mine: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|v| v / 1000 == sender)
            .collect();
        assert_eq!(
            mine,
            (0..each).map(|i| sender * 1000 + i).collect::<Vec<_>>()
        );
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn unread_signals_move_to_the_next_run() {
    let db = temp_db();
    let engine = open(&db.path).await;
    // The first run reads one signal per run; five sent before it starts
    // reading (with the start) are moved along the chain unread.
    let handle = engine
        .start_workflow(
            COLLECTOR,
            "collect-2",
            (Vec::new(), 1, 5),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    let sends: Vec<_> = (0..5u64)
        .map(|i| {
            let engine = engine.clone();
            async move { engine.signal("collect-2", ITEM, i).await }
        })
        .collect();
    // Sequential sends keep their order.
    for send in sends {
        send.await.unwrap();
    }
    assert_eq!(handle.result().await.unwrap(), vec![0, 1, 2, 3, 4]);
    // Somewhere in the chain a close carried signals, and each later run's
    // history starts with WorkflowStarted then WorkflowContinuedFrom.
    let history = engine.history("collect-2").await.unwrap();
    assert!(matches!(history[0].kind, EventKind::WorkflowStarted { .. }));
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowContinuedFrom { .. }
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_recorded_after_the_point_where_a_replayed_run_continues_move_with_it() {
    let db = temp_db();
    // A first version of the collector that reads nothing: the signals
    // are recorded in its history, unread.
    const NEVER: SignalDef<()> = SignalDef::new("never");
    let engine = Engine::builder()
        .workflow(
            COLLECTOR,
            |ctx: WorkflowContext, _: (Vec<u64>, u64, u64)| async move {
                ctx.recv_signal(NEVER).await?;
                Ok(Vec::new())
            },
        )
        .open_db(&db.path)
        .await
        .unwrap();
    engine
        .start_workflow(
            COLLECTOR,
            "collect-late",
            (Vec::new(), 1, 3),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    for i in 0..3u64 {
        engine.signal("collect-late", ITEM, i).await.unwrap();
    }
    engine.shutdown().await.unwrap();
    // Replayed by the collector, the code continues as new at the first
    // signal (a new command, past the recorded ones): the two
    // after it in the history are not this run's to read, and move to the
    // next run with the close (none lost).
    let engine = open(&db.path).await;
    let handle = engine
        .get_workflow_handle(COLLECTOR, "collect-late")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), vec![0, 1, 2]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_size_hints_suggest_continuing_and_attributes_carry_over() {
    let db = temp_db();
    let engine = builder()
        .suggest_continue_as_new_at(20, u64::MAX)
        .open_db(&db.path)
        .await
        .unwrap();
    let handle = engine
        .start_workflow(
            HINTS,
            "hints-1",
            0,
            WorkflowOptions::default().with_memo(serde_json::json!({"note": "kept"})),
        )
        .await
        .unwrap();
    let (length, bytes, suggested) = handle.result().await.unwrap();
    assert!(suggested);
    assert!(length >= 20, "{length}");
    assert!(bytes > 0);
    let description = engine.describe("hints-1").await.unwrap();
    let memo: serde_json::Value = description.memo.unwrap().decode().unwrap();
    assert_eq!(memo, serde_json::json!({"note": "kept"}));
    assert_eq!(
        description.search_attributes,
        SearchAttributes::new().with("Round", 1i64)
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_continued_chain_replays_after_a_restart() {
    let db = temp_db();
    {
        let engine = open(&db.path).await;
        engine
            .start_workflow(
                COLLECTOR,
                "collect-3",
                (Vec::new(), 2, 5),
                WorkflowOptions::default(),
            )
            .await
            .unwrap();
        for i in 0..3u64 {
            engine.signal("collect-3", ITEM, i).await.unwrap();
        }
        engine.shutdown().await.unwrap();
    }
    // The second run waits on its second signal: it replays its history
    // (WorkflowContinuedFrom, a read signal) and finishes the chain.
    let engine = open(&db.path).await;
    for i in 3..5u64 {
        engine.signal("collect-3", ITEM, i).await.unwrap();
    }
    let handle = engine
        .get_workflow_handle(COLLECTOR, "collect-3")
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), vec![0, 1, 2, 3, 4]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_chain_removes_every_run() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let handle = engine
        .start_workflow(COUNTER, "count-2", (0, 7), WorkflowOptions::default())
        .await
        .unwrap();
    assert_eq!(handle.result().await.unwrap(), 7);
    engine.delete("count-2").await.unwrap();
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("count-2"))
        .await
        .unwrap();
    assert!(page.executions.is_empty());
    engine.shutdown().await.unwrap();
}

/// Sleeps a little and continues as new, forever.
const FOREVER: WorkflowDef<u64, ()> = WorkflowDef::new("forever");

async fn forever(ctx: WorkflowContext, round: u64) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_millis(5)).await?;
    Err(ctx.continue_as_new(FOREVER, round + 1))
}

#[tokio::test]
async fn the_execution_timeout_spans_the_chain() {
    let db = temp_db();
    let engine = builder()
        .workflow(FOREVER, forever)
        .open_db(&db.path)
        .await
        .unwrap();
    let options = WorkflowOptions::default()
        .with_run_timeout(Duration::from_secs(60))
        .with_execution_timeout(Duration::from_millis(300));
    let handle = engine
        .start_workflow(FOREVER, "forever-1", 0, options)
        .await
        .unwrap();
    match handle.result().await {
        Err(steadfast::ResultError::TimedOut {
            timeout, run_id, ..
        }) => {
            assert_eq!(timeout, "WorkflowExecutionTimeout");
            assert_ne!(
                run_id,
                handle.run_id(),
                "a later run of the chain timed out"
            );
        }
        other => panic!("expected the chain to time out, got {other:?}"),
    }
    engine.shutdown().await.unwrap();
}

/// Never continues: 30 timer steps.
const LONG: WorkflowDef<(), ()> = WorkflowDef::new("long");

async fn long(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    for _ in 0..30 {
        ctx.sleep(Duration::from_millis(1)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_run_past_the_warning_size_is_named_in_a_warning() {
    // The single-threaded test runtime runs the run's actor on this thread,
    // so this thread's subscriber sees its warning.
    let captured = support::CapturedWarnings::start();
    let db = temp_db();
    let engine = builder()
        .workflow(LONG, long)
        .warn_history_events(40)
        .open_db(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(LONG, "long-1", (), WorkflowOptions::default())
        .await
        .unwrap();
    run.result().await.unwrap();
    engine.shutdown().await.unwrap();
    let log = captured.text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("without continuing as new"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning, once:\n{log}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("long-1"),
        "{}",
        warnings[0]
    );
}

#[tokio::test]
async fn retention_sweeps_closed_runs_of_a_chain_and_keeps_its_open_run() {
    let day = Duration::from_secs(24 * 3600);
    let env = steadfast::testing::TestEngine::open(builder().retention(day * 3))
        .await
        .unwrap();
    let handle = env
        .start_workflow(
            COLLECTOR,
            "collect-5",
            (Vec::new(), 1, 3),
            WorkflowOptions::default(),
        )
        .await
        .unwrap();
    for i in 0..2u64 {
        env.signal("collect-5", ITEM, i).await.unwrap();
    }
    // Two runs closed as continued, the third waits for its signal.
    let current = support::eventually(Duration::from_secs(10), || async {
        let d = env.describe("collect-5").await.unwrap();
        d.previous_run_id.is_some().then_some(d)
    })
    .await;
    let swept = current.previous_run_id.unwrap();
    env.sleep(day * 4).await;
    // The closed runs go; the open one, and the workflow ID, stay.
    support::eventually(Duration::from_secs(20), || async {
        matches!(
            env.describe_run("collect-5", swept).await,
            Err(steadfast::ClientError::NotFound { .. })
        )
        .then_some(())
    })
    .await;
    let latest = env.describe("collect-5").await.unwrap();
    assert_eq!(latest.status, WorkflowStatus::Running);
    env.signal("collect-5", ITEM, 2).await.unwrap();
    let last = env
        .get_workflow_handle(COLLECTOR, "collect-5")
        .await
        .unwrap();
    assert_eq!(last.result().await.unwrap(), vec![0, 1, 2]);
    // A handle on a swept run of the chain cannot follow it any more.
    assert!(handle.result().await.is_err());
    env.shutdown().await.unwrap();
}

/// The chain child: the file to open.
const DB_ENV: &str = "STEADFAST_CAN_DB";

/// Runs a long counter chain; prints each run ID it sees become current.
#[tokio::test]
async fn child_chain() {
    let Some(db) = std::env::var_os(DB_ENV) else {
        return;
    };
    let engine = open(Path::new(&db)).await;
    if engine.describe("chain").await.is_err() {
        engine
            .start_workflow(COUNTER, "chain", (0, 400), WorkflowOptions::default())
            .await
            .unwrap();
    }
    child_report("started");
    loop {
        let description = engine.describe("chain").await.unwrap();
        child_report(&format!("run {}", description.run_id));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_kill_mid_chain_loses_and_duplicates_no_run() {
    let db = temp_db();
    let env = [(DB_ENV, db.path.as_os_str() as &OsStr)];
    for round in 0..3 {
        let mut child = spawn_crash_child("child_chain", &env);
        child
            .wait_for_line(Duration::from_secs(30), |l| l == "started")
            .await;
        // Let it switch runs a few times, then kill it mid-chain.
        let wanted = 3 + round;
        support::eventually(Duration::from_secs(30), || {
            let runs: BTreeSet<String> = child
                .lines()
                .into_iter()
                .filter(|l| l.starts_with("run "))
                .collect();
            async move { (runs.len() > wanted).then_some(()) }
        })
        .await;
        child.kill();
    }
    let engine = open(&db.path).await;
    let handle = engine.get_workflow_handle(COUNTER, "chain").await.unwrap();
    assert_eq!(handle.result().await.unwrap(), 400);
    // Exactly one chain: each run but the first names its predecessor, each
    // but the last its successor, and the links agree.
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let mut filter = ListFilter::new().with_workflow_id_prefix("chain");
        if let Some(t) = token.take() {
            filter = filter.with_next_page_token(t);
        }
        let page = engine.list(&filter).await.unwrap();
        all.extend(page.executions);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(
        all.len(),
        81,
        "400 steps at 5 per run, then a run that returns"
    );
    let open_runs = all.iter().filter(|e| !e.status.is_closed()).count();
    assert_eq!(open_runs, 0);
    let mut heads = 0;
    for info in &all {
        let history = engine
            .workflow_run_history("chain", info.run_id)
            .await
            .unwrap();
        support::assert_history_well_formed(&history.events);
        let d = engine.describe_run("chain", info.run_id).await.unwrap();
        match d.previous_run_id {
            None => heads += 1,
            Some(prev) => {
                let p = engine.describe_run("chain", prev).await.unwrap();
                assert_eq!(p.next_run_id, Some(info.run_id));
            }
        }
    }
    assert_eq!(heads, 1);
    engine.shutdown().await.unwrap();
}
