//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_smoke.rs`
//! (feature `fuzzing`; not part of the API).
//!
//! Every entry point accepts any input. It returns normally, or panics only
//! on a real bug, which is what a fuzzer looks for:
//! - [`decode_record`]: a persisted record that decodes but does not survive
//!   a round trip through the codec;
//! - [`replay`]: engine code that panics while replaying (the sample
//!   workflows themselves never panic), or a replay that gives another
//!   outcome the second time;
//! - [`record_history`]: a history recorded live that does not replay to the
//!   same state.
//!
//! Inputs are kept small: at most [`MAX_EVENTS`] events, payloads the
//! helpers make are under [`MAX_PAYLOAD_BYTES`].

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::activity::{ActivityDef, ActivityOptions};
use crate::codec;
use crate::history::{
    ActivityOptionsRecord, Event, EventKind, Failure, MutableState, Payload, RunId,
    SearchAttributes, WorkflowStatus,
};
use crate::store::RunRecord;
use crate::workflow::{
    ActivityFailure, ParkReason, QueryDef, SignalDef, SignalError, WorkflowContext, WorkflowError,
    WorkflowFn, WorkflowMachine, erase,
};

/// Most events a history given to [`replay`] is cut to, and most events
/// [`record_history`] and [`mutate_history`] produce.
pub const MAX_EVENTS: usize = 256;

/// Largest payload the helpers here make.
pub const MAX_PAYLOAD_BYTES: usize = 1024;

/// Activity types the sample workflows call; generators should mostly pick these.
pub const ACTIVITY_TYPES: [&str; 5] = ["charge", "ship", "add", "slow", "notify"];

/// Signal names the sample workflows wait for.
pub const SIGNAL_NAMES: [&str; 2] = ["add", "stop"];

/// Patch IDs: the one the `Signals` sample checks, and one it does not.
pub const PATCH_IDS: [&str; 2] = ["add-bonus", "old-patch"];

/// The run ID every sample run uses (the seed of `ctx.random()`).
const RUN_ID: u128 = 0x5eed_f00d;

/// Time of the first event of recorded histories (2023-11-14).
fn base_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The latest time a `SystemTime` holds on common platforms, or the epoch.
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(i64::MAX as u64))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

// ----- decode_record -----

/// Which record types the bytes decoded as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The bytes are an [`Event`] (the `history` table's values).
    pub event: bool,
    /// The bytes are a run record (the `runs` table's values).
    pub run_record: bool,
}

/// Decodes `bytes` as every persisted record type with `codec::decode`.
/// Each type that decodes is encoded again, and that encoding must decode
/// to an equal value and encode to the same bytes.
///
/// # Panics
/// Only on a round-trip bug of the codec.
pub fn decode_record(bytes: &[u8]) -> Decoded {
    Decoded {
        event: round_trip::<Event>(bytes),
        run_record: round_trip::<RunRecord>(bytes),
    }
}

fn round_trip<T>(bytes: &[u8]) -> bool
where
    T: codec::Record + PartialEq + Debug,
{
    let name = std::any::type_name::<T>();
    let Ok(value) = codec::decode::<T>(bytes) else {
        return false;
    };
    let encoded = codec::encode(&value)
        .unwrap_or_else(|e| panic!("a decoded {name} does not encode: {e}; {value:?}"));
    let again = codec::decode::<T>(&encoded)
        .unwrap_or_else(|e| panic!("a re-encoded {name} does not decode: {e}; {value:?}"));
    let encoded_again = codec::encode(&again)
        .unwrap_or_else(|e| panic!("a decoded {name} does not encode: {e}; {again:?}"));
    assert_eq!(
        encoded, encoded_again,
        "the encoding of a {name} is not stable: {value:?}"
    );
    // A NaN in a field (backoff_coefficient) makes a value unequal to itself;
    // the byte comparison above covers it.
    #[allow(clippy::eq_op)]
    if value == value {
        assert_eq!(value, again, "a {name} changed in a round trip");
    }
    true
}

/// Encodes an event as the `history` table stores it.
pub fn encode_event(event: &Event) -> Vec<u8> {
    codec::encode(event).expect("events made by the fuzzing helpers encode")
}

