//! The explorer answers related-entity conditions the same whether it walks forwards from
//! each candidate or, once a condition is checked for many candidates, backwards from the
//! far entities that satisfy it: answers are checked against the graph's edges read directly.

use std::collections::BTreeSet;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::explorer::{self, QueryLimits};
use palisade_graph::findings::{ImageFindings, Severity, VulnerabilityFinding};
use palisade_graph::graph::{Slot, TenantGraph};
use palisade_graph::model::{EdgeKind, EntityKind};
use palisade_graph::source::{SourceLimits, load_path};
use palisade_testkit::corpus_path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Goat and the Online Boutique, each as three clusters, with findings for their images and
/// for 200 images no cluster runs (so that image queries have hundreds of candidates).
fn fleet() -> GraphEngine {
    let mut engine = GraphEngine::in_memory();
    for (name, path) in [
        ("goat", "k8s/kubernetes-goat/scenarios"),
        (
            "boutique",
            "k8s/online-boutique/release/kubernetes-manifests.yaml",
        ),
    ] {
        let objects = load_path(&corpus_path(path), &SourceLimits::default())
            .expect("corpus")
            .objects;
        for copy in 0..3 {
            let changes = objects
                .iter()
                .cloned()
                .map(InventoryChange::upsert)
                .collect();
            engine
                .apply_changes("t", &format!("{name}-{copy}"), changes)
                .expect("apply");
        }
    }
    let graph = engine.tenant("t").expect("tenant").graph();
    let mut images: Vec<String> = graph
        .of_kind(EntityKind::Image)
        .filter_map(|slot| graph.entity(slot))
        .map(|image| image.name.clone())
        .collect();
    images.extend((0..200).map(|index| format!("registry.example/unused-{index}:1")));
    let mut rng = StdRng::seed_from_u64(11);
    let severities = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    let findings = images
        .into_iter()
        .map(|image| ImageFindings {
            image,
            digest: String::new(),
            vulnerabilities: (0..rng.random_range(0..12))
                .map(|_| {
                    let advisory = rng.random_range(0..80);
                    VulnerabilityFinding {
                        id: format!("CVE-2099-{advisory:04}"),
                        // Severity belongs to the advisory.
                        severity: severities[advisory % 7 % 4],
                        remote_code_execution: advisory % 9 == 0,
                        ..VulnerabilityFinding::default()
                    }
                })
                .collect(),
        })
        .collect();
    engine.set_findings("t", findings).expect("findings");
    engine
}

fn ids(graph: &TenantGraph, slots: impl IntoIterator<Item = Slot>) -> BTreeSet<String> {
    slots
        .into_iter()
        .filter_map(|slot| graph.entity(slot).map(|entity| entity.id.clone()))
        .collect()
}

fn neighbours(graph: &TenantGraph, slot: Slot, edge: EdgeKind, forward: bool) -> Vec<Slot> {
    let list = if forward {
        graph.out_edges(slot)
    } else {
        graph.in_edges(slot)
    };
    list.iter()
        .filter(|(_, kind)| *kind == edge)
        .map(|(next, _)| *next)
        .collect()
}

fn pod_vulnerabilities(graph: &TenantGraph, pod: Slot) -> Vec<Slot> {
    neighbours(graph, pod, EdgeKind::Runs, true)
        .into_iter()
        .flat_map(|container| neighbours(graph, container, EdgeKind::UsesImage, true))
        .flat_map(|image| neighbours(graph, image, EdgeKind::HasVulnerability, true))
        .collect()
}

fn rank(graph: &TenantGraph, vulnerability: Slot) -> u64 {
    graph
        .entity(vulnerability)
        .and_then(|entity| entity.properties.get("severity_rank"))
        .and_then(serde_json::Value::as_u64)
        .expect("severity rank")
}

fn answer(graph: &TenantGraph, text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let query = explorer::parse_text(text).expect("query");
    let limits = QueryLimits {
        max_included: 100_000,
        ..QueryLimits::default()
    };
    let result = explorer::run(graph, &query, 0, limits).expect("run");
    assert_eq!(result.total, result.rows.len(), "{text}");
    let entities = result
        .rows
        .iter()
        .map(|row| row.entity.id.clone())
        .collect();
    let related = result
        .rows
        .iter()
        .flat_map(|row| {
            row.related
                .values()
                .flatten()
                .map(|id| (row.entity.id.clone(), id.clone()))
        })
        .collect();
    (entities, related)
}

