//! rpm's header blob: the same bytes in every rpmdb backend.

/// Tags the SBOM needs.
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own bounds (lib/header.c `hdrchkTags`, `hdrchkData`).
const MAX_INDEX_ENTRIES: u32 = 0x0000_ffff;
const MAX_DATA_BYTES: u32 = 0x0fff_ffff;

/// The fields of one installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RpmHeader {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    pub source_rpm: Option<String>,
}

fn be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let slice = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// Parses a header blob (index count, data length, index entries, data store).
pub(crate) fn parse_header_blob(blob: &[u8]) -> Result<RpmHeader, String> {
    let index_count = be_u32(blob, 0).ok_or("header blob shorter than 8 bytes")?;
    let data_length = be_u32(blob, 4).ok_or("header blob shorter than 8 bytes")?;
    if index_count > MAX_INDEX_ENTRIES || data_length > MAX_DATA_BYTES {
        return Err(format!(
            "header claims {index_count} tags and {data_length} data bytes, beyond rpm's bounds"
        ));
    }
    let index_start = 8usize;
    let data_start = index_start + index_count as usize * 16;
    let data_end = data_start + data_length as usize;
    let data = blob.get(data_start..data_end).ok_or_else(|| {
        format!(
            "header blob of {} bytes is shorter than it claims",
            blob.len()
        )
    })?;
    let mut header = RpmHeader::default();
    for entry_index in 0..index_count as usize {
        let entry_offset = index_start + entry_index * 16;
        let (Some(tag), Some(kind), Some(offset), Some(count)) = (
            be_u32(blob, entry_offset),
            be_u32(blob, entry_offset + 4),
            be_u32(blob, entry_offset + 8),
            be_u32(blob, entry_offset + 12),
        ) else {
            return Err("truncated header index".to_string());
        };
        let offset = offset as usize;
        match (tag, kind) {
            (
                TAG_NAME | TAG_VERSION | TAG_RELEASE | TAG_ARCH | TAG_SOURCERPM,
                TYPE_STRING | TYPE_I18NSTRING,
            ) => {
                let value = read_string(data, offset)
                    .ok_or_else(|| format!("tag {tag} points outside the header data"))?;
                match tag {
                    TAG_NAME => header.name = value,
                    TAG_VERSION => header.version = value,
                    TAG_RELEASE => header.release = value,
                    TAG_ARCH => header.arch = Some(value),
                    _ => header.source_rpm = Some(value),
                }
            }
            (TAG_EPOCH, TYPE_INT32) if count >= 1 => {
                header.epoch =
                    Some(be_u32(data, offset).ok_or("epoch tag points outside the header data")?);
            }
            _ => {}
        }
    }
    if header.name.is_empty() {
        return Err("header has no name tag".to_string());
    }
    Ok(header)
}

fn read_string(data: &[u8], offset: usize) -> Option<String> {
    let rest = data.get(offset..)?;
    let end = rest.iter().position(|byte| *byte == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

impl RpmHeader {
    /// `[epoch:]version-release`, as rpm -q prints it with `%{EVR}`.
    pub(crate) fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch > 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package name from `name-version-release.src.rpm`.
    pub(crate) fn source_name(&self) -> Option<String> {
        let stem = self
            .source_rpm
            .as_deref()?
            .strip_suffix(".src.rpm")
            .or_else(|| self.source_rpm.as_deref()?.strip_suffix(".nosrc.rpm"))?;
        let (without_release, _) = stem.rsplit_once('-')?;
        let (name, _) = without_release.rsplit_once('-')?;
        Some(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lying_lengths_are_refused_not_followed() {
        assert!(parse_header_blob(&[0, 0, 0, 1]).is_err());
        let mut blob = vec![0, 0, 0, 1, 0, 0, 0, 200];
        blob.extend_from_slice(&[0; 16]);
        assert!(parse_header_blob(&blob).is_err());
        assert!(parse_header_blob(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn source_name_strips_version_and_release() {
        let header = RpmHeader {
            source_rpm: Some("util-linux-2.32.1-42.el8_8.src.rpm".into()),
            ..RpmHeader::default()
        };
        assert_eq!(header.source_name().as_deref(), Some("util-linux"));
    }
}
