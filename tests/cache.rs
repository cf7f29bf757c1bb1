//! Memory is bounded by the cache of live runs, not by the number of
//! workflows: runs that only wait leave memory and are replayed from their
//! history when they next have work, with nothing lost.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, QueryDef, SignalDef,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};

const SLEEPER: WorkflowDef<u32, u32> = WorkflowDef::new("Sleeper");
const DOUBLE: ActivityDef<u32, u32> = ActivityDef::new("double");
const GO: SignalDef<u32> = SignalDef::new("go");
const SEEN: QueryDef<u32> = QueryDef::new("seen");

static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

async fn double(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Ok(n * 2)
}

async fn sleeper(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    let doubled = ctx.execute_activity(DOUBLE, n, options.clone()).await?;
    ctx.handle_query(SEEN, move || doubled);
    ctx.sleep(Duration::from_millis(300)).await?;
    let extra = ctx.recv_signal(GO).await?;
    Ok(ctx
        .execute_activity(DOUBLE, doubled + extra, options)
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_runs_resume_on_timers_signals_and_queries() {
    support::init_tracing();
    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(SLEEPER, sleeper)
        .activity(DOUBLE, double)
        .max_cached_runs(3)
        .open(&db.path)
        .await
        .unwrap();
    let count = 30u32;
    for n in 0..count {
        engine
            .start_workflow(SLEEPER, format!("w-{n}"), n, WorkflowOptions::new())
            .await
            .unwrap();
    }
    // Every run answers its query, whether it is in memory or not.
    for n in 0..count {
        let seen = support::eventually(Duration::from_secs(10), || {
            let engine = &engine;
            async move { engine.query(&format!("w-{n}"), SEEN).await.ok() }
        })
        .await;
        assert_eq!(seen, n * 2);
    }
    // Let the timers fire (they load evicted runs), then signal each run.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for n in 0..count {
        engine.signal(&format!("w-{n}"), GO, 1).await.unwrap();
    }
    for n in 0..count {
        let handle = engine
            .get_workflow_handle(SLEEPER, format!("w-{n}"))
            .await
            .unwrap();
        assert_eq!(handle.result().await.unwrap(), (n * 2 + 1) * 2);
        let described = engine.describe(&format!("w-{n}")).await.unwrap();
        assert_eq!(described.status, WorkflowStatus::Completed);
    }
    // Eviction and reloads never re-ran a completed activity.
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 2 * count as usize);
    engine.shutdown().await.unwrap();
}
