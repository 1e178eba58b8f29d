//! Who is calling: tenants, API keys and the principal a request acts as.
//!
//! Keys are random tokens shown once; only their SHA-256 is stored. A request's tenant is
//! always the tenant of its credential, never something the request says, except for the
//! internal service credential used between Palisade's own processes, which acts for the
//! tenant its caller already authenticated.
//!
//! Agents authenticate with client certificates instead (see [`clusters`]): their principal
//! carries the cluster the certificate was issued for.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::storage::{Store, TypedTree};

pub mod bearer;
pub mod clusters;
pub mod events;
pub mod service;

pub use bearer::BearerToken;
pub use clusters::{CertificateRecord, ClusterRecord, ClusterSummary, Enrolled, EnrollmentToken};
pub use events::AdminEvent;

/// Metadata header naming the tenant an internal service call acts for.
pub const TENANT_HEADER: &str = "x-palisade-tenant";
/// Metadata header naming the role an internal service call acts with.
pub const ROLE_HEADER: &str = "x-palisade-role";
/// Metadata header naming the key an internal service call acts for (owner of saved searches).
pub const KEY_ID_HEADER: &str = "x-palisade-key-id";
/// Prefix of every Palisade token, so leaked tokens are easy to find with secret scanners.
pub const TOKEN_PREFIX: &str = "pal_";

/// What a credential may do. Ordered: each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read alerts, findings, the graph.
    ReadOnly,
    /// Also write: publish alerts, run scans, save searches.
    Analyst,
    /// Also manage the tenant's keys, clusters and settings.
    Admin,
    /// Palisade's own processes calling each other; acts for the tenant named in the call.
    Service,
}

impl Role {
    /// The role's name in configuration and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read_only",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    fn from_header(text: &str) -> Option<Role> {
        match text {
            "read_only" => Some(Role::ReadOnly),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The only tenant whose data the request may read or write.
    pub tenant: TenantId,
    pub role: Role,
    /// Id of the key used (not the key); `cert-...` for an agent certificate.
    pub key_id: String,
    /// The cluster of an agent credential; None for API keys, which belong to no cluster.
    pub cluster: Option<String>,
}

impl Principal {
    /// Refuses the call unless the principal's role is at least `needed`.
    pub fn require(&self, needed: Role) -> CoreResult<()> {
        if self.role >= needed {
            return Ok(());
        }
        Err(CoreError::PermissionDenied(format!(
            "key {} has role {} but this call needs {}",
            self.key_id,
            self.role.as_str(),
            needed.as_str()
        )))
    }
}

/// A stored API key (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub tenant: TenantId,
    pub role: Role,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    pub revoked: bool,
    /// Unix seconds after which the key stops working; None: never.
    #[serde(default)]
    pub expires: Option<i64>,
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// Set while the tenant's data is being erased: it no longer exists for any caller, and
    /// its id is not free until the erasure is done.
    #[serde(default)]
    pub deleting: bool,
}

