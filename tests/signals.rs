//! Promise: signals are durable, ordered and buffered. `engine.signal` is
//! acknowledged only once the signal is in the file, and fails with a typed
//! error for an unknown or closed workflow. Signals of a name are received in
//! arrival order; those sent before the workflow waits are kept until it
//! does; none is lost or received twice, also across a SIGKILL. A signal
//! raced against a durable timer with `select_biased!` resolves the same way
//! on replay. Signal-with-start starts a missing workflow with the signal as
//! its first event, visible to the code from its first line (also on
//! replay after a reopen), and is a plain signal to a running one.
//!
//! `parent_signals_survive_sigkill` re-runs this test binary as a child
//! process (`child_signal_sender`, which returns at once unless its
//! environment variables are set) and kills it with SIGKILL.

mod support;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use steadfast::{
    ClientError, Engine, Event, EventKind, SignalDef, SignalDelivery, WorkflowContext, WorkflowDef,
    WorkflowError, WorkflowIdConflictPolicy, WorkflowOptions, WorkflowStatus,
};
use support::{OpenDb, child_report, spawn_crash_child, temp_db};

/// Receives the given number of `item` signals and returns them in the
/// order received.
const COLLECT: WorkflowDef<u32, Vec<u32>> = WorkflowDef::new("Collect");
/// Sleeps the given milliseconds first, then receives the given number of
/// `item` signals.
const SLEEP_THEN_COLLECT: WorkflowDef<(u64, u32), Vec<u32>> = WorkflowDef::new("SleepThenCollect");
/// Receives three `b` signals, then three `a` signals.
const TWO_NAMES: WorkflowDef<(), (Vec<u32>, Vec<u32>)> = WorkflowDef::new("TwoNames");
/// Races `approve` against a durable timer of the given milliseconds, then
/// waits for `finish` and returns which side won.
const RACE: WorkflowDef<u64, String> = WorkflowDef::new("Race");
/// Receives `entry` signals until one carries `None`; returns the others.
const GATHER: WorkflowDef<(), Vec<(u32, u32)>> = WorkflowDef::new("Gather");
/// Takes an `item` without waiting at its first line, then waits for
/// `finish`; returns what the first line saw.
const FIRST_LINE: WorkflowDef<(), Option<u32>> = WorkflowDef::new("FirstLine");

const ITEM: SignalDef<u32> = SignalDef::new("item");
const A: SignalDef<u32> = SignalDef::new("a");
const B: SignalDef<u32> = SignalDef::new("b");
const APPROVE: SignalDef<String> = SignalDef::new("approve");
const FINISH: SignalDef<()> = SignalDef::new("finish");
const ENTRY: SignalDef<Option<(u32, u32)>> = SignalDef::new("entry");

async fn collect(ctx: WorkflowContext, n: u32) -> Result<Vec<u32>, WorkflowError> {
    let mut received = Vec::new();
    for _ in 0..n {
        received.push(ctx.recv_signal(ITEM).await?);
    }
    Ok(received)
}

async fn sleep_then_collect(
    ctx: WorkflowContext,
    (millis, n): (u64, u32),
) -> Result<Vec<u32>, WorkflowError> {
    ctx.sleep(Duration::from_millis(millis)).await?;
    collect(ctx, n).await
}

async fn two_names(ctx: WorkflowContext, _: ()) -> Result<(Vec<u32>, Vec<u32>), WorkflowError> {
    let mut b = Vec::new();
    for _ in 0..3 {
        b.push(ctx.recv_signal(B).await?);
    }
    let mut a = Vec::new();
    for _ in 0..3 {
        a.push(ctx.recv_signal(A).await?);
    }
    Ok((a, b))
}

async fn race(ctx: WorkflowContext, deadline_ms: u64) -> Result<String, WorkflowError> {
    let mut approval = ctx.recv_signal(APPROVE);
    let mut deadline = ctx.sleep(Duration::from_millis(deadline_ms));
    let outcome = futures::select_biased! {
        approver = approval => format!("approved by {}", approver?),
        fired = deadline => {
            fired?;
            "expired".to_string()
        }
    };
    // Keeps the run open after the race is decided, so that it can be
    // replayed from the file before it completes.
    ctx.recv_signal(FINISH).await?;
    Ok(outcome)
}

