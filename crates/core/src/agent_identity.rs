//! The agent side of enrollment: the bundle an admin hands to a cluster, the credential
//! directory an enrolled agent keeps, and mutual-TLS channels to the agent listener.
//!
//! A credential directory holds `tls.key` (mode 0600, made here and never sent anywhere),
//! `tls.crt`, `ca.crt` and `identity.json` (where to connect, tenant, cluster, expiry).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_proto::v1::enrollment_service_client::EnrollmentServiceClient;
use palisade_proto::v1::{EnrollRequest, EnrollResponse, RenewRequest};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{CoreError, CoreResult};
use crate::pki::new_key_and_request;

/// Largest bundle or identity file read, in bytes.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Longest a connection attempt to the agent listener may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `palisade admin cluster register` writes for a cluster: everything an agent needs to
/// enroll. The token works once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentBundle {
    pub agent_url: String,
    pub server_name: String,
    pub ca_certificate_pem: String,
    pub enrollment_token: String,
    pub tenant: String,
    pub cluster: String,
    /// Unix seconds.
    pub expires: i64,
}

/// An enrolled credential: where to connect and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    pub agent_url: String,
    pub server_name: String,
    pub tenant: String,
    pub cluster: String,
    pub credential_id: String,
    /// Unix seconds.
    pub not_after: i64,
    /// Unix seconds.
    pub not_before: i64,
}

/// A credential loaded from its directory.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub info: IdentityInfo,
    pub ca_pem: String,
    pub certificate_pem: String,
    key_pem: String,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CoreError + '_ {
    move |source| CoreError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

fn read_bounded(path: &Path) -> CoreResult<String> {
    let size = std::fs::metadata(path).map_err(io_error(path))?.len();
    if size > MAX_FILE_BYTES {
        return Err(CoreError::InvalidArgument(format!(
            "{} is {size} bytes, more than a credential file can be ({MAX_FILE_BYTES})",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(io_error(path))
}

/// Writes a file through a temporary name and a rename, so a crash never leaves half of it.
fn write_atomically(path: &Path, contents: &str, mode: u32) -> CoreResult<()> {
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error(&temporary))?;
    file.sync_all().map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl EnrollmentBundle {
    /// Reads a bundle file.
    pub fn load(path: &Path) -> CoreResult<EnrollmentBundle> {
        let text = read_bounded(path)?;
        serde_json::from_str(&text).map_err(|error| {
            CoreError::InvalidArgument(format!(
                "{} is not an enrollment bundle: {error}",
                path.display()
            ))
        })
    }

    /// Writes the bundle readable by its owner only: it holds a secret.
    pub fn save(&self, path: &Path) -> CoreResult<()> {
        let text = serde_json::to_string_pretty(self).map_err(|error| {
            CoreError::InvalidArgument(format!("cannot encode the bundle: {error}"))
        })?;
        write_atomically(path, &text, 0o600)
    }
}

impl AgentIdentity {
    /// Whether `dir` holds a credential.
    pub fn exists(dir: &Path) -> bool {
        dir.join("identity.json").is_file()
    }

    /// Loads the credential in `dir`.
    pub fn load(dir: &Path) -> CoreResult<AgentIdentity> {
        let info_path = dir.join("identity.json");
        let info: IdentityInfo =
            serde_json::from_str(&read_bounded(&info_path)?).map_err(|error| {
                CoreError::InvalidArgument(format!("{}: {error}", info_path.display()))
            })?;
        Ok(AgentIdentity {
            info,
            ca_pem: read_bounded(&dir.join("ca.crt"))?,
            certificate_pem: read_bounded(&dir.join("tls.crt"))?,
            key_pem: read_bounded(&dir.join("tls.key"))?,
        })
    }

    /// Writes the credential to `dir` (created with mode 0700 if missing). The identity file
    /// is written last, so a directory with one holds a whole credential.
    pub fn save(&self, dir: &Path) -> CoreResult<()> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io_error(dir))?;
        write_atomically(&dir.join("tls.key"), &self.key_pem, 0o600)?;
        write_atomically(&dir.join("tls.crt"), &self.certificate_pem, 0o644)?;
        write_atomically(&dir.join("ca.crt"), &self.ca_pem, 0o644)?;
        let info = serde_json::to_string_pretty(&self.info).map_err(|error| {
            CoreError::InvalidArgument(format!("cannot encode the identity: {error}"))
        })?;
        write_atomically(&dir.join("identity.json"), &info, 0o644)
    }

    /// Whether less than a third of the certificate's lifetime is left.
    pub fn needs_renewal(&self) -> bool {
        let lifetime = self.info.not_after - self.info.not_before;
        self.info.not_after - unix_now() < lifetime / 3
    }

    /// A channel to the agent listener authenticated with this credential.
    pub async fn channel(&self) -> CoreResult<Channel> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.info.server_name.clone())
            .identity(Identity::from_pem(&self.certificate_pem, &self.key_pem));
        connect(&self.info.agent_url, tls).await
    }

    /// Exchanges this credential for a new certificate of `agent_id` with a fresh key.
    pub async fn renew(&self, agent_id: &str) -> CoreResult<AgentIdentity> {
        let (key_pem, csr_pem) = new_key_and_request()?;
        let mut client = EnrollmentServiceClient::new(self.channel().await?);
        let response = client
            .renew(RenewRequest {
                csr_pem,
                agent_id: agent_id.to_string(),
            })
            .await
            .map_err(|status| {
                CoreError::Unauthenticated(format!(
                    "renewal at {} refused: {}",
                    self.info.agent_url,
                    status.message()
                ))
            })?
            .into_inner();
        Ok(identity_from(
            response,
            key_pem,
            &self.info.agent_url,
            &self.info.server_name,
        ))
    }
}

