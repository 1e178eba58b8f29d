//! Catalogers: each turns one file of the image into packages. The layer walker decides from
//! the path alone whether a file interests a cataloger, so only those files are ever read.

mod apk;
mod binary;
mod dotnet;
mod dpkg;
mod golang;
mod java;
mod javascript;
mod os_release;
mod php;
mod purl;
mod python;
pub(crate) mod rpm;
mod ruby;
mod rust;

use crate::limits::Limits;
use crate::sbom::{CatalogIssue, OsInfo, Package, PackageKind};

pub(crate) use os_release::{OsSource, parse_os_file};

/// The kinds of file a cataloger reads by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileType {
    Os(OsSource),
    DpkgStatus,
    ApkInstalled,
    RpmSqlite,
    RpmBerkeley,
    RpmNdb,
    CargoLock,
    GoMod,
    NpmLock,
    YarnLock,
    PnpmLock,
    NodePackageJson,
    PythonMetadata,
    PythonRequirements,
    PoetryLock,
    PipfileLock,
    UvLock,
    JavaArchive,
    PomProperties,
    PomXml,
    GemSpec,
    GemfileLock,
    ComposerLock,
    ComposerInstalled,
    DotnetDeps,
    /// An ELF executable (chosen by mode and magic, never by name).
    Executable,
}

impl FileType {
    /// Whether packages from this file belong to the OS package manager; those get their layer
    /// from the history of the database across layers.
    pub(crate) fn is_os_database(self) -> bool {
        matches!(
            self,
            FileType::DpkgStatus
                | FileType::ApkInstalled
                | FileType::RpmSqlite
                | FileType::RpmBerkeley
                | FileType::RpmNdb
        )
    }

    /// Whether the file is an archive or database the cataloger needs whole (bigger bound).
    pub(crate) fn is_large(self) -> bool {
        matches!(
            self,
            FileType::JavaArchive | FileType::RpmSqlite | FileType::RpmBerkeley | FileType::RpmNdb
        )
    }
}

/// Which cataloger, if any, wants the file at `path` (clean, root-relative, symlinks resolved).
pub(crate) fn file_type_for(path: &str) -> Option<FileType> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parent = path
        .rsplit_once('/')
        .map(|(parent, _)| parent)
        .unwrap_or("");
    let file_type = match (parent, name) {
        ("etc", "os-release") => FileType::Os(OsSource::EtcOsRelease),
        ("usr/lib", "os-release") => FileType::Os(OsSource::UsrLibOsRelease),
        ("etc", "alpine-release") => FileType::Os(OsSource::AlpineRelease),
        ("etc", "debian_version") => FileType::Os(OsSource::DebianVersion),
        ("var/lib/dpkg", "status") | ("var/lib/dpkg/status.d", _) => FileType::DpkgStatus,
        ("lib/apk/db" | "usr/lib/apk/db", "installed") => FileType::ApkInstalled,
        ("var/lib/rpm" | "usr/lib/sysimage/rpm" | "usr/share/rpm", "rpmdb.sqlite") => {
            FileType::RpmSqlite
        }
        ("var/lib/rpm" | "usr/lib/sysimage/rpm" | "usr/share/rpm", "Packages") => {
            FileType::RpmBerkeley
        }
        ("var/lib/rpm" | "usr/lib/sysimage/rpm" | "usr/share/rpm", "Packages.db") => {
            FileType::RpmNdb
        }
        (_, "Cargo.lock") => FileType::CargoLock,
        (_, "go.mod") => FileType::GoMod,
        (_, "package-lock.json" | "npm-shrinkwrap.json") => FileType::NpmLock,
        (_, "yarn.lock") => FileType::YarnLock,
        (_, "pnpm-lock.yaml") => FileType::PnpmLock,
        (_, "package.json") if is_node_modules_package(parent) => FileType::NodePackageJson,
        (_, "METADATA") if parent.ends_with(".dist-info") => FileType::PythonMetadata,
        (_, "PKG-INFO") if parent.ends_with(".egg-info") || parent.ends_with("EGG-INFO") => {
            FileType::PythonMetadata
        }
        (_, file) if file.ends_with(".egg-info") => FileType::PythonMetadata,
        (_, "requirements.txt") => FileType::PythonRequirements,
        (_, "poetry.lock") => FileType::PoetryLock,
        (_, "Pipfile.lock") => FileType::PipfileLock,
        (_, "uv.lock") => FileType::UvLock,
        (_, "pom.properties") => FileType::PomProperties,
        (_, "pom.xml") => FileType::PomXml,
        (_, file) if file.ends_with(".gemspec") && parent.ends_with("specifications") => {
            FileType::GemSpec
        }
        (_, "Gemfile.lock" | "gems.locked") => FileType::GemfileLock,
        (_, "composer.lock") => FileType::ComposerLock,
        ("vendor/composer", "installed.json") => FileType::ComposerInstalled,
        (directory, "installed.json") if directory.ends_with("/vendor/composer") => {
            FileType::ComposerInstalled
        }
        (_, file) if file.ends_with(".deps.json") => FileType::DotnetDeps,
        (_, file) if java::is_java_archive_name(file) => FileType::JavaArchive,
        _ => return None,
    };
    Some(file_type)
}

