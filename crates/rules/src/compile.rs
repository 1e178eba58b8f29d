//! Compiles parsed conditions against a field schema: macros are inlined, lists expanded,
//! fields resolved to slots and literals converted to the field's type, once per rule.

use std::collections::{HashMap, HashSet};

use crate::condition::{Expr, FieldRef, Operand, Operator, Rhs, Span, parse_condition};
use crate::error::DiagnosticCode;
use crate::eval::{Check, IpNetwork, Matcher, Node, Slot, StringSet};
use crate::fields::{FieldError, FieldSchema, ValueType};
use crate::items::{ExceptionDef, ExceptionOperand, Origin};
use crate::loader::{ConditionText, LoadedRules, RuleDef};

/// Deepest macro nesting and list nesting followed.
const MAX_EXPANSION_DEPTH: usize = 64;

/// A located compilation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Stable kind.
    pub code: DiagnosticCode,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub origin: Origin,
}

/// Compiles rules of one source.
pub struct Compiler<'loaded> {
    loaded: &'loaded LoadedRules,
    schema: &'loaded dyn FieldSchema,
    /// Slots allocated so far.
    pub slots: Vec<Slot>,
    slot_index: HashMap<(crate::fields::FieldSpec, Vec<crate::condition::Transformer>), usize>,
    macro_nodes: HashMap<String, Result<Node, CompileError>>,
    /// Macros referenced by compiled conditions.
    pub used_macros: HashSet<String>,
    /// Lists referenced by compiled conditions.
    pub used_lists: HashSet<String>,
}

struct Scope<'text> {
    condition: &'text ConditionText,
    macro_stack: Vec<String>,
}

impl Scope<'_> {
    fn error(&self, code: DiagnosticCode, span: Span, message: String) -> CompileError {
        CompileError {
            code,
            message,
            origin: self.condition.locate(span.start),
        }
    }
}

fn parse_number(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    if let Some(hex) = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
    {
        return i64::from_str_radix(hex, 16).ok();
    }
    trimmed.parse::<i64>().ok().or_else(|| {
        trimmed
            .parse::<f64>()
            .ok()
            .filter(|number| number.fract() == 0.0 && number.abs() < 9.0e18)
            .map(|number| number as i64)
    })
}

fn parse_hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|start| u8::from_str_radix(text.get(start..start + 2)?, 16).ok())
        .collect()
}

impl<'loaded> Compiler<'loaded> {
    /// A compiler for rules of `schema`'s source.
    pub fn new(loaded: &'loaded LoadedRules, schema: &'loaded dyn FieldSchema) -> Self {
        Self {
            loaded,
            schema,
            slots: Vec::new(),
            slot_index: HashMap::new(),
            macro_nodes: HashMap::new(),
            used_macros: HashSet::new(),
            used_lists: HashSet::new(),
        }
    }

    /// Compiles a rule's condition with its exceptions.
    pub fn compile_condition(&mut self, rule: &RuleDef) -> Result<Node, CompileError> {
        let scope = Scope {
            condition: &rule.condition,
            macro_stack: Vec::new(),
        };
        let expr = parse_condition(&rule.condition.text).map_err(|error| CompileError {
            code: DiagnosticCode::ConditionSyntax,
            message: error.message,
            origin: rule.condition.locate(error.offset),
        })?;
        let mut scope = scope;
        let condition = self.compile_expr(&expr, &mut scope)?;
        let mut exception_nodes = Vec::new();
        for exception in &rule.exceptions {
            if let Some(node) = self.compile_exception(exception)? {
                exception_nodes.push(node);
            }
        }
        if exception_nodes.is_empty() {
            return Ok(condition);
        }
        Ok(Node::And(vec![
            condition,
            Node::Not(Box::new(Node::Or(exception_nodes))),
        ]))
    }

