//! Table definitions and the file layout.
//!
//! Layout (format version [`STORE_FORMAT_VERSION`]):
//! - `meta`: `&str -> &[u8]`; `"format_version"` holds the store format as a
//!   little-endian `u32`; `"journal_seq"` (format 18) the number of the
//!   last journal entry the file holds, a little-endian `u64`.
//! - `workflows`: workflow ID `&str -> u128`, the latest run of that ID.
//! - `runs`: run ID `u128 -> &[u8]`, a `codec` `RunRecord` (`store/record.rs`).
//! - `running`: run ID `u128 -> u64`, the runs not closed yet, with when
//!   each next needs the engine (its wake hint, see `store::record`); scanned on
//!   open so that runs are loaded only when they have something to do.
//! - `wakeups`: `(wake hint u64, run ID u128) -> ()`, the same hints ordered
//!   by time (without `WAKE_NEVER`), so the timer thread reads only the
//!   wake-ups due soon and memory does not grow with idle runs.
//! - `history`: `(run ID u128, event ID u64) -> &[u8]`, a `codec` `Event`.
//! - `visibility` (format 2): `&[u8] -> ()`, the indexes `list` and
//!   `delete` scan; the key layout is documented in `store/redb/visibility.rs`.
//! - `status_counts` (format 11): status code `u8 -> u64`, the number of
//!   runs of each status (`store/redb/counts.rs`).
//! - `schedules` (format 14): schedule ID `&str -> &[u8]`, a `codec`
//!   `ScheduleRecord` (`schedule/record.rs`): a schedule's configuration
//!   and progress (`store/redb/schedules.rs`).

use redb::{ReadableTable, TableDefinition};

use super::redb_err;
use crate::store::StoreError;

