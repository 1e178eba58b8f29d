//! Python: installed distributions (dist-info METADATA, egg-info PKG-INFO) and the lock and
//! requirement files of Pipenv, Poetry, uv and pip.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::{Package, PackageKind};

/// PEP 503 normalisation, which is also the purl-spec rule for pypi names.
fn normalize_name(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut last_was_separator = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !last_was_separator {
                normalized.push('-');
            }
            last_was_separator = true;
        } else {
            normalized.push(character.to_ascii_lowercase());
            last_was_separator = false;
        }
    }
    normalized
}

fn python_package(context: &CatalogContext<'_>, name: &str, version: &str) -> Package {
    let purl = purl::build("pypi", None, &normalize_name(name), version, &[]);
    context.package(PackageKind::Python, name, version, purl)
}

pub(super) fn catalog_metadata(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (long description) follows the first empty line
        }
        if let Some(value) = line.strip_prefix("Name:") {
            name = Some(value.trim());
        } else if let Some(value) = line.strip_prefix("Version:") {
            version = Some(value.trim());
        }
    }
    match (name, version) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
            catalog
                .packages
                .push(python_package(context, name, version));
        }
        _ => catalog.issue(context.location, None, "metadata without Name and Version"),
    }
    catalog
}

/// Only exact pins (`==`, `===`) name an installed version; ranges do not.
pub(super) fn catalog_requirements(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut logical = String::new();
    for raw_line in text.lines() {
        let without_comment = raw_line.split(" #").next().unwrap_or_default();
        if without_comment.trim_start().starts_with('#') {
            continue;
        }
        if let Some(continued) = without_comment.trim_end().strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(without_comment);
        let line = std::mem::take(&mut logical);
        let requirement = line.split(';').next().unwrap_or_default().trim();
        if requirement.is_empty() || requirement.starts_with('-') {
            continue;
        }
        let Some((name_part, version_part)) = requirement
            .split_once("===")
            .or_else(|| requirement.split_once("=="))
        else {
            continue;
        };
        let name = name_part.split('[').next().unwrap_or_default().trim();
        let version = version_part
            .trim_start_matches('=')
            .split([' ', ',', '@'])
            .find(|token| !token.is_empty())
            .unwrap_or_default();
        if name.is_empty() || version.is_empty() || version.contains('*') {
            continue;
        }
        catalog
            .packages
            .push(python_package(context, name, version));
    }
    catalog
}

#[derive(Deserialize)]
struct TomlLock {
    #[serde(default)]
    package: Vec<TomlLockedPackage>,
}

#[derive(Deserialize)]
struct TomlLockedPackage {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    source: Option<toml::Value>,
}

fn catalog_toml_lock(content: &[u8], context: &CatalogContext<'_>, what: &str) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let text = String::from_utf8_lossy(content);
    let lock: TomlLock = match toml::from_str(&text) {
        Ok(lock) => lock,
        Err(error) => {
            catalog.issue(context.location, None, format!("not a {what}: {error}"));
            return catalog;
        }
    };
    for locked in lock.package {
        // uv marks the project itself as an editable or virtual source.
        let is_project = locked
            .source
            .as_ref()
            .and_then(|s| s.as_table())
            .is_some_and(|table| table.contains_key("editable") || table.contains_key("virtual"));
        let Some(version) = locked.version.filter(|_| !is_project) else {
            continue;
        };
        catalog
            .packages
            .push(python_package(context, &locked.name, &version));
    }
    catalog
}

pub(super) fn catalog_poetry_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    catalog_toml_lock(content, context, "poetry.lock")
}

pub(super) fn catalog_uv_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    catalog_toml_lock(content, context, "uv.lock")
}

pub(super) fn catalog_pipfile_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
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
    let mut seen = BTreeSet::new();
    for section in ["default", "develop"] {
        let Some(entries) = document.get(section).and_then(|s| s.as_object()) else {
            continue;
        };
        for (name, entry) in entries {
            let Some(version) = entry.get("version").and_then(|v| v.as_str()) else {
                continue; // a VCS or path dependency
            };
            let version = version.trim_start_matches('=');
            if seen.insert((name.clone(), version.to_string())) {
                catalog
                    .packages
                    .push(python_package(context, name, version));
            }
        }
    }
    catalog
}
