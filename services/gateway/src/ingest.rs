//! The ingest actor: turns published alerts into durable log records.
//!
//! Every alert is stamped with the caller's tenant (whatever it said), given its stable id if
//! it has none, and appended under the dedupe key "tenant/id", so a resent alert is stored once.
//! The reply is sent only after the log has flushed the batch: an OK is an acknowledgement.

use actix::prelude::*;
use palisade_core::auth::Principal;
use palisade_core::falco::{entities_from_fields, mitre_from_tags};
use palisade_core::ids::{derive_alert_id, validate_record_id};
use palisade_core::log::{AppendResult, LogEntry, Topic};
use palisade_proto::prost_types::Timestamp;
use palisade_proto::v1::{Alert, PublishAlertsResponse};
use prost::Message as _;

use crate::error::GatewayError;
use crate::metrics::METRICS;

/// Name of the log topic alerts are written to.
pub const ALERTS_TOPIC: &str = "alerts";

/// The dedupe key of an alert in the log.
pub fn alert_key(tenant: &str, id: &str) -> Vec<u8> {
    format!("{tenant}/{id}").into_bytes()
}

/// Writes alerts into the log.
pub struct Ingest {
    topic: Topic,
    max_alerts_per_batch: usize,
}

impl Ingest {
    /// An ingest actor writing to `topic`.
    pub fn new(topic: Topic, max_alerts_per_batch: usize) -> Ingest {
        Ingest {
            topic,
            max_alerts_per_batch,
        }
    }
}

impl Actor for Ingest {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        // Bounded: callers wait (backpressure) instead of queueing without limit.
        context.set_mailbox_capacity(256);
    }
}

/// A batch of alerts from an authenticated caller.
#[derive(Message)]
#[rtype(result = "Result<PublishAlertsResponse, GatewayError>")]
pub struct PublishAlerts {
    pub principal: Principal,
    pub alerts: Vec<Alert>,
}

impl Handler<PublishAlerts> for Ingest {
    type Result = ResponseFuture<Result<PublishAlertsResponse, GatewayError>>;

    fn handle(&mut self, message: PublishAlerts, _context: &mut Context<Self>) -> Self::Result {
        let topic = self.topic.clone();
        let limit = self.max_alerts_per_batch;
        Box::pin(async move {
            if message.alerts.len() > limit {
                METRICS.batches_rejected.inc();
                return Err(GatewayError::BatchTooLarge {
                    given: message.alerts.len(),
                    limit,
                });
            }
            let received = now();
            let mut ids = Vec::with_capacity(message.alerts.len());
            let mut entries = Vec::with_capacity(message.alerts.len());
            for (index, alert) in message.alerts.into_iter().enumerate() {
                let alert = normalize(&message.principal, alert, &received).map_err(|message| {
                    METRICS.batches_rejected.inc();
                    GatewayError::InvalidAlert { index, message }
                })?;
                entries.push(LogEntry {
                    dedupe_key: Some(alert_key(&alert.tenant_id, &alert.id)),
                    payload: alert.encode_to_vec(),
                });
                ids.push(alert.id);
            }
            let results = topic.append(entries).await?;
            let duplicates = results
                .iter()
                .filter(|result| matches!(result, AppendResult::Duplicate(_)))
                .count();
            let accepted = results.len() - duplicates;
            METRICS.alerts_accepted.inc_by(accepted as u64);
            METRICS.alerts_duplicate.inc_by(duplicates as u64);
            Ok(PublishAlertsResponse {
                accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
                duplicates: u32::try_from(duplicates).unwrap_or(u32::MAX),
                ids,
            })
        })
    }
}

/// Stamps tenant, id, receive time and derived entities on an alert, or says what is wrong.
fn normalize(
    principal: &Principal,
    mut alert: Alert,
    received: &Timestamp,
) -> Result<Alert, String> {
    if alert.rule.trim().is_empty() {
        return Err("rule is empty".into());
    }
    alert.tenant_id = principal.tenant.to_string();
    if let Some(cluster) = &principal.cluster {
        // an agent's cluster is the one its certificate names, whatever the alert says
        alert.cluster_id = cluster.clone();
    }
    if alert.id.is_empty() {
        alert.id = derive_alert_id(&alert);
    } else {
        validate_record_id(&alert.id).map_err(|error| error.to_string())?;
    }
    alert.received_time = Some(*received);
    if alert.entities.is_empty() {
        alert.entities = entities_from_fields(&alert);
    }
    if alert.mitre.is_none() {
        alert.mitre = mitre_from_tags(&alert.tags);
    }
    Ok(alert)
}