/// Valid encoded records of every type: events of every kind, the events of
/// a short run of each sample, and run records of every status. Seeds for
/// mutation.
pub fn seed_records() -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut events = Vec::new();
    for sample in Sample::ALL {
        events.extend(record_history(
            sample,
            &[0, 1, 4, 2, 0, 3, 5, 4, 0, 5, 0, 6],
        ));
    }
    let failure = Failure {
        error_type: "Boom".into(),
        message: "it broke".into(),
        non_retryable: false,
        details: None,
        retry_state: crate::history::RetryState::Unspecified,
    };
    let extra = [
        EventKind::ActivityFailed {
            seq: 1,
            attempt: 2,
            failure: failure.clone(),
            next_attempt_at: Some(base_time()),
        },
        EventKind::ActivityAttemptStarted { seq: 1, attempt: 3 },
        EventKind::ActivityAttemptWaiting { seq: 1, attempt: 3 },
        EventKind::ActivityHeartbeat {
            seq: 1,
            attempt: 1,
            details: payload(&7),
        },
        EventKind::WorkflowFailed {
            failure: failure.clone(),
        },
        EventKind::WorkflowCancelled { failure },
        EventKind::WorkflowTerminated {
            reason: "by hand".into(),
        },
        EventKind::WorkflowTimedOut {
            timeout: "WorkflowRunTimeout".into(),
        },
        EventKind::SearchAttributesUpserted {
            attributes: SearchAttributes::new()
                .with("OrderState", "shipped")
                .with("Attempts", 2i64),
        },
        EventKind::TimerCanceled { seq: 2 },
        EventKind::WorkflowSignaledWithOptions {
            signal_name: "add".into(),
            input: payload(&3u64),
            request_id: Some("r-1".into()),
            delivery: crate::history::SignalDelivery::WithNext,
        },
        EventKind::SignalsUnread {
            signals: vec![crate::history::UnreadSignals {
                signal_name: "stop".into(),
                count: 2,
            }],
        },
        continued_as_new(3),
        EventKind::WorkflowContinuedFrom {
            previous_run_id: crate::history::RunId::from_u128(41),
        },
        EventKind::ActivityCancelRequested { seq: 1 },
        EventKind::LocalActivityRecorded {
            seq: 1,
            activity_type: "greet".into(),
            attempt: 2,
            result: Ok(payload(&"hi")),
        },
        EventKind::LocalActivityBackoff {
            seq: 1,
            activity_type: "greet".into(),
            attempt: 1,
            failure: Failure::new("Boom", "local"),
            next_attempt_at: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(90),
            original_scheduled_time: std::time::SystemTime::UNIX_EPOCH,
        },
        update_accepted(1),
        update_completed(2),
        update_completed(3),
    ];
    let mut extra = extra.to_vec();
    extra.extend((0..CHILD_EVENT_KINDS).map(|what| child_event(what, 3)));
    extra.extend((0..EXTERNAL_EVENT_KINDS).map(|what| external_event(what, 3)));
    events.extend(extra.into_iter().map(|kind| Event {
        event_id: 9,
        timestamp: base_time(),
        kind,
    }));
    records.extend(events.iter().map(encode_event));
    for (i, status) in WorkflowStatus::ALL.into_iter().enumerate() {
        let record = RunRecord {
            workflow_id: format!("order-{i}"),
            workflow_type: Sample::ALL[i % Sample::ALL.len()].workflow_type().into(),
            task_queue: "default".into(),
            status,
            start_time: base_time(),
            close_time: status
                .is_closed()
                .then(|| base_time() + Duration::from_secs(5)),
            history_len: i as u64 * 3,
            search_attributes: if i % 2 == 0 {
                SearchAttributes::new()
            } else {
                SearchAttributes::new()
                    .with("CustomerId", format!("c-{i}"))
                    .with("Priority", i as i64)
                    .with("Score", 0.5)
                    .with("Vip", true)
                    .with("Due", base_time())
                    .with("Tags", vec!["a".to_string(), "b".to_string()])
            },
            memo: (i % 3 == 0).then(|| payload(&i)),
            paused: None,
            reset_from: None,
        };
        records.push(codec::encode(&record).expect("run records encode"));
    }
    records
}

// ----- sample workflows -----

const CHARGE: ActivityDef<String, String> = ActivityDef::new("charge");
const SHIP: ActivityDef<String, String> = ActivityDef::new("ship");
const ADD: ActivityDef<u32, u32> = ActivityDef::new("add");
const SLOW: ActivityDef<u32, u32> = ActivityDef::new("slow");
const NOTIFY: ActivityDef<u32, ()> = ActivityDef::new("notify");
const ADD_SIGNAL: SignalDef<u64> = SignalDef::new("add");
const STOP_SIGNAL: SignalDef<()> = SignalDef::new("stop");
const TOTAL: QueryDef<u64> = QueryDef::new("total");

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close(Duration::from_secs(10))
}

/// The options the sample workflows schedule their activities with, as recorded.
pub fn activity_options() -> ActivityOptionsRecord {
    options()
        .to_record()
        .expect("the samples' options are valid")
}

/// Two activities and a timer, one after the other.
async fn sequential(ctx: WorkflowContext, order: String) -> Result<String, WorkflowError> {
    let charged = ctx.execute_activity(CHARGE, order, options()).await?;
    ctx.sleep(Duration::from_secs(60)).await?;
    Ok(ctx.execute_activity(SHIP, charged, options()).await?)
}

/// Two activities joined, a fallback when the first fails, then a third.
async fn join(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let first = ctx.execute_activity(ADD, n, options());
    let second = ctx.execute_activity(ADD, n.wrapping_add(1), options());
    let (a, b) = futures::join!(first, second);
    let a = match a {
        Ok(a) => a,
        Err(e @ ActivityFailure::Cancelled { .. }) => return Err(e.into()),
        Err(_) => ctx.execute_activity(ADD, 0, options()).await?,
    };
    let sum = a.wrapping_add(b?);
    ctx.execute_activity(NOTIFY, sum, options()).await?;
    Ok(sum)
}

