//! `Event` as record version 1 wrote it (store formats 1 to 5): the
//! frozen shape that `codec` decodes version-1 records with, converted to
//! today's `Event` (its failures with no details and the retry state the
//! event shows).
//!
//! Frozen: never changed. Version 2 (store format 6) differs only in
//! `Failure`, which gained `details` and `retry_state`; every variant
//! here mirrors today's at the same position with the same fields.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::failure::{FailureV1, RetryState};
use super::{
    ActivityOptionsRecord, CarriedSignal, Event, EventId, EventKind, Payload, RunId,
    SearchAttributes, SignalDelivery, UnreadSignals,
};

/// `Event`, record version 1.
#[derive(Deserialize)]
pub(crate) struct EventV1 {
    event_id: EventId,
    timestamp: SystemTime,
    kind: EventKindV1,
}

/// `EventKind`, record version 1: variants by position, as FORMAT.md lists them.
#[derive(Deserialize)]
enum EventKindV1 {
    WorkflowStarted {
        workflow_type: String,
        workflow_id: String,
        task_queue: String,
        input: Payload,
        run_timeout: Option<Duration>,
        execution_timeout: Option<Duration>,
    },
    ActivityScheduled {
        seq: u32,
        activity_type: String,
        input: Payload,
        options: ActivityOptionsRecord,
    },
    ActivityAttemptStarted {
        seq: u32,
        attempt: u32,
    },
    ActivityCompleted {
        seq: u32,
        attempt: u32,
        result: Payload,
    },
    ActivityFailed {
        seq: u32,
        attempt: u32,
        failure: FailureV1,
        next_attempt_at: Option<SystemTime>,
    },
    TimerStarted {
        seq: u32,
        fire_at: SystemTime,
    },
    TimerFired {
        seq: u32,
    },
    SideEffectRecorded {
        seq: u32,
        value: Payload,
    },
    PatchRecorded {
        patch_id: String,
    },
    WorkflowSignaled {
        signal_name: String,
        input: Payload,
    },
    WorkflowCancelRequested {
        reason: String,
    },
    ActivityHeartbeat {
        seq: u32,
        attempt: u32,
        details: Payload,
    },
    WorkflowCompleted {
        result: Payload,
    },
    WorkflowFailed {
        failure: FailureV1,
    },
    WorkflowCancelled {
        failure: FailureV1,
    },
    WorkflowTerminated {
        reason: String,
    },
    WorkflowTimedOut {
        timeout: String,
    },
    SearchAttributesUpserted {
        attributes: SearchAttributes,
    },
    TimerCanceled {
        seq: u32,
    },
    WorkflowSignaledWithOptions {
        signal_name: String,
        input: Payload,
        request_id: Option<String>,
        delivery: SignalDelivery,
    },
    SignalsUnread {
        signals: Vec<UnreadSignals>,
    },
    ActivityAttemptWaiting {
        seq: u32,
        attempt: u32,
    },
    WorkflowContinuedAsNew {
        new_run_id: RunId,
        workflow_type: String,
        task_queue: String,
        input: Payload,
        signals: Vec<CarriedSignal>,
        search_attributes: Option<SearchAttributes>,
        memo: Option<Payload>,
    },
    WorkflowContinuedFrom {
        previous_run_id: RunId,
    },
}

impl EventV1 {
    /// Today's event.
    pub(crate) fn upgrade(self) -> Event {
        Event {
            event_id: self.event_id,
            timestamp: self.timestamp,
            kind: self.kind.upgrade(),
        }
    }
}

impl EventKindV1 {
    fn upgrade(self) -> EventKind {
        use EventKindV1 as V1;
        match self {
            V1::WorkflowStarted {
                workflow_type,
                workflow_id,
                task_queue,
                input,
                run_timeout,
                execution_timeout,
            } => EventKind::WorkflowStarted {
                workflow_type,
                workflow_id,
                task_queue,
                input,
                run_timeout,
                execution_timeout,
            },
            V1::ActivityScheduled {
                seq,
                activity_type,
                input,
                options,
            } => EventKind::ActivityScheduled {
                seq,
                activity_type,
                input,
                options,
            },
            V1::ActivityAttemptStarted { seq, attempt } => {
                EventKind::ActivityAttemptStarted { seq, attempt }
            }
            V1::ActivityCompleted {
                seq,
                attempt,
                result,
            } => EventKind::ActivityCompleted {
                seq,
                attempt,
                result,
            },
            V1::ActivityFailed {
                seq,
                attempt,
                failure,
                next_attempt_at,
            } => {
                let retry_state = failure.activity_retry_state(next_attempt_at.is_some());
                EventKind::ActivityFailed {
                    seq,
                    attempt,
                    failure: failure.upgrade(retry_state),
                    next_attempt_at,
                }
            }
            V1::TimerStarted { seq, fire_at } => EventKind::TimerStarted { seq, fire_at },
            V1::TimerFired { seq } => EventKind::TimerFired { seq },
            V1::SideEffectRecorded { seq, value } => EventKind::SideEffectRecorded { seq, value },
            V1::PatchRecorded { patch_id } => EventKind::PatchRecorded { patch_id },
            V1::WorkflowSignaled { signal_name, input } => {
                EventKind::WorkflowSignaled { signal_name, input }
            }
            V1::WorkflowCancelRequested { reason } => EventKind::WorkflowCancelRequested { reason },
            V1::ActivityHeartbeat {
                seq,
                attempt,
                details,
            } => EventKind::ActivityHeartbeat {
                seq,
                attempt,
                details,
            },
            V1::WorkflowCompleted { result } => EventKind::WorkflowCompleted { result },
            // Workflows are never retried.
            V1::WorkflowFailed { failure } => EventKind::WorkflowFailed {
                failure: failure.upgrade(RetryState::RetryPolicyNotSet),
            },
            // Workflows are never retried.
            V1::WorkflowCancelled { failure } => EventKind::WorkflowCancelled {
                failure: failure.upgrade(RetryState::RetryPolicyNotSet),
            },
            V1::WorkflowTerminated { reason } => EventKind::WorkflowTerminated { reason },
            V1::WorkflowTimedOut { timeout } => EventKind::WorkflowTimedOut { timeout },
            V1::SearchAttributesUpserted { attributes } => {
                EventKind::SearchAttributesUpserted { attributes }
            }
            V1::TimerCanceled { seq } => EventKind::TimerCanceled { seq },
            V1::WorkflowSignaledWithOptions {
                signal_name,
                input,
                request_id,
                delivery,
            } => EventKind::WorkflowSignaledWithOptions {
                signal_name,
                input,
                request_id,
                delivery,
            },
            V1::SignalsUnread { signals } => EventKind::SignalsUnread { signals },
            V1::ActivityAttemptWaiting { seq, attempt } => {
                EventKind::ActivityAttemptWaiting { seq, attempt }
            }
            V1::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type,
                task_queue,
                input,
                signals,
                search_attributes,
                memo,
            } => EventKind::WorkflowContinuedAsNew {
                new_run_id,
                workflow_type,
                task_queue,
                input,
                signals,
                search_attributes,
                memo,
            },
            V1::WorkflowContinuedFrom { previous_run_id } => {
                EventKind::WorkflowContinuedFrom { previous_run_id }
            }
        }
    }
}
