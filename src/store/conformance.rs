//! The storage contract written once as tests: every promise of [`Store`]
//! (see [`contract`](super::contract)) is a function here that takes a
//! fresh, empty store, so every backend runs the same suite: the redb store
//! and the PostgreSQL store run it below, each opening its own fresh store
//! (`None` when the backend cannot be had here: its tests return).

use std::time::{Duration, SystemTime};

use super::{
    ContinueAsNewOp, EncodedRecord, EncodedSchedule, Query, ReuseRule, RunRecord, ScheduleOp,
    ScheduledStart, Store, StoreError, WAKE_NEVER, WAKE_NOW, WriteOp, WriteOutcome,
};
use crate::codec;
use crate::history::{Event, EventKind, Payload, RunId, WorkflowStatus};
use crate::schedule::record::ScheduleRecord;

/// A time the store could not have made up: the engine's clock, given.
fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn event(event_id: u64, kind: EventKind) -> (u64, Vec<u8>) {
    let event = Event {
        event_id,
        timestamp: at(event_id),
        kind,
    };
    (event_id, codec::encode(&event).expect("an event encodes"))
}

fn signal(event_id: u64) -> (u64, Vec<u8>) {
    let kind = EventKind::WorkflowSignaled {
        signal_name: "s".into(),
        input: Payload::encode(&event_id).expect("payload"),
    };
    event(event_id, kind)
}

fn terminated(event_id: u64) -> Vec<u8> {
    let kind = EventKind::WorkflowTerminated {
        reason: "test".into(),
    };
    event(event_id, kind).1
}

fn record(workflow_id: &str, status: WorkflowStatus, history_len: u64) -> RunRecord {
    RunRecord {
        workflow_id: workflow_id.into(),
        workflow_type: "T".into(),
        task_queue: "default".into(),
        status,
        start_time: at(1),
        close_time: status.is_closed().then(|| at(history_len)),
        history_len,
        search_attributes: Default::default(),
        memo: None,
        paused: None,
        reset_from: None,
    }
}

fn start(workflow_id: &str, run_id: RunId, reuse: ReuseRule, wake: u64) -> WriteOp {
    let started = EventKind::WorkflowStarted {
        workflow_type: "T".into(),
        workflow_id: workflow_id.into(),
        task_queue: "default".into(),
        input: Payload::encode(&()).expect("payload"),
        run_timeout: None,
        execution_timeout: None,
    };
    WriteOp::Start {
        run_id,
        record: EncodedRecord::new(record(workflow_id, WorkflowStatus::Running, 1))
            .expect("a record encodes"),
        events: vec![event(1, started).1],
        reuse,
        wake,
    }
}

fn append(run_id: RunId, expect_next: u64, events: Vec<(u64, Vec<u8>)>, wake: u64) -> WriteOp {
    WriteOp::Append {
        run_id,
        record: None,
        expect_next,
        events,
        wake,
    }
}

fn close(workflow_id: &str, run_id: RunId, event_id: u64) -> WriteOp {
    WriteOp::Close {
        run_id,
        workflow_id: workflow_id.into(),
        event_id,
        at: at(event_id),
        event: terminated(event_id),
        status: WorkflowStatus::Terminated,
    }
}

fn conflict(result: Result<WriteOutcome, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Conflict { .. })),
        "expected a conflict, got {result:?}"
    );
}

/// A started run reads back as written: record, history, times, IDs.
pub(crate) async fn start_reads_back(store: &dyn Store) {
    let run_id = RunId::new_time_ordered();
    let outcome = store
        .write(start("w", run_id, ReuseRule::Allow, WAKE_NOW))
        .await;
    assert_eq!(outcome.expect("start"), WriteOutcome::Started);
    let (current, stored) = store
        .current_run("w")
        .await
        .expect("read")
        .expect("the run");
    assert_eq!(current, run_id);
    assert_eq!(stored, record("w", WorkflowStatus::Running, 1));
    assert_eq!(store.run(run_id, "w").await.expect("read"), Some(stored));
    let history = store.history(run_id, "w").await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].event_id, history[0].timestamp), (1, at(1)));
    assert_eq!(store.history_len(run_id, "w").await.expect("len"), 1);
    assert_eq!(
        store.last_event(run_id, "w").await.expect("last"),
        history.first().cloned()
    );
    assert!(store.current_run("other").await.expect("read").is_none());
    let unknown = RunId::new_time_ordered();
    assert!(store.run(unknown, "x").await.expect("read").is_none());
    assert!(store.history(unknown, "x").await.expect("read").is_empty());
}

