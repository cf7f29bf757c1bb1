//! Promise: a team keeps the histories of production runs in a folder
//! (`tests/fixtures/histories/*.json`) and replays them against today's code
//! in `cargo test`. A change guarded by `ctx.patched` replays them; a change
//! that is not replay-safe is reported with its diff (the event, what the
//! history holds, what the code did); so are a history whose workflow type
//! is not registered and one the code ends differently than recorded. The
//! replayer runs no activity and writes nothing.
//!
//! The histories were saved once from version 1 of the `Order` workflow
//! below (`order_v1`), with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! replayer -- --ignored write_history_fixtures`, and are never regenerated:
//!
//! | File | Run |
//! |---|---|
//! | `order-1-shipped.json` | Completed: `reserve` completed, signal `approve`, `charge` completed, result `"shipped charged reserved book"` |
//! | `order-2-awaiting-approval.json` | Running: `reserve` completed, waiting for the signal `approve` |

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, EventKind, ReplayError,
    ReplayReport, Replayer, SignalDef, Worker, WorkflowContext, WorkflowDef, WorkflowError,
    WorkflowHistory, WorkflowOptions,
};

const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
const RESERVE: ActivityDef<String, String> = ActivityDef::new("reserve");
const CHARGE: ActivityDef<String, String> = ActivityDef::new("charge");
const NOTIFY: ActivityDef<String, ()> = ActivityDef::new("notify");
const APPROVE: SignalDef<()> = SignalDef::new("approve");

const HISTORIES: &str = "tests/fixtures/histories";

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(5))
}

fn histories() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(HISTORIES)
}

/// Version 1, which wrote the saved histories.
async fn order_v1(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
    let reserved = ctx.execute_activity(RESERVE, item, options()).await?;
    ctx.recv_signal(APPROVE).await?;
    let charged = ctx.execute_activity(CHARGE, reserved, options()).await?;
    Ok(format!("shipped {charged}"))
}

/// Version 2, safe: the customer is told once the item is reserved, on new
/// runs only; runs recorded before the change keep the old path.
async fn order_v2_patched(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
    let reserved = ctx.execute_activity(RESERVE, item, options()).await?;
    if ctx.patched("notify-customer") {
        ctx.execute_activity(NOTIFY, reserved.clone(), options())
            .await?;
    }
    ctx.recv_signal(APPROVE).await?;
    let charged = ctx.execute_activity(CHARGE, reserved, options()).await?;
    Ok(format!("shipped {charged}"))
}

/// Version 2, not safe: the same change without `patched`.
async fn order_v2_unguarded(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
    let reserved = ctx.execute_activity(RESERVE, item, options()).await?;
    ctx.execute_activity(NOTIFY, reserved.clone(), options())
        .await?;
    ctx.recv_signal(APPROVE).await?;
    let charged = ctx.execute_activity(CHARGE, reserved, options()).await?;
    Ok(format!("shipped {charged}"))
}

/// Version 2, ending differently: the same commands, another result.
async fn order_v2_new_result(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
    let reserved = ctx.execute_activity(RESERVE, item, options()).await?;
    ctx.recv_signal(APPROVE).await?;
    let charged = ctx.execute_activity(CHARGE, reserved, options()).await?;
    Ok(format!("delivered {charged}"))
}

static ACTIVITY_RUNS: AtomicUsize = AtomicUsize::new(0);

async fn reserve(_ctx: ActivityContext, item: String) -> Result<String, ActivityError> {
    ACTIVITY_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("reserved {item}"))
}

async fn charge(_ctx: ActivityContext, reserved: String) -> Result<String, ActivityError> {
    ACTIVITY_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("charged {reserved}"))
}

