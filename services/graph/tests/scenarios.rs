//! badPods, Kubernetes Goat and Online Boutique yield the techniques and insights they were
//! built to show (shared/corpora/k8s/*/EXPECTED.json); bad input is reported and skipped.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_graph::engine::{GraphEngine, InventoryChange, Tenant};
use palisade_graph::model::{EdgeKind, EntityKind};
use palisade_graph::object::{Object, ObjectKind};
use palisade_graph::source::{ProblemKind, SourceLimits, load_path, parse_bytes};
use palisade_testkit::corpus_path;
use serde_json::Value;

fn objects_of(path: &Path) -> Vec<Object> {
    let report = load_path(path, &SourceLimits::default()).expect("readable");
    assert!(
        report
            .problems
            .iter()
            .all(|problem| problem.kind == ProblemKind::UnknownKind),
        "{:?}",
        report.problems
    );
    report.objects
}

/// The real cluster the scenarios are deployed into: KubeHound's kind cluster (nodes,
/// kube-system pods, cluster RBAC) from its `kubectl get -o json` collection.
fn base_cluster() -> Vec<Object> {
    let dump = corpus_path("k8s-api/dumps/kubehound-kind-v1.27");
    objects_of(&dump)
        .into_iter()
        .filter(|object| !(object.kind == ObjectKind::Pod && object.meta.namespace == "default"))
        .collect()
}

fn analyze(objects: Vec<Object>) -> GraphEngine {
    let mut engine = GraphEngine::in_memory();
    let changes = objects.into_iter().map(InventoryChange::upsert).collect();
    engine
        .apply_changes("tenant", "cluster", changes)
        .expect("applies");
    engine
}

/// Technique labels on edges leaving the pods of `objects` (their containers, volumes, pods).
fn techniques_of(tenant: &Tenant, objects: &[Object]) -> BTreeSet<String> {
    let graph = tenant.graph();
    let prefixes: Vec<String> = objects
        .iter()
        .filter(|object| object.kind == ObjectKind::Pod || object.kind.is_workload())
        .map(|object| {
            let suffix = if object.kind == ObjectKind::Pod {
                object.meta.name.clone()
            } else {
                format!(
                    "{}@{}",
                    object.meta.name,
                    object.kind.name().to_ascii_lowercase()
                )
            };
            format!("/{}/{suffix}", object.meta.namespace)
        })
        .collect();
    let bindings: Vec<String> = objects
        .iter()
        .filter(|object| {
            matches!(
                object.kind,
                ObjectKind::RoleBinding | ObjectKind::ClusterRoleBinding
            )
        })
        .map(|object| format!("::{}", object.meta.name))
        .collect();
    let accounts: Vec<(String, String)> = objects
        .iter()
        .filter(|object| object.kind == ObjectKind::ServiceAccount)
        .map(|object| (object.meta.namespace.clone(), object.meta.name.clone()))
        .collect();
    let belongs = |slot| {
        let entity = graph.entity(slot).expect("entity");
        // Ids are cluster/kind/namespace/pod[/...]: compare from the namespace on.
        let rest = entity
            .id
            .splitn(3, '/')
            .nth(2)
            .map(|rest| format!("/{rest}"))
            .unwrap_or_default();
        prefixes
            .iter()
            .any(|prefix| rest == *prefix || rest.starts_with(&format!("{prefix}/")))
            || (entity.kind == EntityKind::PermissionSet
                && bindings
                    .iter()
                    .any(|binding| entity.name.ends_with(binding)))
            || (entity.kind == EntityKind::ServiceAccount
                && accounts.contains(&(entity.namespace.clone(), entity.name.clone())))
    };
    graph
        .edges()
        .filter(|(_, kind, _)| kind.is_technique())
        .filter(|(from, kind, to)| {
            belongs(*from) || (*kind == EdgeKind::EndpointExploit && belongs(*to))
        })
        .map(|(_, kind, _)| kind.as_str().to_string())
        .collect()
}

/// Control ids of insights on the objects.
fn controls_of(tenant: &Tenant, objects: &[Object]) -> BTreeSet<String> {
    let keys: BTreeSet<String> = objects
        .iter()
        .map(|object| object.key().to_string())
        .collect();
    tenant
        .insights()
        .into_iter()
        .filter(|insight| keys.contains(&insight.object))
        .map(|insight| insight.control_id.to_string())
        .collect()
}

