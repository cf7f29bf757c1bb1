//! Promise: a run's history exports to the documented JSON document
//! (HISTORY-JSON in FORMAT.md) and imports back equal, for every kind of
//! event, with payloads shown as the JSON they hold; input that is not such
//! a document gets a typed error naming what is wrong and where, never a
//! panic.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, HistoryJsonError,
    Replayer, RetryPolicy, SearchAttributeValue, SearchAttributes, SignalDef, SignalOptions,
    WorkflowContext, WorkflowDef, WorkflowError, WorkflowHistory, WorkflowOptions,
};

#[derive(Serialize, Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

const EVERYTHING: WorkflowDef<Order, serde_json::Value> = WorkflowDef::new("Json.Everything");
const FAILS: WorkflowDef<(), ()> = WorkflowDef::new("Json.Fails");
const WAIT_FOREVER: WorkflowDef<(), ()> = WorkflowDef::new("Json.WaitForever");
/// Continues as new once, carrying an unread `NOTE` signal along.
const CONTINUES: WorkflowDef<u32, u32> = WorkflowDef::new("Json.Continues");
const FLAKY: ActivityDef<String, String> = ActivityDef::new("json.flaky");
const BROKEN: ActivityDef<(), ()> = ActivityDef::new("json.broken");
const GO: SignalDef<Vec<u32>> = SignalDef::new("json.go");
/// Never read by `everything`: recorded as unread by its close.
const NOTE: SignalDef<String> = SignalDef::new("json.note");

fn attributes() -> SearchAttributes {
    SearchAttributes::new()
        .with("Customer", "c-42")
        .with("Priority", -3i64)
        .with("Score", 0.1)
        .with("Unknown", f64::NAN)
        .with("Huge", f64::INFINITY)
        .with("Vip", true)
        .with(
            "Due",
            SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
        )
        .with("Tags", vec!["gold".to_string(), "eu".to_string()])
}

async fn everything(
    ctx: WorkflowContext,
    order: Order,
) -> Result<serde_json::Value, WorkflowError> {
    let patched = ctx.patched("json-patch");
    let lucky: u64 = ctx.side_effect(|| 7)?;
    ctx.upsert_search_attributes(attributes())?;
    let retry = RetryPolicy::default().with_initial_interval(Duration::from_millis(10));
    let options = ActivityOptions::start_to_close(Duration::from_secs(5)).with_retry_policy(retry);
    let flaky = ctx
        .execute_activity(FLAKY, order.item.clone(), options.clone())
        .await?;
    let broken = ctx.execute_activity(BROKEN, (), options.clone()).await;
    // A local activity: one LocalActivityRecorded, attempt 2.
    let local = steadfast::LocalActivityOptions::start_to_close(Duration::from_secs(5))
        .with_retry_policy(RetryPolicy::default().with_initial_interval(Duration::from_millis(10)));
    let local = ctx
        .execute_local_activity(FLAKY, order.item.clone(), local)
        .await?;
    // Cancelled at once (ActivityCancelRequested); its end is recorded.
    let mut cancelled = ctx.execute_activity(BROKEN, (), options);
    cancelled.cancel();
    let cancelled = cancelled.await;
    // No worker serves this queue: the attempt waits (ActivityAttemptWaiting)
    // until its schedule-to-start timeout ends it.
    let unserved = ActivityOptions::start_to_close(Duration::from_secs(5))
        .with_task_queue("json-unserved")
        .with_schedule_to_start_timeout(Duration::from_millis(10));
    let unserved = ctx.execute_activity(BROKEN, (), unserved).await;
    ctx.sleep(Duration::from_millis(10)).await?;
    ctx.sleep(Duration::from_secs(3600)).cancel();
    let go = ctx.recv_signal(GO).await?;
    Ok(serde_json::json!({
        "patched": patched,
        "lucky": lucky,
        "flaky": flaky,
        "broken": broken.is_err(),
        "cancelled": cancelled.is_err(),
        "local": local,
        "unserved": unserved.is_err(),
        "go": go,
        "qty": order.qty,
    }))
}

async fn fails(_ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    Err(WorkflowError::new("out of stock").with_type("OutOfStock"))
}