/// An activity raced against a timer, with a fallback either way.
async fn race(ctx: WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
    let mut work = ctx.execute_activity(SLOW, n, options());
    let mut deadline = ctx.sleep(Duration::from_secs(30));
    let first = futures::select_biased! {
        result = work => Some(result),
        fired = deadline => {
            fired?;
            None
        }
    };
    match first {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => {
            ctx.execute_activity(NOTIFY, n, options()).await?;
            Err(e.into())
        }
        None => Ok(ctx.execute_activity(ADD, n, options()).await?),
    }
}

/// Signals, a query, a side effect, random values and a patch.
async fn signals(ctx: WorkflowContext, rounds: u32) -> Result<u64, WorkflowError> {
    let total = Arc::new(Mutex::new(0u64));
    let shared = total.clone();
    ctx.handle_query(TOTAL, move || {
        *shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    });
    let seed: u64 = ctx.side_effect(|| 7u64)?;
    let mut sum = seed.wrapping_add(ctx.random() % 100);
    let _ = ctx.uuid();
    if ctx.patched("add-bonus") {
        sum = sum.wrapping_add(u64::from(ctx.execute_activity(ADD, 1, options()).await?));
    }
    for _ in 0..rounds.min(4) {
        let mut add = ctx.recv_signal(ADD_SIGNAL);
        let mut stop = ctx.recv_signal(STOP_SIGNAL);
        let mut timeout = ctx.sleep(Duration::from_secs(3600));
        let more = futures::select_biased! {
            value = add => match value {
                Ok(v) => {
                    sum = sum.wrapping_add(v);
                    true
                }
                Err(SignalError::Cancelled(c)) => return Err(c.into()),
                Err(_) => true,
            },
            stopped = stop => {
                stopped?;
                false
            }
            fired = timeout => {
                fired?;
                false
            }
        };
        *total
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = sum;
        if !more {
            break;
        }
    }
    // The drain-before-return idiom; whatever is left (stop signals) is
    // recorded as unread by the close.
    while let Ok(Some(v)) = ctx.try_recv_signal(ADD_SIGNAL) {
        sum = sum.wrapping_add(v);
    }
    if ctx.patched("add-bonus") && ctx.is_cancel_requested() {
        ctx.execute_activity(NOTIFY, 0, options()).await?;
        return Err(WorkflowError::new("cancelled after cleanup"));
    }
    Ok(sum)
}

/// A sample workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// `charge`, a 60 s timer, then `ship` (input: a string).
    Sequential,
    /// Two `add` joined (a third on failure of the first), then `notify` (input: u32).
    Join,
    /// `slow` raced against a 30 s timer with `select_biased!`, then a fallback (input: u32).
    Race,
    /// A side effect, random values, patch `add-bonus`, then up to 4 rounds
    /// of signal `add` / signal `stop` / a timer, and query `total` (input: u32).
    Signals,
}

impl Sample {
    /// Every sample.
    pub const ALL: [Sample; 4] = [
        Sample::Sequential,
        Sample::Join,
        Sample::Race,
        Sample::Signals,
    ];

    /// A sample chosen by a fuzzer's byte.
    pub fn from_byte(byte: u8) -> Sample {
        Sample::ALL[usize::from(byte) % Sample::ALL.len()]
    }

    /// The workflow type recorded in `WorkflowStarted`.
    pub fn workflow_type(self) -> &'static str {
        match self {
            Sample::Sequential => "Sequential",
            Sample::Join => "Join",
            Sample::Race => "Race",
            Sample::Signals => "Signals",
        }
    }

    /// An input the sample accepts.
    pub fn input(self) -> Payload {
        match self {
            Sample::Sequential => payload(&"order-1"),
            Sample::Join | Sample::Race => payload(&5u32),
            Sample::Signals => payload(&3u32),
        }
    }

    fn workflow(self) -> WorkflowFn {
        match self {
            Sample::Sequential => erase(sequential),
            Sample::Join => erase(join),
            Sample::Race => erase(race),
            Sample::Signals => erase(signals),
        }
    }
}

/// A `WorkflowStarted` event kind for a sample with the given input.
pub fn started(sample: Sample, input: Payload) -> EventKind {
    EventKind::WorkflowStarted {
        workflow_type: sample.workflow_type().to_string(),
        workflow_id: "fuzz-workflow".to_string(),
        task_queue: "default".to_string(),
        input,
        run_timeout: None,
        execution_timeout: None,
    }
}

fn payload<T: Serialize + ?Sized>(value: &T) -> Payload {
    Payload::encode(value).expect("the fuzzing helpers' values encode")
}