#[test]
fn related_conditions_answer_the_same_from_either_end() {
    let engine = fleet();
    let graph = engine.tenant("t").expect("tenant").graph();
    let pods: Vec<Slot> = graph.of_kind(EntityKind::Pod).collect();
    let images: Vec<Slot> = graph.of_kind(EntityKind::Image).collect();
    assert!(
        pods.len() > 64 && images.len() > 64,
        "enough candidates to plan from the far end"
    );

    // Images with a CVE, and the pods running them.
    let cve_slot = graph.slot("vulnerability/CVE-2099-0007").expect("cve");
    let carriers: Vec<Slot> = neighbours(graph, cve_slot, EdgeKind::HasVulnerability, false);
    let expected_pairs: BTreeSet<(String, String)> = carriers
        .iter()
        .flat_map(|image| {
            neighbours(graph, *image, EdgeKind::UsesImage, false)
                .into_iter()
                .flat_map(|container| neighbours(graph, container, EdgeKind::Runs, false))
                .map(|pod| {
                    (
                        graph.entity(*image).expect("image").id.clone(),
                        graph.entity(pod).expect("pod").id.clone(),
                    )
                })
        })
        .collect();
    let (found, pairs) = answer(
        graph,
        "image where has vulnerability(name = \"CVE-2099-0007\") include pod",
    );
    assert_eq!(found, ids(graph, carriers.iter().copied()));
    assert_eq!(pairs, expected_pairs);
    assert!(!expected_pairs.is_empty());

    // Internet-exposed pods with critical vulnerabilities.
    let critical = |pod: Slot| {
        pod_vulnerabilities(graph, pod)
            .iter()
            .any(|v| rank(graph, *v) >= 5)
    };
    let exposed = |pod: Slot| {
        graph
            .entity(pod)
            .is_some_and(|entity| entity.flag("exposed_to_internet"))
    };
    let expected = ids(
        graph,
        pods.iter()
            .copied()
            .filter(|pod| exposed(*pod) && critical(*pod)),
    );
    assert!(!expected.is_empty());
    let (found, _) = answer(
        graph,
        "pod where exposed_to_internet and has vulnerability(severity >= critical)",
    );
    assert_eq!(found, expected);

    // Every pod, negated, and with a nested related condition.
    let expected = ids(graph, pods.iter().copied().filter(|pod| !critical(*pod)));
    let (found, _) = answer(
        graph,
        "pod where not has vulnerability(severity = critical)",
    );
    assert_eq!(found, expected);
    let high = |pod: Slot| {
        pod_vulnerabilities(graph, pod)
            .iter()
            .any(|v| rank(graph, *v) >= 4)
    };
    let expected = ids(
        graph,
        graph.of_kind(EntityKind::Namespace).filter(|namespace| {
            neighbours(graph, *namespace, EdgeKind::Contains, true)
                .into_iter()
                .any(|pod| {
                    graph
                        .entity(pod)
                        .is_some_and(|entity| entity.kind == EntityKind::Pod)
                        && high(pod)
                })
        }),
    );
    assert!(!expected.is_empty());
    let (found, _) = answer(
        graph,
        "namespace where has pod(has vulnerability(severity >= high))",
    );
    assert_eq!(found, expected);
}

fn flagged_pods(graph: &TenantGraph) -> BTreeSet<String> {
    ids(
        graph,
        graph.of_kind(EntityKind::Pod).filter(|pod| {
            graph
                .entity(*pod)
                .is_some_and(|entity| entity.flag("exposed_to_internet"))
        }),
    )
}

fn vulnerabilities_ranked(graph: &TenantGraph, keep: impl Fn(u64) -> bool) -> BTreeSet<String> {
    ids(
        graph,
        graph
            .of_kind(EntityKind::Vulnerability)
            .filter(|vulnerability| keep(rank(graph, *vulnerability))),
    )
}

