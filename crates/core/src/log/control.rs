//! Control records: what the log itself writes among the data records of a topic.
//!
//! Data records are protobuf messages that carry their tenant as field 2 (`tenant_id` of
//! `Alert` and `Finding`). A protobuf message never starts with a zero byte (field number 0
//! does not exist), so a record starting with [`CONTROL_PREFIX`] cannot be data: a consumer
//! that decodes it as a message fails and skips it, and one that knows control records acts on
//! it.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

/// The first bytes of every control record.
pub const CONTROL_PREFIX: &[u8] = b"\0palisade-log-control\0";

/// What a control record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ControlRecord {
    /// A data record was erased here; its offset stays so offsets remain dense.
    Erased,
    /// Every record of `tenant` before this one has been erased: a consumer drops whatever it
    /// derived from them (search documents, graph state, dead letters).
    TenantErased { tenant: String },
}

impl ControlRecord {
    /// The record's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = CONTROL_PREFIX.to_vec();
        // Serializing a plain enum of strings cannot fail.
        payload.extend(serde_json::to_vec(self).unwrap_or_default());
        payload
    }

    /// The control record in `payload`; `Ok(None)` when `payload` is a data record, an error
    /// when it is a control record this version does not understand.
    pub fn decode(payload: &[u8]) -> CoreResult<Option<ControlRecord>> {
        let Some(body) = payload.strip_prefix(CONTROL_PREFIX) else {
            return Ok(None);
        };
        serde_json::from_slice(body).map(Some).map_err(|error| {
            CoreError::InvalidArgument(format!("unknown log control record: {error}"))
        })
    }
}

/// The part of every data record the log reads: its tenant.
#[derive(Clone, PartialEq, prost::Message)]
struct TenantField {
    #[prost(string, tag = "2")]
    tenant_id: String,
}

/// The tenant of a data record; `None` for control records and payloads that are not a
/// protobuf message.
pub fn record_tenant(payload: &[u8]) -> Option<String> {
    if payload.starts_with(CONTROL_PREFIX) {
        return None;
    }
    <TenantField as prost::Message>::decode(payload)
        .ok()
        .map(|field| field.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_records_round_trip_and_data_is_not_control() {
        for record in [
            ControlRecord::Erased,
            ControlRecord::TenantErased {
                tenant: "acme".into(),
            },
        ] {
            let payload = record.encode();
            assert_eq!(
                ControlRecord::decode(&payload).expect("decode"),
                Some(record)
            );
            assert_eq!(record_tenant(&payload), None);
        }
        let data = TenantField {
            tenant_id: "acme".into(),
        };
        let payload = prost::Message::encode_to_vec(&data);
        assert_eq!(ControlRecord::decode(&payload).expect("data"), None);
        assert_eq!(record_tenant(&payload).as_deref(), Some("acme"));
        let mut future = CONTROL_PREFIX.to_vec();
        future.extend(br#"{"kind":"compacted"}"#);
        assert!(ControlRecord::decode(&future).is_err());
    }
}
