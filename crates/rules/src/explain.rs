//! Explains why a rule did or did not match an event, in the terms the rule was written in:
//! macro names, the checks as written and the values the event had.

use crate::eval::{EvalContext, Node};
use crate::fields::FieldSource;
use crate::output::render_values;

/// Deepest level an explanation descends to.
const MAX_EXPLAIN_DEPTH: usize = 12;

fn describe(node: &Node) -> String {
    match node {
        Node::Const(value) => value.to_string(),
        Node::Check(check) => check.text.to_string(),
        Node::Macro(name, _) => name.to_string(),
        Node::Not(inner) => format!("not {}", describe(inner)),
        Node::And(children) => format!(
            "({} and ... {} terms)",
            describe_first(children),
            children.len()
        ),
        Node::Or(children) => format!(
            "({} or ... {} alternatives)",
            describe_first(children),
            children.len()
        ),
    }
}

fn describe_first(children: &[Node]) -> String {
    children.first().map(describe).unwrap_or_default()
}

/// Appends lines saying why `node` evaluates as it does; returns its value.
pub fn explain_node<S: FieldSource>(
    node: &Node,
    context: &mut EvalContext<'_, '_, S>,
    depth: usize,
    lines: &mut Vec<String>,
) -> bool {
    let indent = "  ".repeat(depth + 1);
    let value = context.eval(node);
    if depth >= MAX_EXPLAIN_DEPTH {
        lines.push(format!("{indent}{} is {value}", describe(node)));
        return value;
    }
    match node {
        Node::Const(_) => lines.push(format!("{indent}constant {value}")),
        Node::Check(check) => {
            let shown = render_values(context.values(check.slot));
            let field = context.slot_display(check.slot);
            lines.push(format!(
                "{indent}{} is {value} ({field} = {shown})",
                check.text
            ));
        }
        Node::Macro(name, inner) => {
            lines.push(format!("{indent}{name} is {value}"));
            if !value || matches!(**inner, Node::Check(_)) {
                explain_node(inner, context, depth + 1, lines);
            }
        }
        Node::Not(inner) => {
            lines.push(format!("{indent}not ... is {value} because:"));
            explain_node(inner, context, depth + 1, lines);
        }
        Node::And(children) => {
            if value {
                lines.push(format!("{indent}all {} terms hold", children.len()));
            } else if let Some(failed) = children.iter().find(|child| !context.eval(child)) {
                lines.push(format!("{indent}first failing term: {}", describe(failed)));
                explain_node(failed, context, depth + 1, lines);
            }
        }
        Node::Or(children) => {
            if value {
                if let Some(held) = children.iter().find(|child| context.eval(child)) {
                    lines.push(format!("{indent}holds through: {}", describe(held)));
                    explain_node(held, context, depth + 1, lines);
                }
            } else {
                lines.push(format!(
                    "{indent}none of {} alternatives holds:",
                    children.len()
                ));
                for child in children {
                    explain_node(child, context, depth + 1, lines);
                }
            }
        }
    }
    value
}
