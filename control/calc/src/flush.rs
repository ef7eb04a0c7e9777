//! Turning dirty keys into events, and computing endpoint programs.

use crate::graph::CalcGraph;
use crate::ids::{EndpointId, ItemKey, SelectorKey};
use crate::plan::{CalcEvent, DirectionPlan, EndpointPlan, IpSetMember, TierPlan};
use crate::policy::{CompiledPolicy, PolicyClass, order_cmp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Which direction of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Traffic into the endpoint.
    Ingress,
    /// Traffic out of the endpoint.
    Egress,
}

impl CalcGraph {
    /// The program of endpoint `id` as the current state dictates, or `None` if the endpoint
    /// does not exist. Policies in a tier that does not exist (no Tier resource and not
    /// built in) still apply, as in Felix: their tier sorts after every existing tier (by
    /// name among such tiers) and has the end-of-tier Deny (see [`CalcGraph::tier_or_missing`]).
    pub fn plan(&self, id: &EndpointId) -> Option<EndpointPlan> {
        let info = self.endpoints.get(id)?;
        let host = matches!(id, EndpointId::Host { .. });
        let item = self.items.id(&ItemKey::Endpoint(id.clone()));
        let policies: Vec<&Arc<CompiledPolicy>> = item
            .iter()
            .flat_map(|item| self.index.selectors_matching(item))
            .filter_map(|s| match s {
                SelectorKey::Policy(p) => self.policies.get(p),
                SelectorKey::Set(_) => None,
            })
            .collect();
        Some(EndpointPlan {
            id: id.clone(),
            addrs: info.addrs.clone(),
            profiles: info.profiles.clone(),
            ingress: self.direction_plan(&policies, Direction::Ingress, host),
            egress: self.direction_plan(&policies, Direction::Egress, host),
        })
    }

    fn direction_plan(
        &self,
        policies: &[&Arc<CompiledPolicy>],
        direction: Direction,
        host: bool,
    ) -> DirectionPlan {
        let mut normal = Vec::new();
        let mut forward = Vec::new();
        let mut pre_dnat = Vec::new();
        let mut untracked = Vec::new();
        for policy in policies {
            let applies = match direction {
                Direction::Ingress => policy.ingress_enabled,
                Direction::Egress => policy.egress_enabled,
            };
            if !applies {
                continue;
            }
            match (policy.class, host) {
                (PolicyClass::Normal, _) => {
                    normal.push(*policy);
                    if host && policy.apply_on_forward {
                        forward.push(*policy);
                    }
                }
                (PolicyClass::PreDnat, true) if direction == Direction::Ingress => {
                    pre_dnat.push(*policy)
                }
                (PolicyClass::Untracked, true) => untracked.push(*policy),
                _ => {}
            }
        }
        DirectionPlan {
            normal: self.group_tiers(normal),
            forward: self.group_tiers(forward),
            pre_dnat: self.group_tiers(pre_dnat),
            untracked: self.group_tiers(untracked),
        }
    }

    fn group_tiers(&self, policies: Vec<&Arc<CompiledPolicy>>) -> Vec<TierPlan> {
        let mut by_tier: BTreeMap<&str, Vec<&Arc<CompiledPolicy>>> = BTreeMap::new();
        for policy in policies {
            by_tier
                .entry(policy.tier.as_str())
                .or_default()
                .push(policy);
        }
        // (missing, order, plan): existing tiers first, by order then name; then missing ones.
        let mut tiers: Vec<(bool, Option<f64>, TierPlan)> = Vec::new();
        for (name, mut members) in by_tier {
            let (info, missing) = self.tier_or_missing(name);
            members.sort_by(|a, b| {
                OrderKey(a.order)
                    .cmp(&OrderKey(b.order))
                    .then_with(|| a.id.cmp_sort_name(&b.id))
            });
            tiers.push((
                missing,
                info.order,
                TierPlan {
                    name: name.to_string(),
                    default_action: info.default_action,
                    policies: members.iter().map(|p| p.id.clone()).collect(),
                },
            ));
        }
        tiers.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| order_cmp((a.1, &a.2.name), (b.1, &b.2.name)))
        });
        tiers.into_iter().map(|(_, _, t)| t).collect()
    }

    /// The tier's settings, and whether it is missing. Felix keeps a policy whose tier does
    /// not exist in a placeholder tier that is "not valid": `TierLess` (felix/calc/
    /// policy_sorter.go) sorts it after every valid tier, `sendEndpointUpdate` (felix/calc/
    /// policy_resolver.go) still hands it to the dataplane, and its empty default action is
    /// not `Pass`, so the rule renderer ends it with the end-of-tier drop. So a missing tier
    /// has no order and defaults to Deny.
    pub fn tier_or_missing(&self, name: &str) -> (crate::policy::TierInfo, bool) {
        match self.tier(name) {
            Some(info) => (info, false),
            None => (
                crate::policy::TierInfo {
                    order: None,
                    default_action: tortie_model::types::TierAction::Deny,
                },
                true,
            ),
        }
    }
}

