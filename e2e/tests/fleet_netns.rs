//! A fleet on one machine: three "clusters", each a network namespace of its own with a node
//! agent and an audit watcher, report over veth links to one control plane in a fourth
//! namespace. Two clusters
//! belong to tenant acme, one to globex; each enrolled with its own one-time token, and each
//! agent and watcher streams with a certificate of its own over mutual TLS.
//!
//! Alerts of each cluster arrive under the right tenant and cluster. Then one cluster's link
//! is cut while every cluster keeps raising alerts: the others deliver, the cut one keeps its
//! alerts spooled, and once the link is back every alert is there exactly once.
//!
//! Needs root (network namespaces, eBPF) and iproute2 and util-linux's nsenter; CI runs as
//! root. Without it the test fails and says
//! so. The eBPF sensor sees the whole kernel, so each agent runs only a rule for files of its
//! own cluster's directory: an alert can only come from the cluster it names.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use palisade_testkit::{ChildGuard, Server, ServerOptions, palisade_binary};
use tokio::time::Instant;

/// Marker-file reads per cluster per round; below the agent's per-window limit (20).
const READS: usize = 4;
/// The control plane's fixed ports (it has its namespace to itself).
const GRPC_PORT: u16 = 7400;
const AGENT_PORT: u16 = 7402;

/// Runs a command that must succeed.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} {args:?}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Network namespaces and links, removed when dropped.
struct Topology {
    control_plane: String,
    clusters: Vec<String>,
}

impl Topology {
    /// The control plane's namespace and one per cluster, cluster `i` linked to it by a veth
    /// pair: 10.77.i.2 on the cluster's side, 10.77.i.1 on the control plane's.
    fn create(count: usize) -> Topology {
        let tag = std::process::id() % 100_000;
        let topology = Topology {
            control_plane: format!("pcp{tag}"),
            clusters: (1..=count)
                .map(|index| format!("pc{index}x{tag}"))
                .collect(),
        };
        run("ip", &["netns", "add", &topology.control_plane]);
        topology.exec_ok(&topology.control_plane, &["ip", "link", "set", "lo", "up"]);
        for (index, namespace) in topology.clusters.iter().enumerate() {
            let number = index + 1;
            let cluster_side = format!("vc{number}x{tag}");
            let plane_side = format!("vp{number}x{tag}");
            run("ip", &["netns", "add", namespace]);
            run(
                "ip",
                &[
                    "link",
                    "add",
                    &cluster_side,
                    "netns",
                    namespace,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &plane_side,
                    "netns",
                    &topology.control_plane,
                ],
            );
            topology.exec_ok(namespace, &["ip", "link", "set", "lo", "up"]);
            topology.exec_ok(
                namespace,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.77.{number}.2/24"),
                    "dev",
                    &cluster_side,
                ],
            );
            topology.exec_ok(namespace, &["ip", "link", "set", &cluster_side, "up"]);
            topology.exec_ok(
                &topology.control_plane,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.77.{number}.1/24"),
                    "dev",
                    &plane_side,
                ],
            );
            topology.exec_ok(
                &topology.control_plane,
                &["ip", "link", "set", &plane_side, "up"],
            );
        }
        topology
    }

    fn exec_ok(&self, namespace: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", namespace];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Takes cluster `number`'s link down or up, on the control plane's side.
    fn set_link(&self, number: usize, up: bool) {
        let tag = std::process::id() % 100_000;
        let state = if up { "up" } else { "down" };
        self.exec_ok(
            &self.control_plane,
            &["ip", "link", "set", &format!("vp{number}x{tag}"), state],
        );
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for namespace in self.clusters.iter().chain([&self.control_plane]) {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

/// One cluster of the fleet.
struct Cluster {
    number: usize,
    id: String,
    namespace: String,
    directory: PathBuf,
}

impl Cluster {
    fn markers(&self) -> PathBuf {
        self.directory.join("markers")
    }

    /// A rule that fires only on reads of this cluster's marker files.
    fn rules(&self) -> PathBuf {
        let path = self.directory.join("rules.yaml");
        std::fs::write(
            &path,
            format!(
                "- rule: Fleet marker read\n  desc: a marker file of the cluster was read\n  condition: pal_open_read and fd.name startswith {}/\n  output: fleet marker read (file=%fd.name)\n  priority: WARNING\n  source: syscall\n  tags: [e2e]\n",
                self.markers().display()
            ),
        )
        .expect("rules");
        path
    }

    fn raise(&self, round: &str) {
        std::fs::create_dir_all(self.markers()).expect("markers");
        for index in 0..READS {
            let file = self.markers().join(format!("{round}-{index}"));
            std::fs::write(&file, "marker").expect("marker");
            let status = Command::new("cat")
                .arg(&file)
                .stdout(Stdio::null())
                .status()
                .expect("cat");
            assert!(status.success());
        }
    }
}

/// Copies of the audit events of `files` with audit ids of this cluster's own: a real audit id
/// is unique to its API server, and alerts of one tenant are told apart by it.
fn cluster_events(cluster: &Cluster, files: &[PathBuf]) -> Vec<PathBuf> {
    let directory = cluster.directory.join("events");
    std::fs::create_dir_all(&directory).expect("events dir");
    files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).expect("trace");
            let renamed: Vec<String> = text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| {
                    let mut event: serde_json::Value =
                        serde_json::from_str(line).expect("audit event");
                    if let Some(id) = event["auditID"].as_str() {
                        event["auditID"] = format!("{id}-{}", cluster.id).into();
                    }
                    event.to_string()
                })
                .collect();
            let copy = directory.join(file.file_name().expect("name"));
            std::fs::write(&copy, renamed.join("\n") + "\n").expect("copy");
            copy
        })
        .collect()
}