/// A workflow ID has one running run; a closed one is reused as its rule says.
pub(crate) async fn starts_respect_running_ids_and_reuse_rules(store: &dyn Store) {
    let first = RunId::new_time_ordered();
    store
        .write(start("w", first, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    let second = RunId::new_time_ordered();
    for reuse in [ReuseRule::Allow, ReuseRule::Reject] {
        let outcome = store.write(start("w", second, reuse, WAKE_NEVER)).await;
        assert_eq!(outcome.expect("start"), WriteOutcome::AlreadyRunning(first));
    }
    store.write(close("w", first, 2)).await.expect("close");
    for reuse in [ReuseRule::Reject, ReuseRule::AllowIfLastNotCompleted] {
        let refused = store.write(start("w", second, reuse, WAKE_NEVER)).await;
        let expected = match reuse {
            // Terminated is not completed: this rule lets it be reused.
            ReuseRule::AllowIfLastNotCompleted => WriteOutcome::Started,
            _ => WriteOutcome::ReuseRejected(WorkflowStatus::Terminated),
        };
        assert_eq!(refused.expect("start"), expected);
    }
    let (current, _) = store.current_run("w").await.expect("read").expect("run");
    assert_eq!(current, second);
    // A run ID already stored is refused, never written over, also under
    // another workflow ID.
    conflict(
        store
            .write(start("x", first, ReuseRule::Allow, WAKE_NEVER))
            .await,
    );
    assert!(store.current_run("x").await.expect("read").is_none());
    // The first run and its history are still there.
    assert_eq!(store.history_len(first, "w").await.expect("len"), 2);
}

/// Appends are conditional: only an open run, only right after its stored
/// history, numbered from there; a refused one writes nothing.
pub(crate) async fn appends_follow_the_stored_history_of_an_open_run(store: &dyn Store) {
    let run_id = RunId::new_time_ordered();
    store
        .write(start("w", run_id, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    let appended = store
        .write(append(run_id, 2, vec![signal(2), signal(3)], WAKE_NEVER))
        .await;
    assert_eq!(appended.expect("append"), WriteOutcome::Appended);
    // Behind the history, ahead of it, misnumbered.
    for (expect_next, events) in [
        (3, vec![signal(3)]),
        (5, vec![signal(5)]),
        (4, vec![signal(5)]),
        (4, vec![signal(4), signal(6)]),
    ] {
        conflict(
            store
                .write(append(run_id, expect_next, events, WAKE_NEVER))
                .await,
        );
    }
    let history = store.history(run_id, "w").await.expect("history");
    assert_eq!(history.len(), 3, "{history:#?}");
    // Nothing overwritten: event 3 is still the first append's.
    assert_eq!(
        codec::encode(&history[2]).expect("encode"),
        signal(3).1,
        "event 3 was overwritten"
    );
}

/// A close is conditional like an append; a closed run takes nothing more.
pub(crate) async fn a_closed_run_takes_nothing(store: &dyn Store) {
    let run_id = RunId::new_time_ordered();
    store
        .write(start("w", run_id, ReuseRule::Allow, WAKE_NOW))
        .await
        .expect("start");
    conflict(store.write(close("w", run_id, 3)).await);
    assert_eq!(
        store.write(close("w", run_id, 2)).await.expect("close"),
        WriteOutcome::Closed
    );
    let stored = store.run(run_id, "w").await.expect("read").expect("record");
    assert_eq!(stored.status, WorkflowStatus::Terminated);
    assert_eq!(
        stored.close_time,
        Some(at(2)),
        "the close time is the engine's"
    );
    assert_eq!(stored.history_len, 2);
    assert_eq!(
        store.write(close("w", run_id, 3)).await.expect("close"),
        WriteOutcome::AlreadyClosed(WorkflowStatus::Terminated)
    );
    conflict(
        store
            .write(append(run_id, 3, vec![signal(3)], WAKE_NOW))
            .await,
    );
    let history = store.history(run_id, "w").await.expect("history");
    assert_eq!(history.len(), 2);
    assert!(matches!(
        history[1].kind,
        EventKind::WorkflowTerminated { .. }
    ));
    // A closed run has no wake-up.
    let due = store.wakeups(0, u64::MAX).await.expect("wakeups");
    assert!(due.iter().all(|(_, r)| *r != run_id), "{due:?}");

    // Nothing follows a close, also within one append: one that closes the
    // run must end with the close event, or it is refused whole.
    let other = RunId::new_time_ordered();
    store
        .write(start("w2", other, ReuseRule::Allow, WAKE_NOW))
        .await
        .expect("start");
    let completed = EventKind::WorkflowCompleted {
        result: Payload::encode(&()).expect("payload"),
    };
    let closing = WriteOp::Append {
        run_id: other,
        record: Some(
            EncodedRecord::new(record("w2", WorkflowStatus::Completed, 3)).expect("encodes"),
        ),
        expect_next: 2,
        events: vec![event(2, completed), signal(3)],
        wake: WAKE_NOW,
    };
    conflict(store.write(closing).await);
    assert_eq!(store.history(other, "w2").await.expect("history").len(), 1);
    let stored = store.run(other, "w2").await.expect("read").expect("record");
    assert_eq!(stored.status, WorkflowStatus::Running);
}

/// Wake-ups follow the last write's hint, in time order; `WAKE_NEVER` is
/// never due.
pub(crate) async fn wakeups_follow_the_hints(store: &dyn Store) {
    let (a, b, c) = (
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
    );
    store
        .write(start("a", a, ReuseRule::Allow, 5_000))
        .await
        .expect("start");
    store
        .write(start("b", b, ReuseRule::Allow, 2_000))
        .await
        .expect("start");
    store
        .write(start("c", c, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    let due = store.wakeups(0, 10_000).await.expect("wakeups");
    assert_eq!(due, vec![(2_000, b), (5_000, a)]);
    assert_eq!(
        store.wakeups(3_000, 10_000).await.expect("wakeups"),
        vec![(5_000, a)]
    );
    // The hint moves with the next append.
    store
        .write(append(a, 2, vec![signal(2)], 1_000))
        .await
        .expect("append");
    store
        .write(append(b, 2, vec![signal(2)], WAKE_NEVER))
        .await
        .expect("append");
    assert_eq!(
        store.wakeups(0, 10_000).await.expect("wakeups"),
        vec![(1_000, a)]
    );
}

/// History pages cut the history anywhere and put it back together.
pub(crate) async fn history_pages_cover_the_history(store: &dyn Store) {
    let run_id = RunId::new_time_ordered();
    store
        .write(start("w", run_id, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    let events = (2..=40).map(signal).collect();
    store
        .write(append(run_id, 2, events, WAKE_NEVER))
        .await
        .expect("append");
    let whole = store.history(run_id, "w").await.expect("history");
    assert_eq!(whole.len(), 40);
    for limit in [1, 7, 40, 100] {
        let mut paged = Vec::new();
        loop {
            let from = paged.len() as u64 + 1;
            let page = store
                .history_page(run_id, "w", from, limit)
                .await
                .expect("page");
            assert!(page.len() <= limit);
            if page.is_empty() {
                break;
            }
            paged.extend(page);
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }
    let tail = store.history_page(run_id, "w", 38, 10).await.expect("page");
    assert_eq!(
        tail.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [38, 39, 40]
    );
}

/// Concurrent writes (which may share a commit) are each answered on their
/// own: one refused does not fail the others.
pub(crate) async fn concurrent_writes_are_answered_each(store: &dyn Store) {
    let runs: Vec<RunId> = (0..50).map(|_| RunId::new_time_ordered()).collect();
    let starts = runs.iter().enumerate().map(|(i, run_id)| {
        // Every tenth reuses the ID of the one before it: refused.
        let id = format!("w{}", if i % 10 == 9 { i - 1 } else { i });
        store.write(start(&id, *run_id, ReuseRule::Allow, WAKE_NEVER))
    });
    let outcomes = futures::future::join_all(starts).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.expect("start");
        if i % 10 == 9 {
            assert!(
                matches!(outcome, WriteOutcome::AlreadyRunning(_)),
                "{i}: {outcome:?}"
            );
        } else {
            assert_eq!(outcome, WriteOutcome::Started, "{i}");
        }
    }
    // Appends to all, one of them stale.
    let appends = runs.iter().enumerate().map(|(i, run_id)| {
        let next = if i == 3 { 5 } else { 2 };
        store.write(append(*run_id, next, vec![signal(next)], WAKE_NEVER))
    });
    let outcomes = futures::future::join_all(appends).await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match i {
            3 => conflict(outcome),
            // Never started: no open run to append to.
            i if i % 10 == 9 => conflict(outcome),
            _ => assert_eq!(outcome.expect("append"), WriteOutcome::Appended, "{i}"),
        }
    }
}

/// `list` answers from what was written: open runs first, then closed ones
/// newest close first, filtered by status; delete removes a closed ID.
pub(crate) async fn list_and_delete(store: &dyn Store) {
    let (open, closed_early, closed_late) = (
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
    );
    for (id, run_id) in [
        ("open", open),
        ("early", closed_early),
        ("late", closed_late),
    ] {
        store
            .write(start(id, run_id, ReuseRule::Allow, WAKE_NEVER))
            .await
            .expect("start");
    }
    store
        .write(append(closed_late, 2, vec![signal(2)], WAKE_NEVER))
        .await
        .expect("append");
    store
        .write(append(open, 2, vec![signal(2), signal(3)], WAKE_NEVER))
        .await
        .expect("append");
    store
        .write(close("early", closed_early, 2))
        .await
        .expect("close");
    // Closed at event 3's time, later than event 2's.
    store
        .write(close("late", closed_late, 3))
        .await
        .expect("close");
    let page = store
        .list(&Query {
            page_size: 10,
            ..Query::default()
        })
        .await
        .expect("list");
    let order: Vec<RunId> = page.runs.iter().map(|(r, _)| *r).collect();
    assert_eq!(order, [open, closed_late, closed_early]);
    assert_eq!(
        page.runs[0].1.history_len, 3,
        "an open run's length as of now"
    );
    assert!(page.next.is_none());
    let terminated = store
        .list(&Query {
            status: Some(WorkflowStatus::Terminated),
            page_size: 1,
            ..Query::default()
        })
        .await
        .expect("list");
    assert_eq!(terminated.runs.len(), 1);
    assert_eq!(terminated.runs[0].0, closed_late);
    let rest = store
        .list(&Query {
            status: Some(WorkflowStatus::Terminated),
            page_size: 1,
            after: terminated.next,
            ..Query::default()
        })
        .await
        .expect("list");
    assert_eq!(
        rest.runs.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [closed_early]
    );

    let delete = |id: &str| {
        store.write(WriteOp::Delete {
            workflow_id: id.into(),
        })
    };
    assert_eq!(
        delete("open").await.expect("delete"),
        WriteOutcome::StillRunning(open)
    );
    assert_eq!(
        delete("nobody").await.expect("delete"),
        WriteOutcome::NotFound
    );
    assert_eq!(
        delete("early").await.expect("delete"),
        WriteOutcome::Deleted(vec![closed_early])
    );
    assert!(store.current_run("early").await.expect("read").is_none());
    assert!(
        store
            .history(closed_early, "early")
            .await
            .expect("read")
            .is_empty()
    );
    let page = store
        .list(&Query {
            page_size: 10,
            ..Query::default()
        })
        .await
        .expect("list");
    assert_eq!(page.runs.len(), 2);
}

/// A sweep removes the runs closed at or before the cutoff, whole, and
/// nothing else; a newer run of a swept ID keeps the ID.
pub(crate) async fn sweeps_remove_only_runs_closed_by_the_cutoff(store: &dyn Store) {
    let (old, recent, open, reused) = (
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
    );
    for (id, run_id) in [("old", old), ("recent", recent), ("open", open)] {
        store
            .write(start(id, run_id, ReuseRule::Allow, WAKE_NEVER))
            .await
            .expect("start");
    }
    // Closed at event 2's time and at event 9's.
    store.write(close("old", old, 2)).await.expect("close");
    let events = (2..=8).map(signal).collect();
    store
        .write(append(recent, 2, events, WAKE_NEVER))
        .await
        .expect("append");
    store
        .write(close("recent", recent, 9))
        .await
        .expect("close");
    // The ID "old" runs again: its new run must survive the old one's sweep.
    store
        .write(start("old", reused, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    assert!(!store.any_closed_by(at(1)).await.expect("read"));
    assert!(store.any_closed_by(at(5)).await.expect("read"));
    let swept = store
        .write(WriteOp::Sweep { cutoff: at(5) })
        .await
        .expect("sweep");
    let WriteOutcome::Swept { runs, more, .. } = swept else {
        panic!("expected a sweep, got {swept:?}");
    };
    assert_eq!((runs, more), (vec![old], false));
    assert!(store.run(old, "old").await.expect("read").is_none());
    assert!(store.history(old, "old").await.expect("read").is_empty());
    let (current, _) = store.current_run("old").await.expect("read").expect("run");
    assert_eq!(current, reused, "the newer run keeps the ID");
    assert!(store.run(recent, "recent").await.expect("read").is_some());
    assert!(!store.any_closed_by(at(5)).await.expect("read"));
    // A cutoff past every close removes the rest of the closed, never an open run.
    store
        .write(WriteOp::Sweep { cutoff: at(100) })
        .await
        .expect("sweep");
    assert!(store.current_run("recent").await.expect("read").is_none());
    assert!(store.run(open, "open").await.expect("read").is_some());
    assert!(store.run(reused, "old").await.expect("read").is_some());
}

/// A continue-as-new closes a run and starts its successor in one write,
/// or is refused whole: nothing is written when the close's append would be
/// refused or the successor's run ID is stored already.
pub(crate) async fn a_continue_as_new_is_one_write(store: &dyn Store) {
    let first = RunId::new_time_ordered();
    store
        .write(start("c", first, ReuseRule::Allow, WAKE_NOW))
        .await
        .expect("start");
    let next = RunId::new_time_ordered();
    let op = |expect_next: u64, next_run_id: RunId| {
        let close = EventKind::WorkflowContinuedAsNew {
            new_run_id: next_run_id,
            workflow_type: "T".into(),
            task_queue: "default".into(),
            input: Payload::encode(&1).expect("payload"),
            signals: Vec::new(),
            search_attributes: None,
            memo: None,
        };
        let started = EventKind::WorkflowStarted {
            workflow_type: "T".into(),
            workflow_id: "c".into(),
            task_queue: "default".into(),
            input: Payload::encode(&1).expect("payload"),
            run_timeout: None,
            execution_timeout: None,
        };
        let from = EventKind::WorkflowContinuedFrom {
            previous_run_id: first,
        };
        WriteOp::ContinueAsNew(Box::new(ContinueAsNewOp {
            run_id: first,
            record: EncodedRecord::new(record("c", WorkflowStatus::ContinuedAsNew, 3))
                .expect("encodes"),
            expect_next,
            events: vec![signal(2), event(3, close)],
            next_run_id,
            next_record: EncodedRecord::new(record("c", WorkflowStatus::Running, 2))
                .expect("encodes"),
            next_events: vec![event(1, started).1, event(2, from).1],
            next_wake: WAKE_NOW,
        }))
    };
    // Refused whole: a stale expected event ID, or a stored successor ID.
    conflict(store.write(op(5, next)).await);
    conflict(store.write(op(2, first)).await);
    assert_eq!(store.history(first, "c").await.expect("history").len(), 1);
    assert!(store.run(next, "c").await.expect("read").is_none());
    assert_eq!(
        store.current_run("c").await.expect("read").map(|(r, _)| r),
        Some(first)
    );

    assert_eq!(
        store.write(op(2, next)).await.expect("continue"),
        WriteOutcome::ContinuedAsNew
    );
    let closed = store.run(first, "c").await.expect("read").expect("record");
    assert_eq!(closed.status, WorkflowStatus::ContinuedAsNew);
    assert_eq!(store.history(first, "c").await.expect("history").len(), 3);
    let (current, record) = store.current_run("c").await.expect("read").expect("latest");
    assert_eq!(current, next);
    assert_eq!(record.status, WorkflowStatus::Running);
    assert_eq!(store.history(next, "c").await.expect("history").len(), 2);
    // The closed run has no wake-up, its successor has its hint.
    let due = store.wakeups(0, u64::MAX).await.expect("wakeups");
    assert!(due.iter().all(|(_, r)| *r != first), "{due:?}");
    assert!(due.iter().any(|(_, r)| *r == next), "{due:?}");
    // Nothing more is taken by the closed run.
    conflict(store.write(op(4, RunId::new_time_ordered())).await);
}

/// A reset is written as a continue-as-new whose closed record is
/// `Terminated` (closing on `WorkflowReset`) and whose successor begins with
/// a copy of the history: one write, the successor the ID's latest run, the
/// copied events stored as given. Any other closing status is refused whole.
pub(crate) async fn a_reset_is_one_write(store: &dyn Store) {
    let first = RunId::new_time_ordered();
    store
        .write(start("r", first, ReuseRule::Allow, WAKE_NEVER))
        .await
        .expect("start");
    let next = RunId::new_time_ordered();
    let started = store.history(first, "r").await.expect("history");
    let op = |status: WorkflowStatus| {
        let close = EventKind::WorkflowReset {
            new_run_id: next,
            reset_event_id: 1,
            reason: "r".into(),
        };
        let from = EventKind::WorkflowResetFrom {
            previous_run_id: first,
            reset_event_id: 1,
            seed_run_id: first,
            reason: "r".into(),
        };
        WriteOp::ContinueAsNew(Box::new(ContinueAsNewOp {
            run_id: first,
            record: EncodedRecord::new(record("r", status, 3)).expect("encodes"),
            expect_next: 2,
            events: vec![signal(2), event(3, close)],
            next_run_id: next,
            next_record: EncodedRecord::new(record("r", WorkflowStatus::Running, 2))
                .expect("encodes"),
            next_events: vec![
                crate::codec::encode(&started[0]).expect("encodes"),
                event(2, from).1,
            ],
            next_wake: WAKE_NOW,
        }))
    };
    conflict(store.write(op(WorkflowStatus::Completed)).await);
    assert!(store.run(next, "r").await.expect("read").is_none());
    assert_eq!(
        store
            .write(op(WorkflowStatus::Terminated))
            .await
            .expect("reset"),
        WriteOutcome::ContinuedAsNew
    );
    let closed = store.run(first, "r").await.expect("read").expect("record");
    assert_eq!(closed.status, WorkflowStatus::Terminated);
    let (current, _) = store.current_run("r").await.expect("read").expect("latest");
    assert_eq!(current, next);
    let copied = store.history(next, "r").await.expect("history");
    assert_eq!(copied[0], started[0]);
    assert!(matches!(
        copied[1].kind,
        EventKind::WorkflowResetFrom { previous_run_id, .. } if previous_run_id == first
    ));
}

/// The counts by status follow starts, closes, refused writes, deletes and
/// sweeps, in the same commits.
pub(crate) async fn counts_follow_starts_closes_and_removals(store: &dyn Store) {
    let count = |counts: Vec<(WorkflowStatus, u64)>, status: WorkflowStatus| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map(|&(_, n)| n)
            .expect("every status is counted")
    };
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(counts.iter().all(|&(_, n)| n == 0), "{counts:?}");

    let runs: Vec<RunId> = (0..4).map(|_| RunId::new_time_ordered()).collect();
    for (i, &run_id) in runs.iter().enumerate() {
        store
            .write(start(
                &format!("w{i}"),
                run_id,
                ReuseRule::Allow,
                WAKE_NEVER,
            ))
            .await
            .expect("start");
    }
    // Refused: the ID has a running run; nothing is counted.
    conflict_or_refused(
        store
            .write(start(
                "w0",
                RunId::new_time_ordered(),
                ReuseRule::Allow,
                WAKE_NEVER,
            ))
            .await,
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Running),
        4,
        "{counts:?}"
    );

    store.write(close("w0", runs[0], 2)).await.expect("close");
    store.write(close("w1", runs[1], 2)).await.expect("close");
    // Refused: already closed.
    let again = store.write(close("w1", runs[1], 3)).await;
    assert!(!matches!(again, Ok(WriteOutcome::Closed)), "{again:?}");
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Running),
        2,
        "{counts:?}"
    );
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Terminated),
        2,
        "{counts:?}"
    );

    assert_eq!(
        store
            .write(WriteOp::Delete {
                workflow_id: "w0".into()
            })
            .await
            .expect("delete"),
        WriteOutcome::Deleted(vec![runs[0]])
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Terminated),
        1,
        "{counts:?}"
    );

    store
        .write(WriteOp::Sweep { cutoff: at(1_000) })
        .await
        .expect("sweep");
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Terminated),
        0,
        "{counts:?}"
    );
    assert_eq!(
        count(counts.clone(), WorkflowStatus::Running),
        2,
        "{counts:?}"
    );
    assert_eq!(counts.iter().map(|&(_, n)| n).sum::<u64>(), 2, "{counts:?}");
}

