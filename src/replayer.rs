//! `Replayer`: replays saved histories against today's workflow code, to
//! catch a change that is not replay-safe before it reaches a running
//! workflow (Temporal's `WorkflowReplayer`).
//!
//! It drives the engine's own replay machine (`workflow::replay`) over each
//! history, so what passes here replays the same way when an engine opens
//! the file. Nothing else runs: no activity, no timer, no store, no file
//! written; the recorded results are what the code sees.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::history::{
    Event, EventKind, Failure, HistoryJsonError, MutableState, Payload, RunId, WorkflowHistory,
};
use crate::worker::Worker;
use crate::workflow::{
    self, NondeterminismError, ParkReason, WorkflowContext, WorkflowDef, WorkflowError, WorkflowFn,
    WorkflowMachine,
};

/// Replays saved histories against the workflow code registered with it,
/// and reports per history whether the code still agrees with it.
///
/// The idiom: keep histories of production runs (exported with
/// [`Engine::workflow_history`](crate::Engine::workflow_history) and
/// [`WorkflowHistory::to_file`]) in a folder of the repository, and replay
/// them all in a test, so `cargo test` fails on a change that would park
/// those runs with a [`NondeterminismError`].
///
/// The folder idiom, with the histories this repository keeps (saved from
/// version 1 of `Order`, which had no `notify` step; the change is guarded
/// by `patched`, so they replay):
///
/// ```
/// use std::time::Duration;
/// use steadfast::{
///     ActivityDef, ActivityOptions, Replayer, SignalDef, WorkflowContext, WorkflowDef,
///     WorkflowError,
/// };
///
/// const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
/// const RESERVE: ActivityDef<String, String> = ActivityDef::new("reserve");
/// const NOTIFY: ActivityDef<String, ()> = ActivityDef::new("notify");
/// const CHARGE: ActivityDef<String, String> = ActivityDef::new("charge");
/// const APPROVE: SignalDef<()> = SignalDef::new("approve");
///
/// async fn order(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
///     let options = ActivityOptions::start_to_close(Duration::from_secs(5));
///     let reserved = ctx.execute_activity(RESERVE, item, options.clone()).await?;
///     if ctx.patched("notify-customer") {
///         ctx.execute_activity(NOTIFY, reserved.clone(), options.clone()).await?;
///     }
///     ctx.recv_signal(APPROVE).await?;
///     let charged = ctx.execute_activity(CHARGE, reserved, options).await?;
///     Ok(format!("shipped {charged}"))
/// }
///
/// # fn main() -> Result<(), steadfast::HistoryJsonError> {
/// let replayer = Replayer::new().workflow(ORDER, order);
/// let reports = replayer.replay_dir("tests/fixtures/histories")?;
/// assert_eq!(reports.len(), 2, "a folder that lost its histories proves nothing");
/// for report in &reports {
///     assert!(report.result.is_ok(), "{report}");
/// }
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Replayer {
    workflows: HashMap<String, WorkflowFn>,
}

impl fmt::Debug for Replayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.workflows.keys().collect();
        names.sort();
        f.debug_struct("Replayer")
            .field("workflows", &names)
            .finish()
    }
}

/// Why a history does not replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The code issues a different command than the history holds at an
    /// event (or waits where the history goes on): the diff is in the
    /// error's `event_id`, `history` (expected) and `code` (found). A run
    /// with this history would be parked; guard the change with
    /// `ctx.patched(..)`.
    #[error(transparent)]
    Nondeterminism(#[from] NondeterminismError),
    /// The code reaches the recorded end but ends the run differently: it
    /// returns another result or failure than the one recorded, or fails
    /// where the run completed (and so on); both endings are shown with
    /// their values.
    #[error(
        "workflow {workflow_id:?} (run {run_id}) ends differently than recorded at event \
         {event_id}: history has {history}, code returned {code}; the change is not replay-safe \
         for runs still open (guard it with ctx.patched)"
    )]
    DifferentEnding {
        /// The workflow.
        workflow_id: String,
        /// The run.
        run_id: RunId,
        /// The close event of the history.
        event_id: u64,
        /// The recorded close, with its result or failure.
        history: String,
        /// How the code ended the run.
        code: String,
    },
    /// No code is registered for the history's workflow type.
    #[error(
        "workflow type {workflow_type:?} is not registered with the replayer; register it \
         with Replayer::workflow (or Replayer::worker)"
    )]
    NotRegistered {
        /// The history's workflow type.
        workflow_type: String,
    },
    /// The workflow code panicked while replaying.
    #[error("workflow code panicked while replaying: {0}")]
    Panic(String),
    /// The code cannot start from the history (its input does not decode
    /// as the workflow's input type).
    #[error("{0}")]
    Unrunnable(String),
    /// The history itself is not one a run could have (see
    /// [`WorkflowHistory::check`]).
    #[error(transparent)]
    InvalidHistory(#[from] HistoryJsonError),
}

