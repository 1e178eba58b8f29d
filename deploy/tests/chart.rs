//! The Helm chart rendered by the real helm for each set of values in helm/palisade/ci (and
//! the defaults), validated against the Kubernetes schemas of the oldest and newest supported
//! versions, checked for the invariants; its configuration parsed and run.
//! Needs scripts/install-deploy-tools.sh; fails, naming it, when the tools are missing.

use std::path::PathBuf;

use palisade_core::config::Config;
use palisade_deploy::invariants::{AGENT_CAPABILITIES, Expectations, check_all};
use palisade_deploy::tools::{chart_dir, deploy_dir};
use palisade_deploy::{Manifest, RenderRequest};

mod common;

use common::{
    CASES, KUBE_VERSIONS, NAMESPACE, RELEASE, container_args, names_of, render_case, tools,
    values_files,
};

fn expectations(case: &str) -> Expectations {
    match case {
        "custom" => Expectations {
            extra_agent_capabilities: vec!["SYS_RESOURCE".to_string()],
            containerd_socket: Some("/run/k3s/containerd/containerd.sock".to_string()),
        },
        _ => Expectations {
            extra_agent_capabilities: Vec::new(),
            containerd_socket: Some("/run/containerd/containerd.sock".to_string()),
        },
    }
}

#[test]
fn every_values_set_validates_against_the_kubernetes_schemas_and_keeps_the_invariants() {
    let tools = tools();
    for case in CASES {
        for kube_version in KUBE_VERSIONS {
            let manifest = render_case(&tools, case, kube_version);
            assert!(
                manifest.objects().len() >= 5,
                "values set {case} rendered only {} objects",
                manifest.objects().len()
            );
            tools
                .validate(&manifest, kube_version)
                .unwrap_or_else(|error| panic!("values set {case}: {error}"));
            let violations = check_all(&manifest, &expectations(case));
            assert!(
                violations.is_empty(),
                "values set {case}:\n{}",
                violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[test]
fn the_schema_validation_refuses_an_unknown_field() {
    let tools = tools();
    let manifest = render_case(&tools, "default", KUBE_VERSIONS[0]);
    let mut objects = manifest.objects().to_vec();
    let agent = objects
        .iter_mut()
        .find(|object| object["kind"] == "DaemonSet")
        .expect("the agent");
    agent["spec"]["template"]["spec"]["containers"][0]["securityContext"]["bogusField"] =
        serde_json::json!(true);
    let broken = Manifest::from_objects(objects).expect("serialisable");
    let error = tools
        .validate(&broken, KUBE_VERSIONS[0])
        .expect_err("an unknown field must not validate");
    assert_eq!(error.code(), "deploy_schema_invalid");
    assert!(error.to_string().contains("bogusField"), "{error}");
}

#[test]
fn helm_lint_strict_passes_for_every_values_set() {
    let tools = tools();
    for case in CASES {
        tools
            .lint(&values_files(case))
            .unwrap_or_else(|error| panic!("values set {case}: {error}"));
    }
}

#[test]
fn the_default_release_runs_palisade_up_in_one_stateful_set_beside_agents_and_the_audit_watcher() {
    let manifest = render_case(&tools(), "default", KUBE_VERSIONS[1]);
    assert_eq!(names_of(&manifest, "StatefulSet"), ["sec-palisade-server"]);
    assert_eq!(names_of(&manifest, "DaemonSet"), ["sec-palisade-agent"]);
    assert_eq!(
        names_of(&manifest, "Deployment"),
        ["sec-palisade-audit-watcher"]
    );
    // One server replica: a budget of one would block every node drain.
    assert!(names_of(&manifest, "PodDisruptionBudget").is_empty());
    let server = manifest
        .find("StatefulSet", "sec-palisade-server")
        .expect("server");
    assert_eq!(server["spec"]["replicas"], 1);
    assert_eq!(
        container_args(server),
        ["up", "--config", "/etc/palisade/palisade.toml"]
    );
    let agent = manifest
        .find("DaemonSet", "sec-palisade-agent")
        .expect("agent");
    let agent_args = container_args(agent);
    assert!(
        agent_args.contains(
            &"--server=https://sec-palisade-gateway.palisade-system.svc:7400".to_string()
        ),
        "{agent_args:?}"
    );
    let agent_container = &agent["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        agent_container["securityContext"]["capabilities"]["add"],
        serde_json::json!(AGENT_CAPABILITIES)
    );
    let token = agent_container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|variable| variable["name"] == "PALISADE_AGENT_TOKEN")
        .expect("the agent's token comes from a Secret");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"],
        "sec-palisade-agent-token"
    );
    let gateway = manifest
        .find("Service", "sec-palisade-gateway")
        .expect("gateway Service");
    assert_eq!(gateway["spec"]["selector"]["palisade.dev/gateway"], "true");
    assert_eq!(
        server["spec"]["template"]["metadata"]["labels"]["palisade.dev/gateway"],
        "true"
    );
}

#[test]
fn enrolled_agents_mount_the_credentials_and_the_watcher_verifies_the_gateway_ca() {
    let manifest = render_case(&tools(), "enrollment", KUBE_VERSIONS[1]);
    assert!(names_of(&manifest, "StatefulSet").is_empty());
    assert!(
        names_of(&manifest, "ConfigMap")
            .iter()
            .all(|name| !name.ends_with("-config"))
    );
    let agent = manifest
        .find("DaemonSet", "sec-palisade-agent")
        .expect("the agent");
    let args = container_args(agent);
    assert!(
        args.contains(&"--credentials=/etc/palisade/credentials".to_string()),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|arg| arg.starts_with("--server")),
        "{args:?}"
    );
    let pod = &agent["spec"]["template"]["spec"];
    assert!(!pod.to_string().contains("PALISADE_AGENT_TOKEN"));
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|volume| volume["name"] == "credentials")
        .expect("the credentials' volume");
    assert_eq!(volume["secret"]["secretName"], "palisade-credentials");
    let watcher = manifest
        .find("Deployment", "sec-palisade-audit-watcher")
        .expect("the audit watcher");
    let args = container_args(watcher);
    assert!(
        args.contains(&"--server=https://palisade.example.com:7400".to_string())
            && args.contains(&"--ca-file=/etc/palisade/gateway-ca/ca.pem".to_string()),
        "{args:?}"
    );
    let token = watcher["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|variable| variable["name"] == "PALISADE_TOKEN")
        .expect("the watcher's key comes from a Secret");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["name"],
        "palisade-audit-key"
    );
    let agent_policy = manifest
        .find("NetworkPolicy", "sec-palisade-agent")
        .expect("the agent's policy");
    assert_eq!(
        agent_policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"],
        "203.0.113.10/32"
    );
}

