//! The platform: every service in one process on the embedded storage, as `palisade up` runs
//! it (and benchmarks and tests start it in process), or one service of the distributed mode,
//! as `palisade serve ROLE` runs it.
//!
//! Start-up order: data directory (locked) -> sled store -> credentials and the first admin
//! token (gateway) -> the alert and finding logs (the gateway's own, or replicas following the
//! gateway's) -> actors (search indexer and searchers, ingest, image scanner) -> the graph
//! service (its store, then its feeding task) -> gRPC and HTTP listeners (and the agent
//! listener, gateway). Shutdown runs it backwards: listeners stop taking calls and finish the
//! ones in flight, the replicas and the graph's task stop, the indexer catches up with the log
//! and commits, the store is flushed, the actors stop.
//!
//! In the distributed mode the gateway serves the log to the other services (LogService) and
//! forwards the search, graph and scanner APIs to them after authenticating each call; the
//! other services accept only calls carrying the internal service credential.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use anyhow::Context;
use palisade_core::auth::Credentials;
use palisade_core::auth::service::{ServiceAuthenticate, ServiceOnly, ServiceToken};
use palisade_core::bridge::ActorSystem;
use palisade_core::config::Config;
use palisade_core::data_dir::DataDir;
use palisade_core::log::Topic;
use palisade_core::log::remote::{
    LogGrpc, MAX_LOG_MESSAGE_BYTES, RemoteTopic, TopicWriter, spawn_follower,
};
use palisade_core::pki::Authority;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_gateway::auth::Authenticate;
use palisade_gateway::erasure::{Forgetter, Keeper};
use palisade_gateway::forward::Forward;
use palisade_gateway::ingest::ALERTS_TOPIC;
use palisade_gateway::{
    AdminGrpc, AgentGrpc, AgentLimits, AgentRegistry, AlertGrpc, Ingest, Probe, StatusProbe,
    TenantEraser,
};
use palisade_proto::v1::log_service_server::LogServiceServer;
use tonic::server::NamedService;

use crate::peers::{
    Peer, PeerStatusGrpc, Peers, local_graph_forgetter, local_scanner_forgetter,
    local_search_forgetter, peer_forgetter, peer_probe, remote_image_scanner,
};
use palisade_graph::grpc::GraphGrpc;
use palisade_graph::live::{GraphCore, GraphSettings, GraphTopics, ImageScanner, ScanOrder};
use palisade_proto::v1::admin_service_server::AdminServiceServer;
use palisade_proto::v1::agent_service_server::AgentServiceServer;
use palisade_proto::v1::alert_service_server::AlertServiceServer;
use palisade_proto::v1::graph_service_server::GraphServiceServer;
use palisade_proto::v1::notify_service_server::NotifyServiceServer;
use palisade_proto::v1::peer_status_service_server::PeerStatusServiceServer;
use palisade_proto::v1::scanner_service_server::ScannerServiceServer;
use palisade_proto::v1::{ComponentStatus, HealthState, ScanImageRequest};
// The search service's own server: its Search answers carry stored records undecoded.
use palisade_proto::wire::search_service_server::SearchServiceServer;
use palisade_scanner::service::ScanImage;
use palisade_scanner::service::default_cache_dir;
use palisade_scanner::{ScannerActor, ScannerCore, ScannerGrpc, ScannerSettings};
use palisade_search::indexer::CatchUp;
use palisade_search::{
    FINDINGS_TOPIC, SearchActors, SearchGrpc, SearchPeer, SearchTopics, start_search_actors,
};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;

/// Longest a graceful shutdown may take before giving up on draining.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Which services a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every service, on one data directory (`palisade up`).
    Embedded,
    /// Credentials, the log, ingest, the agent listener, admin, notifications; forwards the
    /// search, graph and scanner APIs.
    Gateway,
    /// The search index, on a replica of the log.
    Search,
    /// The security graph, on a replica of the log.
    Graph,
    /// The image scanner, publishing findings to the gateway's log.
    Scanner,
}

