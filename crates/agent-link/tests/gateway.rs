//! The stream client against the real gateway over loopback gRPC, with the real ingest actor,
//! durable log and credentials: it honours Throttle without losing or doubling an alert, and
//! it applies pushed configuration and reports a refusal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Actor;
use palisade_agent_link::stream::{self, Link, StreamCredential};
use palisade_agent_link::{AgentStatus, ConfigApplier, Spool, StreamConfig};
use palisade_core::auth::{Credentials, Role};
use palisade_core::bridge::ActorSystem;
use palisade_core::ids::TenantId;
use palisade_core::log::Topic;
use palisade_core::storage::Store;
use palisade_gateway::auth::Authenticate;
use palisade_gateway::ingest::ALERTS_TOPIC;
use palisade_gateway::rate::RateLimit;
use palisade_gateway::{AgentGrpc, AgentLimits, Ingest};
use palisade_proto::v1::agent_service_server::AgentServiceServer;
use palisade_proto::v1::{AgentConfig, AgentKind, AgentState, Alert, DropCounters};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;

struct Gateway {
    url: String,
    token: String,
    topic: Topic,
    agents: AgentGrpc,
    _system: ActorSystem,
}

async fn start_gateway(limits: AgentLimits) -> Gateway {
    let store = Store::temporary().expect("store");
    let topic = Topic::open(&store, ALERTS_TOPIC).expect("topic");
    let actor_topic = topic.clone();
    let (system, ingest) = ActorSystem::start("link-test", move || {
        Ingest::new(actor_topic, 10_000).start()
    })
    .expect("actors");
    let credentials = Credentials::open(&store).expect("credentials");
    let tenant = TenantId::new("acme").expect("tenant");
    credentials.ensure_tenant(&tenant, "acme").expect("tenant");
    let token = credentials
        .create_api_key(&tenant, Role::Analyst, "agent")
        .expect("key")
        .token;
    let agents = AgentGrpc::new(ingest, credentials.clone(), store, limits).expect("agents");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tonic::transport::Server::builder()
        .add_service(InterceptedService::new(
            AgentServiceServer::new(agents.clone()),
            Authenticate::new(credentials),
        ))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    Gateway {
        url,
        token,
        topic,
        agents,
        _system: system,
    }
}

/// The durable end of the test's spool, set after each flush.
#[derive(Default)]
struct Status {
    durable: AtomicU64,
    acked: AtomicU64,
}

impl AgentStatus for Status {
    fn drop_counters(&self) -> DropCounters {
        DropCounters::default()
    }

    fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::Relaxed)
    }

    fn acked(&self, alerts: u64, _spooled: usize) {
        self.acked.fetch_add(alerts, Ordering::Relaxed);
    }
}

