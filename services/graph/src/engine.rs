//! The graph engine: tenants, their clusters' inventories, the graph derived from them, and the
//! insights and attack paths kept up to date as inventory changes arrive.
//!
//! A cluster's graph is held in parts: each pod and each service is a unit of its own, the rest
//! of the cluster's objects one more. A new version of a scheduled pod re-derives the pods on
//! its node (before and after), a new version of a service the service and the pods either
//! version selects; any other change re-derives the whole cluster. The result is applied as a
//! diff, and only the entry points whose searches the diff can move are searched again (see
//! [`crate::path_cache`]). Findings and alerts re-search the entry points they touch.

mod graph_insights;
mod narrow;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
// Update statistics time synchronous CPU work, never a timer or sleep: std's clock is the right one.
#[allow(clippy::disallowed_types)]
use std::time::Instant;

use serde::Serialize;

use crate::derive::{
    ClusterView, Derived, Grants, PodContext, UNSCHEDULED_NODE, derive_cluster_part, derive_pod,
    derive_services,
};
use crate::error::Result;
use crate::findings::{
    FindingsByImage, ImageFindings, RuntimeAlert, derive_groups, group_by_image,
};
use crate::findings_patch::{findings_patch, replace_images};
use crate::graph::{GraphDiff, Slot, TenantGraph, Unit};
use crate::insights::{Insight, cluster_level_insights, pod_insights};
use crate::inventory::ClusterInventory;
use crate::model::{EdgeKind, EntityKind, entity_id};
use crate::object::{Object, ObjectKey, ObjectKind};
use crate::path_cache::{PathCache, PathChanges};
use crate::paths::{AttackPath, FleetReport, cluster_paths, fleet_report, sort_paths};
use crate::search::Searcher;
use crate::store::GraphStore;

/// One change to a cluster's inventory.
#[derive(Debug, Clone)]
pub enum InventoryChange {
    /// An object was added or modified.
    Upsert(Box<Object>),
    /// An object was deleted.
    Delete(ObjectKey),
    /// Every object of a kind, after a (re-)list: objects not in the list are gone.
    Replace {
        /// Kind listed.
        kind: ObjectKind,
        /// Objects listed.
        objects: Vec<Object>,
    },
}

/// What one update cost and changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateStats {
    /// Microseconds spent deriving the cluster's graph.
    pub derive_micros: u128,
    /// Microseconds spent applying the diff.
    pub apply_micros: u128,
    /// Microseconds spent searching attack paths again.
    pub paths_micros: u128,
    /// Entities added or changed.
    pub entities_changed: usize,
    /// Entities removed.
    pub entities_removed: usize,
    /// Edges added.
    pub edges_added: usize,
    /// Edges removed.
    pub edges_removed: usize,
    /// Attack paths of the cluster after the update.
    pub cluster_paths: usize,
    /// Entry points whose paths were searched again.
    pub entries_searched: usize,
    /// Pods whose part of the graph was derived again.
    pub pods_derived: usize,
    /// Whether the whole cluster was derived again (otherwise only the pods on the nodes the
    /// change touched).
    pub cluster_derived: bool,
    /// Whether the cluster's own part (everything but its pods and services) was derived
    /// again.
    pub cluster_part_derived: bool,
}

/// The parts of one cluster the graph holds as units of their own: its pods and services.
#[derive(Debug, Default)]
struct ClusterParts {
    /// Insights of each pod, by the pod's entity id; the keys are the pod units.
    insights: HashMap<String, Vec<Insight>>,
    /// Entity ids of the services.
    services: BTreeSet<String>,
    /// Entity ids of the live pods not scheduled.
    unscheduled: BTreeSet<String>,
    /// How many workloads stand for template pods not scheduled.
    templates: usize,
    /// Whether a pod not scheduled may reach the tokens of every node's pods.
    reaches_every_node: bool,
    /// The cluster's RBAC as the last derivation of the whole cluster resolved it: a change
    /// to pods or services alone leaves it as it is.
    grants: Option<Grants>,
}

impl ClusterParts {
    /// Whether the cluster's pods use the placeholder node when these live pods are not
    /// scheduled.
    fn uses_placeholder_with(&self, unscheduled: &BTreeSet<String>) -> bool {
        !unscheduled.is_empty() || self.templates > 0
    }
}

