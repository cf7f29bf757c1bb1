//! Metrics: counters and histograms through the [`metrics`](::metrics)
//! facade, named after Temporal's SDK metrics with a `steadfast_` prefix
//! (Temporal's carry `temporal_`).
//!
//! The engine only records; the application chooses where they go by
//! installing a recorder once, before it opens the engine (with none
//! installed every recording is a no-op). For Prometheus:
//!
//! ```ignore
//! let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
//! steadfast::metrics::describe(); // HELP lines and units
//! // ... serve prometheus.render() at /metrics
//! ```
//!
//! `cargo run --example metrics` runs a few workflows and prints what they
//! recorded in the Prometheus text format.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `steadfast_workflow_started` | counter | `workflow_type`, `task_queue` | a run started: by a client, as a child, or as the next run of a continue-as-new |
//! | `steadfast_workflow_completed` | counter | `workflow_type`, `task_queue` | a run returned its result |
//! | `steadfast_workflow_failed` | counter | `workflow_type`, `task_queue` | a run returned an error |
//! | `steadfast_workflow_canceled` | counter | `workflow_type`, `task_queue` | a run ended cancelled |
//! | `steadfast_workflow_terminated` | counter | `workflow_type`, `task_queue` | a run was terminated: by a client (also one no actor could load, closed in the file directly), by a reset, or by its parent's close policy |
//! | `steadfast_workflow_timed_out` | counter | `workflow_type`, `task_queue` | a run hit its run or execution timeout |
//! | `steadfast_workflow_continue_as_new` | counter | `workflow_type`, `task_queue` | a run continued as new |
//! | `steadfast_workflow_parked` | counter | `reason` (`nondeterminism`, `panic`, `unrunnable`, `disk_full`, `storage`, `foreign_future`) | a run went from making progress to parked (a parked run loaded again that parks again, before committing a step, is not counted again) |
//! | `steadfast_activity_schedule_to_start_latency` | histogram (seconds) | `activity_type`, `task_queue` | from an attempt becoming due (scheduled, or its retry's backoff over) to its start: the wait for a slot or a worker |
//! | `steadfast_activity_execution_latency` | histogram (seconds) | `activity_type`, `task_queue` | wall time of one attempt, from its start to its outcome |
//! | `steadfast_activity_execution_failed` | counter | `activity_type`, `task_queue` | an attempt failed (an error, a panic, a timeout); each retry counts |
//! | `steadfast_timer_lateness` | histogram (seconds) | none | from a durable timer's due time to its run taking the firing, once per timer (the firing's commit follows) |
//! | `steadfast_sticky_cache_hit` | counter | none | a message (an activity outcome, a timer, a signal, ...) reached a run in memory |
//! | `steadfast_sticky_cache_miss` | counter | none | a message reached a run not in memory: it is loaded and replayed from the file |
//! | `steadfast_sticky_cache_total_forced_eviction` | counter | none | an idle run left memory because more than `max_cached_runs` were in it |
//! | `steadfast_store_commit_latency` | histogram (seconds) | none | one group commit of the store, from its first write to its fsync's end |
//! | `steadfast_store_commit_batch_size` | histogram (requests) | none | how many requests one group commit carried |
//! | `steadfast_sticky_cache_size` | gauge | none | runs in memory now (running, loading or parked), at most about `max_cached_runs` plus those busy |
//! | `steadfast_worker_task_slots_used` | gauge | `worker_type` (`ActivityWorker`), `task_queue` | activity attempts holding a slot of the queue's worker now |
//! | `steadfast_worker_task_slots_available` | gauge | `worker_type` (`ActivityWorker`), `task_queue` | free activity slots of the queue's worker now (only for a worker with `max_concurrent_activities`) |
//!
//! A gauge is set when its value changes, so a recorder installed after the
//! engine opened reads it from the next change on.

use std::time::Duration;

use ::metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::history::WorkflowStatus;
use crate::workflow::ParkReason;

