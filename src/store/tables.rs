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
//! - `visibility` (format 2): `&[u8] -> ()`, the indexes `list` and
//!   `delete` scan; the key layout is documented in `store/visibility.rs`.

use std::time::SystemTime;

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, Record};
use crate::history::{Payload, SearchAttributes, WorkflowStatus};

/// Store format versions:
/// - 1: the first layout (meta, workflows, runs, running, wakeups, history).
/// - 2: adds the `visibility` table (indexes of every run for `list`) and
///   run records of record version 2 (search attributes, memo). A format-1
///   file is migrated on open, in one write transaction that builds the
///   index entries of every run and sets the version to 2; its version-1
///   run records stay as they are and decode as records without attributes.
pub(crate) const STORE_FORMAT_VERSION: u32 = 2;
/// The first layout, migrated on open.
pub(crate) const STORE_FORMAT_V1: u32 = 1;
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
pub(crate) const VISIBILITY: TableDefinition<&[u8], ()> = TableDefinition::new("visibility");

/// What the engine keeps about a run besides its history (record version 2).
///
/// Written at the start, at the close, and by a step that upserts search
/// attributes, each time in the same commit as that step's events.
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
    /// The run's current search attributes: those given at the start with
    /// every upsert of the workflow merged in.
    pub(crate) search_attributes: SearchAttributes,
    /// The memo given at the start (JSON), not indexed.
    pub(crate) memo: Option<Payload>,
}

impl Record for RunRecord {
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => codec::decode_exact::<RunRecordV1>(body).map(RunRecord::from),
            found => Err(CodecError::NewerVersion {
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// A run record of record version 1 (store format 1), frozen: never change
/// it, it is how files written by steadfast 0.1 are read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecordV1 {
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    pub(crate) status: WorkflowStatus,
    pub(crate) start_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    pub(crate) history_len: u64,
}

impl From<RunRecordV1> for RunRecord {
    fn from(v1: RunRecordV1) -> Self {
        RunRecord {
            workflow_id: v1.workflow_id,
            workflow_type: v1.workflow_type,
            task_queue: v1.task_queue,
            status: v1.status,
            start_time: v1.start_time,
            close_time: v1.close_time,
            history_len: v1.history_len,
            search_attributes: SearchAttributes::new(),
            memo: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_record_decodes_without_attributes() {
        let v1 = RunRecordV1 {
            workflow_id: "w".into(),
            workflow_type: "T".into(),
            task_queue: "default".into(),
            status: WorkflowStatus::Completed,
            start_time: SystemTime::UNIX_EPOCH,
            close_time: Some(SystemTime::UNIX_EPOCH),
            history_len: 3,
        };
        // Version 1 bytes as the first build wrote them: the byte 1, then
        // the body in the same bincode configuration.
        let bytes = codec::encode(&v1).unwrap();
        assert_eq!(bytes[0], 1);
        let record: RunRecord = codec::decode(&bytes).unwrap();
        assert_eq!(record, RunRecord::from(v1));
        let again = codec::encode(&record).unwrap();
        assert_eq!(again[0], 2);
        assert_eq!(codec::decode::<RunRecord>(&again).unwrap(), record);
    }

    impl Record for RunRecordV1 {}
}