impl UpdateStats {
    /// Adds what a later step of the same update cost and changed.
    fn absorb(&mut self, later: UpdateStats) {
        self.derive_micros += later.derive_micros;
        self.apply_micros += later.apply_micros;
        self.paths_micros += later.paths_micros;
        self.entities_changed += later.entities_changed;
        self.entities_removed += later.entities_removed;
        self.edges_added += later.edges_added;
        self.edges_removed += later.edges_removed;
        self.cluster_paths = later.cluster_paths;
        self.entries_searched += later.entries_searched;
        self.pods_derived += later.pods_derived;
        self.cluster_derived |= later.cluster_derived;
        self.cluster_part_derived |= later.cluster_part_derived;
    }
}

/// The state of one tenant.
#[derive(Debug, Default)]
pub struct Tenant {
    inventories: BTreeMap<String, ClusterInventory>,
    graph: TenantGraph,
    findings: FindingsByImage,
    alerts: BTreeMap<String, RuntimeAlert>,
    insights: BTreeMap<String, Vec<Insight>>,
    parts: BTreeMap<String, ClusterParts>,
    paths: BTreeMap<String, Vec<Arc<AttackPath>>>,
    path_cache: PathCache,
    searcher: Searcher,
}

impl Tenant {
    /// The tenant's graph.
    pub fn graph(&self) -> &TenantGraph {
        &self.graph
    }

