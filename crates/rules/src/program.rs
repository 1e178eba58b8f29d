//! The shared evaluation program of a rule set. Every rule's evaluation form (see
//! [`crate::optimize`]) is hash-consed into one graph, so a sub-condition that several rules
//! share (`evt.is_open_read=true`, `fd.typechar='f'`, a whole macro expansion such as
//! `open_read`) is one node. A node referenced more than once owns a memo cell: on each event it
//! is evaluated at most once, by whichever rule reaches it first, and the other rules read its
//! truth value from the cell.
//!
//! Sharing is sound for the same reason reordering is: evaluating a node has no effect but
//! filling the per-event value cache, so its truth value depends on the event alone and not on
//! which rule asked first.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::condition::Operator;
use crate::eval::{Check, EvalContext, Matcher, Node, StringSet};
use crate::fields::FieldSource;

/// A node of a [`Program`].
pub type NodeId = u32;

/// Memo cell of a node evaluated afresh each time (referenced once).
const NO_MEMO: u32 = u32::MAX;

#[derive(Debug)]
enum Op {
    Const(bool),
    Check(Box<Check>),
    And(Box<[NodeId]>),
    Or(Box<[NodeId]>),
    Not(NodeId),
}

#[derive(Debug)]
struct ProgramNode {
    op: Op,
    /// Memo cell, or [`NO_MEMO`].
    memo: u32,
}

/// The conditions of a rule set as one graph of shared nodes; see the module documentation.
#[derive(Debug, Default)]
pub struct Program {
    /// Children come before their parents.
    nodes: Vec<ProgramNode>,
    memo_cells: u32,
}

impl Program {
    /// Memo cells an evaluation context needs for this program.
    pub fn memo_cells(&self) -> usize {
        self.memo_cells as usize
    }

    /// Distinct nodes, after sharing.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Evaluates node `id` on the context's event, through the memo cells of shared nodes.
    pub fn eval<S: FieldSource>(&self, id: NodeId, context: &mut EvalContext<'_, '_, S>) -> bool {
        let node = &self.nodes[id as usize];
        if node.memo != NO_MEMO
            && let Some(value) = context.memoized(node.memo)
        {
            return value;
        }
        let value = match &node.op {
            Op::Const(value) => *value,
            Op::Check(check) => context.eval_check(check),
            Op::And(children) => children.iter().all(|child| self.eval(*child, context)),
            Op::Or(children) => children.iter().any(|child| self.eval(*child, context)),
            Op::Not(child) => !self.eval(*child, context),
        };
        if node.memo != NO_MEMO {
            context.memoize(node.memo, value);
        }
        value
    }
}

