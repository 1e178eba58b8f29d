//! .NET `*.deps.json`.

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

pub(super) fn catalog_deps_json(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let document: serde_json::Value = match serde_json::from_slice(content) {
        Ok(document) => document,
        Err(error) => {
            catalog.issue(
                context.location,
                Some(error.line() as u64),
                format!("not JSON: {error}"),
            );
            return catalog;
        }
    };
    let Some(libraries) = document.get("libraries").and_then(|l| l.as_object()) else {
        catalog.issue(context.location, None, "no libraries object");
        return catalog;
    };
    for (key, library) in libraries {
        if library.get("type").and_then(|t| t.as_str()) != Some("package") {
            continue;
        }
        let Some((name, version)) = key.split_once('/') else {
            catalog.issue(
                context.location,
                None,
                format!("library key {key:?} is not NAME/VERSION"),
            );
            continue;
        };
        let purl = purl::build("nuget", None, name, version, &[]);
        catalog
            .packages
            .push(context.package(PackageKind::Nuget, name, version, purl));
    }
    catalog
}
