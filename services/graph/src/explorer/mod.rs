//! The explorer: a query language over the security graph, as a JSON query-builder structure
//! (entity type, conditions, nested related-entity conditions, like Cloud Security Explorer)
//! and an equivalent compact text form, with templates. Every query runs under a cost budget
//! and fails with a clear error instead of running away.

pub mod ast;
mod candidates;
mod semijoin;
pub mod text;

use semijoin::{RelatedState, compare_numbers};

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::error::{GraphError, Result};
use crate::findings::Severity;
use crate::graph::{SeverityBucket, Slot, TenantGraph};
use crate::model::{ALL_ENTITY_KINDS, EdgeKind, Entity, EntityKind};

pub use ast::{Condition, Query, Related};
pub use text::{parse_text, to_text};

/// Budgets of one query.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Most entities and edges looked at.
    pub max_visits: usize,
    /// Most results returned in one page.
    pub max_results: usize,
    /// Most related entities listed per result and included kind.
    pub max_included: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_visits: 20_000_000,
            max_results: 10_000,
            max_included: 100,
        }
    }
}

/// One result: the entity and the related entities asked for with `include`.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRow {
    /// The matching entity.
    pub entity: Arc<Entity>,
    /// Related entities by kind (ids).
    pub related: BTreeMap<String, Vec<String>>,
}

/// The answer to a query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    /// Number of matching entities.
    pub total: usize,
    /// The page of results.
    pub rows: Vec<QueryRow>,
    /// Entities and edges looked at.
    pub visits: usize,
}

/// A ready-made query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryTemplate {
    /// Stable id.
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// The query in text form; `{cve}` is replaced by a parameter.
    pub text: &'static str,
}

/// The shipped query templates.
pub fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            id: "images-with-cve",
            title: "Images with a given CVE and the pods running them",
            text: "image where has vulnerability(name = \"{cve}\") include pod, cluster",
        },
        QueryTemplate {
            id: "exposed-pods-critical-vulnerabilities",
            title: "Internet-exposed pods with critical vulnerabilities",
            text: "pod where exposed_to_internet and has vulnerability(severity >= critical) include image",
        },
        QueryTemplate {
            id: "service-accounts-create-pods-kube-system",
            title: "Service accounts that can create pods in kube-system",
            text: "service_account where has permission_set(creates_pods = \"kube-system\" or creates_pods = \"*\")",
        },
        QueryTemplate {
            id: "pods-high-severity-vulnerabilities",
            title: "Kubernetes pods running images with high severity vulnerabilities",
            text: "pod where has vulnerability(severity >= high) include image",
        },
        QueryTemplate {
            id: "namespaces-with-vulnerable-pods",
            title: "Kubernetes namespaces contain vulnerable pods",
            text: "namespace where has pod(has vulnerability(severity >= high))",
        },
        QueryTemplate {
            id: "containers-escaping-to-node",
            title: "Containers that can escape to their node",
            text: "container where escapes_to_node include pod",
        },
        QueryTemplate {
            id: "identities-reading-secrets-cluster-wide",
            title: "Identities that can read secrets cluster-wide",
            text: "service_account where has permission_set(reads_secrets and namespaced = false)",
        },
        QueryTemplate {
            id: "rce-images-exposed",
            title: "Pods exposed to the internet running images vulnerable to remote code execution",
            text: "pod where exposed_to_internet and has image(rce_vulnerability)",
        },
    ]
}

/// One step of a relation between kinds: follow `edge` out (true) or in (false).
type Step = (EdgeKind, bool);

