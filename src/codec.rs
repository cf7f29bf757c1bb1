//! The only file that names bincode: encoding of engine records.
//!
//! Every record starts with one format-version byte, then the record in
//! bincode 2's standard configuration (serde mode). A later move to another
//! codec adds a version here and keeps decoding the old one.
//!
//! The version is per record type ([`Record::VERSION`]): a type changes
//! by adding a version and keeping a frozen copy of its old shape, which
//! [`Record::decode_older`] decodes and converts. A record type is never
//! changed in place.
//!
//! Format versions:
//! - 1: the first format (events, run records).
//! - 2: run records gain search attributes and a memo (`store::tables`
//!   keeps `RunRecordV1` for version-1 records). Events stay at 1: a new
//!   event kind is added at the end of `EventKind`, which old records
//!   decode unchanged.
//! - 3 (store format): three event kinds appended at the end of
//!   `EventKind` (`TimerCanceled`, `WorkflowSignaledWithOptions`,
//!   `SignalsUnread`, with the new `UnreadSignals` struct); every record
//!   version stays as it was (events 1, run records 2).
//! - 6 (store format): events are version 2: `Failure` gained `details`
//!   and `retry_state` (`history::EventV1` keeps version 1, whose
//!   failures read with no details and the retry state their event shows).
//! - 7 (store format): the event kind `ActivityCancelRequested` appended at
//!   the end of `EventKind`; record versions stay (events 2, run records 2).
//! - 8 (store format): the event kind `LocalActivityRecorded` appended at
//!   the end of `EventKind` (its `result` is serde's `Result`: variant 0
//!   `Ok` with a payload, 1 `Err` with a failure); record versions stay.
//! - 13 (store format): four event kinds appended (pause, unpause, reset,
//!   reset-from); run records are version 3: they gained `paused` and
//!   `reset_from` (`store::record::RunRecordV2` keeps version 2).
//! - 14 (store format): schedule records, version 1.
//! - 15 (store format): the event kind `LocalActivityBackoff` appended at
//!   the end of `EventKind` (index 45); record versions stay.
//! - 16 (store format): three event kinds appended (a cancellation request
//!   deferred by a pause, a schedule's start context, a child's new parent
//!   after a reset); schedule records
//!   are version 2: they gained `pause_on_failure`, the last completion
//!   result and the last failure (`schedule::record::ScheduleRecordV1`
//!   keeps version 1).
//! - 17 (store format): the event kind `SignalChildWorkflowInitiated`
//!   appended (index 49), a child handle's signal, told apart from a
//!   signal to a named run; record versions stay.

use serde::{Serialize, de::DeserializeOwned};

/// A persisted engine record, with the version this build writes of it.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The version written by [`encode`]; [`decode`] reads it and older ones.
    const VERSION: u8 = 1;

    /// Decodes a record body of an older `version` (1 ≤ version < VERSION).
    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        let _ = body;
        Err(CodecError::NewerVersion {
            found: version,
            supported: Self::VERSION,
        })
    }
}

/// Events are version 2 since store format 6 (`Failure` gained details
/// and a retry state); version 1 decodes through the frozen `EventV1`.
impl Record for crate::history::Event {
    const VERSION: u8 = 2;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self, CodecError> {
        match version {
            1 => Ok(decode_exact::<crate::history::EventV1>(body)?.upgrade()),
            found => Err(CodecError::NewerVersion {
                found,
                supported: Self::VERSION,
            }),
        }
    }
}

/// Largest record the decoder will allocate for; a corrupt length prefix
/// cannot make it reserve more. Small records get a small limit (a record
/// never claims more than a few times its own size: a varint-encoded number
/// may expand to 8 bytes), so a 6-byte record cannot reserve 160 MiB.
const DECODE_LIMIT: usize = 256 * 1024 * 1024;
const SMALL_RECORD: usize = 8 * 1024;
const SMALL_LIMIT: usize = 128 * 1024;
const MEDIUM_RECORD: usize = 1024 * 1024;
const MEDIUM_LIMIT: usize = 16 * 1024 * 1024;