/// A payload chosen by a byte: mostly JSON values of the types the samples
/// use, sometimes of another type or not JSON at all.
pub fn odd_payload(byte: u8) -> Payload {
    match byte % 8 {
        0 => payload(&u32::from(byte)),
        1 => payload(&format!("v{byte}")),
        2 => payload(&()),
        3 => payload(&-1i64),
        4 => payload(&1e300f64),
        5 => payload(&serde_json::json!({ "k": [byte] })),
        6 => payload(&u64::MAX),
        _ => Payload::encode(&serde_json::Value::String(
            "x".repeat(MAX_PAYLOAD_BYTES - 8),
        ))
        .expect("a string encodes"),
    }
}

/// A result of the activity's output type, or now and then an odd one.
fn typed_result(activity_type: &str, byte: u8) -> Payload {
    if byte % 8 == 7 {
        return odd_payload(byte / 8);
    }
    match activity_type {
        "charge" | "ship" => payload(&format!("{activity_type}-{byte}")),
        "notify" => payload(&()),
        _ => payload(&u32::from(byte)),
    }
}

// ----- replay -----

/// What a machine did with a history, compared between two replays.
#[derive(Debug, PartialEq)]
struct Trace {
    /// The commands it issued past the history's end, per activation.
    commands: Vec<Vec<EventKind>>,
    parked: Option<ParkReason>,
    /// The answer of the `Signals` sample's query `total`.
    query: Option<Payload>,
}

/// The engine folds any history it loads (a damaged file can hold any
/// events): the fold must not panic, and the state it gives follows the
/// last event.
fn check_fold(history: &[Event]) {
    let state = MutableState::fold(history);
    if let Some(last) = history.last() {
        assert_eq!(state.last_event_id, last.event_id, "the fold lost count");
    }
    if state.status.is_closed() {
        assert!(
            state.activities.is_empty() && state.timers.is_empty(),
            "a closed run has pending work: {state:?}"
        );
    }
}

fn drive(sample: Sample, history: &[Event], live_from: usize) -> Trace {
    let workflow = sample.workflow();
    let run_id = RunId::from_u128(RUN_ID);
    // The engine always replays at least the `WorkflowStarted` event.
    let split = live_from.max(1).min(history.len());
    let mut machine = WorkflowMachine::replay(&workflow, run_id, &history[..split]);
    let mut commands = vec![machine.take_commands()];
    for event in &history[split..] {
        if machine.parked().is_some() {
            break;
        }
        machine.apply(event);
        commands.push(machine.take_commands());
    }
    let query = machine
        .query_handler("total")
        .and_then(|h| h(&unit_argument()).ok());
    Trace {
        commands,
        parked: machine.parked().cloned(),
        query,
    }
}

/// Replays `history` (cut to [`MAX_EVENTS`]) through a sample workflow as
/// the engine does: `history[..live_from]` as a stored history, then each
/// later event fed to the running code one by one, taking the new commands
/// after each. The machine must end running, or parked with a typed reason
/// other than a panic; a second replay must give the same commands, park
/// reason and query answer.
///
/// # Errors
/// The reason the run parked: a nondeterminism error, or a history the code
/// cannot start from.
///
/// # Panics
/// When engine code panicked (the samples never do) or the replay is not
/// deterministic.
pub fn replay(sample: Sample, history: &[Event], live_from: usize) -> Result<(), ParkReason> {
    let history = &history[..history.len().min(MAX_EVENTS)];
    let first = drive(sample, history, live_from);
    let second = drive(sample, history, live_from);
    assert_eq!(first, second, "replaying the same history twice differs");
    check_fold(history);
    match first.parked {
        Some(ParkReason::Panic(message)) => {
            panic!(
                "engine code panicked while replaying {sample:?}: {message}; history: {history:#?}"
            )
        }
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// Open activities (scheduled, without a final outcome) and timers (started,
/// not fired) by seq, with the activities' types, as the engine's fold of
/// the history says.
fn open_commands(state: &MutableState) -> (Vec<(u32, String)>, Vec<u32>) {
    let activities = state
        .activities
        .iter()
        .map(|(seq, p)| (*seq, p.activity_type.clone()))
        .collect();
    (activities, state.timers.keys().copied().collect())
}

fn pick<T: Clone>(items: &[T], byte: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(byte) % items.len()].clone())
}

/// Appends the machine's new commands to `history`, as the engine records
/// them, folding each into `state`.
fn absorb(
    machine: &mut WorkflowMachine,
    history: &mut Vec<Event>,
    state: &mut MutableState,
    now: SystemTime,
) {
    for kind in machine.take_commands() {
        record(history, state, now, kind);
    }
}

/// Appends one event to `history` and folds it into `state`.
fn record(history: &mut Vec<Event>, state: &mut MutableState, now: SystemTime, kind: EventKind) {
    let event = Event {
        event_id: history.len() as u64 + 1,
        timestamp: now,
        kind,
    };
    state.apply(&event);
    history.push(event);
}

