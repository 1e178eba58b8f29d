//! npm package-lock.json (v1, v2, v3), yarn.lock (classic and berry), pnpm-lock.yaml and
//! package.json files under node_modules.

use std::collections::BTreeSet;

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::{Package, PackageKind};

fn npm_package(context: &CatalogContext<'_>, name: &str, version: &str) -> Package {
    let (scope, bare) = match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, bare)) => (Some(format!("@{scope}")), bare),
        None => (None, name),
    };
    let purl = purl::build("npm", scope.as_deref(), bare, version, &[]);
    context.package(PackageKind::Npm, name, version, purl)
}

/// Splits `name@version` where the name may itself start with `@scope/`.
fn split_name_at_version(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.rfind('@')? + 1;
    Some((&spec[..at], &spec[at + 1..]))
}

/// `npm:real-name@version` aliases name the real package.
fn resolve_alias<'a>(name: &'a str, version: &'a str) -> (&'a str, &'a str) {
    match version.strip_prefix("npm:").and_then(split_name_at_version) {
        Some((real_name, real_version)) => (real_name, real_version),
        None => (name, version),
    }
}

fn parse_json(
    content: &[u8],
    catalog: &mut FileCatalog,
    context: &CatalogContext<'_>,
) -> Option<serde_json::Value> {
    match serde_json::from_slice(content) {
        Ok(value) => Some(value),
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

pub(super) fn catalog_npm_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let Some(document) = parse_json(content, &mut catalog, context) else {
        return catalog;
    };
    let mut seen = BTreeSet::new();
    if let Some(packages) = document.get("packages").and_then(|p| p.as_object()) {
        for (path, entry) in packages {
            if path.is_empty() || entry.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let Some(install_name) = path
                .rsplit("node_modules/")
                .next()
                .filter(|_| path.contains("node_modules/"))
            else {
                continue; // a workspace folder, not an installed package
            };
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(install_name);
            let Some(version) = entry.get("version").and_then(|v| v.as_str()) else {
                catalog.issue(context.location, None, format!("{path} has no version"));
                continue;
            };
            let (name, version) = resolve_alias(name, version);
            if seen.insert((name.to_string(), version.to_string())) {
                catalog.packages.push(npm_package(context, name, version));
            }
        }
        return catalog;
    }
    // lockfileVersion 1: nested "dependencies".
    let mut stack: Vec<&serde_json::Value> = document.get("dependencies").into_iter().collect();
    while let Some(dependencies) = stack.pop() {
        let Some(dependencies) = dependencies.as_object() else {
            continue;
        };
        for (key, entry) in dependencies {
            let name = key.rsplit("node_modules/").next().unwrap_or(key);
            if let Some(version) = entry.get("version").and_then(|v| v.as_str()) {
                let (real_name, real_version) = resolve_alias(name, version);
                if seen.insert((real_name.to_string(), real_version.to_string())) {
                    catalog
                        .packages
                        .push(npm_package(context, real_name, real_version));
                }
            }
            if let Some(nested) = entry.get("dependencies") {
                stack.push(nested);
            }
        }
    }
    catalog
}

pub(super) fn catalog_package_json(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let Some(document) = parse_json(content, &mut catalog, context) else {
        return catalog;
    };
    let name = document.get("name").and_then(|n| n.as_str());
    let version = document.get("version").and_then(|v| v.as_str());
    match (name, version) {
        (Some(name), Some(version)) => catalog.packages.push(npm_package(context, name, version)),
        _ => catalog.issue(
            context.location,
            None,
            "package.json without name and version",
        ),
    }
    catalog
}

/// yarn classic (`version "1.0.0"`) and berry (`version: 1.0.0`) lockfiles share their shape:
/// an unindented line of comma-separated `name@range` keys, then indented fields. Berry files
/// are YAML but may repeat a key, which YAML parsers refuse, so both are read line by line.
pub(super) fn catalog_yarn_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    struct Block {
        line: u64,
        name: Option<String>,
        version: Option<String>,
        is_workspace: bool,
    }
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut seen = BTreeSet::new();
    let mut blocks: Vec<Block> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let first_spec = line
                .trim_end_matches(':')
                .split(',')
                .next()
                .unwrap_or_default();
            let spec = first_spec.trim().trim_matches('"');
            blocks.push(Block {
                line: index as u64 + 1,
                name: split_name_at_version(spec).map(|(name, _)| name.to_string()),
                version: None,
                is_workspace: spec == "__metadata"
                    || spec.contains("@workspace:")
                    || spec.contains("@link:"),
            });
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        let field = line.trim_start();
        if let Some(value) = field
            .strip_prefix("version:")
            .or_else(|| field.strip_prefix("version "))
        {
            if line.len() - field.len() == 2 {
                block.version = Some(value.trim().trim_matches('"').to_string());
            }
        } else if let Some(value) = field.strip_prefix("resolution:") {
            block.is_workspace |= value.contains("@workspace:") || value.contains("@link:");
        }
    }
    for block in blocks {
        if block.is_workspace {
            continue;
        }
        let (Some(name), Some(version)) = (block.name, block.version) else {
            catalog.issue(
                context.location,
                Some(block.line),
                "entry without name@range and version",
            );
            continue;
        };
        if seen.insert((name.clone(), version.clone())) {
            catalog.packages.push(npm_package(context, &name, &version));
        }
    }
    catalog
}

