//! rpm's NDB backend (`Packages.db`, SUSE): a slot table of (package index, block offset,
//! block count) followed by blobs, each with its own header.

use super::Blobs;

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const PAGE_BYTES: usize = 4096;
const BLOCK_BYTES: usize = 16;
const FILE_HEADER_BYTES: usize = 32;
const SLOT_BYTES: usize = 16;
const BLOB_HEADER_BYTES: usize = 16;

fn le_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let slice = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

pub(super) fn blobs(content: &[u8]) -> Result<Blobs, String> {
    if le_u32(content, 0) != Some(HEADER_MAGIC) {
        return Err("not an rpm NDB database (bad magic)".to_string());
    }
    if le_u32(content, 4) != Some(0) {
        return Err("unsupported NDB version".to_string());
    }
    let slot_pages = le_u32(content, 12).ok_or("truncated NDB header")? as usize;
    let slot_area_end = slot_pages
        .checked_mul(PAGE_BYTES)
        .filter(|end| *end <= content.len())
        .ok_or_else(|| format!("{slot_pages} slot pages do not fit in the file"))?;
    let mut blobs = Vec::new();
    let mut slot_offset = FILE_HEADER_BYTES;
    while slot_offset + SLOT_BYTES <= slot_area_end {
        let (Some(magic), Some(package_index), Some(block_offset), Some(block_count)) = (
            le_u32(content, slot_offset),
            le_u32(content, slot_offset + 4),
            le_u32(content, slot_offset + 8),
            le_u32(content, slot_offset + 12),
        ) else {
            break;
        };
        slot_offset += SLOT_BYTES;
        if magic != SLOT_MAGIC {
            return Err(format!(
                "bad slot magic at offset {}",
                slot_offset - SLOT_BYTES
            ));
        }
        if package_index == 0 {
            continue;
        }
        let record = u64::from(package_index);
        blobs.push((
            record,
            read_blob(content, package_index, block_offset, block_count),
        ));
    }
    Ok(blobs)
}

fn read_blob(
    content: &[u8],
    package_index: u32,
    block_offset: u32,
    block_count: u32,
) -> Result<Vec<u8>, String> {
    let start = (block_offset as usize)
        .checked_mul(BLOCK_BYTES)
        .ok_or("blob offset overflows")?;
    let span = (block_count as usize)
        .checked_mul(BLOCK_BYTES)
        .ok_or("blob size overflows")?;
    let region = start
        .checked_add(span)
        .and_then(|end| content.get(start..end))
        .ok_or_else(|| format!("blob at block {block_offset} runs past the end of the file"))?;
    if le_u32(region, 0) != Some(BLOB_MAGIC) || le_u32(region, 4) != Some(package_index) {
        return Err(format!(
            "slot for package {package_index} does not point at its blob"
        ));
    }
    let length = le_u32(region, 12).ok_or("truncated blob header")? as usize;
    region
        .get(BLOB_HEADER_BYTES..BLOB_HEADER_BYTES + length)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format!("blob of {length} bytes is longer than its {block_count} blocks"))
}
