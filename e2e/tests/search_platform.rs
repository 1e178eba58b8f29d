//! Search through the real `palisade` process: kill -9 during heavy concurrent ingest keeps
//! every acknowledged alert searchable exactly once (also after `search reindex`); the CLI's
//! facets and JSON output; positioned query errors; two tenants that cannot see each other;
//! the Falco webhook; and the live tail.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{sequence_counts, write_falco_alerts};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, Priority, PublishAlertsRequest};
use palisade_testkit::{Server, palisade_binary};
use tokio::io::AsyncWriteExt;

fn json_output(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "command failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn sequenced_alert(publisher: usize, seq: usize) -> Alert {
    Alert {
        rule: format!("Heavy ingest {publisher}"),
        source: "syscall".into(),
        priority: Priority::Warning as i32,
        output: format!("heavy ingest alert {seq} from publisher {publisher}"),
        output_fields: [
            ("test.seq".to_string(), seq.to_string()),
            ("k8s.ns.name".to_string(), format!("ns-{}", seq % 4)),
        ]
        .into_iter()
        .collect(),
        time: Some(Timestamp {
            seconds: 1_800_000_000 + (seq as i64 % 5_000),
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_heavy_concurrent_ingest_keeps_every_acknowledged_alert_searchable_once() {
    let temp = tempfile::tempdir().expect("temp");
    let mut server = Server::start(&temp.path().join("data"));
    let (channel, interceptor) = common::authenticated(&server, &server.admin_token()).await;
    let client = AlertServiceClient::with_interceptor(channel, interceptor);
    let acknowledged = Arc::new(Mutex::new(Vec::<usize>::new()));
    let mut publishers = Vec::new();
    const PUBLISHERS: usize = 3;
    const BATCH: usize = 250;
    for publisher in 0..PUBLISHERS {
        let mut client = client.clone();
        let acknowledged = Arc::clone(&acknowledged);
        publishers.push(tokio::spawn(async move {
            // Publisher p sends the sequence numbers p, p+3, p+6 ...
            let mut round = 0usize;
            loop {
                let seqs: Vec<usize> = (0..BATCH)
                    .map(|index| (round * BATCH + index) * PUBLISHERS + publisher)
                    .collect();
                let batch = seqs
                    .iter()
                    .map(|seq| sequenced_alert(publisher, *seq))
                    .collect();
                match client
                    .publish_alerts(PublishAlertsRequest { alerts: batch })
                    .await
                {
                    Ok(_) => acknowledged.lock().expect("lock").extend(seqs),
                    Err(_) => return,
                }
                round += 1;
            }
        }));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acknowledged.lock().expect("lock").len() >= 9_000 {
            break;
        }
    }
    server.kill_hard();
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    server.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts = sequence_counts(&server).await;
        if acknowledged.iter().all(|seq| counts.contains_key(seq)) {
            break counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} acknowledged alerts searchable",
            acknowledged
                .iter()
                .filter(|seq| counts.contains_key(seq))
                .count(),
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(counts.values().all(|count| *count == 1), "no alert twice");
    // The number of matches agrees with what the pages held.
    let total = json_output(&server.cli(&["search", "*", "--limit", "1", "--format", "json"]));
    assert_eq!(total["total"].as_u64(), Some(counts.len() as u64));

    // Rebuilding from the log gives the same documents, still once each.
    let rebuilt =
        json_output(&server.cli(&["search", "reindex", "--all-tenants", "--format", "json"]));
    assert_eq!(rebuilt["documents"].as_u64(), Some(counts.len() as u64));
    let after = sequence_counts(&server).await;
    assert_eq!(after, counts, "reindex keeps every alert exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_returns_facets_and_positioned_errors_and_tenants_stay_apart() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));
    let alerts_file = temp.path().join("alerts.jsonl");
    write_falco_alerts(&alerts_file, 1_000, 0);
    let file = alerts_file.to_str().expect("utf-8 path");
    let report = json_output(&server.cli(&["alerts", "import", file, "--format", "json"]));
    assert_eq!(report["imported"], 1_000);

    // Alerts are searchable within a second of their acknowledgement; allow a loaded machine.
    let mut found = serde_json::Value::Null;
    for _ in 0..50 {
        found = json_output(&server.cli(&[
            "search",
            "proc.name:bash",
            "--facets",
            "rule,k8s.ns.name",
            "--limit",
            "5",
            "--format",
            "json",
        ]));
        if found["total"] == 1_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(found["total"], 1_000);
    assert_eq!(found["hits"].as_array().expect("hits").len(), 5);
    let rules = found["facets"]["rule"]["buckets"]
        .as_array()
        .expect("rule facet");
    assert_eq!(rules.len(), 2);
    assert!(
        rules.iter().all(|bucket| bucket["count"] == 500),
        "{rules:?}"
    );
    let namespaces = found["facets"]["k8s.ns.name"]["buckets"]
        .as_array()
        .expect("namespace facet");
    let expected: Vec<serde_json::Value> = (0..5)
        .map(|index| serde_json::json!({ "value": format!("ns-{index}"), "count": 200 }))
        .collect();
    assert_eq!(namespaces, &expected);

    let highlighted = json_output(&server.cli(&[
        "search",
        "spawned",
        "--highlight",
        "--limit",
        "1",
        "--format",
        "json",
    ]));
    let snippet = highlighted["hits"][0]["snippet"].as_str().expect("snippet");
    assert!(snippet.contains("<b>spawned</b>"), "{snippet}");

    let bad = server.cli(&[
        "search",
        "proc.name:bash AND (k8s.ns.name:ns-1",
        "--format",
        "json",
    ]);
    assert!(!bad.status.success());
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("at column 37"), "{message}");
    assert!(message.contains("expected ')'"), "{message}");

    // A second tenant sees nothing of the first, and names of fields cannot reach it.
    let created =
        json_output(&server.cli(&["admin", "tenant", "create", "globex", "--format", "json"]));
    let globex_token = created["api_key"].as_str().expect("api key").to_string();
    let globex_file = temp.path().join("globex.jsonl");
    write_falco_alerts(&globex_file, 10, 5_000);
    let globex_import = json_output(&server.cli(&[
        "alerts",
        "import",
        globex_file.to_str().expect("path"),
        "--token",
        &globex_token,
        "--format",
        "json",
    ]));
    assert_eq!(globex_import["imported"], 10);
    let mut globex_view = serde_json::Value::Null;
    for _ in 0..50 {
        globex_view = json_output(&server.cli(&[
            "search",
            "*",
            "--facets",
            "rule",
            "--token",
            &globex_token,
            "--format",
            "json",
        ]));
        if globex_view["total"] == 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(globex_view["total"], 10);
    let globex_rule_total: u64 = globex_view["facets"]["rule"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|bucket| bucket["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        globex_rule_total, 10,
        "facets count only the tenant's own alerts"
    );
    let refused = server.cli(&["search", "tenant:default", "--token", &globex_token]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("confined to the tenant"));
    let default_view =
        json_output(&server.cli(&["search", "*", "--limit", "1", "--format", "json"]));
    assert_eq!(default_view["total"], 1_000);
}

/// POSTs `body` to the server's HTTP listener with curl (Falco's http_output speaks the same
/// HTTPS, verifying the server with the CA it is given); returns the status code and body.
async fn http_post(server: &Server, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .arg("--cacert")
        .arg(server.ca_file())
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .arg(format!("{}{path}", server.http_url))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let mut child = command.spawn().expect("curl runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body.as_bytes()).await.expect("write body");
    drop(stdin);
    let output = child.wait_with_output().await.expect("curl finishes");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status: u16 = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status from curl: {text:?}"));
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falco_webhook_posts_are_stored_once_and_reach_a_live_tail() {
    let temp = tempfile::tempdir().expect("temp");
    let server = Server::start(&temp.path().join("data"));

    let mut follower = Command::new(palisade_binary())
        .args([
            "search",
            "--follow",
            "rule:\"Terminal shell in container\"",
            "--format",
            "json",
            "--server",
            &server.grpc_url,
        ])
        .env("PALISADE_TOKEN", server.admin_token())
        .env("PALISADE_CA_FILE", server.ca_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follower starts");
    let stdout = follower.stdout.take().expect("stdout");
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    // Give the follower time to subscribe before the alert arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sidekick = r#"{"uuid":"9b1a3c52-0c1e-4f3e-8a0e-5a7b2f3c4d11","output":"16:31:56.746609046: Notice A shell was spawned in a container (user=root container=abc proc=bash)","priority":"Notice","rule":"Terminal shell in container","time":"2026-11-27T16:31:56.746609046Z","output_fields":{"container.id":"abc","proc.name":"bash","k8s.ns.name":"prod","evt.time":1795624316746609046},"source":"syscall","tags":["container","mitre_execution","T1059"],"hostname":"node-1"}"#;
    let other_rule = sidekick.replace("Terminal shell in container", "Write below etc");
    let (status, body) = http_post(&server, "/falco/v1/alerts", None, sidekick).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http_post(
        &server,
        "/falco/v1/alerts",
        Some(&server.admin_token()),
        "{\"rule\":\"x\"}",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line 1"), "{body}");

    let token = server.admin_token();
    let (status, body) = http_post(&server, "/falco/v1/alerts", Some(&token), &other_rule).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_post(&server, "/falco/v1/alerts", Some(&token), sidekick).await;
    assert_eq!(status, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(first["accepted"], 1);
    // falcosidekick sends a new uuid with every delivery; the alert is still the same one.
    let resent = sidekick.replace("9b1a3c52", "00000000");
    let (status, body) = http_post(&server, "/falco/v1/alerts", Some(&token), &resent).await;
    assert_eq!(status, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(second["duplicates"], 1, "{body}");
    assert_eq!(second["ids"], first["ids"]);

    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the live tail delivers the new matching alert");
    let tailed: serde_json::Value = serde_json::from_str(&line).expect("json line");
    assert_eq!(tailed["rule"], "Terminal shell in container");
    assert_eq!(tailed["id"], first["ids"][0]);
    assert!(
        lines.recv_timeout(Duration::from_secs(2)).is_err(),
        "neither the other rule nor the duplicate is tailed"
    );
    let _ = follower.kill();
    let _ = follower.wait();

    let stored = json_output(&server.cli(&["search", "proc.name:bash", "--format", "json"]));
    assert_eq!(stored["total"], 2);
}
