//! Alerts acknowledged by `palisade up` survive a SIGKILL of the process and are found again,
//! each exactly once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{sequence_counts, wait_for_total, write_falco_alerts};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, Priority, PublishAlertsRequest};
use palisade_testkit::Server;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_alerts_survive_kill_9_and_are_found_exactly_once() {
    let temp = tempfile::tempdir().expect("temp");
    let mut server = Server::start(&temp.path().join("data"));
    let alerts_file = temp.path().join("alerts.jsonl");
    write_falco_alerts(&alerts_file, 2_500, 0);
    // Two malformed lines, at lines 3 and 1001 of the file.
    let mut lines: Vec<String> = std::fs::read_to_string(&alerts_file)
        .expect("read")
        .lines()
        .map(String::from)
        .collect();
    lines.insert(2, "{not json".into());
    lines.insert(
        1000,
        r#"{"rule":"missing priority","time":"2026-11-01T00:00:00Z"}"#.into(),
    );
    std::fs::write(&alerts_file, lines.join("\n") + "\n").expect("write");

    let file = alerts_file.to_str().expect("utf-8 path");
    let report = json_output(&server.cli(&[
        "alerts",
        "import",
        file,
        "--batch-size",
        "400",
        "--format",
        "json",
    ]));
    assert_eq!(report["imported"], 2_500);
    assert_eq!(report["skipped"], 2);
    let error_lines: Vec<u64> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(error_lines, [3, 1001]);
    assert!(
        report["errors"][1]["message"]
            .as_str()
            .expect("message")
            .contains("priority")
    );

    // Acknowledged: kill at once, before the index may have caught up.
    server.kill_hard();
    server.restart();
    wait_for_total(&server, 2_500).await;
    let counts = sequence_counts(&server).await;
    assert_eq!(counts.len(), 2_500, "every imported alert is searchable");
    assert!(
        counts
            .iter()
            .all(|(seq, count)| *seq < 2_500 && *count == 1),
        "each exactly once"
    );

    let found = json_output(&server.cli(&[
        "search",
        "proc.name:bash AND k8s.ns.name:ns-3",
        "--limit",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(found["total"], 500);
    assert_eq!(found["hits"].as_array().expect("hits").len(), 5);

    // Importing the same file again stores nothing new.
    let again = json_output(&server.cli(&["alerts", "import", file, "--format", "json"]));
    assert_eq!(
        (again["imported"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2_500))
    );
    server.kill_hard();
    server.restart();
    wait_for_total(&server, 2_500).await;
    assert!(
        sequence_counts(&server)
            .await
            .values()
            .all(|count| *count == 1)
    );
}

fn sequenced_alert(seq: usize) -> Alert {
    Alert {
        rule: "Stream test".into(),
        source: "syscall".into(),
        priority: Priority::Notice as i32,
        output: format!("stream alert {seq}"),
        output_fields: [("test.seq".to_string(), seq.to_string())]
            .into_iter()
            .collect(),
        time: Some(Timestamp {
            seconds: 1_800_000_000 + seq as i64,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_acknowledged_before_a_kill_mid_stream_is_kept_once() {
    let temp = tempfile::tempdir().expect("temp");
    let mut server = Server::start(&temp.path().join("data"));
    let (channel, interceptor) = common::authenticated(&server, &server.admin_token()).await;
    let mut client = AlertServiceClient::with_interceptor(channel, interceptor);
    let acknowledged = Arc::new(Mutex::new(Vec::<usize>::new()));
    let publisher_acknowledged = Arc::clone(&acknowledged);
    let publisher = tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let batch: Vec<Alert> = (next..next + 200).map(sequenced_alert).collect();
            match client
                .publish_alerts(PublishAlertsRequest { alerts: batch })
                .await
            {
                Ok(_) => {
                    publisher_acknowledged
                        .lock()
                        .expect("lock")
                        .extend(next..next + 200);
                    next += 200;
                }
                Err(status) => return (next, status),
            }
        }
    });
    // Let the stream run, then kill the server while batches are in flight.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acknowledged.lock().expect("lock").len() >= 4_000 {
            break;
        }
    }
    server.kill_hard();
    let (sent_until, status) = publisher.await.expect("publisher");
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::Cancelled
        ),
        "a dead server is reported as unreachable, got {status:?}"
    );
    let acknowledged = acknowledged.lock().expect("lock").clone();
    server.restart();
    // Everything acknowledged is there; the unacknowledged last batch may or may not be.
    let counts = loop {
        let counts = sequence_counts(&server).await;
        if acknowledged.iter().all(|seq| counts.contains_key(seq)) {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(counts.values().all(|count| *count == 1), "no alert twice");
    assert!(
        counts.keys().all(|seq| *seq < sent_until + 200),
        "nothing that was never sent"
    );
}
