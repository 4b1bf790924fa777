//! The leader's assignment of connectors and tasks to workers: incremental and cooperative, in
//! the manner of Java's `IncrementalCooperativeAssignor` (KIP-415).
//!
//! * A unit stays with the member that already runs it (each member reports its previous
//!   assignment in its metadata), so a rebalance stops nothing that need not move.
//! * Connectors and tasks are balanced separately: every member ends with ⌊n/m⌋ or ⌈n/m⌉ of each.
//! * Moving a unit takes two rebalances: the leader first revokes it from an overloaded member
//!   (which stops it and rejoins at once), then assigns it, now unowned, to an underloaded one.
//!   A unit therefore never runs on two workers at the same time.
//! * Units of a member that left without handing them over are held for
//!   `scheduled.rebalance.max.delay.ms` (the worker may come back, e.g. a rolling restart), then
//!   reassigned. A member that stops gracefully marks its units UNASSIGNED in the status topic
//!   first, and those are reassigned at once.

use std::collections::{BTreeMap, BTreeSet};

use super::protocol::Unit;

/// What the leader remembers between generations.
#[derive(Debug, Default, Clone)]
pub struct AssignorState {
    /// The assignment handed out last time, per member.
    previous: BTreeMap<String, BTreeSet<Unit>>,
    /// Units of departed members, and when (ms) they may be given to someone else.
    held_until: BTreeMap<Unit, u64>,
}

/// The inputs of one assignment.
pub struct Round<'a> {
    /// Present members and the units each reports running.
    pub members: &'a BTreeMap<String, BTreeSet<Unit>>,
    /// Every unit that should run, from the config topic.
    pub units: &'a BTreeSet<Unit>,
    /// Units whose last status says their worker released them.
    pub released: &'a BTreeSet<Unit>,
    pub now_ms: u64,
    pub max_delay_ms: u64,
}

/// One member's share.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Share {
    pub assigned: BTreeSet<Unit>,
    pub revoked: BTreeSet<Unit>,
}

/// The result of one assignment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub shares: BTreeMap<String, Share>,
    /// Milliseconds until held units may be reassigned (0 = none held).
    pub delay_ms: u64,
}

impl Plan {
    /// Units assigned to some member (held units are not).
    pub fn covered(&self) -> BTreeSet<Unit> {
        self.shares
            .values()
            .flat_map(|s| s.assigned.iter().cloned())
            .collect()
    }
}

impl AssignorState {
    /// Computes the next assignment and remembers it.
    pub fn assign(&mut self, round: &Round<'_>) -> Plan {
        let mut owner: BTreeMap<Unit, String> = BTreeMap::new();
        for (member, units) in round.members {
            for u in units.iter().filter(|u| round.units.contains(*u)) {
                owner.entry(u.clone()).or_insert_with(|| member.clone());
            }
        }

        // Units lost with a departed member: hold them for a while unless released.
        let mut lost: BTreeSet<Unit> = BTreeSet::new();
        for (member, units) in &self.previous {
            if round.members.contains_key(member) {
                continue;
            }
            lost.extend(
                units
                    .iter()
                    .filter(|u| round.units.contains(*u) && !owner.contains_key(*u))
                    .cloned(),
            );
        }
        let mut held_until = BTreeMap::new();
        for u in lost.iter().chain(self.held_until.keys()) {
            if !round.units.contains(u) || owner.contains_key(u) || round.released.contains(u) {
                continue;
            }
            let deadline = self
                .held_until
                .get(u)
                .copied()
                .unwrap_or(round.now_ms + round.max_delay_ms);
            if deadline > round.now_ms {
                held_until.insert(u.clone(), deadline);
            }
        }

        let mut plan = Plan::default();
        for member in round.members.keys() {
            plan.shares.insert(member.clone(), Share::default());
        }
        for (u, m) in &owner {
            if let Some(share) = plan.shares.get_mut(m) {
                share.assigned.insert(u.clone());
            }
        }
        for (member, units) in round.members {
            if let Some(share) = plan.shares.get_mut(member) {
                // Units a member runs that no longer exist (or are owned twice) are revoked.
                share.revoked.extend(
                    units
                        .iter()
                        .filter(|u| !share.assigned.contains(*u))
                        .cloned(),
                );
            }
        }
        let free: BTreeSet<Unit> = round
            .units
            .iter()
            .filter(|u| !owner.contains_key(*u) && !held_until.contains_key(*u))
            .cloned()
            .collect();
        let (connectors, tasks): (BTreeSet<Unit>, BTreeSet<Unit>) =
            free.into_iter().partition(|u| u.task.is_none());
        balance(&mut plan, connectors, |u| u.task.is_none());
        balance(&mut plan, tasks, |u| u.task.is_some());

        plan.delay_ms = held_until
            .values()
            .map(|d| d.saturating_sub(round.now_ms))
            .min()
            .unwrap_or(0);
        self.held_until = held_until;
        self.previous = plan
            .shares
            .iter()
            .map(|(m, s)| (m.clone(), s.assigned.clone()))
            .collect();
        plan
    }

