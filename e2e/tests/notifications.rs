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
