//! The peers of a `palisade serve` process: the other services of the distributed mode,
//! reached over gRPC with the internal service credential (`[peers]` in the configuration).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_core::auth::service::{ServiceToken, write_principal_headers};
use palisade_core::auth::{Principal, Role as KeyRole};
use palisade_core::config::Config;
use palisade_core::ids::TenantId;
use palisade_core::log::remote::FollowerMonitor;
use palisade_gateway::erasure::{Forgetter, Keeper};
use palisade_gateway::{AskProbe, StatusProbe};
use palisade_graph::live::{GraphCore, ImageScanner, ScanOrder};
use palisade_proto::v1::peer_status_service_client::PeerStatusServiceClient;
use palisade_proto::v1::peer_status_service_server::PeerStatusService;
use palisade_proto::v1::scanner_service_client::ScannerServiceClient;
use palisade_proto::v1::{
    ComponentStatus, ForgetTenantRequest, ForgetTenantResponse, GetComponentsRequest,
    GetComponentsResponse, HealthState, ScanImageRequest,
};
use palisade_scanner::ScannerCore;
use palisade_search::settings::SearchSettings;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::platform::Role;

/// Longest the gateway waits for a peer's status.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the gateway waits for a peer to forget a deleted tenant; the deletion is tried
/// again a minute later.
const FORGET_TIMEOUT: Duration = Duration::from_secs(60);
/// Waits for an unreachable scanner service before a scan counts as failed: doubling from the
/// first to the last (about a minute in all).
const SCANNER_RETRY_FIRST: Duration = Duration::from_millis(250);
const SCANNER_RETRY_LAST: Duration = Duration::from_secs(32);

/// One peer: its name, URL and a channel that connects on first use (and again after a
/// failure), so the services may start in any order.
#[derive(Clone)]
pub struct Peer {
    pub name: &'static str,
    pub url: String,
    pub channel: Channel,
}

/// The peers this process calls and the credential it calls them with.
#[derive(Clone)]
pub struct Peers {
    pub token: ServiceToken,
    pub gateway: Option<Peer>,
    pub search: Option<Peer>,
    pub graph: Option<Peer>,
    pub scanner: Option<Peer>,
}

impl Peers {
    /// The peers `role` needs, from `[peers]`; an error names what is missing.
    pub fn from_config(config: &Config, role: Role) -> anyhow::Result<Peers> {
        let peers = &config.peers;
        let token_file = peers.service_token_file.as_ref().with_context(|| {
            format!(
                "`palisade serve {}` needs [peers] service_token_file: a file with one line of at \
                 least 32 characters, the same for every service (e.g. `openssl rand -hex 32 > FILE`)",
                role.name()
            )
        })?;
        let token = ServiceToken::read(token_file)?;
        let tls = client_tls(config)?;
        let needs = |peer: &str| match role {
            Role::Gateway => matches!(peer, "search" | "graph" | "scanner"),
            Role::Search | Role::Scanner => peer == "gateway",
            Role::Graph => peer == "gateway",
            Role::Embedded => false,
        };
        let peer = |name: &'static str, url: &Option<String>| -> anyhow::Result<Option<Peer>> {
            let Some(url) = url else {
                if needs(name) {
                    anyhow::bail!(
                        "`palisade serve {}` needs [peers] {name}: the gRPC URL of the {name} service",
                        role.name()
                    );
                }
                return Ok(None);
            };
            let mut endpoint = Endpoint::from_shared(url.clone())
                .with_context(|| format!("[peers] {name} = {url:?} is not a URL"))?
                .connect_timeout(Duration::from_secs(5))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true);
            if url.starts_with("https://") {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .with_context(|| format!("TLS settings for [peers] {name}"))?;
            }
            Ok(Some(Peer {
                name,
                url: url.clone(),
                channel: endpoint.connect_lazy(),
            }))
        };
        Ok(Peers {
            gateway: peer("gateway", &peers.gateway)?,
            search: peer("search", &peers.search)?,
            graph: peer("graph", &peers.graph)?,
            scanner: peer("scanner", &peers.scanner)?,
            token,
        })
    }

    /// The gateway, which every service but the gateway needs (checked by `from_config`).
    pub fn gateway(&self) -> anyhow::Result<&Peer> {
        self.gateway
            .as_ref()
            .context("[peers] gateway is not configured")
    }
}

/// What verifies the peers' certificates: `[peers] ca_file`, else the internal CA when this
/// process has it, else the system roots.
fn client_tls(config: &Config) -> anyhow::Result<ClientTlsConfig> {
    let tls = ClientTlsConfig::new();
    let ca_file = config
        .peers
        .ca_file
        .clone()
        .or_else(|| Some(config.pki_dir().join("ca.pem")).filter(|path| path.is_file()));
    match ca_file {
        Some(path) => {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the peers' CA {}", path.display()))?;
            Ok(tls.ca_certificate(Certificate::from_pem(pem)))
        }
        None => Ok(tls.with_native_roots()),
    }
}

