//! Deliveries per second from the alert log to local receivers, against the limit of a plain
//! reqwest POST loop sending the same bodies to the same receiver in the same run.
//!
//! `cargo bench -p palisade-notify --bench deliveries` (release build). Alerts are Falco's own
//! alert lines from the corpus, made distinct. Each path has one request in flight at a time,
//! as one notification target does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_core::config::{NotifyConfig, NotifyKind, NotifyTarget, SyslogTransport};
use palisade_core::falco::alert_from_falco_json;
use palisade_core::ids::derive_alert_id;
use palisade_core::log::{LogEntry, Topic};
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_notify::Notifier;
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::Alert;
use prost::Message;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

const ALERTS: usize = 5_000;

fn alerts() -> Vec<Alert> {
    let path =
        palisade_testkit::corpus_path("runtime/falco-output/single_rule_with_cat_write.json");
    let text = std::fs::read_to_string(path).expect("read the Falco output corpus");
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    (0..ALERTS)
        .map(|index| {
            let mut alert = alert_from_falco_json(lines[index % lines.len()]).expect("alert");
            let time = alert.time.unwrap_or_default();
            alert.time = Some(Timestamp {
                seconds: time.seconds + index as i64,
                nanos: time.nanos,
            });
            alert.tenant_id = "acme".into();
            alert.cluster_id = "prod-eu".into();
            alert
                .output_fields
                .insert("k8s.pod.name".into(), format!("api-{index}"));
            alert.id = derive_alert_id(&alert);
            alert
        })
        .collect()
}

/// A receiver that accepts everything and counts requests and bytes.
async fn start_receiver() -> (String, Arc<AtomicU64>) {
    async fn accept(State(count): State<Arc<AtomicU64>>, _body: Bytes) -> StatusCode {
        count.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .fallback(accept)
        .with_state(Arc::clone(&count));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), count)
}

/// A TCP syslog receiver counting octet-counted frames.
async fn start_syslog_receiver() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let count = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let frames = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buffer[..read]);
                    while let Some(space) = pending.iter().position(|byte| *byte == b' ') {
                        let length: usize = std::str::from_utf8(&pending[..space])
                            .ok()
                            .and_then(|text| text.parse().ok())
                            .expect("frame length");
                        if pending.len() < space + 1 + length {
                            break;
                        }
                        pending.drain(..space + 1 + length);
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (address, count)
}

async fn wait_for(count: &AtomicU64, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while count.load(Ordering::Relaxed) < expected {
        assert!(Instant::now() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The notifier with one target, from a log already holding every alert.
async fn run_notifier(
    alerts: &[Alert],
    target: NotifyTarget,
    count: &AtomicU64,
    expected: u64,
) -> Duration {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, "alerts").expect("topic");
    let entries = alerts
        .iter()
        .map(|alert| LogEntry {
            dedupe_key: Some(format!("{}/{}", alert.tenant_id, alert.id).into_bytes()),
            payload: alert.encode_to_vec(),
        })
        .collect();
    topic.append(entries).await.expect("append");
    let shutdown = Shutdown::new();
    let config = NotifyConfig {
        targets: vec![target],
    };
    let started = Instant::now();
    let notifier = Notifier::start(&config, &store, &topic, &shutdown).expect("start");
    wait_for(count, expected).await;
    let elapsed = started.elapsed();
    shutdown.trigger();
    notifier.stopped().await.expect("stopped");
    elapsed
}

fn target(kind: NotifyKind) -> NotifyTarget {
    let mut target = NotifyTarget::new("bench", "acme", kind);
    target.replay_history = true;
    target
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let alerts = alerts();
        let temp = tempfile::tempdir().expect("temp dir");
        let key = temp.path().join("key");
        std::fs::write(&key, "bench-key\n").expect("key");
        let total = ALERTS as u64;

        // The limit: the same bodies, already built, POSTed one after another.
        let (url, count) = start_receiver().await;
        let bodies: Vec<Vec<u8>> = alerts
            .iter()
            .map(palisade_notify::webhook::webhook_body)
            .collect();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().build().expect("client");
        let started = Instant::now();
        for body in &bodies {
            let response = client
                .post(format!("{url}/plain"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("post");
            assert!(response.status().is_success());
        }
        let plain = started.elapsed();
        assert_eq!(count.load(Ordering::Relaxed), total);

        let (url, count) = start_receiver().await;
        let mut webhook = target(NotifyKind::Webhook);
        webhook.url = Some(format!("{url}/hook"));
        webhook.secret_file = Some(key.clone());
        let signed = run_notifier(&alerts, webhook, &count, total).await;

        let (url, count) = start_receiver().await;
        let mut hec = target(NotifyKind::SplunkHec);
        hec.url = Some(url);
        hec.secret_file = Some(key.clone());
        hec.batch_size = 100;
        let batched = run_notifier(&alerts, hec, &count, total / 100).await;

        let (address, count) = start_syslog_receiver().await;
        let mut syslog = target(NotifyKind::Syslog);
        syslog.address = Some(address);
        syslog.transport = SyslogTransport::Tcp;
        let framed = run_notifier(&alerts, syslog, &count, total).await;

        let rate = |elapsed: Duration| total as f64 / elapsed.as_secs_f64();
        println!("{ALERTS} alerts, one request in flight per path\n");
        println!("| path | time | alerts/s | vs plain reqwest loop |");
        println!("| --- | ---: | ---: | ---: |");
        for (name, elapsed) in [
            ("plain reqwest POST loop, prebuilt bodies (limit)", plain),
            (
                "palisade webhook: log -> Falco JSON -> HMAC -> POST -> position",
                signed,
            ),
            ("palisade splunk_hec, batches of 100", batched),
            ("palisade syslog over TCP, octet-counted frames", framed),
        ] {
            println!(
                "| {name} | {:.2} s | {:.0} | {:.2} |",
                elapsed.as_secs_f64(),
                rate(elapsed),
                rate(elapsed) / rate(plain)
            );
        }
    });
}
