//! TLS of the gRPC and HTTP listeners: a certificate of the internal CA by default, the
//! operator's own certificate files, or none.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use palisade_core::config::{Config, TlsMode};
use palisade_core::pki::Authority;

/// Lifetime of the self-signed listener certificate; it is issued again at every start.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A certificate chain and its key, PEM.
#[derive(Clone)]
pub struct ListenerCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

/// The listeners' certificate as configured; None when TLS is off.
pub fn listener_certificate(
    config: &Config,
    authority: &Authority,
    addresses: &[SocketAddr],
) -> anyhow::Result<Option<ListenerCertificate>> {
    match config.tls.mode {
        TlsMode::Off => Ok(None),
        TlsMode::Files => {
            let (Some(cert_file), Some(key_file)) = (&config.tls.cert_file, &config.tls.key_file)
            else {
                anyhow::bail!("tls.mode = \"files\" needs tls.cert_file and tls.key_file");
            };
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the TLS file {}", path.display()))
            };
            Ok(Some(ListenerCertificate {
                certificate_pem: read(cert_file)?,
                key_pem: read(key_file)?,
            }))
        }
        TlsMode::SelfSigned => {
            let mut names = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ];
            if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                names.push(host.trim().to_string());
            }
            for address in addresses {
                if !address.ip().is_unspecified() {
                    names.push(address.ip().to_string());
                }
            }
            names.extend(config.tls.server_names.iter().cloned());
            names.retain(|name| !name.is_empty());
            names.sort();
            names.dedup();
            let (certificate_pem, key_pem) = authority
                .issue_server(&names, SELF_SIGNED_VALIDITY)
                .context("cannot issue the listeners' certificate")?;
            Ok(Some(ListenerCertificate {
                certificate_pem,
                key_pem,
            }))
        }
    }
}
