//! Which OSV ecosystems a package belongs to, and the normalised keys the index uses.

use serde::{Deserialize, Serialize};

use crate::import::debian::DEBIAN_ANY_RELEASE;

/// The kind of an SBOM package: its package manager or language ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageKind {
    /// dpkg (Debian, Ubuntu).
    Deb,
    /// apk (Alpine, Wolfi, Chainguard).
    Apk,
    /// rpm (AlmaLinux, Rocky, RHEL ...).
    Rpm,
    /// Rust crates.
    Cargo,
    /// Go modules (and `stdlib`).
    Go,
    /// npm packages.
    Npm,
    /// Python packages.
    PyPI,
    /// Maven artifacts, named `group:artifact`.
    Maven,
    /// Ruby gems.
    RubyGems,
    /// NuGet packages.
    NuGet,
    /// PHP Composer packages.
    Packagist,
    /// Erlang/Elixir packages.
    Hex,
    /// Dart packages.
    Pub,
}

impl PackageKind {
    /// The OSV ecosystem of a language package kind; `None` for OS packages, whose ecosystem
    /// depends on the distribution.
    pub fn language_ecosystem(self) -> Option<&'static str> {
        match self {
            PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => None,
            PackageKind::Cargo => Some("crates.io"),
            PackageKind::Go => Some("Go"),
            PackageKind::Npm => Some("npm"),
            PackageKind::PyPI => Some("PyPI"),
            PackageKind::Maven => Some("Maven"),
            PackageKind::RubyGems => Some("RubyGems"),
            PackageKind::NuGet => Some("NuGet"),
            PackageKind::Packagist => Some("Packagist"),
            PackageKind::Hex => Some("Hex"),
            PackageKind::Pub => Some("Pub"),
        }
    }
}

/// The operating system of the scanned image, from `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`, `alpine`, `almalinux` ...).
    pub id: String,
    /// `VERSION_ID` (`12`, `18.04`, `3.16.2`, `9.3`); empty for rolling releases.
    pub version_id: String,
}

impl OsRelease {
    /// Builds an OS from its os-release `ID` and `VERSION_ID`.
    pub fn new(id: &str, version_id: &str) -> Self {
        OsRelease {
            id: id.trim().to_ascii_lowercase(),
            version_id: version_id.trim().to_owned(),
        }
    }
}

fn leading_components(version: &str, count: usize) -> String {
    version.split('.').take(count).collect::<Vec<_>>().join(".")
}

/// The index keys to look OS packages up under, most specific first. Debian's release-less key
/// comes last: it is consulted only for advisories the release has no entry for.
pub fn os_ecosystem_keys(
    os: &OsRelease,
    kind: PackageKind,
    include_ubuntu_pro: bool,
) -> Vec<String> {
    match (os.id.as_str(), kind) {
        ("debian", PackageKind::Deb) => {
            let major = leading_components(&os.version_id, 1);
            let release = if major.is_empty() {
                "Debian:sid".to_owned()
            } else {
                format!("Debian:{major}")
            };
            vec![release, DEBIAN_ANY_RELEASE.to_owned()]
        }
        ("ubuntu", PackageKind::Deb) => {
            let release = leading_components(&os.version_id, 2);
            let mut keys = vec![format!("Ubuntu:{release}")];
            if include_ubuntu_pro {
                keys.push(format!("Ubuntu:Pro:{release}"));
            }
            keys
        }
        ("alpine", PackageKind::Apk) => {
            let branch = leading_components(&os.version_id, 2);
            if branch.is_empty() {
                Vec::new()
            } else {
                vec![format!("Alpine:v{branch}")]
            }
        }
        ("wolfi", PackageKind::Apk) => vec!["Wolfi".to_owned()],
        ("chainguard", PackageKind::Apk) => vec!["Chainguard".to_owned()],
        ("almalinux", PackageKind::Rpm) => vec![format!(
            "AlmaLinux:{}",
            leading_components(&os.version_id, 1)
        )],
        ("rocky", PackageKind::Rpm) => vec![format!(
            "Rocky Linux:{}",
            leading_components(&os.version_id, 1)
        )],
        _ => Vec::new(),
    }
}

/// Normalises a feed's ecosystem to the index key: Ubuntu's `:LTS` suffix is dropped so that
/// `Ubuntu:18.04:LTS` and `Ubuntu:18.04` meet.
pub fn ecosystem_key(ecosystem: &str) -> String {
    let trimmed = ecosystem.trim();
    trimmed.strip_suffix(":LTS").unwrap_or(trimmed).to_owned()
}

/// Normalises a package name as its ecosystem compares names: PyPI per PEP 503 (case and runs
/// of `-`, `_`, `.` are insignificant), everything else as written.
pub fn package_key(ecosystem_key: &str, name: &str) -> String {
    if ecosystem_key == "PyPI" {
        let mut normalized = String::with_capacity(name.len());
        let mut previous_was_separator = false;
        for character in name.trim().chars() {
            if matches!(character, '-' | '_' | '.') {
                if !previous_was_separator {
                    normalized.push('-');
                }
                previous_was_separator = true;
            } else {
                normalized.push(character.to_ascii_lowercase());
                previous_was_separator = false;
            }
        }
        return normalized;
    }
    name.trim().to_owned()
}
