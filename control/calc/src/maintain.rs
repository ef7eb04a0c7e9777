//! Keeping derived state consistent: index events, IP set members and references, policy
//! placement, profiles.

use crate::graph::{
    CalcGraph, DEFAULT_ALLOW_PROFILE, EndpointInfo, IpSetState, ItemData, Owner, label_map,
};
use crate::ids::{EndpointId, ItemId, ParentId, PolicyId, SelectorKey};
use crate::k8s::{KNS_PREFIX, namespace_profile};
use crate::plan::IpSetMember;
use crate::policy::{CompiledPolicy, compile_profile};
use crate::rules::{IpSetSpec, NAME_LABEL, SERVICE_ACCOUNT_LABEL_PREFIX};
use std::collections::BTreeMap;
use std::sync::Arc;
use tortie_model::types::{Action, ProfileSpec, Rule};
use tortie_selector::LabelMap;
use tortie_selector::index::MatchEvent;

impl CalcGraph {
    pub(crate) fn ensure_service_account(&mut self, namespace: &str, sa: &str) {
        let key = (namespace.to_string(), sa.to_string());
        if self.service_accounts.insert(key) {
            let mut labels = LabelMap::new();
            labels.insert(&format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{NAME_LABEL}"), sa);
            self.index.update_parent(
                ParentId::ServiceAccount(namespace.to_string(), sa.to_string()),
                labels,
                &mut self.events,
            );
            self.drain_events();
        }
    }

    /// Applies the match events the index produced: policy matches make endpoints dirty,
    /// IP-set selector matches add or remove the item's members.
    pub(crate) fn drain_events(&mut self) {
        let events = std::mem::take(&mut self.events);
        for event in &events {
            let (selector, item, started) = match event {
                MatchEvent::Started { selector, item } => (selector, item, true),
                MatchEvent::Stopped { selector, item } => (selector, item, false),
            };
            match selector {
                SelectorKey::Policy(_) => {
                    if let ItemId::Endpoint(id) = item {
                        self.dirty.endpoints.insert(id.clone());
                    }
                }
                SelectorKey::Set(uid) => self.adjust_members(uid, item, started),
            }
        }
        self.events = events;
        self.events.clear();
    }

    pub(crate) fn adjust_members(&mut self, uid: &Arc<str>, item: &ItemId, add: bool) {
        let Some(set_ids) = self.sets_by_selector.get(uid) else {
            return;
        };
        let Some(data) = self.items.get(item) else {
            return;
        };
        for set_id in set_ids {
            let Some(set) = self.ipsets.get_mut(set_id) else {
                continue;
            };
            for member in members_of(&set.spec, data) {
                if add {
                    *set.members.entry(member).or_insert(0) += 1;
                } else if let Some(count) = set.members.get_mut(&member) {
                    *count -= 1;
                    if *count == 0 {
                        set.members.remove(&member);
                    }
                }
                self.dirty
                    .members
                    .entry(set_id.clone())
                    .or_default()
                    .insert(member);
            }
        }
    }

    pub(crate) fn set_selectors_of(&self, item: &ItemId) -> Vec<Arc<str>> {
        self.index
            .selectors_matching(item)
            .filter_map(|s| match s {
                SelectorKey::Set(uid) => Some(uid.clone()),
                SelectorKey::Policy(_) => None,
            })
            .collect()
    }

    pub(crate) fn set_item(
        &mut self,
        item: ItemId,
        labels: &BTreeMap<String, String>,
        parents: Vec<ParentId>,
        data: ItemData,
    ) {
        for uid in self.set_selectors_of(&item) {
            self.adjust_members(&uid, &item, false);
        }
        self.items.insert(item.clone(), data);
        self.index
            .update_item(item.clone(), label_map(labels), parents, &mut self.events);
        // Set memberships are recomputed below from the final match list; only policy
        // match changes are taken from the events.
        self.events.retain(|e| {
            matches!(
                e,
                MatchEvent::Started {
                    selector: SelectorKey::Policy(_),
                    ..
                } | MatchEvent::Stopped {
                    selector: SelectorKey::Policy(_),
                    ..
                }
            )
        });
        self.drain_events();
        for uid in self.set_selectors_of(&item) {
            self.adjust_members(&uid, &item, true);
        }
    }

    pub(crate) fn remove_item(&mut self, item: &ItemId) {
        for uid in self.set_selectors_of(item) {
            self.adjust_members(&uid, item, false);
        }
        self.index.remove_item(item, &mut self.events);
        self.events.retain(|e| {
            matches!(
                e,
                MatchEvent::Stopped {
                    selector: SelectorKey::Policy(_),
                    ..
                }
            )
        });
        self.drain_events();
        self.items.remove(item);
    }

    pub(crate) fn set_endpoint(
        &mut self,
        info: EndpointInfo,
        labels: BTreeMap<String, String>,
        parents: Vec<ParentId>,
    ) {
        let id = info.id.clone();
        let data = ItemData {
            addrs: info.addrs.clone(),
            ports: info.ports.clone(),
        };
        self.endpoints.insert(id.clone(), info);
        self.dirty.endpoints.insert(id.clone());
        self.set_item(ItemId::Endpoint(id), &labels, parents, data);
    }

    pub(crate) fn remove_endpoint(&mut self, id: &EndpointId) {
        if self.endpoints.remove(id).is_some() {
            self.dirty.endpoints.insert(id.clone());
        }
        self.remove_item(&ItemId::Endpoint(id.clone()));
    }

    pub(crate) fn add_set_refs(&mut self, specs: &[IpSetSpec]) {
        for spec in specs {
            let id = spec.id();
            if let Some(state) = self.ipsets.get_mut(&id) {
                state.refs += 1;
                continue;
            }
            let uid: Arc<str> = Arc::from(spec.selector.unique_id());
            self.ipsets.insert(
                id.clone(),
                IpSetState {
                    spec: spec.clone(),
                    refs: 1,
                    members: BTreeMap::new(),
                },
            );
            self.dirty.sets.insert(id.clone());
            let users = self.sets_by_selector.entry(uid.clone()).or_default();
            let first = users.is_empty();
            users.insert(id.clone());
            if first {
                // Registering the selector reports every current match, which fills the set.
                self.index.update_selector(
                    SelectorKey::Set(uid),
                    spec.selector.clone(),
                    &mut self.events,
                );
                self.drain_events();
            } else {
                let key = SelectorKey::Set(uid);
                let items: Vec<ItemId> = self.index.items_matching(&key).cloned().collect();
                let state = self.ipsets.get_mut(&id);
                if let Some(state) = state {
                    for item in &items {
                        if let Some(data) = self.items.get(item) {
                            for member in members_of(&state.spec, data) {
                                *state.members.entry(member).or_insert(0) += 1;
                            }
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn drop_set_refs(&mut self, specs: &[IpSetSpec]) {
        for spec in specs {
            let id = spec.id();
            let Some(state) = self.ipsets.get_mut(&id) else {
                continue;
            };
            state.refs -= 1;
            if state.refs > 0 {
                continue;
            }
            self.ipsets.remove(&id);
            self.dirty.sets.insert(id.clone());
            self.dirty.members.remove(&id);
            let uid: Arc<str> = Arc::from(spec.selector.unique_id());
            if let Some(users) = self.sets_by_selector.get_mut(&uid) {
                users.remove(&id);
                if users.is_empty() {
                    self.sets_by_selector.remove(&uid);
                    self.index
                        .remove_selector(&SelectorKey::Set(uid), &mut self.events);
                    self.drain_events();
                }
            }
        }
    }

    pub(crate) fn mark_policy_endpoints(&mut self, id: &PolicyId) {
        let key = SelectorKey::Policy(id.clone());
        for item in self.index.items_matching(&key) {
            if let ItemId::Endpoint(e) = item {
                self.dirty.endpoints.insert(e.clone());
            }
        }
    }

    pub(crate) fn set_policy(&mut self, policy: CompiledPolicy, sets: Vec<IpSetSpec>) {
        let id = policy.id.clone();
        let owner = Owner::Policy(id.clone());
        self.add_set_refs(&sets);
        if let Some(old) = self.owner_sets.insert(owner, sets) {
            self.drop_set_refs(&old);
        }
        let old = self.policies.get(&id).cloned();
        let selector_changed = old.as_ref().is_none_or(|o| o.selector != policy.selector);
        let placement_changed = old.as_ref().is_some_and(|o| {
            o.tier != policy.tier
                || o.order != policy.order
                || o.ingress_enabled != policy.ingress_enabled
                || o.egress_enabled != policy.egress_enabled
                || o.class != policy.class
                || o.apply_on_forward != policy.apply_on_forward
        });
        if let Some(old) = &old
            && old.tier != policy.tier
            && let Some(set) = self.policies_by_tier.get_mut(&old.tier)
        {
            set.remove(&id);
        }
        self.policies_by_tier
            .entry(policy.tier.clone())
            .or_default()
            .insert(id.clone());
        if placement_changed {
            self.mark_policy_endpoints(&id);
        }
        if selector_changed {
            self.index.update_selector(
                SelectorKey::Policy(id.clone()),
                policy.selector.clone(),
                &mut self.events,
            );
            self.drain_events();
        }
        if placement_changed {
            self.mark_policy_endpoints(&id);
        }
        self.policies.insert(id.clone(), Arc::new(policy));
        self.dirty.policies.insert(id);
    }

    pub(crate) fn remove_policy(&mut self, id: &PolicyId) {
        let Some(old) = self.policies.remove(id) else {
            return;
        };
        if let Some(set) = self.policies_by_tier.get_mut(&old.tier) {
            set.remove(id);
        }
        self.index
            .remove_selector(&SelectorKey::Policy(id.clone()), &mut self.events);
        self.drain_events();
        if let Some(old_sets) = self.owner_sets.remove(&Owner::Policy(id.clone())) {
            self.drop_set_refs(&old_sets);
        }
        self.dirty.policies.insert(id.clone());
    }

    pub(crate) fn tier_changed(&mut self, tier: &str) {
        let ids: Vec<PolicyId> = self
            .policies_by_tier
            .get(tier)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.mark_policy_endpoints(&id);
        }
    }

    /// The profile as it stands: a namespace's synthesized `kns.<ns>`, a user profile, or the
    /// built-in allow-all profile.
    pub(crate) fn effective_profile(&self, name: &str) -> Option<ProfileSpec> {
        if let Some(ns) = name.strip_prefix(KNS_PREFIX)
            && let Some(labels) = self.namespaces.get(ns)
        {
            let namespace = tortie_model::KubernetesNamespace::new(
                tortie_model::ObjectMeta {
                    labels: labels.clone(),
                    ..tortie_model::ObjectMeta::named(ns)
                },
                Default::default(),
            );
            return Some(namespace_profile(&namespace).1);
        }
        if let Some(spec) = self.user_profiles.get(name) {
            return Some(spec.clone());
        }
        (name == DEFAULT_ALLOW_PROFILE).then(|| ProfileSpec {
            ingress: vec![Rule::new(Action::Allow)],
            egress: vec![Rule::new(Action::Allow)],
            labels_to_apply: BTreeMap::new(),
        })
    }

    pub(crate) fn refresh_profile(&mut self, name: &str) {
        let owner = Owner::Profile(name.to_string());
        match self.effective_profile(name) {
            Some(spec) => {
                let mut sets = Vec::new();
                let compiled = compile_profile(name, &spec, &mut sets);
                self.add_set_refs(&sets);
                if let Some(old) = self.owner_sets.insert(owner, sets) {
                    self.drop_set_refs(&old);
                }
                let labels = label_map(&spec.labels_to_apply);
                self.index.update_parent(
                    ParentId::Profile(name.to_string()),
                    labels,
                    &mut self.events,
                );
                self.drain_events();
                self.profiles.insert(name.to_string(), Arc::new(compiled));
            }
            None => {
                if let Some(old) = self.owner_sets.remove(&owner) {
                    self.drop_set_refs(&old);
                }
                self.index
                    .remove_parent(&ParentId::Profile(name.to_string()), &mut self.events);
                self.drain_events();
                self.profiles.remove(name);
            }
        }
        self.dirty.profiles.insert(name.to_string());
    }
}

/// The members an item contributes to a set.
fn members_of(spec: &IpSetSpec, data: &ItemData) -> Vec<IpSetMember> {
    match &spec.named_port {
        None => data.addrs.iter().map(|a| IpSetMember::Net(*a)).collect(),
        Some((name, protocol)) => {
            let mut out = Vec::new();
            for port in &data.ports {
                if port.name != *name || protocol.is_some_and(|p| p != port.protocol) {
                    continue;
                }
                for addr in &data.addrs {
                    out.push(IpSetMember::Port {
                        addr: addr.addr(),
                        protocol: port.protocol,
                        port: port.port,
                    });
                }
            }
            out
        }
    }
}