/// Tenants, API keys, clusters and their enrollment tokens and certificates, and the audit
/// log of administrative actions.
#[derive(Clone)]
pub struct Credentials {
    store: Store,
    tenants: TypedTree<TenantRecord>,
    /// Keyed by the hex SHA-256 of the token.
    keys: TypedTree<ApiKeyRecord>,
    /// Keyed by "tenant\ncluster".
    clusters: TypedTree<ClusterRecord>,
    /// Keyed by the hex SHA-256 of the enrollment token.
    enrollment_tokens: TypedTree<EnrollmentToken>,
    /// Keyed by the certificate's fingerprint.
    certificates: TypedTree<CertificateRecord>,
    /// Keyed by "tenant\n" and a time-ordered suffix.
    events: TypedTree<AdminEvent>,
    /// Bumped at every revocation, so long-lived streams check their credential again.
    revocations: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

/// A newly created key: the token is shown to the user once.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: String,
    pub token: String,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fresh random token.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

impl Credentials {
    /// Opens the credential trees of `store`.
    pub fn open(store: &Store) -> CoreResult<Credentials> {
        Ok(Credentials {
            store: store.clone(),
            tenants: store.typed_tree("auth/tenants")?,
            keys: store.typed_tree("auth/keys")?,
            clusters: store.typed_tree("auth/clusters")?,
            enrollment_tokens: store.typed_tree("auth/enrollment_tokens")?,
            certificates: store.typed_tree("auth/certificates")?,
            events: store.typed_tree("auth/events")?,
            revocations: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Makes every credential change so far durable.
    pub async fn flush(&self) -> CoreResult<()> {
        self.store.flush().await
    }

    /// Changes at every revocation: a stream holder waits on it, then asks
    /// [`Credentials::still_valid`] about its principal.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    fn announce_revocation(&self) {
        self.revocations.send_modify(|generation| *generation += 1);
    }

    /// Whether the credential `principal` authenticated with still works: not revoked, not
    /// expired, its tenant (and cluster) still there.
    pub fn still_valid(&self, principal: &Principal) -> bool {
        let valid =
            if let Some(credential) = principal.key_id.strip_prefix(clusters::CERT_KEY_PREFIX) {
                self.certificate_valid(credential)
            } else {
                self.api_key_valid(&principal.key_id)
            };
        valid.unwrap_or(false)
    }

    fn api_key_valid(&self, key_id: &str) -> CoreResult<bool> {
        let now = now_unix();
        let entries = self.keys.scan_prefix(key_id)?;
        let Some((_, record)) = entries
            .into_iter()
            .find(|(_, record)| record.key_id == key_id)
        else {
            return Ok(false);
        };
        let live = !record.revoked && record.expires.is_none_or(|expires| now < expires);
        Ok(live && self.tenant(&record.tenant)?.is_some())
    }

    /// The API keys of `tenant`.
    pub fn api_keys(&self, tenant: &TenantId) -> CoreResult<Vec<ApiKeyRecord>> {
        let mut keys: Vec<ApiKeyRecord> = self
            .keys
            .scan_prefix("")?
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| &record.tenant == tenant)
            .collect();
        keys.sort_by(|left, right| left.created.cmp(&right.created));
        Ok(keys)
    }

    /// Revokes the key `key_id` of `tenant`. A key of another tenant is reported as not found,
    /// so a caller learns nothing about other tenants' keys.
    pub fn revoke_api_key(&self, tenant: &TenantId, key_id: &str) -> CoreResult<()> {
        let entries = self.keys.scan_prefix(key_id)?;
        let Some((hash, mut record)) = entries
            .into_iter()
            .find(|(_, record)| record.key_id == key_id && &record.tenant == tenant)
        else {
            return Err(CoreError::NotFound(format!("api key {key_id}")));
        };
        record.revoked = true;
        self.keys.put(&hash, &record)?;
        self.announce_revocation();
        Ok(())
    }

    /// Starts deleting a tenant: revokes every key, cluster credential and token of it and
    /// marks it as being deleted, durably, so nothing of it authenticates any more and the
    /// deletion is resumed after a crash. Its data is then erased by whoever holds it, and
    /// [`Credentials::finish_tenant_deletion`] removes it. The `default` tenant, which holds
    /// the operator's key, cannot be deleted.
    pub async fn begin_tenant_deletion(&self, tenant: &TenantId) -> CoreResult<()> {
        if *tenant == TenantId::default_tenant() {
            return Err(CoreError::InvalidArgument(
                "the default tenant holds the operator's key and cannot be deleted".into(),
            ));
        }
        let Some(mut record) = self.tenant(tenant)? else {
            return Err(CoreError::NotFound(format!("tenant {tenant}")));
        };
        for (hash, mut key) in self.keys.scan_prefix("")? {
            if &key.tenant == tenant && !key.revoked {
                key.revoked = true;
                self.keys.put(&hash, &key)?;
            }
        }
        for cluster in self.clusters(tenant)? {
            self.revoke_cluster(tenant, &cluster.record.id, None)?;
        }
        record.deleting = true;
        self.tenants.put(tenant.as_str(), &record)?;
        self.announce_revocation();
        self.store.flush().await
    }

    /// Ends the deletion of a tenant whose data is erased: its audit events, keys, clusters,
    /// certificates and enrollment tokens go (each refused as unknown from then on), then the
    /// tenant itself, and its id is free again. Returns how many audit events there were.
    pub fn finish_tenant_deletion(&self, tenant: &TenantId) -> CoreResult<usize> {
        let events = self.remove_admin_events(tenant)?;
        for (hash, key) in self.keys.scan_prefix("")? {
            if &key.tenant == tenant {
                self.keys.remove(&hash)?;
            }
        }
        self.remove_clusters(tenant)?;
        self.tenants.remove(tenant.as_str())?;
        Ok(events)
    }

    /// Tenants whose deletion was begun and not finished (a crash in between).
    pub fn tenants_being_deleted(&self) -> CoreResult<Vec<TenantId>> {
        Ok(self
            .tenants
            .scan_prefix("")?
            .into_iter()
            .filter(|(_, record)| record.deleting)
            .map(|(_, record)| record.id)
            .collect())
    }

    /// Creates the tenant if it does not exist; returns whether it was created.
    pub fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> CoreResult<bool> {
        let record = TenantRecord {
            id: tenant.clone(),
            name: name.to_string(),
            created: now_rfc3339(),
            deleting: false,
        };
        self.tenants.insert_new(tenant.as_str(), &record)
    }

    /// The tenant, if it exists (a tenant being deleted does not).
    pub fn tenant(&self, tenant: &TenantId) -> CoreResult<Option<TenantRecord>> {
        Ok(self
            .tenants
            .get(tenant.as_str())?
            .filter(|record| !record.deleting))
    }

    /// Every tenant.
    pub fn tenants(&self) -> CoreResult<Vec<TenantRecord>> {
        Ok(self
            .tenants
            .scan_prefix("")?
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| !record.deleting)
            .collect())
    }