/// Runs a sample live as the engine does, with outcomes chosen by `choices`
/// (two bytes a step: what happens, and to which command with which value),
/// until the run closes, the choices run out or the history reaches
/// [`MAX_EVENTS`]. Returns the recorded history, which is a valid history
/// of the sample, good to mutate.
///
/// # Panics
/// When the live run parks (engine code panicked), or when replaying the
/// recorded history parks, issues commands again, or answers the query
/// differently from the live run.
pub fn record_history(sample: Sample, choices: &[u8]) -> Vec<Event> {
    let workflow = sample.workflow();
    let run_id = RunId::from_u128(RUN_ID);
    let mut now = base_time();
    let mut history = vec![Event {
        event_id: 1,
        timestamp: now,
        kind: started(sample, sample.input()),
    }];
    let mut machine = WorkflowMachine::replay(&workflow, run_id, &history);
    let mut state = MutableState::fold(&history);
    absorb(&mut machine, &mut history, &mut state, now);
    let mut bytes = choices.iter().copied();
    while !state.status.is_closed() && machine.parked().is_none() && history.len() < MAX_EVENTS {
        let Some(op) = bytes.next() else { break };
        let arg = bytes.next().unwrap_or(0);
        now += Duration::from_secs(u64::from(arg % 16));
        let (activities, timers) = open_commands(&state);
        let failure = Failure {
            error_type: if arg & 2 == 0 {
                "Boom"
            } else {
                "StartToCloseTimeout"
            }
            .to_string(),
            message: format!("failure {arg}"),
            non_retryable: arg & 1 == 1,
            details: (arg & 4 == 4).then(|| Payload::encode(&arg).ok()).flatten(),
            retry_state: crate::history::RetryState::Unspecified,
        };
        let kind = match op % 8 {
            0 | 1 => {
                pick(&activities, arg).map(|(seq, activity_type)| EventKind::ActivityCompleted {
                    seq,
                    attempt: 1,
                    result: typed_result(&activity_type, arg),
                })
            }
            2 => pick(&activities, arg).map(|(seq, _)| EventKind::ActivityFailed {
                seq,
                attempt: 3,
                failure,
                next_attempt_at: None,
            }),
            3 => pick(&activities, arg).map(|(seq, _)| EventKind::ActivityFailed {
                seq,
                attempt: 1,
                failure,
                next_attempt_at: Some(now + Duration::from_secs(1)),
            }),
            4 => pick(&timers, arg).map(|seq| EventKind::TimerFired { seq }),
            5 => {
                let signal_name = SIGNAL_NAMES[usize::from(arg) % SIGNAL_NAMES.len()];
                let input = if arg % 8 == 7 {
                    odd_payload(arg / 8)
                } else if signal_name == "add" {
                    payload(&u64::from(arg))
                } else {
                    payload(&())
                };
                // Both forms; one with a request ID, and now and then one
                // delivered with the next event.
                Some(if arg & 16 == 0 {
                    EventKind::WorkflowSignaled {
                        signal_name: signal_name.to_string(),
                        input,
                    }
                } else {
                    EventKind::WorkflowSignaledWithOptions {
                        signal_name: signal_name.to_string(),
                        input,
                        request_id: Some(format!("r-{arg}")),
                        delivery: if arg & 32 == 32 {
                            crate::history::SignalDelivery::WithNext
                        } else {
                            crate::history::SignalDelivery::Alone
                        },
                    }
                })
            }
            6 => Some(EventKind::WorkflowCancelRequested {
                reason: format!("reason {arg}"),
            }),
            _ if arg & 1 == 0 => {
                pick(&activities, arg).map(|(seq, _)| EventKind::ActivityHeartbeat {
                    seq,
                    attempt: 1,
                    details: odd_payload(arg),
                })
            }
            _ => pick(&activities, arg)
                .map(|(seq, _)| EventKind::ActivityAttemptStarted { seq, attempt: 2 }),
        };
        let Some(kind) = kind else { continue };
        record(&mut history, &mut state, now, kind);
        if let Some(event) = history.last() {
            machine.apply(event);
        }
        absorb(&mut machine, &mut history, &mut state, now);
    }
    if let Some(reason) = machine.parked() {
        panic!("a live run of {sample:?} parked: {reason}; history: {history:#?}");
    }
    let live_query = machine
        .query_handler("total")
        .and_then(|h| h(&unit_argument()).ok());
    let mut replayed = WorkflowMachine::replay(&workflow, run_id, &history);
    if let Some(reason) = replayed.parked() {
        panic!(
            "a history recorded live from {sample:?} does not replay: {reason}; history: {history:#?}"
        );
    }
    let again = replayed.take_commands();
    assert!(
        again.is_empty(),
        "replaying a live history of {sample:?} issued commands again: {again:?}; history: {history:#?}"
    );
    let replayed_query = replayed
        .query_handler("total")
        .and_then(|h| h(&unit_argument()).ok());
    assert_eq!(
        live_query, replayed_query,
        "the query answer of {sample:?} differs after replay; history: {history:#?}"
    );
    history
}

// ----- mutations -----

