//! Where a query's candidates come from. Looking at every entity of the queried kind is the
//! fallback; a condition that every answer must satisfy can name a smaller set instead:
//! a flag (`exposed_to_internet`) from the graph's index of `true` properties, a severity
//! comparison from its severity index, a text equality from its index of the entities that
//! hold the property as text, or a
//! related-entity condition (`has permission_set(...)`) whose backward walk reaches the
//! queried kind. Every candidate is still checked against the whole condition, so the
//! answer is the same as the scan's as long as the set holds every entity that matches.

use serde_json::Value;

use super::semijoin::{FORWARD_EVALUATIONS_BEFORE_REVERSE, RelatedState, step_budgets};
use super::{Evaluator, Op, Plan, Step, compare_numbers};
use crate::error::Result;
use crate::graph::{SeverityBucket, Slot};
use crate::model::EntityKind;

/// Properties computed by the explorer or read from an entity's fields, not its properties.
const NOT_INDEXED: &[&str] = &[
    "name",
    "namespace",
    "cluster",
    "kind",
    "id",
    "escapes_to_node",
];

/// Entities narrowed down by a condition, in slot order.
pub(super) struct Narrowed {
    /// The entities.
    pub slots: Vec<Slot>,
    /// Whether exactly these entities satisfy the condition (else: at least these).
    pub exact: bool,
}