    /// Stores a key for `token`. Used for generated tokens and for tokens an operator supplies.
    pub fn register_token(
        &self,
        token: &str,
        tenant: &TenantId,
        role: Role,
        name: &str,
    ) -> CoreResult<String> {
        if self.tenant(tenant)?.is_none() {
            return Err(CoreError::NotFound(format!("tenant {tenant}")));
        }
        let hash = token_hash(token);
        let key_id = hash[..12].to_string();
        let record = ApiKeyRecord {
            key_id: key_id.clone(),
            tenant: tenant.clone(),
            role,
            name: name.to_string(),
            created: now_rfc3339(),
            revoked: false,
            expires: None,
        };
        self.keys.put(&hash, &record)?;
        Ok(key_id)
    }

    /// Creates a new random key.
    pub fn create_api_key(
        &self,
        tenant: &TenantId,
        role: Role,
        name: &str,
    ) -> CoreResult<NewApiKey> {
        let token = generate_token();
        let key_id = self.register_token(&token, tenant, role, name)?;
        Ok(NewApiKey { key_id, token })
    }

    /// Creates a new random key that stops working after `ttl`.
    pub fn create_expiring_api_key(
        &self,
        tenant: &TenantId,
        role: Role,
        name: &str,
        ttl: std::time::Duration,
    ) -> CoreResult<NewApiKey> {
        let key = self.create_api_key(tenant, role, name)?;
        let hash_entries = self.keys.scan_prefix(&key.key_id)?;
        for (hash, mut record) in hash_entries {
            if record.key_id == key.key_id {
                let ttl_seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
                record.expires = Some(now_unix().saturating_add(ttl_seconds));
                self.keys.put(&hash, &record)?;
            }
        }
        Ok(key)
    }

    /// The principal of `token`.
    pub fn authenticate_token(&self, token: &str) -> CoreResult<Principal> {
        let record = self
            .keys
            .get(&token_hash(token))?
            .ok_or_else(|| CoreError::Unauthenticated("unknown token".into()))?;
        if record.revoked {
            return Err(CoreError::Unauthenticated(format!(
                "key {} is revoked",
                record.key_id
            )));
        }
        if record.expires.is_some_and(|expires| now_unix() >= expires) {
            return Err(CoreError::Unauthenticated(format!(
                "key {} has expired",
                record.key_id
            )));
        }
        if self.tenant(&record.tenant)?.is_none() {
            return Err(CoreError::Unauthenticated(format!(
                "the tenant of key {} was deleted",
                record.key_id
            )));
        }
        Ok(Principal {
            tenant: record.tenant,
            role: record.role,
            key_id: record.key_id,
            cluster: None,
        })
    }

    /// The principal of a gRPC request: `authorization: Bearer TOKEN`. A service credential
    /// acts for the tenant and role named in the [`TENANT_HEADER`] and [`ROLE_HEADER`].
    pub fn authenticate_metadata(&self, metadata: &MetadataMap) -> CoreResult<Principal> {
        let header = metadata.get("authorization").ok_or_else(|| {
            CoreError::Unauthenticated("missing authorization: Bearer TOKEN".into())
        })?;
        let header = header
            .to_str()
            .map_err(|_| CoreError::Unauthenticated("authorization header is not ASCII".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                CoreError::Unauthenticated("authorization must be \"Bearer TOKEN\"".into())
            })?
            .trim();
        let principal = self.authenticate_token(token)?;
        if principal.role != Role::Service {
            return Ok(principal);
        }
        let tenant = metadata
            .get(TENANT_HEADER)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                CoreError::Unauthenticated(format!("service call without {TENANT_HEADER}"))
            })?;
        let role = metadata
            .get(ROLE_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(Role::from_header)
            .ok_or_else(|| {
                CoreError::Unauthenticated(format!("service call without a valid {ROLE_HEADER}"))
            })?;
        Ok(Principal {
            tenant: TenantId::new(tenant)?,
            role,
            key_id: principal.key_id,
            cluster: None,
        })
    }

