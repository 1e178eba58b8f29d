//! Attack paths: templates from entry points (the internet, a container with an alert, any
//! container) to targets (node takeover, cluster-takeover permissions, secrets, cloud
//! credentials), Defender's container attack paths, and KubeHound's four fleet questions.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::graph::{Slot, TenantGraph};
use crate::model::{EdgeKind, Entity, EntityKind, INTERNET_ID};
use crate::search::Searcher;

pub use crate::fleet_report::{FleetReport, ShortestPath, external_endpoints, fleet_report};

/// Longest path searched, in hops.
pub const MAX_HOPS: u8 = 6;

/// Most paths kept per entry point (the closest targets first).
const MAX_PATHS_PER_ENTRY: usize = 16;

/// What a path ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetClass {
    /// Permissions amounting to cluster takeover (cluster-admin and equivalents, system:masters).
    ClusterTakeover,
    /// Control of a node.
    NodeTakeover,
    /// Cloud credentials.
    CloudCredentials,
    /// Permissions to read secrets.
    Secrets,
    /// An internet-exposed container with exploitable vulnerabilities (Defender's paths).
    ExposedVulnerableWorkload,
}

impl TargetClass {
    fn base_score(self) -> f64 {
        match self {
            TargetClass::ClusterTakeover => 9.0,
            TargetClass::NodeTakeover => 8.0,
            TargetClass::CloudCredentials => 8.0,
            TargetClass::Secrets => 7.0,
            TargetClass::ExposedVulnerableWorkload => 6.0,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TargetClass::ClusterTakeover => "cluster takeover",
            TargetClass::NodeTakeover => "node takeover",
            TargetClass::CloudCredentials => "cloud credentials",
            TargetClass::Secrets => "secret access",
            TargetClass::ExposedVulnerableWorkload => "exploitable exposed workload",
        }
    }
}

/// Which entities are targets, and of which class.
pub fn target_class(entity: &Entity) -> Option<TargetClass> {
    match entity.kind {
        EntityKind::Node => Some(TargetClass::NodeTakeover),
        EntityKind::PermissionSet if entity.flag("critical") => Some(TargetClass::ClusterTakeover),
        EntityKind::Group if entity.flag("critical") => Some(TargetClass::ClusterTakeover),
        EntityKind::PermissionSet if entity.flag("reads_secrets") => Some(TargetClass::Secrets),
        EntityKind::CloudIdentity => Some(TargetClass::CloudCredentials),
        _ => None,
    }
}

/// Whether an entity of this kind may be a target (see [`target_class`]).
pub fn may_be_target(kind: EntityKind) -> bool {
    matches!(
        kind,
        EntityKind::Node
            | EntityKind::PermissionSet
            | EntityKind::Group
            | EntityKind::CloudIdentity
    )
}

/// A step of a path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStep {
    /// Entity id.
    pub entity_id: String,
    /// Entity kind.
    pub kind: EntityKind,
    /// Entity name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Cluster.
    pub cluster: String,
    /// Technique used to move to the next step (empty on the last step).
    pub technique: String,
    /// Its MITRE ATT&CK id.
    pub mitre_id: String,
}

/// An attack path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackPath {
    /// Stable id (template, entry and target).
    pub id: String,
    /// Template that found it.
    pub template: &'static str,
    /// Title.
    pub title: String,
    /// Risk score from 0 to 10.
    pub risk_score: f64,
    /// Why the score is what it is.
    pub risk_reasons: Vec<String>,
    /// Cluster the path runs in.
    pub cluster: String,
    /// Class of the target.
    pub target_class: TargetClass,
    /// Ordered steps, entry first, target last.
    pub steps: Vec<PathStep>,
    /// How to break the path.
    pub remediation: Vec<String>,
}

impl AttackPath {
    /// The entry step.
    pub fn entry(&self) -> &PathStep {
        &self.steps[0]
    }

