//! `timers`: N workflows, all started at once, each sleeping 1 s on a
//! durable timer and then running one activity that reads the wall clock.
//! Lateness = that wall-clock time − the timer's recorded due time (the
//! `fire_at` of its `TimerStarted` event): the firing, its durable commit and
//! the dispatch of the next step, as a user of the workflow would see it.

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
        run_one(timers)?;
    }
    Ok(())
}

fn run_one(timers: u32) -> BenchResult {
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
        let starts = (0..timers).map(|i| {
            engine.start_workflow(SLEEPER, format!("timer-{i}"), (), WorkflowOptions::new())
        });
        let handles = join_all(starts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for result in join_all(handles.iter().map(|h| h.result())).await {
            result?;
        }
        engine.shutdown().await?;
        Ok::<_, steadfast::Error>(())
    })?;
    let mut late = std::mem::take(&mut *lateness_ms.lock().map_err(|_| "poisoned")?);
    if late.len() != timers as usize {
        return Err(format!("{} of {timers} wake-ups were recorded", late.len()).into());
    }
    late.sort_by(f64::total_cmp);
    common::emit(&[
        ("workload", json!("timers")),
        ("timers", json!(timers)),
        (
            "p50_ms",
            json!(common::round(common::percentile(&late, 50.0), 3)),
        ),
        (
            "p99_ms",
            json!(common::round(common::percentile(&late, 99.0), 3)),
        ),
    ]);
    eprintln!(
        "# timers {timers}: min {:.3} ms, max {:.3} ms",
        late[0],
        late[late.len() - 1]
    );
    Ok(())
}