    /// Units the last plan covered, including held ones: when the config topic's units differ,
    /// the leader asks for a rebalance.
    pub fn known_units(&self) -> BTreeSet<Unit> {
        self.previous
            .values()
            .flatten()
            .chain(self.held_until.keys())
            .cloned()
            .collect()
    }
}

/// Gives `free` units of one kind to the least-loaded members and revokes the excess of
/// overloaded ones, so each member ends with ⌊n/m⌋ or ⌈n/m⌉ units of that kind.
fn balance(plan: &mut Plan, free: BTreeSet<Unit>, kind: impl Fn(&Unit) -> bool) {
    let members = plan.shares.len();
    if members == 0 {
        return;
    }
    let load = |s: &Share| s.assigned.iter().filter(|u| kind(u)).count();
    let total: usize = plan.shares.values().map(load).sum::<usize>() + free.len();
    let floor = total / members;
    let mut ceil_slots = total % members;
    // Most-loaded members keep the ⌈n/m⌉ slots, so fewer units move.
    let mut order: Vec<(String, usize)> = plan
        .shares
        .iter()
        .map(|(m, s)| (m.clone(), load(s)))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut targets: BTreeMap<String, usize> = BTreeMap::new();
    for (m, _) in &order {
        let extra = usize::from(ceil_slots > 0);
        ceil_slots = ceil_slots.saturating_sub(1);
        targets.insert(m.clone(), floor + extra);
    }
    for (m, share) in plan.shares.iter_mut() {
        let target = targets.get(m).copied().unwrap_or(floor);
        let mine: Vec<Unit> = share.assigned.iter().filter(|u| kind(u)).cloned().collect();
        let excess = mine.len().saturating_sub(target);
        for u in mine.into_iter().rev().take(excess) {
            share.assigned.remove(&u);
            share.revoked.insert(u);
        }
    }
    let mut free = free.into_iter();
    'members: for (m, _) in order.iter().rev() {
        let target = targets.get(m).copied().unwrap_or(floor);
        let Some(share) = plan.shares.get_mut(m) else {
            continue;
        };
        while load(share) < target {
            match free.next() {
                Some(u) => {
                    share.assigned.insert(u);
                }
                None => break 'members,
            }
        }
    }
    // Anything left (every member full because units are being revoked) goes round-robin so
    // nothing is left unassigned.
    let names: Vec<String> = plan.shares.keys().cloned().collect();
    for (i, u) in free.enumerate() {
        if let Some(share) = plan.shares.get_mut(&names[i % names.len()]) {
            share.assigned.insert(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(n_tasks: u32) -> BTreeSet<Unit> {
        let mut s: BTreeSet<Unit> = (0..n_tasks).map(|t| Unit::task("c", t)).collect();
        s.insert(Unit::connector("c"));
        s
    }

    fn members(list: &[(&str, &[Unit])]) -> BTreeMap<String, BTreeSet<Unit>> {
        list.iter()
            .map(|(m, u)| (m.to_string(), u.iter().cloned().collect()))
            .collect()
    }

    fn round<'a>(
        members: &'a BTreeMap<String, BTreeSet<Unit>>,
        units: &'a BTreeSet<Unit>,
        released: &'a BTreeSet<Unit>,
        now_ms: u64,
    ) -> Round<'a> {
        Round {
            members,
            units,
            released,
            now_ms,
            max_delay_ms: 10_000,
        }
    }

    fn tasks_of(plan: &Plan, m: &str) -> usize {
        plan.shares[m]
            .assigned
            .iter()
            .filter(|u| u.task.is_some())
            .count()
    }

    #[test]
    fn a_new_cluster_spreads_tasks_evenly() {
        let mut state = AssignorState::default();
        let all = units(6);
        let m = members(&[("a", &[]), ("b", &[]), ("c", &[])]);
        let none = BTreeSet::new();
        let plan = state.assign(&round(&m, &all, &none, 0));
        for member in ["a", "b", "c"] {
            assert_eq!(tasks_of(&plan, member), 2, "{member}");
        }
        assert_eq!(plan.covered(), all);
        assert_eq!(plan.delay_ms, 0);
    }

    #[test]
    fn a_joining_member_gets_units_in_two_steps() {
        let mut state = AssignorState::default();
        let all = units(4);
        let everything: Vec<Unit> = all.iter().cloned().collect();
        let none = BTreeSet::new();
        let m = members(&[("a", &everything), ("b", &[])]);
        let first = state.assign(&round(&m, &all, &none, 0));
        assert_eq!(
            first.shares["a"].revoked.len(),
            2,
            "two tasks revoked from a"
        );
        assert!(
            first.shares["b"].assigned.is_empty(),
            "nothing moves in the revoking round"
        );
        // a stops the revoked tasks and rejoins; now they are free and go to b.
        let a_now: Vec<Unit> = first.shares["a"].assigned.iter().cloned().collect();
        let b_now: Vec<Unit> = first.shares["b"].assigned.iter().cloned().collect();
        let m = members(&[("a", &a_now), ("b", &b_now)]);
        let second = state.assign(&round(&m, &all, &none, 1));
        assert_eq!(tasks_of(&second, "a"), 2);
        assert_eq!(tasks_of(&second, "b"), 2);
        assert!(second.shares.values().all(|s| s.revoked.is_empty()));
        assert_eq!(second.covered(), all);
    }

    #[test]
    fn a_departed_members_units_are_held_then_reassigned() {
        let mut state = AssignorState::default();
        let all = units(2);
        let none = BTreeSet::new();
        let m = members(&[("a", &[]), ("b", &[])]);
        let plan = state.assign(&round(&m, &all, &none, 0));
        let b_units = plan.shares["b"].assigned.clone();
        assert!(!b_units.is_empty());
        let a_units: Vec<Unit> = plan.shares["a"].assigned.iter().cloned().collect();
        let only_a = members(&[("a", &a_units)]);

        let held = state.assign(&round(&only_a, &all, &none, 1_000));
        assert_eq!(held.delay_ms, 10_000);
        assert!(b_units.iter().all(|u| !held.covered().contains(u)));

        let still = state.assign(&round(&only_a, &all, &none, 6_000));
        assert_eq!(still.delay_ms, 5_000);

        let after = state.assign(&round(&only_a, &all, &none, 11_000));
        assert_eq!(after.delay_ms, 0);
        assert_eq!(after.covered(), all);
    }

    #[test]
    fn released_units_move_at_once() {
        let mut state = AssignorState::default();
        let all = units(2);
        let none = BTreeSet::new();
        let m = members(&[("a", &[]), ("b", &[])]);
        let plan = state.assign(&round(&m, &all, &none, 0));
        let released = plan.shares["b"].assigned.clone();
        let a_units: Vec<Unit> = plan.shares["a"].assigned.iter().cloned().collect();
        let only_a = members(&[("a", &a_units)]);
        let next = state.assign(&round(&only_a, &all, &released, 1));
        assert_eq!(next.delay_ms, 0);
        assert_eq!(next.covered(), all);
    }

    #[test]
    fn deleted_units_are_revoked_and_new_ones_assigned() {
        let mut state = AssignorState::default();
        let old = [Unit::connector("gone"), Unit::task("gone", 0)];
        let m = members(&[("a", &old)]);
        let all = units(1);
        let none = BTreeSet::new();
        let plan = state.assign(&round(&m, &all, &none, 0));
        assert_eq!(plan.shares["a"].revoked, old.iter().cloned().collect());
        assert_eq!(plan.shares["a"].assigned, all);
        assert_eq!(state.known_units(), all);
    }
}
