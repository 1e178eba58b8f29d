//! Reads the items of a Falco rules file (lists, macros, rules, requirements) out of the YAML
//! tree, checking keys and value types and reporting every problem with its position.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_proto::PriorityExt;
use palisade_proto::v1::Priority;

use crate::error::{Diagnostic, DiagnosticCode, Severity};
use crate::yaml::{Node, NodeValue, Position};

/// Where an item or value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File name as given by the caller.
    pub file: Arc<str>,
    /// Position in the file.
    pub position: Position,
}

/// How a later item with the same name changes an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Defines (or redefines) the item.
    Define,
    /// Appends to the earlier definition.
    Append,
    /// Replaces that property of the earlier definition.
    Replace,
}

/// A scalar with the position of its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it is written.
    pub origin: Origin,
}

/// One value of an exception tuple: a scalar, or a list for `in`/`pmatch`/`intersects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionOperand {
    /// A single value, or a list name for list comparisons.
    Scalar(String),
    /// An inline list.
    List(Vec<String>),
}

/// An exception of a rule: `and not ((f1 c1 v1 and f2 c2 v2) or ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionDef {
    /// Exception name, unique within the rule.
    pub name: String,
    /// Fields compared; `None` when the exception only appends values.
    pub fields: Option<Vec<String>>,
    /// Whether `fields` was written as one scalar (then each value is one operand).
    pub single_field: bool,
    /// Comparison operator per field (default `=`).
    pub comps: Option<Vec<String>>,
    /// Value tuples, one operand per field.
    pub values: Vec<Located<Vec<ExceptionOperand>>>,
    /// Where the exception is written.
    pub origin: Origin,
}

/// A plugin a rules file requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRequirement {
    /// Plugin name.
    pub name: String,
    /// Minimum version.
    pub version: String,
    /// Plugins that satisfy the requirement as well.
    pub alternatives: Vec<(String, String)>,
}

/// A `list` item.
#[derive(Debug, Clone)]
pub struct ListItem {
    /// List name.
    pub name: String,
    /// Items in order.
    pub items: Vec<String>,
    /// Define, append or replace.
    pub mode: Mode,
    /// Where the item is written.
    pub origin: Origin,
}

/// A `macro` item.
#[derive(Debug, Clone)]
pub struct MacroItem {
    /// Macro name.
    pub name: String,
    /// Condition text.
    pub condition: Located<String>,
    /// Define, append or replace.
    pub mode: Mode,
    /// Where the item is written.
    pub origin: Origin,
}

/// A `rule` item as written; properties not given are `None`.
#[derive(Debug, Clone)]
pub struct RuleItem {
    /// Rule name.
    pub name: String,
    /// Where the item is written.
    pub origin: Origin,
    /// `desc`
    pub desc: Option<String>,
    /// `condition`
    pub condition: Option<Located<String>>,
    /// `output`
    pub output: Option<Located<String>>,
    /// `priority`
    pub priority: Option<Priority>,
    /// `tags`
    pub tags: Option<Vec<String>>,
    /// `source`
    pub source: Option<String>,
    /// `enabled`
    pub enabled: Option<bool>,
    /// `exceptions`
    pub exceptions: Option<Vec<ExceptionDef>>,
    /// `skip-if-unknown-filter`
    pub skip_if_unknown_filter: Option<bool>,
    /// Legacy `append: true`.
    pub append: bool,
    /// `override:` per property.
    pub overrides: BTreeMap<String, Mode>,
}

/// One item of a rules file.
#[derive(Debug, Clone)]
pub enum Item {
    /// `required_engine_version`
    RequiredEngineVersion(Located<String>),
    /// `required_plugin_versions`
    RequiredPluginVersions(Located<Vec<PluginRequirement>>),
    /// `list`
    List(ListItem),
    /// `macro`
    Macro(MacroItem),
    /// `rule`
    Rule(RuleItem),
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "source",
    "enabled",
    "exceptions",
    "append",
    "override",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
];
const RULE_APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const RULE_REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "priority",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
];