/// `.../node_modules/NAME` or `.../node_modules/@SCOPE/NAME`.
fn is_node_modules_package(directory: &str) -> bool {
    let mut components = directory.rsplit('/');
    let (Some(last), Some(before)) = (components.next(), components.next()) else {
        return false;
    };
    if before == "node_modules" {
        return !last.starts_with('.');
    }
    before.starts_with('@') && components.next() == Some("node_modules")
}

/// What a cataloger took from one file, kept on the file's node so a later whiteout drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Captured {
    Os(OsSource, OsInfo),
    Packages {
        file_type: FileType,
        catalog: FileCatalog,
    },
}

/// Packages and problems found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCatalog {
    /// Packages, with `location` set and `layer` still empty.
    pub packages: Vec<Package>,
    /// Records that could not be read.
    pub issues: Vec<CatalogIssue>,
}

impl FileCatalog {
    pub(crate) fn issue(&mut self, location: &str, line: Option<u64>, reason: impl Into<String>) {
        self.issues.push(CatalogIssue {
            location: location.to_string(),
            line,
            reason: reason.into(),
        });
    }
}

/// Everything a cataloger needs besides the bytes.
pub(crate) struct CatalogContext<'a> {
    /// `/`-prefixed path inside the image, used as the packages' location.
    pub location: &'a str,
    pub limits: &'a Limits,
}

impl CatalogContext<'_> {
    /// A package of `kind` found in this file.
    pub(crate) fn package(
        &self,
        kind: PackageKind,
        name: impl Into<String>,
        version: impl Into<String>,
        purl: String,
    ) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            kind,
            source_name: None,
            source_version: None,
            arch: None,
            purl,
            location: self.location.to_string(),
            layer: String::new(),
        }
    }
}