impl Evaluator<'_> {
    /// The entities of `kind`, in slot order, that may satisfy `plan` (`None`: every entity
    /// of the kind), and the parts of the plan each of them must still be checked against,
    /// in the plan's order: the parts the set answers exactly are left out.
    pub(super) fn candidates<'p>(
        &mut self,
        kind: EntityKind,
        plan: &'p Plan,
    ) -> Result<(Option<Vec<Slot>>, Vec<&'p Plan>)> {
        let everyone = self.graph.count_of_kind(kind);
        let parts: Vec<&Plan> = match plan {
            Plan::And(parts) => parts.iter().collect(),
            single => vec![single],
        };
        let narrowed = self.narrow_parts(kind, &parts, everyone)?;
        let residual = parts
            .iter()
            .zip(&narrowed)
            .filter(|(_, narrowed)| !narrowed.as_ref().is_some_and(|narrowed| narrowed.exact))
            .map(|(part, _)| *part)
            .collect();
        let slots = narrowed
            .into_iter()
            .flatten()
            .map(|narrowed| narrowed.slots)
            .reduce(|left, right| intersect(&left, &right));
        Ok((slots, residual))
    }

    /// What each part of a conjunction narrows the entities of `kind` to, when `expected`
    /// candidates would otherwise check it. Flags and severities first: they cost nothing
    /// to find and tell the related conditions how many candidates would check them.
    fn narrow_parts(
        &mut self,
        kind: EntityKind,
        parts: &[&Plan],
        expected: usize,
    ) -> Result<Vec<Option<Narrowed>>> {
        let mut narrowed: Vec<Option<Narrowed>> = Vec::new();
        for part in parts {
            narrowed.push(match part {
                Plan::Related { .. } => None,
                other => self.narrow(kind, other, expected)?,
            });
        }
        for (index, part) in parts.iter().enumerate() {
            if matches!(part, Plan::Related { .. }) {
                let fewest = narrowed
                    .iter()
                    .flatten()
                    .map(|narrowed| narrowed.slots.len())
                    .min()
                    .unwrap_or(expected);
                narrowed[index] = self.narrow(kind, part, fewest)?;
            }
        }
        Ok(narrowed)
    }

    /// [`Evaluator::candidates`] for one condition, when `expected` candidates would
    /// otherwise check it.
    pub(super) fn narrow(
        &mut self,
        kind: EntityKind,
        plan: &Plan,
        expected: usize,
    ) -> Result<Option<Narrowed>> {
        match plan {
            Plan::Property {
                property,
                op: Op::Equal,
                value: Value::Bool(true),
                ..
            } if !NOT_INDEXED.contains(&property.as_str()) => {
                let slots: Vec<Slot> = self.graph.flagged(kind, property).collect();
                self.charge(slots.len())?;
                Ok(Some(Narrowed { slots, exact: true }))
            }
            Plan::Property {
                op: op @ (Op::Equal | Op::Greater | Op::GreaterEqual | Op::Less | Op::LessEqual),
                severity_rank: Some(wanted),
                ..
            } => {
                // Entities whose severity has no rank are kept: only their own check tells.
                let mut slots: Vec<Slot> = Vec::new();
                let mut exact = true;
                for (bucket, members) in self.graph.by_severity(kind) {
                    let keep = match bucket {
                        SeverityBucket::Rank(rank) => {
                            compare_numbers(*op, f64::from(rank), *wanted)
                        }
                        SeverityBucket::Unranked => {
                            exact = false;
                            true
                        }
                    };
                    if keep {
                        slots.extend(members.iter().copied());
                    }
                }
                self.charge(slots.len())?;
                slots.sort_unstable();
                Ok(Some(Narrowed { slots, exact }))
            }
            Plan::Property {
                property,
                op: Op::Equal,
                value: Value::String(_),
                ..
            } if !NOT_INDEXED.contains(&property.as_str()) => {
                // Only a property held as text equals a text (see `Evaluator::compare`).
                let slots: Vec<Slot> = self.graph.with_text(kind, property).collect();
                self.charge(slots.len())?;
                Ok(Some(Narrowed {
                    slots,
                    exact: false,
                }))
            }
            Plan::Related {
                index,
                from,
                chain,
                condition,
            } => self.related_candidates(*index, *from, chain, condition.as_deref(), expected),
            Plan::And(parts) => {
                let parts: Vec<&Plan> = parts.iter().collect();
                let narrowed = self.narrow_parts(kind, &parts, expected)?;
                let exact = narrowed
                    .iter()
                    .all(|narrowed| narrowed.as_ref().is_some_and(|narrowed| narrowed.exact));
                Ok(narrowed
                    .into_iter()
                    .flatten()
                    .map(|narrowed| narrowed.slots)
                    .reduce(|left, right| intersect(&left, &right))
                    .map(|slots| Narrowed { slots, exact }))
            }
            Plan::Or(parts) => {
                let mut union: Vec<Slot> = Vec::new();
                let mut exact = true;
                for part in parts {
                    let Some(narrowed) = self.narrow(kind, part, expected)? else {
                        return Ok(None);
                    };
                    exact &= narrowed.exact;
                    union.extend(narrowed.slots);
                }
                union.sort_unstable();
                union.dedup();
                Ok(Some(Narrowed {
                    slots: union,
                    exact,
                }))
            }
            Plan::Not(_) | Plan::Property { .. } => Ok(None),
        }
    }

    /// The entities satisfying a related-entity condition, when walking back from the far
    /// entities that satisfy its own condition reaches the queried kind for less than
    /// checking the condition forwards for each of `expected` candidates. The condition's
    /// state is left planned either way, so the candidates' own checks do not plan it again.
    fn related_candidates(
        &mut self,
        index: usize,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
        expected: usize,
    ) -> Result<Option<Narrowed>> {
        if expected <= FORWARD_EVALUATIONS_BEFORE_REVERSE
            || !matches!(
                self.related_states[index],
                RelatedState::Forward { evaluations: 0, .. }
            )
        {
            return Ok(None);
        }
        // What checking forwards costs, step by step, from a sample of the kind's entities.
        let graph = self.graph;
        let mut step_costs = vec![0; chain.len()];
        let mut sampled = 0;
        for slot in graph.of_kind(from).take(FORWARD_EVALUATIONS_BEFORE_REVERSE) {
            self.related_exists(slot, chain, condition, &mut step_costs)?;
            sampled += 1;
        }
        let budgets = step_budgets(&step_costs, sampled, expected);
        let Some((level, reached)) = self.walk_back(from, chain, condition, &budgets)? else {
            return Ok(None);
        };
        self.related_states[index] = RelatedState::Reverse {
            level,
            members: self.member_set(&reached),
        };
        Ok((level == 0).then_some(Narrowed {
            slots: reached,
            exact: true,
        }))
    }
}

/// The slots in both sorted lists.
fn intersect(left: &[Slot], right: &[Slot]) -> Vec<Slot> {
    let (small, large) = if left.len() <= right.len() {
        (left, right)
    } else {
        (right, left)
    };
    small
        .iter()
        .copied()
        .filter(|slot| large.binary_search(slot).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::intersect;

    #[test]
    fn intersection_keeps_order_and_only_common_slots() {
        assert_eq!(intersect(&[1, 3, 5, 9], &[2, 3, 9, 11, 12]), vec![3, 9]);
        assert_eq!(intersect(&[4], &[]), Vec::<u32>::new());
    }
}
