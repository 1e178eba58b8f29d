//! Palisade's internal certificate authority: it signs the agent listener's server certificate
//! and every agent credential (client certificates for mutual TLS).
//!
//! The CA key lives in `DATA_DIR/pki/ca.key` (mode 0600) and never leaves the server. Agents
//! make their own keys and send certificate signing requests; the CA takes only the public key
//! from a request and writes the subject itself, so a request cannot name its own tenant.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, CoreResult};

/// The name every agent listener certificate carries. Agents verify the server against this
/// name whatever address they dial, so a control plane behind NAT or a load balancer needs no
/// certificate per address.
pub const AGENT_SERVER_NAME: &str = "gateway.palisade.internal";
/// Largest certificate signing request accepted, in bytes of PEM.
pub const MAX_CSR_BYTES: usize = 16 * 1024;
/// How far back a new certificate's validity starts, for clocks a little behind.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Lifetime of the CA certificate.
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

/// The CA: its certificate and the key that signs with it.
pub struct Authority {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the CA signed.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub certificate_der: Vec<u8>,
    /// Hex SHA-256 of the certificate's DER: how the server recognises it on a connection.
    pub fingerprint: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// The subject of an agent credential.
#[derive(Debug, Clone)]
pub struct AgentSubject<'name> {
    pub tenant: &'name str,
    pub cluster: &'name str,
    /// Who the certificate is for (an agent id, or "bootstrap").
    pub holder: &'name str,
}

