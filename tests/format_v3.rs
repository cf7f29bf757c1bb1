//! Promise: files written by store format 3 keep opening and running.
//!
//! `tests/fixtures/format-3.steadfast` was written once, by the build that
//! introduced format 3 (the event kinds `TimerCanceled`,
//! `WorkflowSignaledWithOptions` with each `SignalDelivery`, and
//! `SignalsUnread`), with `STEADFAST_WRITE_FIXTURES=1 cargo test --test
//! format_v3 -- --ignored write_format_3_fixture`, and is never
//! regenerated. Its runs:
//!
//! | Workflow ID | Type | State in the file |
//! |---|---|---|
//! | `format3-closed-unread` | `Format3.Careless` | Completed: two `format3.note` signals never read (`SignalsUnread`) |
//! | `format3-closed-prevent-close` | `Format3.Drain` | Completed: `format3.note` arrived while the code returned on `format3.go`, so `go` is recorded `WithNext` and the code read both |
//! | `format3-running-with-start` | `Format3.FirstLine` | Running: started by signal-with-start (`format3.note` = "at start", `BeforeStart`), read at its first line; waits for `format3.go` |
//! | `format3-running-timers` | `Format3.Ticks` | Running: a timer cancelled explicitly, two `format3.tick` signals with request IDs `tick-1`, `tick-2` (the first sent twice, recorded once) each winning a race against an hour's timer (cancelled); waits for `format3.go` |

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::ReadableDatabase;
use steadfast::{
    Engine, EngineBuilder, Event, EventKind, QueryDef, SignalDef, SignalDelivery, SignalOptions,
    UnreadSignals, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions, WorkflowStatus,
};

const FIXTURE: &str = "tests/fixtures/format-3.steadfast";

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("steadfast_meta");

const CARELESS: WorkflowDef<(), String> = WorkflowDef::new("Format3.Careless");
const DRAIN: WorkflowDef<(), Vec<String>> = WorkflowDef::new("Format3.Drain");
const FIRST_LINE: WorkflowDef<(), Option<String>> = WorkflowDef::new("Format3.FirstLine");
const TICKS: WorkflowDef<(), u32> = WorkflowDef::new("Format3.Ticks");

const GO: SignalDef<String> = SignalDef::new("format3.go");
const NOTE: SignalDef<String> = SignalDef::new("format3.note");
const TICK: SignalDef<u32> = SignalDef::new("format3.tick");
const SEEN: QueryDef<Vec<String>> = QueryDef::new("format3.seen");

async fn careless(ctx: WorkflowContext, _: ()) -> Result<String, WorkflowError> {
    ctx.recv_signal(GO).await?;
    Ok("careless".into())
}

async fn drain(ctx: WorkflowContext, _: ()) -> Result<Vec<String>, WorkflowError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = seen.clone();
    ctx.handle_query(SEEN, move || shared.lock().unwrap().clone());
    let go = ctx.recv_signal(GO).await?;
    seen.lock().unwrap().push(go);
    while let Some(note) = ctx.try_recv_signal(NOTE)? {
        seen.lock().unwrap().push(note);
    }
    let seen = seen.lock().unwrap().clone();
    Ok(seen)
}

async fn first_line(ctx: WorkflowContext, _: ()) -> Result<Option<String>, WorkflowError> {
    let note = ctx.try_recv_signal(NOTE)?;
    ctx.recv_signal(GO).await?;
    Ok(note)
}

async fn ticks(ctx: WorkflowContext, _: ()) -> Result<u32, WorkflowError> {
    ctx.sleep(Duration::from_secs(3600)).cancel();
    let mut sum = 0;
    for _ in 0..2 {
        let mut tick = ctx.recv_signal(TICK);
        let mut timeout = ctx.sleep(Duration::from_secs(3600));
        futures::select_biased! {
            t = tick => sum += t?,
            fired = timeout => fired?,
        }
    }
    ctx.recv_signal(GO).await?;
    Ok(sum)
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .workflow(CARELESS, careless)
        .workflow(DRAIN, drain)
        .workflow(FIRST_LINE, first_line)
        .workflow(TICKS, ticks)
}

fn tick_id(id: &str) -> SignalOptions {
    SignalOptions::new().with_request_id(id)
}