/// The pack's macro the rule uses, loaded before it.
fn pack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/runtime/palisade_runtime_rules.yaml")
}

fn start_agent(cluster: &Cluster, credential: &Path) -> ChildGuard {
    // nsenter joins the network namespace only: `ip netns exec` would also remount /sys and
    // hide the cgroup hierarchy the agent attributes processes with
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cluster.namespace))
        .arg(palisade_binary())
        .args(["agent", "--sensor", "ebpf"])
        .args(["--node-name", &format!("{}-node", cluster.id)])
        .arg("--credentials")
        .arg(credential)
        .arg("--spool-dir")
        .arg(cluster.directory.join("spool"))
        .arg("--status-file")
        .arg(cluster.directory.join("status.json"))
        .arg("--rules")
        .arg(pack())
        .arg("--rules")
        .arg(cluster.rules())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agent starts");
    ChildGuard::new(child)
}

/// The cluster's audit watcher: real audit events appended to its log go through the audit
/// rules and stream over the cluster's enrolled credential.
fn start_watcher(cluster: &Cluster, credential: &Path) -> ChildGuard {
    let log = cluster.directory.join("audit.log");
    std::fs::File::create(&log).expect("audit log");
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", cluster.namespace))
        .arg(palisade_binary())
        .args(["audit", "watch", "--file"])
        .arg(&log)
        .arg("--credentials")
        .arg(credential)
        .arg("--state-dir")
        .arg(cluster.directory.join("watch-state"))
        .args(["--agent-id", &format!("audit/{}", cluster.id)])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("watcher starts");
    ChildGuard::new(child)
}

/// The CLI run inside the control plane's namespace, as `token`.
fn plane_cli(
    topology: &Topology,
    server: &Server,
    token: &str,
    args: &[&str],
) -> serde_json::Value {
    let output = Command::new("ip")
        .args(["netns", "exec", &topology.control_plane])
        .arg(palisade_binary())
        .args(args)
        .args([
            "--server",
            &format!("https://127.0.0.1:{GRPC_PORT}"),
            "--token",
            token,
        ])
        .arg("--ca-file")
        .arg(server.ca_file())
        .output()
        .expect("cli");
    common::json_output(&output)
}

fn count(topology: &Topology, server: &Server, token: &str, query: &str) -> u64 {
    let found = plane_cli(
        topology,
        server,
        token,
        &["search", query, "--limit", "1", "--format", "json"],
    );
    found["total"].as_u64().expect("total")
}

