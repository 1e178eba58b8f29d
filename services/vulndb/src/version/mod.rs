//! Version ordering, exactly per ecosystem. Every comparator is total: it orders any two
//! strings (malformed ones deterministically), because a scanner meets whatever an image or a
//! feed holds and must neither panic nor drop the package.

use std::cmp::Ordering;

pub mod apk;
pub mod dpkg;
pub mod maven;
pub mod nuget;
pub mod pep440;
pub mod rpm;
pub mod rubygems;
pub mod semver;

/// The ordering rules of one ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum VersionScheme {
    /// Debian and Ubuntu packages (`dpkg --compare-versions`).
    Dpkg,
    /// Alpine, Wolfi and Chainguard packages (apk-tools).
    Apk,
    /// RPM packages (rpmvercmp with epoch and release).
    Rpm,
    /// SemVer 2.0 precedence (crates.io, npm, Go, Hex, Pub, OSV `SEMVER` ranges).
    Semver,
    /// Python packages (PEP 440).
    Pep440,
    /// Maven artifacts (`ComparableVersion`).
    Maven,
    /// Ruby gems (`Gem::Version`).
    RubyGems,
    /// NuGet packages.
    NuGet,
    /// Anything else: rpmvercmp's alphanumeric-run ordering, the most forgiving general rule.
    Generic,
}

impl VersionScheme {
    /// The scheme for an OSV ecosystem name (`Debian:12`, `PyPI`, `crates.io` ...).
    pub fn for_ecosystem(ecosystem: &str) -> Self {
        let family = ecosystem.split(':').next().unwrap_or(ecosystem);
        match family {
            "Debian" | "Ubuntu" => VersionScheme::Dpkg,
            "Alpine"
            | "Wolfi"
            | "Chainguard"
            | "Alpaquita"
            | "BellSoft Hardened Containers"
            | "MinimOS" => VersionScheme::Apk,
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" | "Azure Linux" | "Photon OS" => VersionScheme::Rpm,
            "crates.io" | "npm" | "Go" | "Hex" | "Pub" | "SwiftURL" | "Bitnami" => {
                VersionScheme::Semver
            }
            "PyPI" => VersionScheme::Pep440,
            "Maven" => VersionScheme::Maven,
            "RubyGems" => VersionScheme::RubyGems,
            "NuGet" => VersionScheme::NuGet,
            _ => VersionScheme::Generic,
        }
    }

    /// Compares two versions under this scheme.
    pub fn compare(self, left: &str, right: &str) -> Ordering {
        match self {
            VersionScheme::Dpkg => dpkg::compare(left, right),
            VersionScheme::Apk => apk::compare(left, right),
            VersionScheme::Rpm => rpm::compare_evr(left, right),
            VersionScheme::Semver => semver::compare(left, right),
            VersionScheme::Pep440 => pep440::compare(left, right),
            VersionScheme::Maven => maven::compare(left, right),
            VersionScheme::RubyGems => rubygems::compare(left, right),
            VersionScheme::NuGet => nuget::compare(left, right),
            VersionScheme::Generic => rpm::vercmp(left, right),
        }
    }

    /// Stable lowercase name, used in explanations.
    pub fn name(self) -> &'static str {
        match self {
            VersionScheme::Dpkg => "dpkg",
            VersionScheme::Apk => "apk",
            VersionScheme::Rpm => "rpm",
            VersionScheme::Semver => "semver",
            VersionScheme::Pep440 => "pep440",
            VersionScheme::Maven => "maven",
            VersionScheme::RubyGems => "rubygems",
            VersionScheme::NuGet => "nuget",
            VersionScheme::Generic => "generic",
        }
    }
}

/// Compares an installed version with a version taken from a feed. RPM feeds (AlmaLinux OSV)
/// omit the epoch of packages that have one, so a feed version without an epoch is compared
/// against the installed version without its epoch (grype's "auto" policy); every other scheme
/// compares the strings as they are.
pub fn compare_installed_to_feed(scheme: VersionScheme, installed: &str, feed: &str) -> Ordering {
    if scheme == VersionScheme::Rpm && !has_epoch(feed) {
        let installed_without_epoch = match installed.split_once(':') {
            Some((epoch, rest)) if epoch.bytes().all(|byte| byte.is_ascii_digit()) => rest,
            _ => installed,
        };
        return rpm::compare_evr(installed_without_epoch, feed);
    }
    scheme.compare(installed, feed)
}

fn has_epoch(version: &str) -> bool {
    version.split_once(':').is_some_and(|(epoch, _)| {
        !epoch.is_empty() && epoch.bytes().all(|byte| byte.is_ascii_digit())
    })
}

/// Fuzz entry point for the comparators: every scheme must order any two strings without
/// panicking, consistently (antisymmetric, reflexive).
pub fn fuzz_compare(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (left, right) = text.split_once('\n').unwrap_or((&text, ""));
    for scheme in ALL_SCHEMES {
        let forward = scheme.compare(left, right);
        let backward = scheme.compare(right, left);
        assert_eq!(
            forward,
            backward.reverse(),
            "{scheme:?} is not antisymmetric on {left:?} {right:?}"
        );
        assert_eq!(
            scheme.compare(left, left),
            Ordering::Equal,
            "{scheme:?} is not reflexive on {left:?}"
        );
    }
    let _ = apk::is_valid(left);
    let _ = pep440::Pep440Version::parse(left);
}

/// Every scheme, for tests and fuzzing.
pub const ALL_SCHEMES: [VersionScheme; 9] = [
    VersionScheme::Dpkg,
    VersionScheme::Apk,
    VersionScheme::Rpm,
    VersionScheme::Semver,
    VersionScheme::Pep440,
    VersionScheme::Maven,
    VersionScheme::RubyGems,
    VersionScheme::NuGet,
    VersionScheme::Generic,
];