/// A persisted record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("record is empty")]
    Empty,
    #[error(
        "record has format version {found}, this build reads up to {supported}; upgrade steadfast"
    )]
    NewerVersion { found: u8, supported: u8 },
    #[error("record with format version 0 is not a steadfast record")]
    UnknownVersion,
    #[error("record does not decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("record has {0} trailing bytes")]
    Trailing(usize),
    #[error("record does not encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<(T, usize), CodecError> {
    let standard = bincode::config::standard();
    let decoded = if body.len() <= SMALL_RECORD {
        bincode::serde::decode_from_slice(body, standard.with_limit::<SMALL_LIMIT>())
    } else if body.len() <= MEDIUM_RECORD {
        bincode::serde::decode_from_slice(body, standard.with_limit::<MEDIUM_LIMIT>())
    } else {
        bincode::serde::decode_from_slice(body, config())
    };
    Ok(decoded?)
}

/// Encodes a record with its type's format-version byte in front.
pub(crate) fn encode<T: Record>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![T::VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())?;
    Ok(out)
}

/// Decodes a record written by [`encode`] of this or an older version.
pub(crate) fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match version {
        0 => Err(CodecError::UnknownVersion),
        v if v == T::VERSION => decode_exact(body),
        v if v < T::VERSION => T::decode_older(v, body),
        found => Err(CodecError::NewerVersion {
            found,
            supported: T::VERSION,
        }),
    }
}

