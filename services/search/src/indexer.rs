//! The indexer: the single owner of the index writer. It reads the `alerts` and `findings`
//! topics of the durable log from the positions stored in the index's last commit, adds their
//! records, and commits with the new positions as the commit payload — so the index always
//! holds exactly the records before those positions, and a crash at any point neither loses
//! nor doubles a document.
//!
//! Alerts need no upsert: the log stores each (tenant, id) once, and uncommitted documents
//! vanish with a crash together with the positions that covered them. Findings are facts that
//! change: a newer record of the same finding replaces the older document.
//!
//! Commits are what make records searchable and what indexing pays for most, so they are
//! grouped: at most one per `commit_interval` while records keep arriving (the near-real-time
//! bar: searchable within a second), and one as soon as the interval has passed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use palisade_core::ids::TenantId;
use palisade_core::log::control::CONTROL_PREFIX;
use palisade_core::log::{ControlRecord, LogRecord, Topic};
use palisade_proto::v1::{Alert, Finding};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, Term};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::SearchError;
use crate::metrics::METRICS;
use crate::schema::{IndexSchema, KIND_ALERT, timestamp_to_date};
use crate::settings::SearchSettings;

/// Name of the log topic of alerts.
pub const ALERTS_TOPIC: &str = "alerts";
/// Name of the log topic of findings (vulnerabilities, insights, attack paths).
pub const FINDINGS_TOPIC: &str = "findings";
/// Name under which the indexer records its log offsets (informational).
pub const CONSUMER_NAME: &str = "search";
/// Records read from the log at a time.
const RECORDS_PER_READ: usize = 4_096;
/// Most records added before the indexer answers, so reindex and retention requests are not
/// held up behind a long catch-up.
const RECORDS_PER_CATCH_UP: u64 = 200_000;

/// The log topics the index is fed from.
#[derive(Clone)]
pub struct SearchTopics {
    pub alerts: Topic,
    pub findings: Topic,
}

/// Positions in both topics: the next offset to index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    pub alerts: u64,
    pub findings: u64,
}

impl Positions {
    /// Reads the commit payload; a bare number is the alerts offset of an older index.
    pub fn from_payload(payload: &str) -> Result<Positions, SearchError> {
        if let Ok(alerts) = payload.parse::<u64>() {
            return Ok(Positions {
                alerts,
                findings: 0,
            });
        }
        serde_json::from_str(payload).map_err(|_| SearchError::Open {
            path: String::new(),
            message: format!(
                "index commit payload {payload:?} is not a pair of log positions; rebuild the index"
            ),
        })
    }

    fn to_payload(self) -> String {
        serde_json::to_string(&self).unwrap_or_default()
    }
}

/// The positions stored in the index's last commit (zero for a new index).
pub fn committed_positions(index: &Index) -> Result<Positions, SearchError> {
    match index.load_metas()?.payload {
        Some(payload) => Positions::from_payload(&payload),
        None => Ok(Positions::default()),
    }
}

/// Indexes what the log holds beyond the indexer's position.
#[derive(Message)]
#[rtype(result = "Result<IndexProgress, SearchError>")]
pub struct CatchUp {
    /// Commit whatever is pending now, instead of when the commit interval is due.
    pub commit_now: bool,
}

/// Where the indexer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexProgress {
    /// Positions up to which the index is committed (searchable).
    pub committed: Positions,
    /// Documents added but not committed yet.
    pub pending: u64,
    /// When the pending documents will be committed, if any.
    pub commit_due: Option<Instant>,
    /// More records were durable than one catch-up takes.
    pub more_available: bool,
}

/// Rebuilds a tenant's documents, or every document, from the log.
#[derive(Message)]
#[rtype(result = "Result<ReindexOutcome, SearchError>")]
pub struct Reindex {
    /// `None` rebuilds the whole index.
    pub tenant: Option<TenantId>,
}

/// What a reindex did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReindexOutcome {
    pub documents: u64,
    pub records_read: u64,
}

/// Deletes a tenant's documents older than its retention, now.
#[derive(Message)]
#[rtype(result = "Result<u64, SearchError>")]
pub struct ApplyRetention {
    /// `None` applies every tenant's retention.
    pub tenant: Option<TenantId>,
}

