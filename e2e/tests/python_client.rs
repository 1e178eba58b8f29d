//! A client the project did not write: Python's grpcio checks health, lists the services through
//! reflection and searches with descriptors obtained from the server alone. This is the proof
//! that any language's gRPC tooling can integrate.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{wait_for_total, write_falco_alerts};
use palisade_testkit::Server;

/// The Python interpreter with the clients installed: PALISADE_PYTHON (make test points it at
/// a private venv), else python3.
fn python() -> String {
    std::env::var("PALISADE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/reflect_and_search.py")
}

/// Fails loudly unless the interpreter can run `imports` (the `package` named in the error).
fn require_modules(imports: &str, package: &str) {
    let probe = Command::new(python())
        .args(["-c", imports])
        .output()
        .unwrap_or_else(|error| panic!("{} must be installed: {error}", python()));
    assert!(
        probe.status.success(),
        "{} lacks {package}: pip install -r e2e/python/requirements.txt (make test does)\n{}",
        python(),
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_checks_health_lists_services_and_searches_through_reflection() {
    require_modules("import grpc, grpc_health, grpc_reflection", "grpcio");

    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let alerts = temp.path().join("alerts.jsonl");
    write_falco_alerts(&alerts, 40, 0);
    let import = server.cli(&["alerts", "import", alerts.to_str().expect("path")]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    wait_for_total(&server, 40).await;

    let target = server.grpc_url.trim_start_matches("https://").to_string();
    let output = Command::new(python())
        .arg(script())
        .arg(&target)
        .arg(server.admin_token())
        .arg(server.ca_file())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python client failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    assert_eq!(report["health"], "SERVING");
    assert_eq!(report["search_health"], "SERVING");
    let services: Vec<&str> = report["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s.as_str().expect("name"))
        .collect();
    // Exactly the services `palisade up` serves.
    let palisade_services: Vec<&str> = services
        .iter()
        .copied()
        .filter(|name| !name.starts_with("grpc.reflection."))
        .collect();
    assert_eq!(
        palisade_services,
        [
            "grpc.health.v1.Health",
            "palisade.v1.AdminService",
            "palisade.v1.AgentService",
            "palisade.v1.AlertService",
            "palisade.v1.GraphService",
            "palisade.v1.NotifyService",
            "palisade.v1.ScannerService",
            "palisade.v1.SearchService",
        ]
    );
    assert_eq!(report["search_total"], 40);
    assert!(
        report["first_rule"]
            .as_str()
            .is_some_and(|rule| !rule.is_empty())
    );
    assert_eq!(report["wrong_token"], "UNAUTHENTICATED");
}

/// The README's integration example: a Python client generated from proto/ with grpcio-tools
/// lists the newest alerts, reads one, searches with a filter and facets, and asks the graph
/// (fed by the badpods manifests) for containers that escape to their node and attack paths,
/// with an API key over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_generated_from_the_protos_runs_a_typical_integration() {
    require_modules("import grpc, grpc_tools", "grpcio-tools");
    let temp = tempfile::tempdir().expect("temp");
    let generated = temp.path().join("gen");
    std::fs::create_dir_all(&generated).expect("gen dir");
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let protos: Vec<PathBuf> = std::fs::read_dir(proto_root.join("palisade/v1"))
        .expect("protos")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    let protoc = Command::new(python())
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&proto_root)
        .arg(format!("--python_out={}", generated.display()))
        .arg(format!("--grpc_python_out={}", generated.display()))
        .args(&protos)
        .output()
        .expect("protoc runs");
    assert!(
        protoc.status.success(),
        "{}",
        String::from_utf8_lossy(&protoc.stderr)
    );

    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[graph]\nscan_images = false\n\n[[graph.sources]]\ncluster = \"badpods\"\npath = {:?}\n",
            palisade_testkit::corpus_path("k8s/badpods/manifests/priv")
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let alerts = temp.path().join("alerts.jsonl");
    write_falco_alerts(&alerts, 40, 0);
    let import = server.cli(&["alerts", "import", alerts.to_str().expect("path")]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    wait_for_total(&server, 40).await;
    let key = common::json_output(&server.cli(&[
        "admin",
        "key",
        "create",
        "python-integration",
        "--role",
        "read-only",
        "--format",
        "json",
    ]));

    let output = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/integration.py"))
        .arg(server.grpc_url.trim_start_matches("https://"))
        .arg(key["api_key"].as_str().expect("api key"))
        .arg(server.ca_file())
        .env("PYTHONPATH", &generated)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "integration failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    assert_eq!(report["total"], 40, "{report}");
    assert_eq!(report["newest"].as_array().expect("newest").len(), 5);
    assert!(
        report["whole_alert_rule"]
            .as_str()
            .is_some_and(|rule| rule.starts_with("Terminal") || rule.starts_with("Read")),
        "{report}"
    );
    // proc.name, k8s.ns.name, test.seq and the null container.id of the imported line
    assert_eq!(report["whole_alert_fields"], 4, "{report}");
    assert_eq!(report["bash_total"], 40, "{report}");
    assert_eq!(report["facets"]["rule"], 2, "{report}");
    assert_eq!(report["facets"]["priority"], 4, "{report}");
    assert!(
        !report["escaping_containers"]
            .as_array()
            .expect("containers")
            .is_empty(),
        "{report}"
    );
    assert!(
        report["attack_paths"].as_u64().expect("paths") > 0,
        "{report}"
    );
    assert!(
        report["first_path_steps"].as_u64().expect("steps") > 0,
        "{report}"
    );
}
