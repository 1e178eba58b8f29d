//! Every rule of Palisade's pack fires on its positive event and not on its negative one
//! (rules/audit/tests/palisade_k8s_audit_rules_tests.yaml).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_audit::yaml_json::yaml_to_json;
use palisade_audit::{AuditEvent, DecodeLimits, K8sAuditSource, builtin_rules, decode_document};
use palisade_rules::yaml::{Node, parse_documents};
use palisade_rules::{CompileOptions, RuleEngine, RulesLoader};
use serde_json::Value as Json;

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../rules/audit/tests/palisade_k8s_audit_rules_tests.yaml")
}

fn event_from(base: &Json, overrides: &Json) -> AuditEvent {
    let mut object = base.as_object().expect("base mapping").clone();
    for (key, value) in overrides.as_object().expect("case mapping") {
        object.insert(key.clone(), value.clone());
    }
    let bytes = serde_json::to_vec(&object).expect("serialisable");
    let mut decoded = decode_document(&bytes, &DecodeLimits::default()).expect("valid json");
    assert!(
        decoded.skips.is_empty(),
        "fixture event skipped: {:?}",
        decoded.skips
    );
    decoded.events.remove(0)
}

#[test]
fn every_pack_rule_has_a_passing_positive_and_negative_event() {
    let text = std::fs::read_to_string(cases_path()).expect("fixture readable");
    let documents = parse_documents(&text).expect("fixture parses");
    let root = &documents[0];
    let base = yaml_to_json(root.get("base").expect("base"));
    let cases = root
        .get("cases")
        .and_then(Node::as_sequence)
        .expect("cases");

    let mut loader = RulesLoader::new();
    for (name, text) in builtin_rules() {
        loader.add_text(&name, &text);
    }
    let engine = RuleEngine::new(
        Arc::new(K8sAuditSource),
        &loader.finish(),
        CompileOptions::default(),
    );
    let pack_rules: BTreeSet<String> = engine
        .compiled()
        .rules()
        .iter()
        .map(|rule| rule.name.clone())
        .collect();

    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let rule = case
            .get("rule")
            .and_then(Node::as_str)
            .expect("rule")
            .to_string();
        assert!(pack_rules.contains(&rule), "case for unknown rule {rule}");
        for (kind, must_fire) in [("positive", true), ("negative", false)] {
            let overrides = yaml_to_json(
                case.get(kind)
                    .unwrap_or_else(|| panic!("{rule} has no {kind} event")),
            );
            let event = event_from(&base, &overrides);
            let fired = engine
                .detect(&event)
                .iter()
                .any(|detection| detection.rule.name == rule);
            if fired != must_fire {
                let explanation = engine
                    .explain(&rule, &event)
                    .map(|explanation| explanation.lines.join("\n"))
                    .unwrap_or_default();
                failures.push(format!(
                    "{rule}: {kind} event {} fire\n{explanation}",
                    if must_fire { "did not" } else { "did" }
                ));
            }
        }
        covered.insert(rule);
    }
    let missing: Vec<&String> = pack_rules.difference(&covered).collect();
    assert!(missing.is_empty(), "rules without test events: {missing:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    println!(
        "{} pack rules, each with a positive and a negative event",
        covered.len()
    );
}
