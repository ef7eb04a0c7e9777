//! Policy programs shared by endpoints with the same plan.
//!
//! The calculation graph plans every endpoint separately, and its compiler would compile one
//! program per endpoint and direction. Endpoints whose plans are equal (the same tiers with
//! the same policies in the same order, the same profiles: typically every pod of a
//! deployment) get byte-for-byte equal programs, so this node compiles each distinct plan
//! once and points all its endpoints at the same program ids. A policy change then costs one
//! compilation per distinct plan that uses it, not one per endpoint, and the ring carries one
//! program instead of a thousand copies.
//!
//! Program ids here are this module's own (the compiler's per-endpoint ids are not used).
//! Rule hit counters are therefore per group of endpoints, not per endpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tortie_abi as abi;
use tortie_calc::compile::{FastpathCompiler, ProgramKind};
use tortie_calc::{CalcGraph, EndpointId, EndpointPlan};

/// The program kinds, in the order of [`Group::ids`] (ingress, egress, untracked
/// ingress, untracked egress, preDNAT, forward ingress, forward egress).
const KINDS: [ProgramKind; 7] = ProgramKind::ALL;
/// How many program kinds an endpoint has.
const KIND_COUNT: usize = KINDS.len();

/// One distinct plan and the endpoints that have it.
#[derive(Debug)]
struct Group {
    /// Program id per kind (`None`: the plan needs no program of that kind).
    ids: [Option<u32>; KIND_COUNT],
    members: BTreeSet<EndpointId>,
    /// Set when the plan could not be compiled: the programs deny everything.
    failed: Option<String>,
    /// A member's plan (equal to every member's but for id and addresses).
    plan: Arc<EndpointPlan>,
}

/// The identity of a plan for sharing: everything but the endpoint's id and addresses.
fn plan_key(plan: &EndpointPlan) -> String {
    serde_json::to_string(&(&plan.ingress, &plan.egress, &plan.profiles)).unwrap_or_default()
}

/// Hands out the next id.
fn bump(counter: &mut u32) -> u32 {
    *counter += 1;
    *counter
}

/// Which kinds a plan needs.
fn needed(plan: &EndpointPlan) -> [bool; KIND_COUNT] {
    KINDS.map(|k| k.needed(plan))
}

/// The programs of this node's endpoints, grouped by plan.
#[derive(Debug, Default)]
pub struct SharedPrograms {
    groups: HashMap<String, Group>,
    of: HashMap<EndpointId, String>,
    next_id: u32,
    /// Set when an endpoint's program ids changed (it moved group, or its group's ids
    /// changed): the endpoint entries must be rebuilt. Cleared by [`SharedPrograms::take_regrouped`].
    regrouped: bool,
}

impl SharedPrograms {
    /// The program ids of an endpoint (ingress, egress, untracked in/out, preDNAT, forward
    /// in/out).
    pub fn ids(&self, id: &EndpointId) -> [Option<abi::ProgramId>; KIND_COUNT] {
        let Some(group) = self.of.get(id).and_then(|k| self.groups.get(k)) else {
            return [None; KIND_COUNT];
        };
        group.ids.map(|i| i.map(abi::ProgramId))
    }

    /// The endpoints that have a group and fail `keep` (no longer this node's).
    pub fn endpoints_not(&self, keep: impl Fn(&EndpointId) -> bool) -> Vec<EndpointId> {
        self.of.keys().filter(|id| !keep(id)).cloned().collect()
    }

    /// Whether the endpoint has a group.
    pub fn has(&self, id: &EndpointId) -> bool {
        self.of.contains_key(id)
    }

    /// Endpoints whose plan could not be compiled, with why (they are denied everything).
    pub fn failed_closed(&self) -> BTreeMap<EndpointId, String> {
        let mut out = BTreeMap::new();
        for group in self.groups.values() {
            if let Some(why) = &group.failed {
                for m in &group.members {
                    out.insert(m.clone(), why.clone());
                }
            }
        }
        out
    }