/// Decodes a whole record body (after its version byte) as `T`: for
/// [`Record::decode_older`], with a frozen type of that version.
pub(crate) fn decode_exact<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (value, read) = decode_body(body)?;
    if read != body.len() {
        return Err(CodecError::Trailing(body.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::history::{Event, EventKind, Payload};
    use std::time::SystemTime;

    #[test]
    fn event_roundtrip() {
        let event = Event {
            event_id: 3,
            timestamp: SystemTime::now(),
            kind: EventKind::WorkflowCompleted {
                result: Payload::encode(&"ok").unwrap(),
            },
        };
        let bytes = encode(&event).unwrap();
        assert_eq!(bytes[0], 2, "events are written as version 2");
        assert_eq!(decode::<Event>(&bytes).unwrap(), event);
    }

    /// Version-1 events (store formats 1 to 5) decode through the frozen
    /// `EventV1`: their failures gain no details and the retry state the
    /// event shows; version 2 keeps both.
    #[test]
    fn version_1_events_decode_and_version_2_keeps_details() {
        use crate::history::{Failure, RetryState};
        let standard = bincode::config::standard();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(9);
        // ActivityFailed (variant 4) as version 1 wrote it: seq, attempt,
        // a failure of two strings and a bool, then next_attempt_at.
        let mut v1 = vec![1u8];
        v1.extend(bincode::serde::encode_to_vec((5u64, at, 4u32), standard).unwrap());
        let old = (3u32, 2u32, ("Fatal", "no", true), None::<SystemTime>);
        v1.extend(bincode::serde::encode_to_vec(old, standard).unwrap());
        let expected = Event {
            event_id: 5,
            timestamp: at,
            kind: EventKind::ActivityFailed {
                seq: 3,
                attempt: 2,
                failure: Failure::new("Fatal", "no")
                    .with_non_retryable(true)
                    .with_retry_state(RetryState::NonRetryableFailure),
                next_attempt_at: None,
            },
        };
        assert_eq!(decode::<Event>(&v1).unwrap(), expected);
        // WorkflowFailed (variant 13): workflows are never retried.
        let mut v1 = vec![1u8];
        v1.extend(bincode::serde::encode_to_vec((6u64, at, 13u32), standard).unwrap());
        v1.extend(bincode::serde::encode_to_vec(("E", "m", true), standard).unwrap());
        match decode::<Event>(&v1).unwrap().kind {
            EventKind::WorkflowFailed { failure } => {
                assert_eq!(failure.retry_state, RetryState::RetryPolicyNotSet);
                assert_eq!(failure.details, None);
            }
            other => panic!("{other:?}"),
        }
        // Version 2: the details and retry state go after the bool.
        let mut failure = Failure::new("E", "m").with_retry_state(RetryState::Timeout);
        failure.details = Some(Payload::encode(&[1, 2]).unwrap());
        let event = Event {
            event_id: 6,
            timestamp: at,
            kind: EventKind::WorkflowFailed { failure },
        };
        let bytes = encode(&event).unwrap();
        assert_eq!(bytes[0], 2);
        // Some, the JSON `[1,2]` with its length, variant 3 (`Timeout`).
        assert!(bytes.ends_with(&[0, 1, 5, b'[', b'1', b',', b'2', b']', 3]));
        assert_eq!(decode::<Event>(&bytes).unwrap(), event);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(matches!(decode::<Event>(&[]), Err(CodecError::Empty)));
        for version in [1, 2] {
            for len in 0..40 {
                let mut bytes = vec![version];
                bytes.extend((0..len).map(|i| (i * 53 + 7) as u8));
                let _ = decode::<Event>(&bytes);
            }
        }
        assert!(matches!(
            decode::<Event>(&[9, 1, 2]),
            Err(CodecError::NewerVersion { found: 9, .. })
        ));
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 1) as u8).collect();
            let mut bytes = vec![1];
            bytes.extend(junk);
            let _ = decode::<Event>(&bytes);
        }
        // A string claiming 160 MiB in a 6-byte record is refused before
        // anything is allocated (found by the decode_record fuzz target).
        assert!(decode::<Event>(&[0x01, 0xfc, 0x00, 0x31, 0x00, 0x0a]).is_err());
        let mut huge = vec![1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        huge.extend([0u8; 8]);
        assert!(decode::<Event>(&huge).is_err());
    }

    /// The payload the samples below carry (JSON `null`).
    fn payload() -> Payload {
        Payload::encode(&()).unwrap()
    }

    /// The failure the samples below carry.
    fn failure() -> crate::history::Failure {
        crate::history::Failure {
            error_type: "E".into(),
            message: "m".into(),
            non_retryable: false,
            details: None,
            retry_state: crate::history::RetryState::Unspecified,
        }
    }

    /// One event of every kind, each at its stored position: the list the
    /// position test checks, and the JSON form's round trip reads
    /// (`history::json`). A new kind goes at its end.
    pub(crate) fn every_event_kind() -> Vec<EventKind> {
        use crate::history::{SearchAttributes, WorkflowStatus};
        let options = crate::history::ActivityOptionsRecord {
            schedule_to_close_timeout: None,
            start_to_close_timeout: None,
            initial_interval: std::time::Duration::ZERO,
            backoff_coefficient: 2.0,
            maximum_interval: std::time::Duration::ZERO,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
            heartbeat_timeout: None,
            schedule_to_start_timeout: None,
            task_queue: None,
        };
        vec![
            EventKind::WorkflowStarted {
                workflow_type: "T".into(),
                workflow_id: "w".into(),
                task_queue: "q".into(),
                input: payload(),
                run_timeout: None,
                execution_timeout: None,
            },
            EventKind::ActivityScheduled {
                seq: 1,
                activity_type: "a".into(),
                input: payload(),
                options,
            },
            EventKind::ActivityAttemptStarted { seq: 1, attempt: 2 },
            EventKind::ActivityCompleted {
                seq: 1,
                attempt: 1,
                result: payload(),
            },
            EventKind::ActivityFailed {
                seq: 1,
                attempt: 1,
                failure: failure(),
                next_attempt_at: None,
            },
            EventKind::TimerStarted {
                seq: 1,
                fire_at: SystemTime::UNIX_EPOCH,
            },
            EventKind::TimerFired { seq: 1 },
            EventKind::SideEffectRecorded {
                seq: 1,
                value: payload(),
            },
            EventKind::PatchRecorded {
                patch_id: "p".into(),
            },
            EventKind::WorkflowSignaled {
                signal_name: "s".into(),
                input: payload(),
            },
            EventKind::WorkflowCancelRequested { reason: "r".into() },
            EventKind::ActivityHeartbeat {
                seq: 1,
                attempt: 1,
                details: payload(),
            },
            EventKind::WorkflowCompleted { result: payload() },
            EventKind::WorkflowFailed { failure: failure() },
            EventKind::WorkflowCancelled { failure: failure() },
            EventKind::WorkflowTerminated { reason: "r".into() },
            EventKind::WorkflowTimedOut {
                timeout: "t".into(),
            },
            EventKind::SearchAttributesUpserted {
                attributes: SearchAttributes::default(),
            },
            EventKind::TimerCanceled { seq: 1 },
            EventKind::WorkflowSignaledWithOptions {
                signal_name: "s".into(),
                input: payload(),
                request_id: None,
                delivery: crate::history::SignalDelivery::Alone,
            },
            EventKind::SignalsUnread {
                signals: Vec::new(),
            },
            EventKind::ActivityAttemptWaiting { seq: 1, attempt: 1 },
            EventKind::WorkflowContinuedAsNew {
                new_run_id: crate::history::RunId::from_u128(7),
                workflow_type: "T".into(),
                task_queue: "q".into(),
                input: payload(),
                signals: Vec::new(),
                search_attributes: None,
                memo: None,
            },
            EventKind::WorkflowContinuedFrom {
                previous_run_id: crate::history::RunId::from_u128(7),
            },
            EventKind::ActivityCancelRequested { seq: 1 },
            EventKind::LocalActivityRecorded {
                seq: 1,
                activity_type: "a".into(),
                attempt: 1,
                result: Ok(payload()),
            },
            EventKind::WorkflowUpdateAccepted {
                update_id: "u".into(),
                update_name: "n".into(),
                input: payload(),
            },
            EventKind::WorkflowUpdateCompleted {
                update_id: "u".into(),
                outcome: crate::history::UpdateOutcome::Success { result: payload() },
            },
            EventKind::StartChildWorkflowInitiated {
                seq: 1,
                workflow_id: "c".into(),
                workflow_type: "T".into(),
                task_queue: "q".into(),
                input: payload(),
                options: crate::history::ChildOptionsRecord {
                    run_timeout: None,
                    execution_timeout: None,
                    parent_close_policy: crate::history::ParentClosePolicy::Terminate,
                    id_reuse: crate::history::ChildIdReuse::AllowDuplicate,
                    search_attributes: SearchAttributes::default(),
                    memo: None,
                },
            },
            EventKind::ChildWorkflowStarted {
                seq: 1,
                run_id: crate::history::RunId::from_u128(7),
            },
            EventKind::StartChildWorkflowFailed {
                seq: 1,
                cause: crate::history::StartChildFailedCause::AlreadyRunning {
                    run_id: crate::history::RunId::from_u128(7),
                },
            },
            EventKind::ChildWorkflowCompleted {
                seq: 1,
                result: payload(),
            },
            EventKind::ChildWorkflowClosed {
                seq: 1,
                status: WorkflowStatus::Failed,
                failure: failure(),
            },
            EventKind::ChildWorkflowCancelRequested { seq: 1 },
            EventKind::WorkflowStartedAsChild {
                parent_workflow_id: "p".into(),
                parent_run_id: crate::history::RunId::from_u128(7),
                seq: 1,
                parent_close_policy: crate::history::ParentClosePolicy::Terminate,
            },
            EventKind::SignalExternalWorkflowInitiated {
                seq: 1,
                workflow_id: "w".into(),
                run_id: None,
                signal_name: "s".into(),
                input: payload(),
            },
            EventKind::ExternalWorkflowSignaled {
                seq: 1,
                run_id: crate::history::RunId::from_u128(7),
            },
            EventKind::SignalExternalWorkflowFailed {
                seq: 1,
                cause: crate::history::ExternalFailedCause::NotFound,
            },
            EventKind::RequestCancelExternalWorkflowInitiated {
                seq: 1,
                workflow_id: "w".into(),
                run_id: Some(crate::history::RunId::from_u128(7)),
            },
            EventKind::ExternalWorkflowCancelRequested {
                seq: 1,
                run_id: crate::history::RunId::from_u128(7),
            },
            EventKind::RequestCancelExternalWorkflowFailed {
                seq: 1,
                cause: crate::history::ExternalFailedCause::OwnRun,
            },
            EventKind::WorkflowPaused { reason: "r".into() },
            EventKind::WorkflowUnpaused { reason: "r".into() },
            EventKind::WorkflowReset {
                new_run_id: crate::history::RunId::from_u128(7),
                reset_event_id: 3,
                reason: "r".into(),
            },
            EventKind::WorkflowResetFrom {
                previous_run_id: crate::history::RunId::from_u128(7),
                reset_event_id: 3,
                seed_run_id: crate::history::RunId::from_u128(7),
                reason: "r".into(),
            },
            EventKind::LocalActivityBackoff {
                seq: 1,
                activity_type: "a".into(),
                attempt: 1,
                failure: crate::history::Failure::new("T", "m"),
                next_attempt_at: std::time::SystemTime::UNIX_EPOCH,
                original_scheduled_time: std::time::SystemTime::UNIX_EPOCH,
            },
            EventKind::WorkflowCancelRequestDeferred { reason: "r".into() },
            EventKind::WorkflowStartedBySchedule {
                schedule_id: "s".into(),
                last_completion_result: Some(payload()),
                last_failure: Some(failure()),
            },
            EventKind::ParentWorkflowReset {
                parent_run_id: crate::history::RunId::from_u128(7),
            },
            EventKind::SignalChildWorkflowInitiated {
                seq: 2,
                child_seq: 1,
                workflow_id: "w".into(),
                run_id: crate::history::RunId::from_u128(7),
                signal_name: "s".into(),
                input: payload(),
            },
        ]
    }

    /// Enum variants are stored by position: these positions are the file
    /// format (FORMAT.md) and never change.
    #[test]
    fn variant_positions_are_the_format() {
        use crate::history::WorkflowStatus;
        let kinds = every_event_kind();
        // Exhaustive: a new variant does not compile until it is given its
        // position here (the next one, at the end).
        let position = |kind: &EventKind| match kind {
            EventKind::WorkflowStarted { .. } => 0,
            EventKind::ActivityScheduled { .. } => 1,
            EventKind::ActivityAttemptStarted { .. } => 2,
            EventKind::ActivityCompleted { .. } => 3,
            EventKind::ActivityFailed { .. } => 4,
            EventKind::TimerStarted { .. } => 5,
            EventKind::TimerFired { .. } => 6,
            EventKind::SideEffectRecorded { .. } => 7,
            EventKind::PatchRecorded { .. } => 8,
            EventKind::WorkflowSignaled { .. } => 9,
            EventKind::WorkflowCancelRequested { .. } => 10,
            EventKind::ActivityHeartbeat { .. } => 11,
            EventKind::WorkflowCompleted { .. } => 12,
            EventKind::WorkflowFailed { .. } => 13,
            EventKind::WorkflowCancelled { .. } => 14,
            EventKind::WorkflowTerminated { .. } => 15,
            EventKind::WorkflowTimedOut { .. } => 16,
            EventKind::SearchAttributesUpserted { .. } => 17,
            // Format 3.
            EventKind::TimerCanceled { .. } => 18,
            EventKind::WorkflowSignaledWithOptions { .. } => 19,
            EventKind::SignalsUnread { .. } => 20,
            // Format 4.
            EventKind::ActivityAttemptWaiting { .. } => 21,
            // Format 5.
            EventKind::WorkflowContinuedAsNew { .. } => 22,
            EventKind::WorkflowContinuedFrom { .. } => 23,
            // Format 7.
            EventKind::ActivityCancelRequested { .. } => 24,
            // Format 8.
            EventKind::LocalActivityRecorded { .. } => 25,
            // Format 9.
            EventKind::WorkflowUpdateAccepted { .. } => 26,
            EventKind::WorkflowUpdateCompleted { .. } => 27,
            // Format 10.
            EventKind::StartChildWorkflowInitiated { .. } => 28,
            EventKind::ChildWorkflowStarted { .. } => 29,
            EventKind::StartChildWorkflowFailed { .. } => 30,
            EventKind::ChildWorkflowCompleted { .. } => 31,
            EventKind::ChildWorkflowClosed { .. } => 32,
            EventKind::ChildWorkflowCancelRequested { .. } => 33,
            EventKind::WorkflowStartedAsChild { .. } => 34,
            // Format 12.
            EventKind::SignalExternalWorkflowInitiated { .. } => 35,
            EventKind::ExternalWorkflowSignaled { .. } => 36,
            EventKind::SignalExternalWorkflowFailed { .. } => 37,
            EventKind::RequestCancelExternalWorkflowInitiated { .. } => 38,
            EventKind::ExternalWorkflowCancelRequested { .. } => 39,
            EventKind::RequestCancelExternalWorkflowFailed { .. } => 40,
            // Format 13.
            EventKind::WorkflowPaused { .. } => 41,
            EventKind::WorkflowUnpaused { .. } => 42,
            EventKind::WorkflowReset { .. } => 43,
            EventKind::WorkflowResetFrom { .. } => 44,
            // Format 15.
            EventKind::LocalActivityBackoff { .. } => 45,
            // Format 16.
            EventKind::WorkflowCancelRequestDeferred { .. } => 46,
            EventKind::WorkflowStartedBySchedule { .. } => 47,
            EventKind::ParentWorkflowReset { .. } => 48,
            // Format 17.
            EventKind::SignalChildWorkflowInitiated { .. } => 49,
        };
        let standard = bincode::config::standard();
        for (listed, kind) in kinds.iter().enumerate() {
            assert_eq!(position(kind), listed, "{kind:?} is listed out of order");
            let bytes = bincode::serde::encode_to_vec(kind, standard).unwrap();
            assert_eq!(usize::from(bytes[0]), position(kind), "{kind:?}");
        }
        // Every kind is listed, the newest too: raise this with each new one.
        assert_eq!(kinds.len(), 50, "every_event_kind lists every kind");
        // A run ID in an event (format 5): serde's `Uuid` bytes, a length
        // (16) and the 16 bytes, big-endian as the UUID reads.
        let from = EventKind::WorkflowContinuedFrom {
            previous_run_id: crate::history::RunId::from_u128(0x0102),
        };
        let bytes = bincode::serde::encode_to_vec(&from, standard).unwrap();
        let mut expected = vec![23u8, 16];
        expected.extend(0x0102u128.to_be_bytes());
        assert_eq!(bytes, expected);
        // Why an external signal or cancel failed (format 12): by position.
        use crate::history::ExternalFailedCause as C;
        let causes = [
            C::NotFound,
            C::Closed {
                run_id: crate::history::RunId::from_u128(7),
                status: WorkflowStatus::Completed,
            },
            C::OwnRun,
            C::Unreadable {
                message: "m".into(),
            },
        ];
        for (position, cause) in causes.iter().enumerate() {
            let listed = match cause {
                C::NotFound => 0,
                C::Closed { .. } => 1,
                C::OwnRun => 2,
                C::Unreadable { .. } => 3,
            };
            assert_eq!(listed, position, "{cause:?} is listed out of order");
            let bytes = bincode::serde::encode_to_vec(cause, standard).unwrap();
            assert_eq!(usize::from(bytes[0]), position, "{cause:?}");
        }
        // An update's outcome (format 9): by position, then its fields.
        let outcomes = [
            crate::history::UpdateOutcome::Success { result: payload() },
            crate::history::UpdateOutcome::Failure { failure: failure() },
        ];
        for (position, outcome) in outcomes.iter().enumerate() {
            let listed = match outcome {
                crate::history::UpdateOutcome::Success { .. } => 0,
                crate::history::UpdateOutcome::Failure { .. } => 1,
            };
            assert_eq!(listed, position, "{outcome:?} is listed out of order");
            let bytes = bincode::serde::encode_to_vec(outcome, standard).unwrap();
            assert_eq!(usize::from(bytes[0]), position, "{outcome:?}");
        }
        let statuses = [
            WorkflowStatus::Running,
            WorkflowStatus::Completed,
            WorkflowStatus::Failed,
            WorkflowStatus::Cancelled,
            WorkflowStatus::Terminated,
            WorkflowStatus::TimedOut,
            WorkflowStatus::ContinuedAsNew,
        ];
        // Exhaustive, as for the event kinds.
        let status_position = |status: &WorkflowStatus| match status {
            WorkflowStatus::Running => 0,
            WorkflowStatus::Completed => 1,
            WorkflowStatus::Failed => 2,
            WorkflowStatus::Cancelled => 3,
            WorkflowStatus::Terminated => 4,
            WorkflowStatus::TimedOut => 5,
            // Format 5.
            WorkflowStatus::ContinuedAsNew => 6,
        };
        for (position, status) in statuses.iter().enumerate() {
            assert_eq!(
                status_position(status),
                position,
                "{status:?} is listed out of order"
            );
            let bytes = bincode::serde::encode_to_vec(status, standard).unwrap();
            assert_eq!(bytes, [position as u8], "{status:?}");
        }
        use crate::history::RetryState as R;
        let states = [
            R::Unspecified,
            R::InProgress,
            R::NonRetryableFailure,
            R::Timeout,
            R::MaximumAttemptsReached,
            R::RetryPolicyNotSet,
            R::CancelRequested,
        ];
        // Exhaustive, as for the event kinds (format 6).
        let state_position = |state: &R| match state {
            R::Unspecified => 0,
            R::InProgress => 1,
            R::NonRetryableFailure => 2,
            R::Timeout => 3,
            R::MaximumAttemptsReached => 4,
            R::RetryPolicyNotSet => 5,
            R::CancelRequested => 6,
        };
        for (listed, state) in states.iter().enumerate() {
            assert_eq!(
                state_position(state),
                listed,
                "{state:?} is listed out of order"
            );
            let bytes = bincode::serde::encode_to_vec(state, standard).unwrap();
            assert_eq!(bytes, [listed as u8], "{state:?}");
        }
        use crate::history::SearchAttributeValue as V;
        let values = [
            V::Keyword("k".into()),
            V::Int(1),
            V::Double(1.0),
            V::Bool(true),
            V::Datetime(SystemTime::UNIX_EPOCH),
            V::KeywordList(Vec::new()),
        ];
        let position = |value: &V| match value {
            V::Keyword(_) => 0,
            V::Int(_) => 1,
            V::Double(_) => 2,
            V::Bool(_) => 3,
            V::Datetime(_) => 4,
            V::KeywordList(_) => 5,
        };
        for (listed, value) in values.iter().enumerate() {
            assert_eq!(position(value), listed, "{value:?} is listed out of order");
            let bytes = bincode::serde::encode_to_vec(value, standard).unwrap();
            assert_eq!(usize::from(bytes[0]), listed, "{value:?}");
        }
    }

    /// Payload and `Double` have hand-written serde impls (a readable JSON
    /// form); through bincode they must keep the derived bytes.
    #[test]
    fn payload_and_double_keep_their_record_bytes() {
        use crate::history::{SearchAttributeValue, SearchAttributes};
        let at = SystemTime::UNIX_EPOCH;
        let event = Event {
            event_id: 1,
            timestamp: at,
            kind: EventKind::WorkflowCompleted {
                result: Payload::encode(&"ok").unwrap(),
            },
        };
        let bytes = encode(&event).unwrap();
        // A varint length, then the JSON bytes.
        assert!(bytes.ends_with(&[4, b'"', b'o', b'k', b'"']), "{bytes:?}");
        let event = Event {
            event_id: 1,
            timestamp: at,
            kind: EventKind::SearchAttributesUpserted {
                attributes: SearchAttributes::new().with("S", SearchAttributeValue::Double(2.5)),
            },
        };
        let bytes = encode(&event).unwrap();
        // Variant 2 (`Double`), then the f64's eight little-endian bytes.
        let mut tail = vec![2];
        tail.extend(2.5f64.to_le_bytes());
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        assert_eq!(decode::<Event>(&bytes).unwrap(), event);
    }
}
