//! Retention: removing the closed runs whose close time is past a cutoff,
//! one bounded batch per write operation.
//!
//! The runs are found through the visibility ORDER index, whose closed
//! group is ordered by close time (newest first), read backwards: the
//! oldest closes first, and a sweep with nothing due costs one range probe.
//! No other table is needed, so retention changes nothing in the format.
//!
//! A batch is at most [`SWEEP_MAX_RUNS`] runs and, past its first run, at
//! most [`SWEEP_MAX_EVENTS`] history rows, so that the commit it shares
//! with other callers stays short. A run is removed whole in one batch:
//! its record, history, index entries and wake hint; its workflow ID's
//! entry only while that still names this run (a newer run of the ID is
//! left alone). The cutoff comes from the caller: the store keeps no clock.

use std::time::{Instant, SystemTime};

use redb::ReadableTable;

use super::tables::VISIBILITY;
use super::writer::{self, Tables};
use super::{RedbStore, open_read, redb_err, visibility};
use crate::codec;
use crate::history::RunId;
use crate::store::query::suffix;
use crate::store::{RunRecord, StoreError, WriteOutcome};

/// Most runs removed by one sweep operation.
/// (Removing a run costs the writer some 15 µs, so a full batch about
/// 0.5 ms, a few durable commits' worth on a fast disk.)
pub(crate) const SWEEP_MAX_RUNS: usize = 32;
/// Most history rows removed by one sweep operation, unless its first run
/// alone has more (a run is never removed in parts).
pub(crate) const SWEEP_MAX_EVENTS: u64 = 1024;

impl RedbStore {
    /// Whether any run closed at or before `cutoff` (a read, so that a
    /// sweep with nothing to do costs no commit).
    pub(super) fn read_any_closed_by(&self, cutoff: SystemTime) -> Result<bool, StoreError> {
        self.read(None, |db| {
            let txn = db.begin_read().map_err(redb_err)?;
            let Some(index) = open_read(&txn, VISIBILITY)? else {
                return Ok(false);
            };
            Ok(!visibility::closed_by(&index, cutoff, 1)?.is_empty())
        })
    }
}

/// Removes up to [`SWEEP_MAX_RUNS`] runs closed at or before `cutoff`,
/// oldest first. Answers [`WriteOutcome::Swept`]; `more` is set when it
/// stopped at a bound, so that more runs may be due.
pub(super) fn sweep(t: &mut Tables<'_>, cutoff: SystemTime) -> Result<WriteOutcome, StoreError> {
    // Real time: how long the batch held the writer (the sweeper's pacing).
    let began = Instant::now();
    let candidates = visibility::closed_by(&*t.visibility, cutoff, SWEEP_MAX_RUNS)?;
    let mut more = candidates.len() == SWEEP_MAX_RUNS;
    let mut removed = Vec::new();
    let mut events = 0u64;
    for (run_id, at) in candidates {
        let key = run_id.as_u128();
        let record = t
            .runs
            .get(key)
            .map_err(redb_err)?
            .map(|bytes| codec::decode::<RunRecord>(bytes.value()));
        let record = match record {
            Some(Ok(record)) if record.status.is_closed() && suffix(run_id, &record) == at => {
                record
            }
            Some(Err(e)) => {
                // What cannot be read is not deleted: its entry leaves the
                // order (`list` skips it anyway), and `describe` still
                // reports the damage.
                tracing::warn!(%run_id, error = %e, "retention: a run record does not decode; it is kept");
                visibility::remove_order(&mut t.visibility, &at)?;
                continue;
            }
            // A stale entry: the run is gone, or sits elsewhere in the order.
            _ => {
                visibility::remove_order(&mut t.visibility, &at)?;
                continue;
            }
        };
        // Saturating: a damaged record can claim any length.
        let len = record.history_len.max(1);
        if !removed.is_empty() && events.saturating_add(len) > SWEEP_MAX_EVENTS {
            more = true;
            break;
        }
        events = events.saturating_add(len);
        remove_run(t, run_id, &record)?;
        removed.push(run_id);
    }
    Ok(WriteOutcome::Swept {
        runs: removed,
        more,
        took: began.elapsed(),
    })
}