async fn wait_for(topology: &Topology, server: &Server, token: &str, query: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = count(topology, server, token, query);
        assert!(
            found <= expected,
            "{query}: {found} alerts, expected {expected}"
        );
        if found == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: stuck at {found} alerts, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the agent's status file shows its sensor running.
async fn wait_for_agent(agent: &mut ChildGuard, cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.directory.join("status.json").exists() {
        assert!(
            agent.child().try_wait().expect("wait").is_none(),
            "the agent of {} exited before its sensor ran",
            cluster.id
        );
        assert!(
            Instant::now() < deadline,
            "the agent of {} wrote no status",
            cluster.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clusters_report_to_one_control_plane_and_a_cut_link_loses_nothing() {
    let euid = Command::new("id").arg("-u").output().expect("id").stdout;
    assert_eq!(
        String::from_utf8_lossy(&euid).trim(),
        "0",
        "this test creates network namespaces and loads eBPF: run it as root (CI does)"
    );
    let temp = tempfile::tempdir().expect("temp");
    let topology = Topology::create(3);
    let config = temp.path().join("palisade.toml");
    std::fs::write(&config, "[graph]\nscan_images = false\n").expect("config");
    let server = Server::start_with_options(
        &temp.path().join("plane"),
        Some(&config),
        ServerOptions {
            wrapper: vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                topology.control_plane.clone(),
            ],
            listen: [
                format!("127.0.0.1:{GRPC_PORT}"),
                "127.0.0.1:7401".into(),
                format!("0.0.0.0:{AGENT_PORT}"),
            ],
            ..ServerOptions::default()
        },
    );
    let operator = server.admin_token();
    let mut tokens = std::collections::BTreeMap::new();
    for tenant in ["acme", "globex"] {
        let created = plane_cli(
            &topology,
            &server,
            &operator,
            &["admin", "tenant", "create", tenant, "--format", "json"],
        );
        tokens.insert(
            tenant,
            created["api_key"].as_str().expect("key").to_string(),
        );
    }
    let owners = ["acme", "acme", "globex"];

    let mut clusters = Vec::new();
    let mut agents = Vec::new();
    for (index, namespace) in topology.clusters.iter().enumerate() {
        let number = index + 1;
        let cluster = Cluster {
            number,
            id: format!("fleet-{number}"),
            namespace: namespace.clone(),
            directory: temp.path().join(format!("cluster-{number}")),
        };
        std::fs::create_dir_all(&cluster.directory).expect("cluster dir");
        let bundle = cluster.directory.join("bundle.json");
        plane_cli(
            &topology,
            &server,
            &tokens[owners[index]],
            &[
                "admin",
                "cluster",
                "register",
                &cluster.id,
                "--output",
                bundle.to_str().expect("path"),
                "--format",
                "json",
            ],
        );
        // each cluster reaches the control plane at its own end of its link
        let mut contents: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&bundle).expect("bundle")).expect("json");
        contents["agent_url"] = format!("https://10.77.{number}.1:{AGENT_PORT}").into();
        std::fs::write(&bundle, contents.to_string()).expect("bundle");
        let credential = cluster.directory.join("credential");
        let enrolled = Command::new("ip")
            .args(["netns", "exec", namespace])
            .arg(palisade_binary())
            .args(["enroll", "--bundle"])
            .arg(&bundle)
            .arg("--out")
            .arg(&credential)
            .output()
            .expect("enroll");
        assert!(
            enrolled.status.success(),
            "enroll {}: {}",
            cluster.id,
            String::from_utf8_lossy(&enrolled.stderr)
        );
        let mut agent = start_agent(&cluster, &credential);
        wait_for_agent(&mut agent, &cluster).await;
        agents.push(agent);
        agents.push(start_watcher(&cluster, &credential));
        clusters.push(cluster);
    }

    // every cluster's alerts arrive under its tenant and cluster: runtime and audit
    let traces = common::trace_files();
    let (first_traces, second_traces) = traces.split_at(traces.len() / 2);
    let audit_first = common::distinct_alerts(first_traces);
    let audit_all = common::distinct_alerts(&traces);
    assert!(audit_first > 0 && audit_all > audit_first);
    for cluster in &clusters {
        cluster.raise("first");
        let events = cluster_events(cluster, first_traces);
        common::append_events(&cluster.directory.join("audit.log"), &events);
    }
    for (index, cluster) in clusters.iter().enumerate() {
        let token = &tokens[owners[index]];
        let query = format!("cluster:{} AND rule:\"Fleet marker read\"", cluster.id);
        wait_for(&topology, &server, token, &query, READS as u64).await;
        let audit = format!("cluster:{} AND source:k8s_audit", cluster.id);
        wait_for(&topology, &server, token, &audit, audit_first).await;
    }
    assert_eq!(
        count(
            &topology,
            &server,
            &tokens["globex"],
            "rule:\"Fleet marker read\""
        ),
        READS as u64,
        "globex sees its one cluster only"
    );
    assert_eq!(
        count(&topology, &server, &tokens["acme"], "cluster:fleet-3"),
        0,
        "acme sees nothing of globex's cluster"
    );

    // cut cluster 1 off, keep raising alerts everywhere
    topology.set_link(1, false);
    for cluster in &clusters {
        cluster.raise("second");
        let events = cluster_events(cluster, second_traces);
        common::append_events(&cluster.directory.join("audit.log"), &events);
    }
    let second_of = |cluster: &Cluster| {
        format!(
            "cluster:{} AND rule:\"Fleet marker read\" AND second",
            cluster.id
        )
    };
    wait_for(
        &topology,
        &server,
        &tokens["acme"],
        &second_of(&clusters[1]),
        READS as u64,
    )
    .await;
    wait_for(
        &topology,
        &server,
        &tokens["globex"],
        &second_of(&clusters[2]),
        READS as u64,
    )
    .await;
    assert_eq!(
        count(
            &topology,
            &server,
            &tokens["acme"],
            &second_of(&clusters[0])
        ),
        0,
        "the cut cluster's alerts cannot have arrived"
    );
    topology.set_link(clusters[0].number, true);
    wait_for(
        &topology,
        &server,
        &tokens["acme"],
        &second_of(&clusters[0]),
        READS as u64,
    )
    .await;
    for (index, cluster) in clusters.iter().enumerate() {
        let token = &tokens[owners[index]];
        let audit = format!("cluster:{} AND source:k8s_audit", cluster.id);
        wait_for(&topology, &server, token, &audit, audit_all).await;
        let query = format!("cluster:{} AND rule:\"Fleet marker read\"", cluster.id);
        assert_eq!(
            count(&topology, &server, token, &query),
            2 * READS as u64,
            "{}: every runtime alert once",
            cluster.id
        );
    }
    drop(agents);
}
