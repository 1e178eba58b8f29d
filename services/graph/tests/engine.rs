//! The engine end to end: incremental updates, persistence in sled, findings and alerts,
//! attack paths, the explorer, the service API and the offline entry points.

use palisade_graph::analyze::{AnalyzeOptions, OutputFormat, analyze, query_offline, render};
use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::explorer::{self, QueryLimits, parse_text, templates, to_text};
use palisade_graph::findings::{
    ImageFindings, RuntimeAlert, Severity, VulnerabilityFinding, parse_findings,
};
use palisade_graph::model::EntityKind;
use palisade_graph::object::{Object, ObjectKey, ObjectKind};
use palisade_graph::service;
use palisade_graph::source::{SourceLimits, load_path, parse_bytes};
use palisade_graph::store::GraphStore;
use palisade_proto::v1 as pb;
use palisade_testkit::corpus_path;

fn goat_objects() -> Vec<Object> {
    load_path(
        &corpus_path("k8s/kubernetes-goat/scenarios"),
        &SourceLimits::default(),
    )
    .expect("goat")
    .objects
}

fn boutique_objects() -> Vec<Object> {
    load_path(
        &corpus_path("k8s/online-boutique/release/kubernetes-manifests.yaml"),
        &SourceLimits::default(),
    )
    .expect("boutique")
    .objects
}

fn frontend_findings(rce: bool) -> Vec<ImageFindings> {
    let image = boutique_objects()
        .iter()
        .find(|object| object.meta.name == "frontend" && object.kind == ObjectKind::Deployment)
        .and_then(|object| serde_json::to_value(&object.body).ok())
        .and_then(|body| {
            body.pointer("/Workload/template/spec/containers/0/image")
                .and_then(|image| image.as_str().map(str::to_string))
        })
        .expect("frontend image");
    vec![ImageFindings {
        image,
        digest: String::new(),
        vulnerabilities: vec![VulnerabilityFinding {
            id: "CVE-2099-0001".to_string(),
            severity: Severity::Critical,
            cvss_score: Some(9.8),
            cvss_vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_string(),
            remote_code_execution: rce,
            ..VulnerabilityFinding::default()
        }],
    }]
}

fn apply_all(engine: &mut GraphEngine, cluster: &str, objects: Vec<Object>) {
    engine
        .apply_changes(
            "t",
            cluster,
            objects.into_iter().map(InventoryChange::upsert).collect(),
        )
        .expect("apply");
}

#[test]
fn defender_path_appears_with_critical_rce_findings_on_the_exposed_frontend() {
    let mut engine = GraphEngine::in_memory();
    apply_all(&mut engine, "boutique", boutique_objects());
    assert!(
        engine
            .tenant("t")
            .expect("tenant")
            .attack_paths()
            .is_empty()
    );
    engine
        .set_findings("t", frontend_findings(true))
        .expect("findings");
    let tenant = engine.tenant("t").expect("tenant");
    let paths = tenant.attack_paths();
    let defender = paths
        .iter()
        .find(|path| {
            path.title
                == "Internet exposed Kubernetes pod is running a container with RCE vulnerabilities"
        })
        .expect("defender path");
    assert_eq!(defender.entry().kind, EntityKind::Internet);
    assert_eq!(defender.target().kind, EntityKind::Container);
    assert!(
        defender
            .risk_reasons
            .iter()
            .any(|reason| reason.contains("remote code execution")),
        "{:?}",
        defender.risk_reasons
    );
    assert!(
        defender
            .remediation
            .iter()
            .any(|line| line.starts_with("update image"))
    );
    assert!(defender.steps.iter().any(|step| step.mitre_id == "T1210"));
    // Vulnerability insights land on the image and on the pods running it.
    let insights = tenant.insights();
    assert!(
        insights
            .iter()
            .any(|insight| insight.control_id == "rce-vulnerability"
                && insight.entity_kind == EntityKind::Pod
                && insight.name == "frontend")
    );
}

