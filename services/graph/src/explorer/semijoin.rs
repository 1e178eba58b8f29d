//! Related-entity conditions evaluated from the other end: when a condition such as
//! `has vulnerability(name = "CVE-X")` is checked for many entities, the entities at the far
//! end that satisfy it are found once and the chain is walked backwards from them, as long
//! as that stays cheaper than walking forwards from every candidate; candidates then only
//! walk the remaining first steps and test membership. The answer is the same: a candidate
//! reaches a satisfying far entity along the chain exactly when the entities it reaches at
//! the level where the backward walk stopped include one that leads to such an entity.

use fixedbitset::FixedBitSet;

use super::{Evaluator, Op, Plan, Step};
use crate::error::Result;
use crate::graph::Slot;
use crate::model::EntityKind;

/// Forward evaluations of a related condition before it is planned from the other end: a
/// condition checked for a handful of entities never pays for the backward walk.
pub(super) const FORWARD_EVALUATIONS_BEFORE_REVERSE: usize = 64;

/// How a related-entity condition is evaluated.
#[derive(Debug)]
pub(super) enum RelatedState {
    /// Forward from each candidate: evaluations so far and the entities and edges each step
    /// of the chain looked at in them (the far entities' own condition counts in the last).
    Forward {
        evaluations: usize,
        step_costs: Vec<usize>,
    },
    /// Candidates walk the first `level` steps and test membership of what they reach.
    Reverse { level: usize, members: FixedBitSet },
}

impl Default for RelatedState {
    fn default() -> Self {
        RelatedState::Forward {
            evaluations: 0,
            step_costs: Vec::new(),
        }
    }
}

/// Compares two numbers with an ordering operator.
pub(super) fn compare_numbers(op: Op, left: f64, right: f64) -> bool {
    match op {
        Op::Equal => left == right,
        Op::NotEqual => left != right,
        Op::Greater => left > right,
        Op::GreaterEqual => left >= right,
        Op::Less => left < right,
        Op::LessEqual => left <= right,
        Op::Contains | Op::Exists => false,
    }
}

