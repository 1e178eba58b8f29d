//! Palisade's pack loads cleanly, alone and beside Falco's k8s_audit rules, and every rule
//! carries MITRE technique ids, tactic tags and a threat-matrix technique.

use std::sync::Arc;

use palisade_audit::{K8sAuditSource, builtin_rules};
use palisade_rules::{CompileOptions, RuleEngine, RulesLoader, Severity, mitre_from_tags};

fn load(with_falco: bool) -> RuleEngine<K8sAuditSource> {
    let mut loader = RulesLoader::new();
    if with_falco {
        loader
            .add_file(&palisade_testkit::corpus_path(
                "audit/falco-k8saudit-rules/k8s_audit_rules.yaml",
            ))
            .expect("falco rules readable");
    }
    for (name, text) in builtin_rules() {
        loader.add_text(&name, &text);
    }
    RuleEngine::new(
        Arc::new(K8sAuditSource),
        &loader.finish(),
        CompileOptions::default(),
    )
}

#[test]
fn the_pack_loads_without_problems_alone_and_with_falco_rules() {
    for with_falco in [false, true] {
        let engine = load(with_falco);
        let problems: Vec<String> = engine
            .compiled()
            .diagnostics()
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error || with_falco)
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
        let summary = engine.compiled().summary();
        println!("pack (with Falco rules: {with_falco}): {summary}");
        assert_eq!(summary.skipped, 0);
        assert!(summary.loaded >= 30, "{summary}");
    }
}

#[test]
fn every_pack_rule_is_mapped_to_mitre_and_the_threat_matrix() {
    let engine = load(false);
    assert!(engine.compiled().rules().len() >= 30);
    for rule in engine.compiled().rules() {
        let mitre = mitre_from_tags(&rule.tags);
        assert!(
            !mitre.technique_ids.is_empty(),
            "{} has no technique id",
            rule.name
        );
        assert!(!mitre.tactics.is_empty(), "{} has no tactic tag", rule.name);
        assert!(
            !mitre.threat_matrix_ids.is_empty(),
            "{} has no threat-matrix technique",
            rule.name
        );
        assert!(
            !rule.description.is_empty(),
            "{} has no description",
            rule.name
        );
    }
}