/// The scanner service of another process, as the graph service asks it to scan the images
/// the inventory runs: for the tenant whose inventory runs the image, as an analyst would.
pub fn remote_image_scanner(scanner: &Peer, token: ServiceToken) -> ImageScanner {
    let channel = scanner.channel.clone();
    Arc::new(move |order: ScanOrder| {
        let channel = channel.clone();
        let token = token.clone();
        Box::pin(async move {
            let tenant = TenantId::new(order.tenant).map_err(|error| error.to_string())?;
            let principal = Principal {
                tenant,
                role: KeyRole::Analyst,
                key_id: "graph-service".into(),
                cluster: None,
            };
            let message = ScanImageRequest {
                image: order.image,
                cluster_id: order.cluster,
                ..ScanImageRequest::default()
            };
            let mut client = ScannerServiceClient::new(channel)
                .max_decoding_message_size(palisade_core::log::remote::MAX_LOG_MESSAGE_BYTES);
            // A scanner that cannot be reached (starting, restarting) is waited for a while;
            // other failures are the scan's, and the graph retries those later.
            let mut delay = SCANNER_RETRY_FIRST;
            loop {
                let mut request = tonic::Request::new(message.clone());
                write_principal_headers(request.metadata_mut(), &principal, &token)
                    .map_err(|error| error.to_string())?;
                match client.scan_image(request).await {
                    Ok(_) => return Ok(()),
                    // a transport failure carries its cause; the scanner's own answers do not
                    Err(status)
                        if status.code() == tonic::Code::Unavailable
                            && std::error::Error::source(&status).is_some()
                            && delay <= SCANNER_RETRY_LAST =>
                    {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    Err(status) => {
                        return Err(format!("the scanner service: {}", status.message()));
                    }
                }
            }
        })
    })
}

/// A status probe of a peer: its own account of its component (PeerStatusService), asked at
/// each status request.
pub fn peer_probe(peer: &Peer, token: ServiceToken) -> AskProbe {
    let peer = peer.clone();
    Arc::new(move || {
        let peer = peer.clone();
        let token = token.clone();
        Box::pin(async move { check(&peer, &token).await })
    })
}

/// The innermost cause of a failed call ("Connection refused (os error 111)"), or its message.
fn root_cause(status: &tonic::Status) -> String {
    let mut cause: &dyn std::error::Error = status;
    while let Some(source) = cause.source() {
        cause = source;
    }
    match std::ptr::addr_eq(cause, status as &dyn std::error::Error) {
        true => status.message().to_string(),
        false => format!("{}: {cause}", status.message()),
    }
}

async fn check(peer: &Peer, token: &ServiceToken) -> ComponentStatus {
    let not_serving = |detail: String| ComponentStatus {
        name: peer.name.to_string(),
        state: HealthState::NotServing as i32,
        detail,
        metrics: Default::default(),
    };
    let mut request = tonic::Request::new(GetComponentsRequest {});
    match token.bearer() {
        Ok(bearer) => request.metadata_mut().insert("authorization", bearer),
        Err(error) => return not_serving(error.to_string()),
    };
    let mut client = PeerStatusServiceClient::new(peer.channel.clone());
    let answer = tokio::time::timeout(PROBE_TIMEOUT, client.get_components(request)).await;
    match answer {
        Ok(Ok(response)) => response
            .into_inner()
            .components
            .into_iter()
            .find(|component| component.name == peer.name)
            .unwrap_or_else(|| {
                not_serving(format!(
                    "{} at {} did not report itself",
                    peer.name, peer.url
                ))
            }),
        Ok(Err(status)) => not_serving(format!(
            "{} at {} is unreachable: {}",
            peer.name,
            peer.url,
            root_cause(&status)
        )),
        Err(_) => not_serving(format!(
            "{} at {} did not answer within {PROBE_TIMEOUT:?}",
            peer.name, peer.url
        )),
    }
}

/// What a service behind the gateway reports of itself: its component, with the state of
/// its replica of the gateway's log folded in.
#[derive(Clone)]
pub struct PeerStatusGrpc {
    component: StatusProbe,
    replicas: Vec<FollowerMonitor>,
    /// What forgets what this service keeps of a deleted tenant outside the log.
    forget: Option<Forgetter>,
}

impl PeerStatusGrpc {
    pub fn new(
        component: StatusProbe,
        replicas: Vec<FollowerMonitor>,
        forget: Option<Forgetter>,
    ) -> PeerStatusGrpc {
        PeerStatusGrpc {
            component,
            replicas,
            forget,
        }
    }

    fn component(&self) -> ComponentStatus {
        let mut component = (self.component)();
        for (monitor, topic) in self.replicas.iter().zip(["alerts", "findings"]) {
            let state = monitor.state();
            let behind = state.source_end.saturating_sub(state.replica_end);
            component
                .metrics
                .insert(format!("replica_{topic}_behind"), behind.to_string());
            if !state.connected {
                component.state = component.state.max(HealthState::Degraded as i32);
                component.detail.push_str(&format!(
                    "; replica of the {topic} log not following the gateway{}",
                    state
                        .last_error
                        .map(|error| format!(": {error}"))
                        .unwrap_or_default()
                ));
            }
        }
        component
    }
}

#[tonic::async_trait]
impl PeerStatusService for PeerStatusGrpc {
    async fn get_components(
        &self,
        _request: tonic::Request<GetComponentsRequest>,
    ) -> Result<tonic::Response<GetComponentsResponse>, tonic::Status> {
        Ok(tonic::Response::new(GetComponentsResponse {
            components: vec![self.component()],
        }))
    }

    async fn forget_tenant(
        &self,
        request: tonic::Request<ForgetTenantRequest>,
    ) -> Result<tonic::Response<ForgetTenantResponse>, tonic::Status> {
        let tenant = TenantId::new(request.into_inner().tenant_id)?;
        let removed = match &self.forget {
            Some(forget) => forget(tenant).await?,
            None => 0,
        };
        Ok(tonic::Response::new(ForgetTenantResponse { removed }))
    }
}

/// Has the scanner of this process forget a deleted tenant.
pub fn local_scanner_forgetter(scanner: ScannerCore) -> Forgetter {
    Arc::new(move |tenant| {
        let scanner = scanner.clone();
        Box::pin(async move {
            scanner.forget_tenant(&tenant).await.map_err(|error| {
                palisade_core::CoreError::Unavailable(format!(
                    "the scanner could not forget tenant {tenant}: {error}"
                ))
            })
        })
    })
}

/// Has the search service of this process forget a deleted tenant's saved searches and
/// retention.
pub fn local_search_forgetter(settings: SearchSettings) -> Forgetter {
    blocking_forgetter(Keeper::Search, move |tenant| settings.forget_tenant(tenant))
}

/// Has the graph of this process forget a deleted tenant.
pub fn local_graph_forgetter(graph: GraphCore) -> Forgetter {
    blocking_forgetter(Keeper::Graph, move |tenant| graph.forget_tenant(tenant))
}

/// Runs `forget`, a service's own forgetting in this process, on a blocking thread: it
/// writes to sled and flushes. Answers how many items went.
fn blocking_forgetter<E>(
    keeper: Keeper,
    forget: impl Fn(&str) -> Result<usize, E> + Send + Sync + 'static,
) -> Forgetter
where
    E: std::fmt::Display + Send + 'static,
{
    let forget = Arc::new(forget);
    Arc::new(move |tenant| {
        let forget = Arc::clone(&forget);
        Box::pin(async move {
            let id = tenant.to_string();
            let forgotten = tokio::task::spawn_blocking(move || forget(&id))
                .await
                .map_err(|error| palisade_core::CoreError::Task(error.to_string()))?
                .map_err(|error| {
                    palisade_core::CoreError::Unavailable(format!(
                        "the {} service could not forget tenant {tenant}: {error}",
                        keeper.name()
                    ))
                })?;
            Ok(forgotten as u64)
        })
    })
}

/// Has the service behind `peer` forget a deleted tenant (`PeerStatusService/ForgetTenant`),
/// waiting at most [`FORGET_TIMEOUT`].
pub fn peer_forgetter(keeper: Keeper, peer: Peer, token: ServiceToken) -> Forgetter {
    Arc::new(move |tenant| {
        let peer = peer.clone();
        let token = token.clone();
        Box::pin(async move {
            let unavailable = |message: String| {
                palisade_core::CoreError::Unavailable(format!(
                    "the {} service at {} could not forget tenant {tenant}: {message}",
                    keeper.name(),
                    peer.url
                ))
            };
            let mut request = tonic::Request::new(ForgetTenantRequest {
                tenant_id: tenant.to_string(),
            });
            request.set_timeout(FORGET_TIMEOUT);
            let bearer = token
                .bearer()
                .map_err(|error| unavailable(error.to_string()))?;
            request.metadata_mut().insert("authorization", bearer);
            let mut client = PeerStatusServiceClient::new(peer.channel.clone());
            let answer = tokio::time::timeout(FORGET_TIMEOUT, client.forget_tenant(request))
                .await
                .map_err(|_| unavailable(format!("no answer within {FORGET_TIMEOUT:?}")))?
                .map_err(|status| unavailable(root_cause(&status)))?;
            Ok(answer.into_inner().removed)
        })
    })
}