/// A continue-as-new close made from a byte: a sample's type, a run ID,
/// and up to three carried signals.
pub fn continued_as_new(arg: u8) -> EventKind {
    EventKind::WorkflowContinuedAsNew {
        new_run_id: crate::history::RunId::from_u128(u128::from(arg) + 1),
        workflow_type: Sample::from_byte(arg).workflow_type().to_string(),
        task_queue: "default".into(),
        input: odd_payload(arg),
        signals: (0..arg % 4)
            .map(|i| crate::history::CarriedSignal {
                signal_name: SIGNAL_NAMES[usize::from(i) % SIGNAL_NAMES.len()].to_string(),
                input: payload(&u64::from(i)),
            })
            .collect(),
        search_attributes: (arg & 1 == 1).then(|| SearchAttributes::new().with("Round", 1i64)),
        memo: (arg & 2 == 2).then(|| payload(&"memo")),
    }
}

/// The argument of a query that takes none.
fn unit_argument() -> Payload {
    payload(&())
}

/// An accepted update made from a byte: one of a few IDs and names.
pub fn update_accepted(arg: u8) -> EventKind {
    EventKind::WorkflowUpdateAccepted {
        update_id: format!("u-{}", arg % 4),
        update_name: SIGNAL_NAMES[usize::from(arg) % SIGNAL_NAMES.len()].to_string(),
        input: odd_payload(arg),
    }
}

/// An update's completion made from a byte: one of a few IDs, a success
/// (odd bytes fail).
pub fn update_completed(arg: u8) -> EventKind {
    let outcome = if arg & 1 == 0 {
        crate::history::UpdateOutcome::Success {
            result: odd_payload(arg),
        }
    } else {
        crate::history::UpdateOutcome::Failure {
            failure: Failure::new("Boom", ""),
        }
    };
    EventKind::WorkflowUpdateCompleted {
        update_id: format!("u-{}", arg % 4),
        outcome,
    }
}

/// How many child-workflow event kinds [`child_event`] makes.
pub const CHILD_EVENT_KINDS: u8 = 7;

/// A child-workflow event made from two bytes: which kind (`what`, modulo
/// [`CHILD_EVENT_KINDS`]) and its seq, IDs and values (`arg`).
pub fn child_event(what: u8, arg: u8) -> EventKind {
    use crate::history::{
        ChildIdReuse, ChildOptionsRecord, ParentClosePolicy, RunId, StartChildFailedCause,
    };
    let seq = u32::from(arg % 8);
    let policy = match arg % 3 {
        0 => ParentClosePolicy::Terminate,
        1 => ParentClosePolicy::RequestCancel,
        _ => ParentClosePolicy::Abandon,
    };
    let run_id = RunId::from_u128(u128::from(arg) + 1);
    match what % CHILD_EVENT_KINDS {
        0 => EventKind::StartChildWorkflowInitiated {
            seq,
            workflow_id: format!("child-{}", arg % 4),
            workflow_type: Sample::from_byte(arg).workflow_type().to_string(),
            task_queue: "default".into(),
            input: odd_payload(arg),
            options: ChildOptionsRecord {
                run_timeout: (arg & 1 == 1).then(|| Duration::from_secs(u64::from(arg))),
                execution_timeout: None,
                parent_close_policy: policy,
                id_reuse: match arg % 3 {
                    0 => ChildIdReuse::AllowDuplicate,
                    1 => ChildIdReuse::AllowDuplicateFailedOnly,
                    _ => ChildIdReuse::RejectDuplicate,
                },
                search_attributes: SearchAttributes::new(),
                memo: (arg & 2 == 2).then(|| payload(&"memo")),
            },
        },
        1 => EventKind::ChildWorkflowStarted { seq, run_id },
        2 => EventKind::StartChildWorkflowFailed {
            seq,
            cause: match arg % 3 {
                0 => StartChildFailedCause::AlreadyRunning { run_id },
                1 => StartChildFailedCause::ReuseRejected {
                    last_status: WorkflowStatus::Completed,
                },
                _ => StartChildFailedCause::Unreadable {
                    message: "damaged".into(),
                },
            },
        },
        3 => EventKind::ChildWorkflowCompleted {
            seq,
            result: odd_payload(arg),
        },
        4 => EventKind::ChildWorkflowClosed {
            seq,
            status: WorkflowStatus::Failed,
            failure: Failure::new("Boom", "").with_non_retryable(true),
        },
        5 => EventKind::ChildWorkflowCancelRequested { seq },
        _ => EventKind::WorkflowStartedAsChild {
            parent_workflow_id: format!("parent-{}", arg % 4),
            parent_run_id: run_id,
            seq,
            parent_close_policy: policy,
        },
    }
}

/// How many event kinds of signals and cancellations sent to other
/// workflows [`external_event`] makes.
pub const EXTERNAL_EVENT_KINDS: u8 = 7;

