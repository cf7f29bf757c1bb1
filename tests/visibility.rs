//! Promise: runs are visible. `describe` shows a run's status, type, run ID,
//! task queue, start and close times, history length, its pending
//! activities (attempt, last failure) and pending timers. `list` filters
//! runs by status, type, start and close time ranges, workflow ID prefix
//! and search attributes, in Temporal's order (open runs first, newest
//! start first; then closed runs, newest close first), one page at a time
//! with page tokens that stay right while runs change; `delete` removes a
//! closed workflow from all of it.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, ListFilter, RetryPolicy,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowExecutionInfo, WorkflowOptions,
    WorkflowStatus,
};
use support::temp_db;

/// Runs `flaky` and a one-hour timer together.
const BUSY: WorkflowDef<(), ()> = WorkflowDef::new("Busy");
/// Waits for `go`, then completes.
const WAITER: WorkflowDef<(), ()> = WorkflowDef::new("Waiter");
/// The same, under another type name.
const OTHER: WorkflowDef<(), ()> = WorkflowDef::new("Other");

/// Fails every attempt with "boom".
const FLAKY: ActivityDef<(), ()> = ActivityDef::new("flaky");
const GO: SignalDef<()> = SignalDef::new("go");

async fn busy(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    // Retried after an hour, so attempt 2 is pending after attempt 1 failed.
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_secs(3600)));
    let flaky = ctx.execute_activity(FLAKY, (), options);
    let timer = ctx.sleep(Duration::from_secs(3600));
    let (flaky, timer) = futures::join!(flaky, timer);
    flaky?;
    timer?;
    Ok(())
}

async fn waiter(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(BUSY, busy)
        .workflow(WAITER, waiter)
        .workflow(OTHER, waiter)
        .activity(FLAKY, |_ctx: ActivityContext, _: ()| async {
            Err::<(), _>(ActivityError::retryable("boom"))
        })
        .open(path)
        .await
        .expect("open the engine")
}

#[tokio::test]
async fn describe_shows_a_running_run_with_its_pending_work() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let before = SystemTime::now();
    let run = engine
        .start_workflow(BUSY, "busy", (), WorkflowOptions::new())
        .await
        .unwrap();
    let after = SystemTime::now();
    let description = support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("busy").await.ok()?;
        let failed = d
            .pending_activities
            .first()
            .is_some_and(|a| a.last_failure.is_some());
        failed.then_some(d)
    })
    .await;
    assert_eq!(description.workflow_id, "busy");
    assert_eq!(description.run_id, run.run_id());
    assert_eq!(description.workflow_type, "Busy");
    assert_eq!(description.task_queue, "default");
    assert_eq!(description.status, WorkflowStatus::Running);
    assert!(description.parked.is_none());
    assert!(description.start_time >= before && description.start_time <= after);
    assert_eq!(description.close_time, None);
    let history = engine.history("busy").await.unwrap();
    assert_eq!(description.history_length, history.len() as u64);

    let [activity] = description.pending_activities.as_slice() else {
        panic!("one pending activity: {description:#?}");
    };
    assert_eq!(activity.activity_type, "flaky");
    assert_eq!(activity.attempt, 2, "attempt 1 failed, attempt 2 is next");
    let failure = activity.last_failure.as_ref().unwrap();
    assert_eq!(failure.message, "boom");
    assert!(!failure.non_retryable);
    let next = activity.next_attempt_at.expect("a retry is planned");
    assert!(next >= description.start_time + Duration::from_secs(3500));

    let [timer] = description.pending_timers.as_slice() else {
        panic!("one pending timer: {description:#?}");
    };
    assert_eq!(
        timer.fire_at,
        description.start_time + Duration::from_secs(3600),
        "due one hour after the workflow's start time"
    );
    assert_ne!(timer.seq, activity.seq);

    // The handle describes the same run.
    assert_eq!(run.describe().await.unwrap().run_id, description.run_id);

    // Once closed: the close time, no pending work.
    engine.terminate("busy", "done looking").await.unwrap();
    let closed = engine.describe("busy").await.unwrap();
    assert_eq!(closed.status, WorkflowStatus::Terminated);
    let close_time = closed.close_time.expect("a close time");
    assert!(close_time >= closed.start_time);
    assert!(closed.pending_activities.is_empty());
    assert!(closed.pending_timers.is_empty());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn describe_shows_a_completed_run_also_after_reopening() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(WAITER, "waiter", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("waiter", GO, ()).await.unwrap();
    run.result().await.unwrap();
    let description = engine.describe("waiter").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    let close_time = description.close_time.expect("a close time");
    assert!(close_time >= description.start_time);
    let history = engine.history("waiter").await.unwrap();
    assert_eq!(description.history_length, history.len() as u64);
    assert_eq!(close_time, history.last().unwrap().timestamp);
    engine.shutdown().await.unwrap();

    let engine = open(&db.path).await;
    assert_eq!(engine.describe("waiter").await.unwrap(), description);
    engine.shutdown().await.unwrap();
}

