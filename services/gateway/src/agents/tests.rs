//! The agent stream served over real gRPC on loopback, with the real ingest actor, durable log,
//! credentials and sled store: liveness, throttling, pushed configuration and the admin calls
//! that read them.

use std::time::Duration;

use actix::Actor;
use palisade_core::auth::Credentials;
use palisade_core::bridge::ActorSystem;
use palisade_core::ids::TenantId;
use palisade_core::log::Topic;
use palisade_proto::v1::admin_service_client::AdminServiceClient;
use palisade_proto::v1::admin_service_server::AdminServiceServer;
use palisade_proto::v1::agent_service_client::AgentServiceClient;
use palisade_proto::v1::agent_service_server::AgentServiceServer;
use palisade_proto::v1::{
    AgentKind, AgentState, Alert, GetAgentConfigRequest, ListAgentsRequest, SetAgentConfigRequest,
};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::*;
use crate::admin::AdminGrpc;
use crate::auth::Authenticate;
use crate::ingest::ALERTS_TOPIC;

/// A gateway serving AgentService and AdminService on a loopback port.
struct Gateway {
    url: String,
    topic: Topic,
    credentials: Credentials,
    _system: ActorSystem,
    _store: Store,
    _pki: tempfile::TempDir,
}

impl Gateway {
    async fn start(limits: AgentLimits) -> Gateway {
        let store = Store::temporary().expect("store");
        let topic = Topic::open(&store, ALERTS_TOPIC).expect("topic");
        let actor_topic = topic.clone();
        let (system, ingest) = ActorSystem::start("agents-test", move || {
            Ingest::new(actor_topic, 10_000).start()
        })
        .expect("actors");
        let credentials = Credentials::open(&store).expect("credentials");
        let agents =
            AgentGrpc::new(ingest, credentials.clone(), store.clone(), limits).expect("agents");
        let pki = tempfile::tempdir().expect("pki dir");
        let enrollment = crate::enrollment::EnrollmentSettings {
            authority: std::sync::Arc::new(
                palisade_core::pki::Authority::open_or_create(pki.path()).expect("ca"),
            ),
            agent_url: "https://127.0.0.1:7402".into(),
            token_ttl: Duration::from_secs(3600),
            certificate_validity: Duration::from_secs(3600),
        };
        let eraser = crate::erasure::TenantEraser::new(
            credentials.clone(),
            store.clone(),
            vec![topic.clone()],
        )
        .with_agents(&agents);
        let admin = AdminGrpc::new(
            credentials.clone(),
            store.clone(),
            Vec::new(),
            enrollment,
            eraser,
        )
        .with_agents(&agents);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let authenticate = Authenticate::new(credentials.clone());
        let server = tonic::transport::Server::builder()
            .add_service(InterceptedService::new(
                AgentServiceServer::new(agents),
                authenticate.clone(),
            ))
            .add_service(InterceptedService::new(
                AdminServiceServer::new(admin),
                authenticate,
            ))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        Gateway {
            url,
            topic,
            credentials,
            _system: system,
            _store: store,
            _pki: pki,
        }
    }

    fn token(&self, tenant: &str, role: Role) -> String {
        let tenant = TenantId::new(tenant).expect("tenant");
        self.credentials
            .ensure_tenant(&tenant, tenant.as_str())
            .expect("tenant");
        self.credentials
            .create_api_key(&tenant, role, "test")
            .expect("key")
            .token
    }

    async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    async fn admin(
        &self,
        token: &str,
    ) -> AdminServiceClient<InterceptedService<Channel, impl tonic::service::Interceptor + use<>>>
    {
        AdminServiceClient::with_interceptor(self.channel().await, bearer(token))
    }
}

fn bearer(token: &str) -> impl tonic::service::Interceptor + Clone + use<> {
    let header: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("header");
    move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", header.clone());
        Ok(request)
    }
}

/// A hand-driven agent: what it sends and what it receives.
struct RawAgent {
    outbound: mpsc::Sender<ConnectRequest>,
    inbound: Streaming<ConnectResponse>,
    hello: ServerHello,
}

fn hello(agent_id: &str, capabilities: &[&str], config_version: &str) -> AgentHello {
    AgentHello {
        agent_id: agent_id.into(),
        kind: AgentKind::Node as i32,
        version: "9.9.9".into(),
        node_name: format!("{agent_id}-node"),
        capabilities: capabilities.iter().map(|name| name.to_string()).collect(),
        config_version: config_version.into(),
        ..AgentHello::default()
    }
}

fn request(msg: connect_request::Msg) -> ConnectRequest {
    ConnectRequest { msg: Some(msg) }
}

fn batch(first_seq: u64, count: u64) -> ConnectRequest {
    request(connect_request::Msg::Batch(AlertBatch {
        first_seq,
        alerts: (first_seq..first_seq + count)
            .map(|seq| Alert {
                rule: "Agent stream test".into(),
                output: format!("alert {seq}"),
                source: "syscall".into(),
                ..Alert::default()
            })
            .collect(),
    }))
}

