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

    /// Keeps the slots that have a related entity along `chain` satisfying `condition`, in
    /// order. Slots are checked one by one until the condition is planned from the far end;
    /// the rest then walk the chain together, a step at a time (see
    /// [`Evaluator::retain_reaching`]).
    pub(super) fn retain_related(
        &mut self,
        slots: &mut Vec<Slot>,
        index: usize,
        from: EntityKind,
        chain: &[(Step, EntityKind)],
        condition: Option<&Plan>,
    ) -> Result<()> {
        let mut kept = Vec::with_capacity(slots.len());
        let mut position = 0;
        while position < slots.len()
            && !matches!(self.related_states[index], RelatedState::Reverse { .. })
        {
            let slot = slots[position];
            self.charge(1)?;
            if self.related_holds(slot, index, from, chain, condition)? {
                kept.push(slot);
            }
            position += 1;
        }
        if position < slots.len() {
            let state = std::mem::take(&mut self.related_states[index]);
            let walked = match &state {
                RelatedState::Reverse { level, members } => {
                    self.retain_reaching(&slots[position..], &chain[..*level], members, &mut kept)
                }
                RelatedState::Forward { .. } => Ok(()),
            };
            self.related_states[index] = state;
            walked?;
        }
        *slots = kept;
        Ok(())
    }

    /// Appends to `kept`, in order, the slots from which walking `chain` reaches a member.
    /// The slots walk it together, a step at a time and a block of them at once: the edge
    /// lists one step reads for different slots do not depend on each other, so the memory
    /// reads overlap instead of waiting one for another as a walk slot by slot does.
    fn retain_reaching(
        &mut self,
        slots: &[Slot],
        chain: &[(Step, EntityKind)],
        members: &FixedBitSet,
        kept: &mut Vec<Slot>,
    ) -> Result<()> {
        const BLOCK: usize = 1024;
        let graph = self.graph;
        let mut frontier: Vec<(u32, Slot)> = Vec::new();
        let mut next: Vec<(u32, Slot)> = Vec::new();
        let mut found = FixedBitSet::with_capacity(BLOCK);
        for block in slots.chunks(BLOCK) {
            frontier.clear();
            frontier.extend((0..).zip(block.iter().copied()));
            for &((edge, forward), kind) in chain {
                next.clear();
                let mut cost = 0;
                for &(origin, slot) in &frontier {
                    let list = if forward {
                        graph.out_edges(slot)
                    } else {
                        graph.in_edges(slot)
                    };
                    cost += list.len();
                    next.extend(
                        list.iter()
                            .filter(|(target, found)| {
                                *found == edge && graph.kind_of(*target) == Some(kind)
                            })
                            .map(|(target, _)| (origin, *target)),
                    );
                }
                self.charge(cost)?;
                std::mem::swap(&mut frontier, &mut next);
            }
            found.clear();
            for &(origin, slot) in &frontier {
                if members.contains(slot as usize) {
                    found.insert(origin as usize);
                }
            }
            kept.extend(found.ones().map(|origin| block[origin]));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use fixedbitset::FixedBitSet;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::{Evaluator, QueryLimits};
    use crate::derive::Derived;
    use crate::graph::{Slot, TenantGraph, Unit};
    use crate::model::{EdgeKind, Entity, EntityKind};

    /// Pods running containers that use images, with the edges a walk must skip: other
    /// kinds of edge between the same entities, and a `Runs` edge to an entity of the
    /// wrong kind.
    fn random_graph(rng: &mut StdRng) -> TenantGraph {
        let mut derived = Derived::default();
        let entity =
            |kind: EntityKind, name: String| Entity::new(kind, "c", "n", &name, name.clone());
        for image in 0..40 {
            derived.entity(entity(EntityKind::Image, format!("image-{image}")));
        }
        for node in 0..5 {
            derived.entity(entity(EntityKind::Node, format!("node-{node}")));
        }
        let mut container = 0;
        for pod in 0..1500 {
            let pod_id = format!("pod-{pod}");
            derived.entity(entity(EntityKind::Pod, pod_id.clone()));
            let node = format!("node-{}", rng.random_range(0..5));
            derived.edge(&pod_id, EdgeKind::ScheduledOn, &node);
            if rng.random_bool(0.05) {
                derived.edge(&pod_id, EdgeKind::Runs, &node);
            }
            for _ in 0..rng.random_range(0..4) {
                let container_id = format!("container-{container}");
                container += 1;
                derived.entity(entity(EntityKind::Container, container_id.clone()));
                derived.edge(&pod_id, EdgeKind::Runs, &container_id);
                derived.edge(&pod_id, EdgeKind::ContainerAttach, &container_id);
                for _ in 0..rng.random_range(0..3) {
                    let image = format!("image-{}", rng.random_range(0..40));
                    derived.edge(&container_id, EdgeKind::UsesImage, &image);
                }
            }
        }
        let mut graph = TenantGraph::new();
        graph.apply(Unit::Cluster("c".into()), derived);
        graph
    }

    /// Walking a block of slots a step at a time keeps exactly the slots a depth-first walk
    /// from each reaches a member from, in order, for chains of every length.
    #[test]
    fn walking_slots_together_keeps_what_walking_each_keeps() {
        let mut rng = StdRng::seed_from_u64(7);
        let graph = random_graph(&mut rng);
        let pods: Vec<Slot> = graph.of_kind(EntityKind::Pod).collect();
        let runs = ((EdgeKind::Runs, true), EntityKind::Container);
        let uses = ((EdgeKind::UsesImage, true), EntityKind::Image);
        let run_by = ((EdgeKind::Runs, false), EntityKind::Pod);
        let chains = [
            vec![],
            vec![runs],
            vec![runs, uses],
            vec![
                runs,
                uses,
                ((EdgeKind::UsesImage, false), EntityKind::Container),
                run_by,
            ],
        ];
        let mut evaluator = Evaluator {
            graph: &graph,
            visits: 0,
            limits: QueryLimits::default(),
            related_states: Vec::new(),
        };
        let mut decided = 0;
        for round in 0..40 {
            let chain = &chains[round % chains.len()];
            let share = rng.random_range(0.02..0.3);
            let mut members = FixedBitSet::with_capacity(graph.slot_capacity());
            for slot in 0..graph.slot_capacity() {
                if rng.random_bool(share) {
                    members.insert(slot);
                }
            }
            // Candidates in slot order, as the query hands them over, more than one block.
            let candidates: Vec<Slot> = pods
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.9))
                .collect();
            let expected: Vec<Slot> = candidates
                .iter()
                .copied()
                .filter(|slot| {
                    evaluator
                        .reaches_member(*slot, chain, &members)
                        .expect("within budget")
                })
                .collect();
            let mut kept = Vec::new();
            evaluator
                .retain_reaching(&candidates, chain, &members, &mut kept)
                .expect("within budget");
            assert_eq!(kept, expected, "round {round}, chain of {}", chain.len());
            if !kept.is_empty() && kept.len() < candidates.len() {
                decided += 1;
            }
        }
        assert!(
            decided >= 30,
            "only {decided} of 40 rounds kept some candidates and not all"
        );
    }
}
