//! A range of the `time` field that keeps its bounds readable.
//!
//! It runs exactly as tantivy's range query over the same bounds; the bounds are kept beside
//! it so the bitset path ([`crate::filter`]) can evaluate the range from a segment's time
//! summary instead (whole blocks inside or outside the range at once).

use std::ops::Bound;

use tantivy::query::{EnableScoring, Query, RangeQuery, Weight};
use tantivy::schema::Field;
use tantivy::{DateTime, Term};

/// Documents whose time lies between two bounds, in nanoseconds since the epoch.
#[derive(Debug, Clone)]
pub struct TimeRangeQuery {
    pub lower: Bound<i64>,
    pub upper: Bound<i64>,
    range: RangeQuery,
}

impl TimeRangeQuery {
    /// The range of `field` (the time field) between `lower` and `upper` nanoseconds.
    pub fn new(field: Field, lower: Bound<i64>, upper: Bound<i64>) -> TimeRangeQuery {
        let term =
            |nanos: &i64| Term::from_field_date(field, DateTime::from_timestamp_nanos(*nanos));
        TimeRangeQuery {
            range: RangeQuery::new(lower.as_ref().map(term), upper.as_ref().map(term)),
            lower,
            upper,
        }
    }

    /// Whether a time (nanoseconds) lies in the range.
    pub fn contains(&self, nanos: i64) -> bool {
        !self.is_after(nanos) && !self.is_before(nanos)
    }

    /// Whether the whole range comes after a time: the time is below the lower bound.
    pub fn is_after(&self, nanos: i64) -> bool {
        match self.lower {
            Bound::Included(lower) => nanos < lower,
            Bound::Excluded(lower) => nanos <= lower,
            Bound::Unbounded => false,
        }
    }

    /// Whether the whole range comes before a time: the time is above the upper bound.
    pub fn is_before(&self, nanos: i64) -> bool {
        match self.upper {
            Bound::Included(upper) => nanos > upper,
            Bound::Excluded(upper) => nanos >= upper,
            Bound::Unbounded => false,
        }
    }
}

impl Query for TimeRangeQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        self.range.weight(enable_scoring)
    }
}
