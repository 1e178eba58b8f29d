//! Delivery survives a server outage and a kill -9 of the agent: alerts raised while the
//! server is down are spooled on disk, and after both restart every alert arrives exactly
//! once. Runs the real agent binary with its eBPF sensor (root required).

// Waits on real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::ack_server::{AckServer, read_store};

struct Agent {
    child: Child,
}

impl Agent {
    fn start(server: &str, spool: &Path, rules: &Path, status: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_palisade-node-agent"))
            .args([
                "--server",
                server,
                "--token",
                "test-token",
                "--sensor",
                "ebpf",
            ])
            .arg("--spool-dir")
            .arg(spool)
            .arg("--rules")
            .arg(rules)
            .arg("--status-file")
            .arg(status)
            .args([
                "--max-alerts-per-window",
                "1000",
                "--attribution-wait-ms",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agent binary starts");
        Self { child }
    }

    fn kill_9(mut self) {
        // SIGKILL: no shutdown path runs
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null)
}

async fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn touch_and_read(directory: &Path, names: std::ops::Range<u32>) {
    for index in names {
        let path = directory.join(format!("secret-{index}.txt"));
        std::fs::write(&path, "x").expect("write");
        let status = Command::new("cat")
            .arg(&path)
            .stdout(Stdio::null())
            .status()
            .expect("cat");
        assert!(status.success());
    }
}

async fn wait_until_agent_watches(directory: &Path, store_or_status: impl Fn() -> bool) {
    // the sensor attaches a moment after start: poke until the first alert shows up
    let start = Instant::now();
    let mut attempt = 1000;
    while !store_or_status() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent never raised its first alert"
        );
        touch_and_read(directory, attempt..attempt + 1);
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_spooled_during_an_outage_survive_kill_9_and_arrive_once() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let watched = scratch.path().join("watched");
    std::fs::create_dir(&watched).expect("mkdir");
    let rules = scratch.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Test file read\n  desc: a read in the watched directory\n  condition: evt.type in (open, openat) and proc.name = cat and fd.directory = {}\n  output: read %fd.name by %proc.name\n  priority: WARNING\n  tags: [test, T1005, mitre_collection]\n",
            watched.display()
        ),
    )
    .expect("rules");
    let store = scratch.path().join("server-store.jsonl");
    let spool: PathBuf = scratch.path().join("spool");
    let status_file = scratch.path().join("status.json");

    let server = AckServer::start(&store, "127.0.0.1:0".parse().expect("addr")).await;
    let address = server.address;
    let url = format!("http://{address}");
    let agent = Agent::start(&url, &spool, &rules, &status_file);

    // phase 1: server up, alerts flow and are acked
    wait_until_agent_watches(&watched, || !read_store(&store).is_empty()).await;
    touch_and_read(&watched, 0..5);
    wait_for("phase 1 alerts stored", Duration::from_secs(30), || {
        let stored = read_store(&store);
        (0..5).all(|index| {
            stored
                .iter()
                .any(|item| item.output.contains(&format!("secret-{index}.txt")))
        })
    })
    .await;

    // phase 2: server down, alerts go to the spool only
    server.stop().await;
    let stored_before = read_store(&store).len();
    let durable_before = status(&status_file)["durable_seq"].as_u64().unwrap_or(0);
    touch_and_read(&watched, 5..15);
    wait_for(
        "phase 2 alerts durable in the spool",
        Duration::from_secs(30),
        || status(&status_file)["durable_seq"].as_u64().unwrap_or(0) >= durable_before + 10,
    )
    .await;
    assert_eq!(
        read_store(&store).len(),
        stored_before,
        "nothing reached the stopped server"
    );
    agent.kill_9();

    // phase 3: both restart; the spool is resent after the server's resume point
    let server = AckServer::start(&store, address).await;
    let agent = Agent::start(&url, &spool, &rules, &status_file);
    wait_for("every alert stored", Duration::from_secs(60), || {
        let stored = read_store(&store);
        (0..15).all(|index| {
            stored
                .iter()
                .any(|item| item.output.contains(&format!("secret-{index}.txt")))
        })
    })
    .await;
    let stored = read_store(&store);
    let mut ids: Vec<&str> = stored.iter().map(|item| item.id.as_str()).collect();
    ids.sort_unstable();
    let total = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), total, "an alert was stored twice");
    for index in 0..15 {
        let copies = stored
            .iter()
            .filter(|item| item.output.contains(&format!("/secret-{index}.txt ")))
            .count();
        assert_eq!(copies, 1, "secret-{index}.txt stored {copies} times");
    }
    let mut seqs: Vec<u64> = stored.iter().map(|item| item.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), total, "sequence numbers are unique");
    agent.kill_9();
    server.stop().await;
}
