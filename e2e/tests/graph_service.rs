//! The graph service of `palisade up`, end to end: the real Online Boutique manifests are the
//! inventory of a configured cluster, their images moved to a local docker-registry behind
//! basic auth (the test runs without internet). The frontend's image is a real Alpine 3.4
//! package database plus Online Boutique-style app files carrying a real npm lock file
//! (minimist 0.0.10); the server pulls it with the registry login of its own configuration,
//! matches it against Alpine's real secdb and GitHub's real advisory for minimist (critical,
//! network), and the graph joins the findings with the LoadBalancer that exposes the frontend:
//! Defender's "internet exposed pod with high severity vulnerabilities" path appears, for the
//! tenant whose inventory it is only, and survives a kill -9 of the server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use palisade_proto::v1::graph_service_client::GraphServiceClient;
use palisade_proto::v1::{
    AttackPath, GetEntityRequest, GraphQueryRequest, ListAttackPathsRequest, PageRequest,
};
use palisade_testkit::{Server, corpus_path};
use tokio::time::Instant;

mod common;

const PASSWORD: &str = "graph-e2e-pass";

/// Online Boutique with every image moved to `registry`.
fn boutique_manifests(directory: &Path, registry: &str) -> std::path::PathBuf {
    let original = std::fs::read_to_string(corpus_path(
        "k8s/online-boutique/release/kubernetes-manifests.yaml",
    ))
    .expect("online boutique manifests");
    let moved = original
        .replace(
            "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/",
            &format!("{registry}/boutique/"),
        )
        .replace(
            "image: redis:alpine",
            &format!("image: {registry}/library/redis:alpine"),
        )
        .replace(
            "image: busybox:",
            &format!("image: {registry}/library/busybox:"),
        );
    assert!(
        !moved.contains("pkg.dev") && moved.contains(&format!("{registry}/boutique/frontend")),
        "every image moved to the local registry"
    );
    let manifests = directory.join("manifests");
    std::fs::create_dir_all(&manifests).expect("mkdir");
    std::fs::write(manifests.join("boutique.yaml"), moved).expect("write manifests");
    manifests
}

async fn attack_paths(server: &Server, token: &str) -> Vec<AttackPath> {
    let (channel, interceptor) = common::authenticated(server, token).await;
    let mut graph = GraphServiceClient::with_interceptor(channel, interceptor);
    graph
        .list_attack_paths(ListAttackPathsRequest::default())
        .await
        .expect("list attack paths")
        .into_inner()
        .paths
}