/// Why [`Replayer::check_dir`] failed: every problem of the folder at once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCheckError {
    /// The folder cannot be listed, or a file in it is not a history.
    #[error(transparent)]
    Unreadable(#[from] HistoryJsonError),
    /// The folder holds no `*.json` file: a check of nothing would pass.
    #[error(
        "folder {0} holds no history (*.json); save some with Engine::workflow_history \
         and WorkflowHistory::to_file, or fix the path"
    )]
    Empty(String),
    /// Some histories do not replay; each report names its file and why.
    #[error("{} of {total} saved histories do not replay:\n{}", failures.len(), list(failures))]
    Failed {
        /// How many histories were replayed.
        total: usize,
        /// The reports of those that do not replay.
        failures: Vec<ReplayReport>,
    },
}

fn list(reports: &[ReplayReport]) -> String {
    let lines: Vec<String> = reports.iter().map(|r| format!("- {r}")).collect();
    lines.join("\n")
}

/// The outcome of replaying one history.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReplayReport {
    /// The file the history was read from, if it came from one.
    pub path: Option<PathBuf>,
    /// The workflow ID.
    pub workflow_id: String,
    /// The run.
    pub run_id: RunId,
    /// The workflow type.
    pub workflow_type: String,
    /// `Ok` when the code agrees with the whole history.
    pub result: Result<(), ReplayError>,
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        write!(
            f,
            "workflow {:?} of type {:?} (run {}): ",
            self.workflow_id, self.workflow_type, self.run_id
        )?;
        match &self.result {
            Ok(()) => write!(f, "replays"),
            Err(e) => write!(f, "{e}"),
        }
    }
}

impl Replayer {
    /// A replayer with no workflow registered.
    pub fn new() -> Self {
        Replayer::default()
    }

    /// Registers workflow code for a type, as
    /// [`EngineBuilder::workflow`](crate::EngineBuilder::workflow) does.
    pub fn workflow<I, O, F, Fut>(mut self, def: WorkflowDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        self.workflows
            .insert(def.name().to_string(), workflow::erase(f));
        self
    }

    /// Registers every workflow of a worker (its activities are not
    /// needed: replay uses the recorded results), so the registration the
    /// engine gets can be the one tested. Histories are matched by workflow
    /// type, whatever their task queue.
    pub fn worker(mut self, worker: Worker) -> Self {
        self.workflows.extend(worker.workflows);
        self
    }

    /// Replays one history.
    ///
    /// # Errors
    /// A [`ReplayError`] saying how the code and the history disagree.
    pub fn replay(&self, history: &WorkflowHistory) -> Result<(), ReplayError> {
        history.check()?;
        let workflow = self.workflows.get(&history.workflow_type).ok_or_else(|| {
            ReplayError::NotRegistered {
                workflow_type: history.workflow_type.clone(),
            }
        })?;
        let machine = WorkflowMachine::replay(workflow, history.run_id, &history.events);
        let closing = closing_event(&history.events).filter(|e| e.kind.is_command());
        let different_ending = |recorded: &Event, code: &EventKind| ReplayError::DifferentEnding {
            workflow_id: history.workflow_id.clone(),
            run_id: history.run_id,
            event_id: recorded.event_id,
            history: describe_ending(&recorded.kind),
            code: describe_ending(code),
        };
        if let Some(reason) = machine.parked() {
            return Err(match reason.clone() {
                // The code returned where the history closes, but not the
                // same way (a failure for a result): shown with both values.
                ParkReason::Nondeterminism(nde) => match (closing, machine.finished()) {
                    (Some(recorded), Some(code)) if recorded.event_id == nde.event_id => {
                        different_ending(recorded, code)
                    }
                    _ => ReplayError::Nondeterminism(nde),
                },
                ParkReason::Panic(message) => ReplayError::Panic(message),
                other => ReplayError::Unrunnable(other.to_string()),
            });
        }
        // The machine matched the close command by kind (as Temporal
        // does); a closed history also says what the run returned.
        if let (Some(recorded), Some(code)) = (closing, machine.finished())
            && !same_ending(&recorded.kind, code)
        {
            return Err(different_ending(recorded, code));
        }
        Ok(())
    }