fn now() -> Timestamp {
    let now = chrono::Utc::now();
    Timestamp {
        seconds: now.timestamp(),
        nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Reads one alert of a tenant back from the log.
pub fn stored_alert(topic: &Topic, tenant: &str, id: &str) -> Result<Alert, GatewayError> {
    let not_found = || GatewayError::AlertNotFound { id: id.to_string() };
    let offset = topic
        .offset_of_key(&alert_key(tenant, id))?
        .ok_or_else(not_found)?;
    let record = topic.get(offset)?.ok_or_else(not_found)?;
    Alert::decode(record.payload.as_slice()).map_err(|error| GatewayError::CorruptRecord {
        offset,
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::auth::Role;
    use palisade_core::bridge::ActorSystem;
    use palisade_core::ids::TenantId;
    use palisade_core::storage::Store;

    fn principal(tenant: &str) -> Principal {
        Principal {
            tenant: TenantId::new(tenant).expect("tenant"),
            role: Role::Analyst,
            key_id: "k".into(),
            cluster: None,
        }
    }

    fn alert(rule: &str, tenant_claim: &str) -> Alert {
        Alert {
            rule: rule.into(),
            tenant_id: tenant_claim.into(),
            time: Some(Timestamp {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alerts_are_stamped_with_the_callers_tenant_and_stored_once() {
        let store = Store::temporary().expect("store");
        let topic = Topic::open(&store, ALERTS_TOPIC).expect("topic");
        let actor_topic = topic.clone();
        let (system, ingest) =
            ActorSystem::start("ingest-test", move || Ingest::new(actor_topic, 10).start())
                .expect("system");
        let batch = vec![alert("Shell", "someone-else"), alert("Read shadow", "")];
        let first = ingest
            .send(PublishAlerts {
                principal: principal("acme"),
                alerts: batch.clone(),
            })
            .await
            .expect("mailbox")
            .expect("publish");
        assert_eq!((first.accepted, first.duplicates), (2, 0));
        let again = ingest
            .send(PublishAlerts {
                principal: principal("acme"),
                alerts: batch,
            })
            .await
            .expect("mailbox")
            .expect("publish");
        assert_eq!((again.accepted, again.duplicates), (0, 2));
        assert_eq!(again.ids, first.ids, "ids are stable");
        let stored = stored_alert(&topic, "acme", &first.ids[0]).expect("stored");
        assert_eq!(
            stored.tenant_id, "acme",
            "the claimed tenant is overwritten"
        );
        assert!(stored.received_time.is_some());
        assert!(matches!(
            stored_alert(&topic, "someone-else", &first.ids[0]),
            Err(GatewayError::AlertNotFound { .. })
        ));
        system.stop();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_and_invalid_batches_are_refused_whole() {
        let store = Store::temporary().expect("store");
        let topic = Topic::open(&store, ALERTS_TOPIC).expect("topic");
        let actor_topic = topic.clone();
        let (system, ingest) =
            ActorSystem::start("ingest-test", move || Ingest::new(actor_topic, 2).start())
                .expect("system");
        let too_many = vec![alert("a", ""), alert("b", ""), alert("c", "")];
        let error = ingest
            .send(PublishAlerts {
                principal: principal("acme"),
                alerts: too_many,
            })
            .await
            .expect("mailbox")
            .expect_err("too large");
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
        let mut bad_id = alert("a", "");
        bad_id.id = "has spaces".into();
        let error = ingest
            .send(PublishAlerts {
                principal: principal("acme"),
                alerts: vec![alert("ok", ""), bad_id],
            })
            .await
            .expect("mailbox")
            .expect_err("invalid id");
        assert!(
            error.to_string().starts_with("alert 1 of the batch"),
            "{error}"
        );
        assert_eq!(
            topic.durable_end(),
            0,
            "nothing of a refused batch is stored"
        );
        system.stop();
    }
}