/// pnpm v5 keys `/name/1.0.0_peer`, v6 `/name@1.0.0(peer)`, v9 `name@1.0.0(peer)`.
fn parse_pnpm_key(key: &str) -> Option<(String, String)> {
    let trimmed = key.trim_start_matches('/');
    let without_peers = trimmed.split('(').next().unwrap_or(trimmed);
    // v5: the last path segment is the version (peers follow an underscore).
    if let Some((name, version)) = without_peers.rsplit_once('/')
        && version.starts_with(|c: char| c.is_ascii_digit())
        && !name.get(1..).unwrap_or_default().contains('@')
    {
        let version = version.split('_').next().unwrap_or(version);
        return Some((name.to_string(), version.to_string()));
    }
    let (name, version) = split_name_at_version(without_peers)?;
    Some((name.to_string(), version.to_string()))
}

pub(super) fn catalog_pnpm_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let document: serde_yaml_ng::Value = match serde_yaml_ng::from_slice(content) {
        Ok(document) => document,
        Err(error) => {
            let line = error.location().map(|l| l.line() as u64);
            catalog.issue(context.location, line, format!("not YAML: {error}"));
            return catalog;
        }
    };
    let Some(packages) = document.get("packages").and_then(|p| p.as_mapping()) else {
        return catalog;
    };
    let mut seen = BTreeSet::new();
    for key in packages.keys() {
        let Some(key) = key.as_str() else { continue };
        let Some((name, version)) = parse_pnpm_key(key) else {
            catalog.issue(
                context.location,
                None,
                format!("package key {key:?} is not name@version"),
            );
            continue;
        };
        if seen.insert((name.clone(), version.clone())) {
            catalog.packages.push(npm_package(context, &name, &version));
        }
    }
    catalog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pnpm_keys_of_every_generation() {
        assert_eq!(
            parse_pnpm_key("/@babel/core@7.21.4"),
            Some(("@babel/core".into(), "7.21.4".into()))
        );
        assert_eq!(
            parse_pnpm_key("/@testing-library/react@13.4.0(react-dom@18.2.0)(react@18.2.0)"),
            Some(("@testing-library/react".into(), "13.4.0".into()))
        );
        assert_eq!(
            parse_pnpm_key("/left-pad/1.3.0_react@18.2.0"),
            Some(("left-pad".into(), "1.3.0".into()))
        );
        assert_eq!(
            parse_pnpm_key("rollup@4.18.0"),
            Some(("rollup".into(), "4.18.0".into()))
        );
    }
}