/// The configuration file every control-plane pod reads.
fn rendered_config(manifest: &Manifest) -> String {
    manifest
        .find("ConfigMap", "sec-palisade-config")
        .expect("the configuration ConfigMap")["data"]["palisade.toml"]
        .as_str()
        .expect("palisade.toml")
        .to_string()
}

#[test]
fn the_rendered_configuration_is_accepted_by_the_platform_parser_and_matches_the_ports() {
    let tools = tools();
    // The distributed mode writes one file per service: tests/distributed.rs.
    for case in ["default", "custom", "control-plane-only"] {
        let manifest = render_case(&tools, case, KUBE_VERSIONS[1]);
        let text = rendered_config(&manifest);
        let config = Config::from_toml(&text)
            .unwrap_or_else(|error| panic!("values set {case}: {error}\n{text}"));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/palisade"));
        assert!(config.grpc_listen.ip().is_unspecified(), "{case}");
        for workload in manifest.workloads() {
            let labels = workload.pod_labels();
            if labels
                .get("palisade.dev/plane")
                .is_none_or(|plane| plane != "control")
            {
                continue;
            }
            let ports = &workload.pod_spec()["containers"][0]["ports"];
            assert_eq!(
                ports[0]["containerPort"],
                config.grpc_listen.port(),
                "{case}"
            );
            assert_eq!(
                ports[1]["containerPort"],
                config.http_listen.port(),
                "{case}"
            );
            assert_eq!(
                ports[2]["containerPort"],
                config.agent_listen.port(),
                "{case}"
            );
        }
        // Clients reach the gateway by its Service name: the certificate must carry it, and
        // bundles must send agents to its agent port.
        assert!(
            config
                .tls
                .server_names
                .contains(&"sec-palisade-gateway.palisade-system.svc".to_string()),
            "{case}: {:?}",
            config.tls.server_names
        );
        assert_eq!(
            config.enrollment.agent_url.as_deref(),
            Some("https://sec-palisade-gateway.palisade-system.svc:7402"),
            "{case}"
        );
        if case == "custom" {
            assert_eq!(config.scanner.registries.len(), 1);
            assert_eq!(config.graph.sources.len(), 2);
            assert_eq!(config.search.searcher_threads, 4);
        }
    }
}

