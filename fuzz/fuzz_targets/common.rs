//! Bounded `Arbitrary` inputs shared by the fuzz targets.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use steadfast::fuzzing::{self, ACTIVITY_TYPES, MAX_EVENTS, PATCH_IDS, SIGNAL_NAMES, Sample};
use steadfast::{Event, EventKind, Failure, Payload, SignalDelivery, UnreadSignals};

/// At most `N` values of `T`, however long the input.
#[derive(Debug)]
pub struct Bounded<T, const N: usize>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>, const N: usize> Arbitrary<'a> for Bounded<T, N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.arbitrary_len::<T>()?.min(N);
        (0..len)
            .map(|_| T::arbitrary(u))
            .collect::<arbitrary::Result<_>>()
            .map(Bounded)
    }
}

/// Text of at most 64 bytes.
#[derive(Debug)]
pub struct ShortText(pub String);

impl<'a> Arbitrary<'a> for ShortText {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let bytes = Bounded::<u8, 64>::arbitrary(u)?.0;
        Ok(ShortText(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// A payload: one of the helpers' menu (the samples' types, odd types, a
/// 1 KiB string), or a small value of the fuzzer's.
#[derive(Debug, Arbitrary)]
pub enum ArbPayload {
    Menu(u8),
    Number(u64),
    Signed(i64),
    Float(f64),
    Text(ShortText),
    Bytes(Bounded<u8, 64>),
    Null,
}

impl ArbPayload {
    fn build(&self) -> Payload {
        let encoded = match self {
            ArbPayload::Menu(byte) => return fuzzing::odd_payload(*byte),
            ArbPayload::Number(n) => Payload::encode(n),
            ArbPayload::Signed(n) => Payload::encode(n),
            // NaN and infinities encode as JSON null.
            ArbPayload::Float(f) => Payload::encode(f),
            ArbPayload::Text(text) => Payload::encode(&text.0),
            ArbPayload::Bytes(bytes) => Payload::encode(&bytes.0),
            ArbPayload::Null => Payload::encode(&()),
        };
        encoded.unwrap_or_else(|_| fuzzing::odd_payload(0))
    }
}

/// A name: mostly one the samples use, sometimes any text.
#[derive(Debug, Arbitrary)]
pub enum ArbName {
    Known(u8),
    Other(ShortText),
}

impl ArbName {
    fn build(&self, known: &[&str]) -> String {
        match self {
            ArbName::Known(i) => known[usize::from(*i) % known.len()].to_string(),
            ArbName::Other(text) => text.0.clone(),
        }
    }
}

/// A command sequence number: mostly a small one the samples issue.
#[derive(Debug, Arbitrary)]
pub enum ArbSeq {
    Small(u8),
    Any(u32),
}

impl ArbSeq {
    fn build(&self) -> u32 {
        match self {
            ArbSeq::Small(s) => u32::from(*s % 8),
            ArbSeq::Any(s) => *s,
        }
    }
}

/// When an event happened, relative to the one before.
#[derive(Debug, Arbitrary)]
pub enum ArbTime {
    After(u16),
    Epoch,
    Latest,
    Secs(u64),
}

impl ArbTime {
    fn build(&self, previous: SystemTime) -> SystemTime {
        let or_previous = |t: Option<SystemTime>| t.unwrap_or(previous);
        match self {
            ArbTime::After(secs) => {
                or_previous(previous.checked_add(Duration::from_secs(u64::from(*secs))))
            }
            ArbTime::Epoch => SystemTime::UNIX_EPOCH,
            ArbTime::Latest => or_previous(
                SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(i64::MAX as u64)),
            ),
            ArbTime::Secs(secs) => {
                or_previous(SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(*secs)))
            }
        }
    }
}

/// What an event records, with bounded fields.
#[derive(Debug, Arbitrary)]
pub enum ArbKind {
    Started {
        sample: u8,
        input: ArbPayload,
    },
    ActivityScheduled {
        seq: ArbSeq,
        activity: ArbName,
        input: ArbPayload,
    },
    ActivityCompleted {
        seq: ArbSeq,
        attempt: u8,
        result: ArbPayload,
    },
    ActivityAttemptStarted {
        seq: ArbSeq,
        attempt: u8,
    },
    ActivityAttemptWaiting {
        seq: ArbSeq,
        attempt: u8,
    },
    ActivityFailed {
        seq: ArbSeq,
        attempt: u8,
        non_retryable: bool,
        retry: bool,
    },
    TimerStarted {
        seq: ArbSeq,
        after_secs: u32,
    },
    TimerFired {
        seq: ArbSeq,
    },
    SideEffectRecorded {
        seq: ArbSeq,
        value: ArbPayload,
    },
    PatchRecorded {
        patch: ArbName,
    },
    Signaled {
        signal: ArbName,
        input: ArbPayload,
    },
    CancelRequested,
    Heartbeat {
        seq: ArbSeq,
        details: ArbPayload,
    },
    Completed {
        result: ArbPayload,
    },
    Failed,
    Cancelled,
    Terminated,
    TimedOut,
    TimerCanceled {
        seq: ArbSeq,
    },
    ActivityCancelRequested {
        seq: ArbSeq,
    },
    LocalActivityRecorded {
        seq: ArbSeq,
        result: Option<ArbPayload>,
    },
    SignaledWithOptions {
        signal: ArbName,
        input: ArbPayload,
        request_id: Option<u8>,
        delivery: u8,
    },
    SignalsUnread {
        signal: ArbName,
        count: u8,
    },
    ContinuedAsNew {
        arg: u8,
    },
    ContinuedFrom {
        run: u8,
    },
    UpdateAccepted {
        arg: u8,
    },
    UpdateCompleted {
        arg: u8,
    },
    Child {
        what: u8,
        arg: u8,
    },
    External {
        what: u8,
        arg: u8,
    },
}

impl ArbKind {
    fn build(&self, now: SystemTime) -> EventKind {
        let failure = |non_retryable| Failure {
            error_type: "Boom".into(),
            message: "fuzzed".into(),
            non_retryable,
            details: None,
            retry_state: steadfast::RetryState::Unspecified,
        };
        match self {
            ArbKind::Started { sample, input } => {
                fuzzing::started(Sample::from_byte(*sample), input.build())
            }
            ArbKind::ActivityScheduled {
                seq,
                activity,
                input,
            } => EventKind::ActivityScheduled {
                seq: seq.build(),
                activity_type: activity.build(&ACTIVITY_TYPES),
                input: input.build(),
                options: fuzzing::activity_options(),
            },
            ArbKind::ActivityCompleted {
                seq,
                attempt,
                result,
            } => EventKind::ActivityCompleted {
                seq: seq.build(),
                attempt: u32::from(*attempt),
                result: result.build(),
            },
            ArbKind::ActivityAttemptStarted { seq, attempt } => EventKind::ActivityAttemptStarted {
                seq: seq.build(),
                attempt: u32::from(*attempt),
            },
            ArbKind::ActivityAttemptWaiting { seq, attempt } => EventKind::ActivityAttemptWaiting {
                seq: seq.build(),
                attempt: u32::from(*attempt),
            },
            ArbKind::ActivityFailed {
                seq,
                attempt,
                non_retryable,
                retry,
            } => EventKind::ActivityFailed {
                seq: seq.build(),
                attempt: u32::from(*attempt),
                failure: failure(*non_retryable),
                next_attempt_at: retry.then_some(now),
            },
            ArbKind::TimerStarted { seq, after_secs } => EventKind::TimerStarted {
                seq: seq.build(),
                fire_at: now
                    .checked_add(Duration::from_secs(u64::from(*after_secs)))
                    .unwrap_or(now),
            },
            ArbKind::TimerFired { seq } => EventKind::TimerFired { seq: seq.build() },
            ArbKind::SideEffectRecorded { seq, value } => EventKind::SideEffectRecorded {
                seq: seq.build(),
                value: value.build(),
            },
            ArbKind::PatchRecorded { patch } => EventKind::PatchRecorded {
                patch_id: patch.build(&PATCH_IDS),
            },
            ArbKind::Signaled { signal, input } => EventKind::WorkflowSignaled {
                signal_name: signal.build(&SIGNAL_NAMES),
                input: input.build(),
            },
            ArbKind::CancelRequested => EventKind::WorkflowCancelRequested {
                reason: "fuzzed".into(),
            },
            ArbKind::Heartbeat { seq, details } => EventKind::ActivityHeartbeat {
                seq: seq.build(),
                attempt: 1,
                details: details.build(),
            },
            ArbKind::Completed { result } => EventKind::WorkflowCompleted {
                result: result.build(),
            },
            ArbKind::Failed => EventKind::WorkflowFailed {
                failure: failure(true),
            },
            ArbKind::Cancelled => EventKind::WorkflowCancelled {
                failure: failure(true),
            },
            ArbKind::Terminated => EventKind::WorkflowTerminated {
                reason: "fuzzed".into(),
            },
            ArbKind::TimedOut => EventKind::WorkflowTimedOut {
                timeout: "WorkflowRunTimeout".into(),
            },
            ArbKind::TimerCanceled { seq } => EventKind::TimerCanceled { seq: seq.build() },
            ArbKind::ActivityCancelRequested { seq } => {
                EventKind::ActivityCancelRequested { seq: seq.build() }
            }
            ArbKind::LocalActivityRecorded { seq, result } => EventKind::LocalActivityRecorded {
                seq: seq.build(),
                activity_type: "greet".into(),
                attempt: 1,
                result: match result {
                    Some(value) => Ok(value.build()),
                    None => Err(failure(false)),
                },
            },
            ArbKind::SignaledWithOptions {
                signal,
                input,
                request_id,
                delivery,
            } => EventKind::WorkflowSignaledWithOptions {
                signal_name: signal.build(&SIGNAL_NAMES),
                input: input.build(),
                request_id: request_id.map(|id| format!("r-{}", id % 4)),
                delivery: match delivery % 3 {
                    0 => SignalDelivery::Alone,
                    1 => SignalDelivery::WithNext,
                    _ => SignalDelivery::BeforeStart,
                },
            },
            ArbKind::SignalsUnread { signal, count } => EventKind::SignalsUnread {
                signals: vec![UnreadSignals {
                    signal_name: signal.build(&SIGNAL_NAMES),
                    count: u64::from(*count),
                }],
            },
            ArbKind::ContinuedAsNew { arg } => fuzzing::continued_as_new(*arg),
            ArbKind::ContinuedFrom { run } => fuzzing::continued_from(*run),
            ArbKind::UpdateAccepted { arg } => fuzzing::update_accepted(*arg),
            ArbKind::UpdateCompleted { arg } => fuzzing::update_completed(*arg),
            ArbKind::Child { what, arg } => fuzzing::child_event(*what, *arg),
            ArbKind::External { what, arg } => fuzzing::external_event(*what, *arg),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub struct ArbEvent {
    pub time: ArbTime,
    pub kind: ArbKind,
}

/// Where the replayed history comes from.
#[derive(Debug, Arbitrary)]
pub enum HistorySource {
    /// Events of the fuzzer's, after the sample's own `WorkflowStarted`
    /// when `start` is set.
    Events {
        start: bool,
        events: Bounded<ArbEvent, MAX_EVENTS>,
    },
    /// A live run of a sample with outcomes chosen by `choices`, then
    /// mutated by `mutations` (see `fuzzing::mutate_history`).
    Recorded {
        source: u8,
        choices: Bounded<u8, 512>,
        mutations: Bounded<u8, 64>,
    },
}

/// The replay target's input.
#[derive(Debug, Arbitrary)]
pub struct ReplayInput {
    pub sample: u8,
    pub live_from: u16,
    pub history: HistorySource,
}

impl ReplayInput {
    /// The sample to replay, the history, and where live feeding starts.
    pub fn build(&self) -> (Sample, Vec<Event>, usize) {
        let sample = Sample::from_byte(self.sample);
        let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let history = match &self.history {
            HistorySource::Events { start, events } => {
                let mut history = Vec::new();
                if *start {
                    history.push(Event {
                        event_id: 1,
                        timestamp: now,
                        kind: fuzzing::started(sample, sample.input()),
                    });
                }
                for event in &events.0 {
                    now = event.time.build(now);
                    history.push(Event {
                        event_id: history.len() as u64 + 1,
                        timestamp: now,
                        kind: event.kind.build(now),
                    });
                }
                history.truncate(MAX_EVENTS);
                history
            }
            HistorySource::Recorded {
                source,
                choices,
                mutations,
            } => {
                let mut history = fuzzing::record_history(Sample::from_byte(*source), &choices.0);
                fuzzing::mutate_history(&mut history, &mutations.0);
                history
            }
        };
        (sample, history, usize::from(self.live_from))
    }
}

/// `data` as edits of a valid record: the first byte picks the record, then
/// each (position, value) pair of bytes sets a byte, and a trailing odd byte
/// cuts the record there. `None` for an empty input.
pub fn patch_seed_record(data: &[u8]) -> Option<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let seeds = SEEDS.get_or_init(fuzzing::seed_records);
    let (&which, edits) = data.split_first()?;
    let mut record = seeds[usize::from(which) % seeds.len()].clone();
    let mut pairs = edits.chunks_exact(2);
    for pair in &mut pairs {
        if !record.is_empty() {
            let at = usize::from(pair[0]) % record.len();
            record[at] = pair[1];
        }
    }
    if let [cut] = pairs.remainder() {
        record.truncate(usize::from(*cut));
    }
    Some(record)
}
