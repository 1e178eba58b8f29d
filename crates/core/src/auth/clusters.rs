//! Clusters, their one-time enrollment tokens, and the client certificates agents hold.
//!
//! An admin registers a cluster and receives a one-time token. Enrolling with it (a signing
//! request plus the token) consumes the token and yields the cluster's bootstrap certificate,
//! which the cluster's agents and audit watcher share (a Kubernetes secret). Each of them then
//! renews with it into a certificate of its own. Every certificate is recorded by fingerprint,
//! so one certificate, or the whole cluster, can be revoked; the server checks the record on
//! every connection and cuts off streams whose credential is revoked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Credentials, Principal, Role, now_rfc3339, now_unix, token_hash};
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, validate_cluster_id};
use crate::pki::{AgentSubject, Authority};

/// Prefix of the key id of a principal that authenticated with a certificate.
pub const CERT_KEY_PREFIX: &str = "cert-";
/// Prefix of enrollment tokens, so leaked ones are easy to find with secret scanners.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "pal_enroll_";
/// Hex characters of the fingerprint that name a credential.
const CREDENTIAL_ID_LEN: usize = 16;
/// Who a bootstrap certificate is issued to.
const BOOTSTRAP_HOLDER: &str = "bootstrap";
/// Longest agent id recorded in a certificate.
const MAX_HOLDER: usize = 128;
/// Most live certificates a cluster may hold: a stolen bootstrap credential cannot fill the
/// store with renewals.
pub const MAX_LIVE_CERTIFICATES: usize = 10_000;

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub tenant: TenantId,
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub revoked: bool,
}

/// A cluster with the number of its live credentials and pending tokens.
#[derive(Debug, Clone)]
pub struct ClusterSummary {
    pub record: ClusterRecord,
    pub active_credentials: u32,
    pub pending_tokens: u32,
}

/// A stored enrollment token (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    pub tenant: TenantId,
    pub cluster: String,
    /// Unix seconds.
    pub expires: i64,
    /// RFC 3339 time of its use; a token works once.
    pub used: Option<String>,
}

/// A certificate the CA issued to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// The first hex characters of the fingerprint.
    pub credential_id: String,
    pub tenant: TenantId,
    pub cluster: String,
    /// "bootstrap", or the agent id it was renewed for.
    pub holder: String,
    /// RFC 3339.
    pub issued: String,
    /// Unix seconds.
    pub not_after: i64,
    pub revoked: bool,
}

/// What enrollment or renewal hands back to the agent.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub certificate_pem: String,
    pub tenant: TenantId,
    pub cluster: String,
    pub credential_id: String,
    /// Hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// A new enrollment token: shown to the admin once.
#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub cluster: String,
    pub token: String,
    /// Unix seconds.
    pub expires: i64,
}