impl RawAgent {
    async fn connect(gateway: &Gateway, token: &str, hello: AgentHello) -> RawAgent {
        let (outbound, receiver) = mpsc::channel(16);
        outbound
            .send(request(connect_request::Msg::Hello(hello)))
            .await
            .expect("queue hello");
        let mut client =
            AgentServiceClient::with_interceptor(gateway.channel().await, bearer(token));
        let mut inbound = client
            .connect(ReceiverStream::new(receiver))
            .await
            .expect("connect")
            .into_inner();
        let hello = match inbound.message().await.expect("answer") {
            Some(ConnectResponse {
                msg: Some(connect_response::Msg::Hello(hello)),
            }) => hello,
            other => panic!("expected ServerHello, got {other:?}"),
        };
        RawAgent {
            outbound,
            inbound,
            hello,
        }
    }

    async fn send(&self, message: ConnectRequest) {
        self.outbound.send(message).await.expect("send");
    }

    /// The next message, within 10 s.
    async fn next(&mut self) -> Result<Option<connect_response::Msg>, Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.inbound.message()).await {
            Ok(result) => result.map(|message| message.and_then(|message| message.msg)),
            Err(_) => panic!("no message from the gateway within 10 s"),
        }
    }

    async fn expect_ack(&mut self) -> BatchAck {
        match self.next().await {
            Ok(Some(connect_response::Msg::Ack(ack))) => ack,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

fn fast_limits() -> AgentLimits {
    AgentLimits {
        heartbeat_interval: Duration::from_millis(200),
        ..AgentLimits::default()
    }
}

async fn agent_states(gateway: &Gateway, token: &str) -> Vec<(String, i32)> {
    gateway
        .admin(token)
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .expect("list agents")
        .into_inner()
        .agents
        .into_iter()
        .map(|agent| (agent.agent_id, agent.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_is_declared_dead_and_cut_off_while_a_heartbeating_one_stays() {
    let gateway = Gateway::start(fast_limits()).await;
    let token = gateway.token("acme", Role::Analyst);
    // before the hello: the gateway's deadline cannot start earlier than this
    let started = Instant::now();
    let mut silent = RawAgent::connect(&gateway, &token, hello("silent", &[], "")).await;
    let beating = RawAgent::connect(&gateway, &token, hello("beating", &[], "")).await;
    let closing = RawAgent::connect(&gateway, &token, hello("closing", &[], "")).await;
    assert_eq!(silent.hello.tenant_id, "acme");
    assert!(silent.hello.capabilities.contains(&"config".to_string()));
    drop(closing);
    let heartbeats = tokio::spawn(async move {
        for _ in 0..12 {
            beating
                .send(request(connect_request::Msg::Heartbeat(Heartbeat {
                    spool_batches: 4,
                    ..Heartbeat::default()
                })))
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        beating
    });
    let end = silent
        .next()
        .await
        .expect_err("the silent agent is cut off");
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end}");
    assert!(end.message().contains("considered dead"), "{end}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "dead only after three intervals, not after {:?}",
        started.elapsed()
    );
    let _beating = heartbeats.await.expect("heartbeats");
    let states = agent_states(&gateway, &token).await;
    assert_eq!(
        states,
        vec![
            ("beating".to_string(), AgentState::Connected as i32),
            ("closing".to_string(), AgentState::Disconnected as i32),
            ("silent".to_string(), AgentState::Dead as i32),
        ]
    );
    let other_tenant = gateway.token("globex", Role::Admin);
    assert!(
        agent_states(&gateway, &other_tenant).await.is_empty(),
        "another tenant's admin sees none of acme's agents"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_tenants_rate_an_agent_is_throttled_and_its_resend_is_stored_once() {
    let limits = AgentLimits {
        rate: RateLimit {
            alerts_per_second: 20,
            burst: 20,
        },
        ..AgentLimits::default()
    };
    let gateway = Gateway::start(limits).await;
    let token = gateway.token("acme", Role::Analyst);
    let mut agent = RawAgent::connect(&gateway, &token, hello("node/a", &["throttle"], "")).await;
    agent.send(batch(1, 15)).await;
    assert_eq!(agent.expect_ack().await.up_to_seq, 15);
    // two batches on the wire: the first is over the rate, the second already sent
    agent.send(batch(16, 10)).await;
    agent.send(batch(26, 5)).await;
    let throttle = match agent.next().await {
        Ok(Some(connect_response::Msg::Throttle(throttle))) => throttle,
        other => panic!("expected Throttle, got {other:?}"),
    };
    assert!(
        throttle.reason.contains("tenant acme"),
        "{}",
        throttle.reason
    );
    assert!(
        throttle.reason.contains("TENANT_RATE_LIMITED"),
        "{}",
        throttle.reason
    );
    let retry_after =
        Duration::try_from(throttle.retry_after.expect("retry_after")).expect("duration");
    // at most 5 tokens short at 20/s; the refill since the first batch can only shorten it
    assert!(
        retry_after >= Duration::from_millis(100) && retry_after <= Duration::from_millis(250),
        "5 tokens left, 10 needed at 20/s: {retry_after:?}"
    );
    assert_eq!(
        gateway.topic.durable_end(),
        15,
        "nothing of the throttled batch is stored"
    );
    tokio::time::sleep(retry_after).await;
    agent.send(batch(16, 10)).await;
    let ack = agent.expect_ack().await;
    assert_eq!(
        (ack.up_to_seq, ack.duplicates),
        (25, 0),
        "batch 26 was skipped, not a gap"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.send(batch(26, 5)).await;
    assert_eq!(agent.expect_ack().await.up_to_seq, 30);
    assert_eq!(gateway.topic.durable_end(), 30, "every alert stored once");
    let admin = gateway.token("acme", Role::ReadOnly);
    let listed = gateway
        .admin(&admin)
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert_eq!((listed[0].throttled, listed[0].durable_seq), (1, 30));

    // an agent that does not honour Throttle is cut off with the reason instead
    let mut legacy = RawAgent::connect(&gateway, &token, hello("node/legacy", &[], "")).await;
    legacy.send(batch(1, 20)).await;
    legacy.send(batch(21, 20)).await;
    let status = loop {
        match legacy.next().await {
            Ok(Some(connect_response::Msg::Ack(_))) => continue,
            Ok(other) => panic!("expected the stream to end, got {other:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("TENANT_RATE_LIMITED"), "{status}");
}

fn rules(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

async fn expect_config(agent: &mut RawAgent) -> AgentConfig {
    match agent.next().await {
        Ok(Some(connect_response::Msg::Config(config))) => config,
        other => panic!("expected AgentConfig, got {other:?}"),
    }
}

async fn applied(agent: &RawAgent, version: &str, error: Option<&str>) {
    agent
        .send(request(connect_request::Msg::ConfigApplied(
            ConfigApplied {
                version: version.into(),
                ok: error.is_none(),
                error: error.unwrap_or_default().into(),
            },
        )))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_pushed_after_hello_and_on_change_and_its_outcome_recorded() {
    let gateway = Gateway::start(AgentLimits::default()).await;
    let admin_token = gateway.token("acme", Role::Admin);
    let agent_token = gateway.token("acme", Role::Analyst);
    let mut admin = gateway.admin(&admin_token).await;
    let first = admin
        .set_agent_config(SetAgentConfigRequest {
            rules_files: rules(&[("a.yaml", "- list: shells\n  items: [bash]\n")]),
            settings: rules(&[("mode", "strict")]),
            ..SetAgentConfigRequest::default()
        })
        .await
        .expect("set")
        .into_inner();
    let version = first.config.expect("config").version;
    assert_eq!((version.as_str(), first.pushed_to), ("1", 0));

    let mut agent =
        RawAgent::connect(&gateway, &agent_token, hello("node/a", &["config"], "")).await;
    let pushed = expect_config(&mut agent).await;
    assert_eq!(pushed.version, "1");
    assert_eq!(pushed.settings["mode"], "strict");
    applied(&agent, "1", None).await;

    let second = admin
        .set_agent_config(SetAgentConfigRequest {
            rules_files: rules(&[("a.yaml", "- rule: [broken")]),
            ..SetAgentConfigRequest::default()
        })
        .await
        .expect("set again")
        .into_inner();
    assert_eq!(second.pushed_to, 1);
    let pushed = expect_config(&mut agent).await;
    assert_eq!(pushed.version, "2");
    applied(&agent, "2", Some("a.yaml: did not parse")).await;
    // a heartbeat round trip orders the check after the gateway read ConfigApplied
    agent
        .send(request(connect_request::Msg::Heartbeat(
            Heartbeat::default(),
        )))
        .await;
    assert!(matches!(
        agent.next().await,
        Ok(Some(connect_response::Msg::Heartbeat(_)))
    ));
    let listed = admin
        .list_agents(ListAgentsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert_eq!(
        listed[0].config_version, "1",
        "the refused version is not applied"
    );
    assert!(
        listed[0].config_error.contains("did not parse"),
        "{}",
        listed[0].config_error
    );

    // an agent already at the current version, or not taking pushes, gets nothing
    let mut current =
        RawAgent::connect(&gateway, &agent_token, hello("node/b", &["config"], "2")).await;
    let mut unable = RawAgent::connect(&gateway, &agent_token, hello("node/c", &[], "")).await;
    for agent in [&mut current, &mut unable] {
        agent
            .send(request(connect_request::Msg::Heartbeat(
                Heartbeat::default(),
            )))
            .await;
        assert!(matches!(
            agent.next().await,
            Ok(Some(connect_response::Msg::Heartbeat(_)))
        ));
    }

    let analyst = gateway
        .admin(&agent_token)
        .await
        .set_agent_config(SetAgentConfigRequest::default())
        .await;
    assert_eq!(
        analyst.expect_err("needs admin").code(),
        tonic::Code::PermissionDenied
    );
    let other = gateway.token("globex", Role::Admin);
    let foreign = gateway
        .admin(&other)
        .await
        .get_agent_config(GetAgentConfigRequest::default())
        .await
        .expect("get")
        .into_inner();
    assert_eq!(foreign.config, None, "acme's configuration is not globex's");
}
