//! One pass over the matches of a query: the total count, one page in the requested order
//! (search-after a cursor), term facets and a date histogram, under a time budget.
//!
//! Everything is read from fast fields (columns); stored documents are only read for the
//! page's hits afterwards. Within a segment, documents are ranked by (sort key, time, uid
//! ordinal) — uid ordinals follow the uids' byte order, so the ranking equals ranking by the
//! uid text — and segments' pages are merged by the uid text itself, looked up only where two
//! segments' hits tie on sort key and time (a uid look-up decompresses a dictionary block, so
//! doing it for every hit of every segment's page dominated the cost of a page).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Cardinality;
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{
    COLLECT_BLOCK_BUFFER_LEN, DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TERMINATED,
};
use tokio::time::Instant;

/// The order of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortSpec {
    TimeDesc,
    TimeAsc,
    SeverityDesc,
    Relevance,
}

/// Where the previous page ended, for time and severity orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCursor {
    /// Severity for SeverityDesc, 0 otherwise.
    pub primary: i64,
    /// Microseconds since the epoch.
    pub time: i64,
    pub uid: String,
}

/// A terms facet over a fast column.
#[derive(Debug, Clone)]
pub struct TermsFacet {
    /// Column name (a keyword field, or `fields.<Falco name>`).
    pub column: String,
    pub size: usize,
}

/// What to collect.
#[derive(Debug, Clone)]
pub struct SearchCollector {
    pub sort: SortSpec,
    /// Hits wanted on this page.
    pub limit: usize,
    /// Hits to skip (relevance order only).
    pub offset: usize,
    pub cursor: Option<SortCursor>,
    pub facets: Vec<TermsFacet>,
    /// Date histogram bucket width in microseconds.
    pub histogram_interval_micros: Option<i64>,
    pub max_histogram_buckets: usize,
    pub deadline: Instant,
}

/// One hit of the page.
#[derive(Debug, Clone)]
pub struct CollectedHit {
    pub primary: i64,
    pub time: i64,
    pub uid: UidRef,
    pub score: Score,
    pub address: DocAddress,
}

/// A hit's uid, as its ordinal in its segment's uid column; the text is looked up on demand.
#[derive(Clone)]
pub struct UidRef {
    ordinal: u64,
    column: Option<StrColumn>,
}

impl std::fmt::Debug for UidRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.text())
    }
}

impl UidRef {
    /// The uid text; empty when the segment has no uid column or it cannot be read (which
    /// only affects the order of ties).
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(column) = &self.column {
            let _ = column.ord_to_str(self.ordinal, &mut text);
        }
        text
    }
}

impl CollectedHit {
    /// Order by (sort key, time, uid) ascending; uids of the same segment compare by ordinal.
    fn key_cmp(&self, other: &CollectedHit) -> Ordering {
        (self.primary, self.time)
            .cmp(&(other.primary, other.time))
            .then_with(|| {
                if self.address.segment_ord == other.address.segment_ord {
                    self.uid.ordinal.cmp(&other.uid.ordinal)
                } else {
                    self.uid.text().cmp(&other.uid.text())
                }
            })
    }
}

/// What a search collected.
#[derive(Debug, Default)]
pub struct Collected {
    pub count: u64,
    /// Matches after the cursor (all matches without one).
    pub after_cursor_count: u64,
    pub hits: Vec<CollectedHit>,
    /// Per facet, value -> count, every value.
    pub facets: Vec<HashMap<String, u64>>,
    /// Bucket (start / interval) -> count.
    pub histogram: BTreeMap<i64, u64>,
    pub timed_out: bool,
    pub too_many_buckets: bool,
}

/// Blocks of documents between two looks at the clock (1,024 documents).
const DEADLINE_CHECK_EVERY_BLOCKS: u32 = 16;

