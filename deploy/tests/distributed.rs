//! The distributed mode as the chart renders it (values set ci/distributed-values.yaml, and
//! variants of its TLS): one StatefulSet per service, the gateway holding the state; each
//! service's configuration file parsed by the platform's parser, with [peers] and the files it
//! names mounted from the Secrets the chart generates; the internal certificate checked with
//! rustls for every peer URL; the network policies evaluated for every pair of components.
//! Needs scripts/install-deploy-tools.sh; fails, naming it, when the tools are missing.

// Shared with chart.rs, which uses the helpers this file does not.
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use common::{KUBE_VERSIONS, NAMESPACE, RELEASE, container_args, names_of, render_case, tools};
use palisade_core::config::{Config, TlsMode};
use palisade_deploy::network::{allows, allows_egress_anywhere};
use palisade_deploy::{DeployError, Manifest, RenderRequest, Workload};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::Value;

const SERVICES: [&str; 4] = ["gateway", "search", "graph", "scanner"];
const CONFIG_PATH: &str = "/etc/palisade/palisade.toml";

fn distributed() -> Manifest {
    render_case(&tools(), "distributed", KUBE_VERSIONS[1])
}

/// The distributed values with further values files (written here) and `--set` pairs.
fn render_variant(extra_values: &str, set: Vec<(&str, &str)>) -> Result<Manifest, DeployError> {
    let directory = tempfile::tempdir().expect("tempdir");
    let extra = directory.path().join("extra-values.yaml");
    std::fs::write(&extra, extra_values).expect("values written");
    let mut values_files = common::values_files("distributed");
    values_files.push(extra);
    tools().render(&RenderRequest {
        release: RELEASE,
        namespace: NAMESPACE,
        kube_version: KUBE_VERSIONS[1],
        values_files,
        set,
    })
}

fn workload<'a>(manifest: &'a Manifest, service: &str) -> Workload<'a> {
    manifest
        .workloads()
        .into_iter()
        .find(|workload| workload.name == format!("{RELEASE}-palisade-{service}"))
        .unwrap_or_else(|| panic!("no workload for {service}"))
}

fn secret_data(manifest: &Manifest, name: &str, key: &str) -> Vec<u8> {
    let secret = manifest
        .find("Secret", name)
        .unwrap_or_else(|| panic!("Secret {name} is rendered"));
    let encoded = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("Secret {name} has no key {key}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 data")
}

/// The file at `path` in the container, if a volume mounts it: (Secret or ConfigMap name, key).
fn mounted_file(workload: &Workload<'_>, path: &Path) -> Option<(String, String)> {
    let container = &workload.pod_spec()["containers"][0];
    container["volumeMounts"]
        .as_array()?
        .iter()
        .find_map(|mount| {
            let mount_path = Path::new(mount["mountPath"].as_str()?);
            let key = match mount["subPath"].as_str() {
                Some(sub_path) if mount_path == path => sub_path.to_string(),
                Some(_) => return None,
                None => path.strip_prefix(mount_path).ok()?.to_str()?.to_string(),
            };
            let volume = workload.pod_spec()["volumes"]
                .as_array()?
                .iter()
                .find(|volume| volume["name"] == mount["name"])?;
            let source = volume["secret"]["secretName"]
                .as_str()
                .or_else(|| volume["configMap"]["name"].as_str())?;
            Some((source.to_string(), key))
        })
}

/// Each service's configuration file, as its pod mounts it, parsed.
fn configurations(manifest: &Manifest) -> BTreeMap<&'static str, Config> {
    let config_map = manifest
        .find("ConfigMap", &format!("{RELEASE}-palisade-config"))
        .expect("the configuration ConfigMap");
    let mut keys: Vec<&String> = config_map["data"]
        .as_object()
        .expect("data")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["gateway.toml", "graph.toml", "scanner.toml", "search.toml"]
    );
    SERVICES
        .iter()
        .map(|service| {
            let (source, key) = mounted_file(&workload(manifest, service), Path::new(CONFIG_PATH))
                .unwrap_or_else(|| panic!("{service} mounts no {CONFIG_PATH}"));
            assert_eq!(source, format!("{RELEASE}-palisade-config"), "{service}");
            assert_eq!(key, format!("{service}.toml"), "{service}");
            let text = config_map["data"][&key].as_str().expect("a file");
            let config = Config::from_toml(text)
                .unwrap_or_else(|error| panic!("{service}.toml: {error}\n{text}"));
            (*service, config)
        })
        .collect()
}

