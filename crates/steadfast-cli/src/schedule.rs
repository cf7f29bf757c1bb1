//! `steadfast schedule ...`: each command is one admin request (or the same
//! call on a file) and the printing of its answer, named and shaped like
//! the Temporal CLI's `temporal schedule ...`.

use serde_json::{Value, json};
use steadfast_admin::schedules::{ScheduleBody, ScheduleDone, ScheduleList};

use crate::args::{
    Output, ScheduleBackfillArgs, ScheduleCommand, ScheduleCreateArgs, ScheduleIdArgs,
    SchedulePauseArgs, ScheduleTriggerArgs,
};
use crate::error::CliError;
use crate::output;
use crate::target::{Call, ScheduleCall, Target};

pub async fn run(
    target: &Target,
    command: ScheduleCommand,
    out: Output,
) -> Result<String, CliError> {
    match command {
        ScheduleCommand::Create(args) => {
            let id = args.schedule_id.clone();
            let body = create_body(*args)?;
            let done = call(target, ScheduleCall::Create { id, body }).await?;
            finished(done, out, "Schedule created")
        }
        ScheduleCommand::Update(args) => {
            let id = args.schedule_id.clone();
            let body = create_body(*args)?;
            let done = call(target, ScheduleCall::Update { id, body }).await?;
            finished(done, out, "Schedule updated")
        }
        ScheduleCommand::List => list(target, out).await,
        ScheduleCommand::Describe(ScheduleIdArgs { schedule_id }) => {
            describe(target, schedule_id, out).await
        }
        ScheduleCommand::Pause(SchedulePauseArgs {
            schedule_id,
            reason,
        }) => {
            let done = call(
                target,
                ScheduleCall::Pause {
                    id: schedule_id,
                    pause: true,
                    note: reason,
                },
            )
            .await?;
            finished(done, out, "Schedule paused")
        }
        ScheduleCommand::Unpause(SchedulePauseArgs {
            schedule_id,
            reason,
        }) => {
            let done = call(
                target,
                ScheduleCall::Pause {
                    id: schedule_id,
                    pause: false,
                    note: reason,
                },
            )
            .await?;
            finished(done, out, "Schedule unpaused")
        }
        ScheduleCommand::Trigger(ScheduleTriggerArgs {
            schedule_id,
            overlap_policy,
        }) => {
            let done = call(
                target,
                ScheduleCall::Trigger {
                    id: schedule_id,
                    overlap: overlap_policy,
                },
            )
            .await?;
            finished(done, out, "Schedule triggered")
        }
        ScheduleCommand::Backfill(ScheduleBackfillArgs {
            schedule_id,
            start_time,
            end_time,
            overlap_policy,
        }) => {
            let body = json!({
                "start_at": start_time,
                "end_at": end_time,
                "overlap": overlap_policy,
            });
            let done = call(
                target,
                ScheduleCall::Backfill {
                    id: schedule_id,
                    body,
                },
            )
            .await?;
            finished(done, out, "Schedule backfilled")
        }
        ScheduleCommand::Delete(ScheduleIdArgs { schedule_id }) => {
            let done = call(target, ScheduleCall::Delete { id: schedule_id }).await?;
            finished(done, out, "Schedule deleted")
        }
    }
}

async fn call(target: &Target, call: ScheduleCall) -> Result<Value, CliError> {
    target.call(Call::Schedule(call)).await
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(CliError::json)
}

fn finished(done: Value, out: Output, what: &str) -> Result<String, CliError> {
    if out == Output::Json {
        return Ok(output::json(&done));
    }
    let done: ScheduleDone = parse(done)?;
    Ok(format!("{what}: {}\n", done.schedule_id))
}

/// The endpoint's create body from the command's flags.
fn create_body(args: ScheduleCreateArgs) -> Result<Value, CliError> {
    let input: Value = match &args.input {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            CliError::Usage(format!(
                "--input is not JSON ({e}); a string is written '\"text\"'"
            ))
        })?,
        None => Value::Null,
    };
    let mut intervals = Vec::new();
    for interval in &args.interval {
        let (every, offset) = match interval.split_once('/') {
            Some((every, offset)) => (every, Some(offset)),
            None => (interval.as_str(), None),
        };
        intervals.push(json!({ "every": every, "offset": offset }));
    }
    if args.cron.is_empty() && intervals.is_empty() {
        return Err(CliError::Usage(
            "a schedule needs --cron or --interval (or both)".into(),
        ));
    }
    Ok(json!({
        "workflow_type": args.workflow_type,
        "workflow_id": args.workflow_id,
        "task_queue": args.task_queue,
        "input": input,
        "cron": args.cron,
        "intervals": intervals,
        "time_zone": args.time_zone,
        "jitter": args.jitter,
        "start_at": args.start_time,
        "end_at": args.end_time,
        "overlap": args.overlap_policy,
        "catchup_window": args.catchup_window,
        "pause_on_failure": args.pause_on_failure,
        "paused": args.paused,
        "note": args.notes,
        "remaining_actions": args.remaining_actions,
    }))
}

