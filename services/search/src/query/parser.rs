//! The query language: text in, syntax tree out, or an error that names the column and what
//! was expected there.
//!
//! ```text
//! query      := or_expr END
//! or_expr    := and_expr ( ("OR" | "||") and_expr )*
//! and_expr   := unary ( ["AND" | "&&"] unary )*          adjacent clauses are AND-ed
//! unary      := ("NOT" | "!" | "-") unary | "+" unary | primary
//! primary    := "(" or_expr ")" | FIELD ":" value | PHRASE | WORD
//! value      := "(" or_expr ")"                         the field applies inside
//!             | ("[" | "{") bound "TO" bound ("]" | "}") inclusive [ ] or exclusive { }
//!             | (">=" | "<=" | ">" | "<") WORD
//!             | "*"                                     the field has a value
//!             | PHRASE | WORD
//! ```
//!
//! Words may contain `*` and `?` wildcards; a backslash takes the next character literally.
//! A word followed by `:` names a field, so field values may themselves contain colons
//! (`image:nginx:1.25`). Everything here is bounded: length, clause count and nesting depth,
//! so no input can make the parser use unbounded stack or time.

use std::fmt;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Longest query text, in bytes.
    pub max_bytes: usize,
    /// Most field or text clauses in one query.
    pub max_clauses: usize,
    /// Deepest nesting of parentheses and negations.
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bytes: 4096,
            max_clauses: 1024,
            max_depth: 32,
        }
    }
}

/// A syntax error: where it is (1-based character column) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "at column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for QueryError {}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every document.
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Match(Match),
}

/// One clause: a value matched against a field, or against the free-text fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The field as written; `None` for free text.
    pub field: Option<String>,
    /// Column where the clause starts (the field name, or the value for free text).
    pub column: usize,
    pub value: MatchValue,
}

/// What a clause matches.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchValue {
    /// A word without wildcards (escapes resolved).
    Term(String),
    /// A word with wildcards.
    Wildcard(Vec<GlobToken>),
    /// Quoted text.
    Phrase(String),
    /// `[a TO b]`, `{a TO b}`, either end `*` for open.
    Range {
        lower: RangeBound,
        upper: RangeBound,
    },
    /// `>=x`, `>x`, `<=x`, `<x`.
    Compare(Comparison, String),
    /// `field:*`.
    Exists,
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeBound {
    /// `None` for an open end (`*`).
    pub value: Option<String>,
    pub inclusive: bool,
}

/// A one-sided comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// A piece of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobToken {
    Literal(char),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, possibly empty.
    AnyRun,
}