    /// The target step.
    pub fn target(&self) -> &PathStep {
        &self.steps[self.steps.len() - 1]
    }

    /// Technique labels along the path.
    pub fn techniques(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|step| !step.technique.is_empty())
            .map(|step| step.technique.as_str())
            .collect()
    }
}

fn step_of(entity: &Entity, edge: Option<EdgeKind>) -> PathStep {
    let technique = edge.and_then(EdgeKind::technique);
    PathStep {
        entity_id: entity.id.clone(),
        kind: entity.kind,
        name: entity.name.clone(),
        namespace: entity.namespace.clone(),
        cluster: entity.cluster.clone(),
        technique: match (edge, technique) {
            (_, Some(technique)) => technique.label.to_string(),
            (Some(edge), None) => edge.as_str().to_ascii_uppercase(),
            (None, None) => String::new(),
        },
        mitre_id: technique
            .map(|technique| technique.mitre_id.to_string())
            .unwrap_or_default(),
    }
}

fn stable_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Vulnerability summary of a container's image.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageRisk {
    /// Critical vulnerabilities.
    pub critical: u64,
    /// High vulnerabilities.
    pub high: u64,
    /// Remote code execution.
    pub rce: bool,
}

/// The vulnerability summary of the image a container runs.
pub fn image_risk(graph: &TenantGraph, container: Slot) -> ImageRisk {
    for &(image, kind) in graph.out_edges(container) {
        if kind != EdgeKind::UsesImage {
            continue;
        }
        if let Some(entity) = graph.entity(image) {
            let number = |key: &str| {
                entity
                    .properties
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            return ImageRisk {
                critical: number("critical_vulnerabilities"),
                high: number("high_vulnerabilities"),
                rce: entity.flag("rce_vulnerability"),
            };
        }
    }
    ImageRisk::default()
}

/// Where a search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Internet,
    Alerted,
    AssumedBreach,
}

struct PathBuilder<'g> {
    graph: &'g TenantGraph,
    alerted: &'g HashSet<Slot>,
    paths: BTreeMap<String, AttackPath>,
}

