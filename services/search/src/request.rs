//! What a search request asks for besides its query: facets, sort order, page position. All
//! of it is read and checked before the index is touched.

use palisade_proto::v1::SortOrder;

use crate::collector::{SortCursor, SortSpec, TermsFacet};
use crate::error::SearchError;
use crate::query::parser::MatchValue;
use crate::query::values::parse_duration_nanos;
use crate::query::{Node, QueryLimits};
use crate::schema::FIELDS;

/// A facet as requested: a terms facet or the time histogram.
pub(crate) enum FacetSpec {
    Terms { label: String, facet: TermsFacet },
    Histogram { interval_micros: i64 },
}

/// The column a facet name counts.
fn facet_column(name: &str) -> Option<String> {
    let column = match name {
        "rule" => "rule_name",
        "priority" | "severity" => "priority",
        "tag" | "tags" => "tags",
        "node" | "hostname" => "node",
        "mitre" | "technique" => "technique",
        "cve" | "vulnerability" => "cve",
        "id" | "kind" | "source" | "cluster" | "namespace" | "pod" | "image" | "container"
        | "tactic" | "package" | "control" | "resolved" => name,
        dotted if dotted.contains('.') && !dotted.starts_with('.') && !dotted.ends_with('.') => {
            return Some(format!("{FIELDS}.{dotted}"));
        }
        _ => return None,
    };
    Some(column.to_string())
}

pub(crate) fn parse_facets(
    requested: &[String],
    default_size: usize,
    limits: &QueryLimits,
) -> Result<Vec<FacetSpec>, SearchError> {
    if requested.len() > limits.max_facets {
        return Err(SearchError::QueryLimit(format!(
            "{} facets requested; at most {} per query",
            requested.len(),
            limits.max_facets
        )));
    }
    let mut specs = Vec::with_capacity(requested.len());
    for text in requested {
        let (name, parameter) = match text.rsplit_once(':') {
            Some((name, parameter)) => (name, Some(parameter)),
            None => (text.as_str(), None),
        };
        if name == "time" || name == "@timestamp" {
            let interval = parameter.unwrap_or("1h");
            let nanos = parse_duration_nanos(interval).map_err(|message| {
                SearchError::InvalidRequest(format!("facet {text:?}: {message}"))
            })?;
            if nanos <= 0 {
                return Err(SearchError::InvalidRequest(format!(
                    "facet {text:?}: the histogram interval must be positive"
                )));
            }
            if specs
                .iter()
                .any(|spec| matches!(spec, FacetSpec::Histogram { .. }))
            {
                return Err(SearchError::InvalidRequest(
                    "one time histogram per query".into(),
                ));
            }
            specs.push(FacetSpec::Histogram {
                interval_micros: nanos / 1_000,
            });
            continue;
        }
        let size = match parameter {
            None => default_size,
            Some(size) => size.parse::<usize>().map_err(|_| {
                SearchError::InvalidRequest(format!(
                    "facet {text:?}: expected NAME or NAME:SIZE with a number of top values"
                ))
            })?,
        };
        if size == 0 || size > limits.max_facet_buckets {
            return Err(SearchError::QueryLimit(format!(
                "facet {text:?}: the number of top values must be 1 to {}",
                limits.max_facet_buckets
            )));
        }
        let column = facet_column(name).ok_or_else(|| {
            SearchError::InvalidRequest(format!(
                "cannot facet on {name:?}: use rule, priority, kind, source, tags, cluster, \
                 namespace, pod, image, node, container, technique, tactic, cve, package, \
                 control, resolved, time:INTERVAL or a dotted Falco field such as k8s.ns.name"
            ))
        })?;
        specs.push(FacetSpec::Terms {
            label: name.to_string(),
            facet: TermsFacet { column, size },
        });
    }
    Ok(specs)
}

pub(crate) fn sort_spec(sort: i32, free_text: bool) -> SortSpec {
    match SortOrder::try_from(sort).unwrap_or(SortOrder::Unspecified) {
        SortOrder::TimeAsc => SortSpec::TimeAsc,
        SortOrder::SeverityDesc => SortSpec::SeverityDesc,
        SortOrder::Relevance => SortSpec::Relevance,
        SortOrder::TimeDesc => SortSpec::TimeDesc,
        SortOrder::Unspecified if free_text => SortSpec::Relevance,
        SortOrder::Unspecified => SortSpec::TimeDesc,
    }
}

pub(crate) fn sort_code(sort: SortSpec) -> char {
    match sort {
        SortSpec::TimeDesc => 't',
        SortSpec::TimeAsc => 'a',
        SortSpec::SeverityDesc => 's',
        SortSpec::Relevance => 'r',
    }
}

/// A page position: an offset for relevance, a search-after key otherwise.
pub(crate) enum PagePosition {
    Start,
    Offset(usize),
    After(SortCursor),
}

pub(crate) fn parse_cursor(cursor: &str, sort: SortSpec) -> Result<PagePosition, SearchError> {
    if cursor.is_empty() {
        return Ok(PagePosition::Start);
    }
    let foreign = || {
        SearchError::InvalidRequest(format!(
            "cursor {:?} was not returned by this server for this sort order",
            cursor.chars().take(80).collect::<String>()
        ))
    };
    let mut parts = cursor.splitn(4, ':');
    let code = parts.next().ok_or_else(foreign)?;
    if code.len() != 1 || !code.starts_with(sort_code(sort)) {
        return Err(foreign());
    }
    if sort == SortSpec::Relevance {
        let offset = parts
            .next()
            .and_then(|offset| offset.parse().ok())
            .ok_or_else(foreign)?;
        return Ok(PagePosition::Offset(offset));
    }
    let primary = parts
        .next()
        .and_then(|value| value.parse().ok())
        .ok_or_else(foreign)?;
    let time = parts
        .next()
        .and_then(|value| value.parse().ok())
        .ok_or_else(foreign)?;
    let uid = parts.next().ok_or_else(foreign)?.to_string();
    Ok(PagePosition::After(SortCursor { primary, time, uid }))
}

/// True when the query has a free-text clause, so unspecified order means relevance.
pub(crate) fn has_free_text(node: &Node) -> bool {
    match node {
        Node::All => false,
        Node::And(children) | Node::Or(children) => children.iter().any(has_free_text),
        Node::Not(_) => false,
        Node::Match(clause) => clause.field.is_none(),
    }
}

/// True when the query has a wildcard, which compiling expands against the term dictionaries
/// (up to [`QueryLimits::max_wildcard_scanned_terms`] terms looked at).
pub(crate) fn has_wildcard(node: &Node) -> bool {
    match node {
        Node::All => false,
        Node::And(children) | Node::Or(children) => children.iter().any(has_wildcard),
        Node::Not(child) => has_wildcard(child),
        Node::Match(clause) => matches!(clause.value, MatchValue::Wildcard(_)),
    }
}
