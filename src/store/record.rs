//! What the engine keeps about a run besides its history, and when it next
//! needs the engine: backend-neutral records every store keeps as given.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, Record};
use crate::history::{Payload, SearchAttributes, WorkflowStatus};

/// Wake hint of a run with work to do now (an attempt in flight, commands
/// not yet acted on). Other hints are a due time in milliseconds since the
/// Unix epoch, or [`WAKE_NEVER`] for a run that waits only for a message
/// (a signal, a cancellation).
pub(crate) const WAKE_NOW: u64 = 0;
/// Wake hint of a run that waits only for a message.
pub(crate) const WAKE_NEVER: u64 = u64::MAX;
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
