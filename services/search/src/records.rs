//! Reading hits' stored records (the encoded alert or finding of each document).
//!
//! A document stores exactly one field: the record's protobuf bytes. tantivy's document
//! deserializer copies a bytes value one byte at a time into a document it builds first, which
//! made reading a page's fifty records a large part of a filtered query. Here the stored
//! document's bytes are read from the segment's doc store and the record is sliced out of them
//! where the layout is the expected single bytes field; the caller reads anything else through
//! tantivy's deserializer. A test checks both readings agree on documents tantivy wrote.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::directory::OwnedBytes;
use tantivy::index::SegmentId;
use tantivy::schema::Field;
use tantivy::store::StoreReader;
use tantivy::{DocAddress, Searcher};

/// Blocks of decompressed documents each segment's reader keeps (tantivy's default).
const CACHED_BLOCKS_PER_SEGMENT: usize = 100;

/// tantivy's type code of a bytes value in a stored document.
const BYTES_TYPE_CODE: u8 = 4;

/// One stored field's bytes, within the stored document they were read from.
pub struct StoredRecord {
    pub field: Field,
    document: OwnedBytes,
    range: Range<usize>,
}

impl StoredRecord {
    pub fn bytes(&self) -> &[u8] {
        &self.document.as_slice()[self.range.clone()]
    }
}

/// Doc store readers of the searcher's segments, kept across queries (each keeps its recently
/// decompressed blocks); readers of segments gone from the index are dropped.
#[derive(Default)]
pub struct RecordReaders {
    readers: Mutex<HashMap<SegmentId, Arc<StoreReader>>>,
}

impl RecordReaders {
    /// The document's stored field when it is a single bytes value, None for any other layout.
    pub fn read(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> tantivy::Result<Option<StoredRecord>> {
        let reader = self.reader(searcher, address.segment_ord)?;
        let document = reader.get_document_bytes(address.doc_id)?;
        Ok(
            single_bytes_field(document.as_slice()).map(|(field, range)| StoredRecord {
                field: Field::from_field_id(field),
                document,
                range,
            }),
        )
    }

    fn reader(&self, searcher: &Searcher, segment_ord: u32) -> tantivy::Result<Arc<StoreReader>> {
        let segment = searcher.segment_reader(segment_ord);
        let id = segment.segment_id();
        // The lock stays consistent at every step, so a panic elsewhere leaves it usable.
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reader) = readers.get(&id) {
            return Ok(reader.clone());
        }
        let reader = Arc::new(segment.get_store_reader(CACHED_BLOCKS_PER_SEGMENT)?);
        readers.retain(|kept, _| {
            searcher
                .segment_readers()
                .iter()
                .any(|segment| segment.segment_id() == *kept)
        });
        readers.insert(id, reader.clone());
        Ok(reader)
    }
}

/// tantivy's variable-length integer: 7 bits per byte, least significant first, the last
/// byte marked by its high bit. Returns the value and the position after it.
fn read_vint(bytes: &[u8], mut position: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(position)?;
        position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 != 0 {
            return Some((value, position));
        }
    }
    None
}

/// The field id and value range of a stored document made of exactly one bytes value:
/// `vint(1) field:u32le BYTES_TYPE_CODE vint(len) bytes`.
fn single_bytes_field(document: &[u8]) -> Option<(u32, Range<usize>)> {
    let (values, position) = read_vint(document, 0)?;
    if values != 1 {
        return None;
    }
    let field_bytes: [u8; 4] = document.get(position..position + 4)?.try_into().ok()?;
    let position = position + 4;
    if *document.get(position)? != BYTES_TYPE_CODE {
        return None;
    }
    let (length, start) = read_vint(document, position + 1)?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    if end != document.len() {
        return None;
    }
    Some((u32::from_le_bytes(field_bytes), start..end))
}

#[cfg(test)]
mod tests {
    use palisade_proto::v1::{Alert, Finding};
    use prost::Message as _;
    use tantivy::schema::Value as _;
    use tantivy::{Index, IndexWriter, TantivyDocument};

    use super::*;
    use crate::schema::IndexSchema;

    #[test]
    fn records_read_raw_equal_tantivys_documents() {
        let schema = IndexSchema::new();
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        let mut expected = Vec::new();
        for id in 0..300u64 {
            // Records from empty to several kilobytes, so lengths take one to three vint bytes.
            let alert = Alert {
                id: format!("{id:04}"),
                tenant_id: "acme".into(),
                output: "x".repeat((id as usize * 37) % 5_000),
                ..Default::default()
            };
            writer
                .add_document(schema.alert_document(&alert, id))
                .expect("add");
            expected.push(alert.encode_to_vec());
        }
        let finding = Finding {
            id: "f1".into(),
            tenant_id: "acme".into(),
            title: "CVE-2024-3094 in xz-utils".into(),
            ..Default::default()
        };
        writer
            .add_document(schema.finding_document(&finding, 0))
            .expect("add");
        writer.commit().expect("commit");
        let searcher = index.reader().expect("reader").searcher();
        let readers = RecordReaders::default();
        let mut read = 0;
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            for doc_id in 0..segment.max_doc() {
                let address = DocAddress::new(segment_ord as u32, doc_id);
                let document: TantivyDocument = searcher.doc(address).expect("doc");
                let record = readers
                    .read(&searcher, address)
                    .expect("read")
                    .expect("a single bytes field");
                let by_tantivy = document
                    .get_first(record.field)
                    .and_then(|value| value.as_bytes())
                    .expect("the same field, as bytes");
                assert_eq!(record.bytes(), by_tantivy);
                assert!(record.field == schema.alert || record.field == schema.finding);
                read += 1;
            }
        }
        assert_eq!(read, 301);
    }

    #[test]
    fn other_layouts_are_left_to_tantivy() {
        // Two values; a text value; a length past the end; trailing bytes; an empty document.
        let two_values = [0x82, 0, 0, 0, 0, BYTES_TYPE_CODE, 0x80];
        let text = [0x81, 0, 0, 0, 0, 0, 0x80];
        let too_long = [0x81, 0, 0, 0, 0, BYTES_TYPE_CODE, 0x85, 1, 2];
        let trailing = [0x81, 0, 0, 0, 0, BYTES_TYPE_CODE, 0x81, 1, 2];
        for document in [&two_values[..], &text, &too_long, &trailing, &[]] {
            assert_eq!(single_bytes_field(document), None, "{document:?}");
        }
        let valid = [0x81, 7, 0, 0, 0, BYTES_TYPE_CODE, 0x82, 1, 2];
        assert_eq!(single_bytes_field(&valid), Some((7, 7..9)));
    }
}
