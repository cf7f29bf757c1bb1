//! Promise: PostgreSQL restarted abruptly (`pg_ctl -m immediate`, as after
//! a crash of the server) in the middle of the work loses nothing
//! acknowledged and strands no run: one engine with many workflows in
//! flight (activities, durable timers, waits for signals) keeps running
//! while its server goes away and comes back; calls made meanwhile fail
//! with a typed error and succeed when the caller retries them; at the end
//! every acknowledged start has completed, every signal is in its run's
//! history exactly once, no run is left running, and no completed activity
//! ran again (the last logged attempt of each is the one history completed).
//!
//! The test restarts its binary's own cluster, so this file holds only this
//! test (with `STEADFAST_PG_URL` naming a server it did not start, it
//! returns at once).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine,
    EngineBuilder, EventKind, ListFilter, SignalDef, SignalOptions, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowIdReusePolicy, WorkflowOptions, WorkflowStatus,
};
use support::{append_synced, assert_history_well_formed, read_log};

const WORKFLOWS: usize = 120;
/// Workflows started before the restart; the rest are started while the
/// server is down or coming back.
const STARTED_BEFORE: usize = 80;

const STEP: ActivityDef<String, String> = ActivityDef::new("step");
const GO: SignalDef<String> = SignalDef::new("go");
/// Two activities, a durable timer between them, then a wait for `go`
/// and a third activity on its value.
const FLOW: WorkflowDef<String, String> = WorkflowDef::new("RestartFlow");

async fn flow(ctx: WorkflowContext, id: String) -> Result<String, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(30));
    let a = ctx
        .execute_activity(STEP, format!("{id} a"), options.clone())
        .await?;
    ctx.sleep(Duration::from_millis(300)).await?;
    let b = ctx
        .execute_activity(STEP, format!("{id} b"), options.clone())
        .await?;
    let go = ctx.recv_signal(GO).await?;
    let c = ctx
        .execute_activity(STEP, format!("{id} c {go}"), options)
        .await?;
    Ok(format!("{a}/{b}/{c}"))
}

/// Logs `INPUT attempt=N` durably, then works 50–150 ms.
async fn step(
    log: Arc<PathBuf>,
    ctx: ActivityContext,
    input: String,
) -> Result<String, ActivityError> {
    let line = format!("{input} attempt={}", ctx.attempt());
    let work = Duration::from_millis(50 + (input.len() as u64 * 37) % 100);
    tokio::task::spawn_blocking(move || append_synced(&log, &line))
        .await
        .map_err(|e| ActivityError::retryable(e.to_string()))??;
    tokio::time::sleep(work).await;
    Ok(input)
}

fn builder(schema: &str, log: &Path) -> EngineBuilder {
    let log = Arc::new(log.to_path_buf());
    Engine::builder()
        .workflow(FLOW, flow)
        .activity(STEP, move |ctx, input| step(log.clone(), ctx, input))
        .postgres_schema(schema)
}

fn workflow_id(i: usize) -> String {
    format!("flow-{i}")
}

