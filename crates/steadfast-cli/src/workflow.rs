//! `steadfast workflow ...`: each command is one or a few admin requests
//! and the printing of their answer.

use serde_json::{Value, json};
use steadfast::WorkflowHistory;
use steadfast_admin::api::{Counts, Description, Done, ExecutionPage, time_text};

use crate::args::{
    IdArgs, ListArgs, Output, PauseArgs, ReapplyExclude, ResetArgs, ResetType, RunArgs, SignalArgs,
    TerminateArgs, UpdateArgs, WorkflowCommand,
};
use crate::cli::Code;
use crate::error::CliError;
use crate::output;
use crate::target::{Call, Target};

pub async fn run(
    target: &Target,
    code: &Code,
    command: WorkflowCommand,
    out: Output,
) -> Result<String, CliError> {
    match command {
        WorkflowCommand::Replay(args) => crate::replay::run(target, code, args, out).await,
        WorkflowCommand::List(args) => list(target, args, out).await,
        WorkflowCommand::Count => count(target, out).await,
        WorkflowCommand::Describe(args) => describe(target, args, out).await,
        WorkflowCommand::Show(args) => show(target, args, out).await,
        WorkflowCommand::Signal(args) => signal(target, args, out).await,
        WorkflowCommand::Query(args) => {
            let input = json_input(args.input.as_deref())?;
            let body = json!({ "name": args.name, "args": input });
            let answer = target
                .call(Call::Query {
                    id: args.workflow_id,
                    body,
                })
                .await?;
            if out == Output::Json {
                return Ok(output::json(&answer));
            }
            Ok(output::json(&answer["result"]))
        }
        WorkflowCommand::Update(args) => update(target, args, out).await,
        WorkflowCommand::Cancel(IdArgs { workflow_id }) => {
            let done = target.call(Call::Cancel { id: workflow_id }).await?;
            finished(done, out, "Cancellation requested")
        }
        WorkflowCommand::Terminate(TerminateArgs {
            workflow_id,
            reason,
        }) => {
            let call = Call::Terminate {
                id: workflow_id,
                reason,
            };
            finished(target.call(call).await?, out, "Terminated")
        }
        WorkflowCommand::Delete(IdArgs { workflow_id }) => {
            let done = target.call(Call::Delete { id: workflow_id }).await?;
            finished(done, out, "Deleted")
        }
        WorkflowCommand::Reset(args) => reset(target, args, out).await,
        WorkflowCommand::Pause(PauseArgs {
            workflow_id,
            reason,
        }) => {
            let call = Call::Pause {
                id: workflow_id,
                reason,
                pause: true,
            };
            finished(target.call(call).await?, out, "Paused")
        }
        WorkflowCommand::Unpause(PauseArgs {
            workflow_id,
            reason,
        }) => {
            let call = Call::Pause {
                id: workflow_id,
                reason,
                pause: false,
            };
            finished(target.call(call).await?, out, "Unpaused")
        }
    }
}

async fn reset(target: &Target, args: ResetArgs, out: Output) -> Result<String, CliError> {
    let reset_type = args.reset_type.map(|t| match t {
        ResetType::FirstWorkflowTask => "FirstWorkflowTask",
        ResetType::LastWorkflowTask => "LastWorkflowTask",
    });
    let exclude: Vec<&str> = args
        .reapply_exclude
        .iter()
        .map(|e| match e {
            ReapplyExclude::Signal => "Signal",
            ReapplyExclude::Update => "Update",
            ReapplyExclude::All => "All",
        })
        .collect();
    let body = json!({
        "event_id": args.event_id,
        "type": reset_type,
        "reason": args.reason,
        "reapply_exclude": exclude,
    });
    let answer = target
        .call(Call::Reset {
            id: args.workflow_id,
            body,
        })
        .await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    let done: steadfast_admin::api::ResetDone = parse(answer)?;
    Ok(format!(
        "Reset: workflow {}, new run {}\n",
        done.workflow_id, done.run_id
    ))
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(CliError::json)
}

fn finished(done: Value, out: Output, what: &str) -> Result<String, CliError> {
    if out == Output::Json {
        return Ok(output::json(&done));
    }
    let done: Done = parse(done)?;
    Ok(format!("{what}: workflow {}\n", done.workflow_id))
}

async fn count(target: &Target, out: Output) -> Result<String, CliError> {
    let answer = target.call(Call::Count).await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    let counts: Counts = parse(answer)?;
    let mut rows: Vec<Vec<String>> = counts
        .statuses
        .iter()
        .map(|s| vec![s.status.clone(), s.count.to_string()])
        .collect();
    rows.push(vec!["Total".to_string(), counts.total.to_string()]);
    let mut text = output::table(&["Status", "Count"], &rows);
    if counts.parked > 0 {
        text.push_str(&format!("{} running runs are parked\n", counts.parked));
    }
    Ok(text)
}

