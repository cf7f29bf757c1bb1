//! Promise: the metrics a user relies on count what happened. Workflows
//! that complete, fail, are cancelled, panic (parked) and wait past the
//! cache run under `metrics-util`'s debugging recorder (the one recorder
//! of this test process); the counters and histograms are then read once.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::metrics::{Key, KeyName, Metadata, SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ChildWorkflowOptions, Engine,
    ResultOrParked, RetryPolicy, SignalDef, Worker, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, metrics,
};

const WORK: WorkflowDef<u32, u32> = WorkflowDef::new("Work");
const BROKEN: WorkflowDef<(), ()> = WorkflowDef::new("Broken");
const WAITER: WorkflowDef<(), String> = WorkflowDef::new("Waiter");
const FLAKY: ActivityDef<u32, u32> = ActivityDef::new("flaky");
const GO: SignalDef<String> = SignalDef::new("go");

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

const HOLDER: WorkflowDef<(), ()> = WorkflowDef::new("Holder");
const GATE: ActivityDef<(), ()> = ActivityDef::new("gate");
const PARENT: WorkflowDef<(), ()> = WorkflowDef::new("Parent");
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

/// Runs until the test opens the gate.
async fn gate(_ctx: ActivityContext, (): ()) -> Result<(), ActivityError> {
    while !GATE_OPEN.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn holder(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(60));
    Ok(ctx.execute_activity(GATE, (), options).await?)
}

/// Starts a waiter as its child and returns: its close terminates the
/// child (the default parent-close policy) in the parent's commit.
async fn parent(ctx: WorkflowContext, (): ()) -> Result<(), WorkflowError> {
    ctx.start_child_workflow(WAITER, "orphan", (), ChildWorkflowOptions::new())
        .await?;
    Ok(())
}

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
            let name = key_name(key.key());
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

/// Gauges as last set (the debugging recorder's snapshot sets each back
/// to zero, so a gauge set once and read twice would read 0 the second
/// time): `name{k=v,...}`, labels sorted, to its value's bits.
type Gauges = Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>;

/// The debugging recorder, with gauges kept as last set.
struct Recorder {
    inner: DebuggingRecorder,
    gauges: Gauges,
}

fn key_name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl ::metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.inner.describe_counter(key, unit, text)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.inner.describe_gauge(key, unit, text)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        self.inner.describe_histogram(key, unit, text)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> ::metrics::Counter {
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> ::metrics::Gauge {
        let mut gauges = self.gauges.lock().unwrap();
        let value = gauges.entry(key_name(key)).or_default().clone();
        ::metrics::Gauge::from_arc(value)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> ::metrics::Histogram {
        self.inner.register_histogram(key, metadata)
    }
}

/// Waits (30 s at most) until the gauge `key` is `value`.
async fn settle(gauges: &Gauges, key: &str, value: f64) {
    settle_to(gauges, key, &format!("{value}"), |v| v == value).await;
}

/// Waits (30 s at most) until the gauge `key` is set and passes `check`.
async fn settle_to(gauges: &Gauges, key: &str, what: &str, check: impl Fn(f64) -> bool) {
    let read = || {
        gauges
            .lock()
            .unwrap()
            .get(key)
            .map(|v| f64::from_bits(v.load(Ordering::SeqCst)))
    };
    for _ in 0..6000 {
        if read().is_some_and(&check) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{key} never became {what}: {:?}", read());
}

fn samples(values: &HashMap<String, DebugValue>, key: &str) -> Vec<f64> {
    match values.get(key) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.into_inner()).collect(),
        other => panic!("{key}: {other:?}; recorded: {:?}", values.keys()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_histograms_count_what_the_workflows_did() {
    let inner = DebuggingRecorder::new();
    let snapshotter = inner.snapshotter();
    let gauges = Gauges::default();
    ::metrics::set_global_recorder(Recorder {
        inner,
        gauges: gauges.clone(),
    })
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
        .workflow(PARENT, parent)
        .activity(FLAKY, flaky)
        .worker(
            Worker::new("limited")
                .workflow(HOLDER, holder)
                .activity(GATE, gate)
                .max_concurrent_activities(2),
        )
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

    // Gauges: one of the limited queue's two slots held while its attempt
    // runs, both free after.
    let held = engine
        .start_workflow(
            HOLDER,
            "holder",
            (),
            WorkflowOptions::new().with_task_queue("limited"),
        )
        .await
        .unwrap();
    let slots = |name: &str| {
        format!(
            "steadfast_worker_task_slots_{name}{{task_queue=limited,worker_type=ActivityWorker}}"
        )
    };
    settle(&gauges, &slots("used"), 1.0).await;
    settle(&gauges, &slots("available"), 1.0).await;
    GATE_OPEN.store(true, Ordering::SeqCst);
    held.result().await.unwrap();
    settle(&gauges, &slots("used"), 0.0).await;
    settle(&gauges, &slots("available"), 2.0).await;
    // Every run closed but the parked one (which stays in memory, unless it
    // was evicted before it parked): the closed ones left memory.
    settle_to(&gauges, "steadfast_sticky_cache_size{}", "at most 1", |v| {
        v <= 1.0
    })
    .await;

    // A child terminated by its parent's close, in the parent's commit
    // (never by its own actor), is counted too.
    let parent = engine
        .start_workflow(PARENT, "parent", (), WorkflowOptions::new())
        .await
        .unwrap();
    parent.result().await.unwrap();
    support::eventually(Duration::from_secs(30), || async {
        let d = engine.describe("orphan").await.unwrap();
        (d.status == steadfast::WorkflowStatus::Terminated).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();

    totals.read(&snapshotter);
    let values = totals.0;
    let by = |name: &str, workflow_type: &str| {
        format!("steadfast_{name}{{task_queue=default,workflow_type={workflow_type}}}")
    };
    assert_eq!(counter(&values, &by("workflow_started", "Work")), 2);
    assert_eq!(counter(&values, &by("workflow_started", "Waiter")), 3);
    assert_eq!(counter(&values, &by("workflow_started", "Broken")), 1);
    assert_eq!(counter(&values, &by("workflow_completed", "Work")), 1);
    assert_eq!(counter(&values, &by("workflow_completed", "Waiter")), 1);
    assert_eq!(counter(&values, &by("workflow_failed", "Work")), 1);
    assert_eq!(counter(&values, &by("workflow_canceled", "Waiter")), 1);
    assert_eq!(counter(&values, &by("workflow_terminated", "Waiter")), 1);
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