impl Role {
    /// The role's name, as `palisade serve` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Embedded => "embedded",
            Role::Gateway => "gateway",
            Role::Search => "search",
            Role::Graph => "graph",
            Role::Scanner => "scanner",
        }
    }

    fn gateway(self) -> bool {
        matches!(self, Role::Embedded | Role::Gateway)
    }

    fn search(self) -> bool {
        matches!(self, Role::Embedded | Role::Search)
    }

    fn graph(self) -> bool {
        matches!(self, Role::Embedded | Role::Graph)
    }

    fn scanner(self) -> bool {
        matches!(self, Role::Embedded | Role::Scanner)
    }
}

/// A running platform (or one service of it).
pub struct Platform {
    /// What this process runs.
    pub role: Role,
    /// Where the gRPC listener is bound.
    pub grpc_address: SocketAddr,
    /// Where the HTTP listener is bound.
    pub http_address: SocketAddr,
    /// Whether the gRPC and HTTP listeners speak TLS.
    pub tls: bool,
    /// Where the agent listener (TLS, client certificates) is bound: the gateway only.
    pub agent_address: Option<SocketAddr>,
    /// The URL enrollment bundles give agents: the gateway only.
    pub agent_url: Option<String>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The internal CA's certificate.
    pub ca_file: PathBuf,
    /// Set when this start created the admin token.
    pub created_admin_token: bool,
    /// The search actors, for status and benchmarks (when this process runs search).
    pub search: Option<SearchActors>,
    shutdown: Shutdown,
    running: Running,
}

struct Running {
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    agent_task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    http_task: JoinHandle<std::io::Result<()>>,
    graph_task: Option<JoinHandle<()>>,
    followers: Vec<JoinHandle<()>>,
    notifier: Option<palisade_notify::NotifierHandle>,
    health_reporter: tonic_health::server::HealthReporter,
    served: Vec<&'static str>,
    store: Store,
    actor_system: ActorSystem,
    _data_dir: DataDir,
}

impl Platform {
    /// The signal that stops the platform.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The path of the admin token.
    pub fn admin_token_path(&self) -> PathBuf {
        palisade_core::data_dir::admin_token_path(&self.data_dir)
    }

    /// Waits until shutdown is triggered, then drains, commits, flushes and stops.
    pub async fn run_until_shutdown(self) -> anyhow::Result<()> {
        self.shutdown.triggered().await;
        let running = self.running;
        for name in &running.served {
            running
                .health_reporter
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        let search = self.search;
        let store = running.store.clone();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            if let Ok(Err(error)) = running.grpc_task.await {
                tracing::error!(%error, "gRPC server stopped with an error");
            }
            if let Some(agent_task) = running.agent_task
                && let Ok(Err(error)) = agent_task.await
            {
                tracing::error!(%error, "agent listener stopped with an error");
            }
            if let Ok(Err(error)) = running.http_task.await {
                tracing::error!(%error, "HTTP server stopped with an error");
            }
            for follower in running.followers {
                if let Err(error) = follower.await {
                    tracing::error!(%error, "log replica stopped with an error");
                }
            }
            if let Some(graph_task) = running.graph_task
                && let Err(error) = graph_task.await
            {
                tracing::error!(%error, "graph service stopped with an error");
            }
            if let Some(notifier) = running.notifier
                && let Err(error) = notifier.stopped().await
            {
                tracing::error!(%error, "alert notifications stopped with an error");
            }
            if let Some(search) = &search {
                match search.indexer.send(CatchUp { commit_now: true }).await {
                    Ok(Ok(progress)) => tracing::info!(indexed_offset = progress.committed.alerts, "search index committed"),
                    Ok(Err(error)) => tracing::error!(%error, "final index commit failed; it will be redone at the next start"),
                    Err(error) => tracing::error!(%error, "indexer unavailable at shutdown"),
                }
            }
            store.flush().await
        })
        .await;
        match drained {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "final flush failed"),
            Err(_) => {
                tracing::error!("shutdown took longer than {SHUTDOWN_GRACE:?}; stopping anyway")
            }
        }
        let actor_system = running.actor_system;
        tokio::task::spawn_blocking(move || actor_system.stop())
            .await
            .ok();
        Ok(())
    }
}