/// Answered by `wait_forever` with its input.
const ECHO: steadfast::UpdateDef<u32, u32> = steadfast::UpdateDef::new("json.echo");

async fn wait_forever(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    ctx.handle_update(ECHO, |_: &u32| Ok(()), |_ctx, n: u32| async move { Ok(n) });
    ctx.recv_signal(GO).await?;
    Ok(())
}

async fn flaky(ctx: ActivityContext, item: String) -> Result<String, ActivityError> {
    if ctx.attempt() == 1 {
        return Err(ActivityError::retryable("warming up").with_type("WarmingUp"));
    }
    ctx.heartbeat(&serde_json::json!({ "progress": 0.5 }))
        .map_err(|e| ActivityError::non_retryable(e.to_string()))?;
    Ok(format!("packed {item}"))
}

async fn broken(_ctx: ActivityContext, _: ()) -> Result<(), ActivityError> {
    Err(ActivityError::non_retryable("no such thing").with_type("Broken"))
}

async fn continues(ctx: WorkflowContext, round: u32) -> Result<u32, WorkflowError> {
    if round == 0 {
        ctx.recv_signal(GO).await?;
        return Err(ctx.continue_as_new(CONTINUES, 1));
    }
    Ok(round)
}

fn engine() -> steadfast::EngineBuilder {
    Engine::builder()
        .workflow(CONTINUES, continues)
        .workflow(EVERYTHING, everything)
        .workflow(FAILS, fails)
        .workflow(WAIT_FOREVER, wait_forever)
        .activity(FLAKY, flaky)
        .activity(BROKEN, broken)
}

fn replayer() -> Replayer {
    Replayer::new()
        .workflow(CONTINUES, continues)
        .workflow(EVERYTHING, everything)
        .workflow(FAILS, fails)
        .workflow(WAIT_FOREVER, wait_forever)
}

