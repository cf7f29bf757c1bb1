//! The persisted form of a schedule (record version 1, store format 13):
//! its configuration and its progress in one record, rewritten, in the
//! same commit, with every start it makes.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::overlap::{BufferedAction, ScheduleOverlapPolicy};
use super::spec::{ScheduleIntervalSpec, ScheduleSpec};
use crate::codec::Record;
use crate::history::{Payload, RunId, SearchAttributes};

/// How many recent actions a schedule keeps (Temporal's `RecentActionCount`).
pub(crate) const RECENT_ACTIONS: usize = 10;

/// One schedule as stored (record version 1). Never change a field in
/// place: a change adds a record version (see `codec`).
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
}

impl Record for ScheduleRecord {}

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
        }
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