/// An event of a signal or cancellation sent to another workflow, made
/// from two bytes: which kind (`what`, modulo [`EXTERNAL_EVENT_KINDS`]) and
/// its seq, IDs and causes (`arg`).
pub fn external_event(what: u8, arg: u8) -> EventKind {
    use crate::history::{ExternalFailedCause, RunId};
    let seq = u32::from(arg % 8);
    let run_id = RunId::from_u128(u128::from(arg) + 1);
    let workflow_id = format!("target-{}", arg % 4);
    let target_run = (arg & 1 == 1).then_some(run_id);
    let cause = match arg % 4 {
        0 => ExternalFailedCause::NotFound,
        1 => ExternalFailedCause::Closed {
            run_id,
            status: WorkflowStatus::Completed,
        },
        2 => ExternalFailedCause::OwnRun,
        _ => ExternalFailedCause::Unreadable {
            message: "damaged".into(),
        },
    };
    match what % EXTERNAL_EVENT_KINDS {
        0 => EventKind::SignalExternalWorkflowInitiated {
            seq,
            workflow_id,
            run_id: target_run,
            signal_name: "go".into(),
            input: odd_payload(arg),
        },
        1 => EventKind::ExternalWorkflowSignaled { seq, run_id },
        2 => EventKind::SignalExternalWorkflowFailed { seq, cause },
        3 => EventKind::RequestCancelExternalWorkflowInitiated {
            seq,
            workflow_id,
            run_id: target_run,
        },
        4 => EventKind::ExternalWorkflowCancelRequested { seq, run_id },
        5 => EventKind::RequestCancelExternalWorkflowFailed { seq, cause },
        _ => EventKind::SignalChildWorkflowInitiated {
            seq,
            child_seq: u32::from(arg % 3),
            workflow_id,
            run_id,
            signal_name: "go".into(),
            input: odd_payload(arg),
        },
    }
}

/// A `WorkflowContinuedFrom` naming run `n`.
pub fn continued_from(n: u8) -> EventKind {
    EventKind::WorkflowContinuedFrom {
        previous_run_id: crate::history::RunId::from_u128(u128::from(n)),
    }
}

/// An event kind made from two bytes, mostly one the samples could match.
pub fn fabricated_kind(what: u8, arg: u8) -> EventKind {
    let seq = u32::from(arg % 8);
    let activity_type = ACTIVITY_TYPES[usize::from(arg) % ACTIVITY_TYPES.len()].to_string();
    match what % 24 {
        23 => external_event(arg, arg / 6),
        19 => EventKind::LocalActivityRecorded {
            seq,
            activity_type: activity_type.clone(),
            attempt: u32::from(arg % 4),
            result: if arg & 1 == 0 {
                Ok(typed_result(&activity_type, arg))
            } else {
                Err(Failure::new("Boom", "local"))
            },
        },
        18 => EventKind::ActivityCancelRequested { seq },
        20 => update_accepted(arg),
        21 => update_completed(arg),
        22 => child_event(arg, arg / 7),
        16 => continued_as_new(arg),
        17 => EventKind::WorkflowContinuedFrom {
            previous_run_id: crate::history::RunId::from_u128(u128::from(arg)),
        },
        0 => EventKind::ActivityScheduled {
            seq,
            activity_type,
            input: odd_payload(arg),
            options: activity_options(),
        },
        1 => EventKind::ActivityCompleted {
            seq,
            attempt: 1,
            result: typed_result(&activity_type, arg),
        },
        2 => EventKind::ActivityFailed {
            seq,
            attempt: u32::from(arg),
            failure: Failure {
                error_type: "Boom".into(),
                message: String::new(),
                non_retryable: arg & 1 == 1,
                details: (arg & 4 == 4).then(|| Payload::encode(&arg).ok()).flatten(),
                retry_state: crate::history::RetryState::Unspecified,
            },
            next_attempt_at: (arg & 2 == 2).then(base_time),
        },
        3 => EventKind::TimerStarted {
            seq,
            fire_at: base_time(),
        },
        4 => EventKind::TimerFired { seq },
        5 => EventKind::SideEffectRecorded {
            seq,
            value: odd_payload(arg),
        },
        6 => EventKind::PatchRecorded {
            patch_id: PATCH_IDS[usize::from(arg) % PATCH_IDS.len()].to_string(),
        },
        7 => EventKind::WorkflowSignaled {
            signal_name: SIGNAL_NAMES[usize::from(arg) % SIGNAL_NAMES.len()].to_string(),
            input: odd_payload(arg),
        },
        8 => EventKind::WorkflowCancelRequested {
            reason: String::new(),
        },
        9 => EventKind::WorkflowCompleted {
            result: odd_payload(arg),
        },
        10 => started(Sample::from_byte(arg), odd_payload(arg / 4)),
        11 => EventKind::ActivityAttemptStarted {
            seq,
            attempt: u32::from(arg),
        },
        13 => EventKind::TimerCanceled { seq },
        14 => EventKind::WorkflowSignaledWithOptions {
            signal_name: SIGNAL_NAMES[usize::from(arg) % SIGNAL_NAMES.len()].to_string(),
            input: odd_payload(arg),
            request_id: (arg & 1 == 1).then(|| format!("r-{}", arg % 4)),
            delivery: match arg % 3 {
                0 => crate::history::SignalDelivery::Alone,
                1 => crate::history::SignalDelivery::WithNext,
                _ => crate::history::SignalDelivery::BeforeStart,
            },
        },
        15 => EventKind::SignalsUnread {
            signals: vec![crate::history::UnreadSignals {
                signal_name: SIGNAL_NAMES[usize::from(arg) % SIGNAL_NAMES.len()].to_string(),
                count: u64::from(arg),
            }],
        },
        _ => EventKind::WorkflowFailed {
            failure: Failure {
                error_type: "WorkflowError".into(),
                message: String::new(),
                non_retryable: true,
                details: None,
                retry_state: crate::history::RetryState::Unspecified,
            },
        },
    }
}