/// The single owner of the index writer.
pub struct Indexer {
    pub(crate) schema: IndexSchema,
    pub(crate) writer: IndexWriter,
    pub(crate) reader: IndexReader,
    pub(crate) topics: SearchTopics,
    pub(crate) settings: SearchSettings,
    /// Next offsets to index.
    pub(crate) position: Positions,
    /// Published after each commit and reader reload.
    pub(crate) committed: Arc<watch::Sender<Positions>>,
    pub(crate) pending: u64,
    pub(crate) first_pending_at: Option<Instant>,
    pub(crate) commit_interval: Duration,
}

impl Actor for Indexer {
    type Context = SyncContext<Self>;
}

impl Handler<CatchUp> for Indexer {
    type Result = Result<IndexProgress, SearchError>;

    fn handle(&mut self, message: CatchUp, _context: &mut SyncContext<Self>) -> Self::Result {
        let cutoffs = self.retention_cutoffs()?;
        let mut budget = RECORDS_PER_CATCH_UP;
        let mut more_available = false;
        loop {
            let read = self.index_available(&cutoffs, budget.min(RECORDS_PER_READ as u64))?;
            if read == 0 {
                break;
            }
            budget = budget.saturating_sub(read);
            if self.commit_due().is_some_and(|due| Instant::now() >= due) {
                self.commit()?;
            }
            if budget == 0 {
                more_available = true;
                break;
            }
        }
        let due_now = self.commit_due().is_some_and(|due| Instant::now() >= due);
        if self.first_pending_at.is_some() && (message.commit_now || due_now) {
            self.commit()?;
        }
        Ok(IndexProgress {
            committed: *self.committed.borrow(),
            pending: self.pending,
            commit_due: self.commit_due(),
            more_available,
        })
    }
}

impl Indexer {
    fn commit_due(&self) -> Option<Instant> {
        self.first_pending_at
            .map(|first| first + self.commit_interval)
    }

    /// Tenant -> oldest event time kept, for tenants with a retention.
    fn retention_cutoffs(&self) -> Result<HashMap<String, DateTime>, SearchError> {
        let now_nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        Ok(self
            .settings
            .retentions()?
            .into_iter()
            .filter(|(_, days)| *days > 0)
            .map(|(tenant, days)| {
                let cutoff = now_nanos.saturating_sub(i64::from(days) * 86_400 * 1_000_000_000);
                (tenant, DateTime::from_timestamp_nanos(cutoff))
            })
            .collect())
    }

    /// Adds up to `max` records from each topic; returns how many records were read.
    fn index_available(
        &mut self,
        cutoffs: &HashMap<String, DateTime>,
        max: u64,
    ) -> Result<u64, SearchError> {
        let max = usize::try_from(max).unwrap_or(RECORDS_PER_READ);
        let mut read = 0u64;
        let alerts = self.topics.alerts.read(self.position.alerts, max)?;
        for record in &alerts {
            if self.apply_control(ALERTS_TOPIC, record)? {
                continue;
            }
            if let Some(document) =
                self.alert_document(&record.payload, record.offset, cutoffs, None)
            {
                self.writer.add_document(document)?;
                self.note_added();
            }
        }
        if let Some(last) = alerts.last() {
            read += last.offset + 1 - self.position.alerts;
            self.position.alerts = last.offset + 1;
        }
        let findings = self.topics.findings.read(self.position.findings, max)?;
        for record in &findings {
            if self.apply_control(FINDINGS_TOPIC, record)? {
                continue;
            }
            if let Some((uid, document)) =
                self.finding_document(&record.payload, record.offset, cutoffs, None)
            {
                self.writer.delete_term(uid);
                self.writer.add_document(document)?;
                self.note_added();
            }
        }
        if let Some(last) = findings.last() {
            read += last.offset + 1 - self.position.findings;
            self.position.findings = last.offset + 1;
        }
        // records skipped (past their retention, undecodable) still move the position: it is
        // committed like added documents, or the index would report them as waiting forever
        if read > 0 && self.first_pending_at.is_none() {
            self.first_pending_at = Some(Instant::now());
        }
        Ok(read)
    }