/// Flags, severities and related-entity conditions narrow the candidates from the graph's
/// indexes and backward walks; every answer is checked against the graph read directly,
/// before and after changes that move entities in and out of those indexes.
#[test]
fn candidates_taken_from_indexes_answer_like_reading_every_entity() {
    let mut engine = fleet();
    let check = |engine: &GraphEngine| {
        let graph = engine.tenant("t").expect("tenant").graph();
        let exposed = flagged_pods(graph);
        assert_eq!(
            answer(graph, "pod where exposed_to_internet").0,
            exposed,
            "flag"
        );
        assert_eq!(
            answer(graph, "vulnerability where severity >= high").0,
            vulnerabilities_ranked(graph, |rank| rank >= 4),
            "severity"
        );
        assert_eq!(
            answer(
                graph,
                "vulnerability where severity = critical or severity < medium"
            )
            .0,
            vulnerabilities_ranked(graph, |rank| rank == 5 || rank < 3),
            "either severity"
        );
        let critical = ids(
            graph,
            graph.of_kind(EntityKind::Pod).filter(|pod| {
                pod_vulnerabilities(graph, *pod)
                    .iter()
                    .any(|v| rank(graph, *v) >= 5)
            }),
        );
        assert_eq!(
            answer(graph, "pod where has vulnerability(severity >= critical)").0,
            critical,
            "related condition alone, from the far end"
        );
        let creators = ids(
            graph,
            graph.of_kind(EntityKind::ServiceAccount).filter(|account| {
                neighbours(graph, *account, EdgeKind::PermissionDiscover, true)
                    .into_iter()
                    .any(|set| {
                        graph.entity(set).is_some_and(|set| {
                            set.text("creates_pods")
                                .is_some_and(|scope| scope == "*" || scope == "kube-system")
                        })
                    })
            }),
        );
        assert_eq!(
            answer(
                graph,
                "service_account where has permission_set(creates_pods = \"kube-system\" or creates_pods = \"*\")"
            )
            .0,
            creators,
            "related condition alone"
        );
        // Every text a permission set's scope takes, each from the index of the entities
        // that hold the property as text.
        let scopes: BTreeSet<&str> = graph
            .of_kind(EntityKind::PermissionSet)
            .filter_map(|set| graph.entity(set)?.text("creates_pods"))
            .collect();
        assert!(!scopes.is_empty(), "permission sets that create pods");
        for scope in scopes {
            let holders = ids(
                graph,
                graph.of_kind(EntityKind::PermissionSet).filter(|set| {
                    graph
                        .entity(*set)
                        .is_some_and(|set| set.text("creates_pods") == Some(scope))
                }),
            );
            assert_eq!(
                answer(
                    graph,
                    &format!("permission_set where creates_pods = \"{scope}\"")
                )
                .0,
                holders,
                "text equality {scope}"
            );
        }
        (exposed, creators)
    };
    let (exposed_before, creators) = check(&engine);
    assert!(!exposed_before.is_empty() && !creators.is_empty());

    // The boutique's load balancer removed from one copy: its pods leave the flag index.
    let service = engine
        .tenant("t")
        .and_then(|tenant| tenant.inventory("boutique-1"))
        .and_then(|inventory| {
            inventory
                .of_kind(palisade_graph::object::ObjectKind::Service)
                .find(|object| object.key().name == "frontend-external")
                .map(|object| object.key())
        })
        .expect("the boutique's load balancer");
    engine
        .apply_changes("t", "boutique-1", vec![InventoryChange::Delete(service)])
        .expect("delete");
    let (exposed_after, _) = check(&engine);
    assert!(
        exposed_after.len() < exposed_before.len(),
        "the load balancer's pods are no longer exposed"
    );

    // New findings: every vulnerability critical, then none left.
    let graph = engine.tenant("t").expect("tenant").graph();
    let images: Vec<String> = graph
        .of_kind(EntityKind::Image)
        .filter_map(|slot| graph.entity(slot))
        .map(|image| image.name.clone())
        .collect();
    let findings = images
        .iter()
        .map(|image| ImageFindings {
            image: image.clone(),
            digest: String::new(),
            vulnerabilities: vec![VulnerabilityFinding {
                id: "CVE-2099-9999".to_string(),
                severity: Severity::Critical,
                ..VulnerabilityFinding::default()
            }],
        })
        .collect();
    engine.set_findings("t", findings).expect("findings");
    check(&engine);
    let graph = engine.tenant("t").expect("tenant").graph();
    assert_eq!(
        answer(graph, "vulnerability where severity >= critical").0,
        BTreeSet::from(["vulnerability/CVE-2099-9999".to_string()])
    );
    engine.set_findings("t", Vec::new()).expect("no findings");
    check(&engine);
    let graph = engine.tenant("t").expect("tenant").graph();
    assert!(
        answer(graph, "vulnerability where severity >= low")
            .0
            .is_empty()
    );
}
