//! Promise: the metrics a user relies on count what happened. Workflows
//! that complete, fail, are cancelled, panic (parked) and wait past the
//! cache run under `metrics-util`'s debugging recorder (the one recorder
//! of this test process); the counters and histograms are then read once.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, ResultOrParked,
    RetryPolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, metrics,
};

const WORK: WorkflowDef<u32, u32> = WorkflowDef::new("Work");
const BROKEN: WorkflowDef<(), ()> = WorkflowDef::new("Broken");
const WAITER: WorkflowDef<(), String> = WorkflowDef::new("Waiter");
const FLAKY: ActivityDef<u32, u32> = ActivityDef::new("flaky");
const GO: SignalDef<String> = SignalDef::new("go");

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails its first call, then doubles.
async fn flaky(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    if FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(ActivityError::retryable("first call fails"));
    }
    Ok(n * 2)
}

/// 0 fails; otherwise sleeps 50 ms, then runs `flaky`.
async fn work(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    if n == 0 {
        return Err(WorkflowError::new("zero"));
    }
    ctx.sleep(Duration::from_millis(50)).await?;
    let retry = RetryPolicy::default().with_initial_interval(Duration::from_millis(10));
    let options = ActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(retry);
    Ok(ctx.execute_activity(FLAKY, n, options).await?)
}

async fn waiter(ctx: WorkflowContext, (): ()) -> Result<String, WorkflowError> {
    Ok(ctx.recv_signal(GO).await?)
}

/// What was recorded so far: a snapshot resets counters and empties
/// histograms, so each is added to the totals of the ones before.
#[derive(Default)]
struct Totals(HashMap<String, DebugValue>);

impl Totals {
    /// Adds what was recorded since the last read, by name and labels
    /// (`name{k=v,...}`, labels sorted).
    fn read(&mut self, recorder: &metrics_util::debugging::Snapshotter) {
        for (key, _, _, value) in recorder.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            match (self.0.get_mut(&name), value) {
                (Some(DebugValue::Counter(n)), DebugValue::Counter(more)) => *n += more,
                (Some(DebugValue::Histogram(v)), DebugValue::Histogram(more)) => v.extend(more),
                (_, value) => {
                    self.0.insert(name, value);
                }
            }
        }
    }
}

fn counter(values: &HashMap<String, DebugValue>, key: &str) -> u64 {
    match values.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?}; recorded: {:?}", values.keys()),
    }
}

fn samples(values: &HashMap<String, DebugValue>, key: &str) -> Vec<f64> {
    match values.get(key) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.into_inner()).collect(),
        other => panic!("{key}: {other:?}; recorded: {:?}", values.keys()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_histograms_count_what_the_workflows_did() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    metrics::describe();

    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(WORK, work)
        .workflow(BROKEN, |_ctx: WorkflowContext, ()| async move {
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<(), WorkflowError>(())
        })
        .workflow(WAITER, waiter)
        .activity(FLAKY, flaky)
        .max_cached_runs(1)
        .open(&db.path)
        .await
        .unwrap();
    let options = WorkflowOptions::new;

    let done = engine
        .start_workflow(WORK, "work-ok", 21, options())
        .await
        .unwrap();
    assert_eq!(done.result().await.unwrap(), 42);
    let failed = engine
        .start_workflow(WORK, "work-failed", 0, options())
        .await
        .unwrap();
    assert!(failed.result().await.is_err());
    let cancelled = engine
        .start_workflow(WAITER, "waiter-cancelled", (), options())
        .await
        .unwrap();
    let broken = engine
        .start_workflow(BROKEN, "broken", (), options())
        .await
        .unwrap();
    assert!(matches!(
        broken.result_or_parked().await.unwrap(),
        ResultOrParked::Parked(_)
    ));
    // A second idle waiter past max_cached_runs(1): one of them leaves
    // memory, and the signal to it loads it again.
    let later = engine
        .start_workflow(WAITER, "waiter-signalled", (), options())
        .await
        .unwrap();
    let mut totals = Totals::default();
    let evicted = "steadfast_sticky_cache_total_forced_eviction{}";
    for _ in 0..2000 {
        totals.read(&snapshotter);
        if totals.0.contains_key(evicted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(totals.0.contains_key(evicted), "no run was evicted");
    engine.cancel("waiter-cancelled").await.unwrap();
    assert!(cancelled.result().await.is_err());
    engine
        .signal("waiter-signalled", GO, "now".to_string())
        .await
        .unwrap();
    assert_eq!(later.result().await.unwrap(), "now");
    engine.shutdown().await.unwrap();

    totals.read(&snapshotter);
    let values = totals.0;
    let by = |name: &str, workflow_type: &str| {
        format!("steadfast_{name}{{task_queue=default,workflow_type={workflow_type}}}")
    };
    assert_eq!(counter(&values, &by("workflow_started", "Work")), 2);
    assert_eq!(counter(&values, &by("workflow_started", "Waiter")), 2);
    assert_eq!(counter(&values, &by("workflow_started", "Broken")), 1);
    assert_eq!(counter(&values, &by("workflow_completed", "Work")), 1);
    assert_eq!(counter(&values, &by("workflow_completed", "Waiter")), 1);
    assert_eq!(counter(&values, &by("workflow_failed", "Work")), 1);
    assert_eq!(counter(&values, &by("workflow_canceled", "Waiter")), 1);
    assert_eq!(
        counter(&values, "steadfast_workflow_parked{reason=panic}"),
        1
    );

    let activity =
        |name: &str| format!("steadfast_{name}{{activity_type=flaky,task_queue=default}}");
    // Two attempts: the first failed, the retry succeeded.
    assert_eq!(counter(&values, &activity("activity_execution_failed")), 1);
    assert_eq!(
        samples(&values, &activity("activity_execution_latency")).len(),
        2
    );
    let waits = samples(&values, &activity("activity_schedule_to_start_latency"));
    assert_eq!(waits.len(), 2);
    assert!(waits.iter().all(|w| *w >= 0.0), "{waits:?}");

    let lateness = samples(&values, "steadfast_timer_lateness{}");
    assert_eq!(lateness.len(), 1, "one durable timer fired: {lateness:?}");

    let batches = samples(&values, "steadfast_store_commit_batch_size{}");
    let commits = samples(&values, "steadfast_store_commit_latency{}");
    assert_eq!(batches.len(), commits.len());
    assert!(!batches.is_empty());
    assert!(batches.iter().all(|b| *b >= 1.0), "{batches:?}");
    assert!(commits.iter().all(|c| *c > 0.0), "{commits:?}");

    assert!(counter(&values, "steadfast_sticky_cache_hit{}") > 0);
    assert!(counter(&values, "steadfast_sticky_cache_total_forced_eviction{}") >= 1);
    assert!(counter(&values, "steadfast_sticky_cache_miss{}") >= 1);
}