    /// Clusters of the tenant.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.inventories.keys().map(String::as_str)
    }

    /// The inventory of a cluster.
    pub fn inventory(&self, cluster: &str) -> Option<&ClusterInventory> {
        self.inventories.get(cluster)
    }

    fn alerted_containers(&self) -> HashSet<Slot> {
        let mut alerted = HashSet::new();
        for alert in self.alerts.values() {
            alerted.extend(self.alert_containers(alert));
        }
        alerted
    }

    fn alert_containers(&self, alert: &RuntimeAlert) -> Vec<Slot> {
        let pod_id = entity_id(
            &alert.cluster,
            EntityKind::Pod,
            &alert.namespace,
            &alert.pod,
        );
        let Some(pod) = self.graph.slot(&pod_id) else {
            return Vec::new();
        };
        self.graph
            .out_edges(pod)
            .iter()
            .filter(|(slot, kind)| {
                *kind == EdgeKind::Runs
                    && (alert.container.is_empty()
                        || self
                            .graph
                            .entity(*slot)
                            .is_some_and(|entity| entity.name == alert.container))
            })
            .map(|(slot, _)| *slot)
            .collect()
    }

    /// Re-derives a cluster and applies the change.
    #[allow(clippy::disallowed_types)] // CPU-time statistics, see the import.
    fn refresh_cluster(&mut self, cluster: &str) -> (GraphDiff, UpdateStats) {
        let mut stats = UpdateStats {
            cluster_derived: true,
            cluster_part_derived: true,
            ..UpdateStats::default()
        };
        let started = Instant::now();
        let empty = ClusterInventory::new();
        let inventory = self.inventories.get(cluster).unwrap_or(&empty);
        let view = ClusterView::build(cluster, inventory);
        stats.pods_derived = view.pods.len();
        let context = PodContext::build(&view);
        let mut units = vec![(
            Unit::Cluster(cluster.to_string()),
            derive_cluster_part(&view),
        )];
        let placeholder = entity_id(cluster, EntityKind::Node, "", UNSCHEDULED_NODE);
        let mut parts = ClusterParts {
            insights: HashMap::with_capacity(view.pods.len()),
            services: BTreeSet::new(),
            unscheduled: view
                .pods
                .iter()
                .filter(|pod| !pod.is_template && pod.node_id == placeholder)
                .map(|pod| pod.id.clone())
                .collect(),
            templates: view
                .pods
                .iter()
                .filter(|pod| pod.is_template && pod.node_id == placeholder)
                .count(),
            reaches_every_node: view.reaches_every_node(),
            grants: Some(view.grants()),
        };
        for (id, service) in derive_services(&view, |_, _| true) {
            units.push((part_unit(cluster, &id), service));
            parts.services.insert(id);
        }
        for pod in &view.pods {
            units.push((
                part_unit(cluster, &pod.id),
                derive_pod(&view, &context, pod),
            ));
        }
        for pod in &view.pods {
            parts
                .insights
                .insert(pod.id.clone(), pod_insights(&view, &context, pod));
        }
        let insights = cluster_level_insights(&view);
        if let Some(previous) = self.parts.get(cluster) {
            let gone_pods = previous
                .insights
                .keys()
                .filter(|id| !parts.insights.contains_key(*id));
            let gone_services = previous.services.difference(&parts.services);
            for gone in gone_pods.chain(gone_services) {
                units.push((part_unit(cluster, gone), Derived::default()));
            }
        }
        stats.derive_micros = started.elapsed().as_micros();
        let applied = Instant::now();
        let diff = self.graph.apply_units(units);
        stats.apply_micros = applied.elapsed().as_micros();
        self.insights.insert(cluster.to_string(), insights);
        self.parts.insert(cluster.to_string(), parts);
        self.search_changes(cluster, diff, stats)
    }

    /// Brings the attack paths up to date with a change of a cluster's graph.
    #[allow(clippy::disallowed_types)] // CPU-time statistics, see the import.
    fn search_changes(
        &mut self,
        cluster: &str,
        diff: GraphDiff,
        mut stats: UpdateStats,
    ) -> (GraphDiff, UpdateStats) {
        stats.entities_changed = diff.upserted_entities.len();
        stats.entities_removed = diff.removed_entities.len();
        stats.edges_added = diff.added_edges.len();
        stats.edges_removed = diff.removed_edges.len();
        let searched = Instant::now();
        if !self.path_cache.has_cluster(cluster) {
            self.search_cluster(cluster);
        } else if !diff.is_empty() {
            let mut changes = PathChanges::default();
            changes.add_diff(&diff);
            stats.entries_searched = self.update_paths(&changes);
        }
        stats.paths_micros = searched.elapsed().as_micros();
        stats.cluster_paths = self.paths.get(cluster).map(Vec::len).unwrap_or(0);
        (diff, stats)
    }

    fn search_cluster(&mut self, cluster: &str) {
        let alerted = self.alerted_containers();
        self.path_cache
            .rebuild_cluster(&self.graph, cluster, &alerted, &mut self.searcher);
        self.paths
            .insert(cluster.to_string(), self.path_cache.cluster_paths(cluster));
    }

    /// Searches again the entry points that can see the changes; returns how many.
    fn update_paths(&mut self, changes: &PathChanges) -> usize {
        if changes.is_empty() {
            return 0;
        }
        let alerted = self.alerted_containers();
        let (clusters, update) =
            self.path_cache
                .update(&self.graph, changes, &alerted, &mut self.searcher);
        for cluster in clusters {
            if self.inventories.contains_key(&cluster) {
                let paths = self.path_cache.cluster_paths(&cluster);
                self.paths.insert(cluster, paths);
            }
        }
        update.entries_searched
    }

    /// Attack paths of a cluster searched from scratch on the current graph, ignoring what
    /// is kept: what [`Tenant::cluster_attack_paths`] must always equal.
    pub fn recompute_attack_paths(&self, cluster: &str) -> Vec<AttackPath> {
        let alerted = self.alerted_containers();
        cluster_paths(&self.graph, cluster, &alerted, &mut Searcher::new())
    }

    /// Every attack path, highest risk first.
    pub fn attack_paths(&self) -> Vec<&AttackPath> {
        let mut paths: Vec<&AttackPath> = self.paths.values().flatten().map(Arc::as_ref).collect();
        paths.sort_by(|first, second| {
            second
                .risk_score
                .total_cmp(&first.risk_score)
                .then_with(|| first.id.cmp(&second.id))
        });
        paths
    }

    /// Attack paths of one cluster, highest risk first.
    pub fn cluster_attack_paths(&self, cluster: &str) -> Vec<AttackPath> {
        let mut paths: Vec<AttackPath> = self
            .paths
            .get(cluster)
            .into_iter()
            .flatten()
            .map(|path| AttackPath::clone(path))
            .collect();
        sort_paths(&mut paths);
        paths
    }

    /// Every insight: posture controls, vulnerabilities and alerts.
    pub fn insights(&self) -> Vec<Insight> {
        let mut all: Vec<Insight> = self.insights.values().flatten().cloned().collect();
        all.extend(
            self.parts
                .values()
                .flat_map(|parts| parts.insights.values().flatten())
                .cloned(),
        );
        all.extend(self.exposure_insights());
        all.extend(self.vulnerability_insights());
        all.extend(self.alert_insights());
        all.sort_by(|first, second| {
            second
                .severity
                .cmp(&first.severity)
                .then_with(|| first.id.cmp(&second.id))
        });
        all
    }

    /// KubeHound's four fleet questions.
    pub fn fleet_report(&mut self) -> FleetReport {
        fleet_report(&self.graph, &mut self.searcher)
    }
}