/// Writes `tests/fixtures/format-3.steadfast`. Ignored, and a no-op
/// without `STEADFAST_WRITE_FIXTURES=1`; refuses to overwrite the file.
/// On the single-threaded test runtime, so that the prevent-close race is
/// certain (see `tests/prevent_close.rs`).
#[tokio::test]
#[ignore]
async fn write_format_3_fixture() {
    let Some(target) = support::fixture_to_write(FIXTURE) else {
        return;
    };
    let db = support::temp_db();
    let engine = builder().open(&db.path).await.unwrap();

    let id = "format3-closed-unread";
    let run = engine
        .start_workflow(CARELESS, id, (), WorkflowOptions::new())
        .await
        .unwrap();
    for note in ["one", "two"] {
        engine.signal(id, NOTE, note.to_string()).await.unwrap();
    }
    engine.signal(id, GO, "go".into()).await.unwrap();
    run.result().await.unwrap();

    let id = "format3-closed-prevent-close";
    let run = engine
        .start_workflow(DRAIN, id, (), WorkflowOptions::new())
        .await
        .unwrap();
    let (go, note) = futures::join!(
        engine.signal(id, GO, "go".to_string()),
        engine.signal(id, NOTE, "late".to_string()),
    );
    go.unwrap();
    note.unwrap();
    assert_eq!(run.result().await.unwrap(), ["go", "late"]);

    engine
        .signal_with_start(
            FIRST_LINE,
            "format3-running-with-start",
            (),
            WorkflowOptions::new(),
            NOTE,
            "at start".to_string(),
        )
        .await
        .unwrap();

    let id = "format3-running-timers";
    engine
        .start_workflow(TICKS, id, (), WorkflowOptions::new())
        .await
        .unwrap();
    for (request_id, amount) in [("tick-1", 1), ("tick-1", 1), ("tick-2", 2)] {
        engine
            .signal_with_options(id, TICK, amount, tick_id(request_id))
            .await
            .unwrap();
    }
    engine.shutdown().await.unwrap();
    std::fs::copy(&db.path, &target).unwrap();
}

fn kinds_in(history: &[Event]) -> Vec<&EventKind> {
    history.iter().map(|e| &e.kind).collect()
}

#[tokio::test]
async fn format_3_files_keep_opening_and_running() {
    let db = support::copy_fixture(FIXTURE);
    {
        let raw = redb::Database::open(&db.path).unwrap();
        let txn = raw.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        let version = meta.get("format_version").unwrap().unwrap();
        assert_eq!(version.value(), 3u32.to_le_bytes());
    }
    let engine = builder().open(&db.path).await.unwrap();

    // Closed with unread signals, recorded before the close.
    let unread = engine.describe("format3-closed-unread").await.unwrap();
    assert_eq!(unread.status, WorkflowStatus::Completed);
    assert_eq!(
        unread.unread_signals,
        vec![UnreadSignals {
            signal_name: "format3.note".into(),
            count: 2,
        }]
    );

    // The prevent-close run replays to what its code read live.
    let history = engine
        .history("format3-closed-prevent-close")
        .await
        .unwrap();
    assert!(
        kinds_in(&history).iter().any(|k| matches!(
            k,
            EventKind::WorkflowSignaledWithOptions {
                delivery: SignalDelivery::WithNext,
                ..
            }
        )),
        "{history:#?}"
    );
    assert_eq!(
        engine
            .query("format3-closed-prevent-close", SEEN)
            .await
            .unwrap(),
        ["go", "late"]
    );

    // Signal-with-start: the code saw the signal at its first line, and
    // does again on replay.
    let history = engine.history("format3-running-with-start").await.unwrap();
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowSignaledWithOptions {
            delivery: SignalDelivery::BeforeStart,
            ..
        }
    ));
    engine
        .signal("format3-running-with-start", GO, "go".into())
        .await
        .unwrap();
    let run = engine
        .get_workflow_handle(FIRST_LINE, "format3-running-with-start")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), Some("at start".to_string()));

    // Cancelled timers stay cancelled, and the recorded request IDs still
    // deduplicate.
    let id = "format3-running-timers";
    let history = engine.history(id).await.unwrap();
    let cancels = kinds_in(&history)
        .iter()
        .filter(|k| matches!(k, EventKind::TimerCanceled { .. }))
        .count();
    assert_eq!(cancels, 3, "{history:#?}");
    let description = engine.describe(id).await.unwrap();
    assert_eq!(description.parked, None);
    assert!(description.pending_timers.is_empty());
    engine
        .signal_with_options(id, TICK, 1, tick_id("tick-2"))
        .await
        .unwrap();
    assert_eq!(engine.history(id).await.unwrap(), history);
    engine.signal(id, GO, "go".into()).await.unwrap();
    let run = engine.get_workflow_handle(TICKS, id).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 3);
    engine.shutdown().await.unwrap();
}
