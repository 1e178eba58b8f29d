//! Alpine's installed database (`lib/apk/db/installed`).

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::PackageKind;

#[derive(Default)]
struct Record {
    first_line: u64,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
}

pub(super) fn catalog(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut records = Vec::new();
    let mut current: Option<Record> = None;
    for (index, line) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        if line.trim().is_empty() {
            records.extend(current.take());
            continue;
        }
        let record = current.get_or_insert_with(|| Record {
            first_line: line_number,
            ..Record::default()
        });
        let Some((key, value)) = line.split_once(':') else {
            catalog.issue(
                context.location,
                Some(line_number),
                "line without a KEY: prefix",
            );
            continue;
        };
        let value = Some(value.to_string());
        match key {
            "P" => record.name = value,
            "V" => record.version = value,
            "A" => record.arch = value,
            "o" => record.origin = value,
            _ => {}
        }
    }
    records.extend(current);
    for record in records {
        let line = Some(record.first_line);
        let Some(name) = record.name.filter(|n| !n.is_empty()) else {
            catalog.issue(context.location, line, "record without a package name (P:)");
            continue;
        };
        let Some(version) = record.version.filter(|v| !v.is_empty()) else {
            catalog.issue(
                context.location,
                line,
                format!("package {name} has no version (V:)"),
            );
            continue;
        };
        let origin = record.origin.unwrap_or_else(|| name.clone());
        let arch = record.arch.unwrap_or_default();
        let purl = purl::build(
            "apk",
            Some("alpine"),
            &name,
            &version,
            &[
                ("arch", &arch),
                ("upstream", if origin == name { "" } else { &origin }),
            ],
        );
        let mut package = context.package(PackageKind::Apk, name, version, purl);
        package.source_name = Some(origin);
        package.arch = (!arch.is_empty()).then_some(arch);
        catalog.packages.push(package);
    }
    catalog
}
