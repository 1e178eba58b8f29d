//! Changes that touch only some parts of a cluster: new versions of pods and services, pods
//! that come, go or wait for a node, roles, bindings and service accounts. Only those parts
//! are derived again (see [`crate::derive::derive_pod`]).

use std::collections::{BTreeSet, HashMap};
// Update statistics time synchronous CPU work, never a timer or sleep: std's clock is the right one.
#[allow(clippy::disallowed_types)]
use std::time::Instant;

use super::{ClusterParts, InventoryChange, Tenant, UpdateStats, part_unit};
use crate::derive::exposure::{endpoint_targets, selects};
use crate::derive::owners::{changes_templates, namespace_implied_without, namespace_pods};
use crate::derive::techniques_support::pod_permissions;
use crate::derive::view::service_account_of;
use crate::derive::{
    ClusterView, Derived, Grants, PodContext, PodScope, PodView, derive_cluster_part, derive_pod,
    derive_services,
};
use crate::graph::GraphDiff;
use crate::graph::Unit;
use crate::insights::cluster_level_insights;
use crate::insights::pod_insights;
use crate::inventory::ClusterInventory;
use crate::model::{EntityKind, entity_id};
use crate::object::{Body, Object, ObjectKind};
use crate::rbac::{PermissionSet, subject_is_service_account};

/// A change that touches only some parts of a cluster (see [`Tenant::narrow_change`]).
#[derive(Debug)]
pub(super) enum NarrowChange {
    /// Pods changed: the pods in `scope` are derived again, those `removed` (entity ids) go,
    /// and these are the live pods not scheduled afterwards.
    Pods {
        /// The nodes the pods were and are on.
        scope: PodScope,
        /// Entity ids of pods deleted.
        removed: Vec<String>,
        /// Entity ids of the live pods not scheduled after the change.
        unscheduled: BTreeSet<String>,
    },
    /// New versions of services (these are the versions before): the services, and the pods
    /// either version selects, are derived again.
    Services(Vec<Object>),
    /// Roles, bindings and service accounts changed (these service accounts, as namespace
    /// and name): the cluster's own part is derived again with the grants they make now, and
    /// so are the pods those grants reach otherwise than before and the pods running as these
    /// accounts (see [`grants_scope`]).
    Grants(BTreeSet<(String, String)>),
}

/// The [`NarrowChange`] of a batch of pod changes, if it is one. At most one change of the
/// batch may create or delete a pod or change its owners (each is checked against the
/// inventory before the batch).
fn narrow_pod_change(
    cluster: &str,
    inventory: &ClusterInventory,
    parts: &ClusterParts,
    changes: &[InventoryChange],
) -> Option<NarrowChange> {
    let mut scope = PodScope::default();
    let mut removed = Vec::new();
    let mut unscheduled = parts.unscheduled.clone();
    let mut structural = 0;
    for change in changes {
        let (key, next) = match change {
            InventoryChange::Upsert(object) => (object.key(), Some(object.as_ref())),
            InventoryChange::Delete(key) => (key.clone(), None),
            InventoryChange::Replace { .. } => return None,
        };
        let previous = inventory.get(&key);
        let same_owners = previous.zip(next).is_some_and(|(previous, next)| {
            previous.meta.owner_references == next.meta.owner_references
        });
        if !same_owners && (previous.is_some() || next.is_some()) {
            structural += 1;
            // A pod that comes or goes must leave its namespace and the template pods of
            // the workloads above it as they are.
            if structural > 1 || !namespace_implied_without(inventory, &key) {
                return None;
            }
            for version in previous.into_iter().chain(next) {
                if changes_templates(inventory, version) {
                    return None;
                }
            }
        }
        for version in previous.into_iter().chain(next) {
            match scheduled_node(version) {
                Some(node) => {
                    scope.nodes.insert(node.to_string());
                }
                None => scope.unscheduled = true,
            }
        }
        let id = entity_id(cluster, EntityKind::Pod, &key.namespace, &key.name);
        match next {
            None => {
                unscheduled.remove(&id);
                if previous.is_some() {
                    removed.push(id);
                }
            }
            Some(next) if scheduled_node(next).is_none() => {
                unscheduled.insert(id);
            }
            Some(_) => {
                unscheduled.remove(&id);
            }
        }
    }
    // The placeholder node stays, or stays away.
    if parts.uses_placeholder_with(&parts.unscheduled) != parts.uses_placeholder_with(&unscheduled)
    {
        return None;
    }
    Some(NarrowChange::Pods {
        scope,
        removed,
        unscheduled,
    })
}