/// Starts every service and binds the listeners. Must be called on a multi-thread tokio runtime.
pub async fn start(config: &Config) -> anyhow::Result<Platform> {
    start_role(config, Role::Embedded).await
}

/// Starts the services of `role` and binds the listeners. Must be called on a multi-thread
/// tokio runtime.
pub async fn start_role(config: &Config, role: Role) -> anyhow::Result<Platform> {
    // the HTTP listener's TLS takes the process-wide provider; installed once, kept if set
    let _ = rustls::crypto::ring::default_provider().install_default();
    palisade_gateway::register_metrics();
    palisade_search::register_metrics();
    palisade_scanner::service::register_metrics();
    let data_dir = DataDir::open(&config.data_dir)?;
    let store = Store::open(&data_dir.db_path()).with_context(|| {
        format!(
            "cannot open the database in {}",
            data_dir.db_path().display()
        )
    })?;
    let shutdown = Shutdown::new();
    // before the peers: their certificates may be the internal CA's
    let pki_dir = config.pki_dir();
    let authority = Arc::new(
        Authority::open_or_create(&pki_dir)
            .with_context(|| format!("cannot open the internal CA in {}", pki_dir.display()))?,
    );
    let peers = match role {
        Role::Embedded => None,
        _ => Some(Peers::from_config(config, role)?),
    };
    let credentials = match role.gateway() {
        true => Some(Credentials::open(&store)?),
        false => None,
    };
    let mut created_admin_token = false;
    if let Some(credentials) = &credentials {
        created_admin_token = credentials
            .ensure_admin_token(&data_dir.admin_token_path())
            .await?
            .is_some();
    }
    // The gateway's log, or (search, graph) replicas of it at the same offsets.
    let topic = Topic::open(&store, ALERTS_TOPIC)?;
    let findings = Topic::open(&store, FINDINGS_TOPIC)?;
    let mut followers = Vec::new();
    let mut replicas = Vec::new();
    if let (Some(peers), Role::Search | Role::Graph) = (&peers, role) {
        let gateway = peers.gateway()?;
        for replica in [&topic, &findings] {
            let source =
                RemoteTopic::new(gateway.channel.clone(), peers.token.clone(), replica.name());
            let (task, monitor) = spawn_follower(source, replica.clone(), shutdown.clone());
            followers.push(task);
            replicas.push(monitor);
        }
    }
    let search_topics = SearchTopics {
        alerts: topic.clone(),
        findings: findings.clone(),
    };

    let scanner = match role.scanner() {
        true => {
            let writer: TopicWriter = match &peers {
                Some(peers) => RemoteTopic::new(
                    peers.gateway()?.channel.clone(),
                    peers.token.clone(),
                    FINDINGS_TOPIC,
                )
                .into(),
                None => findings.clone().into(),
            };
            let settings = ScannerSettings {
                vulndb: config
                    .scanner
                    .vulndb
                    .clone()
                    .unwrap_or_else(|| data_dir.root().join("vulndb")),
                cache_dir: default_cache_dir(data_dir.root()),
                config: config.scanner.clone(),
            };
            let core =
                ScannerCore::new(settings, &store, writer, tokio::runtime::Handle::current())
                    .context("cannot start the image scanner")?;
            Some(core)
        }
        false => None,
    };
    let scanner_probe = scanner.clone();

    let graph_topics = GraphTopics {
        alerts: topic.clone(),
        findings: findings.clone(),
    };
    let index_path = data_dir.index_path();
    let search_config = config.search.clone();
    let max_alerts_per_batch = config.limits.max_alerts_per_batch;
    let actor_topic = topic.clone();
    let actor_store = store.clone();
    let (actor_system, started) = ActorSystem::start(role.name(), move || {
        let search = match role.search() {
            true => Some(start_search_actors(
                &index_path,
                search_topics,
                &actor_store,
                &search_config,
            )?),
            false => None,
        };
        let ingest = role
            .gateway()
            .then(|| Ingest::new(actor_topic, max_alerts_per_batch).start());
        let scanner = scanner.map(|core| ScannerActor::new(core).start());
        Ok::<_, palisade_search::SearchError>((search, ingest, scanner))
    })?;
    let (search_actors, ingest, scanner) = started.context("cannot start the search service")?;

    let graph = match role.graph() {
        true => Some(open_graph(config, data_dir.root(), &graph_topics).await?),
        false => None,
    };

    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", config.grpc_listen))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_listen))?;
    let agent_listener = match role.gateway() {
        true => Some(
            tokio::net::TcpListener::bind(config.agent_listen)
                .await
                .with_context(|| format!("cannot listen for agents on {}", config.agent_listen))?,
        ),
        false => None,
    };
    let grpc_address = grpc_listener.local_addr()?;
    let http_address = http_listener.local_addr()?;
    let agent_address = agent_listener
        .as_ref()
        .map(tokio::net::TcpListener::local_addr)
        .transpose()?;
    let listener_certificate = crate::listener_tls::listener_certificate(
        config,
        &authority,
        &[grpc_address, http_address],
    )?;

    let max_message = config.limits.max_message_bytes;
    let mut grpc_builder = tonic::transport::Server::builder();
    if let Some(certificate) = &listener_certificate {
        let identity = tonic::transport::Identity::from_pem(
            &certificate.certificate_pem,
            &certificate.key_pem,
        );
        grpc_builder = grpc_builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("invalid TLS certificate or key for the gRPC listener")?;
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let mut served: Vec<&'static str> = Vec::new();
    let mut routes = tonic::service::Routes::builder();
    routes.add_service(health_service);

    // What the services behind the gateway accept: the service credential, or (embedded)
    // the callers' own keys.
    let service_auth = peers
        .as_ref()
        .map(|peers| ServiceAuthenticate::new(peers.token.clone()));
    macro_rules! serve_local {
        ($server:expr, $authenticate:expr) => {{
            let server = $server
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message);
            served.push(named(&server));
            match (&service_auth, role) {
                (Some(service_auth), Role::Search | Role::Graph | Role::Scanner) => {
                    routes.add_service(InterceptedService::new(server, service_auth.clone()));
                }
                _ => {
                    routes.add_service(InterceptedService::new(server, $authenticate));
                }
            }
        }};
    }

    let mut http_router = palisade_gateway::http::router();
    let mut agent_task = None;
    let mut notifier = None;
    let mut agent_url = None;
    let mut gateway_probes: Vec<Probe> = Vec::new();
    let mut admin_parts = None;
    if let (Some(credentials), Some(ingest), Some(agent_listener), Some(agent_address)) =
        (&credentials, &ingest, agent_listener, agent_address)
    {
        let enrollment = crate::agent_listener::enrollment_settings_with(
            config,
            Arc::clone(&authority),
            agent_address,
        );
        let authenticate = Authenticate::new(credentials.clone());
        let agent_grpc = AgentGrpc::new(
            ingest.clone(),
            credentials.clone(),
            store.clone(),
            AgentLimits::from_config(&config.agents),
        )?;
        let agents = AgentServiceServer::new(agent_grpc.clone())
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message);
        served.push(named(&agents));
        routes.add_service(InterceptedService::new(
            agents.clone(),
            authenticate.clone(),
        ));
        let falco_webhook = palisade_gateway::falco_webhook::FalcoWebhook {
            ingest: ingest.clone(),
            credentials: credentials.clone(),
            max_body_bytes: config.limits.max_message_bytes,
            max_alerts: config.limits.max_alerts_per_batch,
        };
        http_router = palisade_gateway::http::router_with_falco_webhook(falco_webhook);
        serve_local!(
            AlertServiceServer::new(AlertGrpc::new(ingest.clone(), topic.clone())),
            authenticate.clone()
        );
        let started = palisade_notify::Notifier::start(&config.notify, &store, &topic, &shutdown)
            .context("cannot start the alert notifications")?;
        let notify_monitor = started.monitor();
        notifier = Some(started);
        serve_local!(
            NotifyServiceServer::new(palisade_notify::NotifyGrpc::new(notify_monitor.clone())),
            authenticate.clone()
        );
        let notify_probe: StatusProbe = Arc::new(move || notify_monitor.component_status());
        gateway_probes.push(gateway_probe(agent_grpc.registry()).into());
        gateway_probes.push(log_probe(&topic).into());
        if let Some(peers) = &peers {
            // the distributed gateway: the log for the other services, their APIs forwarded
            let log = LogServiceServer::new(LogGrpc::new([topic.clone(), findings.clone()]))
                .max_decoding_message_size(MAX_LOG_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_LOG_MESSAGE_BYTES);
            routes.add_service(InterceptedService::new(
                log,
                ServiceOnly::new(peers.token.clone()),
            ));
            // in the order of the embedded mode's components
            for peer in [&peers.search, &peers.scanner, &peers.graph]
                .into_iter()
                .flatten()
            {
                gateway_probes.push(Probe::Ask(peer_probe(peer, peers.token.clone())));
            }
            forward::<SearchServiceServer<SearchGrpc>>(
                &peers.search,
                credentials,
                &peers.token,
                &mut served,
                &mut routes,
            );
            forward::<GraphServiceServer<GraphGrpc>>(
                &peers.graph,
                credentials,
                &peers.token,
                &mut served,
                &mut routes,
            );
            forward::<ScannerServiceServer<ScannerGrpc>>(
                &peers.scanner,
                credentials,
                &peers.token,
                &mut served,
                &mut routes,
            );
        }
        let mut eraser = TenantEraser::new(
            credentials.clone(),
            store.clone(),
            vec![topic.clone(), findings.clone()],
        )
        .with_agents(&agent_grpc);
        // each service forgets the tenant in this process, or behind the gateway
        for keeper in [Keeper::Scanner, Keeper::Search, Keeper::Graph] {
            let local = local_forgetter(keeper, &scanner_probe, &search_actors, &graph);
            let remote = peers.as_ref().and_then(|peers| {
                let peer = match keeper {
                    Keeper::Scanner => &peers.scanner,
                    Keeper::Search => &peers.search,
                    Keeper::Graph => &peers.graph,
                };
                let token = peers.token.clone();
                peer.clone().map(|peer| peer_forgetter(keeper, peer, token))
            });
            if let Some(forget) = local.or(remote) {
                eraser = eraser.with_forgetter(keeper, forget);
            }
        }
        tokio::spawn(eraser.clone().keep_finishing(shutdown.clone()));
        admin_parts = Some((
            credentials.clone(),
            enrollment.clone(),
            agent_grpc,
            notify_probe,
            authenticate,
            eraser,
        ));
        agent_url = Some(enrollment.agent_url.clone());
        agent_task = Some(crate::agent_listener::serve(
            agent_listener,
            config,
            &enrollment,
            credentials.clone(),
            agents,
            shutdown.clone(),
        )?);
    }
    let user_auth = credentials
        .as_ref()
        .map(|credentials| Authenticate::new(credentials.clone()));
    if let Some(search) = &search_actors {
        serve_local!(
            SearchServiceServer::new(SearchGrpc::new(SearchPeer::Local(search.clone()))),
            user_auth
                .clone()
                .context("embedded search without credentials")?
        );
    }
    if let Some(scanner) = &scanner {
        serve_local!(
            ScannerServiceServer::new(ScannerGrpc::new(scanner.clone())),
            user_auth
                .clone()
                .context("embedded scanner without credentials")?
        );
    }
    if let Some(graph) = &graph {
        serve_local!(
            GraphServiceServer::new(GraphGrpc::new(graph.clone())),
            user_auth
                .clone()
                .context("embedded graph without credentials")?
        );
    }
    if let Some((credentials, enrollment, agent_grpc, notify_probe, authenticate, eraser)) =
        admin_parts
    {
        // the order status lists the components in
        let mut probes = gateway_probes;
        if let Some(search) = &search_actors {
            probes.push(search_probe(search).into());
        }
        if let Some(scanner) = scanner_probe.clone() {
            probes.push(scanner_status_probe(scanner).into());
        }
        if let Some(graph) = &graph {
            probes.push(graph_probe(graph.clone()).into());
        }
        probes.push(notify_probe.into());
        probes.push(storage_probe(&store).into());
        serve_local!(
            AdminServiceServer::new(
                AdminGrpc::new(credentials, store.clone(), probes, enrollment, eraser)
                    .with_agents(&agent_grpc),
            ),
            authenticate
        );
    }
    if let (Some(peers), Role::Search | Role::Graph | Role::Scanner) = (&peers, role) {
        // what the gateway's status shows of this service
        let component = match (&search_actors, &scanner_probe, &graph) {
            (Some(search), _, _) => search_probe(search),
            (_, Some(scanner), _) => scanner_status_probe(scanner.clone()),
            (_, _, Some(graph)) => graph_probe(graph.clone()),
            _ => anyhow::bail!("{} runs no component", role.name()),
        };
        let keeper = match role {
            Role::Search => Keeper::Search,
            Role::Graph => Keeper::Graph,
            _ => Keeper::Scanner,
        };
        let forget = local_forgetter(keeper, &scanner_probe, &search_actors, &graph);
        let status =
            PeerStatusServiceServer::new(PeerStatusGrpc::new(component, replicas.clone(), forget));
        routes.add_service(InterceptedService::new(
            status,
            ServiceOnly::new(peers.token.clone()),
        ));
    }
    for name in &served {
        health_reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = reflection_builder(&served).build_v1()?;
    let reflection_v1alpha = reflection_builder(&served).build_v1alpha()?;
    routes.add_service(reflection_v1);
    routes.add_service(reflection_v1alpha);
    let grpc_routes = routes.routes();
    if role.gateway() {
        // The console calls these same routes in process, as the signed-in key.
        http_router = http_router.merge(palisade_gateway::console::router(
            grpc_routes.clone(),
            palisade_gateway::console::ConsoleSettings {
                secure: listener_certificate.is_some(),
                ..Default::default()
            },
        ));
    }
    let grpc_server = grpc_builder
        .concurrency_limit_per_connection(256)
        .add_routes(grpc_routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), {
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
    let http_task = serve_http(
        http_listener,
        http_router,
        listener_certificate.as_ref(),
        shutdown.clone(),
    )
    .await?;

    let graph_task = match graph {
        Some(graph) => {
            let image_scanner = match (&scanner, &peers) {
                (Some(scanner), _) => Some(image_scanner(scanner.clone())),
                (None, Some(peers)) => peers
                    .scanner
                    .as_ref()
                    .map(|scanner| remote_image_scanner(scanner, peers.token.clone())),
                (None, None) => None,
            };
            Some(tokio::spawn(graph.run(image_scanner, shutdown.clone())))
        }
        None => None,
    };
    let grpc_task = tokio::spawn(grpc_server);
    if !replicas.is_empty() {
        tracing::info!(role = role.name(), "following the gateway's log");
    }
    Ok(Platform {
        role,
        grpc_address,
        http_address,
        agent_address,
        agent_url,
        tls: listener_certificate.is_some(),
        data_dir: config.data_dir.clone(),
        ca_file: pki_dir.join("ca.pem"),
        created_admin_token,
        search: search_actors,
        shutdown,
        running: Running {
            grpc_task,
            agent_task,
            http_task,
            graph_task,
            followers,
            notifier,
            health_reporter,
            served,
            store,
            actor_system,
            _data_dir: data_dir,
        },
    })
}

/// Serves service `S` of the distributed mode by forwarding its calls to `peer`, if configured.
fn forward<S: NamedService + 'static>(
    peer: &Option<Peer>,
    credentials: &Credentials,
    token: &ServiceToken,
    served: &mut Vec<&'static str>,
    routes: &mut tonic::service::RoutesBuilder,
) {
    if let Some(peer) = peer {
        served.push(S::NAME);
        routes.add_service(Forward::<S>::new(
            peer.name,
            peer.channel.clone(),
            credentials.clone(),
            token.clone(),
        ));
    }
}