/// Parses `text` within `limits`.
pub fn parse(text: &str, limits: &ParseLimits) -> Result<Node, QueryError> {
    if text.len() > limits.max_bytes {
        return Err(QueryError {
            column: 1,
            message: format!(
                "query is {} bytes long; at most {} are accepted",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    let mut parser = Parser {
        chars: text.chars().collect(),
        position: 0,
        limits: *limits,
        clauses: 0,
        depth: 0,
    };
    parser.skip_spaces();
    if parser.at_end() {
        return Ok(Node::All);
    }
    if parser.peek() == Some('*') && parser.word_ends_at(parser.position + 1) {
        parser.position += 1;
        parser.skip_spaces();
        if parser.at_end() {
            return Ok(Node::All);
        }
        parser.position = 0;
        parser.skip_spaces();
    }
    let node = parser.parse_or(None)?;
    parser.skip_spaces();
    if let Some(found) = parser.peek() {
        let message = if found == ')' {
            "unbalanced parenthesis: this ')' closes nothing".to_string()
        } else {
            format!("expected an operator or the end of the query, found {found:?}")
        };
        return Err(parser.error_here(message));
    }
    Ok(node)
}

struct Parser {
    chars: Vec<char>,
    position: usize,
    limits: ParseLimits,
    clauses: usize,
    depth: usize,
}

/// Characters that end a word.
fn ends_word(character: char) -> bool {
    character.is_whitespace() || matches!(character, '(' | ')' | '"')
}

/// Characters a field name may contain (Falco names: `proc.aname[2]`, `k8s.pod.label.app`).
fn is_field_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-' | '[' | ']' | '/')
}

impl Parser {
    fn at_end(&self) -> bool {
        self.position >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.position + offset).copied()
    }

    fn column(&self) -> usize {
        self.position + 1
    }

    fn error_at(&self, column: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            column,
            message: message.into(),
        }
    }

    fn error_here(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.column(), message)
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of query".to_string(),
            Some(_) => {
                let word: String = self
                    .chars
                    .iter()
                    .skip(self.position)
                    .take_while(|character| !character.is_whitespace())
                    .take(24)
                    .collect();
                format!("{word:?}")
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn word_ends_at(&self, index: usize) -> bool {
        self.chars
            .get(index)
            .is_none_or(|character| ends_word(*character))
    }

    /// True when the text at the cursor is `keyword` standing alone.
    fn at_keyword(&self, keyword: &str) -> bool {
        let length = keyword.chars().count();
        let matches = keyword
            .chars()
            .enumerate()
            .all(|(offset, expected)| self.peek_at(offset) == Some(expected));
        matches && self.word_ends_at(self.position + length)
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.error_here(format!(
                "query nests deeper than {} levels of parentheses and negations",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn count_clause(&mut self, column: usize) -> Result<(), QueryError> {
        self.clauses += 1;
        if self.clauses > self.limits.max_clauses {
            return Err(self.error_at(
                column,
                format!(
                    "query has more than {} clauses; split it or use fewer terms",
                    self.limits.max_clauses
                ),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self, field: Option<&(String, usize)>) -> Result<Node, QueryError> {
        let mut alternatives = vec![self.parse_and(field)?];
        loop {
            self.skip_spaces();
            let or_keyword = self.at_keyword("OR");
            if or_keyword || (self.peek() == Some('|') && self.peek_at(1) == Some('|')) {
                // "OR" and "||" are both two characters long.
                self.position += 2;
            } else {
                break;
            }
            self.skip_spaces();
            if self.at_end() || self.peek() == Some(')') {
                return Err(self.error_here(format!(
                    "expected a clause after OR, found {}",
                    self.describe_here()
                )));
            }
            alternatives.push(self.parse_and(field)?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Node::Or(alternatives)
        })
    }

    fn parse_and(&mut self, field: Option<&(String, usize)>) -> Result<Node, QueryError> {
        let mut required = vec![self.parse_unary(field)?];
        loop {
            self.skip_spaces();
            if self.at_end() || self.peek() == Some(')') || self.at_keyword("OR") {
                break;
            }
            if self.peek() == Some('|') && self.peek_at(1) == Some('|') {
                break;
            }
            if self.at_keyword("AND") {
                self.position += 3;
                self.skip_spaces();
                self.expect_clause_after("AND")?;
            } else if self.peek() == Some('&') && self.peek_at(1) == Some('&') {
                self.position += 2;
                self.skip_spaces();
                self.expect_clause_after("&&")?;
            }
            required.push(self.parse_unary(field)?);
        }
        Ok(if required.len() == 1 {
            required.remove(0)
        } else {
            Node::And(required)
        })
    }

    fn expect_clause_after(&self, operator: &str) -> Result<(), QueryError> {
        if self.at_end() || self.peek() == Some(')') || self.at_keyword("OR") {
            return Err(self.error_here(format!(
                "expected a clause after {operator}, found {}",
                self.describe_here()
            )));
        }
        Ok(())
    }

    fn parse_unary(&mut self, field: Option<&(String, usize)>) -> Result<Node, QueryError> {
        self.skip_spaces();
        let negation_length = if self.at_keyword("NOT") {
            Some(3)
        } else if matches!(self.peek(), Some('!' | '-'))
            && self
                .peek_at(1)
                .is_some_and(|next| !ends_word(next) || next == '(' || next == '"')
        {
            Some(1)
        } else {
            None
        };
        if let Some(length) = negation_length {
            let operator_column = self.column();
            self.position += length;
            self.skip_spaces();
            if self.at_end() || self.peek() == Some(')') {
                return Err(self.error_here(format!(
                    "expected a clause after the negation at column {operator_column}, found {}",
                    self.describe_here()
                )));
            }
            self.enter()?;
            let negated = self.parse_unary(field)?;
            self.leave();
            return Ok(Node::Not(Box::new(negated)));
        }
        if self.peek() == Some('+') && self.peek_at(1).is_some_and(|next| !next.is_whitespace()) {
            self.position += 1;
        }
        self.parse_primary(field)
    }

    fn parse_primary(&mut self, field: Option<&(String, usize)>) -> Result<Node, QueryError> {
        self.skip_spaces();
        let column = self.column();
        match self.peek() {
            None => Err(self.error_here("expected a clause, found end of query")),
            Some('(') => {
                self.position += 1;
                self.enter()?;
                self.skip_spaces();
                if self.peek() == Some(')') {
                    return Err(
                        self.error_here("expected a clause inside the parentheses, found ')'")
                    );
                }
                let inner = self.parse_or(field)?;
                self.skip_spaces();
                if self.peek() != Some(')') {
                    return Err(self.error_here(format!(
                        "expected ')' to close the '(' at column {column}, found {}",
                        self.describe_here()
                    )));
                }
                self.position += 1;
                self.leave();
                Ok(inner)
            }
            Some(')') => Err(self.error_here("expected a clause, found ')'")),
            Some('"') => {
                let phrase = self.read_phrase()?;
                self.clause(field, column, MatchValue::Phrase(phrase))
            }
            Some(_) => {
                if field.is_none()
                    && let Some(name) = self.try_field_name()
                {
                    return self.parse_field_value(name, column);
                }
                let word = self.read_word(false)?;
                if word.is_empty() {
                    return Err(self
                        .error_here(format!("expected a clause, found {}", self.describe_here())));
                }
                self.clause(field, column, word_value(word))
            }
        }
    }

    fn clause(
        &mut self,
        field: Option<&(String, usize)>,
        column: usize,
        value: MatchValue,
    ) -> Result<Node, QueryError> {
        self.count_clause(column)?;
        Ok(Node::Match(Match {
            field: field.map(|(name, _)| name.clone()),
            column: field.map_or(column, |(_, field_column)| *field_column),
            value,
        }))
    }

    /// If the cursor is at `name:`, consumes it and returns the name.
    fn try_field_name(&mut self) -> Option<String> {
        let mut end = self.position;
        while self
            .chars
            .get(end)
            .is_some_and(|character| is_field_char(*character))
        {
            end += 1;
        }
        if end == self.position || self.chars.get(end) != Some(&':') {
            return None;
        }
        let name: String = self.chars[self.position..end].iter().collect();
        self.position = end + 1;
        Some(name)
    }

    fn parse_field_value(&mut self, name: String, column: usize) -> Result<Node, QueryError> {
        let field = (name, column);
        let missing = |parser: &Parser| {
            parser.error_here(format!(
                "expected a value after \"{}:\", found {}",
                field.0,
                parser.describe_here()
            ))
        };
        match self.peek() {
            None => Err(missing(self)),
            Some(character) if character.is_whitespace() || character == ')' => Err(missing(self)),
            Some('(') => {
                let group_column = self.column();
                self.position += 1;
                self.enter()?;
                self.skip_spaces();
                if self.peek() == Some(')') {
                    return Err(self.error_here(format!(
                        "expected values for \"{}\" inside the parentheses, found ')'",
                        field.0
                    )));
                }
                let inner = self.parse_or(Some(&field))?;
                self.skip_spaces();
                if self.peek() != Some(')') {
                    return Err(self.error_here(format!(
                        "expected ')' to close the '(' at column {group_column}, found {}",
                        self.describe_here()
                    )));
                }
                self.position += 1;
                self.leave();
                Ok(inner)
            }
            Some('[' | '{') => {
                let value = self.read_range()?;
                self.clause(Some(&field), column, value)
            }
            Some('>' | '<') => {
                let comparison = self.read_comparison();
                self.skip_spaces();
                let value_column = self.column();
                let value = if self.peek() == Some('"') {
                    self.read_phrase()?
                } else {
                    self.read_word(true)?.into_string()
                };
                if value.is_empty() {
                    return Err(self.error_at(
                        value_column,
                        format!(
                            "expected a value to compare \"{}\" with, found {}",
                            field.0,
                            self.describe_here()
                        ),
                    ));
                }
                self.clause(Some(&field), column, MatchValue::Compare(comparison, value))
            }
            Some('"') => {
                let phrase = self.read_phrase()?;
                self.clause(Some(&field), column, MatchValue::Phrase(phrase))
            }
            Some('*') if self.word_ends_at(self.position + 1) => {
                self.position += 1;
                self.clause(Some(&field), column, MatchValue::Exists)
            }
            Some(_) => {
                let word = self.read_word(true)?;
                self.clause(Some(&field), column, word_value(word))
            }
        }
    }

    fn read_comparison(&mut self) -> Comparison {
        let greater = self.peek() == Some('>');
        self.position += 1;
        let or_equal = self.peek() == Some('=');
        if or_equal {
            self.position += 1;
        }
        match (greater, or_equal) {
            (true, true) => Comparison::GreaterOrEqual,
            (true, false) => Comparison::Greater,
            (false, true) => Comparison::LessOrEqual,
            (false, false) => Comparison::Less,
        }
    }

    fn read_range(&mut self) -> Result<MatchValue, QueryError> {
        let open_column = self.column();
        let lower_inclusive = self.peek() == Some('[');
        self.position += 1;
        self.skip_spaces();
        let lower = self.read_range_bound("a lower bound")?;
        self.skip_spaces();
        if !self.at_keyword("TO") {
            return Err(self.error_here(format!(
                "expected 'TO' between the bounds of the range at column {open_column}, found {}",
                self.describe_here()
            )));
        }
        self.position += 2;
        self.skip_spaces();
        let upper = self.read_range_bound("an upper bound")?;
        self.skip_spaces();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => {
                return Err(self.error_here(format!(
                    "expected ']' or '}}' to close the range at column {open_column}, found {}",
                    self.describe_here()
                )));
            }
        };
        self.position += 1;
        Ok(MatchValue::Range {
            lower: RangeBound {
                value: lower,
                inclusive: lower_inclusive,
            },
            upper: RangeBound {
                value: upper,
                inclusive: upper_inclusive,
            },
        })
    }

    fn read_range_bound(&mut self, what: &str) -> Result<Option<String>, QueryError> {
        let value = if self.peek() == Some('"') {
            self.read_phrase()?
        } else {
            let start = self.position;
            while self.peek().is_some_and(|character| {
                !character.is_whitespace() && !matches!(character, ']' | '}')
            }) {
                self.position += 1;
            }
            self.chars[start..self.position].iter().collect()
        };
        if value.is_empty() {
            return Err(self.error_here(format!(
                "expected {what} (a value or '*'), found {}",
                self.describe_here()
            )));
        }
        Ok(if value == "*" { None } else { Some(value) })
    }

    /// Reads quoted text; `\"` and `\\` inside are literal.
    fn read_phrase(&mut self) -> Result<String, QueryError> {
        let open_column = self.column();
        self.position += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open_column,
                        "unterminated phrase: expected a closing '\"' before the end of the query",
                    ));
                }
                Some('"') => {
                    self.position += 1;
                    return Ok(text);
                }
                Some('\\') => {
                    self.position += 1;
                    match self.peek() {
                        Some(escaped) => {
                            text.push(escaped);
                            self.position += 1;
                        }
                        None => {
                            return Err(self.error_here(
                                "expected a character after '\\', found end of query",
                            ));
                        }
                    }
                }
                Some(character) => {
                    text.push(character);
                    self.position += 1;
                }
            }
        }
    }

    /// Reads a word; wildcards stay marked so [`word_value`] can tell them from escaped ones.
    /// `allow_colon` lets field values contain colons.
    fn read_word(&mut self, allow_colon: bool) -> Result<RawWord, QueryError> {
        let mut word = RawWord::default();
        while let Some(character) = self.peek() {
            if ends_word(character) || (!allow_colon && character == ':') {
                break;
            }
            self.position += 1;
            match character {
                '\\' => match self.peek() {
                    Some(escaped) => {
                        word.tokens.push(GlobToken::Literal(escaped));
                        self.position += 1;
                    }
                    None => {
                        return Err(
                            self.error_here("expected a character after '\\', found end of query")
                        );
                    }
                },
                '*' => word.tokens.push(GlobToken::AnyRun),
                '?' => word.tokens.push(GlobToken::AnyChar),
                other => word.tokens.push(GlobToken::Literal(other)),
            }
        }
        if !allow_colon && self.peek() == Some(':') {
            return Err(self.error_here(format!(
                "expected a field name before ':' (letters, digits, '.', '_', '-', '[', ']', '/'); quote the text to search it literally, found {}",
                self.describe_here()
            )));
        }
        Ok(word)
    }
}

#[derive(Default)]
struct RawWord {
    tokens: Vec<GlobToken>,
}

impl RawWord {
    fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl From<RawWord> for String {
    fn from(word: RawWord) -> String {
        word.tokens
            .iter()
            .map(|token| match token {
                GlobToken::Literal(character) => *character,
                GlobToken::AnyChar => '?',
                GlobToken::AnyRun => '*',
            })
            .collect()
    }
}

impl RawWord {
    fn into_string(self) -> String {
        self.into()
    }
}

fn word_value(word: RawWord) -> MatchValue {
    let has_wildcard = word
        .tokens
        .iter()
        .any(|token| !matches!(token, GlobToken::Literal(_)));
    if has_wildcard {
        MatchValue::Wildcard(word.tokens)
    } else {
        MatchValue::Term(word.into_string())
    }
}

#[cfg(test)]
mod tests;