    /// Resolves a field reference to a slot.
    pub fn slot_for(&mut self, field: &FieldRef) -> Result<usize, (DiagnosticCode, String)> {
        let spec = self
            .schema
            .resolve(&field.name, field.arg.as_deref())
            .map_err(|error| {
                let code = match error {
                    FieldError::Unknown => DiagnosticCode::UnknownField,
                    _ => DiagnosticCode::BadField,
                };
                let message = match error {
                    FieldError::Unknown => format!(
                        "unknown field {:?} for source {}",
                        field.name,
                        self.schema.source_name()
                    ),
                    other => format!("field {field}: {other}"),
                };
                (code, message)
            })?;
        let slot = Slot {
            spec,
            transformers: field.transformers.clone(),
            display: field.to_string(),
        };
        let key = (slot.spec.clone(), slot.transformers.clone());
        if let Some(index) = self.slot_index.get(&key) {
            return Ok(*index);
        }
        let index = self.slots.len();
        self.slot_index.insert(key, index);
        self.slots.push(slot);
        Ok(index)
    }

    fn compile_expr(&mut self, expr: &Expr, scope: &mut Scope<'_>) -> Result<Node, CompileError> {
        match expr {
            Expr::And(children) => {
                let mut nodes = Vec::with_capacity(children.len());
                for child in children {
                    match self.compile_expr(child, scope)? {
                        Node::And(grandchildren) => nodes.extend(grandchildren),
                        node => nodes.push(node),
                    }
                }
                Ok(Node::And(nodes))
            }
            Expr::Or(children) => {
                let mut nodes = Vec::with_capacity(children.len());
                for child in children {
                    match self.compile_expr(child, scope)? {
                        Node::Or(grandchildren) => nodes.extend(grandchildren),
                        node => nodes.push(node),
                    }
                }
                Ok(Node::Or(nodes))
            }
            Expr::Not(child) => Ok(Node::Not(Box::new(self.compile_expr(child, scope)?))),
            Expr::Macro { name, span } => self.compile_macro(name, *span, scope),
            Expr::Check {
                field,
                operator,
                rhs,
                text,
                span,
            } => self
                .compile_check(field, *operator, rhs, text)
                .map_err(|(code, message)| scope.error(code, *span, message)),
        }
    }

    fn compile_macro(
        &mut self,
        name: &str,
        span: Span,
        scope: &mut Scope<'_>,
    ) -> Result<Node, CompileError> {
        if scope.macro_stack.iter().any(|entry| entry == name) {
            return Err(scope.error(
                DiagnosticCode::MacroCycle,
                span,
                format!(
                    "macro {name:?} references itself through {}",
                    scope.macro_stack.join(" -> ")
                ),
            ));
        }
        if scope.macro_stack.len() >= MAX_EXPANSION_DEPTH {
            return Err(scope.error(
                DiagnosticCode::MacroCycle,
                span,
                format!("macros nested deeper than {MAX_EXPANSION_DEPTH}"),
            ));
        }
        if let Some(cached) = self.macro_nodes.get(name) {
            return cached.clone();
        }
        let loaded = self.loaded;
        let Some(definition) = loaded.macro_def(name) else {
            let message = if loaded.list(name).is_some() {
                format!("{name:?} is a list, not a macro: use it after in/intersects/pmatch")
            } else {
                format!("undefined macro {name:?}")
            };
            return Err(scope.error(DiagnosticCode::UnknownMacro, span, message));
        };
        self.used_macros.insert(name.to_string());
        let result = match parse_condition(&definition.condition.text) {
            Err(error) => Err(CompileError {
                code: DiagnosticCode::ConditionSyntax,
                message: format!("in macro {name:?}: {}", error.message),
                origin: definition.condition.locate(error.offset),
            }),
            Ok(expr) => {
                let mut stack = scope.macro_stack.clone();
                stack.push(name.to_string());
                let mut inner_scope = Scope {
                    condition: &definition.condition,
                    macro_stack: stack,
                };
                self.compile_expr(&expr, &mut inner_scope)
                    .map(|node| Node::Macro(name.into(), Box::new(node)))
            }
        };
        // Only results independent of the caller's macro stack are cached.
        if !matches!(&result, Err(error) if error.code == DiagnosticCode::MacroCycle) {
            self.macro_nodes.insert(name.to_string(), result.clone());
        }
        result
    }

