//! The persisted form of a schedule (record version 2 since store format
//! 16; version 1, store formats 14 and 15, reads through the frozen
//! [`ScheduleRecordV1`]): its configuration and its progress in one
//! record, rewritten, in the same commit, with every start it makes.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::overlap::{BufferedAction, ScheduleOverlapPolicy};
use super::spec::{ScheduleIntervalSpec, ScheduleSpec};
use crate::codec::{self, CodecError, Record};
use crate::history::{Failure, Payload, RunId, SearchAttributes};

/// How many recent actions a schedule keeps (Temporal's `RecentActionCount`).
pub(crate) const RECENT_ACTIONS: usize = 10;

/// One schedule as stored (record version 2: version 1's fields, then
/// `pause_on_failure`, `last_completion_result` and `last_failure`). Never
/// change a field in place: a change adds a record version (see `codec`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScheduleRecord {
    pub(crate) schedule_id: String,
    /// Counts every write: a write names the revision it read, and is
    /// refused if the stored one moved meanwhile.
    pub(crate) revision: u64,
    pub(crate) spec: SpecRecord,
    pub(crate) action: ActionRecord,
    pub(crate) overlap: ScheduleOverlapPolicy,
    pub(crate) catchup_window: Duration,
    pub(crate) paused: bool,
    pub(crate) notes: String,
    /// `None`: unlimited.
    pub(crate) remaining_actions: Option<u64>,
    pub(crate) created_at: SystemTime,
    pub(crate) updated_at: Option<SystemTime>,
    /// Every nominal time of the spec up to and including this one has
    /// been dealt with (buffered, started, skipped or missed): the
    /// schedule's high-water mark.
    pub(crate) high_water: SystemTime,
    /// Actions waiting to start, in order.
    pub(crate) buffer: Vec<BufferedAction>,
    /// Workflows the schedule started that had not closed at the last look.
    pub(crate) running: Vec<(String, RunId)>,
    /// The last [`RECENT_ACTIONS`] starts, oldest first.
    pub(crate) recent: Vec<RecentAction>,
    pub(crate) action_count: u64,
    pub(crate) missed_catchup_window: u64,
    pub(crate) overlap_skipped: u64,
    pub(crate) buffer_dropped: u64,
    /// Pause the schedule when an action's workflow fails or times out
    /// (Temporal's `SchedulePolicies.pause_on_failure`). Version 2.
    pub(crate) pause_on_failure: bool,
    /// The result of the most recent action whose workflow completed, as
    /// the schedule's steps found it: passed to the next start. Version 2.
    pub(crate) last_completion_result: Option<Payload>,
    /// The failure of the most recent action whose workflow failed or
    /// timed out, cleared by a completion: passed to the next start.
    /// Version 2.
    pub(crate) last_failure: Option<Failure>,
}