/// The gRPC name of a generated server.
fn named<S: tonic::server::NamedService>(_server: &S) -> &'static str {
    S::NAME
}

/// Serves the HTTP listener, over TLS when a certificate is given, until `shutdown`.
async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    certificate: Option<&crate::listener_tls::ListenerCertificate>,
    shutdown: Shutdown,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let Some(certificate) = certificate else {
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.triggered().await });
        return Ok(tokio::spawn(async move { server.await }));
    };
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(
        certificate.certificate_pem.clone().into_bytes(),
        certificate.key_pem.clone().into_bytes(),
    )
    .await
    .context("invalid TLS certificate or key for the HTTP listener")?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.triggered().await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let server = axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
        .handle(handle)
        .serve(router.into_make_service());
    Ok(tokio::spawn(server))
}

fn serving(name: &str, detail: String, metrics: Vec<(&str, String)>) -> ComponentStatus {
    ComponentStatus {
        name: name.to_string(),
        state: HealthState::Serving as i32,
        detail,
        metrics: metrics
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    }
}

fn gateway_probe(agents: Arc<AgentRegistry>) -> StatusProbe {
    Arc::new(move || {
        let counts = agents.counts();
        serving(
            "gateway",
            format!(
                "accepting calls; agents: {} connected, {} dead (missed three heartbeats), {} disconnected",
                counts.connected, counts.dead, counts.disconnected
            ),
            vec![
                ("agents_connected", counts.connected.to_string()),
                ("agents_dead", counts.dead.to_string()),
                ("agents_disconnected", counts.disconnected.to_string()),
            ],
        )
    })
}

