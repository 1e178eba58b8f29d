//! Classifies Panther's 287 labelled audit events (raw, GKE and AKS envelopes) with Palisade's
//! pack and reports true/false positives/negatives against the labels. A labelled event counts
//! as detected when a Palisade rule with the same intent as the Panther rule fires on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_audit::{DecodeLimits, K8sAuditSource, builtin_rules, decode_document};
use palisade_rules::{CompileOptions, RuleEngine, RulesLoader};
use serde_json::Value as Json;

/// Panther rule id -> Palisade rules with the same intent. An empty list is an intent the pack
/// does not cover (thresholds over many events, threat-intel enrichment, Azure activity logs).
const INTENTS: &[(&str, &[&str])] = &[
    (
        "Amazon.EKS.AnonymousAPIAccess",
        &["Palisade Anonymous Request Allowed"],
    ),
    (
        "Kubernetes.API.AnonymousAccess",
        &["Palisade Anonymous Request Allowed"],
    ),
    ("Amazon.EKS.Audit.Multiple403", &[]),
    ("Kubernetes.API.Multiple403.PublicIP", &[]),
    (
        "Amazon.EKS.Audit.SystemNamespaceFromPublicIP",
        &[
            "Palisade System Service Account Used From Public Address",
            "Palisade Node Identity Used From Public Address",
        ],
    ),
    (
        "Kubernetes.System.Principal.PublicIP",
        &[
            "Palisade System Service Account Used From Public Address",
            "Palisade Node Identity Used From Public Address",
        ],
    ),
    ("Azure.MonitorActivity.Kubernetes.RoleBindingCreated", &[]),
    (
        "GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified",
        &["Palisade CronJob Created Or Modified By User"],
    ),
    (
        "Kubernetes.CronJob.CreatedOrModified",
        &["Palisade CronJob Created Or Modified By User"],
    ),
    (
        "GCP.K8S.Pod.Create.Or.Modify.Host.Path.Volume.Mount",
        &[
            "Palisade Host Path Volume Mounted",
            "Palisade Sensitive Host Path Mounted",
        ],
    ),
    (
        "Kubernetes.Pod.HostPath.Volume",
        &[
            "Palisade Host Path Volume Mounted",
            "Palisade Sensitive Host Path Mounted",
        ],
    ),
    (
        "GCP.K8S.Privileged.Pod.Created",
        &[
            "Palisade Privileged Container Created",
            "Palisade Container Running As Root Created",
        ],
    ),
    (
        "Kubernetes.Pod.Privileged.Created",
        &[
            "Palisade Privileged Container Created",
            "Palisade Container Running As Root Created",
        ],
    ),
    (
        "GCP.K8S.Service.Type.NodePort.Deployed",
        &["Palisade NodePort Service Created"],
    ),
    (
        "Kubernetes.Service.NodePort.Deployed",
        &["Palisade NodePort Service Created"],
    ),
    ("GCP.K8s.ExecIntoPod", &["Palisade Exec Or Attach Into Pod"]),
    ("Kubernetes.Pod.Exec", &["Palisade Exec Or Attach Into Pod"]),
    ("GCP.K8s.IOC.Activity", &[]),
    ("Kubernetes.API.IOC.Activity", &[]),
    (
        "GCP.K8s.New.Daemonset.Deployed",
        &["Palisade DaemonSet Created By User"],
    ),
    (
        "Kubernetes.DaemonSet.Created",
        &["Palisade DaemonSet Created By User"],
    ),
    (
        "GCP.K8s.Pod.Attached.To.Node.Host.Network",
        &["Palisade Host Network Pod Created"],
    ),
    (
        "Kubernetes.Pod.Host.Network",
        &["Palisade Host Network Pod Created"],
    ),
    (
        "GCP.K8s.Pod.Using.Host.PID.Namespace",
        &["Palisade Host PID Pod Created"],
    ),
    (
        "Kubernetes.Pod.Host.PID",
        &["Palisade Host PID Pod Created"],
    ),
    (
        "Kubernetes.Pod.Host.IPC",
        &["Palisade Host IPC Pod Created"],
    ),
    (
        "Kubernetes.AdmissionController.Created",
        &["Palisade Admission Webhook Configuration Changed"],
    ),
    (
        "Kubernetes.BulkSecretAccess",
        &[
            "Palisade Secret Read By User",
            "Palisade Secrets Listed Across All Namespaces",
            "Palisade Secret Access Denied",
        ],
    ),
    (
        "Kubernetes.ClientCertificate.Created",
        &["Palisade Client Certificate Requested"],
    ),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        &[
            "Palisade Binding To Cluster Admin Role",
            "Palisade Cluster Role Binding To Privileged Role",
        ],
    ),
    (
        "Kubernetes.Ingress.NoTLS",
        &["Palisade Ingress Without TLS Created"],
    ),
    (
        "Kubernetes.Kubectl.CP.Operation",
        &["Palisade Files Copied Out Of Pod"],
    ),
    (
        "Kubernetes.Pod.Dangerous.Capabilities",
        &["Palisade Dangerous Capabilities Added"],
    ),
    (
        "Kubernetes.Pod.StealServiceAccountToken",
        &["Palisade Service Account Token Read Through Exec"],
    ),
    (
        "Kubernetes.Pod.SystemNamespace",
        &["Palisade Pod Created In System Namespace"],
    ),
    (
        "Kubernetes.Role.NodeProxyPermissions",
        &["Palisade Role With Node Proxy Created"],
    ),
    (
        "Kubernetes.Role.PodExec",
        &["Palisade Role With Pod Exec Created"],
    ),
    (
        "Kubernetes.Role.Wildcard",
        &["Palisade Role With Wildcard Created"],
    ),
    (
        "Kubernetes.Role.WritePermissions",
        &["Palisade Role With Write Permissions Created"],
    ),
    (
        "Kubernetes.Secret.AccessDenied",
        &["Palisade Secret Access Denied"],
    ),
    (
        "Kubernetes.Secrets.DumpAllNamespaces",
        &["Palisade Secrets Listed Across All Namespaces"],
    ),
    (
        "Kubernetes.ServiceAccount.TokenCreated",
        &["Palisade Service Account Token Created"],
    ),
    (
        "Kubernetes.SystemRole.Modified",
        &["Palisade System Role Or Binding Modified"],
    ),
];

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    true_positive: usize,
    false_positive: usize,
    false_negative: usize,
    true_negative: usize,
    not_decoded: usize,
}

