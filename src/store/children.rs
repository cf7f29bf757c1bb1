//! The write that starts child workflows: a parent's step and its children's
//! starts, committed together, so that no history ever holds a child start
//! whose outcome is unknown (Temporal's "initiated but not started").

use std::time::SystemTime;

use super::ops::{EncodedRecord, ReuseRule, WriteOp};
use crate::history::{ParentClosePolicy, RunId};

/// A parent's append (as `WriteOp::Append`, conditional the same way) with
/// the starts its events initiate. Refused as a whole, writing nothing,
/// when the append would be. A start the child's workflow ID refuses (a
/// running run, the reuse rule, an unreadable record) is not a refusal: the
/// op records `StartChildWorkflowFailed` for it instead of
/// `ChildWorkflowStarted`, after the append's events.
#[derive(Debug)]
pub(crate) struct StartChildrenOp {
    pub(crate) run_id: RunId,
    /// The parent's new record, when its events change it; never a
    /// closed one (a closing step starts no child).
    pub(crate) record: Option<EncodedRecord>,
    pub(crate) expect_next: u64,
    pub(crate) events: Vec<(u64, Vec<u8>)>,
    pub(crate) wake: u64,
    /// In the order of their `StartChildWorkflowInitiated` events; their
    /// outcome events take the IDs after `events`, in this order.
    pub(crate) starts: Vec<ChildStartOp>,
}

/// One child's start, as `WriteOp::Start` has it, with what its outcome
/// event in the parent needs.
#[derive(Debug)]
pub(crate) struct ChildStartOp {
    /// The start's command sequence number in the parent.
    pub(crate) seq: u32,
    pub(crate) run_id: RunId,
    pub(crate) record: EncodedRecord,
    /// The child's encoded first events, numbered from 1.
    pub(crate) events: Vec<Vec<u8>>,
    pub(crate) reuse: ReuseRule,
    pub(crate) wake: u64,
    /// The time of the outcome event (the engine's, not the store's).
    pub(crate) at: SystemTime,
}

/// A run's close (`close`: its `Append` or `ContinueAsNew`) with the
/// parent-close policy of each of its open children, applied in the same
/// commit: a child to terminate gets `WorkflowTerminated` (closing it), one
/// to cancel gets `WorkflowCancelRequested` (and the wake hint `WAKE_NOW`),
/// each appended after its stored history. Refused as a whole when the close
/// is. A child is dealt with only while its workflow ID's latest run is
/// open and names this run and seq as its parent (so an ID reused by an
/// unrelated workflow is left alone); a child terminated this way has its
/// own open children dealt with in turn, per their policies.
#[derive(Debug)]
pub(crate) struct CloseParentOp {
    pub(crate) close: WriteOp,
    pub(crate) run_id: RunId,
    pub(crate) children: Vec<ChildCloseOp>,
    /// The time of the events written to children (the engine's).
    pub(crate) at: SystemTime,
}

/// One open child of a closing run.
#[derive(Debug)]
pub(crate) struct ChildCloseOp {
    pub(crate) workflow_id: String,
    pub(crate) seq: u32,
    pub(crate) policy: ParentClosePolicy,
}