fn log_probe(topic: &Topic) -> StatusProbe {
    let log_topic = topic.clone();
    Arc::new(move || {
        let records = log_topic.durable_end();
        serving(
            "log",
            format!("{records} alerts stored"),
            vec![("records", records.to_string())],
        )
    })
}

fn search_probe(search_actors: &SearchActors) -> StatusProbe {
    let search_actors = search_actors.clone();
    Arc::new(move || {
        let status = search_actors.status();
        let lag = status.log_end.saturating_sub(status.indexed_offset);
        let mut component = serving(
            "search",
            format!(
                "{} documents, {lag} alerts waiting to be indexed",
                status.documents
            ),
            vec![
                ("documents", status.documents.to_string()),
                ("indexed_offset", status.indexed_offset.to_string()),
                ("lag", lag.to_string()),
            ],
        );
        if lag > 100_000 {
            component.state = HealthState::Degraded as i32;
        }
        component
    })
}

fn storage_probe(store: &Store) -> StatusProbe {
    let storage_store = store.clone();
    Arc::new(move || match storage_store.size_on_disk() {
        Ok(bytes) => serving(
            "storage",
            format!("{} MiB on disk", bytes / (1024 * 1024)),
            vec![("bytes", bytes.to_string())],
        ),
        Err(error) => ComponentStatus {
            name: "storage".into(),
            state: HealthState::NotServing as i32,
            detail: error.to_string(),
            metrics: Default::default(),
        },
    })
}