/// What makes two checks the same: the slot, list semantics and the matcher's content.
#[derive(Debug, PartialEq, Eq, Hash)]
enum MatcherKey {
    Exists,
    Text(&'static str, String),
    Bytes(&'static str, Vec<u8>),
    Glob(String, bool),
    Regex(String),
    Set(bool, Vec<String>),
    Pmatch(Vec<String>),
    IntCmp(Operator, i64),
    IntIn(Vec<i64>, bool),
    BoolEq(bool, bool),
    IpEq(IpAddr, u8, bool),
    IpIn(Vec<(IpAddr, u8)>, bool),
    Field(Operator, usize),
}

fn sorted_set(set: &StringSet) -> Vec<String> {
    let mut items: Vec<String> = set.items().into_iter().map(str::to_string).collect();
    items.sort_unstable();
    items
}

fn matcher_key(matcher: &Matcher) -> MatcherKey {
    let text = |kind: &'static str, value: &str| MatcherKey::Text(kind, value.to_string());
    match matcher {
        Matcher::Exists => MatcherKey::Exists,
        Matcher::StrEq(value) => text("=", value),
        Matcher::StrNe(value) => text("!=", value),
        Matcher::Contains(value) => text("contains", value),
        Matcher::IContains(value) => text("icontains", value),
        Matcher::StartsWith(value) => text("startswith", value),
        Matcher::EndsWith(value) => text("endswith", value),
        Matcher::BContains(bytes) => MatcherKey::Bytes("bcontains", bytes.clone()),
        Matcher::BStartsWith(bytes) => MatcherKey::Bytes("bstartswith", bytes.clone()),
        Matcher::Glob(pattern, case_insensitive) => {
            MatcherKey::Glob(pattern.as_str().to_string(), *case_insensitive)
        }
        Matcher::Regex(regex) => MatcherKey::Regex(regex.as_str().to_string()),
        Matcher::StrIn(set) => MatcherKey::Set(false, sorted_set(set)),
        Matcher::StrIntersects(set) => MatcherKey::Set(true, sorted_set(set)),
        Matcher::Pmatch(prefixes) => MatcherKey::Pmatch(prefixes.clone()),
        Matcher::IntCmp(operator, value) => MatcherKey::IntCmp(*operator, *value),
        Matcher::IntIn(items, intersects) => MatcherKey::IntIn(items.clone(), *intersects),
        Matcher::BoolEq(value, equal) => MatcherKey::BoolEq(*value, *equal),
        Matcher::IpEq(network, equal) => MatcherKey::IpEq(network.address, network.prefix, *equal),
        Matcher::IpIn(networks, intersects) => MatcherKey::IpIn(
            networks
                .iter()
                .map(|network| (network.address, network.prefix))
                .collect(),
            *intersects,
        ),
        Matcher::Field(operator, slot) => MatcherKey::Field(*operator, *slot),
    }
}

/// Structural identity of a node: checks by content, junctions by their children's ids (so
/// two junctions are one node when their children are, in the same order).
#[derive(Debug, PartialEq, Eq, Hash)]
enum NodeKey {
    Const(bool),
    Check(usize, bool, MatcherKey),
    And(Vec<NodeId>),
    Or(Vec<NodeId>),
    Not(NodeId),
}

/// Builds a [`Program`] from rules' evaluation forms, one root per rule.
#[derive(Debug, Default)]
pub struct ProgramBuilder {
    ops: Vec<Op>,
    /// How many parents (or rules, for roots) refer to each node.
    references: Vec<u32>,
    index: HashMap<NodeKey, NodeId>,
}

impl ProgramBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule's condition; the returned root evaluates it.
    pub fn add_root(&mut self, node: &Node) -> NodeId {
        let id = self.add(node);
        self.references[id as usize] += 1;
        id
    }

    fn add(&mut self, node: &Node) -> NodeId {
        let (key, op) = match node {
            Node::Const(value) => (NodeKey::Const(*value), Op::Const(*value)),
            // evaluation forms hold no macro wrappers; a tree as written may
            Node::Macro(_, child) => return self.add(child),
            Node::Check(check) => (
                NodeKey::Check(check.slot, check.list_field, matcher_key(&check.matcher)),
                Op::Check(check.clone()),
            ),
            Node::Not(child) => {
                let child = self.add(child);
                (NodeKey::Not(child), Op::Not(child))
            }
            Node::And(children) => {
                let children: Vec<NodeId> = children.iter().map(|child| self.add(child)).collect();
                (NodeKey::And(children.clone()), Op::And(children.into()))
            }
            Node::Or(children) => {
                let children: Vec<NodeId> = children.iter().map(|child| self.add(child)).collect();
                (NodeKey::Or(children.clone()), Op::Or(children.into()))
            }
        };
        if let Some(existing) = self.index.get(&key) {
            return *existing;
        }
        // a new node: its children gain a parent (a known node's children already counted it)
        match &op {
            Op::Not(child) => self.references[*child as usize] += 1,
            Op::And(children) | Op::Or(children) => {
                for child in children.iter() {
                    self.references[*child as usize] += 1;
                }
            }
            Op::Const(_) | Op::Check(_) => {}
        }
        // a rule set has far fewer than u32::MAX nodes
        let id = NodeId::try_from(self.ops.len()).unwrap_or(NodeId::MAX);
        self.ops.push(op);
        self.references.push(0);
        self.index.insert(key, id);
        id
    }

    /// The program: every node referenced more than once gets a memo cell.
    pub fn finish(self) -> Program {
        let mut memo_cells = 0u32;
        let nodes = self
            .ops
            .into_iter()
            .zip(self.references)
            .map(|(op, references)| {
                let shared = references > 1 && !matches!(op, Op::Const(_));
                let memo = if shared {
                    memo_cells += 1;
                    memo_cells - 1
                } else {
                    NO_MEMO
                };
                ProgramNode { op, memo }
            })
            .collect();
        Program { nodes, memo_cells }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::check;

    #[test]
    fn identical_sub_conditions_of_different_rules_become_one_memoized_node() {
        let open_read = || {
            Node::And(vec![
                check(0, Matcher::BoolEq(true, true)),
                check(1, Matcher::StrEq("f".into())),
            ])
        };
        let first = Node::And(vec![
            open_read(),
            check(
                2,
                Matcher::StrIn(StringSet::new(vec!["/a".into(), "/b".into()])),
            ),
        ]);
        // the same set written in another order is the same check
        let second = Node::And(vec![
            open_read(),
            check(
                2,
                Matcher::StrIn(StringSet::new(vec!["/b".into(), "/a".into()])),
            ),
            check(3, Matcher::Exists),
        ]);
        let mut builder = ProgramBuilder::new();
        let first_root = builder.add_root(&first);
        let second_root = builder.add_root(&second);
        assert_ne!(first_root, second_root);
        let program = builder.finish();
        // bool check, typechar check, their conjunction, the set check, exists, two roots
        assert_eq!(program.node_count(), 7);
        // the shared conjunction and the shared set check; the conjunction's own children are
        // reached only through it
        assert_eq!(program.memo_cells(), 2);
    }

    #[test]
    fn a_rule_added_twice_shares_its_root() {
        let rule = Node::Or(vec![
            check(0, Matcher::IntCmp(Operator::Gt, 3)),
            Node::Not(Box::new(check(1, Matcher::StartsWith("/etc".into())))),
        ]);
        let mut builder = ProgramBuilder::new();
        let first = builder.add_root(&rule);
        let second = builder.add_root(&rule);
        assert_eq!(first, second);
        let program = builder.finish();
        assert_eq!(program.node_count(), 4);
        assert_eq!(program.memo_cells(), 1);
    }
}