/// An order for sorting: unset sorts after every number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderKey(Option<f64>);

impl Eq for OrderKey {}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        order_cmp((self.0, ""), (other.0, ""))
    }
}

pub(crate) fn flush(graph: &mut CalcGraph) -> Vec<CalcEvent> {
    let dirty = std::mem::take(&mut graph.dirty);
    let (dirty_sets, dirty_members, dirty_policies, dirty_profiles, dirty_endpoints) = (
        dirty.sets,
        dirty.members,
        dirty.policies,
        dirty.profiles,
        dirty.endpoints,
    );
    let plans: Vec<(EndpointId, Option<EndpointPlan>)> = dirty_endpoints
        .into_iter()
        .map(|id| {
            let plan = graph.plan(&id);
            (id, plan)
        })
        .collect();
    let policies: Vec<_> = dirty_policies
        .into_iter()
        .map(|id| {
            let current = graph.policies.get(&id).cloned();
            (id, current)
        })
        .collect();
    let profiles: Vec<_> = dirty_profiles
        .into_iter()
        .map(|name| {
            let current = graph.profiles.get(&name).cloned();
            (name, current)
        })
        .collect();
    let sets = &graph.ipsets;
    let emitted_sets = &mut graph.emitted.sets;
    let emitted_policies = &mut graph.emitted.policies;
    let emitted_profiles = &mut graph.emitted.profiles;
    let emitted_endpoints = &mut graph.emitted.endpoints;
    let mut out = Vec::new();
    let mut removals = Vec::new();

    let mut set_ids: BTreeSet<_> = dirty_sets.iter().cloned().collect();
    set_ids.extend(dirty_members.keys().cloned());
    let mut removed_sets = Vec::new();
    for id in set_ids {
        match (sets.get(&id), emitted_sets.get_mut(&id)) {
            (Some(state), None) => {
                let members: Vec<IpSetMember> = state.members.keys().copied().collect();
                emitted_sets.insert(id.clone(), members.iter().copied().collect());
                out.push(CalcEvent::IpSetAdded { id, members });
            }
            (Some(state), Some(emitted)) => {
                let candidates: Vec<IpSetMember> = if dirty_sets.contains(&id) {
                    // Recreated within this batch: compare everything.
                    let mut all: BTreeSet<IpSetMember> = emitted.iter().copied().collect();
                    all.extend(state.members.keys().copied());
                    all.into_iter().collect()
                } else {
                    dirty_members
                        .get(&id)
                        .map(|m| m.iter().copied().collect())
                        .unwrap_or_default()
                };
                let mut added = Vec::new();
                let mut removed = Vec::new();
                for member in candidates {
                    let now = state.members.contains_key(&member);
                    let before = emitted.contains(&member);
                    if now && !before {
                        emitted.insert(member);
                        added.push(member);
                    } else if !now && before {
                        emitted.remove(&member);
                        removed.push(member);
                    }
                }
                if !added.is_empty() || !removed.is_empty() {
                    out.push(CalcEvent::IpSetDelta { id, added, removed });
                }
            }
            (None, Some(_)) => {
                emitted_sets.remove(&id);
                removed_sets.push(CalcEvent::IpSetRemoved(id));
            }
            (None, None) => {}
        }
    }
    let mut removed_policies = Vec::new();
    for (id, current) in policies {
        match current {
            Some(policy) => {
                if emitted_policies.get(&id).is_none_or(|e| **e != *policy) {
                    emitted_policies.insert(id, policy.clone());
                    out.push(CalcEvent::PolicyUpdated(policy));
                }
            }
            None => {
                if emitted_policies.remove(&id).is_some() {
                    removed_policies.push(CalcEvent::PolicyRemoved(id));
                }
            }
        }
    }
    let mut removed_profiles = Vec::new();
    for (name, current) in profiles {
        match current {
            Some(profile) => {
                if emitted_profiles.get(&name).is_none_or(|e| **e != *profile) {
                    emitted_profiles.insert(name, profile.clone());
                    out.push(CalcEvent::ProfileUpdated(profile));
                }
            }
            None => {
                if emitted_profiles.remove(&name).is_some() {
                    removed_profiles.push(CalcEvent::ProfileRemoved(name));
                }
            }
        }
    }
    for (id, plan) in plans {
        match plan {
            Some(plan) => {
                if emitted_endpoints.get(&id).is_none_or(|e| **e != plan) {
                    let plan = Arc::new(plan);
                    emitted_endpoints.insert(id, plan.clone());
                    out.push(CalcEvent::EndpointUpdated(plan));
                }
            }
            None => {
                if emitted_endpoints.remove(&id).is_some() {
                    removals.push(CalcEvent::EndpointRemoved(id));
                }
            }
        }
    }
    out.extend(removals);
    out.extend(removed_profiles);
    out.extend(removed_policies);
    out.extend(removed_sets);
    out
}
