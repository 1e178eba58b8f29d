//! The audit log of administrative actions: who did what to which tenant, cluster or key, and
//! whether it worked. Each tenant reads its own events only.

use serde::{Deserialize, Serialize};

use super::{Credentials, Principal, now_rfc3339};
use crate::error::CoreResult;
use crate::ids::TenantId;

/// Most events returned by one listing.
pub const MAX_EVENTS_LISTED: usize = 1_000;

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEvent {
    /// RFC 3339.
    pub time: String,
    /// Key id of the credential that acted.
    pub actor: String,
    /// "tenant.create", "cluster.register", "apikey.revoke" ...
    pub action: String,
    pub target: String,
    /// "ok", or the error.
    pub outcome: String,
}

impl Credentials {
    /// Records an action of `principal` in its tenant's audit log (and, for tenant management,
    /// the caller's tenant is the operator's).
    pub fn record_admin_event(
        &self,
        principal: &Principal,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> CoreResult<()> {
        let event = AdminEvent {
            time: now_rfc3339(),
            actor: principal.key_id.clone(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
        };
        // nanoseconds since the epoch keep keys in time order; the store's id breaks ties
        let nanos = chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .max(0);
        let unique = self.store.generate_id()?;
        let key = format!("{}\n{nanos:020}-{unique:020}", principal.tenant);
        self.events.put(&key, &event)
    }

    /// The newest `limit` events of `tenant`, newest first.
    pub fn admin_events(&self, tenant: &TenantId, limit: usize) -> CoreResult<Vec<AdminEvent>> {
        let limit = limit.clamp(1, MAX_EVENTS_LISTED);
        let mut events: Vec<AdminEvent> = self
            .events
            .scan_prefix(&format!("{tenant}\n"))?
            .into_iter()
            .rev()
            .take(limit)
            .map(|(_, event)| event)
            .collect();
        events.shrink_to_fit();
        Ok(events)
    }

    /// Removes every audit event of `tenant` (a deleted tenant); returns how many there were.
    pub(crate) fn remove_admin_events(&self, tenant: &TenantId) -> CoreResult<usize> {
        self.events.remove_prefix(&format!("{tenant}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::storage::Store;

    #[test]
    fn events_are_listed_newest_first_and_per_tenant() {
        let store = Store::temporary().expect("store");
        let credentials = Credentials::open(&store).expect("credentials");
        let principal = |tenant: &str| Principal {
            tenant: TenantId::new(tenant).expect("tenant"),
            role: Role::Admin,
            key_id: format!("{tenant}-key"),
            cluster: None,
        };
        for action in ["cluster.register", "apikey.create", "apikey.revoke"] {
            credentials
                .record_admin_event(&principal("acme"), action, "x", "ok")
                .expect("recorded");
        }
        credentials
            .record_admin_event(&principal("other"), "cluster.revoke", "y", "ok")
            .expect("recorded");
        let acme = credentials
            .admin_events(&TenantId::new("acme").expect("tenant"), 2)
            .expect("listed");
        let actions: Vec<&str> = acme.iter().map(|event| event.action.as_str()).collect();
        assert_eq!(actions, ["apikey.revoke", "apikey.create"]);
        assert!(acme.iter().all(|event| event.actor == "acme-key"));
    }
}
