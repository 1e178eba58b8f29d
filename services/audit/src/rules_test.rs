//! `palisade rules test --rules FILE... EVENTS...` for audit events: which rules fire on which
//! events, and why a named rule does not.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_rules::{
    CompileOptions, ExitStatus, RuleEngine, RulesLoader, TestArgs, TestEvent, TestReport, run_tests,
};

use crate::decode::DecodeLimits;
use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::fields::K8sAuditSource;
use crate::input::read_file;
use crate::pack::builtin_rules;

/// Arguments of `palisade rules test` for audit events.
#[derive(Debug, Clone, Default)]
pub struct AuditRulesTestArgs {
    /// Rules files in order; empty means the built-in pack.
    pub rules: Vec<PathBuf>,
    /// Event files (any format `audit replay` reads).
    pub events: Vec<PathBuf>,
    /// Explain this rule where it does not fire.
    pub explain_rule: Option<String>,
    /// Print each detection's output.
    pub show_output: bool,
}

/// Runs the events through the rules, writing the report to `out`. Rules problems are listed
/// first and make the run fail, as do undecodable events and an unknown rule to explain.
pub fn rules_test(
    args: &AuditRulesTestArgs,
    out: &mut dyn Write,
) -> Result<(TestReport, ExitStatus), AuditError> {
    let mut loader = RulesLoader::new();
    if args.rules.is_empty() {
        for (name, text) in builtin_rules() {
            loader.add_text(&name, &text);
        }
    }
    for file in &args.rules {
        loader.add_file(file)?;
    }
    let engine = RuleEngine::new(
        Arc::new(K8sAuditSource),
        &loader.finish(),
        CompileOptions::default(),
    );
    let rule_errors = engine.compiled().summary().errors;
    for diagnostic in engine.compiled().diagnostics() {
        writeln!(out, "{diagnostic}")?;
    }
    writeln!(out, "{}", engine.compiled().summary())?;
    let mut events: Vec<TestEvent<AuditEvent>> = Vec::new();
    let limits = DecodeLimits::default();
    for file in &args.events {
        let mut index = 0usize;
        let result = read_file(file, &limits, |batch| {
            for skip in batch.skips {
                events.push(TestEvent {
                    label: format!("{}: {}", file.display(), skip.detail),
                    event: Err(skip.reason.code().to_string()),
                });
            }
            for event in batch.events {
                index += 1;
                events.push(TestEvent {
                    label: format!("{}#{index} ({})", file.display(), event.audit_id),
                    event: Ok(event),
                });
            }
            Ok(())
        });
        if let Err(error) = result {
            events.push(TestEvent {
                label: file.display().to_string(),
                event: Err(error.to_string()),
            });
        }
    }
    let test_args = TestArgs {
        explain_rule: args.explain_rule.clone(),
        show_output: args.show_output,
    };
    let (report, status) = run_tests(&engine, events, &test_args, out)?;
    let status = if rule_errors > 0 {
        ExitStatus::Failure
    } else {
        status
    };
    Ok((report, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_why_a_rule_did_not_fire() -> anyhow::Result<()> {
        let directory = tempfile::tempdir()?;
        let events = directory.path().join("events.json");
        std::fs::write(
            &events,
            concat!(
                r#"{"kind":"Event","auditID":"1","stage":"ResponseComplete","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"default","name":"p"},"responseStatus":{"code":201},"requestObject":{"spec":{"containers":[{"name":"a","image":"nginx","securityContext":{"privileged":true}}]}}}"#,
                "\n",
                r#"{"kind":"Event","auditID":"2","stage":"ResponseComplete","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"default","name":"p"},"responseStatus":{"code":201},"requestObject":{"spec":{"containers":[{"name":"a","image":"nginx"}]}}}"#,
                "\nnot json\n"
            ),
        )?;
        let args = AuditRulesTestArgs {
            events: vec![events],
            explain_rule: Some("Palisade Privileged Container Created".into()),
            ..AuditRulesTestArgs::default()
        };
        let mut out = Vec::new();
        let (report, status) = rules_test(&args, &mut out)?;
        let text = String::from_utf8(out)?;
        assert_eq!(report.events, 2);
        assert_eq!(report.undecodable, 1);
        assert_eq!(report.explained_rule_fired, 1);
        assert_eq!(
            status,
            ExitStatus::Failure,
            "an undecodable event fails the run"
        );
        assert!(
            text.contains("fired: Palisade Privileged Container Created (Warning)"),
            "{text}"
        );
        assert!(
            text.contains("why \"Palisade Privileged Container Created\" did not fire"),
            "{text}"
        );
        assert!(
            text.contains("ka.req.pod.containers.privileged = <NA>"),
            "{text}"
        );
        Ok(())
    }
}
