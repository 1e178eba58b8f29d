//! The evaluation form of a compiled condition. The compiled tree keeps macros and the order the
//! rule author wrote, for explanations; the evaluation form drops macro wrappers, flattens nested
//! `and`/`or`, folds constants and puts cheap terms first, so an event that fails a rule usually
//! fails it on an integer or event-type comparison before any string is scanned.
//!
//! Reordering is sound because evaluating a term has no effect but filling the per-event value
//! cache: `and`/`or` over pure terms give the same result in any order.

use crate::eval::{Check, Matcher, Node, Slot, StringSet};
use crate::fields::ValueType;

/// Estimated cost of evaluating a node, in rough units of one integer comparison.
fn cost(node: &Node, slots: &[Slot]) -> u32 {
    match node {
        Node::Const(_) => 0,
        Node::Check(check) => check_cost(check, slots),
        Node::Not(child) | Node::Macro(_, child) => cost(child, slots),
        // a conjunction usually stops at its first term, a disjunction usually runs them all;
        // summing both keeps the estimate monotone in the work that can be done
        Node::And(children) | Node::Or(children) => children
            .iter()
            .map(|child| cost(child, slots))
            .fold(0u32, u32::saturating_add),
    }
}

fn check_cost(check: &Check, slots: &[Slot]) -> u32 {
    let Some(slot) = slots.get(check.slot) else {
        return 1;
    };
    // extraction: numbers and flags are direct reads; text may be joined or copied; lists walk
    // ancestors; transformers allocate
    let mut extraction: u32 = match slot.spec.value_type {
        ValueType::Int | ValueType::Bool | ValueType::Ip => 1,
        ValueType::String => 2,
    };
    if slot.spec.is_list {
        extraction += 4;
    }
    extraction += 4 * u32::try_from(slot.transformers.len()).unwrap_or(u32::MAX / 8);
    let comparison: u32 = match &check.matcher {
        Matcher::Exists | Matcher::BoolEq(..) | Matcher::IntCmp(..) => 0,
        Matcher::StrEq(_)
        | Matcher::StrNe(_)
        | Matcher::StartsWith(_)
        | Matcher::EndsWith(_)
        | Matcher::BStartsWith(_)
        | Matcher::IpEq(..) => 1,
        Matcher::StrIn(set) | Matcher::StrIntersects(set) => match set {
            StringSet::Small(items) => 1 + u32::try_from(items.len() / 4).unwrap_or(3),
            StringSet::Large(_) => 3,
        },
        Matcher::IntIn(items, _) => 1 + u32::try_from(items.len() / 8).unwrap_or(8),
        Matcher::IpIn(networks, _) => 1 + u32::try_from(networks.len() / 4).unwrap_or(8),
        Matcher::Contains(_) | Matcher::BContains(_) => 3,
        Matcher::Pmatch(prefixes) => 2 + u32::try_from(prefixes.len() / 4).unwrap_or(16),
        Matcher::IContains(_) => 6,
        Matcher::Field(..) => 8,
        Matcher::Glob(..) => 8,
        Matcher::Regex(_) => 12,
    };
    extraction + comparison
}

/// The evaluation form of `node`: same truth value on every event, cheaper to evaluate.
pub fn optimize(node: &Node, slots: &[Slot]) -> Node {
    match node {
        Node::Const(value) => Node::Const(*value),
        Node::Check(check) => Node::Check(check.clone()),
        Node::Macro(_, child) => optimize(child, slots),
        Node::Not(child) => match optimize(child, slots) {
            Node::Const(value) => Node::Const(!value),
            Node::Not(grandchild) => *grandchild,
            other => Node::Not(Box::new(other)),
        },
        Node::And(children) => junction(children, slots, true),
        Node::Or(children) => junction(children, slots, false),
    }
}

/// Optimizes an `and` (`is_and`) or `or`: the absorbing constant (false for `and`, true for
/// `or`) decides it; the neutral one is dropped; nested junctions of the same kind are merged.
fn junction(children: &[Node], slots: &[Slot], is_and: bool) -> Node {
    let mut terms: Vec<Node> = Vec::with_capacity(children.len());
    for child in children {
        match optimize(child, slots) {
            Node::Const(value) if value == is_and => {}
            Node::Const(value) => return Node::Const(value),
            Node::And(grandchildren) if is_and => terms.extend(grandchildren),
            Node::Or(grandchildren) if !is_and => terms.extend(grandchildren),
            other => terms.push(other),
        }
    }
    if terms.is_empty() {
        return Node::Const(is_and);
    }
    if terms.len() == 1 {
        return terms.pop().unwrap_or(Node::Const(is_and));
    }
    // stable, so equal-cost terms keep the author's order
    terms.sort_by_cached_key(|term| cost(term, slots));
    if is_and {
        Node::And(terms)
    } else {
        Node::Or(terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{FieldArg, FieldSpec};

    fn slot(value_type: ValueType, is_list: bool) -> Slot {
        Slot {
            spec: FieldSpec {
                id: 0,
                arg: FieldArg::None,
                value_type,
                is_list,
            },
            transformers: Vec::new(),
            display: "field".to_string(),
        }
    }

    fn check(slot: usize, matcher: Matcher) -> Node {
        Node::Check(Box::new(Check {
            slot,
            matcher,
            list_field: false,
            text: "check".into(),
        }))
    }

    #[test]
    fn macros_are_dropped_and_nested_conjunctions_merged() {
        let slots = vec![slot(ValueType::Int, false), slot(ValueType::String, false)];
        let tree = Node::And(vec![
            Node::Macro(
                "outer".into(),
                Box::new(Node::And(vec![
                    check(1, Matcher::Regex(regex::Regex::new("^a$").expect("regex"))),
                    Node::Const(true),
                ])),
            ),
            check(0, Matcher::IntCmp(crate::condition::Operator::Eq, 1)),
        ]);
        let Node::And(terms) = optimize(&tree, &slots) else {
            panic!("expected a conjunction");
        };
        assert_eq!(terms.len(), 2);
        // the integer comparison moved ahead of the regex
        assert!(matches!(&terms[0], Node::Check(check) if check.slot == 0));
        assert!(matches!(&terms[1], Node::Check(check) if check.slot == 1));
    }

    #[test]
    fn constants_decide_junctions_and_double_negation_cancels() {
        let slots = vec![slot(ValueType::Int, false)];
        let term = || check(0, Matcher::Exists);
        let and_false = Node::And(vec![term(), Node::Not(Box::new(Node::Const(true)))]);
        assert!(matches!(optimize(&and_false, &slots), Node::Const(false)));
        let or_true = Node::Or(vec![term(), Node::Const(true)]);
        assert!(matches!(optimize(&or_true, &slots), Node::Const(true)));
        let empty_or = Node::Or(vec![Node::Const(false)]);
        assert!(matches!(optimize(&empty_or, &slots), Node::Const(false)));
        let double = Node::Not(Box::new(Node::Not(Box::new(term()))));
        assert!(matches!(optimize(&double, &slots), Node::Check(_)));
    }
}
