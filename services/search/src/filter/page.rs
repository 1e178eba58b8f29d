//! The total and a time-ordered page of a [`Filter`]'s matches, from bitsets.

use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, Term};
use tokio::time::Instant;

use super::bits::block_docs;
use super::cache::{FilterCache, SegmentTimes};
use super::{Filter, Matches};
use crate::collector::{Collected, SearchCollector, SegmentSearchCollector, SortSpec};
use crate::query::confine::segment_holds_only;

/// What [`SearchCollector`] would collect for `tenant AND filter`, for a request whose page is
/// decided by time alone ([`SearchCollector::pages_by_time_only`]).
///
/// Every segment's matches are counted; the page is then ranked segment by segment, the
/// segment with the best newest (or oldest) match first, and once the page is full the time of
/// its worst hit bounds the blocks the remaining segments need to visit. Alerts are indexed
/// roughly in time order, so older segments usually contribute nothing and are passed over.
pub fn collect_by_time(
    searcher: &tantivy::Searcher,
    collector: &SearchCollector,
    filter: &Filter,
    tenant: &Term,
    cache: &FilterCache,
) -> tantivy::Result<Collected> {
    debug_assert!(collector.pages_by_time_only());
    let descending = collector.sort != SortSpec::TimeAsc;
    let mut segments = Vec::with_capacity(searcher.segment_readers().len());
    for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
        if Instant::now() > collector.deadline {
            return Ok(timed_out());
        }
        let mut matches = filter.matches(reader, cache)?;
        if !segment_holds_only(tenant, reader)? {
            matches.and_shared(cache.term_bits(reader, tenant)?);
        }
        if let Some(alive) = cache.alive_bits(reader)? {
            matches.and_shared(alive);
        }
        let times = cache.segment_times(reader)?;
        let facet_columns = collector.facet_columns(reader)?;
        segments.push((ordinal as SegmentOrdinal, matches, times, facet_columns));
    }
    segments.sort_by_key(|(_, _, times, _)| {
        let best = if descending {
            times
                .newest_first
                .first()
                .map(|block| times.latest[*block as usize])
        } else {
            times
                .oldest_first
                .first()
                .map(|block| times.earliest[*block as usize])
        };
        // Best first; empty segments last.
        match (best, descending) {
            (None, _) => (1, 0),
            (Some(time), true) => (0, time.saturating_neg()),
            (Some(time), false) => (0, time),
        }
    });
    let mut fruits = Vec::with_capacity(segments.len());
    let mut page_times: Vec<i64> = Vec::new();
    for (ordinal, matches, times, facet_columns) in segments {
        if Instant::now() > collector.deadline {
            return Ok(timed_out());
        }
        let bound = page_bound(&mut page_times, collector.limit, descending);
        let fruit = collect_segment(ordinal, &matches, &times, facet_columns, collector, bound)?;
        page_times.extend(fruit.hits.iter().map(|hit| hit.time));
        fruits.push(fruit);
    }
    tantivy::collector::Collector::merge_fruits(collector, fruits)
}

fn timed_out() -> Collected {
    Collected {
        timed_out: true,
        ..Collected::default()
    }
}

/// The time of the `limit`-th best hit so far, once there are that many: a document of a
/// strictly worse time cannot enter the page.
fn page_bound(page_times: &mut [i64], limit: usize, descending: bool) -> Option<i64> {
    let last_kept = limit.checked_sub(1)?;
    if page_times.len() <= last_kept {
        return None;
    }
    let (_, bound, _) = if descending {
        page_times.select_nth_unstable_by(last_kept, |left, right| right.cmp(left))
    } else {
        page_times.select_nth_unstable(last_kept)
    };
    Some(*bound)
}