fn badpods_control(phrase: &str) -> &'static str {
    if phrase.starts_with("privileged") {
        "privileged-container"
    } else if phrase.starts_with("hostPID") {
        "host-pid"
    } else if phrase.starts_with("hostIPC") {
        "host-ipc"
    } else if phrase.starts_with("hostNetwork") {
        "host-network"
    } else if phrase.contains("hostPath") && phrase.contains("writable") {
        "writable-host-path"
    } else if phrase.starts_with("runs as root") {
        "runs-as-root"
    } else {
        panic!("unmapped badPods insight {phrase}")
    }
}

fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "yaml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every one of the 128 badPods manifests, deployed into a real cluster, yields its
/// category's techniques and insights; the nothing-allowed ones yield no attack path.
#[test]
fn every_badpods_manifest_shows_its_category() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(corpus_path("k8s/badpods/EXPECTED.json")).expect("read"),
    )
    .expect("json");
    let base = base_cluster();
    let mut checked = 0;
    for (category, entry) in expected["categories"].as_object().expect("categories") {
        let files = files_under(&corpus_path("k8s/badpods/manifests").join(category));
        assert_eq!(files.len(), 16, "{category}");
        for file in files {
            let objects = objects_of(&file);
            let mut cluster = base.clone();
            cluster.extend(objects.iter().cloned());
            let engine = analyze(cluster);
            let tenant = engine.tenant("tenant").expect("tenant");
            let techniques = techniques_of(tenant, &objects);
            let controls = controls_of(tenant, &objects);
            for technique in entry["expected_kubehound_techniques"]
                .as_array()
                .expect("list")
            {
                let technique = technique.as_str().expect("str");
                assert!(
                    techniques.contains(technique),
                    "{}: missing {technique}, has {techniques:?}",
                    file.display()
                );
            }
            for phrase in entry["expected_insights"].as_array().expect("list") {
                let control = badpods_control(phrase.as_str().expect("str"));
                assert!(
                    controls.contains(control),
                    "{}: missing {control}, has {controls:?}",
                    file.display()
                );
            }
            let escapes = [
                "CE_NSENTER",
                "CE_PRIV_MOUNT",
                "CE_MODULE_LOAD",
                "EXPLOIT_HOST_WRITE",
                "EXPLOIT_HOST_READ",
                "CE_SYS_PTRACE",
            ];
            if entry["expected_kubehound_techniques"]
                .as_array()
                .expect("list")
                .is_empty()
            {
                assert!(
                    escapes.iter().all(|escape| !techniques.contains(*escape)),
                    "{}: unexpected escape {techniques:?}",
                    file.display()
                );
            }
            // Paths that start at (or pass through) the scenario's own pods.
            let scenario_paths = tenant
                .attack_paths()
                .into_iter()
                .filter(|path| {
                    path.steps.iter().any(|step| {
                        objects.iter().any(|object| {
                            step.entity_id.contains(&format!(
                                "/{}/{}",
                                object.meta.namespace, object.meta.name
                            ))
                        })
                    })
                })
                .count();
            if category == "nothing-allowed" {
                assert_eq!(scenario_paths, 0, "{}", file.display());
                // On its own it yields no attack path at all.
                let alone = analyze(objects.clone());
                assert!(
                    alone
                        .tenant("tenant")
                        .expect("tenant")
                        .attack_paths()
                        .is_empty(),
                    "{}",
                    file.display()
                );
            } else if !entry["expected_kubehound_techniques"]
                .as_array()
                .expect("list")
                .is_empty()
            {
                assert!(scenario_paths > 0, "{}: no attack path", file.display());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 128);
}

/// Kubernetes Goat, deployed as one cluster: each scenario file yields what its guide shows.
#[test]
fn kubernetes_goat_scenarios_show_their_risks() {
    let root = corpus_path("k8s/kubernetes-goat");
    let expectations: &[(&str, &[&str], &[&str])] = &[
        (
            "scenarios/system-monitor/deployment.yaml",
            &[
                "privileged-container",
                "host-pid",
                "host-ipc",
                "privilege-escalation-allowed",
                "writable-host-path",
                "secret-in-env",
                "runs-as-root",
                "service-account-token-automounted",
            ],
            &[
                "CE_PRIV_MOUNT",
                "CE_MODULE_LOAD",
                "CE_NSENTER",
                "EXPLOIT_HOST_WRITE",
                "EXPLOIT_HOST_TRAVERSE",
            ],
        ),
        (
            "scenarios/health-check/deployment.yaml",
            &[
                "privileged-container",
                "runtime-socket-mount",
                "runs-as-root",
            ],
            &["CE_PRIV_MOUNT", "CE_MODULE_LOAD", "EXPLOIT_CONTAINERD_SOCK"],
        ),
        (
            "scenarios/internal-proxy/deployment.yaml",
            &["internet-exposed", "missing-network-policy"],
            &["ENDPOINT_EXPLOIT"],
        ),
        (
            "scenarios/hunger-check/deployment.yaml",
            &["rbac-wildcard", "secrets-access", "missing-resource-limits"],
            &[
                "IDENTITY_ASSUME",
                "PERMISSION_DISCOVER",
                "TOKEN_LIST",
                "TOKEN_BRUTEFORCE",
            ],
        ),
        (
            "scenarios/insecure-rbac/setup.yaml",
            &["cluster-admin-binding"],
            &[],
        ),
        (
            "scenarios/cache-store/deployment.yaml",
            &["missing-network-policy", "runs-as-root"],
            &["ENDPOINT_EXPLOIT"],
        ),
        (
            "scenarios/docker-bench-security/deployment.yaml",
            &[
                "host-pid",
                "host-ipc",
                "host-network",
                "privileged-container",
                "runtime-socket-mount",
                "sensitive-host-path",
            ],
            &[
                "CE_PRIV_MOUNT",
                "CE_MODULE_LOAD",
                "CE_NSENTER",
                "EXPLOIT_HOST_READ",
                "EXPLOIT_HOST_TRAVERSE",
            ],
        ),
        (
            "scenarios/kube-bench-security/master-job.yaml",
            &["host-pid", "sensitive-host-path"],
            &["EXPLOIT_HOST_TRAVERSE"],
        ),
        (
            "scenarios/kube-bench-security/node-job.yaml",
            &["host-pid", "sensitive-host-path"],
            &["EXPLOIT_HOST_TRAVERSE"],
        ),
        (
            "scenarios/build-code/deployment.yaml",
            &["runs-as-root"],
            &[],
        ),
        (
            "scenarios/poor-registry/deployment.yaml",
            &["runs-as-root"],
            &[],
        ),
        ("scenarios/batch-check/job.yaml", &["runs-as-root"], &[]),
        (
            "scenarios/hidden-in-layers/deployment.yaml",
            &["runs-as-root"],
            &[],
        ),
        (
            "scenarios/kubernetes-goat-home/deployment.yaml",
            &["runs-as-root"],
            &[],
        ),
        (
            "infrastructure/helm-tiller/pwnchart/templates/clusterrole.yaml",
            &["rbac-wildcard"],
            &[],
        ),
    ];
    let expected_file: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("EXPECTED.json")).expect("read"))
            .expect("json");
    assert_eq!(
        expected_file["files"].as_object().expect("files").len(),
        expectations.len() + 2
    );
    let per_file: Vec<(String, Vec<Object>)> = expectations
        .iter()
        .map(|(file, _, _)| (file.to_string(), objects_of(&root.join(file))))
        .collect();
    let engine = analyze(
        per_file
            .iter()
            .flat_map(|(_, objects)| objects.iter().cloned())
            .collect(),
    );
    let tenant = engine.tenant("tenant").expect("tenant");
    for ((file, controls, techniques), (_, objects)) in expectations.iter().zip(&per_file) {
        let found_controls = controls_of(tenant, objects);
        let found_techniques = techniques_of(tenant, objects);
        for control in *controls {
            assert!(
                found_controls.contains(*control),
                "{file}: missing {control}, has {found_controls:?}"
            );
        }
        for technique in *techniques {
            assert!(
                found_techniques.contains(*technique),
                "{file}: missing {technique}, has {found_techniques:?}"
            );
        }
        if techniques.is_empty() {
            let escapes: Vec<&String> = found_techniques
                .iter()
                .filter(|label| label.starts_with("CE_") || label.starts_with("EXPLOIT_"))
                .collect();
            assert!(escapes.is_empty(), "{file}: {escapes:?}");
        }
    }
    // The superadmin service account is bound to cluster-admin: a critical permission set.
    let graph = tenant.graph();
    assert!(
        graph
            .entities()
            .any(|(_, entity)| entity.kind == EntityKind::PermissionSet
                && entity.name.starts_with("cluster-admin::")
                && entity.flag("critical"))
    );
    // system-monitor's escapes make a path to node takeover.
    assert!(tenant.attack_paths().iter().any(
        |path| path.entry().name == "system-monitor" && path.target().kind == EntityKind::Node
    ));
    // The two non-workload files are reported as unknown kinds and skipped.
    for file in [
        "scenarios/kyverno-namespace-exec-block/kyverno-block-pod-exec-by-namespace.yaml",
        "platforms/kind-setup/kind-cluster-setup.yaml",
    ] {
        let report = load_path(&root.join(file), &SourceLimits::default()).expect("readable");
        assert!(report.objects.is_empty(), "{file}");
        assert!(
            report
                .problems
                .iter()
                .all(|problem| problem.kind == ProblemKind::UnknownKind
                    && problem.document == Some(0)),
            "{file}: {:?}",
            report.problems
        );
        assert!(!report.problems.is_empty(), "{file}");
    }
}

