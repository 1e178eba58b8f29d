//! A fast hasher for the rule set's own tables (string sets of conditions, the event-type
//! index), looked up once or more per event with short strings. SipHash's resistance to
//! collision flooding protects tables that grow from untrusted input; these are built once
//! from the rules and only looked up with event values, so a crafted value can at worst land
//! in one of a fixed table's probe sequences and never degrade the table.

use std::hash::{BuildHasherDefault, Hasher};

/// Hashes eight bytes at a time: rotate, xor, multiply (the scheme of rustc's FxHasher).
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let remainder = chunks.remainder();
        if !remainder.is_empty() {
            let mut word = [0u8; 8];
            word[..remainder.len()].copy_from_slice(remainder);
            // the length tells "ab" from "ab\0"
            self.add(u64::from_le_bytes(word) ^ ((remainder.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`WordHasher`]s for `HashMap` and `HashSet`.
pub type WordHash = BuildHasherDefault<WordHasher>;

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sets_keyed_by_word_hash_find_exactly_their_members() {
        let members: Vec<String> = (0..500).map(|index| format!("/etc/file-{index}")).collect();
        let set: HashSet<String, WordHash> = members.iter().cloned().collect();
        assert!(members.iter().all(|member| set.contains(member.as_str())));
        for absent in [
            "",
            "/etc/file-",
            "/etc/file-500",
            "/etc/file-1\0",
            "/etc/file-10 ",
        ] {
            assert!(!set.contains(absent), "{absent:?}");
        }
    }
}