    /// Replays each history, one report per history, in order.
    pub fn replay_all<'a>(
        &self,
        histories: impl IntoIterator<Item = &'a WorkflowHistory>,
    ) -> Vec<ReplayReport> {
        histories
            .into_iter()
            .map(|history| self.report(None, history))
            .collect()
    }

    /// Replays one history file.
    ///
    /// # Errors
    /// A [`HistoryJsonError`] naming the file when it cannot be read as a
    /// history; how the replay went is in the report.
    pub fn replay_file(&self, path: impl AsRef<Path>) -> Result<ReplayReport, HistoryJsonError> {
        let path = path.as_ref();
        let history = WorkflowHistory::from_file(path)?;
        Ok(self.report(Some(path.to_path_buf()), &history))
    }

    /// Replays every `*.json` file of a folder (not its subfolders), in
    /// file name order, one report per file.
    ///
    /// # Errors
    /// A [`HistoryJsonError`] naming the folder or the file when the folder
    /// cannot be listed or a file cannot be read as a history: a saved
    /// history that no longer reads is a failure, not a skip.
    pub fn replay_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<ReplayReport>, HistoryJsonError> {
        let dir = dir.as_ref();
        let io = |source| HistoryJsonError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        paths.iter().map(|path| self.replay_file(path)).collect()
    }

    /// Replays every history of a folder, as [`replay_dir`](Self::replay_dir),
    /// and succeeds only if there is at least one and all replay: the one
    /// line a test needs. Returns how many replayed.
    ///
    /// ```no_run
    /// # use steadfast::{Replayer, WorkflowContext, WorkflowDef, WorkflowError};
    /// # const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
    /// # async fn order(_ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> { Ok(item) }
    /// #[test]
    /// fn saved_histories_still_replay() {
    ///     Replayer::new()
    ///         .workflow(ORDER, order)
    ///         .check_dir("tests/fixtures/histories")
    ///         .unwrap();
    /// }
    /// ```
    ///
    /// # Errors
    /// [`ReplayCheckError`]: an unreadable folder or file, an empty folder,
    /// or the reports of every history that does not replay.
    pub fn check_dir(&self, dir: impl AsRef<Path>) -> Result<usize, ReplayCheckError> {
        let dir = dir.as_ref();
        let reports = self.replay_dir(dir)?;
        if reports.is_empty() {
            return Err(ReplayCheckError::Empty(dir.display().to_string()));
        }
        let total = reports.len();
        let failures: Vec<ReplayReport> =
            reports.into_iter().filter(|r| r.result.is_err()).collect();
        if failures.is_empty() {
            Ok(total)
        } else {
            Err(ReplayCheckError::Failed { total, failures })
        }
    }

    fn report(&self, path: Option<PathBuf>, history: &WorkflowHistory) -> ReplayReport {
        ReplayReport {
            path,
            workflow_id: history.workflow_id.clone(),
            run_id: history.run_id,
            workflow_type: history.workflow_type.clone(),
            result: self.replay(history),
        }
    }
}

/// The event that closed the run, as the one fold of events decides.
fn closing_event(events: &[Event]) -> Option<&Event> {
    let mut state = MutableState::default();
    events.iter().find(|event| {
        state.apply(event);
        state.status.is_closed()
    })
}

/// True when the code's close says what the recorded one says. Results are
/// compared as JSON values: a map's keys may come out in another order.
fn same_ending(recorded: &EventKind, code: &EventKind) -> bool {
    match (recorded, code) {
        (
            EventKind::WorkflowCompleted { result: a },
            EventKind::WorkflowCompleted { result: b },
        ) => same_payload(a, b),
        (EventKind::WorkflowFailed { failure: a }, EventKind::WorkflowFailed { failure: b })
        | (
            EventKind::WorkflowCancelled { failure: a },
            EventKind::WorkflowCancelled { failure: b },
        ) => same_failure(a, b),
        // Another kind of close is a nondeterminism the machine reports.
        _ => true,
    }
}

/// What the code decides of a failure: its type, message, retryability and
/// details (as JSON values). Not the retry state, which the engine gives
/// (and which a history document written before format 6 leaves unset).
fn same_failure(a: &Failure, b: &Failure) -> bool {
    let details = match (&a.details, &b.details) {
        (Some(a), Some(b)) => same_payload(a, b),
        (a, b) => a == b,
    };
    a.error_type == b.error_type
        && a.message == b.message
        && a.non_retryable == b.non_retryable
        && details
}

fn same_payload(a: &Payload, b: &Payload) -> bool {
    let value = |p: &Payload| serde_json::from_str::<serde_json::Value>(&p.as_json()).ok();
    match (value(a), value(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

fn describe_ending(kind: &EventKind) -> String {
    match kind {
        EventKind::WorkflowCompleted { result } => {
            format!("WorkflowCompleted({})", preview(&result.as_json()))
        }
        EventKind::WorkflowFailed { failure } => {
            format!("WorkflowFailed({})", failure_text(failure))
        }
        EventKind::WorkflowCancelled { failure } => {
            format!("WorkflowCancelled({})", failure_text(failure))
        }
        other => other.describe(),
    }
}

fn failure_text(failure: &Failure) -> String {
    preview(&failure.to_string())
}

/// The beginning of a long value: enough to see the difference in a report.
fn preview(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
