//! Installed gem specifications and Gemfile.lock.

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

fn gem(context: &CatalogContext<'_>, name: &str, version: &str) -> crate::sbom::Package {
    let purl = purl::build("gem", None, name, version, &[]);
    context.package(PackageKind::Gem, name, version, purl)
}

/// The first quoted string after `=` on a line (`s.name = "rack".freeze`).
fn quoted_value(line: &str) -> Option<&str> {
    let after = line.split_once('=')?.1;
    let start = after.find(['"', '\''])?;
    let quote = after[start..].chars().next()?;
    let rest = &after[start + 1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

/// `specifications/*.gemspec` written by RubyGems at install time.
pub(super) fn catalog_gemspec(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("s.name ") || trimmed.starts_with("s.name=") {
            name = quoted_value(trimmed);
        } else if trimmed.starts_with("s.version ") || trimmed.starts_with("s.version=") {
            version = quoted_value(trimmed);
        }
    }
    match (name, version) {
        (Some(name), Some(version)) => catalog.packages.push(gem(context, name, version)),
        _ => catalog.issue(
            context.location,
            None,
            "gemspec without s.name and s.version",
        ),
    }
    catalog
}

/// `specs:` entries of the GEM, GIT and PATH sections (4-space indent; 6 spaces are their
/// dependencies).
pub(super) fn catalog_gemfile_lock(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut in_specs = false;
    for (index, line) in text.lines().enumerate() {
        if !line.starts_with(' ') {
            in_specs = false;
            continue;
        }
        if line.trim() == "specs:" {
            in_specs = true;
            continue;
        }
        if !in_specs || !line.starts_with("    ") || line.starts_with("     ") {
            continue;
        }
        let entry = line.trim();
        let Some((name, rest)) = entry.split_once(" (") else {
            catalog.issue(
                context.location,
                Some(index as u64 + 1),
                format!("spec {entry:?} has no version"),
            );
            continue;
        };
        let version = rest.trim_end_matches(')');
        catalog.packages.push(gem(context, name, version));
    }
    catalog
}