fn part_unit(cluster: &str, id: &str) -> Unit {
    Unit::Part {
        cluster: cluster.to_string(),
        id: id.to_string(),
    }
}

/// Every tenant's graph, optionally persisted.
#[derive(Debug, Default)]
pub struct GraphEngine {
    store: Option<GraphStore>,
    tenants: BTreeMap<String, Tenant>,
}

impl InventoryChange {
    /// An upsert of an object.
    pub fn upsert(object: Object) -> InventoryChange {
        InventoryChange::Upsert(Box::new(object))
    }
}

impl GraphEngine {
    /// An engine that keeps everything in memory.
    pub fn in_memory() -> GraphEngine {
        GraphEngine::default()
    }

    /// An engine backed by a store: what the store holds is loaded and derived again.
    pub fn with_store(store: GraphStore) -> Result<GraphEngine> {
        let mut engine = GraphEngine {
            store: None,
            tenants: BTreeMap::new(),
        };
        for tenant_name in store.tenants() {
            let tenant = engine.tenants.entry(tenant_name.clone()).or_default();
            for (cluster, object) in store.load_objects(&tenant_name)? {
                tenant
                    .inventories
                    .entry(cluster)
                    .or_default()
                    .upsert(object);
            }
            let findings = group_by_image(store.load_findings(&tenant_name)?);
            if !findings.is_empty() {
                tenant.graph.apply(Unit::Findings, derive_groups(&findings));
                tenant.findings = findings;
            }
            for alert in store.load_alerts(&tenant_name)? {
                tenant.alerts.insert(alert.id.clone(), alert);
            }
            let clusters: Vec<String> = tenant.inventories.keys().cloned().collect();
            for cluster in clusters {
                let (diff, _) = tenant.refresh_cluster(&cluster);
                store.write_graph_diff(&tenant_name, &tenant.graph, &diff)?;
            }
        }
        engine.store = Some(store);
        Ok(engine)
    }

    /// A tenant, if it has data.
    pub fn tenant(&self, tenant: &str) -> Option<&Tenant> {
        self.tenants.get(tenant)
    }

    /// A tenant for mutation (created when missing).
    pub fn tenant_mut(&mut self, tenant: &str) -> &mut Tenant {
        self.tenants.entry(tenant.to_string()).or_default()
    }

    /// Tenants.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }

    /// The store, when the engine persists.
    pub fn store(&self) -> Option<&GraphStore> {
        self.store.as_ref()
    }

    /// Applies inventory changes of one cluster and brings the graph, insights and that
    /// cluster's attack paths up to date.
    ///
    /// A batch of pod and service changes (what the watches of a busy cluster deliver) that
    /// is not narrow as a whole is applied a change at a time while each is narrow (see
    /// [`Tenant::narrow_change`]); the rest, from the first that is not, in one go.
    pub fn apply_changes(
        &mut self,
        tenant_name: &str,
        cluster: &str,
        changes: Vec<InventoryChange>,
    ) -> Result<UpdateStats> {
        let pods_and_services = changes.iter().all(|change| match change {
            InventoryChange::Upsert(object) => {
                matches!(object.kind, ObjectKind::Pod | ObjectKind::Service)
            }
            InventoryChange::Delete(key) => {
                matches!(key.kind, ObjectKind::Pod | ObjectKind::Service)
            }
            InventoryChange::Replace { .. } => false,
        });
        let narrow = |engine: &GraphEngine, changes: &[InventoryChange]| {
            engine
                .tenants
                .get(tenant_name)
                .and_then(|tenant| tenant.narrow_change(cluster, changes))
                .is_some()
        };
        if changes.len() < 2 || !pods_and_services || narrow(self, &changes) {
            return self.apply_batch(tenant_name, cluster, changes);
        }
        let mut total = UpdateStats::default();
        let mut pending = std::collections::VecDeque::from(changes);
        while let Some(change) = pending.pop_front() {
            if !narrow(self, std::slice::from_ref(&change)) {
                pending.push_front(change);
                total.absorb(self.apply_batch(tenant_name, cluster, pending.into())?);
                break;
            }
            total.absorb(self.apply_batch(tenant_name, cluster, vec![change])?);
        }
        Ok(total)
    }

