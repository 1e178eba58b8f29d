//! The example configurations in deploy/examples, loaded by the platform's own parser so they
//! stay valid as the configuration changes; the embedded one also runs `palisade up`.

use std::path::{Path, PathBuf};

use palisade_core::config::Config;
use palisade_deploy::tools::deploy_dir;

fn example(name: &str) -> PathBuf {
    deploy_dir().join("examples").join(name)
}

fn load(name: &str) -> Config {
    let path = example(name);
    Config::load(Some(&path)).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn every_example_is_a_valid_configuration() {
    let mut names: Vec<String> = std::fs::read_dir(deploy_dir().join("examples"))
        .expect("deploy/examples")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".toml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "distributed.toml",
            "embedded.toml",
            "graph-sources.toml",
            "private-registries.toml"
        ],
        "a new example needs its own assertions here"
    );
    for name in &names {
        load(name);
    }
}

#[test]
fn the_embedded_example_stays_on_loopback_and_the_distributed_one_listens_for_peers() {
    let embedded = load("embedded.toml");
    assert!(embedded.grpc_listen.ip().is_loopback());
    assert!(embedded.http_listen.ip().is_loopback());
    assert!(embedded.agent_listen.ip().is_loopback());
    let distributed = load("distributed.toml");
    assert!(distributed.grpc_listen.ip().is_unspecified());
    assert!(distributed.http_listen.ip().is_unspecified());
    assert!(distributed.agent_listen.ip().is_unspecified());
    assert_eq!(distributed.data_dir, Path::new("/var/lib/palisade"));
    assert_eq!(
        distributed.enrollment.agent_url.as_deref(),
        Some("https://palisade.example.com:7402")
    );
    assert!(
        distributed
            .tls
            .server_names
            .contains(&"palisade.example.com".to_string())
    );
    let peers = &distributed.peers;
    for url in [&peers.gateway, &peers.search, &peers.graph, &peers.scanner] {
        assert!(
            url.as_deref()
                .is_some_and(|url| url.starts_with("https://")),
            "{peers:?}"
        );
    }
    assert!(peers.service_token_file.is_some() && peers.ca_file.is_some());
}

#[test]
fn the_graph_sources_example_has_live_and_file_sources_for_two_tenants() {
    let config = load("graph-sources.toml");
    let sources = &config.graph.sources;
    assert_eq!(sources.len(), 4);
    let clusters: Vec<(String, String)> = sources
        .iter()
        .map(|source| (source.tenant.clone(), source.cluster_id()))
        .collect();
    assert_eq!(
        clusters,
        [
            ("default".to_string(), "prod-eu".to_string()),
            ("acme".to_string(), "acme-prod".to_string()),
            ("acme".to_string(), "acme-staging".to_string()),
            ("default".to_string(), "lab-cluster".to_string()),
        ]
    );
    assert_eq!(
        sources
            .iter()
            .filter(|source| source.kubeconfig.is_some())
            .count(),
        2
    );
}

#[test]
fn the_registries_example_logs_in_with_password_files() {
    let config = load("private-registries.toml");
    let hosts: Vec<&str> = config
        .scanner
        .registries
        .iter()
        .map(|login| login.host.as_str())
        .collect();
    assert_eq!(
        hosts,
        ["registry.example.com", "registry.lab.internal:5000"]
    );
    assert!(
        config
            .scanner
            .registries
            .iter()
            .all(|login| login.password_file.is_absolute())
    );
    assert_eq!(
        config.scanner.insecure_registries,
        ["registry.lab.internal:5000"]
    );
}

#[test]
fn palisade_up_runs_on_the_embedded_example() {
    let directory = tempfile::tempdir().expect("tempdir");
    // The harness puts data_dir and the listeners on its own (flags beat the file).
    let mut server = palisade_testkit::Server::start_with_config(
        &directory.path().join("data"),
        Some(&example("embedded.toml")),
    );
    let status = server.cli(&["status", "--format", "json"]);
    assert!(
        status.status.success(),
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status is JSON");
    assert!(report.is_object() || report.is_array(), "{report}");
    assert!(server.terminate().success(), "{}", server.stderr());
}