/// One segment's counts and page candidates: `matches` are its live matching documents,
/// `bound` the worst time that may still enter the page (from segments ranked before).
fn collect_segment(
    ordinal: SegmentOrdinal,
    matches: &Matches,
    times: &SegmentTimes,
    facet_columns: Vec<(Option<StrColumn>, Vec<u64>)>,
    collector: &SearchCollector,
    bound: Option<i64>,
) -> tantivy::Result<Collected> {
    let count = matches.count();
    let counts_facets = !facet_columns.is_empty();
    let mut segment = collector.segment_collector(ordinal, &times.columns, facet_columns)?;
    if counts_facets {
        count_facets(matches, &mut segment);
    }
    let descending = collector.sort != SortSpec::TimeAsc;
    let cursor_time = collector.cursor.as_ref().map(|cursor| cursor.time);
    let after_cursor_count = match cursor_time {
        None => count,
        Some(cursor_time) => {
            count_after_cursor(matches, times, cursor_time, descending, |time, doc| {
                segment.time_after_cursor(time, doc)
            })
        }
    };
    let order = if descending {
        &times.newest_first
    } else {
        &times.oldest_first
    };
    let zero_scores = [0.0 as Score; 64];
    let mut docs: Vec<DocId> = Vec::with_capacity(64);
    for block in order {
        let block = *block as usize;
        let word = matches.block(block);
        if word == 0 {
            continue;
        }
        let (best_time, worst_time) = best_and_worst(times, block, descending);
        // Blocks come best time first: once a block's best time cannot enter the page, no
        // later block's can.
        let beyond_bound = bound.is_some_and(|bound| worse(best_time, bound, descending));
        if beyond_bound || !segment.time_could_enter(best_time) {
            break;
        }
        // A block whose worst time is better than the cursor's lies entirely before the
        // cursor: nothing in it is for this page.
        if cursor_time.is_some_and(|cursor_time| worse(cursor_time, worst_time, descending)) {
            continue;
        }
        docs.clear();
        block_docs(block, word, &mut docs);
        segment.rank_block(&docs, &zero_scores[..docs.len()]);
    }
    Ok(segment.harvest_counted(count, after_cursor_count))
}

/// Counts the facets' values of every match, a block at a time.
fn count_facets(matches: &Matches, segment: &mut SegmentSearchCollector) {
    let mut docs: Vec<DocId> = Vec::with_capacity(64);
    for block in 0..matches.blocks() {
        let word = matches.block(block);
        if word == 0 {
            continue;
        }
        docs.clear();
        block_docs(block, word, &mut docs);
        segment.count_facets_block(&docs);
    }
}

/// Whether `time` comes strictly after `than` in the page order (is a worse time).
fn worse(time: i64, than: i64, descending: bool) -> bool {
    if descending { time < than } else { time > than }
}

/// A block's best and worst time in the page order.
fn best_and_worst(times: &SegmentTimes, block: usize, descending: bool) -> (i64, i64) {
    if descending {
        (times.latest[block], times.earliest[block])
    } else {
        (times.earliest[block], times.latest[block])
    }
}

/// Matches after the cursor: whole blocks whose time range lies on one side of the cursor's
/// time are counted at once, the others document by document.
fn count_after_cursor(
    matches: &Matches,
    times: &SegmentTimes,
    cursor_time: i64,
    descending: bool,
    after_cursor: impl Fn(i64, DocId) -> bool,
) -> u64 {
    let mut count = 0;
    let mut docs: Vec<DocId> = Vec::with_capacity(64);
    for block in 0..matches.blocks() {
        let word = matches.block(block);
        if word == 0 {
            continue;
        }
        let (best_time, worst_time) = best_and_worst(times, block, descending);
        if worse(best_time, cursor_time, descending) {
            count += u64::from(word.count_ones());
            continue;
        }
        if worse(cursor_time, worst_time, descending) {
            continue;
        }
        docs.clear();
        block_docs(block, word, &mut docs);
        for doc in &docs {
            let time = times
                .columns
                .time
                .first(*doc)
                .map_or(0, tantivy::DateTime::into_timestamp_micros);
            if after_cursor(time, *doc) {
                count += 1;
            }
        }
    }
    count
}
