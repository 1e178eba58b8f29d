//! Falco's k8s_audit rules load unchanged, and Falco's own legacy k8s-audit test suite (real
//! events captured from a cluster, 66 cases) passes case by case.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_audit::{DecodeLimits, K8sAuditSource, decode_any};
use palisade_proto::PriorityExt;
use palisade_proto::v1::Priority;
use palisade_rules::yaml::{Node, parse_documents};
use palisade_rules::{CompileOptions, MatchMode, RuleEngine, RulesLoader, Severity};

fn corpus(relative: &str) -> PathBuf {
    palisade_testkit::corpus_path(relative)
}

fn rule_item_count(path: &PathBuf) -> usize {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .filter(|line| line.starts_with("- rule:"))
        .count()
}

fn errors_of(engine: &RuleEngine<K8sAuditSource>) -> Vec<String> {
    engine
        .compiled()
        .diagnostics()
        .iter()
        .filter(|diagnostic| diagnostic.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn falco_k8s_audit_rules_load_unchanged() -> anyhow::Result<()> {
    let rules = corpus("audit/falco-k8saudit-rules/k8s_audit_rules.yaml");
    let engine = RuleEngine::from_files(
        Arc::new(K8sAuditSource),
        std::slice::from_ref(&rules),
        CompileOptions::default(),
    )?;
    assert!(errors_of(&engine).is_empty(), "{:#?}", errors_of(&engine));
    let summary = engine.compiled().summary();
    println!("k8s_audit_rules.yaml: {summary}");
    assert_eq!(summary.loaded + summary.disabled, rule_item_count(&rules));
    assert_eq!(summary.loaded, 48, "{summary}");
    assert_eq!(summary.skipped, 0);
    Ok(())
}

#[test]
fn falco_gke_variant_loads_and_its_exception_applies() -> anyhow::Result<()> {
    let files = vec![
        corpus("audit/falco-k8saudit-rules/k8s_audit_rules.yaml"),
        corpus("audit/falco-k8saudit-rules/k8s_audit_rules_gke.yaml"),
    ];
    let engine =
        RuleEngine::from_files(Arc::new(K8sAuditSource), &files, CompileOptions::default())?;
    assert!(errors_of(&engine).is_empty(), "{:#?}", errors_of(&engine));
    let summary = engine.compiled().summary();
    println!("k8s_audit_rules.yaml + k8s_audit_rules_gke.yaml: {summary}");
    assert_eq!(summary.loaded, 48);
    let event = |user: &str| {
        let text = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "1", "stage": "ResponseComplete",
            "verb": "get", "requestURI": "/api/v1/namespaces", "user": {"username": user},
            "responseStatus": {"code": 200}
        })
        .to_string();
        decode_any(text.as_bytes(), &DecodeLimits::default())
            .events
            .remove(0)
    };
    let fired = |user: &str| {
        engine
            .detect(&event(user))
            .iter()
            .any(|detection| detection.rule.name == "Disallowed K8s User")
    };
    assert!(fired("mallory@example.com"));
    assert!(!fired(
        "service-1234@container-engine-robot.iam.gserviceaccount.com"
    ));
    Ok(())
}

/// Rules renamed in the k8saudit rules since the suite was written; the suite's expectations
/// name the old rules, which the current file splits in two.
const RENAMED_RULES: &[(&str, &[&str])] = &[
    (
        "K8s Role/Clusterrole Created",
        &["K8s Role Created", "K8s ClusterRole Created"],
    ),
    (
        "K8s Role/Clusterrole Deleted",
        &["K8s Role Deleted", "K8s ClusterRole Deleted"],
    ),
    (
        "K8s Role/Clusterrolebinding Created",
        &["K8s RoleBinding Created", "K8s ClusterRoleBinding Created"],
    ),
    (
        "K8s Role/Clusterrolebinding Deleted",
        &["K8s RoleBinding Deleted", "K8s ClusterRoleBinding Deleted"],
    ),
];

/// Lists renamed in the current k8saudit rules; the suite's override files append to the old
/// names, which only the engine_v4 rules file still defines.
const RENAMED_LISTS: &[(&str, &str)] = &[
    ("falco_privileged_images", "k8s_audit_privileged_images"),
    (
        "falco_sensitive_mount_images",
        "k8s_audit_sensitive_mount_images",
    ),
    ("falco_hostnetwork_images", "k8s_audit_hostnetwork_images"),
];

struct Case {
    name: String,
    detect: bool,
    detect_level: Option<Priority>,
    detect_counts: Vec<(String, usize)>,
    rules_files: Vec<String>,
    trace_file: String,
    stderr_contains: Option<String>,
}

fn corpus_rules_path(file: &str) -> PathBuf {
    if file.ends_with("falcosecurity-rules-falco/falco_rules.yaml") {
        corpus("runtime/falco-rules/falco_rules.yaml")
    } else if file.ends_with("k8saudit-rules/k8s_audit_rules.yaml") {
        corpus("audit/falco-k8saudit-rules/k8s_audit_rules.yaml")
    } else if let Some(relative) = file.strip_prefix("./rules/k8s_audit/") {
        corpus(&format!("audit/falco-legacy-tests/rules/{relative}"))
    } else {
        panic!("unexpected rules file {file} in the suite")
    }
}