/// A start refused for a running ID: a conflict or a refusal outcome, never
/// a start.
fn conflict_or_refused(result: Result<WriteOutcome, StoreError>) {
    assert!(
        !matches!(result, Ok(WriteOutcome::Started)),
        "expected a refusal, got {result:?}"
    );
}

fn schedule_op(
    schedule_id: &str,
    expect: Option<u64>,
    revision: Option<u64>,
    starts: Vec<ScheduledStart>,
) -> WriteOp {
    let record = revision.map(|revision| {
        EncodedSchedule::new(&ScheduleRecord::sample(schedule_id, revision, at(1)))
            .expect("a schedule encodes")
    });
    WriteOp::Schedule(Box::new(ScheduleOp {
        schedule_id: schedule_id.into(),
        expect,
        record,
        starts,
        driver: false,
    }))
}

fn scheduled_start(workflow_id: &str, run_id: RunId) -> ScheduledStart {
    let WriteOp::Start { record, events, .. } =
        start(workflow_id, run_id, ReuseRule::Reject, WAKE_NOW)
    else {
        unreachable!("start makes a start");
    };
    ScheduledStart {
        run_id,
        record,
        events,
        wake: WAKE_NOW,
    }
}

fn schedule_conflict(result: Result<WriteOutcome, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::ScheduleConflict { .. })),
        "expected a schedule conflict, got {result:?}"
    );
}