/// Runs the cataloger for `file_type` over the whole content of one file.
pub(crate) fn catalog_content(
    file_type: FileType,
    content: &[u8],
    context: &CatalogContext<'_>,
) -> FileCatalog {
    let mut catalog = match file_type {
        FileType::Os(_) => FileCatalog::default(),
        FileType::DpkgStatus => dpkg::catalog(content, context),
        FileType::ApkInstalled => apk::catalog(content, context),
        FileType::RpmSqlite => rpm::catalog_sqlite(content, context),
        FileType::RpmBerkeley => rpm::catalog_berkeley(content, context),
        FileType::RpmNdb => rpm::catalog_ndb(content, context),
        FileType::CargoLock => rust::catalog_cargo_lock(content, context),
        FileType::GoMod => golang::catalog_go_mod(content, context),
        FileType::NpmLock => javascript::catalog_npm_lock(content, context),
        FileType::YarnLock => javascript::catalog_yarn_lock(content, context),
        FileType::PnpmLock => javascript::catalog_pnpm_lock(content, context),
        FileType::NodePackageJson => javascript::catalog_package_json(content, context),
        FileType::PythonMetadata => python::catalog_metadata(content, context),
        FileType::PythonRequirements => python::catalog_requirements(content, context),
        FileType::PoetryLock => python::catalog_poetry_lock(content, context),
        FileType::PipfileLock => python::catalog_pipfile_lock(content, context),
        FileType::UvLock => python::catalog_uv_lock(content, context),
        FileType::JavaArchive => java::catalog_archive(content, context),
        FileType::PomProperties => java::catalog_pom_properties(content, context),
        FileType::PomXml => java::catalog_pom_xml(content, context),
        FileType::GemSpec => ruby::catalog_gemspec(content, context),
        FileType::GemfileLock => ruby::catalog_gemfile_lock(content, context),
        FileType::ComposerLock => php::catalog_composer_lock(content, context),
        FileType::ComposerInstalled => php::catalog_installed_json(content, context),
        FileType::DotnetDeps => dotnet::catalog_deps_json(content, context),
        FileType::Executable => binary::catalog(content, context),
    };
    let limit = context.limits.max_packages_per_file;
    if catalog.packages.len() > limit {
        catalog.packages.truncate(limit);
        catalog.issue(
            context.location,
            None,
            format!("more than {limit} packages in one file; the rest were not read"),
        );
    }
    catalog
}

/// Inspects an executable (Go build info, cargo-auditable data).
pub(crate) fn catalog_binary(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    binary::catalog(content, context)
}

/// Whether the first bytes of an executable are worth reading the rest for.
pub(crate) fn is_inspectable_binary(magic: &[u8]) -> bool {
    binary::is_elf(magic)
}

/// Catalogs one file's content as if it were found at `path_in_image` (e.g.
/// `var/lib/dpkg/status`, `app/Cargo.lock`). `None` when no cataloger reads such a path.
pub fn catalog_file_at(
    path_in_image: &str,
    content: &[u8],
    limits: &Limits,
) -> Option<FileCatalog> {
    let clean = path_in_image.trim_start_matches('/');
    let file_type = file_type_for(clean)?;
    let location = format!("/{clean}");
    let context = CatalogContext {
        location: &location,
        limits,
    };
    Some(catalog_content(file_type, content, &context))
}

/// Catalogs an executable's content (Go build info, cargo-auditable) found at `path_in_image`.
pub fn catalog_binary_at(path_in_image: &str, content: &[u8], limits: &Limits) -> FileCatalog {
    let location = format!("/{}", path_in_image.trim_start_matches('/'));
    let context = CatalogContext {
        location: &location,
        limits,
    };
    binary::catalog(content, &context)
}

/// Parses os-release text (`ID`, `VERSION_ID` ...).
pub fn parse_os_release(content: &[u8]) -> Option<OsInfo> {
    parse_os_file(OsSource::EtcOsRelease, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_choose_their_catalogers() {
        assert_eq!(
            file_type_for("var/lib/dpkg/status"),
            Some(FileType::DpkgStatus)
        );
        assert_eq!(
            file_type_for("var/lib/dpkg/status.d/base"),
            Some(FileType::DpkgStatus)
        );
        assert_eq!(file_type_for("var/lib/dpkg/status-old"), None);
        assert_eq!(
            file_type_for("app/node_modules/left-pad/package.json"),
            Some(FileType::NodePackageJson)
        );
        assert_eq!(
            file_type_for("app/node_modules/@babel/core/package.json"),
            Some(FileType::NodePackageJson)
        );
        assert_eq!(file_type_for("app/package.json"), None);
        assert_eq!(
            file_type_for("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"),
            Some(FileType::PythonMetadata)
        );
        assert_eq!(
            file_type_for("usr/local/bundle/specifications/rack-3.0.gemspec"),
            Some(FileType::GemSpec)
        );
        assert_eq!(
            file_type_for("opt/app/app.war"),
            Some(FileType::JavaArchive)
        );
        assert_eq!(
            file_type_for("usr/lib/sysimage/rpm/Packages.db"),
            Some(FileType::RpmNdb)
        );
    }
}
