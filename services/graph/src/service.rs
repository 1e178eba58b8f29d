//! The service-facing API: the four GraphService RPCs of proto/palisade/v1/graph.proto,
//! answered from a [`GraphEngine`] with the generated message types. The gRPC adapter (in the
//! main line) takes the tenant from the caller's credential and calls these.

use std::collections::HashMap;

use palisade_proto::v1 as pb;

use crate::engine::GraphEngine;
use crate::error::{GraphError, Result};
use crate::explorer::{self, QueryLimits};
use crate::findings::Severity;
use crate::insights::Insight;
use crate::model::Entity;
use crate::paths::{AttackPath, PathStep};

/// Page size when the request gives none.
pub const DEFAULT_PAGE: usize = 100;
/// Largest page served.
pub const MAX_PAGE: usize = 1000;

fn page(request: Option<&pb::PageRequest>) -> Result<(usize, usize)> {
    let limit = request
        .map(|page| page.limit as usize)
        .filter(|limit| *limit > 0)
        .unwrap_or(DEFAULT_PAGE)
        .min(MAX_PAGE);
    let offset = match request.map(|page| page.cursor.as_str()).unwrap_or("") {
        "" => 0,
        cursor => cursor.parse().map_err(|_| GraphError::BadInput {
            location: "page.cursor".to_string(),
            message: format!("cursor {cursor:?} was not issued by this service"),
        })?,
    };
    Ok((offset, limit))
}

fn next_cursor(offset: usize, returned: usize, total: usize) -> String {
    if offset + returned < total {
        (offset + returned).to_string()
    } else {
        String::new()
    }
}

/// An entity in API form.
pub fn entity_message(entity: &Entity) -> pb::Entity {
    pb::Entity {
        id: entity.id.clone(),
        r#ref: Some(pb::EntityRef {
            kind: entity.kind.as_str().to_string(),
            name: entity.name.clone(),
            namespace: entity.namespace.clone(),
            cluster_id: entity.cluster.clone(),
            uid: String::new(),
        }),
        properties: entity
            .properties
            .iter()
            .map(|(key, value)| {
                (
                    key.clone(),
                    match value {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect(),
    }
}

fn severity_message(severity: Severity) -> pb::Severity {
    match severity {
        Severity::Unknown => pb::Severity::Unknown,
        Severity::Negligible => pb::Severity::Negligible,
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }
}

/// An insight as a Finding of kind INSIGHT.
pub fn insight_message(insight: &Insight, tenant: &str) -> pb::Finding {
    let description = insight
        .evidence
        .iter()
        .map(|(key, value)| format!("{key}: {value}"))
        .collect::<Vec<_>>()
        .join("; ");
    pb::Finding {
        id: insight.id.clone(),
        tenant_id: tenant.to_string(),
        cluster_id: insight.cluster.clone(),
        kind: pb::FindingKind::Insight as i32,
        severity: severity_message(insight.severity) as i32,
        title: insight.title.to_string(),
        description: format!("{} ({description})", insight.object),
        subject: Some(pb::EntityRef {
            kind: insight.entity_kind.as_str().to_string(),
            name: insight.name.clone(),
            namespace: insight.namespace.clone(),
            cluster_id: insight.cluster.clone(),
            uid: insight.entity_id.clone(),
        }),
        related: Vec::new(),
        first_seen: None,
        last_seen: None,
        resolved: false,
        remediation: vec![insight.remediation.to_string()],
        mitre: None,
        detail: Some(pb::finding::Detail::Insight(pb::InsightDetail {
            control_id: insight.control_id.to_string(),
            equivalent_controls: insight
                .equivalents
                .iter()
                .map(|id| id.to_string())
                .collect(),
            evidence: insight
                .evidence
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        })),
    }
}

fn step_entity(step: &PathStep) -> pb::Entity {
    pb::Entity {
        id: step.entity_id.clone(),
        r#ref: Some(pb::EntityRef {
            kind: step.kind.as_str().to_string(),
            name: step.name.clone(),
            namespace: step.namespace.clone(),
            cluster_id: step.cluster.clone(),
            uid: String::new(),
        }),
        properties: HashMap::new(),
    }
}

/// An attack path in API form.
pub fn attack_path_message(path: &AttackPath) -> pb::AttackPath {
    pb::AttackPath {
        id: path.id.clone(),
        title: path.title.clone(),
        risk_score: path.risk_score,
        risk_reasons: path.risk_reasons.clone(),
        entry: Some(step_entity(path.entry())),
        target: Some(step_entity(path.target())),
        steps: path
            .steps
            .iter()
            .map(|step| pb::AttackPathStep {
                entity: Some(step_entity(step)),
                technique: step.technique.clone(),
                mitre_id: step.mitre_id.clone(),
            })
            .collect(),
        remediation: path.remediation.clone(),
    }
}