fn scanner_status_probe(scanner: ScannerCore) -> StatusProbe {
    Arc::new(move || {
        let images = scanner.image_count();
        let database = &scanner.settings().vulndb;
        match palisade_vulndb::VulnDb::generation(database) {
            Some(generation) => serving(
                "scanner",
                format!("{images} images scanned; vulnerability database generation {generation}"),
                vec![
                    ("images", images.to_string()),
                    ("vulndb_generation", generation.to_string()),
                ],
            ),
            // scans still work (packages only): serving, with the reason in the detail
            None => serving(
                "scanner",
                format!(
                    "{images} images scanned; no vulnerability database in {} yet (run `palisade vulndb import`): scans list packages only",
                    database.display()
                ),
                vec![("images", images.to_string())],
            ),
        }
    })
}

/// What forgets a deleted tenant in `keeper`, when that service runs in this process.
fn local_forgetter(
    keeper: Keeper,
    scanner: &Option<ScannerCore>,
    search: &Option<SearchActors>,
    graph: &Option<GraphCore>,
) -> Option<Forgetter> {
    match keeper {
        Keeper::Scanner => scanner.clone().map(local_scanner_forgetter),
        Keeper::Search => search
            .as_ref()
            .map(|search| local_search_forgetter(search.settings.clone())),
        Keeper::Graph => graph.clone().map(local_graph_forgetter),
    }
}

