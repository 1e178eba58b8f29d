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
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TERMINATED};
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

/// Docs between two looks at the clock.
const DEADLINE_CHECK_EVERY: u32 = 1024;

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

impl Collector for SearchCollector {
    type Fruit = Collected;
    type Child = SegmentSearchCollector;

    fn for_segment(
        &self,
        segment_ordinal: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSearchCollector> {
        let fast_fields = reader.fast_fields();
        let time = fast_fields.date("time")?;
        let severity = fast_fields.u64("severity")?;
        let uid = fast_fields.str("uid")?;
        let cursor_uid_bound = match (&self.cursor, &uid) {
            (Some(cursor), Some(column)) => {
                Some(match column.dictionary().term_ord_or_next(&cursor.uid)? {
                    tantivy::columnar::TermOrdHit::Exact(ordinal) => (ordinal, true),
                    tantivy::columnar::TermOrdHit::Next(ordinal) => (ordinal, false),
                })
            }
            _ => None,
        };
        let mut facet_columns = Vec::with_capacity(self.facets.len());
        for facet in &self.facets {
            let column = fast_fields.str(&facet.column)?;
            let counts = vec![
                0u64;
                column
                    .as_ref()
                    .map_or(0, |column| column.dictionary().num_terms())
            ];
            facet_columns.push((column, counts));
        }
        Ok(SegmentSearchCollector {
            spec: self.clone(),
            segment_ordinal,
            time,
            severity,
            uid,
            cursor_uid_bound,
            heap: BinaryHeap::new(),
            count: 0,
            after_cursor_count: 0,
            facet_columns,
            histogram: BTreeMap::new(),
            timed_out: false,
            too_many_buckets: false,
        })
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
        let mut since_check = 0u32;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bitset| bitset.is_alive(doc)) {
                let score = if scoring { scorer.score() } else { 0.0 };
                collector.collect(doc, score);
            }
            since_check += 1;
            if since_check == DEADLINE_CHECK_EVERY {
                since_check = 0;
                if Instant::now() > self.deadline {
                    collector.timed_out = true;
                    break;
                }
            }
            doc = scorer.advance();
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
    /// The best hits so far, worst on top; scores as their bit patterns (they are never negative).
    heap: BinaryHeap<(Rank, DocId, i64, i64, u32)>,
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
    /// Facets and the histogram count every match, wherever the page is.
    fn count_facets(&mut self, doc: DocId, time: i64) {
        for (column, counts) in &mut self.facet_columns {
            if let Some(column) = column {
                for ordinal in column.term_ords(doc) {
                    if let Some(count) = counts.get_mut(ordinal as usize) {
                        *count += 1;
                    }
                }
            }
        }
        if let Some(interval) = self.spec.histogram_interval_micros {
            let bucket = time.div_euclid(interval);
            if self.histogram.len() < self.spec.max_histogram_buckets
                || self.histogram.contains_key(&bucket)
            {
                *self.histogram.entry(bucket).or_default() += 1;
            } else {
                self.too_many_buckets = true;
            }
        }
    }
}

impl SegmentCollector for SegmentSearchCollector {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, score: Score) {
        let time = self
            .time
            .first(doc)
            .map_or(0, tantivy::DateTime::into_timestamp_micros);
        let primary = if self.spec.sort == SortSpec::SeverityDesc {
            self.severity.first(doc).map_or(0, |rank| rank as i64)
        } else {
            0
        };
        self.count += 1;
        self.count_facets(doc, time);
        if self.spec.cursor.is_some() && !self.after_cursor(primary, time, doc) {
            return;
        }
        self.after_cursor_count += 1;
        let kept = self.spec.kept();
        if kept > 0 {
            let partial = self.rank(primary, time, score, u64::MAX);
            let worth_a_look = self.heap.len() < kept
                || self
                    .heap
                    .peek()
                    .is_some_and(|(worst, ..)| (partial.0, partial.1) <= (worst.0, worst.1));
            if worth_a_look {
                let rank = self.rank(primary, time, score, self.uid_ordinal(doc));
                if self.heap.len() < kept {
                    self.heap.push((rank, doc, primary, time, score.to_bits()));
                } else if self.heap.peek().is_some_and(|(worst, ..)| rank < *worst) {
                    self.heap.pop();
                    self.heap.push((rank, doc, primary, time, score.to_bits()));
                }
            }
        }
    }

    fn harvest(self) -> Collected {
        let mut hits = Vec::with_capacity(self.heap.len());
        for (_, doc, primary, time, score) in self.heap.iter() {
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