/// The pods a view must hold to derive again the pods that some services select (in either
/// of two versions): those on the same nodes, for what pods on one node do to each other.
fn selected_pods_scope(inventory: &ClusterInventory, services: &[(&Object, &Object)]) -> PodScope {
    let targets = endpoint_targets(inventory);
    let mut scope = PodScope::default();
    let namespaces: BTreeSet<&str> = services
        .iter()
        .map(|(_, new)| new.meta.namespace.as_str())
        .collect();
    for namespace in namespaces {
        for (name, labels, node) in namespace_pods(inventory, namespace) {
            let selected = services.iter().any(|(old, new)| {
                [old, new].iter().any(|service| {
                    service.meta.namespace == namespace && selects(service, &targets, name, labels)
                })
            });
            match (selected, node) {
                (false, _) => {}
                (true, Some(node)) => {
                    scope.nodes.insert(node.to_string());
                }
                (true, None) => scope.unscheduled = true,
            }
        }
    }
    scope
}

/// The permission sets of `before` that `after` does not hold, and those of `after` that
/// `before` does not, each with whether it grants otherwise than its namesake in the other
/// (a set whose subjects alone changed exec into and patch the same pods as before).
fn changed_sets<'g>(
    before: &'g [PermissionSet],
    after: &'g [PermissionSet],
) -> Vec<(&'g PermissionSet, bool)> {
    let missing = |sets: &'g [PermissionSet], others: &'g [PermissionSet]| {
        let mut by_name: HashMap<&str, Vec<&PermissionSet>> = HashMap::new();
        for set in others {
            by_name.entry(set.name.as_str()).or_default().push(set);
        }
        sets.iter()
            .filter_map(move |set| {
                let namesakes = by_name.get(set.name.as_str()).map(Vec::as_slice);
                let namesakes = namesakes.unwrap_or_default();
                if namesakes.contains(&set) {
                    return None;
                }
                let grants_otherwise = !namesakes
                    .iter()
                    .any(|other| other.scope == set.scope && other.rules == set.rules);
                Some((set, grants_otherwise))
            })
            .collect::<Vec<_>>()
    };
    let mut changed = missing(before, after);
    changed.extend(missing(after, before));
    changed
}

/// The pods whose parts grants `before` and `after` make differently, as the nodes they are
/// on: the pods whose service account gains or loses permissions worth stealing its token
/// for (with every pod on their nodes, which may read that token through the kubelet's pod
/// directory), and the pods a changed permission set may exec into or patch (unless only
/// its subjects changed), or whose service account it binds, and the pods running as
/// `accounts_changed` (whose token mount follows the account's). The template pods of a
/// cluster are in whenever anything changed: they are resolved only in a view.
fn grants_scope(
    inventory: &ClusterInventory,
    parts: &ClusterParts,
    before: &Grants,
    after: &Grants,
    accounts_changed: &BTreeSet<(String, String)>,
) -> PodScope {
    let changed = changed_sets(&before.rbac.permission_sets, &after.rbac.permission_sets);
    let accounts: BTreeSet<&(String, String)> = before
        .privileged_accounts
        .symmetric_difference(&after.privileged_accounts)
        .collect();
    let mut scope = PodScope::default();
    if changed.is_empty() && accounts.is_empty() && accounts_changed.is_empty() {
        return scope;
    }
    scope.unscheduled = parts.templates > 0;
    for pod in inventory.of_kind(ObjectKind::Pod) {
        let Body::Pod(spec) = &pod.body else { continue };
        let namespace = pod.meta.namespace.as_str();
        let account = service_account_of(spec);
        let owner = pod.meta.owner_references.first().and_then(|owner| {
            ObjectKind::from_name(&owner.kind).map(|kind| (kind, owner.name.clone()))
        });
        let runs_as = (namespace.to_string(), account.clone());
        let touched = accounts.contains(&runs_as)
            || accounts_changed.contains(&runs_as)
            || changed.iter().any(|(set, grants_otherwise)| {
                let (exec, patch) = match grants_otherwise {
                    true => pod_permissions(set, namespace, &pod.meta.name, owner.as_ref()),
                    false => (false, false),
                };
                exec || patch
                    || set
                        .subjects
                        .iter()
                        .any(|subject| subject_is_service_account(subject, namespace, &account))
            });
        if touched {
            match scheduled_node(pod) {
                Some(node) => {
                    scope.nodes.insert(node.to_string());
                }
                None => scope.unscheduled = true,
            }
        }
    }
    scope
}

