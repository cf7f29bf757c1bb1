//! Schedules: workflows started on a calendar or an interval, kept in the
//! same file as the runs (Temporal's Schedules).
//!
//! A schedule is a record in the store: its spec, its action, its policies
//! and its progress (the high-water mark of nominal times dealt with, the
//! actions buffered, the workflows running). Each action starts a workflow
//! whose ID is the schedule's workflow ID with the action's nominal time
//! appended (`nightly-2026-12-02T02:30:00Z`), and the start is committed
//! together with the schedule's new progress, so a crash at any moment
//! neither misses an action inside the catch-up window nor starts one twice.
//! Time comes from the engine's clock: on a [`TestEngine`](crate::testing::TestEngine)
//! schedules run on virtual time.

mod description;
mod overlap;
pub(crate) mod progress;
pub(crate) mod record;
mod spec;

use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use description::{
    ScheduleActionResult, ScheduleDescription, ScheduleInfo, ScheduleListEntry, ScheduleWorkflow,
};
pub(crate) use overlap::BufferedAction;
pub use overlap::{MAX_BUFFERED_ACTIONS, ScheduleOverlapPolicy};
pub(crate) use spec::CompiledSpec;
pub use spec::{ScheduleIntervalSpec, ScheduleSpec};

use crate::engine::WorkflowOptions;
use crate::error::ClientError;
use crate::history::{Payload, PayloadError, SearchAttributes};
use crate::workflow::WorkflowDef;

/// The default catch-up window: one year, as Temporal's.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);
/// The shortest catch-up window (Temporal's minimum).
pub const MIN_CATCHUP_WINDOW: Duration = Duration::from_secs(10);

/// A schedule: when it acts, what it starts, how it handles overlaps and
/// downtime, and whether it is paused.
///
/// ```
/// use std::time::Duration;
/// use steadfast::{
///     Schedule, ScheduleAction, ScheduleIntervalSpec, ScheduleSpec, WorkflowDef, WorkflowOptions,
/// };
/// const REPORT: WorkflowDef<String, ()> = WorkflowDef::new("Report");
/// let schedule = Schedule::new(
///     ScheduleAction::start_workflow(REPORT, "report", &"daily".to_string(), WorkflowOptions::new())?,
///     ScheduleSpec::cron("0 6 * * *").time_zone("Europe/Paris"),
/// );
/// # Ok::<(), steadfast::PayloadError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Schedule {
    /// What each action starts.
    pub action: ScheduleAction,
    /// When it acts.
    pub spec: ScheduleSpec,
    /// Overlap and catch-up.
    pub policy: SchedulePolicy,
    /// Paused or not, and a limit on actions.
    pub state: ScheduleState,
}

impl Schedule {
    /// A running schedule with the default policies (skip overlaps, a
    /// one-year catch-up window).
    pub fn new(action: ScheduleAction, spec: ScheduleSpec) -> Self {
        Schedule {
            action,
            spec,
            policy: SchedulePolicy::default(),
            state: ScheduleState::default(),
        }
    }

    /// With these policies.
    pub fn with_policy(mut self, policy: SchedulePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// With this state (paused, a note, a limit on actions).
    pub fn with_state(mut self, state: ScheduleState) -> Self {
        self.state = state;
        self
    }
}

/// The workflow an action starts (Temporal's `ScheduleActionStartWorkflow`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScheduleAction {
    /// The workflow type.
    pub workflow_type: String,
    /// The workflow ID each start gets, with `-` and the action's nominal
    /// time (RFC 3339, UTC) appended.
    pub workflow_id: String,
    /// The input of every start, JSON.
    pub input: Payload,
    /// Task queue, timeouts, search attributes and memo of every start
    /// (the ID policies are the schedule's: an ID is never started twice).
    pub task_queue: String,
    /// The run timeout of each start.
    pub run_timeout: Option<Duration>,
    /// The execution timeout of each start.
    pub execution_timeout: Option<Duration>,
    /// The search attributes each start gets.
    pub search_attributes: SearchAttributes,
    /// The memo each start gets.
    pub memo: Option<Payload>,
}

impl ScheduleAction {
    /// Starts `workflow` with `input`, under IDs beginning with
    /// `workflow_id`, with the task queue, timeouts, search attributes and
    /// memo of `options`.
    ///
    /// # Errors
    /// [`PayloadError`] when `input` does not encode.
    pub fn start_workflow<I: Serialize, O>(
        workflow: WorkflowDef<I, O>,
        workflow_id: impl Into<String>,
        input: &I,
        options: WorkflowOptions,
    ) -> Result<Self, PayloadError> {
        Ok(ScheduleAction::start_workflow_by_name(
            workflow.name(),
            workflow_id,
            Payload::encode(input)?,
            options,
        ))
    }

