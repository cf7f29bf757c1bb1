//! The command line, as clap parses it: named and shaped like the Temporal
//! CLI's `temporal workflow ...` commands.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See and operate the workflows of a steadfast application.
///
/// Talks to a running application's admin endpoint (`--address`), or reads
/// a file no application holds (`--db`).
#[derive(Debug, Parser)]
#[command(name = "steadfast", version, about, long_about = None)]
pub struct CommandLine {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after the subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// The application's admin endpoint: host:port, http://host:port, or
    /// unix:/path/to/socket.
    #[arg(
        long,
        global = true,
        env = "STEADFAST_ADDRESS",
        default_value = "127.0.0.1:8233"
    )]
    pub address: String,
    /// A steadfast file, instead of an endpoint: one no application holds,
    /// or (for the commands that only read) one an application opened
    /// with `shared_reads(true)`. Opened read-only by the commands that
    /// only read (list, describe, show, query, replay), for writing by the
    /// others.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "token")]
    pub db: Option<std::path::PathBuf>,
    /// The endpoint's token, sent as `Authorization: Bearer <token>`.
    #[arg(long, global = true, env = "STEADFAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How to print answers.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and aligned fields for people.
    Text,
    /// The endpoint's JSON, for programs.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Workflows: list, describe, show, signal, query, update, cancel,
    /// terminate, reset, pause, unpause, delete, replay.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Schedules: create, list, describe, pause, unpause, trigger, backfill, delete.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Makes a file left by a killed application readable again: opens it
    /// for writing as the application would (redb repairs it; a format-1
    /// file migrates), runs no workflow code, and closes it.
    /// (`steadfast repair --db FILE`)
    Repair,
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Lists runs: open ones first, then closed, newest first.
    List(ListArgs),
    /// Counts runs by status.
    Count,
    /// Describes a run: status, pending activities and timers, attributes.
    Describe(RunArgs),
    /// Shows a run's event history.
    Show(RunArgs),
    /// Sends a signal.
    Signal(SignalArgs),
    /// Asks a query; the application's code answers it.
    Query(QueryArgs),
    /// Sends an update and waits for its handler's result (Temporal's
    /// `workflow update execute`); a validator's rejection exits 1.
    Update(UpdateArgs),
    /// Requests cancellation of the running run.
    Cancel(IdArgs),
    /// Terminates the running run: no more of its code runs.
    Terminate(TerminateArgs),
    /// Resets the latest run, running or closed, to a workflow task
    /// boundary: a new run re-runs everything after it under the
    /// application's current code (`temporal workflow reset`). A closed run
    /// stays closed; a running one closes as reset.
    Reset(ResetArgs),
    /// Pauses the running run: no activity attempt begins and no timer
    /// fires until it is unpaused (`temporal workflow pause`).
    Pause(PauseArgs),
    /// Unpauses a paused run: what the pause held acts now.
    Unpause(PauseArgs),
    /// Deletes a closed workflow: every run and its history.
    Delete(IdArgs),
    /// Replays a saved history against the application's workflow code:
    /// a run's (from `--db` or `--address`), or a history JSON file
    /// (`--history-file`, as `show -o json` writes it). Only in a binary
    /// that embeds the tool with its registrations (`steadfast_cli::Cli`);
    /// a disagreement prints the nondeterminism diff and exits 1.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The workflow ID whose history to replay (its latest run).
    #[arg(long, short = 'w', required_unless_present = "history_file")]
    pub workflow_id: Option<String>,
    /// A run of the ID other than its latest.
    #[arg(long, short = 'r', requires = "workflow_id")]
    pub run_id: Option<String>,
    /// A history JSON file instead of a run of the file or the endpoint.
    #[arg(long, value_name = "FILE", conflicts_with = "workflow_id")]
    pub history_file: Option<std::path::PathBuf>,
}

/// Where `workflow reset` goes, as Temporal's `--type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResetType {
    /// The run's first workflow task.
    #[value(name = "FirstWorkflowTask")]
    FirstWorkflowTask,
    /// The last workflow task that completed well (before a
    /// nondeterminism, if the run is parked on one).
    #[value(name = "LastWorkflowTask")]
    LastWorkflowTask,
}

