//! `rules check`: validates rules files against the field schemas available and reports every
//! problem with its file, line, column and item.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use crate::engine::{CompileOptions, LoadSummary, compile_rules};
use crate::error::{Diagnostic, DiagnosticCode, RulesError, Severity};
use crate::fields::{FieldError, FieldSchema, FieldSpec, ValueType, parse_index_or_key};
use crate::loader::RulesLoader;
use crate::yaml::Position;

/// How a command ended, for the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything checked out.
    Success,
    /// Problems were found (errors in rules, undecodable events, a missing rule).
    Failure,
}

impl ExitStatus {
    /// The process exit code: 0 or 1.
    pub fn code(self) -> i32 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
        }
    }
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckFormat {
    /// One line per problem, then a summary.
    #[default]
    Text,
    /// One JSON document with diagnostics and summaries.
    Json,
}

/// Arguments of `palisade rules check FILE...`.
#[derive(Debug, Clone, Default)]
pub struct CheckArgs {
    /// Rules files, loaded in this order.
    pub files: Vec<PathBuf>,
    /// Output format.
    pub format: CheckFormat,
    /// Report lists and macros no rule uses.
    pub warn_unused: bool,
}

/// What `check` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Every problem, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// One summary per source found in the files.
    pub summaries: Vec<LoadSummary>,
}

impl CheckReport {
    /// Number of error diagnostics.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .count()
    }
}

/// Accepts every field name as a string field, for sources whose schema is not available
/// here: conditions are still parsed and macros and lists resolved.
pub struct SyntaxOnlySchema {
    /// The source name it stands in for.
    pub source: String,
}

impl FieldSchema for SyntaxOnlySchema {
    fn source_name(&self) -> &str {
        &self.source
    }

    fn resolve(&self, _name: &str, arg: Option<&str>) -> Result<FieldSpec, FieldError> {
        Ok(FieldSpec {
            id: 0,
            arg: parse_index_or_key(arg),
            value_type: ValueType::String,
            is_list: false,
        })
    }
}

