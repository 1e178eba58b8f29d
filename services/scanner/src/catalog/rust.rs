//! Cargo.lock.

use serde::Deserialize;

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

#[derive(Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<LockedCrate>,
}

#[derive(Deserialize)]
struct LockedCrate {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
}

pub(super) fn catalog_cargo_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let text = String::from_utf8_lossy(content);
    let lock: CargoLock = match toml::from_str(&text) {
        Ok(lock) => lock,
        Err(error) => {
            catalog.issue(context.location, None, format!("not a Cargo.lock: {error}"));
            return catalog;
        }
    };
    for locked in lock.package {
        let source = locked.source.as_deref().unwrap_or_default();
        // Path dependencies and the workspace's own crates have no source: they are not
        // published crates and no advisory can name them.
        if source.is_empty() {
            continue;
        }
        let qualifiers: Vec<(&str, &str)> = if source.starts_with("git+") {
            vec![("vcs_url", source)]
        } else {
            Vec::new()
        };
        let purl = purl::build("cargo", None, &locked.name, &locked.version, &qualifiers);
        catalog.packages.push(context.package(
            PackageKind::Cargo,
            locked.name,
            locked.version,
            purl,
        ));
    }
    catalog
}
