//! Kubescape regolibrary test cases (shared/corpora/k8s/kubescape-regolibrary/INDEX.json) for
//! every rule whose control Palisade implements: a case that Kubescape expects to fail must
//! raise the matching Palisade insight, and a passing case must not.

use std::collections::BTreeMap;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::source::{SourceLimits, load_path};
use palisade_testkit::corpus_path;
use serde_json::Value;

/// Kubescape rule -> Palisade controls (any of them failing means the rule fails).
const RULES: &[(&str, &[&str])] = &[
    ("alert-any-hostpath", &["host-path-mount"]),
    ("alert-rw-hostpath", &["writable-host-path"]),
    ("host-pid-ipc-privileges", &["host-pid", "host-ipc"]),
    ("host-pid-privileges", &["host-pid"]),
    ("host-ipc-privileges", &["host-ipc"]),
    ("host-network-access", &["host-network"]),
    ("insecure-capabilities", &["dangerous-capabilities"]),
    ("non-root-containers", &["runs-as-root"]),
    (
        "automount-service-account",
        &["service-account-token-automounted"],
    ),
    ("rule-can-list-get-secrets-v1", &["secrets-access"]),
    (
        "rule-allow-privilege-escalation",
        &["privilege-escalation-allowed"],
    ),
    (
        "immutable-container-filesystem",
        &["writable-root-filesystem"],
    ),
    ("container-hostPort", &["host-port"]),
    (
        "containers-mounting-docker-socket",
        &["runtime-socket-mount"],
    ),
    ("rule-can-impersonate-users-groups-v1", &["impersonate"]),
    ("rule-can-bind-escalate", &["bind-escalate"]),
    (
        "rule-list-all-cluster-admins-v1",
        &["cluster-admin-binding"],
    ),
    ("exposure-to-internet", &["internet-exposed"]),
    ("exec-into-container-v1", &["pod-exec"]),
    ("rule-can-portforward-v1", &["pod-exec"]),
    ("rule-can-create-pod", &["pod-create"]),
    ("rule-credentials-in-env-var", &["credentials-in-env"]),
    ("rule-secrets-in-env-var", &["secret-in-env"]),
    ("rule-privileged-container", &["privileged-container"]),
    ("resource-policies", &["missing-resource-limits"]),
    (
        "set-seccomp-profile-RuntimeDefault",
        &["seccomp-unconfined"],
    ),
    ("rule-can-access-proxy-subresource", &["nodes-proxy"]),
    ("rule-can-approve-cert-signing-request", &["csr-approve"]),
    ("rule-can-modify-admission-webhooks", &["webhook-config"]),
    ("rule-can-create-service-account-token", &["token-create"]),
    ("rule-can-create-pv", &["pv-create"]),
    ("set-procmount-default", &["unmasked-proc-mount"]),
    ("set-hostprocess-true", &["windows-host-process"]),
    ("drop-capability-netraw", &["net-raw-not-dropped"]),
    ("anonymous-access-enabled", &["anonymous-binding"]),
];

/// Cases where Palisade deliberately disagrees with Kubescape, and why.
const DIVERGENCES: &[(&str, &str, &str)] = &[
    (
        "exec-into-container-v1",
        "clusterrole",
        "the role grants `pods/*`, which the API server's RBAC never matches (only `*` and `*/sub` are wildcards)",
    ),
    (
        "rule-can-portforward-v1",
        "clusterrole-clusterrolebinding",
        "the role grants `pods/*`, which the API server's RBAC never matches",
    ),
    (
        "set-seccomp-profile-RuntimeDefault",
        "pod",
        "a Localhost seccomp profile is a confined profile, not a missing one",
    ),
    (
        "set-seccomp-profile-RuntimeDefault",
        "workloads",
        "a Localhost seccomp profile is a confined profile, not a missing one",
    ),
    (
        "rule-credentials-in-env-var",
        "pod",
        "the value `my_key_value` merely contains the word key; Palisade matches credential names, and credential formats in values",
    ),
    (
        "rule-credentials-in-env-var",
        "deployment",
        "the value `JWT` is a word, not a token",
    ),
    (
        "set-procmount-default",
        "workload",
        "procMount: Default is the safe default; only Unmasked is a finding",
    ),
];

