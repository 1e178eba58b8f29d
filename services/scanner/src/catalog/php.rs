//! PHP composer.lock and vendor/composer/installed.json.

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

fn add_packages(
    list: Option<&serde_json::Value>,
    catalog: &mut FileCatalog,
    context: &CatalogContext<'_>,
) {
    let Some(list) = list.and_then(|l| l.as_array()) else {
        return;
    };
    for (index, entry) in list.iter().enumerate() {
        let name = entry.get("name").and_then(|n| n.as_str());
        let version = entry.get("version").and_then(|v| v.as_str());
        let (Some(name), Some(version)) = (name, version) else {
            catalog.issue(
                context.location,
                None,
                format!("package #{index} lacks name or version"),
            );
            continue;
        };
        let (vendor, project) = name.split_once('/').unwrap_or(("", name));
        let purl = purl::build("composer", Some(vendor), project, version, &[]);
        catalog
            .packages
            .push(context.package(PackageKind::Composer, name, version, purl));
    }
}

fn parse(
    content: &[u8],
    catalog: &mut FileCatalog,
    context: &CatalogContext<'_>,
) -> Option<serde_json::Value> {
    match serde_json::from_slice(content) {
        Ok(document) => Some(document),
        Err(error) => {
            catalog.issue(
                context.location,
                Some(error.line() as u64),
                format!("not JSON: {error}"),
            );
            None
        }
    }
}

pub(super) fn catalog_composer_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    if let Some(document) = parse(content, &mut catalog, context) {
        add_packages(document.get("packages"), &mut catalog, context);
        add_packages(document.get("packages-dev"), &mut catalog, context);
    }
    catalog
}

/// Composer 1 writes a bare array, composer 2 an object with `packages`.
pub(super) fn catalog_installed_json(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    if let Some(document) = parse(content, &mut catalog, context) {
        if document.is_array() {
            add_packages(Some(&document), &mut catalog, context);
        } else {
            add_packages(document.get("packages"), &mut catalog, context);
        }
    }
    catalog
}
