//! The public errors, one enum per boundary, and the superset [`Error`].

use std::path::PathBuf;

use crate::history::{Failure, PayloadError, RunId, WorkflowStatus};
use crate::store::StoreError;

/// Opening the engine's file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process (or another engine in this process) has the file open.
    #[error("{path} is already in use by another engine; stop it or open a different file")]
    AlreadyInUse {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer steadfast.
    #[error(
        "the file uses store format {found}, this build supports up to {supported}; \
         upgrade steadfast to open it"
    )]
    NewerFormat {
        /// The format found in the file.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// The file could not be read as a steadfast database.
    #[error("{path} cannot be opened as a steadfast database: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The disk holding the file is full (or its quota used up), so the file
    /// could not be opened or created; nothing was changed.
    #[error(
        "{path} could not be opened: the disk holding it is full ({message}); \
         free space on that disk, then open it again"
    )]
    DiskFull {
        /// The file.
        path: PathBuf,
        /// The error the system gave.
        message: String,
    },
    /// The file does not exist and cannot be created: the directory it
    /// would go in does not exist.
    #[error(
        "{path} cannot be created: the directory {directory} does not exist; \
         create it first, or pick a path in an existing directory"
    )]
    NoSuchDirectory {
        /// The file asked for.
        path: PathBuf,
        /// The missing directory.
        directory: PathBuf,
    },
    /// The file does not exist and cannot be created: a part of its path
    /// that should be a directory is a file.
    #[error(
        "{path} cannot be created: {not_a_directory} is a file, not a directory; \
         pick a path inside a directory"
    )]
    NotADirectory {
        /// The file asked for.
        path: PathBuf,
        /// The part of the path that is not a directory.
        not_a_directory: PathBuf,
    },
    /// This process may not write where the file is or would be (no write
    /// permission, or a read-only file system).
    #[error(
        "{path} cannot be opened for writing: no write permission on {place} ({message}); \
         give this process write access to it, or pick another path"
    )]
    NotWritable {
        /// The file asked for.
        path: PathBuf,
        /// What may not be written: the file, or the directory it would be created in.
        place: PathBuf,
        /// The error the system gave.
        message: String,
    },
    /// [`EngineBuilder::open`](crate::EngineBuilder::open) was called outside
    /// a tokio runtime; the engine's tasks need one.
    #[error(
        "the engine must be opened inside a tokio runtime (its tasks run on it); \
         call open from async code under #[tokio::main], or enter a runtime first"
    )]
    NoRuntime,
    /// A read-only open ([`EngineBuilder::read_only`](crate::EngineBuilder::read_only))
    /// found no file: it never creates one.
    #[error("{path} does not exist; a read-only open never creates a file (check the path)")]
    NotFound {
        /// The file asked for.
        path: PathBuf,
    },
    /// A read-only open found a file that was not closed cleanly (its
    /// process crashed or was killed): redb must repair it, which writes.
    /// Nothing acknowledged is lost; the repair only rebuilds redb's
    /// allocation state.
    #[error(
        "{path} was not closed cleanly (its application crashed or was killed) and needs a \
         recovery, which writes to it; open it with the application, or run \
         `steadfast repair --db {path}`, then read it again"
    )]
    NeedsRecovery {
        /// The file.
        path: PathBuf,
    },
    /// A read-only open found a file of an older format that must be
    /// migrated in place before this build reads it.
    #[error(
        "{path} uses store format {found}, which this build migrates in place when it opens \
         the file for writing; open it once with the application (or `steadfast repair --db \
         {path}`), then read it again"
    )]
    NeedsMigration {
        /// The file.
        path: PathBuf,
        /// The format found.
        found: u32,
    },
    /// The PostgreSQL schema was written by a newer steadfast: its table
    /// layout or its store format (the events it may hold) is newer than
    /// this build's.
    #[error(
        "the PostgreSQL schema {schema} has layout {} and store format {}, this build supports \
         up to layout {} and format {}; upgrade steadfast to open it",
        found.0, found.1, supported.0, supported.1
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// Its layout version and store format.
        found: (u32, u32),
        /// The newest layout and format this build reads.
        supported: (u32, u32),
    },
    /// An engine of an older steadfast (schema layout 1, one engine per
    /// schema) writes the PostgreSQL schema, which this build would have to
    /// migrate to share it between processes.
    #[error(
        "the PostgreSQL schema {schema} is written by an engine of an older steadfast (one \
         engine per schema); stop it, then open the schema with this build, which migrates it"
    )]
    DatabaseInUse {
        /// The schema.
        schema: String,
    },
    /// The PostgreSQL schema holds more than one open run of some workflow
    /// IDs (made by a bug of an earlier build), so it cannot be given the
    /// index that keeps one open run per ID (schema layout 3). Nothing was
    /// changed.
    #[error(
        "the PostgreSQL schema {schema} has more than one open run of {count} workflow ID(s), \
         among them {workflow_ids:?}; it cannot take the index that keeps one open run per ID. \
         With the build that wrote the schema, terminate every open run of these IDs but the \
         one their workflows.latest_run names (list them with SELECT workflow_id, run_id FROM \
         {schema}.runs WHERE status = 0 AND workflow_id = ANY(...)), then open it again"
    )]
    DuplicateOpenRuns {
        /// The schema.
        schema: String,
        /// Some of the workflow IDs with more than one open run (at most 20).
        workflow_ids: Vec<String>,
        /// How many workflow IDs have more than one open run.
        count: u64,
    },
    /// PostgreSQL could not be reached, or refused to set up steadfast's
    /// schema.
    #[error("PostgreSQL: {message}")]
    Database {
        /// What failed, with what to check.
        message: String,
    },
    /// A registration or builder setting is invalid.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(String),
    /// The engine could not start one of its threads (the group-commit
    /// writer, the timer thread); the file is fine.
    #[error(
        "the engine could not start its {thread} thread: {source}; \
         the process may be out of threads or memory"
    )]
    Thread {
        /// Which thread.
        thread: &'static str,
        /// Why the system refused it.
        source: std::io::Error,
    },
}

