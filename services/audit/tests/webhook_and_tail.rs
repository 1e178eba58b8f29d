//! The webhook's answers (200, 400 with the reason, 413, skipped events counted) and the file
//! tailer's edge cases: partial last lines, truncation, rotation, and restarts that neither lose
//! nor repeat an event.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use palisade_audit::{
    AuditPipeline, DecodeLimits, FileTailer, K8sAuditSource, MemorySink, OffsetStore, TailConfig,
    WebhookConfig, WebhookStats, process_batches, webhook_router,
};
use palisade_rules::{CompileOptions, ReloadPolicy, ReloadableRules, RulesSource};
use tower::ServiceExt;

const EVERY_EVENT_RULE: &str = "- rule: Every Event\n  desc: fires on every audit event\n  condition: ka.verb exists\n  output: \"%ka.auditid\"\n  priority: INFO\n  source: k8s_audit\n";

fn pipeline(rules: &str) -> Arc<AuditPipeline> {
    let (rules, _) = ReloadableRules::load(
        Arc::new(K8sAuditSource),
        RulesSource::Texts(vec![("test.yaml".into(), rules.into())]),
        CompileOptions::default(),
        ReloadPolicy::RejectOnError,
    )
    .expect("rules load");
    Arc::new(AuditPipeline::new(Arc::new(rules), None, "test-host"))
}

fn event_line(id: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","user":{{"username":"alice"}}}}"#
    )
}

async fn post(router: axum::Router, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/k8s-audit")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router.oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into_owned(),
    ));
    (status, json)
}

