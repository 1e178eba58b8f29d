//! The distributed mode as four processes (`palisade serve gateway|search|graph|scanner`),
//! whatever PALISADE_TEST_MODE says: the services behind the gateway take only the internal
//! service credential, the gateway's log takes nothing else either, a caller cannot choose its
//! tenant through the forwarded headers, and a search service killed with SIGKILL catches up
//! from the gateway's log with every alert acknowledged meanwhile, each once.
//!
//! The rest of the e2e suite runs against this mode too (`make test` runs it a second time with
//! PALISADE_TEST_MODE=distributed).

mod common;

use std::time::Duration;

use common::{sequence_counts, wait_for_total};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::log_service_client::LogServiceClient;
use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{
    Alert, AppendLogRequest, FollowLogRequest, LogEntryMessage, Priority, PublishAlertsRequest,
    SearchRequest,
};
use palisade_testkit::{Server, ServerOptions};

fn distributed(data_dir: &std::path::Path) -> Server {
    Server::start_with_options(
        data_dir,
        None,
        ServerOptions {
            distributed: true,
            ..ServerOptions::default()
        },
    )
}

fn alert(seq: usize) -> Alert {
    Alert {
        rule: "Distributed ingest".into(),
        source: "syscall".into(),
        priority: Priority::Warning as i32,
        output: format!("distributed alert {seq}"),
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

async fn publish(server: &Server, sequence: std::ops::Range<usize>) {
    let (channel, interceptor) = common::authenticated(server, &server.admin_token()).await;
    let mut client = AlertServiceClient::with_interceptor(channel, interceptor);
    let response = client
        .publish_alerts(PublishAlertsRequest {
            alerts: sequence.clone().map(alert).collect(),
        })
        .await
        .expect("the gateway acknowledges")
        .into_inner();
    assert_eq!(response.accepted as usize, sequence.len());
}

/// A channel to a service of the distributed mode, trusting the gateway's internal CA.
async fn service_channel(server: &Server, service: &str) -> tonic::transport::Channel {
    let pem = std::fs::read_to_string(server.ca_file()).expect("the internal CA");
    tonic::transport::Endpoint::from_shared(server.service_url(service))
        .expect("url")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        )
        .expect("tls")
        .connect()
        .await
        .expect("connect to the service")
}

fn with_headers<T>(message: T, headers: &[(&'static str, String)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in headers {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("header text"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_behind_the_gateway_and_its_log_take_only_the_service_credential() {
    let temp = tempfile::tempdir().expect("temp");
    let server = distributed(&temp.path().join("data"));
    publish(&server, 0..10).await;
    wait_for_total(&server, 10).await;
    let admin = format!("Bearer {}", server.admin_token());

    // The admin key of the default tenant, sent straight to the search service, even with
    // the headers the gateway would write: refused.
    let mut search = SearchServiceClient::new(service_channel(&server, "search").await);
    for headers in [
        vec![],
        vec![("authorization", admin.clone())],
        vec![
            ("authorization", admin.clone()),
            ("x-palisade-tenant", "default".to_string()),
            ("x-palisade-role", "admin".to_string()),
        ],
    ] {
        let request = with_headers(
            SearchRequest {
                query: "*".into(),
                ..Default::default()
            },
            &headers,
        );
        let status = search.search(request).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }

    // The gateway's log: neither following nor appending with a user key.
    let mut log = LogServiceClient::new(server.channel().await);
    let follow = with_headers(
        FollowLogRequest {
            topic: "alerts".into(),
            from_offset: 0,
        },
        &[("authorization", admin.clone())],
    );
    let status = log.follow(follow).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let append = with_headers(
        AppendLogRequest {
            topic: "alerts".into(),
            entries: vec![LogEntryMessage {
                dedupe_key: b"forged".to_vec(),
                payload: b"not an alert".to_vec(),
            }],
        },
        &[("authorization", admin.clone())],
    );
    let status = log.append(append).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    // A key of another tenant, naming the default tenant in the forwarded headers, sees only
    // its own (empty) tenant through the gateway.
    let created = common::json_output(
        &server.cli(&["admin", "tenant", "create", "other", "--format", "json"]),
    );
    let other_key = created["api_key"].as_str().expect("api_key").to_string();
    let mut through_gateway = SearchServiceClient::new(server.channel().await);
    let request = with_headers(
        SearchRequest {
            query: "*".into(),
            ..Default::default()
        },
        &[
            ("authorization", format!("Bearer {other_key}")),
            ("x-palisade-tenant", "default".to_string()),
            ("x-palisade-role", "admin".to_string()),
        ],
    );
    let response = through_gateway
        .search(request)
        .await
        .expect("the other tenant's search")
        .into_inner();
    assert_eq!(response.total, 0, "the forwarded headers chose the tenant");
    assert_eq!(sequence_counts(&server).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_search_service_catches_up_from_the_gateways_log() {
    let temp = tempfile::tempdir().expect("temp");
    let mut server = distributed(&temp.path().join("data"));
    publish(&server, 0..200).await;
    wait_for_total(&server, 200).await;

    server.kill_service_hard("search");
    // The gateway keeps acknowledging alerts; searches say plainly that search is away.
    publish(&server, 200..500).await;
    let (channel, interceptor) = common::authenticated(&server, &server.admin_token()).await;
    let mut search = SearchServiceClient::with_interceptor(channel, interceptor);
    let status = search
        .search(SearchRequest {
            query: "*".into(),
            ..Default::default()
        })
        .await
        .expect_err("search is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("search service is unreachable"),
        "{status:?}"
    );
    // The gateway checks its peers every few seconds: status names the one away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let output = server.cli(&["status", "--format", "json"]);
        let body: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        let search_state = body["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|component| component["name"] == "search")
            .map(|component| component["state"].to_string())
            .expect("a search component");
        if !output.status.success() && search_state.contains("not serving") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status does not report the search service away: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    server.restart_service("search");
    tokio::time::timeout(Duration::from_secs(90), wait_for_total(&server, 500))
        .await
        .expect("the search service catches up");
    let counts = sequence_counts(&server).await;
    assert_eq!(counts.len(), 500);
    assert!(
        counts.values().all(|&count| count == 1),
        "every alert searchable exactly once"
    );
}
