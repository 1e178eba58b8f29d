//! The insights read off the graph rather than the inventory: exposure, vulnerabilities of the
//! images pods run, and recent alerts on containers.

use std::collections::BTreeSet;

use super::Tenant;
use crate::graph::Slot;
use crate::insights::{self, Insight};
use crate::model::{EdgeKind, EntityKind};

impl Tenant {
    pub(super) fn exposure_insights(&self) -> Vec<Insight> {
        let graph = &self.graph;
        graph
            .of_kind(EntityKind::Pod)
            .filter_map(|slot| graph.entity(slot))
            .filter(|pod| pod.flag("exposed_to_internet"))
            .map(|pod| {
                Insight::new(
                    &insights::INTERNET_EXPOSED,
                    pod.id.clone(),
                    EntityKind::Pod,
                    &pod.cluster,
                    &pod.namespace,
                    &pod.name,
                    pod.text("source").unwrap_or_default().to_string(),
                )
                .evidence(
                    "reason",
                    pod.text("exposure_reason").unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub(super) fn vulnerability_insights(&self) -> Vec<Insight> {
        let graph = &self.graph;
        let mut out = Vec::new();
        for image in graph.of_kind(EntityKind::Image) {
            let Some(entity) = graph.entity(image) else {
                continue;
            };
            let number = |key: &str| {
                entity
                    .properties
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
            };
            let mut controls = Vec::new();
            if number("critical_vulnerabilities") > 0 {
                controls.push((
                    &insights::CRITICAL_VULNS,
                    number("critical_vulnerabilities"),
                ));
            }
            if number("high_vulnerabilities") > 0 {
                controls.push((&insights::HIGH_VULNS, number("high_vulnerabilities")));
            }
            if entity.flag("rce_vulnerability") {
                controls.push((&insights::RCE_VULN, 1));
            }
            if controls.is_empty() {
                continue;
            }
            let pods: BTreeSet<Slot> = graph
                .in_edges(image)
                .iter()
                .filter(|(_, kind)| *kind == EdgeKind::UsesImage)
                .flat_map(|(container, _)| {
                    graph
                        .in_edges(*container)
                        .iter()
                        .filter(|(_, kind)| *kind == EdgeKind::Runs)
                        .map(|(pod, _)| *pod)
                })
                .collect();
            for (control, count) in controls {
                out.push(
                    Insight::new(
                        control,
                        entity.id.clone(),
                        EntityKind::Image,
                        "",
                        "",
                        &entity.name,
                        entity.name.clone(),
                    )
                    .evidence("count", count.to_string()),
                );
                for pod in &pods {
                    if let Some(pod_entity) = graph.entity(*pod) {
                        out.push(
                            Insight::new(
                                control,
                                pod_entity.id.clone(),
                                EntityKind::Pod,
                                &pod_entity.cluster,
                                &pod_entity.namespace,
                                &pod_entity.name,
                                pod_entity.name.clone(),
                            )
                            .evidence("image", entity.name.clone())
                            .evidence("count", count.to_string()),
                        );
                    }
                }
            }
        }
        out
    }

    pub(super) fn alert_insights(&self) -> Vec<Insight> {
        let mut out = Vec::new();
        for alert in self.alerts.values() {
            for container in self.alert_containers(alert) {
                if let Some(entity) = self.graph.entity(container) {
                    out.push(
                        Insight::new(
                            &insights::RECENT_ALERT,
                            entity.id.clone(),
                            EntityKind::Container,
                            &entity.cluster,
                            &entity.namespace,
                            &entity.name,
                            format!("Pod/{}/{}", alert.namespace, alert.pod),
                        )
                        .evidence("rule", alert.rule.clone())
                        .evidence("priority", alert.priority.clone())
                        .evidence("alert_id", alert.id.clone()),
                    );
                }
            }
        }
        out
    }
}
