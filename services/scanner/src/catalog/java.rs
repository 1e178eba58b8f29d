//! Java archives (jar, war, ear and archives nested in them), pom.properties and pom.xml.

use std::io::{Cursor, Read};

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::{Package, PackageKind};

/// Small text members (manifest, pom.properties) are read up to this size.
const MAX_METADATA_MEMBER_BYTES: u64 = 1024 * 1024;

pub(super) fn is_java_archive_name(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    [
        ".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".nar",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
}

fn maven_package(location: &str, group: &str, artifact: &str, version: &str) -> Package {
    let purl = purl::build("maven", Some(group), artifact, version, &[]);
    let name = if group.is_empty() {
        artifact.to_string()
    } else {
        format!("{group}:{artifact}")
    };
    Package {
        name,
        version: version.to_string(),
        kind: PackageKind::Maven,
        source_name: None,
        source_version: None,
        arch: None,
        purl,
        location: location.to_string(),
        layer: String::new(),
    }
}

/// `key=value` lines of a Java properties file (comments and blank lines skipped).
fn properties(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| line.split_once(['=', ':']))
        .map(|(key, value)| (key.trim(), value.trim()))
        .collect()
}

fn package_from_pom_properties(text: &str, location: &str) -> Option<Package> {
    let pairs = properties(text);
    let get = |wanted: &str| {
        pairs
            .iter()
            .find(|(key, _)| *key == wanted)
            .map(|(_, v)| *v)
    };
    let (group, artifact, version) = (get("groupId")?, get("artifactId")?, get("version")?);
    (!artifact.is_empty() && !version.is_empty())
        .then(|| maven_package(location, group, artifact, version))
}

pub(super) fn catalog_pom_properties(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    match package_from_pom_properties(&String::from_utf8_lossy(content), context.location) {
        Some(package) => catalog.packages.push(package),
        None => catalog.issue(
            context.location,
            None,
            "pom.properties without groupId, artifactId and version",
        ),
    }
    catalog
}

