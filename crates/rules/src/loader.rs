//! Loads rules files in order and merges their items the way Falco does: later items with the
//! same name redefine, append to or override earlier ones. The result holds the final lists,
//! macros and rules plus every problem found, each located in its file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use palisade_proto::v1::Priority;

use crate::error::{Diagnostic, DiagnosticCode, RulesError, Severity};
use crate::items::{
    ExceptionDef, Item, ItemReader, Located, MacroItem, Mode, Origin, PluginRequirement, RuleItem,
};
use crate::yaml::{self, Position};

/// Largest rules file accepted.
pub const MAX_RULES_FILE_BYTES: u64 = 16 << 20;

/// The Falco rules engine version whose files this engine reads (Falco 0.44's engine).
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 57, 0);

/// A condition assembled from one or more appended pieces, each remembering where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionText {
    /// The full condition.
    pub text: String,
    /// Byte offset where each piece starts, with the piece's origin.
    pub segments: Vec<(usize, Origin)>,
}

impl ConditionText {
    fn new(located: &Located<String>) -> Self {
        Self {
            text: located.value.clone(),
            segments: vec![(0, located.origin.clone())],
        }
    }

    fn append(&mut self, located: &Located<String>) {
        self.text.push(' ');
        self.segments
            .push((self.text.len(), located.origin.clone()));
        self.text.push_str(&located.value);
    }

    /// The file and position of a byte offset in the condition.
    pub fn locate(&self, offset: usize) -> Origin {
        let Some((start, origin)) = self
            .segments
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .or_else(|| self.segments.first())
        else {
            return Origin {
                file: Arc::from(""),
                position: Position::default(),
            };
        };
        let before = self
            .text
            .get(*start..offset.min(self.text.len()))
            .unwrap_or_default();
        let newlines = before.matches('\n').count();
        let column_base = if newlines == 0 {
            origin.position.column as usize
        } else {
            1
        };
        let since_newline = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .count();
        Origin {
            file: origin.file.clone(),
            position: Position {
                line: origin.position.line + u32::try_from(newlines).unwrap_or(u32::MAX),
                column: u32::try_from(column_base + since_newline).unwrap_or(u32::MAX),
            },
        }
    }
}

/// A list after all appends.
#[derive(Debug, Clone)]
pub struct ListDef {
    /// Name.
    pub name: String,
    /// Items, possibly naming other lists.
    pub items: Vec<String>,
    /// Where it was first defined.
    pub origin: Origin,
}

/// A macro after all appends.
#[derive(Debug, Clone)]
pub struct MacroDef {
    /// Name.
    pub name: String,
    /// Condition.
    pub condition: ConditionText,
    /// Where it was defined.
    pub origin: Origin,
}

/// A rule after all appends and overrides.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// Name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Condition.
    pub condition: ConditionText,
    /// Output template.
    pub output: Located<String>,
    /// Priority.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
    /// Event source.
    pub source: String,
    /// Whether the rule is enabled.
    pub enabled: bool,
    /// Exceptions.
    pub exceptions: Vec<ExceptionDef>,
    /// Skip rather than fail when a field is unknown.
    pub skip_if_unknown_filter: bool,
    /// Where it was defined.
    pub origin: Origin,
}

/// Merged contents of a sequence of rules files.
#[derive(Debug, Clone, Default)]
pub struct LoadedRules {
    /// Lists by definition order.
    pub lists: Vec<ListDef>,
    /// Macros by definition order.
    pub macros: Vec<MacroDef>,
    /// Rules by definition order.
    pub rules: Vec<RuleDef>,
    /// Engine versions the files require.
    pub required_engine_versions: Vec<Located<String>>,
    /// Plugins the files require.
    pub required_plugins: Vec<Located<Vec<PluginRequirement>>>,
    /// Files loaded, in order.
    pub files: Vec<String>,
    /// Every problem found while loading.
    pub diagnostics: Vec<Diagnostic>,
    /// Rule items that could not be applied (bad item, append to a missing rule ...).
    pub skipped_rule_items: usize,
    list_index: HashMap<String, usize>,
    macro_index: HashMap<String, usize>,
    rule_index: HashMap<String, usize>,
}

