//! Promise: a damaged file never panics or hangs the engine. A truncated
//! file, flipped bytes, a file that is not a database or an empty file either
//! fails to open with a typed `OpenError`, or opens (redb may repair it) and
//! then answers every call with a value or a typed error. A single record
//! that does not decode parks only its own run, with an error naming its
//! workflow, while the other workflows go on; so does a record that decodes
//! but holds a value no engine writes (an attempt or event number at the
//! top of its range).

mod support;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, ClientError, Engine, EventKind,
    ListFilter, OpenError, ParkReason, RetryPolicy, SignalDef, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowOptions, WorkflowStatus,
};
use support::temp_db;

/// The runs table: run ID `u128 -> &[u8]`, one encoded run record.
const RUNS: redb::TableDefinition<u128, &[u8]> = redb::TableDefinition::new("runs");

/// Waits for one `go` signal and returns it.
const WAIT: WorkflowDef<(), u32> = WorkflowDef::new("Wait");
const ECHO: WorkflowDef<String, String> = WorkflowDef::new("Echo");
const GO: SignalDef<u32> = SignalDef::new("go");
/// Calls `FAIL`, whose failed attempt is retried only an hour later.
const RETRIER: WorkflowDef<(), ()> = WorkflowDef::new("Retrier");
const FAIL: ActivityDef<(), ()> = ActivityDef::new("fail");

async fn retrier(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_secs(3600)));
    ctx.execute_activity(FAIL, (), options).await?;
    Ok(())
}

async fn wait(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    Ok(ctx.recv_signal(GO).await?)
}

async fn echo(_ctx: WorkflowContext, input: String) -> Result<String, WorkflowError> {
    Ok(input)
}

async fn open(path: &Path) -> Result<Engine, OpenError> {
    Engine::builder()
        .workflow(WAIT, wait)
        .workflow(ECHO, echo)
        .workflow(RETRIER, retrier)
        .activity(FAIL, |_ctx: ActivityContext, _: ()| async {
            Err::<(), _>(ActivityError::retryable("not yet"))
        })
        .open(path)
        .await
}

/// Bounds one step, so that a hang fails the test instead of stalling it.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within 20 s"),
    }
}