#[tokio::test]
async fn webhook_answers_per_contract() {
    let config = WebhookConfig {
        limits: DecodeLimits {
            max_event_bytes: 64 * 1024,
            max_document_bytes: 64 * 1024,
        },
        ..WebhookConfig::default()
    };
    let stats = Arc::new(WebhookStats::default());
    let (router, batches) = webhook_router(&config, stats.clone());
    let sink = MemorySink::default();
    tokio::spawn(process_batches(
        batches,
        pipeline(EVERY_EVENT_RULE),
        Arc::new(sink.clone()),
    ));

    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{},{{"kind":"Event","auditID":"no-verb"}}]}}"#,
        event_line("a"),
        event_line("b")
    );
    let (status, body) = post(router.clone(), list.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["skipped"], 1);
    assert_eq!(body["alerts"], 2);
    assert!(
        body["skip_reasons"][0]
            .as_str()
            .expect("reason")
            .contains("missing_field"),
        "{body}"
    );
    assert_eq!(
        sink.alerts().len(),
        2,
        "alerts are stored before the answer"
    );

    let (status, body) = post(
        router.clone(),
        b"{\"kind\": \"EventList\", \"items\": [".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .starts_with("malformed JSON: "),
        "{body}"
    );

    let (status, _) = post(router.clone(), vec![b' '; 70 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let request = Request::get("/k8s-audit")
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let falco_trace = std::fs::read(palisade_testkit::corpus_path(
        "audit/falco-legacy-tests/trace_files/create_nginx_pod_privileged.json",
    ))
    .expect("trace");
    let (status, body) = post(router, falco_trace).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(
        stats
            .invalid_bodies
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(stats.skipped.load(std::sync::atomic::Ordering::Relaxed), 1);
}

struct Harness {
    directory: tempfile::TempDir,
    sink: MemorySink,
}

impl Harness {
    fn new() -> Self {
        Self {
            directory: tempfile::tempdir().expect("tempdir"),
            sink: MemorySink::default(),
        }
    }

    fn log(&self) -> std::path::PathBuf {
        self.directory.path().join("audit.log")
    }

    /// A tailer as after a (re)start: a fresh process over the same state directory.
    fn tailer(&self) -> FileTailer {
        let store = OffsetStore::open(&self.directory.path().join("state")).expect("store");
        let mut config = TailConfig::new(self.log());
        config.read_chunk = 4096;
        config.poll_interval = Duration::from_millis(10);
        FileTailer::new(
            config,
            store,
            pipeline(EVERY_EVENT_RULE),
            Arc::new(self.sink.clone()),
        )
        .expect("tailer")
    }

    fn append(&self, path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        file.write_all(text.as_bytes()).expect("write");
    }

    /// How often each audit id was alerted.
    fn seen(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for alert in self.sink.alerts() {
            *seen.entry(alert.output).or_default() += 1;
        }
        seen
    }

    fn assert_exactly_once(&self, ids: &[&str]) {
        let seen = self.seen();
        let expected: BTreeMap<String, usize> = ids.iter().map(|id| (id.to_string(), 1)).collect();
        assert_eq!(seen, expected);
    }
}

#[tokio::test]
async fn partial_lines_wait_for_their_newline() {
    let harness = Harness::new();
    let log = harness.log();
    let second = event_line("e2");
    harness.append(&log, &format!("{}\n{}", event_line("e1"), &second[..20]));
    let mut tailer = harness.tailer();
    assert_eq!(tailer.poll_once().await.expect("poll"), 1);
    harness.append(&log, &format!("{}\n", &second[20..]));
    assert_eq!(tailer.poll_once().await.expect("poll"), 1);
    assert_eq!(tailer.poll_once().await.expect("poll"), 0);
    harness.assert_exactly_once(&["e1", "e2"]);
}

#[tokio::test]
async fn restarts_resume_at_the_stored_offset() {
    let harness = Harness::new();
    let log = harness.log();
    harness.append(
        &log,
        &format!("{}\n{}\n", event_line("e1"), event_line("e2")),
    );
    {
        let mut tailer = harness.tailer();
        tailer.poll_once().await.expect("poll");
    }
    harness.append(&log, &format!("{}\n", event_line("e3")));
    let mut restarted = harness.tailer();
    assert_eq!(restarted.poll_once().await.expect("poll"), 1);
    harness.assert_exactly_once(&["e1", "e2", "e3"]);
}

#[tokio::test]
async fn truncation_restarts_from_the_beginning() {
    let harness = Harness::new();
    let log = harness.log();
    harness.append(
        &log,
        &format!("{}\n{}\n", event_line("e1"), event_line("e2")),
    );
    let mut tailer = harness.tailer();
    tailer.poll_once().await.expect("poll");
    std::fs::write(&log, format!("{}\n", event_line("e3"))).expect("truncate and write");
    assert_eq!(tailer.poll_once().await.expect("poll"), 1);
    assert_eq!(tailer.stats().truncations, 1);
    harness.assert_exactly_once(&["e1", "e2", "e3"]);
}

#[tokio::test]
async fn rotation_finishes_the_old_file_then_reads_the_new_one() {
    let harness = Harness::new();
    let log = harness.log();
    harness.append(&log, &format!("{}\n", event_line("e1")));
    let mut tailer = harness.tailer();
    tailer.poll_once().await.expect("poll");
    // Written after the last poll, then rotated away; the last line has no newline.
    harness.append(&log, &format!("{}\n{}", event_line("e2"), event_line("e3")));
    std::fs::rename(&log, harness.directory.path().join("audit.log.1")).expect("rotate");
    harness.append(&log, &format!("{}\n", event_line("e4")));
    assert_eq!(tailer.poll_once().await.expect("poll"), 3);
    assert_eq!(tailer.stats().rotations, 1);
    harness.assert_exactly_once(&["e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn rotation_while_stopped_loses_and_repeats_nothing() {
    let harness = Harness::new();
    let log = harness.log();
    harness.append(&log, &format!("{}\n", event_line("e1")));
    {
        let mut tailer = harness.tailer();
        tailer.poll_once().await.expect("poll");
    }
    harness.append(&log, &format!("{}\n", event_line("e2")));
    std::fs::rename(&log, harness.directory.path().join("audit.log.1")).expect("rotate");
    harness.append(
        &log,
        &format!("{}\n{}\n", event_line("e3"), event_line("e4")),
    );
    let mut restarted = harness.tailer();
    assert_eq!(restarted.poll_once().await.expect("poll"), 3);
    harness.assert_exactly_once(&["e1", "e2", "e3", "e4"]);
    drop(restarted);
    let mut again = harness.tailer();
    assert_eq!(again.poll_once().await.expect("poll"), 0);
    harness.assert_exactly_once(&["e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn oversized_and_malformed_lines_are_skipped_and_counted() {
    let harness = Harness::new();
    let log = harness.log();
    let huge = "x".repeat(300 * 1024);
    harness.append(
        &log,
        &format!(
            "{}\n{huge}\nnot json\n{}\n",
            event_line("e1"),
            event_line("e2")
        ),
    );
    let mut tailer = harness.tailer();
    assert_eq!(tailer.poll_once().await.expect("poll"), 2);
    assert_eq!(tailer.stats().skipped, 2);
    harness.assert_exactly_once(&["e1", "e2"]);
}

#[tokio::test]
async fn a_running_tailer_stops_on_shutdown() {
    let harness = Harness::new();
    harness.append(&harness.log(), &format!("{}\n", event_line("e1")));
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(harness.tailer().run(receiver));
    for _ in 0..200 {
        if !harness.sink.alerts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.send(true).expect("send");
    let stats = task.await.expect("join").expect("run");
    assert_eq!(stats.events, 1);
    harness.assert_exactly_once(&["e1"]);
}
