//! The search service's answer as the service itself encodes it: each hit carries its alert or
//! finding as the encoded bytes the index stores, so a page of hits is never decoded into
//! messages only to be encoded again for the response.
//!
//! In protobuf's wire format an embedded message and a `bytes` field of the same number are
//! encoded alike (length-delimited), so a [`SearchResponse`] here encodes to exactly the bytes of
//! a `palisade.v1.SearchResponse` whose hits hold the messages those bytes encode, and every
//! client decodes it as that public message. Only the search service uses these types: its
//! server ([`search_service_server`]) answers `Search` with them, and its client
//! ([`search_service_client`]) reads another process's answer into them without decoding the
//! hits. Every other message and method is palisade.v1's own. The messages mirror
//! `proto/palisade/v1/search.proto` by hand; a test checks them against its descriptor.

use prost::Message as _;
use prost::bytes::Bytes;

use crate::v1;

/// `palisade.v1.SearchResponse`, field for field, with hits whose records stay encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResponse {
    /// Number of documents matching the query (all pages).
    #[prost(uint64, tag = "1")]
    pub total: u64,
    #[prost(message, repeated, tag = "2")]
    pub hits: Vec<SearchHit>,
    #[prost(message, repeated, tag = "3")]
    pub facets: Vec<v1::Facet>,
    /// Cursor of the next page; empty on the last page.
    #[prost(string, tag = "4")]
    pub next_cursor: String,
    /// Time the query took inside the server.
    #[prost(uint64, tag = "5")]
    pub took_micros: u64,
}

/// `palisade.v1.SearchHit` with its alert or finding as encoded bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchHit {
    #[prost(oneof = "search_hit::Document", tags = "1, 2")]
    pub document: Option<search_hit::Document>,
    #[prost(float, tag = "3")]
    pub score: f32,
    /// Output text with matched terms wrapped in <b></b>, when highlighting was asked for.
    #[prost(string, tag = "4")]
    pub snippet: String,
}

/// The document of a [`SearchHit`].
pub mod search_hit {
    use prost::bytes::Bytes;

    /// An encoded record. The bytes MUST be one whole message of the type the variant names:
    /// clients decode them as that message.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Document {
        /// An encoded `palisade.v1.Alert`.
        #[prost(bytes = "bytes", tag = "1")]
        Alert(Bytes),
        /// An encoded `palisade.v1.Finding`.
        #[prost(bytes = "bytes", tag = "2")]
        Finding(Bytes),
    }
}

impl search_hit::Document {
    /// The record decoded, as a client sees it.
    pub fn decode_record(&self) -> Result<v1::search_hit::Document, prost::DecodeError> {
        Ok(match self {
            search_hit::Document::Alert(bytes) => {
                v1::search_hit::Document::Alert(v1::Alert::decode(bytes.as_ref())?)
            }
            search_hit::Document::Finding(bytes) => {
                v1::search_hit::Document::Finding(v1::Finding::decode(bytes.as_ref())?)
            }
        })
    }

    /// The encoded record of a decoded one.
    pub fn encode_record(document: &v1::search_hit::Document) -> search_hit::Document {
        match document {
            v1::search_hit::Document::Alert(alert) => {
                search_hit::Document::Alert(Bytes::from(alert.encode_to_vec()))
            }
            v1::search_hit::Document::Finding(finding) => {
                search_hit::Document::Finding(Bytes::from(finding.encode_to_vec()))
            }
        }
    }
}

impl SearchResponse {
    /// The public message, every hit's record decoded: what a client of the service receives.
    pub fn decode_hits(self) -> Result<v1::SearchResponse, prost::DecodeError> {
        let hits = self
            .hits
            .into_iter()
            .map(|hit| {
                Ok(v1::SearchHit {
                    document: hit
                        .document
                        .as_ref()
                        .map(search_hit::Document::decode_record)
                        .transpose()?,
                    score: hit.score,
                    snippet: hit.snippet,
                })
            })
            .collect::<Result<_, prost::DecodeError>>()?;
        Ok(v1::SearchResponse {
            total: self.total,
            hits,
            facets: self.facets,
            next_cursor: self.next_cursor,
            took_micros: self.took_micros,
        })
    }
}

impl From<v1::SearchResponse> for SearchResponse {
    fn from(response: v1::SearchResponse) -> SearchResponse {
        SearchResponse {
            total: response.total,
            hits: response
                .hits
                .into_iter()
                .map(|hit| SearchHit {
                    document: hit
                        .document
                        .as_ref()
                        .map(search_hit::Document::encode_record),
                    score: hit.score,
                    snippet: hit.snippet,
                })
                .collect(),
            facets: response.facets,
            next_cursor: response.next_cursor,
            took_micros: response.took_micros,
        }
    }
}