impl PathBuilder<'_> {
    fn score(
        &self,
        entry: EntryKind,
        first_container: Option<Slot>,
        class: TargetClass,
        hops: usize,
    ) -> (f64, Vec<String>) {
        let mut score = class.base_score();
        let mut reasons = vec![format!(
            "target: {} (base {:.1})",
            class.describe(),
            class.base_score()
        )];
        match entry {
            EntryKind::Internet => reasons.push("entry is reachable from the internet".to_string()),
            EntryKind::Alerted => {
                score += 1.0;
                reasons.push("entry container has a recent runtime or audit alert: likely compromised (+1.0)".to_string());
            }
            EntryKind::AssumedBreach => {
                score -= 2.0;
                reasons.push("entry assumes a container is already compromised (-2.0)".to_string());
            }
        }
        if let Some(container) = first_container {
            let risk = image_risk(self.graph, container);
            if risk.rce {
                score += 1.5;
                reasons.push(
                    "entry image has a remote code execution vulnerability (+1.5)".to_string(),
                );
            } else if risk.critical > 0 {
                score += 1.0;
                reasons.push(format!(
                    "entry image has {} critical vulnerabilities (+1.0)",
                    risk.critical
                ));
            } else if risk.high > 0 {
                score += 0.5;
                reasons.push(format!(
                    "entry image has {} high vulnerabilities (+0.5)",
                    risk.high
                ));
            } else if entry == EntryKind::Internet {
                score -= 1.0;
                reasons.push("no known vulnerability on the exposed container (-1.0)".to_string());
            }
            if self.alerted.contains(&container) && entry != EntryKind::Alerted {
                score += 1.0;
                reasons.push("a container on the path has a recent alert (+1.0)".to_string());
            }
        }
        let extra_hops = hops.saturating_sub(3) as f64;
        if extra_hops > 0.0 {
            score -= 0.3 * extra_hops;
            reasons.push(format!(
                "{hops} steps: each step past 3 makes it harder (-{:.1})",
                0.3 * extra_hops
            ));
        }
        (score.clamp(0.0, 10.0), reasons)
    }

    fn add(
        &mut self,
        template: &'static str,
        entry: EntryKind,
        route: &[(Slot, Option<EdgeKind>)],
        class: TargetClass,
        title: String,
    ) {
        let graph = self.graph;
        let steps: Vec<PathStep> = route
            .iter()
            .filter_map(|(slot, edge)| graph.entity(*slot).map(|entity| step_of(entity, *edge)))
            .collect();
        if steps.len() < 2 {
            return;
        }
        let first_container = route.iter().map(|(slot, _)| *slot).find(|slot| {
            graph
                .entity(*slot)
                .is_some_and(|entity| entity.kind == EntityKind::Container)
        });
        let (risk_score, risk_reasons) = self.score(entry, first_container, class, steps.len() - 1);
        let mut remediation: Vec<String> = Vec::new();
        for (_, edge) in route {
            if let Some(technique) = edge.and_then(EdgeKind::technique) {
                let line = format!("{}: {}", technique.label, technique.remediation);
                if !remediation.contains(&line) {
                    remediation.push(line);
                }
            }
        }
        if let Some(container) = first_container
            && let risk = image_risk(graph, container)
            && (risk.rce || risk.critical > 0 || risk.high > 0)
            && let Some(image) = graph
                .entity(container)
                .and_then(|entity| entity.text("image"))
        {
            remediation.insert(
                0,
                format!("update image {image}: it has known exploitable vulnerabilities"),
            );
        }
        let entry_step = &steps[0];
        let target_step = &steps[steps.len() - 1];
        let cluster = steps
            .iter()
            .find(|step| !step.cluster.is_empty())
            .map(|step| step.cluster.clone())
            .unwrap_or_default();
        let id = stable_id(&[template, &entry_step.entity_id, &target_step.entity_id]);
        let path = AttackPath {
            id: id.clone(),
            template,
            title,
            risk_score: (risk_score * 10.0).round() / 10.0,
            risk_reasons,
            cluster,
            target_class: class,
            steps,
            remediation,
        };
        self.paths.entry(id).or_insert(path);
    }
}

/// Edges an attack-path search walks.
pub fn walks(kind: EdgeKind) -> bool {
    kind.is_pathfinding() && kind != EdgeKind::RoutesTo
}

/// Where a path search starts, in the order a cluster's searches run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryPoint {
    /// An endpoint the internet routes to.
    Endpoint,
    /// A container with at least one attack edge (assumed breach, or alerted).
    Container,
}

/// Whether a slot starts a path search, and as what.
pub fn entry_point(graph: &TenantGraph, slot: Slot) -> Option<EntryPoint> {
    let entity = graph.entity(slot)?;
    match entity.kind {
        EntityKind::Endpoint => {
            let internet = graph.slot(INTERNET_ID)?;
            graph
                .in_edges(slot)
                .contains(&(internet, EdgeKind::RoutesTo))
                .then_some(EntryPoint::Endpoint)
        }
        // A container without any attack edge can start no path.
        EntityKind::Container => graph
            .out_edges(slot)
            .iter()
            .any(|(_, kind)| walks(*kind))
            .then_some(EntryPoint::Container),
        _ => None,
    }
}

