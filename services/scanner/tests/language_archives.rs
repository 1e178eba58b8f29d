//! Language packages from real input: Python's egg-info metadata and Java archives.
//!
//! Python: every `*.egg-info` that Debian's python3 packages installed in
//! /usr/lib/python3/dist-packages (directories holding `PKG-INFO`, and bare `*.egg-info` files
//! such as criu's `crit-3.17.1-py3.11.egg-info`) is copied into a root filesystem scanned
//! through `dir:`. The expected packages are what Python's own `importlib.metadata` reads from
//! the same directory.
//!
//! Java: jars and wars are built here with the `zip` crate around real material: the images
//! corpus's `lockfiles/java/pom.properties` (syft's `extra.pom.properties`, as Maven writes it
//! into `META-INF/maven/GROUP/ARTIFACT/`) and the main sections of two MANIFEST.MF files that
//! Debian 12 ships in /usr/share/java, copied below so the test needs neither package:
//! `commons-lang3.jar` of libcommons-lang3-java 3.12.0-2+deb12u1 (Implementation-Version) and
//! `guice-servlet.jar` of libguice-java 4.2.3-2 (Bundle-Version only). Expected coordinates are
//! read from that material by the test, never written out by hand.

use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Command;

use palisade_scanner::{
    FileCatalog, Limits, PackageKind, ScanOptions, build_sbom, catalog_file_at,
};
use palisade_testkit::corpus_path;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

// Python egg-info.

const DIST_PACKAGES: &str = "/usr/lib/python3/dist-packages";

/// Fewer entries than this means the machine lacks the packages the test is about.
const MIN_EGG_INFO_ENTRIES: usize = 5;

/// What to install when the egg-info entries are missing.
const NEEDS_EGG_INFO: &str = "this test expects Debian's python3 packages that install \
    egg-info metadata there (scripts/setup-debian.sh installs python3-pip, python3-six, \
    python3-pygments and python3-toml)";

/// Prints one tab-separated line per egg-info distribution `importlib.metadata` finds in
/// `sys.argv[1]`: entry name, `Name` as written, its PEP 503 normalisation, version.
const IMPORTLIB_EGG_INFO: &str = r#"
import importlib.metadata, os, re, sys
for distribution in importlib.metadata.distributions(path=[sys.argv[1]]):
    # A PathDistribution keeps the path of its metadata only in `_path`.
    metadata_path = str(distribution._path)
    if metadata_path.endswith(".egg-info"):
        name = distribution.metadata["Name"]
        normalized = re.sub(r"[-_.]+", "-", name).lower()
        print(os.path.basename(metadata_path), name, normalized, distribution.version, sep="\t")
"#;

/// One distribution as `importlib.metadata` reads it.
#[derive(Debug)]
struct ImportlibDistribution {
    /// File or directory name in dist-packages (`six-1.16.0.egg-info`).
    entry: String,
    name: String,
    normalized_name: String,
    version: String,
}

fn importlib_egg_info(directory: &str) -> Vec<ImportlibDistribution> {
    // `make test` points PALISADE_PYTHON at its venv; any Python 3.10+ reads an explicit path.
    let python = std::env::var("PALISADE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args(["-c", IMPORTLIB_EGG_INFO, directory])
        .output()
        .unwrap_or_else(|error| panic!("{python} is needed as the reference: {error}"));
    assert!(
        output.status.success(),
        "importlib.metadata failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8 from python");
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [entry, name, normalized_name, version] = fields[..] else {
                panic!("unexpected line from python: {line:?}");
            };
            ImportlibDistribution {
                entry: entry.to_string(),
                name: name.to_string(),
                normalized_name: normalized_name.to_string(),
                version: version.to_string(),
            }
        })
        .collect()
}