struct Outcome {
    rule: String,
    case: String,
    expected_fail: bool,
    palisade_fail: bool,
}

fn run_case(rule: &str, case: &Value, controls: &[&str]) -> Outcome {
    let case_name = case["case"].as_str().expect("case name");
    let case_directory = corpus_path(format!(
        "k8s/kubescape-regolibrary/rules/{rule}/test/{case_name}"
    ));
    let input = case_directory.join("input");
    let report = if input.is_dir() {
        load_path(&input, &SourceLimits::default()).expect("input readable")
    } else {
        // A few cases keep their input beside expected.json.
        let mut merged = palisade_graph::source::LoadReport::default();
        for entry in std::fs::read_dir(&case_directory)
            .expect("case directory")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "expected.json" || name == "data.json" {
                continue;
            }
            let report =
                load_path(&entry.path(), &SourceLimits::default()).expect("input readable");
            merged.objects.extend(report.objects);
        }
        merged
    };
    let mut engine = GraphEngine::in_memory();
    engine
        .apply_changes(
            "t",
            "c",
            report
                .objects
                .into_iter()
                .map(InventoryChange::upsert)
                .collect(),
        )
        .expect("apply");
    let palisade_fail = engine
        .tenant("t")
        .map(|tenant| {
            tenant
                .insights()
                .iter()
                .any(|insight| controls.contains(&insight.control_id))
        })
        .unwrap_or(false);
    Outcome {
        rule: rule.to_string(),
        case: case_name.to_string(),
        expected_fail: case["outcome"].as_str() == Some("fail"),
        palisade_fail,
    }
}

#[test]
fn kubescape_cases_of_implemented_controls_pass() {
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(corpus_path("k8s/kubescape-regolibrary/INDEX.json"))
            .expect("read"),
    )
    .expect("json");
    let rules: BTreeMap<&str, &Value> = index["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| (rule["rule"].as_str().expect("name"), rule))
        .collect();
    let mut outcomes = Vec::new();
    for (rule, controls) in RULES {
        let entry = rules
            .get(rule)
            .unwrap_or_else(|| panic!("rule {rule} missing from INDEX.json"));
        for case in entry["cases"].as_array().expect("cases") {
            outcomes.push(run_case(rule, case, controls));
        }
    }
    let mut per_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for outcome in &outcomes {
        let counts = per_rule.entry(outcome.rule.as_str()).or_default();
        let divergent = DIVERGENCES
            .iter()
            .any(|(rule, case, _)| *rule == outcome.rule && *case == outcome.case);
        if divergent {
            assert_ne!(
                outcome.expected_fail, outcome.palisade_fail,
                "{}/{} no longer diverges",
                outcome.rule, outcome.case
            );
            counts.1 += 1;
        } else if outcome.expected_fail == outcome.palisade_fail {
            counts.0 += 1;
        } else {
            counts.1 += 1;
            mismatches.push(format!(
                "{}/{}: kubescape {}, palisade {}",
                outcome.rule, outcome.case, outcome.expected_fail, outcome.palisade_fail
            ));
        }
    }
    let failed = mismatches.len() + DIVERGENCES.len();
    println!(
        "kubescape regolibrary: {} rules, {} cases, {} passed, {failed} failed ({} by documented divergence)",
        RULES.len(),
        outcomes.len(),
        outcomes.len() - failed,
        DIVERGENCES.len()
    );
    for (rule, case, reason) in DIVERGENCES {
        println!("  divergence {rule}/{case}: {reason}");
    }
    for (rule, (ok, bad)) in &per_rule {
        println!("  {rule}: {ok} passed, {bad} failed");
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
