//! Small hand-checkable fleets: KubeHound's four fleet questions, Defender's host-network
//! pod on an internet-exposed node with RCE vulnerabilities, and network interception from
//! the host network with NET_ADMIN, each with the cases that must not trigger.

use palisade_graph::engine::{GraphEngine, InventoryChange};
use palisade_graph::findings::{ImageFindings, Severity, VulnerabilityFinding};
use palisade_graph::model::{EdgeKind, EntityKind};
use palisade_graph::source::{SourceLimits, parse_bytes};

fn engine_with(cluster: &str, manifests: &str) -> GraphEngine {
    let (objects, problems) = parse_bytes(manifests.as_bytes(), &SourceLimits::default());
    assert!(problems.is_empty(), "{problems:?}");
    let mut engine = GraphEngine::in_memory();
    engine
        .apply_changes(
            "t",
            cluster,
            objects.into_iter().map(InventoryChange::upsert).collect(),
        )
        .expect("apply");
    engine
}

fn node(name: &str, external: bool) -> String {
    let address = if external {
        "{type: ExternalIP, address: 203.0.113.7}"
    } else {
        "{type: InternalIP, address: 10.0.0.7}"
    };
    format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nstatus:\n  addresses: [{address}]\n---\n"
    )
}

/// A pod on a node; `extra` is indented YAML added to the container, `pod_extra` to the spec.
fn pod(name: &str, node: &str, image: &str, pod_extra: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default, labels: {{app: {name}}}}}
spec:
  nodeName: {node}
{pod_extra}  containers:
  - name: {name}
    image: {image}
    ports: [{{containerPort: 8080}}]
{extra}---
"
    )
}

fn load_balancer(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
"
    )
}

#[test]
fn fleet_report_answers_kubehound_questions_on_a_hand_checked_fleet() {
    // Three services behind load balancers, one node:
    // - loader adds SYS_MODULE: ENDPOINT_EXPLOIT then CE_MODULE_LOAD to the node;
    // - priv is privileged: CE_MODULE_LOAD and CE_PRIV_MOUNT both reach the node;
    // - api has no escape and its service account no permissions: no path.
    let manifests = [
        node("node-a", false),
        pod(
            "loader",
            "node-a",
            "loader:1",
            "",
            "    securityContext: {capabilities: {add: [SYS_MODULE]}}\n",
        ),
        load_balancer("loader"),
        pod(
            "priv",
            "node-a",
            "priv:1",
            "",
            "    securityContext: {privileged: true}\n",
        ),
        load_balancer("priv"),
        pod("api", "node-a", "api:1", "", ""),
        load_balancer("api"),
    ]
    .concat();
    let mut engine = engine_with("a", &manifests);
    let report = engine.tenant_mut("t").fleet_report();
    assert_eq!(report.external_services, 3, "{report:?}");
    assert_eq!(report.external_services_with_path, 2, "{report:?}");
    assert!(
        (report.percent_with_path - 200.0 / 3.0).abs() < 1e-9,
        "{report:?}"
    );
    assert_eq!(report.reachable_pairs, 2, "{report:?}");
    let node_id = "a/node/_/node-a";
    for shortest in &report.shortest_paths {
        assert_eq!(shortest.target, node_id, "{shortest:?}");
        assert_eq!(shortest.hops, 2, "{shortest:?}");
        assert_eq!(shortest.techniques[0], "ENDPOINT_EXPLOIT", "{shortest:?}");
    }
    let loader = report
        .shortest_paths
        .iter()
        .find(|shortest| shortest.endpoint.contains("loader"))
        .expect("loader's path");
    assert_eq!(loader.techniques, ["ENDPOINT_EXPLOIT", "CE_MODULE_LOAD"]);
    assert!(
        !report
            .shortest_paths
            .iter()
            .any(|shortest| shortest.endpoint.contains("api"))
    );
    // Which control cuts most paths: every path starts with the exploited endpoint.
    assert_eq!(report.paths_per_technique["ENDPOINT_EXPLOIT"], 2);
    assert_eq!(report.reduction_if_removed["ENDPOINT_EXPLOIT"], 100.0);
    // Without module loading, loader loses its only path; priv still mounts the host disk.
    assert_eq!(report.reduction_if_removed["CE_MODULE_LOAD"], 50.0);
    if let Some(reduction) = report.reduction_if_removed.get("CE_PRIV_MOUNT") {
        assert_eq!(*reduction, 0.0);
    }
}

