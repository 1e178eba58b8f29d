//! Real parts for the notifier's tests: alerts read from Falco's own JSON output, a log on a
//! sled store, and a real HTTP receiver on loopback that records what it gets and answers as
//! each test scripts it.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palisade_core::config::{NotifyConfig, NotifyKind, NotifyTarget};
use palisade_core::falco::alert_from_falco_json;
use palisade_core::ids::derive_alert_id;
use palisade_core::log::{LogEntry, Topic};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, Priority};
use prost::Message;

/// Falco's JSON alert lines from its own test output.
pub fn falco_lines() -> Vec<String> {
    let path =
        palisade_testkit::corpus_path("runtime/falco-output/single_rule_with_cat_write.json");
    let text = std::fs::read_to_string(&path).expect("read the Falco output corpus");
    let lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        lines.len() >= 8,
        "expected Falco alert lines in {}",
        path.display()
    );
    lines
}

/// `count` alerts of `tenant` built from Falco's alert lines the way the gateway stores them
/// (tenant, cluster and a stable id set; a distinct time for each beyond the corpus's).
pub fn corpus_alerts(tenant: &str, count: usize) -> Vec<Alert> {
    let lines = falco_lines();
    (0..count)
        .map(|index| {
            let mut alert =
                alert_from_falco_json(&lines[index % lines.len()]).expect("a Falco alert line");
            let time = alert.time.unwrap_or_default();
            alert.time = Some(Timestamp {
                seconds: time.seconds + (index / lines.len()) as i64,
                nanos: time.nanos,
            });
            alert.tenant_id = tenant.to_string();
            alert.cluster_id = "prod-eu".to_string();
            alert
                .output_fields
                .insert("k8s.ns.name".into(), "payments".into());
            alert
                .output_fields
                .insert("k8s.pod.name".into(), format!("api-{index}"));
            alert.id = derive_alert_id(&alert);
            alert
        })
        .collect()
}

/// The alert with another priority (its id does not depend on the priority).
pub fn with_priority(mut alert: Alert, priority: Priority) -> Alert {
    alert.priority = priority as i32;
    alert
}

/// Appends alerts to the log the way the gateway does.
pub async fn append(topic: &Topic, alerts: &[Alert]) {
    let entries = alerts
        .iter()
        .map(|alert| LogEntry {
            dedupe_key: Some(format!("{}/{}", alert.tenant_id, alert.id).into_bytes()),
            payload: alert.encode_to_vec(),
        })
        .collect();
    topic.append(entries).await.expect("append alerts");
}

/// A target of `kind` with quick retries, for tests.
pub fn quick_target(name: &str, tenant: &str, kind: NotifyKind) -> NotifyTarget {
    let mut target = NotifyTarget::new(name, tenant, kind);
    target.backoff_initial_ms = 10;
    target.backoff_max_ms = 40;
    target.max_attempts = 4;
    target.timeout_seconds = 5;
    target.connect_timeout_seconds = 2;
    target.replay_history = true;
    target
}

/// A configuration of these targets.
pub fn config(targets: Vec<NotifyTarget>) -> NotifyConfig {
    NotifyConfig { targets }
}

/// Writes a secret file.
pub fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).expect("write secret");
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
    pub at: tokio::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            retry_after: None,
        }
    }
}

type Decide = dyn Fn(&[u8]) -> Option<Answer> + Send + Sync;

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Answers for the next requests, in order; then 200.
    script: VecDeque<Answer>,
}

/// A real HTTP server on loopback recording every request.
#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    decide: Arc<Mutex<Option<Arc<Decide>>>>,
    delay: Arc<Mutex<Duration>>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<ReceiverState>>,
    decide: Arc<Mutex<Option<Arc<Decide>>>>,
    delay: Arc<Mutex<Duration>>,
}

async fn receive(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = *shared.delay.lock().expect("delay");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let decide = shared.decide.lock().expect("decide").clone();
    let mut state = shared.state.lock().expect("state");
    let answer = state
        .script
        .pop_front()
        .or_else(|| decide.and_then(|decide| decide(&body)))
        .unwrap_or(Answer::status(200));
    state.received.push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        status: answer.status,
        at: tokio::time::Instant::now(),
    });
    let status = StatusCode::from_u16(answer.status).expect("status");
    let mut response = (
        status,
        if answer.status == 200 {
            "ok"
        } else {
            "refused"
        },
    )
        .into_response();
    if let Some(retry_after) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", retry_after.parse().expect("header"));
    }
    response
}

impl Receiver {
    /// Starts the server on 127.0.0.1.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let address = listener.local_addr().expect("address");
        let shared = Shared {
            state: Arc::default(),
            decide: Arc::default(),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
        };
        let app = Router::new().fallback(receive).with_state(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver");
        });
        Receiver {
            address,
            state: shared.state,
            decide: shared.decide,
            delay: shared.delay,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The next requests get these answers, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().expect("state").script.extend(answers);
    }

    /// Requests not answered by the script are answered by `decide` (200 when it says None).
    pub fn decide(&self, decide: impl Fn(&[u8]) -> Option<Answer> + Send + Sync + 'static) {
        *self.decide.lock().expect("decide") = Some(Arc::new(decide));
    }

    /// Every request waits this long before being answered.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().expect("delay") = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("state").received.clone()
    }

    /// Alert ids of accepted webhook deliveries, with how often each came.
    pub fn accepted_ids(&self) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        for request in self.received() {
            if request.status == 200 {
                let id = request.json()["uuid"].as_str().expect("uuid").to_string();
                *ids.entry(id).or_insert(0) += 1;
            }
        }
        ids
    }
}

/// Waits until `condition` holds, failing the test after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