    fn expand_operands(&mut self, operands: &[Operand]) -> Vec<String> {
        let mut values = Vec::new();
        for operand in operands {
            if operand.quoted {
                values.push(operand.text.clone());
            } else {
                self.expand_item(&operand.text, 0, &mut values);
            }
        }
        values
    }

    fn expand_item(&mut self, item: &str, depth: usize, values: &mut Vec<String>) {
        // Falco pastes list items into the condition text, so an item written with quotes
        // (`'"10.0.0.0/8"'`) is a quoted value, never a list name.
        let bytes = item.as_bytes();
        if bytes.len() >= 2
            && (bytes[0] == b'"' || bytes[0] == b'\'')
            && bytes[bytes.len() - 1] == bytes[0]
        {
            values.push(item[1..item.len() - 1].to_string());
            return;
        }
        let loaded = self.loaded;
        match loaded.list(item) {
            Some(list) if depth < MAX_EXPANSION_DEPTH => {
                self.used_lists.insert(item.to_string());
                for inner in &list.items {
                    self.expand_item(inner, depth + 1, values);
                }
            }
            _ => values.push(item.to_string()),
        }
    }

    fn compile_check(
        &mut self,
        field: &FieldRef,
        operator: Operator,
        rhs: &Rhs,
        text: &str,
    ) -> Result<Node, (DiagnosticCode, String)> {
        let slot = self.slot_for(field)?;
        let value_type = self.slots[slot].value_type();
        let list_field = self.slots[slot].is_list();
        let bad_value = |message: String| (DiagnosticCode::BadValue, message);
        let matcher = match (operator, rhs) {
            (Operator::Exists, _) => Matcher::Exists,
            (_, Rhs::Field(other)) => {
                if !matches!(
                    operator,
                    Operator::Eq
                        | Operator::Ne
                        | Operator::Lt
                        | Operator::Le
                        | Operator::Gt
                        | Operator::Ge
                        | Operator::Contains
                        | Operator::IContains
                        | Operator::StartsWith
                        | Operator::EndsWith
                ) {
                    return Err((
                        DiagnosticCode::BadField,
                        format!("operator {} cannot compare two fields", operator.symbol()),
                    ));
                }
                let other_slot = self.slot_for(other)?;
                Matcher::Field(operator, other_slot)
            }
            (operator, Rhs::List(operands)) => {
                let items = self.expand_operands(operands);
                self.list_matcher(operator, value_type, items)
                    .map_err(bad_value)?
            }
            (operator, Rhs::Value(operand)) => self
                .value_matcher(operator, value_type, &operand.text)
                .map_err(bad_value)?,
            (operator, Rhs::None) => {
                return Err(bad_value(format!(
                    "operator {} needs a value",
                    operator.symbol()
                )));
            }
        };
        Ok(Node::Check(Box::new(Check {
            slot,
            matcher,
            list_field,
            text: text.into(),
        })))
    }