/// Version 2 since store format 16; version 1 reads through
/// [`ScheduleRecordV1`], as a schedule that does not pause on failure and
/// has passed nothing on yet.
impl Record for ScheduleRecord {
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => Ok(codec::decode_exact::<ScheduleRecordV1>(body)?.into()),
            found => Err(CodecError::NewerVersion {
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// A schedule as store formats 14 and 15 wrote it (record version 1). Frozen:
/// never change it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScheduleRecordV1 {
    pub(crate) schedule_id: String,
    pub(crate) revision: u64,
    pub(crate) spec: SpecRecord,
    pub(crate) action: ActionRecord,
    pub(crate) overlap: ScheduleOverlapPolicy,
    pub(crate) catchup_window: Duration,
    pub(crate) paused: bool,
    pub(crate) notes: String,
    pub(crate) remaining_actions: Option<u64>,
    pub(crate) created_at: SystemTime,
    pub(crate) updated_at: Option<SystemTime>,
    pub(crate) high_water: SystemTime,
    pub(crate) buffer: Vec<BufferedAction>,
    pub(crate) running: Vec<(String, RunId)>,
    pub(crate) recent: Vec<RecentAction>,
    pub(crate) action_count: u64,
    pub(crate) missed_catchup_window: u64,
    pub(crate) overlap_skipped: u64,
    pub(crate) buffer_dropped: u64,
}

impl From<ScheduleRecordV1> for ScheduleRecord {
    fn from(v1: ScheduleRecordV1) -> Self {
        ScheduleRecord {
            schedule_id: v1.schedule_id,
            revision: v1.revision,
            spec: v1.spec,
            action: v1.action,
            overlap: v1.overlap,
            catchup_window: v1.catchup_window,
            paused: v1.paused,
            notes: v1.notes,
            remaining_actions: v1.remaining_actions,
            created_at: v1.created_at,
            updated_at: v1.updated_at,
            high_water: v1.high_water,
            buffer: v1.buffer,
            running: v1.running,
            recent: v1.recent,
            action_count: v1.action_count,
            missed_catchup_window: v1.missed_catchup_window,
            overlap_skipped: v1.overlap_skipped,
            buffer_dropped: v1.buffer_dropped,
            pause_on_failure: false,
            last_completion_result: None,
            last_failure: None,
        }
    }
}

#[cfg(test)]
impl ScheduleRecord {
    /// A schedule of the workflow type `W` every second, for tests.
    pub(crate) fn sample(schedule_id: &str, revision: u64, at: SystemTime) -> Self {
        let spec = ScheduleSpec::interval(ScheduleIntervalSpec::new(Duration::from_secs(1)));
        ScheduleRecord {
            schedule_id: schedule_id.into(),
            revision,
            spec: SpecRecord::from(&spec),
            action: ActionRecord {
                workflow_type: "W".into(),
                workflow_id: schedule_id.into(),
                task_queue: "default".into(),
                input: Payload::encode(&()).expect("a payload"),
                run_timeout: None,
                execution_timeout: None,
                memo: None,
                search_attributes: SearchAttributes::new(),
            },
            overlap: ScheduleOverlapPolicy::Skip,
            catchup_window: Duration::from_secs(10),
            paused: false,
            notes: String::new(),
            remaining_actions: None,
            created_at: at,
            updated_at: None,
            high_water: at,
            buffer: Vec::new(),
            running: Vec::new(),
            recent: Vec::new(),
            action_count: 0,
            missed_catchup_window: 0,
            overlap_skipped: 0,
            buffer_dropped: 0,
            pause_on_failure: false,
            last_completion_result: None,
            last_failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written as store format 14 wrote it, to check the decoder.
    impl Record for ScheduleRecordV1 {}

    /// A version-1 record (store format 14) reads as a schedule that does
    /// not pause on failure and has passed nothing on; a version-2 record
    /// keeps the new fields.
    #[test]
    fn version_1_records_decode_and_version_2_round_trips() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut record = ScheduleRecord::sample("s", 3, at);
        let r = record.clone();
        let v1 = ScheduleRecordV1 {
            schedule_id: r.schedule_id,
            revision: r.revision,
            spec: r.spec,
            action: r.action,
            overlap: r.overlap,
            catchup_window: r.catchup_window,
            paused: r.paused,
            notes: r.notes,
            remaining_actions: r.remaining_actions,
            created_at: r.created_at,
            updated_at: r.updated_at,
            high_water: r.high_water,
            buffer: r.buffer,
            running: r.running,
            recent: r.recent,
            action_count: r.action_count,
            missed_catchup_window: r.missed_catchup_window,
            overlap_skipped: r.overlap_skipped,
            buffer_dropped: r.buffer_dropped,
        };
        let bytes = codec::encode(&v1).expect("encodes");
        assert_eq!(bytes[0], 1);
        assert_eq!(
            codec::decode::<ScheduleRecord>(&bytes).expect("a version-1 record"),
            record
        );
        record.pause_on_failure = true;
        record.last_completion_result = Some(Payload::encode(&7).expect("a payload"));
        record.last_failure = Some(Failure::new("Boom", "it broke"));
        let bytes = codec::encode(&record).expect("encodes");
        assert_eq!(bytes[0], 2);
        assert_eq!(
            codec::decode::<ScheduleRecord>(&bytes).expect("decodes"),
            record
        );
    }
}

/// [`ScheduleSpec`] as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpecRecord {
    pub(crate) cron_expressions: Vec<String>,
    /// `(every, offset)` pairs.
    pub(crate) intervals: Vec<(Duration, Duration)>,
    pub(crate) time_zone: Option<String>,
    pub(crate) jitter: Duration,
    pub(crate) start_at: Option<SystemTime>,
    pub(crate) end_at: Option<SystemTime>,
}

impl From<&ScheduleSpec> for SpecRecord {
    fn from(spec: &ScheduleSpec) -> Self {
        SpecRecord {
            cron_expressions: spec.cron_expressions.clone(),
            intervals: spec.intervals.iter().map(|i| (i.every, i.offset)).collect(),
            time_zone: spec.time_zone.clone(),
            jitter: spec.jitter,
            start_at: spec.start_at,
            end_at: spec.end_at,
        }
    }
}

impl From<&SpecRecord> for ScheduleSpec {
    fn from(record: &SpecRecord) -> Self {
        ScheduleSpec {
            cron_expressions: record.cron_expressions.clone(),
            intervals: record
                .intervals
                .iter()
                .map(|&(every, offset)| ScheduleIntervalSpec { every, offset })
                .collect(),
            time_zone: record.time_zone.clone(),
            jitter: record.jitter,
            start_at: record.start_at,
            end_at: record.end_at,
        }
    }
}

/// The workflow each action starts, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ActionRecord {
    pub(crate) workflow_type: String,
    /// The workflow ID's prefix; the nominal time is appended.
    pub(crate) workflow_id: String,
    pub(crate) task_queue: String,
    pub(crate) input: Payload,
    pub(crate) run_timeout: Option<Duration>,
    pub(crate) execution_timeout: Option<Duration>,
    pub(crate) memo: Option<Payload>,
    pub(crate) search_attributes: SearchAttributes,
}

/// One start a schedule made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecentAction {
    pub(crate) nominal: SystemTime,
    pub(crate) started_at: SystemTime,
    pub(crate) workflow_id: String,
    pub(crate) run_id: RunId,
}