async fn list(target: &Target, out: Output) -> Result<String, CliError> {
    let answer = call(target, ScheduleCall::List).await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    let list: ScheduleList = parse(answer)?;
    let rows: Vec<Vec<String>> = list
        .schedules
        .iter()
        .map(|s| {
            vec![
                s.schedule_id.clone(),
                s.workflow_type.clone(),
                if s.paused { "yes" } else { "no" }.to_string(),
                s.next_action_times.first().cloned().unwrap_or_default(),
                s.recent_actions
                    .last()
                    .map(|a| a.workflow_id.clone())
                    .unwrap_or_default(),
                s.note.clone(),
            ]
        })
        .collect();
    Ok(output::table(
        &[
            "ScheduleId",
            "WorkflowType",
            "Paused",
            "NextRun",
            "LastWorkflow",
            "Notes",
        ],
        &rows,
    ))
}

async fn describe(target: &Target, id: String, out: Output) -> Result<String, CliError> {
    let answer = call(target, ScheduleCall::Describe { id }).await?;
    if out == Output::Json {
        return Ok(output::json(&answer));
    }
    let s: ScheduleBody = parse(answer)?;
    let intervals: Vec<String> = s
        .intervals
        .iter()
        .map(|i| match &i.offset {
            Some(offset) if offset != "0s" => format!("every {} offset {offset}", i.every),
            _ => format!("every {}", i.every),
        })
        .collect();
    let i = &s.info;
    let mut text = output::fields(
        "Schedule",
        &[
            ("ScheduleId", s.schedule_id.clone()),
            ("WorkflowType", s.workflow_type.clone()),
            ("WorkflowId", s.workflow_id.clone()),
            ("TaskQueue", s.task_queue.clone()),
            ("Input", output::short(&s.input, 80)),
            ("Cron", s.cron.join(", ")),
            ("Intervals", intervals.join(", ")),
            (
                "TimeZone",
                s.time_zone.clone().unwrap_or_else(|| "UTC".into()),
            ),
            ("Jitter", s.jitter.clone()),
            ("StartTime", s.start_at.clone().unwrap_or_default()),
            ("EndTime", s.end_at.clone().unwrap_or_default()),
            ("OverlapPolicy", s.overlap.clone()),
            ("CatchupWindow", s.catchup_window.clone()),
            ("PauseOnFailure", s.pause_on_failure.to_string()),
            ("Paused", s.paused.to_string()),
            ("Notes", s.note.clone()),
            (
                "RemainingActions",
                s.remaining_actions
                    .map_or_else(|| "unlimited".into(), |n| n.to_string()),
            ),
            ("ActionCount", i.action_count.to_string()),
            ("MissedCatchupWindow", i.missed_catchup_window.to_string()),
            ("OverlapSkipped", i.overlap_skipped.to_string()),
            ("BufferDropped", i.buffer_dropped.to_string()),
            ("BufferSize", i.buffer_size.to_string()),
            ("CreatedAt", i.created_at.clone()),
            (
                "LastUpdatedAt",
                i.last_updated_at.clone().unwrap_or_default(),
            ),
            (
                "LastCompletionResult",
                i.last_completion_result
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default(),
            ),
            ("LastFailure", i.last_failure.clone().unwrap_or_default()),
        ],
    );
    if !i.next_action_times.is_empty() {
        text.push_str("Next actions:\n");
        for t in &i.next_action_times {
            text.push_str(&format!("  {t}\n"));
        }
    }
    if !i.running_workflows.is_empty() {
        text.push_str("Running workflows:\n");
        let rows: Vec<Vec<String>> = i
            .running_workflows
            .iter()
            .map(|w| vec![w.workflow_id.clone(), w.run_id.clone()])
            .collect();
        text.push_str(&output::table(&["WorkflowId", "RunId"], &rows));
    }
    if !i.recent_actions.is_empty() {
        text.push_str("Recent actions:\n");
        let rows: Vec<Vec<String>> = i
            .recent_actions
            .iter()
            .map(|a| {
                vec![
                    a.schedule_time.clone(),
                    a.actual_time.clone(),
                    a.workflow_id.clone(),
                    a.run_id.clone(),
                ]
            })
            .collect();
        text.push_str(&output::table(
            &["ScheduleTime", "ActualTime", "WorkflowId", "RunId"],
            &rows,
        ));
    }
    Ok(text)
}
