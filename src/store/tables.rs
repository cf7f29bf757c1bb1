//! Table definitions and the file layout.
//!
//! Layout (format version [`STORE_FORMAT_VERSION`]):
//! - `meta`: `&str -> &[u8]`; `"format_version"` holds the store format as a
//!   little-endian `u32`.
//! - `workflows`: workflow ID `&str -> u128`, the latest run of that ID.
//! - `runs`: run ID `u128 -> &[u8]`, a `codec` [`RunRecord`].
//! - `running`: run ID `u128 -> u64`, the runs not closed yet, with when
//!   each next needs the engine (its wake hint, see [`WAKE_NOW`]); scanned on
//!   open so that runs are loaded only when they have something to do.
//! - `wakeups`: `(wake hint u64, run ID u128) -> ()`, the same hints ordered
//!   by time (without [`WAKE_NEVER`]), so the timer thread reads only the
//!   wake-ups due soon and memory does not grow with idle runs.
//! - `history`: `(run ID u128, event ID u64) -> &[u8]`, a `codec` `Event`.

use std::time::SystemTime;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::history::WorkflowStatus;

/// Store format versions:
/// - 1: the first layout (meta, workflows, runs, running, wakeups, history).
pub(crate) const STORE_FORMAT_VERSION: u32 = 1;
pub(crate) const FORMAT_KEY: &str = "format_version";

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("steadfast_meta");
pub(crate) const WORKFLOWS: TableDefinition<&str, u128> = TableDefinition::new("workflows");
pub(crate) const RUNS: TableDefinition<u128, &[u8]> = TableDefinition::new("runs");
pub(crate) const RUNNING: TableDefinition<u128, u64> = TableDefinition::new("running");

pub(crate) const WAKEUPS: TableDefinition<(u64, u128), ()> = TableDefinition::new("wakeups");

/// Wake hint of a run with work to do now (an attempt in flight, commands
/// not yet acted on). Other hints are a due time in milliseconds since the
/// Unix epoch, or [`WAKE_NEVER`] for a run that waits only for a message
/// (a signal, a cancellation).
pub(crate) const WAKE_NOW: u64 = 0;
/// Wake hint of a run that waits only for a message.
pub(crate) const WAKE_NEVER: u64 = u64::MAX;
pub(crate) const HISTORY: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("history");

/// What the engine keeps about a run besides its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    pub(crate) status: WorkflowStatus,
    pub(crate) start_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    /// Number of events in the history when the record was last written:
    /// at the start and at the close. While the run is open, the history's
    /// last event ID is the truth (see `Store::history_len`).
    pub(crate) history_len: u64,
}
