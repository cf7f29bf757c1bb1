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
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, ListFilter,
    RetryPolicy, SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowExecutionInfo,
    WorkflowOptions, WorkflowStatus,
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

/// Describes "busy" once its first attempt failed and the retry waits.
async fn retry_pending(engine: &Engine) -> steadfast::WorkflowDescription {
    support::eventually(Duration::from_secs(10), || async {
        let d = engine.describe("busy").await.ok()?;
        let failed = d
            .pending_activities
            .first()
            .is_some_and(|a| a.last_failure.is_some());
        failed.then_some(d)
    })
    .await
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
    let description = retry_pending(&engine).await;
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

/// A run that waits only on time is not loaded when the file opens; its
/// description then comes from the file (the history folded as the live
/// run folds it) and equals what the live run said, and describing it
/// runs none of its code.
#[tokio::test]
async fn describe_of_a_run_not_in_memory_matches_the_live_one() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(BUSY, "busy", (), WorkflowOptions::new())
        .await
        .unwrap();
    let live = retry_pending(&engine).await;
    engine.shutdown().await.unwrap();

    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = attempts.clone();
    let engine = Engine::builder()
        .workflow(BUSY, busy)
        .activity(FLAKY, move |_ctx: ActivityContext, _: ()| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<(), _>(ActivityError::retryable("boom")) }
        })
        .open(&db.path)
        .await
        .unwrap();
    let from_file = engine.describe("busy").await.unwrap();
    assert_eq!(from_file, live);
    assert_eq!(
        engine.history("busy").await.unwrap().len() as u64,
        live.history_length
    );
    assert_eq!(
        attempts.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the retry is due in an hour: nothing ran"
    );
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

    // A token survives a trip through bytes (a web page, a command line).
    let first = engine
        .list(&ListFilter::new().with_page_size(2))
        .await
        .unwrap();
    let token = first.next_page_token.unwrap();
    let again = steadfast::PageToken::from_bytes(&token.to_bytes()).unwrap();
    assert_eq!(again, token);
    assert_eq!(steadfast::PageToken::from_bytes(b"not a token"), None);
    let second = engine
        .list(
            &ListFilter::new()
                .with_page_size(2)
                .with_next_page_token(again),
        )
        .await
        .unwrap();
    assert_eq!(ids(&second.executions), ["run-1", "run-3"]);

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

