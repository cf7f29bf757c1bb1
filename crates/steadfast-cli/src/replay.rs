//! `steadfast workflow replay`: a saved history replayed against the
//! workflow code an embedding application registered ([`crate::Cli`]),
//! as `steadfast::Replayer` does in a test.

use serde_json::json;
use steadfast::WorkflowHistory;

use crate::args::{Output, ReplayArgs};
use crate::cli::Code;
use crate::error::CliError;
use crate::output;
use crate::target::{Call, Target};

pub async fn run(
    target: &Target,
    code: &Code,
    args: ReplayArgs,
    out: Output,
) -> Result<String, CliError> {
    if code.is_empty() {
        return Err(CliError::Usage(
            "replay needs the application's workflow code: run it from a binary that embeds \
             the tool with its workflows registered (steadfast_cli::Cli::new()\
             .register_workflow(DEF, f).run())"
                .into(),
        ));
    }
    let history = match (&args.history_file, args.workflow_id) {
        (Some(file), _) => WorkflowHistory::from_file(file)
            .map_err(|e| CliError::File(format!("{}: {e}", file.display())))?,
        (None, Some(id)) => {
            let answer = target
                .call(Call::History {
                    id,
                    run: args.run_id,
                })
                .await?;
            WorkflowHistory::from_json(&answer.to_string())
                .map_err(|e| CliError::Protocol(format!("the history read does not parse: {e}")))?
        }
        (None, None) => {
            return Err(CliError::Usage(
                "name the history: --workflow-id ID (with --db or --address) or \
                 --history-file FILE"
                    .into(),
            ));
        }
    };
    let result = code.replayer().replay(&history);
    let summary = format!(
        "workflow {:?} of type {:?} (run {}), {} events",
        history.workflow_id,
        history.workflow_type,
        history.run_id,
        history.events.len()
    );
    match result {
        Ok(()) if out == Output::Json => Ok(output::json(&json!({
            "workflow_id": history.workflow_id,
            "run_id": history.run_id.to_string(),
            "workflow_type": history.workflow_type,
            "events": history.events.len(),
            "replay": "ok",
        }))),
        Ok(()) => Ok(format!("Replay ok: {summary}\n")),
        Err(e) => Err(CliError::Replay(format!(
            "replay of {summary} disagrees with the code: {e}"
        ))),
    }
}
