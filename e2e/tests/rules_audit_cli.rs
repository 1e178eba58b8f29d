//! `palisade rules check` and `palisade audit replay|watch` on Falco's real rules and captured
//! Kubernetes audit events.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use palisade_testkit::{ChildGuard, Server, corpus_path, palisade_binary};

fn trace_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(corpus_path("audit/falco-legacy-tests/trace_files"))
            .expect("trace files")
            .map(|entry| entry.expect("entry").path())
            .collect();
    files.sort();
    files
}

#[test]
fn falcos_audit_rules_check_clean_and_a_broken_rule_is_located() {
    let falco_rules = corpus_path("audit/falco-k8saudit-rules/k8s_audit_rules.yaml");
    let output = Command::new(palisade_binary())
        .args(["rules", "check", "--format", "json"])
        .arg(&falco_rules)
        .output()
        .expect("cli");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["summaries"][0]["source"], "k8s_audit");
    assert_eq!(report["summaries"][0]["loaded"], 48);
    assert_eq!(report["summaries"][0]["errors"], 0);

    let temp = tempfile::tempdir().expect("temp");
    let broken = temp.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "- rule: broken\n  desc: d\n  condition: ka.verb = = create\n  output: o\n  priority: WARNING\n  source: k8s_audit\n",
    )
    .expect("write");
    let output = Command::new(palisade_binary())
        .args(["rules", "check"])
        .arg(&broken)
        .output()
        .expect("cli");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("{}:3:", broken.display())) && text.contains("\"broken\""),
        "{text}"
    );
}

#[test]
fn replay_prints_falco_json_alerts_and_a_summary() {
    let output = Command::new(palisade_binary())
        .args(["audit", "replay", "--hostname", "e2e"])
        .args(trace_files())
        .output()
        .expect("cli");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a Falco JSON line"))
        .collect();
    assert!(alerts.len() > 10, "{} alerts", alerts.len());
    assert!(alerts.iter().all(|alert| alert["source"] == "k8s_audit"));
    assert!(alerts.iter().all(|alert| alert["hostname"] == "e2e"));
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains(&format!("{} alert(s)", alerts.len())),
        "{summary}"
    );
    assert!(summary.contains("not_audit_event"), "{summary}");

    let missing = Command::new(palisade_binary())
        .args(["audit", "replay", "/nonexistent/audit.log"])
        .output()
        .expect("cli");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/audit.log"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// The watcher tails an audit log and every alert it raises is searchable on the server: as many
/// as an offline replay of the same events raises, each distinct alert once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_the_alerts_of_a_tailed_audit_log_to_the_server() {
    watch_a_tailed_audit_log(Launch::Flags).await;
}

/// The same watcher as `palisade serve audit --config FILE` runs it, from [audit_watch].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_audit_runs_the_watcher_its_configuration_describes() {
    watch_a_tailed_audit_log(Launch::Config).await;
}

enum Launch {
    Flags,
    Config,
}

async fn watch_a_tailed_audit_log(launch: Launch) {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));

    let replay = Command::new(palisade_binary())
        .args(["audit", "replay"])
        .args(trace_files())
        .output()
        .expect("cli");
    let stdout = String::from_utf8_lossy(&replay.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Two of Falco's trace files hold the same audit event (one auditID); its alert is one
    // record on the server however often it arrives.
    let expected = lines
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert!(expected > 10 && expected < lines.len() as u64);

    let log = temp.path().join("audit.log");
    std::fs::File::create(&log).expect("log");
    let mut command = Command::new(palisade_binary());
    match launch {
        Launch::Flags => command
            .args(["audit", "watch", "--server", &server.grpc_url, "--file"])
            .arg(&log)
            .arg("--state-dir")
            .arg(temp.path().join("watch-state")),
        Launch::Config => {
            let config = temp.path().join("audit.toml");
            let text = format!(
                "data_dir = {:?}\n[audit_watch]\nserver = {:?}\nca_file = {:?}\nfiles = [{:?}]\nstate_dir = {:?}\n",
                temp.path().join("watcher-data").display().to_string(),
                server.grpc_url,
                server.ca_file().display().to_string(),
                log.display().to_string(),
                temp.path().join("watch-state").display().to_string(),
            );
            std::fs::write(&config, text).expect("config");
            command.args(["serve", "audit", "--config"]).arg(&config)
        }
    };
    let mut watcher = ChildGuard::new(
        command
            .env("PALISADE_TOKEN", server.admin_token())
            .env("PALISADE_CA_FILE", server.ca_file())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("watcher"),
    );

    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("append");
    for file in trace_files() {
        let events = std::fs::read(&file).expect("trace");
        appender.write_all(&events).expect("append");
        if !events.ends_with(b"\n") {
            appender.write_all(b"\n").expect("append");
        }
    }
    appender.flush().expect("flush");

    common::wait_for_total(&server, expected).await;

    send_sigterm(watcher.child().id());
    let output = watcher
        .into_inner()
        .wait_with_output()
        .expect("watcher exits");
    assert!(
        output.status.success(),
        "watcher: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
