//! Any event history, replayed through a sample workflow as the engine does
//! (a stored prefix, then events fed live): the run ends running, or parked
//! with a typed reason (nondeterminism, unrunnable history); never a panic,
//! a hang, or a replay that differs the second time. Recorded histories must
//! replay to the live run's state.
//!
//! `cargo fuzz run replay`

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use steadfast::fuzzing;

fuzz_target!(|input: common::ReplayInput| {
    let (sample, history, live_from) = input.build();
    let _ = fuzzing::replay(sample, &history, live_from);
});