/// A pod's part derived again, as the unit it replaces; the pod's insights are kept with the
/// cluster's parts.
fn pod_unit(
    parts: &mut ClusterParts,
    cluster: &str,
    view: &ClusterView<'_>,
    context: &PodContext<'_>,
    pod: &PodView<'_>,
) -> (Unit, Derived) {
    parts
        .insights
        .insert(pod.id.clone(), pod_insights(view, context, pod));
    (part_unit(cluster, &pod.id), derive_pod(view, context, pod))
}

/// The node a pod is scheduled on, if it is.
fn scheduled_node(pod: &Object) -> Option<&str> {
    let Body::Pod(spec) = &pod.body else {
        return None;
    };
    spec.node_name.as_deref().filter(|node| !node.is_empty())
}

impl Tenant {
    /// Re-derives the parts a narrow change can touch (see [`derive_pod`] and
    /// [`derive_services`]) and applies them.
    #[allow(clippy::disallowed_types)] // CPU-time statistics, see the import.
    pub(super) fn refresh_parts(
        &mut self,
        cluster: &str,
        change: &NarrowChange,
    ) -> Option<(GraphDiff, UpdateStats)> {
        if let NarrowChange::Grants(accounts) = change {
            return self.refresh_grants(cluster, accounts);
        }
        let mut stats = UpdateStats::default();
        let started = Instant::now();
        let empty = ClusterInventory::new();
        let inventory = self.inventories.get(cluster).unwrap_or(&empty);
        let parts = self.parts.entry(cluster.to_string()).or_default();
        let grants = parts
            .grants
            .clone()
            .unwrap_or_else(|| Grants::build(inventory));
        let mut units = Vec::new();
        // The services changed, their versions before and now, and which pods to derive.
        let mut services: Vec<(&Object, &Object)> = Vec::new();
        let scope = match change {
            NarrowChange::Pods { scope, .. } => scope.clone(),
            NarrowChange::Grants(_) => return None,
            NarrowChange::Services(before) => {
                for old in before {
                    if let Some(new) = inventory.get(&old.key()) {
                        services.push((old, new));
                    }
                }
                selected_pods_scope(inventory, &services)
            }
        };
        let view = ClusterView::build_scoped(cluster, inventory, &scope, grants);
        if scope.unscheduled && view.reaches_every_node() {
            // A pod not scheduled now reads every node's pods: none of it is narrow.
            return None;
        }
        let context = PodContext::build(&view);
        if let NarrowChange::Pods {
            removed,
            unscheduled,
            ..
        } = change
        {
            for id in removed {
                units.push((part_unit(cluster, id), Derived::default()));
                parts.insights.remove(id);
            }
            parts.unscheduled = unscheduled.clone();
        }
        if !services.is_empty() {
            let changed: BTreeSet<(&str, &str)> = services
                .iter()
                .map(|(_, new)| (new.meta.namespace.as_str(), new.meta.name.as_str()))
                .collect();
            for (id, service) in derive_services(&view, |namespace, name| {
                changed.contains(&(namespace, name))
            }) {
                units.push((part_unit(cluster, &id), service));
            }
        }
        let targets = endpoint_targets(inventory);
        for pod in &view.pods {
            // A service change reaches the pods either version selects, nothing else.
            let selected = services.is_empty()
                || services.iter().any(|(old, new)| {
                    [old, new].iter().any(|service| {
                        service.meta.namespace == pod.namespace
                            && selects(service, &targets, &pod.name, pod.labels)
                    })
                });
            if !selected {
                continue;
            }
            stats.pods_derived += 1;
            units.push(pod_unit(parts, cluster, &view, &context, pod));
        }
        stats.derive_micros = started.elapsed().as_micros();
        let applied = Instant::now();
        let diff = self.graph.apply_units(units);
        stats.apply_micros = applied.elapsed().as_micros();
        Some(self.search_changes(cluster, diff, stats))
    }