#[test]
fn palisade_up_starts_on_the_rendered_default_configuration() {
    let manifest = render_case(&tools(), "default", KUBE_VERSIONS[1]);
    let directory = tempfile::tempdir().expect("tempdir");
    let config = directory.path().join("palisade.toml");
    std::fs::write(&config, rendered_config(&manifest)).expect("config written");
    // The test harness replaces data_dir and the listeners with its own (flags beat the file).
    let mut server =
        palisade_testkit::Server::start_with_config(&directory.path().join("data"), Some(&config));
    let status = server.cli(&["status", "--format", "json"]);
    assert!(
        status.status.success(),
        "status: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(server.terminate().success(), "{}", server.stderr());
}

#[test]
fn bad_values_are_refused_naming_the_value() {
    let tools = tools();
    // The chart's values.schema.json names values by JSON pointer; its templates by key.
    let refusals = [
        (vec![("agent.sensor", "kprobe")], "/agent/sensor"),
        (vec![("ports.grpc", "http")], "/ports/grpc"),
        (vec![("distributed", "yes")], "/distributed"),
        (vec![("image.tagg", "1.0")], "'tagg' not allowed"),
        (
            vec![("agent.resources.limits.memory", "1GB")],
            "/agent/resources/limits/memory",
        ),
        (
            vec![("controlPlane.enabled", "false")],
            "networkPolicy.gatewayEgress",
        ),
        (
            vec![
                ("controlPlane.enabled", "false"),
                ("networkPolicy.enabled", "false"),
            ],
            "no gateway to report to",
        ),
        (
            vec![("agent.rules.files[0]", "x.yaml")],
            "agent.rules.configMap",
        ),
    ];
    for (set, named) in refusals {
        let error = tools
            .render(&RenderRequest {
                release: RELEASE,
                namespace: NAMESPACE,
                kube_version: KUBE_VERSIONS[1],
                values_files: Vec::new(),
                set: set.clone(),
            })
            .expect_err("bad values must not render");
        assert_eq!(error.code(), "deploy_tool_failed", "{set:?}");
        assert!(error.to_string().contains(named), "{set:?}: {error}");
    }
}

#[test]
fn the_chart_carries_the_audit_policy_of_deploy_audit() {
    let original = std::fs::read_to_string(deploy_dir().join("audit/audit-policy.yaml"))
        .expect("deploy/audit/audit-policy.yaml");
    let copy = std::fs::read_to_string(chart_dir().join("files/audit-policy.yaml"))
        .expect("the chart's copy");
    assert_eq!(
        original, copy,
        "copy deploy/audit/audit-policy.yaml into the chart's files/"
    );
    let manifest = render_case(&tools(), "default", KUBE_VERSIONS[1]);
    let files = manifest
        .find("ConfigMap", "sec-palisade-audit-apiserver-files")
        .expect("the API server's files");
    assert_eq!(files["data"]["audit-policy.yaml"], original);
    let kubeconfig = files["data"]["webhook-kubeconfig.yaml"]
        .as_str()
        .expect("webhook kubeconfig");
    assert!(
        kubeconfig.contains("server: http://sec-palisade-audit.palisade-system.svc:9765/k8s-audit"),
        "{kubeconfig}"
    );
}
