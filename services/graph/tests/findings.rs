//! Incremental scanner findings: replacing a few images' findings gives the same graph,
//! attack paths and insights as setting the whole updated set, survives a restart, and keeps
//! the image's vulnerability summary when its cluster changes.

use std::collections::BTreeMap;

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::findings::{ImageFindings, Severity, VulnerabilityFinding};
use palisade_graph::model::{EntityKind, normalize_image};
use palisade_graph::object::Object;
use palisade_graph::source::{SourceLimits, load_path};
use palisade_graph::store::GraphStore;
use palisade_testkit::corpus_path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn corpus_objects(path: &str) -> Vec<Object> {
    load_path(&corpus_path(path), &SourceLimits::default())
        .expect("corpus")
        .objects
}

fn engine_with_clusters(store: Option<GraphStore>) -> GraphEngine {
    let mut engine = match store {
        Some(store) => GraphEngine::with_store(store).expect("engine"),
        None => GraphEngine::in_memory(),
    };
    for (cluster, path) in [
        ("goat", "k8s/kubernetes-goat/scenarios"),
        (
            "boutique",
            "k8s/online-boutique/release/kubernetes-manifests.yaml",
        ),
    ] {
        let changes = corpus_objects(path)
            .into_iter()
            .map(InventoryChange::upsert)
            .collect();
        engine.apply_changes("t", cluster, changes).expect("apply");
    }
    engine
}

/// Everything a reader can see of a tenant, in a comparable form.
#[derive(Debug, PartialEq)]
struct Snapshot {
    entities: BTreeMap<String, String>,
    edges: Vec<(String, String, String)>,
    paths: Vec<String>,
    insights: Vec<String>,
}

fn snapshot(engine: &GraphEngine) -> Snapshot {
    let tenant = engine.tenant("t").expect("tenant");
    let graph = tenant.graph();
    let entities = graph
        .entities()
        .map(|(_, entity)| {
            (
                entity.id.clone(),
                serde_json::to_string(entity).expect("entity json"),
            )
        })
        .collect();
    let id = |slot| graph.entity(slot).expect("edge end").id.clone();
    let mut edges: Vec<(String, String, String)> = graph
        .edges()
        .map(|(from, kind, to)| (id(from), kind.as_str().to_string(), id(to)))
        .collect();
    edges.sort();
    let paths = tenant
        .attack_paths()
        .iter()
        .map(|path| serde_json::to_string(path).expect("path json"))
        .collect();
    let insights = tenant
        .insights()
        .iter()
        .map(|insight| serde_json::to_string(insight).expect("insight json"))
        .collect();
    Snapshot {
        entities,
        edges,
        paths,
        insights,
    }
}

fn cluster_images(engine: &GraphEngine) -> Vec<String> {
    let graph = engine.tenant("t").expect("tenant").graph();
    graph
        .of_kind(EntityKind::Image)
        .filter_map(|slot| graph.entity(slot))
        .map(|image| image.name.clone())
        .collect()
}

const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

fn random_findings(rng: &mut StdRng, images: &[String]) -> ImageFindings {
    let image = images[rng.random_range(0..images.len())].clone();
    // The same image under another spelling of its reference, now and then.
    let reference = match image.strip_prefix("docker.io/library/") {
        Some(short) if rng.random_bool(0.3) => short.to_string(),
        _ => image,
    };
    let digest = if rng.random_bool(0.5) {
        format!("sha256:{:02}", rng.random_range(0..12))
    } else {
        String::new()
    };
    let count = if rng.random_bool(0.2) {
        0
    } else {
        rng.random_range(1..6)
    };
    let vulnerabilities = (0..count)
        .map(|_| {
            // Few advisories, so that images share them; their description differs per
            // image so the advisory's canonical description is exercised.
            let advisory = rng.random_range(0..15);
            VulnerabilityFinding {
                id: format!("CVE-2099-{advisory:04}"),
                severity: SEVERITIES[rng.random_range(0..SEVERITIES.len())],
                cvss_score: rng.random_bool(0.5).then(|| rng.random_range(1..10) as f64),
                remote_code_execution: rng.random_bool(0.2),
                ..VulnerabilityFinding::default()
            }
        })
        .collect();
    ImageFindings {
        image: reference,
        digest,
        vulnerabilities,
    }
}

/// The replacement rule, written out plainly over a list.
fn replace_in_list(list: &mut Vec<ImageFindings>, incoming: Vec<ImageFindings>) {
    for entry in incoming {
        let by_digest =
            !entry.digest.is_empty() && list.iter().any(|stored| stored.digest == entry.digest);
        if by_digest {
            list.retain(|stored| stored.digest != entry.digest);
        } else {
            let reference = normalize_image(&entry.image);
            list.retain(|stored| normalize_image(&stored.image) != reference);
        }
        if !entry.vulnerabilities.is_empty() {
            list.push(entry);
        }
    }
}

