//! Recursive-descent parser of Falco conditions, following libsinsp's grammar: `or` binds
//! loosest, then `and`, then `not`; checks are `field op value`, `field exists`, `field in (...)`
//! or a bare macro name.

use super::ast::{Expr, FieldRef, Operand, Operator, Rhs, Span, Transformer};

/// Deepest nesting of parentheses and `not` accepted, as libsinsp does, so untrusted
/// conditions cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;
/// Longest condition text accepted.
pub const MAX_CONDITION_BYTES: usize = 1 << 20;

/// A condition that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Byte offset of the problem in the condition.
    pub offset: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} at offset {}", self.message, self.offset)
    }
}

/// Parses a whole condition.
pub fn parse_condition(text: &str) -> Result<Expr, ParseError> {
    if text.len() > MAX_CONDITION_BYTES {
        return Err(ParseError {
            message: format!("condition longer than {MAX_CONDITION_BYTES} bytes"),
            offset: 0,
        });
    }
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        cursor: 0,
        depth: 0,
    };
    parser.skip_blanks();
    if parser.at_end() {
        return Err(parser.error("empty condition"));
    }
    let expr = parser.parse_or()?;
    parser.skip_blanks();
    if !parser.at_end() {
        return Err(parser.error(&format!(
            "unexpected {:?}, expected 'and', 'or' or the end of the condition",
            parser.peek_word()
        )));
    }
    Ok(expr)
}

struct Parser<'text> {
    text: &'text str,
    bytes: &'text [u8],
    cursor: usize,
    depth: usize,
}

fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x08 | 0x0b | 0x0c)
}

fn is_identifier_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_identifier_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn is_bare_value_byte(byte: u8) -> bool {
    !is_blank(byte) && !matches!(byte, b'(' | b')' | b',' | b'=' | b'"' | b'\'')
}