/// A schedule's write holds only against the revision it names: a create
/// against none, a change against the stored one; it reads back as
/// written, the list in ID order from after a given ID, and a removal
/// leaves nothing to change.
pub(crate) async fn schedule_writes_are_conditional_on_the_revision(store: &dyn Store) {
    assert!(store.schedules(None, 10).await.expect("list").is_empty());
    for id in ["b", "a", "c"] {
        let written = store
            .write(schedule_op(id, None, Some(1), Vec::new()))
            .await;
        assert_eq!(
            written.expect("create"),
            WriteOutcome::ScheduleWritten(vec![])
        );
    }
    schedule_conflict(
        store
            .write(schedule_op("a", None, Some(1), Vec::new()))
            .await,
    );
    store
        .write(schedule_op("a", Some(1), Some(2), Vec::new()))
        .await
        .expect("change");
    schedule_conflict(
        store
            .write(schedule_op("a", Some(1), Some(3), Vec::new()))
            .await,
    );
    let a = store.schedule("a").await.expect("read").expect("stored");
    assert_eq!(a, ScheduleRecord::sample("a", 2, at(1)));
    assert!(store.schedule("z").await.expect("read").is_none());
    let ids = |page: Vec<ScheduleRecord>| -> Vec<String> {
        page.into_iter().map(|r| r.schedule_id).collect()
    };
    assert_eq!(
        ids(store.schedules(None, 10).await.expect("list")),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(store.schedules(Some("a"), 1).await.expect("list")),
        ["b"]
    );
    store
        .write(schedule_op("b", Some(1), None, Vec::new()))
        .await
        .expect("remove");
    assert!(store.schedule("b").await.expect("read").is_none());
    schedule_conflict(
        store
            .write(schedule_op("b", Some(1), Some(2), Vec::new()))
            .await,
    );
    assert_eq!(
        ids(store.schedules(None, 10).await.expect("list")),
        ["a", "c"]
    );
}

