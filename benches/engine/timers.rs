//! `timers`: N workflows, each sleeping 1 s on a durable timer and then
//! running one activity that reads the wall clock. Lateness = that
//! wall-clock time − the timer's recorded due time (the `fire_at` of its
//! `TimerStarted` event): the firing, its durable commit and the dispatch of
//! the next step, as a user of the workflow would see it.
//!
//! Two arrival patterns, both printed:
//! - `p50_ms`/`p99_ms`: the starts are spread evenly over one second, so the
//!   N timers fall due within the same second (DESIGN.md's target: "p99
//!   lateness under 10 ms with 10,000 timers due in the same second"; the
//!   peers' own starts, at most ~900 workflows/s, spread theirs over a second
//!   or more).
//! - `burst_p50_ms`/`burst_p99_ms`: all N started at once; steadfast starts
//!   them within a few milliseconds, so all N timers fall due in one burst
//!   and the last waits for the durable commits of all before it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde_json::json;
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, Engine, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions,
};

use crate::common::{self, BenchResult};

const SLEEP: Duration = Duration::from_secs(1);

const SLEEPER: WorkflowDef<(), ()> = WorkflowDef::new("Sleeper");

/// Takes the timer's due time (ns since the epoch) and records how late the
/// wake-up is.
const RECORD_WAKE: ActivityDef<u64, ()> = ActivityDef::new("record_wake");

async fn sleeper(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    // `sleep` would compute the same due time; taking it here lets the
    // activity compare against exactly what the history records.
    let fire_at = ctx.now() + SLEEP;
    ctx.sleep_until(fire_at).await?;
    let due_ns = nanos_since_epoch(fire_at);
    ctx.execute_activity(RECORD_WAKE, due_ns, common::noop_options())
        .await?;
    Ok(())
}

fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn run() -> BenchResult {
    for timers in [1_000u32, 10_000] {
        let spread = run_one(timers, SLEEP)?;
        let burst = run_one(timers, Duration::ZERO)?;
        common::emit(&[
            ("workload", json!("timers")),
            ("timers", json!(timers)),
            ("p50_ms", json!(spread.p50)),
            ("p99_ms", json!(spread.p99)),
            ("burst_p50_ms", json!(burst.p50)),
            ("burst_p99_ms", json!(burst.p99)),
        ]);
    }
    Ok(())
}

struct Lateness {
    p50: f64,
    p99: f64,
}

/// Starts `timers` workflows evenly over `spread` (all at once when zero)
/// and measures how late their wake-ups are.
fn run_one(timers: u32, spread: Duration) -> Result<Lateness, Box<dyn std::error::Error>> {
    let dir = common::temp_dir()?;
    let path = dir.path().join("timers.steadfast");
    let lateness_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sink = lateness_ms.clone();
    let record_wake = move |_ctx: ActivityContext, due_ns: u64| {
        let now_ns = nanos_since_epoch(SystemTime::now());
        let late_ms = (now_ns as f64 - due_ns as f64) / 1e6;
        let sink = sink.clone();
        async move {
            sink.lock()
                .map_err(|_| ActivityError::non_retryable("poisoned"))?
                .push(late_ms);
            Ok(())
        }
    };
    common::runtime()?.block_on(async {
        let engine = Engine::builder()
            .workflow(SLEEPER, sleeper)
            .activity(RECORD_WAKE, record_wake)
            .open(&path)
            .await?;
        let begin = tokio::time::Instant::now();
        // Each caller waits for its own result, as an application would:
        // 10,000 result calls made at once, in the second the timers are
        // due, would measure this loop rather than the engine.
        let runs = (0..timers).map(|i| {
            let engine = &engine;
            async move {
                tokio::time::sleep_until(begin + spread * i / timers).await;
                engine
                    .start_workflow(SLEEPER, format!("timer-{i}"), (), WorkflowOptions::new())
                    .await?
                    .result()
                    .await?;
                Ok::<_, steadfast::Error>(())
            }
        });
        for run in join_all(runs).await {
            run?;
        }
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    let mut late = std::mem::take(&mut *lateness_ms.lock().map_err(|_| "poisoned")?);
    if late.len() != timers as usize {
        return Err(format!("{} of {timers} wake-ups were recorded", late.len()).into());
    }
    late.sort_by(f64::total_cmp);
    eprintln!(
        "# timers {timers} started over {spread:?}: min {:.3} ms, max {:.3} ms",
        late[0],
        late[late.len() - 1]
    );
    Ok(Lateness {
        p50: common::round(common::percentile(&late, 50.0), 3),
        p99: common::round(common::percentile(&late, 99.0), 3),
    })
}