async fn notify(_ctx: ActivityContext, _reserved: String) -> Result<(), ActivityError> {
    ACTIVITY_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn file_name(report: &ReplayReport) -> String {
    let path = report.path.as_ref().expect("read from a file");
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Writes `tests/fixtures/histories/*.json` with version 1. Ignored, and a
/// no-op without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite.
#[tokio::test]
#[ignore]
async fn write_history_fixtures() {
    if std::env::var("STEADFAST_WRITE_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let dir = histories();
    assert!(!dir.exists(), "fixtures are never regenerated");
    std::fs::create_dir_all(&dir).unwrap();
    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(ORDER, order_v1)
        .activity(RESERVE, reserve)
        .activity(CHARGE, charge)
        .open(&db.path)
        .await
        .unwrap();
    let shipped = engine
        .start_workflow(ORDER, "order-1", "book".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("order-1", APPROVE, ()).await.unwrap();
    assert_eq!(
        shipped.result().await.unwrap(),
        "shipped charged reserved book"
    );
    engine
        .workflow_history("order-1")
        .await
        .unwrap()
        .to_file(dir.join("order-1-shipped.json"))
        .unwrap();

    engine
        .start_workflow(ORDER, "order-2", "lamp".into(), WorkflowOptions::new())
        .await
        .unwrap();
    let waiting = support::eventually(Duration::from_secs(10), || async {
        let history = engine.workflow_history("order-2").await.unwrap();
        let reserved = history
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::ActivityCompleted { seq: 1, .. }));
        reserved.then_some(history)
    })
    .await;
    waiting
        .to_file(dir.join("order-2-awaiting-approval.json"))
        .unwrap();
    engine.shutdown().await.unwrap();
}

#[test]
fn saved_histories_replay_with_a_patched_change() {
    let runs_before = ACTIVITY_RUNS.load(Ordering::SeqCst);
    let replayer = Replayer::new().workflow(ORDER, order_v2_patched);
    let reports = replayer.replay_dir(histories()).unwrap();
    let names: Vec<String> = reports.iter().map(file_name).collect();
    assert_eq!(
        names,
        ["order-1-shipped.json", "order-2-awaiting-approval.json"]
    );
    for report in &reports {
        assert!(report.result.is_ok(), "{report}");
        assert_eq!(report.workflow_type, "Order");
    }
    // The original code replays them too, of course.
    let replayer = Replayer::new().workflow(ORDER, order_v1);
    for report in replayer.replay_dir(histories()).unwrap() {
        assert!(report.result.is_ok(), "{report}");
    }
    // Nothing ran: the code saw the recorded results.
    assert_eq!(ACTIVITY_RUNS.load(Ordering::SeqCst), runs_before);
}

#[test]
fn an_unguarded_change_is_reported_with_its_diff() {
    let replayer = Replayer::new().workflow(ORDER, order_v2_unguarded);
    let reports = replayer.replay_dir(histories()).unwrap();
    assert_eq!(reports.len(), 2);

    // The shipped run went on to `charge` where the new code notifies.
    let shipped = &reports[0];
    assert_eq!(file_name(shipped), "order-1-shipped.json");
    let Err(ReplayError::Nondeterminism(nde)) = &shipped.result else {
        panic!("expected a nondeterminism report, got {shipped}");
    };
    assert_eq!(nde.workflow_id, "order-1");
    assert_eq!(nde.run_id, shipped.run_id);
    assert_eq!(nde.event_id, 5, "the README quotes this report");
    assert_eq!(
        nde.history,
        r#"ActivityScheduled(seq 2, activity "charge")"#
    );
    assert_eq!(nde.code, r#"ActivityScheduled(seq 2, activity "notify")"#);
    let history = WorkflowHistory::from_file(shipped.path.as_ref().unwrap()).unwrap();
    let at = &history.events[usize::try_from(nde.event_id).unwrap() - 1];
    assert!(
        matches!(&at.kind, EventKind::ActivityScheduled { seq: 2, activity_type, .. } if activity_type == "charge"),
        "the report names the event that differs: {at:?}"
    );
    let message = shipped.to_string();
    assert!(message.contains("order-1-shipped.json"), "{message}");
    assert!(
        message.contains(&format!("at event {}", nde.event_id)),
        "{message}"
    );

    // The waiting run's history ends before the change: the new code just
    // goes on from there, which is safe for that run.
    assert!(reports[1].result.is_ok(), "{}", reports[1]);
}

#[test]
fn a_different_result_is_reported() {
    let replayer = Replayer::new().workflow(ORDER, order_v2_new_result);
    let reports = replayer.replay_dir(histories()).unwrap();
    let Err(ReplayError::DifferentEnding {
        workflow_id,
        event_id,
        history,
        code,
        ..
    }) = &reports[0].result
    else {
        panic!("expected a different ending, got {}", reports[0]);
    };
    assert_eq!(workflow_id, "order-1");
    let saved = WorkflowHistory::from_file(reports[0].path.as_ref().unwrap()).unwrap();
    assert_eq!(*event_id, saved.events.last().unwrap().event_id);
    assert_eq!(
        history,
        r#"WorkflowCompleted("shipped charged reserved book")"#
    );
    assert_eq!(
        code,
        r#"WorkflowCompleted("delivered charged reserved book")"#
    );
    assert!(reports[1].result.is_ok(), "{}", reports[1]);
}

#[test]
fn an_unregistered_type_is_reported() {
    const OTHER: WorkflowDef<String, String> = WorkflowDef::new("Other");
    let replayer = Replayer::new().workflow(OTHER, order_v1);
    for report in replayer.replay_dir(histories()).unwrap() {
        match &report.result {
            Err(ReplayError::NotRegistered { workflow_type }) => {
                assert_eq!(workflow_type, "Order")
            }
            other => panic!("expected NotRegistered, got {other:?}"),
        }
        assert!(report.to_string().contains("not registered"), "{report}");
    }
}

#[test]
fn a_worker_registers_its_workflows() {
    let worker = Worker::new("orders")
        .workflow(ORDER, order_v2_patched)
        .activity(NOTIFY, notify);
    let replayer = Replayer::new().worker(worker);
    for report in replayer.replay_dir(histories()).unwrap() {
        assert!(report.result.is_ok(), "{report}");
    }
}

#[test]
fn a_panic_and_an_input_that_does_not_decode_are_reported() {
    let saved = WorkflowHistory::from_file(histories().join("order-1-shipped.json")).unwrap();
    async fn panics(_ctx: WorkflowContext, _item: String) -> Result<String, WorkflowError> {
        panic!("replayed into a bug")
    }
    match Replayer::new().workflow(ORDER, panics).replay(&saved) {
        Err(ReplayError::Panic(message)) => assert!(message.contains("replayed into a bug")),
        other => panic!("expected a panic report, got {other:?}"),
    }
    const ORDER_BY_NUMBER: WorkflowDef<u64, String> = WorkflowDef::new("Order");
    async fn by_number(_ctx: WorkflowContext, _n: u64) -> Result<String, WorkflowError> {
        Ok(String::new())
    }
    match Replayer::new()
        .workflow(ORDER_BY_NUMBER, by_number)
        .replay(&saved)
    {
        Err(ReplayError::Unrunnable(message)) => assert!(message.contains("u64"), "{message}"),
        other => panic!("expected an unrunnable report, got {other:?}"),
    }
}

#[test]
fn a_file_that_is_not_a_history_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        histories().join("order-1-shipped.json"),
        dir.path().join("a.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        "{\"format\": \"steadfast-history\"",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a history, not read").unwrap();
    let replayer = Replayer::new().workflow(ORDER, order_v1);
    let err = replayer.replay_dir(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("b.json"), "{message}");
    assert!(message.contains("line 1"), "{message}");

    let err = replayer.replay_dir(dir.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn a_new_run_of_the_patched_code_replays_its_own_history() {
    // The other half of `patched`: a run of the new code records the
    // marker, and its history replays with the new code.
    let db = support::temp_db();
    let engine = Engine::builder()
        .workflow(ORDER, order_v2_patched)
        .activity(RESERVE, reserve)
        .activity(CHARGE, charge)
        .activity(NOTIFY, notify)
        .open(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(ORDER, "order-new", "pen".into(), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("order-new", APPROVE, ()).await.unwrap();
    run.result().await.unwrap();
    let history = engine.workflow_history("order-new").await.unwrap();
    engine.shutdown().await.unwrap();
    assert!(
        history
            .events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::PatchRecorded { patch_id } if patch_id == "notify-customer"))
    );
    let text = history.to_json().unwrap();
    let history = WorkflowHistory::from_json(&text).unwrap();
    let replayer = Replayer::new().workflow(ORDER, order_v2_patched);
    replayer.replay(&history).unwrap();
    // The old code never calls `notify`: the new run does not replay on it.
    let old = Replayer::new().workflow(ORDER, order_v1);
    match old.replay(&history) {
        Err(ReplayError::Nondeterminism(nde)) => {
            assert!(nde.history.contains("notify"), "{nde}");
        }
        other => panic!("expected nondeterminism, got {other:?}"),
    }
}

#[test]
fn events_after_the_close_do_not_hide_the_ending() {
    // Builds before the close became final could append an attempt's
    // failure after the close; the ending compared is the close's.
    let mut saved = WorkflowHistory::from_file(histories().join("order-1-shipped.json")).unwrap();
    let close = saved.events.last().unwrap().clone();
    let mut late = saved.events[3].clone();
    late.event_id = close.event_id + 1;
    saved.events.push(late);
    Replayer::new()
        .workflow(ORDER, order_v1)
        .replay(&saved)
        .unwrap();
    match Replayer::new()
        .workflow(ORDER, order_v2_new_result)
        .replay(&saved)
    {
        Err(ReplayError::DifferentEnding { event_id, .. }) => assert_eq!(event_id, close.event_id),
        other => panic!("expected a different ending, got {other:?}"),
    }
}

#[test]
fn check_dir_is_one_line_and_lists_every_failure() {
    let replayed = Replayer::new()
        .workflow(ORDER, order_v2_patched)
        .check_dir(histories())
        .unwrap();
    assert_eq!(replayed, 2);

    match Replayer::new()
        .workflow(ORDER, order_v2_new_result)
        .check_dir(histories())
    {
        Err(steadfast::ReplayCheckError::Failed { total, failures }) => {
            assert_eq!(total, 2);
            assert_eq!(failures.len(), 1);
            assert_eq!(file_name(&failures[0]), "order-1-shipped.json");
        }
        other => panic!("expected one failure, got {other:?}"),
    }
    let err = Replayer::new().check_dir(histories()).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("2 of 2 saved histories"), "{message}");
    assert!(
        message.contains("order-2-awaiting-approval.json"),
        "{message}"
    );

    let empty = tempfile::tempdir().unwrap();
    match Replayer::new().check_dir(empty.path()) {
        Err(steadfast::ReplayCheckError::Empty(dir)) => {
            assert_eq!(dir, empty.path().display().to_string())
        }
        other => panic!("expected Empty, got {other:?}"),
    }
}

#[test]
fn mutated_histories_get_a_typed_answer_never_a_panic() {
    // Deterministic mutations of a saved file (a digit, a quote, a brace
    // put in place of a byte): each reads as a typed error, or replays to
    // a report.
    let text = std::fs::read(histories().join("order-1-shipped.json")).unwrap();
    let replayer = Replayer::new().workflow(ORDER, order_v1);
    let alphabet = b"0123456789\"{}[],:-.a ";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut read, mut replayed) = (0, 0);
    for _ in 0..3000 {
        let mut mutated = text.clone();
        for _ in 0..=(next() % 3) {
            let at = (next() % mutated.len() as u64) as usize;
            mutated[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        let Ok(mutated) = String::from_utf8(mutated) else {
            continue;
        };
        if let Ok(history) = WorkflowHistory::from_json(&mutated) {
            read += 1;
            if replayer.replay(&history).is_ok() {
                replayed += 1;
            }
        }
    }
    // Some mutations only change a number or a string: they read.
    assert!(read > 0 && replayed > 0, "read {read}, replayed {replayed}");
}

#[test]
fn failing_where_the_run_completed_is_a_different_ending() {
    async fn order_v2_fails(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
        let reserved = ctx.execute_activity(RESERVE, item, options()).await?;
        ctx.recv_signal(APPROVE).await?;
        ctx.execute_activity(CHARGE, reserved, options()).await?;
        Err(WorkflowError::new("no courier").with_type("NoCourier"))
    }
    let saved = WorkflowHistory::from_file(histories().join("order-1-shipped.json")).unwrap();
    match Replayer::new()
        .workflow(ORDER, order_v2_fails)
        .replay(&saved)
    {
        Err(ReplayError::DifferentEnding {
            event_id,
            history,
            code,
            ..
        }) => {
            assert_eq!(event_id, saved.events.last().unwrap().event_id);
            assert_eq!(
                history,
                r#"WorkflowCompleted("shipped charged reserved book")"#
            );
            assert_eq!(code, "WorkflowFailed(NoCourier: no courier)");
        }
        other => panic!("expected a different ending, got {other:?}"),
    }
}
