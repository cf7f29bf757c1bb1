//! The store: what the engine needs of durable storage, as a trait
//! ([`Store`]; its promises in [`contract`], tested for every backend by
//! [`conformance`]), the backend-neutral records and operations it keeps
//! ([`record`], [`ops`], [`query`]), and its implementation in one redb
//! file ([`redb`], the only code that imports redb).
//!
//! The engine decides every ID and time; a store only keeps them.

mod children;
#[cfg(test)]
pub(crate) mod conformance;
mod contract;
mod external;
mod ops;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
mod record;
mod redb;
mod remote;
mod schedule;

use crate::codec::CodecError;
use crate::history::RunId;

#[cfg(feature = "postgres")]
pub(crate) use self::postgres::PgStore;
#[cfg(feature = "postgres")]
pub use self::postgres::{DEFAULT_SCHEMA, DEFAULT_SHARD_LEASE};
#[cfg(feature = "postgres")]
pub(crate) use self::postgres::{MAX_LEASE, MIN_LEASE};
#[cfg(feature = "postgres")]
pub(crate) use self::redb::STORE_FORMAT_VERSION;
pub(crate) use self::redb::{Backend, ReadOnlyStore, RedbStore};
#[cfg(feature = "fault-injection")]
pub use self::redb::{CutImage, CutMode, FaultInjector, PowerCut};
pub(crate) use children::{
    ChildActionKind, ChildCloseOp, ChildStartOp, CloseParentOp, StartChildrenOp, TellParentOp,
    child_action,
};
pub(crate) use contract::Store;
pub(crate) use external::{
    ExternalAction, ExternalOp, ExternalOutcome, ExternalRequest, cancel_request,
    check_target_record, delivery,
};
pub(crate) use ops::{ContinueAsNewOp, EncodedRecord, ReuseRule, WriteOp, WriteOutcome};
pub(crate) use query::{Query, QueryPage, Suffix};
pub(crate) use record::{RunRecord, WAKE_NEVER, WAKE_NOW};
pub(crate) use remote::{
    InboxBody, InboxMessage, RemoteReply, RemoteRequest, RemoteResetTo, StoreEvent,
};
pub(crate) use schedule::{EncodedSchedule, ScheduleOp, ScheduledStart};

/// A failure inside the store. Cloned to every caller of a failed group commit.
///
/// Storage failures are classified where redb reports them ([`redb_err`],
/// [`io_err`], [`file::contain`]), never by their text: a full disk, another
/// I/O error, or a damaged file, each with its own advice at the front door.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The disk holding the file has no space left (`ENOSPC`, or a quota:
    /// `EDQUOT`). The write was not acknowledged (a commit failing at its
    /// very end may still be durable); the same write succeeds once space
    /// is freed.
    #[error("the disk holding the file is full: {0}")]
    Full(String),
    /// Reading or writing the file failed with another I/O error.
    #[error("I/O error on the file: {0}")]
    Io(String),
    /// The file is damaged: redb found it inconsistent, or panicked on it.
    #[error("{0}")]
    Damaged(String),
    /// redb refused a call because an earlier one failed on this handle
    /// ("previous I/O error"). The store answers the failure that broke the
    /// handle instead (see [`DbCell::failure`]); this is only a fallback.
    #[error("the file failed earlier and is being opened again")]
    Broken,
    #[error("a stored record of workflow {workflow_id:?} is corrupt: {message}")]
    Corrupt {
        workflow_id: String,
        message: String,
    },
    #[error("a record could not be encoded: {0}")]
    Encode(String),
    /// A conditional write found the run elsewhere than it expected; nothing
    /// was written.
    #[error("run {run_id} changed in the file meanwhile: {message}")]
    Conflict { run_id: RunId, message: String },
    /// A schedule's conditional write found its record elsewhere than it
    /// expected (changed or removed meanwhile, or an ID already taken);
    /// nothing was written.
    #[error("schedule {schedule_id:?} changed in the file meanwhile: {message}")]
    ScheduleConflict {
        schedule_id: String,
        message: String,
    },
    #[error("the engine is shut down")]
    Closed,
    /// The PostgreSQL server refused a statement, or the connection to it
    /// failed; nothing of the failed transaction was acknowledged (a
    /// COMMIT whose answer was lost may still have been applied).
    #[error("PostgreSQL failed: {0}")]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Database(String),
    /// The store was opened read-only; nothing was written.
    #[error("the file was opened read-only")]
    ReadOnly,
    /// This process no longer owns the shard of the run written (another
    /// process took it over after this one's lease ran out, or this one
    /// handed it over): nothing was written, and the run is dropped from
    /// memory here; its new owner resumes it from the database.
    #[error(
        "shard {shard} of the PostgreSQL schema is owned by another process now; \
         nothing was written (retry the call: it reaches the run's new owner)"
    )]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    ShardLost { shard: u32 },
    /// A process of a newer build raised the shared schema's store format
    /// past this build's: nothing was written (see `ClientError::NewerFormat`).
    #[error(
        "the shared PostgreSQL schema's store format is {found}, newer than this build's \
         {supported}; nothing was written (upgrade this process)"
    )]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    NewerFormat { found: u32, supported: u32 },
}

impl StoreError {
    pub(crate) fn corrupt(workflow_id: &str, err: CodecError) -> Self {
        StoreError::Corrupt {
            workflow_id: workflow_id.to_string(),
            message: err.to_string(),
        }
    }

    fn missing_run(workflow_id: &str, run_id: RunId) -> Self {
        StoreError::Corrupt {
            workflow_id: workflow_id.to_string(),
            message: format!("run {run_id} is named by the workflow but has no record"),
        }
    }

    pub(crate) fn encode(err: CodecError) -> Self {
        StoreError::Encode(err.to_string())
    }

    /// A failure of the file or the disk under it (not of one record, nor a
    /// refusal): the handle may need opening again, and the same call may
    /// succeed later.
    /// A refusal of one operation, decided before it writes anything (a
    /// conditional write that did not hold, a stored record that does not
    /// decode): the other operations of its batch go on.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. }
                | StoreError::ScheduleConflict { .. }
                | StoreError::Corrupt { .. }
        )
    }

    pub(crate) fn is_storage(&self) -> bool {
        matches!(
            self,
            StoreError::Full(_)
                | StoreError::Io(_)
                | StoreError::Damaged(_)
                | StoreError::Broken
                | StoreError::Database(_)
        )
    }
}