    /// Acts on `record` if it is a control record of the log, and says whether it was one. An
    /// erased tenant's documents of this topic go: the log erased their records before this
    /// one. Its settings are not the log's: the tenant deletion removes them itself, while the
    /// id is still reserved, since a new tenant of the id may have settings by the time the
    /// indexer reaches this record.
    fn apply_control(&mut self, topic: &str, record: &LogRecord) -> Result<bool, SearchError> {
        match ControlRecord::decode(&record.payload) {
            Ok(None) => Ok(false),
            Ok(Some(ControlRecord::Erased)) => Ok(true),
            Ok(Some(ControlRecord::TenantErased { tenant })) => {
                // only the documents of this topic: the other topic's marker may come later,
                // after a new tenant of the same id has documents from this one
                let alerts_only = topic == ALERTS_TOPIC;
                let kind = self.schema.keyword("kind").map(|field| {
                    let occur = if alerts_only {
                        Occur::Must
                    } else {
                        Occur::MustNot
                    };
                    let term = Term::from_field_text(field, KIND_ALERT);
                    (
                        occur,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                });
                let tenant_clause = (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        self.schema.tenant_term(&tenant),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                );
                let erased =
                    BooleanQuery::new(std::iter::once(tenant_clause).chain(kind).collect());
                self.writer.delete_query(Box::new(erased))?;
                self.pending += 1;
                if self.first_pending_at.is_none() {
                    self.first_pending_at = Some(Instant::now());
                }
                tracing::info!(topic, offset = record.offset, %tenant, "erased tenant's documents deleted");
                Ok(true)
            }
            Err(error) => {
                METRICS.undecodable_records.inc();
                tracing::error!(topic, offset = record.offset, %error, "skipping a control record this version does not know");
                Ok(true)
            }
        }
    }

    fn note_added(&mut self) {
        self.pending += 1;
        if self.first_pending_at.is_none() {
            self.first_pending_at = Some(Instant::now());
        }
        METRICS.indexed_documents.inc();
    }

    /// The document of an alert record, unless it is undecodable, of another tenant than
    /// `only_tenant`, or older than its tenant's retention.
    fn alert_document(
        &self,
        payload: &[u8],
        offset: u64,
        cutoffs: &HashMap<String, DateTime>,
        only_tenant: Option<&str>,
    ) -> Option<tantivy::TantivyDocument> {
        if payload.starts_with(CONTROL_PREFIX) {
            return None;
        }
        let alert = match Alert::decode(payload) {
            Ok(alert) => alert,
            Err(error) => {
                METRICS.undecodable_records.inc();
                tracing::error!(topic = ALERTS_TOPIC, offset, %error, "skipping undecodable record");
                return None;
            }
        };
        if only_tenant.is_some_and(|tenant| tenant != alert.tenant_id) {
            return None;
        }
        if let Some(cutoff) = cutoffs.get(&alert.tenant_id)
            && timestamp_to_date(alert.time.as_ref()) < *cutoff
        {
            METRICS.expired_records.inc();
            return None;
        }
        Some(self.schema.alert_document(&alert, offset))
    }

    fn finding_document(
        &self,
        payload: &[u8],
        offset: u64,
        cutoffs: &HashMap<String, DateTime>,
        only_tenant: Option<&str>,
    ) -> Option<(Term, tantivy::TantivyDocument)> {
        if payload.starts_with(CONTROL_PREFIX) {
            return None;
        }
        let finding = match Finding::decode(payload) {
            Ok(finding) => finding,
            Err(error) => {
                METRICS.undecodable_records.inc();
                tracing::error!(topic = FINDINGS_TOPIC, offset, %error, "skipping undecodable record");
                return None;
            }
        };
        if only_tenant.is_some_and(|tenant| tenant != finding.tenant_id) {
            return None;
        }
        let uid = self
            .schema
            .finding_uid_term(&finding.tenant_id, &finding.id);
        if let Some(cutoff) = cutoffs.get(&finding.tenant_id) {
            let time = finding.last_seen.as_ref().or(finding.first_seen.as_ref());
            if timestamp_to_date(time) < *cutoff {
                METRICS.expired_records.inc();
                return None;
            }
        }
        Some((uid, self.schema.finding_document(&finding, offset)))
    }

    pub(crate) fn commit(&mut self) -> Result<(), SearchError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&self.position.to_payload());
        prepared.commit()?;
        self.reader.reload()?;
        self.pending = 0;
        self.first_pending_at = None;
        self.committed.send_replace(self.position);
        METRICS.commits.inc();
        METRICS
            .indexed_offset
            .set(i64::try_from(self.position.alerts).unwrap_or(i64::MAX));
        // Informational only: the index's own commit payload is what the indexer trusts.
        self.topics
            .alerts
            .commit_consumer_offset(CONSUMER_NAME, self.position.alerts)?;
        self.topics
            .findings
            .commit_consumer_offset(CONSUMER_NAME, self.position.findings)?;
        Ok(())
    }
}

