//! Promise: decoding any bytes as a persisted record, and replaying any event
//! history through workflow code, ends in a value or a typed error, never a
//! panic or a hang. A short, seeded run of the fuzz targets' entry points
//! (`steadfast::fuzzing`, feature `fuzzing`); the real fuzzing is in `fuzz/`.
//!
//! Run with `cargo test --features fuzzing --test fuzz_smoke`.

use std::time::{Duration, SystemTime};

use steadfast::fuzzing::{
    self, MAX_EVENTS, Sample, decode_record, encode_event, mutate_history, record_history, replay,
    seed_records, started,
};
use steadfast::{Event, EventKind, ParkReason, Payload};

/// Inputs per test; the whole file runs in a few seconds in debug mode.
const ROUNDS: usize = 10_000;

/// xorshift64*: a small seeded generator, so every run sees the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.byte()).collect()
    }
}

/// Flips, overwrites, truncates, extends or splices a valid record.
fn mutate_bytes(rng: &mut Rng, record: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = record.to_vec();
    for _ in 0..=rng.below(3) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            // bincode's varint markers and extremes.
            1 => bytes[at] = [0, 1, 0x7f, 0xfb, 0xfc, 0xfd, 0xfe, 0xff][rng.below(8)],
            2 => bytes.truncate(at),
            3 => bytes.extend(rng.bytes(8)),
            4 => {
                let cut = rng.below(other.len() + 1);
                bytes.truncate(at);
                bytes.extend_from_slice(&other[cut..]);
            }
            _ => bytes[at] = rng.byte(),
        }
    }
    bytes
}

#[test]
fn decode_record_survives_mutated_and_random_bytes() {
    let seeds = seed_records();
    for seed in &seeds {
        let decoded = decode_record(seed);
        assert!(
            decoded.event || decoded.run_record,
            "a valid record did not decode"
        );
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded_any = 0;
    for round in 0..ROUNDS * 2 {
        let bytes = if round % 4 == 0 {
            let mut bytes = rng.bytes(48);
            if let Some(first) = bytes.first_mut() {
                *first = 1; // the current format version, so the body is decoded
            }
            bytes
        } else {
            let record = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            mutate_bytes(&mut rng, record, other)
        };
        let decoded = decode_record(&bytes);
        if decoded.event || decoded.run_record {
            decoded_any += 1;
        }
    }
    // Some mutations keep a record valid (a flipped payload byte): the
    // round-trip check ran on those.
    assert!(decoded_any > 0, "no mutated record decoded");
}

#[test]
fn recorded_histories_replay_at_every_split() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut closed = 0;
    for round in 0..ROUNDS / 4 {
        let sample = Sample::ALL[round % Sample::ALL.len()];
        let choices = rng.bytes(96);
        // Checks the recorded history replays to the live run's state.
        let history = record_history(sample, &choices);
        assert!(history.len() <= MAX_EVENTS);
        if history.last().is_some_and(|e| {
            matches!(
                e.kind,
                EventKind::WorkflowCompleted { .. }
                    | EventKind::WorkflowFailed { .. }
                    | EventKind::WorkflowCancelled { .. }
            )
        }) {
            closed += 1;
        }
        for event in &history {
            assert!(decode_record(&encode_event(event)).event);
        }
        let split = rng.below(history.len() + 1);
        if let Err(reason) = replay(sample, &history, split) {
            panic!("a valid history of {sample:?} parked at split {split}: {reason}");
        }
    }
    assert!(
        closed > 0,
        "no recorded run closed: the choices are too weak"
    );
}

#[test]
fn mutated_histories_end_running_or_parked() {
    let mut rng = Rng(0xfeed_beef_dead_cafe);
    let (mut running, mut nondeterminism, mut unrunnable) = (0, 0, 0);
    for round in 0..ROUNDS {
        let sample = Sample::ALL[round % Sample::ALL.len()];
        // Mostly a valid history of another or the same sample, mutated.
        let source = if rng.below(4) == 0 {
            Sample::ALL[rng.below(Sample::ALL.len())]
        } else {
            sample
        };
        let mut history = record_history(source, &rng.bytes(64));
        let ops = rng.bytes(8);
        mutate_history(&mut history, &ops);
        let split = rng.below(history.len() + 1);
        match replay(sample, &history, split) {
            Ok(()) => running += 1,
            Err(ParkReason::Nondeterminism(_)) => nondeterminism += 1,
            Err(ParkReason::Unrunnable(_)) => unrunnable += 1,
            Err(other) => panic!("unexpected park reason: {other}"),
        }
    }
    assert!(running > 0 && nondeterminism > 0 && unrunnable > 0);
}

