//! Turning a parsed query into a tantivy query confined to one tenant.
//!
//! Confinement does not depend on the query text: the user's query is one clause of a boolean
//! query whose other, mandatory clause is the caller's tenant term. Whatever the text says
//! (`tenant:other` is refused, `*`, `NOT x`, wildcards), it can only narrow the caller's own
//! documents. Wildcards are expanded here, against the term dictionaries of the searcher the
//! query will run on, so their cost is bounded before the query starts.

use std::collections::BTreeSet;
use std::ops::Bound;

use palisade_core::ids::TenantId;
use palisade_proto::v1::Priority;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Type};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};
use tokio::time::Instant;

use super::QueryLimits;
use super::confine::TenantConfinedQuery;
use super::fields::{FREE_TEXT_FIELDS, FieldTarget, check_clause};
use super::parser::{Comparison, GlobToken, Match, MatchValue, Node, QueryError, RangeBound};
use super::time_range::TimeRangeQuery;
use super::values::{DAY_NANOS, parse_query_time, parse_severity};
use crate::error::SearchError;
use crate::filter::Filter;
use crate::schema::{FIELDS, IndexSchema};

/// A query ready to run.
pub struct CompiledQuery {
    /// `tenant AND user query AND filters`: what is run.
    pub confined: Box<dyn Query>,
    /// The user's part alone, for highlighting.
    pub user: Box<dyn Query>,
    /// The caller's tenant term, which `confined` requires.
    pub tenant: Term,
    /// `user query AND filters` as a term filter, when it is one (see [`crate::filter`]).
    pub filter: Option<Filter>,
}

/// Compiles a parsed query for `tenant`, AND-ed with `filters` (time range, tail window).
pub fn compile_confined(
    node: &Node,
    tenant: &TenantId,
    filters: Vec<Box<dyn Query>>,
    context: &CompileContext<'_>,
) -> Result<CompiledQuery, SearchError> {
    let mut compiler = Compiler::new(context);
    let user = compiler.compile(node)?;
    let tenant_term = context.schema.tenant_term(tenant.as_str());
    let filtered: Box<dyn Query> = if filters.is_empty() {
        user.box_clone()
    } else {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user.box_clone())];
        clauses.extend(filters.into_iter().map(|filter| (Occur::Must, filter)));
        Box::new(BooleanQuery::new(clauses))
    };
    Ok(CompiledQuery {
        filter: Filter::from_query(filtered.as_ref()),
        confined: Box::new(TenantConfinedQuery::new(tenant_term.clone(), filtered)),
        user,
        tenant: tenant_term,
    })
}

/// What compiling needs besides the query.
pub struct CompileContext<'a> {
    pub schema: &'a IndexSchema,
    pub searcher: &'a Searcher,
    pub limits: &'a QueryLimits,
    /// The server's clock, for `now`.
    pub now_nanos: i64,
    pub deadline: Instant,
}

struct Compiler<'a> {
    context: &'a CompileContext<'a>,
    analyzer: TextAnalyzer,
}

fn invalid(column: usize, message: impl Into<String>) -> SearchError {
    SearchError::InvalidQuery(QueryError {
        column,
        message: message.into(),
    })
}

