//! The command line as a user meets it.

use std::process::Command;

use palisade_testkit::{Server, palisade_binary};

#[test]
fn help_lists_every_subcommand() {
    let output = Command::new(palisade_binary())
        .arg("--help")
        .output()
        .expect("cli");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for subcommand in [
        "up", "agent", "scan", "audit", "rules", "search", "graph", "vulndb", "alerts", "admin",
        "status",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(subcommand)),
            "{subcommand} missing from:\n{help}"
        );
    }
}

#[test]
fn status_of_an_unreachable_server_fails_and_says_so() {
    let output = Command::new(palisade_binary())
        .args([
            "status",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "pal_x",
            "--format",
            "json",
        ])
        .output()
        .expect("cli");
    assert_eq!(output.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(body["serving"], false);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("cannot reach palisade")
    );
}

#[test]
fn sigterm_stops_the_server_cleanly_and_a_second_server_cannot_share_its_data_dir() {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().join("data");
    let mut server = Server::start(&data_dir);
    let metadata = std::fs::metadata(data_dir.join("admin.token")).expect("admin token");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777,
        0o600
    );

    let second = Command::new(palisade_binary())
        .args([
            "up",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .expect("cli");
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another palisade process"));

    let status = server.cli(&["status", "--format", "json"]);
    let body: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(body["healthy"], true, "{body}");
    let names: Vec<&str> = body["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["gateway", "log", "search", "scanner", "graph", "storage"]
    );

    let metrics = http_get(&format!("{}/metrics", server.http_url), &server.ca_file());
    assert!(
        metrics.contains("palisade_gateway_alerts_accepted_total"),
        "{metrics}"
    );

    let exit = server.terminate();
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
    assert!(server.stderr().contains("SIGTERM received") && server.stderr().contains("stopped"));
}

/// A plain HTTP GET with curl (a client the project did not write).
fn http_get(url: &str, ca_file: &std::path::Path) -> String {
    let output = Command::new("curl")
        .args(["-sSf", "--cacert"])
        .arg(ca_file)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
