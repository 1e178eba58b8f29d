//! Connecting client commands to a server.

use std::time::Duration;

use anyhow::{Context, bail};
use palisade_core::auth::BearerToken;
use palisade_core::config::default_data_dir;
use palisade_core::data_dir::{admin_token_path, ca_path};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::cli::ClientArgs;

/// Largest response a client accepts.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A channel that adds the caller's token to every request.
pub type AuthChannel = InterceptedService<Channel, BearerToken>;

/// The token to use: --token / PALISADE_TOKEN, else the admin token of the data directory.
pub fn resolve_token(args: &ClientArgs) -> anyhow::Result<String> {
    if let Some(token) = &args.token {
        return Ok(token.trim().to_string());
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let path = admin_token_path(&data_dir);
    match std::fs::read_to_string(&path) {
        Ok(token) => Ok(token.trim().to_string()),
        Err(error) => bail!(
            "no token: pass --token or set PALISADE_TOKEN (could not read the admin token at {}: {error})",
            path.display()
        ),
    }
}

/// Connects to the server and returns an authenticated channel.
pub async fn connect(args: &ClientArgs) -> anyhow::Result<AuthChannel> {
    let token = resolve_token(args)?;
    let bearer = BearerToken::new(&token)
        .context("the token contains characters that cannot be sent in a header")?;
    let channel = plain_channel(args).await?;
    Ok(InterceptedService::new(channel, bearer))
}

/// How to verify an https:// server: --ca-file, else the internal CA of the data directory
/// (a server on this machine), else the system's roots (a certificate of a public CA).
fn client_tls(args: &ClientArgs) -> anyhow::Result<ClientTlsConfig> {
    let Some(ca_file) = ca_file(args) else {
        return Ok(ClientTlsConfig::new().with_native_roots());
    };
    let pem = std::fs::read_to_string(&ca_file)
        .with_context(|| format!("cannot read the CA certificate {}", ca_file.display()))?;
    Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
}

/// The CA certificate that verifies an https:// server: --ca-file, else the internal CA of the
/// data directory when present; None means the system's roots.
pub fn ca_file(args: &ClientArgs) -> Option<std::path::PathBuf> {
    if let Some(path) = &args.ca_file {
        return Some(path.clone());
    }
    let local_ca = ca_path(&args.data_dir.clone().unwrap_or_else(default_data_dir));
    local_ca.is_file().then_some(local_ca)
}

/// Connects without credentials (health checks).
pub async fn plain_channel(args: &ClientArgs) -> anyhow::Result<Channel> {
    let server = &args.server;
    let mut endpoint = Endpoint::from_shared(server.to_string())
        .with_context(|| format!("invalid server URL {server:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120));
    if server.starts_with("https://") {
        endpoint = endpoint
            .tls_config(client_tls(args)?)
            .context("invalid TLS settings")?;
    }
    endpoint.connect().await.with_context(|| {
        format!("cannot reach palisade at {server} (is `palisade up` running? see --server)")
    })
}

/// Sets the client's message size limits.
pub trait ClientLimits {
    /// The client with Palisade's response size limit.
    fn with_limits(self) -> Self;
}

macro_rules! client_limits {
    ($($client:ty),* $(,)?) => {
        $(impl ClientLimits for $client {
            fn with_limits(self) -> Self {
                self.max_decoding_message_size(MAX_RESPONSE_BYTES)
                    .max_encoding_message_size(MAX_RESPONSE_BYTES)
            }
        })*
    };
}

client_limits!(
    palisade_proto::v1::alert_service_client::AlertServiceClient<AuthChannel>,
    palisade_proto::v1::search_service_client::SearchServiceClient<AuthChannel>,
    palisade_proto::v1::admin_service_client::AdminServiceClient<AuthChannel>,
    palisade_proto::v1::notify_service_client::NotifyServiceClient<AuthChannel>,
);

/// A status error in words a user can act on.
pub fn describe_status(status: &tonic::Status) -> String {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => " (check --token / PALISADE_TOKEN)",
        tonic::Code::PermissionDenied => " (the token's role or tenant does not allow this)",
        tonic::Code::Unavailable => " (is the server running and reachable?)",
        _ => "",
    };
    format!("{:?}: {}{hint}", status.code(), status.message())
}