// The generated `search_service_server` and `search_service_client` (see build.rs).
include!(concat!(env!("OUT_DIR"), "/wire/palisade.v1.rs"));

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message as _;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, FileDescriptorSet};

    use super::*;

    fn public_message(name: &str) -> DescriptorProto {
        let set = FileDescriptorSet::decode(v1::FILE_DESCRIPTOR_SET).expect("descriptor set");
        set.file
            .into_iter()
            .filter(|file| file.package() == "palisade.v1")
            .flat_map(|file| file.message_type)
            .find(|message| message.name() == name)
            .unwrap_or_else(|| panic!("palisade.v1.{name} in the descriptor set"))
    }

    /// (number, name, type, type name, label, in a oneof) of every field of a message.
    fn fields(message: &DescriptorProto) -> Vec<(i32, String, Type, String, Label, bool)> {
        message
            .field
            .iter()
            .map(|field| {
                (
                    field.number(),
                    field.name().to_string(),
                    field.r#type(),
                    field.type_name().to_string(),
                    field.label(),
                    field.oneof_index.is_some(),
                )
            })
            .collect()
    }

    #[test]
    fn the_wire_messages_mirror_every_field_of_the_public_ones() {
        let field = |number: i32, name: &str, kind: Type, type_name: &str, label: Label| {
            (
                number,
                name.to_string(),
                kind,
                type_name.to_string(),
                label,
                false,
            )
        };
        // Each field as the wire types above encode it; a field added to the public messages
        // must be added there too (and here).
        assert_eq!(
            fields(&public_message("SearchResponse")),
            [
                field(1, "total", Type::Uint64, "", Label::Optional),
                field(
                    2,
                    "hits",
                    Type::Message,
                    ".palisade.v1.SearchHit",
                    Label::Repeated
                ),
                field(
                    3,
                    "facets",
                    Type::Message,
                    ".palisade.v1.Facet",
                    Label::Repeated
                ),
                field(4, "next_cursor", Type::String, "", Label::Optional),
                field(5, "took_micros", Type::Uint64, "", Label::Optional),
            ]
        );
        let in_oneof = |number: i32, name: &str, type_name: &str| {
            (
                number,
                name.to_string(),
                Type::Message,
                type_name.to_string(),
                Label::Optional,
                true,
            )
        };
        assert_eq!(
            fields(&public_message("SearchHit")),
            [
                in_oneof(1, "alert", ".palisade.v1.Alert"),
                in_oneof(2, "finding", ".palisade.v1.Finding"),
                field(3, "score", Type::Float, "", Label::Optional),
                field(4, "snippet", Type::String, "", Label::Optional),
            ]
        );
    }

    fn public_response() -> v1::SearchResponse {
        let alert = v1::Alert {
            id: "a1".into(),
            tenant_id: "acme".into(),
            rule: "Terminal shell in container".into(),
            output: "A shell was spawned".into(),
            output_fields: BTreeMap::from([
                ("proc.name".to_string(), "bash".to_string()),
                ("k8s.ns.name".to_string(), "prod".to_string()),
            ]),
            tags: vec!["shell".into()],
            ..Default::default()
        };
        let finding = v1::Finding {
            id: "f1".into(),
            tenant_id: "acme".into(),
            title: "CVE-2024-3094 in xz-utils".into(),
            ..Default::default()
        };
        v1::SearchResponse {
            total: 1_234,
            hits: vec![
                v1::SearchHit {
                    document: Some(v1::search_hit::Document::Alert(alert)),
                    score: 2.5,
                    snippet: "A <b>shell</b> was spawned".into(),
                },
                v1::SearchHit {
                    document: Some(v1::search_hit::Document::Finding(finding)),
                    score: 0.0,
                    snippet: String::new(),
                },
                // An empty alert encodes to no bytes; it is still a hit with an alert.
                v1::SearchHit {
                    document: Some(v1::search_hit::Document::Alert(v1::Alert::default())),
                    score: 1.0,
                    snippet: String::new(),
                },
                v1::SearchHit::default(),
            ],
            facets: vec![v1::Facet {
                field: "rule".into(),
                buckets: vec![v1::FacetBucket {
                    value: "Terminal shell in container".into(),
                    count: 7,
                }],
                other_count: 3,
            }],
            next_cursor: "t:1:2:acme/a1".into(),
            took_micros: 321,
        }
    }

    #[test]
    fn a_wire_response_encodes_to_the_bytes_of_the_public_one() {
        let public = public_response();
        let wire = SearchResponse::from(public.clone());
        let encoded = wire.encode_to_vec();
        assert_eq!(encoded, public.encode_to_vec());
        assert_eq!(
            v1::SearchResponse::decode(encoded.as_slice()).expect("decode"),
            public
        );
        let read_back = SearchResponse::decode(encoded.as_slice()).expect("decode");
        assert_eq!(read_back, wire);
        assert_eq!(read_back.decode_hits().expect("records"), public);
    }

    #[test]
    fn a_record_that_is_not_its_message_fails_to_decode() {
        let truncated = search_hit::Document::Alert(Bytes::from_static(&[0x0a, 0x05, b'a']));
        assert!(truncated.decode_record().is_err());
    }
}
