//! Enrollment of agents, and authentication on the agent listener.
//!
//! The agent listener speaks TLS with a certificate of Palisade's internal CA and asks every
//! client for a certificate of the same CA, but lets a connection without one through, since
//! an agent that is enrolling has none yet. [`CertificateAuthenticate`] turns a presented
//! certificate into the agent's principal; only `EnrollmentService/Enroll` works without one.

use std::sync::Arc;
use std::time::Duration;

use palisade_core::auth::Credentials;
use palisade_core::auth::clusters::{Enrolled, NewEnrollmentToken};
use palisade_core::bridge::principal_of;
use palisade_core::pki::{AGENT_SERVER_NAME, Authority, fingerprint};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::enrollment_service_server::EnrollmentService;
use palisade_proto::v1::{EnrollRequest, EnrollResponse, RegisterClusterResponse, RenewRequest};
use tonic::service::Interceptor;
use tonic::{Request, Response, Status};

/// How agents reach and trust the agent listener, and how long what it issues lasts.
#[derive(Clone)]
pub struct EnrollmentSettings {
    pub authority: Arc<Authority>,
    /// Where agents connect, as written into enrollment bundles.
    pub agent_url: String,
    /// How long a new enrollment token stays valid unless the admin says otherwise.
    pub token_ttl: Duration,
    /// Lifetime of agent certificates; agents renew before the end.
    pub certificate_validity: Duration,
}

impl EnrollmentSettings {
    /// The answer to RegisterCluster and IssueEnrollmentToken.
    pub fn bundle(&self, tenant: &str, token: NewEnrollmentToken) -> RegisterClusterResponse {
        RegisterClusterResponse {
            cluster_id: token.cluster,
            enrollment_token: token.token,
            expires: Some(Timestamp {
                seconds: token.expires,
                nanos: 0,
            }),
            tenant_id: tenant.to_string(),
            ca_certificate_pem: self.authority.ca_pem().to_string(),
            agent_url: self.agent_url.clone(),
            server_name: AGENT_SERVER_NAME.to_string(),
        }
    }

    /// The token time to live an admin asked for, or the default.
    pub fn token_ttl(&self, requested_seconds: u64) -> Duration {
        if requested_seconds == 0 {
            return self.token_ttl;
        }
        Duration::from_secs(requested_seconds)
    }
}

/// Authenticates calls on the agent listener by their client certificate. A call without a
/// certificate goes on without a principal, and every RPC but Enroll then refuses it.
#[derive(Clone)]
pub struct CertificateAuthenticate {
    credentials: Credentials,
}

impl CertificateAuthenticate {
    /// An interceptor checking certificates against `credentials`.
    pub fn new(credentials: Credentials) -> CertificateAuthenticate {
        CertificateAuthenticate { credentials }
    }
}

impl Interceptor for CertificateAuthenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(chain) = request.peer_certs() else {
            return Ok(request);
        };
        let Some(leaf) = chain.first() else {
            return Ok(request);
        };
        let principal = self
            .credentials
            .authenticate_certificate(&fingerprint(leaf.as_ref()))
            .map_err(|error| {
                tracing::info!(%error, "refused an agent certificate");
                Status::from(error)
            })?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Serves EnrollmentService.
#[derive(Clone)]
pub struct EnrollmentGrpc {
    credentials: Credentials,
    settings: EnrollmentSettings,
}

impl EnrollmentGrpc {
    /// An adapter issuing certificates with `settings`.
    pub fn new(credentials: Credentials, settings: EnrollmentSettings) -> EnrollmentGrpc {
        EnrollmentGrpc {
            credentials,
            settings,
        }
    }

    fn response(&self, enrolled: Enrolled) -> EnrollResponse {
        EnrollResponse {
            certificate_pem: enrolled.certificate_pem,
            ca_certificate_pem: self.settings.authority.ca_pem().to_string(),
            tenant_id: enrolled.tenant.to_string(),
            cluster_id: enrolled.cluster,
            credential_id: enrolled.credential_id,
            expires: Some(Timestamp {
                seconds: enrolled.not_after,
                nanos: 0,
            }),
        }
    }
}

#[tonic::async_trait]
impl EnrollmentService for EnrollmentGrpc {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let request = request.into_inner();
        let credentials = self.credentials.clone();
        let authority = self.settings.authority.clone();
        let validity = self.settings.certificate_validity;
        // signing parses untrusted DER and does public-key work: off the async threads
        let enrolled = tokio::task::spawn_blocking(move || {
            credentials.enroll(
                &request.enrollment_token,
                &request.csr_pem,
                &authority,
                validity,
            )
        })
        .await
        .map_err(|error| Status::internal(format!("enrollment task failed: {error}")))??;
        self.credentials.flush().await?;
        tracing::info!(
            tenant = %enrolled.tenant,
            cluster = %enrolled.cluster,
            credential = %enrolled.credential_id,
            "cluster enrolled"
        );
        Ok(Response::new(self.response(enrolled)))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let principal = principal_of(&request).map_err(|_| {
            Status::unauthenticated("renewal needs the client certificate of an enrolled agent")
        })?;
        let request = request.into_inner();
        let credentials = self.credentials.clone();
        let authority = self.settings.authority.clone();
        let validity = self.settings.certificate_validity;
        let renewed_by = principal.key_id.clone();
        let enrolled = tokio::task::spawn_blocking(move || {
            credentials.renew(
                &principal,
                &request.agent_id,
                &request.csr_pem,
                &authority,
                validity,
            )
        })
        .await
        .map_err(|error| Status::internal(format!("renewal task failed: {error}")))??;
        self.credentials.flush().await?;
        tracing::info!(
            tenant = %enrolled.tenant,
            cluster = %enrolled.cluster,
            credential = %enrolled.credential_id,
            by = %renewed_by,
            "agent certificate issued"
        );
        Ok(Response::new(self.response(enrolled)))
    }
}