async fn gather(ctx: WorkflowContext, _: ()) -> Result<Vec<(u32, u32)>, WorkflowError> {
    let mut received = Vec::new();
    while let Some(entry) = ctx.recv_signal(ENTRY).await? {
        received.push(entry);
    }
    Ok(received)
}

async fn first_line(ctx: WorkflowContext, _: ()) -> Result<Option<u32>, WorkflowError> {
    let seen = ctx.try_recv_signal(ITEM)?;
    ctx.recv_signal(FINISH).await?;
    Ok(seen)
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(FIRST_LINE, first_line)
        .workflow(COLLECT, collect)
        .workflow(SLEEP_THEN_COLLECT, sleep_then_collect)
        .workflow(TWO_NAMES, two_names)
        .workflow(RACE, race)
        .workflow(GATHER, gather)
        .open_db(path)
        .await
        .expect("open the engine")
}

/// The payloads of the history's `WorkflowSignaled` events named `name`, in
/// history order.
fn signaled<T: serde::de::DeserializeOwned>(history: &[Event], name: &str) -> Vec<T> {
    history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::WorkflowSignaled { signal_name, input } if signal_name == name => {
                Some(input.decode().expect("a signal payload decodes"))
            }
            _ => None,
        })
        .collect()
}

fn position(history: &[Event], pred: impl Fn(&EventKind) -> bool) -> Option<usize> {
    history.iter().position(|e| pred(&e.kind))
}

#[tokio::test]
async fn signal_to_unknown_workflow_is_not_found() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let err = engine.signal("nobody", ITEM, 1).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::NotFound { workflow_id } if workflow_id == "nobody"),
        "{err:?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signal_to_closed_workflow_is_rejected() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(COLLECT, "closed", 0, WorkflowOptions::new())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), Vec::<u32>::new());
    let before = engine.history("closed").await.unwrap();

    let err = engine.signal("closed", ITEM, 1).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::WorkflowClosed { workflow_id, status: WorkflowStatus::Completed }
                if workflow_id == "closed"
        ),
        "{err:?}"
    );
    // A refused signal leaves no trace.
    assert_eq!(engine.history("closed").await.unwrap(), before);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_acknowledged_signal_is_already_in_the_file() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(COLLECT, "durable", 3, WorkflowOptions::new())
        .await
        .unwrap();
    for i in 0..2 {
        engine.signal("durable", ITEM, i).await.unwrap();
        // Read back from the file right after the acknowledgement.
        let history = engine.history("durable").await.unwrap();
        let seen: Vec<u32> = signaled(&history, "item");
        assert_eq!(seen, (0..=i).collect::<Vec<_>>());
    }
    // Still there after the engine is closed and opened again.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    let history = engine.history("durable").await.unwrap();
    assert_eq!(signaled::<u32>(&history, "item"), vec![0, 1]);
    engine.signal("durable", ITEM, 2).await.unwrap();
    let run = engine
        .get_workflow_handle(COLLECT, "durable")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), vec![0, 1, 2]);
    engine.shutdown().await.unwrap();
}