impl<'text> Parser<'text> {
    fn at_end(&self) -> bool {
        self.cursor >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.cursor).copied()
    }

    fn error(&self, message: &str) -> ParseError {
        ParseError {
            message: message.to_string(),
            offset: self.cursor,
        }
    }

    fn peek_word(&self) -> String {
        let rest = &self.text[self.cursor..];
        let word: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        if word.is_empty() {
            "end of condition".to_string()
        } else {
            word
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.cursor += 1;
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("condition nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Matches a keyword that must be followed by a blank or `(`.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.cursor + word.len();
        if self.bytes.len() < end || &self.bytes[self.cursor..end] != word.as_bytes() {
            return false;
        }
        match self.bytes.get(end) {
            Some(&next) if is_blank(next) || next == b'(' => {
                self.cursor = end;
                true
            }
            _ => false,
        }
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut children = vec![self.parse_and()?];
        loop {
            let saved = self.cursor;
            self.skip_blanks();
            if self.keyword("or") {
                children.push(self.parse_and()?);
            } else {
                self.cursor = saved;
                break;
            }
        }
        self.leave();
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::Or(children)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut children = vec![self.parse_not()?];
        loop {
            let saved = self.cursor;
            self.skip_blanks();
            if self.keyword("and") {
                children.push(self.parse_not()?);
            } else {
                self.cursor = saved;
                break;
            }
        }
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::And(children)
        })
    }

    fn parse_not(&mut self) -> Result<Expr, ParseError> {
        self.skip_blanks();
        if self.keyword("not") {
            self.enter()?;
            let inner = self.parse_not()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_check()
    }

    fn parse_check(&mut self) -> Result<Expr, ParseError> {
        self.skip_blanks();
        let start = self.cursor;
        match self.peek() {
            None => Err(self.error("expected a check, a macro or '(' but found the end")),
            Some(b'(') => {
                self.cursor += 1;
                let inner = self.parse_or()?;
                self.skip_blanks();
                if self.peek() != Some(b')') {
                    return Err(self.error(&format!(
                        "expected ')' to close the '(' at offset {start}, found {:?}",
                        self.peek_word()
                    )));
                }
                self.cursor += 1;
                Ok(inner)
            }
            Some(byte) if is_identifier_start(byte) => {
                let (name, has_dot) = self.lex_name();
                if self.peek() == Some(b'(')
                    && let Some(transformer) = Transformer::from_name(&name)
                {
                    let field = self.parse_transformed_field(transformer, start)?;
                    return self.parse_condition_tail(field, start);
                }
                if !has_dot {
                    return Ok(Expr::Macro {
                        name,
                        span: Span {
                            start,
                            end: self.cursor,
                        },
                    });
                }
                let arg = self.lex_field_arg()?;
                let field = FieldRef {
                    name,
                    arg,
                    transformers: Vec::new(),
                    span: Span {
                        start,
                        end: self.cursor,
                    },
                };
                self.parse_condition_tail(field, start)
            }
            Some(_) => Err(self.error(&format!(
                "expected a field, a macro name or '(', found {:?}",
                self.peek_word()
            ))),
        }
    }

    /// Lexes `ident(.ident)*`, returning the name and whether it had a dot.
    fn lex_name(&mut self) -> (String, bool) {
        let start = self.cursor;
        let mut has_dot = false;
        while let Some(byte) = self.peek() {
            if is_identifier_continue(byte) {
                self.cursor += 1;
            } else if byte == b'.'
                && self
                    .bytes
                    .get(self.cursor + 1)
                    .is_some_and(|next| is_identifier_continue(*next))
            {
                has_dot = true;
                self.cursor += 1;
            } else {
                break;
            }
        }
        (self.text[start..self.cursor].to_string(), has_dot)
    }

    fn lex_field_arg(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek() != Some(b'[') {
            return Ok(None);
        }
        let open = self.cursor;
        self.cursor += 1;
        if matches!(self.peek(), Some(b'"' | b'\'')) {
            let operand = self.lex_quoted()?;
            if self.peek() != Some(b']') {
                return Err(self.error("expected ']' after the quoted field argument"));
            }
            self.cursor += 1;
            return Ok(Some(operand.text));
        }
        let start = self.cursor;
        while let Some(byte) = self.peek() {
            if byte == b']' {
                let arg = self.text[start..self.cursor].to_string();
                self.cursor += 1;
                return Ok(Some(arg));
            }
            if is_blank(byte) || byte == b'[' || byte == b'"' || byte == b'\'' {
                break;
            }
            self.cursor += 1;
        }
        Err(ParseError {
            message: "unterminated field argument, expected ']'".to_string(),
            offset: open,
        })
    }

    fn parse_transformed_field(
        &mut self,
        transformer: Transformer,
        start: usize,
    ) -> Result<FieldRef, ParseError> {
        self.enter()?;
        // The cursor is on '(' after the transformer name.
        self.cursor += 1;
        self.skip_blanks();
        let inner_start = self.cursor;
        let mut field = match self.peek() {
            Some(byte) if is_identifier_start(byte) => {
                let (name, has_dot) = self.lex_name();
                if self.peek() == Some(b'(') {
                    let Some(inner) = Transformer::from_name(&name) else {
                        return Err(self.error(&format!("unknown transformer {name:?}")));
                    };
                    self.parse_transformed_field(inner, inner_start)?
                } else {
                    if !has_dot {
                        return Err(ParseError {
                            message: format!(
                                "expected a field inside {}(), found {name:?}",
                                transformer.name()
                            ),
                            offset: inner_start,
                        });
                    }
                    let arg = self.lex_field_arg()?;
                    FieldRef {
                        name,
                        arg,
                        transformers: Vec::new(),
                        span: Span::default(),
                    }
                }
            }
            _ => {
                return Err(
                    self.error(&format!("expected a field inside {}()", transformer.name()))
                );
            }
        };
        self.skip_blanks();
        if self.peek() != Some(b')') {
            return Err(self.error(&format!("expected ')' to close {}(", transformer.name())));
        }
        self.cursor += 1;
        self.leave();
        field.transformers.push(transformer);
        field.span = Span {
            start,
            end: self.cursor,
        };
        Ok(field)
    }

    fn lex_operator(&mut self) -> Result<Operator, ParseError> {
        let start = self.cursor;
        for symbol in ["<=", ">=", "==", "!=", "<", ">", "="] {
            if self.text[self.cursor..].starts_with(symbol) {
                self.cursor += symbol.len();
                return Operator::from_symbol(symbol).ok_or_else(|| self.error("bad operator"));
            }
        }
        while self.peek().is_some_and(|byte| byte.is_ascii_lowercase()) {
            self.cursor += 1;
        }
        let word = &self.text[start..self.cursor];
        match Operator::from_symbol(word) {
            Some(operator) => {
                let terminated = self.peek().is_none_or(|byte| {
                    is_blank(byte) || matches!(byte, b'(' | b')' | b'"' | b'\'')
                });
                if !terminated {
                    self.cursor = start;
                    return Err(self.error(&format!("unknown operator {:?}", self.peek_word())));
                }
                Ok(operator)
            }
            None => {
                self.cursor = start;
                Err(self.error(&format!(
                    "expected an operator (=, !=, <, <=, >, >=, contains, icontains, startswith, endswith, glob, regex, in, intersects, pmatch, exists ...) after the field, found {:?}",
                    self.peek_word()
                )))
            }
        }
    }

    fn parse_condition_tail(&mut self, field: FieldRef, start: usize) -> Result<Expr, ParseError> {
        self.skip_blanks();
        let operator = self.lex_operator()?;
        let rhs = match operator {
            Operator::Exists => Rhs::None,
            operator if operator.takes_list() => self.parse_list_value()?,
            _ => self.parse_single_value()?,
        };
        let end = self.cursor;
        Ok(Expr::Check {
            field,
            operator,
            rhs,
            text: self.text[start..end].trim().to_string(),
            span: Span { start, end },
        })
    }

    fn parse_list_value(&mut self) -> Result<Rhs, ParseError> {
        self.skip_blanks();
        match self.peek() {
            Some(b'(') => {
                let open = self.cursor;
                self.cursor += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_blanks();
                    match self.peek() {
                        Some(b')') => {
                            self.cursor += 1;
                            return Ok(Rhs::List(items));
                        }
                        None => {
                            return Err(ParseError {
                                message: "unterminated list, expected ')'".to_string(),
                                offset: open,
                            });
                        }
                        _ => {}
                    }
                    if !items.is_empty() {
                        if self.peek() != Some(b',') {
                            return Err(self.error(&format!(
                                "expected ',' or ')' in the list, found {:?}",
                                self.peek_word()
                            )));
                        }
                        self.cursor += 1;
                        self.skip_blanks();
                    }
                    items.push(self.lex_value()?);
                }
            }
            Some(byte) if is_identifier_start(byte) => {
                let start = self.cursor;
                let (name, _) = self.lex_name();
                Ok(Rhs::List(vec![Operand {
                    text: name,
                    quoted: false,
                    span: Span {
                        start,
                        end: self.cursor,
                    },
                }]))
            }
            _ => Err(self.error(&format!(
                "expected a list '(...)' or a list name, found {:?}",
                self.peek_word()
            ))),
        }
    }

    fn parse_single_value(&mut self) -> Result<Rhs, ParseError> {
        self.skip_blanks();
        let start = self.cursor;
        if self.peek().is_some_and(is_identifier_start) {
            let (name, _) = self.lex_name();
            if self.peek() == Some(b'(') {
                if name == "val" {
                    self.enter()?;
                    self.cursor += 1;
                    self.skip_blanks();
                    let field_start = self.cursor;
                    let (field_name, has_dot) = self.lex_name();
                    if !has_dot {
                        return Err(ParseError {
                            message: "expected a field inside val()".to_string(),
                            offset: field_start,
                        });
                    }
                    let arg = self.lex_field_arg()?;
                    self.skip_blanks();
                    if self.peek() != Some(b')') {
                        return Err(self.error("expected ')' to close val("));
                    }
                    self.cursor += 1;
                    self.leave();
                    return Ok(Rhs::Field(FieldRef {
                        name: field_name,
                        arg,
                        transformers: Vec::new(),
                        span: Span {
                            start,
                            end: self.cursor,
                        },
                    }));
                }
                if let Some(transformer) = Transformer::from_name(&name) {
                    let field = self.parse_transformed_field(transformer, start)?;
                    return Ok(Rhs::Field(field));
                }
            }
            self.cursor = start;
        }
        Ok(Rhs::Value(self.lex_value()?))
    }

    fn lex_value(&mut self) -> Result<Operand, ParseError> {
        match self.peek() {
            Some(b'"' | b'\'') => self.lex_quoted(),
            Some(byte) if is_bare_value_byte(byte) => {
                let start = self.cursor;
                while self.peek().is_some_and(is_bare_value_byte) {
                    self.cursor += 1;
                }
                Ok(Operand {
                    text: self.text[start..self.cursor].to_string(),
                    quoted: false,
                    span: Span {
                        start,
                        end: self.cursor,
                    },
                })
            }
            _ => Err(self.error(&format!("expected a value, found {:?}", self.peek_word()))),
        }
    }

    fn lex_quoted(&mut self) -> Result<Operand, ParseError> {
        let start = self.cursor;
        let Some(quote) = self.peek() else {
            return Err(self.error("expected a quoted string"));
        };
        self.cursor += 1;
        let mut text = String::new();
        let mut segment_start = self.cursor;
        loop {
            match self.peek() {
                None => {
                    return Err(ParseError {
                        message: "unterminated quoted string".to_string(),
                        offset: start,
                    });
                }
                Some(b'\\') => {
                    let next = self.bytes.get(self.cursor + 1).copied();
                    if matches!(next, Some(b'\\' | b'"' | b'\'')) {
                        text.push_str(&self.text[segment_start..self.cursor]);
                        self.cursor += 2;
                        segment_start = self.cursor - 1;
                    } else {
                        self.cursor += 1;
                    }
                }
                Some(byte) if byte == quote => {
                    text.push_str(&self.text[segment_start..self.cursor]);
                    self.cursor += 1;
                    return Ok(Operand {
                        text,
                        quoted: true,
                        span: Span {
                            start,
                            end: self.cursor,
                        },
                    });
                }
                Some(_) => {
                    // Step over a whole UTF-8 character so slicing stays on boundaries.
                    let width = self.text[self.cursor..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    self.cursor += width;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_texts(expr: &Expr, out: &mut Vec<String>) {
        match expr {
            Expr::And(children) | Expr::Or(children) => {
                children.iter().for_each(|child| check_texts(child, out))
            }
            Expr::Not(inner) => check_texts(inner, out),
            Expr::Macro { name, .. } => out.push(format!("macro:{name}")),
            Expr::Check { text, .. } => out.push(text.clone()),
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let expr = parse_condition("a or b and not c").expect("parses");
        let Expr::Or(children) = expr else {
            panic!("or at the top")
        };
        assert!(matches!(children[0], Expr::Macro { .. }));
        let Expr::And(and_children) = &children[1] else {
            panic!("and under or")
        };
        assert!(matches!(and_children[1], Expr::Not(_)));
    }

    #[test]
    fn checks_lists_arguments_and_quotes() {
        let condition = "ka.verb=create and ka.target.subresource in (exec,attach) \
            and jevt.value[/requestObject/spec/volumes] exists \
            and ka.req.pod.containers.image[0] startswith \"docker.io/\" \
            and not ka.user.name startswith 'system:' and ka.uri startswith /healthz?";
        let expr = parse_condition(condition).expect("parses");
        let mut texts = Vec::new();
        check_texts(&expr, &mut texts);
        assert_eq!(
            texts,
            vec![
                "ka.verb=create",
                "ka.target.subresource in (exec,attach)",
                "jevt.value[/requestObject/spec/volumes] exists",
                "ka.req.pod.containers.image[0] startswith \"docker.io/\"",
                "ka.user.name startswith 'system:'",
                "ka.uri startswith /healthz?",
            ]
        );
        let Expr::And(children) = expr else {
            panic!("and")
        };
        let Expr::Check { field, rhs, .. } = &children[2] else {
            panic!("check")
        };
        assert_eq!(field.arg.as_deref(), Some("/requestObject/spec/volumes"));
        assert_eq!(*rhs, Rhs::None);
    }

    #[test]
    fn transformers_and_field_comparisons_parse() {
        let expr = parse_condition("tolower(proc.name) = val(proc.pname)").expect("parses");
        let Expr::Check { field, rhs, .. } = expr else {
            panic!("check")
        };
        assert_eq!(field.transformers, vec![Transformer::ToLower]);
        assert!(matches!(rhs, Rhs::Field(ref other) if other.name == "proc.pname"));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let error = parse_condition("ka.verb = create and (ka.uri exists").expect_err("unclosed");
        assert!(error.message.contains("')'"), "{error}");
        let error = parse_condition("ka.verb likes x").expect_err("bad operator");
        assert_eq!(error.offset, 8, "{error}");
        let error = parse_condition("ka.verb in (a b)").expect_err("missing comma");
        assert!(error.message.contains("','"), "{error}");
        let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_condition(&deep).is_err());
        assert!(parse_condition("").is_err());
        assert!(parse_condition("ka.uri = \"unterminated").is_err());
    }

    #[test]
    fn list_name_without_parentheses_is_a_list_reference() {
        let expr = parse_condition("proc.name in shell_binaries").expect("parses");
        let Expr::Check { rhs, .. } = expr else {
            panic!("check")
        };
        assert!(matches!(rhs, Rhs::List(ref items) if items.len() == 1 && !items[0].quoted));
    }
}
