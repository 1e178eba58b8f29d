//! Queries made of terms and time ranges, answered from bitsets when the page is ordered by
//! time.
//!
//! Most hunting queries are filters: `proc.name:bash AND k8s.ns.name:prod` over the last day,
//! newest first.
//! Walking the intersection of their postings lists costs a seek per candidate, and ranking
//! reads the time of every match, although only the total and the newest few are asked for.
//! Here such a query is evaluated per segment on bitsets instead: each term's documents are
//! a bitset kept in a [`FilterCache`] (like a search engine's filter cache), AND/OR/NOT are
//! word operations, a time range takes whole blocks whose time span lies inside it (and reads
//! the times of the blocks it cuts), the total is a population count, terms facets read their
//! columns for the matching documents and nothing else, and the page visits the segment's
//! 64-document blocks latest first (each block's time range is kept too), stopping at the
//! first block that cannot hold a better hit than the page already has. Alerts arrive roughly
//! in time order, so that is usually the last few blocks.
//!
//! The answer is the same as the generic collector's, hit for hit and count for count: the
//! page is ranked by the same per-segment collector and merged the same way, and facets are
//! counted by the same code; only which documents are offered to the page, and how the totals
//! are counted, differ. A test checks both paths agree on random
//! queries, sorts and cursors over segments with deletions and two tenants.

mod bits;
mod cache;
mod matches;
mod page;

use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::{SegmentReader, Term};

use crate::query::time_range::TimeRangeQuery;
use matches::Evaluated;

pub use bits::Bits;
pub use cache::FilterCache;
pub use matches::Matches;
pub use page::collect_by_time;

/// A query that only tests terms: which documents it matches, whatever their scores.
#[derive(Debug, Clone)]
pub enum Filter {
    All,
    Nothing,
    Term(Term),
    /// Documents whose time lies in the range.
    Time(TimeRangeQuery),
    /// Every one of `must` (at least one) and none of `exclude`.
    And {
        must: Vec<Filter>,
        exclude: Vec<Filter>,
    },
    /// Any of `should` and none of `exclude`.
    Or {
        should: Vec<Filter>,
        exclude: Vec<Filter>,
    },
}

impl Filter {
    /// The filter matching exactly the documents `query` matches, when every part of it is a
    /// term or a time range; None for anything else (other ranges, phrases, existence), which
    /// then runs as is.
    ///
    /// Boolean queries follow tantivy's rules: with a mandatory clause, optional clauses only
    /// score unless at least one is required (`minimum_number_should_match` 1); without one,
    /// at least one optional clause must match; excluded clauses remove; a query of
    /// exclusions alone matches nothing.
    pub fn from_query(query: &dyn Query) -> Option<Filter> {
        if query.is::<AllQuery>() {
            return Some(Filter::All);
        }
        if query.is::<EmptyQuery>() {
            return Some(Filter::Nothing);
        }
        if let Some(range) = query.downcast_ref::<TimeRangeQuery>() {
            return Some(Filter::Time(range.clone()));
        }
        if let Some(term_query) = query.downcast_ref::<TermQuery>() {
            return Some(Filter::Term(term_query.term().clone()));
        }
        if let Some(set) = query.downcast_ref::<TermSetQuery>() {
            let mut terms = Vec::new();
            set.query_terms(&mut |term, _| terms.push(Filter::Term(term.clone())));
            return Some(if terms.is_empty() {
                Filter::Nothing
            } else {
                Filter::Or {
                    should: terms,
                    exclude: Vec::new(),
                }
            });
        }
        let boolean = query.downcast_ref::<BooleanQuery>()?;
        let minimum_should_match = boolean.get_minimum_number_should_match();
        if minimum_should_match > 1 {
            return None;
        }
        let (mut must, mut should, mut exclude) = (Vec::new(), Vec::new(), Vec::new());
        for (occur, clause) in boolean.clauses() {
            let filter = Filter::from_query(clause.as_ref())?;
            match occur {
                Occur::Must => must.push(filter),
                Occur::Should => should.push(filter),
                Occur::MustNot => exclude.push(filter),
            }
        }
        if minimum_should_match == 1 {
            // At least one optional clause must match, beside every mandatory one.
            if should.is_empty() {
                return Some(Filter::Nothing);
            }
            must.push(Filter::Or {
                should,
                exclude: Vec::new(),
            });
            return Some(Filter::And { must, exclude });
        }
        Some(if !must.is_empty() {
            Filter::And { must, exclude }
        } else if !should.is_empty() {
            Filter::Or { should, exclude }
        } else {
            Filter::Nothing
        })
    }