#[test]
fn a_pod_update_changes_only_its_cluster_and_paths_follow() {
    let mut engine = GraphEngine::in_memory();
    apply_all(&mut engine, "goat", goat_objects());
    apply_all(&mut engine, "boutique", boutique_objects());
    let before = engine
        .tenant("t")
        .expect("tenant")
        .cluster_attack_paths("boutique")
        .len();
    assert_eq!(before, 0);
    // Make the boutique's cart service privileged: a node-takeover path appears in that
    // cluster only, and goes away with the change.
    let mut cart = boutique_objects()
        .into_iter()
        .find(|object| object.meta.name == "cartservice" && object.kind == ObjectKind::Deployment)
        .expect("cart");
    let original = cart.clone();
    let mut body = serde_json::to_value(&cart.body).expect("body");
    body["Workload"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] =
        serde_json::Value::Bool(true);
    cart.body = serde_json::from_value(body).expect("body back");
    let goat_paths = engine
        .tenant("t")
        .expect("tenant")
        .cluster_attack_paths("goat");
    let stats = engine
        .apply_changes("t", "boutique", vec![InventoryChange::upsert(cart)])
        .expect("update");
    assert!(stats.edges_added > 0 && stats.edges_added < 20, "{stats:?}");
    let tenant = engine.tenant("t").expect("tenant");
    assert!(
        tenant
            .cluster_attack_paths("boutique")
            .iter()
            .any(|path| path.entry().name == "server" && path.target().kind == EntityKind::Node)
    );
    assert_eq!(tenant.cluster_attack_paths("goat"), goat_paths);
    engine
        .apply_changes("t", "boutique", vec![InventoryChange::upsert(original)])
        .expect("revert");
    assert!(
        engine
            .tenant("t")
            .expect("tenant")
            .cluster_attack_paths("boutique")
            .is_empty()
    );
    // Deleting the workload removes its pod, containers and edges.
    let key = ObjectKey {
        kind: ObjectKind::Deployment,
        namespace: "default".to_string(),
        name: "cartservice".to_string(),
    };
    let removed = engine
        .apply_changes("t", "boutique", vec![InventoryChange::Delete(key)])
        .expect("delete");
    assert!(removed.entities_removed >= 3, "{removed:?}");
}

#[test]
fn the_graph_survives_a_restart_from_sled() {
    let directory = tempfile::tempdir().expect("tempdir");
    let (paths, entities, insights) = {
        let store = GraphStore::open(directory.path()).expect("open");
        let mut engine = GraphEngine::with_store(store.clone()).expect("engine");
        apply_all(&mut engine, "goat", goat_objects());
        engine
            .set_findings("t", frontend_findings(false))
            .expect("findings");
        engine
            .add_alerts(
                "t",
                vec![RuntimeAlert {
                    id: "a1".into(),
                    cluster: "goat".into(),
                    namespace: "default".into(),
                    pod: "system-monitor-deployment@deployment".into(),
                    rule: "Terminal shell in container".into(),
                    priority: "Warning".into(),
                    ..RuntimeAlert::default()
                }],
            )
            .expect("alerts");
        store.flush_blocking().expect("flush");
        let (stored_entities, stored_edges) = store.graph_counts("t").expect("counts");
        let tenant = engine.tenant("t").expect("tenant");
        assert_eq!(stored_entities, tenant.graph().entity_count());
        assert_eq!(stored_edges, tenant.graph().edge_count());
        (
            tenant.attack_paths().len(),
            tenant.graph().entity_count(),
            tenant.insights().len(),
        )
    };
    let reopened = GraphEngine::with_store(GraphStore::open(directory.path()).expect("reopen"))
        .expect("engine");
    let tenant = reopened.tenant("t").expect("tenant");
    assert_eq!(tenant.graph().entity_count(), entities);
    assert_eq!(tenant.attack_paths().len(), paths);
    assert_eq!(tenant.insights().len(), insights);
    assert!(
        tenant
            .insights()
            .iter()
            .any(|insight| insight.control_id == "recent-alert")
    );
    assert!(
        tenant
            .attack_paths()
            .iter()
            .any(|path| path.template == "compromised-container")
    );
}

