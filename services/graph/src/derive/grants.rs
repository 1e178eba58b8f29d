//! What RBAC grants in a cluster, resolved once per derivation of the whole cluster and kept
//! for changes that cannot alter it.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::derive::view::cloud_identity_of;
use crate::inventory::ClusterInventory;
use crate::object::ObjectKind;
use crate::rbac::{RbacIndex, subject_is_service_account};

/// What RBAC grants in a cluster: its permission sets, and the service accounts that hold
/// permissions (subjects of a binding, members of a bound group, or federated to a cloud
/// identity). They depend only on roles, bindings and service accounts.
#[derive(Debug, Clone)]
pub struct Grants {
    /// Permission sets and roles.
    pub rbac: Arc<RbacIndex>,
    /// Service accounts (namespace, name) that hold permissions.
    pub privileged_accounts: Arc<BTreeSet<(String, String)>>,
}

impl Grants {
    /// Resolves the grants of an inventory.
    pub fn build(inventory: &ClusterInventory) -> Grants {
        let rbac = RbacIndex::build(inventory);
        let mut accounts = BTreeSet::new();
        let mut known: BTreeSet<(String, String)> = inventory
            .of_kind(ObjectKind::ServiceAccount)
            .map(|account| (account.meta.namespace.clone(), account.meta.name.clone()))
            .collect();
        for set in &rbac.permission_sets {
            for subject in &set.subjects {
                if subject.kind == "ServiceAccount" {
                    known.insert((subject.namespace.clone(), subject.name.clone()));
                    accounts.insert((subject.namespace.clone(), subject.name.clone()));
                } else if let Some(rest) = subject.name.strip_prefix("system:serviceaccount:")
                    && subject.kind == "User"
                    && let Some((namespace, name)) = rest.split_once(':')
                {
                    accounts.insert((namespace.to_string(), name.to_string()));
                }
            }
        }
        for account in inventory.of_kind(ObjectKind::ServiceAccount) {
            if cloud_identity_of(account).is_some() {
                accounts.insert((account.meta.namespace.clone(), account.meta.name.clone()));
            }
        }
        // Group grants to every service account of a namespace (or of the cluster).
        for set in &rbac.permission_sets {
            for subject in set
                .subjects
                .iter()
                .filter(|subject| subject.kind == "Group")
            {
                for (namespace, name) in &known {
                    if subject_is_service_account(subject, namespace, name) {
                        accounts.insert((namespace.clone(), name.clone()));
                    }
                }
            }
        }
        Grants {
            rbac: Arc::new(rbac),
            privileged_accounts: Arc::new(accounts),
        }
    }
}
