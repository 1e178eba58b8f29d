//! The BerkeleyDB hash file rpm used until 4.16 (`/var/lib/rpm/Packages`). Only what rpm
//! stores is read: hash pages whose values are header blobs on overflow-page chains.

use super::Blobs;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER_BYTES: usize = 26;
const PAGE_TYPE_HASH_UNSORTED: u8 = 2;
const PAGE_TYPE_OVERFLOW: u8 = 7;
const PAGE_TYPE_HASH: u8 = 13;
const ITEM_KEYDATA: u8 = 1;
const ITEM_OFFPAGE: u8 = 3;

#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    little_endian: bool,
}

impl<'a> Reader<'a> {
    fn u16_at(self, offset: usize) -> Option<u16> {
        let slice = self.bytes.get(offset..offset.checked_add(2)?)?;
        let pair = [slice[0], slice[1]];
        Some(if self.little_endian {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        })
    }

    fn u32_at(self, offset: usize) -> Option<u32> {
        let slice = self.bytes.get(offset..offset.checked_add(4)?)?;
        let quad = [slice[0], slice[1], slice[2], slice[3]];
        Some(if self.little_endian {
            u32::from_le_bytes(quad)
        } else {
            u32::from_be_bytes(quad)
        })
    }
}

/// Every value stored off-page in the hash database, keyed by record number.
pub(super) fn hash_values(content: &[u8]) -> Result<Blobs, String> {
    let little = Reader {
        bytes: content,
        little_endian: true,
    };
    let reader = match little.u32_at(12) {
        Some(HASH_MAGIC) => little,
        Some(magic) if magic.swap_bytes() == HASH_MAGIC => Reader {
            bytes: content,
            little_endian: false,
        },
        _ => return Err("not a BerkeleyDB hash database (bad magic)".to_string()),
    };
    let page_size = reader.u32_at(20).ok_or("truncated metadata page")? as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("implausible page size {page_size}"));
    }
    let page_count = content.len() / page_size;
    let mut blobs = Vec::new();
    for page_number in 0..page_count {
        let page_start = page_number * page_size;
        let page = &content[page_start..page_start + page_size];
        let page_reader = Reader {
            bytes: page,
            little_endian: reader.little_endian,
        };
        let page_type = page[25];
        if page_type != PAGE_TYPE_HASH && page_type != PAGE_TYPE_HASH_UNSORTED {
            continue;
        }
        let entries = page_reader.u16_at(20).unwrap_or(0) as usize;
        let index_end = PAGE_HEADER_BYTES + entries * 2;
        if index_end > page_size {
            blobs.push((
                page_number as u64,
                Err(format!("page {page_number}: {entries} entries do not fit")),
            ));
            continue;
        }
        for pair in 0..entries / 2 {
            let key_offset = page_reader
                .u16_at(PAGE_HEADER_BYTES + pair * 4)
                .unwrap_or(0) as usize;
            let value_offset = page_reader
                .u16_at(PAGE_HEADER_BYTES + pair * 4 + 2)
                .unwrap_or(0) as usize;
            let record = record_number(page_reader, key_offset)
                .unwrap_or((page_number * 1000 + pair) as u64);
            if page.get(value_offset) != Some(&ITEM_OFFPAGE) {
                continue;
            }
            let (Some(first_page), Some(total_length)) = (
                page_reader.u32_at(value_offset + 4),
                page_reader.u32_at(value_offset + 8),
            ) else {
                blobs.push((record, Err("truncated off-page item".to_string())));
                continue;
            };
            blobs.push((
                record,
                read_overflow_chain(reader, page_size, first_page, total_length as usize),
            ));
        }
    }
    Ok(blobs)
}

fn record_number(page: Reader<'_>, key_offset: usize) -> Option<u64> {
    if page.bytes.get(key_offset) != Some(&ITEM_KEYDATA) {
        return None;
    }
    page.u32_at(key_offset + 1).map(u64::from)
}

/// Follows an overflow chain; the chain can visit each page once at most and must stay inside
/// the file and within the announced length.
fn read_overflow_chain(
    reader: Reader<'_>,
    page_size: usize,
    first_page: u32,
    total_length: usize,
) -> Result<Vec<u8>, String> {
    let page_count = reader.bytes.len() / page_size;
    if total_length > reader.bytes.len() {
        return Err(format!(
            "value of {total_length} bytes is larger than the file"
        ));
    }
    let mut value = Vec::with_capacity(total_length);
    let mut page_number = first_page as usize;
    let mut visited = 0usize;
    while page_number != 0 {
        visited += 1;
        if page_number >= page_count || visited > page_count {
            return Err(format!(
                "overflow chain leaves the file or loops at page {page_number}"
            ));
        }
        let page_start = page_number * page_size;
        let page = Reader {
            bytes: &reader.bytes[page_start..page_start + page_size],
            little_endian: reader.little_endian,
        };
        if page.bytes[25] != PAGE_TYPE_OVERFLOW {
            return Err(format!(
                "page {page_number} in an overflow chain is not an overflow page"
            ));
        }
        let used = page.u16_at(22).unwrap_or(0) as usize;
        let data = page
            .bytes
            .get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + used)
            .ok_or_else(|| format!("overflow page {page_number} claims {used} bytes"))?;
        if value.len() + data.len() > total_length {
            return Err("overflow chain is longer than its value".to_string());
        }
        value.extend_from_slice(data);
        page_number = page.u32_at(16).unwrap_or(0) as usize;
    }
    if value.len() != total_length {
        return Err(format!(
            "overflow chain holds {} of {total_length} bytes",
            value.len()
        ));
    }
    Ok(value)
}