#[test]
fn explorer_templates_answer_the_issue_questions() {
    let mut engine = GraphEngine::in_memory();
    apply_all(&mut engine, "goat", goat_objects());
    apply_all(&mut engine, "boutique", boutique_objects());
    engine
        .set_findings("t", frontend_findings(true))
        .expect("findings");
    let graph = engine.tenant("t").expect("tenant").graph();
    let run = |text: &str| {
        explorer::run(
            graph,
            &parse_text(text).expect("parses"),
            0,
            QueryLimits::default(),
        )
        .expect("runs")
    };
    let with_cve = run(&templates()[0].text.replace("{cve}", "CVE-2099-0001"));
    assert_eq!(with_cve.total, 1);
    assert!(
        with_cve.rows[0].related["pod"]
            .iter()
            .any(|pod| pod.ends_with("/frontend@deployment")),
        "{:?}",
        with_cve.rows[0].related
    );
    let exposed = run(templates()[1].text);
    assert_eq!(
        exposed
            .rows
            .iter()
            .map(|row| row.entity.name.as_str())
            .collect::<Vec<_>>(),
        vec!["frontend"]
    );
    // Goat's superadmin is bound to cluster-admin in kube-system; it can create pods there.
    let creators = run(templates()[2].text);
    assert!(
        creators
            .rows
            .iter()
            .any(|row| row.entity.name == "superadmin"),
        "{:?}",
        creators
            .rows
            .iter()
            .map(|row| &row.entity.id)
            .collect::<Vec<_>>()
    );
    assert!(
        !creators
            .rows
            .iter()
            .any(|row| row.entity.name == "big-monolith-sa")
    );
    let escaping = run(templates()[5].text);
    assert!(
        escaping
            .rows
            .iter()
            .any(|row| row.entity.name == "system-monitor")
    );
    for template in templates() {
        let query = parse_text(&template.text.replace("{cve}", "CVE-1")).expect("template parses");
        assert_eq!(
            parse_text(&to_text(&query)).expect("round trip"),
            query,
            "{}",
            template.id
        );
        explorer::run(graph, &query, 0, QueryLimits::default()).expect("template runs");
    }
    // The JSON builder form is the same query.
    let json = r#"{"entity":"pod","where":{"and":[{"property":"exposed_to_internet"},{"related":{"entity":"vulnerability","where":{"property":"severity","op":">=","value":"critical"}}}]}}"#;
    let from_json = explorer::parse_any(json).expect("json parses");
    assert_eq!(
        explorer::run(graph, &from_json, 0, QueryLimits::default())
            .expect("runs")
            .total,
        exposed.total
    );
}

#[test]
fn explorer_rejects_bad_and_expensive_queries_clearly() {
    let mut engine = GraphEngine::in_memory();
    apply_all(&mut engine, "goat", goat_objects());
    let graph = engine.tenant("t").expect("tenant").graph();
    let error = parse_text("pod where (privileged").expect_err("unclosed");
    assert_eq!(error.code(), "GRAPH_INVALID_QUERY");
    assert!(error.to_string().contains("expected )"), "{error}");
    let unknown = explorer::run(
        graph,
        &parse_text("gizmo where x").expect("parses"),
        0,
        QueryLimits::default(),
    )
    .expect_err("unknown kind");
    assert!(
        unknown.to_string().contains("unknown entity kind gizmo"),
        "{unknown}"
    );
    let unrelated = explorer::run(
        graph,
        &parse_text("internet where has secret").expect("parses"),
        0,
        QueryLimits::default(),
    )
    .expect_err("unrelated");
    assert!(unrelated.to_string().contains("not related"), "{unrelated}");
    let tight = QueryLimits {
        max_visits: 50,
        ..QueryLimits::default()
    };
    let expensive = explorer::run(
        graph,
        &parse_text("pod where has vulnerability").expect("parses"),
        0,
        tight,
    )
    .expect_err("budget");
    assert_eq!(expensive.code(), "GRAPH_QUERY_TOO_EXPENSIVE");
    assert!(parse_text(&"(".repeat(100)).is_err());
    assert!(parse_text(&"x".repeat(20_000)).is_err());
}

#[test]
fn service_api_serves_paths_entities_insights_and_queries() {
    let mut engine = GraphEngine::in_memory();
    apply_all(&mut engine, "goat", goat_objects());
    let paths = service::list_attack_paths(
        &engine,
        "t",
        &pb::ListAttackPathsRequest {
            page: Some(pb::PageRequest {
                limit: 2,
                cursor: String::new(),
            }),
            cluster_id: "goat".into(),
        },
    )
    .expect("paths");
    assert_eq!(paths.paths.len(), 2);
    assert_eq!(paths.next_cursor, "2");
    assert!(paths.paths[0].risk_score >= paths.paths[1].risk_score);
    let step = &paths.paths[0].steps[0];
    assert!(!step.technique.is_empty() && !step.mitre_id.is_empty());
    let entry_id = paths.paths[0].entry.as_ref().expect("entry").id.clone();
    let detail = service::get_entity(
        &engine,
        "t",
        &pb::GetEntityRequest {
            id: entry_id.clone(),
        },
    )
    .expect("entity");
    assert!(!detail.neighbours.is_empty() && !detail.edges.is_empty());
    let missing = service::get_entity(&engine, "t", &pb::GetEntityRequest { id: "nope".into() })
        .expect_err("missing");
    assert_eq!(missing.code(), "GRAPH_NOT_FOUND");
    let insights = service::list_insights(
        &engine,
        "t",
        &pb::ListInsightsRequest {
            page: None,
            control_id: "privileged-container".into(),
        },
    )
    .expect("insights");
    assert!(
        insights
            .insights
            .iter()
            .all(|finding| finding.kind == pb::FindingKind::Insight as i32)
    );
    assert!(insights.insights.iter().any(|finding| {
        finding
            .subject
            .as_ref()
            .is_some_and(|subject| subject.name == "system-monitor")
    }));
    let query = service::query(
        &engine,
        "t",
        &pb::GraphQueryRequest {
            query: "pod where host_pid".into(),
            query_json: String::new(),
            page: None,
        },
    )
    .expect("query");
    assert!(query.total >= 3);
    let other_tenant =
        service::list_attack_paths(&engine, "other", &pb::ListAttackPathsRequest::default())
            .expect("paths");
    assert!(other_tenant.paths.is_empty());
}

