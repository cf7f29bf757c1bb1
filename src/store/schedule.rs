//! The write that changes a schedule: its new record (or its removal) with
//! the workflow starts it makes, in one commit, so that a schedule's
//! progress and its starts are durable together (no action is lost or made
//! twice by a crash between them).

use super::StoreError;
use super::ops::EncodedRecord;
use crate::codec;
use crate::history::RunId;
use crate::schedule::record::ScheduleRecord;

/// A schedule record's encoding, made by the caller (as [`EncodedRecord`]
/// is): the store keeps it as given and reads only its revision back.
#[derive(Debug)]
pub(crate) struct EncodedSchedule {
    pub(crate) bytes: Vec<u8>,
}

impl EncodedSchedule {
    pub(crate) fn new(record: &ScheduleRecord) -> Result<Self, StoreError> {
        let bytes = codec::encode(record).map_err(StoreError::encode)?;
        Ok(EncodedSchedule { bytes })
    }
}

/// A schedule's change. Conditional: refused with
/// [`StoreError::ScheduleConflict`], writing nothing, unless the stored
/// record's revision is `expect` (`None`: no record is stored under the
/// ID, a create). Each start is then made as `WriteOp::Start` would with
/// `ReuseRule::Reject` (an ID that has run is never started again), or
/// answered with why its workflow ID refuses it (a running run, a closed
/// one, an unreadable record) without writing; the record is written
/// either way. Every refusal is decided before the first write.
#[derive(Debug)]
pub(crate) struct ScheduleOp {
    pub(crate) schedule_id: String,
    pub(crate) expect: Option<u64>,
    /// The new record; `None` removes the schedule.
    pub(crate) record: Option<EncodedSchedule>,
    pub(crate) starts: Vec<ScheduledStart>,
    /// Written by the schedule's driver (its step), not by a call. In a
    /// store several processes share, only the owner of the schedule ID's
    /// shard drives it: a driver's write is fenced like the owner's other
    /// writes (refused with [`StoreError::ShardLost`] once the shard is
    /// another process's), and a call's write made by another process
    /// hints the owner in the same commit, so that its driver looks again.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) driver: bool,
}

/// One workflow start of a [`ScheduleOp`].
#[derive(Debug)]
pub(crate) struct ScheduledStart {
    pub(crate) run_id: RunId,
    pub(crate) record: EncodedRecord,
    /// Encoded first events, numbered from 1.
    pub(crate) events: Vec<Vec<u8>>,
    pub(crate) wake: u64,
}