    /// Brings endpoints up to date and drops those in `removed`: `planned` carries new plans
    /// (from the graph's flush); endpoints in `touched` keep their plan but a policy or
    /// profile in it changed (their group is recompiled; one without a group is planned).
    /// Returns the program upserts and removals to send; each changed group is compiled
    /// once.
    pub fn update(
        &mut self,
        graph: &CalcGraph,
        compiler: &mut FastpathCompiler,
        planned: &BTreeMap<EndpointId, Arc<EndpointPlan>>,
        touched: &BTreeSet<EndpointId>,
        removed: &BTreeSet<EndpointId>,
    ) -> (Vec<abi::Op>, Vec<abi::Op>) {
        let mut dirty: BTreeMap<String, Arc<EndpointPlan>> = BTreeMap::new();
        for id in removed {
            self.leave(id);
        }
        for id in touched {
            if planned.contains_key(id) {
                continue;
            }
            if let Some(group) = self
                .of
                .get(id)
                .and_then(|k| self.groups.get(k).map(|g| (k, g)))
            {
                let (key, group) = group;
                dirty
                    .entry(key.clone())
                    .or_insert_with(|| group.plan.clone());
            }
        }
        let unplanned: Vec<(EndpointId, Arc<EndpointPlan>)> = touched
            .iter()
            .filter(|id| !planned.contains_key(*id) && !self.of.contains_key(*id))
            .filter_map(|id| graph.plan(id).map(|p| (id.clone(), Arc::new(p))))
            .collect();
        let fresh = planned
            .iter()
            .map(|(id, p)| (id.clone(), p.clone()))
            .chain(unplanned);
        for (id, plan) in fresh {
            let key = plan_key(&plan);
            if self.of.get(&id) != Some(&key) {
                self.leave(&id);
                self.of.insert(id.clone(), key.clone());
                self.regrouped = true;
            }
            let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
                ids: [None; KIND_COUNT],
                members: BTreeSet::new(),
                failed: None,
                plan: plan.clone(),
            });
            group.members.insert(id.clone());
            if group.members.len() == 1 {
                // A new group, or a former one revived: compile from this member's plan.
                group.plan = plan.clone();
            }
            dirty.entry(key).or_insert(plan);
        }
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for (key, plan) in dirty {
            let wanted = needed(&plan);
            let mut compiled = Vec::new();
            let mut failure = None;
            for (slot, kind) in KINDS.iter().enumerate() {
                if !wanted[slot] {
                    continue;
                }
                match compiler.program(graph, &plan, *kind) {
                    Ok(p) => compiled.push((slot, p)),
                    Err(err) => {
                        failure = Some(err.to_string());
                        break;
                    }
                }
            }
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            let mut ids = [None; KIND_COUNT];
            if let Some(why) = failure {
                // Fail closed: no tiers and no profiles deny everything (the normal
                // programs, and the forward programs the plan needs, whose absence would
                // allow forwarded traffic).
                let slots = (0..KIND_COUNT).filter(|&i| KINDS[i].denies_when_failed(&plan));
                for slot in slots {
                    let id = group.ids[slot].unwrap_or_else(|| bump(&mut self.next_id));
                    ids[slot] = Some(id);
                    upserts.push(abi::Op::UpsertProgram(abi::PolicyProgram {
                        id: abi::ProgramId(id),
                        tiers: Vec::new(),
                        profiles: Vec::new(),
                    }));
                }
                group.failed = Some(why);
            } else {
                for (slot, mut p) in compiled {
                    let id = group.ids[slot].unwrap_or_else(|| bump(&mut self.next_id));
                    ids[slot] = Some(id);
                    p.id = abi::ProgramId(id);
                    upserts.push(abi::Op::UpsertProgram(p));
                }
                group.failed = None;
            }
            for (old, new) in group.ids.iter().zip(ids.iter()) {
                if let (Some(old), None) = (old, new) {
                    removals.push(abi::Op::RemoveProgram(abi::ProgramId(*old)));
                }
            }
            if group.ids != ids {
                self.regrouped = true;
            }
            group.ids = ids;
        }
        // Groups left without members.
        let empty: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in empty {
            if let Some(group) = self.groups.remove(&key) {
                removals.extend(
                    group
                        .ids
                        .into_iter()
                        .flatten()
                        .map(|id| abi::Op::RemoveProgram(abi::ProgramId(id))),
                );
            }
        }
        (upserts, removals)
    }

    /// Whether some endpoint's program ids changed since the last call.
    pub fn take_regrouped(&mut self) -> bool {
        std::mem::take(&mut self.regrouped)
    }

    fn leave(&mut self, id: &EndpointId) {
        if let Some(key) = self.of.remove(id)
            && let Some(group) = self.groups.get_mut(&key)
        {
            group.members.remove(id);
            self.regrouped = true;
        }
    }

    /// Distinct programs in use.
    pub fn program_count(&self) -> usize {
        self.groups
            .values()
            .map(|g| g.ids.iter().flatten().count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_model::parse_documents;

    fn graph(extra: &str) -> CalcGraph {
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: p\nspec:\n  selector: app == 'a'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [80]\n{extra}"
        );
        let mut resources = parse_documents(&text, "p.yaml").unwrap();
        for (i, app) in [(1, "a"), (2, "a"), (3, "b")] {
            let wep = format!(
                "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: w{i}\n  namespace: ns\n  labels:\n    app: {app}\nspec:\n  node: n1\n  interfaceName: tor{i}\n  ipNetworks: [198.19.0.{i}/32]\n  profiles: [kns.ns]\n"
            );
            resources.extend(parse_documents(&wep, "w.yaml").unwrap());
        }
        let mut g = CalcGraph::from_resources(&resources);
        g.flush();
        g
    }

    fn wid(i: u32) -> EndpointId {
        EndpointId::Workload {
            namespace: "ns".into(),
            name: format!("w{i}"),
        }
    }

    #[test]
    fn host_endpoints_get_forward_programs_only_for_apply_on_forward_policy() {
        let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: fwd\nspec:\n  selector: role == 'uplink'\n  applyOnForward: true\n  types: [Egress]\n  egress:\n  - action: Deny\n    protocol: TCP\n---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: n1-eth0\n  labels:\n    role: uplink\nspec:\n  node: n1\n  interfaceName: eth0\n  expectedIPs: [198.18.1.11]\n";
        let mut g = CalcGraph::from_resources(&parse_documents(text, "f.yaml").unwrap());
        g.flush();
        let hep = EndpointId::Host {
            name: "n1-eth0".into(),
        };
        let mut compiler = FastpathCompiler::new();
        let mut shared = SharedPrograms::default();
        let none = BTreeSet::new();
        let planned: BTreeMap<EndpointId, Arc<EndpointPlan>> =
            [(hep.clone(), Arc::new(g.plan(&hep).unwrap()))].into();
        let (up, _) = shared.update(&g, &mut compiler, &planned, &none, &none);
        let ids = shared.ids(&hep);
        // ingress, egress, and forward egress; no forward ingress (no such policy).
        assert!(ids[0].is_some() && ids[1].is_some());
        assert_eq!(ids[5], None);
        let fwd = ids[6].expect("a forward egress program");
        assert_eq!(up.len(), 3);
        let program = up
            .iter()
            .find_map(|op| match op {
                abi::Op::UpsertProgram(p) if p.id == fwd => Some(p.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(program.tiers.len(), 1);
    }

    #[test]
    fn equal_plans_share_programs_and_are_compiled_once() {
        let g = graph("");
        let mut compiler = FastpathCompiler::new();
        let mut shared = SharedPrograms::default();
        let none = BTreeSet::new();
        let plans = |ids: &[EndpointId]| -> BTreeMap<EndpointId, Arc<EndpointPlan>> {
            ids.iter()
                .map(|id| (id.clone(), Arc::new(g.plan(id).unwrap())))
                .collect()
        };
        let (up, rm) = shared.update(
            &g,
            &mut compiler,
            &plans(&[wid(1), wid(2), wid(3)]),
            &none,
            &none,
        );
        assert!(rm.is_empty());
        // Two distinct plans (app a with the policy, app b without): 2 x ingress + egress.
        assert_eq!(up.len(), 4);
        assert_eq!(shared.ids(&wid(1)), shared.ids(&wid(2)));
        assert_ne!(shared.ids(&wid(1)), shared.ids(&wid(3)));
        assert_eq!(shared.program_count(), 4);
        // Re-planning one member recompiles its group only.
        let (up, _) = shared.update(&g, &mut compiler, &plans(&[wid(1)]), &none, &none);
        assert_eq!(up.len(), 2);
        // A changed policy in both members' plan: the group is compiled once.
        let touched: BTreeSet<EndpointId> = [wid(1), wid(2)].into();
        let (up, _) = shared.update(&g, &mut compiler, &BTreeMap::new(), &touched, &none);
        assert_eq!(up.len(), 2);
        // Removing w3 empties its group: its programs go.
        let (_, rm) = shared.update(&g, &mut compiler, &BTreeMap::new(), &none, &[wid(3)].into());
        assert_eq!(rm.len(), 2);
        assert_eq!(shared.ids(&wid(3)), [None; KIND_COUNT]);
        assert_eq!(shared.program_count(), 2);
    }
}