fn pki_error(what: &str, error: impl std::fmt::Display) -> CoreError {
    CoreError::InvalidArgument(format!("{what}: {error}"))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CoreError + '_ {
    move |source| CoreError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

fn offset_time(time: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(time)
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_serial() -> SerialNumber {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // a positive INTEGER: the high bit clear
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// Hex SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Writes `contents` to a new file readable by its owner only, replacing nothing.
fn write_private(path: &Path, contents: &str) -> CoreResult<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

impl Authority {
    /// Loads the CA from `dir`, creating it on first start.
    pub fn open_or_create(dir: &Path) -> CoreResult<Authority> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if !key_path.exists() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
            let key = KeyPair::generate().map_err(|error| pki_error("cannot make a key", error))?;
            let certificate = ca_params()
                .self_signed(&key)
                .map_err(|error| pki_error("cannot sign the CA certificate", error))?;
            // the key first: a crash in between leaves a key without a certificate, which the
            // next start reports instead of silently making a second CA
            write_private(&key_path, &key.serialize_pem())?;
            write_private(&cert_path, &certificate.pem())?;
        }
        Authority::load(&cert_path, &key_path)
    }

    fn load(cert_path: &Path, key_path: &PathBuf) -> CoreResult<Authority> {
        let key_pem = std::fs::read_to_string(key_path).map_err(io_error(key_path))?;
        let ca_pem = std::fs::read_to_string(cert_path).map_err(io_error(cert_path))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|error| pki_error(&format!("CA key {}", key_path.display()), error))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|error| {
            pki_error(&format!("CA certificate {}", cert_path.display()), error)
        })?;
        Ok(Authority { ca_pem, issuer })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server certificate and its private key (both PEM) for [`AGENT_SERVER_NAME`] and
    /// `extra_names` (host names or IP addresses).
    pub fn issue_server(
        &self,
        extra_names: &[String],
        validity: Duration,
    ) -> CoreResult<(String, String)> {
        let mut names = vec![AGENT_SERVER_NAME.to_string()];
        names.extend(extra_names.iter().cloned());
        let mut params = CertificateParams::new(names)
            .map_err(|error| pki_error("server certificate names", error))?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, AGENT_SERVER_NAME);
        params.distinguished_name = subject;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, validity);
        let key = KeyPair::generate().map_err(|error| pki_error("cannot make a key", error))?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|error| pki_error("cannot sign the server certificate", error))?;
        Ok((certificate.pem(), key.serialize_pem()))
    }

    /// Signs an agent's certificate signing request for `subject`. Only the request's public
    /// key is used.
    pub fn sign_agent(
        &self,
        csr_pem: &str,
        subject: &AgentSubject<'_>,
        validity: Duration,
    ) -> CoreResult<Issued> {
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(CoreError::InvalidArgument(format!(
                "certificate signing request is {} bytes, over the {MAX_CSR_BYTES} byte limit",
                csr_pem.len()
            )));
        }
        let request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|error| pki_error("certificate signing request", error))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, subject.tenant);
        name.push(DnType::OrganizationalUnitName, subject.cluster);
        name.push(DnType::CommonName, subject.holder);
        params.distinguished_name = name;
        let uri = format!(
            "palisade://tenant/{}/cluster/{}",
            subject.tenant, subject.cluster
        );
        params.subject_alt_names = vec![SanType::URI(
            uri.try_into()
                .map_err(|error| pki_error("credential name", error))?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let not_after = set_validity(&mut params, validity);
        let certificate = params
            .signed_by(&request.public_key, &self.issuer)
            .map_err(|error| pki_error("cannot sign the agent certificate", error))?;
        Ok(Issued {
            fingerprint: fingerprint(certificate.der()),
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            not_after: unix_seconds(not_after),
        })
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Palisade");
    name.push(DnType::CommonName, "Palisade internal CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY);
    params
}

/// Sets a fresh serial and the validity window; returns the end of it.
fn set_validity(params: &mut CertificateParams, validity: Duration) -> SystemTime {
    let now = SystemTime::now();
    let not_after = now + validity;
    params.not_before = offset_time(now - CLOCK_SKEW);
    params.not_after = offset_time(not_after);
    params.serial_number = Some(random_serial());
    not_after
}

/// A new private key and a signing request for it, both PEM: what an agent sends to enroll.
pub fn new_key_and_request() -> CoreResult<(String, String)> {
    let key = KeyPair::generate().map_err(|error| pki_error("cannot make a key", error))?;
    let request = CertificateParams::default()
        .serialize_request(&key)
        .map_err(|error| pki_error("cannot make a signing request", error))?;
    let request_pem = request
        .pem()
        .map_err(|error| pki_error("cannot encode the signing request", error))?;
    Ok((key.serialize_pem(), request_pem))
}

/// Fuzz entry: signs whatever arrives as a signing request with a CA made once per process;
/// it must answer or refuse, never panic or hang.
pub fn fuzz_signing_request(data: &[u8]) {
    static AUTHORITY: std::sync::OnceLock<Option<(fuzz_support::Dir, Authority)>> =
        std::sync::OnceLock::new();
    let Some((_, authority)) = AUTHORITY.get_or_init(fuzz_support::authority) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let subject = AgentSubject {
        tenant: "fuzz",
        cluster: "fuzz",
        holder: "fuzz",
    };
    let _ = authority.sign_agent(&text, &subject, Duration::from_secs(60));
}

/// A CA in a directory of its own under the system's temporary directory, for fuzzing.
mod fuzz_support {
    use super::Authority;

    /// Removes the directory when dropped.
    pub struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn authority() -> Option<(Dir, Authority)> {
        let path = std::env::temp_dir().join(format!("palisade-fuzz-ca-{}", std::process::id()));
        let authority = Authority::open_or_create(&path).ok()?;
        Some((Dir(path), authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_its_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("pki");
        let first = Authority::open_or_create(&dir).expect("created");
        let second = Authority::open_or_create(&dir).expect("loaded");
        assert_eq!(first.ca_pem(), second.ca_pem());
        let mode = std::fs::metadata(dir.join("ca.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_agent_certificate_takes_its_subject_from_the_ca_not_the_request() {
        let temp = tempfile::tempdir().expect("temp dir");
        let authority = Authority::open_or_create(temp.path()).expect("ca");
        let key = KeyPair::generate().expect("key");
        let mut asked = CertificateParams::new(vec!["evil.example".to_string()]).expect("params");
        asked
            .distinguished_name
            .push(DnType::OrganizationName, "other-tenant");
        let csr = asked
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let subject = AgentSubject {
            tenant: "acme",
            cluster: "prod",
            holder: "node-1",
        };
        let issued = authority
            .sign_agent(&csr, &subject, Duration::from_secs(3600))
            .expect("signed");
        let der = issued.certificate_der.clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let subject = parsed.subject().to_string();
        assert!(subject.contains("O=acme"), "{subject}");
        assert!(subject.contains("OU=prod"), "{subject}");
        assert!(!subject.contains("other-tenant"), "{subject}");
        let names = parsed
            .subject_alternative_name()
            .expect("extension")
            .map(|extension| format!("{:?}", extension.value.general_names))
            .unwrap_or_default();
        assert!(
            !names.contains("evil.example"),
            "the request's names must not be copied: {names}"
        );
        assert!(
            names.contains("palisade://tenant/acme/cluster/prod"),
            "{names}"
        );
        assert_eq!(issued.fingerprint, fingerprint(&der));
    }

    #[test]
    fn garbage_and_oversized_requests_are_refused_with_a_reason() {
        let temp = tempfile::tempdir().expect("temp dir");
        let authority = Authority::open_or_create(temp.path()).expect("ca");
        let subject = AgentSubject {
            tenant: "acme",
            cluster: "prod",
            holder: "bootstrap",
        };
        let error = authority
            .sign_agent("not a csr", &subject, Duration::from_secs(60))
            .expect_err("garbage");
        assert!(error.to_string().contains("signing request"), "{error}");
        let huge = "A".repeat(MAX_CSR_BYTES + 1);
        let error = authority
            .sign_agent(&huge, &subject, Duration::from_secs(60))
            .expect_err("huge");
        assert!(error.to_string().contains("limit"), "{error}");
        let (_, good) = new_key_and_request().expect("csr");
        let mut truncated = good.clone();
        truncated.truncate(good.len() / 2);
        fuzz_signing_request(truncated.as_bytes());
        fuzz_signing_request(good.replace('M', "N").as_bytes());
    }
}