#[test]
fn updating_a_few_images_equals_setting_the_whole_updated_set() {
    let mut incremental = engine_with_clusters(None);
    let mut images = cluster_images(&incremental);
    images.push("registry.example/unscheduled:1.0".to_string());
    assert!(images.len() > 10, "{images:?}");
    let mut rng = StdRng::seed_from_u64(6);
    let mut expected: Vec<ImageFindings> = (0..images.len())
        .map(|_| random_findings(&mut rng, &images))
        .collect();
    incremental
        .set_findings("t", expected.clone())
        .expect("initial findings");
    for round in 0..25 {
        let batch: Vec<ImageFindings> = (0..rng.random_range(1..4))
            .map(|_| random_findings(&mut rng, &images))
            .collect();
        replace_in_list(&mut expected, batch.clone());
        incremental
            .update_image_findings("t", batch)
            .expect("update");
        let mut from_scratch = engine_with_clusters(None);
        from_scratch
            .set_findings("t", expected.clone())
            .expect("full set");
        assert_eq!(
            snapshot(&incremental),
            snapshot(&from_scratch),
            "round {round}"
        );
    }
}

#[test]
fn an_update_without_vulnerabilities_removes_the_image_findings() {
    let mut engine = engine_with_clusters(None);
    let image = cluster_images(&engine)
        .into_iter()
        .find(|image| image.contains("frontend"))
        .expect("frontend image");
    let critical = ImageFindings {
        image: image.clone(),
        digest: "sha256:aa".to_string(),
        vulnerabilities: vec![VulnerabilityFinding {
            id: "CVE-2099-0001".to_string(),
            severity: Severity::Critical,
            remote_code_execution: true,
            ..VulnerabilityFinding::default()
        }],
    };
    let stats = engine
        .update_image_findings("t", vec![critical])
        .expect("add");
    assert!(
        stats.edges_added == 1 && stats.entities_changed == 2,
        "{stats:?}"
    );
    let paths_with = engine.tenant("t").expect("tenant").attack_paths().len();
    assert!(
        engine
            .tenant("t")
            .expect("tenant")
            .attack_paths()
            .iter()
            .any(|path| path.template == "defender-exposed-rce")
    );
    // Matched by digest, whatever the reference says.
    engine
        .update_image_findings(
            "t",
            vec![ImageFindings {
                image: "another/reference:1".to_string(),
                digest: "sha256:aa".to_string(),
                vulnerabilities: Vec::new(),
            }],
        )
        .expect("remove");
    let tenant = engine.tenant("t").expect("tenant");
    let graph = tenant.graph();
    assert_eq!(graph.count_of_kind(EntityKind::Vulnerability), 0);
    let frontend = graph
        .entity_by_id(&format!("image/{image}"))
        .expect("the cluster still runs the image");
    assert!(frontend.properties.is_empty(), "{frontend:?}");
    assert!(tenant.attack_paths().len() < paths_with);
    assert!(
        !tenant
            .attack_paths()
            .iter()
            .any(|path| path.template.starts_with("defender"))
    );
}

#[test]
fn a_cluster_change_keeps_the_findings_of_its_images() {
    let mut engine = engine_with_clusters(None);
    let image = cluster_images(&engine)
        .into_iter()
        .find(|image| image.contains("frontend"))
        .expect("frontend image");
    engine
        .update_image_findings(
            "t",
            vec![ImageFindings {
                image: image.clone(),
                digest: String::new(),
                vulnerabilities: vec![VulnerabilityFinding {
                    id: "CVE-2099-0002".to_string(),
                    severity: Severity::Critical,
                    ..VulnerabilityFinding::default()
                }],
            }],
        )
        .expect("findings");
    let before = snapshot(&engine);
    // Re-listing the boutique re-derives the cluster, images included.
    let objects = corpus_objects("k8s/online-boutique/release/kubernetes-manifests.yaml");
    let mut changed = objects[0].clone();
    changed.meta.labels.insert("touched".into(), "yes".into());
    engine
        .apply_changes("t", "boutique", vec![InventoryChange::upsert(changed)])
        .expect("change");
    let graph = engine.tenant("t").expect("tenant").graph();
    let frontend = graph
        .entity_by_id(&format!("image/{image}"))
        .expect("image");
    assert!(frontend.flag("scanned"), "{frontend:?}");
    assert_eq!(snapshot(&engine).paths, before.paths);
}

#[test]
fn updated_findings_survive_a_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut rng = StdRng::seed_from_u64(7);
    let expected = {
        let store = GraphStore::open(directory.path()).expect("open");
        let mut engine = engine_with_clusters(Some(store.clone()));
        let images = cluster_images(&engine);
        let initial: Vec<ImageFindings> =
            (0..8).map(|_| random_findings(&mut rng, &images)).collect();
        engine.set_findings("t", initial).expect("set");
        for _ in 0..6 {
            let batch = vec![random_findings(&mut rng, &images)];
            engine.update_image_findings("t", batch).expect("update");
        }
        store.flush_blocking().expect("flush");
        snapshot(&engine)
    };
    let reopened = GraphEngine::with_store(GraphStore::open(directory.path()).expect("reopen"))
        .expect("engine");
    assert_eq!(snapshot(&reopened), expected);
}
