//! Any bytes, as every persisted record type (`Event`, the run record):
//! a value that survives a round trip through the codec, or a `CodecError`,
//! never a panic.
//!
//! `cargo fuzz run decode_record`

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use steadfast::fuzzing;

fuzz_target!(|data: &[u8]| {
    // The bytes as they are.
    fuzzing::decode_record(data);
    // The bytes as edits of a valid record, to get past the format byte and
    // the outer structure quickly without a seed corpus.
    if let Some(patched) = common::patch_seed_record(data) {
        fuzzing::decode_record(&patched);
    }
});
