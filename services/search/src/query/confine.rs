//! `tenant AND query`, evaluated per segment.
//!
//! The tenant clause is what confines every query, and it must stay in the query whatever the
//! user wrote. Its cost, though, is intersecting the query with the postings of every document
//! of the tenant: in a segment holding only that tenant's documents (the common case of a
//! large tenant, whose alerts fill whole segments) that intersection removes nothing and
//! costs a seek per candidate. So the tenant clause is dropped for exactly those segments: a
//! segment where the tenant term's document frequency equals the segment's document count
//! holds no other tenant's document, deleted or not.
//!
//! The tenant clause never contributes to scores (a constant 0), so a hit scores the same
//! whether its segment kept the clause or not.

use std::fmt;

use tantivy::query::{
    BooleanQuery, ConstScoreQuery, EnableScoring, Explanation, Occur, Query, Scorer, TermQuery,
    Weight,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, Score, SegmentReader, Term};

/// Documents of one tenant matching a query.
pub struct TenantConfinedQuery {
    tenant: Term,
    query: Box<dyn Query>,
}

impl TenantConfinedQuery {
    /// The documents holding `tenant` (a term of the tenant field) that match `query`.
    pub fn new(tenant: Term, query: Box<dyn Query>) -> TenantConfinedQuery {
        TenantConfinedQuery { tenant, query }
    }
}

impl Clone for TenantConfinedQuery {
    fn clone(&self) -> Self {
        TenantConfinedQuery {
            tenant: self.tenant.clone(),
            query: self.query.box_clone(),
        }
    }
}

impl fmt::Debug for TenantConfinedQuery {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TenantConfinedQuery")
            .field("tenant", &self.tenant)
            .field("query", &self.query)
            .finish()
    }
}

impl Query for TenantConfinedQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let tenant_clause: Box<dyn Query> = Box::new(ConstScoreQuery::new(
            Box::new(TermQuery::new(
                self.tenant.clone(),
                IndexRecordOption::Basic,
            )),
            0.0,
        ));
        let confined = BooleanQuery::new(vec![
            (Occur::Must, tenant_clause),
            (Occur::Must, self.query.box_clone()),
        ]);
        Ok(Box::new(TenantConfinedWeight {
            tenant: self.tenant.clone(),
            confined: confined.weight(enable_scoring)?,
            unconfined: self.query.weight(enable_scoring)?,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        visitor(&self.tenant, false);
        self.query.query_terms(visitor);
    }
}

struct TenantConfinedWeight {
    tenant: Term,
    /// `tenant AND query`, for segments that hold other tenants' documents too.
    confined: Box<dyn Weight>,
    /// `query` alone, for segments holding the tenant's documents only.
    unconfined: Box<dyn Weight>,
}

/// Whether every document of the segment (deleted ones included) holds the tenant term.
pub(crate) fn segment_holds_only(tenant: &Term, reader: &SegmentReader) -> tantivy::Result<bool> {
    let max_doc = reader.max_doc();
    if max_doc == 0 {
        return Ok(false);
    }
    let tenant_postings = reader.inverted_index(tenant.field())?;
    Ok(tenant_postings.doc_freq(tenant)? == max_doc)
}

impl TenantConfinedWeight {
    /// Whether every document of the segment (deleted ones included) is the tenant's.
    fn segment_is_the_tenants(&self, reader: &SegmentReader) -> tantivy::Result<bool> {
        segment_holds_only(&self.tenant, reader)
    }

    fn weight_for(&self, reader: &SegmentReader) -> tantivy::Result<&dyn Weight> {
        Ok(if self.segment_is_the_tenants(reader)? {
            self.unconfined.as_ref()
        } else {
            self.confined.as_ref()
        })
    }
}

impl Weight for TenantConfinedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.weight_for(reader)?.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.confined.explain(reader, doc)
    }
}

#[cfg(test)]
mod tests {
    use palisade_proto::v1::Alert;
    use tantivy::collector::Count;
    use tantivy::indexer::NoMergePolicy;
    use tantivy::query::AllQuery;
    use tantivy::{Index, IndexWriter};

