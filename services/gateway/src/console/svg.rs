//! Pictures drawn on the server as SVG: the alerts chart and an attack path. Colours come
//! from the stylesheet's classes (no inline style, which the Content-Security-Policy
//! forbids); every mark also carries its value as text, so nothing is told by colour alone.

use std::collections::BTreeMap;

use maud::{Markup, PreEscaped, html};
use palisade_proto::v1::AttackPath;

use super::html::{encode, severity_level as level};

const CHART_WIDTH: u64 = 720;
const CHART_HEIGHT: u64 = 220;
const CHART_PAD: u64 = 30;

/// Stacked bars per day over `days` (oldest first), one series per severity, most severe at
/// the bottom: (severity, [(day, count)]).
pub fn severity_chart(days: &[String], series: &[(String, Vec<(String, u64)>)]) -> Markup {
    let days: Vec<&str> = days.iter().map(String::as_str).collect();
    let totals: Vec<u64> = days
        .iter()
        .map(|day| {
            series
                .iter()
                .flat_map(|(_, buckets)| buckets.iter())
                .filter(|(bucket, _)| bucket == day)
                .map(|(_, count)| count)
                .sum()
        })
        .collect();
    let highest = totals.iter().copied().max().unwrap_or(0).max(1);
    let slot = (CHART_WIDTH - 2 * CHART_PAD) / (days.len() as u64).max(1);
    let bar = (slot * 2 / 3).max(4);
    let usable = CHART_HEIGHT - 2 * CHART_PAD;
    // Each day's segments, stacked from the axis up: (severity, count, top, height).
    let stacks: Vec<Vec<(&str, u64, u64, u64)>> = days
        .iter()
        .map(|day| {
            let mut base = CHART_HEIGHT - CHART_PAD;
            let mut segments = Vec::new();
            for (severity, buckets) in series {
                let count = buckets
                    .iter()
                    .find(|(bucket, _)| bucket == day)
                    .map(|(_, count)| *count)
                    .unwrap_or(0);
                if count > 0 {
                    let height = (count * usable / highest).max(1);
                    base -= height.min(base);
                    segments.push((severity.as_str(), count, base, height));
                }
            }
            segments
        })
        .collect();
    html! {
        svg #severity-chart.chart viewBox={ "0 0 " (CHART_WIDTH) " " (CHART_HEIGHT) } role="img" aria-label="Alerts per day by severity" {
            @if totals.iter().all(|total| *total == 0) {
                text x="40" y="40" { "No alerts in the last 7 days." }
            }
            @for (index, day) in days.iter().enumerate() {
                @let x = CHART_PAD + index as u64 * slot;
                @for (severity, count, top, height) in &stacks[index] {
                    rect class={ "bar sev-fill-" (level(severity)) } x=(x) y=(top) width=(bar) height=(height) {
                        title { (day) ": " (count) " " (severity) }
                    }
                }
                @let summit = stacks[index].last().map(|(_, _, top, _)| *top).unwrap_or(CHART_HEIGHT - CHART_PAD);
                text.axis x=(x + bar / 2) y=(CHART_HEIGHT - 10) text-anchor="middle" { (day.get(5..).unwrap_or(day)) }
                text.axis x=(x + bar / 2) y=(summit.saturating_sub(4)) text-anchor="middle" { (totals[index]) }
            }
        }
        ul.legend {
            @for (severity, buckets) in series {
                li { span class={ "swatch sev-fill-" (level(severity)) } {} (severity) " (" (buckets.iter().map(|(_, count)| count).sum::<u64>()) ")" }
            }
        }
    }
}

const STEP_WIDTH: u64 = 170;
const STEP_GAP: u64 = 110;
const STEP_HEIGHT: u64 = 92;
const PATH_PAD: u64 = 16;

/// A short symbol for an entity kind, drawn in its box.
fn icon(kind: &str) -> &'static str {
    match kind {
        "internet" => "🌐",
        "load_balancer" | "ingress" | "service" | "endpoint" => "⇄",
        "pod" | "workload" => "▣",
        "container" => "▢",
        "image" => "◫",
        "node" => "⬢",
        "service_account" | "user" | "group" | "cloud_identity" => "☺",
        "permission_set" | "role_binding" | "cluster_role_binding" => "⚿",
        "secret" => "✱",
        "cluster" | "namespace" => "▦",
        _ => "●",
    }
}