fn graph_metric(server: &Server, name: &str) -> u64 {
    let output = server.cli(&["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("status json: {}", String::from_utf8_lossy(&output.stderr)));
    let graph = status["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == "graph")
        .unwrap_or_else(|| panic!("no graph component in {status}"));
    graph["metrics"][name]
        .as_str()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in {graph}"))
}

/// The paths that reach the frontend because of its image's vulnerabilities.
fn vulnerable_paths(paths: &[AttackPath]) -> Vec<&AttackPath> {
    paths
        .iter()
        .filter(|path| {
            path.title.contains("vulnerabilities")
                && path.steps.iter().any(|step| {
                    step.entity
                        .as_ref()
                        .and_then(|entity| entity.r#ref.as_ref())
                        .is_some_and(|reference| reference.name.starts_with("frontend"))
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_images_are_scanned_and_their_vulnerabilities_make_attack_paths() {
    let temp = tempfile::tempdir().expect("temp");
    let (_registry, registry) = common::start_registry(temp.path(), "e2e", PASSWORD);

    // The frontend image: Alpine 3.4's package database, and an app with a real lock file.
    let images = temp.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    let root = common::alpine_rootfs(&images);
    std::fs::create_dir_all(root.join("app")).expect("app dir");
    std::fs::copy(
        corpus_path("images/lockfiles/npm/package-lock-v1.json"),
        root.join("app/package-lock.json"),
    )
    .expect("lock file");
    let layout = common::umoci_image(&images, &root);
    let frontend = format!("{registry}/boutique/frontend:v0.10.6");
    common::run_tool(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("e2e:{PASSWORD}"),
        &format!("oci:{layout}"),
        &format!("docker://{frontend}"),
    ]));

    // The server's vulnerability data: Alpine's secdb and GitHub's minimist advisory.
    let data_dir = temp.path().join("data");
    for file in [
        corpus_path("vulndb/alpine-secdb/v3.4/main.yaml"),
        corpus_path("vulndb/osv/samples/ghsa/GHSA-xvch-5gv4-984h.json"),
    ] {
        common::vulndb_import(
            &palisade_testkit::service_data_dir(&data_dir, "scanner"),
            &file,
        );
    }

    let manifests = boutique_manifests(temp.path(), &registry);
    let password_file = temp.path().join("registry-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[scanner]\ninsecure_registries = [{registry:?}]\n\
             [[scanner.registries]]\nhost = {registry:?}\nusername = \"e2e\"\npassword_file = {:?}\n\
             [graph]\nscan_retry_seconds = 3600\n\
             [[graph.sources]]\ncluster = \"boutique-prod\"\npath = {:?}\n",
            password_file.display().to_string(),
            manifests.display().to_string(),
        ),
    )
    .expect("config");
    let mut server = Server::start_with_config(&data_dir, Some(&config));
    let token = server.admin_token();

    // The inventory's images are asked of the scanner; the frontend's findings reach the graph.
    let deadline = Instant::now() + Duration::from_secs(120);
    let paths = loop {
        let paths = attack_paths(&server, &token).await;
        if !vulnerable_paths(&paths).is_empty() {
            break paths;
        }
        assert!(
            Instant::now() < deadline,
            "no attack path through {frontend}; paths: {:?}\nserver log:\n{}",
            paths.iter().map(|path| &path.title).collect::<Vec<_>>(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let through_frontend = vulnerable_paths(&paths);
    let path = through_frontend[0];
    assert!(
        path.title.contains("Internet exposed") && path.title.contains("vulnerabilities"),
        "{}",
        path.title
    );
    let entry = path.entry.as_ref().and_then(|entry| entry.r#ref.as_ref());
    assert_eq!(entry.map(|entry| entry.kind.as_str()), Some("internet"));
    assert!(
        path.steps.iter().any(|step| step
            .entity
            .as_ref()
            .and_then(|entity| entity.r#ref.as_ref())
            .is_some_and(|reference| reference.cluster_id == "boutique-prod"
                && reference.name.starts_with("frontend"))),
        "the frontend's workload or pod is a step: {path:?}"
    );
    assert!(!path.remediation.is_empty());

    // The image entity carries the counts of its findings; the explorer finds it by CVE.
    let (channel, interceptor) = common::authenticated(&server, &token).await;
    let mut graph = GraphServiceClient::with_interceptor(channel, interceptor);
    let image_id = format!("image/{frontend}");
    let image = graph
        .get_entity(GetEntityRequest {
            id: image_id.clone(),
        })
        .await
        .expect("the image entity")
        .into_inner();
    let properties = &image.entity.expect("entity").properties;
    assert_eq!(
        properties
            .get("critical_vulnerabilities")
            .map(String::as_str),
        Some("1"),
        "minimist's critical advisory: {properties:?}"
    );
    let by_cve = graph
        .query(GraphQueryRequest {
            query: "image where has vulnerability(name = \"GHSA-xvch-5gv4-984h\") include pod"
                .to_string(),
            ..GraphQueryRequest::default()
        })
        .await
        .expect("explorer query")
        .into_inner();
    assert_eq!(by_cve.total, 1);
    assert_eq!(by_cve.entities[0].id, image_id);

    // Images the registry does not have are reported, not retried in a loop.
    assert!(graph_metric(&server, "images_scanned") >= 1);
    assert!(
        graph_metric(&server, "images_failed") >= 1,
        "missing images fail"
    );

    // The CLI asks the same server.
    let listed = common::json_output(&server.cli(&["graph", "paths", "--format", "json"]));
    assert_eq!(
        listed["attack_paths"].as_array().expect("paths").len(),
        paths.len()
    );
    let exposed = common::json_output(&server.cli(&[
        "graph",
        "query",
        "pod where exposed_to_internet and has vulnerability(severity >= critical) include image",
        "--format",
        "json",
    ]));
    assert!(exposed["total"].as_u64().expect("total") >= 1, "{exposed}");
    assert!(
        exposed["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|row| row["entity"]["cluster"] == "boutique-prod")
    );

    // Another tenant sees none of it, whatever it names.
    let other = common::json_output(
        &server.cli(&["admin", "tenant", "create", "other", "--format", "json"]),
    );
    let other_key = other["api_key"].as_str().expect("api_key").to_string();
    assert!(attack_paths(&server, &other_key).await.is_empty());
    let (channel, interceptor) = common::authenticated(&server, &other_key).await;
    let mut other_graph = GraphServiceClient::with_interceptor(channel, interceptor);
    let hidden = other_graph
        .get_entity(GetEntityRequest { id: image_id })
        .await
        .expect_err("another tenant's entity");
    assert_eq!(hidden.code(), tonic::Code::NotFound, "{hidden:?}");
    let counted = other_graph
        .query(GraphQueryRequest {
            query: "pod".to_string(),
            page: Some(PageRequest {
                limit: 10,
                cursor: String::new(),
            }),
            ..GraphQueryRequest::default()
        })
        .await
        .expect("query")
        .into_inner();
    assert_eq!(counted.total, 0);

    // kill -9: the graph, its findings and paths come back from the graph's store.
    server.kill_hard();
    server.restart();
    let after = attack_paths(&server, &token).await;
    assert_eq!(
        vulnerable_paths(&after).len(),
        through_frontend.len(),
        "the paths through the frontend survive a kill -9"
    );
}
