//! The compact text form of explorer queries.
//!
//! ```text
//! query     := KIND [ "where" expr ] [ "include" KIND { "," KIND } ] [ "limit" NUMBER ]
//! expr      := term { "or" term }
//! term      := factor { "and" factor }
//! factor    := "not" factor | "(" expr ")" | "has" KIND [ "(" expr ")" ] | property
//! property  := NAME [ OP value ]            OP is one of = != > >= < <= ~
//! value     := NUMBER | "quoted string" | WORD
//! ```
//!
//! Example: `pod where exposed_to_internet and has vulnerability(severity >= critical)`.

use serde_json::Value;

use crate::error::{GraphError, Result};
use crate::explorer::ast::{Condition, Query, Related};

/// Longest query text accepted.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Deepest nesting of parentheses and `has` accepted.
pub const MAX_NESTING: usize = 8;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    Op(String),
    Open,
    Close,
    Comma,
}

fn invalid(position: usize, message: impl Into<String>) -> GraphError {
    GraphError::InvalidQuery {
        position: format!("byte {position}"),
        message: message.into(),
    }
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>> {
    let mut tokens = Vec::new();
    let bytes = input.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let start = index;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => index += 1,
            b'(' => {
                tokens.push((start, Token::Open));
                index += 1;
            }
            b')' => {
                tokens.push((start, Token::Close));
                index += 1;
            }
            b',' => {
                tokens.push((start, Token::Comma));
                index += 1;
            }
            b'"' | b'\'' => {
                let quote = byte;
                index += 1;
                let content_start = index;
                while index < bytes.len() && bytes[index] != quote {
                    index += 1;
                }
                if index >= bytes.len() {
                    return Err(invalid(start, "unterminated string"));
                }
                tokens.push((start, Token::Text(input[content_start..index].to_string())));
                index += 1;
            }
            b'=' | b'!' | b'<' | b'>' | b'~' => {
                let two = input.get(index..index + 2).unwrap_or("");
                let op = if matches!(two, "!=" | ">=" | "<=" | "==") {
                    two
                } else {
                    &input[index..index + 1]
                };
                if op == "!" {
                    return Err(invalid(start, "expected != after !"));
                }
                index += op.len();
                tokens.push((
                    start,
                    Token::Op(if op == "==" {
                        "=".to_string()
                    } else {
                        op.to_string()
                    }),
                ));
            }
            _ if byte.is_ascii_digit()
                || (byte == b'-' && bytes.get(index + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                index += 1;
                while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == b'.')
                {
                    index += 1;
                }
                let text = &input[start..index];
                let number = text
                    .parse::<f64>()
                    .map_err(|_| invalid(start, format!("bad number {text}")))?;
                tokens.push((start, Token::Number(number)));
            }
            _ if byte.is_ascii_alphanumeric()
                || matches!(byte, b'_' | b'-' | b'.' | b':' | b'/' | b'*' | b'@') =>
            {
                while index < bytes.len()
                    && (bytes[index].is_ascii_alphanumeric()
                        || matches!(bytes[index], b'_' | b'-' | b'.' | b':' | b'/' | b'*' | b'@'))
                {
                    index += 1;
                }
                tokens.push((start, Token::Word(input[start..index].to_string())));
            }
            _ => {
                return Err(invalid(
                    start,
                    format!(
                        "unexpected character {:?}",
                        input[start..].chars().next().unwrap_or('?')
                    ),
                ));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    position: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(_, token)| token)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map(|(offset, _)| *offset)
            .unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self
            .tokens
            .get(self.position)
            .map(|(_, token)| token.clone());
        self.position += 1;
        token
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(found)) if found.eq_ignore_ascii_case(word))
    }

    fn word(&mut self, what: &str) -> Result<String> {
        let offset = self.offset();
        match self.next() {
            Some(Token::Word(word)) => Ok(word),
            Some(other) => Err(invalid(offset, format!("expected {what}, found {other:?}"))),
            None => Err(invalid(offset, format!("expected {what}, found the end"))),
        }
    }

    fn query(&mut self) -> Result<Query> {
        let entity = self.word("an entity kind")?;
        let mut query = Query {
            entity,
            condition: None,
            include: Vec::new(),
            limit: None,
        };
        if self.keyword("where") {
            self.position += 1;
            query.condition = Some(self.expr(0)?);
        }
        if self.keyword("include") {
            self.position += 1;
            loop {
                query.include.push(self.word("an entity kind")?);
                if self.peek() == Some(&Token::Comma) {
                    self.position += 1;
                    continue;
                }
                break;
            }
        }
        if self.keyword("limit") {
            self.position += 1;
            let offset = self.offset();
            match self.next() {
                Some(Token::Number(number)) if number >= 0.0 && number.fract() == 0.0 => {
                    query.limit = Some(number as usize)
                }
                _ => return Err(invalid(offset, "limit takes a whole number")),
            }
        }
        if let Some((offset, token)) = self.tokens.get(self.position) {
            return Err(invalid(
                *offset,
                format!("unexpected {token:?} after the query"),
            ));
        }
        Ok(query)
    }

    fn expr(&mut self, depth: usize) -> Result<Condition> {
        if depth > MAX_NESTING {
            return Err(invalid(
                self.offset(),
                format!("nesting deeper than {MAX_NESTING}"),
            ));
        }
        let mut terms = vec![self.term(depth)?];
        while self.keyword("or") {
            self.position += 1;
            terms.push(self.term(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Condition::Or { or: terms }
        })
    }

    fn term(&mut self, depth: usize) -> Result<Condition> {
        let mut factors = vec![self.factor(depth)?];
        while self.keyword("and") {
            self.position += 1;
            factors.push(self.factor(depth)?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Condition::And { and: factors }
        })
    }

    fn factor(&mut self, depth: usize) -> Result<Condition> {
        if self.keyword("not") {
            self.position += 1;
            return Ok(Condition::Not {
                not: Box::new(self.factor(depth + 1)?),
            });
        }
        if self.peek() == Some(&Token::Open) {
            self.position += 1;
            let inner = self.expr(depth + 1)?;
            self.close()?;
            return Ok(inner);
        }
        if self.keyword("has") {
            self.position += 1;
            let entity = self.word("an entity kind after has")?;
            let mut condition = None;
            if self.peek() == Some(&Token::Open) {
                self.position += 1;
                if self.keyword("where") {
                    self.position += 1;
                }
                condition = Some(Box::new(self.expr(depth + 1)?));
                self.close()?;
            }
            return Ok(Condition::Related {
                related: Related { entity, condition },
            });
        }
        let property = self.word("a property name")?;
        let op = match self.peek() {
            Some(Token::Op(op)) => {
                let op = op.clone();
                self.position += 1;
                op
            }
            _ => {
                return Ok(Condition::Property {
                    property,
                    op: "=".to_string(),
                    value: Value::Bool(true),
                });
            }
        };
        let offset = self.offset();
        let value = match self.next() {
            Some(Token::Number(number)) => serde_json::Number::from_f64(number)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Some(Token::Text(text)) => Value::String(text),
            Some(Token::Word(word)) => match word.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(word),
            },
            _ => return Err(invalid(offset, format!("expected a value after {op}"))),
        };
        Ok(Condition::Property {
            property,
            op,
            value,
        })
    }

    fn close(&mut self) -> Result<()> {
        let offset = self.offset();
        match self.next() {
            Some(Token::Close) => Ok(()),
            _ => Err(invalid(offset, "expected )")),
        }
    }
}