fn shorten(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_string()
    } else {
        let kept: String = text.chars().take(most.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// An attack path from left to right: a box per entity (its kind as an icon and a word,
/// its name, and for images the vulnerability counts with the most severe CVEs of `cves`,
/// by image name, under the box), an arrow per move with the technique and its MITRE id.
pub fn attack_path(path: &AttackPath, cves: &BTreeMap<String, Vec<String>>) -> Markup {
    let steps = &path.steps;
    let count = steps.len() as u64;
    let width = 2 * PATH_PAD + count * STEP_WIDTH + count.saturating_sub(1) * STEP_GAP;
    let height = STEP_HEIGHT + 2 * PATH_PAD + 40 + if cves.is_empty() { 0 } else { 54 };
    let top = PATH_PAD + 30;
    html! {
        svg #path-graph.path-graph viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height) role="img" aria-label={ "Attack path: " (path.title) } {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head" {}
                }
            }
            @for (index, step) in steps.iter().enumerate() {
                @let reference = step.entity.as_ref().and_then(|entity| entity.r#ref.clone()).unwrap_or_default();
                @let properties = step.entity.as_ref().map(|entity| entity.properties.clone()).unwrap_or_default();
                @let x = PATH_PAD + index as u64 * (STEP_WIDTH + STEP_GAP);
                g.step data-kind=(reference.kind) data-index=(index) {
                    title { (reference.kind) " " (reference.namespace) "/" (reference.name) }
                    rect class={ "box kind-" (reference.kind) } x=(x) y=(top) width=(STEP_WIDTH) height=(STEP_HEIGHT) rx="8" {}
                    text.icon x=(x + 10) y=(top + 26) { (icon(&reference.kind)) }
                    text.kind x=(x + 34) y=(top + 24) { (reference.kind.replace('_', " ")) }
                    text.name x=(x + 10) y=(top + 48) { (shorten(&reference.name, 22)) }
                    @if !reference.namespace.is_empty() {
                        text.namespace x=(x + 10) y=(top + 66) { (shorten(&reference.namespace, 24)) }
                    }
                    @if reference.kind == "image" {
                        @let critical = properties.get("critical_vulnerabilities").cloned().unwrap_or_else(|| "0".to_string());
                        @let high = properties.get("high_vulnerabilities").cloned().unwrap_or_else(|| "0".to_string());
                        a href={ "/console/images?image=" (encode(&reference.name)) } {
                            text.cves x=(x + 10) y=(top + 84) { (critical) " critical, " (high) " high CVEs" }
                            @for (line, cve) in cves.get(&reference.name).into_iter().flatten().enumerate() {
                                text.cve x=(x + 10) y=(top + STEP_HEIGHT + 16 + 16 * line as u64) { (cve) }
                            }
                        }
                    }
                }
                @if index + 1 < steps.len() {
                    @let from = x + STEP_WIDTH;
                    @let to = from + STEP_GAP;
                    @let middle = top + STEP_HEIGHT / 2;
                    line.move x1=(from) y1=(middle) x2=(to - 2) y2=(middle) marker-end="url(#arrow)" {}
                    text.technique x=((from + to) / 2) y=(middle - 10) text-anchor="middle" {
                        (shorten(&step.technique, 14))
                        title { (step.technique) " " (step.mitre_id) }
                    }
                    text.mitre x=((from + to) / 2) y=(middle + 18) text-anchor="middle" { (step.mitre_id) }
                }
            }
            text.caption x=(PATH_PAD) y=(PATH_PAD + 10) { (PreEscaped("Entry &#8594; target, left to right")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_proto::v1::{AttackPathStep, Entity, EntityRef};

    fn step(kind: &str, name: &str, technique: &str) -> AttackPathStep {
        AttackPathStep {
            entity: Some(Entity {
                id: format!("{kind}/{name}"),
                r#ref: Some(EntityRef {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    ..EntityRef::default()
                }),
                properties: Default::default(),
            }),
            technique: technique.to_string(),
            mitre_id: if technique.is_empty() {
                String::new()
            } else {
                "T1611".to_string()
            },
        }
    }

    #[test]
    fn a_path_has_a_box_per_entity_and_a_technique_per_move() {
        let path = AttackPath {
            id: "p".into(),
            title: "internet to node".into(),
            steps: vec![
                step("internet", "internet", "exposed"),
                step("pod", "web<script>", "container escape"),
                step("node", "n1", ""),
            ],
            ..AttackPath::default()
        };
        let cves = BTreeMap::from([("web<script>".to_string(), vec!["CVE-1".to_string()])]);
        let drawn = attack_path(&path, &BTreeMap::new()).into_string();
        assert_eq!(drawn.matches("<g class=\"step\"").count(), 3);
        assert_eq!(drawn.matches("class=\"technique\"").count(), 2);
        assert!(drawn.contains("web&lt;script&gt;"), "names are escaped");
        assert!(!drawn.contains("style="), "no inline style");
        let mut with_image = path.clone();
        with_image.steps[1] = step("image", "web<script>", "exploit");
        let drawn = attack_path(&with_image, &cves).into_string();
        assert!(
            drawn.contains(">CVE-1<"),
            "an image's CVEs are drawn under it"
        );
    }

    #[test]
    fn the_chart_stacks_severities_per_day() {
        let series = vec![
            ("critical".to_string(), vec![("2026-11-27".to_string(), 2)]),
            (
                "warning".to_string(),
                vec![("2026-11-27".to_string(), 3), ("2026-11-28".to_string(), 1)],
            ),
        ];
        let days = ["2026-11-27".to_string(), "2026-11-28".to_string()];
        let drawn = severity_chart(&days, &series).into_string();
        assert_eq!(drawn.matches("<rect").count(), 3);
        assert!(drawn.contains(">5<"), "the day's total is written");
    }
}