impl Evaluator<'_> {
    /// Whether `slot` has a related entity along `chain` that satisfies `condition`.
    pub(super) fn related_holds(
        &mut self,
        slot: Slot,
        index: usize,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
    ) -> Result<bool> {
        let state = std::mem::take(&mut self.related_states[index]);
        let state = match state {
            RelatedState::Forward {
                evaluations,
                mut step_costs,
            } if evaluations < FORWARD_EVALUATIONS_BEFORE_REVERSE => {
                step_costs.resize(chain.len(), 0);
                let answer = self.related_exists(slot, chain, condition, &mut step_costs)?;
                self.related_states[index] = RelatedState::Forward {
                    evaluations: evaluations + 1,
                    step_costs,
                };
                return Ok(answer);
            }
            RelatedState::Forward {
                evaluations,
                step_costs,
            } => {
                let remaining = self.graph.count_of_kind(from).saturating_sub(evaluations);
                let budgets = step_budgets(&step_costs, evaluations, remaining);
                self.plan_reverse(from, chain, condition, &budgets)?
            }
            reverse @ RelatedState::Reverse { .. } => reverse,
        };
        let answer = match &state {
            RelatedState::Reverse { level: 0, members } => members.contains(slot as usize),
            RelatedState::Reverse { level, members } => {
                self.reaches_member(slot, &chain[..*level], members)?
            }
            RelatedState::Forward { .. } => {
                let mut step_costs = vec![0; chain.len()];
                self.related_exists(slot, chain, condition, &mut step_costs)?
            }
        };
        self.related_states[index] = state;
        Ok(answer)
    }

    /// Whether walking `chain` from `slot` reaches a member, depth first and without
    /// collecting what it passes.
    fn reaches_member(
        &mut self,
        slot: Slot,
        chain: &[(Step, EntityKind)],
        members: &FixedBitSet,
    ) -> Result<bool> {
        let Some((&((edge, forward), kind), rest)) = chain.split_first() else {
            return Ok(members.contains(slot as usize));
        };
        let graph = self.graph;
        let list = if forward {
            graph.out_edges(slot)
        } else {
            graph.in_edges(slot)
        };
        self.charge(list.len())?;
        for &(next, found) in list {
            if found == edge
                && graph.kind_of(next) == Some(kind)
                && self.reaches_member(next, rest, members)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The slots as a set.
    pub(super) fn member_set(&self, slots: &[Slot]) -> FixedBitSet {
        let mut members = FixedBitSet::with_capacity(self.graph.slot_capacity());
        members.extend(slots.iter().map(|slot| *slot as usize));
        members
    }

    /// Plans a condition from the far end: see [`Evaluator::walk_back`]. An empty chain
    /// stays forward.
    pub(super) fn plan_reverse(
        &mut self,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
        budgets: &[usize],
    ) -> Result<RelatedState> {
        let Some((level, reached)) = self.walk_back(from, chain, condition, budgets)? else {
            return Ok(RelatedState::default());
        };
        Ok(RelatedState::Reverse {
            level,
            members: self.member_set(&reached),
        })
    }

    /// Finds the far entities satisfying the condition and walks the chain backwards, one
    /// step at a time while the step costs less backwards than the candidates would pay to
    /// walk it forwards (`budgets`, per step). Returns the level it stopped at and the
    /// entities it reached there, in slot order (at level 0, exactly the entities of kind
    /// `from` that satisfy the condition); `None` for an empty chain.
    pub(super) fn walk_back(
        &mut self,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
        budgets: &[usize],
    ) -> Result<Option<(usize, Vec<Slot>)>> {
        let graph = self.graph;
        let Some(&(_, far_kind)) = chain.last() else {
            return Ok(None);
        };
        let narrowed = match condition {
            Some(plan) => self.narrow(far_kind, plan, graph.count_of_kind(far_kind))?,
            None => None,
        };
        let (pool, exact) = match narrowed {
            Some(narrowed) => (narrowed.slots, narrowed.exact),
            None => (graph.of_kind(far_kind).collect(), condition.is_none()),
        };
        let mut current: Vec<Slot> = Vec::new();
        match condition {
            Some(plan) if !exact => {
                for candidate in pool {
                    if self.matches(candidate, plan)? {
                        current.push(candidate);
                    }
                }
            }
            _ => {
                self.charge(pool.len())?;
                current = pool;
            }
        }
        let mut seen = FixedBitSet::with_capacity(graph.slot_capacity());
        let mut level = chain.len();
        while level > 0 {
            let ((edge, forward), _) = chain[level - 1];
            let previous_kind = if level >= 2 { chain[level - 2].1 } else { from };
            let backward = |slot: Slot| {
                if forward {
                    graph.in_edges(slot)
                } else {
                    graph.out_edges(slot)
                }
            };
            let cost: usize = current.iter().map(|slot| backward(*slot).len()).sum();
            if cost > budgets.get(level - 1).copied().unwrap_or(0).max(1_000) {
                break;
            }
            self.charge(cost)?;
            let mut previous: Vec<Slot> = Vec::new();
            for &slot in &current {
                for &(next, found) in backward(slot) {
                    if found == edge
                        && graph.kind_of(next) == Some(previous_kind)
                        && !seen.put(next as usize)
                    {
                        previous.push(next);
                    }
                }
            }
            seen.clear();
            previous.sort_unstable();
            current = previous;
            level -= 1;
        }
        Ok(Some((level, current)))
    }
}

/// What each step of a chain would cost `remaining` candidates walking it forwards, from
/// what it cost `evaluations` of them.
pub(super) fn step_budgets(
    step_costs: &[usize],
    evaluations: usize,
    remaining: usize,
) -> Vec<usize> {
    step_costs
        .iter()
        .map(|cost| cost / evaluations.max(1) * remaining)
        .collect()
}
