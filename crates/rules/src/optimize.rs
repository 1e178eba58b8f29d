//! The evaluation form of a compiled condition. The compiled tree keeps macros and the order the
//! rule author wrote, for explanations; the evaluation form drops macro wrappers, flattens nested
//! `and`/`or`, folds constants and orders terms so that the one most likely to decide the
//! junction cheaply comes first: in an `and`, a cheap term that is usually false (an equality,
//! a set membership, a prefix) goes before one that is usually true (a negated exception list,
//! an `exists`), however cheap that one is, since it would not end the evaluation.
//!
//! Reordering is sound because evaluating a term has no effect but filling the per-event value
//! cache: `and`/`or` over pure terms give the same result in any order.

use crate::condition::Operator;
use crate::eval::{Check, Matcher, Node, Slot, StringSet};
use crate::fields::ValueType;

/// What evaluating a node is expected to cost and how likely it is to hold, estimated from the
/// shape of the condition alone (no event statistics).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    /// Expected cost, in rough units of one integer comparison.
    cost: f64,
    /// Estimated probability that the node holds.
    truth: f64,
}

/// Likelihood that a comparison holds on an arbitrary event: a test for a particular value
/// (equality, membership, prefix, pattern) rarely does; its negation usually does.
fn check_truth(check: &Check) -> f64 {
    const RARE: f64 = 0.1;
    const EVEN: f64 = 0.5;
    const USUAL: f64 = 0.9;
    match &check.matcher {
        Matcher::Exists => USUAL,
        Matcher::StrNe(_) => USUAL,
        Matcher::BoolEq(..) => EVEN,
        Matcher::IntCmp(Operator::Eq, _) => RARE,
        Matcher::IntCmp(Operator::Ne, _) => USUAL,
        Matcher::IntCmp(..) => EVEN,
        Matcher::IpEq(_, equal) => {
            if *equal {
                RARE
            } else {
                USUAL
            }
        }
        Matcher::Field(Operator::Ne, _) => USUAL,
        Matcher::Field(Operator::Eq, _) => RARE,
        Matcher::Field(..) => EVEN,
        Matcher::StrEq(_)
        | Matcher::Contains(_)
        | Matcher::IContains(_)
        | Matcher::StartsWith(_)
        | Matcher::EndsWith(_)
        | Matcher::BContains(_)
        | Matcher::BStartsWith(_)
        | Matcher::Glob(..)
        | Matcher::Regex(_)
        | Matcher::StrIn(_)
        | Matcher::StrIntersects(_)
        | Matcher::Pmatch(_)
        | Matcher::IntIn(..)
        | Matcher::IpIn(..) => RARE,
    }
}

fn estimate(node: &Node, slots: &[Slot]) -> Estimate {
    match node {
        Node::Const(value) => Estimate {
            cost: 0.0,
            truth: if *value { 1.0 } else { 0.0 },
        },
        Node::Check(check) => Estimate {
            cost: f64::from(check_cost(check, slots)),
            truth: check_truth(check),
        },
        Node::Macro(_, child) => estimate(child, slots),
        Node::Not(child) => {
            let inner = estimate(child, slots);
            Estimate {
                cost: inner.cost,
                truth: 1.0 - inner.truth,
            }
        }
        Node::And(children) => sequence(children.iter().map(|child| estimate(child, slots)), true),
        Node::Or(children) => sequence(children.iter().map(|child| estimate(child, slots)), false),
    }
}

/// The estimate of a junction evaluated in the given order: each term runs only when the ones
/// before it did not decide (all held, for `and`; none held, for `or`).
fn sequence(terms: impl Iterator<Item = Estimate>, is_and: bool) -> Estimate {
    let mut cost = 0.0;
    // probability that evaluation reaches the next term
    let mut reached = 1.0;
    for term in terms {
        cost += reached * term.cost;
        reached *= if is_and { term.truth } else { 1.0 - term.truth };
    }
    Estimate {
        cost,
        truth: if is_and { reached } else { 1.0 - reached },
    }
}

/// Sort key of a junction's term: expected cost per chance of deciding the junction. Ordering
/// independent terms by it minimizes the junction's expected cost.
fn priority(term: Estimate, is_and: bool) -> f64 {
    let decides = if is_and { 1.0 - term.truth } else { term.truth };
    term.cost / decides.max(1e-3)
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
    // stable, so terms of equal priority keep the author's order
    let mut keyed: Vec<(f64, Node)> = terms
        .into_iter()
        .map(|term| (priority(estimate(&term, slots), is_and), term))
        .collect();
    keyed.sort_by(|left, right| left.0.total_cmp(&right.0));
    let terms: Vec<Node> = keyed.into_iter().map(|(_, term)| term).collect();
    if is_and {
        Node::And(terms)
    } else {
        Node::Or(terms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A check of `slot` in evaluation form, for tests.
    pub(crate) fn check(slot: usize, matcher: Matcher) -> Node {
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
    fn a_usually_false_term_goes_before_a_cheaper_usually_true_one() {
        let slots = vec![
            slot(ValueType::String, false),
            slot(ValueType::String, false),
        ];
        let exception = Node::Not(Box::new(check(0, Matcher::StrEq("sshd".into()))));
        let selective = check(
            1,
            Matcher::StrIn(StringSet::new(
                (0..20).map(|index| format!("/etc/file{index}")).collect(),
            )),
        );
        let conjunction = Node::And(vec![exception.clone(), selective.clone()]);
        let Node::And(terms) = optimize(&conjunction, &slots) else {
            panic!("expected a conjunction");
        };
        assert!(matches!(&terms[0], Node::Check(check) if check.slot == 1));
        // in a disjunction the usually-true term decides first
        let disjunction = Node::Or(vec![selective, exception]);
        let Node::Or(terms) = optimize(&disjunction, &slots) else {
            panic!("expected a disjunction");
        };
        assert!(matches!(&terms[0], Node::Not(_)));
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
