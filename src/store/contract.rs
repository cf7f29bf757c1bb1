//! The storage trait: what the engine needs of a durable store, shaped after
//! how the engine calls it, so that a second backend (PostgreSQL, see
//! `shared/SCALE-OUT.md`) can implement it without touching the engine.
//!
//! Promises every implementation keeps (each is a test in
//! [`conformance`](super::conformance), run against every backend):
//! - A write is answered only once it is durable; writes made concurrently
//!   may share one commit, and each is answered on its own (a refused one
//!   does not fail the others).
//! - Writes are conditional: a start refuses a workflow ID that has a running
//!   run (or whose reuse rule refuses the closed one); an append or a close
//!   names the event ID it expects next and is refused with
//!   [`StoreError::Conflict`], writing nothing, unless the run is open and
//!   its stored history ends just before it. Nothing is ever overwritten,
//!   and nothing follows a close: an append that closes the run ends with
//!   its close event, or it is refused.
//! - The store never invents IDs or timestamps: run IDs, event IDs, event
//!   times, start and close times all come from the engine.
//! - Reads see only durable writes, and a history is numbered 1..n without
//!   gaps (anything else is [`StoreError::Corrupt`]).
//! - A start never reuses a stored run ID (refused with a conflict).
//! - `list` returns open runs first (newest start first), then closed runs
//!   (newest close first), filtered as the [`Query`] says, one page at a
//!   time from the previous page's last run; a delete removes every run of
//!   a closed workflow ID (records, histories, index entries) in one commit
//!   and refuses one whose latest run is open.
//! - A sweep removes, oldest close first and in a bounded batch, the closed
//!   runs whose close time is at or before the engine's cutoff, each whole
//!   (record, history, index entries); a workflow ID's entry only while it
//!   names the removed run. Open runs are never touched.
//! - Counts: [`Store::counts`] answers, for every status, how many runs
//!   `list` would find with it, kept up by every start, close, delete and
//!   sweep in the same commit.
//! - Schedules: a [`ScheduleOp`](super::ScheduleOp) writes a schedule's
//!   record only if the stored one has the revision it names (none, for a
//!   create), and makes its starts in the same commit (each refused, not
//!   failed, by a workflow ID that has run); [`Store::schedule`] and
//!   [`Store::schedules`] read what was committed, the list in ID order.
//! - Wake-ups: every open run has a wake hint (`WAKE_NOW`, a due time in ms
//!   since the epoch, or `WAKE_NEVER`), and [`Store::wakeups`] returns the
//!   runs whose hint falls in a range, in time order; a closed run has none.
//!
//! The trait is object-safe (`Box<dyn Store>`): methods return boxed
//! futures, a cost of one allocation per call beside a durable commit.

use std::fmt;
use std::time::SystemTime;

use futures::future::BoxFuture;

use super::{
    Query, QueryPage, RemoteReply, RemoteRequest, RunRecord, StoreError, StoreEvent, WriteOp,
    WriteOutcome,
};
use crate::history::{Event, EventId, RunId, WorkflowStatus};
use crate::schedule::record::ScheduleRecord;

/// Most events [`Store::history`] reads per page by default.
pub(crate) const HISTORY_PAGE: usize = 1024;

/// A durable store of runs, their histories, wake-ups and visibility.
///
/// `workflow_id` arguments name the workflow a read is about, for errors
/// (a damaged record names its workflow); the run ID is the key.
pub(crate) trait Store: Send + Sync + fmt::Debug {
    /// Applies `op` durably and answers what it did. Concurrent writes may
    /// share a commit (group commit); each is answered on its own.
    fn write(&self, op: WriteOp) -> BoxFuture<'_, Result<WriteOutcome, StoreError>>;

    /// The latest run of a workflow ID, with its record.
    fn current_run<'a>(
        &'a self,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(RunId, RunRecord)>, StoreError>>;

    /// One run's record.
    fn run<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RunRecord>, StoreError>>;

    /// Up to `limit` events of a run's history from event `from` on, in
    /// order; fewer (or none) at its end.
    fn history_page<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
        from: EventId,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>>;

