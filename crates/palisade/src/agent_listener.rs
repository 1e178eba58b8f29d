//! The agent listener: where agents and audit watchers enroll and keep their streams.
//!
//! TLS with a server certificate of Palisade's internal CA, issued afresh at every start; a
//! client certificate of the same CA is asked for and verified by the TLS layer, and then
//! looked up in the credential store (revoked or expired: refused). Connections without one
//! reach only `EnrollmentService/Enroll` and health.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use palisade_core::auth::Credentials;
use palisade_core::config::Config;
use palisade_core::pki::Authority;
use palisade_core::shutdown::Shutdown;
use palisade_gateway::{AgentGrpc, CertificateAuthenticate, EnrollmentGrpc, EnrollmentSettings};
use palisade_proto::v1::agent_service_server::AgentServiceServer;
use palisade_proto::v1::enrollment_service_server::EnrollmentServiceServer;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Lifetime of the listener's own certificate; it is issued again at every start.
const SERVER_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA and what enrollment needs, from the data directory and the configuration.
pub fn enrollment_settings(
    config: &Config,
    data_dir: &std::path::Path,
    agent_address: SocketAddr,
) -> anyhow::Result<EnrollmentSettings> {
    let pki_dir = config
        .pki_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("pki"));
    let authority = Authority::open_or_create(&pki_dir)
        .with_context(|| format!("cannot open the internal CA in {}", pki_dir.display()))?;
    Ok(enrollment_settings_with(
        config,
        Arc::new(authority),
        agent_address,
    ))
}

/// What enrollment needs, with the internal CA already open.
pub fn enrollment_settings_with(
    config: &Config,
    authority: Arc<Authority>,
    agent_address: SocketAddr,
) -> EnrollmentSettings {
    let agent_url = config
        .enrollment
        .agent_url
        .clone()
        .unwrap_or_else(|| format!("https://{agent_address}"));
    EnrollmentSettings {
        authority,
        agent_url,
        token_ttl: Duration::from_secs(config.enrollment.token_ttl_seconds),
        certificate_validity: Duration::from_secs(
            config.enrollment.certificate_validity_days * 24 * 3600,
        ),
    }
}

/// Serves the agent listener on `listener` until `shutdown`.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: &Config,
    settings: &EnrollmentSettings,
    credentials: Credentials,
    agents: AgentServiceServer<AgentGrpc>,
    shutdown: Shutdown,
) -> anyhow::Result<JoinHandle<Result<(), tonic::transport::Error>>> {
    let mut names = config.enrollment.server_names.clone();
    let address = listener.local_addr()?;
    if !address.ip().is_unspecified() {
        names.push(address.ip().to_string());
    }
    let (certificate_pem, key_pem) = settings
        .authority
        .issue_server(&names, SERVER_CERTIFICATE_VALIDITY)
        .context("cannot issue the agent listener's certificate")?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(certificate_pem, key_pem))
        .client_ca_root(Certificate::from_pem(settings.authority.ca_pem()))
        .client_auth_optional(true)
        .timeout(HANDSHAKE_TIMEOUT);
    let authenticate = CertificateAuthenticate::new(credentials.clone());
    let enrollment =
        EnrollmentServiceServer::new(EnrollmentGrpc::new(credentials, settings.clone()))
            .max_decoding_message_size(64 * 1024);
    let (_, health_service) = tonic_health::server::health_reporter();
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .context("invalid TLS configuration of the agent listener")?
        .concurrency_limit_per_connection(64)
        .add_service(health_service)
        .add_service(InterceptedService::new(enrollment, authenticate.clone()))
        .add_service(InterceptedService::new(agents, authenticate))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.triggered().await
        });
    Ok(tokio::spawn(server))
}