    fn list_matcher(
        &self,
        operator: Operator,
        value_type: ValueType,
        items: Vec<String>,
    ) -> Result<Matcher, String> {
        let intersects = operator == Operator::Intersects;
        if operator == Operator::Pmatch {
            let prefixes = items
                .into_iter()
                .map(|item| {
                    if item.len() > 1 {
                        item.trim_end_matches('/').to_string()
                    } else {
                        item
                    }
                })
                .collect();
            return Ok(Matcher::Pmatch(prefixes));
        }
        Ok(match value_type {
            ValueType::String => {
                let set = StringSet::new(items);
                if intersects {
                    Matcher::StrIntersects(set)
                } else {
                    Matcher::StrIn(set)
                }
            }
            ValueType::Int => Matcher::IntIn(
                items
                    .iter()
                    .map(|item| {
                        parse_number(item)
                            .ok_or_else(|| format!("expected numbers in the list, found {item:?}"))
                    })
                    .collect::<Result<_, _>>()?,
                intersects,
            ),
            ValueType::Ip => Matcher::IpIn(
                items
                    .iter()
                    .map(|item| {
                        IpNetwork::parse(item).ok_or_else(|| {
                            format!("expected addresses or networks in the list, found {item:?}")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                intersects,
            ),
            ValueType::Bool => {
                let flags: Vec<String> = items
                    .iter()
                    .map(|item| match item.as_str() {
                        "true" | "false" => Ok(item.clone()),
                        other => Err(format!(
                            "expected true or false in the list, found {other:?}"
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                let set = StringSet::new(flags);
                if intersects {
                    Matcher::StrIntersects(set)
                } else {
                    Matcher::StrIn(set)
                }
            }
        })
    }

    fn value_matcher(
        &self,
        operator: Operator,
        value_type: ValueType,
        text: &str,
    ) -> Result<Matcher, String> {
        let number = || {
            parse_number(text).ok_or_else(|| {
                format!(
                    "operator {} expects a number, found {text:?}",
                    operator.symbol()
                )
            })
        };
        Ok(match operator {
            Operator::Eq | Operator::Ne => {
                let equal = operator == Operator::Eq;
                match value_type {
                    ValueType::String => {
                        if equal {
                            Matcher::StrEq(text.to_string())
                        } else {
                            Matcher::StrNe(text.to_string())
                        }
                    }
                    ValueType::Int => Matcher::IntCmp(operator, number()?),
                    ValueType::Bool => match text {
                        "true" => Matcher::BoolEq(true, equal),
                        "false" => Matcher::BoolEq(false, equal),
                        other => return Err(format!("expected true or false, found {other:?}")),
                    },
                    ValueType::Ip => Matcher::IpEq(
                        IpNetwork::parse(text).ok_or_else(|| {
                            format!("expected an address or network, found {text:?}")
                        })?,
                        equal,
                    ),
                }
            }
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                Matcher::IntCmp(operator, number()?)
            }
            Operator::Contains => Matcher::Contains(text.to_string()),
            Operator::IContains => Matcher::IContains(text.to_lowercase()),
            Operator::StartsWith => Matcher::StartsWith(text.to_string()),
            Operator::EndsWith => Matcher::EndsWith(text.to_string()),
            Operator::BContains | Operator::BStartsWith => {
                let bytes = parse_hex_bytes(text)
                    .ok_or_else(|| format!("expected hexadecimal bytes, found {text:?}"))?;
                if operator == Operator::BContains {
                    Matcher::BContains(bytes)
                } else {
                    Matcher::BStartsWith(bytes)
                }
            }
            Operator::Glob | Operator::IGlob => Matcher::Glob(
                glob::Pattern::new(text)
                    .map_err(|error| format!("invalid glob {text:?}: {error}"))?,
                operator == Operator::IGlob,
            ),
            Operator::Regex => Matcher::Regex(
                regex::RegexBuilder::new(&format!("^(?:{text})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|error| format!("invalid regex {text:?}: {error}"))?,
            ),
            Operator::In | Operator::Intersects | Operator::Pmatch => {
                self.list_matcher(operator, value_type, vec![text.to_string()])?
            }
            Operator::Exists => Matcher::Exists,
        })
    }

    fn compile_exception(
        &mut self,
        exception: &ExceptionDef,
    ) -> Result<Option<Node>, CompileError> {
        let error = |message: String| CompileError {
            code: DiagnosticCode::BadException,
            message: format!("exception {:?}: {message}", exception.name),
            origin: exception.origin.clone(),
        };
        let Some(fields) = &exception.fields else {
            return Ok(None);
        };
        let comps: Vec<String> = match &exception.comps {
            Some(comps) => comps.clone(),
            None => vec!["=".to_string(); fields.len()],
        };
        if comps.len() != fields.len() {
            return Err(error(format!(
                "{} fields but {} comps",
                fields.len(),
                comps.len()
            )));
        }
        let mut field_refs = Vec::with_capacity(fields.len());
        for field in fields {
            let parsed = parse_condition(&format!("{field} exists"));
            match parsed {
                Ok(Expr::Check {
                    field: reference, ..
                }) => field_refs.push(reference),
                _ => return Err(error(format!("{field:?} is not a field"))),
            }
        }
        let mut operators = Vec::with_capacity(comps.len());
        for comp in &comps {
            match Operator::from_symbol(comp.trim()) {
                Some(Operator::Exists) | None => {
                    return Err(error(format!("{comp:?} is not a comparison operator")));
                }
                Some(operator) => operators.push(operator),
            }
        }
        let mut tuples = Vec::with_capacity(exception.values.len());
        for tuple in &exception.values {
            if tuple.value.len() != fields.len() {
                return Err(CompileError {
                    code: DiagnosticCode::BadException,
                    message: format!(
                        "exception {:?}: a value has {} entries for {} fields",
                        exception.name,
                        tuple.value.len(),
                        fields.len()
                    ),
                    origin: tuple.origin.clone(),
                });
            }
            let mut checks = Vec::with_capacity(fields.len());
            for ((field, operator), operand) in field_refs.iter().zip(&operators).zip(&tuple.value)
            {
                let (rhs, shown) = match (operand, operator.takes_list()) {
                    (ExceptionOperand::Scalar(text), true) => (
                        Rhs::List(vec![Operand {
                            text: text.clone(),
                            quoted: false,
                            span: Span::default(),
                        }]),
                        format!("({text})"),
                    ),
                    (ExceptionOperand::Scalar(text), false) => (
                        Rhs::Value(Operand {
                            text: text.clone(),
                            quoted: true,
                            span: Span::default(),
                        }),
                        text.clone(),
                    ),
                    (ExceptionOperand::List(items), true) => (
                        Rhs::List(
                            items
                                .iter()
                                .map(|item| Operand {
                                    text: item.clone(),
                                    quoted: false,
                                    span: Span::default(),
                                })
                                .collect(),
                        ),
                        format!("({})", items.join(", ")),
                    ),
                    (ExceptionOperand::List(_), false) => {
                        return Err(CompileError {
                            code: DiagnosticCode::BadException,
                            message: format!(
                                "exception {:?}: operator {} takes one value, not a list",
                                exception.name,
                                operator.symbol()
                            ),
                            origin: tuple.origin.clone(),
                        });
                    }
                };
                let text = format!("{field} {} {shown}", operator.symbol());
                let node = self.compile_check(field, *operator, &rhs, &text).map_err(
                    |(code, message)| CompileError {
                        code,
                        message: format!("exception {:?}: {message}", exception.name),
                        origin: tuple.origin.clone(),
                    },
                )?;
                checks.push(node);
            }
            tuples.push(Node::And(checks));
        }
        if tuples.is_empty() {
            return Ok(None);
        }
        Ok(Some(Node::Macro(
            format!("exception {}", exception.name).into(),
            Box::new(Node::Or(tuples)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_decimal_hex_and_float_form() {
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("1e3"), Some(1000));
        assert_eq!(parse_number("1.5"), None);
        assert_eq!(
            parse_hex_bytes("cafebabe"),
            Some(vec![0xca, 0xfe, 0xba, 0xbe])
        );
        assert_eq!(parse_hex_bytes("abc"), None);
    }
}
