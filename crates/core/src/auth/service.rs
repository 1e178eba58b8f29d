//! The internal service credential of the distributed mode.
//!
//! Palisade's own processes call each other with one shared secret (`[peers]
//! service_token_file`). The gateway authenticates users and agents, then forwards a call to
//! the search, graph or scanner service with the service credential and headers naming the
//! tenant, role and key it acts for; those services trust the headers only because the
//! credential came with them. Nothing outside the control plane holds the credential.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::metadata::{MetadataMap, MetadataValue};

use super::{KEY_ID_HEADER, Principal, ROLE_HEADER, Role, TENANT_HEADER};
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;

/// Shortest service credential accepted.
pub const MIN_SERVICE_TOKEN_LENGTH: usize = 32;

/// The shared secret, read from its file.
#[derive(Clone)]
pub struct ServiceToken {
    token: Arc<str>,
    digest: [u8; 32],
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ServiceToken(..)")
    }
}

impl ServiceToken {
    /// Reads the credential from `path`: one line of at least 32 characters without spaces.
    pub fn read(path: &Path) -> CoreResult<ServiceToken> {
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        ServiceToken::new(text.trim()).map_err(|message| CoreError::ConfigParse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// A credential from its text.
    pub fn new(token: &str) -> Result<ServiceToken, String> {
        if token.len() < MIN_SERVICE_TOKEN_LENGTH {
            return Err(format!(
                "the service credential must be at least {MIN_SERVICE_TOKEN_LENGTH} characters (it has {})",
                token.len()
            ));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) || !token.is_ascii() {
            return Err(
                "the service credential must be printable ASCII without spaces (one line)".into(),
            );
        }
        Ok(ServiceToken {
            token: Arc::from(token),
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// The credential as an `authorization` header value.
    pub fn bearer(&self) -> CoreResult<MetadataValue<tonic::metadata::Ascii>> {
        format!("Bearer {}", self.token)
            .parse()
            .map_err(|_| CoreError::InvalidArgument("service credential is not header text".into()))
    }

    /// Whether `presented` is this credential. Compares digests, so the time taken does not
    /// reveal how much of a guess was right.
    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
    }

    /// Checks the `authorization` header of an internal call.
    pub fn check(&self, metadata: &MetadataMap) -> CoreResult<()> {
        let presented = metadata
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                CoreError::Unauthenticated(
                    "internal service: missing authorization: Bearer SERVICE-CREDENTIAL".into(),
                )
            })?;
        if !self.matches(presented.trim()) {
            return Err(CoreError::Unauthenticated(
                "internal service: not the service credential (only Palisade's own services may call here; clients call the gateway)".into(),
            ));
        }
        Ok(())
    }

    /// The principal an internal call acts for: the service credential, plus the tenant, role
    /// and key named in its headers by the gateway that authenticated the caller.
    pub fn principal(&self, metadata: &MetadataMap) -> CoreResult<Principal> {
        self.check(metadata)?;
        let header = |name: &str| metadata.get(name).and_then(|value| value.to_str().ok());
        let tenant = header(TENANT_HEADER).ok_or_else(|| {
            CoreError::Unauthenticated(format!("service call without {TENANT_HEADER}"))
        })?;
        let role = header(ROLE_HEADER)
            .and_then(Role::from_header)
            .ok_or_else(|| {
                CoreError::Unauthenticated(format!("service call without a valid {ROLE_HEADER}"))
            })?;
        let key_id = header(KEY_ID_HEADER).unwrap_or("service").to_string();
        Ok(Principal {
            tenant: TenantId::new(tenant)?,
            role,
            key_id,
            cluster: None,
        })
    }
}

/// Interceptor of the services behind the gateway: every call must carry the service
/// credential and name the tenant and role it acts for.
#[derive(Clone, Debug)]
pub struct ServiceAuthenticate {
    token: ServiceToken,
}

impl ServiceAuthenticate {
    pub fn new(token: ServiceToken) -> ServiceAuthenticate {
        ServiceAuthenticate { token }
    }
}

impl tonic::service::Interceptor for ServiceAuthenticate {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let principal = self.token.principal(request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// Interceptor of the internal-only services (the log): the service credential and nothing
/// else; the call acts for no tenant.
#[derive(Clone, Debug)]
pub struct ServiceOnly {
    token: ServiceToken,
}

impl ServiceOnly {
    pub fn new(token: ServiceToken) -> ServiceOnly {
        ServiceOnly { token }
    }
}

impl tonic::service::Interceptor for ServiceOnly {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        self.token.check(request.metadata())?;
        Ok(request)
    }
}

/// Writes the headers that carry `principal` to a service behind the gateway, replacing any
/// the caller sent.
pub fn write_principal_headers(
    metadata: &mut MetadataMap,
    principal: &Principal,
    token: &ServiceToken,
) -> CoreResult<()> {
    let text = |value: &str, what: &str| {
        value
            .parse::<MetadataValue<tonic::metadata::Ascii>>()
            .map_err(|_| CoreError::InvalidArgument(format!("{what} is not valid header text")))
    };
    metadata.insert("authorization", token.bearer()?);
    metadata.insert(TENANT_HEADER, text(principal.tenant.as_str(), "tenant id")?);
    metadata.insert(
        ROLE_HEADER,
        MetadataValue::from_static(principal.role.as_str()),
    );
    metadata.insert(KEY_ID_HEADER, text(&principal.key_id, "key id")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ServiceToken {
        ServiceToken::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t").expect("valid")
    }

    fn principal() -> Principal {
        Principal {
            tenant: TenantId::new("acme").expect("tenant"),
            role: Role::Analyst,
            key_id: "key-1".into(),
            cluster: None,
        }
    }

    #[test]
    fn short_or_multi_line_credentials_are_refused() {
        assert!(ServiceToken::new("short").is_err());
        assert!(ServiceToken::new("a-long-enough-credential-with a space").is_err());
        assert!(ServiceToken::new(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn the_principal_travels_only_with_the_credential() {
        let mut metadata = MetadataMap::new();
        write_principal_headers(&mut metadata, &principal(), &token()).expect("headers");
        assert_eq!(token().principal(&metadata).expect("accepted"), principal());

        let other = ServiceToken::new(&"y".repeat(40)).expect("valid");
        let error = other.principal(&metadata).expect_err("another credential");
        assert!(matches!(error, CoreError::Unauthenticated(_)), "{error}");

        metadata.insert(
            "authorization",
            "Bearer pal_user_key".parse().expect("ascii"),
        );
        assert!(
            token().principal(&metadata).is_err(),
            "a user key is not the credential"
        );
    }

    #[test]
    fn a_forwarded_call_cannot_claim_the_service_role() {
        let mut metadata = MetadataMap::new();
        write_principal_headers(&mut metadata, &principal(), &token()).expect("headers");
        metadata.insert(ROLE_HEADER, "service".parse().expect("ascii"));
        assert!(token().principal(&metadata).is_err());
        metadata.remove(ROLE_HEADER);
        assert!(token().principal(&metadata).is_err(), "role is required");
    }

    #[test]
    fn caller_headers_are_replaced_not_added_to() {
        let mut metadata = MetadataMap::new();
        metadata.insert(TENANT_HEADER, "victim".parse().expect("ascii"));
        metadata.insert(ROLE_HEADER, "admin".parse().expect("ascii"));
        write_principal_headers(&mut metadata, &principal(), &token()).expect("headers");
        assert_eq!(metadata.get_all(TENANT_HEADER).iter().count(), 1);
        let forwarded = token().principal(&metadata).expect("accepted");
        assert_eq!(forwarded.tenant.as_str(), "acme");
        assert_eq!(forwarded.role, Role::Analyst);
    }
}
