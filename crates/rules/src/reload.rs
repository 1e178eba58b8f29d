//! A rule set that can be replaced while events are being evaluated (on SIGHUP, or when the
//! server pushes new rules). A new set that fails to load leaves the previous one active.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::engine::{CompileOptions, LoadSummary, RuleEngine};
use crate::error::{Diagnostic, RulesError, Severity};
use crate::fields::FieldSource;
use crate::loader::RulesLoader;

/// Where rules come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// Files read in order at every (re)load.
    Files(Vec<PathBuf>),
    /// Named texts, e.g. pushed by the server.
    Texts(Vec<(String, String)>),
}

/// When a reload replaces the active rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReloadPolicy {
    /// Any error keeps the previous rules (a typo must not silently drop a detection).
    #[default]
    RejectOnError,
    /// Rules that load replace the previous set; bad ones are skipped and reported.
    AcceptWithSkips,
}

/// The outcome of a load that was applied.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// Counts of the now active set.
    pub summary: LoadSummary,
    /// Problems found, including warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// A swappable [`RuleEngine`]. Readers take the current engine with [`Self::current`] and keep
/// it for as long as they evaluate one event or batch.
pub struct ReloadableRules<S: FieldSource> {
    field_source: Arc<S>,
    rules_source: Mutex<RulesSource>,
    options: CompileOptions,
    policy: ReloadPolicy,
    current: ArcSwap<RuleEngine<S>>,
}

fn build<S: FieldSource>(
    field_source: &Arc<S>,
    rules_source: &RulesSource,
    options: CompileOptions,
) -> Result<RuleEngine<S>, RulesError> {
    let mut loader = RulesLoader::new();
    match rules_source {
        RulesSource::Files(files) => {
            for file in files {
                loader.add_file(file)?;
            }
        }
        RulesSource::Texts(texts) => {
            for (name, text) in texts {
                loader.add_text(name, text);
            }
        }
    }
    Ok(RuleEngine::new(
        field_source.clone(),
        &loader.finish(),
        options,
    ))
}

fn report_of<S: FieldSource>(engine: &RuleEngine<S>) -> ReloadReport {
    ReloadReport {
        summary: engine.compiled().summary().clone(),
        diagnostics: engine.compiled().diagnostics().to_vec(),
    }
}

impl<S: FieldSource> ReloadableRules<S> {
    /// Loads the initial set. Bad rules are skipped and reported; only unreadable files fail.
    pub fn load(
        field_source: Arc<S>,
        rules_source: RulesSource,
        options: CompileOptions,
        policy: ReloadPolicy,
    ) -> Result<(Self, ReloadReport), RulesError> {
        let engine = build(&field_source, &rules_source, options)?;
        let report = report_of(&engine);
        Ok((
            Self {
                field_source,
                rules_source: Mutex::new(rules_source),
                options,
                policy,
                current: ArcSwap::from_pointee(engine),
            },
            report,
        ))
    }

    /// The active engine.
    pub fn current(&self) -> Arc<RuleEngine<S>> {
        self.current.load_full()
    }

    /// Reloads from the configured source (files are read again).
    pub fn reload(&self) -> Result<ReloadReport, RulesError> {
        let rules_source = self
            .rules_source
            .lock()
            .map(|guard| guard.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        self.apply(&rules_source)
    }

    /// Switches to another source (e.g. rules pushed by the server); kept only if it loads.
    pub fn replace(&self, rules_source: RulesSource) -> Result<ReloadReport, RulesError> {
        let report = self.apply(&rules_source)?;
        match self.rules_source.lock() {
            Ok(mut guard) => *guard = rules_source,
            Err(poisoned) => *poisoned.into_inner() = rules_source,
        }
        Ok(report)
    }

    fn apply(&self, rules_source: &RulesSource) -> Result<ReloadReport, RulesError> {
        let engine = build(&self.field_source, rules_source, self.options)?;
        let report = report_of(&engine);
        if self.policy == ReloadPolicy::RejectOnError && report.summary.errors > 0 {
            let first = report
                .diagnostics
                .iter()
                .find(|diagnostic| diagnostic.severity == Severity::Error)
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::warn!(errors = report.summary.errors, first = %first, "rules reload rejected, previous rules kept");
            return Err(RulesError::ReloadRejected {
                errors: report.summary.errors,
                first,
            });
        }
        tracing::info!(summary = %report.summary, "rules reloaded");
        self.current.store(Arc::new(engine));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{ArgRule, FieldInfo, FieldSpec, TableSchema, Value, ValueType};

    /// A one-field source over plain strings.
    struct Words(TableSchema);

    impl Words {
        fn new() -> Self {
            Self(TableSchema::new(
                "words",
                vec![FieldInfo {
                    name: "word.text",
                    value_type: ValueType::String,
                    is_list: false,
                    arg: ArgRule::None,
                    description: "",
                }],
                &[],
            ))
        }
    }

    impl crate::fields::FieldSchema for Words {
        fn source_name(&self) -> &str {
            self.0.source_name()
        }
        fn resolve(
            &self,
            name: &str,
            arg: Option<&str>,
        ) -> Result<FieldSpec, crate::fields::FieldError> {
            self.0.resolve(name, arg)
        }
    }

    impl FieldSource for Words {
        type Event = String;
        fn extract<'event>(
            &self,
            _field: &FieldSpec,
            event: &'event String,
            values: &mut Vec<Value<'event>>,
        ) {
            values.push(Value::Str(std::borrow::Cow::Borrowed(event)));
        }
    }

    fn rule(name: &str, word: &str) -> String {
        format!(
            "- rule: {name}\n  desc: d\n  condition: word.text = {word}\n  output: o\n  priority: INFO\n  source: words\n"
        )
    }

    #[test]
    fn a_failing_reload_keeps_the_previous_rules() -> Result<(), RulesError> {
        let directory = tempfile::tempdir().map_err(RulesError::Output)?;
        let file = directory.path().join("rules.yaml");
        std::fs::write(&file, rule("hello", "hello")).map_err(RulesError::Output)?;
        let (rules, report) = ReloadableRules::load(
            Arc::new(Words::new()),
            RulesSource::Files(vec![file.clone()]),
            CompileOptions::default(),
            ReloadPolicy::RejectOnError,
        )?;
        assert_eq!(report.summary.loaded, 1);
        let fired = |rules: &ReloadableRules<Words>, word: &str| {
            rules.current().detect(&word.to_string()).len()
        };
        assert_eq!(fired(&rules, "hello"), 1);

        std::fs::write(
            &file,
            format!("{}{}", rule("bye", "bye"), rule("broken", "(unclosed")),
        )
        .map_err(RulesError::Output)?;
        let error = rules.reload().expect_err("an error keeps the old rules");
        assert_eq!(error.code(), "rules_reload_rejected");
        assert_eq!(fired(&rules, "hello"), 1);
        assert_eq!(fired(&rules, "bye"), 0);

        std::fs::write(&file, rule("bye", "bye")).map_err(RulesError::Output)?;
        let report = rules.reload()?;
        assert_eq!(report.summary.loaded, 1);
        assert_eq!(fired(&rules, "hello"), 0);
        assert_eq!(fired(&rules, "bye"), 1);

        std::fs::remove_file(&file).map_err(RulesError::Output)?;
        assert!(
            rules.reload().is_err(),
            "an unreadable file keeps the old rules"
        );
        assert_eq!(fired(&rules, "bye"), 1);

        rules.replace(RulesSource::Texts(vec![(
            "pushed".into(),
            rule("pushed", "x"),
        )]))?;
        assert_eq!(fired(&rules, "x"), 1);
        Ok(())
    }
}