fn cluster_key(tenant: &TenantId, cluster: &str) -> String {
    format!("{tenant}\n{cluster}")
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

impl Credentials {
    /// Registers `cluster` in `tenant` and issues its first enrollment token.
    pub fn register_cluster(
        &self,
        tenant: &TenantId,
        cluster: &str,
        token_ttl: Duration,
    ) -> CoreResult<NewEnrollmentToken> {
        validate_cluster_id(cluster)?;
        if self.tenant(tenant)?.is_none() {
            return Err(CoreError::NotFound(format!("tenant {tenant}")));
        }
        let record = ClusterRecord {
            tenant: tenant.clone(),
            id: cluster.to_string(),
            created: now_rfc3339(),
            revoked: false,
        };
        if !self
            .clusters
            .insert_new(&cluster_key(tenant, cluster), &record)?
        {
            return Err(CoreError::AlreadyExists(format!(
                "cluster {cluster} is registered already; issue a new enrollment token for it instead"
            )));
        }
        self.issue_enrollment_token(tenant, cluster, token_ttl)
    }

    /// A new one-time enrollment token for a registered, unrevoked cluster.
    pub fn issue_enrollment_token(
        &self,
        tenant: &TenantId,
        cluster: &str,
        token_ttl: Duration,
    ) -> CoreResult<NewEnrollmentToken> {
        let record = self.cluster(tenant, cluster)?;
        if record.revoked {
            return Err(CoreError::InvalidArgument(format!(
                "cluster {cluster} is revoked; register the cluster under a new id"
            )));
        }
        let token = format!(
            "{ENROLLMENT_TOKEN_PREFIX}{}",
            super::generate_token().trim_start_matches(super::TOKEN_PREFIX)
        );
        let expires = now_unix().saturating_add(seconds(token_ttl));
        let stored = EnrollmentToken {
            tenant: tenant.clone(),
            cluster: cluster.to_string(),
            expires,
            used: None,
        };
        self.enrollment_tokens.put(&token_hash(&token), &stored)?;
        Ok(NewEnrollmentToken {
            cluster: cluster.to_string(),
            token,
            expires,
        })
    }

    fn cluster(&self, tenant: &TenantId, cluster: &str) -> CoreResult<ClusterRecord> {
        self.clusters
            .get(&cluster_key(tenant, cluster))?
            .ok_or_else(|| CoreError::NotFound(format!("cluster {cluster}")))
    }

    /// The clusters of `tenant`, with their live credentials and pending tokens.
    pub fn clusters(&self, tenant: &TenantId) -> CoreResult<Vec<ClusterSummary>> {
        let now = now_unix();
        let certificates = self.certificates.scan_prefix("")?;
        let tokens = self.enrollment_tokens.scan_prefix("")?;
        let summaries = self
            .clusters
            .scan_prefix(&format!("{tenant}\n"))?
            .into_iter()
            .map(|(_, record)| {
                let active_credentials = certificates
                    .iter()
                    .filter(|(_, certificate)| {
                        certificate.tenant == record.tenant
                            && certificate.cluster == record.id
                            && !certificate.revoked
                            && certificate.not_after > now
                    })
                    .count();
                let pending_tokens = tokens
                    .iter()
                    .filter(|(_, token)| {
                        token.tenant == record.tenant
                            && token.cluster == record.id
                            && token.used.is_none()
                            && token.expires > now
                    })
                    .count();
                ClusterSummary {
                    record,
                    active_credentials: u32::try_from(active_credentials).unwrap_or(u32::MAX),
                    pending_tokens: u32::try_from(pending_tokens).unwrap_or(u32::MAX),
                }
            })
            .collect();
        Ok(summaries)
    }

    /// Exchanges a one-time enrollment token and a signing request for the cluster's
    /// bootstrap certificate. The token is consumed even if a later step fails, so a token
    /// seen by anyone else is worth nothing after its first use.
    pub fn enroll(
        &self,
        token: &str,
        csr_pem: &str,
        authority: &Authority,
        validity: Duration,
    ) -> CoreResult<Enrolled> {
        let hash = token_hash(token.trim());
        let stored = self
            .enrollment_tokens
            .get(&hash)?
            .ok_or_else(|| CoreError::Unauthenticated("unknown enrollment token".into()))?;
        if let Some(used) = &stored.used {
            return Err(CoreError::Unauthenticated(format!(
                "this enrollment token was used already (at {used}); issue a new one with `palisade admin cluster token {}`",
                stored.cluster
            )));
        }
        if stored.expires <= now_unix() {
            return Err(CoreError::Unauthenticated(format!(
                "this enrollment token of cluster {} has expired; issue a new one",
                stored.cluster
            )));
        }
        let cluster = self.cluster(&stored.tenant, &stored.cluster)?;
        if cluster.revoked {
            return Err(CoreError::Unauthenticated(format!(
                "cluster {} is revoked",
                cluster.id
            )));
        }
        let consumed = EnrollmentToken {
            used: Some(now_rfc3339()),
            ..stored.clone()
        };
        if !self.enrollment_tokens.replace(&hash, &stored, &consumed)? {
            return Err(CoreError::Unauthenticated(
                "this enrollment token was used already by a concurrent enrollment".into(),
            ));
        }
        self.issue_certificate(authority, csr_pem, &cluster, BOOTSTRAP_HOLDER, validity)
    }

    /// A new certificate for the agent `holder`, of the same tenant and cluster as the
    /// certificate `principal` authenticated with.
    pub fn renew(
        &self,
        principal: &Principal,
        holder: &str,
        csr_pem: &str,
        authority: &Authority,
        validity: Duration,
    ) -> CoreResult<Enrolled> {
        let Some(cluster_id) = &principal.cluster else {
            return Err(CoreError::PermissionDenied(
                "renewal needs an agent certificate, not an API key".into(),
            ));
        };
        if !self.still_valid(principal) {
            return Err(CoreError::Unauthenticated(format!(
                "credential {} is revoked or expired",
                principal.key_id
            )));
        }
        let printable = holder.chars().all(|c| !c.is_control());
        if holder.is_empty() || holder.len() > MAX_HOLDER || !printable {
            return Err(CoreError::InvalidArgument(format!(
                "agent_id must be 1-{MAX_HOLDER} printable characters"
            )));
        }
        let cluster = self.cluster(&principal.tenant, cluster_id)?;
        let now = now_unix();
        let live = self
            .cluster_certificates(&principal.tenant, cluster_id)?
            .into_iter()
            .filter(|record| !record.revoked && record.not_after > now)
            .count();
        if live >= MAX_LIVE_CERTIFICATES {
            return Err(CoreError::ResourceExhausted(format!(
                "cluster {cluster_id} holds {live} live certificates, the most allowed; revoke unused ones"
            )));
        }
        self.issue_certificate(authority, csr_pem, &cluster, holder, validity)
    }

    fn issue_certificate(
        &self,
        authority: &Authority,
        csr_pem: &str,
        cluster: &ClusterRecord,
        holder: &str,
        validity: Duration,
    ) -> CoreResult<Enrolled> {
        let subject = AgentSubject {
            tenant: cluster.tenant.as_str(),
            cluster: &cluster.id,
            holder,
        };
        let issued = authority.sign_agent(csr_pem, &subject, validity)?;
        let credential_id = issued.fingerprint[..CREDENTIAL_ID_LEN].to_string();
        let record = CertificateRecord {
            credential_id: credential_id.clone(),
            tenant: cluster.tenant.clone(),
            cluster: cluster.id.clone(),
            holder: holder.to_string(),
            issued: now_rfc3339(),
            not_after: issued.not_after,
            revoked: false,
        };
        self.certificates.put(&issued.fingerprint, &record)?;
        Ok(Enrolled {
            certificate_pem: issued.certificate_pem,
            tenant: cluster.tenant.clone(),
            cluster: cluster.id.clone(),
            credential_id,
            fingerprint: issued.fingerprint,
            not_after: issued.not_after,
        })
    }

    /// The principal of a connection whose TLS handshake presented the certificate with
    /// `fingerprint` (already verified against the CA by the TLS layer).
    pub fn authenticate_certificate(&self, fingerprint: &str) -> CoreResult<Principal> {
        let record = self.certificates.get(fingerprint)?.ok_or_else(|| {
            CoreError::Unauthenticated("this client certificate was not issued here".into())
        })?;
        let principal = Principal {
            tenant: record.tenant.clone(),
            role: Role::Analyst,
            key_id: format!("{CERT_KEY_PREFIX}{}", record.credential_id),
            cluster: Some(record.cluster.clone()),
        };
        if !self.certificate_valid(&record.credential_id)? {
            return Err(CoreError::Unauthenticated(format!(
                "credential {} of cluster {} is revoked or expired",
                record.credential_id, record.cluster
            )));
        }
        Ok(principal)
    }

    /// Removes every cluster of `tenant` with its certificates and enrollment tokens (a
    /// deleted tenant). A removed certificate is refused like any unknown one.
    pub(super) fn remove_clusters(&self, tenant: &TenantId) -> CoreResult<usize> {
        for (fingerprint, certificate) in self.certificates.scan_prefix("")? {
            if &certificate.tenant == tenant {
                self.certificates.remove(&fingerprint)?;
            }
        }
        for (hash, token) in self.enrollment_tokens.scan_prefix("")? {
            if &token.tenant == tenant {
                self.enrollment_tokens.remove(&hash)?;
            }
        }
        self.clusters.remove_prefix(&format!("{tenant}\n"))
    }

    pub(super) fn certificate_valid(&self, credential_id: &str) -> CoreResult<bool> {
        let now = now_unix();
        let entries = self.certificates.scan_prefix(credential_id)?;
        let Some((_, record)) = entries
            .into_iter()
            .find(|(_, record)| record.credential_id == credential_id)
        else {
            return Ok(false);
        };
        if record.revoked || record.not_after <= now {
            return Ok(false);
        }
        if self.tenant(&record.tenant)?.is_none() {
            return Ok(false);
        }
        let cluster = self
            .clusters
            .get(&cluster_key(&record.tenant, &record.cluster))?;
        Ok(cluster.is_some_and(|cluster| !cluster.revoked))
    }

    /// Revokes one credential of a cluster, or (None) the whole cluster: every credential and
    /// every pending token. Returns how many credentials were revoked.
    pub fn revoke_cluster(
        &self,
        tenant: &TenantId,
        cluster: &str,
        credential_id: Option<&str>,
    ) -> CoreResult<u32> {
        let mut record = self.cluster(tenant, cluster)?;
        let mut revoked = 0u32;
        for (fingerprint, mut certificate) in self.certificates.scan_prefix("")? {
            let ours = &certificate.tenant == tenant && certificate.cluster == cluster;
            let chosen = credential_id.is_none_or(|id| certificate.credential_id == id);
            if ours && chosen && !certificate.revoked {
                certificate.revoked = true;
                self.certificates.put(&fingerprint, &certificate)?;
                revoked += 1;
            }
        }
        if let Some(id) = credential_id {
            if revoked == 0 {
                return Err(CoreError::NotFound(format!(
                    "live credential {id} of cluster {cluster}"
                )));
            }
        } else {
            for (hash, token) in self.enrollment_tokens.scan_prefix("")? {
                if &token.tenant == tenant && token.cluster == cluster {
                    self.enrollment_tokens.remove(&hash)?;
                }
            }
            record.revoked = true;
            self.clusters.put(&cluster_key(tenant, cluster), &record)?;
        }
        self.announce_revocation();
        Ok(revoked)
    }

    /// The certificates issued for a cluster of `tenant`.
    pub fn cluster_certificates(
        &self,
        tenant: &TenantId,
        cluster: &str,
    ) -> CoreResult<Vec<CertificateRecord>> {
        Ok(self
            .certificates
            .scan_prefix("")?
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| &record.tenant == tenant && record.cluster == cluster)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::new_key_and_request;
    use crate::storage::Store;

    struct Fixture {
        credentials: Credentials,
        authority: Authority,
        acme: TenantId,
        _temp: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let temp = tempfile::tempdir().expect("temp dir");
        let store = Store::temporary().expect("store");
        let credentials = Credentials::open(&store).expect("credentials");
        let acme = TenantId::new("acme").expect("tenant");
        credentials.ensure_tenant(&acme, "Acme").expect("tenant");
        let authority = Authority::open_or_create(temp.path()).expect("ca");
        Fixture {
            credentials,
            authority,
            acme,
            _temp: temp,
        }
    }

    fn enroll(fixture: &Fixture, token: &str) -> CoreResult<Enrolled> {
        let (_, csr) = new_key_and_request().expect("csr");
        fixture
            .credentials
            .enroll(token, &csr, &fixture.authority, Duration::from_secs(3600))
    }

    #[test]
    fn a_token_enrolls_once_and_the_certificate_names_tenant_and_cluster() {
        let fixture = fixture();
        let token = fixture
            .credentials
            .register_cluster(&fixture.acme, "prod-eu", Duration::from_secs(600))
            .expect("registered");
        assert!(token.token.starts_with(ENROLLMENT_TOKEN_PREFIX));
        let enrolled = enroll(&fixture, &token.token).expect("enrolled");
        assert_eq!(enrolled.tenant, fixture.acme);
        assert_eq!(enrolled.cluster, "prod-eu");
        let again = enroll(&fixture, &token.token).expect_err("second use");
        assert_eq!(again.code(), tonic::Code::Unauthenticated);
        assert!(again.to_string().contains("used already"), "{again}");

        let principal = fixture
            .credentials
            .authenticate_certificate(&enrolled.fingerprint)
            .expect("authenticated");
        assert_eq!(principal.tenant, fixture.acme);
        assert_eq!(principal.cluster.as_deref(), Some("prod-eu"));
        assert!(fixture.credentials.still_valid(&principal));
    }

    #[test]
    fn expired_unknown_and_revoked_tokens_are_refused() {
        let fixture = fixture();
        let expired = fixture
            .credentials
            .register_cluster(&fixture.acme, "old", Duration::ZERO)
            .expect("registered");
        let error = enroll(&fixture, &expired.token).expect_err("expired");
        assert!(error.to_string().contains("expired"), "{error}");
        let error = enroll(&fixture, "pal_enroll_nope").expect_err("unknown");
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        let pending = fixture
            .credentials
            .issue_enrollment_token(&fixture.acme, "old", Duration::from_secs(600))
            .expect("token");
        fixture
            .credentials
            .revoke_cluster(&fixture.acme, "old", None)
            .expect("revoked");
        let error = enroll(&fixture, &pending.token).expect_err("revoked cluster");
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        let error = fixture
            .credentials
            .register_cluster(&fixture.acme, "old", Duration::from_secs(600))
            .expect_err("exists");
        assert_eq!(error.code(), tonic::Code::AlreadyExists);
    }

    #[test]
    fn renewal_issues_an_own_certificate_and_revocation_cuts_one_or_all() {
        let fixture = fixture();
        let token = fixture
            .credentials
            .register_cluster(&fixture.acme, "prod", Duration::from_secs(600))
            .expect("registered");
        let bootstrap = enroll(&fixture, &token.token).expect("enrolled");
        let bootstrap_principal = fixture
            .credentials
            .authenticate_certificate(&bootstrap.fingerprint)
            .expect("bootstrap");
        let (_, csr) = new_key_and_request().expect("csr");
        let own = fixture
            .credentials
            .renew(
                &bootstrap_principal,
                "node-1",
                &csr,
                &fixture.authority,
                Duration::from_secs(3600),
            )
            .expect("renewed");
        let own_principal = fixture
            .credentials
            .authenticate_certificate(&own.fingerprint)
            .expect("own");
        assert_ne!(own_principal.key_id, bootstrap_principal.key_id);

        let mut revocations = fixture.credentials.revocations();
        let revoked = fixture
            .credentials
            .revoke_cluster(&fixture.acme, "prod", Some(&own.credential_id))
            .expect("revoke one");
        assert_eq!(revoked, 1);
        assert!(revocations.has_changed().expect("watch"));
        revocations.mark_unchanged();
        assert!(!fixture.credentials.still_valid(&own_principal));
        assert!(fixture.credentials.still_valid(&bootstrap_principal));
        let error = fixture
            .credentials
            .authenticate_certificate(&own.fingerprint)
            .expect_err("revoked");
        assert_eq!(error.code(), tonic::Code::Unauthenticated);

        fixture
            .credentials
            .revoke_cluster(&fixture.acme, "prod", None)
            .expect("revoke all");
        assert!(revocations.has_changed().expect("watch"));
        assert!(!fixture.credentials.still_valid(&bootstrap_principal));
        let summaries = fixture.credentials.clusters(&fixture.acme).expect("list");
        assert_eq!(summaries.len(), 1);
        assert!(summaries[0].record.revoked);
        assert_eq!(summaries[0].active_credentials, 0);
    }

    #[test]
    fn another_tenants_cluster_cannot_be_revoked_or_tokened() {
        let fixture = fixture();
        let other = TenantId::new("other").expect("tenant");
        fixture
            .credentials
            .ensure_tenant(&other, "Other")
            .expect("tenant");
        fixture
            .credentials
            .register_cluster(&fixture.acme, "prod", Duration::from_secs(600))
            .expect("registered");
        let error = fixture
            .credentials
            .revoke_cluster(&other, "prod", None)
            .expect_err("not theirs");
        assert_eq!(error.code(), tonic::Code::NotFound);
        let error = fixture
            .credentials
            .issue_enrollment_token(&other, "prod", Duration::from_secs(600))
            .expect_err("not theirs");
        assert_eq!(error.code(), tonic::Code::NotFound);
        assert!(
            fixture
                .credentials
                .clusters(&other)
                .expect("list")
                .is_empty()
        );
    }
}