    fn apply_batch(
        &mut self,
        tenant_name: &str,
        cluster: &str,
        changes: Vec<InventoryChange>,
    ) -> Result<UpdateStats> {
        let tenant = self.tenants.entry(tenant_name.to_string()).or_default();
        let narrow = tenant.narrow_change(cluster, &changes);
        let inventory = tenant.inventories.entry(cluster.to_string()).or_default();
        let mut upserts: Vec<Object> = Vec::new();
        let mut deletes: Vec<ObjectKey> = Vec::new();
        for change in changes {
            match change {
                InventoryChange::Upsert(object) => {
                    if inventory.upsert((*object).clone()) {
                        upserts.push(*object);
                    }
                }
                InventoryChange::Delete(key) => {
                    if inventory.remove(&key) {
                        deletes.push(key);
                    }
                }
                InventoryChange::Replace { kind, objects } => {
                    let listed: BTreeSet<ObjectKey> = objects.iter().map(Object::key).collect();
                    let existing: Vec<ObjectKey> =
                        inventory.of_kind(kind).map(Object::key).collect();
                    for key in existing.into_iter().filter(|key| !listed.contains(key)) {
                        inventory.remove(&key);
                        deletes.push(key);
                    }
                    for object in objects {
                        if inventory.upsert(object.clone()) {
                            upserts.push(object);
                        }
                    }
                }
            }
        }
        if upserts.is_empty() && deletes.is_empty() && tenant.paths.contains_key(cluster) {
            return Ok(UpdateStats {
                cluster_paths: tenant.paths.get(cluster).map(Vec::len).unwrap_or(0),
                ..UpdateStats::default()
            });
        }
        let narrowed = narrow.and_then(|change| tenant.refresh_parts(cluster, &change));
        let (diff, stats) = match narrowed {
            Some(refreshed) => refreshed,
            None => tenant.refresh_cluster(cluster),
        };
        if let Some(store) = &self.store {
            let references: Vec<&Object> = upserts.iter().collect();
            store.write_objects(tenant_name, cluster, &references, &deletes)?;
            store.write_graph_diff(tenant_name, &tenant.graph, &diff)?;
        }
        Ok(stats)
    }

    /// Removes a cluster and everything derived from it.
    pub fn remove_cluster(&mut self, tenant_name: &str, cluster: &str) -> Result<()> {
        let tenant = self.tenants.entry(tenant_name.to_string()).or_default();
        let Some(inventory) = tenant.inventories.remove(cluster) else {
            return Ok(());
        };
        let mut units = vec![(Unit::Cluster(cluster.to_string()), Derived::default())];
        if let Some(parts) = tenant.parts.remove(cluster) {
            units.extend(
                parts
                    .insights
                    .keys()
                    .chain(&parts.services)
                    .map(|id| (part_unit(cluster, id), Derived::default())),
            );
        }
        let diff = tenant.graph.apply_units(units);
        tenant.insights.remove(cluster);
        tenant.paths.remove(cluster);
        tenant.path_cache.forget_cluster(cluster);
        let mut changes = PathChanges::default();
        changes.add_diff(&diff);
        tenant.update_paths(&changes);
        if let Some(store) = &self.store {
            let keys: Vec<ObjectKey> = inventory.iter().map(Object::key).collect();
            store.write_objects(tenant_name, cluster, &[], &keys)?;
            store.write_graph_diff(tenant_name, &tenant.graph, &diff)?;
        }
        Ok(())
    }

    /// Removes a tenant and everything held for it, in memory and in the store.
    pub fn remove_tenant(&mut self, tenant_name: &str) -> Result<()> {
        self.tenants.remove(tenant_name);
        if let Some(store) = &self.store {
            store.remove_tenant(tenant_name)?;
        }
        Ok(())
    }

    /// Drops every scanner finding of a tenant held here (their records were erased from the
    /// log); returns how many images had findings. A tenant not held stays absent.
    pub fn clear_findings(&mut self, tenant_name: &str) -> Result<usize> {
        let Some(tenant) = self.tenants.get(tenant_name) else {
            return Ok(0);
        };
        let images = tenant.findings.len();
        self.set_findings(tenant_name, Vec::new())?;
        Ok(images)
    }

