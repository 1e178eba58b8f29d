//! dpkg's status database (`var/lib/dpkg/status`, and one file per package in distroless
//! images' `var/lib/dpkg/status.d/`).

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

/// One RFC 822-style stanza with the line it starts on.
struct Stanza<'a> {
    first_line: u64,
    fields: Vec<(&'a str, String)>,
}

impl Stanza<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Splits control-file text into stanzas; continuation lines are appended to their field.
fn stanzas(text: &str) -> Vec<Stanza<'_>> {
    let mut all = Vec::new();
    let mut current: Option<Stanza<'_>> = None;
    for (index, line) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        if line.trim().is_empty() {
            if let Some(done) = current.take() {
                all.push(done);
            }
            continue;
        }
        let stanza = current.get_or_insert_with(|| Stanza {
            first_line: line_number,
            fields: Vec::new(),
        });
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = stanza.fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            stanza.fields.push((key.trim(), value.trim().to_string()));
        }
    }
    all.extend(current);
    all
}

/// `Source: name` or `Source: name (version)`.
fn parse_source(field: &str) -> (String, Option<String>) {
    match field.split_once('(') {
        Some((name, rest)) => (
            name.trim().to_string(),
            Some(rest.trim_end().trim_end_matches(')').trim().to_string()),
        ),
        None => (field.trim().to_string(), None),
    }
}

pub(super) fn catalog(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    for stanza in stanzas(&text) {
        let line = Some(stanza.first_line);
        let Some(name) = stanza.field("Package") else {
            catalog.issue(context.location, line, "stanza without a Package field");
            continue;
        };
        // Only installed packages: "deinstall ok config-files" and half-installed ones left
        // nothing to scan but configuration.
        let status = stanza.field("Status").unwrap_or("install ok installed");
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if state != "installed" {
            continue;
        }
        let Some(version) = stanza.field("Version").filter(|v| !v.is_empty()) else {
            catalog.issue(
                context.location,
                line,
                format!("package {name} has no Version"),
            );
            continue;
        };
        let (source_name, source_version) = match stanza.field("Source") {
            Some(source) => parse_source(source),
            None => (name.to_string(), None),
        };
        let source_version = source_version.unwrap_or_else(|| version.to_string());
        let arch = stanza.field("Architecture").map(str::to_string);
        let distro_name = distro_of(stanza.field("Version").unwrap_or_default());
        let mut qualifiers: Vec<(&str, &str)> = vec![("arch", arch.as_deref().unwrap_or(""))];
        if source_name != name {
            qualifiers.push(("upstream", &source_name));
        }
        let purl = purl::build("deb", Some(distro_name), name, version, &qualifiers);
        let mut package = context.package(PackageKind::Deb, name, version, purl);
        package.source_name = Some(source_name.clone());
        package.source_version = Some(source_version);
        package.arch = arch;
        catalog.packages.push(package);
    }
    catalog
}

/// Ubuntu versions carry "ubuntu" in the revision; everything else is Debian's namespace.
fn distro_of(version: &str) -> &'static str {
    if version.contains("ubuntu") {
        "ubuntu"
    } else {
        "debian"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    #[test]
    fn source_with_version_and_continuations() {
        let status = b"Package: bsdutils\nStatus: install ok installed\nVersion: 1:2.38.1-5+deb12u3\nSource: util-linux (2.38.1-5+deb12u3)\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: broken\nStatus: install ok installed\n";
        let limits = Limits::default();
        let context = CatalogContext {
            location: "/var/lib/dpkg/status",
            limits: &limits,
        };
        let catalog = catalog(status, &context);
        assert_eq!(catalog.packages.len(), 1);
        let package = &catalog.packages[0];
        assert_eq!(package.source_name.as_deref(), Some("util-linux"));
        assert_eq!(package.source_version.as_deref(), Some("2.38.1-5+deb12u3"));
        assert_eq!(catalog.issues.len(), 1);
        assert_eq!(catalog.issues[0].line, Some(12));
    }
}