/// A call on a running engine (start, history, describe) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The workflow ID already has a running run.
    #[error(
        "workflow {workflow_id:?} is already running as run {run_id}; wait for it, \
         or pick another workflow ID"
    )]
    AlreadyStarted {
        /// The workflow ID.
        workflow_id: String,
        /// The running run.
        run_id: RunId,
    },
    /// The ID reuse policy refused to start a closed workflow ID again.
    #[error(
        "workflow {workflow_id:?} has a closed run ({last_status:?}) and its ID reuse \
         policy refuses a new one; use another workflow ID or policy"
    )]
    IdReuseRejected {
        /// The workflow ID.
        workflow_id: String,
        /// How the last run ended.
        last_status: WorkflowStatus,
    },
    /// No worker of the engine registered this workflow type on the task queue.
    #[error(
        "workflow type {workflow_type:?} is not registered on task queue {task_queue:?}; \
         register it on the engine builder"
    )]
    UnknownWorkflowType {
        /// The type asked for.
        workflow_type: String,
        /// The task queue asked for.
        task_queue: String,
    },
    /// The definition a start was given has other input or output types
    /// than the one the workflow type is registered with on its task queue:
    /// its input would never decode, so the run would park at once.
    #[error(
        "workflow type {workflow_type:?} is registered on task queue {task_queue:?} as \
         {registered}, but was started as {given}; start it with the definition it is \
         registered with"
    )]
    DefinitionMismatch {
        /// The workflow type.
        workflow_type: String,
        /// The task queue.
        task_queue: String,
        /// The registered definition's types, e.g. `WorkflowDef<String, u32>`.
        registered: String,
        /// The types of the definition given to the start.
        given: String,
    },
    /// No workflow has this ID.
    #[error("no workflow has ID {workflow_id:?}")]
    NotFound {
        /// The workflow ID.
        workflow_id: String,
    },
    /// The workflow's latest run has closed, so it takes no signals,
    /// cancellation or termination.
    #[error("workflow {workflow_id:?} is closed ({status:?}); start it again to send it more")]
    WorkflowClosed {
        /// The workflow ID.
        workflow_id: String,
        /// How it ended.
        status: WorkflowStatus,
    },
    /// The workflow has no handler for this query.
    #[error(
        "workflow {workflow_id:?} has no handler for query {query:?}; register one with \
         ctx.handle_query before the workflow first waits"
    )]
    UnknownQuery {
        /// The workflow ID.
        workflow_id: String,
        /// The query asked for.
        query: String,
    },
    /// No worker of this engine serves the run's task queue, so none of
    /// its code is here to answer (a query, for example).
    #[error(
        "no worker of this engine serves task queue {task_queue:?} of workflow \
         {workflow_id:?}, so its code cannot answer; open the engine with a worker for \
         that queue (EngineBuilder::worker)"
    )]
    NoWorker {
        /// The workflow ID.
        workflow_id: String,
        /// The run's task queue.
        task_queue: String,
    },
    /// The workflow's handler for this query panicked; the run goes on.
    #[error(
        "the handler of query {query:?} of workflow {workflow_id:?} panicked: {message}; \
         fix the handler (a query handler must not panic)"
    )]
    QueryFailed {
        /// The workflow ID.
        workflow_id: String,
        /// The query asked for.
        query: String,
        /// The panic's message.
        message: String,
    },
    /// The run is parked and cannot take this call now.
    #[error(
        "workflow {workflow_id:?} is parked ({reason}); fix the cause and open the engine again"
    )]
    Parked {
        /// The workflow ID.
        workflow_id: String,
        /// Why it is parked.
        reason: String,
    },
    /// `delete` of a workflow whose latest run is still running.
    #[error(
        "workflow {workflow_id:?} is still running (run {run_id}); terminate or cancel it \
         first, then delete it"
    )]
    StillRunning {
        /// The workflow ID.
        workflow_id: String,
        /// The running run.
        run_id: RunId,
    },
    /// A reset named an event that is not a workflow task boundary of the
    /// run (see [`ResetTo`](crate::ResetTo)).
    #[error(
        "event {event_id} of workflow {workflow_id:?} is not a workflow task boundary, so \
         the run cannot be reset to it; reset to one of the boundaries {boundaries:?} \
         (or to the first or last workflow task)"
    )]
    NotAResetPoint {
        /// The workflow ID.
        workflow_id: String,
        /// The event asked for.
        event_id: u64,
        /// The run's boundaries, in order.
        boundaries: Vec<u64>,
    },
    /// A reset was refused for a reason of the run's state (open child
    /// workflows, a run that moved on meanwhile); nothing was changed.
    #[error("workflow {workflow_id:?} cannot be reset: {message}")]
    ResetRefused {
        /// The workflow ID.
        workflow_id: String,
        /// Why, and what to do.
        message: String,
    },
    /// An argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A payload is larger than the engine's limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes; send a reference instead")]
    PayloadTooLarge {
        /// Which payload.
        what: String,
        /// Its encoded size.
        size: usize,
        /// The engine's limit.
        limit: usize,
    },
    /// A payload could not be encoded or decoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// One workflow's stored records are corrupt; the rest of the engine
    /// keeps working.
    #[error("workflow {workflow_id:?} has corrupt records: {message}")]
    Corrupt {
        /// The workflow ID.
        workflow_id: String,
        /// What is wrong.
        message: String,
    },
    /// The disk holding the engine's file is full (or its quota used up), so
    /// the call was not acknowledged. Almost always it was not recorded
    /// either, but a commit that failed at its very end may still have
    /// reached the disk (redb does not promise otherwise): before retrying
    /// a call that must not happen twice (a signal), check `history`. Runs
    /// that could not store their progress wait, nothing acknowledged is
    /// lost, and once space is freed the engine goes on by itself: there is
    /// no need to open it again.
    #[error(
        "the disk holding the engine's file is full ({message}), so the call was not \
         acknowledged; free space on that disk, then retry the call, after checking \
         history if it must not happen twice (the engine resumes by itself, without \
         being opened again)"
    )]
    DiskFull {
        /// The error the system gave.
        message: String,
    },
    /// Reading or writing the file failed with an I/O error (or the store
    /// refused the write for a passing reason), so the call may not have been
    /// recorded. Kept under this name, the one earlier versions gave every
    /// storage failure; a full disk is [`DiskFull`](Self::DiskFull) and a
    /// damaged file [`Damaged`](Self::Damaged).
    #[error(
        "storage failed, so the call may not have been recorded: {0}; check the disk, \
         then check (describe, history) and retry"
    )]
    Storage(String),
    /// The engine's file is damaged (redb found it inconsistent, or could not
    /// read a page), beyond one workflow's records.
    #[error(
        "the engine's file is damaged ({message}); stop the engine and restore the file \
         from a backup"
    )]
    Damaged {
        /// What is wrong.
        message: String,
    },
    /// The engine was shut down.
    #[error("the engine is shut down; open it again to continue")]
    ShutDown,
    /// The engine was opened read-only
    /// ([`EngineBuilder::read_only`](crate::EngineBuilder::read_only)), and the
    /// call would change the file.
    #[error(
        "the engine was opened read-only, so {call} cannot change the file; open it without \
         EngineBuilder::read_only (or reach the application that holds it) to do so"
    )]
    ReadOnly {
        /// The call refused.
        call: &'static str,
    },
    /// A process of a newer steadfast raised the store format of the
    /// PostgreSQL schema this engine shares: its histories may hold events
    /// this build cannot read, so this process took back its shards (the
    /// newer processes advance their runs) and writes nothing more.
    #[error(
        "a process of a newer steadfast raised the shared PostgreSQL schema's store format to \
         {found} (this build writes {supported}); this process gave up its shards and writes \
         nothing: upgrade it and restart it"
    )]
    NewerFormat {
        /// The schema's store format now.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
}

