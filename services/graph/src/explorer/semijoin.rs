//! Related-entity conditions evaluated from the other end: when a condition such as
//! `has vulnerability(name = "CVE-X")` is checked for many entities, the entities at the far
//! end that satisfy it are found once and the chain is walked backwards from them, as long
//! as that stays cheaper than walking forwards from every candidate; candidates then only
//! walk the remaining first steps and test membership. The answer is the same: a candidate
//! reaches a satisfying far entity along the chain exactly when the entities it reaches at
//! the level where the backward walk stopped include one that leads to such an entity.

use super::{Evaluator, Op, Plan, Step};
use crate::error::Result;
use crate::graph::Slot;
use crate::model::EntityKind;

/// Forward evaluations of a related condition before it is planned from the other end: a
/// condition checked for a handful of entities never pays for the backward walk.
const FORWARD_EVALUATIONS_BEFORE_REVERSE: usize = 64;

/// How a related-entity condition is evaluated.
#[derive(Debug)]
pub(super) enum RelatedState {
    /// Forward from each candidate: evaluations so far and the entities and edges they
    /// looked at.
    Forward(usize, usize),
    /// Candidates walk the first `level` steps and test membership of what they reach.
    Reverse { level: usize, members: Vec<bool> },
}

impl Default for RelatedState {
    fn default() -> Self {
        RelatedState::Forward(0, 0)
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
            RelatedState::Forward(count, visits) if count < FORWARD_EVALUATIONS_BEFORE_REVERSE => {
                let before = self.visits;
                let answer = self.related_exists(slot, chain, condition)?;
                let cost = self.visits - before;
                self.related_states[index] = RelatedState::Forward(count + 1, visits + cost);
                return Ok(answer);
            }
            RelatedState::Forward(count, visits) => {
                // Walking forwards from every remaining candidate would cost about this much.
                let forward_cost = visits / count.max(1) * self.graph.count_of_kind(from);
                self.plan_reverse(from, chain, condition, forward_cost)?
            }
            reverse @ RelatedState::Reverse { .. } => reverse,
        };
        let answer = match &state {
            RelatedState::Reverse { level, members } => {
                let reached = if *level == 0 {
                    vec![slot]
                } else {
                    self.related(slot, &chain[..*level])?
                };
                reached
                    .iter()
                    .any(|found| members.get(*found as usize).copied().unwrap_or(false))
            }
            RelatedState::Forward(..) => self.related_exists(slot, chain, condition)?,
        };
        self.related_states[index] = state;
        Ok(answer)
    }

    /// Finds the far entities satisfying the condition and walks the chain backwards while
    /// the backward steps together cost less than walking forwards from every candidate.
    fn plan_reverse(
        &mut self,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
        forward_cost: usize,
    ) -> Result<RelatedState> {
        let graph = self.graph;
        let Some(&(_, far_kind)) = chain.last() else {
            return Ok(RelatedState::Forward(0, 0));
        };
        let mut current: Vec<Slot> = Vec::new();
        for candidate in graph.of_kind(far_kind) {
            let holds = match condition {
                Some(plan) => self.matches(candidate, plan)?,
                None => {
                    self.charge(1)?;
                    true
                }
            };
            if holds {
                current.push(candidate);
            }
        }
        let mut budget = forward_cost.max(1_000);
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
            if cost > budget {
                break;
            }
            budget -= cost;
            self.charge(cost)?;
            let mut previous: Vec<Slot> = Vec::new();
            for &slot in &current {
                for &(next, found) in backward(slot) {
                    if found == edge
                        && graph
                            .entity(next)
                            .is_some_and(|entity| entity.kind == previous_kind)
                    {
                        previous.push(next);
                    }
                }
            }
            previous.sort_unstable();
            previous.dedup();
            current = previous;
            level -= 1;
        }
        let mut members = vec![false; graph.slot_capacity()];
        for slot in current {
            members[slot as usize] = true;
        }
        Ok(RelatedState::Reverse { level, members })
    }
}