/// What `--reapply-exclude` may drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReapplyExclude {
    /// The signals received after the reset point.
    #[value(name = "Signal")]
    Signal,
    /// The updates accepted after the reset point.
    #[value(name = "Update")]
    Update,
    /// Both: nothing received after the point is delivered again.
    #[value(name = "All")]
    All,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// The event ID of a workflow task boundary to reset to.
    #[arg(
        long,
        short = 'e',
        conflicts_with = "reset_type",
        required_unless_present = "reset_type"
    )]
    pub event_id: Option<u64>,
    /// Reset to the first or the last workflow task instead of an event.
    #[arg(long = "type", short = 't', value_enum)]
    pub reset_type: Option<ResetType>,
    /// Why; recorded in both runs' histories.
    #[arg(long)]
    pub reason: String,
    /// Do not deliver these again to the new run (default: signals and
    /// updates are).
    #[arg(long, value_enum)]
    pub reapply_exclude: Vec<ReapplyExclude>,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// Why; recorded in the history.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this status: Running, Completed, Failed, Cancelled,
    /// Terminated, TimedOut, ContinuedAsNew.
    #[arg(long)]
    pub status: Option<String>,
    /// Only runs of this workflow type.
    #[arg(long = "type")]
    pub workflow_type: Option<String>,
    /// Only workflow IDs starting with this.
    #[arg(long)]
    pub id_prefix: Option<String>,
    /// Only runs the engine holds parked (nondeterminism, panics, ...).
    #[arg(long)]
    pub parked: bool,
    /// Only runs whose search attribute equals the value: `Name=Value`
    /// (repeat for several); a number, true/false or a quoted string is
    /// read as JSON, other text as a keyword.
    #[arg(long = "search-attribute", value_name = "NAME=VALUE")]
    pub search_attributes: Vec<String>,
    /// Most runs to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// A run of the ID other than its latest (an earlier run of a
    /// continue-as-new chain).
    #[arg(long, short = 'r')]
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// The signal's name.
    #[arg(long)]
    pub name: String,
    /// The signal's payload, as JSON (a string is `'"text"'`).
    #[arg(long, short = 'i')]
    pub input: Option<String>,
    /// A request ID: sending it again does not deliver the signal twice.
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// The query's name.
    #[arg(long)]
    pub name: String,
    /// The query's argument, as JSON.
    #[arg(long, short = 'i')]
    pub input: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// The update's name.
    #[arg(long)]
    pub name: String,
    /// The update's input, as JSON (a string is `'"text"'`).
    #[arg(long, short = 'i')]
    pub input: Option<String>,
    /// An update ID: sending it again gets the first outcome and runs
    /// nothing twice.
    #[arg(long)]
    pub update_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    /// The workflow ID.
    #[arg(long, short = 'w')]
    pub workflow_id: String,
    /// Why; recorded in the history.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Creates a schedule that starts a workflow on a cron or an interval.
    Create(Box<ScheduleCreateArgs>),
    /// Replaces a schedule's spec, action, policies and state with the
    /// flags' (the flags of create; what is left out takes its default);
    /// its progress stays (`temporal schedule update`).
    Update(Box<ScheduleCreateArgs>),
    /// Lists schedules with their next and last actions.
    List,
    /// Describes a schedule: spec, policies, next and recent actions.
    Describe(ScheduleIdArgs),
    /// Pauses a schedule: its spec's times pass without actions.
    Pause(SchedulePauseArgs),
    /// Unpauses a schedule.
    Unpause(SchedulePauseArgs),
    /// Takes an action now, even while paused.
    Trigger(ScheduleTriggerArgs),
    /// Takes the actions of a past range.
    Backfill(ScheduleBackfillArgs),
    /// Deletes a schedule; workflows it started go on.
    Delete(ScheduleIdArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleIdArgs {
    /// The schedule ID.
    #[arg(long, short = 's')]
    pub schedule_id: String,
}

#[derive(Debug, Args)]
pub struct SchedulePauseArgs {
    /// The schedule ID.
    #[arg(long, short = 's')]
    pub schedule_id: String,
    /// Why (kept as the schedule's note).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScheduleTriggerArgs {
    /// The schedule ID.
    #[arg(long, short = 's')]
    pub schedule_id: String,
    /// The overlap policy of this action (default: the schedule's): skip,
    /// buffer-one, buffer-all, cancel-other, terminate-other, allow-all.
    #[arg(long)]
    pub overlap_policy: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScheduleBackfillArgs {
    /// The schedule ID.
    #[arg(long, short = 's')]
    pub schedule_id: String,
    /// The range's first time (RFC 3339).
    #[arg(long)]
    pub start_time: String,
    /// The range's last time (RFC 3339).
    #[arg(long)]
    pub end_time: String,
    /// The overlap policy of the backfilled actions (default: the schedule's).
    #[arg(long)]
    pub overlap_policy: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScheduleCreateArgs {
    /// The schedule ID.
    #[arg(long, short = 's')]
    pub schedule_id: String,
    /// A cron expression (5 or 6 fields; repeat for several).
    #[arg(long)]
    pub cron: Vec<String>,
    /// An interval, `5m`, or with an offset, `1h/15m` (repeat for several).
    #[arg(long)]
    pub interval: Vec<String>,
    /// The IANA time zone of the cron expressions (default UTC).
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Delay each action by a random time up to this (`30s`).
    #[arg(long)]
    pub jitter: Option<String>,
    /// No action before this time (RFC 3339).
    #[arg(long)]
    pub start_time: Option<String>,
    /// No action after this time (RFC 3339).
    #[arg(long)]
    pub end_time: Option<String>,
    /// The workflow type each action starts.
    #[arg(long = "type", alias = "workflow-type")]
    pub workflow_type: String,
    /// The workflow ID prefix (default: the schedule ID); the action's
    /// time is appended.
    #[arg(long, short = 'w')]
    pub workflow_id: Option<String>,
    /// The task queue (default `default`).
    #[arg(long, short = 't')]
    pub task_queue: Option<String>,
    /// The input of every start, as JSON.
    #[arg(long, short = 'i')]
    pub input: Option<String>,
    /// skip (default), buffer-one, buffer-all, cancel-other,
    /// terminate-other, allow-all.
    #[arg(long)]
    pub overlap_policy: Option<String>,
    /// How late a missed action may still be taken after downtime (`1h`).
    #[arg(long)]
    pub catchup_window: Option<String>,
    /// Pause the schedule when an action's workflow fails or times out.
    #[arg(long)]
    pub pause_on_failure: bool,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
    /// A note.
    #[arg(long)]
    pub notes: Option<String>,
    /// Scheduled actions allowed, then it acts as paused.
    #[arg(long)]
    pub remaining_actions: Option<u64>,
}
