//! Bad input to a running server is refused with a clear status, and the server keeps serving.

mod common;

use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, Priority, PublishAlertsRequest};
use palisade_testkit::Server;

fn alert_with_output(bytes: usize) -> Alert {
    Alert {
        rule: "Big".into(),
        priority: Priority::Notice as i32,
        output: "x".repeat(bytes),
        time: Some(Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        ..Default::default()
    }
}

async fn client_with_token(
    server: &Server,
    token: String,
) -> AlertServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor,
    >,
> {
    let (channel, interceptor) = common::authenticated(server, &token).await;
    AlertServiceClient::with_interceptor(channel, interceptor)
        .max_encoding_message_size(64 * 1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_unknown_tokens_are_refused_and_the_server_keeps_serving() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("palisade.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_message_bytes = 65536\nmax_alerts_per_batch = 50\n",
    )
    .expect("config");
    let server = Server::start_with_config(&temp.path().join("data"), Some(&config));
    let mut client = client_with_token(&server, server.admin_token()).await;

    let status = client
        .publish_alerts(PublishAlertsRequest {
            alerts: vec![alert_with_output(100 * 1024)],
        })
        .await
        .expect_err("a 100 KiB message is over the 64 KiB limit");
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "oversized message: {status:?}"
    );
    assert!(
        status.message().contains("65536"),
        "the status names the limit: {}",
        status.message()
    );

    let status = client
        .publish_alerts(PublishAlertsRequest {
            alerts: (0..51).map(|_| alert_with_output(10)).collect(),
        })
        .await
        .expect_err("51 alerts are over the batch limit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("at most 50"),
        "{}",
        status.message()
    );

    let accepted = client
        .publish_alerts(PublishAlertsRequest {
            alerts: vec![alert_with_output(1024)],
        })
        .await
        .expect("a small message is accepted after the refusals")
        .into_inner();
    assert_eq!(accepted.accepted, 1);

    let mut stranger = client_with_token(&server, "pal_0000000000000000".to_string()).await;
    let status = stranger
        .publish_alerts(PublishAlertsRequest {
            alerts: vec![alert_with_output(10)],
        })
        .await
        .expect_err("unknown token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let channel = server.channel().await;
    let status = AlertServiceClient::new(channel)
        .publish_alerts(PublishAlertsRequest {
            alerts: vec![alert_with_output(10)],
        })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let output = std::process::Command::new(palisade_testkit::palisade_binary())
        .args([
            "search",
            "*",
            "--server",
            &server.grpc_url,
            "--token",
            "pal_wrong",
        ])
        .env("PALISADE_CA_FILE", server.ca_file())
        .output()
        .expect("cli");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let status = server.cli(&["status"]);
    assert!(
        status.status.success(),
        "server still healthy: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    assert!(
        !server.stderr().contains("panicked"),
        "no panic: {}",
        server.stderr()
    );
}

#[test]
fn a_bad_configuration_file_is_reported_with_its_path_and_key() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("bad.toml");
    std::fs::write(&config, "grpc_listn = \"127.0.0.1:1\"\n").expect("config");
    let output = std::process::Command::new(palisade_testkit::palisade_binary())
        .args(["up", "--data-dir"])
        .arg(temp.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("cli");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("grpc_listn"),
        "{stderr}"
    );
}