/// A schedule's starts commit with its record, or not at all: a refused
/// write starts nothing; a workflow ID that has a run is not started again
/// (answered, not failed), and the record is written all the same.
pub(crate) async fn a_schedules_starts_commit_with_its_record(store: &dyn Store) {
    store
        .write(schedule_op("s", None, Some(1), Vec::new()))
        .await
        .expect("create");
    let (one, two, stale) = (
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
        RunId::new_time_ordered(),
    );
    let starts = vec![scheduled_start("s-1", one), scheduled_start("s-2", two)];
    let written = store
        .write(schedule_op("s", Some(1), Some(2), starts))
        .await;
    assert_eq!(
        written.expect("starts"),
        WriteOutcome::ScheduleWritten(vec![Ok(one), Ok(two)])
    );
    for (id, run) in [("s-1", one), ("s-2", two)] {
        let (found, record) = store.current_run(id).await.expect("read").expect("started");
        assert_eq!((found, record.status), (run, WorkflowStatus::Running));
        assert_eq!(store.history_len(run, id).await.expect("history"), 1);
    }
    let woken = store.wakeups(0, 1).await.expect("wakeups");
    assert!(woken.contains(&(WAKE_NOW, one)) && woken.contains(&(WAKE_NOW, two)));
    // A stale revision: nothing of it is written.
    let starts = vec![scheduled_start("s-3", stale)];
    schedule_conflict(
        store
            .write(schedule_op("s", Some(1), Some(3), starts))
            .await,
    );
    assert!(store.current_run("s-3").await.expect("read").is_none());
    // An ID that has a run: refused, the record written.
    store.write(close("s-1", one, 2)).await.expect("close");
    let again = RunId::new_time_ordered();
    let starts = vec![scheduled_start("s-1", again)];
    let written = store
        .write(schedule_op("s", Some(2), Some(3), starts))
        .await;
    let Ok(WriteOutcome::ScheduleWritten(outcomes)) = written else {
        panic!("expected the write, got {written:?}");
    };
    assert!(matches!(outcomes.as_slice(), [Err(_)]), "{outcomes:?}");
    assert_eq!(
        store
            .current_run("s-1")
            .await
            .expect("read")
            .expect("kept")
            .0,
        one
    );
    assert_eq!(
        store
            .schedule("s")
            .await
            .expect("read")
            .expect("stored")
            .revision,
        3
    );
}