/// A signal named at run time with a JSON payload (what the admin endpoint
/// sends) reaches the code as a typed one does; an empty name and an
/// oversize payload are refused before anything is written.
#[tokio::test]
async fn a_signal_by_name_is_read_as_its_typed_definition() {
    let db = temp_db();
    let engine = Engine::builder()
        .workflow(COLLECT, collect)
        .max_payload_bytes(64)
        .open_db(&db.path)
        .await
        .unwrap();
    let run = engine
        .start_workflow(COLLECT, "by-name", 2, WorkflowOptions::new())
        .await
        .unwrap();
    for i in [7u32, 9] {
        let payload = steadfast::Payload::encode(&serde_json::json!(i)).unwrap();
        engine
            .signal_by_name("by-name", "item", payload, steadfast::SignalOptions::new())
            .await
            .unwrap();
        if i == 7 {
            let before = engine.history("by-name").await.unwrap();
            let empty = steadfast::Payload::encode(&i).unwrap();
            let refused = engine
                .signal_by_name("by-name", "", empty, steadfast::SignalOptions::new())
                .await;
            assert!(
                matches!(refused, Err(ClientError::InvalidArgument(_))),
                "{refused:?}"
            );
            let big = steadfast::Payload::encode(&"x".repeat(100)).unwrap();
            let refused = engine
                .signal_by_name("by-name", "item", big, steadfast::SignalOptions::new())
                .await;
            assert!(
                matches!(refused, Err(ClientError::PayloadTooLarge { .. })),
                "{refused:?}"
            );
            assert_eq!(engine.history("by-name").await.unwrap(), before);
        }
    }
    assert_eq!(run.result().await.unwrap(), vec![7, 9]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_of_a_name_are_received_in_arrival_order() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(COLLECT, "ordered", 20, WorkflowOptions::new())
        .await
        .unwrap();
    for i in 0..20 {
        engine.signal("ordered", ITEM, i).await.unwrap();
    }
    assert_eq!(run.result().await.unwrap(), (0..20).collect::<Vec<_>>());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_of_different_names_queue_separately() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(TWO_NAMES, "two-names", (), WorkflowOptions::new())
        .await
        .unwrap();
    // Interleaved; the workflow takes all of `b` before any of `a`.
    for i in 0..3 {
        engine.signal("two-names", A, i).await.unwrap();
        engine.signal("two-names", B, 10 + i).await.unwrap();
    }
    let (a, b) = run.result().await.unwrap();
    assert_eq!(a, vec![0, 1, 2]);
    assert_eq!(b, vec![10, 11, 12]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_sent_before_the_workflow_waits_are_kept_until_it_does() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(
            SLEEP_THEN_COLLECT,
            "early",
            // Long enough for five signals to be committed one by one.
            (1_000, 5),
            WorkflowOptions::new(),
        )
        .await
        .unwrap();
    for i in 0..5 {
        engine.signal("early", ITEM, i).await.unwrap();
    }
    assert_eq!(run.result().await.unwrap(), vec![0, 1, 2, 3, 4]);

    // They did arrive while the workflow slept.
    let history = engine.history("early").await.unwrap();
    let fired =
        position(&history, |k| matches!(k, EventKind::TimerFired { .. })).expect("the timer fired");
    let signals: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::WorkflowSignaled { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(signals.len(), 5);
    assert!(
        signals.iter().all(|&i| i < fired),
        "every signal was recorded before the timer fired: {history:#?}"
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signals_are_none_lost_none_twice() {
    const SENDERS: u32 = 8;
    const EACH: u32 = 10;
    let db = temp_db();
    let engine = Arc::new(open(&db.path).await);
    let run = engine
        .start_workflow(COLLECT, "many", SENDERS * EACH, WorkflowOptions::new())
        .await
        .unwrap();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let engine = engine.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                engine.signal("many", ITEM, sender * 100 + i).await.unwrap();
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let received = run.result().await.unwrap();

    // Each exactly once.
    let distinct: HashSet<u32> = received.iter().copied().collect();
    assert_eq!(received.len(), (SENDERS * EACH) as usize, "{received:?}");
    assert_eq!(distinct.len(), received.len(), "duplicates in {received:?}");
    for sender in 0..SENDERS {
        // Each sender's signals in the order it sent them.
        let own: Vec<u32> = received
            .iter()
            .copied()
            .filter(|v| v / 100 == sender)
            .collect();
        assert_eq!(own, (0..EACH).map(|i| sender * 100 + i).collect::<Vec<_>>());
    }
    // And in the order the engine recorded their arrival.
    let history = engine.history("many").await.unwrap();
    assert_eq!(signaled::<u32>(&history, "item"), received);

    let engine = Arc::try_unwrap(engine).expect("no other owner");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signal_that_won_a_race_against_a_timer_wins_again_on_replay() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(RACE, "race-signal", 3_600_000, WorkflowOptions::new())
        .await
        .unwrap();
    let run_id = run.run_id();
    // Acknowledged once durable, and the workflow has taken it by then.
    engine
        .signal("race-signal", APPROVE, "alice".to_string())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();

    // The reopened engine replays the race from the file.
    let engine = open(&db.path).await;
    let history = engine.history("race-signal").await.unwrap();
    assert_eq!(signaled::<String>(&history, "approve"), vec!["alice"]);
    assert!(
        position(&history, |k| matches!(k, EventKind::TimerFired { .. })).is_none(),
        "the one-hour timer has not fired: {history:#?}"
    );
    engine.signal("race-signal", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(RACE, "race-signal")
        .await
        .unwrap();
    assert_eq!(run.run_id(), run_id);
    assert_eq!(run.result().await.unwrap(), "approved by alice");
    let description = engine.describe("race-signal").await.unwrap();
    assert_eq!(description.status, WorkflowStatus::Completed);
    assert!(description.parked.is_none());
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_timer_that_won_a_race_against_a_signal_wins_again_on_replay() {
    let db = temp_db();
    let engine = open(&db.path).await;
    engine
        .start_workflow(RACE, "race-timer", 100, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(10), || async {
        let history = engine.history("race-timer").await.ok()?;
        position(&history, |k| matches!(k, EventKind::TimerFired { .. })).map(|_| ())
    })
    .await;
    // Too late: recorded after the timer, so it stays in the buffer.
    engine
        .signal("race-timer", APPROVE, "bob".to_string())
        .await
        .unwrap();
    engine.shutdown().await.unwrap();

    let engine = open(&db.path).await;
    engine.signal("race-timer", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(RACE, "race-timer")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), "expired");
    let history = engine.history("race-timer").await.unwrap();
    let fired = position(&history, |k| matches!(k, EventKind::TimerFired { .. })).unwrap();
    let approved = position(
        &history,
        |k| matches!(k, EventKind::WorkflowSignaled { signal_name, .. } if signal_name == "approve"),
    )
    .unwrap();
    assert!(fired < approved, "{history:#?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signal_with_start_starts_a_missing_workflow_with_the_signal_first() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .signal_with_start(COLLECT, "sws-new", 2, WorkflowOptions::new(), ITEM, 7)
        .await
        .unwrap();
    let history = engine.history("sws-new").await.unwrap();
    assert!(matches!(history[0].kind, EventKind::WorkflowStarted { .. }));
    assert!(
        matches!(
            &history[1].kind,
            EventKind::WorkflowSignaledWithOptions {
                signal_name,
                delivery: SignalDelivery::BeforeStart,
                ..
            }
                if signal_name == "item"
        ),
        "the signal is the first event after the start, delivered with the first run of the \
         code: {history:#?}"
    );
    engine.signal("sws-new", ITEM, 8).await.unwrap();
    assert_eq!(run.result().await.unwrap(), vec![7, 8]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_signal_of_a_signal_with_start_is_there_before_the_code_first_runs() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .signal_with_start(FIRST_LINE, "sws-first", (), WorkflowOptions::new(), ITEM, 7)
        .await
        .unwrap();
    // Replayed from the file: the code sees the signal at its first line
    // again, and nothing diverges.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    assert_eq!(engine.describe("sws-first").await.unwrap().parked, None);
    engine.signal("sws-first", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(FIRST_LINE, run.workflow_id())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), Some(7));
    // A plain start has nothing there yet.
    engine
        .start_workflow(FIRST_LINE, "plain-first", (), WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("plain-first", ITEM, 8).await.unwrap();
    engine.signal("plain-first", FINISH, ()).await.unwrap();
    let plain = engine
        .get_workflow_handle(FIRST_LINE, "plain-first")
        .await
        .unwrap();
    assert_eq!(plain.result().await.unwrap(), None);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signal_with_start_on_a_running_workflow_is_a_plain_signal() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let first = engine
        .start_workflow(COLLECT, "sws-running", 2, WorkflowOptions::new())
        .await
        .unwrap();
    engine.signal("sws-running", ITEM, 1).await.unwrap();
    // The input (99 signals to wait for) is ignored: no new run starts.
    let second = engine
        .signal_with_start(COLLECT, "sws-running", 99, WorkflowOptions::new(), ITEM, 2)
        .await
        .unwrap();
    assert_eq!(second.run_id(), first.run_id());
    assert_eq!(first.result().await.unwrap(), vec![1, 2]);
    let history = engine.history("sws-running").await.unwrap();
    let starts = history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::WorkflowStarted { .. }))
        .count();
    assert_eq!(starts, 1);
    assert_eq!(signaled::<u32>(&history, "item"), vec![1, 2]);
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn signal_with_start_on_a_closed_workflow_starts_a_new_run() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let first = engine
        .start_workflow(COLLECT, "sws-closed", 0, WorkflowOptions::new())
        .await
        .unwrap();
    first.result().await.unwrap();
    let second = engine
        .signal_with_start(COLLECT, "sws-closed", 1, WorkflowOptions::new(), ITEM, 5)
        .await
        .unwrap();
    assert_ne!(second.run_id(), first.run_id());
    assert_eq!(second.result().await.unwrap(), vec![5]);
    engine.shutdown().await.unwrap();
}

// ----- SIGKILL: every acknowledged signal survives -----

/// The child: the file to open.
const KILL_DB_ENV: &str = "STEADFAST_SIGNALS_KILL_DB";
/// The child: which round of the parent it is (part of each payload).
const KILL_ROUND_ENV: &str = "STEADFAST_SIGNALS_KILL_ROUND";
const KILL_WORKFLOW_ID: &str = "signals-kill";

/// The child: opens the file, starts the gather workflow (or finds it
/// running), then signals `(round, 0)`, `(round, 1)`, … one after another,
/// printing `acked ROUND I` after each acknowledgement, until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_signal_sender() {
    let Some(db) = std::env::var_os(KILL_DB_ENV) else {
        return;
    };
    let round: u32 = std::env::var(KILL_ROUND_ENV)
        .expect("the round is set")
        .parse()
        .expect("the round is a number");
    let engine = open(Path::new(&db)).await;
    let options =
        WorkflowOptions::new().with_id_conflict_policy(WorkflowIdConflictPolicy::UseExisting);
    engine
        .start_workflow(GATHER, KILL_WORKFLOW_ID, (), options)
        .await
        .expect("start the workflow");
    child_report("started");
    for i in 0.. {
        engine
            .signal(KILL_WORKFLOW_ID, ENTRY, Some((round, i)))
            .await
            .expect("signal");
        child_report(&format!("acked {round} {i}"));
    }
}

fn parse_ack(line: &str) -> Option<(u32, u32)> {
    let mut parts = line.strip_prefix("acked ")?.split(' ');
    let round = parts.next()?.parse().ok()?;
    let i = parts.next()?.parse().ok()?;
    Some((round, i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_signals_survive_sigkill() {
    const ROUNDS: u32 = 2;
    let db = temp_db();
    let mut acked: Vec<(u32, u32)> = Vec::new();
    for round in 0..ROUNDS {
        let round_text = round.to_string();
        let env = [
            (KILL_DB_ENV, db.path.as_os_str()),
            (KILL_ROUND_ENV, OsStr::new(&round_text)),
        ];
        let mut child = spawn_crash_child("child_signal_sender", &env);
        // Kill right after an acknowledgement, at a different point each round.
        let target = format!("acked {round} {}", 8 + 5 * round);
        child
            .wait_for_line(Duration::from_secs(60), |l| l == target)
            .await;
        let printed = child.kill();
        let round_acks: Vec<(u32, u32)> = printed.iter().filter_map(|l| parse_ack(l)).collect();
        assert!(round_acks.len() > 8, "{printed:?}");
        acked.extend(round_acks);
    }

    let engine = open(&db.path).await;
    engine
        .signal(KILL_WORKFLOW_ID, ENTRY, None)
        .await
        .expect("the run resumed and takes signals");
    let run = engine
        .get_workflow_handle(GATHER, KILL_WORKFLOW_ID)
        .await
        .unwrap();
    let received = run.result().await.unwrap();

    let distinct: HashSet<(u32, u32)> = received.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        received.len(),
        "received twice: {received:?}"
    );
    for ack in &acked {
        assert!(
            distinct.contains(ack),
            "acknowledged signal {ack:?} was lost; received {received:?}"
        );
    }
    // In the order sent: rounds one after another, each a gapless prefix
    // holding every acknowledged signal and at most the one in flight.
    let mut sorted = received.clone();
    sorted.sort();
    assert_eq!(sorted, received, "received out of order");
    for round in 0..ROUNDS {
        let got: Vec<u32> = received
            .iter()
            .filter(|(r, _)| *r == round)
            .map(|(_, i)| *i)
            .collect();
        let acks = acked.iter().filter(|(r, _)| *r == round).count();
        assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>());
        assert!(
            got.len() == acks || got.len() == acks + 1,
            "round {round}: {acks} acknowledged, {} received",
            got.len()
        );
    }
    engine.shutdown().await.unwrap();
}
