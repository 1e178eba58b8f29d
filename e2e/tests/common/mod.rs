//! Helpers shared by the end-to-end tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use palisade_proto::v1::search_service_client::SearchServiceClient;
use palisade_proto::v1::{PageRequest, SearchRequest, SortOrder, search_hit};
use palisade_testkit::Server;

/// Writes `count` Falco JSON alerts, each carrying its sequence number in `test.seq`.
pub fn write_falco_alerts(path: &Path, count: usize, first_seq: usize) {
    let mut text = String::new();
    const PRIORITIES: [&str; 4] = ["Warning", "Notice", "Critical", "Error"];
    const RULES: [&str; 2] = [
        "Terminal shell in container",
        "Read sensitive file untrusted",
    ];
    for seq in first_seq..first_seq + count {
        let priority = PRIORITIES[seq % 4];
        let rule = RULES[seq % 2];
        let line = serde_json::json!({
            "hostname": format!("node-{}", seq % 7),
            "output": format!("Shell spawned in a container (user=root proc.name=bash seq={seq})"),
            "priority": priority,
            "rule": rule,
            "source": "syscall",
            "tags": ["container", "shell", "T1059", "mitre_execution"],
            "time": format!("2026-11-0{}T10:00:{:02}.{:09}Z", 1 + seq % 9, seq % 60, seq),
            "output_fields": { "proc.name": "bash", "k8s.ns.name": format!("ns-{}", seq % 5), "test.seq": seq.to_string(), "container.id": null }
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("write alerts");
}

/// A channel to `server` and an interceptor that sends `token` as its bearer credential.
pub async fn authenticated(
    server: &Server,
    token: &str,
) -> (
    tonic::transport::Channel,
    impl tonic::service::Interceptor + Clone + use<>,
) {
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let header: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("header");
    let interceptor = move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", header.clone());
        Ok(request)
    };
    (channel, interceptor)
}

/// Connects an authenticated search client.
pub async fn search_client(
    server: &Server,
) -> SearchServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone,
    >,
> {
    let (channel, interceptor) = authenticated(server, &server.admin_token()).await;
    SearchServiceClient::with_interceptor(channel, interceptor)
        .max_decoding_message_size(256 * 1024 * 1024)
}

/// How many times each `test.seq` value occurs among all searchable alerts.
pub async fn sequence_counts(server: &Server) -> BTreeMap<usize, usize> {
    let mut client = search_client(server).await;
    let mut counts = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let response = client
            .search(SearchRequest {
                query: "*".into(),
                page: Some(PageRequest {
                    limit: 1000,
                    cursor: cursor.clone(),
                }),
                sort: SortOrder::TimeAsc as i32,
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner();
        for hit in &response.hits {
            let Some(search_hit::Document::Alert(alert)) = &hit.document else {
                panic!("expected an alert hit")
            };
            let seq: usize = alert.output_fields["test.seq"].parse().expect("seq");
            *counts.entry(seq).or_default() += 1;
        }
        if response.next_cursor.is_empty() {
            return counts;
        }
        cursor = response.next_cursor;
    }
}

/// Waits until the server's search total equals `expected`.
pub async fn wait_for_total(server: &Server, expected: u64) {
    let mut client = search_client(server).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total = client
            .search(SearchRequest {
                query: "*".into(),
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner()
            .total;
        if total == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "search total stuck at {total}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
