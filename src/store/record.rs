//! What the engine keeps about a run besides its history, and when it next
//! needs the engine: backend-neutral records every store keeps as given.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, Record};
use crate::history::{Payload, RunId, SearchAttributes, WorkflowStatus};

/// Wake hint of a run with work to do now (an attempt in flight, commands
/// not yet acted on). Other hints are a due time in milliseconds since the
/// Unix epoch, or [`WAKE_NEVER`] for a run that waits only for a message
/// (a signal, a cancellation).
pub(crate) const WAKE_NOW: u64 = 0;
/// Wake hint of a run that waits only for a message.
pub(crate) const WAKE_NEVER: u64 = u64::MAX;
/// What the engine keeps about a run besides its history (record version 3,
/// since store format 13).
///
/// Written at the start, at the close, and by a step that upserts search
/// attributes, pauses or unpauses the run, each time in the same commit as
/// that step's events.
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
    /// While an operator has the run paused, the reason given (the fold's
    /// `paused`, kept here so that `list` shows it without a history).
    /// Version 3.
    pub(crate) paused: Option<String>,
    /// The run this one was reset from, when a reset started it. Version 3.
    pub(crate) reset_from: Option<RunId>,
}

impl Record for RunRecord {
    const VERSION: u8 = 3;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => codec::decode_exact::<RunRecordV1>(body).map(RunRecord::from),
            2 => codec::decode_exact::<RunRecordV2>(body).map(RunRecord::from),
            found => Err(CodecError::NewerVersion {
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// A run record of record version 2 (store formats 2 to 12), frozen:
/// never change it, it is how files written before pause and reset are read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecordV2 {
    pub(crate) workflow_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    pub(crate) status: WorkflowStatus,
    pub(crate) start_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    pub(crate) history_len: u64,
    pub(crate) search_attributes: SearchAttributes,
    pub(crate) memo: Option<Payload>,
}

impl From<RunRecordV2> for RunRecord {
    fn from(v2: RunRecordV2) -> Self {
        RunRecord {
            workflow_id: v2.workflow_id,
            workflow_type: v2.workflow_type,
            task_queue: v2.task_queue,
            status: v2.status,
            start_time: v2.start_time,
            close_time: v2.close_time,
            history_len: v2.history_len,
            search_attributes: v2.search_attributes,
            memo: v2.memo,
            paused: None,
            reset_from: None,
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
            paused: None,
            reset_from: None,
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
        assert_eq!(again[0], 3);
        assert_eq!(codec::decode::<RunRecord>(&again).unwrap(), record);
    }

    #[test]
    fn a_version_2_record_decodes_unpaused_and_not_reset() {
        let v2 = RunRecordV2 {
            workflow_id: "w".into(),
            workflow_type: "T".into(),
            task_queue: "default".into(),
            status: WorkflowStatus::Running,
            start_time: SystemTime::UNIX_EPOCH,
            close_time: None,
            history_len: 2,
            search_attributes: SearchAttributes::new(),
            memo: None,
        };
        let bytes = codec::encode(&v2).unwrap();
        assert_eq!(bytes[0], 2);
        let record: RunRecord = codec::decode(&bytes).unwrap();
        assert_eq!(record, RunRecord::from(v2));
        assert_eq!((record.paused, record.reset_from), (None, None));
    }

    impl Record for RunRecordV1 {}
    impl Record for RunRecordV2 {
        const VERSION: u8 = 2;
    }
}