/// Names of the `*.egg-info` files and directories directly in `directory`, sorted.
fn egg_info_entries(directory: &Path) -> Vec<String> {
    let listing = std::fs::read_dir(directory).unwrap_or_else(|error| {
        panic!(
            "cannot list {}: {error}; {NEEDS_EGG_INFO}",
            directory.display()
        )
    });
    let mut names: Vec<String> = listing
        .map(|entry| entry.expect("directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".egg-info"))
        .collect();
    names.sort();
    names
}

fn copy_tree(source: &Path, destination: &Path) {
    if source.is_dir() {
        std::fs::create_dir_all(destination).expect("create directory");
        for entry in std::fs::read_dir(source).expect("list directory") {
            let entry = entry.expect("directory entry");
            copy_tree(&entry.path(), &destination.join(entry.file_name()));
        }
    } else {
        std::fs::copy(source, destination)
            .unwrap_or_else(|error| panic!("copying {}: {error}", source.display()));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn debian_egg_info_catalogs_to_what_importlib_metadata_reads() {
    let dist_packages = Path::new(DIST_PACKAGES);
    let entries = egg_info_entries(dist_packages);
    assert!(
        entries.len() >= MIN_EGG_INFO_ENTRIES,
        "{DIST_PACKAGES} holds {} *.egg-info entries ({entries:?}), fewer than \
         {MIN_EGG_INFO_ENTRIES}; {NEEDS_EGG_INFO}",
        entries.len()
    );
    let image = tempfile::tempdir().expect("temp dir");
    let image_dist_packages = image.path().join(DIST_PACKAGES.trim_start_matches('/'));
    std::fs::create_dir_all(&image_dist_packages).expect("dist-packages");
    for entry in &entries {
        copy_tree(&dist_packages.join(entry), &image_dist_packages.join(entry));
    }

    let sbom = runtime()
        .block_on(build_sbom(&ScanOptions::new(format!(
            "dir:{}",
            image.path().display()
        ))))
        .expect("scan");
    assert!(sbom.issues.is_empty(), "{:?}", sbom.issues);

    let reference = importlib_egg_info(DIST_PACKAGES);
    let mut expected: Vec<(String, String)> = reference
        .iter()
        .map(|distribution| {
            (
                distribution.normalized_name.clone(),
                distribution.version.clone(),
            )
        })
        .collect();
    // The scanner's normalised name is the one in its purl (`pkg:pypi/NAME@VERSION`).
    let mut found: Vec<(String, String)> = sbom
        .packages
        .iter()
        .map(|package| {
            let after_type = package
                .purl
                .strip_prefix("pkg:pypi/")
                .unwrap_or(&package.purl);
            let name = after_type.split('@').next().unwrap_or_default();
            (name.to_string(), package.version.clone())
        })
        .collect();
    expected.sort();
    found.sort();
    assert_eq!(
        found, expected,
        "(normalised name, version): scanner, then importlib.metadata"
    );

    for distribution in &reference {
        let entry_path = dist_packages.join(&distribution.entry);
        let metadata_file = if entry_path.is_dir() {
            format!("{DIST_PACKAGES}/{}/PKG-INFO", distribution.entry)
        } else {
            format!("{DIST_PACKAGES}/{}", distribution.entry)
        };
        let package = sbom
            .packages
            .iter()
            .find(|package| package.location == metadata_file)
            .unwrap_or_else(|| panic!("no package located at {metadata_file}"));
        assert_eq!(package.kind, PackageKind::Python, "{metadata_file}");
        assert_eq!(package.name, distribution.name, "{metadata_file}");
        assert_eq!(package.version, distribution.version, "{metadata_file}");
        assert_eq!(
            package.purl,
            format!(
                "pkg:pypi/{}@{}",
                distribution.normalized_name, distribution.version
            ),
            "{metadata_file}"
        );
    }
}

// Java archives.

/// META-INF/MANIFEST.MF of /usr/share/java/commons-lang3.jar (Debian 12, libcommons-lang3-java
/// 3.12.0-2+deb12u1): its whole main section, written with LF; `manifest_file` gives back the
/// jar's exact bytes.
const COMMONS_LANG3_MANIFEST: &str = r#"Manifest-Version: 1.0
Created-By: Apache Maven Bundle Plugin
Build-Jdk-Spec: 17
Specification-Title: Apache Commons Lang
Specification-Version: 3.12
Implementation-Title: Apache Commons Lang
Implementation-Version: 3.12.0
Automatic-Module-Name: org.apache.commons.lang3
Bundle-Description: Apache Commons Lang, a package of Java utility class
 es for the  classes that are in java.lang's hierarchy, or are considere
 d to be sostandard as to justify existence in java.lang.
Bundle-DocURL: https://commons.apache.org/proper/commons-lang/
Bundle-ManifestVersion: 2
Bundle-Name: Apache Commons Lang
Bundle-SymbolicName: org.apache.commons.lang3
Bundle-Version: 3.12.0
Export-Package: org.apache.commons.lang3;version="3.12.0",org.apache.com
 mons.lang3.arch;version="3.12.0",org.apache.commons.lang3.builder;versi
 on="3.12.0",org.apache.commons.lang3.compare;version="3.12.0",org.apach
 e.commons.lang3.concurrent;version="3.12.0",org.apache.commons.lang3.co
 ncurrent.locks;version="3.12.0",org.apache.commons.lang3.event;version=
 "3.12.0",org.apache.commons.lang3.exception;version="3.12.0",org.apache
 .commons.lang3.function;version="3.12.0",org.apache.commons.lang3.math;
 version="3.12.0",org.apache.commons.lang3.mutable;version="3.12.0",org.
 apache.commons.lang3.reflect;version="3.12.0",org.apache.commons.lang3.
 stream;version="3.12.0",org.apache.commons.lang3.text;version="3.12.0",
 org.apache.commons.lang3.text.translate;version="3.12.0",org.apache.com
 mons.lang3.time;version="3.12.0",org.apache.commons.lang3.tuple;version
 ="3.12.0"
Include-Resource: META-INF/NOTICE.txt=NOTICE.txt,META-INF/LICENSE.txt=LI
 CENSE.txt
Require-Capability: osgi.ee;filter:="(&(osgi.ee=JavaSE)(version=1.8))"
Tool: Bnd-5.0.1.202101211358
"#;

/// META-INF/MANIFEST.MF of /usr/share/java/guice-servlet.jar (Debian 12, libguice-java
/// 4.2.3-2): its whole main section, written with LF; `manifest_file` gives back the jar's
/// exact bytes.
const GUICE_SERVLET_MANIFEST: &str = r#"Manifest-Version: 1.0
Created-By: Apache Maven 3.6.3
Build-Jdk: 11.0.10-ea
Automatic-Module-Name: com.google.guice.extensions.servlet
Bundle-Copyright: Copyright (C) 2006 Google Inc.
Bundle-Description: Guice is a lightweight dependency injection framewor
 k for Java 6 and above
Bundle-DocURL: https://github.com/google/guice
Bundle-License: http://www.apache.org/licenses/LICENSE-2.0.txt
Bundle-ManifestVersion: 2
Bundle-Name: guice-servlet
Bundle-RequiredExecutionEnvironment: JavaSE-1.6
Bundle-SymbolicName: com.google.inject.servlet
Bundle-Vendor: Google, Inc.
Bundle-Version: 4.2.3
Export-Package: com.google.inject.servlet;version="1.4"
Fragment-Host: com.google.inject
Import-Package: com.google.common.base;version="[29.0,30)",com.google.co
 mmon.collect;version="[29.0,30)",com.google.common.escape;version="[29.
 0,30)",com.google.common.net;version="[29.0,30)",javax.inject;version="
 [1.0,2)",javax.servlet;version="[4.0,5)",javax.servlet.http;version="[4
 .0,5)"
Require-Capability: osgi.ee;filter:="(&(osgi.ee=JavaSE)(version=1.8))"
"#;

/// A manifest as a jar holds it: CRLF line ends, the main section closed by an empty line.
fn manifest_file(main_section: &str) -> Vec<u8> {
    let mut text = main_section.replace('\n', "\r\n");
    text.push_str("\r\n");
    text.into_bytes()
}

/// A main-section attribute as the JAR specification reads it: `Name: value`, a line starting
/// with one space continues the value before it, names compare case-insensitively.
fn manifest_attribute(main_section: &str, wanted: &str) -> Option<String> {
    let mut attributes: Vec<(String, String)> = Vec::new();
    for line in main_section.lines() {
        if let Some(continuation) = line.strip_prefix(' ') {
            if let Some((_, value)) = attributes.last_mut() {
                value.push_str(continuation);
            }
        } else if let Some((name, value)) = line.split_once(": ") {
            attributes.push((name.to_string(), value.to_string()));
        }
    }
    attributes
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, value)| value)
}

/// The corpus pom.properties and the Maven coordinates it names.
struct PomProperties {
    content: Vec<u8>,
    group: String,
    artifact: String,
    version: String,
}

impl PomProperties {
    fn from_corpus() -> Self {
        let path = corpus_path("images/lockfiles/java/pom.properties");
        let content = std::fs::read(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        let text = String::from_utf8_lossy(&content).into_owned();
        let property = |wanted: &str| -> String {
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| *key == wanted)
                .map(|(_, value)| value.to_string())
                .unwrap_or_else(|| panic!("{} has no {wanted}", path.display()))
        };
        PomProperties {
            group: property("groupId"),
            artifact: property("artifactId"),
            version: property("version"),
            content,
        }
    }

    /// Where Maven puts the file inside the jar it builds.
    fn member_path(&self) -> String {
        format!(
            "META-INF/maven/{}/{}/pom.properties",
            self.group, self.artifact
        )
    }

    /// The jar file name Maven gives the artifact.
    fn jar_file_name(&self) -> String {
        format!("{}-{}.jar", self.artifact, self.version)
    }

    fn package_name(&self) -> String {
        format!("{}:{}", self.group, self.artifact)
    }

    fn purl(&self) -> String {
        format!(
            "pkg:maven/{}/{}@{}",
            self.group, self.artifact, self.version
        )
    }
}

/// Builds a zip archive (jar, war) in memory.
struct ArchiveBuilder {
    writer: zip::ZipWriter<Cursor<Vec<u8>>>,
}

impl ArchiveBuilder {
    fn new() -> Self {
        ArchiveBuilder {
            writer: zip::ZipWriter::new(Cursor::new(Vec::new())),
        }
    }

    fn member(mut self, name: &str, content: &[u8], method: CompressionMethod) -> Self {
        let options = SimpleFileOptions::default().compression_method(method);
        self.writer.start_file(name, options).expect("start member");
        self.writer.write_all(content).expect("write member");
        self
    }

    fn deflated(self, name: &str, content: &[u8]) -> Self {
        self.member(name, content, CompressionMethod::Deflated)
    }

    /// Spring Boot requires its nested jars stored, not deflated.
    fn stored(self, name: &str, content: &[u8]) -> Self {
        self.member(name, content, CompressionMethod::Stored)
    }

    fn finish(self) -> Vec<u8> {
        self.writer.finish().expect("finish archive").into_inner()
    }
}

fn jar_with_pom(pom: &PomProperties) -> ArchiveBuilder {
    ArchiveBuilder::new().deflated(&pom.member_path(), &pom.content)
}

fn catalog_archive(path_in_image: &str, archive: &[u8], limits: &Limits) -> FileCatalog {
    catalog_file_at(path_in_image, archive, limits)
        .unwrap_or_else(|| panic!("{path_in_image} is not read as a Java archive"))
}

#[test]
fn a_jars_pom_properties_gives_its_maven_coordinates_and_purl() {
    let pom = PomProperties::from_corpus();
    let jar = jar_with_pom(&pom).finish();
    let catalog = catalog_archive("app/app.jar", &jar, &Limits::default());
    assert!(catalog.issues.is_empty(), "{:?}", catalog.issues);
    let [package] = &catalog.packages[..] else {
        panic!("one package expected: {:?}", catalog.packages);
    };
    assert_eq!(package.kind, PackageKind::Maven);
    assert_eq!(package.name, pom.package_name());
    assert_eq!(package.version, pom.version);
    assert_eq!(package.purl, pom.purl());
    assert_eq!(package.location, "/app/app.jar");
}

#[test]
fn a_wars_library_is_found_at_a_location_naming_the_war_and_the_jar() {
    let pom = PomProperties::from_corpus();
    let library = jar_with_pom(&pom).finish();
    let library_member = format!("WEB-INF/lib/{}", pom.jar_file_name());
    let war = ArchiveBuilder::new()
        .deflated("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n")
        .deflated(&library_member, &library)
        .finish();
    let catalog = catalog_archive(
        "usr/local/tomcat/webapps/shop.war",
        &war,
        &Limits::default(),
    );
    assert!(catalog.issues.is_empty(), "{:?}", catalog.issues);
    // The war has no pom.properties of its own, and a war's name is not a package's.
    let [package] = &catalog.packages[..] else {
        panic!("one package expected: {:?}", catalog.packages);
    };
    assert_eq!(
        package.location,
        format!("/usr/local/tomcat/webapps/shop.war!{library_member}")
    );
    assert_eq!(package.name, pom.package_name());
    assert_eq!(package.version, pom.version);
    assert_eq!(package.purl, pom.purl());
}

#[test]
fn a_spring_boot_fat_jar_reports_itself_and_its_boot_inf_libraries() {
    let pom = PomProperties::from_corpus();
    let libraries = [
        ("commons-lang3", COMMONS_LANG3_MANIFEST),
        ("guice-servlet", GUICE_SERVLET_MANIFEST),
    ];
    let mut fat_jar = jar_with_pom(&pom);
    let mut expected = vec![(
        "/app/app.jar".to_string(),
        pom.package_name(),
        pom.version.clone(),
    )];
    for (artifact, manifest) in libraries {
        let version = manifest_attribute(manifest, "Implementation-Version")
            .or_else(|| manifest_attribute(manifest, "Bundle-Version"))
            .expect("a version in the manifest");
        let member = format!("BOOT-INF/lib/{artifact}-{version}.jar");
        let library = ArchiveBuilder::new()
            .deflated("META-INF/MANIFEST.MF", &manifest_file(manifest))
            .finish();
        fat_jar = fat_jar.stored(&member, &library);
        expected.push((
            format!("/app/app.jar!{member}"),
            artifact.to_string(),
            version,
        ));
    }
    let catalog = catalog_archive("app/app.jar", &fat_jar.finish(), &Limits::default());
    assert!(catalog.issues.is_empty(), "{:?}", catalog.issues);
    let mut found: Vec<(String, String, String)> = catalog
        .packages
        .iter()
        .map(|package| {
            (
                package.location.clone(),
                package.name.clone(),
                package.version.clone(),
            )
        })
        .collect();
    found.sort();
    expected.sort();
    assert_eq!(found, expected, "(location, name, version)");
    assert!(
        catalog
            .packages
            .iter()
            .all(|package| package.kind == PackageKind::Maven)
    );
}

#[test]
fn manifest_only_jars_take_their_version_from_the_manifest() {
    // Debian's file names carry no version, so only the manifest can give one.
    let jars = [
        (
            "commons-lang3",
            COMMONS_LANG3_MANIFEST,
            "Implementation-Version",
        ),
        ("guice-servlet", GUICE_SERVLET_MANIFEST, "Bundle-Version"),
    ];
    for (stem, manifest, version_attribute) in jars {
        assert_eq!(
            manifest_attribute(manifest, "Implementation-Vendor-Id"),
            None,
            "{stem}: the package name below comes from the file name only without a vendor id"
        );
        let version = manifest_attribute(manifest, version_attribute)
            .unwrap_or_else(|| panic!("{stem}: no {version_attribute}"));
        let path_in_image = format!("usr/share/java/{stem}.jar");
        let jar = ArchiveBuilder::new()
            .deflated("META-INF/MANIFEST.MF", &manifest_file(manifest))
            .finish();
        let catalog = catalog_archive(&path_in_image, &jar, &Limits::default());
        assert!(catalog.issues.is_empty(), "{stem}: {:?}", catalog.issues);
        let [package] = &catalog.packages[..] else {
            panic!("{stem}: one package expected: {:?}", catalog.packages);
        };
        assert_eq!(package.kind, PackageKind::Maven, "{stem}");
        assert_eq!(package.name, stem);
        assert_eq!(package.version, version, "{stem}");
        assert_eq!(package.location, format!("/{path_in_image}"));
        assert!(
            package.purl.starts_with("pkg:maven/")
                && package.purl.ends_with(&format!("{stem}@{version}")),
            "{stem}: {}",
            package.purl
        );
    }
}

#[test]
fn archives_nested_deeper_than_the_limit_are_reported_not_read() {
    let limits = Limits::default();
    let readable_levels = limits.max_archive_depth;
    let pom = PomProperties::from_corpus();
    // Level 1 is the file in the image; level N+1 is `lib/level-{N+1}.jar` inside level N.
    let mut archive = jar_with_pom(&pom).finish();
    for level in (1..=readable_levels).rev() {
        archive = jar_with_pom(&pom)
            .stored(&format!("lib/level-{}.jar", level + 1), &archive)
            .finish();
    }
    let mut locations = vec!["/app/app.jar".to_string()];
    for level in 2..=readable_levels + 1 {
        let parent = locations.last().expect("level 1").clone();
        locations.push(format!("{parent}!lib/level-{level}.jar"));
    }
    let too_deep = locations.pop().expect("the level past the limit");

    let catalog = catalog_archive("app/app.jar", &archive, &limits);
    let found: Vec<String> = catalog
        .packages
        .iter()
        .map(|package| package.location.clone())
        .collect();
    assert_eq!(found, locations, "one package per readable level");
    let [issue] = &catalog.issues[..] else {
        panic!("one issue expected: {:?}", catalog.issues);
    };
    assert_eq!(issue.location, too_deep);
    assert!(
        issue
            .reason
            .contains(&format!("deeper than {readable_levels}")),
        "{}",
        issue.reason
    );
}

/// Rewrites the uncompressed size `member` declares, in its local header and in the central
/// directory, the way a zip bomb understates what it inflates to.
fn declare_uncompressed_size(archive: &mut [u8], member: &str, declared: u32) {
    const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
    const CENTRAL_HEADER: &[u8] = b"PK\x01\x02";
    // (signature, offset of the name, offset of the uncompressed size), from APPNOTE 4.3.7/12.
    let headers = [(LOCAL_HEADER, 30, 22), (CENTRAL_HEADER, 46, 24)];
    for (signature, name_offset, size_offset) in headers {
        let start = (0..archive.len())
            .find(|&start| {
                archive[start..].starts_with(signature)
                    && archive
                        .get(start + name_offset..)
                        .is_some_and(|rest| rest.starts_with(member.as_bytes()))
            })
            .unwrap_or_else(|| panic!("no header for {member}"));
        archive[start + size_offset..start + size_offset + 4]
            .copy_from_slice(&declared.to_le_bytes());
    }
}

#[test]
fn a_manifest_inflating_past_its_declared_size_is_cut_off_with_an_issue() {
    const INFLATED_BYTES: usize = 8 * 1024 * 1024;
    let pom = PomProperties::from_corpus();
    let real_manifest = manifest_file(COMMONS_LANG3_MANIFEST);
    let mut bomb = real_manifest.clone();
    bomb.resize(INFLATED_BYTES, 0);
    let mut jar = ArchiveBuilder::new()
        .deflated("META-INF/MANIFEST.MF", &bomb)
        .deflated(&pom.member_path(), &pom.content)
        .finish();
    let declared = u32::try_from(real_manifest.len()).expect("small manifest");
    declare_uncompressed_size(&mut jar, "META-INF/MANIFEST.MF", declared);

    let catalog = catalog_archive("app/app.jar", &jar, &Limits::default());
    let [issue] = &catalog.issues[..] else {
        panic!("one issue expected: {:?}", catalog.issues);
    };
    assert_eq!(issue.location, "/app/app.jar!META-INF/MANIFEST.MF");
    assert!(issue.reason.contains("inflates past"), "{}", issue.reason);
    // The rest of the archive is still read.
    let [package] = &catalog.packages[..] else {
        panic!("one package expected: {:?}", catalog.packages);
    };
    assert_eq!(package.name, pom.package_name());
    assert_eq!(package.version, pom.version);
}
