//! Rules for the agent: Falco-compatible rules files compiled against the syscall source,
//! evaluated per event into [`Detection`]s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_rules::{CompileOptions, EvalScratch, LoadSummary, RuleEngine, RulesLoader, Severity};

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

    /// Compiles named rules texts (pushed by the server) in the given order, refusing a set
    /// with any error or without a syscall rule: a pushed set replaces the running one only
    /// whole, so a typo never silently drops a detection.
    pub fn from_texts(texts: &[(String, String)], hostname: &str) -> Result<Self, String> {
        let mut loader = RulesLoader::new();
        for (name, text) in texts {
            loader.add_text(name, text);
        }
        let evaluator = Self::from_loader(loader, hostname);
        let problems = evaluator.problems();
        if let Some(first) = problems.first() {
            return Err(format!(
                "{} rule errors, the first: {first}",
                problems.len()
            ));
        }
        if evaluator.summary().loaded == 0 {
            let names: Vec<&str> = texts.iter().map(|(name, _)| name.as_str()).collect();
            return Err(format!(
                "no rule of source syscall loaded from {}",
                names.join(", ")
            ));
        }
        Ok(evaluator)
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
        self.evaluate_with(event, &mut EvalScratch::new(), out);
    }

    /// The rules that fire on `event`, evaluated on the reusable buffers of `scratch`.
    pub fn evaluate_with(
        &self,
        event: &Event,
        scratch: &mut EvalScratch,
        out: &mut Vec<Detection>,
    ) {
        let mut fired = Vec::new();
        self.engine.detect_with(event, scratch, &mut fired);
        for detection in fired {
            out.push(self.detection(event, detection));
        }
    }

    /// The rules that fire on each event of a batch, evaluated on the reusable buffers of
    /// `scratch` (one per worker thread): no allocation per event unless a rule fires.
    pub fn evaluate_batch(
        &self,
        events: &[Event],
        scratch: &mut EvalScratch,
        out: &mut Vec<Detection>,
    ) {
        let mut fired = Vec::new();
        self.engine.detect_batch(events, scratch, &mut fired);
        for (position, detection) in fired {
            out.push(self.detection(&events[position], detection));
        }
    }

    fn detection(&self, event: &Event, detection: palisade_rules::Detection) -> Detection {
        let fields: BTreeMap<String, String> = detection.output_fields.into_iter().collect();
        Detection::new(
            &self.hostname,
            event,
            &detection.rule.name,
            &detection.rule.description,
            detection.rule.priority,
            detection.output,
            fields,
            detection.rule.tags.clone(),
        )
    }

    /// The engine, for explanations in tests and tools.
    pub fn engine(&self) -> &RuleEngine<SyscallSource> {
        &self.engine
    }
}

/// Applies rules pushed by the server to the running workers: the new set is compiled off to
/// the side and swapped in whole, or refused with the reason while the old set keeps running.
pub struct RulesApplier {
    rules: Arc<arc_swap::ArcSwap<Evaluator>>,
    hostname: String,
}

impl RulesApplier {
    /// An applier swapping the set the workers read from `rules`.
    pub fn new(rules: Arc<arc_swap::ArcSwap<Evaluator>>, hostname: &str) -> Self {
        Self {
            rules,
            hostname: hostname.to_string(),
        }
    }
}

impl palisade_agent_link::ConfigApplier for RulesApplier {
    fn apply(&self, config: &palisade_proto::v1::AgentConfig) -> Result<(), String> {
        if !config.settings.is_empty() {
            let names: Vec<&String> = config.settings.keys().collect();
            tracing::warn!(
                ?names,
                "the node agent has no pushed settings; ignoring them"
            );
        }
        // no rules files: the agent keeps the rules it was started with
        if config.rules_files.is_empty() {
            return Ok(());
        }
        let mut texts: Vec<(String, String)> = config
            .rules_files
            .iter()
            .map(|(name, text)| (name.clone(), text.clone()))
            .collect();
        texts.sort();
        let evaluator = Evaluator::from_texts(&texts, &self.hostname)?;
        tracing::info!(version = %config.version, summary = %evaluator.summary(), "pushed rules loaded");
        self.rules.store(Arc::new(evaluator));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use palisade_agent_link::ConfigApplier;
    use palisade_proto::v1::AgentConfig;

    use super::*;

    fn falco_file(name: &str) -> String {
        let path = palisade_testkit::corpus_path(format!("runtime/falco-rules/{name}"));
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    fn config(version: &str, files: &[(&str, String)]) -> AgentConfig {
        AgentConfig {
            version: version.into(),
            rules_files: files
                .iter()
                .map(|(name, text)| (name.to_string(), text.clone()))
                .collect(),
            settings: Default::default(),
        }
    }

    #[test]
    fn pushed_falco_rules_replace_the_running_set_and_a_bad_push_keeps_it() {
        let builtin = Evaluator::load(&[], "node-a").expect("built-in pack");
        let builtin_rules = builtin.rule_names();
        let rules = Arc::new(arc_swap::ArcSwap::from_pointee(builtin));
        let applier = RulesApplier::new(Arc::clone(&rules), "node-a");

        // Falco's stable rules, then incubating rules that use its macros: loaded in name order
        let stable = falco_file("falco_rules.yaml");
        let incubating = falco_file("falco-incubating_rules.yaml");
        applier
            .apply(&config(
                "1",
                &[
                    ("2-incubating.yaml", incubating.clone()),
                    ("1-stable.yaml", stable.clone()),
                ],
            ))
            .expect("Falco's stable and incubating rules apply");
        let applied = rules.load().rule_names();
        assert!(
            applied
                .iter()
                .any(|name| name == "Terminal shell in container"),
            "stable rule missing: {applied:?}"
        );
        let direct = Evaluator::from_texts(
            &[
                ("1-stable.yaml".into(), stable.clone()),
                ("2-incubating.yaml".into(), incubating.clone()),
            ],
            "node-a",
        )
        .expect("direct load");
        assert_eq!(
            applied,
            direct.rule_names(),
            "the pushed set is what was pushed"
        );
        assert_ne!(applied, builtin_rules);

        // a file that is not YAML is refused, and the running set stays
        let error = applier
            .apply(&config(
                "2",
                &[("extra.yaml", "- rule: [unclosed\n".to_string())],
            ))
            .expect_err("not YAML");
        assert!(error.contains("rule errors"), "{error}");
        let broken = format!("{stable}\n- rule: Broken\n  condition: (evt.type = \n");
        let error = applier
            .apply(&config("3", &[("falco_rules.yaml", broken)]))
            .expect_err("a broken condition");
        assert!(
            error.contains("falco_rules.yaml"),
            "the reason names the file: {error}"
        );
        assert_eq!(
            rules.load().rule_names(),
            applied,
            "the previous set keeps running"
        );

        // no rules files leaves the running set alone
        applier.apply(&config("4", &[])).expect("settings only");
        assert_eq!(rules.load().rule_names(), applied);
    }
}
