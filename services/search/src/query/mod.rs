//! The query language and its translation into tantivy queries confined to one tenant.
//!
//! [`parser`] turns text into a syntax tree with positioned errors; [`fields`] says what each
//! field name means; [`values`] reads times and severities; [`compile`] builds the tantivy query,
//! always as `tenant AND (user query)`, so nothing the text says can widen it; [`confine`] is
//! that conjunction, evaluated per segment.

pub mod compile;
pub mod confine;
pub mod fields;
pub mod parser;
pub mod time_range;
pub mod values;

use std::time::Duration;

pub use compile::{CompiledQuery, compile_confined};
pub use parser::{Node, ParseLimits, QueryError, parse};

/// Every bound a query is held to.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub parse: ParseLimits,
    /// Most distinct terms one wildcard may expand to.
    pub max_wildcard_terms: usize,
    /// Most dictionary terms one wildcard may look at while expanding.
    pub max_wildcard_scanned_terms: usize,
    /// Longest wildcard pattern, in characters.
    pub max_wildcard_chars: usize,
    /// Deepest hit reachable by offset (relevance order); cursors have no such limit.
    pub max_result_window: usize,
    /// Longest a query may run on a searcher thread.
    pub time_budget: Duration,
    /// Most facets in one request, and most buckets in one facet or histogram.
    pub max_facets: usize,
    pub max_facet_buckets: usize,
    pub max_histogram_buckets: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            parse: ParseLimits::default(),
            max_wildcard_terms: 1_024,
            max_wildcard_scanned_terms: 2_000_000,
            max_wildcard_chars: 256,
            max_result_window: 10_000,
            time_budget: Duration::from_secs(10),
            max_facets: 16,
            max_facet_buckets: 1_000,
            max_histogram_buckets: 2_000,
        }
    }
}

/// Checks that `text` is a valid query (syntax and field names) without running it.
pub fn validate(text: &str, limits: &QueryLimits) -> Result<Node, QueryError> {
    let node = parse(text, &limits.parse)?;
    fields::check_fields(&node)?;
    Ok(node)
}

/// What the fuzz target runs: any text either parses and passes the field check, or gives a
/// positioned error whose column lies within the text; nothing panics or hangs.
pub fn fuzz_query_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = validate(&text, &QueryLimits::default()) {
        let columns = text.chars().count().max(1);
        assert!(
            error.column >= 1 && error.column <= columns + 1,
            "error column {} outside a {columns}-character query: {error}",
            error.column
        );
        assert!(!error.message.is_empty());
    }
}
