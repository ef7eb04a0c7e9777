//! Keeping derived state consistent: index events, IP set members and references, policy
//! placement, profiles.

use crate::graph::{
    CalcGraph, DEFAULT_ALLOW_PROFILE, EndpointInfo, IpSetState, ItemData, Owner, label_map,
};
use crate::ids::{EndpointId, IpSetId, ItemId, ItemKey, ParentId, PolicyId, SelectorKey};
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
        let mut run = Vec::new();
        let mut rest = events.as_slice();
        while let Some((first, after)) = rest.split_first() {
            let (selector, item, started) = event_parts(first);
            let uid = match selector {
                SelectorKey::Policy(_) => {
                    if let Some(ItemKey::Endpoint(id)) = self.items.key(item) {
                        self.dirty.endpoints.insert(id.clone());
                    }
                    rest = after;
                    continue;
                }
                SelectorKey::Set(uid) => uid,
            };
            // One index call reports one selector's matches (a set's selector registered,
            // all its items at once) or one item's: the sets over a selector are looked up
            // once per run of its events, and a set is filled in one pass.
            run.clear();
            run.push(item);
            let mut taken = 1;
            for next in after {
                match event_parts(next) {
                    (SelectorKey::Set(other), item, same)
                        if same == started && Arc::ptr_eq(other, uid) =>
                    {
                        run.push(item);
                        taken += 1;
                    }
                    _ => break,
                }
            }
            let sets = self.sets_over(uid);
            self.adjust_members(&sets, &run, started);
            rest = &rest[taken..];
        }
        self.events = events;
        self.events.clear();
    }

    /// The IP sets built over the selector with unique id `uid`.
    fn sets_over(&self, uid: &str) -> Vec<IpSetId> {
        self.sets_by_selector
            .get(uid)
            .map(|sets| sets.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds (or removes) the members `items` contribute to each of `sets`.
    pub(crate) fn adjust_members(&mut self, sets: &[IpSetId], items: &[ItemId], add: bool) {
        for set_id in sets {
            let Some(set) = self.ipsets.get_mut(set_id) else {
                continue;
            };
            // A set created or removed since the last flush is compared whole by the flush:
            // its members need no dirty marks.
            let track = !self.dirty.sets.contains(set_id);
            let dirty = &mut self.dirty.members;
            if add && set.members.is_empty() {
                // Filling an empty set (one just created): count the members in one sorted
                // pass and build the map from them, instead of one search per member.
                let mut all = Vec::new();
                for item in items {
                    if let Some(data) = self.items.data(*item) {
                        for_each_member(&set.spec, data, |member| all.push(member));
                    }
                }
                all.sort_unstable();
                let mut counted: Vec<(IpSetMember, u32)> = Vec::with_capacity(all.len());
                for member in all {
                    match counted.last_mut() {
                        Some((last, count)) if *last == member => *count += 1,
                        _ => counted.push((member, 1)),
                    }
                }
                if track && !counted.is_empty() {
                    dirty
                        .entry(set_id.clone())
                        .or_default()
                        .extend(counted.iter().map(|(member, _)| *member));
                }
                set.members = counted.into_iter().collect();
                continue;
            }
            for item in items {
                let Some(data) = self.items.data(*item) else {
                    continue;
                };
                for_each_member(&set.spec, data, |member| {
                    if add {
                        *set.members.entry(member).or_insert(0) += 1;
                    } else if let Some(count) = set.members.get_mut(&member) {
                        *count -= 1;
                        if *count == 0 {
                            set.members.remove(&member);
                        }
                    }
                    if track {
                        dirty.entry(set_id.clone()).or_default().insert(member);
                    }
                });
            }
        }
    }

    /// The unique ids of the IP-set selectors matching `item`.
    pub(crate) fn set_selectors_of(&self, item: ItemId) -> Vec<Arc<str>> {
        self.index
            .selectors_matching(&item)
            .filter_map(|s| match s {
                SelectorKey::Set(uid) => Some(uid.clone()),
                SelectorKey::Policy(_) => None,
            })
            .collect()
    }

    /// Adds (or removes) `item`'s members to (or from) every set whose selector matches it.
    fn adjust_all_members(&mut self, item: ItemId, add: bool) {
        for uid in self.set_selectors_of(item) {
            let sets = self.sets_over(&uid);
            self.adjust_members(&sets, &[item], add);
        }
    }

    pub(crate) fn set_item(
        &mut self,
        key: &ItemKey,
        labels: &BTreeMap<String, String>,
        parents: Vec<ParentId>,
        data: ItemData,
    ) {
        let item = self.items.intern(key);
        self.adjust_all_members(item, false);
        self.items.set_data(item, data);
        self.index
            .update_item(item, label_map(labels), parents, &mut self.events);
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
        self.adjust_all_members(item, true);
    }

    pub(crate) fn remove_item(&mut self, key: &ItemKey) {
        let Some(item) = self.items.id(key) else {
            return;
        };
        self.adjust_all_members(item, false);
        self.index.remove_item(&item, &mut self.events);
        self.events.retain(|e| {
            matches!(
                e,
                MatchEvent::Stopped {
                    selector: SelectorKey::Policy(_),
                    ..
                }
            )
        });
        // The events name the item by number: apply them before the number is freed.
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
        self.set_item(&ItemKey::Endpoint(id), &labels, parents, data);
    }

    pub(crate) fn remove_endpoint(&mut self, id: &EndpointId) {
        if self.endpoints.remove(id).is_some() {
            self.dirty.endpoints.insert(id.clone());
        }
        self.remove_item(&ItemKey::Endpoint(id.clone()));
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
            } else if let Some(state) = self.ipsets.get_mut(&id) {
                // Another set over the same selector: its matches are known already.
                for item in self.index.items_matching(&SelectorKey::Set(uid)) {
                    if let Some(data) = self.items.data(*item) {
                        for_each_member(&state.spec, data, |member| {
                            *state.members.entry(member).or_insert(0) += 1;
                        });
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
            if let Some(ItemKey::Endpoint(e)) = self.items.key(*item) {
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

/// A match event's selector, item and direction (`true`: started).
fn event_parts(event: &MatchEvent<SelectorKey, ItemId>) -> (&SelectorKey, ItemId, bool) {
    match event {
        MatchEvent::Started { selector, item } => (selector, *item, true),
        MatchEvent::Stopped { selector, item } => (selector, *item, false),
    }
}

/// Calls `f` with each member an item contributes to a set.
fn for_each_member(spec: &IpSetSpec, data: &ItemData, mut f: impl FnMut(IpSetMember)) {
    match &spec.named_port {
        None => data.addrs.iter().for_each(|a| f(IpSetMember::Net(*a))),
        Some((name, protocol)) => {
            for port in &data.ports {
                if port.name != *name || protocol.is_some_and(|p| p != port.protocol) {
                    continue;
                }
                for addr in &data.addrs {
                    f(IpSetMember::Port {
                        addr: addr.addr(),
                        protocol: port.protocol,
                        port: port.port,
                    });
                }
            }
        }
    }
}
