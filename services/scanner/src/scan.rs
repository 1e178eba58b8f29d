//! The scan pipeline: reference -> source -> layers -> SBOM -> matching -> report.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::ScanCache;
use crate::error::{Result, ScanError};
use crate::layer::ImageFilesystem;
use crate::limits::Limits;
use crate::matching::{Severity, Vulnerability, VulnerabilityMatcher, sort_for_report};
use crate::progress::{NoProgress, Progress};
use crate::sbom::Sbom;
use crate::source::{
    self, ContainerdSource, ImageReference, Platform, RegistryCredentials, RegistrySource,
    ResolvedImage,
};

/// containerd's default socket.
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// What to scan and how to reach it.
#[derive(Clone)]
pub struct ScanOptions {
    /// The image reference in skopeo syntax (`oci:`, `docker://`, `containerd:` ...).
    pub target: String,
    /// Platform to take from multi-platform images (default: this machine's).
    pub platform: Option<Platform>,
    /// containerd socket for `containerd:` targets.
    pub containerd_socket: PathBuf,
    /// containerd namespace (`default`; Kubernetes nodes use `k8s.io`).
    pub containerd_namespace: String,
    /// Credentials per registry host.
    pub registry_credentials: Vec<RegistryCredentials>,
    /// Registries (host:port) spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Bounds for hostile input.
    pub limits: Limits,
    /// Where per-layer progress goes.
    pub progress: Arc<dyn Progress>,
    /// Reuse and store SBOMs by image digest.
    pub cache: Option<ScanCache>,
}

impl ScanOptions {
    /// Options with defaults for `target`.
    pub fn new(target: impl Into<String>) -> Self {
        ScanOptions {
            target: target.into(),
            platform: None,
            containerd_socket: PathBuf::from(DEFAULT_CONTAINERD_SOCKET),
            containerd_namespace: "default".to_string(),
            registry_credentials: Vec::new(),
            insecure_registries: Vec::new(),
            limits: Limits::default(),
            progress: Arc::new(NoProgress),
            cache: None,
        }
    }
}

impl std::fmt::Debug for ScanOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScanOptions")
            .field("target", &self.target)
            .field("platform", &self.platform)
            .field("containerd_socket", &self.containerd_socket)
            .field("containerd_namespace", &self.containerd_namespace)
            .field("registry_credentials", &self.registry_credentials)
            .field("insecure_registries", &self.insecure_registries)
            .finish_non_exhaustive()
    }
}

fn sbom_from(target: &str, image: &ResolvedImage, filesystem: ImageFilesystem) -> Sbom {
    let (os, packages, issues) = filesystem.finish();
    Sbom {
        target: target.to_string(),
        image_digest: image.image_digest.clone(),
        os,
        layers: image
            .layers
            .iter()
            .map(|layer| layer.info.clone())
            .collect(),
        packages,
        issues,
    }
}

fn cached(options: &ScanOptions, image_digest: &str) -> Option<Sbom> {
    let mut sbom = options.cache.as_ref()?.get(image_digest).ok()??;
    sbom.target = options.target.clone();
    Some(sbom)
}

fn store(options: &ScanOptions, sbom: &Sbom) -> Result<()> {
    match &options.cache {
        Some(cache) => cache.put(sbom),
        None => Ok(()),
    }
}

/// Reads the image and catalogs its packages (the SBOM), from the cache when the image digest
/// was scanned before.
pub async fn build_sbom(options: &ScanOptions) -> Result<Sbom> {
    let reference: ImageReference = options.target.parse()?;
    let platform = options.platform.clone().unwrap_or_else(Platform::current);
    let sbom = match reference {
        ImageReference::OciLayout { .. }
        | ImageReference::OciArchive { .. }
        | ImageReference::DockerArchive { .. } => {
            let options = options.clone();
            tokio::task::spawn_blocking(move || scan_local(&options, reference, &platform))
                .await
                .map_err(|error| ScanError::LayerFormat {
                    layer: String::new(),
                    reason: format!("scan worker failed: {error}"),
                })??
        }
        ImageReference::Rootfs { directory } => {
            let options = options.clone();
            tokio::task::spawn_blocking(move || {
                let mut filesystem = ImageFilesystem::new(options.limits.clone());
                let digest =
                    source::scan_rootfs(&directory, &mut filesystem, options.progress.as_ref())?;
                let image = ResolvedImage {
                    image_digest: digest,
                    layers: vec![crate::source::ResolvedLayer {
                        info: crate::sbom::LayerInfo {
                            digest: format!("dir:{}", directory.display()),
                            media_type: "inode/directory".to_string(),
                            size: 0,
                        },
                        locator: String::new(),
                        expected_digest: None,
                    }],
                };
                Ok::<_, ScanError>(sbom_from(&options.target, &image, filesystem))
            })
            .await
            .map_err(|error| ScanError::LayerFormat {
                layer: String::new(),
                reason: format!("scan worker failed: {error}"),
            })??
        }
        ImageReference::Registry { reference } => {
            let source = RegistrySource::new(
                &reference,
                &options.registry_credentials,
                &options.insecure_registries,
            )?;
            let image = source.resolve(&platform).await?;
            if let Some(hit) = cached(options, &image.image_digest) {
                return Ok(hit);
            }
            let filesystem = ImageFilesystem::new(options.limits.clone());
            let filesystem = source
                .apply_layers(&image, filesystem, options.progress.as_ref())
                .await?;
            sbom_from(&options.target, &image, filesystem)
        }
        ImageReference::Containerd { name } => {
            let source = ContainerdSource::connect(
                &options.containerd_socket,
                &options.containerd_namespace,
            )
            .await?;
            let image = source.resolve(&name, &platform).await?;
            if let Some(hit) = cached(options, &image.image_digest) {
                return Ok(hit);
            }
            let filesystem = ImageFilesystem::new(options.limits.clone());
            let filesystem = source
                .apply_layers(&image, filesystem, options.progress.as_ref())
                .await?;
            sbom_from(&options.target, &image, filesystem)
        }
    };
    store(options, &sbom)?;
    Ok(sbom)
}