    /// As [`start_workflow`](Self::start_workflow), with a type named at
    /// run time and JSON input (for an admin endpoint or a CLI).
    pub fn start_workflow_by_name(
        workflow_type: impl Into<String>,
        workflow_id: impl Into<String>,
        input: Payload,
        options: WorkflowOptions,
    ) -> Self {
        ScheduleAction {
            workflow_type: workflow_type.into(),
            workflow_id: workflow_id.into(),
            input,
            task_queue: options.task_queue,
            run_timeout: options.run_timeout,
            execution_timeout: options.execution_timeout,
            search_attributes: options.search_attributes,
            memo: options.memo,
        }
    }
}

/// How a schedule handles overlaps and downtime (Temporal's `SchedulePolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchedulePolicy {
    /// What an action does while the previous one runs; default
    /// [`ScheduleOverlapPolicy::Skip`].
    pub overlap: ScheduleOverlapPolicy,
    /// After downtime (the app was not running), actions whose time is at
    /// most this long past are still taken; older ones are skipped and
    /// counted in [`ScheduleInfo::missed_catchup_window`]. Default one year,
    /// at least [`MIN_CATCHUP_WINDOW`].
    pub catchup_window: Duration,
    /// Pause the schedule when a workflow it started fails or times out
    /// (Temporal's `pause_on_failure`; a cancelled or terminated one does
    /// not pause it). The pause's note names the workflow; unpause to go
    /// on. Default off.
    pub pause_on_failure: bool,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            overlap: ScheduleOverlapPolicy::Skip,
            catchup_window: DEFAULT_CATCHUP_WINDOW,
            pause_on_failure: false,
        }
    }
}

impl SchedulePolicy {
    /// With this overlap policy.
    pub fn overlap(mut self, overlap: ScheduleOverlapPolicy) -> Self {
        self.overlap = overlap;
        self
    }

    /// With this catch-up window.
    pub fn catchup_window(mut self, window: Duration) -> Self {
        self.catchup_window = window;
        self
    }

    /// Pausing on a failed or timed-out action, or not.
    pub fn pause_on_failure(mut self, pause: bool) -> Self {
        self.pause_on_failure = pause;
        self
    }
}

/// Whether a schedule acts (Temporal's `ScheduleState`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleState {
    /// A paused schedule takes no action from its spec (the times pass
    /// unused); trigger and backfill still act.
    pub paused: bool,
    /// Why it was paused or unpaused, for people.
    pub note: String,
    /// Scheduled actions left; at zero the schedule acts as paused.
    /// `None`: unlimited. Triggers and backfills do not count.
    pub remaining_actions: Option<u64>,
}

impl ScheduleState {
    /// Created paused, with a note.
    pub fn paused(note: impl Into<String>) -> Self {
        ScheduleState {
            paused: true,
            note: note.into(),
            remaining_actions: None,
        }
    }

    /// At most `actions` scheduled actions.
    pub fn with_remaining_actions(mut self, actions: u64) -> Self {
        self.remaining_actions = Some(actions);
        self
    }
}

/// A past range to take the actions of, as if the schedule had acted then
/// (Temporal's `ScheduleBackfill`): every nominal time in
/// `[start_at, end_at]`, each with `overlap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleBackfill {
    /// The range's first time (included).
    pub start_at: SystemTime,
    /// The range's last time (included).
    pub end_at: SystemTime,
    /// The overlap policy of the backfilled actions.
    pub overlap: ScheduleOverlapPolicy,
}

impl ScheduleBackfill {
    /// The actions of `[start_at, end_at]`, under `overlap`.
    pub fn new(start_at: SystemTime, end_at: SystemTime, overlap: ScheduleOverlapPolicy) -> Self {
        ScheduleBackfill {
            start_at,
            end_at,
            overlap,
        }
    }
}

/// A schedule call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// No schedule has this ID.
    #[error("no schedule has the ID {schedule_id:?}; list them with list_schedules")]
    NotFound {
        /// The ID asked for.
        schedule_id: String,
    },
    /// A schedule with this ID exists (Temporal's `ScheduleAlreadyRunning`).
    #[error(
        "a schedule with the ID {schedule_id:?} already exists; delete it first, or choose another ID"
    )]
    AlreadyRunning {
        /// The ID taken.
        schedule_id: String,
    },
    /// The spec does not parse or makes no sense.
    #[error("the schedule spec {spec:?} is invalid: {message}")]
    InvalidSpec {
        /// The part of the spec at fault (a cron expression, a zone name).
        spec: String,
        /// Why (for a cron expression: the parser's message).
        message: String,
    },
    /// Another argument is refused; the message says which and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// The engine refused or failed (storage, shutdown, a read-only file,
    /// an unknown workflow type): see [`ClientError`].
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl From<crate::store::StoreError> for ScheduleError {
    fn from(err: crate::store::StoreError) -> Self {
        ScheduleError::Client(err.into())
    }
}