impl<'a> Compiler<'a> {
    fn new(context: &'a CompileContext<'a>) -> Compiler<'a> {
        let analyzer = context
            .searcher
            .index()
            .tokenizers()
            .get("default")
            .unwrap_or_default();
        Compiler { context, analyzer }
    }

    fn compile(&mut self, node: &Node) -> Result<Box<dyn Query>, SearchError> {
        match node {
            Node::All => Ok(Box::new(AllQuery)),
            Node::Match(clause) => self.compile_match(clause),
            Node::Not(child) => Ok(Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (Occur::MustNot, self.compile(child)?),
            ]))),
            Node::And(children) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for child in children {
                    match child {
                        Node::Not(negated) => {
                            clauses.push((Occur::MustNot, self.compile(negated)?))
                        }
                        other => clauses.push((Occur::Must, self.compile(other)?)),
                    }
                }
                if !clauses.iter().any(|(occur, _)| *occur == Occur::Must) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
            Node::Or(children) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for child in children {
                    clauses.push((Occur::Should, self.compile(child)?));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
        }
    }

    fn compile_match(&mut self, clause: &Match) -> Result<Box<dyn Query>, SearchError> {
        let target = check_clause(clause).map_err(SearchError::InvalidQuery)?;
        let schema = self.context.schema;
        match target {
            None => {
                let fields: Vec<Field> = FREE_TEXT_FIELDS
                    .iter()
                    .filter_map(|name| text_field(schema, name))
                    .collect();
                self.text_query(&fields, clause)
            }
            Some(FieldTarget::Text(name)) => {
                let fields: Vec<Field> = text_field(schema, name).into_iter().collect();
                self.text_query(&fields, clause)
            }
            Some(FieldTarget::Keyword(name)) => self.keyword_query(name, clause),
            Some(FieldTarget::Mitre) => Ok(Box::new(BooleanQuery::new(vec![
                (Occur::Should, self.keyword_query("technique", clause)?),
                (Occur::Should, self.keyword_query("tactic", clause)?),
            ]))),
            Some(FieldTarget::Severity) => self.severity_query(clause),
            Some(FieldTarget::Time) => self.time_query(clause),
            Some(FieldTarget::OutputField(key)) => self.output_field_query(&key, clause),
        }
    }

    fn tokens(&mut self, text: &str) -> Vec<String> {
        let mut stream = self.analyzer.token_stream(text);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().text.clone());
        }
        tokens
    }

    fn text_query(
        &mut self,
        fields: &[Field],
        clause: &Match,
    ) -> Result<Box<dyn Query>, SearchError> {
        let words = match &clause.value {
            MatchValue::Term(text) | MatchValue::Phrase(text) => text.clone(),
            MatchValue::Wildcard(glob) => {
                let lowered: Vec<GlobToken> = glob
                    .iter()
                    .map(|token| match token {
                        GlobToken::Literal(character) => GlobToken::Literal(
                            character.to_lowercase().next().unwrap_or(*character),
                        ),
                        other => *other,
                    })
                    .collect();
                let mut terms = Vec::new();
                for field in fields {
                    let field = *field;
                    terms.extend(self.expand(
                        field,
                        Vec::new(),
                        &lowered,
                        clause.column,
                        |value| Term::from_field_text(field, value),
                    )?);
                }
                return Ok(term_set(terms));
            }
            MatchValue::Exists => {
                return Err(invalid(
                    clause.column,
                    "field:* applies to keyword and Falco fields, not to text fields",
                ));
            }
            MatchValue::Range { .. } | MatchValue::Compare(..) => {
                return Err(invalid(
                    clause.column,
                    "text fields take words and phrases, not ranges",
                ));
            }
        };
        let tokens = self.tokens(&words);
        if tokens.is_empty() {
            return Err(invalid(
                clause.column,
                format!("{words:?} has no letters or digits to search for"),
            ));
        }
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for field in fields {
            let terms: Vec<Term> = tokens
                .iter()
                .map(|token| Term::from_field_text(*field, token))
                .collect();
            let query: Box<dyn Query> = if terms.len() == 1 {
                Box::new(TermQuery::new(
                    terms[0].clone(),
                    IndexRecordOption::WithFreqs,
                ))
            } else {
                Box::new(PhraseQuery::new(terms))
            };
            alternatives.push((Occur::Should, query));
        }
        Ok(Box::new(BooleanQuery::new(alternatives)))
    }

    fn keyword_query(&mut self, name: &str, clause: &Match) -> Result<Box<dyn Query>, SearchError> {
        let field = self
            .context
            .schema
            .keyword(name)
            .ok_or_else(|| invalid(clause.column, format!("{name} is not a keyword field")))?;
        match &clause.value {
            MatchValue::Term(value) | MatchValue::Phrase(value) => Ok(Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            ))),
            MatchValue::Wildcard(glob) => {
                let terms = self.expand(field, Vec::new(), glob, clause.column, |value| {
                    Term::from_field_text(field, value)
                })?;
                Ok(term_set(terms))
            }
            MatchValue::Exists => Ok(Box::new(ExistsQuery::new(name.to_string(), false))),
            MatchValue::Range { lower, upper } => {
                let bound = |bound: &RangeBound| match &bound.value {
                    None => Bound::Unbounded,
                    Some(value) if bound.inclusive => {
                        Bound::Included(Term::from_field_text(field, value))
                    }
                    Some(value) => Bound::Excluded(Term::from_field_text(field, value)),
                };
                Ok(Box::new(RangeQuery::new(bound(lower), bound(upper))))
            }
            MatchValue::Compare(comparison, value) => {
                let term = Term::from_field_text(field, value);
                let (lower, upper) = comparison_bounds(*comparison, term);
                Ok(Box::new(RangeQuery::new(lower, upper)))
            }
        }
    }

    fn output_field_query(
        &mut self,
        key: &str,
        clause: &Match,
    ) -> Result<Box<dyn Query>, SearchError> {
        let fields = self.context.schema.fields;
        let path_term = Term::from_field_json_path(fields, key, true);
        let value_term = |value: &str| {
            let mut term = path_term.clone();
            term.append_type_and_str(value);
            term
        };
        match &clause.value {
            MatchValue::Term(value) | MatchValue::Phrase(value) => Ok(Box::new(TermQuery::new(
                value_term(value),
                IndexRecordOption::Basic,
            ))),
            MatchValue::Wildcard(glob) => {
                let mut prefix = path_term.serialized_value_bytes().to_vec();
                prefix.push(Type::Str.to_code());
                let terms = self.expand(fields, prefix, glob, clause.column, value_term)?;
                Ok(term_set(terms))
            }
            MatchValue::Exists => Ok(Box::new(ExistsQuery::new(format!("{FIELDS}.{key}"), false))),
            MatchValue::Range { .. } | MatchValue::Compare(..) => Err(invalid(
                clause.column,
                format!(
                    "{key}: ranges apply to time and priority; match Falco fields by value or \
                     wildcard ({key}:value, {key}:prefix*)"
                ),
            )),
        }
    }

    fn severity_query(&mut self, clause: &Match) -> Result<Box<dyn Query>, SearchError> {
        let field = self.context.schema.severity;
        let rank = |text: &str| {
            parse_severity(text)
                .map(|rank| Term::from_field_u64(field, rank))
                .map_err(|message| invalid(clause.column, message))
        };
        match &clause.value {
            MatchValue::Term(value) | MatchValue::Phrase(value) => Ok(Box::new(TermQuery::new(
                rank(value)?,
                IndexRecordOption::Basic,
            ))),
            // A document's rank is one of the few Priority values, so a range of ranks is the
            // set of those it contains: terms, which also run as a bitset filter.
            MatchValue::Compare(comparison, value) => {
                let (lower, upper) = comparison_bounds(*comparison, rank(value)?);
                Ok(term_set(ranks_within(field, &lower, &upper)))
            }
            MatchValue::Range { lower, upper } => {
                let bound = |bound: &RangeBound| -> Result<Bound<Term>, SearchError> {
                    Ok(match &bound.value {
                        None => Bound::Unbounded,
                        Some(value) if bound.inclusive => Bound::Included(rank(value)?),
                        Some(value) => Bound::Excluded(rank(value)?),
                    })
                };
                Ok(term_set(ranks_within(
                    field,
                    &bound(lower)?,
                    &bound(upper)?,
                )))
            }
            MatchValue::Exists => Ok(Box::new(AllQuery)),
            MatchValue::Wildcard(_) => Err(invalid(
                clause.column,
                "wildcards apply to text and keyword fields, not to priorities",
            )),
        }
    }

    fn time_query(&mut self, clause: &Match) -> Result<Box<dyn Query>, SearchError> {
        let field = self.context.schema.time;
        let now = self.context.now_nanos;
        let read = |text: &str| {
            parse_query_time(text, now).map_err(|message| invalid(clause.column, message))
        };
        let (lower, upper) = match &clause.value {
            MatchValue::Term(value) | MatchValue::Phrase(value) => {
                let time = read(value)?;
                if !time.whole_day {
                    return Err(invalid(
                        clause.column,
                        format!(
                            "a time alone must be a date (time:2026-11-01); for {value:?} use a \
                             comparison or range (time:>={value}, time:[{value} TO now])"
                        ),
                    ));
                }
                (
                    Bound::Included(time.nanos),
                    Bound::Excluded(time.nanos.saturating_add(DAY_NANOS)),
                )
            }
            MatchValue::Compare(comparison, value) => {
                let time = read(value)?;
                // A bare date compares as its whole day: `>2026-11-01` starts the next day.
                let day_end = time
                    .nanos
                    .saturating_add(if time.whole_day { DAY_NANOS } else { 0 });
                match comparison {
                    Comparison::GreaterOrEqual => (Bound::Included(time.nanos), Bound::Unbounded),
                    Comparison::Greater if time.whole_day => {
                        (Bound::Included(day_end), Bound::Unbounded)
                    }
                    Comparison::Greater => (Bound::Excluded(time.nanos), Bound::Unbounded),
                    Comparison::Less => (Bound::Unbounded, Bound::Excluded(time.nanos)),
                    Comparison::LessOrEqual if time.whole_day => {
                        (Bound::Unbounded, Bound::Excluded(day_end))
                    }
                    Comparison::LessOrEqual => (Bound::Unbounded, Bound::Included(time.nanos)),
                }
            }
            MatchValue::Range { lower, upper } => {
                let lower = match &lower.value {
                    None => Bound::Unbounded,
                    Some(value) => {
                        let time = read(value)?;
                        match (lower.inclusive, time.whole_day) {
                            (true, _) => Bound::Included(time.nanos),
                            (false, true) => Bound::Included(time.nanos.saturating_add(DAY_NANOS)),
                            (false, false) => Bound::Excluded(time.nanos),
                        }
                    }
                };
                let upper = match &upper.value {
                    None => Bound::Unbounded,
                    Some(value) => {
                        let time = read(value)?;
                        match (upper.inclusive, time.whole_day) {
                            (true, true) => Bound::Excluded(time.nanos.saturating_add(DAY_NANOS)),
                            (true, false) => Bound::Included(time.nanos),
                            (false, _) => Bound::Excluded(time.nanos),
                        }
                    }
                };
                (lower, upper)
            }
            MatchValue::Exists => return Ok(Box::new(AllQuery)),
            MatchValue::Wildcard(_) => {
                return Err(invalid(
                    clause.column,
                    "wildcards apply to text and keyword fields, not to times",
                ));
            }
        };
        Ok(Box::new(TimeRangeQuery::new(field, lower, upper)))
    }

    /// The terms of `field` that start with `base` and whose rest matches `glob`, across every
    /// segment, bounded by the wildcard limits and the query's deadline.
    fn expand(
        &mut self,
        field: Field,
        base: Vec<u8>,
        glob: &[GlobToken],
        column: usize,
        make_term: impl Fn(&str) -> Term,
    ) -> Result<Vec<Term>, SearchError> {
        let limits = self.context.limits;
        if glob.len() > limits.max_wildcard_chars {
            return Err(SearchError::QueryLimit(format!(
                "at column {column}: wildcard patterns are limited to {} characters",
                limits.max_wildcard_chars
            )));
        }
        let mut start = base.clone();
        for token in glob {
            match token {
                GlobToken::Literal(character) => {
                    let mut buffer = [0u8; 4];
                    start.extend_from_slice(character.encode_utf8(&mut buffer).as_bytes());
                }
                _ => break,
            }
        }
        let end = prefix_successor(&start);
        let mut matched: BTreeSet<String> = BTreeSet::new();
        let mut scanned = 0usize;
        for segment in self.context.searcher.segment_readers() {
            let inverted = segment.inverted_index(field)?;
            let mut range = inverted.terms().range().ge(&start);
            if let Some(end) = &end {
                range = range.lt(end);
            }
            let mut stream = range.into_stream().map_err(tantivy::TantivyError::from)?;
            while stream.advance() {
                scanned += 1;
                if scanned > limits.max_wildcard_scanned_terms {
                    return Err(SearchError::QueryLimit(format!(
                        "at column {column}: the wildcard looks at more than {} terms; put more \
                         literal characters before the first '*'",
                        limits.max_wildcard_scanned_terms
                    )));
                }
                if scanned.is_multiple_of(4096) && Instant::now() > self.context.deadline {
                    return Err(SearchError::TimeBudget(limits.time_budget));
                }
                let Some(rest) = stream.key().get(base.len()..) else {
                    continue;
                };
                let Ok(text) = std::str::from_utf8(rest) else {
                    continue;
                };
                if glob_matches(glob, text) && !matched.contains(text) {
                    if matched.len() >= limits.max_wildcard_terms {
                        return Err(SearchError::QueryLimit(format!(
                            "at column {column}: the wildcard matches more than {} distinct \
                             values; make it more specific",
                            limits.max_wildcard_terms
                        )));
                    }
                    matched.insert(text.to_string());
                }
            }
        }
        Ok(matched.iter().map(|value| make_term(value)).collect())
    }
}