#[test]
fn panther_labelled_events_are_classified_by_the_pack() {
    let mut loader = RulesLoader::new();
    for (name, text) in builtin_rules() {
        loader.add_text(&name, &text);
    }
    let engine = RuleEngine::new(
        Arc::new(K8sAuditSource),
        &loader.finish(),
        CompileOptions::default(),
    );
    let pack_rules: Vec<&str> = engine
        .compiled()
        .rules()
        .iter()
        .map(|rule| rule.name.as_str())
        .collect();
    for (_, intents) in INTENTS {
        for intent in *intents {
            assert!(
                pack_rules.contains(intent),
                "intent names unknown rule {intent}"
            );
        }
    }

    let text = std::fs::read_to_string(palisade_testkit::corpus_path(
        "audit/panther-labeled/panther_k8s_audit_tests.jsonl",
    ))
    .expect("corpus readable");
    let mut total = Counts::default();
    let mut by_rule: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_format: BTreeMap<String, Counts> = BTreeMap::new();
    let mut lines = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        lines += 1;
        let case: Json = serde_json::from_str(line).expect("json line");
        let rule_id = case["rule_id"].as_str().expect("rule_id");
        let expected = case["expected_result"].as_bool().expect("label");
        let format = case["log_format"].as_str().expect("format").to_string();
        let intents = INTENTS
            .iter()
            .find(|(id, _)| *id == rule_id)
            .map(|(_, intents)| *intents)
            .unwrap_or_else(|| panic!("no intent mapping for {rule_id}"));
        let bytes = serde_json::to_vec(&case["log"]).expect("log");
        let decoded = decode_document(&bytes, &DecodeLimits::default()).expect("json");
        let fired = decoded.events.iter().any(|event| {
            engine
                .detect(event)
                .iter()
                .any(|detection| intents.contains(&detection.rule.name.as_str()))
        });
        if expected != fired {
            let kind = if fired {
                "false positive"
            } else {
                "false negative"
            };
            let note = if decoded.events.is_empty() {
                format!(
                    " (not decoded: {:?})",
                    decoded.skips.first().map(|skip| &skip.detail)
                )
            } else {
                String::new()
            };
            println!(
                "{kind}: {rule_id} / {}{note}",
                case["test_name"].as_str().unwrap_or_default()
            );
        }
        let entry = |counts: &mut Counts| {
            if decoded.events.is_empty() {
                counts.not_decoded += 1;
            }
            match (expected, fired) {
                (true, true) => counts.true_positive += 1,
                (false, true) => counts.false_positive += 1,
                (true, false) => counts.false_negative += 1,
                (false, false) => counts.true_negative += 1,
            }
        };
        entry(&mut total);
        entry(by_rule.entry(rule_id.to_string()).or_default());
        entry(by_format.entry(format).or_default());
    }
    assert_eq!(lines, 287, "the corpus has 287 labelled events");
    println!(
        "{:<55} {:>3} {:>3} {:>3} {:>3} {:>4}",
        "panther rule", "TP", "FP", "FN", "TN", "skip"
    );
    for (rule, counts) in &by_rule {
        println!(
            "{rule:<55} {:>3} {:>3} {:>3} {:>3} {:>4}",
            counts.true_positive,
            counts.false_positive,
            counts.false_negative,
            counts.true_negative,
            counts.not_decoded
        );
    }
    for (format, counts) in &by_format {
        println!("format {format}: {counts:?}");
    }
    let precision =
        total.true_positive as f64 / (total.true_positive + total.false_positive) as f64;
    let recall = total.true_positive as f64 / (total.true_positive + total.false_negative) as f64;
    println!("total: {total:?} precision {precision:.3} recall {recall:.3}");
    assert_eq!(
        total.true_positive + total.false_negative,
        135,
        "135 positive labels"
    );
    assert_eq!(
        total.false_positive + total.true_negative,
        152,
        "152 negative labels"
    );
    assert!(precision >= 0.85, "precision {precision:.3}");
    assert!(recall >= 0.75, "recall {recall:.3}");
}