    use super::*;
    use crate::schema::IndexSchema;

    fn alert(tenant: &str, id: usize, process: &str) -> Alert {
        Alert {
            id: format!("{id:06}"),
            tenant_id: tenant.into(),
            rule: "Terminal shell in container".into(),
            output_fields: [("proc.name".to_string(), process.to_string())].into(),
            ..Default::default()
        }
    }

    /// Segments of one tenant only, of the other only, and of both, with deletions in each.
    fn three_segment_index(schema: &IndexSchema) -> Index {
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        writer.set_merge_policy(Box::new(NoMergePolicy));
        let segments: [&[&str]; 3] = [&["acme"], &["globex"], &["acme", "globex"]];
        let mut id = 0;
        for tenants in segments {
            for round in 0..30 {
                for tenant in tenants {
                    let process = if round % 3 == 0 { "bash" } else { "curl" };
                    let document = schema.alert_document(&alert(tenant, id, process), id as u64);
                    writer.add_document(document).expect("add");
                    id += 1;
                }
            }
            writer.commit().expect("commit");
        }
        // One deleted document per tenant in every segment it has documents in: the first
        // three ids of each segment are deleted by uid.
        for deleted in [0, 30, 60, 61] {
            let tenant = if deleted == 30 || deleted == 61 {
                "globex"
            } else {
                "acme"
            };
            writer.delete_term(schema.alert_uid_term(tenant, &format!("{deleted:06}")));
        }
        writer.commit().expect("commit");
        index
    }

    fn count(index: &Index, query: &dyn Query) -> usize {
        let reader = index.reader().expect("reader");
        let searcher = reader.searcher();
        assert_eq!(searcher.segment_readers().len(), 3, "three segments");
        searcher.search(query, &Count).expect("search")
    }

    #[test]
    fn a_tenant_sees_exactly_its_documents_in_single_and_mixed_tenant_segments() {
        let schema = IndexSchema::new();
        let index = three_segment_index(&schema);
        // acme: 30 in the first segment and 30 in the third, one deleted in each.
        // globex: 30 in the second and 30 in the third, one deleted in each.
        for tenant in ["acme", "globex"] {
            let everything =
                TenantConfinedQuery::new(schema.tenant_term(tenant), Box::new(AllQuery));
            assert_eq!(count(&index, &everything), 58, "{tenant}: every document");
            let bash_term = {
                let mut term = Term::from_field_json_path(schema.fields, "proc.name", true);
                term.append_type_and_str("bash");
                term
            };
            let bash = TenantConfinedQuery::new(
                schema.tenant_term(tenant),
                Box::new(TermQuery::new(bash_term, IndexRecordOption::Basic)),
            );
            // Every third round is bash: 10 per segment the tenant is in, minus the deleted
            // first document of each (round 0, bash).
            assert_eq!(count(&index, &bash), 18, "{tenant}: bash");
        }
        let nobody = TenantConfinedQuery::new(schema.tenant_term("initech"), Box::new(AllQuery));
        assert_eq!(
            count(&index, &nobody),
            0,
            "a tenant without documents sees none"
        );
    }

    #[test]
    fn only_segments_holding_nothing_but_the_tenant_skip_the_tenant_clause() {
        let schema = IndexSchema::new();
        let index = three_segment_index(&schema);
        let reader = index.reader().expect("reader");
        let searcher = reader.searcher();
        let query = TenantConfinedQuery::new(schema.tenant_term("acme"), Box::new(AllQuery));
        let weight = TenantConfinedWeight {
            tenant: schema.tenant_term("acme"),
            confined: query
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .expect("weight"),
            unconfined: AllQuery
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .expect("weight"),
        };
        let mut skipped: Vec<(u32, bool)> = searcher
            .segment_readers()
            .iter()
            .map(|segment| {
                let skips = weight.segment_is_the_tenants(segment).expect("doc freq");
                (segment.max_doc(), skips)
            })
            .collect();
        skipped.sort();
        // Only acme's own 30-document segment; not globex's, not the 60-document mixed one.
        assert_eq!(skipped, [(30, false), (30, true), (60, false)]);
    }
}
