//! Output templates: free text with `%field` substitutions, compiled to slots once per rule.

use crate::condition::{Expr, FieldRef, parse_condition};
use crate::eval::EvalContext;
use crate::fields::{FieldSource, Value};

/// What Falco prints for a field the event does not have.
pub const NOT_AVAILABLE: &str = "<NA>";

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPart {
    /// Literal text.
    Text(String),
    /// A field substitution.
    Field {
        /// Slot of the field.
        slot: usize,
        /// The field as written, the key of `output_fields`.
        name: String,
    },
}

/// A compiled output template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputTemplate {
    /// The pieces in order.
    pub parts: Vec<OutputPart>,
}

/// A template piece before field resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPart {
    /// Literal text.
    Text(String),
    /// A field reference and its byte offset in the template.
    Field(FieldRef, usize),
}

fn is_field_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.'
}

/// Splits a template into text and field references. `%` not followed by a field stays text.
pub fn parse_template(template: &str) -> Result<Vec<RawPart>, (usize, String)> {
    let bytes = template.as_bytes();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut cursor = 0;
    let mut literal_start = 0;
    while cursor < bytes.len() {
        if bytes[cursor] != b'%' {
            cursor += 1;
            continue;
        }
        let start = cursor + 1;
        let mut end = start;
        while end < bytes.len() && is_field_byte(bytes[end]) {
            end += 1;
        }
        while end > start && bytes[end - 1] == b'.' {
            end -= 1;
        }
        let name = &template[start..end];
        if end < bytes.len()
            && bytes[end] == b'('
            && crate::condition::Transformer::from_name(name).is_some()
        {
            let mut depth = 0usize;
            let mut close = end;
            while close < bytes.len() {
                match bytes[close] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                close += 1;
            }
            if close >= bytes.len() {
                return Err((cursor, format!("unclosed {name}( in output")));
            }
            end = close + 1;
        } else {
            if !name.contains('.') {
                cursor += 1;
                continue;
            }
            if end < bytes.len() && bytes[end] == b'[' {
                match template[end..].find(']') {
                    Some(close) => end += close + 1,
                    None => return Err((end, "unterminated field argument in output".to_string())),
                }
            }
        }
        let token = &template[start..end];
        let field = match parse_condition(&format!("{token} exists")) {
            Ok(Expr::Check { field, .. }) => field,
            _ => return Err((cursor, format!("invalid field {token:?} in output"))),
        };
        text.push_str(&template[literal_start..cursor]);
        if !text.is_empty() {
            parts.push(RawPart::Text(std::mem::take(&mut text)));
        }
        parts.push(RawPart::Field(field, cursor));
        cursor = end;
        literal_start = end;
    }
    text.push_str(&template[literal_start..]);
    if !text.is_empty() {
        parts.push(RawPart::Text(text));
    }
    Ok(parts)
}

/// Renders values as Falco does: `<NA>` when absent, `(a,b)` for several values.
pub fn render_values(values: &[Value<'_>]) -> String {
    match values {
        [] => NOT_AVAILABLE.to_string(),
        [single] => single.render().into_owned(),
        many => {
            let rendered: Vec<String> = many
                .iter()
                .map(|value| value.render().into_owned())
                .collect();
            format!("({})", rendered.join(","))
        }
    }
}

impl OutputTemplate {
    /// Renders the template and collects the field values, in template order without repeats.
    pub fn render<S: FieldSource>(
        &self,
        context: &mut EvalContext<'_, '_, S>,
    ) -> (String, Vec<(String, String)>) {
        let mut output = String::new();
        let mut fields: Vec<(String, String)> = Vec::new();
        for part in &self.parts {
            match part {
                OutputPart::Text(text) => output.push_str(text),
                OutputPart::Field { slot, name } => {
                    let rendered = render_values(context.values(*slot));
                    output.push_str(&rendered);
                    if !fields.iter().any(|(existing, _)| existing == name) {
                        fields.push((name.clone(), rendered));
                    }
                }
            }
        }
        (output.trim().to_string(), fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(template: &str) -> Vec<String> {
        parse_template(template)
            .expect("parses")
            .into_iter()
            .map(|part| match part {
                RawPart::Text(text) => format!("T:{text}"),
                RawPart::Field(field, _) => format!("F:{field}"),
            })
            .collect()
    }

    #[test]
    fn fields_arguments_and_transformers_are_recognised() {
        assert_eq!(
            names(
                "user=%ka.user.name cmd=%ka.uri.param[command] v=%jevt.value[/a/b]. 100% %tolower(proc.name)"
            ),
            vec![
                "T:user=",
                "F:ka.user.name",
                "T: cmd=",
                "F:ka.uri.param[command]",
                "T: v=",
                "F:jevt.value[/a/b]",
                "T:. 100% ",
                "F:tolower(proc.name)",
            ]
        );
        assert!(parse_template("bad %ka.x[unterminated").is_err());
    }
}