/// Starts workflow `i` until the start is acknowledged (or found done: a
/// start that committed although its answer was lost is refused as a
/// duplicate). Returns how many calls failed first.
async fn start_until_acknowledged(engine: &Engine, i: usize) -> usize {
    let options =
        WorkflowOptions::new().with_id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate);
    for failed in 0.. {
        match engine
            .start_workflow(FLOW, workflow_id(i), workflow_id(i), options.clone())
            .await
        {
            Ok(_)
            | Err(ClientError::AlreadyStarted { .. } | ClientError::IdReuseRejected { .. }) => {
                return failed;
            }
            Err(ClientError::Storage(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("start {}: {e}", workflow_id(i)),
        }
    }
    unreachable!()
}

/// Signals workflow `i` with its own request ID until acknowledged.
async fn signal_until_acknowledged(engine: &Engine, i: usize) -> usize {
    let options = SignalOptions::new().with_request_id(format!("go-{i}"));
    for failed in 0.. {
        match engine
            .signal_with_options(&workflow_id(i), GO, format!("go{i}"), options.clone())
            .await
        {
            Ok(()) => return failed,
            Err(ClientError::Storage(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("signal {}: {e}", workflow_id(i)),
        }
    }
    unreachable!()
}

/// Waits for workflow `i`'s result, reading again while the server is away.
async fn result_of(engine: &Engine, i: usize) -> String {
    loop {
        let handle = match engine.get_workflow_handle(FLOW, workflow_id(i)).await {
            Ok(handle) => handle,
            Err(ClientError::Storage(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("the handle of {}: {e}", workflow_id(i)),
        };
        match handle.result().await {
            Ok(result) => return result,
            Err(steadfast::ResultError::Client(ClientError::Storage(_))) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the result of {}: {e}", workflow_id(i)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_restart_of_postgres_loses_nothing_and_strands_no_run() {
    let Some(url) = support::postgres::url() else {
        return;
    };
    if !support::postgres::has_own_cluster() {
        eprintln!(
            "the server is not this binary's own ({}): not restarted",
            support::postgres::URL_VAR
        );
        return;
    }
    let schema = support::postgres::fresh_schema("restart");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let log = dir.path().join("steps.log");
    let engine = Arc::new(builder(&schema, &log).postgres(&url).await.expect("open"));

    for i in 0..STARTED_BEFORE {
        assert_eq!(
            start_until_acknowledged(&engine, i).await,
            0,
            "the server is up"
        );
    }
    // Half of them get their signal before the restart.
    for i in (0..STARTED_BEFORE).step_by(2) {
        assert_eq!(
            signal_until_acknowledged(&engine, i).await,
            0,
            "the server is up"
        );
    }
    // Work in flight: some runs are past their first activity.
    support::eventually(Duration::from_secs(30), || async {
        (read_log(&log).len() >= STARTED_BEFORE / 2).then_some(())
    })
    .await;

    // Starts and signals keep coming while the server goes down and back.
    let callers = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut failed = 0;
            for i in STARTED_BEFORE..WORKFLOWS {
                failed += start_until_acknowledged(&engine, i).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for i in (1..WORKFLOWS)
                .step_by(2)
                .chain((STARTED_BEFORE..WORKFLOWS).step_by(2))
            {
                failed += signal_until_acknowledged(&engine, i).await;
            }
            failed
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logged_before = read_log(&log).len();
    tokio::task::spawn_blocking(|| {
        assert!(support::postgres::stop_immediate());
        std::thread::sleep(Duration::from_millis(1500));
        support::postgres::start_again();
    })
    .await
    .expect("the restart");
    eprintln!("restarted the server; {logged_before} steps logged before");

    let failed_calls = callers.await.expect("the callers");
    eprintln!("{failed_calls} calls failed while the server was away and were retried");
    let mut results = BTreeMap::new();
    for i in 0..WORKFLOWS {
        let result = tokio::time::timeout(Duration::from_secs(60), result_of(&engine, i))
            .await
            .unwrap_or_else(|_| panic!("{} did not finish within 60 s", workflow_id(i)));
        results.insert(i, result);
    }
    for (i, result) in &results {
        let id = workflow_id(*i);
        assert_eq!(*result, format!("{id} a/{id} b/{id} c go{i}"));
    }
    let running = engine
        .list(&ListFilter::new().with_status(WorkflowStatus::Running))
        .await
        .expect("list")
        .executions;
    assert!(running.is_empty(), "no run is stranded: {running:?}");
    check_histories(&engine, &log).await;
    Arc::into_inner(engine)
        .expect("the only engine handle")
        .shutdown()
        .await
        .expect("shut down");
}

/// Every run: one run per workflow ID, its history well formed, its signal
/// in it once, and the log agreeing with it (no completed activity ran
/// again).
async fn check_histories(engine: &Engine, log: &Path) {
    let mut logged: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for line in read_log(log) {
        let (input, attempt) = line.rsplit_once(" attempt=").expect("a log line");
        logged
            .entry(input.to_string())
            .or_default()
            .push(attempt.parse().expect("an attempt number"));
    }
    let runs = engine
        .list(
            &ListFilter::new()
                .with_workflow_type("RestartFlow")
                .with_page_size(1000),
        )
        .await
        .expect("list")
        .executions;
    let ids: BTreeSet<&str> = runs.iter().map(|r| r.workflow_id.as_str()).collect();
    assert_eq!(runs.len(), WORKFLOWS, "one run per workflow: {runs:?}");
    assert_eq!(ids.len(), WORKFLOWS);
    for i in 0..WORKFLOWS {
        let id = workflow_id(i);
        let history = engine.history(&id).await.expect("history");
        assert_history_well_formed(&history);
        let signals = history
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::WorkflowSignaled { .. }
                        | EventKind::WorkflowSignaledWithOptions { .. }
                )
            })
            .count();
        assert_eq!(signals, 1, "{id}: the signal is in its history once");
        let mut inputs = BTreeMap::new();
        for event in &history {
            match &event.kind {
                EventKind::ActivityScheduled { seq, input, .. } => {
                    let input: String = input.decode().expect("the activity's input");
                    inputs.insert(*seq, input);
                }
                EventKind::ActivityCompleted { seq, attempt, .. } => {
                    let input = &inputs[seq];
                    let attempts = &logged[input];
                    assert_eq!(
                        attempts.last(),
                        Some(attempt),
                        "{input}: the completed attempt is the last one that ran: {attempts:?}"
                    );
                    assert!(
                        attempts.windows(2).all(|w| w[0] < w[1]),
                        "{input}: attempts ran once each: {attempts:?}"
                    );
                }
                _ => {}
            }
        }
    }
}