/// Starts five runs, oldest first: three `Waiter`, two `Other`; completes
/// the first and the fourth. Returns their IDs and the times taken between
/// the starts.
async fn five_runs(engine: &Engine) -> (Vec<String>, Vec<SystemTime>) {
    let mut ids = Vec::new();
    let mut marks = vec![SystemTime::now()];
    for (i, def) in [WAITER, WAITER, OTHER, WAITER, OTHER]
        .into_iter()
        .enumerate()
    {
        let id = format!("run-{i}");
        engine
            .start_workflow(def, id.clone(), (), WorkflowOptions::new())
            .await
            .unwrap();
        ids.push(id);
        // Distinct start times, and a mark between each two.
        tokio::time::sleep(Duration::from_millis(5)).await;
        marks.push(SystemTime::now());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for id in ["run-0", "run-3"] {
        engine.signal(id, GO, ()).await.unwrap();
        let run = engine.get_workflow_handle(WAITER, id).await.unwrap();
        run.result().await.unwrap();
    }
    (ids, marks)
}

fn ids(executions: &[WorkflowExecutionInfo]) -> Vec<&str> {
    executions.iter().map(|e| e.workflow_id.as_str()).collect()
}

#[tokio::test]
async fn list_filters_by_status_type_and_start_time_newest_first() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let (_, marks) = five_runs(&engine).await;

    let all = engine.list(&ListFilter::new()).await.unwrap();
    assert_eq!(
        ids(&all.executions),
        ["run-4", "run-2", "run-1", "run-3", "run-0"],
        "open runs first, then closed ones"
    );
    assert_eq!(all.next_page_token, None);
    let starts: Vec<SystemTime> = all.executions[..3].iter().map(|e| e.start_time).collect();
    assert!(starts.windows(2).all(|w| w[0] > w[1]), "newest start first");
    let closes: Vec<SystemTime> = all.executions[3..]
        .iter()
        .map(|e| e.close_time.unwrap())
        .collect();
    assert!(closes.windows(2).all(|w| w[0] > w[1]), "newest close first");

    let running = engine
        .list(&ListFilter::new().with_status(WorkflowStatus::Running))
        .await
        .unwrap();
    assert_eq!(ids(&running.executions), ["run-4", "run-2", "run-1"]);
    assert!(
        running
            .executions
            .iter()
            .all(|e| e.status == WorkflowStatus::Running && e.close_time.is_none())
    );
    let completed = engine
        .list(&ListFilter::new().with_status(WorkflowStatus::Completed))
        .await
        .unwrap();
    assert_eq!(ids(&completed.executions), ["run-3", "run-0"]);
    assert!(completed.executions.iter().all(|e| e.close_time.is_some()));

    let waiters = engine
        .list(&ListFilter::new().with_workflow_type("Waiter"))
        .await
        .unwrap();
    assert_eq!(ids(&waiters.executions), ["run-1", "run-3", "run-0"]);
    let others = engine
        .list(
            &ListFilter::new()
                .with_workflow_type("Other")
                .with_status(WorkflowStatus::Running),
        )
        .await
        .unwrap();
    assert_eq!(ids(&others.executions), ["run-4", "run-2"]);

    // marks[i] lies between the starts of run-(i-1) and run-i.
    let range = engine
        .list(&ListFilter::new().with_start_time_range(marks[1], marks[3]))
        .await
        .unwrap();
    assert_eq!(ids(&range.executions), ["run-2", "run-1"]);
    let none = engine
        .list(&ListFilter::new().with_start_time_range(marks[5], SystemTime::now()))
        .await
        .unwrap();
    assert!(none.executions.is_empty());
    assert_eq!(none.next_page_token, None);

    let info = &all.executions[0];
    assert_eq!(info.workflow_type, "Other");
    assert_eq!(info.task_queue, "default");
    let described = engine.describe("run-4").await.unwrap();
    assert_eq!(info.run_id, described.run_id);
    assert_eq!(info.start_time, described.start_time);
    assert_eq!(info.history_length, described.history_length);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn list_pages_with_tokens() {
    let db = temp_db();
    let engine = open(&db.path).await;
    five_runs(&engine).await;

    let mut pages = Vec::new();
    let mut filter = ListFilter::new().with_page_size(2);
    loop {
        let page = engine.list(&filter).await.unwrap();
        pages.push(ids(&page.executions).join(","));
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
        assert!(pages.len() <= 5, "paging does not end: {pages:?}");
    }
    assert_eq!(pages, ["run-4,run-2", "run-1,run-3", "run-0"]);

    // Paging a filtered list: the filter applies before the pages.
    let mut seen = Vec::new();
    let mut filter = ListFilter::new()
        .with_status(WorkflowStatus::Running)
        .with_page_size(2);
    loop {
        let page = engine.list(&filter).await.unwrap();
        assert!(page.executions.len() <= 2);
        seen.extend(page.executions.iter().map(|e| e.workflow_id.clone()));
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => break,
        }
    }
    assert_eq!(seen, ["run-4", "run-2", "run-1"]);
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len());

    // Any page size is taken, up to the largest (the field is public).
    let first = engine
        .list(&ListFilter::new().with_page_size(1))
        .await
        .unwrap();
    let mut rest = ListFilter::new().with_next_page_token(first.next_page_token.unwrap());
    rest.page_size = usize::MAX;
    let rest = engine.list(&rest).await.unwrap();
    assert_eq!(ids(&rest.executions), ["run-2", "run-1", "run-3", "run-0"]);
    assert_eq!(rest.next_page_token, None);

    // A page exactly as large as what is left ends the paging.
    let page = engine
        .list(&ListFilter::new().with_page_size(5))
        .await
        .unwrap();
    assert_eq!(page.executions.len(), 5);
    assert_eq!(page.next_page_token, None);
    engine.shutdown().await.unwrap();
}