/// Store format versions:
/// - 1: the first layout (meta, workflows, runs, running, wakeups, history).
/// - 2: adds the `visibility` table (indexes of every run for `list`) and
///   run records of record version 2 (search attributes, memo). A format-1
///   file is migrated on open, in one write transaction that builds the
///   index entries of every run and sets the version to 2; its version-1
///   run records stay as they are and decode as records without attributes.
/// - 3: the same tables; histories may hold the event kinds format 3
///   appended to `EventKind` (`TimerCanceled`, `WorkflowSignaledWithOptions`,
///   `SignalsUnread`), which a format-2 build cannot decode, so it must
///   refuse the file. A format-2 file is brought to 3 on open by setting the
///   version alone (nothing else changes); a format-1 file by its migration
///   to 2 and that, in the same transaction.
/// - 4: the same tables; histories may hold the event kind
///   `ActivityAttemptWaiting` (index 21: an attempt that waits for a worker
///   slot or a worker and has not begun), which a format-3 build cannot
///   decode. Formats 2 and 3 are brought to 4 on open by setting the
///   version alone; format 1 by its migration and that, in one transaction.
/// - 5: the same tables; histories may hold the event kinds
///   `WorkflowContinuedAsNew` (index 22) and `WorkflowContinuedFrom`
///   (index 23), and run records the status `ContinuedAsNew` (index 6,
///   `visibility` status code 6), which a format-4 build cannot decode.
///   Formats 2 to 4 are brought to 5 on open by setting the version alone;
///   format 1 by its migration and that, in one transaction.
/// - 6: the same tables; event records are version 2 (`Failure` gained
///   `details` and `retry_state`), which a format-5 build cannot decode.
///   Version-1 event records stay as they are and keep decoding. Formats 2
///   to 5 are brought to 6 on open by setting the version alone; format 1
///   by its migration and that, in one transaction.
/// - 7: the same tables; histories may hold the event kind
///   `ActivityCancelRequested` (index 24: the workflow cancelled one
///   activity), which a format-6 build cannot decode. Formats 2 to 6 are
///   brought to 7 on open by setting the version alone; format 1 by its
///   migration and that, in one transaction.
/// - 8: the same tables; histories may hold the event kind
///   `LocalActivityRecorded` (index 25: a local activity's one event),
///   which a format-7 build cannot decode. Formats 2 to 7 are brought to 8
///   on open by setting the version alone; format 1 by its migration and
///   that, in one transaction.
/// - 9: the same tables; histories may hold the event kinds
///   `WorkflowUpdateAccepted` (index 26) and `WorkflowUpdateCompleted`
///   (index 27, with the persisted enum `UpdateOutcome`), which a format-8
///   build cannot decode. Formats 2 to 8 are brought to 9 on open by
///   setting the version alone; format 1 by its migration and that, in one
///   transaction.
/// - 10: the same tables; histories may hold the child-workflow event
///   kinds (indexes 28 to 34: `StartChildWorkflowInitiated`,
///   `ChildWorkflowStarted`, `StartChildWorkflowFailed`,
///   `ChildWorkflowCompleted`, `ChildWorkflowClosed`,
///   `ChildWorkflowCancelRequested`, `WorkflowStartedAsChild`), which a
///   format-9 build cannot decode. Formats 2 to 9 are brought to 10 on open
///   by setting the version alone; format 1 by its migration and that.
/// - 11: adds the `status_counts` table (`store/redb/counts.rs`: the number
///   of runs of each status, kept by the index upkeep in every batch). A
///   format-10 build would write without keeping it, so it must refuse the
///   file. Formats 1 to 10 are brought to 11 on open by counting their
///   indexes into the new table, in the transaction that sets the version
///   (format 1 after its migration to 2, in the same transaction).
/// - 12: the same tables; histories may hold the event kinds of signals
///   and cancellation requests sent to other workflows (indexes 35 to 40:
///   `SignalExternalWorkflowInitiated`, `ExternalWorkflowSignaled`,
///   `SignalExternalWorkflowFailed`, `RequestCancelExternalWorkflowInitiated`,
///   `ExternalWorkflowCancelRequested`, `RequestCancelExternalWorkflowFailed`,
///   with the persisted enum `ExternalFailedCause`), which a format-11 build
///   cannot decode. Format 11 is brought to 12 on open by setting the
///   version alone; formats 1 to 10 as they are brought to 11, and that.
/// - 13: the same tables; histories may hold the pause and reset event
///   kinds (indexes 41 to 44: `WorkflowPaused`, `WorkflowUnpaused`,
///   `WorkflowReset`, `WorkflowResetFrom`) and run records may be of
///   record version 3 (`paused`, `reset_from`), which a format-12 build
///   cannot decode. Formats 11 and 12 are brought to 13 on open by setting
///   the version alone; formats 1 to 10 as they are brought to 11, and that.
/// - 14: adds the `schedules` table (created by the first schedule's
///   write). A format-13 build would not see the schedules (nor keep the
///   starts they make in step with them), so it must refuse the file.
///   Formats 11 to 13 are brought to 14 on open by setting the version
///   alone; older formats by their migration to 11 and that, in one
///   transaction.
/// - 15: the same tables; histories may hold the event kind
///   `LocalActivityBackoff` (index 45: a local activity's backoff longer
///   than its `local_retry_threshold`, waited for as a durable timer),
///   which a format-14 build cannot decode. Formats 11 to 14 are brought to
///   15 on open by setting the version alone; older formats by their
///   migration to 11 and that, in one transaction.
/// - 16: the same tables; histories may hold three more event kinds
///   (index 46 `WorkflowCancelRequestDeferred`, a cancellation request
///   held while the run is paused; index 47 `WorkflowStartedBySchedule`,
///   what a schedule passes to the workflow it starts; index 48
///   `ParentWorkflowReset`, a child's new parent run after a reset that
///   kept it) and schedules may be of record version 2
///   (`pause_on_failure`, the last completion result and the last
///   failure), which a format-15 build cannot decode. Formats 11 to 15 are
///   brought to 16 on open by setting the version alone; older formats by
///   their migration to 11 and that, in one transaction.
/// - 17: the same tables; histories may hold the event kind
///   `SignalChildWorkflowInitiated` (index 49: a child handle's signal,
///   delivered to the child's current run, where format 16 recorded it as
///   a `SignalExternalWorkflowInitiated` naming the child's first run and
///   could not tell it from a signal to that run alone), which a format-16
///   build cannot decode. Formats 11 to 16 are brought to 17 on open by
///   setting the version alone; older formats by their migration to 11 and
///   that, in one transaction.
/// - 18: the same tables and records; the file may have a journal beside
///   it (`<path>-journal`, `store/redb/journal.rs`) holding commits made
///   after its last checkpoint, and `meta` key `"journal_seq"` names the
///   last journal entry the file holds. A format-17 build would open such
///   a file after a crash without the journal's commits, so it must refuse
///   it. Formats 11 to 17 are brought to 18 on open by setting the version
///   alone; older formats by their migration to 11 and that, in one
///   transaction.
pub(crate) const STORE_FORMAT_VERSION: u32 = 18;
/// The first layout, migrated on open.
pub(crate) const STORE_FORMAT_V1: u32 = 1;
/// The layout with the `visibility` table, whose events are all of format
/// 2's kinds; opened by setting the version to the current one.
pub(crate) const STORE_FORMAT_V2: u32 = 2;
/// Format 2's tables with format 3's event kinds; opened by setting the
/// version to the current one.
pub(crate) const STORE_FORMAT_V3: u32 = 3;
/// Format 3's tables with format 4's event kind; opened by setting the
/// version to the current one.
pub(crate) const STORE_FORMAT_V4: u32 = 4;
/// Format 4's tables with format 5's event kinds and status; opened by
/// setting the version to the current one.
pub(crate) const STORE_FORMAT_V5: u32 = 5;
/// Format 5's tables with event records of version 2; opened by setting
/// the version to the current one.
pub(crate) const STORE_FORMAT_V6: u32 = 6;
/// Format 6 with format 7's event kind; opened by setting the version to
/// the current one.
pub(crate) const STORE_FORMAT_V7: u32 = 7;
/// Format 7 with format 8's event kind; opened by setting the version to
/// the current one.
pub(crate) const STORE_FORMAT_V8: u32 = 8;
/// Format 8's tables with format 9's event kinds; opened by setting the
/// version to the current one.
pub(crate) const STORE_FORMAT_V9: u32 = 9;
/// Format 9's tables with format 10's event kinds; opened by counting its
/// runs into format 11's `status_counts`.
pub(crate) const STORE_FORMAT_V10: u32 = 10;
/// Format 10's tables with `status_counts`; opened by setting the version
/// to the current one.
pub(crate) const STORE_FORMAT_V11: u32 = 11;
/// Format 11's tables with format 12's event kinds; opened by setting the
/// version to the current one.
pub(crate) const STORE_FORMAT_V12: u32 = 12;
/// Format 12's tables with format 13's event kinds and run records;
/// opened by setting the version to the current one.
pub(crate) const STORE_FORMAT_V13: u32 = 13;