/// Maps an i64 onto u64 keeping its order.
fn ordered(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

impl SearchCollector {
    fn kept(&self) -> usize {
        match self.sort {
            SortSpec::Relevance => self.offset + self.limit,
            _ => self.limit,
        }
    }

    fn compare_hits(&self, left: &CollectedHit, right: &CollectedHit) -> Ordering {
        let by_key = |left: &CollectedHit, right: &CollectedHit| left.key_cmp(right);
        match self.sort {
            // Best first.
            SortSpec::TimeDesc | SortSpec::SeverityDesc => by_key(right, left),
            SortSpec::TimeAsc => by_key(left, right),
            SortSpec::Relevance => right
                .score
                .total_cmp(&left.score)
                .then_with(|| by_key(right, left)),
        }
    }
}

/// The columns a page is ranked by, opened once per segment (opening one reads the segment's
/// column directory, so callers that query a segment often keep them).
#[derive(Clone)]
pub struct SegmentColumns {
    pub time: tantivy::columnar::Column<tantivy::DateTime>,
    pub severity: tantivy::columnar::Column<u64>,
    pub uid: Option<StrColumn>,
}

impl SegmentColumns {
    pub fn open(reader: &SegmentReader) -> tantivy::Result<SegmentColumns> {
        let fast_fields = reader.fast_fields();
        Ok(SegmentColumns {
            time: fast_fields.date("time")?,
            severity: fast_fields.u64("severity")?,
            uid: fast_fields.str("uid")?,
        })
    }
}

impl SearchCollector {
    /// Whether a page of this request is decided by time and the matches alone: sorted by
    /// time, with no histogram to count (terms facets count the matches, whatever the page).
    pub fn pages_by_time_only(&self) -> bool {
        matches!(self.sort, SortSpec::TimeDesc | SortSpec::TimeAsc)
            && self.histogram_interval_micros.is_none()
    }

    /// The facets' columns of a segment, each with a zero count per value.
    pub(crate) fn facet_columns(
        &self,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<(Option<StrColumn>, Vec<u64>)>> {
        let mut facet_columns = Vec::with_capacity(self.facets.len());
        for facet in &self.facets {
            let column = reader.fast_fields().str(&facet.column)?;
            let counts = vec![
                0u64;
                column
                    .as_ref()
                    .map_or(0, |column| column.dictionary().num_terms())
            ];
            facet_columns.push((column, counts));
        }
        Ok(facet_columns)
    }

    /// The per-segment collector over already opened columns.
    pub(crate) fn segment_collector(
        &self,
        segment_ordinal: SegmentOrdinal,
        columns: &SegmentColumns,
        facet_columns: Vec<(Option<StrColumn>, Vec<u64>)>,
    ) -> tantivy::Result<SegmentSearchCollector> {
        let cursor_uid_bound = match (&self.cursor, &columns.uid) {
            (Some(cursor), Some(column)) => {
                Some(match column.dictionary().term_ord_or_next(&cursor.uid)? {
                    tantivy::columnar::TermOrdHit::Exact(ordinal) => (ordinal, true),
                    tantivy::columnar::TermOrdHit::Next(ordinal) => (ordinal, false),
                })
            }
            _ => None,
        };
        Ok(SegmentSearchCollector {
            spec: self.clone(),
            segment_ordinal,
            time: columns.time.clone(),
            severity: columns.severity.clone(),
            uid: columns.uid.clone(),
            cursor_uid_bound,
            best: BestHits::new(self.kept()),
            count: 0,
            after_cursor_count: 0,
            facet_columns,
            histogram: BTreeMap::new(),
            timed_out: false,
            too_many_buckets: false,
        })
    }
}

impl Collector for SearchCollector {
    type Fruit = Collected;
    type Child = SegmentSearchCollector;

    fn for_segment(
        &self,
        segment_ordinal: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSearchCollector> {
        let columns = SegmentColumns::open(reader)?;
        let facet_columns = self.facet_columns(reader)?;
        self.segment_collector(segment_ordinal, &columns, facet_columns)
    }

    fn requires_scoring(&self) -> bool {
        self.sort == SortSpec::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        let mut merged = Collected {
            facets: vec![HashMap::new(); self.facets.len()],
            ..Collected::default()
        };
        for fruit in fruits {
            merged.count += fruit.count;
            merged.after_cursor_count += fruit.after_cursor_count;
            merged.hits.extend(fruit.hits);
            for (total, part) in merged.facets.iter_mut().zip(fruit.facets) {
                for (value, count) in part {
                    *total.entry(value).or_default() += count;
                }
            }
            for (bucket, count) in fruit.histogram {
                *merged.histogram.entry(bucket).or_default() += count;
            }
            merged.timed_out |= fruit.timed_out;
            merged.too_many_buckets |= fruit.too_many_buckets;
        }
        merged
            .hits
            .sort_by(|left, right| self.compare_hits(left, right));
        let skip = if self.sort == SortSpec::Relevance {
            self.offset
        } else {
            0
        };
        merged.hits = merged
            .hits
            .into_iter()
            .skip(skip)
            .take(self.limit)
            .collect();
        if merged.histogram.len() > self.max_histogram_buckets {
            merged.too_many_buckets = true;
        }
        Ok(merged)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ordinal: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Collected> {
        let mut collector = self.for_segment(segment_ordinal, reader)?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let scoring = self.requires_scoring();
        let mut docs = [0 as DocId; COLLECT_BLOCK_BUFFER_LEN];
        let mut scores = [0.0 as Score; COLLECT_BLOCK_BUFFER_LEN];
        let mut blocks_since_check = 0u32;
        loop {
            // Without scores the scorer fills the block itself (no virtual call per document);
            // with them, each document's score is read as it is passed.
            let filled = if scoring {
                let mut filled = 0;
                let mut doc = scorer.doc();
                while doc != TERMINATED && filled < COLLECT_BLOCK_BUFFER_LEN {
                    docs[filled] = doc;
                    scores[filled] = scorer.score();
                    filled += 1;
                    doc = scorer.advance();
                }
                filled
            } else {
                scorer.fill_buffer(&mut docs)
            };
            if filled == 0 {
                break;
            }
            let kept = match alive {
                None => filled,
                Some(bitset) => {
                    let mut kept = 0;
                    for position in 0..filled {
                        if bitset.is_alive(docs[position]) {
                            docs[kept] = docs[position];
                            scores[kept] = scores[position];
                            kept += 1;
                        }
                    }
                    kept
                }
            };
            collector.collect_block(&docs[..kept], &scores[..kept]);
            blocks_since_check += 1;
            if blocks_since_check == DEADLINE_CHECK_EVERY_BLOCKS {
                blocks_since_check = 0;
                if Instant::now() > self.deadline {
                    collector.timed_out = true;
                    break;
                }
            }
        }
        Ok(collector.harvest())
    }
}

/// Rank within a segment: smaller is better.
type Rank = (u64, u64, u64);

/// The per-segment side of [`SearchCollector`].
pub struct SegmentSearchCollector {
    spec: SearchCollector,
    segment_ordinal: SegmentOrdinal,
    time: tantivy::columnar::Column<tantivy::DateTime>,
    severity: tantivy::columnar::Column<u64>,
    uid: Option<StrColumn>,
    /// The cursor's uid as an ordinal of this segment: (ordinal, whether it is the uid itself
    /// or the next one after it).
    cursor_uid_bound: Option<(u64, bool)>,
    best: BestHits,
    count: u64,
    after_cursor_count: u64,
    facet_columns: Vec<(Option<StrColumn>, Vec<u64>)>,
    histogram: BTreeMap<i64, u64>,
    timed_out: bool,
    too_many_buckets: bool,
}

impl SegmentSearchCollector {
    fn uid_ordinal(&self, doc: DocId) -> u64 {
        self.uid
            .as_ref()
            .and_then(|column| column.term_ords(doc).next())
            .unwrap_or(0)
    }

    /// Whether a document with this key comes after the cursor in the page order.
    fn after_cursor(&self, primary: i64, time: i64, doc: DocId) -> bool {
        let Some(cursor) = &self.spec.cursor else {
            return true;
        };
        let descending = self.spec.sort != SortSpec::TimeAsc;
        let key_order = (primary, time).cmp(&(cursor.primary, cursor.time));
        match (key_order, descending) {
            (Ordering::Less, true) | (Ordering::Greater, false) => true,
            (Ordering::Greater, true) | (Ordering::Less, false) => false,
            (Ordering::Equal, _) => {
                let ordinal = self.uid_ordinal(doc);
                match (self.cursor_uid_bound, descending) {
                    // No uid column in this segment: no document here shares the cursor's uid.
                    (None, _) => true,
                    (Some((bound, _)), true) => ordinal < bound,
                    (Some((bound, exact)), false) => {
                        if exact {
                            ordinal > bound
                        } else {
                            ordinal >= bound
                        }
                    }
                }
            }
        }
    }

    fn rank(&self, primary: i64, time: i64, score: Score, ordinal: u64) -> Rank {
        match self.spec.sort {
            SortSpec::TimeDesc | SortSpec::SeverityDesc => {
                (!ordered(primary), !ordered(time), !ordinal)
            }
            SortSpec::TimeAsc => (ordered(primary), ordered(time), ordinal),
            SortSpec::Relevance => (
                !u64::from(score.max(0.0).to_bits()),
                !ordered(time),
                !ordinal,
            ),
        }
    }
}

impl SegmentSearchCollector {
    /// Facets count every match, wherever the page is. Single-valued columns are read a block
    /// at a time; multi-valued ones (tags, techniques) document by document.
    pub(crate) fn count_facets_block(&mut self, docs: &[DocId]) {
        let mut ordinals = [None; COLLECT_BLOCK_BUFFER_LEN];
        for (column, counts) in &mut self.facet_columns {
            let Some(column) = column else {
                continue;
            };
            let column_ordinals = column.ords();
            if column_ordinals.get_cardinality() == Cardinality::Multivalued {
                for doc in docs {
                    for ordinal in column.term_ords(*doc) {
                        if let Some(count) = counts.get_mut(ordinal as usize) {
                            *count += 1;
                        }
                    }
                }
                continue;
            }
            let block_ordinals = &mut ordinals[..docs.len()];
            block_ordinals.fill(None);
            column_ordinals.first_vals(docs, block_ordinals);
            for ordinal in block_ordinals.iter().flatten() {
                if let Some(count) = counts.get_mut(*ordinal as usize) {
                    *count += 1;
                }
            }
        }
    }

    fn count_histogram(&mut self, time: i64) {
        let Some(interval) = self.spec.histogram_interval_micros else {
            return;
        };
        let bucket = time.div_euclid(interval);
        if self.histogram.len() < self.spec.max_histogram_buckets
            || self.histogram.contains_key(&bucket)
        {
            *self.histogram.entry(bucket).or_default() += 1;
        } else {
            self.too_many_buckets = true;
        }
    }

    /// Counts, facets and ranks a block of live matching documents (ascending ids; `scores`
    /// is as long as `docs`, zeros when the order is not by relevance).
    fn collect_block(&mut self, docs: &[DocId], scores: &[Score]) {
        self.count += docs.len() as u64;
        self.count_facets_block(docs);
        self.rank_block(docs, scores);
    }

    /// Offers a block of live matching documents (ascending ids) to the page and the
    /// histogram, and counts those after the cursor; the total and the facets are not counted.
    pub(crate) fn rank_block(&mut self, docs: &[DocId], scores: &[Score]) {
        debug_assert_eq!(docs.len(), scores.len());
        debug_assert!(docs.len() <= COLLECT_BLOCK_BUFFER_LEN);
        let mut times = [None; COLLECT_BLOCK_BUFFER_LEN];
        self.time.first_vals(docs, &mut times[..docs.len()]);
        let mut severities = [None; COLLECT_BLOCK_BUFFER_LEN];
        if self.spec.sort == SortSpec::SeverityDesc {
            self.severity
                .first_vals(docs, &mut severities[..docs.len()]);
        }
        for (position, (doc, score)) in docs.iter().zip(scores).enumerate() {
            let time = times[position].map_or(0, tantivy::DateTime::into_timestamp_micros);
            let primary = severities[position].map_or(0, |rank| rank as i64);
            self.count_histogram(time);
            self.rank_hit(*doc, *score, primary, time);
        }
    }

    /// Whether a document of this time could still enter the page, for time orders: false
    /// once the page holds enough documents that are all better than any of that time.
    pub(crate) fn time_could_enter(&self, time: i64) -> bool {
        self.best.wanted > 0 && self.best.could_enter(self.rank(0, time, 0.0, u64::MAX))
    }

    /// Whether a document of this time comes after the cursor in a time order (true without a
    /// cursor).
    pub(crate) fn time_after_cursor(&self, time: i64, doc: DocId) -> bool {
        self.after_cursor(0, time, doc)
    }

    /// The segment's result with counts taken elsewhere (the page and the candidates come
    /// from what was ranked).
    pub(crate) fn harvest_counted(mut self, count: u64, after_cursor_count: u64) -> Collected {
        self.count = count;
        self.after_cursor_count = after_cursor_count;
        self.harvest()
    }

    /// Keeps the document among the page's candidates if it is after the cursor and could be
    /// among the best.
    fn rank_hit(&mut self, doc: DocId, score: Score, primary: i64, time: i64) {
        if self.spec.cursor.is_some() && !self.after_cursor(primary, time, doc) {
            return;
        }
        self.after_cursor_count += 1;
        if self.best.wanted == 0 {
            return;
        }
        let partial = self.rank(primary, time, score, u64::MAX);
        if !self.best.could_enter(partial) {
            return;
        }
        let rank = self.rank(primary, time, score, self.uid_ordinal(doc));
        self.best.offer((rank, doc, primary, time, score.to_bits()));
    }
}

/// A candidate hit: rank, document, sort key, time and score (as its bit pattern; scores are
/// never negative).
type Candidate = (Rank, DocId, i64, i64, u32);

/// The best `wanted` hits of a segment. Candidates are appended; whenever twice as many as
/// wanted have gathered, the worse half is dropped and the worst kept becomes the bar a new
/// candidate must beat. Alerts are indexed roughly in time order, so for newest-first pages
/// almost every document beats the bar when it arrives; appending and halving costs O(1) per
/// document on average where a binary heap paid a pop and a push for each.
struct BestHits {
    wanted: usize,
    candidates: Vec<Candidate>,
    /// The worst rank kept at the last halving.
    bar: Option<Rank>,
}

impl BestHits {
    fn new(wanted: usize) -> BestHits {
        BestHits {
            wanted,
            candidates: Vec::with_capacity(wanted.saturating_mul(2).min(4_096)),
            bar: None,
        }
    }

    /// Whether a document whose rank starts with `partial` (sort key and time) may beat the bar.
    fn could_enter(&self, partial: Rank) -> bool {
        self.bar
            .is_none_or(|bar| (partial.0, partial.1) <= (bar.0, bar.1))
    }

    fn offer(&mut self, candidate: Candidate) {
        if self.bar.is_some_and(|bar| candidate.0 >= bar) {
            return;
        }
        self.candidates.push(candidate);
        if self.candidates.len() >= self.wanted.saturating_mul(2) {
            self.halve();
        }
    }

    fn halve(&mut self) {
        let Some(last_kept) = self.wanted.checked_sub(1) else {
            self.candidates.clear();
            return;
        };
        if self.candidates.len() <= self.wanted {
            return;
        }
        self.candidates
            .select_nth_unstable_by(last_kept, |left, right| left.0.cmp(&right.0));
        self.candidates.truncate(self.wanted);
        self.bar = Some(self.candidates[last_kept].0);
    }

    /// The kept candidates, best first.
    fn into_best(mut self) -> Vec<Candidate> {
        self.candidates
            .sort_unstable_by_key(|candidate| candidate.0);
        self.candidates.truncate(self.wanted);
        self.candidates
    }
}

impl SegmentCollector for SegmentSearchCollector {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.collect_block(&[doc], &[score]);
    }

    fn harvest(mut self) -> Collected {
        let best = std::mem::replace(&mut self.best, BestHits::new(0)).into_best();
        let mut hits = Vec::with_capacity(best.len());
        for (_, doc, primary, time, score) in &best {
            hits.push(CollectedHit {
                primary: *primary,
                time: *time,
                uid: UidRef {
                    ordinal: self.uid_ordinal(*doc),
                    column: self.uid.clone(),
                },
                score: Score::from_bits(*score),
                address: DocAddress::new(self.segment_ordinal, *doc),
            });
        }
        let mut facets = Vec::with_capacity(self.facet_columns.len());
        for (column, counts) in &self.facet_columns {
            let mut values = HashMap::new();
            if let Some(column) = column {
                for (ordinal, count) in counts.iter().enumerate() {
                    if *count == 0 {
                        continue;
                    }
                    let mut value = String::new();
                    if column
                        .ord_to_str(ordinal as u64, &mut value)
                        .unwrap_or(false)
                    {
                        values.insert(value, *count);
                    }
                }
            }
            facets.push(values);
        }
        Collected {
            count: self.count,
            after_cursor_count: self.after_cursor_count,
            hits,
            facets,
            histogram: self.histogram,
            timed_out: self.timed_out,
            too_many_buckets: self.too_many_buckets,
        }
    }
}
