//! Promise: a parked run is visible to the caller waiting on it.
//! `result()` keeps waiting on a parked run (it is still running), but
//! `result_or_parked()` returns its park reason as soon as it parks, and
//! `list` shows each run's park reason and filters on it
//! (`ListFilter::with_parked`), page by page. Once fixed code reopens the
//! file, the same run completes.

mod support;

use std::time::Duration;

use steadfast::{
    Engine, ListFilter, ParkReason, ResultOrParked, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowOptions, WorkflowStatus,
};
use support::{TempDb, temp_db};

/// `true`: the code panics (until fixed); `false`: sleeps an hour.
const STEP: WorkflowDef<bool, String> = WorkflowDef::new("Step");
const QUICK: WorkflowDef<(), String> = WorkflowDef::new("Quick");

async fn open(db: &TempDb, fixed: bool) -> Engine {
    Engine::builder()
        .workflow(STEP, move |ctx: WorkflowContext, panics: bool| async move {
            if panics && !fixed {
                panic!("boom: the code has a bug");
            }
            if !panics {
                ctx.sleep(Duration::from_secs(3600)).await?;
            }
            Ok::<_, WorkflowError>("fixed".to_string())
        })
        .workflow(QUICK, |_ctx: WorkflowContext, ()| async move {
            Ok::<_, WorkflowError>("quick".to_string())
        })
        .open(&db.path)
        .await
        .expect("open")
}

fn is_boom(reason: &ParkReason) -> bool {
    matches!(reason, ParkReason::Panic(m) if m.contains("boom"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_or_parked_returns_the_park_reason() {
    let db = temp_db();
    let engine = open(&db, false).await;
    let broken = engine
        .start_workflow(STEP, "broken", true, WorkflowOptions::new())
        .await
        .unwrap();
    let quick = engine
        .start_workflow(QUICK, "quick", (), WorkflowOptions::new())
        .await
        .unwrap();

    match broken.result_or_parked().await.unwrap() {
        ResultOrParked::Parked(reason) => assert!(is_boom(&reason), "{reason}"),
        other => panic!("expected Parked, got {other:?}"),
    }
    assert_eq!(
        quick.result_or_parked().await.unwrap(),
        ResultOrParked::Completed("quick".to_string())
    );
    // Still running, not failed: `result` would wait on it.
    let description = broken.describe().await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Running);
    assert!(description.parked.as_ref().is_some_and(is_boom));
    engine.shutdown().await.unwrap();

    // Fixed code: the same run completes.
    let engine = open(&db, true).await;
    let broken = engine.get_workflow_handle(STEP, "broken").await.unwrap();
    assert_eq!(
        broken.result_or_parked().await.unwrap(),
        ResultOrParked::Completed("fixed".to_string())
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_parked_runs_page_by_page() {
    let db = temp_db();
    let engine = open(&db, false).await;
    for i in 0..3 {
        let broken = engine
            .start_workflow(STEP, format!("broken-{i}"), true, WorkflowOptions::new())
            .await
            .unwrap();
        assert!(matches!(
            broken.result_or_parked().await.unwrap(),
            ResultOrParked::Parked(_)
        ));
        engine
            .start_workflow(STEP, format!("sleeping-{i}"), false, WorkflowOptions::new())
            .await
            .unwrap();
    }
    engine
        .start_workflow(QUICK, "quick", (), WorkflowOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap();

    let mut parked = Vec::new();
    let mut filter = ListFilter::new().with_parked(true).with_page_size(2);
    let mut pages = 0;
    loop {
        let page = engine.list(&filter).await.unwrap();
        pages += 1;
        for run in &page.executions {
            assert!(run.parked.as_ref().is_some_and(is_boom), "{run:?}");
            assert_eq!(run.status, WorkflowStatus::Running);
            parked.push(run.workflow_id.clone());
        }
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    parked.sort();
    assert_eq!(parked, ["broken-0", "broken-1", "broken-2"]);
    assert!(pages >= 2, "page size 2 gave {pages} page(s)");

    let healthy = engine
        .list(&ListFilter::new().with_parked(false))
        .await
        .unwrap();
    let mut ids: Vec<_> = healthy
        .executions
        .iter()
        .map(|r| {
            assert!(r.parked.is_none(), "{r:?}");
            r.workflow_id.as_str()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["quick", "sleeping-0", "sleeping-1", "sleeping-2"]);
    // Unfiltered, each run carries its reason.
    let all = engine.list(&ListFilter::new()).await.unwrap();
    assert_eq!(all.executions.len(), 7);
    assert_eq!(
        all.executions.iter().filter(|r| r.parked.is_some()).count(),
        3
    );
    // Parked runs are running: a closed status filter finds none.
    let none = engine
        .list(
            &ListFilter::new()
                .with_parked(true)
                .with_status(WorkflowStatus::Completed),
        )
        .await
        .unwrap();
    assert!(none.executions.is_empty());
    engine.shutdown().await.unwrap();
}