fn rce_findings(image: &str, rce: bool) -> Vec<ImageFindings> {
    vec![ImageFindings {
        image: image.to_string(),
        digest: String::new(),
        vulnerabilities: vec![VulnerabilityFinding {
            id: "CVE-2099-4242".to_string(),
            severity: Severity::High,
            cvss_vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_string(),
            remote_code_execution: rce,
            ..VulnerabilityFinding::default()
        }],
    }]
}

fn templates_after(manifests: &str, rce: bool) -> Vec<&'static str> {
    let mut engine = engine_with("h", manifests);
    engine
        .set_findings("t", rce_findings("web:1", rce))
        .expect("findings");
    engine
        .tenant("t")
        .expect("tenant")
        .attack_paths()
        .iter()
        .map(|path| path.template)
        .collect()
}

const HOST_NETWORK: &str = "  hostNetwork: true\n";

#[test]
fn host_network_pod_on_an_exposed_node_with_rce_is_defenders_path() {
    let cluster = |on: &str| {
        [
            node("edge", true),
            node("inner", false),
            pod("web", on, "web:1", HOST_NETWORK, ""),
        ]
        .concat()
    };
    let on_edge = templates_after(&cluster("edge"), true);
    assert!(
        on_edge.contains(&"defender-host-network-rce"),
        "{on_edge:?}"
    );
    // The same pod on the node without an external address is not reachable from the
    // internet, though another node of the cluster is.
    let on_inner = templates_after(&cluster("inner"), true);
    assert!(
        !on_inner
            .iter()
            .any(|template| template.starts_with("defender")),
        "{on_inner:?}"
    );
    // Without remote code execution it is the high-severity path, not the RCE one.
    let high_only = templates_after(&cluster("edge"), false);
    assert!(
        high_only.contains(&"defender-exposed-high-severity")
            && !high_only.contains(&"defender-host-network-rce"),
        "{high_only:?}"
    );
    // Without the host network the pod's port is not on the node at all.
    let pod_network = [node("edge", true), pod("web", "edge", "web:1", "", "")].concat();
    let templates = templates_after(&pod_network, true);
    assert!(
        !templates
            .iter()
            .any(|template| template.starts_with("defender")),
        "{templates:?}"
    );
}

fn mitm_targets(manifests: &str) -> Vec<String> {
    let engine = engine_with("m", manifests);
    let graph = engine.tenant("t").expect("tenant").graph();
    graph
        .edges()
        .filter(|(_, kind, _)| *kind == EdgeKind::CeNetMitm)
        .map(|(from, _, to)| {
            let from = graph.entity(from).expect("from");
            let to = graph.entity(to).expect("to");
            assert_eq!(from.kind, EntityKind::Container);
            assert_eq!(to.kind, EntityKind::Pod);
            format!("{}->{}", from.name, to.name)
        })
        .collect()
}

#[test]
fn host_network_with_net_admin_intercepts_the_pods_of_its_node_only() {
    let net_admin = "    securityContext: {capabilities: {add: [NET_ADMIN]}}\n";
    let victims = [
        node("node-1", false),
        node("node-2", false),
        pod("victim", "node-1", "victim:1", "", ""),
        pod("elsewhere", "node-2", "elsewhere:1", "", ""),
    ]
    .concat();
    let sniffer = pod("sniffer", "node-1", "sniffer:1", HOST_NETWORK, net_admin);
    assert_eq!(
        mitm_targets(&format!("{victims}{sniffer}")),
        ["sniffer->victim"]
    );
    // Either condition alone gives nothing.
    let host_network_only = pod("sniffer", "node-1", "sniffer:1", HOST_NETWORK, "");
    assert!(mitm_targets(&format!("{victims}{host_network_only}")).is_empty());
    let net_admin_only = pod("sniffer", "node-1", "sniffer:1", "", net_admin);
    assert!(mitm_targets(&format!("{victims}{net_admin_only}")).is_empty());
}