impl Handler<Reindex> for Indexer {
    type Result = Result<ReindexOutcome, SearchError>;

    fn handle(&mut self, message: Reindex, _context: &mut SyncContext<Self>) -> Self::Result {
        let cutoffs = self.retention_cutoffs()?;
        // Bring the index to the log's end first, so the rebuild covers the same positions the
        // commit will name.
        while self.index_available(&cutoffs, RECORDS_PER_READ as u64)? > 0 {}
        let only_tenant = message.tenant.as_ref().map(TenantId::as_str);
        match only_tenant {
            Some(tenant) => {
                self.writer.delete_term(self.schema.tenant_term(tenant));
            }
            None => {
                self.writer.delete_all_documents()?;
            }
        }
        let mut outcome = ReindexOutcome {
            documents: 0,
            records_read: 0,
        };
        let mut offset = 0;
        while offset < self.position.alerts {
            let batch = self.topics.alerts.read(offset, RECORDS_PER_READ)?;
            let Some(last) = batch.last() else { break };
            let next = (last.offset + 1).min(self.position.alerts);
            for record in batch
                .iter()
                .filter(|record| record.offset < self.position.alerts)
            {
                outcome.records_read += 1;
                if let Some(document) =
                    self.alert_document(&record.payload, record.offset, &cutoffs, only_tenant)
                {
                    self.writer.add_document(document)?;
                    outcome.documents += 1;
                }
            }
            offset = next;
        }
        // Findings: only the newest record of each finding becomes a document.
        let mut newest: HashMap<String, tantivy::TantivyDocument> = HashMap::new();
        let mut offset = 0;
        while offset < self.position.findings {
            let batch = self.topics.findings.read(offset, RECORDS_PER_READ)?;
            let Some(last) = batch.last() else { break };
            let next = (last.offset + 1).min(self.position.findings);
            for record in batch
                .iter()
                .filter(|record| record.offset < self.position.findings)
            {
                outcome.records_read += 1;
                if let Some((uid, document)) =
                    self.finding_document(&record.payload, record.offset, &cutoffs, only_tenant)
                {
                    let key = uid.value().as_str().unwrap_or_default().to_string();
                    newest.insert(key, document);
                }
            }
            offset = next;
        }
        outcome.documents += newest.len() as u64;
        for document in newest.into_values() {
            self.writer.add_document(document)?;
        }
        self.pending += 1;
        self.commit()?;
        METRICS.reindexes.inc();
        tracing::info!(tenant = ?only_tenant, documents = outcome.documents, "search index rebuilt from the log");
        Ok(outcome)
    }
}

impl Handler<ApplyRetention> for Indexer {
    type Result = Result<u64, SearchError>;

    fn handle(
        &mut self,
        message: ApplyRetention,
        _context: &mut SyncContext<Self>,
    ) -> Self::Result {
        let cutoffs = self.retention_cutoffs()?;
        let searcher = self.reader.searcher();
        let mut deleted = 0u64;
        for (tenant, cutoff) in &cutoffs {
            if message
                .tenant
                .as_ref()
                .is_some_and(|only| only.as_str() != tenant)
            {
                continue;
            }
            let expired: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        self.schema.tenant_term(tenant),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                ),
                (
                    Occur::Must,
                    Box::new(RangeQuery::new(
                        std::ops::Bound::Unbounded,
                        std::ops::Bound::Excluded(Term::from_field_date(self.schema.time, *cutoff)),
                    )),
                ),
            ]));
            let count = expired.count(&searcher)? as u64;
            if count > 0 {
                self.writer.delete_query(expired)?;
                deleted += count;
            }
        }
        if deleted > 0 {
            self.pending += 1;
            self.commit()?;
            METRICS.expired_documents.inc_by(deleted);
            tracing::info!(deleted, "documents past their tenant's retention deleted");
        }
        Ok(deleted)
    }
}