async fn list(target: &Target, args: ListArgs, out: Output) -> Result<String, CliError> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(status) = args.status {
        query.push(("status", status));
    }
    if let Some(t) = args.workflow_type {
        query.push(("workflow_type", t));
    }
    if let Some(p) = args.id_prefix {
        query.push(("workflow_id_prefix", p));
    }
    if args.parked {
        query.push(("parked", "true".into()));
    }
    for attribute in args.search_attributes {
        query.push(("search_attribute", attribute));
    }
    let page_size = args.limit.clamp(1, steadfast_admin::MAX_PAGE_SIZE);
    query.push(("page_size", page_size.to_string()));
    let mut executions = Vec::new();
    let mut token: Option<String> = None;
    while executions.len() < args.limit {
        let mut pairs = query.clone();
        if let Some(token) = &token {
            pairs.push(("next_page_token", token.clone()));
        }
        let encoded = serde_urlencoded::to_string(&pairs)
            .map_err(|e| CliError::Usage(format!("the filter cannot be encoded: {e}")))?;
        let page = target.call(Call::List { query: encoded }).await?;
        let mut page: Value = page;
        let next = page["next_page_token"].as_str().map(str::to_string);
        if let Some(list) = page["executions"].as_array_mut() {
            executions.append(list);
        }
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    executions.truncate(args.limit);
    if out == Output::Json {
        return Ok(output::json(&Value::Array(executions)));
    }
    let page: ExecutionPage = parse(json!({ "executions": executions, "next_page_token": null }))?;
    let rows: Vec<Vec<String>> = page
        .executions
        .iter()
        .map(|e| {
            let status = match (&e.paused, &e.parked) {
                (Some(p), _) if p.kind == "Requested" => format!("{} (paused)", e.status),
                (_, Some(p)) => format!("{} (parked: {})", e.status, p.kind),
                _ => e.status.clone(),
            };
            vec![
                status,
                e.workflow_id.clone(),
                e.workflow_type.clone(),
                e.start_time.clone(),
                e.close_time.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok(output::table(
        &["Status", "WorkflowId", "Type", "StartTime", "CloseTime"],
        &rows,
    ))
}

async fn describe(target: &Target, args: RunArgs, out: Output) -> Result<String, CliError> {
    let answer = target
        .call(Call::Describe {
            id: args.workflow_id,
            run: args.run_id,
        })
        .await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    let d: Description = parse(answer)?;
    let e = &d.execution;
    let mut text = output::fields(
        "Execution Info",
        &[
            ("WorkflowId", e.workflow_id.clone()),
            ("RunId", e.run_id.clone()),
            ("Type", e.workflow_type.clone()),
            ("TaskQueue", e.task_queue.clone()),
            ("Status", e.status.clone()),
            ("StartTime", e.start_time.clone()),
            ("CloseTime", e.close_time.clone().unwrap_or_default()),
            ("HistoryLength", e.history_length.to_string()),
            (
                "Parked",
                e.parked
                    .as_ref()
                    .map(|p| format!("{}: {}", p.kind, p.message))
                    .unwrap_or_default(),
            ),
            (
                "PreviousRunId",
                d.previous_run_id.clone().unwrap_or_default(),
            ),
            ("NextRunId", d.next_run_id.clone().unwrap_or_default()),
            (
                "Paused",
                e.paused
                    .as_ref()
                    .map(|p| format!("{}: {}", p.kind, p.reason))
                    .unwrap_or_default(),
            ),
            ("ResetFrom", d.reset_from.clone().unwrap_or_default()),
            ("ResetTo", d.reset_to.clone().unwrap_or_default()),
            (
                "Memo",
                e.memo
                    .as_ref()
                    .map(|m| output::short(m, 200))
                    .unwrap_or_default(),
            ),
        ],
    );
    if !d.task_queue_served && e.status == "Running" {
        text.push_str("  (no worker of the application serves this task queue)\n");
    }
    if !e.search_attributes.is_empty() {
        let rows: Vec<Vec<String>> = e
            .search_attributes
            .iter()
            .map(|(name, a)| vec![name.clone(), a.kind.clone(), output::short(&a.value, 80)])
            .collect();
        text.push_str("\nSearch Attributes:\n");
        text.push_str(&output::table(&["Name", "Type", "Value"], &rows));
    }
    if !d.pending_activities.is_empty() {
        let rows: Vec<Vec<String>> = d
            .pending_activities
            .iter()
            .map(|a| {
                let kind = if a.local {
                    format!("{} (local)", a.activity_type)
                } else {
                    a.activity_type.clone()
                };
                vec![
                    a.seq.to_string(),
                    kind,
                    a.attempt.to_string(),
                    a.next_attempt_at
                        .clone()
                        .unwrap_or_else(|| "running".into()),
                    a.last_failure
                        .as_ref()
                        .map(|f| format!("{}: {}", f.error_type, f.message))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        text.push_str(&format!("\nPending Activities: {}\n", rows.len()));
        text.push_str(&output::table(
            &["Seq", "Type", "Attempt", "NextAttempt", "LastFailure"],
            &rows,
        ));
    }
    if !d.pending_timers.is_empty() {
        let rows: Vec<Vec<String>> = d
            .pending_timers
            .iter()
            .map(|t| vec![t.seq.to_string(), t.fire_at.clone()])
            .collect();
        text.push_str(&format!("\nPending Timers: {}\n", rows.len()));
        text.push_str(&output::table(&["Seq", "FireAt"], &rows));
    }
    if !d.pending_updates.is_empty() {
        let rows: Vec<Vec<String>> = d
            .pending_updates
            .iter()
            .map(|u| {
                vec![
                    u.update_name.clone(),
                    u.update_id.clone(),
                    u.accepted_at.clone(),
                ]
            })
            .collect();
        text.push_str(&format!("\nPending Updates: {}\n", rows.len()));
        text.push_str(&output::table(&["Name", "UpdateId", "AcceptedAt"], &rows));
    }
    if !d.unread_signals.is_empty() {
        let rows: Vec<Vec<String>> = d
            .unread_signals
            .iter()
            .map(|u| vec![u.signal_name.clone(), u.count.to_string()])
            .collect();
        text.push_str("\nUnread Signals:\n");
        text.push_str(&output::table(&["Name", "Count"], &rows));
    }
    Ok(text)
}

async fn show(target: &Target, args: RunArgs, out: Output) -> Result<String, CliError> {
    let answer = target
        .call(Call::History {
            id: args.workflow_id,
            run: args.run_id,
        })
        .await?;
    let history = WorkflowHistory::from_json(&answer.to_string())
        .map_err(|e| CliError::Protocol(format!("the endpoint's history does not read: {e}")))?;
    if out == Output::Json {
        // Written again by the library: the document's own field order,
        // as `Engine::workflow_history(..).to_file` writes it.
        let mut text = history
            .to_json()
            .map_err(|e| CliError::Protocol(format!("the history does not write: {e}")))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        return Ok(text);
    }
    let rows: Vec<Vec<String>> = history
        .events
        .iter()
        .map(|event| {
            // The kind as JSON is `{"Name": {fields}}` (or `"Name"`): the
            // table shows the name and the fields in one short line, for
            // every kind, also those added after this tool was written.
            let kind = serde_json::to_value(&event.kind).unwrap_or(Value::Null);
            let (name, details) = match &kind {
                Value::Object(map) if map.len() == 1 => {
                    let (name, fields) = map.iter().next().expect("one entry");
                    (name.clone(), output::short(fields, 100))
                }
                Value::String(name) => (name.clone(), String::new()),
                other => (output::short(other, 40), String::new()),
            };
            vec![
                event.event_id.to_string(),
                time_text(event.timestamp),
                name,
                details,
            ]
        })
        .collect();
    let mut text = format!(
        "Workflow {} (run {}, type {}):\n",
        history.workflow_id, history.run_id, history.workflow_type
    );
    text.push_str(&output::table(&["ID", "Time", "Type", "Details"], &rows));
    Ok(text)
}

async fn signal(target: &Target, args: SignalArgs, out: Output) -> Result<String, CliError> {
    let input = json_input(args.input.as_deref())?;
    let body = json!({ "name": args.name, "input": input, "request_id": args.request_id });
    let done = target
        .call(Call::Signal {
            id: args.workflow_id,
            body,
        })
        .await?;
    finished(done, out, "Signal sent")
}

async fn update(target: &Target, args: UpdateArgs, out: Output) -> Result<String, CliError> {
    let input = json_input(args.input.as_deref())?;
    let body = json!({ "name": args.name, "input": input, "update_id": args.update_id });
    let answer = target
        .call(Call::Update {
            id: args.workflow_id,
            body,
        })
        .await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    Ok(output::json(&answer["result"]))
}

/// `--input` as JSON; `null` when not given.
fn json_input(text: Option<&str>) -> Result<Value, CliError> {
    match text {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CliError::Usage(format!(
                "--input is not JSON ({e}); a string is written '\"text\"', a number 42, \
                 an object '{{\"k\": 1}}'"
            ))
        }),
        None => Ok(Value::Null),
    }
}
