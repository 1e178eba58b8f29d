//! A set of one segment's documents, one bit per document.

use tantivy::DocId;

/// Documents of a segment as bits: bit `doc % 64` of word `doc / 64`. Bits at or past the
/// segment's document count are never set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    max_doc: u32,
}

fn words_for(max_doc: u32) -> usize {
    (max_doc as usize).div_ceil(64)
}

impl Bits {
    /// No document of a segment of `max_doc` documents.
    pub fn empty(max_doc: u32) -> Bits {
        Bits {
            words: vec![0; words_for(max_doc)],
            max_doc,
        }
    }

    /// Every document of a segment of `max_doc` documents.
    pub fn full(max_doc: u32) -> Bits {
        let mut words = vec![u64::MAX; words_for(max_doc)];
        let tail = max_doc % 64;
        if let (Some(last), true) = (words.last_mut(), tail != 0) {
            *last = (1u64 << tail) - 1;
        }
        Bits { words, max_doc }
    }

    pub fn max_doc(&self) -> u32 {
        self.max_doc
    }

    /// Adds a document; ids at or past `max_doc` are ignored.
    pub fn insert(&mut self, doc: DocId) {
        if doc < self.max_doc {
            self.words[(doc / 64) as usize] |= 1 << (doc % 64);
        }
    }

    pub fn contains(&self, doc: DocId) -> bool {
        doc < self.max_doc && self.words[(doc / 64) as usize] & (1 << (doc % 64)) != 0
    }

    /// Keeps the documents also in `other` (a set of the same segment).
    pub fn and_with(&mut self, other: &Bits) {
        debug_assert_eq!(self.max_doc, other.max_doc);
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word &= other;
        }
    }

    /// Adds the documents of `other` (a set of the same segment).
    pub fn or_with(&mut self, other: &Bits) {
        debug_assert_eq!(self.max_doc, other.max_doc);
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word |= other;
        }
    }

    /// Removes the documents of `other` (a set of the same segment).
    pub fn and_not_with(&mut self, other: &Bits) {
        debug_assert_eq!(self.max_doc, other.max_doc);
        for (word, other) in self.words.iter_mut().zip(&other.words) {
            *word &= !other;
        }
    }

    /// Sets block `block` (documents `64 * block ..`) to `word`, bits past `max_doc` cleared.
    pub fn set_block(&mut self, block: usize, word: u64) {
        let Some(slot) = self.words.get_mut(block) else {
            return;
        };
        let first = block as u64 * 64;
        let present = u64::from(self.max_doc).saturating_sub(first);
        *slot = if present >= 64 {
            word
        } else {
            word & ((1u64 << present) - 1)
        };
    }

    /// Number of documents in the set.
    pub fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }

    /// The blocks' words, block 0 first.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Number of 64-document blocks.
    pub fn blocks(&self) -> usize {
        self.words.len()
    }

    /// The documents of block `block` (documents `64 * block ..`), as a word.
    pub fn block(&self, block: usize) -> u64 {
        self.words.get(block).copied().unwrap_or(0)
    }

    /// Memory held, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

/// The documents of a block's word, ascending, appended to `docs`.
pub fn block_docs(block: usize, mut word: u64, docs: &mut Vec<DocId>) {
    let base = (block as DocId) * 64;
    while word != 0 {
        docs.push(base + word.trailing_zeros());
        word &= word - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(max_doc: u32, docs: &[DocId]) -> Bits {
        let mut bits = Bits::empty(max_doc);
        for doc in docs {
            bits.insert(*doc);
        }
        bits
    }

    fn members(bits: &Bits) -> Vec<DocId> {
        let mut docs = Vec::new();
        for block in 0..bits.blocks() {
            block_docs(block, bits.block(block), &mut docs);
        }
        docs
    }

    #[test]
    fn a_full_set_holds_exactly_the_segments_documents() {
        for max_doc in [0, 1, 63, 64, 65, 130] {
            let full = Bits::full(max_doc);
            assert_eq!(full.count(), u64::from(max_doc), "max_doc {max_doc}");
            assert_eq!(members(&full), (0..max_doc).collect::<Vec<_>>());
            assert!(!full.contains(max_doc));
        }
    }

    #[test]
    fn set_operations_match_their_definitions() {
        let left = set(200, &[0, 5, 63, 64, 100, 199]);
        let right = set(200, &[5, 64, 101, 199]);
        let mut and = left.clone();
        and.and_with(&right);
        assert_eq!(members(&and), [5, 64, 199]);
        let mut or = left.clone();
        or.or_with(&right);
        assert_eq!(members(&or), [0, 5, 63, 64, 100, 101, 199]);
        let mut and_not = left.clone();
        and_not.and_not_with(&right);
        assert_eq!(members(&and_not), [0, 63, 100]);
        assert_eq!(or.count(), 7);
        assert!(left.contains(63) && !left.contains(62));
    }

    #[test]
    fn ids_past_the_segment_are_never_members() {
        let mut bits = Bits::empty(10);
        bits.insert(10);
        bits.insert(1_000);
        assert_eq!(bits.count(), 0);
        assert!(!bits.contains(1_000));
        assert_eq!(bits.block(99), 0);
        bits.set_block(0, u64::MAX);
        bits.set_block(1, u64::MAX);
        assert_eq!(members(&bits), (0..10).collect::<Vec<_>>());
    }
}