/// How entity kinds relate, for `has KIND` and `include KIND`.
const SCHEMA: &[(EntityKind, EdgeKind, EntityKind)] = &[
    (
        EntityKind::Cluster,
        EdgeKind::Contains,
        EntityKind::Namespace,
    ),
    (EntityKind::Cluster, EdgeKind::Contains, EntityKind::Node),
    (EntityKind::Namespace, EdgeKind::Contains, EntityKind::Pod),
    (
        EntityKind::Namespace,
        EdgeKind::Contains,
        EntityKind::Workload,
    ),
    (
        EntityKind::Namespace,
        EdgeKind::Contains,
        EntityKind::Service,
    ),
    (
        EntityKind::Namespace,
        EdgeKind::Contains,
        EntityKind::ServiceAccount,
    ),
    (
        EntityKind::Namespace,
        EdgeKind::Contains,
        EntityKind::Secret,
    ),
    (EntityKind::Workload, EdgeKind::Owns, EntityKind::Pod),
    (EntityKind::Pod, EdgeKind::Runs, EntityKind::Container),
    (EntityKind::Pod, EdgeKind::ScheduledOn, EntityKind::Node),
    (
        EntityKind::Pod,
        EdgeKind::RunsAs,
        EntityKind::ServiceAccount,
    ),
    (EntityKind::Pod, EdgeKind::UsesSecret, EntityKind::Secret),
    (
        EntityKind::Container,
        EdgeKind::UsesImage,
        EntityKind::Image,
    ),
    (EntityKind::Container, EdgeKind::Mounts, EntityKind::Volume),
    (
        EntityKind::Image,
        EdgeKind::HasVulnerability,
        EntityKind::Vulnerability,
    ),
    (EntityKind::Service, EdgeKind::RoutesTo, EntityKind::Pod),
    (EntityKind::Service, EdgeKind::Exposes, EntityKind::Endpoint),
    (EntityKind::Ingress, EdgeKind::RoutesTo, EntityKind::Service),
    (
        EntityKind::LoadBalancer,
        EdgeKind::RoutesTo,
        EntityKind::Service,
    ),
    (
        EntityKind::Endpoint,
        EdgeKind::EndpointExploit,
        EntityKind::Container,
    ),
    (
        EntityKind::NetworkPolicy,
        EdgeKind::Selects,
        EntityKind::Pod,
    ),
    (
        EntityKind::ServiceAccount,
        EdgeKind::PermissionDiscover,
        EntityKind::PermissionSet,
    ),
    (
        EntityKind::User,
        EdgeKind::PermissionDiscover,
        EntityKind::PermissionSet,
    ),
    (
        EntityKind::Group,
        EdgeKind::PermissionDiscover,
        EntityKind::PermissionSet,
    ),
    (
        EntityKind::RoleBinding,
        EdgeKind::Yields,
        EntityKind::PermissionSet,
    ),
    (
        EntityKind::ClusterRoleBinding,
        EdgeKind::Yields,
        EntityKind::PermissionSet,
    ),
    (
        EntityKind::ServiceAccount,
        EdgeKind::CloudIdentityAssume,
        EntityKind::CloudIdentity,
    ),
];

/// The shortest chain of schema steps from one kind to another.
fn relation(from: EntityKind, to: EntityKind) -> Option<Vec<(Step, EntityKind)>> {
    let mut previous: HashMap<EntityKind, (EntityKind, Step)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(current) = queue.pop_front() {
        if current == to && current != from {
            break;
        }
        for &(source, edge, target) in SCHEMA {
            let hops = [
                (source, target, (edge, true)),
                (target, source, (edge, false)),
            ];
            for (start, end, step) in hops {
                if start == current && end != from && !previous.contains_key(&end) {
                    previous.insert(end, (current, step));
                    queue.push_back(end);
                }
            }
        }
    }
    let mut chain = Vec::new();
    let mut current = to;
    while current != from {
        let (before, step) = *previous.get(&current)?;
        chain.push((step, current));
        current = before;
    }
    chain.reverse();
    Some(chain)
}