/// Opens the graph service's store under the data directory and loads what it holds.
async fn open_graph(
    config: &Config,
    data_root: &std::path::Path,
    topics: &GraphTopics,
) -> anyhow::Result<GraphCore> {
    let settings = GraphSettings {
        store_path: data_root.join("graph"),
        config: config.graph.clone(),
    };
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || GraphCore::open(settings, topics))
        .await
        .context("the graph service failed to start")?
        .context("cannot open the graph service's store")
}

/// The scanner as the graph service asks it for the images the inventory runs: the scan is
/// made for the tenant whose inventory runs the image, and its findings reach the graph through
/// the log like any other scan's.
fn image_scanner(scanner: actix::Addr<ScannerActor>) -> ImageScanner {
    Arc::new(move |order: ScanOrder| {
        let scanner = scanner.clone();
        Box::pin(async move {
            let tenant = palisade_core::ids::TenantId::new(order.tenant)
                .map_err(|error| error.to_string())?;
            let request = ScanImageRequest {
                image: order.image,
                cluster_id: order.cluster,
                ..ScanImageRequest::default()
            };
            scanner
                .send(ScanImage { tenant, request })
                .await
                .map_err(|error| error.to_string())?
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    })
}

fn graph_probe(graph: GraphCore) -> StatusProbe {
    Arc::new(move || {
        let status = graph.status();
        let problems: usize = status.sources.values().map(|source| source.problems).sum();
        let mut detail = format!(
            "{} entities, {} attack paths, {} clusters configured; images scanned {}, waiting {}, failed {}",
            status.entities,
            status.attack_paths,
            status.sources.len(),
            status.images_scanned,
            status.images_waiting,
            status.images_failed,
        );
        let recent_problem = status.recent_problem();
        if let Some((source, problem)) = recent_problem {
            detail.push_str(&format!(
                "; {problems} source problems reported, the last from {source}: {problem}"
            ));
        }
        let metrics = [
            ("tenants", status.tenants),
            ("entities", status.entities),
            ("edges", status.edges),
            ("attack_paths", status.attack_paths),
            ("source_problems", problems),
            ("images_scanned", status.images_scanned),
            ("images_waiting", status.images_waiting),
            ("images_failed", status.images_failed),
        ];
        let state = if recent_problem.is_some() || status.images_failed > 0 {
            HealthState::Degraded
        } else {
            HealthState::Serving
        };
        ComponentStatus {
            name: "graph".to_string(),
            state: state as i32,
            detail,
            metrics: metrics
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .chain([
                    (
                        "findings_position".to_string(),
                        status.findings_position.to_string(),
                    ),
                    (
                        "alerts_position".to_string(),
                        status.alerts_position.to_string(),
                    ),
                ])
                .collect(),
        }
    })
}

/// Reflection over the whole contract, advertising only the services this process serves: a
/// client discovering the API never finds a service that would answer UNIMPLEMENTED.
fn reflection_builder(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    use tonic::server::NamedService;
    let health =
        <tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>>::NAME;
    std::iter::once(health).chain(served.iter().copied()).fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(palisade_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(name),
    )
}