    /// A run's whole history, in order. By default read page by page
    /// (histories only grow, so later pages never contradict earlier ones).
    fn history<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Event>, StoreError>> {
        Box::pin(async move {
            let mut events = Vec::new();
            loop {
                let from = events.len() as u64 + 1;
                let page = self
                    .history_page(run_id, workflow_id, from, HISTORY_PAGE)
                    .await?;
                let full = page.len() == HISTORY_PAGE;
                events.extend(page);
                if !full {
                    return Ok(events);
                }
            }
        })
    }

    /// The number of events in a run's history (its last event ID).
    fn history_len<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// The last event of a run's history.
    fn last_event<'a>(
        &'a self,
        run_id: RunId,
        workflow_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Event>, StoreError>>;

    /// Open runs whose wake hint is in `[from, to)` (ms since the epoch),
    /// in time order.
    fn wakeups(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<(u64, RunId)>, StoreError>>;

    /// One page of the runs a query matches, in list order, read in one
    /// snapshot; an open run's record carries its history's length then
    /// (its stored record is not rewritten by every step).
    fn list<'a>(&'a self, query: &'a Query) -> BoxFuture<'a, Result<QueryPage, StoreError>>;

    /// The number of runs of each status, every status once (zero for
    /// none), read in one snapshot, at a cost that does not grow with the
    /// number of runs (a count is kept as runs start, close and are
    /// removed, not counted when asked).
    fn counts(&self) -> BoxFuture<'_, Result<Vec<(WorkflowStatus, u64)>, StoreError>>;

    /// The schedule stored under `schedule_id`.
    fn schedule<'a>(
        &'a self,
        schedule_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScheduleRecord>, StoreError>>;

    /// Up to `limit` schedules in ID order, from the first ID after
    /// `after` (from the first, for `None`).
    fn schedules<'a>(
        &'a self,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ScheduleRecord>, StoreError>>;

    /// Whether any run closed at or before `cutoff` (retention asks before
    /// it writes a `Sweep`, so that a sweep with nothing due costs no commit).
    fn any_closed_by(&self, cutoff: SystemTime) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// While storage fails (a full disk, an I/O error), how long a caller
    /// refused by it should wait before it tries again: the store backs off
    /// rather than spin on a failing disk. Zero while storage is healthy.
    fn retry_delay(&self) -> std::time::Duration;

    /// The last storage failure, while storage fails (what a refused caller
    /// is told, for example a full disk).
    fn failure(&self) -> StoreError;

    /// Stops taking writes after those already sent and releases the store
    /// (for a file: its lock; for a shared database: this process's shards,
    /// which other processes take over at once). May block; call it off
    /// the async runtime.
    fn close(&self);

    /// Whether this process owns the shard of `workflow_id`, so that it may
    /// load and advance that workflow's runs. Always, for a file (one
    /// process, one shard); in a database several processes share, the
    /// shard's lease decides (`store::postgres`), and a run of another
    /// process's shard is reached through [`forward`](Self::forward).
    fn owns(&self, _workflow_id: &str) -> bool {
        true
    }

    /// The shard of `workflow_id` (the unit of ownership between processes
    /// sharing a store): always 0 for a file, which is one shard.
    fn shard_of(&self, _workflow_id: &str) -> u32 {
        0
    }

    /// Hands a call for a run of another process's shard to that process
    /// through the store, and waits for its answer. A file never needs it.
    fn forward<'a>(
        &'a self,
        _workflow_id: &'a str,
        _run_id: RunId,
        _request: RemoteRequest,
    ) -> BoxFuture<'a, Result<RemoteReply, StoreError>> {
        Box::pin(async { Err(StoreError::Closed) })
    }

    /// Waits for word that a run another process advances may have
    /// closed: registered at this call (so a close committed after it is
    /// not missed), the future ends on that word or at the store's own
    /// backstop, and the caller reads the run again to know. `None` for a
    /// store that gives no such word (a file: every run is local), whose
    /// caller reads again after a pause of its own.
    fn close_hint(&self, _run_id: RunId) -> Option<BoxFuture<'static, ()>> {
        None
    }

    /// What the store tells its engine (shards lost, calls for its runs
    /// from other processes); `None` for a file, which has nothing to tell.
    /// Taken once, by the engine's open.
    fn events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<StoreEvent>> {
        None
    }

    /// Answers a request taken from [`events`](Self::events) and removes it
    /// from the inbox (`reply: None` for one that needs no answer).
    fn answer(
        &self,
        _request: uuid::Uuid,
        _reply: Option<RemoteReply>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}