fn peer_url(service: &str, scheme: &str) -> String {
    format!("{scheme}://{RELEASE}-palisade-{service}.{NAMESPACE}.svc:7400")
}

#[test]
fn the_gateway_is_one_stateful_replica_with_a_volume_and_each_service_has_its_own() {
    let manifest = distributed();
    assert_eq!(
        names_of(&manifest, "StatefulSet"),
        [
            "sec-palisade-gateway",
            "sec-palisade-graph",
            "sec-palisade-scanner",
            "sec-palisade-search"
        ]
    );
    // One replica: a budget would only block node drains.
    assert!(names_of(&manifest, "PodDisruptionBudget").is_empty());
    for service in SERVICES {
        let workload = workload(&manifest, service);
        assert_eq!(workload.kind, "StatefulSet", "{service}");
        assert_eq!(workload.object["spec"]["replicas"], 1, "{service}");
        assert_eq!(
            container_args(workload.object),
            ["serve", service, "--config", CONFIG_PATH]
        );
        let claim = &workload.object["spec"]["volumeClaimTemplates"][0];
        assert_eq!(claim["metadata"]["name"], "data", "{service}");
        let data_mount = workload.pod_spec()["containers"][0]["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|mount| mount["name"] == "data")
            .unwrap_or_else(|| panic!("{service} mounts its claim"));
        assert_eq!(data_mount["mountPath"], "/var/lib/palisade");
        let ports: Vec<&str> = workload.pod_spec()["containers"][0]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .filter_map(|port| port["name"].as_str())
            .collect();
        let expected_ports: &[&str] = if service == "gateway" {
            &["grpc", "http", "agent"]
        } else {
            &["grpc", "http"]
        };
        assert_eq!(ports, expected_ports, "{service}");
    }
    let gateway = workload(&manifest, "gateway");
    let claim = &gateway.object["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "50Gi");
    assert_eq!(claim["storageClassName"], "fast-ssd");
}

#[test]
fn exactly_one_audit_watcher_runs() {
    for manifest in [
        distributed(),
        render_case(&tools(), "default", KUBE_VERSIONS[1]),
    ] {
        let watchers: Vec<String> = manifest
            .workloads()
            .iter()
            .filter(|workload| {
                let args = container_args(workload.object);
                args.first().is_some_and(|command| command == "audit")
                    || args.get(..2) == Some(&["serve".to_string(), "audit".to_string()][..])
            })
            .map(Workload::id)
            .collect();
        assert_eq!(watchers, ["Deployment/sec-palisade-audit-watcher"]);
    }
}

#[test]
fn every_service_reads_its_own_file_with_peers_and_the_files_it_names_are_mounted() {
    let manifest = distributed();
    let configurations = configurations(&manifest);
    for (service, config) in &configurations {
        let peers = &config.peers;
        assert_eq!(
            peers.gateway,
            Some(peer_url("gateway", "https")),
            "{service}"
        );
        assert_eq!(peers.search, Some(peer_url("search", "https")), "{service}");
        assert_eq!(peers.graph, Some(peer_url("graph", "https")), "{service}");
        assert_eq!(
            peers.scanner,
            Some(peer_url("scanner", "https")),
            "{service}"
        );
        assert_eq!(config.tls.mode, TlsMode::Files, "{service}");
        assert_eq!(config.log.level, "info,palisade_gateway=debug", "{service}");
        let workload = workload(&manifest, service);
        let files: [(&str, &Option<PathBuf>, &str, &str); 4] = [
            (
                "peers.service_token_file",
                &peers.service_token_file,
                "sec-palisade-service-token",
                "token",
            ),
            (
                "peers.ca_file",
                &peers.ca_file,
                "sec-palisade-internal-tls",
                "ca-bundle.crt",
            ),
            (
                "tls.cert_file",
                &config.tls.cert_file,
                "sec-palisade-internal-tls",
                "tls.crt",
            ),
            (
                "tls.key_file",
                &config.tls.key_file,
                "sec-palisade-internal-tls",
                "tls.key",
            ),
        ];
        for (key, path, secret, secret_key) in files {
            let path = path
                .as_ref()
                .unwrap_or_else(|| panic!("{service}: {key} is set"));
            let mounted = mounted_file(&workload, path)
                .unwrap_or_else(|| panic!("{service}: {key} {} is not mounted", path.display()));
            assert_eq!(
                mounted,
                (secret.to_string(), secret_key.to_string()),
                "{service}: {key}"
            );
            assert!(
                !secret_data(&manifest, secret, secret_key).is_empty(),
                "{secret}/{secret_key}"
            );
        }
        // Only the gateway opens the agent listener on the pod's network.
        assert_eq!(
            config.agent_listen.ip().is_unspecified(),
            *service == "gateway",
            "{service}: agent_listen {}",
            config.agent_listen
        );
    }
    let token = secret_data(&manifest, "sec-palisade-service-token", "token");
    let token = String::from_utf8(token).expect("a text token");
    assert!(
        token.len() >= 32 && !token.contains('\n') && token.trim() == token,
        "{token:?}"
    );
}

fn certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

#[test]
fn the_internal_certificate_verifies_for_every_peer_and_rustls_loads_its_key() {
    let manifest = distributed();
    let secret = "sec-palisade-internal-tls";
    let chain = certificates(&secret_data(&manifest, secret, "tls.crt"));
    let key = PrivateKeyDer::from_pem_slice(&secret_data(&manifest, secret, "tls.key"))
        .expect("a PEM private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(&secret_data(&manifest, secret, "ca-bundle.crt")) {
        roots.add(ca).expect("a CA certificate");
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("a verifier");
    let verifies = |name: &str| {
        let server_name = ServerName::try_from(name.to_string()).expect("a server name");
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &server_name, &[], UnixTime::now())
            .map(|_| ())
    };
    let configurations = configurations(&manifest);
    let peers = &configurations["search"].peers;
    for url in [&peers.gateway, &peers.search, &peers.graph, &peers.scanner] {
        let url = url.as_ref().expect("a peer URL");
        let host = url
            .trim_start_matches("https://")
            .rsplit_once(':')
            .expect("host:port")
            .0;
        verifies(host).unwrap_or_else(|error| panic!("{host}: {error}"));
    }
    for name in [
        "sec-palisade-scanner",
        "sec-palisade-graph.palisade-system.svc.cluster.local",
        // tls.serverNames: the gateway serves this certificate.
        "palisade.example.com",
        "203.0.113.7",
    ] {
        verifies(name).unwrap_or_else(|error| panic!("{name}: {error}"));
    }
    verifies("sec-palisade-other.palisade-system.svc")
        .expect_err("a name the certificate does not carry");
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("rustls serves the certificate with its key");
}

fn labels_of(manifest: &Manifest, component: &str) -> serde_json::Map<String, Value> {
    manifest
        .workloads()
        .into_iter()
        .find(|workload| workload.component() == component)
        .unwrap_or_else(|| panic!("no {component} workload"))
        .pod_labels()
}

#[test]
fn only_the_gateway_calls_the_services_and_the_graph_the_scanner() {
    let manifest = distributed();
    let components = [
        "gateway",
        "search",
        "graph",
        "scanner",
        "agent",
        "audit-watcher",
    ];
    let labels: BTreeMap<&str, _> = components
        .iter()
        .map(|component| (*component, labels_of(&manifest, component)))
        .collect();
    for target in ["search", "graph", "scanner"] {
        for source in components {
            let expected = source == "gateway" || (target == "scanner" && source == "graph");
            assert_eq!(
                allows(&manifest, &labels[source], &labels[target], 7400),
                expected,
                "{source} -> {target} gRPC"
            );
            // HTTP (metrics) only for networkPolicy.metricsFrom, none of the release's pods.
            assert!(
                !allows(&manifest, &labels[source], &labels[target], 7401),
                "{source} -> {target} HTTP"
            );
            assert!(
                !allows(&manifest, &labels[source], &labels[target], 7402),
                "{source} -> {target} agent port"
            );
        }
        assert!(
            allows(&manifest, &labels[target], &labels["gateway"], 7400),
            "{target} -> gateway gRPC"
        );
    }
    for component in components {
        assert_eq!(
            allows_egress_anywhere(&manifest, &labels[component], 6443),
            component == "graph" || component == "scanner",
            "{component} -> registries and API servers"
        );
        // alert notifications (Splunk HEC's port) leave from the gateway only
        assert_eq!(
            allows_egress_anywhere(&manifest, &labels[component], 8088),
            component == "gateway",
            "{component} -> notification receivers"
        );
    }
    assert!(allows(
        &manifest,
        &labels["agent"],
        &labels["gateway"],
        7402
    ));
}

#[test]
fn a_gateway_with_the_users_certificate_is_trusted_through_tls_ca_certificate() {
    let own_ca = String::from_utf8(secret_data(
        &distributed(),
        "sec-palisade-internal-tls",
        "ca.crt",
    ))
    .expect("PEM");
    let values = format!(
        "tls:\n  mode: files\n  secretName: palisade-tls\n  caCertificate: |\n{}\n",
        own_ca
            .lines()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let manifest = render_variant(&values, Vec::new()).expect("renders");
    tools()
        .validate(&manifest, KUBE_VERSIONS[0])
        .unwrap_or_else(|error| panic!("{error}"));
    let configurations = configurations(&manifest);
    let gateway = &configurations["gateway"];
    assert_eq!(gateway.tls.mode, TlsMode::Files);
    let cert_file = gateway.tls.cert_file.as_ref().expect("cert_file");
    assert_eq!(
        mounted_file(&workload(&manifest, "gateway"), cert_file),
        Some(("palisade-tls".to_string(), "tls.crt".to_string()))
    );
    assert_eq!(
        configurations["search"].tls.cert_file,
        Some(PathBuf::from("/etc/palisade/internal-tls/tls.crt"))
    );
    let bundle = secret_data(&manifest, "sec-palisade-internal-tls", "ca-bundle.crt");
    let bundle = certificates(&bundle);
    assert_eq!(bundle.len(), 2, "the internal CA and tls.caCertificate");
    assert!(bundle.contains(&certificates(own_ca.as_bytes())[0]));

    let error = render_variant(
        "tls:\n  mode: files\n  secretName: palisade-tls\n",
        Vec::new(),
    )
    .expect_err("no CA for the gateway's certificate");
    assert!(error.to_string().contains("tls.caCertificate"), "{error}");
}

#[test]
fn a_plain_text_gateway_is_dialled_over_http_and_the_services_keep_tls() {
    let manifest = render_variant("tls:\n  mode: \"off\"\n", Vec::new()).expect("renders");
    let configurations = configurations(&manifest);
    for (service, config) in &configurations {
        assert_eq!(
            config.peers.gateway,
            Some(peer_url("gateway", "http")),
            "{service}"
        );
        assert_eq!(
            config.peers.search,
            Some(peer_url("search", "https")),
            "{service}"
        );
        let expected = if *service == "gateway" {
            TlsMode::Off
        } else {
            TlsMode::Files
        };
        assert_eq!(config.tls.mode, expected, "{service}");
        let workload = workload(&manifest, service);
        let probe_scheme =
            &workload.pod_spec()["containers"][0]["readinessProbe"]["httpGet"]["scheme"];
        let expected_scheme = if *service == "gateway" {
            "HTTP"
        } else {
            "HTTPS"
        };
        assert_eq!(probe_scheme, expected_scheme, "{service}");
    }
}

#[test]
fn peers_written_by_the_user_are_refused_naming_where() {
    for (values, named) in [
        (
            "distributedConfig: |\n  [peers]\n  search = \"https://x:1\"\n",
            "distributedConfig: [peers]",
        ),
        (
            "config: |\n  [peers]\n  search = \"https://x:1\"\n",
            "config: [peers]",
        ),
    ] {
        let error = render_variant(values, Vec::new()).expect_err("[peers] is the chart's");
        assert!(error.to_string().contains(named), "{values}: {error}");
    }
    let error = render_variant("", vec![("services.search.replicas", "2")])
        .expect_err("one replica per data directory");
    assert!(
        error.to_string().contains("'replicas' not allowed"),
        "{error}"
    );
}
