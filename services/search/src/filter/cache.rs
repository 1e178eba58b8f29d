//! Bitsets of terms and time summaries of segments, kept between queries within a memory
//! budget.
//!
//! Segments never change once written (deletions live in a separate bitset, keyed here by
//! their opstamp), so what is derived from a segment stays true for as long as the segment
//! exists. Entries of merged-away segments are simply never used again and leave as the
//! least recently used. Two threads missing the same entry both build it; the second insert
//! replaces the first, which costs work, never correctness.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::index::SegmentId;
use tantivy::schema::IndexRecordOption;
use tantivy::{
    COLLECT_BLOCK_BUFFER_LEN, DocId, DocSet, Opstamp, SearcherGeneration, SegmentReader, Term,
    Warmer,
};

use super::bits::Bits;
use crate::collector::SegmentColumns;
use crate::metrics::METRICS;
use crate::query::confine::segment_holds_only;
use crate::query::time_range::TimeRangeQuery;

/// The earliest and latest time of each 64-document block of a segment, with the blocks in
/// the orders a time-sorted page visits them.
pub struct SegmentTimes {
    pub columns: SegmentColumns,
    /// Per block, the earliest time (microseconds) of its documents, deleted ones included.
    pub earliest: Vec<i64>,
    /// Per block, the latest time of its documents.
    pub latest: Vec<i64>,
    /// Blocks by their latest time, latest first.
    pub newest_first: Vec<u32>,
    /// Blocks by their earliest time, earliest first.
    pub oldest_first: Vec<u32>,
    /// Per block, whether every document of it has a time (documents always get one; a block
    /// where one lacks it is only ever judged document by document).
    pub all_timed: Vec<bool>,
}

impl SegmentTimes {
    fn build(reader: &SegmentReader) -> tantivy::Result<SegmentTimes> {
        let columns = SegmentColumns::open(reader)?;
        let max_doc = reader.max_doc();
        let blocks = (max_doc as usize).div_ceil(64);
        let mut earliest = Vec::with_capacity(blocks);
        let mut latest = Vec::with_capacity(blocks);
        let mut all_timed = Vec::with_capacity(blocks);
        let mut docs = [0 as DocId; 64];
        let mut times = [None; 64];
        for block in 0..blocks {
            let first = block as DocId * 64;
            let len = (max_doc - first).min(64) as usize;
            for (offset, doc) in docs[..len].iter_mut().enumerate() {
                *doc = first + offset as DocId;
            }
            columns.time.first_vals(&docs[..len], &mut times[..len]);
            all_timed.push(times[..len].iter().all(Option::is_some));
            // A document without a time ranks as time 0, as the collector ranks it.
            let micros = times[..len]
                .iter()
                .map(|time| time.map_or(0, tantivy::DateTime::into_timestamp_micros));
            let (low, high) = micros.fold((i64::MAX, i64::MIN), |(low, high), time| {
                (low.min(time), high.max(time))
            });
            earliest.push(low);
            latest.push(high);
        }
        let mut newest_first: Vec<u32> = (0..blocks as u32).collect();
        newest_first.sort_unstable_by_key(|block| std::cmp::Reverse(latest[*block as usize]));
        let mut oldest_first: Vec<u32> = (0..blocks as u32).collect();
        oldest_first.sort_unstable_by_key(|block| earliest[*block as usize]);
        Ok(SegmentTimes {
            columns,
            earliest,
            latest,
            newest_first,
            oldest_first,
            all_timed,
        })
    }

    fn heap_bytes(&self) -> usize {
        self.earliest.len() * (8 + 8 + 4 + 4 + 1)
    }