    /// Derives again the cluster's own part with the grants its roles, bindings and service
    /// accounts make now, and the pods whose parts those grants or `accounts` change (see
    /// [`grants_scope`]), and applies them.
    #[allow(clippy::disallowed_types)] // CPU-time statistics, see the import.
    fn refresh_grants(
        &mut self,
        cluster: &str,
        accounts: &BTreeSet<(String, String)>,
    ) -> Option<(GraphDiff, UpdateStats)> {
        let mut stats = UpdateStats {
            cluster_part_derived: true,
            ..UpdateStats::default()
        };
        let started = Instant::now();
        let inventory = self.inventories.get(cluster)?;
        let parts = self.parts.get_mut(cluster)?;
        let before = parts.grants.clone()?;
        let grants = Grants::build(inventory);
        let scope = grants_scope(inventory, parts, &before, &grants, accounts);
        let mut view = ClusterView::build_scoped(cluster, inventory, &scope, grants);
        if scope.unscheduled && view.reaches_every_node() {
            return None;
        }
        // The cluster's own part speaks of the placeholder node whenever any pod of the
        // cluster, in the view or not, waits for a node.
        view.uses_placeholder_node = parts.uses_placeholder_with(&parts.unscheduled);
        let context = PodContext::build(&view);
        let mut units = vec![(
            Unit::Cluster(cluster.to_string()),
            derive_cluster_part(&view),
        )];
        for pod in &view.pods {
            stats.pods_derived += 1;
            units.push(pod_unit(parts, cluster, &view, &context, pod));
        }
        self.insights
            .insert(cluster.to_string(), cluster_level_insights(&view));
        parts.grants = Some(view.grants());
        stats.derive_micros = started.elapsed().as_micros();
        let applied = Instant::now();
        let diff = self.graph.apply_units(units);
        stats.apply_micros = applied.elapsed().as_micros();
        Some(self.search_changes(cluster, diff, stats))
    }

    /// Whether a batch of changes touches only some parts of a cluster: every change is to a
    /// pod (then nothing but the parts of the pods on its nodes can change, provided the
    /// cluster keeps its namespaces, template pods and use of the unscheduled placeholder),
    /// every change is a new version of a service (then only the service and the pods
    /// either version selects can change), or every change is to a role, binding or service
    /// account (then the cluster's own part, the pods whose grants change and the pods
    /// running as those accounts). `None` when the whole cluster must be derived again.
    pub(super) fn narrow_change(
        &self,
        cluster: &str,
        changes: &[InventoryChange],
    ) -> Option<NarrowChange> {
        let inventory = self.inventories.get(cluster)?;
        let parts = self.parts.get(cluster)?;
        if parts.reaches_every_node || !self.path_cache.has_cluster(cluster) {
            return None;
        }
        let kind_of = |change: &InventoryChange| match change {
            InventoryChange::Upsert(object) => Some(object.kind),
            InventoryChange::Delete(key) => Some(key.kind),
            InventoryChange::Replace { .. } => None,
        };
        let first = kind_of(changes.first()?)?;
        let is_rbac = |kind: Option<ObjectKind>| {
            kind.is_some_and(|kind| {
                matches!(
                    kind,
                    ObjectKind::Role
                        | ObjectKind::ClusterRole
                        | ObjectKind::RoleBinding
                        | ObjectKind::ClusterRoleBinding
                        | ObjectKind::ServiceAccount
                )
            })
        };
        if changes.iter().all(|change| is_rbac(kind_of(change))) {
            let accounts = changes
                .iter()
                .filter_map(|change| match change {
                    InventoryChange::Upsert(object) => Some(object.key()),
                    InventoryChange::Delete(key) => Some(key.clone()),
                    InventoryChange::Replace { .. } => None,
                })
                .filter(|key| key.kind == ObjectKind::ServiceAccount)
                .map(|key| (key.namespace, key.name))
                .collect();
            return parts
                .grants
                .as_ref()
                .map(|_| NarrowChange::Grants(accounts));
        }
        if changes.iter().any(|change| kind_of(change) != Some(first)) {
            return None;
        }
        match first {
            ObjectKind::Pod => narrow_pod_change(cluster, inventory, parts, changes),
            ObjectKind::Service => {
                let mut before = Vec::new();
                for change in changes {
                    let InventoryChange::Upsert(object) = change else {
                        return None;
                    };
                    before.push(inventory.get(&object.key())?.clone());
                }
                Some(NarrowChange::Services(before))
            }
            _ => None,
        }
    }
}
