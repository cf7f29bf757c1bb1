//! Promise: a record that decodes but holds a value no engine writes (a
//! number at either end of its range, a time at either end of the clock, a
//! duration of zero or the longest, a backoff coefficient that is not a
//! number) never panics or hangs the engine. For each such change to each
//! field of each event of a file with workflows in several states, the
//! engine opens, every call answers within a bound (a value or a typed
//! error), the runs it could still run go on, and no panic happens anywhere
//! in the process, not even one the engine contains.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime};

use redb::{ReadableDatabase, ReadableTable};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Event, EventKind,
    ListFilter, OpenError, RetryPolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions,
};
use support::encode_event as encode;

const GO: SignalDef<u32> = SignalDef::new("go");
/// Runs `noop`, records a side effect, then waits for `go`.
const SIGNAL_WAIT: WorkflowDef<(), u32> = WorkflowDef::new("SignalWait");
/// Calls `fail`, whose retry comes an hour later.
const RETRY_WAIT: WorkflowDef<(), ()> = WorkflowDef::new("RetryWait");
/// Sleeps an hour.
const TIMER_WAIT: WorkflowDef<(), ()> = WorkflowDef::new("TimerWait");
/// Returns at once after one activity.
const DONE: WorkflowDef<(), ()> = WorkflowDef::new("Done");
const NOOP: ActivityDef<(), ()> = ActivityDef::new("noop");
const FAIL: ActivityDef<(), ()> = ActivityDef::new("fail");

const WORKFLOWS: [&str; 4] = ["signal-wait", "retry-wait", "timer-wait", "done"];

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_heartbeat_timeout(Duration::from_secs(60))
        .with_retry_policy(
            RetryPolicy::default()
                .with_initial_interval(Duration::from_secs(3600))
                .with_maximum_attempts(5),
        )
}

async fn signal_wait(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    ctx.execute_activity(NOOP, (), options()).await?;
    let n = ctx.side_effect(|| 7u32)?;
    Ok(n + ctx.recv_signal(GO).await?)
}

async fn retry_wait(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.execute_activity(FAIL, (), options()).await?;
    Ok(())
}

async fn timer_wait(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

async fn done(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.execute_activity(NOOP, (), options()).await?;
    Ok(())
}

async fn open(path: &Path) -> Result<Engine, OpenError> {
    Engine::builder()
        .workflow(SIGNAL_WAIT, signal_wait)
        .workflow(RETRY_WAIT, retry_wait)
        .workflow(TIMER_WAIT, timer_wait)
        .workflow(DONE, done)
        .activity(NOOP, |_ctx: ActivityContext, _: ()| async {
            Ok::<(), ActivityError>(())
        })
        .activity(FAIL, |_ctx: ActivityContext, _: ()| async {
            Err::<(), _>(ActivityError::retryable("not yet"))
        })
        .open(path)
        .await
}

/// Panics anywhere in the process, contained or not.
static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut messages) = PANIC_MESSAGES.lock() {
                messages.push(info.to_string());
            }
            report(info);
        }));
    });
}

/// Every event of the file, with its run.
fn read_events(path: &Path) -> Vec<(u128, Event)> {
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_read().unwrap();
    let history = txn.open_table(support::HISTORY).unwrap();
    history
        .iter()
        .unwrap()
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (key.value().0, support::decode_event(value.value()))
        })
        .collect()
}

const FAR: Duration = Duration::from_secs(100_000_000_000);

/// The changed copies of `event`: each numeric field, time and duration at
/// the ends of its range.
fn mutations(event: &Event) -> Vec<(String, Event)> {
    let mut out = Vec::new();
    let mut with = |label: &str, change: &dyn Fn(&mut Event)| {
        let mut changed = event.clone();
        change(&mut changed);
        out.push((format!("{} {label}", describe(event)), changed));
    };
    with("event_id 0", &|e| e.event_id = 0);
    with("event_id max", &|e| e.event_id = u64::MAX);
    with("timestamp epoch", &|e| e.timestamp = SystemTime::UNIX_EPOCH);
    with("timestamp far", &|e| {
        e.timestamp = SystemTime::UNIX_EPOCH + FAR
    });
    for (name, value) in [("0", 0u32), ("max", u32::MAX)] {
        with(&format!("seq {name}"), &|e| {
            if let Some(seq) = seq_of(&mut e.kind) {
                *seq = value;
            }
        });
        with(&format!("attempt {name}"), &|e| {
            if let Some(attempt) = attempt_of(&mut e.kind) {
                *attempt = value;
            }
        });
    }
    for (name, at) in [
        ("epoch", SystemTime::UNIX_EPOCH),
        ("far", SystemTime::UNIX_EPOCH + FAR),
    ] {
        with(&format!("due {name}"), &|e| match &mut e.kind {
            EventKind::TimerStarted { fire_at, .. } => *fire_at = at,
            EventKind::ActivityFailed {
                next_attempt_at, ..
            } => *next_attempt_at = Some(at),
            _ => {}
        });
    }
    for (name, d) in [("zero", Duration::ZERO), ("max", Duration::MAX)] {
        with(&format!("durations {name}"), &|e| match &mut e.kind {
            EventKind::WorkflowStarted {
                run_timeout,
                execution_timeout,
                ..
            } => {
                *run_timeout = Some(d);
                *execution_timeout = Some(d);
            }
            EventKind::ActivityScheduled { options, .. } => {
                options.schedule_to_close_timeout = Some(d);
                options.start_to_close_timeout = Some(d);
                options.heartbeat_timeout = Some(d);
                options.schedule_to_start_timeout = Some(d);
                options.initial_interval = d;
                options.maximum_interval = d;
            }
            _ => {}
        });
    }
    for (name, c) in [("-1", -1.0), ("nan", f64::NAN), ("inf", f64::INFINITY)] {
        with(&format!("backoff {name}"), &|e| {
            if let EventKind::ActivityScheduled { options, .. } = &mut e.kind {
                options.backoff_coefficient = c;
            }
        });
    }
    for (name, n) in [("0", 0u32), ("max", u32::MAX)] {
        with(&format!("maximum_attempts {name}"), &|e| {
            if let EventKind::ActivityScheduled { options, .. } = &mut e.kind {
                options.maximum_attempts = n;
            }
        });
    }
    // Only the changes that changed something.
    out.retain(|(_, changed)| encode(changed) != encode(event));
    out
}

