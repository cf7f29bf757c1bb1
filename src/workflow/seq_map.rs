//! Maps keyed by a command's sequence number, with a hasher made for them.
//!
//! A replay looks up its results, wakers and children by seq once or twice
//! per event, and the standard library's SipHash, made to resist keys an
//! attacker picks, showed in profiles of a cold replay. Seqs are small
//! integers the code itself issues, not input an attacker picks, so a
//! multiplicative hash is enough.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by a command's sequence number.
pub(crate) type SeqMap<V> = HashMap<u32, V, BuildHasherDefault<SeqHasher>>;

/// Fibonacci hashing of a `u32` key: one multiplication, which spreads
/// consecutive seqs over the whole table (the high bits too, which the
/// table's control bytes use).
#[derive(Default)]
pub(crate) struct SeqHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `u32` keys; correct for any other all the same.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(GOLDEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seq_map_keeps_every_key_apart() {
        let mut map = SeqMap::default();
        for seq in 0..10_000u32 {
            map.insert(seq, seq * 2);
        }
        map.insert(u32::MAX, 7);
        assert_eq!(map.len(), 10_001);
        assert!((0..10_000u32).all(|seq| map.get(&seq) == Some(&(seq * 2))));
        assert_eq!(map.remove(&u32::MAX), Some(7));
        assert_eq!(map.get(&10_000), None);
    }
}
