//! The write operations the engine sends a store, and what each did:
//! backend-neutral, with records and events encoded by the caller.

use std::time::{Duration, SystemTime};

use super::StoreError;
use super::record::RunRecord;
use crate::codec;
use crate::history::{RunId, WorkflowStatus};

/// Whether a closed workflow ID may be started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReuseRule {
    Allow,
    AllowIfLastNotCompleted,
    Reject,
}

/// A run record with its encoding, made by the caller so that the writer
/// thread, which every commit waits for, does not spend its time encoding.
#[derive(Debug)]
pub(crate) struct EncodedRecord {
    /// The record, for the store to read fields of (its indexes).
    pub(crate) record: RunRecord,
    /// Its `codec` encoding, as stored.
    pub(crate) bytes: Vec<u8>,
}

impl EncodedRecord {
    pub(crate) fn new(record: RunRecord) -> Result<Self, StoreError> {
        let bytes = codec::encode(&record).map_err(StoreError::encode)?;
        Ok(EncodedRecord { record, bytes })
    }
}

/// One change to the file.
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// Start a new run, unless its workflow ID has a running run or the reuse
    /// rule refuses the closed one.
    Start {
        run_id: RunId,
        record: EncodedRecord,
        /// Encoded events, numbered from 1.
        events: Vec<Vec<u8>>,
        reuse: ReuseRule,
        /// When the run next needs the engine (see `tables::WAKE_NOW`).
        wake: u64,
    },
    /// Close a running run with one event, for runs whose actor cannot do
    /// it (parked on an unreadable record or a failed write). Conditional
    /// as an append: refused with [`StoreError::Conflict`] unless the
    /// stored history ends just before `event_id`; a closed run answers
    /// `AlreadyClosed`.
    Close {
        run_id: RunId,
        workflow_id: String,
        /// The closing event's ID: one past the stored history.
        event_id: u64,
        /// When the engine closed the run: the event's time and the record's
        /// close time.
        at: SystemTime,
        /// The encoded closing event.
        event: Vec<u8>,
        status: WorkflowStatus,
    },
    /// Append events to a run; `record` is its new record when the events
    /// change it (they close the run, or upsert its search attributes).
    /// Conditional: refused with [`StoreError::Conflict`], writing nothing,
    /// unless the run is open and its stored history ends just before
    /// `expect_next`, so an actor that fell behind the file (the run was
    /// closed without it) can never overwrite or extend it; and unless,
    /// when `record` closes the run, the last event is the close event
    /// (nothing follows a close, also within one append).
    Append {
        run_id: RunId,
        record: Option<EncodedRecord>,
        /// The event ID the first event takes: one past the stored history.
        expect_next: u64,
        /// Encoded events with their event IDs, numbered from `expect_next`.
        events: Vec<(u64, Vec<u8>)>,
        /// When the run next needs the engine (see `tables::WAKE_NOW`).
        wake: u64,
    },
    /// Continue a run as new: the append that closes `run_id` (as
    /// `Append`, with its closed record, conditional the same way) and the
    /// start of its successor, in one commit (boxed: it is the largest op).
    /// A reset is written the same way: its closed record is `Terminated`
    /// (closing on `WorkflowReset`) and the successor's events begin with
    /// the copied history.
    ContinueAsNew(Box<ContinueAsNewOp>),
    /// A step that starts child workflows: the parent's append and each
    /// child's start (or the record that it was not started), in one
    /// commit (see [`super::children`]).
    StartChildren(Box<super::children::StartChildrenOp>),
    /// A step that closes a run with open children: the close (an
    /// `Append` or a `ContinueAsNew`) and each child's parent-close policy,
    /// in one commit (see [`super::children`]); also the reset of a closed
    /// run with open children: the new run's `Start` and the children
    /// handed to it.
    CloseParent(Box<super::children::CloseParentOp>),
    /// A step that signals or asks to cancel other workflows: the step (any
    /// of the ops above), each delivery into its target's history, and
    /// each outcome in the sender's, in one commit (see [`super::external`]).
    External(Box<super::external::ExternalOp>),
    /// A child's last close (any op above that closes the run) with the
    /// message its parent is owed, written in the same commit where other
    /// processes share the store (see [`super::children::TellParentOp`]).
    TellParent(Box<super::children::TellParentOp>),
    /// Create, change or remove a schedule, with the starts it makes, in
    /// one commit (see [`super::schedule`]).
    Schedule(Box<super::schedule::ScheduleOp>),
    /// Remove every run of a closed workflow ID (records, histories, index
    /// entries) and the ID.
    Delete { workflow_id: String },
    /// Remove a bounded batch of the runs closed at or before `cutoff`,
    /// oldest first (see `store::retention`).
    Sweep { cutoff: std::time::SystemTime },
}

/// A continue-as-new's two halves. Refused as a whole, writing nothing,
/// when the append would be, or when `next_run_id` is stored already.
#[derive(Debug)]
pub(crate) struct ContinueAsNewOp {
    pub(crate) run_id: RunId,
    /// The closed record of `run_id` (status `ContinuedAsNew`, or
    /// `Terminated` for a reset).
    pub(crate) record: EncodedRecord,
    pub(crate) expect_next: u64,
    /// Ends with the `WorkflowContinuedAsNew` event.
    pub(crate) events: Vec<(u64, Vec<u8>)>,
    pub(crate) next_run_id: RunId,
    pub(crate) next_record: EncodedRecord,
    /// The next run's encoded events, numbered from 1.
    pub(crate) next_events: Vec<Vec<u8>>,
    pub(crate) next_wake: u64,
}

/// What one operation did.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WriteOutcome {
    Started,
    AlreadyRunning(RunId),
    ReuseRejected(WorkflowStatus),
    Appended,
    /// A continue-as-new closed the run and started its successor.
    ContinuedAsNew,
    /// A step that starts children was appended, with one outcome event per
    /// start after its own events, in order: `ChildWorkflowStarted` for
    /// `Ok(run_id)`, `StartChildWorkflowFailed` with the cause for `Err`.
    ChildrenStarted(Vec<Result<RunId, crate::history::StartChildFailedCause>>),
    /// A close with open children was made, with what it did to them:
    /// the runs it terminated, those it asked to cancel, and (a reset's
    /// close) those it handed to the new run, each with the event written.
    ParentClosed {
        terminated: Vec<RunId>,
        cancel_requested: Vec<RunId>,
        reparented: Vec<(RunId, crate::history::Event)>,
    },
    /// A step with deliveries to other workflows was made (see
    /// [`super::external::ExternalOutcome`]).
    External(Box<super::external::ExternalOutcome>),
    Closed,
    AlreadyClosed(WorkflowStatus),
    /// A schedule's change was written, with the outcome of each of its
    /// starts in order: its run ID, or why its workflow ID refused it.
    ScheduleWritten(Vec<Result<RunId, crate::history::StartChildFailedCause>>),
    /// The runs a delete removed.
    Deleted(Vec<RunId>),
    /// A delete of an ID that has no run.
    NotFound,
    /// A delete refused: the ID's latest run is running.
    StillRunning(RunId),
    /// The runs a sweep removed; `more` when it stopped at a bound; `took`:
    /// how long the sweep held the writer (a measure, not a timestamp), for
    /// the sweeper's pacing.
    Swept {
        runs: Vec<RunId>,
        more: bool,
        took: Duration,
    },
}