/// Removes one closed run and everything of it.
fn remove_run(t: &mut Tables<'_>, run_id: RunId, record: &RunRecord) -> Result<(), StoreError> {
    let key = run_id.as_u128();
    t.runs.remove(key).map_err(redb_err)?;
    visibility::remove(t, run_id, record)?;
    writer::remove_history_and_wake(t, key)?;
    let latest = t
        .workflows
        .get(record.workflow_id.as_str())
        .map_err(redb_err)?
        .map(|v| v.value());
    if latest == Some(key) {
        t.workflows
            .remove(record.workflow_id.as_str())
            .map_err(redb_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use futures::FutureExt;

    use super::*;
    use crate::history::{Event, EventKind, Payload, WorkflowStatus};
    use crate::store::{Backend, EncodedRecord, Query, ReuseRule, Store, WAKE_NEVER, WriteOp};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// Starts a run of `workflow_id` with one event, closed at `closed`
    /// (running for `None`), its record claiming `history_len` events.
    async fn start(
        store: &RedbStore,
        workflow_id: &str,
        closed: Option<u64>,
        history_len: u64,
    ) -> RunId {
        let run_id = RunId::new_time_ordered();
        let record = RunRecord {
            workflow_id: workflow_id.into(),
            workflow_type: "T".into(),
            task_queue: "default".into(),
            status: match closed {
                Some(_) => WorkflowStatus::Completed,
                None => WorkflowStatus::Running,
            },
            start_time: at(0),
            close_time: closed.map(at),
            history_len,
            search_attributes: Default::default(),
            memo: None,
            paused: None,
            reset_from: None,
        };
        let event = Event {
            event_id: 1,
            timestamp: at(0),
            kind: EventKind::WorkflowCompleted {
                result: Payload::encode(&()).expect("payload"),
            },
        };
        let op = WriteOp::Start {
            run_id,
            record: EncodedRecord::new(record).expect("record"),
            events: vec![codec::encode(&event).expect("event")],
            reuse: ReuseRule::Allow,
            wake: WAKE_NEVER,
        };
        assert_eq!(store.write(op).await.expect("start"), WriteOutcome::Started);
        run_id
    }

    async fn sweep(store: &RedbStore, cutoff: u64) -> (Vec<RunId>, bool) {
        match store.write(WriteOp::Sweep { cutoff: at(cutoff) }).await {
            Ok(WriteOutcome::Swept { runs, more, .. }) => (runs, more),
            other => panic!("{other:?}"),
        }
    }

    fn listed(store: &RedbStore) -> Vec<RunId> {
        let query = Query {
            page_size: 1000,
            ..Query::default()
        };
        store
            .list(&query)
            .now_or_never()
            .expect("a redb read is ready at once")
            .expect("list")
            .runs
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    fn open() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(
            &dir.path().join("t.steadfast"),
            Backend::File,
            1 << 20,
            true,
        )
        .expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn a_sweep_removes_only_runs_closed_by_the_cutoff_oldest_first() {
        let (_dir, store) = open();
        let a1 = start(&store, "a", Some(10), 1).await;
        let b = start(&store, "b", Some(30), 1).await;
        let c = start(&store, "c", Some(20), 1).await;
        // A newer run of `a`, running: the ID now names it.
        let a2 = start(&store, "a", None, 1).await;
        assert!(!store.any_closed_by(at(9)).await.expect("probe"));
        assert!(store.any_closed_by(at(10)).await.expect("probe"));
        assert_eq!(sweep(&store, 9).await, (vec![], false));

        assert_eq!(sweep(&store, 25).await, (vec![a1, c], false));
        assert_eq!(store.run(a1, "a").await.expect("read"), None);
        assert!(store.history(a1, "a").await.expect("read").is_empty());
        assert_eq!(store.current_run("c").await.expect("read"), None);
        let (current, _) = store.current_run("a").await.expect("read").expect("a");
        assert_eq!(current, a2, "the newer run keeps the ID");
        let mut left = listed(&store);
        left.sort();
        let mut expected = vec![a2, b];
        expected.sort();
        assert_eq!(left, expected);

        // A running run is never swept, however late the cutoff.
        assert_eq!(sweep(&store, 1_000_000).await, (vec![b], false));
        assert_eq!(listed(&store), vec![a2]);
        assert!(!store.any_closed_by(at(1_000_000)).await.expect("probe"));
        Store::close(&store);
    }

    #[tokio::test]
    async fn a_sweep_is_bounded_in_runs_and_in_history_rows() {
        let (_dir, store) = open();
        for i in 0..(SWEEP_MAX_RUNS as u64 + 5) {
            start(&store, &format!("w{i}"), Some(i), 1).await;
        }
        let (runs, more) = sweep(&store, 1000).await;
        assert_eq!((runs.len(), more), (SWEEP_MAX_RUNS, true));
        let (runs, more) = sweep(&store, 1000).await;
        assert_eq!((runs.len(), more), (5, false));

        // Long histories (as their records claim): one run per batch once
        // the next would pass the row budget, but always at least one.
        let long = SWEEP_MAX_EVENTS / 2 + 1;
        let first = start(&store, "long-1", Some(1), long).await;
        let second = start(&store, "long-2", Some(2), long).await;
        let huge = start(&store, "huge", Some(3), SWEEP_MAX_EVENTS * 10).await;
        assert_eq!(sweep(&store, 1000).await, (vec![first], true));
        assert_eq!(sweep(&store, 1000).await, (vec![second], true));
        assert_eq!(sweep(&store, 1000).await, (vec![huge], false));
        assert!(listed(&store).is_empty());
        Store::close(&store);
    }
}