fn text_field(schema: &IndexSchema, name: &str) -> Option<Field> {
    match name {
        "output" => Some(schema.output),
        "rule" => Some(schema.rule),
        "description" => Some(schema.description),
        _ => None,
    }
}

fn term_set(terms: Vec<Term>) -> Box<dyn Query> {
    if terms.is_empty() {
        return Box::new(EmptyQuery);
    }
    Box::new(TermSetQuery::new(terms))
}

/// The severity terms of every rank a document can hold (Priority's values, which findings'
/// severities map onto) between two bounds on severity terms.
fn ranks_within(field: Field, lower: &Bound<Term>, upper: &Bound<Term>) -> Vec<Term> {
    let value = |term: &Term| term.value().as_u64();
    (0..=Priority::Emergency as u64)
        .filter(|rank| match lower {
            Bound::Included(term) => value(term).is_some_and(|bound| *rank >= bound),
            Bound::Excluded(term) => value(term).is_some_and(|bound| *rank > bound),
            Bound::Unbounded => true,
        })
        .filter(|rank| match upper {
            Bound::Included(term) => value(term).is_some_and(|bound| *rank <= bound),
            Bound::Excluded(term) => value(term).is_some_and(|bound| *rank < bound),
            Bound::Unbounded => true,
        })
        .map(|rank| Term::from_field_u64(field, rank))
        .collect()
}