/// Runs the whole suite, each promise on a fresh store from `fresh`
/// (an async expression; `None`: the backend is not available here).
#[cfg(test)]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        conformance_tests!(@each $fresh;
            start_reads_back,
            starts_respect_running_ids_and_reuse_rules,
            appends_follow_the_stored_history_of_an_open_run,
            a_closed_run_takes_nothing,
            wakeups_follow_the_hints,
            history_pages_cover_the_history,
            concurrent_writes_are_answered_each,
            list_and_delete,
            sweeps_remove_only_runs_closed_by_the_cutoff,
            a_continue_as_new_is_one_write,
            a_reset_is_one_write,
            counts_follow_starts_closes_and_removals,
            schedule_writes_are_conditional_on_the_revision,
            a_schedules_starts_commit_with_its_record,
        );
    };
    (@each $fresh:expr; $($promise:ident,)*) => {
        $(
            #[tokio::test]
            async fn $promise() {
                let Some((_guard, store)) = $fresh else {
                    return;
                };
                super::$promise(&*store).await;
                Store::close(&*store);
            }
        )*
    };
}

/// The redb store, each test on a new file.
#[cfg(test)]
mod redb {
    use super::super::{Backend, RedbStore, Store};

    async fn fresh() -> Option<(tempfile::TempDir, Box<RedbStore>)> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("conformance.steadfast");
        let store = RedbStore::open(&path, Backend::File, 1 << 20, true).expect("open a new file");
        Some((dir, Box::new(store)))
    }

    conformance_tests!(fresh().await);
}