/// A steadfast file with closed and running workflows: `echo-{i}`
/// completed, `wait-{i}` waiting for a signal. Returns its bytes.
async fn sample_file(path: &Path) -> Vec<u8> {
    let engine = open(path).await.expect("open a new file");
    for i in 0..20 {
        engine
            .start_workflow(
                ECHO,
                format!("echo-{i}"),
                "x".repeat(300),
                WorkflowOptions::new(),
            )
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    for i in 0..5 {
        engine
            .start_workflow(WAIT, format!("wait-{i}"), (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    engine.shutdown().await.unwrap();
    std::fs::read(path).expect("read the sample file")
}

/// Opens a damaged file and, if it opens, uses it: every call must finish
/// with a value or a typed error. Returns what happened, for the report.
async fn open_and_use(path: &Path) -> String {
    let engine = match bounded("open", open(path)).await {
        Err(err @ (OpenError::Unreadable { .. } | OpenError::NewerFormat { .. })) => {
            if let OpenError::Unreadable {
                path: named,
                message,
            } = &err
            {
                assert_eq!(named, path, "the error names the file");
                assert!(!message.is_empty());
            }
            return format!("refused: {err}");
        }
        Err(other) => panic!("expected Unreadable (or NewerFormat), got {other:?}"),
        Ok(engine) => engine,
    };
    // Each call may fail, but only with a typed error, and in bounded time.
    let _ = bounded("list", engine.list(&ListFilter::default())).await;
    for i in 0..5 {
        let id = format!("wait-{i}");
        let _ = bounded("describe", engine.describe(&id)).await;
        let _ = bounded("history", engine.history(&id)).await;
        let _ = bounded("signal", engine.signal(&id, GO, i)).await;
    }
    for i in 0..20 {
        let id = format!("echo-{i}");
        let _ = bounded("describe", engine.describe(&id)).await;
        if let Ok(handle) = engine.get_workflow_handle(ECHO, id).await {
            let _ = bounded("result", handle.result()).await;
        }
    }
    let started = bounded(
        "start",
        engine.start_workflow(
            ECHO,
            "after-damage",
            "y".to_string(),
            WorkflowOptions::new(),
        ),
    )
    .await;
    if let Ok(handle) = started {
        let _ = bounded("result", handle.result()).await;
    }
    bounded("shutdown", engine.shutdown()).await.unwrap();
    "opened".to_string()
}

/// Runs `open_and_use` on each damaged copy in its own task, so that one
/// panic is reported with its case instead of hiding the others.
async fn check_cases(cases: Vec<(String, Vec<u8>)>) {
    let mut failures = Vec::new();
    for (name, bytes) in cases {
        let db = temp_db();
        std::fs::write(&db.path, &bytes).unwrap();
        let path = db.path.clone();
        match tokio::spawn(async move { open_and_use(&path).await }).await {
            Ok(outcome) => println!("{name}: {outcome}"),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "damaged files broke the engine: {failures:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_refused_or_repaired_never_a_panic() {
    let db = temp_db();
    let good = sample_file(&db.path).await;
    let len = good.len();
    let mut cuts = vec![
        1,
        8,
        64,
        511,
        512,
        4096,
        4097,
        8192,
        len / 2,
        len - 4096,
        len - 1,
    ];
    cuts.retain(|&c| c > 0 && c < len);
    cuts.sort_unstable();
    cuts.dedup();
    let cases = cuts
        .into_iter()
        .map(|cut| (format!("cut at {cut} of {len}"), good[..cut].to_vec()))
        .collect();
    check_cases(cases).await;
}

/// Flips one byte at a time: in the header, and at several places of every
/// 4 KiB page (page headers, keys and values).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_are_refused_or_reported_never_a_panic() {
    let db = temp_db();
    let good = sample_file(&db.path).await;
    let len = good.len();
    let mut offsets = vec![0, 1, 9, 16, 32, 64, 100, 200, 320, 512, 1024];
    for page in (0..len).step_by(4096) {
        offsets.extend([0, 7, 40, 2000].map(|within| page + within));
    }
    offsets.extend([len / 3, len / 2, 2 * len / 3, len - 100, len - 1]);
    offsets.retain(|&o| o < len);
    offsets.sort_unstable();
    offsets.dedup();
    let cases = offsets
        .into_iter()
        .map(|offset| {
            let mut bytes = good.clone();
            bytes[offset] ^= 0xff;
            (format!("flipped byte {offset} of {len}"), bytes)
        })
        .collect();
    check_cases(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_databases_are_refused() {
    let db = temp_db();
    let good = sample_file(&db.path).await;
    let mut header_then_noise = good[..512.min(good.len())].to_vec();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    header_then_noise.extend((0..32 * 1024).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    }));
    let cases = vec![
        ("zeros".to_string(), vec![0u8; 64 * 1024]),
        ("ones".to_string(), vec![0xffu8; 64 * 1024]),
        ("a short text".to_string(), b"hello".to_vec()),
        ("the header, then noise".to_string(), header_then_noise),
    ];
    check_cases(cases).await;
}

/// An empty file is a new database: it opens, and works.
#[tokio::test]
async fn an_empty_file_opens_as_a_new_database() {
    let db = temp_db();
    std::fs::write(&db.path, b"").unwrap();
    let engine = bounded("open", open(&db.path))
        .await
        .expect("an empty file opens");
    let handle = engine
        .start_workflow(ECHO, "first", "hi".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), "hi");
    engine.shutdown().await.unwrap();
}

/// Overwrites one stored value with redb directly, as a disk error or a bug
/// would leave it.
fn overwrite_history_event(path: &Path, run: u128, event_id: u64, bytes: &[u8]) {
    {
        let db = redb::Database::create(path).expect("open with redb");
        let txn = db.begin_read().unwrap();
        let history = txn.open_table(support::HISTORY).unwrap();
        assert!(
            history.get((run, event_id)).unwrap().is_some(),
            "event {event_id} of run {run:x} exists"
        );
    }
    support::write_history_record(path, run, event_id, bytes);
}

fn overwrite_run_record(path: &Path, run: u128, bytes: &[u8]) {
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_write().unwrap();
    {
        let mut runs = txn.open_table(RUNS).unwrap();
        assert!(runs.get(run).unwrap().is_some(), "run {run:x} exists");
        runs.insert(run, bytes).unwrap();
    }
    txn.commit().unwrap();
}

/// Runs two workflows that wait for a signal, shuts down, and returns the
/// run IDs of `bad` and `good`.
async fn two_waiting_workflows(path: &Path) -> (u128, u128) {
    let engine = open(path).await.unwrap();
    engine
        .start_workflow(WAIT, "bad", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .start_workflow(WAIT, "good", (), WorkflowOptions::new())
        .await
        .unwrap();
    let bad = engine
        .describe("bad")
        .await
        .unwrap()
        .run_id
        .as_uuid()
        .as_u128();
    let good = engine
        .describe("good")
        .await
        .unwrap()
        .run_id
        .as_uuid()
        .as_u128();
    engine.shutdown().await.unwrap();
    (bad, good)
}

fn names(text: &str, workflow_id: &str) -> bool {
    text.contains(&format!("{workflow_id:?}")) || text.contains(workflow_id)
}

/// One event of one run does not decode: that run is refused with an
/// error naming its workflow, and the other runs normally.
#[tokio::test]
async fn a_corrupt_event_parks_only_its_own_run() {
    let db = temp_db();
    let (bad, _) = two_waiting_workflows(&db.path).await;
    overwrite_history_event(&db.path, bad, 1, b"\xde\xad\xbe\xef garbage, not an event");

    let engine = bounded("open", open(&db.path))
        .await
        .expect("the file still opens");

    // The damaged run: every call says what is wrong and names it.
    match bounded("signal the damaged run", engine.signal("bad", GO, 1)).await {
        Err(ClientError::Parked {
            workflow_id,
            reason,
        }) => {
            assert_eq!(workflow_id, "bad");
            assert!(!reason.is_empty());
        }
        Err(ClientError::Corrupt {
            workflow_id,
            message,
        }) => {
            assert_eq!(workflow_id, "bad");
            assert!(!message.is_empty());
        }
        other => panic!("expected Parked or Corrupt for the damaged run, got {other:?}"),
    }
    let description = bounded("describe the damaged run", engine.describe("bad"))
        .await
        .expect("its run record is intact");
    assert_eq!(description.status, WorkflowStatus::Running);
    match description.parked {
        Some(ParkReason::Unrunnable(reason)) => {
            assert!(
                names(&reason, "bad"),
                "the reason names the workflow: {reason}"
            )
        }
        other => panic!("expected the damaged run parked as unrunnable, got {other:?}"),
    }
    match bounded("history of the damaged run", engine.history("bad")).await {
        Err(ClientError::Corrupt {
            workflow_id,
            message,
        }) => {
            assert_eq!(workflow_id, "bad");
            assert!(!message.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // The other workflow goes on.
    bounded("signal the healthy run", engine.signal("good", GO, 42))
        .await
        .expect("the healthy run takes its signal");
    let handle = engine.get_workflow_handle(WAIT, "good").await.unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), 42);
    // And new work is accepted.
    let fresh = engine
        .start_workflow(ECHO, "fresh", "ok".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(bounded("result", fresh.result()).await.unwrap(), "ok");

    // The damaged run can still be terminated, and then reads as closed.
    bounded(
        "terminate",
        engine.terminate("bad", "its history is damaged"),
    )
    .await
    .expect("a damaged run can be terminated");
    let description = engine.describe("bad").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Terminated);
    engine.shutdown().await.unwrap();
}

/// A run record that does not decode: calls on that workflow report it as
/// corrupt, naming it; the others go on, and listing skips it.
#[tokio::test]
async fn a_corrupt_run_record_is_reported_and_the_rest_goes_on() {
    let db = temp_db();
    let (bad, _) = two_waiting_workflows(&db.path).await;
    overwrite_run_record(&db.path, bad, b"\xff\xfe not a run record");

    let engine = bounded("open", open(&db.path))
        .await
        .expect("the file still opens");
    for (what, result) in [
        (
            "describe",
            bounded("describe", engine.describe("bad"))
                .await
                .map(|_| ()),
        ),
        (
            "signal",
            bounded("signal", engine.signal("bad", GO, 1)).await,
        ),
        ("cancel", bounded("cancel", engine.cancel("bad")).await),
    ] {
        match result {
            Err(ClientError::Corrupt {
                workflow_id,
                message,
            }) => {
                assert_eq!(workflow_id, "bad", "{what}");
                assert!(!message.is_empty());
            }
            other => panic!("{what}: expected Corrupt naming the workflow, got {other:?}"),
        }
    }
    let page = bounded("list", engine.list(&ListFilter::default()))
        .await
        .expect("listing skips the damaged record");
    assert!(page.executions.iter().any(|e| e.workflow_id == "good"));

    bounded("signal the healthy run", engine.signal("good", GO, 7))
        .await
        .unwrap();
    let handle = engine.get_workflow_handle(WAIT, "good").await.unwrap();
    assert_eq!(bounded("result", handle.result()).await.unwrap(), 7);
    engine.shutdown().await.unwrap();
}

/// Records that decode but hold numbers no engine writes: a failed attempt
/// numbered `u32::MAX` (its retry would be attempt 2^32), and an event
/// numbered `u64::MAX` after a gap. Each parks or limits only its own run;
/// loading other runs goes on, the damaged run can be terminated or is
/// reported corrupt, and the file is not taken for damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_at_the_top_of_their_range_affect_only_their_run() {
    let db = temp_db();
    let engine = open(&db.path).await.unwrap();
    for id in ["max-attempt-1", "max-attempt-2"] {
        engine
            .start_workflow(RETRIER, id, (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    for id in ["gap", "good"] {
        engine
            .start_workflow(WAIT, id, (), WorkflowOptions::new())
            .await
            .unwrap();
    }
    let mut failed = Vec::new();
    for id in ["max-attempt-1", "max-attempt-2"] {
        let event = support::eventually(Duration::from_secs(10), || async {
            let history = engine.history(id).await.ok()?;
            history
                .into_iter()
                .find(|e| matches!(e.kind, EventKind::ActivityFailed { .. }))
        })
        .await;
        let run = engine
            .describe(id)
            .await
            .unwrap()
            .run_id
            .as_uuid()
            .as_u128();
        failed.push((run, event));
    }
    let gap = engine
        .describe("gap")
        .await
        .unwrap()
        .run_id
        .as_uuid()
        .as_u128();
    let mut last = engine.history("gap").await.unwrap().pop().unwrap();
    engine.shutdown().await.unwrap();

    for (run, mut event) in failed {
        if let EventKind::ActivityFailed { attempt, .. } = &mut event.kind {
            *attempt = u32::MAX;
        }
        overwrite_history_event(
            &db.path,
            run,
            event.event_id,
            &support::encode_event(&event),
        );
    }
    last.event_id = u64::MAX;
    support::write_history_record(&db.path, gap, last.event_id, &support::encode_event(&last));

    let engine = bounded("open", open(&db.path)).await.unwrap();
    for id in ["max-attempt-1", "max-attempt-2"] {
        let description = bounded("describe", engine.describe(id)).await.unwrap();
        assert_eq!(description.status, WorkflowStatus::Running, "{id}");
    }
    match bounded("history of the gapped run", engine.history("gap")).await {
        Err(ClientError::Corrupt {
            workflow_id,
            message,
        }) => {
            assert_eq!(workflow_id, "gap");
            assert!(message.contains("follows"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match bounded(
        "terminate the gapped run",
        engine.terminate("gap", "damaged"),
    )
    .await
    {
        Err(ClientError::Corrupt { workflow_id, .. }) => assert_eq!(workflow_id, "gap"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Other runs load, take signals and finish; new work runs.
    bounded("signal", engine.signal("good", GO, 5))
        .await
        .unwrap();
    let good = engine.get_workflow_handle(WAIT, "good").await.unwrap();
    assert_eq!(bounded("result", good.result()).await.unwrap(), 5);
    let fresh = engine
        .start_workflow(ECHO, "fresh", "ok".to_string(), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(bounded("result", fresh.result()).await.unwrap(), "ok");
    engine.shutdown().await.unwrap();
}
