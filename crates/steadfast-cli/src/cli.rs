//! [`Cli`]: the command-line tool as an application embeds it in its own
//! binary, with its workflow code registered, so that the commands that
//! need that code work: `workflow replay` (a saved history against today's
//! code) and `workflow query --db` (answered offline by replaying the run).

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};
use steadfast::{Replayer, Worker, WorkflowContext, WorkflowDef, WorkflowError};

/// Builds one of the application's workers again: each use (an engine, a
/// replayer) takes its own.
type WorkerFn = Arc<dyn Fn() -> Worker + Send + Sync>;

/// The application's workflow code as the tool uses it: only ever replayed
/// (to answer a query, or to check a history), never run forward, so no
/// activity is needed and nothing is written.
#[derive(Clone, Default)]
pub(crate) struct Code {
    /// Workflows registered on the `"default"` task queue, each added to a
    /// worker of that queue.
    defaults: Vec<Arc<dyn Fn(Worker) -> Worker + Send + Sync>>,
    /// Whole workers, for other task queues.
    workers: Vec<WorkerFn>,
}

impl Code {
    /// True when nothing is registered (the plain `steadfast` binary).
    pub(crate) fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.workers.is_empty()
    }

    /// The workers, built afresh.
    pub(crate) fn workers(&self) -> Vec<Worker> {
        let mut workers = Vec::with_capacity(self.workers.len() + 1);
        if !self.defaults.is_empty() {
            let default = self
                .defaults
                .iter()
                .fold(Worker::new("default"), |worker, add| add(worker));
            workers.push(default);
        }
        workers.extend(self.workers.iter().map(|build| build()));
        workers
    }

    /// A replayer of every registered workflow.
    pub(crate) fn replayer(&self) -> Replayer {
        self.workers()
            .into_iter()
            .fold(Replayer::new(), |replayer, worker| replayer.worker(worker))
    }

    /// `builder` with every worker.
    pub(crate) fn register(&self, builder: steadfast::EngineBuilder) -> steadfast::EngineBuilder {
        self.workers()
            .into_iter()
            .fold(builder, |builder, worker| builder.worker(worker))
    }
}

/// The `steadfast` command-line tool with an application's workflows
/// registered, to run from the application's own binary (for instance as
/// a `tool` subcommand, or a second `[[bin]]`):
///
/// ```no_run
/// use steadfast::{WorkflowContext, WorkflowDef, WorkflowError};
///
/// const ORDER: WorkflowDef<String, String> = WorkflowDef::new("Order");
/// async fn order(ctx: WorkflowContext, item: String) -> Result<String, WorkflowError> {
///     # let _ = ctx;
///     Ok(item)
/// }
///
/// fn main() -> std::process::ExitCode {
///     steadfast_cli::Cli::new().register_workflow(ORDER, order).run()
/// }
/// ```
///
/// Every command of `steadfast` works the same; with the code at hand,
/// these also work:
/// - `workflow replay --db FILE -w ID` (or `--address`, or
///   `--history-file run.json`): replays the run's history against the
///   registered code, prints `Replay ok` or the nondeterminism diff (exit 1);
/// - `workflow query --db FILE -w ID --name NAME`: opens the file
///   read-only, replays the run and runs the query handler; nothing is
///   written.
///
/// The code is only replayed, never run forward: the commands that write
/// to a `--db` file (`signal`, `update`, `cancel`, ...) open it without
/// it, as the plain tool does, so no workflow or activity of the file runs
/// in the tool (an update on a file needs the application: use
/// `--address`).
#[derive(Clone, Default)]
pub struct Cli {
    code: Code,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("workflows", &self.code.defaults.len())
            .field("workers", &self.code.workers.len())
            .finish()
    }
}

impl Cli {
    /// The tool with nothing registered: the `steadfast` binary.
    pub fn new() -> Self {
        Cli::default()
    }

    /// Registers a workflow on the `"default"` task queue, as
    /// [`EngineBuilder::workflow`](steadfast::EngineBuilder::workflow)
    /// does (`Clone`: the tool registers it on each engine and replayer it
    /// makes; a `fn` item is).
    pub fn register_workflow<I, O, F, Fut>(mut self, def: WorkflowDef<I, O>, f: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<O, WorkflowError>> + Send + 'static,
    {
        self.code.defaults.push(Arc::new(move |worker: Worker| {
            worker.workflow(def, f.clone())
        }));
        self
    }

    /// Registers the workflows of a worker of any task queue: `build`
    /// makes it (the application's own function that registers its
    /// workflows, so the tool replays exactly the app's code). Its
    /// activities are never run.
    pub fn register_worker(mut self, build: impl Fn() -> Worker + Send + Sync + 'static) -> Self {
        self.code.workers.push(Arc::new(build));
        self
    }

    /// Runs the command of this process's arguments; see
    /// [`run_from`](Self::run_from).
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// Runs one command from `args` (the program name first): prints its
    /// answer on stdout, or the error on stderr, and returns the exit code
    /// (the crate's documentation lists them).
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        crate::run_args(&self.code, args)
    }
}