/// Runs started (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_STARTED: &str = "steadfast_workflow_started";
/// Runs that returned their result (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_COMPLETED: &str = "steadfast_workflow_completed";
/// Runs that returned an error (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_FAILED: &str = "steadfast_workflow_failed";
/// Runs that ended cancelled (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_CANCELED: &str = "steadfast_workflow_canceled";
/// Runs that were terminated (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_TERMINATED: &str = "steadfast_workflow_terminated";
/// Runs that timed out (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_TIMED_OUT: &str = "steadfast_workflow_timed_out";
/// Runs that continued as new (counter; `workflow_type`, `task_queue`).
pub const WORKFLOW_CONTINUE_AS_NEW: &str = "steadfast_workflow_continue_as_new";
/// Runs that were parked (counter; `reason`).
pub const WORKFLOW_PARKED: &str = "steadfast_workflow_parked";
/// Wait of an attempt from due to started (histogram, seconds;
/// `activity_type`, `task_queue`).
pub const ACTIVITY_SCHEDULE_TO_START_LATENCY: &str = "steadfast_activity_schedule_to_start_latency";
/// Wall time of an attempt (histogram, seconds; `activity_type`,
/// `task_queue`).
pub const ACTIVITY_EXECUTION_LATENCY: &str = "steadfast_activity_execution_latency";
/// Failed attempts (counter; `activity_type`, `task_queue`).
pub const ACTIVITY_EXECUTION_FAILED: &str = "steadfast_activity_execution_failed";
/// Timer firings after their due time (histogram, seconds).
pub const TIMER_LATENESS: &str = "steadfast_timer_lateness";
/// Messages to a run in memory (counter).
pub const STICKY_CACHE_HIT: &str = "steadfast_sticky_cache_hit";
/// Messages to a run loaded from the file for them (counter).
pub const STICKY_CACHE_MISS: &str = "steadfast_sticky_cache_miss";
/// Idle runs evicted from memory (counter).
pub const STICKY_CACHE_FORCED_EVICTION: &str = "steadfast_sticky_cache_total_forced_eviction";
/// Time of a group commit (histogram, seconds).
pub const STORE_COMMIT_LATENCY: &str = "steadfast_store_commit_latency";
/// Requests per group commit (histogram).
pub const STORE_COMMIT_BATCH_SIZE: &str = "steadfast_store_commit_batch_size";
/// Runs in memory now (gauge).
pub const STICKY_CACHE_SIZE: &str = "steadfast_sticky_cache_size";
/// Activity slots held now (gauge; `worker_type`, `task_queue`).
pub const WORKER_TASK_SLOTS_USED: &str = "steadfast_worker_task_slots_used";
/// Activity slots free now (gauge; `worker_type`, `task_queue`; only for a
/// worker that limits its concurrent activities).
pub const WORKER_TASK_SLOTS_AVAILABLE: &str = "steadfast_worker_task_slots_available";

/// Gives the installed recorder each metric's unit and description (the
/// Prometheus exporter prints them as `# HELP` lines). Call it once after
/// installing the recorder; without it the metrics are recorded all the
/// same.
pub fn describe() {
    let by_workflow = [
        (
            WORKFLOW_STARTED,
            "Runs started (by a client, as a child, or by a continue-as-new)",
        ),
        (WORKFLOW_COMPLETED, "Runs that returned their result"),
        (WORKFLOW_FAILED, "Runs that returned an error"),
        (WORKFLOW_CANCELED, "Runs that ended cancelled"),
        (WORKFLOW_TERMINATED, "Runs that were terminated"),
        (
            WORKFLOW_TIMED_OUT,
            "Runs that hit their run or execution timeout",
        ),
        (WORKFLOW_CONTINUE_AS_NEW, "Runs that continued as new"),
        (
            WORKFLOW_PARKED,
            "Runs that went from making progress to parked, by reason",
        ),
        (
            ACTIVITY_EXECUTION_FAILED,
            "Activity attempts that failed (each retry counts)",
        ),
        (STICKY_CACHE_HIT, "Messages that reached a run in memory"),
        (
            STICKY_CACHE_MISS,
            "Messages that reached a run not in memory (loaded and replayed)",
        ),
        (
            STICKY_CACHE_FORCED_EVICTION,
            "Idle runs evicted past max_cached_runs",
        ),
    ];
    for (name, text) in by_workflow {
        describe_counter!(name, Unit::Count, text);
    }
    let seconds = [
        (
            ACTIVITY_SCHEDULE_TO_START_LATENCY,
            "From an activity attempt becoming due to its start",
        ),
        (
            ACTIVITY_EXECUTION_LATENCY,
            "Wall time of one activity attempt",
        ),
        (
            TIMER_LATENESS,
            "From a durable timer's due time to its run taking the firing",
        ),
        (
            STORE_COMMIT_LATENCY,
            "One group commit of the store, fsync included",
        ),
    ];
    for (name, text) in seconds {
        describe_histogram!(name, Unit::Seconds, text);
    }
    describe_histogram!(
        STORE_COMMIT_BATCH_SIZE,
        Unit::Count,
        "Requests carried by one group commit"
    );
    describe_gauge!(STICKY_CACHE_SIZE, Unit::Count, "Runs in memory now");
    describe_gauge!(
        WORKER_TASK_SLOTS_USED,
        Unit::Count,
        "Activity slots of a task queue's worker held now"
    );
    describe_gauge!(
        WORKER_TASK_SLOTS_AVAILABLE,
        Unit::Count,
        "Activity slots of a task queue's worker free now"
    );
}

