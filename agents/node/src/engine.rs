//! Rules for the agent: Falco-compatible rules files compiled against the syscall source,
//! evaluated per event into [`Detection`]s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_rules::{CompileOptions, LoadSummary, RuleEngine, RulesLoader, Severity};

use crate::alerts::Detection;
use crate::error::AgentError;
use crate::event::Event;
use crate::fields::SyscallSource;

/// Palisade's runtime rule pack, built in; used when no rules file is given.
pub const BUILTIN_PACK: &str = include_str!("../../../rules/runtime/palisade_runtime_rules.yaml");
/// Name the built-in pack is reported under.
pub const BUILTIN_PACK_NAME: &str = "rules/runtime/palisade_runtime_rules.yaml";

/// Compiled rules and the node they run on.
pub struct Evaluator {
    engine: RuleEngine<SyscallSource>,
    hostname: String,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Evaluator")
            .field("summary", self.engine.compiled().summary())
            .finish()
    }
}

impl Evaluator {
    /// Loads the files in order (the built-in pack when `files` is empty) and compiles them.
    /// Errors in a rule skip that rule and are reported by [`Self::problems`]; a file that
    /// cannot be read is an error.
    pub fn load(files: &[PathBuf], hostname: &str) -> Result<Self, AgentError> {
        let mut loader = RulesLoader::new();
        if files.is_empty() {
            loader.add_text(BUILTIN_PACK_NAME, BUILTIN_PACK);
        }
        for file in files {
            loader.add_file(file).map_err(|error| AgentError::Rules {
                path: file.clone(),
                message: error.to_string(),
            })?;
        }
        Ok(Self::from_loader(loader, hostname))
    }

    /// Compiles what a loader holds.
    pub fn from_loader(loader: RulesLoader, hostname: &str) -> Self {
        let loaded = loader.finish();
        let engine = RuleEngine::new(
            Arc::new(SyscallSource::new(hostname)),
            &loaded,
            CompileOptions::default(),
        );
        Self {
            engine,
            hostname: hostname.to_string(),
        }
    }

    /// What the load produced.
    pub fn summary(&self) -> &LoadSummary {
        self.engine.compiled().summary()
    }

    /// Error diagnostics of the load, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.engine
            .compiled()
            .diagnostics()
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .map(ToString::to_string)
            .collect()
    }

    /// Names of the loaded rules.
    pub fn rule_names(&self) -> Vec<String> {
        self.engine
            .compiled()
            .rules()
            .iter()
            .map(|rule| rule.name.clone())
            .collect()
    }

    /// The rules that fire on `event`.
    pub fn evaluate(&self, event: &Event, out: &mut Vec<Detection>) {
        for detection in self.engine.detect(event) {
            let fields: BTreeMap<String, String> = detection.output_fields.into_iter().collect();
            out.push(Detection::new(
                &self.hostname,
                event,
                &detection.rule.name,
                &detection.rule.description,
                detection.rule.priority,
                detection.output,
                fields,
                detection.rule.tags.clone(),
            ));
        }
    }

    /// The engine, for explanations in tests and tools.
    pub fn engine(&self) -> &RuleEngine<SyscallSource> {
        &self.engine
    }
}