fn kind_of(name: &str, position: &str) -> Result<EntityKind> {
    EntityKind::parse(name).ok_or_else(|| GraphError::InvalidQuery {
        position: position.to_string(),
        message: format!(
            "unknown entity kind {name}; known kinds: {}",
            ALL_ENTITY_KINDS
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// A condition with kinds resolved and relations planned.
#[derive(Debug)]
enum Plan {
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    Related {
        /// Index of the condition's state in the evaluator.
        index: usize,
        from: EntityKind,
        chain: Vec<(Step, EntityKind)>,
        condition: Option<Box<Plan>>,
    },
    Property {
        property: String,
        op: Op,
        value: Value,
        /// For `severity`, the rank of the value, compared with the entity's `severity_rank`.
        severity_rank: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Equal,
    NotEqual,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Contains,
    Exists,
}

fn plan(
    condition: &Condition,
    kind: EntityKind,
    pointer: &str,
    related_count: &mut usize,
) -> Result<Plan> {
    Ok(match condition {
        Condition::And { and } => Plan::And(
            and.iter()
                .enumerate()
                .map(|(index, inner)| {
                    plan(
                        inner,
                        kind,
                        &format!("{pointer}/and/{index}"),
                        related_count,
                    )
                })
                .collect::<Result<_>>()?,
        ),
        Condition::Or { or } => Plan::Or(
            or.iter()
                .enumerate()
                .map(|(index, inner)| {
                    plan(inner, kind, &format!("{pointer}/or/{index}"), related_count)
                })
                .collect::<Result<_>>()?,
        ),
        Condition::Not { not } => Plan::Not(Box::new(plan(
            not,
            kind,
            &format!("{pointer}/not"),
            related_count,
        )?)),
        Condition::Related { related } => {
            let target = kind_of(&related.entity, &format!("{pointer}/related/entity"))?;
            let chain = relation(kind, target).ok_or_else(|| GraphError::InvalidQuery {
                position: format!("{pointer}/related"),
                message: format!(
                    "a {} is not related to a {}",
                    kind.as_str(),
                    target.as_str()
                ),
            })?;
            let condition = match &related.condition {
                Some(inner) => Some(Box::new(plan(
                    inner,
                    target,
                    &format!("{pointer}/related/where"),
                    related_count,
                )?)),
                None => None,
            };
            let index = *related_count;
            *related_count += 1;
            Plan::Related {
                index,
                from: kind,
                chain,
                condition,
            }
        }
        Condition::Property {
            property,
            op,
            value,
        } => {
            let op = match op.as_str() {
                "=" | "==" => Op::Equal,
                "!=" => Op::NotEqual,
                ">" => Op::Greater,
                ">=" => Op::GreaterEqual,
                "<" => Op::Less,
                "<=" => Op::LessEqual,
                "~" | "contains" => Op::Contains,
                "exists" => Op::Exists,
                other => {
                    return Err(GraphError::InvalidQuery {
                        position: format!("{pointer}/op"),
                        message: format!("unknown operator {other}; use = != > >= < <= ~ exists"),
                    });
                }
            };
            Plan::Property {
                property: property.clone(),
                op,
                value: value.clone(),
                severity_rank: (property == "severity")
                    .then(|| Severity::rank_of(value))
                    .flatten(),
            }
        }
    })
}

struct Evaluator<'g> {
    graph: &'g TenantGraph,
    visits: usize,
    limits: QueryLimits,
    /// Per related-entity condition (by plan index): how it is evaluated.
    related_states: Vec<RelatedState>,
}

impl Evaluator<'_> {
    fn charge(&mut self, amount: usize) -> Result<()> {
        self.visits += amount;
        if self.visits > self.limits.max_visits {
            return Err(GraphError::QueryTooExpensive {
                message: format!(
                    "looked at more than {} entities and edges; narrow the query (add conditions on the entity first, or a cluster/namespace filter)",
                    self.limits.max_visits
                ),
            });
        }
        Ok(())
    }

    /// A property of the entity: borrowed when the entity holds it, computed otherwise.
    fn property<'e>(&self, slot: Slot, entity: &'e Entity, name: &str) -> Option<Cow<'e, Value>> {
        Some(Cow::Owned(match name {
            "name" => Value::String(entity.name.clone()),
            "namespace" => Value::String(entity.namespace.clone()),
            "cluster" => Value::String(entity.cluster.clone()),
            "kind" => Value::String(entity.kind.as_str().to_string()),
            "id" => Value::String(entity.id.clone()),
            "escapes_to_node" => {
                Value::Bool(self.graph.out_edges(slot).iter().any(|(target, kind)| {
                    kind.is_technique()
                        && *kind != EdgeKind::PodAttach
                        && self.graph.kind_of(*target) == Some(EntityKind::Node)
                }))
            }
            _ => return entity.properties.get(name).map(Cow::Borrowed),
        }))
    }

    fn compare(found: Option<&Value>, property: &str, op: Op, value: &Value) -> bool {
        let Some(found) = found else {
            return op == Op::NotEqual || (op == Op::Equal && *value == Value::Bool(false));
        };
        if op == Op::Exists {
            return true;
        }
        if op == Op::Contains {
            let needle: Cow<'_, str> = match value {
                Value::String(text) => Cow::Borrowed(text),
                other => Cow::Owned(other.to_string()),
            };
            return match found {
                Value::String(text) => text.contains(needle.as_ref()),
                Value::Array(items) => items
                    .iter()
                    .any(|item| item.as_str() == Some(needle.as_ref()) || *item == *value),
                _ => false,
            };
        }
        let ordered = |left: f64, right: f64| compare_numbers(op, left, right);
        if property == "severity"
            && let (Some(left), Some(right)) = (Severity::rank_of(found), Severity::rank_of(value))
        {
            return ordered(left, right);
        }
        if let (Some(left), Some(right)) = (found.as_f64(), value.as_f64()) {
            return ordered(left, right);
        }
        match op {
            Op::Equal => {
                *found == *value
                    || found
                        .as_str()
                        .is_some_and(|text| Some(text) == value.as_str())
            }
            Op::NotEqual => *found != *value,
            _ => match (found.as_str(), value.as_str()) {
                (Some(left), Some(right)) => match op {
                    Op::Greater => left > right,
                    Op::GreaterEqual => left >= right,
                    Op::Less => left < right,
                    Op::LessEqual => left <= right,
                    _ => false,
                },
                _ => false,
            },
        }
    }

    fn matches(&mut self, slot: Slot, plan: &Plan) -> Result<bool> {
        self.charge(1)?;
        Ok(match plan {
            Plan::And(parts) => {
                for part in parts {
                    if !self.matches(slot, part)? {
                        return Ok(false);
                    }
                }
                true
            }
            Plan::Or(parts) => {
                for part in parts {
                    if self.matches(slot, part)? {
                        return Ok(true);
                    }
                }
                false
            }
            Plan::Not(inner) => !self.matches(slot, inner)?,
            Plan::Property {
                property,
                op,
                value,
                severity_rank,
            } => {
                if let Some(wanted) = severity_rank
                    && !matches!(op, Op::Contains | Op::Exists)
                    && let Some(SeverityBucket::Rank(rank)) = self.graph.severity_of(slot)
                {
                    return Ok(compare_numbers(*op, f64::from(rank), *wanted));
                }
                let Some(entity) = self.graph.entity(slot) else {
                    return Ok(false);
                };
                if let Some(wanted) = severity_rank
                    && !matches!(op, Op::Contains | Op::Exists)
                    && let Some(rank) = entity
                        .properties
                        .get("severity_rank")
                        .and_then(Value::as_f64)
                {
                    return Ok(compare_numbers(*op, rank, *wanted));
                }
                // The common identity comparisons need no copy of the field.
                let field = match property.as_str() {
                    "name" => Some(entity.name.as_str()),
                    "namespace" => Some(entity.namespace.as_str()),
                    "cluster" => Some(entity.cluster.as_str()),
                    "id" => Some(entity.id.as_str()),
                    _ => None,
                };
                if let (Some(field), Some(wanted), Op::Equal | Op::NotEqual) =
                    (field, value.as_str(), op)
                {
                    return Ok((field == wanted) == (*op == Op::Equal));
                }
                let found = self.property(slot, entity, property);
                Self::compare(found.as_deref(), property, *op, value)
            }
            Plan::Related {
                index,
                from,
                chain,
                condition,
            } => self.related_holds(slot, *index, *from, chain, condition.as_deref())?,
        })
    }

    /// Keeps the slots that satisfy `plan`, in order.
    fn retain_matching(&mut self, slots: &mut Vec<Slot>, plan: &Plan) -> Result<()> {
        if let Plan::Related {
            index,
            from,
            chain,
            condition,
        } = plan
        {
            return self.retain_related(slots, *index, *from, chain, condition.as_deref());
        }
        let mut kept = Vec::with_capacity(slots.len());
        for &slot in slots.iter() {
            if self.matches(slot, plan)? {
                kept.push(slot);
            }
        }
        *slots = kept;
        Ok(())
    }

    fn walk(
        &mut self,
        slot: Slot,
        step: Step,
        kind: EntityKind,
        output: &mut Vec<Slot>,
    ) -> Result<()> {
        let (edge, forward) = step;
        let list = if forward {
            self.graph.out_edges(slot)
        } else {
            self.graph.in_edges(slot)
        };
        self.charge(list.len())?;
        for &(next, found) in list {
            if found == edge && self.graph.kind_of(next) == Some(kind) {
                output.push(next);
            }
        }
        Ok(())
    }

    /// The entities one step from `frontier`, in slot order, once each.
    fn step(&mut self, frontier: Vec<Slot>, step: Step, kind: EntityKind) -> Result<Vec<Slot>> {
        let mut next = Vec::new();
        for current in frontier {
            self.walk(current, step, kind, &mut next)?;
        }
        next.sort_unstable();
        next.dedup();
        Ok(next)
    }

    fn related(&mut self, slot: Slot, chain: &[(Step, EntityKind)]) -> Result<Vec<Slot>> {
        let mut frontier = vec![slot];
        for &(step, kind) in chain {
            frontier = self.step(frontier, step, kind)?;
        }
        Ok(frontier)
    }

    /// Whether `slot` has a related entity along `chain` satisfying `condition`; adds what
    /// each step looked at to `step_costs` (one per step of the chain).
    fn related_exists(
        &mut self,
        slot: Slot,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
        step_costs: &mut [usize],
    ) -> Result<bool> {
        let mut frontier = vec![slot];
        for (&(step, kind), cost) in chain.iter().zip(step_costs.iter_mut()) {
            let before = self.visits;
            frontier = self.step(frontier, step, kind)?;
            *cost += self.visits - before;
        }
        let before = self.visits;
        let mut found = false;
        for candidate in frontier {
            found = match condition {
                None => true,
                Some(plan) => self.matches(candidate, plan)?,
            };
            if found {
                break;
            }
        }
        if let Some(last) = step_costs.last_mut() {
            *last += self.visits - before;
        }
        Ok(found)
    }
}

