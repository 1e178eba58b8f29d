//! Reading hits' stored records (the encoded alert or finding of each document).
//!
//! A document stores exactly one field: the record's protobuf bytes. tantivy's document
//! deserializer copies a bytes value one byte at a time into a document it builds first, which
//! made reading a page's fifty records a large part of a filtered query. Here the stored
//! document's bytes are read from the segment's doc store and the record is sliced out of them
//! where the layout is the expected single bytes field; anything else is read through tantivy's
//! deserializer. A test checks both readings agree on documents tantivy wrote.
//!
//! A page's records go into the response as those bytes, undecoded (see
//! `palisade_proto::wire`): decoding fifty alerts into messages only for the response to encode
//! them again was most of a filtered query's time. Each record's framing is checked on the
//! way (every field's tag, length and varint well formed, nothing past the end), so a record
//! garbled on disk fails the query here with its address instead of sending bytes no client can
//! read; what framing cannot show (a string that is not UTF-8, a field of the wrong wire type)
//! surfaces as the client's decode error. Only what a page needs besides the bytes is decoded:
//! the last record's id and tenant for the cursor, and the text of highlighted hits.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use palisade_proto::v1;
use palisade_proto::wire::search_hit::Document;
use prost::Message as _;
use tantivy::directory::OwnedBytes;
use tantivy::index::SegmentId;
use tantivy::schema::{Field, Value as _};
use tantivy::store::StoreReader;
use tantivy::{DocAddress, Searcher, TantivyDocument};

use crate::error::SearchError;
use crate::schema::{IndexSchema, alert_uid, finding_uid};

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