fn comparison_bounds(comparison: Comparison, term: Term) -> (Bound<Term>, Bound<Term>) {
    match comparison {
        Comparison::Greater => (Bound::Excluded(term), Bound::Unbounded),
        Comparison::GreaterOrEqual => (Bound::Included(term), Bound::Unbounded),
        Comparison::Less => (Bound::Unbounded, Bound::Excluded(term)),
        Comparison::LessOrEqual => (Bound::Unbounded, Bound::Included(term)),
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut successor = prefix.to_vec();
    while let Some(last) = successor.pop() {
        if last < u8::MAX {
            successor.push(last + 1);
            return Some(successor);
        }
    }
    None
}

/// Whether `text` matches the whole of `glob` (`*` any run, `?` one character).
pub fn glob_matches(glob: &[GlobToken], text: &str) -> bool {
    let characters: Vec<char> = text.chars().collect();
    let (mut glob_index, mut text_index) = (0usize, 0usize);
    // Where to resume after the last `*`: its glob position and the text position it covers to.
    let mut backtrack: Option<(usize, usize)> = None;
    while text_index < characters.len() {
        match glob.get(glob_index) {
            Some(GlobToken::AnyRun) => {
                backtrack = Some((glob_index, text_index));
                glob_index += 1;
                continue;
            }
            Some(GlobToken::AnyChar) => {
                glob_index += 1;
                text_index += 1;
                continue;
            }
            Some(GlobToken::Literal(expected)) if *expected == characters[text_index] => {
                glob_index += 1;
                text_index += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((star, covered)) => {
                glob_index = star + 1;
                text_index = covered + 1;
                backtrack = Some((star, covered + 1));
            }
            None => return false,
        }
    }
    glob[glob_index..]
        .iter()
        .all(|token| *token == GlobToken::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Vec<GlobToken> {
        pattern
            .chars()
            .map(|character| match character {
                '*' => GlobToken::AnyRun,
                '?' => GlobToken::AnyChar,
                other => GlobToken::Literal(other),
            })
            .collect()
    }

    #[test]
    fn globs_match_whole_values() {
        assert!(glob_matches(&glob("nginx*"), "nginx:1.25"));
        assert!(glob_matches(&glob("*cat*"), "/bin/cat"));
        assert!(glob_matches(&glob("a?c"), "abc"));
        assert!(!glob_matches(&glob("a?c"), "abbc"));
        assert!(glob_matches(&glob("*"), ""));
        assert!(!glob_matches(&glob("ab"), "abc"));
        assert!(glob_matches(&glob("a*b*c"), "axxbyyc"));
        assert!(!glob_matches(&glob("a*b*c"), "axxbyy"));
        assert!(glob_matches(&glob("é*"), "été"));
    }

    #[test]
    fn prefix_successors_bound_every_extension() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xff]), None);
    }
}