fn read_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus(
        "audit/falco-legacy-tests/falco_k8s_audit_tests.yaml",
    ))
    .expect("suite readable");
    let documents = parse_documents(&text).expect("suite parses");
    let cases = documents[0]
        .get("trace_files")
        .and_then(Node::as_mapping)
        .expect("trace_files mapping");
    cases
        .iter()
        .map(|(key, case)| {
            let name = key.as_str().expect("case name").to_string();
            let detect = case.get("detect").and_then(Node::as_bool).expect("detect");
            let detect_level = case
                .get("detect_level")
                .and_then(Node::as_str)
                .map(|level| Priority::from_falco_name(level).expect("known level"));
            let detect_counts = case
                .get("detect_counts")
                .and_then(Node::as_sequence)
                .unwrap_or_default()
                .iter()
                .flat_map(|entry| entry.as_mapping().unwrap_or_default())
                .map(|(rule, count)| {
                    (
                        rule.as_str().expect("rule").to_string(),
                        count
                            .as_str()
                            .and_then(|count| count.parse().ok())
                            .expect("count"),
                    )
                })
                .collect();
            let rules_files = case
                .get("rules_file")
                .and_then(Node::as_sequence)
                .expect("rules_file")
                .iter()
                .map(|file| file.as_str().expect("path").to_string())
                .collect();
            let options = case
                .get("addl_cmdline_opts")
                .and_then(Node::as_str)
                .expect("open params");
            let trace_file = options
                .rsplit("trace_files/k8s_audit/")
                .next()
                .expect("trace file")
                .trim()
                .to_string();
            let stderr_contains = case
                .get("stderr_contains")
                .and_then(Node::as_str)
                .map(ToString::to_string);
            Case {
                name,
                detect,
                detect_level,
                detect_counts,
                rules_files,
                trace_file,
                stderr_contains,
            }
        })
        .collect()
}

fn run_case(case: &Case, match_mode: MatchMode) -> Result<(), String> {
    let mut loader = RulesLoader::new();
    let mut earlier_texts = String::new();
    for file in &case.rules_files {
        let path = corpus_rules_path(file);
        let mut text = std::fs::read_to_string(&path).map_err(|error| error.to_string())?;
        if file.starts_with("./rules/") {
            for (old, new) in RENAMED_LISTS {
                if !earlier_texts.contains(&format!("- list: {old}")) {
                    text = text.replace(old, new);
                }
            }
        }
        loader.add_text(&path.display().to_string(), &text);
        // The syscall rules define lists of the old names too, for their own rules; only the
        // k8s audit rules files loaded before decide which name the suite's overrides mean.
        if !file.ends_with("falco_rules.yaml") {
            earlier_texts.push_str(&text);
        }
    }
    let options = CompileOptions { match_mode };
    let engine = RuleEngine::new(Arc::new(K8sAuditSource), &loader.finish(), options);
    let errors = errors_of(&engine);
    if !errors.is_empty() {
        return Err(format!("rules did not load cleanly: {errors:?}"));
    }
    let trace = std::fs::read(corpus(&format!(
        "audit/falco-legacy-tests/trace_files/{}",
        case.trace_file
    )))
    .map_err(|error| error.to_string())?;
    let decoded = decode_any(&trace, &DecodeLimits::default());
    if let Some(expected) = &case.stderr_contains {
        if !decoded
            .skips
            .iter()
            .any(|skip| skip.detail.contains(expected.as_str()))
        {
            return Err(format!(
                "expected a skip saying {expected:?}, got {:?}",
                decoded.skips
            ));
        }
    } else if !decoded.skips.is_empty() {
        return Err(format!("events skipped: {:?}", decoded.skips));
    }
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_priority: BTreeMap<i32, usize> = BTreeMap::new();
    for event in &decoded.events {
        for detection in engine.detect(event) {
            *by_rule.entry(detection.rule.name.clone()).or_default() += 1;
            *by_priority
                .entry(detection.rule.priority as i32)
                .or_default() += 1;
        }
    }
    let total: usize = by_rule.values().sum();
    if !case.detect {
        if total > 0 {
            return Err(format!("must not detect, detected {by_rule:?}"));
        }
        return Ok(());
    }
    if total == 0 {
        return Err("must detect, detected nothing".to_string());
    }
    if let Some(level) = case.detect_level
        && by_priority.get(&(level as i32)).copied().unwrap_or(0) == 0
    {
        return Err(format!(
            "nothing detected at {}: {by_rule:?}",
            level.falco_name()
        ));
    }
    for (rule, expected) in &case.detect_counts {
        let names: Vec<&str> = RENAMED_RULES
            .iter()
            .find(|(old, _)| old == rule)
            .map(|(_, new)| new.to_vec())
            .unwrap_or_else(|| vec![rule.as_str()]);
        let actual: usize = names
            .iter()
            .map(|name| by_rule.get(*name).copied().unwrap_or(0))
            .sum();
        if actual != *expected {
            return Err(format!(
                "{rule}: expected {expected}, detected {actual} ({by_rule:?})"
            ));
        }
    }
    Ok(())
}

#[test]
fn falco_legacy_k8s_audit_suite_passes_case_by_case() {
    let cases = read_cases();
    assert_eq!(cases.len(), 66, "the suite has 66 cases");
    assert_eq!(cases.iter().filter(|case| case.detect).count(), 45);
    assert_eq!(cases.iter().filter(|case| !case.detect).count(), 21);
    let mut failures = Vec::new();
    // Falco stops at the first matching rule by default; Palisade reports every match. The
    // suite must pass either way.
    for match_mode in [MatchMode::First, MatchMode::All] {
        let before = failures.len();
        for case in &cases {
            match run_case(case, match_mode) {
                Ok(()) => {}
                Err(reason) => failures.push(format!("{} ({match_mode:?}): {reason}", case.name)),
            }
        }
        println!(
            "{match_mode:?} matching: {} of {} cases pass",
            cases.len() - (failures.len() - before),
            cases.len()
        );
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}