/// Validates the files in `args` with the given schemas, writes the report to `out` and says
/// how the command should exit.
pub fn check(
    args: &CheckArgs,
    schemas: &[&dyn FieldSchema],
    out: &mut dyn Write,
) -> Result<(CheckReport, ExitStatus), RulesError> {
    let mut loader = RulesLoader::new();
    let mut diagnostics = Vec::new();
    for file in &args.files {
        if let Err(error) = loader.add_file(file) {
            diagnostics.push(Diagnostic::new(
                Severity::Error,
                DiagnosticCode::BadItem,
                &file.display().to_string(),
                Position { line: 0, column: 0 },
                None,
                error.to_string(),
            ));
        }
    }
    let loaded = loader.finish();
    diagnostics.extend(loaded.diagnostics.iter().cloned());
    let loader_diagnostics = loaded.diagnostics.len();

    let rule_sources: BTreeSet<String> = loaded
        .rules
        .iter()
        .map(|rule| rule.source.clone())
        .collect();
    let mut summaries = Vec::new();
    let mut used_macros = BTreeSet::new();
    let mut used_lists = BTreeSet::new();
    let mut compile_with = |schema: &dyn FieldSchema, diagnostics: &mut Vec<Diagnostic>| {
        let compiled = compile_rules(&loaded, schema, CompileOptions::default());
        diagnostics.extend(compiled.diagnostics()[loader_diagnostics..].iter().cloned());
        used_macros.extend(compiled.used_macros().iter().cloned());
        used_lists.extend(compiled.used_lists().iter().cloned());
        let mut summary = compiled.summary().clone();
        summary.other_sources.clear();
        summary
    };
    for source in &rule_sources {
        let summary = match schemas.iter().find(|schema| schema.source_name() == source) {
            Some(schema) => compile_with(*schema, &mut diagnostics),
            None => {
                if let Some(first) = loaded.rules.iter().find(|rule| &rule.source == source) {
                    diagnostics.push(Diagnostic::new(
                        Severity::Warning,
                        DiagnosticCode::UnknownSource,
                        &first.origin.file,
                        first.origin.position,
                        Some(format!("rule {:?}", first.name)),
                        format!(
                            "no field table for source {source:?} here: its conditions are parsed but field names are not checked"
                        ),
                    ));
                }
                compile_with(
                    &SyntaxOnlySchema {
                        source: source.clone(),
                    },
                    &mut diagnostics,
                )
            }
        };
        summaries.push(summary);
    }
    if args.warn_unused {
        for list in &loaded.lists {
            if !used_lists.contains(&list.name) {
                diagnostics.push(Diagnostic::new(
                    Severity::Warning,
                    DiagnosticCode::Unused,
                    &list.origin.file,
                    list.origin.position,
                    Some(format!("list {:?}", list.name)),
                    "defined but used by no rule",
                ));
            }
        }
        for macro_def in &loaded.macros {
            if !used_macros.contains(&macro_def.name) {
                diagnostics.push(Diagnostic::new(
                    Severity::Warning,
                    DiagnosticCode::Unused,
                    &macro_def.origin.file,
                    macro_def.origin.position,
                    Some(format!("macro {:?}", macro_def.name)),
                    "defined but used by no rule",
                ));
            }
        }
    }
    diagnostics.sort_by(|left, right| {
        (&left.file, left.line, left.column).cmp(&(&right.file, right.line, right.column))
    });
    diagnostics.dedup();
    let report = CheckReport {
        diagnostics,
        summaries,
    };
    match args.format {
        CheckFormat::Text => {
            for diagnostic in &report.diagnostics {
                writeln!(out, "{diagnostic}")?;
            }
            for summary in &report.summaries {
                writeln!(out, "{summary}")?;
            }
            let errors = report.errors();
            writeln!(
                out,
                "{} file(s) checked: {errors} error(s), {} warning(s)",
                args.files.len(),
                report.diagnostics.len() - errors
            )?;
        }
        CheckFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)
                .map_err(|error| RulesError::Output(std::io::Error::other(error)))?;
            writeln!(out)?;
        }
    }
    let status = if report.errors() == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    };
    Ok((report, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{ArgRule, FieldInfo, TableSchema};

    #[test]
    fn every_problem_is_reported_with_file_line_and_item() -> Result<(), RulesError> {
        let directory = tempfile::tempdir().map_err(RulesError::Output)?;
        let file = directory.path().join("rules.yaml");
        std::fs::write(
            &file,
            "- macro: m\n  condition: k.a = 1\n- rule: ok\n  desc: d\n  condition: m\n  output: o\n  priority: INFO\n  source: k\n\
             - rule: bad field\n  desc: d\n  condition: k.nope = 1\n  output: o\n  priority: INFO\n  source: k\n\
             - rule: bad syntax\n  desc: d\n  condition: k.a = = 1\n  output: o\n  priority: INFO\n  source: k\n\
             - rule: other source\n  desc: d\n  condition: x.y exists\n  output: o\n  priority: INFO\n  source: unknown_source\n",
        )
        .map_err(RulesError::Output)?;
        let schema = TableSchema::new(
            "k",
            vec![FieldInfo {
                name: "k.a",
                value_type: crate::fields::ValueType::String,
                is_list: false,
                arg: ArgRule::None,
                description: "",
            }],
            &[],
        );
        let args = CheckArgs {
            files: vec![file.clone(), directory.path().join("missing.yaml")],
            ..CheckArgs::default()
        };
        let mut out = Vec::new();
        let (report, status) = check(&args, &[&schema], &mut out)?;
        let text = String::from_utf8(out)
            .map_err(|error| RulesError::Output(std::io::Error::other(error)))?;
        assert_eq!(status, ExitStatus::Failure);
        assert_eq!(report.errors(), 3, "{text}");
        assert!(
            text.contains(":11:"),
            "the unknown field is located on its line: {text}"
        );
        assert!(
            text.contains("rule \"bad field\": unknown field \"k.nope\""),
            "{text}"
        );
        assert!(text.contains("rule \"bad syntax\""), "{text}");
        assert!(text.contains("missing.yaml"), "{text}");
        assert!(text.contains("warning[unknown_source]"), "{text}");
        assert!(text.contains("k: 1 rules loaded"), "{text}");
        Ok(())
    }
}
