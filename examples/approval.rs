//! Talking to a running workflow: a signal raced against a durable timer, a
//! query, and a cancellation that runs a compensation.
//!
//! `cargo run --example approval` starts workflow `approval-1`, which waits
//! for signal `approve` (carrying the approver's name) or 30 s, whichever
//! comes first. The program asks query `status` (prints `status: waiting`),
//! sends the signal with `alice`, and prints `Workflow result: approved by alice`.
//!
//! `cargo run --example approval -- cancel` starts `approval-2`, which places
//! a hold and waits for approval; the program cancels it, and the workflow
//! releases the hold in a compensation activity before it ends as Cancelled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{
    ActivityContext, ActivityDef, ActivityError, ActivityOptions, Engine, QueryDef, ResultError,
    SignalDef, SignalError, WorkflowContext, WorkflowDef, WorkflowError, WorkflowOptions,
};

const APPROVAL: WorkflowDef<String, String> = WorkflowDef::new("Approval");
const APPROVE: SignalDef<String> = SignalDef::new("approve");
const STATUS: QueryDef<String> = QueryDef::new("status");
const PLACE_HOLD: ActivityDef<String, ()> = ActivityDef::new("place_hold");
const RELEASE_HOLD: ActivityDef<String, ()> = ActivityDef::new("release_hold");

async fn place_hold(_ctx: ActivityContext, request: String) -> Result<(), ActivityError> {
    println!("hold placed for {request}");
    Ok(())
}

async fn release_hold(_ctx: ActivityContext, request: String) -> Result<(), ActivityError> {
    println!("hold released for {request} (compensation)");
    Ok(())
}

async fn approval(ctx: WorkflowContext, request: String) -> Result<String, WorkflowError> {
    // The query handler reads state the workflow updates.
    let status = Arc::new(Mutex::new("waiting".to_string()));
    let answer = status.clone();
    ctx.handle_query(STATUS, move || {
        answer.lock().map(|s| s.clone()).unwrap_or_default()
    });

    let options = ActivityOptions::start_to_close(Duration::from_secs(5));
    ctx.execute_activity(PLACE_HOLD, request.clone(), options.clone())
        .await?;

    // "Approve within 30 seconds": whichever resolves first wins, and replay
    // resolves it the same way (select_biased polls in a fixed order).
    let mut approval = ctx.recv_signal(APPROVE);
    let mut deadline = ctx.sleep(Duration::from_secs(30));
    let outcome = futures::select_biased! {
        approver = approval => approver,
        fired = deadline => match fired {
            Ok(()) => {
                *status.lock().map_err(|_| WorkflowError::new("status lock poisoned"))? = "expired".into();
                return Ok("expired: nobody approved within 30 s".into());
            }
            Err(cancelled) => Err(SignalError::from(cancelled)),
        },
    };
    match outcome {
        Ok(approver) => {
            *status
                .lock()
                .map_err(|_| WorkflowError::new("status lock poisoned"))? = "approved".into();
            Ok(format!("approved by {approver}"))
        }
        Err(SignalError::Cancelled(_)) => {
            *status
                .lock()
                .map_err(|_| WorkflowError::new("status lock poisoned"))? = "cancelled".into();
            // Compensation: activities still run after a cancellation.
            ctx.execute_activity(RELEASE_HOLD, request, options).await?;
            Err(WorkflowError::new("cancelled; hold released").with_type("Cancelled"))
        }
        Err(e) => Err(e.into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), steadfast::Error> {
    let cancel_mode = std::env::args().nth(1).as_deref() == Some("cancel");
    let engine = Engine::builder()
        .workflow(APPROVAL, approval)
        .activity(PLACE_HOLD, place_hold)
        .activity(RELEASE_HOLD, release_hold)
        .open("approval.steadfast")
        .await?;

    let id = if cancel_mode {
        "approval-2"
    } else {
        "approval-1"
    };
    let run = engine
        .start_workflow(
            APPROVAL,
            id,
            "purchase #42".to_string(),
            WorkflowOptions::new(),
        )
        .await?;
    println!("status: {}", engine.query(id, STATUS).await?);

    if cancel_mode {
        engine.cancel(id).await?;
        match run.result().await {
            Err(ResultError::Cancelled { failure, .. }) => {
                println!("Workflow cancelled: {}", failure.message)
            }
            other => println!("Workflow result: {other:?}"),
        }
        println!("status: {}", engine.query(id, STATUS).await?);
    } else {
        engine.signal(id, APPROVE, "alice".to_string()).await?;
        println!("Workflow result: {}", run.result().await?);
    }
    engine.shutdown().await?;
    Ok(())
}
