//! Incremental scanner findings: replacing the findings of a few images changes only their
//! image entities, their vulnerability edges and the vulnerabilities they carry (or carried),
//! never the findings of every other image.

use std::collections::BTreeSet;

use crate::derive::Derived;
use crate::findings::{
    FindingsByImage, ImageFindings, group_vulnerabilities, image_entity, vulnerability_entity,
};
use crate::graph::{TenantGraph, UnitPatch};
use crate::model::{EdgeKind, EntityKind, image_id, normalize_image, vulnerability_id};

/// Replaces, in `groups`, the findings of the images `incoming` names and returns the
/// normalised references whose group changed.
///
/// An incoming entry replaces the stored entries with the same digest, or, when none has it,
/// every entry of the same (normalised) image reference. An entry without vulnerabilities
/// only removes.
pub fn replace_images(
    groups: &mut FindingsByImage,
    incoming: Vec<ImageFindings>,
) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for entry in incoming {
        let reference = normalize_image(&entry.image);
        let mut matched_by_digest = false;
        if !entry.digest.is_empty() {
            for (image, group) in groups.iter_mut() {
                let before = group.len();
                group.retain(|stored| stored.digest != entry.digest);
                if group.len() != before {
                    matched_by_digest = true;
                    changed.insert(image.clone());
                }
            }
        }
        if !matched_by_digest && let Some(group) = groups.get_mut(&reference) {
            group.clear();
            changed.insert(reference.clone());
        }
        if !entry.vulnerabilities.is_empty() {
            groups.entry(reference.clone()).or_default().push(entry);
            changed.insert(reference);
        }
    }
    groups.retain(|_, group| !group.is_empty());
    changed
}

/// What the findings unit must stop contributing and contribute anew after the groups of
/// `changed` images were replaced in `groups` (already updated), given the graph as it still
/// is: the result patched into the graph equals deriving every group again.
pub fn findings_patch(
    graph: &TenantGraph,
    groups: &FindingsByImage,
    changed: &BTreeSet<String>,
) -> (UnitPatch, Derived) {
    let mut removed = UnitPatch::default();
    let mut added = Derived::default();
    let mut advisories: BTreeSet<String> = BTreeSet::new();
    for image in changed {
        let image_entity_id = image_id(image);
        if let Some(slot) = graph.slot(&image_entity_id) {
            for &(vulnerability, kind) in graph.out_edges(slot) {
                if kind != EdgeKind::HasVulnerability {
                    continue;
                }
                if let Some(entity) = graph.entity(vulnerability) {
                    advisories.insert(entity.name.clone());
                    removed
                        .edges
                        .push((image_entity_id.clone(), kind, entity.id.clone()));
                }
            }
        }
        let Some(group) = groups.get(image) else {
            removed.entities.push(image_entity_id);
            continue;
        };
        let found = group_vulnerabilities(group);
        added.entity(image_entity(image, &found));
        for vulnerability in found.iter().filter(|finding| !finding.id.is_empty()) {
            advisories.insert(vulnerability.id.clone());
            added.edge(
                &image_entity_id,
                EdgeKind::HasVulnerability,
                &vulnerability_id(&vulnerability.id),
            );
        }
    }
    for advisory in advisories {
        // The advisory is described by its first carrier in reference order: the unchanged
        // carriers are those the graph links to it, the changed ones are read from the groups.
        let unchanged_carrier = graph
            .slot(&vulnerability_id(&advisory))
            .into_iter()
            .flat_map(|slot| graph.in_edges(slot).iter())
            .filter(|(_, kind)| *kind == EdgeKind::HasVulnerability)
            .filter_map(|(image, _)| graph.entity(*image))
            .filter(|image| image.kind == EntityKind::Image && !changed.contains(&image.name))
            .map(|image| image.name.as_str())
            .min();
        let changed_carrier = changed
            .iter()
            .filter(|image| {
                groups.get(*image).is_some_and(|group| {
                    group.iter().any(|entry| {
                        entry
                            .vulnerabilities
                            .iter()
                            .any(|found| found.id == advisory)
                    })
                })
            })
            .map(String::as_str)
            .min();
        let carrier = match (unchanged_carrier, changed_carrier) {
            (Some(first), Some(second)) => Some(first.min(second)),
            (first, second) => first.or(second),
        };
        let described_by = carrier
            .and_then(|image| groups.get(image))
            .and_then(|group| {
                group
                    .iter()
                    .flat_map(|entry| entry.vulnerabilities.iter())
                    .find(|found| found.id == advisory)
            });
        match described_by {
            Some(finding) => added.entity(vulnerability_entity(finding)),
            None => removed.entities.push(vulnerability_id(&advisory)),
        }
    }
    (removed, added)
}