impl From<StoreError> for ClientError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Closed => ClientError::ShutDown,
            StoreError::Corrupt {
                workflow_id,
                message,
            } => ClientError::Corrupt {
                workflow_id,
                message,
            },
            StoreError::Full(message) => ClientError::DiskFull { message },
            StoreError::Damaged(message) => ClientError::Damaged { message },
            StoreError::Io(m) | StoreError::Encode(m) | StoreError::Database(m) => {
                ClientError::Storage(m)
            }
            StoreError::ReadOnly => ClientError::ReadOnly { call: "this call" },
            StoreError::NewerFormat { found, supported } => {
                ClientError::NewerFormat { found, supported }
            }
            other @ (StoreError::Conflict { .. }
            | StoreError::ScheduleConflict { .. }
            | StoreError::Broken
            | StoreError::ShardLost { .. }) => ClientError::Storage(other.to_string()),
        }
    }
}

/// Waiting for a workflow's result ended without a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// The workflow returned an error.
    #[error("workflow {workflow_id:?} (run {run_id}) failed: {failure}")]
    Failed {
        /// The workflow ID.
        workflow_id: String,
        /// The run.
        run_id: RunId,
        /// The workflow's error.
        failure: Failure,
    },
    /// The workflow ended after a cancellation request.
    #[error("workflow {workflow_id:?} (run {run_id}) was cancelled: {failure}")]
    Cancelled {
        /// The workflow ID.
        workflow_id: String,
        /// The run.
        run_id: RunId,
        /// The error the workflow returned after the request.
        failure: Failure,
    },
    /// The run was terminated.
    #[error("workflow {workflow_id:?} (run {run_id}) was terminated: {reason}")]
    Terminated {
        /// The workflow ID.
        workflow_id: String,
        /// The run.
        run_id: RunId,
        /// The reason given.
        reason: String,
    },
    /// The run's run or execution timeout ran out.
    #[error("workflow {workflow_id:?} (run {run_id}) timed out ({timeout})")]
    TimedOut {
        /// The workflow ID.
        workflow_id: String,
        /// The run.
        run_id: RunId,
        /// `"WorkflowRunTimeout"` or `"WorkflowExecutionTimeout"`.
        timeout: String,
    },
    /// The result does not decode as the definition's output type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Reading the result failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// An update ([`Engine::update`](crate::Engine::update)) ended without a
