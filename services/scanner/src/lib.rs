//! Palisade's image scanner: reads container images from OCI layouts, archives, registries,
//! containerd and root filesystems; walks their layers safely; catalogs the packages they hold
//! (the SBOM); matches them against a vulnerability source; and writes reports.

pub mod catalog;
pub mod error;
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
