//! Promise: no timer is left behind. A timer whose future is dropped before
//! it fires (it lost a `select_biased!`) or is cancelled explicitly
//! (`TimerFuture::cancel`) is cancelled durably: a `TimerCanceled` event
//! records it, `describe` no longer lists it, it never fires, and replay
//! (after a reopen) cancels it at the same point without a nondeterminism
//! error; a history written before cancellations were recorded replays
//! too, its dropped timers staying pending as they were.

mod support;

use std::path::Path;
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, Event, EventKind,
    SignalDef, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};
use support::temp_db;

/// Races a quick activity against an hour-long timer the given number of
/// times, then waits for `finish`; returns how many races the activity won.
const RACES: WorkflowDef<u32, u32> = WorkflowDef::new("Races");
/// Starts a short timer and cancels it, then sleeps on a longer one.
const CANCEL_ONE: WorkflowDef<(), ()> = WorkflowDef::new("CancelOne");

const QUICK: ActivityDef<u32, u32> = ActivityDef::new("quick");
const FINISH: SignalDef<()> = SignalDef::new("finish");

async fn quick(_ctx: ActivityContext, n: u32) -> Result<u32, ActivityError> {
    Ok(n)
}

async fn races(ctx: WorkflowContext, rounds: u32) -> Result<u32, WorkflowError> {
    let options = ActivityOptions::start_to_close(Duration::from_secs(10));
    let mut won = 0;
    for i in 0..rounds {
        let mut work = ctx.execute_activity(QUICK, i, options.clone());
        let mut timeout = ctx.sleep(Duration::from_secs(3600));
        futures::select_biased! {
            done = work => {
                done?;
                won += 1;
            }
            fired = timeout => fired?,
        }
    }
    ctx.recv_signal(FINISH).await?;
    Ok(won)
}

async fn cancel_one(ctx: WorkflowContext, _: ()) -> Result<(), WorkflowError> {
    let short = ctx.sleep(Duration::from_millis(20));
    short.cancel();
    ctx.sleep(Duration::from_millis(200)).await?;
    Ok(())
}

async fn open(path: &Path) -> Engine {
    Engine::builder()
        .workflow(RACES, races)
        .workflow(CANCEL_ONE, cancel_one)
        .activity(QUICK, quick)
        .open(path)
        .await
        .expect("open the engine")
}

fn count(history: &[Event], pred: impl Fn(&EventKind) -> bool) -> usize {
    history.iter().filter(|e| pred(&e.kind)).count()
}

#[tokio::test]
async fn timers_that_lose_a_select_are_cancelled_and_replay_alike() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(RACES, "races", 50, WorkflowOptions::new())
        .await
        .unwrap();
    let history = support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("races").await.unwrap();
        let done = count(&history, |k| {
            matches!(k, EventKind::ActivityCompleted { .. })
        });
        (done == 50).then_some(history)
    })
    .await;
    assert_eq!(
        count(&history, |k| matches!(k, EventKind::TimerStarted { .. })),
        50
    );
    assert_eq!(
        count(&history, |k| matches!(k, EventKind::TimerCanceled { .. })),
        50,
        "{history:#?}"
    );
    let description = engine.describe("races").await.unwrap();
    assert!(
        description.pending_timers.is_empty(),
        "{:?}",
        description.pending_timers
    );

    // Replayed from the file after a reopen: the same cancellations match
    // the history, nothing is parked, and no timer comes back.
    engine.shutdown().await.unwrap();
    let engine = open(&db.path).await;
    let description = engine.describe("races").await.unwrap();
    assert_eq!(description.parked, None);
    assert!(description.pending_timers.is_empty());
    engine.signal("races", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(RACES, run.workflow_id())
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 50);
    let after = engine.history("races").await.unwrap();
    assert_eq!(after[..history.len()], history[..], "replay added nothing");
    assert_eq!(
        count(&after, |k| matches!(k, EventKind::TimerFired { .. })),
        0
    );
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_explicitly_cancelled_timer_never_fires() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(CANCEL_ONE, "cancel-one", (), WorkflowOptions::new())
        .await
        .unwrap();
    run.result().await.unwrap();
    let history = engine.history("cancel-one").await.unwrap();
    let kinds: Vec<&EventKind> = history.iter().map(|e| &e.kind).collect();
    // Both timers were started in the first activation and the first was
    // cancelled there; the second (due later) fired, the first never did.
    assert!(
        matches!(
            kinds[..],
            [
                EventKind::WorkflowStarted { .. },
                EventKind::TimerStarted { seq: 1, .. },
                EventKind::TimerCanceled { seq: 1 },
                EventKind::TimerStarted { seq: 2, .. },
                EventKind::TimerFired { seq: 2 },
                EventKind::WorkflowCompleted { .. },
            ]
        ),
        "{history:#?}"
    );
    engine.shutdown().await.unwrap();
}

/// Rewrites a run's history without its `TimerCanceled` events, renumbered,
/// as a build before format 3 (where dropped timers stayed pending) wrote
/// it. The engine must not have the file open.
fn strip_cancellations(path: &Path, run: u128) {
    use redb::ReadableTable;
    let db = redb::Database::create(path).expect("open with redb");
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(support::HISTORY).unwrap();
        let mut events: Vec<Event> = table
            .range((run, 0)..=(run, u64::MAX))
            .unwrap()
            .map(|entry| support::decode_event(entry.unwrap().1.value()))
            .collect();
        let stored = events.len() as u64;
        events.retain(|e| !matches!(e.kind, EventKind::TimerCanceled { .. }));
        for (i, event) in events.iter_mut().enumerate() {
            event.event_id = i as u64 + 1;
            table
                .insert(
                    (run, event.event_id),
                    support::encode_event(event).as_slice(),
                )
                .unwrap();
        }
        for id in events.len() as u64 + 1..=stored {
            table.remove((run, id)).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_history_from_before_cancellations_still_replays() {
    let db = temp_db();
    let engine = open(&db.path).await;
    let run = engine
        .start_workflow(RACES, "old-races", 2, WorkflowOptions::new())
        .await
        .unwrap();
    support::eventually(Duration::from_secs(30), || async {
        let history = engine.history("old-races").await.unwrap();
        let cancels = count(&history, |k| matches!(k, EventKind::TimerCanceled { .. }));
        (cancels == 2).then_some(())
    })
    .await;
    engine.shutdown().await.unwrap();
    strip_cancellations(&db.path, run.run_id().as_uuid().as_u128());

    // The code drops its timers again on replay; the history holds no
    // cancellation there, which is how old histories look: no
    // nondeterminism, and (read from the file) the old timers are pending
    // as they were.
    let engine = open(&db.path).await;
    let description = engine.describe("old-races").await.unwrap();
    assert_eq!(description.parked, None);
    assert_eq!(description.pending_timers.len(), 2);
    let before = engine.history("old-races").await.unwrap();
    engine.signal("old-races", FINISH, ()).await.unwrap();
    let run = engine
        .get_workflow_handle(RACES, "old-races")
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 2);
    let after = engine.history("old-races").await.unwrap();
    assert_eq!(after[..before.len()], before[..]);
    // Only the drop past the history's end (in its last activation, which
    // the old build recorded no cancellation for) is recorded, when the
    // run resumes; the one inside the history is not.
    let cancels: Vec<&EventKind> = after
        .iter()
        .map(|e| &e.kind)
        .filter(|k| matches!(k, EventKind::TimerCanceled { .. }))
        .collect();
    assert!(
        matches!(cancels[..], [EventKind::TimerCanceled { seq: 4 }]),
        "{after:#?}"
    );
    engine.shutdown().await.unwrap();
}