/// The entry points of a cluster in search order: endpoints, then containers, each by id.
pub fn cluster_entries(graph: &TenantGraph, cluster: &str) -> Vec<(EntryPoint, String, Slot)> {
    let mut entries: Vec<(EntryPoint, String, Slot)> = Vec::new();
    if let Some(internet) = graph.slot(INTERNET_ID) {
        for &(slot, kind) in graph.out_edges(internet) {
            if kind != EdgeKind::RoutesTo {
                continue;
            }
            if let Some(entity) = graph.entity(slot)
                && entity.kind == EntityKind::Endpoint
                && entity.cluster == cluster
            {
                entries.push((EntryPoint::Endpoint, entity.id.clone(), slot));
            }
        }
    }
    for slot in graph.of_kind(EntityKind::Container) {
        if let Some(entity) = graph.entity(slot)
            && entity.cluster == cluster
            && entry_point(graph, slot) == Some(EntryPoint::Container)
        {
            entries.push((EntryPoint::Container, entity.id.clone(), slot));
        }
    }
    entries.sort();
    entries.dedup();
    entries
}

/// The attack paths found from one entry point, by id (a search that finds the same id twice
/// keeps the first). A path depends only on what the search reaches within [`MAX_HOPS`], the
/// images of the containers it reaches, the pods running them and the alerted containers.
pub fn entry_paths(
    graph: &TenantGraph,
    entry: Slot,
    alerted: &HashSet<Slot>,
    searcher: &mut Searcher,
) -> Vec<AttackPath> {
    let mut builder = PathBuilder {
        graph,
        alerted,
        paths: BTreeMap::new(),
    };
    match entry_point(graph, entry) {
        Some(EntryPoint::Endpoint) => {
            if let Some(internet) = graph.slot(INTERNET_ID) {
                searcher.run(graph, &[entry], MAX_HOPS - 1, walks);
                let prefix = (internet, Some(EdgeKind::RoutesTo));
                collect(
                    &mut builder,
                    searcher,
                    EntryKind::Internet,
                    "internet-to-critical",
                    Some(prefix),
                );
                defender_paths(&mut builder, searcher, internet, entry);
            }
        }
        Some(EntryPoint::Container) => {
            let (kind, template) = if alerted.contains(&entry) {
                (EntryKind::Alerted, "compromised-container")
            } else {
                (EntryKind::AssumedBreach, "assumed-breach")
            };
            searcher.run(graph, &[entry], MAX_HOPS, walks);
            collect(&mut builder, searcher, kind, template, None);
        }
        None => {}
    }
    builder.paths.into_values().collect()
}

/// Merges the paths of a cluster's entry points, given in search order: of several paths
/// with one id (the internet's paths to one target through different endpoints), the first
/// is kept. The result is sorted with [`sort_paths`]. Paths may be shared (`Arc`).
pub fn merge_entry_paths<'p, P>(per_entry: impl Iterator<Item = &'p [P]>) -> Vec<P>
where
    P: Borrow<AttackPath> + Clone + 'p,
{
    let mut seen: HashSet<&str> = HashSet::new();
    let mut paths: Vec<P> = Vec::new();
    for entry in per_entry {
        for path in entry {
            if seen.insert(path.borrow().id.as_str()) {
                paths.push(path.clone());
            }
        }
    }
    sort_paths(&mut paths);
    paths
}

/// Computes the attack paths of one cluster from scratch.
pub fn cluster_paths(
    graph: &TenantGraph,
    cluster: &str,
    alerted: &HashSet<Slot>,
    searcher: &mut Searcher,
) -> Vec<AttackPath> {
    let per_entry: Vec<Vec<AttackPath>> = cluster_entries(graph, cluster)
        .into_iter()
        .map(|(_, _, slot)| entry_paths(graph, slot, alerted, searcher))
        .collect();
    merge_entry_paths(per_entry.iter().map(Vec::as_slice))
}

/// Orders paths by risk (highest first), then id.
pub fn sort_paths<P: Borrow<AttackPath>>(paths: &mut [P]) {
    paths.sort_by(|first, second| {
        let (first, second) = (first.borrow(), second.borrow());
        second
            .risk_score
            .total_cmp(&first.risk_score)
            .then_with(|| first.id.cmp(&second.id))
    });
}