/// result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The workflow's validator rejected the update. Nothing was written:
    /// the update is not in history, and sending it again (the same ID or
    /// another) validates it again.
    #[error("update {update_name:?} of workflow {workflow_id:?} was rejected: {message}")]
    Rejected {
        /// The workflow ID.
        workflow_id: String,
        /// The update's name.
        update_name: String,
        /// The validator's message.
        message: String,
    },
    /// The workflow registers no handler for this update (nothing was
    /// written).
    #[error(
        "workflow {workflow_id:?} has no handler for update {update_name:?}; register one          with ctx.handle_update before the workflow first waits"
    )]
    UnknownUpdate {
        /// The workflow ID.
        workflow_id: String,
        /// The update's name.
        update_name: String,
    },
    /// The update's input does not decode as the input type of the
    /// workflow's handler (nothing was written).
    #[error(
        "the input of update {update_name:?} does not decode as what the handler of workflow          {workflow_id:?} takes ({message}); send it with the UpdateDef the workflow registers"
    )]
    InvalidInput {
        /// The workflow ID.
        workflow_id: String,
        /// The update's name.
        update_name: String,
        /// Why it does not decode.
        message: String,
    },
    /// The update's handler returned an error: the update failed, the run
    /// goes on. Recorded, so the same update ID answers this again.
    #[error("update {update_id:?} of workflow {workflow_id:?} failed: {failure}")]
    Failed {
        /// The workflow ID.
        workflow_id: String,
        /// The update ID.
        update_id: String,
        /// The handler's error (boxed: it keeps [`Error`] small).
        failure: Box<Failure>,
    },
    /// The update was accepted, but its run closed (returned, failed,
    /// continued as new, was terminated...) before its handler returned:
    /// the handler may have done part of its work. As in Temporal, it is
    /// not sent to the next run of a continue-as-new.
    #[error(
        "update {update_id:?} of workflow {workflow_id:?} was accepted, but its run closed          ({status:?}) before the handler returned; check the history before sending it again"
    )]
    Aborted {
        /// The workflow ID.
        workflow_id: String,
        /// The update ID.
        update_id: String,
        /// How the run closed.
        status: WorkflowStatus,
    },
    /// The run is paused ([`Engine::pause_workflow`](crate::Engine::pause_workflow)):
    /// as in Temporal, a paused run takes no new update. Nothing was
    /// written; send it again once the run is unpaused. (An update ID the
    /// run accepted before the pause still answers its outcome.)
    #[error(
        "update {update_name:?} of workflow {workflow_id:?} was rejected: the run is paused \
         ({reason}); unpause it (unpause_workflow) and send the update again"
    )]
    Paused {
        /// The workflow ID.
        workflow_id: String,
        /// The update's name.
        update_name: String,
        /// The pause's reason.
        reason: String,
    },
    /// The run has as many updates in flight (accepted, their handler not
    /// returned) as it takes at once (Temporal's `maxInFlightUpdates`,
    /// see [`EngineBuilder::update_limits`](crate::EngineBuilder::update_limits)).
    /// Nothing was written: send it again once one completes.
    #[error(
        "workflow {workflow_id:?} has {limit} updates in flight, the most a run takes at once; send update {update_id:?} again once one of them completes"
    )]
    TooManyInFlight {
        /// The workflow ID.
        workflow_id: String,
        /// The update ID refused.
        update_id: String,
        /// The limit.
        limit: u32,
    },
    /// The run has taken as many updates as one run takes in all
    /// (Temporal's `maxTotalUpdates`, see
    /// [`EngineBuilder::update_limits`](crate::EngineBuilder::update_limits)).
    /// Nothing was written: the workflow should continue as new, and its
    /// next run takes updates again.
    #[error(
        "the current run of workflow {workflow_id:?} has taken {limit} updates, the most one run takes; refused update {update_id:?} (the workflow should continue as new, its next run takes more)"
    )]
    TooManyUpdates {
        /// The workflow ID.
        workflow_id: String,
        /// The update ID refused.
        update_id: String,
        /// The limit.
        limit: u32,
    },
    /// The result does not decode as the definition's output type.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The call failed as other client calls do: [`ClientError::NotFound`],
    /// [`ClientError::WorkflowClosed`] (an update ID the closed run does not
    /// know), [`ClientError::Parked`], storage errors, shutdown.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Any steadfast error, for callers that use one `?` for all of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`OpenError`].
    #[error(transparent)]
    Open(#[from] OpenError),
    /// See [`ClientError`].
    #[error(transparent)]
    Client(#[from] ClientError),
    /// See [`ResultError`].
    #[error(transparent)]
    Result(#[from] ResultError),
    /// See [`UpdateError`].
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// See [`HistoryJsonError`](crate::HistoryJsonError): saving or reading
    /// a history file.
    #[error(transparent)]
    History(#[from] crate::history::HistoryJsonError),
    /// See [`ScheduleError`](crate::ScheduleError).
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
}
