//! An application's own binary running the `steadfast` tool with its
//! workflows registered (`steadfast_cli::Cli`): every command of
//! `steadfast`, plus `workflow replay` against this code and queries
//! answered offline on a `--db` file.
//!
//! ```sh
//! cargo run -p steadfast-cli --example embedded -- workflow replay --db app.steadfast -w greeting-1
//! cargo run -p steadfast-cli --example embedded -- workflow query --db app.steadfast -w greeting-1 --name status
//! ```
//!
//! `crates/steadfast-cli/tests/embedded.rs` runs it on a file this code
//! wrote, and with changed code that no longer replays.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityDef, ActivityOptions, QueryDef, SignalDef, WorkflowContext, WorkflowDef, WorkflowError,
};
use steadfast_cli::Cli;

/// Greets the name it is signalled, with the full name an activity looks up.
pub const GREETING: WorkflowDef<String, String> = WorkflowDef::new("Greeting");
pub const NAME: SignalDef<String> = SignalDef::new("name");
pub const STATUS: QueryDef<String> = QueryDef::new("status");
pub const LOOKUP: ActivityDef<String, String> = ActivityDef::new("lookup");

pub async fn greeting(ctx: WorkflowContext, prefix: String) -> Result<String, WorkflowError> {
    let status = Arc::new(Mutex::new("waiting for a name".to_string()));
    let seen = status.clone();
    ctx.handle_query(STATUS, move || seen.lock().unwrap().clone());
    let name = ctx.recv_signal(NAME).await?;
    *status.lock().unwrap() = format!("looking up {name}");
    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    let full = ctx.execute_activity(LOOKUP, name, options).await?;
    *status.lock().unwrap() = format!("greeted {full}");
    Ok(format!("{prefix}, {full}!"))
}

/// The tool with this application's workflows.
pub fn tool() -> Cli {
    Cli::new().register_workflow(GREETING, greeting)
}

#[allow(dead_code)]
fn main() -> ExitCode {
    tool().run()
}
