//! A segment's matches kept as the bitsets whose intersection they are.

use std::sync::Arc;

use super::bits::Bits;

/// A bitset of the cache's, or one made for this query.
pub(super) enum Evaluated {
    Shared(Arc<Bits>),
    Owned(Bits),
}

impl Evaluated {
    pub(super) fn as_bits(&self) -> &Bits {
        match self {
            Evaluated::Shared(bits) => bits,
            Evaluated::Owned(bits) => bits,
        }
    }

    pub(super) fn into_owned(self) -> Bits {
        match self {
            Evaluated::Shared(bits) => Arc::unwrap_or_clone(bits),
            Evaluated::Owned(bits) => bits,
        }
    }
}

/// Words intersected at a time when counting: small enough to stay in the core's first-level
/// cache.
const CHUNK_WORDS: usize = 256;

/// The documents in every one of several bitsets of one segment. Nothing is combined up
/// front: the count reads each bitset once, a chunk at a time, and a block's word is
/// intersected when asked for, which a time-ordered page does for a few blocks.
pub struct Matches {
    first: Evaluated,
    rest: Vec<Evaluated>,
}

impl Matches {
    /// The documents of `first`, until more parts are added.
    pub(super) fn new(first: Evaluated) -> Matches {
        Matches {
            first,
            rest: Vec::new(),
        }
    }

    pub(super) fn and(&mut self, part: Evaluated) {
        debug_assert_eq!(part.as_bits().max_doc(), self.first.as_bits().max_doc());
        self.rest.push(part);
    }

    /// Keeps only the documents also in `bits` (a set of the same segment).
    pub fn and_shared(&mut self, bits: Arc<Bits>) {
        self.and(Evaluated::Shared(bits));
    }

    /// Number of 64-document blocks.
    pub fn blocks(&self) -> usize {
        self.first.as_bits().blocks()
    }

    /// The matching documents of block `block` (documents `64 * block ..`), as a word.
    pub fn block(&self, block: usize) -> u64 {
        self.rest
            .iter()
            .fold(self.first.as_bits().block(block), |word, part| {
                word & part.as_bits().block(block)
            })
    }

    /// Number of matching documents.
    pub fn count(&self) -> u64 {
        let first = self.first.as_bits();
        if self.rest.is_empty() {
            return first.count();
        }
        let mut chunk = [0u64; CHUNK_WORDS];
        let mut total = 0;
        for (index, words) in first.words().chunks(CHUNK_WORDS).enumerate() {
            let start = index * CHUNK_WORDS;
            let chunk = &mut chunk[..words.len()];
            chunk.copy_from_slice(words);
            for part in &self.rest {
                let other = &part.as_bits().words()[start..start + words.len()];
                for (word, other) in chunk.iter_mut().zip(other) {
                    *word &= other;
                }
            }
            total += chunk
                .iter()
                .map(|word| u64::from(word.count_ones()))
                .sum::<u64>();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(max_doc: u32, every: u32, offset: u32) -> Bits {
        let mut bits = Bits::empty(max_doc);
        for doc in (offset..max_doc).step_by(every as usize) {
            bits.insert(doc);
        }
        bits
    }

    #[test]
    fn counts_and_blocks_equal_the_combined_bitset_across_chunk_boundaries() {
        // Sizes around one and several chunks, and a last word that is partly past the end.
        for max_doc in [0, 1, 63, 64, 65, 16_383, 16_384, 16_385, 40_000, 100_003] {
            let parts = [set(max_doc, 3, 0), set(max_doc, 5, 1), set(max_doc, 7, 2)];
            for used in 0..=parts.len() {
                // The whole segment first: with no other part, the matches are every document.
                let mut matches = Matches::new(Evaluated::Owned(Bits::full(max_doc)));
                let mut combined = Bits::full(max_doc);
                for part in &parts[..used] {
                    matches.and(Evaluated::Owned(part.clone()));
                    combined.and_with(part);
                }
                assert_eq!(
                    matches.count(),
                    combined.count(),
                    "{max_doc} docs, {used} parts"
                );
                assert_eq!(matches.blocks(), combined.blocks());
                for block in 0..combined.blocks() + 1 {
                    assert_eq!(matches.block(block), combined.block(block));
                }
            }
        }
    }
}