/// The names of the event kinds a document holds, read from its JSON.
fn kinds(text: &str) -> BTreeSet<String> {
    let document: serde_json::Value = serde_json::from_str(text).unwrap();
    document["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["kind"].as_object().unwrap().keys().cloned())
        .collect()
}

#[tokio::test]
async fn every_kind_of_event_round_trips() {
    let db = support::temp_db();
    let engine = engine().open(&db.path).await.unwrap();
    let order = Order {
        item: "book".into(),
        qty: 2,
    };
    let run = engine
        .start_workflow(EVERYTHING, "json-everything", order, WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .signal_with_options(
            "json-everything",
            NOTE,
            "unread".to_string(),
            SignalOptions::new().with_request_id("note-1"),
        )
        .await
        .unwrap();
    engine
        .signal("json-everything", GO, vec![1, 2, 3])
        .await
        .unwrap();
    run.result().await.unwrap();

    let run = engine
        .start_workflow(FAILS, "json-fails", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert!(run.result().await.is_err());

    let run = engine
        .start_workflow(WAIT_FOREVER, "json-cancelled", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.cancel("json-cancelled").await.unwrap();
    assert!(run.result().await.is_err());

    engine
        .start_workflow(WAIT_FOREVER, "json-terminated", (), WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(engine.update("json-terminated", ECHO, 4).await.unwrap(), 4);
    engine
        .terminate("json-terminated", "by an operator")
        .await
        .unwrap();

    let options = WorkflowOptions::new()
        .with_run_timeout(Duration::from_millis(50))
        .with_execution_timeout(Duration::from_secs(3600));
    let run = engine
        .start_workflow(WAIT_FOREVER, "json-timed-out", (), options)
        .await
        .unwrap();
    assert!(run.result().await.is_err());

    let run = engine
        .start_workflow(CONTINUES, "json-continued", 0, WorkflowOptions::new())
        .await
        .unwrap();
    let first = run.run_id();
    engine
        .signal("json-continued", NOTE, "carried".to_string())
        .await
        .unwrap();
    engine.signal("json-continued", GO, vec![1]).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 1);

    // Paused, unpaused, then reset (store format 13).
    engine
        .start_workflow(WAIT_FOREVER, "json-reset", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.pause_workflow("json-reset", "look").await.unwrap();
    engine.unpause_workflow("json-reset", "ok").await.unwrap();
    let reset_from = engine.describe("json-reset").await.unwrap().run_id;
    engine
        .reset_workflow(
            "json-reset",
            steadfast::ResetOptions::new(steadfast::ResetTo::FirstWorkflowTask, "again"),
        )
        .await
        .unwrap();
    engine
        .terminate("json-reset", "by an operator")
        .await
        .unwrap();

    // A cancellation held by a pause, delivered at the unpause (format 15).
    let run = engine
        .start_workflow(WAIT_FOREVER, "json-held", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.pause_workflow("json-held", "hold").await.unwrap();
    engine.cancel("json-held").await.unwrap();
    engine.unpause_workflow("json-held", "go").await.unwrap();
    assert!(run.result().await.is_err());

    let mut seen = BTreeSet::new();
    let history = engine
        .workflow_run_history("json-reset", reset_from)
        .await
        .unwrap();
    let text = history.to_json().unwrap();
    assert_eq!(WorkflowHistory::from_json(&text).unwrap(), history);
    seen.extend(kinds(&text));
    replayer().replay(&history).unwrap();
    // The first run of the chain (it closed continuing as new).
    let history = engine
        .workflow_run_history("json-continued", first)
        .await
        .unwrap();
    let text = history.to_json().unwrap();
    let back = WorkflowHistory::from_json(&text).unwrap();
    assert_eq!(back, history);
    assert_eq!(back.to_json().unwrap(), text);
    seen.extend(kinds(&text));
    replayer().replay(&back).unwrap();
    for id in [
        "json-continued",
        "json-everything",
        "json-fails",
        "json-cancelled",
        "json-terminated",
        "json-timed-out",
        "json-reset",
        "json-held",
    ] {
        let history = engine.workflow_history(id).await.unwrap();
        assert_eq!(history.events, engine.history(id).await.unwrap());
        assert_eq!(history.workflow_id, id);
        let text = history.to_json().unwrap();
        let back = WorkflowHistory::from_json(&text).unwrap();
        assert_eq!(back, history, "{id}: imported history differs");
        assert_eq!(back.to_json().unwrap(), text, "{id}: written twice differs");
        seen.extend(kinds(&text));
        // And the imported history replays on the code that wrote it.
        replayer()
            .replay(&back)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let every: BTreeSet<String> = [
        "WorkflowStarted",
        "ActivityScheduled",
        "ActivityAttemptStarted",
        "ActivityAttemptWaiting",
        "ActivityCompleted",
        "ActivityFailed",
        "ActivityHeartbeat",
        "TimerStarted",
        "TimerFired",
        "SideEffectRecorded",
        "PatchRecorded",
        "WorkflowSignaled",
        "WorkflowCancelRequested",
        "WorkflowCompleted",
        "WorkflowFailed",
        "WorkflowCancelled",
        "WorkflowTerminated",
        "WorkflowTimedOut",
        "SearchAttributesUpserted",
        "TimerCanceled",
        "WorkflowSignaledWithOptions",
        "SignalsUnread",
        "WorkflowContinuedAsNew",
        "WorkflowContinuedFrom",
        "ActivityCancelRequested",
        "LocalActivityRecorded",
        "WorkflowUpdateAccepted",
        "WorkflowUpdateCompleted",
        "WorkflowPaused",
        "WorkflowUnpaused",
        "WorkflowReset",
        "WorkflowResetFrom",
        "WorkflowCancelRequestDeferred",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, every);
    assert!(matches!(
        engine.workflow_history("json-nobody").await,
        Err(steadfast::ClientError::NotFound { .. })
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn payloads_and_values_are_readable_json() {
    let db = support::temp_db();
    let engine = engine().open(&db.path).await.unwrap();
    let order = Order {
        item: "book".into(),
        qty: 2,
    };
    let run = engine
        .start_workflow(EVERYTHING, "json-readable", order, WorkflowOptions::new())
        .await
        .unwrap();
    engine
        .signal("json-readable", GO, vec![4, 5])
        .await
        .unwrap();
    run.result().await.unwrap();
    let history = engine.workflow_history("json-readable").await.unwrap();
    engine.shutdown().await.unwrap();
    let text = history.to_json().unwrap();
    for shown in [
        r#""format": "steadfast-history""#,
        r#""version": 1"#,
        r#""workflow_type": "Json.Everything""#,
        // Payloads are the JSON they hold, not lists of bytes.
        r#""input": {"item":"book","qty":2}"#,
        r#""input": [4,5]"#,
        r#""result": "packed book""#,
        r#""details": {"progress":0.5}"#,
        // Values JSON numbers cannot hold are named.
        r#""Double": "NaN""#,
        r#""Double": "inf""#,
        r#""Double": 0.1"#,
        r#""error_type": "WarmingUp""#,
    ] {
        assert!(text.contains(shown), "missing {shown} in\n{text}");
    }
    let back = WorkflowHistory::from_json(&text).unwrap();
    let upserted = back
        .events
        .iter()
        .find_map(|e| match &e.kind {
            steadfast::EventKind::SearchAttributesUpserted { attributes } => Some(attributes),
            _ => None,
        })
        .unwrap();
    assert_eq!(*upserted, attributes());
    assert!(matches!(upserted.get("Unknown"), Some(SearchAttributeValue::Double(v)) if v.is_nan()));
}

/// A valid document, small, built from a known text.
fn valid() -> String {
    let started = r#"{"event_id": 1,
      "timestamp": {"secs_since_epoch": 1700000000, "nanos_since_epoch": 0},
      "kind": {"WorkflowStarted": {"workflow_type": "Order", "workflow_id": "order-42",
        "task_queue": "default", "input": "book", "run_timeout": null, "execution_timeout": null}}}"#;
    let timer = r#"{"event_id": 2,
      "timestamp": {"secs_since_epoch": 1700000000, "nanos_since_epoch": 5},
      "kind": {"TimerStarted": {"seq": 1,
        "fire_at": {"secs_since_epoch": 1700000060, "nanos_since_epoch": 0}}}}"#;
    let done = r#"{"event_id": 3,
      "timestamp": {"secs_since_epoch": 1700000060, "nanos_since_epoch": 0},
      "kind": {"WorkflowTerminated": {"reason": "enough"}}}"#;
    format!(
        r#"{{"format": "steadfast-history", "version": 1, "workflow_id": "order-42",
  "run_id": "0190b2a4-57c5-7000-8000-000000000001", "workflow_type": "Order",
  "events": [{started}, {timer}, {done}]}}"#
    )
}

#[test]
fn a_hand_written_document_reads() {
    let history = WorkflowHistory::from_json(&valid()).unwrap();
    assert_eq!(history.events.len(), 3);
    assert_eq!(
        history.run_id.to_string(),
        "0190b2a4-57c5-7000-8000-000000000001"
    );
}

fn error_of(text: &str) -> HistoryJsonError {
    match WorkflowHistory::from_json(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn malformed_documents_get_typed_errors() {
    let valid = valid();

    match error_of("{\"format\": ") {
        HistoryJsonError::Json { line, column, .. } => assert!(line >= 1 && column >= 1),
        other => panic!("{other:?}"),
    }
    match error_of(r#"{"format": "temporal", "version": 1}"#) {
        HistoryJsonError::NotAHistory { found } => assert_eq!(found.as_deref(), Some("temporal")),
        other => panic!("{other:?}"),
    }
    match error_of(r#"{"events": []}"#) {
        HistoryJsonError::NotAHistory { found: None } => {}
        other => panic!("{other:?}"),
    }
    match error_of(&valid.replace(r#""version": 1"#, r#""version": 7"#)) {
        HistoryJsonError::UnsupportedVersion {
            found: 7,
            supported: 1,
        } => {}
        other => panic!("{other:?}"),
    }
    match error_of(&valid.replace(r#""version": 1"#, r#""version": "one""#)) {
        HistoryJsonError::Invalid {
            position: 0,
            problem,
        } => {
            assert!(problem.contains("version"), "{problem}")
        }
        other => panic!("{other:?}"),
    }

    // An event kind this build does not know: named, with its line.
    let unknown = valid.replace("TimerStarted", "TimerTeleported");
    match error_of(&unknown) {
        HistoryJsonError::Json { line, message, .. } => {
            assert!(message.contains("TimerTeleported"), "{message}");
            assert!(
                message.contains("TimerStarted"),
                "lists the known kinds: {message}"
            );
            let expected = unknown
                .lines()
                .position(|l| l.contains("TimerTeleported"))
                .unwrap()
                + 1;
            assert_eq!(line, expected, "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A missing field, a wrong type, an unknown field.
    for (broken, needle) in [
        (valid.replace(r#""seq": 1,"#, ""), "seq"),
        (
            valid.replace(r#""seq": 1"#, r#""seq": "one""#),
            "invalid type",
        ),
        (
            valid.replace(
                r#""workflow_type": "Order","#,
                r#""workflow_type": "Order", "extra": 1,"#,
            ),
            "extra",
        ),
        (valid.replace("0190b2a4-57c5", "not-a-uuid"), "UUID"),
    ] {
        match error_of(&broken) {
            HistoryJsonError::Json { message, .. } => {
                assert!(message.contains(needle), "{needle}: {message}")
            }
            other => panic!("{needle}: {other:?}"),
        }
    }

    // Parses, but is not a history a run could have.
    let empty = r#"{"format": "steadfast-history", "version": 1, "workflow_id": "w",
        "run_id": "0190b2a4-57c5-7000-8000-000000000001", "workflow_type": "T", "events": []}"#;
    for (broken, position, needle) in [
        (
            valid.replace(r#""event_id": 2"#, r#""event_id": 5"#),
            2,
            "event_id is 5",
        ),
        (
            valid.replace(r#""event_id": 1,"#, r#""event_id": 9,"#),
            1,
            "event_id is 9",
        ),
        (
            valid.replacen(
                r#""workflow_id": "order-42","#,
                r#""workflow_id": "order-43","#,
                1,
            ),
            1,
            "order-42",
        ),
        (empty.to_string(), 0, "empty"),
    ] {
        match WorkflowHistory::from_json(&broken) {
            Err(HistoryJsonError::Invalid {
                position: p,
                problem,
            }) => {
                assert_eq!(p, position, "{problem}");
                assert!(problem.contains(needle), "{needle}: {problem}");
            }
            other => panic!("{needle}: {other:?}"),
        }
    }
}

#[test]
fn a_second_start_is_invalid_and_events_after_the_close_read() {
    let history = WorkflowHistory::from_json(&valid()).unwrap();
    // Builds before the close became final could append events after it;
    // the engine keeps and shows them, so their export imports.
    let mut after_close = history.clone();
    let mut extra = history.events[1].clone();
    extra.event_id = 4;
    after_close.events.push(extra);
    let text = after_close.to_json().unwrap();
    assert_eq!(WorkflowHistory::from_json(&text).unwrap(), after_close);

    let mut restarted = history.clone();
    let mut again = history.events[0].clone();
    again.event_id = 3;
    restarted.events[2] = again;
    match restarted.check() {
        Err(HistoryJsonError::Invalid {
            position: 3,
            problem,
        }) => {
            assert!(problem.contains("second WorkflowStarted"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    let mut headless = history.clone();
    headless.events.remove(0);
    for (i, event) in headless.events.iter_mut().enumerate() {
        event.event_id = i as u64 + 1;
    }
    match headless.check() {
        Err(HistoryJsonError::Invalid {
            position: 1,
            problem,
        }) => {
            assert!(problem.contains("expected WorkflowStarted"), "{problem}")
        }
        other => panic!("{other:?}"),
    }
    // The replayer checks a history built in code as well.
    let replayer = Replayer::new();
    assert!(matches!(
        replayer.replay(&restarted),
        Err(steadfast::ReplayError::InvalidHistory(_))
    ));
}

#[test]
fn no_prefix_of_a_document_panics() {
    let text = valid();
    let mut cut = 0;
    while cut < text.len() {
        if text.is_char_boundary(cut) {
            assert!(
                WorkflowHistory::from_json(&text[..cut]).is_err(),
                "prefix {cut}"
            );
        }
        cut += 1;
    }
    assert!(WorkflowHistory::from_json(&text).is_ok());
}

#[test]
fn a_saved_history_file_writes_back_byte_for_byte() {
    // The fixtures of tests/replayer.rs were written by version 1 of the
    // document: today's writer must produce the same text from them.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/histories");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let history = WorkflowHistory::from_file(&path).unwrap();
        assert_eq!(
            format!("{}\n", history.to_json().unwrap()),
            text,
            "{}",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 2);
}