/// Sets the `seq` of a kind that has one.
fn set_seq(kind: &mut EventKind, value: u32) {
    match kind {
        EventKind::ActivityScheduled { seq, .. }
        | EventKind::ActivityAttemptStarted { seq, .. }
        | EventKind::ActivityAttemptWaiting { seq, .. }
        | EventKind::ActivityCompleted { seq, .. }
        | EventKind::ActivityFailed { seq, .. }
        | EventKind::ActivityHeartbeat { seq, .. }
        | EventKind::TimerStarted { seq, .. }
        | EventKind::TimerFired { seq }
        | EventKind::TimerCanceled { seq }
        | EventKind::ActivityCancelRequested { seq }
        | EventKind::LocalActivityRecorded { seq, .. }
        | EventKind::LocalActivityBackoff { seq, .. }
        | EventKind::SideEffectRecorded { seq, .. } => *seq = value,
        _ => {}
    }
}

/// Replaces the payload of a kind that has one.
fn set_payload(kind: &mut EventKind, value: Payload) {
    match kind {
        EventKind::WorkflowStarted { input, .. }
        | EventKind::ActivityScheduled { input, .. }
        | EventKind::WorkflowSignaled { input, .. }
        | EventKind::WorkflowSignaledWithOptions { input, .. } => *input = value,
        EventKind::ActivityCompleted { result, .. } | EventKind::WorkflowCompleted { result } => {
            *result = value
        }
        EventKind::SideEffectRecorded { value: v, .. } => *v = value,
        EventKind::ActivityHeartbeat { details, .. } => *details = value,
        _ => {}
    }
}

/// Renames what a kind refers to: activity type, patch, signal or workflow type.
fn rename(kind: &mut EventKind, byte: u8) {
    let i = usize::from(byte);
    match kind {
        EventKind::ActivityScheduled { activity_type, .. } => {
            *activity_type = ACTIVITY_TYPES[i % ACTIVITY_TYPES.len()].to_string()
        }
        EventKind::PatchRecorded { patch_id } => {
            *patch_id = PATCH_IDS[i % PATCH_IDS.len()].to_string()
        }
        EventKind::WorkflowSignaled { signal_name, .. }
        | EventKind::WorkflowSignaledWithOptions { signal_name, .. } => {
            *signal_name = SIGNAL_NAMES[i % SIGNAL_NAMES.len()].to_string()
        }
        EventKind::WorkflowStarted { workflow_type, .. } => {
            *workflow_type = Sample::from_byte(byte).workflow_type().to_string()
        }
        _ => {}
    }
}

/// Mutates a history with `ops` (two bytes a mutation): remove, swap,
/// duplicate or insert events, change seqs, payloads, names or timestamps.
/// The result has at most [`MAX_EVENTS`] events.
pub fn mutate_history(history: &mut Vec<Event>, ops: &[u8]) {
    for pair in ops.chunks(2) {
        let op = pair[0];
        let arg = pair.get(1).copied().unwrap_or(0);
        let len = history.len();
        let at = if len == 0 { 0 } else { usize::from(arg) % len };
        match op % 9 {
            0 if len > 0 => {
                history.remove(at);
            }
            1 if at + 1 < len => history.swap(at, at + 1),
            2 if len > 0 && len < MAX_EVENTS => {
                let copy = history[at].clone();
                history.insert(at, copy);
            }
            3 if len > 0 => set_seq(&mut history[at].kind, u32::from(op / 9 % 8)),
            4 if len > 0 => set_payload(&mut history[at].kind, odd_payload(op / 9)),
            5 if len > 0 => rename(&mut history[at].kind, op / 9),
            6 if len > 0 => {
                history[at].timestamp = match op / 9 % 3 {
                    0 => SystemTime::UNIX_EPOCH,
                    1 => far_future(),
                    _ => base_time() + Duration::from_secs(u64::from(op)),
                }
            }
            7 if len < MAX_EVENTS => {
                let timestamp = history.get(at).map_or_else(base_time, |e| e.timestamp);
                let event = Event {
                    event_id: at as u64 + 1,
                    timestamp,
                    kind: fabricated_kind(op / 9, arg),
                };
                history.insert(at, event);
            }
            8 => {
                for (i, event) in history.iter_mut().enumerate() {
                    event.event_id = i as u64 + 1;
                }
            }
            _ => {}
        }
    }
}