/// Parses a query in either form: JSON when it starts with `{`, text otherwise.
pub fn parse_any(input: &str) -> Result<Query> {
    if input.trim_start().starts_with('{') {
        if input.len() > text::MAX_QUERY_BYTES * 8 {
            return Err(GraphError::InvalidQuery {
                position: "/".to_string(),
                message: "query document too large".to_string(),
            });
        }
        serde_json::from_str(input).map_err(|error| GraphError::InvalidQuery {
            position: format!("line {} column {}", error.line(), error.column()),
            message: format!("not a query builder document: {error}"),
        })
    } else {
        parse_text(input)
    }
}

fn depth(condition: &Condition) -> usize {
    match condition {
        Condition::And { and } => 1 + and.iter().map(depth).max().unwrap_or(0),
        Condition::Or { or } => 1 + or.iter().map(depth).max().unwrap_or(0),
        Condition::Not { not } => 1 + depth(not),
        Condition::Related { related } => 1 + related.condition.as_deref().map(depth).unwrap_or(0),
        Condition::Property { .. } => 1,
    }
}

/// Runs a query against a graph, returning results from `offset` on.
pub fn run(
    graph: &TenantGraph,
    query: &Query,
    offset: usize,
    limits: QueryLimits,
) -> Result<QueryResult> {
    let kind = kind_of(&query.entity, "/entity")?;
    if let Some(condition) = &query.condition
        && depth(condition) > 4 * text::MAX_NESTING
    {
        return Err(GraphError::InvalidQuery {
            position: "/where".to_string(),
            message: format!("conditions nested deeper than {}", 4 * text::MAX_NESTING),
        });
    }
    let mut related_count = 0;
    let plan = match &query.condition {
        Some(condition) => Some(plan(condition, kind, "/where", &mut related_count)?),
        None => None,
    };
    let includes: Vec<(String, Vec<(Step, EntityKind)>)> = query
        .include
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let target = kind_of(name, &format!("/include/{index}"))?;
            let chain = relation(kind, target).ok_or_else(|| GraphError::InvalidQuery {
                position: format!("/include/{index}"),
                message: format!(
                    "a {} is not related to a {}",
                    kind.as_str(),
                    target.as_str()
                ),
            })?;
            Ok((name.clone(), chain))
        })
        .collect::<Result<_>>()?;
    let limit = query
        .limit
        .unwrap_or(limits.max_results)
        .min(limits.max_results);
    let mut evaluator = Evaluator {
        graph,
        visits: 0,
        limits,
        related_states: (0..related_count)
            .map(|_| RelatedState::default())
            .collect(),
    };
    let (candidates, residual) = match &plan {
        Some(plan) => evaluator.candidates(kind, plan)?,
        None => (None, Vec::new()),
    };
    let mut matching: Vec<Slot> = match candidates {
        Some(candidates) => candidates,
        None => graph.of_kind(kind).collect(),
    };
    evaluator.charge(matching.len())?;
    for part in &residual {
        evaluator.retain_matching(&mut matching, part)?;
    }
    let total = matching.len();
    let mut rows = Vec::new();
    for &slot in matching.iter().skip(offset).take(limit) {
        let Some(entity) = graph.shared_entity(slot) else {
            continue;
        };
        let mut related = BTreeMap::new();
        for (name, chain) in &includes {
            let found = evaluator.related(slot, chain)?;
            let ids: Vec<String> = found
                .into_iter()
                .take(limits.max_included)
                .filter_map(|slot| graph.entity(slot).map(|entity| entity.id.clone()))
                .collect();
            related.insert(name.clone(), ids);
        }
        rows.push(QueryRow {
            entity: Arc::clone(entity),
            related,
        });
    }
    Ok(QueryResult {
        total,
        rows,
        visits: evaluator.visits,
    })
}