    /// The terms and time ranges the filter tests: evaluating it takes a pass over a
    /// segment's words for each.
    pub fn leaves(&self) -> usize {
        match self {
            Filter::All | Filter::Nothing => 0,
            Filter::Term(_) | Filter::Time(_) => 1,
            Filter::And { must, exclude } => must.iter().chain(exclude).map(Filter::leaves).sum(),
            Filter::Or { should, exclude } => {
                should.iter().chain(exclude).map(Filter::leaves).sum()
            }
        }
    }

    /// Calls `visit` with every term the filter tests.
    pub fn visit_terms<'a>(&'a self, visit: &mut impl FnMut(&'a Term)) {
        match self {
            Filter::All | Filter::Nothing | Filter::Time(_) => {}
            Filter::Term(term) => visit(term),
            Filter::And {
                must: children,
                exclude,
            }
            | Filter::Or {
                should: children,
                exclude,
            } => {
                for child in children.iter().chain(exclude) {
                    child.visit_terms(visit);
                }
            }
        }
    }

    /// The segment's documents matching the filter, deleted ones included, as an intersection
    /// not yet combined: the mandatory parts of a conjunction without exclusions stay the
    /// cache's bitsets, so no segment-sized copy is made for the common `a AND b`.
    pub fn matches(&self, reader: &SegmentReader, cache: &FilterCache) -> tantivy::Result<Matches> {
        if let Filter::And { must, exclude } = self
            && exclude.is_empty()
            && let [first, rest @ ..] = must.as_slice()
        {
            let mut matches = Matches::new(first.evaluate_shared(reader, cache)?);
            for filter in rest {
                matches.and(filter.evaluate_shared(reader, cache)?);
            }
            return Ok(matches);
        }
        Ok(Matches::new(self.evaluate_shared(reader, cache)?))
    }

    fn evaluate_shared(
        &self,
        reader: &SegmentReader,
        cache: &FilterCache,
    ) -> tantivy::Result<Evaluated> {
        let max_doc = reader.max_doc();
        Ok(match self {
            Filter::All => Evaluated::Owned(Bits::full(max_doc)),
            Filter::Nothing => Evaluated::Owned(Bits::empty(max_doc)),
            Filter::Term(term) => Evaluated::Shared(cache.term_bits(reader, term)?),
            Filter::Time(range) => {
                Evaluated::Owned(cache.segment_times(reader)?.within(max_doc, range))
            }
            Filter::And { must, exclude } => {
                let mut result: Option<Bits> = None;
                for filter in must {
                    let bits = filter.evaluate_shared(reader, cache)?;
                    match &mut result {
                        None => result = Some(bits.into_owned()),
                        Some(result) => result.and_with(bits.as_bits()),
                    }
                }
                let mut result = result.unwrap_or_else(|| Bits::empty(max_doc));
                for filter in exclude {
                    result.and_not_with(filter.evaluate_shared(reader, cache)?.as_bits());
                }
                Evaluated::Owned(result)
            }
            Filter::Or { should, exclude } => {
                let mut result = Bits::empty(max_doc);
                for filter in should {
                    result.or_with(filter.evaluate_shared(reader, cache)?.as_bits());
                }
                for filter in exclude {
                    result.and_not_with(filter.evaluate_shared(reader, cache)?.as_bits());
                }
                Evaluated::Owned(result)
            }
        })
    }
}

#[cfg(test)]
mod tests;
