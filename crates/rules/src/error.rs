//! Errors of the rules crate and the located diagnostics a rules load produces.

use std::path::PathBuf;

use crate::yaml::Position;

/// Failures of the rules API itself. Problems inside rules files are [`Diagnostic`]s, not errors:
/// a bad rule is reported and skipped while the rest load.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A rules file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A rules file is larger than the accepted limit.
    #[error("rules file {path} is {size} bytes, more than the {limit} bytes accepted")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A reload produced errors; the previous rule set stays active.
    #[error("new rules rejected, previous rules kept: {errors} error(s), first: {first}")]
    ReloadRejected {
        /// Number of error diagnostics.
        errors: usize,
        /// The first error, rendered.
        first: String,
    },
    /// A rule named for explanation does not exist.
    #[error("no rule named {0:?} in the loaded files")]
    NoSuchRule(String),
    /// Writing a report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl RulesError {
    /// Stable reason string users can search for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "rules_file_unreadable",
            Self::TooLarge { .. } => "rules_file_too_large",
            Self::ReloadRejected { .. } => "rules_reload_rejected",
            Self::NoSuchRule(_) => "rules_no_such_rule",
            Self::Output(_) => "rules_output_failed",
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Loaded anyway; worth a look.
    Warning,
    /// The item it names was skipped.
    Error,
}

/// Stable kinds of rules-file problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticCode {
    /// The file is not valid YAML.
    YamlSyntax,
    /// The document is not a list of items, or an item is malformed.
    BadItem,
    /// A key of an item is not known.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value has the wrong type or an invalid content.
    BadValue,
    /// A condition does not parse.
    ConditionSyntax,
    /// A condition names a field the source does not have.
    UnknownField,
    /// A field is used with an argument it does not accept, or an operator it cannot take.
    BadField,
    /// A condition references an undefined macro.
    UnknownMacro,
    /// Macros reference each other in a cycle.
    MacroCycle,
    /// An append or override names an item that does not exist.
    AppendToUndefined,
    /// An exception is malformed.
    BadException,
    /// An output template names an unknown field.
    BadOutput,
    /// The rule's source has no field schema here.
    UnknownSource,
    /// A requirement (engine or plugin version) is not met or not checkable.
    Requirement,
    /// A list or macro is defined but never used.
    Unused,
}

impl DiagnosticCode {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::YamlSyntax => "yaml_syntax",
            Self::BadItem => "bad_item",
            Self::UnknownKey => "unknown_key",
            Self::MissingKey => "missing_key",
            Self::BadValue => "bad_value",
            Self::ConditionSyntax => "condition_syntax",
            Self::UnknownField => "unknown_field",
            Self::BadField => "bad_field",
            Self::UnknownMacro => "unknown_macro",
            Self::MacroCycle => "macro_cycle",
            Self::AppendToUndefined => "append_to_undefined",
            Self::BadException => "bad_exception",
            Self::BadOutput => "bad_output",
            Self::UnknownSource => "unknown_source",
            Self::Requirement => "requirement",
            Self::Unused => "unused",
        }
    }
}

/// One located problem in a rules file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable kind.
    pub code: DiagnosticCode,
    /// The file, as given by the caller.
    pub file: String,
    /// Line and column in the file.
    pub line: u32,
    /// Column, 1-based.
    pub column: u32,
    /// The item concerned, e.g. `rule "Create Privileged Pod"`.
    pub item: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at a position.
    pub fn new(
        severity: Severity,
        code: DiagnosticCode,
        file: &str,
        position: Position,
        item: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code,
            file: file.to_string(),
            line: position.line,
            column: position.column,
            item,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            formatter,
            "{}:{}:{}: {severity}[{}]: ",
            self.file,
            self.line,
            self.column,
            self.code.as_str()
        )?;
        if let Some(item) = &self.item {
            write!(formatter, "{item}: ")?;
        }
        write!(formatter, "{}", self.message)
    }
}
