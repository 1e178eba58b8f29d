//! A YAML node tree that keeps the source position of every node, built from granit-parser
//! events (PyYAML-compatible indentation rules, as Falco's rules files need). Rules files are untrusted input: nesting depth, node count and alias expansion are
//! bounded, and tags (such as avocado's `!mux`) are ignored so a tagged mapping reads as a plain
//! mapping.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};

/// Largest nesting depth of sequences and mappings accepted in one document.
pub const MAX_DEPTH: usize = 64;
/// Largest number of nodes (including nodes copied by aliases) accepted in one input.
pub const MAX_NODES: usize = 2_000_000;

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: u32,
    /// Column number, starting at 1.
    pub column: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's content.
    pub value: NodeValue,
    /// Where the node starts in the source.
    pub position: Position,
}

/// The content of a YAML node. Scalars keep their text: Falco reads every scalar as a string.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// A scalar, with whether it was quoted or a block scalar (then never null or boolean).
    Scalar {
        /// The scalar's text after YAML unescaping and folding.
        text: String,
        /// True for quoted and block scalars.
        quoted: bool,
    },
    /// A sequence of nodes.
    Sequence(Vec<Node>),
    /// A mapping, in source order.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, when the node is a scalar that is not null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// True for `~`, `null`, `Null`, `NULL` and an empty plain scalar.
    pub fn is_null(&self) -> bool {
        match &self.value {
            NodeValue::Scalar {
                text,
                quoted: false,
            } => matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"),
            _ => false,
        }
    }

    /// The boolean value of a plain scalar (`true`, `false` in YAML 1.2 and 1.1 spellings).
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            NodeValue::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                    Some(false)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The entries of a mapping node.
    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items of a sequence node.
    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The value of `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_mapping()?
            .iter()
            .find(|(entry_key, _)| entry_key.as_str() == Some(key))
            .map(|(_, value)| value)
    }

    /// A short name of the node's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Scalar { .. } if self.is_null() => "null",
            NodeValue::Scalar { .. } => "scalar",
            NodeValue::Sequence(_) => "sequence",
            NodeValue::Mapping(_) => "mapping",
        }
    }
}

/// A YAML text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Where it is wrong.
    pub position: Position,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} at {}", self.message, self.position)
    }
}

enum Frame {
    Sequence {
        items: Vec<Node>,
        position: Position,
        anchor: usize,
    },
    Mapping {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        position: Position,
        anchor: usize,
    },
}

struct TreeBuilder {
    stack: Vec<Frame>,
    documents: Vec<Node>,
    anchors: HashMap<usize, Node>,
    node_count: usize,
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        NodeValue::Scalar { .. } => 1,
        NodeValue::Sequence(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeValue::Mapping(entries) => {
            1 + entries
                .iter()
                .map(|(key, value)| count_nodes(key) + count_nodes(value))
                .sum::<usize>()
        }
    }
}

impl TreeBuilder {
    fn charge(&mut self, nodes: usize, position: Position) -> Result<(), YamlError> {
        self.node_count = self.node_count.saturating_add(nodes);
        if self.node_count > MAX_NODES {
            return Err(YamlError {
                message: format!("document has more than {MAX_NODES} nodes"),
                position,
            });
        }
        Ok(())
    }

    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }

    fn finish_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push_value(node);
    }

    fn open(&mut self, frame: Frame, position: Position) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                position,
            });
        }
        self.charge(1, position)?;
        self.stack.push(frame);
        Ok(())
    }
}

/// Parses a YAML text into its documents.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = TreeBuilder {
        stack: Vec::new(),
        documents: Vec::new(),
        anchors: HashMap::new(),
        node_count: 0,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|scan_error| YamlError {
            message: scan_error.info().to_string(),
            position: Position {
                line: u32::try_from(scan_error.marker().line()).unwrap_or(u32::MAX),
                column: u32::try_from(scan_error.marker().col() + 1).unwrap_or(u32::MAX),
            },
        })?;
        let position = Position {
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        };
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                builder.charge(1, position)?;
                let quoted = !matches!(style, ScalarStyle::Plain);
                let node = Node {
                    value: NodeValue::Scalar {
                        text: text.into_owned(),
                        quoted,
                    },
                    position,
                };
                builder.finish_node(node, anchor);
            }
            Event::SequenceStart(_style, anchor, _tag) => builder.open(
                Frame::Sequence {
                    items: Vec::new(),
                    position,
                    anchor,
                },
                position,
            )?,
            Event::MappingStart(_style, anchor, _tag) => builder.open(
                Frame::Mapping {
                    entries: Vec::new(),
                    pending_key: None,
                    position,
                    anchor,
                },
                position,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match builder.stack.pop() {
                    Some(Frame::Sequence {
                        items,
                        position,
                        anchor,
                    }) => (
                        Node {
                            value: NodeValue::Sequence(items),
                            position,
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        entries,
                        position,
                        anchor,
                        ..
                    }) => (
                        Node {
                            value: NodeValue::Mapping(entries),
                            position,
                        },
                        anchor,
                    ),
                    None => {
                        return Err(YamlError {
                            message: "collection end without a start".to_string(),
                            position,
                        });
                    }
                };
                builder.finish_node(node, anchor);
            }
            Event::Alias(anchor) => {
                let Some(target) = builder.anchors.get(&anchor).cloned() else {
                    return Err(YamlError {
                        message: "alias to an unknown anchor".to_string(),
                        position,
                    });
                };
                builder.charge(count_nodes(&target), position)?;
                builder.push_value(target);
            }
            Event::UnresolvedAlias(name) => {
                return Err(YamlError {
                    message: format!("alias to an unknown anchor {name:?}"),
                    position,
                });
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(..)
            | Event::DocumentEnd
            | Event::Anchor(..) => {}
            _ => {}
        }
    }
    Ok(builder.documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_tags_and_scalars_are_kept() {
        let text = "top: !mux\n  a: 'x'\n  b: [1, true, ~]\n";
        let documents = parse_documents(text).expect("valid yaml");
        let root = &documents[0];
        let top = root.get("top").expect("top key");
        assert_eq!(top.kind_name(), "mapping");
        let a = top.get("a").expect("a");
        assert_eq!(a.as_str(), Some("x"));
        assert_eq!(a.position, Position { line: 2, column: 6 });
        let b = top.get("b").and_then(Node::as_sequence).expect("b");
        assert_eq!(b[0].as_str(), Some("1"));
        assert_eq!(b[1].as_bool(), Some(true));
        assert!(b[2].is_null());
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 5), "]".repeat(MAX_DEPTH + 5));
        let error = parse_documents(&deep).expect_err("too deep");
        assert!(
            error.message.contains("nest") || error.message.contains("deep"),
            "{error}"
        );

        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut previous = "a".to_string();
        for level in 0..9 {
            let name = format!("l{level}");
            bomb.push_str(&format!(
                "{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
            ));
            previous = name;
        }
        let error = parse_documents(&bomb).expect_err("alias bomb");
        assert!(error.message.contains("nodes"), "{error}");
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let error = parse_documents("a: [1, 2\nb: c\n").expect_err("unclosed flow");
        assert!(error.position.line >= 1);
    }
}