    /// Drops every alert of a tenant held here (their records were erased from the log);
    /// the attack paths through the containers they named are searched again. Returns how
    /// many alerts went.
    pub fn clear_alerts(&mut self, tenant_name: &str) -> Result<usize> {
        let Some(tenant) = self.tenants.get_mut(tenant_name) else {
            return Ok(0);
        };
        let alerts = std::mem::take(&mut tenant.alerts);
        if let Some(store) = &self.store {
            store.remove_alerts(tenant_name)?;
        }
        let mut changes = PathChanges::default();
        for alert in alerts.values() {
            changes.add_containers(tenant.alert_containers(alert));
        }
        tenant.update_paths(&changes);
        Ok(alerts.len())
    }

    /// Replaces the scanner findings of a tenant; attack paths are searched again.
    pub fn set_findings(&mut self, tenant_name: &str, findings: Vec<ImageFindings>) -> Result<()> {
        let tenant = self.tenants.entry(tenant_name.to_string()).or_default();
        let groups = group_by_image(findings);
        let diff = tenant.graph.apply(Unit::Findings, derive_groups(&groups));
        if let Some(store) = &self.store {
            store.write_findings(tenant_name, &groups)?;
            store.write_graph_diff(tenant_name, &tenant.graph, &diff)?;
        }
        tenant.findings = groups;
        let mut changes = PathChanges::default();
        changes.add_diff(&diff);
        tenant.update_paths(&changes);
        Ok(())
    }

    /// Replaces the scanner findings of just the images named: an entry replaces the stored
    /// findings with the same digest, or, when none has it, those of the same image reference;
    /// an entry without vulnerabilities removes that image's findings. Only those images, the
    /// vulnerabilities they carry and the attack paths that depend on them are touched; the
    /// result equals [`GraphEngine::set_findings`] of the whole updated set.
    #[allow(clippy::disallowed_types)] // CPU-time statistics, see the import.
    pub fn update_image_findings(
        &mut self,
        tenant_name: &str,
        images: Vec<ImageFindings>,
    ) -> Result<UpdateStats> {
        let mut stats = UpdateStats::default();
        let tenant = self.tenants.entry(tenant_name.to_string()).or_default();
        let started = Instant::now();
        let changed = replace_images(&mut tenant.findings, images);
        if changed.is_empty() {
            return Ok(stats);
        }
        let (removed, added) = findings_patch(&tenant.graph, &tenant.findings, &changed);
        stats.derive_micros = started.elapsed().as_micros();
        let applied = Instant::now();
        let diff = tenant.graph.patch(Unit::Findings, &removed, added);
        stats.apply_micros = applied.elapsed().as_micros();
        stats.entities_changed = diff.upserted_entities.len();
        stats.entities_removed = diff.removed_entities.len();
        stats.edges_added = diff.added_edges.len();
        stats.edges_removed = diff.removed_edges.len();
        if let Some(store) = &self.store {
            let groups: Vec<(&str, Option<&Vec<ImageFindings>>)> = changed
                .iter()
                .map(|image| (image.as_str(), tenant.findings.get(image)))
                .collect();
            store.write_image_findings(tenant_name, &groups)?;
            store.write_graph_diff(tenant_name, &tenant.graph, &diff)?;
        }
        let searched = Instant::now();
        let mut changes = PathChanges::default();
        changes.add_diff(&diff);
        stats.entries_searched = tenant.update_paths(&changes);
        stats.paths_micros = searched.elapsed().as_micros();
        stats.cluster_paths = tenant.paths.values().map(Vec::len).sum();
        Ok(stats)
    }

    /// Adds alerts (deduplicated by id); the clusters they concern are searched again.
    pub fn add_alerts(&mut self, tenant_name: &str, alerts: Vec<RuntimeAlert>) -> Result<()> {
        let tenant = self.tenants.entry(tenant_name.to_string()).or_default();
        if let Some(store) = &self.store {
            store.write_alerts(tenant_name, &alerts)?;
        }
        // Containers an alert no longer names (a replaced alert) and those it names now.
        let mut changes = PathChanges::default();
        for alert in alerts {
            changes.add_containers(tenant.alert_containers(&alert));
            if let Some(previous) = tenant.alerts.insert(alert.id.clone(), alert) {
                changes.add_containers(tenant.alert_containers(&previous));
            }
        }
        tenant.update_paths(&changes);
        Ok(())
    }
}
