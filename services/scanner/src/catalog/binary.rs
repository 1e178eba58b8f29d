//! Executables: Go build information and cargo-auditable dependency lists.

use super::{CatalogContext, FileCatalog, golang, purl};
use crate::sbom::PackageKind;

const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
const GO_FLAG_INLINE_STRINGS: u8 = 0x2;
/// The modinfo text is framed by 16-byte sentinels.
const MODINFO_SENTINEL_BYTES: usize = 16;
/// Bound on one decompressed cargo-auditable JSON document.
const AUDITABLE_JSON_LIMIT: usize = 8 * 1024 * 1024;

pub(super) fn is_elf(magic: &[u8]) -> bool {
    magic.starts_with(b"\x7fELF")
}

pub(super) fn catalog(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let mut catalog = FileCatalog::default();
    if !is_elf(content) {
        return catalog;
    }
    match go_build_info(content) {
        Ok(Some((go_version, modinfo))) => catalog.packages.extend(golang::packages_from_modinfo(
            &go_version,
            &modinfo,
            context,
        )),
        Ok(None) => {}
        Err(reason) => catalog.issue(context.location, None, reason),
    }
    match auditable_info::audit_info_from_slice(content, AUDITABLE_JSON_LIMIT) {
        Ok(info) => {
            for dependency in info.packages {
                if !matches!(dependency.source, auditable_serde::Source::CratesIo) {
                    continue;
                }
                let version = dependency.version.to_string();
                let purl = purl::build("cargo", None, &dependency.name, &version, &[]);
                catalog.packages.push(context.package(
                    PackageKind::Cargo,
                    dependency.name,
                    version,
                    purl,
                ));
            }
        }
        Err(auditable_info::Error::NoAuditData) => {}
        Err(error) => catalog.issue(
            context.location,
            None,
            format!("unreadable cargo-auditable data: {error}"),
        ),
    }
    catalog
}

/// Reads the `.go.buildinfo` section (Go >= 1.18 stores both strings inline after its
/// 32-byte header). Looking the section up by name, instead of scanning the whole file for the
/// magic as Go's own reader does, keeps non-Go executables cheap.
fn go_build_info(content: &[u8]) -> Result<Option<(String, String)>, String> {
    use object::{Object, ObjectSection};
    let Ok(file) = object::File::parse(content) else {
        return Ok(None);
    };
    let Some(section) = file.section_by_name(".go.buildinfo") else {
        return Ok(None);
    };
    let data = section
        .data()
        .map_err(|error| format!("unreadable .go.buildinfo section: {error}"))?;
    if !data.starts_with(GO_BUILDINFO_MAGIC) || data.len() < 32 {
        return Err(".go.buildinfo section without the build-info magic".to_string());
    }
    let flags = data[15];
    if flags & GO_FLAG_INLINE_STRINGS == 0 {
        return Err("Go build info from a toolchain older than 1.18 is not read".to_string());
    }
    let mut cursor = 32;
    let version = read_varint_string(data, &mut cursor).ok_or("truncated Go version string")?;
    let raw_modinfo = read_varint_string(data, &mut cursor).ok_or("truncated Go modinfo")?;
    let modinfo = if raw_modinfo.len() > 2 * MODINFO_SENTINEL_BYTES {
        raw_modinfo[MODINFO_SENTINEL_BYTES..raw_modinfo.len() - MODINFO_SENTINEL_BYTES].to_string()
    } else {
        String::new()
    };
    Ok(Some((version, modinfo)))
}

fn read_varint_string(content: &[u8], cursor: &mut usize) -> Option<String> {
    let mut length: u64 = 0;
    let mut shift = 0u32;
    loop {
        let byte = *content.get(*cursor)?;
        *cursor += 1;
        length |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let length = usize::try_from(length).ok()?;
    let bytes = content.get(*cursor..cursor.checked_add(length)?)?;
    *cursor += length;
    Some(String::from_utf8_lossy(bytes).into_owned())
}