/// Store format 14 (schedules), read and brought to the current format on
/// open by setting the version alone.
pub(crate) const STORE_FORMAT_V14: u32 = 14;
/// Format 14 with format 15's event kind (`LocalActivityBackoff`); opened
/// by setting the version to the current one.
pub(crate) const STORE_FORMAT_V15: u32 = 15;
/// Format 15 with format 16's event kinds and schedule records; opened by
/// setting the version to the current one.
pub(crate) const STORE_FORMAT_V16: u32 = 16;
/// Format 16 with format 17's event kind (`SignalChildWorkflowInitiated`);
/// opened by setting the version to the current one.
pub(crate) const STORE_FORMAT_V17: u32 = 17;
pub(crate) const FORMAT_KEY: &str = "format_version";

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("steadfast_meta");
pub(crate) const WORKFLOWS: TableDefinition<&str, u128> = TableDefinition::new("workflows");
pub(crate) const RUNS: TableDefinition<u128, &[u8]> = TableDefinition::new("runs");
pub(crate) const RUNNING: TableDefinition<u128, u64> = TableDefinition::new("running");

pub(crate) const WAKEUPS: TableDefinition<(u64, u128), ()> = TableDefinition::new("wakeups");

pub(crate) const HISTORY: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("history");
pub(crate) const VISIBILITY: TableDefinition<&[u8], ()> = TableDefinition::new("visibility");
pub(crate) const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");

/// The last event ID of run `key`'s history in a `history` table, read or
/// write (0 for none): the truth of an open run's length.
pub(crate) fn last_event_id(
    history: &impl ReadableTable<(u128, u64), &'static [u8]>,
    key: u128,
) -> Result<u64, StoreError> {
    Ok(history
        .range((key, 0)..=(key, u64::MAX))
        .map_err(redb_err)?
        .next_back()
        .transpose()
        .map_err(redb_err)?
        .map_or(0, |(k, _)| k.value().1))
}