/// Online Boutique: its LoadBalancer makes the frontend internet-exposed, and nothing makes a
/// path (no escape, no RBAC, hardened pods).
#[test]
fn online_boutique_is_exposed_but_has_no_attack_path() {
    let objects = objects_of(&corpus_path(
        "k8s/online-boutique/release/kubernetes-manifests.yaml",
    ));
    let engine = analyze(objects);
    let tenant = engine.tenant("tenant").expect("tenant");
    let exposed: Vec<String> = tenant
        .insights()
        .into_iter()
        .filter(|insight| insight.control_id == "internet-exposed")
        .map(|insight| insight.name)
        .collect();
    assert!(exposed.iter().any(|name| name == "frontend"), "{exposed:?}");
    assert!(
        tenant.attack_paths().is_empty(),
        "{:?}",
        tenant.attack_paths().first()
    );
    let techniques: BTreeSet<EdgeKind> = tenant
        .graph()
        .edges()
        .map(|(_, kind, _)| kind)
        .filter(|kind| kind.is_technique())
        .collect();
    assert!(
        !techniques.contains(&EdgeKind::CePrivMount)
            && !techniques.contains(&EdgeKind::IdentityAssume),
        "{techniques:?}"
    );
}

/// Bad manifests: invalid YAML, unknown kinds and oversized documents are reported with the
/// file and document index, and the good documents of the same file are still read.
#[test]
fn bad_documents_are_reported_with_file_and_index_and_skipped() {
    // The corpus' "bad input" has a tab after a flow sequence, before a comment. PyYAML rejects
    // it; YAML 1.2 allows tabs as separation outside indentation, so it is read as the Role it is.
    let tabbed = corpus_path(
        "k8s/kubescape-regolibrary/rules/role-in-default-namespace/test/role/input/role.yaml",
    );
    let report = load_path(&tabbed, &SourceLimits::default()).expect("readable");
    assert_eq!(report.objects.len(), 1, "{:?}", report.problems);
    // Indenting with a tab is invalid in every YAML version.
    let (objects, problems) = parse_bytes(
        b"kind: Pod
metadata:
	name: tabbed
",
        &SourceLimits::default(),
    );
    assert!(objects.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].document, problems[0].kind),
        (Some(0), ProblemKind::InvalidSyntax)
    );
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("broken.yaml");
    std::fs::write(&file, "kind: Pod\nmetadata:\n\tname: tabbed\n").expect("write");
    let report = load_path(directory.path(), &SourceLimits::default()).expect("readable");
    assert!(
        report.problems[0]
            .to_string()
            .contains("broken.yaml document 0"),
        "{}",
        report.problems[0]
    );

    let good = std::fs::read_to_string(corpus_path(
        "k8s/kubehound/test-cluster/attacks/CONTROL_POD.yaml",
    ))
    .expect("read");
    let huge_value = "x".repeat(300_000);
    let text = format!(
        "{good}\n---\nkind: Pod\nmetadata: {{name: [unclosed\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata: {{blob: {huge_value}}}\n---\n{good}"
    );
    let limits = SourceLimits {
        max_document_bytes: 100_000,
        ..SourceLimits::default()
    };
    let (objects, problems) = parse_bytes(text.as_bytes(), &limits);
    assert_eq!(objects.len(), 2, "{problems:?}");
    let kinds: Vec<(Option<usize>, ProblemKind)> = problems
        .iter()
        .map(|problem| (problem.document, problem.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Some(1), ProblemKind::InvalidSyntax),
            (Some(2), ProblemKind::UnknownKind),
            (Some(3), ProblemKind::TooLarge)
        ]
    );
    // Problems carry the first line of their document.
    assert!(problems[0].line.is_some_and(|line| line > 1));
}

/// The fuzz entry point survives hostile input.
#[test]
fn fuzz_entry_point_survives_hostile_input() {
    let inputs: Vec<Vec<u8>> = vec![
        b"a: &a [*a, *a, *a, *a]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]".to_vec(),
        "[".repeat(10_000).into_bytes(),
        b"\xff\xfe\x00".to_vec(),
        b"{\"kind\": \"List\", \"items\": [1, \"x\", {\"kind\": \"Pod\"}]}".to_vec(),
        b"---\n---\n...\n---\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}".to_vec(),
    ];
    for input in inputs {
        let _ = palisade_graph::source::fuzz_manifest(&input);
    }
}
