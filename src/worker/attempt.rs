//! One activity attempt: run the function under its timeouts and turn what
//! happened into an outcome for the run.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime};

use futures::FutureExt;

use crate::activity::{ActivityContext, ActivityFn};
use crate::history::{ActivityOptionsRecord, Failure, Payload, RunId};

pub(super) struct Attempt {
    pub(super) function: Option<ActivityFn>,
    pub(super) workflow_id: String,
    pub(super) run_id: RunId,
    pub(super) task_queue: String,
    pub(super) activity_type: String,
    pub(super) seq: u32,
    pub(super) attempt: u32,
    pub(super) input: Payload,
    pub(super) options: ActivityOptionsRecord,
    pub(super) scheduled_at: SystemTime,
}

fn failure(error_type: &str, message: String, non_retryable: bool) -> Failure {
    Failure {
        error_type: error_type.to_string(),
        message,
        non_retryable,
    }
}

/// Which timeout bounds this attempt, and how long it has.
fn attempt_limit(
    options: &ActivityOptionsRecord,
    scheduled_at: SystemTime,
) -> Option<(Duration, &'static str, bool)> {
    let start_to_close = options
        .start_to_close_timeout
        .map(|d| (d, "StartToCloseTimeout", false));
    let schedule_to_close = options.schedule_to_close_timeout.map(|d| {
        let elapsed = SystemTime::now()
            .duration_since(scheduled_at)
            .unwrap_or_default();
        (d.saturating_sub(elapsed), "ScheduleToCloseTimeout", true)
    });
    match (start_to_close, schedule_to_close) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

pub(super) async fn run(work: Attempt) -> Result<Payload, Failure> {
    let Some(function) = work.function else {
        return Err(failure(
            "ActivityNotRegistered",
            format!(
                "activity type {:?} is not registered on task queue {:?}; register it on the engine builder",
                work.activity_type, work.task_queue
            ),
            false,
        ));
    };
    let limit = attempt_limit(&work.options, work.scheduled_at);
    let ctx = ActivityContext {
        workflow_id: work.workflow_id,
        run_id: work.run_id,
        activity_type: work.activity_type,
        seq: work.seq,
        attempt: work.attempt,
        scheduled_time: work.scheduled_at,
    };
    let call = AssertUnwindSafe(function(ctx, work.input)).catch_unwind();
    let outcome = match limit {
        Some((limit, kind, non_retryable)) => match tokio::time::timeout(limit, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Err(failure(
                    kind,
                    format!("the attempt did not finish within {limit:?}"),
                    non_retryable,
                ));
            }
        },
        None => call.await,
    };
    match outcome {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(error)) => Err(error.into_failure()),
        Err(_) => Err(failure(
            "ActivityPanic",
            "the activity panicked".into(),
            false,
        )),
    }
}