/// `GraphService/Query`: an explorer query in text form, or in builder form when `query` is empty.
pub fn query(
    engine: &GraphEngine,
    tenant: &str,
    request: &pb::GraphQueryRequest,
) -> Result<pb::GraphQueryResponse> {
    let parsed = if request.query.trim().is_empty() {
        if request.query_json.trim().is_empty() {
            return Err(GraphError::InvalidQuery {
                position: "query".to_string(),
                message: "give query or query_json".to_string(),
            });
        }
        explorer::parse_any(&request.query_json)?
    } else {
        explorer::parse_text(&request.query)?
    };
    let (offset, limit) = page(request.page.as_ref())?;
    let Some(state) = engine.tenant(tenant) else {
        return Ok(pb::GraphQueryResponse {
            entities: Vec::new(),
            total: 0,
            next_cursor: String::new(),
        });
    };
    let mut bounded = parsed;
    bounded.limit = Some(bounded.limit.unwrap_or(limit).min(limit));
    let result = explorer::run(state.graph(), &bounded, offset, QueryLimits::default())?;
    let returned = result.rows.len();
    Ok(pb::GraphQueryResponse {
        entities: result
            .rows
            .iter()
            .map(|row| entity_message(&row.entity))
            .collect(),
        total: result.total as u64,
        next_cursor: next_cursor(offset, returned, result.total),
    })
}

/// `GraphService/ListAttackPaths`: highest risk first, optionally of one cluster.
pub fn list_attack_paths(
    engine: &GraphEngine,
    tenant: &str,
    request: &pb::ListAttackPathsRequest,
) -> Result<pb::ListAttackPathsResponse> {
    let (offset, limit) = page(request.page.as_ref())?;
    let Some(state) = engine.tenant(tenant) else {
        return Ok(pb::ListAttackPathsResponse {
            paths: Vec::new(),
            next_cursor: String::new(),
        });
    };
    let paths: Vec<&AttackPath> = state
        .attack_paths()
        .into_iter()
        .filter(|path| request.cluster_id.is_empty() || path.cluster == request.cluster_id)
        .collect();
    let total = paths.len();
    let selected: Vec<pb::AttackPath> = paths
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(attack_path_message)
        .collect();
    let returned = selected.len();
    Ok(pb::ListAttackPathsResponse {
        paths: selected,
        next_cursor: next_cursor(offset, returned, total),
    })
}

/// `GraphService/GetEntity`: the entity, its insights, its neighbours and the edges to them.
pub fn get_entity(
    engine: &GraphEngine,
    tenant: &str,
    request: &pb::GetEntityRequest,
) -> Result<pb::GetEntityResponse> {
    let not_found = || GraphError::NotFound {
        id: request.id.clone(),
    };
    let state = engine.tenant(tenant).ok_or_else(not_found)?;
    let graph = state.graph();
    let slot = graph.slot(&request.id).ok_or_else(not_found)?;
    let entity = graph.entity(slot).ok_or_else(not_found)?;
    let mut neighbours = Vec::new();
    let mut edges = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (other, kind, outgoing) in graph.neighbours(slot).into_iter().take(MAX_PAGE) {
        let Some(other_entity) = graph.entity(other) else {
            continue;
        };
        let technique = kind.technique();
        let (from_id, to_id) = if outgoing {
            (entity.id.clone(), other_entity.id.clone())
        } else {
            (other_entity.id.clone(), entity.id.clone())
        };
        edges.push(pb::Edge {
            from_id,
            to_id,
            kind: kind.as_str().to_string(),
            technique: technique
                .map(|technique| technique.label.to_string())
                .unwrap_or_default(),
            mitre_id: technique
                .map(|technique| technique.mitre_id.to_string())
                .unwrap_or_default(),
        });
        if seen.insert(other) {
            neighbours.push(entity_message(other_entity));
        }
    }
    let insights = state
        .insights()
        .iter()
        .filter(|insight| insight.entity_id == entity.id)
        .map(|insight| insight_message(insight, tenant))
        .collect();
    Ok(pb::GetEntityResponse {
        entity: Some(entity_message(entity)),
        insights,
        neighbours,
        edges,
    })
}

/// `GraphService/ListInsights`: most severe first, optionally of one control.
pub fn list_insights(
    engine: &GraphEngine,
    tenant: &str,
    request: &pb::ListInsightsRequest,
) -> Result<pb::ListInsightsResponse> {
    let (offset, limit) = page(request.page.as_ref())?;
    let Some(state) = engine.tenant(tenant) else {
        return Ok(pb::ListInsightsResponse {
            insights: Vec::new(),
            next_cursor: String::new(),
        });
    };
    let insights: Vec<Insight> = state
        .insights()
        .into_iter()
        .filter(|insight| request.control_id.is_empty() || insight.control_id == request.control_id)
        .collect();
    let total = insights.len();
    let selected: Vec<pb::Finding> = insights
        .iter()
        .skip(offset)
        .take(limit)
        .map(|insight| insight_message(insight, tenant))
        .collect();
    let returned = selected.len();
    Ok(pb::ListInsightsResponse {
        insights: selected,
        next_cursor: next_cursor(offset, returned, total),
    })
}