/// Parses the compact text form.
pub fn parse_text(input: &str) -> Result<Query> {
    if input.len() > MAX_QUERY_BYTES {
        return Err(invalid(
            MAX_QUERY_BYTES,
            format!("query longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(invalid(0, "empty query"));
    }
    let mut parser = Parser {
        tokens,
        position: 0,
        end: input.len(),
    };
    parser.query()
}

fn quote(value: &Value) -> String {
    match value {
        Value::String(text)
            if text.chars().all(|character| {
                character.is_ascii_alphanumeric() || "_-.:/".contains(character)
            }) && !text.is_empty()
                && text != "and"
                && text != "or"
                && text != "not"
                && text != "true"
                && text != "false"
                && !text.starts_with(|character: char| character.is_ascii_digit()) =>
        {
            text.clone()
        }
        Value::String(text) => format!("\"{text}\""),
        other => other.to_string(),
    }
}

fn render_condition(condition: &Condition, output: &mut String) {
    match condition {
        Condition::And { and } => join(and, " and ", output),
        Condition::Or { or } => join(or, " or ", output),
        Condition::Not { not } => {
            output.push_str("not (");
            render_condition(not, output);
            output.push(')');
        }
        Condition::Related { related } => {
            output.push_str("has ");
            output.push_str(&related.entity);
            if let Some(inner) = &related.condition {
                output.push('(');
                render_condition(inner, output);
                output.push(')');
            }
        }
        Condition::Property {
            property,
            op,
            value,
        } => {
            output.push_str(property);
            if !(op == "=" && *value == Value::Bool(true)) {
                output.push_str(&format!(" {op} {}", quote(value)));
            }
        }
    }
}

fn join(conditions: &[Condition], separator: &str, output: &mut String) {
    for (index, condition) in conditions.iter().enumerate() {
        if index > 0 {
            output.push_str(separator);
        }
        output.push('(');
        render_condition(condition, output);
        output.push(')');
    }
}

/// Renders a query in the compact text form (parsing it back yields the same query).
pub fn to_text(query: &Query) -> String {
    let mut output = query.entity.clone();
    if let Some(condition) = &query.condition {
        output.push_str(" where ");
        render_condition(condition, &mut output);
    }
    if !query.include.is_empty() {
        output.push_str(" include ");
        output.push_str(&query.include.join(", "));
    }
    if let Some(limit) = query.limit {
        output.push_str(&format!(" limit {limit}"));
    }
    output
}