fn describe(event: &Event) -> String {
    let kind = format!("{:?}", event.kind);
    let name = kind
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string();
    format!("event {} ({name})", event.event_id)
}

fn seq_of(kind: &mut EventKind) -> Option<&mut u32> {
    match kind {
        EventKind::ActivityScheduled { seq, .. }
        | EventKind::ActivityAttemptStarted { seq, .. }
        | EventKind::ActivityCompleted { seq, .. }
        | EventKind::ActivityFailed { seq, .. }
        | EventKind::TimerStarted { seq, .. }
        | EventKind::TimerFired { seq }
        | EventKind::SideEffectRecorded { seq, .. }
        | EventKind::ActivityHeartbeat { seq, .. } => Some(seq),
        _ => None,
    }
}

fn attempt_of(kind: &mut EventKind) -> Option<&mut u32> {
    match kind {
        EventKind::ActivityAttemptStarted { attempt, .. }
        | EventKind::ActivityCompleted { attempt, .. }
        | EventKind::ActivityFailed { attempt, .. }
        | EventKind::ActivityHeartbeat { attempt, .. } => Some(attempt),
        _ => None,
    }
}

/// A file with a workflow in each state: waiting for a signal, waiting for
/// a retry, waiting on a timer, completed.
async fn base_file(path: &Path) {
    let engine = open(path).await.unwrap();
    let run_options = || {
        WorkflowOptions::new()
            .with_run_timeout(Duration::from_secs(7200))
            .with_execution_timeout(Duration::from_secs(7200))
    };
    engine
        .start_workflow(SIGNAL_WAIT, "signal-wait", (), run_options())
        .await
        .unwrap();
    engine
        .start_workflow(RETRY_WAIT, "retry-wait", (), run_options())
        .await
        .unwrap();
    engine
        .start_workflow(TIMER_WAIT, "timer-wait", (), run_options())
        .await
        .unwrap();
    let done = engine
        .start_workflow(DONE, "done", (), run_options())
        .await
        .unwrap();
    done.result().await.unwrap();
    // Until the signal waiter waits and the retry is pending.
    support::eventually(Duration::from_secs(10), || async {
        let waiting = engine
            .history("signal-wait")
            .await
            .ok()?
            .iter()
            .any(|e| matches!(e.kind, EventKind::SideEffectRecorded { .. }));
        let failed = engine
            .history("retry-wait")
            .await
            .ok()?
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityFailed { .. }));
        (waiting && failed).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
}

/// Bounds one call: a hang fails the case.
async fn bounded<T>(case: &str, what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(10), future).await {
        Ok(value) => value,
        Err(_) => panic!("{case}: {what} did not answer within 10 s"),
    }
}

/// Opens the file and makes every call that answers at once on every
/// workflow; each answers (a value or an error) within the bound. (A
/// result is not among them: a run parked on a damaged record waits, as a
/// run parked on nondeterminism does, until it is fixed or terminated.)
async fn exercise(case: &str, path: &Path) {
    let engine = match bounded(case, "open", open(path)).await {
        Ok(engine) => engine,
        Err(_) => return,
    };
    // Let due times that moved to the past fire.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for id in WORKFLOWS {
        let _ = bounded(case, "describe", engine.describe(id)).await;
        let _ = bounded(case, "history", engine.history(id)).await;
        let _ = bounded(case, "signal", engine.signal(id, GO, 1)).await;
    }
    let _ = bounded(case, "list", engine.list(&ListFilter::new())).await;
    for id in WORKFLOWS {
        let _ = bounded(case, "terminate", engine.terminate(id, "done testing")).await;
    }
    let fresh = bounded(
        case,
        "start",
        engine.start_workflow(DONE, "fresh", (), WorkflowOptions::new()),
    )
    .await
    .unwrap_or_else(|e| panic!("{case}: a new workflow cannot start: {e}"));
    bounded(case, "new result", fresh.result())
        .await
        .unwrap_or_else(|e| panic!("{case}: a new workflow cannot finish: {e}"));
    bounded(case, "shutdown", engine.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_no_engine_writes_never_panic_or_hang() {
    count_panics();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.steadfast");
    base_file(&base).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the base file ran clean");

    let mut cases = 0;
    for (run, event) in read_events(&base) {
        for (label, changed) in mutations(&event) {
            let path = dir.path().join(format!("case-{cases}.steadfast"));
            std::fs::copy(&base, &path).unwrap();
            support::write_history_record(&path, run, event.event_id, &encode(&changed));
            exercise(&label, &path).await;
            std::fs::remove_file(&path).unwrap();
            cases += 1;
            let panics = PANICS.load(Ordering::SeqCst);
            assert_eq!(
                panics,
                0,
                "{label}: {panics} panics: {:#?}",
                PANIC_MESSAGES.lock().unwrap()
            );
        }
    }
    assert!(cases >= 50, "only {cases} cases");
    eprintln!("{cases} damaged values, none panicked or hung");
}
