//! The platform in one process: every service on the embedded storage, as `palisade up` runs
//! it, and as benchmarks and tests start it in process.
//!
//! Start-up order: data directory (locked) -> sled store -> credentials and the first admin
//! token -> the alert and finding logs -> actors (search indexer and searchers, ingest, image
//! scanner) -> the graph service (its store, then its feeding task) -> gRPC and HTTP listeners.
//! Shutdown runs it backwards: listeners stop taking calls and finish the ones in flight, the
//! graph's task stops and flushes, the indexer catches up with the log and commits, the store
//! is flushed, the actors stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use anyhow::Context;
use palisade_core::auth::Credentials;
use palisade_core::bridge::ActorSystem;
use palisade_core::config::Config;
use palisade_core::data_dir::DataDir;
use palisade_core::log::Topic;
use palisade_core::shutdown::Shutdown;
use palisade_core::storage::Store;
use palisade_gateway::auth::Authenticate;
use palisade_gateway::ingest::ALERTS_TOPIC;
use palisade_gateway::{
    AdminGrpc, AgentGrpc, AgentLimits, AgentRegistry, AlertGrpc, Ingest, StatusProbe,
};
use palisade_graph::grpc::GraphGrpc;
use palisade_graph::live::{GraphCore, GraphSettings, GraphTopics, ImageScanner, ScanOrder};
use palisade_proto::v1::admin_service_server::AdminServiceServer;
use palisade_proto::v1::agent_service_server::AgentServiceServer;
use palisade_proto::v1::alert_service_server::AlertServiceServer;
use palisade_proto::v1::graph_service_server::GraphServiceServer;
use palisade_proto::v1::scanner_service_server::ScannerServiceServer;
use palisade_proto::v1::search_service_server::SearchServiceServer;
use palisade_proto::v1::{ComponentStatus, HealthState, ScanImageRequest};
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

/// A running platform.
pub struct Platform {
    /// Where the gRPC listener is bound.
    pub grpc_address: SocketAddr,
    /// Where the HTTP listener is bound.
    pub http_address: SocketAddr,
    /// Whether the gRPC and HTTP listeners speak TLS.
    pub tls: bool,
    /// Where the agent listener (TLS, client certificates) is bound.
    pub agent_address: SocketAddr,
    /// The URL enrollment bundles give agents.
    pub agent_url: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Set when this start created the admin token.
    pub created_admin_token: bool,
    /// The search actors, for status and benchmarks.
    pub search: SearchActors,
    shutdown: Shutdown,
    running: Running,
}