fn collect(
    builder: &mut PathBuilder<'_>,
    searcher: &Searcher,
    entry: EntryKind,
    template: &'static str,
    prefix: Option<(Slot, Option<EdgeKind>)>,
) {
    let graph = builder.graph;
    // The nearest targets, of one distance by id: the same ones whatever order the search
    // visited a level in.
    let mut targets: Vec<(u8, &str, Slot, TargetClass)> = searcher
        .reached
        .iter()
        .skip(1)
        .filter_map(|&slot| {
            let entity = graph.entity(slot)?;
            let class = target_class(entity)?;
            Some((searcher.depth_of(slot), entity.id.as_str(), slot, class))
        })
        .collect();
    targets.sort_unstable_by(|first, second| (first.0, first.1).cmp(&(second.0, second.1)));
    targets.truncate(MAX_PATHS_PER_ENTRY);
    for (_, _, slot, class) in targets {
        let Some(entity) = graph.entity(slot) else {
            continue;
        };
        let mut route = Vec::new();
        if let Some(prefix) = prefix {
            route.push(prefix);
        }
        route.extend(searcher.path_to(slot));
        let entry_name = graph
            .entity(route[0].0)
            .map(|entity| entity.name.clone())
            .unwrap_or_default();
        let title = match entry {
            EntryKind::Internet => format!(
                "Internet-exposed endpoint leads to {} ({})",
                class.describe(),
                entity.name
            ),
            EntryKind::Alerted => format!(
                "Alerted container {entry_name} can reach {} ({})",
                class.describe(),
                entity.name
            ),
            EntryKind::AssumedBreach => format!(
                "Container {entry_name} can reach {} ({})",
                class.describe(),
                entity.name
            ),
        };
        builder.add(template, entry, &route, class, title);
    }
}

/// Defender's container attack paths: an internet-exposed pod running a container with
/// high-severity or RCE vulnerabilities, and its host-network variant.
fn defender_paths(
    builder: &mut PathBuilder<'_>,
    searcher: &Searcher,
    internet: Slot,
    endpoint: Slot,
) {
    let graph = builder.graph;
    let Some(endpoint_entity) = graph.entity(endpoint) else {
        return;
    };
    for &(container, kind) in graph.out_edges(endpoint) {
        if kind != EdgeKind::EndpointExploit || !searcher.was_reached(container) {
            continue;
        }
        let risk = image_risk(graph, container);
        if !(risk.rce || risk.critical > 0 || risk.high > 0) {
            continue;
        }
        let pod = graph
            .in_edges(container)
            .iter()
            .find(|(_, kind)| *kind == EdgeKind::Runs)
            .map(|(pod, _)| *pod);
        let host_network = pod
            .and_then(|pod| graph.entity(pod))
            .is_some_and(|pod| pod.flag("host_network"));
        let severity = if risk.rce { "RCE" } else { "high severity" };
        let (template, title) = if host_network
            && endpoint_entity.text("exposure") == Some("internet")
            && risk.rce
        {
            (
                "defender-host-network-rce",
                "Kubernetes pod running on an internet exposed node uses host network is running a container with RCE vulnerabilities".to_string(),
            )
        } else {
            (
                if risk.rce {
                    "defender-exposed-rce"
                } else {
                    "defender-exposed-high-severity"
                },
                format!(
                    "Internet exposed Kubernetes pod is running a container with {severity} vulnerabilities"
                ),
            )
        };
        let mut route = vec![
            (internet, Some(EdgeKind::RoutesTo)),
            (endpoint, Some(EdgeKind::EndpointExploit)),
        ];
        if let Some(pod) = pod {
            route.push((container, None));
            // Show the pod the container belongs to as the workload at risk.
            let _ = pod;
        } else {
            route.push((container, None));
        }
        builder.add(
            template,
            EntryKind::Internet,
            &route,
            TargetClass::ExposedVulnerableWorkload,
            title,
        );
    }
}