fn scan_local(
    options: &ScanOptions,
    reference: ImageReference,
    platform: &Platform,
) -> Result<Sbom> {
    let (store, image) = match &reference {
        ImageReference::OciLayout { directory, tag } => {
            source::load_oci_layout(directory, tag.as_deref(), platform)?
        }
        ImageReference::OciArchive { file, tag } => {
            source::load_oci_archive(file, tag.as_deref(), platform)?
        }
        ImageReference::DockerArchive { file, tag } => {
            source::load_docker_archive(file, tag.as_deref())?
        }
        _ => {
            return Err(ScanError::InvalidReference {
                reference: options.target.clone(),
                reason: "not a local image".to_string(),
            });
        }
    };
    if let Some(hit) = cached(options, &image.image_digest) {
        return Ok(hit);
    }
    let mut filesystem = ImageFilesystem::new(options.limits.clone());
    source::apply_local_layers(
        store.as_ref(),
        &image,
        &mut filesystem,
        options.progress.as_ref(),
    )?;
    Ok(sbom_from(&options.target, &image, filesystem))
}

/// The result of a scan: the SBOM and its vulnerabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// What was scanned and what it holds.
    pub sbom: Sbom,
    /// Vulnerabilities, sorted by severity (most severe first), then package and id.
    pub vulnerabilities: Vec<Vulnerability>,
    /// The vulnerability data matched against; `None` when the scan had no database.
    pub vulnerability_source: Option<String>,
    /// When the report was made (RFC 3339).
    pub created: String,
}

/// Matches an SBOM (fresh or cached) against `matcher`. No layer is read.
pub fn match_sbom(sbom: Sbom, matcher: Option<&dyn VulnerabilityMatcher>) -> Result<ScanReport> {
    let (mut vulnerabilities, source) = match matcher {
        Some(matcher) => (
            matcher
                .match_packages(sbom.os.as_ref(), &sbom.packages)
                .map_err(|reason| ScanError::Matching { reason })?,
            Some(matcher.describe()),
        ),
        None => (Vec::new(), None),
    };
    sort_for_report(&mut vulnerabilities);
    Ok(ScanReport {
        sbom,
        vulnerabilities,
        vulnerability_source: source,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Builds the SBOM and matches it: the whole scan.
pub async fn scan_image(
    options: &ScanOptions,
    matcher: Option<&dyn VulnerabilityMatcher>,
) -> Result<ScanReport> {
    let sbom = build_sbom(options).await?;
    match_sbom(sbom, matcher)
}

/// Which findings a report shows and gates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FindingFilter {
    /// Only findings at or above this severity.
    pub min_severity: Severity,
    /// Leave out findings without a fixed version.
    pub ignore_unfixed: bool,
}

impl FindingFilter {
    /// Whether a finding passes the filter.
    pub fn accepts(&self, vulnerability: &Vulnerability) -> bool {
        vulnerability.severity >= self.min_severity
            && !(self.ignore_unfixed && vulnerability.fixed_version.is_none())
    }
}

impl ScanReport {
    /// A copy keeping only the findings `filter` accepts.
    pub fn filtered(&self, filter: &FindingFilter) -> ScanReport {
        let mut report = self.clone();
        report.vulnerabilities.retain(|v| filter.accepts(v));
        report
    }

    /// The process exit status for CI gates: `exit_code` when any finding passes `filter`,
    /// else 0.
    pub fn exit_status(&self, filter: &FindingFilter, exit_code: u8) -> u8 {
        if self.vulnerabilities.iter().any(|v| filter.accepts(v)) {
            exit_code
        } else {
            0
        }
    }
}