fn spool_alerts(spool: &Spool, status: &Status, first: usize, count: usize) {
    for index in first..first + count {
        spool
            .append(&Alert {
                id: format!("link-test-{index}"),
                rule: "Link test".into(),
                output: format!("alert {index}"),
                source: "syscall".into(),
                ..Alert::default()
            })
            .expect("append");
    }
    spool.flush().expect("flush");
    status
        .durable
        .store(spool.next_seq() - 1, Ordering::Relaxed);
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn link_config(gateway: &Gateway) -> StreamConfig {
    let credential = StreamCredential::Token {
        token: gateway.token.clone(),
        ca_file: None,
    };
    let mut config = StreamConfig::new(gateway.url.clone(), credential, "node-a");
    config.max_batch_alerts = 50;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_honours_throttle_and_every_alert_arrives_once() {
    let gateway = start_gateway(AgentLimits {
        rate: RateLimit {
            alerts_per_second: 400,
            burst: 100,
        },
        ..AgentLimits::default()
    })
    .await;
    let temp = tempfile::tempdir().expect("temp");
    let spool = Arc::new(Spool::open(temp.path(), 64 << 20).expect("spool"));
    let status = Arc::new(Status::default());
    spool_alerts(&spool, &status, 0, 600);
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let link = Link {
        config: link_config(&gateway),
        spool: Arc::clone(&spool),
        appended: Arc::new(Notify::new()),
        status: Arc::clone(&status) as Arc<dyn AgentStatus>,
        applier: None,
    };
    let started = Instant::now();
    let task = tokio::spawn(stream::run(link, shutdown_receiver));
    // the stream task empties the spool first and reports the release a moment later
    wait_for("every alert acked and reported", || {
        spool.is_empty() && status.acked.load(Ordering::Relaxed) >= 600
    })
    .await;
    let elapsed = started.elapsed();
    // 500 alerts above the burst at 400/s
    assert!(
        elapsed >= Duration::from_millis(1200),
        "the rate limit held the agent back: {elapsed:?}"
    );
    assert_eq!(gateway.topic.durable_end(), 600, "every alert stored once");
    assert_eq!(status.acked.load(Ordering::Relaxed), 600);
    let agents = gateway
        .agents
        .registry()
        .list(&TenantId::new("acme").expect("tenant"), None);
    assert!(agents[0].throttled > 0, "the gateway throttled: {agents:?}");
    assert_eq!(agents[0].durable_seq, 600);
    shutdown.send(true).expect("shutdown");
    task.await.expect("stream task");
}

/// Accepts configurations whose `mode` setting is `ok`.
#[derive(Default)]
struct TestApplier {
    applied: std::sync::Mutex<Vec<String>>,
}

impl ConfigApplier for TestApplier {
    fn apply(&self, config: &AgentConfig) -> Result<(), String> {
        match config.settings.get("mode").map(String::as_str) {
            Some("ok") => {
                self.applied
                    .lock()
                    .expect("lock")
                    .push(config.version.clone());
                Ok(())
            }
            other => Err(format!("mode {other:?} is not known")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_configuration_is_applied_and_a_refusal_is_reported_to_the_registry() {
    let gateway = start_gateway(AgentLimits::default()).await;
    let acme = TenantId::new("acme").expect("tenant");
    let configs = gateway.agents.configs();
    let settings = |mode: &str| BTreeMap::from([("mode".to_string(), mode.to_string())]);
    configs
        .set(&acme, "", BTreeMap::new(), settings("ok"))
        .await
        .expect("set");
    let temp = tempfile::tempdir().expect("temp");
    let applier = Arc::new(TestApplier::default());
    let mut config = link_config(&gateway);
    config.kind = AgentKind::Audit;
    config.agent_id = "audit/test".into();
    let (shutdown, shutdown_receiver) = watch::channel(false);
    let link = Link {
        config,
        spool: Arc::new(Spool::open(temp.path(), 1 << 20).expect("spool")),
        appended: Arc::new(Notify::new()),
        status: Arc::new(Status::default()),
        applier: Some(Arc::clone(&applier) as Arc<dyn ConfigApplier>),
    };
    let task = tokio::spawn(stream::run(link, shutdown_receiver));
    let registry = gateway.agents.registry();
    let agent = || registry.list(&acme, None).into_iter().next();
    wait_for("version 1 applied", || {
        agent().is_some_and(|agent| agent.config_version == "1")
    })
    .await;
    let listed = agent().expect("agent");
    assert_eq!(listed.kind, AgentKind::Audit as i32);
    assert_eq!(listed.state, AgentState::Connected as i32);

    configs
        .set(&acme, "", BTreeMap::new(), settings("fast"))
        .await
        .expect("set");
    wait_for("version 2 refused", || {
        agent().is_some_and(|agent| agent.config_error.contains("mode Some(\"fast\")"))
    })
    .await;
    assert_eq!(agent().expect("agent").config_version, "1");
    configs
        .set(&acme, "", BTreeMap::new(), settings("ok"))
        .await
        .expect("set");
    wait_for("version 3 applied", || {
        agent().is_some_and(|agent| agent.config_version == "3" && agent.config_error.is_empty())
    })
    .await;
    assert_eq!(*applier.applied.lock().expect("lock"), vec!["1", "3"]);
    shutdown.send(true).expect("shutdown");
    task.await.expect("stream task");
}