/// The project and its direct dependencies whose versions resolve from the POM's own
/// properties; test-scoped dependencies are not shipped and are left out.
pub(super) fn catalog_pom_xml(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let text = String::from_utf8_lossy(content);
    let document = match roxmltree::Document::parse(&text) {
        Ok(document) => document,
        Err(error) => {
            catalog.issue(
                context.location,
                Some(u64::from(error.pos().row)),
                format!("not XML: {error}"),
            );
            return catalog;
        }
    };
    let project = document.root_element();
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| -> Option<String> {
        node.children()
            .find(|child| child.has_tag_name(name) || child.tag_name().name() == name)
            .and_then(|child| child.text())
            .map(|value| value.trim().to_string())
    };
    let properties: Vec<(String, String)> = project
        .children()
        .find(|child| child.tag_name().name() == "properties")
        .map(|node| {
            node.children()
                .filter(|child| child.is_element())
                .map(|child| {
                    (
                        child.tag_name().name().to_string(),
                        child.text().unwrap_or_default().trim().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let project_version = child_text(project, "version").unwrap_or_default();
    let resolve = |value: &str| -> Option<String> {
        let Some(name) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) else {
            return Some(value.to_string());
        };
        if name == "project.version" {
            return Some(project_version.clone());
        }
        properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.clone())
    };
    let group = child_text(project, "groupId").unwrap_or_default();
    if let Some(artifact) = child_text(project, "artifactId")
        && !project_version.is_empty()
    {
        catalog.packages.push(maven_package(
            context.location,
            &group,
            &artifact,
            &project_version,
        ));
    }
    let dependencies = project
        .children()
        .find(|child| child.tag_name().name() == "dependencies");
    for dependency in dependencies
        .iter()
        .flat_map(|d| d.children())
        .filter(|c| c.tag_name().name() == "dependency")
    {
        if child_text(dependency, "scope").as_deref() == Some("test") {
            continue;
        }
        let (Some(dep_group), Some(artifact), Some(raw_version)) = (
            child_text(dependency, "groupId"),
            child_text(dependency, "artifactId"),
            child_text(dependency, "version"),
        ) else {
            continue; // managed by a parent POM this file does not carry
        };
        match resolve(&raw_version) {
            Some(version) => catalog.packages.push(maven_package(
                context.location,
                &dep_group,
                &artifact,
                &version,
            )),
            None => catalog.issue(
                context.location,
                None,
                format!("{dep_group}:{artifact}: unresolved version {raw_version}"),
            ),
        }
    }
    catalog
}

pub(super) fn catalog_archive(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    let mut budget = context.limits.max_inspected_binary_bytes;
    walk_archive(
        content,
        context.location,
        1,
        context,
        &mut budget,
        &mut catalog,
    );
    catalog
}

fn read_member<R: Read>(member: R, declared: u64, limit: u64) -> Result<Vec<u8>, String> {
    if declared > limit {
        return Err(format!("member of {declared} bytes is larger than {limit}"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    // The declared size can lie: read one byte past it to notice.
    member
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("unreadable member: {error}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("member inflates past {limit} bytes (zip bomb?)"));
    }
    Ok(bytes)
}

fn walk_archive(
    content: &[u8],
    location: &str,
    depth: usize,
    context: &CatalogContext<'_>,
    budget: &mut u64,
    catalog: &mut FileCatalog,
) {
    let limits = context.limits;
    let mut archive = match zip::ZipArchive::new(Cursor::new(content)) {
        Ok(archive) => archive,
        Err(error) => {
            catalog.issue(
                location,
                None,
                format!("not a readable zip archive: {error}"),
            );
            return;
        }
    };
    if archive.len() > limits.max_archive_entries {
        catalog.issue(
            location,
            None,
            format!(
                "{} entries is more than {}",
                archive.len(),
                limits.max_archive_entries
            ),
        );
        return;
    }
    let mut found_pom = false;
    let mut manifest: Option<String> = None;
    let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
    for index in 0..archive.len() {
        let Ok(member) = archive.by_index(index) else {
            catalog.issue(location, None, format!("unreadable entry #{index}"));
            continue;
        };
        let name = member.name().to_string();
        let declared = member.size();
        let is_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let is_manifest = name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let is_nested = is_java_archive_name(&name) && !member.is_dir();
        if !(is_pom || is_manifest || is_nested) {
            continue;
        }
        let limit = if is_nested {
            (*budget).min(limits.max_inspected_binary_bytes)
        } else {
            MAX_METADATA_MEMBER_BYTES
        };
        let bytes = match read_member(member, declared, limit) {
            Ok(bytes) => bytes,
            Err(reason) => {
                catalog.issue(&format!("{location}!{name}"), None, reason);
                continue;
            }
        };
        if is_nested {
            *budget = budget.saturating_sub(bytes.len() as u64);
            nested.push((name, bytes));
        } else if is_pom {
            let text = String::from_utf8_lossy(&bytes);
            if let Some(package) = package_from_pom_properties(&text, location) {
                found_pom = true;
                catalog.packages.push(package);
            }
        } else {
            manifest = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    if !found_pom
        && let Some(package) = package_from_manifest_or_name(manifest.as_deref(), location)
    {
        catalog.packages.push(package);
    }
    for (name, bytes) in nested {
        let nested_location = format!("{location}!{name}");
        if depth >= limits.max_archive_depth {
            catalog.issue(
                &nested_location,
                None,
                format!(
                    "archives nested deeper than {} are not read",
                    limits.max_archive_depth
                ),
            );
            continue;
        }
        walk_archive(
            &bytes,
            &nested_location,
            depth + 1,
            context,
            budget,
            catalog,
        );
    }
}

/// Without pom.properties: the manifest's implementation or bundle fields, else the file name
/// (`commons-lang3-3.12.0.jar`).
fn package_from_manifest_or_name(manifest: Option<&str>, location: &str) -> Option<Package> {
    let attribute = |wanted: &str| -> Option<String> {
        manifest?.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == wanted).then(|| value.trim().to_string())
        })
    };
    let file_name = location.rsplit(['/', '!']).next().unwrap_or(location);
    let stem = file_name
        .rsplit_once('.')
        .map(|(stem, _)| stem)
        .unwrap_or(file_name);
    let (name_from_file, version_from_file) = split_versioned_stem(stem);
    let version = attribute("Implementation-Version")
        .or_else(|| attribute("Bundle-Version"))
        .or(version_from_file)?;
    let group = attribute("Implementation-Vendor-Id").unwrap_or_default();
    let artifact = name_from_file;
    if version.is_empty()
        || artifact.is_empty()
        || file_name.ends_with(".war")
        || file_name.ends_with(".ear")
    {
        return None;
    }
    Some(maven_package(location, &group, &artifact, &version))
}

/// `name-1.2.3` -> (`name`, `1.2.3`): the version starts at the first `-` followed by a digit.
fn split_versioned_stem(stem: &str) -> (String, Option<String>) {
    let bytes = stem.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'-' && bytes.get(index + 1).is_some_and(u8::is_ascii_digit) {
            return (
                stem[..index].to_string(),
                Some(stem[index + 1..].to_string()),
            );
        }
    }
    (stem.to_string(), None)
}