#[test]
fn fabricated_histories_end_running_or_parked() {
    let mut rng = Rng(0x5151_5151_5151_5151);
    for round in 0..ROUNDS {
        let sample = Sample::ALL[round % Sample::ALL.len()];
        let mut history = vec![Event {
            event_id: 1,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            kind: started(sample, sample.input()),
        }];
        let ops: Vec<u8> = (0..rng.below(24))
            .flat_map(|_| [7 + 9 * rng.below(28) as u8, rng.byte()])
            .collect();
        mutate_history(&mut history, &ops);
        let _ = replay(sample, &history, rng.below(history.len() + 1));
    }
}

fn event(event_id: u64, kind: EventKind) -> Event {
    Event {
        event_id,
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + event_id),
        kind,
    }
}

fn json<T: serde::Serialize>(value: T) -> Payload {
    Payload::encode(&value).unwrap()
}

#[test]
fn hand_made_histories() {
    let start = |sample: Sample| event(1, started(sample, sample.input()));
    let unrunnable = |r: Result<(), ParkReason>| matches!(r, Err(ParkReason::Unrunnable(_)));
    let diverged = |r: Result<(), ParkReason>| matches!(r, Err(ParkReason::Nondeterminism(_)));

    assert!(unrunnable(replay(Sample::Join, &[], 0)));
    assert!(unrunnable(replay(
        Sample::Join,
        &[event(1, EventKind::TimerFired { seq: 1 })],
        1
    )));
    let wrong_input = event(1, started(Sample::Join, json("not a number")));
    assert!(unrunnable(replay(Sample::Join, &[wrong_input], 1)));

    let scheduled = |seq: u32, activity_type: &str| EventKind::ActivityScheduled {
        seq,
        activity_type: activity_type.to_string(),
        input: json(5),
        options: fuzzing::activity_options(),
    };
    // Another activity than the code calls.
    let history = [start(Sample::Sequential), event(2, scheduled(1, "ship"))];
    assert!(diverged(replay(Sample::Sequential, &history, 2)));
    // Its whole run, then a completion the code did not make.
    let fire_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_063);
    let mut history = vec![
        start(Sample::Sequential),
        event(2, scheduled(1, "charge")),
        event(
            3,
            EventKind::ActivityCompleted {
                seq: 1,
                attempt: 1,
                result: json("charged"),
            },
        ),
        event(4, EventKind::TimerStarted { seq: 2, fire_at }),
        event(5, EventKind::TimerFired { seq: 2 }),
        event(6, scheduled(3, "ship")),
        event(
            7,
            EventKind::ActivityCompleted {
                seq: 3,
                attempt: 1,
                result: json("shipped"),
            },
        ),
        event(
            8,
            EventKind::WorkflowCompleted {
                result: json("shipped"),
            },
        ),
    ];
    for split in 0..=history.len() {
        assert_eq!(replay(Sample::Sequential, &history, split), Ok(()));
    }
    history.push(event(9, EventKind::WorkflowCompleted { result: json(1) }));
    assert!(diverged(replay(Sample::Sequential, &history, 9)));

    // A timer started at the last time `SystemTime` holds: it saturates
    // (this panicked inside `ctx.sleep` and parked the run as a panic).
    let far = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(i64::MAX as u64))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut late = history[..3].to_vec();
    late[2].timestamp = far;
    assert_eq!(replay(Sample::Sequential, &late, 3), Ok(()));
    assert_eq!(replay(Sample::Sequential, &late, 2), Ok(()));

    // A marker of a patch the code no longer checks is skipped.
    let history = [
        start(Sample::Join),
        event(
            2,
            EventKind::PatchRecorded {
                patch_id: "old-patch".into(),
            },
        ),
        event(3, scheduled(1, "add")),
        event(4, scheduled(2, "add")),
    ];
    assert_eq!(replay(Sample::Join, &history, 4), Ok(()));

    // A history recorded before patch `add-bonus`: the old branch, no activity.
    let history = [
        start(Sample::Signals),
        event(
            2,
            EventKind::SideEffectRecorded {
                seq: 1,
                value: json(7),
            },
        ),
        event(3, EventKind::TimerStarted { seq: 2, fire_at }),
    ];
    assert_eq!(replay(Sample::Signals, &history, 3), Ok(()));
    // A side effect recorded with a value of another type fails the workflow,
    // which the history does not record.
    let mut history = history.to_vec();
    history[1].kind = EventKind::SideEffectRecorded {
        seq: 1,
        value: json("seven"),
    };
    assert!(diverged(replay(Sample::Signals, &history, 3)));
}