fn workflow_labels(workflow_type: &str, task_queue: &str) -> [(&'static str, String); 2] {
    [
        ("workflow_type", workflow_type.to_string()),
        ("task_queue", task_queue.to_string()),
    ]
}

fn activity_labels(activity_type: &str, task_queue: &str) -> [(&'static str, String); 2] {
    [
        ("activity_type", activity_type.to_string()),
        ("task_queue", task_queue.to_string()),
    ]
}

pub(crate) fn workflow_started(workflow_type: &str, task_queue: &str) {
    counter!(
        WORKFLOW_STARTED,
        &workflow_labels(workflow_type, task_queue)
    )
    .increment(1);
}

/// A run closed with `status` (a running status records nothing).
pub(crate) fn workflow_closed(status: WorkflowStatus, workflow_type: &str, task_queue: &str) {
    let name = match status {
        WorkflowStatus::Completed => WORKFLOW_COMPLETED,
        WorkflowStatus::Failed => WORKFLOW_FAILED,
        WorkflowStatus::Cancelled => WORKFLOW_CANCELED,
        WorkflowStatus::Terminated => WORKFLOW_TERMINATED,
        WorkflowStatus::TimedOut => WORKFLOW_TIMED_OUT,
        WorkflowStatus::ContinuedAsNew => WORKFLOW_CONTINUE_AS_NEW,
        _ => return,
    };
    counter!(name, &workflow_labels(workflow_type, task_queue)).increment(1);
}

pub(crate) fn workflow_parked(reason: &ParkReason) {
    let reason = match reason {
        ParkReason::Nondeterminism(_) => "nondeterminism",
        ParkReason::Panic(_) => "panic",
        ParkReason::Unrunnable(_) => "unrunnable",
        ParkReason::DiskFull(_) => "disk_full",
        ParkReason::Storage(_) => "storage",
        ParkReason::ForeignFuture(_) => "foreign_future",
    };
    counter!(WORKFLOW_PARKED, "reason" => reason).increment(1);
}

pub(crate) fn activity_started(activity_type: &str, task_queue: &str, waited: Duration) {
    histogram!(
        ACTIVITY_SCHEDULE_TO_START_LATENCY,
        &activity_labels(activity_type, task_queue)
    )
    .record(waited.as_secs_f64());
}

pub(crate) fn activity_finished(
    activity_type: &str,
    task_queue: &str,
    took: Duration,
    failed: bool,
) {
    let labels = activity_labels(activity_type, task_queue);
    histogram!(ACTIVITY_EXECUTION_LATENCY, &labels).record(took.as_secs_f64());
    if failed {
        counter!(ACTIVITY_EXECUTION_FAILED, &labels).increment(1);
    }
}

pub(crate) fn timer_fired(lateness: Duration) {
    histogram!(TIMER_LATENESS).record(lateness.as_secs_f64());
}

pub(crate) fn cache_hit() {
    counter!(STICKY_CACHE_HIT).increment(1);
}

pub(crate) fn cache_miss() {
    counter!(STICKY_CACHE_MISS).increment(1);
}

pub(crate) fn cache_eviction() {
    counter!(STICKY_CACHE_FORCED_EVICTION).increment(1);
}

pub(crate) fn committed(requests: usize, took: Duration) {
    histogram!(STORE_COMMIT_LATENCY).record(took.as_secs_f64());
    histogram!(STORE_COMMIT_BATCH_SIZE).record(requests as f64);
}

pub(crate) fn cache_size(runs: usize) {
    gauge!(STICKY_CACHE_SIZE).set(runs as f64);
}

/// The activity slots of `task_queue`'s worker now: `used`, and of `limit`
/// (when it has one) the rest.
pub(crate) fn activity_slots(task_queue: &str, used: usize, limit: Option<usize>) {
    let labels = [
        ("worker_type", "ActivityWorker".to_string()),
        ("task_queue", task_queue.to_string()),
    ];
    gauge!(WORKER_TASK_SLOTS_USED, &labels).set(used as f64);
    if let Some(limit) = limit {
        gauge!(WORKER_TASK_SLOTS_AVAILABLE, &labels).set(limit.saturating_sub(used) as f64);
    }
}