/// The tests' throwaway PostgreSQL cluster, shared with the integration tests.
#[cfg(all(test, feature = "postgres"))]
#[path = "../../tests/support/postgres.rs"]
pub(crate) mod cluster;

/// The PostgreSQL store, each test in a new schema of the binary's
/// throwaway cluster (see `tests/support/postgres.rs`).
#[cfg(all(test, feature = "postgres"))]
mod postgres {
    use super::super::{PgStore, Store};
    use super::cluster;

    async fn fresh() -> Option<((), Box<PgStore>)> {
        let url = cluster::url()?;
        let schema = cluster::fresh_schema("conformance");
        let store = PgStore::open(&url, &schema, crate::store::DEFAULT_SHARD_LEASE)
            .await
            .expect("open a new schema");
        Some(((), Box::new(store)))
    }

    conformance_tests!(fresh().await);

    /// A session of the test's own in `schema`.
    async fn sql(url: &str, schema: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .expect("search path");
        client
    }

    use crate::history::RunId;
    use crate::store::ReuseRule;

    /// Fencing (PostgreSQL only: a file has one shard, always owned): once
    /// another process owns a run's shard, the store's appends and closes
    /// of that run are refused with `ShardLost`, writing nothing, and the
    /// store tells its engine the shard is lost; a start in a shard it
    /// does not own is made, and its owner is told through the inbox.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_a_shard_taken_over_are_refused_and_write_nothing() {
        use crate::store::{StoreError, StoreEvent, WriteOutcome};
        let Some(url) = cluster::url() else {
            return;
        };
        let schema = cluster::fresh_schema("fencing");
        let store = PgStore::open(&url, &schema, crate::store::DEFAULT_SHARD_LEASE)
            .await
            .expect("open");
        let mut events = store.events().expect("a shared store tells of shards lost");
        let run_id = RunId::new_time_ordered();
        let start = super::start("fenced", run_id, ReuseRule::Allow, 1_000);
        assert_eq!(
            store.write(start).await.expect("start"),
            WriteOutcome::Started
        );
        let c = sql(&url, &schema).await;
        // Another member takes the run's shard over (its lease has not
        // run out: a takeover after this store's lease did).
        let shard: i32 = c
            .query_one(
                "SELECT shard FROM runs WHERE run_id = $1",
                &[&run_id.as_uuid()],
            )
            .await
            .expect("shard")
            .get(0);
        c.execute(
            "UPDATE shards SET owner = gen_random_uuid(), epoch = epoch + 1, \
             lease_until = now() + interval '1 minute' WHERE shard_id = $1",
            &[&shard],
        )
        .await
        .expect("take over");
        let before = store.history_len(run_id, "fenced").await.expect("len");
        let append = super::append(run_id, before + 1, vec![super::signal(before + 1)], 1);
        match store.write(append).await {
            Err(StoreError::ShardLost { shard: lost }) => assert_eq!(lost as i32, shard),
            other => panic!("expected ShardLost, got {other:?}"),
        }
        let close = super::close("fenced", run_id, before + 1);
        match store.write(close).await {
            Err(StoreError::ShardLost { .. }) => {}
            other => panic!("expected ShardLost, got {other:?}"),
        }
        assert_eq!(
            store.history_len(run_id, "fenced").await.expect("len"),
            before
        );
        assert!(!store.owns("fenced"), "the store no longer owns the shard");
        // The engine is told (after the acquisitions of the open).
        let lost = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match events.recv().await {
                    Some(StoreEvent::Acquired) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("told in time");
        match lost {
            Some(StoreEvent::Lost(shards)) => assert!(shards.contains(&(shard as u32))),
            other => panic!("expected Lost, got {other:?}"),
        }
        // A start in the shard now owned elsewhere is made, and its
        // owner told through the inbox.
        let other = RunId::new_time_ordered();
        let id = (0..)
            .map(|i| format!("fenced-{i}"))
            .find(|id| super::super::postgres::shard_of(id, 64) == shard)
            .expect("an ID in the shard");
        let start = super::start(&id, other, ReuseRule::Allow, 1_000);
        assert_eq!(
            store.write(start).await.expect("start"),
            WriteOutcome::Started
        );
        let hinted: i64 = c
            .query_one(
                "SELECT count(*) FROM inbox WHERE run_id = $1 AND kind = 0",
                &[&other.as_uuid()],
            )
            .await
            .expect("inbox")
            .get(0);
        assert_eq!(hinted, 1, "the start's owner is told");
        store.close();
    }
}