    /// The segment's documents whose time lies in `range`, deleted ones included: blocks whose
    /// whole time span lies inside or outside the range are decided at once.
    pub fn within(&self, max_doc: u32, range: &TimeRangeQuery) -> Bits {
        let mut bits = Bits::empty(max_doc);
        let nanos = |micros: i64| micros.saturating_mul(1_000);
        for block in 0..self.earliest.len() {
            let (earliest, latest) = (nanos(self.earliest[block]), nanos(self.latest[block]));
            if self.all_timed[block] {
                if range.contains(earliest) && range.contains(latest) {
                    bits.set_block(block, u64::MAX);
                    continue;
                }
                if range.is_after(latest) || range.is_before(earliest) {
                    continue;
                }
            }
            let first = block as DocId * 64;
            for doc in first..(first + 64).min(max_doc) {
                let time = self.columns.time.first(doc);
                if time.is_some_and(|time| range.contains(time.into_timestamp_nanos())) {
                    bits.insert(doc);
                }
            }
        }
        bits
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Term(SegmentId, Term),
    Alive(SegmentId, Option<Opstamp>),
    Times(SegmentId),
}

impl CacheKey {
    fn segment(&self) -> &SegmentId {
        match self {
            CacheKey::Term(segment, _) | CacheKey::Alive(segment, _) | CacheKey::Times(segment) => {
                segment
            }
        }
    }
}

#[derive(Clone)]
enum Cached {
    Bits(Arc<Bits>),
    Times(Arc<SegmentTimes>),
}

struct Entry {
    value: Cached,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<CacheKey, Entry>,
    used_bytes: usize,
    clock: u64,
}

/// What the bitset path derives from segments, bounded by a budget in bytes.
pub struct FilterCache {
    budget_bytes: usize,
    state: Mutex<CacheState>,
}

impl FilterCache {
    /// A cache holding at most `budget_bytes` of derived data (0: nothing is kept).
    pub fn new(budget_bytes: usize) -> FilterCache {
        FilterCache {
            budget_bytes,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// Bytes held now.
    pub fn used_bytes(&self) -> usize {
        self.lock().used_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state stays consistent at every step, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, key: &CacheKey) -> Option<Cached> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(key)?;
        entry.last_used = now;
        Some(entry.value.clone())
    }

    fn insert(&self, key: CacheKey, value: Cached, bytes: usize) {
        if bytes > self.budget_bytes {
            return;
        }
        let mut state = self.lock();
        state.clock += 1;
        let last_used = state.clock;
        if let Some(replaced) = state.entries.insert(
            key,
            Entry {
                value,
                bytes,
                last_used,
            },
        ) {
            state.used_bytes -= replaced.bytes;
        }
        state.used_bytes += bytes;
        if state.used_bytes > self.budget_bytes {
            let mut by_age: Vec<(u64, CacheKey)> = state
                .entries
                .iter()
                .map(|(key, entry)| (entry.last_used, key.clone()))
                .collect();
            by_age.sort_unstable_by_key(|(last_used, _)| *last_used);
            for (_, key) in by_age {
                if state.used_bytes <= self.budget_bytes {
                    break;
                }
                if let Some(evicted) = state.entries.remove(&key) {
                    state.used_bytes -= evicted.bytes;
                }
            }
        }
        METRICS.filter_cache_bytes.set(state.used_bytes as i64);
    }

    fn bits(
        &self,
        key: CacheKey,
        build: impl FnOnce() -> tantivy::Result<Bits>,
    ) -> tantivy::Result<Arc<Bits>> {
        if let Some(Cached::Bits(bits)) = self.lookup(&key) {
            METRICS.filter_cache_hits.inc();
            return Ok(bits);
        }
        METRICS.filter_cache_misses.inc();
        let bits = Arc::new(build()?);
        self.insert(key, Cached::Bits(bits.clone()), bits.heap_bytes());
        Ok(bits)
    }

    /// The segment's documents holding `term`, deleted ones included.
    pub fn term_bits(&self, reader: &SegmentReader, term: &Term) -> tantivy::Result<Arc<Bits>> {
        self.bits(CacheKey::Term(reader.segment_id(), term.clone()), || {
            term_bits(reader, term)
        })
    }

    /// The segment's live documents, or None when none is deleted.
    pub fn alive_bits(&self, reader: &SegmentReader) -> tantivy::Result<Option<Arc<Bits>>> {
        let Some(alive) = reader.alive_bitset() else {
            return Ok(None);
        };
        let key = CacheKey::Alive(reader.segment_id(), reader.delete_opstamp());
        self.bits(key, || {
            let mut bits = Bits::empty(reader.max_doc());
            for doc in alive.iter_alive() {
                bits.insert(doc);
            }
            Ok(bits)
        })
        .map(Some)
    }

    /// The time summary of the segment, with its ranking columns.
    pub fn segment_times(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentTimes>> {
        let key = CacheKey::Times(reader.segment_id());
        if let Some(Cached::Times(times)) = self.lookup(&key) {
            METRICS.filter_cache_hits.inc();
            return Ok(times);
        }
        METRICS.filter_cache_misses.inc();
        let times = Arc::new(SegmentTimes::build(reader)?);
        self.insert(key, Cached::Times(times.clone()), times.heap_bytes());
        Ok(times)
    }
}

impl FilterCache {
    /// Whether everything [`collect_by_time`](super::collect_by_time) reads from the cache to
    /// answer `tenant AND filter` on `searcher`'s segments is held now (term bitsets, live
    /// documents, time summaries), so answering builds nothing. Entries may still be evicted
    /// before they are read; then they are built as usual.
    pub fn holds_everything_for(
        &self,
        searcher: &tantivy::Searcher,
        filter: &super::Filter,
        tenant: &Term,
    ) -> tantivy::Result<bool> {
        let mut terms: Vec<&Term> = Vec::new();
        filter.visit_terms(&mut |term| terms.push(term));
        // Whether a segment holds only the tenant's documents is read from its term
        // dictionary, before the lock is taken.
        let mut keys = Vec::new();
        for reader in searcher.segment_readers() {
            if reader.max_doc() == 0 {
                continue;
            }
            let segment = reader.segment_id();
            keys.push(CacheKey::Times(segment));
            if reader.alive_bitset().is_some() {
                keys.push(CacheKey::Alive(segment, reader.delete_opstamp()));
            }
            if !segment_holds_only(tenant, reader)? {
                keys.push(CacheKey::Term(segment, tenant.clone()));
            }
            for term in &terms {
                keys.push(CacheKey::Term(segment, (*term).clone()));
            }
        }
        let state = self.lock();
        Ok(keys.iter().all(|key| state.entries.contains_key(key)))
    }
}

/// Terms of the most recent queries that a new segment gets bitsets for before it is searched.
const WARMED_TERMS: usize = 32;

impl FilterCache {
    /// The distinct terms of the most recently used term bitsets, most recent first.
    fn recent_terms(&self, most: usize) -> Vec<Term> {
        let state = self.lock();
        let mut used: Vec<(u64, &Term)> = state
            .entries
            .iter()
            .filter_map(|(key, entry)| match key {
                CacheKey::Term(_, term) => Some((entry.last_used, term)),
                _ => None,
            })
            .collect();
        used.sort_unstable_by_key(|(last_used, _)| std::cmp::Reverse(*last_used));
        let mut terms: Vec<Term> = Vec::with_capacity(most);
        for (_, term) in used {
            if terms.len() == most {
                break;
            }
            if !terms.contains(term) {
                terms.push(term.clone());
            }
        }
        terms
    }
}

/// A new searcher's segments get their time summary, live documents and the bitsets of the
/// recently queried terms before any query sees them (the first query after a merge would
/// otherwise build them for a large segment); entries of segments no live searcher holds are
/// dropped as soon as tantivy reports them gone.
impl Warmer for FilterCache {
    /// Best effort: a segment that cannot be warmed is logged and left to the first query
    /// (which reports the error to its caller); a reload, and so a commit becoming searchable,
    /// never fails because of warming.
    fn warm(&self, searcher: &tantivy::Searcher) -> tantivy::Result<()> {
        if self.budget_bytes == 0 {
            return Ok(());
        }
        let terms = self.recent_terms(WARMED_TERMS);
        for reader in searcher.segment_readers() {
            if reader.max_doc() == 0 {
                continue;
            }
            let warmed = self.segment_times(reader).and_then(|_| {
                self.alive_bits(reader)?;
                for term in &terms {
                    self.term_bits(reader, term)?;
                }
                Ok(())
            });
            if let Err(error) = warmed {
                tracing::warn!(segment = %reader.segment_id().uuid_string(), %error, "could not warm the filter cache for a segment");
            }
        }
        Ok(())
    }

    fn garbage_collect(&self, live_generations: &[&SearcherGeneration]) {
        let live: HashSet<SegmentId> = live_generations
            .iter()
            .flat_map(|generation| generation.segments().keys().copied())
            .collect();
        let mut state = self.lock();
        let mut freed = 0;
        state.entries.retain(|key, entry| {
            let keep = live.contains(key.segment());
            if !keep {
                freed += entry.bytes;
            }
            keep
        });
        state.used_bytes -= freed;
        METRICS.filter_cache_bytes.set(state.used_bytes as i64);
    }
}

/// The documents of a segment holding a term, read from its postings.
fn term_bits(reader: &SegmentReader, term: &Term) -> tantivy::Result<Bits> {
    let mut bits = Bits::empty(reader.max_doc());
    let inverted_index = reader.inverted_index(term.field())?;
    let Some(mut postings) = inverted_index.read_postings(term, IndexRecordOption::Basic)? else {
        return Ok(bits);
    };
    let mut docs = [0 as DocId; COLLECT_BLOCK_BUFFER_LEN];
    loop {
        let filled = postings.fill_buffer(&mut docs);
        if filled == 0 {
            break;
        }
        for doc in &docs[..filled] {
            bits.insert(*doc);
        }
    }
    Ok(bits)
}
