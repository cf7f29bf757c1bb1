//! Messages between processes that share a store (PostgreSQL): a call for
//! a run owned by another process travels as a [`RemoteRequest`] through
//! the store's inbox to the run's owner, which answers it with a
//! [`RemoteReply`]. Backend-neutral; a redb file has one process and never
//! sends one.
//!
//! Both are persisted (an inbox row lives until its owner takes it, and a
//! process of another build may take it): encoded by `codec` with a record
//! version, changed only by adding a version.

use serde::{Deserialize, Serialize};

use crate::codec::Record;
use crate::history::{Event, EventKind, Payload, RunId, UpdateOutcome, WorkflowStatus};

/// A call for a run that another process owns, as its owner's engine
/// hands it to the run.
// Persisted by position: never reorder; new variants at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum RemoteRequest {
    /// A signal from a client; `request_id` deduplicates it in the run
    /// (the sender gives one when its caller did not, so that a delivery
    /// made again after its owner crashed is recognised).
    Signal {
        name: String,
        input: Payload,
        request_id: Option<String>,
    },
    /// A query: answered from the owner's state of the run.
    Query {
        name: String,
        input: Payload,
    },
    /// An update: answered with its outcome once durable.
    Update {
        update_id: String,
        name: String,
        input: Payload,
    },
    Cancel {
        reason: String,
    },
    Terminate {
        reason: String,
    },
    /// A child of the run closed.
    ChildClosed {
        child_workflow_id: String,
        kind: Box<EventKind>,
    },
    /// An event another run's commit wrote into the run's history.
    Recorded {
        event: Box<Event>,
    },
    Pause {
        reason: String,
    },
    Unpause {
        reason: String,
    },
    /// A reset of the run (`Engine::reset_workflow`), made by the owner
    /// with its code: answered with the new run's ID.
    Reset {
        to: RemoteResetTo,
        reason: String,
        reapply_signals: bool,
        reapply_updates: bool,
    },
}

impl Record for RemoteRequest {}

/// Where a forwarded reset resets the run to (`ResetTo`, as persisted).
// Persisted by position: never reorder; new variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoteResetTo {
    EventId(u64),
    FirstWorkflowTask,
    LastWorkflowTask,
}

/// The owner's answer to a [`RemoteRequest`].
// Persisted by position: never reorder; new variants at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum RemoteReply {
    /// Done and durable (a signal, a cancellation, ...).
    Done,
    /// A query's answer.
    Answer(Payload),
    /// An update's outcome.
    Updated(UpdateOutcome),
    /// The run had closed with this status; nothing was done.
    Closed(WorkflowStatus),
    /// No actor took the request (the run is closed, unknown or parked
    /// there): the sender reads the store to tell its caller why.
    Gone,
    /// The call failed at the owner: the message of its error.
    Failed(String),
    /// A query named no handler of the workflow.
    UnknownQuery { query_name: String },
    /// An update was refused or failed before its handler's outcome.
    UpdateRefused(String),
    /// A reset was made: the new run's ID.
    ResetTo(RunId),
}

impl Record for RemoteReply {}

/// A request taken from the inbox for a run this process owns.
#[derive(Debug)]
pub(crate) struct InboxMessage {
    /// The inbox row's key, to answer it with.
    pub(crate) request: uuid::Uuid,
    pub(crate) workflow_id: String,
    pub(crate) run_id: RunId,
    pub(crate) body: InboxBody,
    /// Taken before by a process that did not answer it (it died, or
    /// lost the shard, after the call's effect was perhaps made): a
    /// request whose effect is found made is answered as done.
    pub(crate) redelivered: bool,
}

/// What an inbox row asks of its run.
#[derive(Debug)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum InboxBody {
    /// Be in memory: a run another process started (or made due) in a
    /// shard this process owns.
    Wake,
    /// The run was changed by another run's commit (closed by its
    /// parent's close): what this process holds of it is stale, and the
    /// run is loaded again from the store.
    Reload,
    /// A call, answered with [`Store::answer`](super::Store::answer).
    Request(RemoteRequest),
    /// The schedule of this ID (the message's workflow ID) was changed by
    /// a call in another process: its driver here takes a step.
    Schedule,
}

/// What a shared store tells its engine, besides answering calls.
#[derive(Debug)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum StoreEvent {
    /// This process no longer owns these shards (another process took
    /// them over, its lease ran out, or it handed them over): every run of
    /// them is dropped from memory without writing anything.
    Lost(Vec<u32>),
    /// This process acquired shards: their wake-ups are to be read now
    /// (the next [`Store::wakeups`](super::Store::wakeups) reads them whole).
    Acquired,
    /// A request for a run of a shard this process owns.
    Message(InboxMessage),
}
