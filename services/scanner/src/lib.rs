//! Palisade's image scanner: reads container images from OCI layouts, archives, registries,
//! containerd and root filesystems; walks their layers safely; catalogs the packages they hold
//! (the SBOM); matches them against a vulnerability source; and writes reports. As a service of
//! the platform it scans on request, publishes findings to the log and re-matches cached SBOMs
//! when the vulnerability database changes.

pub mod catalog;
pub mod error;
pub mod fuzzing;
pub mod layer;
pub mod limits;
pub mod sbom;

pub use catalog::{FileCatalog, catalog_binary_at, catalog_file_at, parse_os_release};
pub use error::{Result, ScanError};
pub use layer::{
    Compression, ImageFilesystem, LayerStats, decompressing_reader, sniff_compression,
};
pub use limits::Limits;
pub use sbom::{CatalogIssue, LayerInfo, OsInfo, Package, PackageKind, Sbom};
pub mod cache;
pub mod findings;
pub mod grpc;
pub mod matching;
pub mod progress;
pub mod report;
pub mod scan;
pub mod service;
pub mod source;
pub mod vulndb_matcher;

pub use cache::ScanCache;
pub use grpc::ScannerGrpc;
pub use matching::{Severity, Vulnerability, VulnerabilityMatcher};
pub use progress::{LineProgress, NoProgress, Progress, ProgressEvent, stderr_progress};
pub use report::{OutputFormat, ReportOptions, write_report};
pub use scan::{FindingFilter, ScanOptions, ScanReport, build_sbom, match_sbom, scan_image};
pub use service::{ScannerActor, ScannerCore, ScannerSettings, ServiceError};
pub use source::{ImageReference, Platform, RegistryCredentials};
pub use vulndb_matcher::VulnDbMatcher;
