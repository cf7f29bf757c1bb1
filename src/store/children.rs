//! The write that starts child workflows: a parent's step and its children's
//! starts, committed together, so that no history ever holds a child start
//! whose outcome is unknown (Temporal's "initiated but not started").

use std::time::SystemTime;

use super::ops::{EncodedRecord, ReuseRule, WriteOp};
use crate::history::{Event, EventKind, MutableState, ParentClosePolicy, RunId};

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

/// A run's close (`close`: its `Append` or `ContinueAsNew`; or, for the
/// reset of a closed run, the new run's `Start`, whose refusal as
/// `AlreadyRunning` is answered as such, writing nothing) with the
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
    /// A reset's close hands the child to the new run instead of applying
    /// its policy: the child gets `ParentWorkflowReset` naming this run
    /// (whatever its policy, abandon included).
    pub(crate) reparent_to: Option<RunId>,
}

/// A child's last close (its `Append`, `CloseParent` or `External` op,
/// as `close`) with the message its parent is owed: the parent's
/// `ChildWorkflowCompleted` or `ChildWorkflowClosed` event `kind`. The op
/// answers as `close` does. A file has one process, which tells the parent
/// after the commit (and a parent loaded later finds the close by itself);
/// in a store several processes share, the message is written into the
/// parent's inbox in the close's own commit, so that it reaches the
/// parent's owner (another process, perhaps) even when the child's
/// process dies right after the commit, before any message it sends.
#[derive(Debug)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct TellParentOp {
    pub(crate) close: WriteOp,
    pub(crate) parent_workflow_id: String,
    pub(crate) parent_run_id: RunId,
    pub(crate) child_workflow_id: String,
    pub(crate) kind: EventKind,
}

/// What a closing parent does to one open run of its child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildActionKind {
    /// `WorkflowTerminated`, closing it (policy Terminate).
    Terminate,
    /// A cancellation request (policy RequestCancel).
    Cancel,
    /// `ParentWorkflowReset`: the child goes on, now the new run's.
    Reparent,
}

/// What a closing parent's commit writes into a child's open run, decided
/// from the run's folded `state` (both stores decide the same way): only
/// a run that names `parent_run` and `seq` as its parent is touched (an ID
/// reused by an unrelated workflow is left alone); a request to cancel is
/// state, so a run that has (or holds) one gets nothing more. The event
/// takes the ID after the stored history, at time `at`.
pub(crate) fn child_action(
    state: &MutableState,
    parent_run: RunId,
    seq: u32,
    policy: ParentClosePolicy,
    reparent_to: Option<RunId>,
    at: SystemTime,
) -> Option<(ChildActionKind, Event)> {
    let ours = state
        .parent
        .as_ref()
        .is_some_and(|p| p.run_id == parent_run && p.seq == seq);
    if !ours || state.status.is_closed() {
        return None;
    }
    let (action, kind) = match (reparent_to, policy) {
        (Some(parent_run_id), _) => (
            ChildActionKind::Reparent,
            EventKind::ParentWorkflowReset { parent_run_id },
        ),
        (None, ParentClosePolicy::Terminate) => (
            ChildActionKind::Terminate,
            EventKind::WorkflowTerminated {
                reason: format!(
                    "its parent workflow's run {parent_run} closed (parent-close policy Terminate)"
                ),
            },
        ),
        (None, ParentClosePolicy::RequestCancel) => {
            if state.cancel_requested || state.cancel_deferred.is_some() {
                return None;
            }
            (
                ChildActionKind::Cancel,
                super::cancel_request(
                    state,
                    format!(
                        "its parent workflow's run {parent_run} closed (parent-close policy RequestCancel)"
                    ),
                ),
            )
        }
        (None, ParentClosePolicy::Abandon) => return None,
    };
    Some((
        action,
        Event {
            event_id: state.next_event_id(),
            timestamp: at,
            kind,
        },
    ))
}