/// Collects items and diagnostics for one file.
pub struct ItemReader<'diagnostics> {
    file: Arc<str>,
    diagnostics: &'diagnostics mut Vec<Diagnostic>,
}

impl<'diagnostics> ItemReader<'diagnostics> {
    /// A reader for `file` that reports into `diagnostics`.
    pub fn new(file: Arc<str>, diagnostics: &'diagnostics mut Vec<Diagnostic>) -> Self {
        Self { file, diagnostics }
    }

    fn origin(&self, position: Position) -> Origin {
        Origin {
            file: self.file.clone(),
            position,
        }
    }

    fn report(
        &mut self,
        severity: Severity,
        code: DiagnosticCode,
        position: Position,
        item: Option<String>,
        message: impl Into<String>,
    ) {
        self.diagnostics.push(Diagnostic::new(
            severity, code, &self.file, position, item, message,
        ));
    }

    /// Reads every item of the file's documents. Bad items are reported and left out.
    pub fn read_documents(&mut self, documents: &[Node]) -> Vec<Item> {
        let mut items = Vec::new();
        for document in documents {
            if document.is_null() {
                continue;
            }
            let Some(entries) = document.as_sequence() else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadItem,
                    document.position,
                    None,
                    format!(
                        "a rules file must be a list of items, found a {}",
                        document.kind_name()
                    ),
                );
                continue;
            };
            for entry in entries {
                if let Some(item) = self.read_item(entry) {
                    items.push(item);
                }
            }
        }
        items
    }

    fn read_item(&mut self, node: &Node) -> Option<Item> {
        if node.as_mapping().is_none() {
            self.report(
                Severity::Error,
                DiagnosticCode::BadItem,
                node.position,
                None,
                format!("an item must be a mapping, found a {}", node.kind_name()),
            );
            return None;
        }
        if let Some(version) = node.get("required_engine_version") {
            let Some(text) = version.as_str() else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    version.position,
                    None,
                    "required_engine_version must be a number or a version string",
                );
                return None;
            };
            return Some(Item::RequiredEngineVersion(Located {
                value: text.to_string(),
                origin: self.origin(version.position),
            }));
        }
        if let Some(plugins) = node.get("required_plugin_versions") {
            return self.read_plugin_requirements(plugins);
        }
        if let Some(name) = node.get("list") {
            return self.read_list(node, name);
        }
        if let Some(name) = node.get("macro") {
            return self.read_macro(node, name);
        }
        if let Some(name) = node.get("rule") {
            return self.read_rule(node, name);
        }
        let keys: Vec<&str> = node
            .as_mapping()
            .unwrap_or_default()
            .iter()
            .filter_map(|(key, _)| key.as_str())
            .collect();
        self.report(
            Severity::Error,
            DiagnosticCode::BadItem,
            node.position,
            None,
            format!(
                "unknown item with keys {keys:?}: expected rule, macro, list, required_engine_version or required_plugin_versions"
            ),
        );
        None
    }

    fn read_plugin_requirements(&mut self, node: &Node) -> Option<Item> {
        let Some(entries) = node.as_sequence() else {
            self.report(
                Severity::Error,
                DiagnosticCode::BadValue,
                node.position,
                None,
                "required_plugin_versions must be a list of {name, version}",
            );
            return None;
        };
        let mut requirements = Vec::new();
        for entry in entries {
            let name = entry.get("name").and_then(Node::as_str);
            let version = entry.get("version").and_then(Node::as_str);
            let (Some(name), Some(version)) = (name, version) else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    entry.position,
                    None,
                    "a required plugin needs a name and a version",
                );
                continue;
            };
            let alternatives = entry
                .get("alternatives")
                .and_then(Node::as_sequence)
                .unwrap_or_default()
                .iter()
                .filter_map(|alternative| {
                    Some((
                        alternative.get("name")?.as_str()?.to_string(),
                        alternative.get("version")?.as_str()?.to_string(),
                    ))
                })
                .collect();
            requirements.push(PluginRequirement {
                name: name.to_string(),
                version: version.to_string(),
                alternatives,
            });
        }
        Some(Item::RequiredPluginVersions(Located {
            value: requirements,
            origin: self.origin(node.position),
        }))
    }

    fn item_name(&mut self, kind: &str, name: &Node) -> Option<String> {
        match name.as_str() {
            Some(text) if !text.trim().is_empty() => Some(text.to_string()),
            _ => {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    name.position,
                    None,
                    format!("the {kind} name must be a non-empty string"),
                );
                None
            }
        }
    }

    /// Reads `override:` and `append:`, checking the property names allowed for the item kind.
    fn read_modes(
        &mut self,
        node: &Node,
        label: &str,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> Option<(bool, BTreeMap<String, Mode>)> {
        let mut append = false;
        if let Some(value) = node.get("append") {
            match value.as_bool() {
                Some(flag) => append = flag,
                None => {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::BadValue,
                        value.position,
                        Some(label.to_string()),
                        "append must be true or false",
                    );
                    return None;
                }
            }
        }
        let mut overrides = BTreeMap::new();
        if let Some(override_node) = node.get("override") {
            if append {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadItem,
                    override_node.position,
                    Some(label.to_string()),
                    "append and override cannot be used together",
                );
                return None;
            }
            let Some(entries) = override_node.as_mapping() else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    override_node.position,
                    Some(label.to_string()),
                    "override must map properties to append or replace",
                );
                return None;
            };
            for (key, value) in entries {
                let property = key.as_str().unwrap_or_default().to_string();
                let mode = match value.as_str() {
                    Some("append") if appendable.contains(&property.as_str()) => Mode::Append,
                    Some("replace") if replaceable.contains(&property.as_str()) => Mode::Replace,
                    Some(mode @ ("append" | "replace")) => {
                        self.report(
                            Severity::Error,
                            DiagnosticCode::BadValue,
                            value.position,
                            Some(label.to_string()),
                            format!("property {property:?} cannot be overridden with {mode}"),
                        );
                        return None;
                    }
                    _ => {
                        self.report(
                            Severity::Error,
                            DiagnosticCode::BadValue,
                            value.position,
                            Some(label.to_string()),
                            format!("override of {property:?} must be append or replace"),
                        );
                        return None;
                    }
                };
                if node.get(&property).is_none() {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::MissingKey,
                        key.position,
                        Some(label.to_string()),
                        format!("override names {property:?} but the item does not set it"),
                    );
                    return None;
                }
                overrides.insert(property, mode);
            }
        }
        Some((append, overrides))
    }

    fn warn_unknown_keys(&mut self, node: &Node, label: &str, known: &[&str]) {
        let unknown: Vec<(String, Position)> = node
            .as_mapping()
            .unwrap_or_default()
            .iter()
            .filter_map(|(key, _)| {
                let text = key.as_str()?;
                (!known.contains(&text)).then(|| (text.to_string(), key.position))
            })
            .collect();
        for (key, position) in unknown {
            self.report(
                Severity::Warning,
                DiagnosticCode::UnknownKey,
                position,
                Some(label.to_string()),
                format!("unknown key {key:?} ignored"),
            );
        }
    }

    fn read_string_list(&mut self, node: &Node, label: &str, what: &str) -> Option<Vec<String>> {
        let Some(entries) = node.as_sequence() else {
            self.report(
                Severity::Error,
                DiagnosticCode::BadValue,
                node.position,
                Some(label.to_string()),
                format!("{what} must be a list, found a {}", node.kind_name()),
            );
            return None;
        };
        let mut values = Vec::with_capacity(entries.len());
        for entry in entries {
            match &entry.value {
                NodeValue::Scalar { text, .. } => values.push(text.clone()),
                _ => {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::BadValue,
                        entry.position,
                        Some(label.to_string()),
                        format!(
                            "{what} entries must be scalars, found a {}",
                            entry.kind_name()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(values)
    }

    fn read_list(&mut self, node: &Node, name_node: &Node) -> Option<Item> {
        let name = self.item_name("list", name_node)?;
        let label = format!("list {name:?}");
        self.warn_unknown_keys(node, &label, &["list", "items", "append", "override"]);
        let (append, overrides) = self.read_modes(node, &label, &["items"], &["items"])?;
        let Some(items_node) = node.get("items") else {
            self.report(
                Severity::Error,
                DiagnosticCode::MissingKey,
                node.position,
                Some(label),
                "a list needs items",
            );
            return None;
        };
        let items = if items_node.is_null() {
            Vec::new()
        } else {
            self.read_string_list(items_node, &label, "items")?
        };
        let mode = match overrides.get("items") {
            Some(mode) => *mode,
            None if append => Mode::Append,
            None => Mode::Define,
        };
        Some(Item::List(ListItem {
            name,
            items,
            mode,
            origin: self.origin(node.position),
        }))
    }

    fn read_macro(&mut self, node: &Node, name_node: &Node) -> Option<Item> {
        let name = self.item_name("macro", name_node)?;
        let label = format!("macro {name:?}");
        self.warn_unknown_keys(node, &label, &["macro", "condition", "append", "override"]);
        let (append, overrides) = self.read_modes(node, &label, &["condition"], &["condition"])?;
        let Some(condition_node) = node.get("condition") else {
            self.report(
                Severity::Error,
                DiagnosticCode::MissingKey,
                node.position,
                Some(label),
                "a macro needs a condition",
            );
            return None;
        };
        let Some(condition) = condition_node.as_str() else {
            self.report(
                Severity::Error,
                DiagnosticCode::BadValue,
                condition_node.position,
                Some(label),
                "the condition must be a string",
            );
            return None;
        };
        let mode = match overrides.get("condition") {
            Some(mode) => *mode,
            None if append => Mode::Append,
            None => Mode::Define,
        };
        Some(Item::Macro(MacroItem {
            name,
            condition: Located {
                value: condition.to_string(),
                origin: self.origin(condition_node.position),
            },
            mode,
            origin: self.origin(node.position),
        }))
    }

    fn read_rule(&mut self, node: &Node, name_node: &Node) -> Option<Item> {
        let name = self.item_name("rule", name_node)?;
        let label = format!("rule {name:?}");
        self.warn_unknown_keys(node, &label, RULE_KEYS);
        let (append, overrides) =
            self.read_modes(node, &label, RULE_APPENDABLE, RULE_REPLACEABLE)?;
        let mut rule = RuleItem {
            name,
            origin: self.origin(node.position),
            desc: None,
            condition: None,
            output: None,
            priority: None,
            tags: None,
            source: None,
            enabled: None,
            exceptions: None,
            skip_if_unknown_filter: None,
            append,
            overrides,
        };
        for key in ["desc", "condition", "output", "source"] {
            let Some(value) = node.get(key) else { continue };
            let Some(text) = value.as_str() else {
                if value.is_null() && key == "desc" {
                    continue;
                }
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    value.position,
                    Some(label),
                    format!("{key} must be a string, found a {}", value.kind_name()),
                );
                return None;
            };
            let located = Located {
                value: text.to_string(),
                origin: self.origin(value.position),
            };
            match key {
                "desc" => rule.desc = Some(text.trim().to_string()),
                "condition" => rule.condition = Some(located),
                "output" => rule.output = Some(located),
                _ => rule.source = Some(text.trim().to_string()),
            }
        }
        if let Some(value) = node.get("priority") {
            match value.as_str().map(Priority::from_falco_name) {
                Some(Ok(priority)) => rule.priority = Some(priority),
                Some(Err(error)) => {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::BadValue,
                        value.position,
                        Some(label),
                        error.to_string(),
                    );
                    return None;
                }
                None => {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::BadValue,
                        value.position,
                        Some(label),
                        "priority must be a string",
                    );
                    return None;
                }
            }
        }
        if let Some(value) = node.get("tags") {
            rule.tags = Some(if value.is_null() {
                Vec::new()
            } else {
                self.read_string_list(value, &label, "tags")?
            });
        }
        for key in ["enabled", "skip-if-unknown-filter"] {
            let Some(value) = node.get(key) else { continue };
            let Some(flag) = value.as_bool() else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadValue,
                    value.position,
                    Some(label),
                    format!("{key} must be true or false"),
                );
                return None;
            };
            if key == "enabled" {
                rule.enabled = Some(flag);
            } else {
                rule.skip_if_unknown_filter = Some(flag);
            }
        }
        if let Some(value) = node.get("exceptions") {
            rule.exceptions = Some(self.read_exceptions(value, &label)?);
        }
        Some(Item::Rule(rule))
    }

    fn read_exception_operand(&mut self, node: &Node, label: &str) -> Option<ExceptionOperand> {
        match &node.value {
            NodeValue::Scalar { text, .. } => Some(ExceptionOperand::Scalar(text.clone())),
            NodeValue::Sequence(_) => Some(ExceptionOperand::List(self.read_string_list(
                node,
                label,
                "exception value lists",
            )?)),
            NodeValue::Mapping(_) => {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadException,
                    node.position,
                    Some(label.to_string()),
                    "exception values must be scalars or lists",
                );
                None
            }
        }
    }

    fn read_exceptions(&mut self, node: &Node, label: &str) -> Option<Vec<ExceptionDef>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let Some(entries) = node.as_sequence() else {
            self.report(
                Severity::Error,
                DiagnosticCode::BadException,
                node.position,
                Some(label.to_string()),
                "exceptions must be a list",
            );
            return None;
        };
        let mut exceptions = Vec::new();
        for entry in entries {
            self.warn_unknown_keys(entry, label, &["name", "fields", "comps", "values"]);
            let Some(name) = entry.get("name").and_then(Node::as_str) else {
                self.report(
                    Severity::Error,
                    DiagnosticCode::BadException,
                    entry.position,
                    Some(label.to_string()),
                    "an exception needs a name",
                );
                return None;
            };
            let exception_label = format!("{label} exception {name:?}");
            let (fields, single_field) = match entry.get("fields") {
                None => (None, false),
                Some(fields) => match &fields.value {
                    NodeValue::Scalar { text, .. } => (Some(vec![text.clone()]), true),
                    _ => (
                        Some(self.read_string_list(fields, &exception_label, "fields")?),
                        false,
                    ),
                },
            };
            let comps = match entry.get("comps") {
                None => None,
                Some(comps) => match &comps.value {
                    NodeValue::Scalar { text, .. } => Some(vec![text.clone()]),
                    _ => Some(self.read_string_list(comps, &exception_label, "comps")?),
                },
            };
            let mut values = Vec::new();
            if let Some(values_node) = entry.get("values").filter(|values| !values.is_null()) {
                let Some(tuples) = values_node.as_sequence() else {
                    self.report(
                        Severity::Error,
                        DiagnosticCode::BadException,
                        values_node.position,
                        Some(exception_label),
                        "values must be a list",
                    );
                    return None;
                };
                for tuple in tuples {
                    let operands = if single_field {
                        vec![self.read_exception_operand(tuple, &exception_label)?]
                    } else {
                        let Some(items) = tuple.as_sequence() else {
                            self.report(
                                Severity::Error,
                                DiagnosticCode::BadException,
                                tuple.position,
                                Some(exception_label),
                                "with a list of fields, each value must be a list with one entry per field",
                            );
                            return None;
                        };
                        let mut operands = Vec::with_capacity(items.len());
                        for item in items {
                            operands.push(self.read_exception_operand(item, &exception_label)?);
                        }
                        operands
                    };
                    values.push(Located {
                        value: operands,
                        origin: self.origin(tuple.position),
                    });
                }
            }
            exceptions.push(ExceptionDef {
                name: name.to_string(),
                fields,
                single_field,
                comps,
                values,
                origin: self.origin(entry.position),
            });
        }
        Some(exceptions)
    }
}
