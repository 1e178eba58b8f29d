//! The software bill of materials a scan produces: the operating system and every package found.

use serde::{Deserialize, Serialize};

/// Where packages of a kind come from and how their versions compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// Debian/Ubuntu packages from the dpkg database.
    Deb,
    /// Alpine/Wolfi packages from the apk database.
    Apk,
    /// RPM packages from the rpm database.
    Rpm,
    /// Rust crates.
    Cargo,
    /// Go modules.
    Go,
    /// npm packages.
    Npm,
    /// Python distributions.
    Python,
    /// Java archives.
    Maven,
    /// Ruby gems.
    Gem,
    /// PHP composer packages.
    Composer,
    /// .NET NuGet packages.
    Nuget,
}

impl PackageKind {
    /// The OSV ecosystem name of a language package kind; OS kinds need the release, see
    /// [`Package::osv_ecosystem`].
    pub fn language_ecosystem(self) -> Option<&'static str> {
        match self {
            PackageKind::Cargo => Some("crates.io"),
            PackageKind::Go => Some("Go"),
            PackageKind::Npm => Some("npm"),
            PackageKind::Python => Some("PyPI"),
            PackageKind::Maven => Some("Maven"),
            PackageKind::Gem => Some("RubyGems"),
            PackageKind::Composer => Some("Packagist"),
            PackageKind::Nuget => Some("NuGet"),
            PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm => None,
        }
    }

    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Cargo => "cargo",
            PackageKind::Go => "go",
            PackageKind::Npm => "npm",
            PackageKind::Python => "python",
            PackageKind::Maven => "maven",
            PackageKind::Gem => "gem",
            PackageKind::Composer => "composer",
            PackageKind::Nuget => "nuget",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package name as its ecosystem spells it (Maven: `group:artifact`).
    pub name: String,
    /// Installed version (rpm: `[epoch:]version-release`).
    pub version: String,
    /// Which package manager or language it belongs to.
    pub kind: PackageKind,
    /// Source package name when the ecosystem has one (dpkg `Source:`, apk origin, rpm SRPM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version when it differs or is known (dpkg `Source: name (version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Architecture when the database records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Package URL.
    pub purl: String,
    /// Absolute path inside the image of the file that recorded the package (`!` separates
    /// archive members: `/app/app.war!WEB-INF/lib/x.jar`).
    pub location: String,
    /// Digest (or name, for a rootfs directory) of the layer that introduced the package.
    pub layer: String,
}

impl Package {
    /// The OSV ecosystem this package is matched in ("Debian:12", "Alpine:v3.16", "PyPI", ...).
    pub fn osv_ecosystem(&self, os: Option<&OsInfo>) -> Option<String> {
        if let Some(language) = self.kind.language_ecosystem() {
            return Some(language.to_string());
        }
        os.and_then(OsInfo::osv_ecosystem)
    }

    /// Name used to look up advisories: the source package where advisories are source-keyed.
    pub fn advisory_name(&self) -> &str {
        match self.kind {
            PackageKind::Deb | PackageKind::Apk => {
                self.source_name.as_deref().unwrap_or(&self.name)
            }
            _ => &self.name,
        }
    }

    /// Version compared with advisories: the source version for dpkg packages.
    pub fn advisory_version(&self) -> &str {
        match self.kind {
            PackageKind::Deb => self.source_version.as_deref().unwrap_or(&self.version),
            _ => &self.version,
        }
    }
}

/// The image's operating system, from os-release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID` (debian, ubuntu, alpine, rhel, mariner ...).
    pub id: String,
    /// `VERSION_ID`.
    pub version_id: String,
    /// `VERSION_CODENAME` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// `PRETTY_NAME` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

impl OsInfo {
    /// Short form used in reports: "debian 12".
    pub fn display_name(&self) -> String {
        format!("{} {}", self.id, self.version_id)
    }

    /// The release the distro's advisories are keyed by: Debian major, Alpine minor, Ubuntu YY.MM.
    pub fn release(&self) -> String {
        match self.id.as_str() {
            "debian" => self
                .version_id
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            "alpine" => self
                .version_id
                .split('.')
                .take(2)
                .collect::<Vec<_>>()
                .join("."),
            _ => self.version_id.clone(),
        }
    }

    /// The OSV ecosystem of the image's OS packages.
    pub fn osv_ecosystem(&self) -> Option<String> {
        let release = self.release();
        let ecosystem = match self.id.as_str() {
            "debian" => format!("Debian:{release}"),
            "ubuntu" => format!("Ubuntu:{release}"),
            "alpine" => format!("Alpine:v{release}"),
            "almalinux" => format!(
                "AlmaLinux:{}",
                release.split('.').next().unwrap_or_default()
            ),
            "rocky" => format!(
                "Rocky Linux:{}",
                release.split('.').next().unwrap_or_default()
            ),
            "wolfi" => "Wolfi".to_string(),
            "chainguard" => "Chainguard".to_string(),
            "mariner" | "azurelinux" => format!("Azure Linux:{release}"),
            "opensuse-leap" => format!("openSUSE:Leap {release}"),
            "sles" => format!("SUSE:Linux Enterprise Server {release}"),
            "rhel" => format!("Red Hat:{release}"),
            _ => return None,
        };
        Some(ecosystem)
    }
}

/// Something a cataloger could not read, reported without dropping the rest of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogIssue {
    /// Path of the file inside the image.
    pub location: String,
    /// Line (1-based) or record number where the problem is, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What was wrong.
    pub reason: String,
}

/// One layer of the image, in application order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Digest of the layer blob as the manifest names it (or a name for a rootfs directory).
    pub digest: String,
    /// Media type of the blob.
    pub media_type: String,
    /// Compressed size in bytes when known.
    pub size: u64,
}

/// Everything a scan learned about an image before matching vulnerabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// The reference that was scanned, as given.
    pub target: String,
    /// Manifest digest (or image config digest for docker archives, or a content hash for a
    /// rootfs directory): the cache key.
    pub image_digest: String,
    /// Operating system, when os-release was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    /// Layers in application order.
    pub layers: Vec<LayerInfo>,
    /// Packages, sorted by kind, name, version and location.
    pub packages: Vec<Package>,
    /// Records that could not be read.
    pub issues: Vec<CatalogIssue>,
}