async fn connect(url: &str, tls: ClientTlsConfig) -> CoreResult<Channel> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|error| CoreError::InvalidArgument(format!("agent url {url:?}: {error}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_config(tls)
        .map_err(|error| CoreError::InvalidArgument(format!("TLS for {url}: {error}")))?;
    endpoint.connect().await.map_err(|error| {
        CoreError::Unavailable(format!(
            "cannot reach the agent listener at {url}: {}",
            crate::error::source_chain(&error)
        ))
    })
}

fn identity_from(
    response: EnrollResponse,
    key_pem: String,
    agent_url: &str,
    server_name: &str,
) -> AgentIdentity {
    AgentIdentity {
        info: IdentityInfo {
            agent_url: agent_url.to_string(),
            server_name: server_name.to_string(),
            tenant: response.tenant_id,
            cluster: response.cluster_id,
            credential_id: response.credential_id,
            not_after: response
                .expires
                .map(|time| time.seconds)
                .unwrap_or_default(),
            not_before: unix_now(),
        },
        ca_pem: response.ca_certificate_pem,
        certificate_pem: response.certificate_pem,
        key_pem,
    }
}

/// Enrolls with `bundle`'s one-time token: a new key, a signing request, and the cluster's
/// bootstrap certificate back.
pub async fn enroll(bundle: &EnrollmentBundle) -> CoreResult<AgentIdentity> {
    let (key_pem, csr_pem) = new_key_and_request()?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&bundle.ca_certificate_pem))
        .domain_name(bundle.server_name.clone());
    let mut client = EnrollmentServiceClient::new(connect(&bundle.agent_url, tls).await?);
    let response = client
        .enroll(EnrollRequest {
            enrollment_token: bundle.enrollment_token.clone(),
            csr_pem,
        })
        .await
        .map_err(|status| {
            CoreError::Unauthenticated(format!(
                "enrollment at {} refused: {}",
                bundle.agent_url,
                status.message()
            ))
        })?
        .into_inner();
    Ok(identity_from(
        response,
        key_pem,
        &bundle.agent_url,
        &bundle.server_name,
    ))
}

/// The credential an agent streams with: its own in `own_dir` if it has one that is not due
/// for renewal; otherwise a new one renewed for `agent_id` from `own_dir`'s or (first start)
/// the shared bootstrap credential in `bootstrap_dir`, then saved to `own_dir`.
pub async fn own_identity(
    bootstrap_dir: &Path,
    own_dir: &Path,
    agent_id: &str,
) -> CoreResult<AgentIdentity> {
    let current = current_identity(bootstrap_dir, own_dir)?;
    let is_own = AgentIdentity::exists(own_dir);
    if is_own && !current.needs_renewal() {
        return Ok(current);
    }
    let renewed = current.renew(agent_id).await?;
    renewed.save(own_dir)?;
    tracing::info!(
        credential = %renewed.info.credential_id,
        cluster = %renewed.info.cluster,
        dir = %own_dir.display(),
        "agent certificate issued"
    );
    Ok(renewed)
}

/// The credential an agent holds now: its own in `own_dir` once it has one, else the cluster's
/// bootstrap credential in `bootstrap_dir`.
pub fn current_identity(bootstrap_dir: &Path, own_dir: &Path) -> CoreResult<AgentIdentity> {
    if AgentIdentity::exists(own_dir) {
        return AgentIdentity::load(own_dir);
    }
    AgentIdentity::load(bootstrap_dir)
}

/// Where an agent keeps its own credential inside its state directory.
pub fn own_identity_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("credential")
}
