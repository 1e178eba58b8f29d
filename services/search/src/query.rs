//! Turning a search request into a tantivy query confined to one tenant.
//!
//! Confinement does not depend on the query text: the user's query is one clause of a boolean
//! query whose other, mandatory clause is the caller's tenant term. Whatever the text says
//! (`tenant:other`, `*`, `NOT tenant:x`), it can only narrow the caller's own documents.

use std::ops::Bound;

use palisade_core::ids::TenantId;
use palisade_proto::v1::TimeRange;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, Index, Term};

use crate::error::SearchError;
use crate::schema::AlertSchema;

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Builds tenant-confined queries.
#[derive(Clone)]
pub struct QueryBuilder {
    schema: AlertSchema,
    parser: QueryParser,
}

impl QueryBuilder {
    /// A builder for `index`, searching output, rule and output fields when no field is named.
    pub fn new(index: &Index, schema: &AlertSchema) -> QueryBuilder {
        let mut parser = QueryParser::for_index(
            index,
            vec![schema.output, schema.rule, schema.output_fields],
        );
        parser.set_conjunction_by_default();
        QueryBuilder {
            schema: schema.clone(),
            parser,
        }
    }

    /// The query for `text` within `time_range`, confined to `tenant`.
    pub fn build(
        &self,
        tenant: &TenantId,
        text: &str,
        time_range: Option<&TimeRange>,
    ) -> Result<Box<dyn Query>, SearchError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(SearchError::InvalidQuery(format!(
                "query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                text.len()
            )));
        }
        let trimmed = text.trim();
        let user_query: Box<dyn Query> = if trimmed.is_empty() || trimmed == "*" {
            Box::new(AllQuery)
        } else {
            self.parser
                .parse_query(trimmed)
                .map_err(|error| SearchError::InvalidQuery(format!("{error:?} in {trimmed:?}")))?
        };
        let tenant_term = Term::from_field_text(self.schema.tenant, tenant.as_str());
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(tenant_term, IndexRecordOption::Basic)),
            ),
            (Occur::Must, user_query),
        ];
        if let Some(range) = time_range.and_then(|range| self.time_range_query(range)) {
            clauses.push((Occur::Must, range));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    fn time_range_query(&self, range: &TimeRange) -> Option<Box<dyn Query>> {
        let to_term = |timestamp: &palisade_proto::prost_types::Timestamp| {
            let nanos = timestamp
                .seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(timestamp.nanos));
            Term::from_field_date(self.schema.time, DateTime::from_timestamp_nanos(nanos))
        };
        let lower = range
            .start
            .as_ref()
            .map_or(Bound::Unbounded, |start| Bound::Included(to_term(start)));
        let upper = range
            .end
            .as_ref()
            .map_or(Bound::Unbounded, |end| Bound::Excluded(to_term(end)));
        if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
            return None;
        }
        Some(Box::new(RangeQuery::new(lower, upper)))
    }
}