    /// On first start, creates the `default` tenant and an admin token for it, written to
    /// `path` with mode 0600. If the file exists its token is (re-)registered, so the file stays
    /// the operator's credential even if the database was replaced. Returns the token when it
    /// was created now.
    pub async fn ensure_admin_token(&self, path: &Path) -> CoreResult<Option<String>> {
        let default_tenant = TenantId::default_tenant();
        self.ensure_tenant(&default_tenant, "Default tenant")?;
        let io_error = |source| CoreError::DataDir {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(existing) => {
                let token = existing.trim();
                if self.authenticate_token(token).is_err() {
                    self.register_token(token, &default_tenant, Role::Admin, "admin.token")?;
                    self.store.flush().await?;
                }
                return Ok(None);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        let token = generate_token();
        self.register_token(&token, &default_tenant, Role::Admin, "admin.token")?;
        self.store.flush().await?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        writeln!(file, "{token}").map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tonic::metadata::MetadataValue;

    fn metadata_with(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii");
        metadata.insert("authorization", value);
        metadata
    }

    #[tokio::test]
    async fn admin_token_is_created_once_private_and_authenticates_as_default_admin() {
        let temp = tempfile::tempdir().expect("temp dir");
        let store = Store::temporary().expect("store");
        let credentials = Credentials::open(&store).expect("credentials");
        let path = temp.path().join("admin.token");
        let token = credentials
            .ensure_admin_token(&path)
            .await
            .expect("ensure")
            .expect("created");
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(
            credentials.ensure_admin_token(&path).await.expect("ensure"),
            None
        );
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let principal = credentials
            .authenticate_metadata(&metadata_with(&token))
            .expect("authenticated");
        assert_eq!(principal.tenant, TenantId::default_tenant());
        assert_eq!(principal.role, Role::Admin);
    }

    #[test]
    fn unknown_missing_and_malformed_tokens_are_unauthenticated() {
        let store = Store::temporary().expect("store");
        let credentials = Credentials::open(&store).expect("credentials");
        let error = credentials
            .authenticate_metadata(&metadata_with("pal_nope"))
            .expect_err("unknown");
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        let error = credentials
            .authenticate_metadata(&MetadataMap::new())
            .expect_err("missing");
        assert_eq!(error.code(), tonic::Code::Unauthenticated);
        let mut basic = MetadataMap::new();
        basic.insert("authorization", "Basic abc".parse().expect("ascii"));
        assert!(credentials.authenticate_metadata(&basic).is_err());
    }

    #[test]
    fn a_user_key_cannot_choose_its_tenant_but_a_service_key_acts_for_the_named_one() {
        let store = Store::temporary().expect("store");
        let credentials = Credentials::open(&store).expect("credentials");
        let acme = TenantId::new("acme").expect("tenant");
        let other = TenantId::new("other").expect("tenant");
        credentials.ensure_tenant(&acme, "Acme").expect("tenant");
        credentials.ensure_tenant(&other, "Other").expect("tenant");
        let user = credentials
            .create_api_key(&acme, Role::Analyst, "ci")
            .expect("key");
        let mut metadata = metadata_with(&user.token);
        metadata.insert(TENANT_HEADER, "other".parse().expect("ascii"));
        let principal = credentials
            .authenticate_metadata(&metadata)
            .expect("authenticated");
        assert_eq!(
            principal.tenant, acme,
            "the header must not widen a user key"
        );

        let service = credentials
            .create_api_key(&acme, Role::Service, "internal")
            .expect("key");
        let mut metadata = metadata_with(&service.token);
        metadata.insert(TENANT_HEADER, "other".parse().expect("ascii"));
        metadata.insert(ROLE_HEADER, "read_only".parse().expect("ascii"));
        let principal = credentials
            .authenticate_metadata(&metadata)
            .expect("authenticated");
        assert_eq!(principal.tenant, other);
        assert_eq!(principal.role, Role::ReadOnly);
        metadata.insert(ROLE_HEADER, "service".parse().expect("ascii"));
        assert!(
            credentials.authenticate_metadata(&metadata).is_err(),
            "service may not pass itself on"
        );
    }

    #[test]
    fn roles_are_ordered_for_require() {
        let principal = Principal {
            tenant: TenantId::default_tenant(),
            role: Role::Analyst,
            key_id: "k".into(),
            cluster: None,
        };
        assert!(principal.require(Role::ReadOnly).is_ok());
        assert!(principal.require(Role::Analyst).is_ok());
        let error = principal.require(Role::Admin).expect_err("not admin");
        assert_eq!(error.code(), tonic::Code::PermissionDenied);
    }
}
