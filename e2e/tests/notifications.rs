//! Alert notifications from the running platform: a configured syslog target of a tenant
//! receives that tenant's alerts at or above its priority as RFC 5424 messages carrying each
//! alert's id, and nothing of another tenant.

mod common;

use std::time::Duration;

use common::json_output;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, Priority, PublishAlertsRequest};
use palisade_testkit::Server;

fn alert(id: &str, priority: Priority) -> Alert {
    Alert {
        id: id.to_string(),
        rule: "Terminal shell in container".into(),
        output: format!("a shell was spawned ({id})"),
        priority: priority as i32,
        source: "syscall".into(),
        ..Alert::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_syslog_target_receives_its_alerts_over_the_priority() {
    let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("syslog receiver");
    let address = receiver.local_addr().expect("address");
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.targets]]\nname = \"siem\"\ntenant = \"acme\"\nkind = \"syslog\"\naddress = \"{address}\"\ntransport = \"udp\"\nmin_priority = \"warning\"\n"
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let acme = json_output(&server.cli(&["admin", "tenant", "create", "acme", "--format", "json"]));
    let acme_key = acme["api_key"].as_str().expect("key").to_string();

    let publish = |token: String, alerts: Vec<Alert>| {
        let server = &server;
        async move {
            let (channel, interceptor) = common::authenticated(server, &token).await;
            AlertServiceClient::with_interceptor(channel, interceptor)
                .publish_alerts(PublishAlertsRequest { alerts })
                .await
                .expect("published");
        }
    };
    publish(
        server.admin_token(),
        vec![alert("default-critical", Priority::Critical)],
    )
    .await;
    publish(
        acme_key,
        vec![
            alert("acme-notice", Priority::Notice),
            alert("acme-critical", Priority::Critical),
        ],
    )
    .await;

    let mut buffer = vec![0u8; 16 * 1024];
    let (length, _) =
        tokio::time::timeout(Duration::from_secs(30), receiver.recv_from(&mut buffer))
            .await
            .expect("a syslog message within 30 s")
            .expect("receive");
    let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
    assert!(message.starts_with('<'), "RFC 5424 PRI first: {message}");
    assert!(message.contains("acme-critical"), "{message}");
    // nothing else arrives: not the notice (below the priority), not the default tenant's
    let more = tokio::time::timeout(Duration::from_secs(3), receiver.recv_from(&mut buffer)).await;
    assert!(
        more.is_err(),
        "unexpected second message: {}",
        String::from_utf8_lossy(&buffer)
    );
    let status = json_output(&server.cli(&["status", "--format", "json"]));
    let notify = status["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == "notify")
        .cloned()
        .expect("notify component");
    assert_eq!(notify["state"], "serving", "{notify}");
}

/// `palisade notify ...` as the holder of `token`.
fn notify_cli(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["notify"];
    all.extend_from_slice(args);
    all.extend(["--token", token]);
    server.cli(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_a_target_refused_are_listed_as_dead_letters_and_sent_again_by_its_tenant() {
    // a syslog receiver that is not there yet: its port is found free, then let go
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address");
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.targets]]\nname = \"siem\"\ntenant = \"acme\"\nkind = \"syslog\"\naddress = \"{address}\"\ntransport = \"tcp\"\nmax_attempts = 2\nbackoff_initial_ms = 10\nbackoff_max_ms = 20\n"
        ),
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let acme = json_output(&server.cli(&["admin", "tenant", "create", "acme", "--format", "json"]));
    let acme_key = acme["api_key"].as_str().expect("key").to_string();
    let (channel, interceptor) = common::authenticated(&server, &acme_key).await;
    let ids = ["acme-1", "acme-2", "acme-3"];
    AlertServiceClient::with_interceptor(channel, interceptor)
        .publish_alerts(PublishAlertsRequest {
            alerts: ids.iter().map(|id| alert(id, Priority::Critical)).collect(),
        })
        .await
        .expect("published");

    // the receiver refuses connections: after two attempts each alert is a dead letter
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let letters = loop {
        let listed = json_output(&notify_cli(
            &server,
            &acme_key,
            &["dead-letters", "siem", "--format", "json"],
        ));
        let letters = listed["letters"].as_array().expect("letters").clone();
        if letters.len() == ids.len() {
            break letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut listed_ids: Vec<&str> = letters
        .iter()
        .map(|letter| letter["alert_id"].as_str().expect("id"))
        .collect();
    listed_ids.sort_unstable();
    assert_eq!(listed_ids, ids);
    assert!(
        letters.iter().all(|letter| letter["attempts"] == 2),
        "{letters:?}"
    );
    let targets = json_output(&notify_cli(
        &server,
        &acme_key,
        &["targets", "--format", "json"],
    ));
    assert_eq!(targets["targets"][0]["name"], "siem");
    assert_eq!(targets["targets"][0]["dead_letters_kept"], 3, "{targets}");
    let paged = json_output(&notify_cli(
        &server,
        &acme_key,
        &["dead-letters", "siem", "--limit", "2", "--format", "json"],
    ));
    assert_eq!(paged["letters"].as_array().expect("page").len(), 2);
    let after = paged["next_after"]
        .as_u64()
        .expect("a next page")
        .to_string();
    let rest = json_output(&notify_cli(
        &server,
        &acme_key,
        &[
            "dead-letters",
            "siem",
            "--after",
            &after,
            "--format",
            "json",
        ],
    ));
    assert_eq!(rest["letters"].as_array().expect("page").len(), 1, "{rest}");

    // another tenant (the operator's own) does not even learn the target exists
    let theirs = server.cli(&["notify", "dead-letters", "siem", "--format", "json"]);
    assert!(!theirs.status.success());
    let stderr = String::from_utf8_lossy(&theirs.stderr);
    assert!(
        stderr.contains("NotFound") && stderr.contains("siem"),
        "{stderr}"
    );
    let others = json_output(&server.cli(&["notify", "targets", "--format", "json"]));
    assert_eq!(others["targets"].as_array().expect("targets").len(), 0);

    // the receiver is up now: sending them again delivers each once and empties the list
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("the receiver's port");
    let receiving = tokio::spawn(async move {
        let mut text = String::new();
        let (mut connection, _) = listener.accept().await.expect("connection");
        let mut buffer = vec![0u8; 64 * 1024];
        while !ids.iter().all(|id| text.contains(id)) {
            let read = tokio::io::AsyncReadExt::read(&mut connection, &mut buffer)
                .await
                .expect("read");
            if read == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
        text
    });
    let resent = json_output(&notify_cli(
        &server,
        &acme_key,
        &["resend", "siem", "--all", "--format", "json"],
    ));
    assert_eq!(
        (resent["delivered"].as_u64(), resent["failed"].as_u64()),
        (Some(3), Some(0)),
        "{resent}"
    );
    let received = tokio::time::timeout(Duration::from_secs(30), receiving)
        .await
        .expect("frames within 30 s")
        .expect("receiver");
    for id in ids {
        let field = format!("id=\"{id}\"");
        assert_eq!(received.matches(&field).count(), 1, "{id} once: {received}");
    }
    let left = json_output(&notify_cli(
        &server,
        &acme_key,
        &["dead-letters", "siem", "--format", "json"],
    ));
    assert_eq!(
        left["letters"].as_array().expect("letters").len(),
        0,
        "{left}"
    );
    let again = json_output(&notify_cli(
        &server,
        &acme_key,
        &["resend", "siem", "--sequence", "0", "--format", "json"],
    ));
    assert_eq!(again["missing"], serde_json::json!([0]), "{again}");
}