struct Running {
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    agent_task: JoinHandle<Result<(), tonic::transport::Error>>,
    http_task: JoinHandle<std::io::Result<()>>,
    graph_task: JoinHandle<()>,
    notifier: palisade_notify::NotifierHandle,
    health_reporter: tonic_health::server::HealthReporter,
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
        running
            .health_reporter
            .set_not_serving::<AlertServiceServer<AlertGrpc>>()
            .await;
        let search = self.search;
        let store = running.store.clone();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            if let Ok(Err(error)) = running.grpc_task.await {
                tracing::error!(%error, "gRPC server stopped with an error");
            }
            if let Ok(Err(error)) = running.agent_task.await {
                tracing::error!(%error, "agent listener stopped with an error");
            }
            if let Ok(Err(error)) = running.http_task.await {
                tracing::error!(%error, "HTTP server stopped with an error");
            }
            if let Err(error) = running.graph_task.await {
                tracing::error!(%error, "graph service stopped with an error");
            }
            if let Err(error) = running.notifier.stopped().await {
                tracing::error!(%error, "alert notifications stopped with an error");
            }
            match search.indexer.send(CatchUp { commit_now: true }).await {
                Ok(Ok(progress)) => tracing::info!(indexed_offset = progress.committed.alerts, "search index committed"),
                Ok(Err(error)) => tracing::error!(%error, "final index commit failed; it will be redone at the next start"),
                Err(error) => tracing::error!(%error, "indexer unavailable at shutdown"),
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
    let credentials = Credentials::open(&store)?;
    let admin_token_path = data_dir.admin_token_path();
    let created_admin_token = credentials
        .ensure_admin_token(&admin_token_path)
        .await?
        .is_some();
    let topic = Topic::open(&store, ALERTS_TOPIC)?;
    let search_topics = SearchTopics {
        alerts: topic.clone(),
        findings: Topic::open(&store, FINDINGS_TOPIC)?,
    };

    let scanner = ScannerCore::new(
        ScannerSettings {
            vulndb: config
                .scanner
                .vulndb
                .clone()
                .unwrap_or_else(|| data_dir.root().join("vulndb")),
            cache_dir: default_cache_dir(data_dir.root()),
            config: config.scanner.clone(),
        },
        &store,
        search_topics.findings.clone(),
        tokio::runtime::Handle::current(),
    )
    .context("cannot start the image scanner")?;
    let scanner_probe = scanner.clone();

    let search_topics_for_graph = GraphTopics {
        alerts: search_topics.alerts.clone(),
        findings: search_topics.findings.clone(),
    };
    let index_path = data_dir.index_path();
    let search_config = config.search.clone();
    let max_alerts_per_batch = config.limits.max_alerts_per_batch;
    let actor_topic = topic.clone();
    let actor_store = store.clone();
    let (actor_system, started) = ActorSystem::start("palisade", move || {
        let search = start_search_actors(&index_path, search_topics, &actor_store, &search_config)?;
        let ingest = Ingest::new(actor_topic, max_alerts_per_batch).start();
        let scanner = ScannerActor::new(scanner).start();
        Ok::<_, palisade_search::SearchError>((search, ingest, scanner))
    })?;
    let (search_actors, ingest, scanner) = started.context("cannot start the search service")?;

    let graph = open_graph(config, data_dir.root(), &search_topics_for_graph).await?;

    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", config.grpc_listen))?;
    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.http_listen))?;
    let agent_listener = tokio::net::TcpListener::bind(config.agent_listen)
        .await
        .with_context(|| format!("cannot listen for agents on {}", config.agent_listen))?;
    let grpc_address = grpc_listener.local_addr()?;
    let http_address = http_listener.local_addr()?;
    let agent_address = agent_listener.local_addr()?;
    let enrollment =
        crate::agent_listener::enrollment_settings(config, data_dir.root(), agent_address)?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AlertServiceServer<AlertGrpc>>()
        .await;
    health_reporter
        .set_serving::<AgentServiceServer<AgentGrpc>>()
        .await;
    health_reporter
        .set_serving::<SearchServiceServer<SearchGrpc>>()
        .await;
    health_reporter
        .set_serving::<AdminServiceServer<AdminGrpc>>()
        .await;
    health_reporter
        .set_serving::<ScannerServiceServer<ScannerGrpc>>()
        .await;
    health_reporter
        .set_serving::<GraphServiceServer<GraphGrpc>>()
        .await;
    let reflection_v1 = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    let authenticate = Authenticate::new(credentials.clone());
    let max_message = config.limits.max_message_bytes;
    let agent_grpc = AgentGrpc::new(
        ingest.clone(),
        credentials.clone(),
        store.clone(),
        AgentLimits::from_config(&config.agents),
    )?;
    let agents = AgentServiceServer::new(agent_grpc.clone())
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let falco_webhook = palisade_gateway::falco_webhook::FalcoWebhook {
        ingest: ingest.clone(),
        credentials: credentials.clone(),
        max_body_bytes: config.limits.max_message_bytes,
        max_alerts: config.limits.max_alerts_per_batch,
    };
    let alerts = AlertServiceServer::new(AlertGrpc::new(ingest, topic.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let search =
        SearchServiceServer::new(SearchGrpc::new(SearchPeer::Local(search_actors.clone())))
            .max_decoding_message_size(max_message)
            .max_encoding_message_size(max_message);
    let image_scanner = image_scanner(scanner.clone());
    let scanner = ScannerServiceServer::new(ScannerGrpc::new(scanner))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let graph_service = GraphServiceServer::new(GraphGrpc::new(graph.clone()))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let shutdown = Shutdown::new();
    let notifier = palisade_notify::Notifier::start(&config.notify, &store, &topic, &shutdown)
        .context("cannot start the alert notifications")?;
    let notify_monitor = notifier.monitor();
    let notify_probe: StatusProbe = Arc::new(move || notify_monitor.component_status());
    let probes = status_probes(
        &search_actors,
        &store,
        &topic,
        scanner_probe,
        graph.clone(),
        notify_probe,
        agent_grpc.registry(),
    );
    let admin = AdminServiceServer::new(
        AdminGrpc::new(
            credentials.clone(),
            store.clone(),
            probes,
            enrollment.clone(),
        )
        .with_agents(&agent_grpc),
    )
    .max_decoding_message_size(max_message)
    .max_encoding_message_size(max_message);

    let listener_certificate = crate::listener_tls::listener_certificate(
        config,
        &enrollment.authority,
        &[grpc_address, http_address],
    )?;
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
    let grpc_server = grpc_builder
        .concurrency_limit_per_connection(256)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(alerts, authenticate.clone()))
        .add_service(InterceptedService::new(
            agents.clone(),
            authenticate.clone(),
        ))
        .add_service(InterceptedService::new(search, authenticate.clone()))
        .add_service(InterceptedService::new(scanner, authenticate.clone()))
        .add_service(InterceptedService::new(graph_service, authenticate.clone()))
        .add_service(InterceptedService::new(admin, authenticate))
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), {
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
    let router = palisade_gateway::http::router_with_falco_webhook(falco_webhook);
    let http_task = serve_http(
        http_listener,
        router,
        listener_certificate.as_ref(),
        shutdown.clone(),
    )
    .await?;

    let graph_task = tokio::spawn(graph.run(Some(image_scanner), shutdown.clone()));
    let grpc_task = tokio::spawn(grpc_server);
    let agent_task = crate::agent_listener::serve(
        agent_listener,
        config,
        &enrollment,
        credentials,
        agents,
        shutdown.clone(),
    )?;
    Ok(Platform {
        grpc_address,
        http_address,
        agent_address,
        agent_url: enrollment.agent_url,
        tls: listener_certificate.is_some(),
        data_dir: config.data_dir.clone(),
        created_admin_token,
        search: search_actors,
        shutdown,
        running: Running {
            grpc_task,
            agent_task,
            http_task,
            graph_task,
            notifier,
            health_reporter,
            store,
            actor_system,
            _data_dir: data_dir,
        },
    })
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

fn status_probes(
    search_actors: &SearchActors,
    store: &Store,
    topic: &Topic,
    scanner: ScannerCore,
    graph: GraphCore,
    notify: StatusProbe,
    agents: Arc<AgentRegistry>,
) -> Vec<StatusProbe> {
    let serving = |name: &str, detail: String, metrics: Vec<(&str, String)>| ComponentStatus {
        name: name.to_string(),
        state: HealthState::Serving as i32,
        detail,
        metrics: metrics
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    };
    let gateway: StatusProbe = Arc::new(move || {
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
    });
    let log_topic = topic.clone();
    let log: StatusProbe = Arc::new(move || {
        let records = log_topic.durable_end();
        serving(
            "log",
            format!("{records} alerts stored"),
            vec![("records", records.to_string())],
        )
    });
    let search_actors = search_actors.clone();
    let search: StatusProbe = Arc::new(move || {
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
    });
    let storage_store = store.clone();
    let storage: StatusProbe = Arc::new(move || match storage_store.size_on_disk() {
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
    });
    let scanner: StatusProbe = Arc::new(move || {
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
    });
    vec![
        gateway,
        log,
        search,
        scanner,
        graph_probe(graph),
        notify,
        storage,
    ]
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
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    use tonic::server::NamedService;
    let served = [
        <tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>>::NAME,
        <AlertServiceServer<AlertGrpc>>::NAME,
        <AgentServiceServer<AgentGrpc>>::NAME,
        <SearchServiceServer<SearchGrpc>>::NAME,
        <AdminServiceServer<AdminGrpc>>::NAME,
        <ScannerServiceServer<ScannerGrpc>>::NAME,
        <GraphServiceServer<GraphGrpc>>::NAME,
    ];
    served.into_iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(palisade_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(name),
    )
}