impl LoadedRules {
    /// The list with this name.
    pub fn list(&self, name: &str) -> Option<&ListDef> {
        self.list_index.get(name).map(|index| &self.lists[*index])
    }

    /// The macro with this name.
    pub fn macro_def(&self, name: &str) -> Option<&MacroDef> {
        self.macro_index.get(name).map(|index| &self.macros[*index])
    }

    /// The rule with this name.
    pub fn rule(&self, name: &str) -> Option<&RuleDef> {
        self.rule_index.get(name).map(|index| &self.rules[*index])
    }

    /// Error diagnostics so far.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .count()
    }
}

/// Loads rules files in order.
#[derive(Debug, Default)]
pub struct RulesLoader {
    loaded: LoadedRules,
}

fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let text = text.trim();
    if let Ok(number) = text.parse::<u64>() {
        // Integer engine versions predate the semver scheme and map to 0.N.0.
        return Some((0, number, 0));
    }
    let mut parts = text.split('.').map(|part| part.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

impl RulesLoader {
    /// An empty loader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and adds a rules file. Only an unreadable or oversized file is an error; problems
    /// inside the file become diagnostics.
    pub fn add_file(&mut self, path: &Path) -> Result<(), RulesError> {
        let metadata = std::fs::metadata(path).map_err(|source| RulesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if metadata.len() > MAX_RULES_FILE_BYTES {
            return Err(RulesError::TooLarge {
                path: path.to_path_buf(),
                size: metadata.len(),
                limit: MAX_RULES_FILE_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_text(&path.display().to_string(), &text);
        Ok(())
    }

    /// Adds a rules file given as text, named `file` in diagnostics.
    pub fn add_text(&mut self, file: &str, text: &str) {
        self.loaded.files.push(file.to_string());
        let file_name: Arc<str> = Arc::from(file);
        let documents = match yaml::parse_documents(text) {
            Ok(documents) => documents,
            Err(error) => {
                self.loaded.diagnostics.push(Diagnostic::new(
                    Severity::Error,
                    DiagnosticCode::YamlSyntax,
                    file,
                    error.position,
                    None,
                    format!("invalid YAML, file not loaded: {}", error.message),
                ));
                return;
            }
        };
        let items =
            ItemReader::new(file_name, &mut self.loaded.diagnostics).read_documents(&documents);
        for item in items {
            self.apply(item);
        }
    }

    /// The merged result.
    pub fn finish(self) -> LoadedRules {
        self.loaded
    }

    fn report(&mut self, code: DiagnosticCode, origin: &Origin, item: String, message: String) {
        self.loaded.diagnostics.push(Diagnostic::new(
            Severity::Error,
            code,
            &origin.file,
            origin.position,
            Some(item),
            message,
        ));
    }

    fn apply(&mut self, item: Item) {
        match item {
            Item::RequiredEngineVersion(version) => {
                match parse_version(&version.value) {
                    Some(required) if required > ENGINE_VERSION => {
                        let (major, minor, patch) = ENGINE_VERSION;
                        self.loaded.diagnostics.push(Diagnostic::new(
                            Severity::Warning,
                            DiagnosticCode::Requirement,
                            &version.origin.file,
                            version.origin.position,
                            None,
                            format!(
                                "the file requires engine version {}, this engine reads {major}.{minor}.{patch}: newer features may fail to load",
                                version.value
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => self.loaded.diagnostics.push(Diagnostic::new(
                        Severity::Warning,
                        DiagnosticCode::Requirement,
                        &version.origin.file,
                        version.origin.position,
                        None,
                        format!("unreadable engine version {:?}", version.value),
                    )),
                }
                self.loaded.required_engine_versions.push(version);
            }
            Item::RequiredPluginVersions(plugins) => self.loaded.required_plugins.push(plugins),
            Item::List(list) => {
                let label = format!("list {:?}", list.name);
                match (list.mode, self.loaded.list_index.get(&list.name)) {
                    (Mode::Define, _) => {
                        let definition = crate::loader::ListDef {
                            name: list.name.clone(),
                            items: list.items,
                            origin: list.origin,
                        };
                        match self.loaded.list_index.get(&list.name) {
                            Some(index) => self.loaded.lists[*index] = definition,
                            None => {
                                self.loaded
                                    .list_index
                                    .insert(list.name, self.loaded.lists.len());
                                self.loaded.lists.push(definition);
                            }
                        }
                    }
                    (Mode::Append, Some(index)) => {
                        self.loaded.lists[*index].items.extend(list.items)
                    }
                    (Mode::Replace, Some(index)) => self.loaded.lists[*index].items = list.items,
                    (_, None) => self.report(
                        DiagnosticCode::AppendToUndefined,
                        &list.origin,
                        label,
                        "appends to or overrides a list that is not defined before".to_string(),
                    ),
                }
            }
            Item::Macro(macro_item) => self.apply_macro(macro_item),
            Item::Rule(rule) => self.apply_rule(rule),
        }
    }

    fn apply_macro(&mut self, macro_item: MacroItem) {
        let label = format!("macro {:?}", macro_item.name);
        let existing = self.loaded.macro_index.get(&macro_item.name).copied();
        match (macro_item.mode, existing) {
            (Mode::Define, _) | (Mode::Replace, Some(_)) => {
                let definition = MacroDef {
                    name: macro_item.name.clone(),
                    condition: ConditionText::new(&macro_item.condition),
                    origin: macro_item.origin,
                };
                match existing {
                    Some(index) => self.loaded.macros[index] = definition,
                    None => {
                        self.loaded
                            .macro_index
                            .insert(macro_item.name, self.loaded.macros.len());
                        self.loaded.macros.push(definition);
                    }
                }
            }
            (Mode::Append, Some(index)) => self.loaded.macros[index]
                .condition
                .append(&macro_item.condition),
            (_, None) => self.report(
                DiagnosticCode::AppendToUndefined,
                &macro_item.origin,
                label,
                "appends to or overrides a macro that is not defined before".to_string(),
            ),
        }
    }

    fn apply_rule(&mut self, rule: RuleItem) {
        let label = format!("rule {:?}", rule.name);
        let existing = self.loaded.rule_index.get(&rule.name).copied();
        let only_enabled = rule.condition.is_none()
            && rule.output.is_none()
            && rule.priority.is_none()
            && rule.desc.is_none()
            && rule.exceptions.is_none()
            && rule.enabled.is_some();
        if rule.append || !rule.overrides.is_empty() || only_enabled {
            let Some(index) = existing else {
                self.loaded.skipped_rule_items += 1;
                self.report(
                    DiagnosticCode::AppendToUndefined,
                    &rule.origin,
                    label,
                    "appends to, overrides or enables a rule that is not defined before"
                        .to_string(),
                );
                return;
            };
            self.modify_rule(index, rule);
            return;
        }
        let mut missing = Vec::new();
        if rule.condition.is_none() {
            missing.push("condition");
        }
        if rule.output.is_none() {
            missing.push("output");
        }
        if rule.priority.is_none() {
            missing.push("priority");
        }
        let (Some(condition), Some(output), Some(priority)) =
            (&rule.condition, &rule.output, rule.priority)
        else {
            self.loaded.skipped_rule_items += 1;
            self.report(
                DiagnosticCode::MissingKey,
                &rule.origin,
                label,
                format!("a rule needs {}", missing.join(", ")),
            );
            return;
        };
        if rule.desc.is_none() {
            self.loaded.diagnostics.push(Diagnostic::new(
                Severity::Warning,
                DiagnosticCode::MissingKey,
                &rule.origin.file,
                rule.origin.position,
                Some(label),
                "the rule has no desc",
            ));
        }
        let definition = RuleDef {
            name: rule.name.clone(),
            desc: rule.desc.clone().unwrap_or_default(),
            condition: ConditionText::new(condition),
            output: output.clone(),
            priority,
            tags: rule.tags.clone().unwrap_or_default(),
            source: rule.source.clone().unwrap_or_else(|| "syscall".to_string()),
            enabled: rule.enabled.unwrap_or(true),
            exceptions: rule.exceptions.clone().unwrap_or_default(),
            skip_if_unknown_filter: rule.skip_if_unknown_filter.unwrap_or(false),
            origin: rule.origin.clone(),
        };
        match existing {
            Some(index) => self.loaded.rules[index] = definition,
            None => {
                self.loaded
                    .rule_index
                    .insert(rule.name, self.loaded.rules.len());
                self.loaded.rules.push(definition);
            }
        }
    }

    fn modify_rule(&mut self, index: usize, rule: RuleItem) {
        let mode_of = |property: &str| -> Option<Mode> {
            if rule.append {
                matches!(property, "condition" | "exceptions").then_some(Mode::Append)
            } else {
                rule.overrides.get(property).copied()
            }
        };
        let mut problems = Vec::new();
        {
            let target = &mut self.loaded.rules[index];
            if let Some(condition) = &rule.condition {
                match mode_of("condition") {
                    Some(Mode::Append) => target.condition.append(condition),
                    Some(Mode::Replace) => target.condition = ConditionText::new(condition),
                    _ => {}
                }
            }
            if let Some(output) = &rule.output {
                match mode_of("output") {
                    Some(Mode::Append) => {
                        target.output.value.push(' ');
                        target.output.value.push_str(&output.value);
                    }
                    Some(Mode::Replace) => target.output = output.clone(),
                    _ => {}
                }
            }
            if let Some(desc) = &rule.desc {
                match mode_of("desc") {
                    Some(Mode::Append) => {
                        target.desc.push(' ');
                        target.desc.push_str(desc);
                    }
                    Some(Mode::Replace) => target.desc = desc.clone(),
                    _ => {}
                }
            }
            if let Some(tags) = &rule.tags {
                match mode_of("tags") {
                    Some(Mode::Append) => target.tags.extend(tags.iter().cloned()),
                    Some(Mode::Replace) => target.tags = tags.clone(),
                    _ => {}
                }
            }
            if let (Some(priority), Some(Mode::Replace)) = (rule.priority, mode_of("priority")) {
                target.priority = priority;
            }
            if let Some(enabled) = rule.enabled {
                // A bare `enabled` item, or an override of it, switches the rule on or off.
                if mode_of("enabled") == Some(Mode::Replace)
                    || rule.overrides.is_empty()
                    || rule.append
                {
                    target.enabled = enabled;
                }
            }
            if let (Some(flag), Some(Mode::Replace)) = (
                rule.skip_if_unknown_filter,
                mode_of("skip-if-unknown-filter"),
            ) {
                target.skip_if_unknown_filter = flag;
            }
            if let Some(exceptions) = &rule.exceptions {
                match mode_of("exceptions") {
                    Some(Mode::Replace) => target.exceptions = exceptions.clone(),
                    Some(Mode::Append) => {
                        for exception in exceptions {
                            match target
                                .exceptions
                                .iter_mut()
                                .find(|existing| existing.name == exception.name)
                            {
                                Some(existing) => {
                                    if exception.fields.is_some()
                                        && exception.fields != existing.fields
                                    {
                                        problems.push((
                                            exception.origin.clone(),
                                            format!(
                                                "appended exception {:?} redefines its fields",
                                                exception.name
                                            ),
                                        ));
                                        continue;
                                    }
                                    existing.values.extend(exception.values.iter().cloned());
                                }
                                None if exception.fields.is_some() => {
                                    target.exceptions.push(exception.clone())
                                }
                                None => problems.push((
                                    exception.origin.clone(),
                                    format!(
                                        "appended exception {:?} is new and needs fields",
                                        exception.name
                                    ),
                                )),
                            }
                        }
                    }
                    Some(Mode::Define) | None => {}
                }
            }
        }
        for (origin, message) in problems {
            self.report(
                DiagnosticCode::BadException,
                &origin,
                format!("rule {:?}", rule.name),
                message,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(texts: &[&str]) -> LoadedRules {
        let mut loader = RulesLoader::new();
        for (number, text) in texts.iter().enumerate() {
            loader.add_text(&format!("file{number}.yaml"), text);
        }
        loader.finish()
    }

    const BASE: &str = r#"
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type = execve
- rule: Shell
  desc: a shell
  condition: spawned and proc.name in (shells)
  output: shell %proc.name
  priority: WARNING
  tags: [shell]
"#;

    #[test]
    fn appends_and_overrides_merge_like_falco() {
        let loaded = load(&[
            BASE,
            r#"
- list: shells
  items: [zsh]
  override:
    items: append
- macro: spawned
  condition: and proc.tty != 0
  append: true
- rule: Shell
  condition: and not user.name = root
  output: (user=%user.name)
  priority: ERROR
  tags: [mitre_execution]
  override:
    condition: append
    output: append
    priority: replace
    tags: append
"#,
        ]);
        assert_eq!(loaded.error_count(), 0, "{:?}", loaded.diagnostics);
        assert_eq!(
            loaded.list("shells").expect("list").items,
            ["bash", "sh", "zsh"]
        );
        assert_eq!(
            loaded.macro_def("spawned").expect("macro").condition.text,
            "evt.type = execve and proc.tty != 0"
        );
        let rule = loaded.rule("Shell").expect("rule");
        assert_eq!(
            rule.condition.text,
            "spawned and proc.name in (shells) and not user.name = root"
        );
        assert_eq!(rule.output.value, "shell %proc.name (user=%user.name)");
        assert_eq!(rule.priority, Priority::Error);
        assert_eq!(rule.tags, ["shell", "mitre_execution"]);
        let origin = rule.condition.locate(rule.condition.text.len() - 3);
        assert_eq!(&*origin.file, "file1.yaml");
    }

    #[test]
    fn enabled_only_items_toggle_and_bad_items_are_located() {
        let loaded = load(&[
            BASE,
            "- rule: Shell\n  enabled: false\n- rule: Missing\n  enabled: false\n- rule: Broken\n  desc: no condition\n",
        ]);
        assert!(!loaded.rule("Shell").expect("rule").enabled);
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("file1.yaml:3:3: error[append_to_undefined]: rule \"Missing\"")
        );
        assert!(errors[1].contains("rule \"Broken\": a rule needs condition, output, priority"));
        assert_eq!(loaded.skipped_rule_items, 2);
    }

    #[test]
    fn yaml_errors_skip_the_file_with_a_location() {
        let loaded = load(&["- rule: x\n  condition: [\n"]);
        assert_eq!(loaded.error_count(), 1);
        assert_eq!(loaded.diagnostics[0].code, DiagnosticCode::YamlSyntax);
    }

    #[test]
    fn engine_versions_parse_in_both_schemes() {
        assert_eq!(parse_version("15"), Some((0, 15, 0)));
        assert_eq!(parse_version("0.31.0"), Some((0, 31, 0)));
        assert!(parse_version("x").is_none());
        let loaded = load(&["- required_engine_version: 0.99.0\n"]);
        assert_eq!(loaded.diagnostics.len(), 1);
        assert_eq!(loaded.diagnostics[0].severity, Severity::Warning);
    }
}
