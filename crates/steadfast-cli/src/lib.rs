//! The `steadfast` command-line tool as a library: [`main`] parses the
//! arguments, talks to the application's admin endpoint, prints the answer
//! and returns the exit code, so an application can also offer the same
//! commands from its own binary; [`Cli`] does so with the application's
//! workflows registered, which adds `workflow replay` and offline queries
//! on a `--db` file.
//!
//! Exit codes: 0 done; 1 the endpoint or the file refused the request
//! (unknown ID, closed workflow, bad input, an update's validator, a file
//! that needs recovery: the message on stderr), or a replay found the code
//! disagreeing with the history; 2 bad arguments; 3 no endpoint answered
//! at the address.

mod args;
mod cli;
mod client;
mod error;
mod output;
mod replay;
mod schedule;
mod target;
mod workflow;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub use args::CommandLine;
pub use cli::Cli;
pub use client::{Address, AdminClient};
pub use error::CliError;

/// Runs one command from `args` (the program name first, as
/// `std::env::args_os` gives them) without any workflow code registered:
/// prints its answer on stdout, or the error on stderr, and returns the
/// exit code. [`Cli`] does the same with an application's code.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_args(&cli::Code::default(), args)
}

fn run_args<I, T>(code: &cli::Code, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match CommandLine::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run_with(code, cli)) {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Opens the file for writing as an application would (redb repairs a file
/// left by a killed process, a format-1 file migrates), runs no workflow
/// code (no worker is registered), and closes it.
async fn repair(path: &std::path::Path) -> Result<String, CliError> {
    if !path.exists() {
        return Err(CliError::File(format!("{} does not exist", path.display())));
    }
    let engine = steadfast::Engine::builder()
        .open(path)
        .await
        .map_err(|e| CliError::File(format!("{}: {e}", path.display())))?;
    engine
        .shutdown()
        .await
        .map_err(|e| CliError::File(format!("{}: {e}", path.display())))?;
    Ok(format!("{} is ready to read\n", path.display()))
}

/// Runs a parsed command (without workflow code) and returns what it
/// prints.
pub async fn run(cli: CommandLine) -> Result<String, CliError> {
    run_with(&cli::Code::default(), cli).await
}

async fn run_with(code: &cli::Code, cli: CommandLine) -> Result<String, CliError> {
    let target = match &cli.global.db {
        Some(path) => target::Target::File {
            path: path.clone(),
            code: code.clone(),
        },
        None => {
            let address = Address::parse(&cli.global.address)?;
            target::Target::Endpoint(AdminClient::new(address, cli.global.token.clone()))
        }
    };
    match cli.command {
        args::Command::Workflow(command) => {
            workflow::run(&target, code, command, cli.global.output).await
        }
        args::Command::Schedule(command) => {
            schedule::run(&target, command, cli.global.output).await
        }
        args::Command::Repair => match &cli.global.db {
            Some(db) => repair(db).await,
            None => Err(CliError::Usage(
                "repair needs the file: steadfast repair --db FILE".into(),
            )),
        },
    }
}