// Lets a record's bytes become a `Bytes` without a copy (`Bytes::from_owner`); the doc store
// block they point into stays alive until the response holding them is sent.
impl AsRef<[u8]> for StoredRecord {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// Doc store readers of the searcher's segments, kept across queries (each keeps its recently
/// decompressed blocks); readers of segments gone from the index are dropped.
#[derive(Default)]
pub struct RecordReaders {
    readers: Mutex<HashMap<SegmentId, Arc<StoreReader>>>,
}

impl RecordReaders {
    /// The stored record of the document at `address`, encoded, its framing checked.
    pub fn document(
        &self,
        schema: &IndexSchema,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Document, SearchError> {
        let document = self.read_document(schema, searcher, address)?;
        let (Document::Alert(bytes) | Document::Finding(bytes)) = &document;
        check_framing(bytes).map_err(|error| corrupt(address, &error))?;
        Ok(document)
    }

    fn read_document(
        &self,
        schema: &IndexSchema,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Document, SearchError> {
        if let Some(record) = self.read(searcher, address)? {
            if record.field == schema.alert {
                return Ok(Document::Alert(Bytes::from_owner(record)));
            }
            if record.field == schema.finding {
                return Ok(Document::Finding(Bytes::from_owner(record)));
            }
        }
        let document: TantivyDocument = searcher.doc(address)?;
        let bytes_of = |field: Field| {
            document
                .get_first(field)
                .and_then(|value| value.as_bytes())
                .map(Bytes::copy_from_slice)
        };
        if let Some(bytes) = bytes_of(schema.alert) {
            return Ok(Document::Alert(bytes));
        }
        if let Some(bytes) = bytes_of(schema.finding) {
            return Ok(Document::Finding(bytes));
        }
        Err(SearchError::CorruptDocument {
            address: format!("{address:?}"),
            message: "no stored record".into(),
        })
    }

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

fn corrupt(address: DocAddress, error: &prost::DecodeError) -> SearchError {
    SearchError::CorruptDocument {
        address: format!("{address:?}"),
        message: error.to_string(),
    }
}

/// Checks that `bytes` are a sequence of well-formed protobuf fields: decoding them as the
/// empty message walks every field and keeps none.
fn check_framing(bytes: &[u8]) -> Result<(), prost::DecodeError> {
    <() as prost::Message>::decode(bytes)
}

/// The record decoded, for callers that need its fields (the live tail).
pub fn decode_document(
    document: &Document,
    address: DocAddress,
) -> Result<v1::search_hit::Document, SearchError> {
    document
        .decode_record()
        .map_err(|error| corrupt(address, &error))
}

/// The fields of an alert or a finding that name it: `palisade.v1.Alert` and
/// `palisade.v1.Finding` both number them 1 and 2. Decoding only these skips the others.
#[derive(Clone, PartialEq, prost::Message)]
struct RecordKey {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    tenant_id: String,
}

/// The record's uid, from its id and tenant alone.
pub fn document_uid(document: &Document, address: DocAddress) -> Result<String, SearchError> {
    let (Document::Alert(bytes) | Document::Finding(bytes)) = document;
    let key = RecordKey::decode(bytes.as_ref()).map_err(|error| corrupt(address, &error))?;
    Ok(match document {
        Document::Alert(_) => alert_uid(&key.tenant_id, &key.id),
        Document::Finding(_) => finding_uid(&key.tenant_id, &key.id),
    })
}

/// The text a hit's snippet highlights: an alert's output, a finding's title.
pub fn snippet_text(document: &Document, address: DocAddress) -> Result<String, SearchError> {
    Ok(match decode_document(document, address)? {
        v1::search_hit::Document::Alert(alert) => alert.output,
        v1::search_hit::Document::Finding(finding) => finding.title,
    })
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

    /// A searcher over `documents`, written in one segment in order.
    fn searcher_of(schema: &IndexSchema, documents: Vec<TantivyDocument>) -> Searcher {
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        for document in documents {
            writer.add_document(document).expect("add");
        }
        writer.commit().expect("commit");
        index.reader().expect("reader").searcher()
    }

    fn alert_with_fields() -> Alert {
        Alert {
            id: "a1".into(),
            tenant_id: "acme".into(),
            rule: "Terminal shell in container".into(),
            output: "A shell was spawned in a container".into(),
            output_fields: [("proc.name", "bash"), ("k8s.ns.name", "prod")]
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            time: Some(palisade_proto::prost_types::Timestamp {
                seconds: 1_793_491_200,
                nanos: 5,
            }),
            ..Default::default()
        }
    }

    fn finding() -> Finding {
        Finding {
            id: "f1".into(),
            tenant_id: "acme".into(),
            title: "CVE-2024-3094 in xz-utils".into(),
            ..Default::default()
        }
    }

    #[test]
    fn records_are_returned_encoded_as_stored_and_what_a_page_needs_decodes_from_them() {
        let schema = IndexSchema::new();
        let alert = alert_with_fields();
        let finding = finding();
        let searcher = searcher_of(
            &schema,
            vec![
                schema.alert_document(&alert, 0),
                schema.finding_document(&finding, 0),
            ],
        );
        let readers = RecordReaders::default();
        let first = DocAddress::new(0, 0);
        let second = DocAddress::new(0, 1);
        let alert_record = readers.document(&schema, &searcher, first).expect("alert");
        assert_eq!(
            alert_record,
            Document::Alert(Bytes::from(alert.encode_to_vec()))
        );
        let finding_record = readers
            .document(&schema, &searcher, second)
            .expect("finding");
        assert_eq!(
            finding_record,
            Document::Finding(Bytes::from(finding.encode_to_vec()))
        );
        assert_eq!(
            decode_document(&alert_record, first).expect("decode"),
            v1::search_hit::Document::Alert(alert.clone())
        );
        assert_eq!(
            document_uid(&alert_record, first).expect("uid"),
            alert_uid("acme", "a1")
        );
        assert_eq!(
            document_uid(&finding_record, second).expect("uid"),
            finding_uid("acme", "f1")
        );
        assert_eq!(
            snippet_text(&alert_record, first).expect("text"),
            alert.output
        );
        assert_eq!(
            snippet_text(&finding_record, second).expect("text"),
            finding.title
        );
    }

    #[test]
    fn a_record_in_another_layout_is_read_through_tantivy_and_stays_encoded() {
        let schema = IndexSchema::new();
        let alert = alert_with_fields();
        // Two stored values: not the single bytes field the raw reading slices.
        let mut document = schema.alert_document(&alert, 0);
        document.add_bytes(schema.alert, b"second value".as_slice());
        let searcher = searcher_of(&schema, vec![document]);
        let readers = RecordReaders::default();
        let address = DocAddress::new(0, 0);
        assert!(readers.read(&searcher, address).expect("read").is_none());
        assert_eq!(
            readers.document(&schema, &searcher, address).expect("read"),
            Document::Alert(Bytes::from(alert.encode_to_vec()))
        );
    }

    #[test]
    fn a_record_whose_framing_is_broken_fails_with_its_address() {
        let schema = IndexSchema::new();
        let broken: [&[u8]; 5] = [
            // A string field whose length runs past the end.
            &[0x0a, 0x05, b'a'],
            // A varint longer than ten bytes.
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            // Field number 0.
            &[0x00, 0x01],
            // Wire type 7, which does not exist.
            &[0x0f],
            // A group opened and never closed.
            &[0x0b],
        ];
        let documents = broken
            .iter()
            .map(|bytes| {
                let mut document = TantivyDocument::default();
                document.add_bytes(schema.alert, bytes);
                document
            })
            .collect();
        let searcher = searcher_of(&schema, documents);
        let readers = RecordReaders::default();
        for (doc_id, bytes) in broken.iter().enumerate() {
            let address = DocAddress::new(0, doc_id as u32);
            match readers.document(&schema, &searcher, address) {
                Err(SearchError::CorruptDocument { address: named, .. }) => {
                    assert_eq!(named, format!("{address:?}"), "{bytes:?}");
                }
                other => panic!("{bytes:?}: expected a corrupt document, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_well_framed_record_that_is_no_alert_fails_where_it_is_decoded() {
        // Field 1 (the id) holding bytes that are not UTF-8: framing cannot tell, decoding can.
        let record = Document::Alert(Bytes::from_static(&[0x0a, 0x01, 0xff]));
        let address = DocAddress::new(0, 0);
        assert!(check_framing(&[0x0a, 0x01, 0xff]).is_ok());
        for result in [
            decode_document(&record, address).map(|_| ()),
            document_uid(&record, address).map(|_| ()),
            snippet_text(&record, address).map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(SearchError::CorruptDocument { .. })),
                "{result:?}"
            );
        }
    }

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