#[test]
fn offline_analysis_renders_json_table_and_dot_and_answers_queries() {
    let directory = tempfile::tempdir().expect("tempdir");
    let findings = directory.path().join("scan.json");
    std::fs::write(
        &findings,
        serde_json::to_vec(&frontend_findings(true)).expect("json"),
    )
    .expect("write");
    let options = AnalyzeOptions {
        manifests: vec![
            corpus_path("k8s/online-boutique/release"),
            corpus_path("k8s/kubernetes-goat/scenarios/health-check"),
        ],
        snapshots: vec![corpus_path("k8s-api/dumps/kubehound-kind-v1.27/nodes.json")],
        findings: vec![findings],
        cluster: None,
    };
    let report = analyze(&options).expect("analyze");
    let json: serde_json::Value =
        serde_json::from_str(&render(&report, OutputFormat::Json).expect("json"))
            .expect("valid json");
    assert!(json["entities"].as_u64().expect("count") > 50);
    assert!(json["insights"].as_array().expect("insights").len() > 10);
    assert!(
        json["attack_paths"]
            .as_array()
            .expect("paths")
            .iter()
            .any(|path| path["template"] == "defender-exposed-rce")
    );
    assert!(
        render(&report, OutputFormat::Table)
            .expect("table")
            .contains("ATTACK PATHS")
    );
    assert!(
        render(&report, OutputFormat::Dot)
            .expect("dot")
            .starts_with("digraph")
    );
    let result = query_offline(&options, "container where escapes_to_node").expect("query");
    assert!(
        result
            .rows
            .iter()
            .any(|row| row.entity.name == "health-check")
    );
}

#[test]
fn trivy_and_grype_reports_are_read() {
    let trivy = br#"{"ArtifactName":"nginx:1.19","Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-2021-23017","PkgName":"nginx","Severity":"HIGH","CweIDs":["CWE-193"],"CVSS":{"nvd":{"V3Score":7.7,"V3Vector":"CVSS:3.1/AV:N"}}}]}]}"#;
    let parsed = parse_findings(trivy, "trivy.json").expect("trivy");
    assert_eq!(parsed[0].vulnerabilities[0].severity, Severity::High);
    assert!(parsed[0].vulnerabilities[0].is_network_exploitable());
    let grype = br#"{"matches":[{"vulnerability":{"id":"CVE-2021-44228","severity":"Critical","description":"Apache Log4j2 remote code execution"},"artifact":{"name":"log4j-core","version":"2.14.1"}}],"source":{"target":{"userInput":"app:1"}}}"#;
    let parsed = parse_findings(grype, "grype.json").expect("grype");
    assert!(parsed[0].vulnerabilities[0].is_rce());
    let error = parse_findings(b"{\"vulnerabilities\": []}", "x.json").expect_err("no image");
    assert!(error.to_string().contains("names no image"), "{error}");
}

#[test]
fn metadata_only_kinds_never_keep_values() {
    let manifest = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"password\":\"aHVudGVyMg==\"}}'\ndata:\n  password: aHVudGVyMg==\n";
    let (objects, problems) = parse_bytes(manifest, &SourceLimits::default());
    assert!(problems.is_empty());
    let stored = serde_json::to_string(&objects[0]).expect("json");
    assert!(!stored.contains("aHVudGVyMg"), "{stored}");
    assert!(
        stored.contains("password"),
        "the key name is kept: {stored}"
    );
}