#[tokio::test]
async fn list_filters_by_close_time_range_and_workflow_id_prefix() {
    let db = temp_db();
    let engine = open(&db.path).await;
    five_runs(&engine).await;
    let mut closes = Vec::new();
    for id in ["run-0", "run-3"] {
        closes.push(engine.describe(id).await.unwrap().close_time.unwrap());
    }
    let after_all = SystemTime::now() + Duration::from_secs(1);

    let closed = engine
        .list(&ListFilter::new().with_close_time_range(SystemTime::UNIX_EPOCH, after_all))
        .await
        .unwrap();
    assert_eq!(
        ids(&closed.executions),
        ["run-3", "run-0"],
        "open runs never match"
    );
    // [after, before): the first close is in, the second is the bound.
    let first = engine
        .list(&ListFilter::new().with_close_time_range(closes[0], closes[1]))
        .await
        .unwrap();
    assert_eq!(ids(&first.executions), ["run-0"]);
    let typed = ListFilter::new()
        .with_close_time_range(SystemTime::UNIX_EPOCH, after_all)
        .with_workflow_type("Other");
    assert!(engine.list(&typed).await.unwrap().executions.is_empty());

    for (i, id) in ["order-1", "order-10", "order-2", "orders", "ord"]
        .iter()
        .enumerate()
    {
        let def = if i % 2 == 0 { WAITER } else { OTHER };
        engine
            .start_workflow(def, *id, (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    let prefixed = |prefix: &str| ListFilter::new().with_workflow_id_prefix(prefix);
    let page = engine.list(&prefixed("order-")).await.unwrap();
    assert_eq!(
        ids(&page.executions),
        ["order-2", "order-10", "order-1"],
        "in list order, not ID order"
    );
    let page = engine.list(&prefixed("ord")).await.unwrap();
    assert_eq!(page.executions.len(), 5);
    let page = engine
        .list(&prefixed("order").with_workflow_type("Other"))
        .await
        .unwrap();
    assert_eq!(ids(&page.executions), ["orders", "order-10"]);
    let page = engine
        .list(&prefixed("run-").with_page_size(2))
        .await
        .unwrap();
    assert_eq!(ids(&page.executions), ["run-4", "run-2"]);
    let rest = engine
        .list(&prefixed("run-").with_next_page_token(page.next_page_token.unwrap()))
        .await
        .unwrap();
    assert_eq!(ids(&rest.executions), ["run-1", "run-3", "run-0"]);
    assert!(
        engine
            .list(&prefixed("nope"))
            .await
            .unwrap()
            .executions
            .is_empty()
    );
    engine.shutdown().await.unwrap();
}

/// Pages through every run, 3 at a time.
async fn page_through(engine: &Engine, filter: ListFilter) -> Vec<WorkflowExecutionInfo> {
    let mut seen = Vec::new();
    let mut filter = filter.with_page_size(3);
    for _ in 0..1000 {
        let page = engine.list(&filter).await.unwrap();
        seen.extend(page.executions);
        match page.next_page_token {
            Some(token) => filter = filter.with_next_page_token(token),
            None => return seen,
        }
    }
    panic!("paging does not end");
}

#[tokio::test]
async fn paging_while_runs_start_and_close_skips_none_and_repeats_none_unchanged() {
    let db = temp_db();
    let engine = open(&db.path).await;
    for i in 0..30 {
        let def = if i % 3 == 0 { OTHER } else { WAITER };
        engine
            .start_workflow(def, format!("p-{i:02}"), (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    for i in (0..30).step_by(4) {
        engine.signal(&format!("p-{i:02}"), GO, ()).await.unwrap();
    }
    support::eventually(Duration::from_secs(10), || async {
        let done = engine
            .list(&ListFilter::new().with_status(WorkflowStatus::Completed))
            .await
            .ok()?;
        (done.executions.len() == 8).then_some(())
    })
    .await;
    let before: HashSet<String> = page_through(&engine, ListFilter::new())
        .await
        .into_iter()
        .map(|e| e.workflow_id)
        .collect();
    assert_eq!(before.len(), 30);

    // Page again while runs close and new ones start between the pages.
    let mut seen: Vec<WorkflowExecutionInfo> = Vec::new();
    let mut changed = HashSet::new();
    let mut filter = ListFilter::new().with_page_size(3);
    let mut next_close = 1;
    loop {
        let page = engine.list(&filter).await.unwrap();
        seen.extend(page.executions);
        let Some(token) = page.next_page_token else {
            break;
        };
        filter = filter.with_next_page_token(token);
        // Close one listed open run and one not listed yet, start a new one.
        while next_close < 30 && (next_close % 4 == 0) {
            next_close += 1;
        }
        for id in [
            format!("p-{next_close:02}"),
            format!("p-{:02}", 30 - next_close),
        ] {
            if engine.signal(&id, GO, ()).await.is_ok() {
                changed.insert(id);
            }
        }
        next_close += 1;
        let new = format!("new-{}", seen.len());
        engine
            .start_workflow(WAITER, new.clone(), (), WorkflowOptions::new())
            .await
            .unwrap();
        changed.insert(new);
        assert!(seen.len() < 200, "paging does not end");
    }
    let mut counts = std::collections::HashMap::new();
    for e in &seen {
        *counts.entry(e.workflow_id.clone()).or_insert(0) += 1;
    }
    for id in &before {
        let count = counts.get(id).copied().unwrap_or(0);
        if changed.contains(id) {
            // Listed open, then closed meanwhile: it may show again, closed.
            assert!((1..=2).contains(&count), "{id} listed {count} times");
        } else {
            assert_eq!(count, 1, "an unchanged run is listed once: {id}");
        }
    }
    // A run listed twice was listed once open and once closed, in that order.
    for (id, count) in &counts {
        if *count == 2 {
            let statuses: Vec<WorkflowStatus> = seen
                .iter()
                .filter(|e| &e.workflow_id == id)
                .map(|e| e.status)
                .collect();
            assert_eq!(
                statuses,
                [WorkflowStatus::Running, WorkflowStatus::Completed],
                "{id}"
            );
        }
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn delete_removes_a_closed_workflow_and_refuses_a_running_one() {
    let db = temp_db();
    let engine = open(&db.path).await;
    // Two runs of one ID, both closed; a running neighbour.
    for _ in 0..2 {
        engine
            .start_workflow(WAITER, "gone", (), WorkflowOptions::new())
            .await
            .unwrap();
        engine.signal("gone", GO, ()).await.unwrap();
        let run = engine.get_workflow_handle(WAITER, "gone").await.unwrap();
        run.result().await.unwrap();
    }
    engine
        .start_workflow(WAITER, "gone-too-running", (), WorkflowOptions::new())
        .await
        .unwrap();
    let all = engine.list(&ListFilter::new()).await.unwrap();
    assert_eq!(ids(&all.executions), ["gone-too-running", "gone", "gone"]);

    match engine.delete("gone-too-running").await {
        Err(ClientError::StillRunning {
            workflow_id,
            run_id,
        }) => {
            assert_eq!(workflow_id, "gone-too-running");
            assert_eq!(run_id, all.executions[0].run_id);
        }
        other => panic!("expected StillRunning, got {other:?}"),
    }
    let message = engine
        .delete("gone-too-running")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("terminate"),
        "it says what to do: {message}"
    );
    assert!(matches!(
        engine.delete("never-was").await,
        Err(ClientError::NotFound { .. })
    ));

    engine.delete("gone").await.unwrap();
    assert!(matches!(
        engine.describe("gone").await,
        Err(ClientError::NotFound { .. })
    ));
    assert!(matches!(
        engine.history("gone").await,
        Err(ClientError::NotFound { .. })
    ));
    let all = engine.list(&ListFilter::new()).await.unwrap();
    assert_eq!(ids(&all.executions), ["gone-too-running"]);
    for filter in [
        ListFilter::new().with_workflow_id_prefix("gone"),
        ListFilter::new().with_workflow_type("Waiter"),
        ListFilter::new().with_status(WorkflowStatus::Completed),
    ] {
        let page = engine.list(&filter).await.unwrap();
        assert!(page.executions.iter().all(|e| e.workflow_id != "gone"));
    }
    assert!(matches!(
        engine.delete("gone").await,
        Err(ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();

    // Durable, and the ID starts again as new.
    let engine = open(&db.path).await;
    assert!(matches!(
        engine.describe("gone").await,
        Err(ClientError::NotFound { .. })
    ));
    engine
        .start_workflow(WAITER, "gone", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(engine.history("gone").await.unwrap().len(), 1);
    let page = engine
        .list(&ListFilter::new().with_workflow_id_prefix("gone"))
        .await
        .unwrap();
    assert_eq!(ids(&page.executions), ["gone", "gone-too-running"]);
    // Terminated, then deleted.
    engine
        .terminate("gone-too-running", "done with it")
        .await
        .unwrap();
    engine.delete("gone-too-running").await.unwrap();
    let page = engine.list(&ListFilter::new()).await.unwrap();
    assert_eq!(ids(&page.executions), ["gone"]);
    engine.shutdown().await.unwrap();
}
