//! The calculation graph: an I/O-free state machine fed resource upserts and deletes.
//!
//! Each update changes the stored state, updates the selector index, adjusts IP set member
//! reference counts and marks what it touched dirty; nothing is emitted until
//! [`CalcGraph::flush`], which compares the current value of every dirty key with what it last
//! emitted. So a burst of updates to one key emits once (per-key coalescing), and the output
//! is a function of the current state only, however the updates were split or ordered.

use crate::ids::{EndpointId, IpSetId, ItemId, ItemKey, ParentId, PolicyId, SelectorKey};
use crate::items::ItemTable;
use crate::plan::{CalcEvent, EndpointPlan, IpSetMember, NamedPort};
use crate::policy::{CompiledPolicy, CompiledProfile, TierInfo, builtin_tier};
use crate::rules::IpSetSpec;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tortie_model::Resource;
use tortie_model::types::{EndpointToHostAction, ProfileSpec};
use tortie_selector::LabelMap;
use tortie_selector::index::{MatchEvent, SelectorIndex};

/// The profile kube-controllers gives host endpoints it creates: allow everything.
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

/// Calico's default `failsafeInboundHostPorts`.
pub const DEFAULT_FAILSAFE_INBOUND: [(u8, u16); 9] = [
    (6, 22),
    (17, 68),
    (6, 179),
    (6, 2379),
    (6, 2380),
    (6, 5473),
    (6, 6443),
    (6, 6666),
    (6, 6667),
];
/// Calico's default `failsafeOutboundHostPorts`.
pub const DEFAULT_FAILSAFE_OUTBOUND: [(u8, u16); 9] = [
    (17, 53),
    (17, 67),
    (6, 179),
    (6, 2379),
    (6, 2380),
    (6, 5473),
    (6, 6443),
    (6, 6666),
    (6, 6667),
];

/// A failsafe port: protocol, port, and optionally the peer network it is open to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failsafe {
    /// IP protocol number.
    pub protocol: u8,
    /// Port (the destination port inbound, the destination port outbound).
    pub port: u16,
    /// Peer network restriction.
    pub net: Option<IpNet>,
}

/// What the graph knows about an endpoint besides its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// Identity.
    pub id: EndpointId,
    /// `spec.workload` (workloads) for lookups by workload name.
    pub workload: String,
    /// `spec.pod`.
    pub pod: String,
    /// Addresses (`ipNetworks`, or a host endpoint's `expectedIPs`).
    pub addrs: Vec<IpNet>,
    /// Named ports.
    pub ports: Vec<NamedPort>,
    /// Profiles, in order.
    pub profiles: Vec<String>,
    /// The node the endpoint is on (`spec.node`).
    pub node: String,
    /// Its interface (`spec.interfaceName`; `*` for an all-interfaces host endpoint).
    pub interface: String,
}

#[derive(Debug, Default)]
pub(crate) struct ItemData {
    pub(crate) addrs: Vec<IpNet>,
    pub(crate) ports: Vec<NamedPort>,
}

/// Keys changed since the last flush.
#[derive(Default)]
pub(crate) struct Dirty {
    /// Sets created or removed.
    pub(crate) sets: BTreeSet<IpSetId>,
    /// Members whose reference count changed, per set.
    pub(crate) members: BTreeMap<IpSetId, BTreeSet<IpSetMember>>,
    pub(crate) policies: BTreeSet<PolicyId>,
    pub(crate) profiles: BTreeSet<String>,
    pub(crate) endpoints: BTreeSet<EndpointId>,
}

/// What the last flushes emitted: the dataplane's view, diffed against on each flush.
#[derive(Default)]
pub(crate) struct Emitted {
    pub(crate) sets: HashMap<IpSetId, BTreeSet<IpSetMember>>,
    pub(crate) policies: HashMap<PolicyId, Arc<CompiledPolicy>>,
    pub(crate) profiles: HashMap<String, Arc<CompiledProfile>>,
    pub(crate) endpoints: HashMap<EndpointId, Arc<EndpointPlan>>,
}

pub(crate) struct IpSetState {
    pub(crate) spec: IpSetSpec,
    pub(crate) refs: usize,
    pub(crate) members: BTreeMap<IpSetMember, u32>,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Owner {
    Policy(PolicyId),
    Profile(String),
}

/// The calculation graph. See the module documentation.
pub struct CalcGraph {
    pub(crate) index: SelectorIndex<SelectorKey, ItemId, ParentId>,
    pub(crate) items: ItemTable,
    pub(crate) endpoints: BTreeMap<EndpointId, EndpointInfo>,
    pub(crate) policies: BTreeMap<PolicyId, Arc<CompiledPolicy>>,
    pub(crate) policies_by_tier: HashMap<String, BTreeSet<PolicyId>>,
    pub(crate) profiles: BTreeMap<String, Arc<CompiledProfile>>,
    pub(crate) user_profiles: BTreeMap<String, ProfileSpec>,
    pub(crate) namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub(crate) service_accounts: BTreeSet<(String, String)>,
    pub(crate) tiers: BTreeMap<String, TierInfo>,
    pub(crate) ipsets: HashMap<IpSetId, IpSetState>,
    pub(crate) sets_by_selector: HashMap<Arc<str>, BTreeSet<IpSetId>>,
    pub(crate) owner_sets: HashMap<Owner, Vec<IpSetSpec>>,
    pub(crate) failsafe_inbound: Vec<Failsafe>,
    pub(crate) failsafe_outbound: Vec<Failsafe>,
    /// `defaultEndpointToHostAction` per FelixConfiguration name (`default`, `node.<name>`).
    pub(crate) endpoint_to_host: BTreeMap<String, Option<EndpointToHostAction>>,
    pub(crate) emitted: Emitted,
    pub(crate) dirty: Dirty,
    pub(crate) events: Vec<MatchEvent<SelectorKey, ItemId>>,
}

impl Default for CalcGraph {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn failsafes(list: &[(u8, u16)]) -> Vec<Failsafe> {
    list.iter()
        .map(|&(protocol, port)| Failsafe {
            protocol,
            port,
            net: None,
        })
        .collect()
}

pub(crate) fn label_map(labels: &BTreeMap<String, String>) -> LabelMap {
    let mut map = LabelMap::new();
    for (k, v) in labels {
        map.insert(k, v);
    }
    map
}

pub(crate) fn host_net(addr: std::net::IpAddr) -> IpNet {
    IpNet::from(addr)
}

impl CalcGraph {
    /// An empty graph (Calico's default failsafe ports, built-in tiers and profiles).
    pub fn new() -> Self {
        let mut graph = CalcGraph {
            index: SelectorIndex::new(),
            items: ItemTable::default(),
            endpoints: BTreeMap::new(),
            policies: BTreeMap::new(),
            policies_by_tier: HashMap::new(),
            profiles: BTreeMap::new(),
            user_profiles: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            service_accounts: BTreeSet::new(),
            tiers: BTreeMap::new(),
            ipsets: HashMap::new(),
            sets_by_selector: HashMap::new(),
            owner_sets: HashMap::new(),
            failsafe_inbound: failsafes(&DEFAULT_FAILSAFE_INBOUND),
            failsafe_outbound: failsafes(&DEFAULT_FAILSAFE_OUTBOUND),
            endpoint_to_host: BTreeMap::new(),
            emitted: Emitted::default(),
            dirty: Dirty::default(),
            events: Vec::new(),
        };
        graph.refresh_profile(DEFAULT_ALLOW_PROFILE);
        graph
    }

    /// A graph holding `resources` (later duplicates of a key replace earlier ones).
    pub fn from_resources(resources: &[Resource]) -> Self {
        let mut graph = CalcGraph::new();
        for resource in resources {
            graph.upsert(resource);
        }
        graph
    }

    /// Emits every change since the last flush, in dependency order (see [`CalcEvent`]).
    pub fn flush(&mut self) -> Vec<CalcEvent> {
        crate::flush::flush(self)
    }

    /// The endpoint, if known.
    pub fn endpoint(&self, id: &EndpointId) -> Option<&EndpointInfo> {
        self.endpoints.get(id)
    }

    /// Every endpoint, in id order.
    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointInfo> {
        self.endpoints.values()
    }

    /// The host endpoint that stands for `node`'s uplink when explaining forwarded traffic:
    /// among the node's host endpoints that name one interface (not `*`), the first by name.
    /// The calculation graph does not know which interface a node uses as its uplink (the
    /// node's own configuration decides); a node with one named host endpoint, the usual
    /// setup, is unambiguous.
    pub fn uplink_host_endpoint(&self, node: &str) -> Option<&EndpointInfo> {
        self.endpoints.values().find(|e| {
            matches!(e.id, EndpointId::Host { .. })
                && e.node == node
                && !e.interface.is_empty()
                && e.interface != "*"
        })
    }

    /// What happens to traffic from a workload on `node` to that node's host (Felix
    /// `defaultEndpointToHostAction`): the node's own FelixConfiguration `node.<node>`, else
    /// `default`, else Calico's default, Drop (as tortie-control resolves it).
    pub fn endpoint_to_host_action(&self, node: &str) -> EndpointToHostAction {
        self.endpoint_to_host
            .get(&format!("node.{node}"))
            .copied()
            .flatten()
            .or_else(|| self.endpoint_to_host.get("default").copied().flatten())
            .unwrap_or(EndpointToHostAction::Drop)
    }

    /// A policy, if known.
    pub fn policy(&self, id: &PolicyId) -> Option<&Arc<CompiledPolicy>> {
        self.policies.get(id)
    }

    /// A profile (user-defined, synthesized `kns.<ns>`, or `projectcalico-default-allow`).
    pub fn profile(&self, name: &str) -> Option<&Arc<CompiledProfile>> {
        self.profiles.get(name)
    }

    /// The tier's settings: the Tier resource, else Calico's built-in value for `default`,
    /// `kube-admin` and `kube-baseline`; `None` for a tier that does not exist.
    pub fn tier(&self, name: &str) -> Option<TierInfo> {
        self.tiers.get(name).copied().or_else(|| builtin_tier(name))
    }

    /// Whether IP set `id` currently holds `member`.
    pub fn ip_set_contains(&self, id: &IpSetId, member: &IpSetMember) -> bool {
        self.ipsets
            .get(id)
            .is_some_and(|s| s.members.contains_key(member))
    }

    /// Whether IP set `id` holds a net containing `addr`.
    pub fn ip_set_contains_addr(&self, id: &IpSetId, addr: std::net::IpAddr) -> bool {
        let Some(set) = self.ipsets.get(id) else {
            return false;
        };
        if set.members.contains_key(&IpSetMember::Net(host_net(addr))) {
            return true;
        }
        set.members.keys().any(|m| match m {
            IpSetMember::Net(net) => net.contains(&addr),
            IpSetMember::Port { .. } => false,
        })
    }

    /// The current members of IP set `id`, sorted.
    pub fn ip_set_members(&self, id: &IpSetId) -> Option<Vec<IpSetMember>> {
        self.ipsets
            .get(id)
            .map(|s| s.members.keys().copied().collect())
    }

    /// The ids of every IP set some rule references.
    pub fn ip_set_ids(&self) -> BTreeSet<IpSetId> {
        self.ipsets.keys().cloned().collect()
    }

    /// Endpoints a policy currently selects, in no particular order.
    pub fn endpoints_using_policy(&self, id: &PolicyId) -> Vec<EndpointId> {
        self.index
            .items_matching(&SelectorKey::Policy(id.clone()))
            .filter_map(|item| self.endpoint_of(*item).cloned())
            .collect()
    }

    /// The endpoint an index item stands for (`None` for network sets).
    pub(crate) fn endpoint_of(&self, item: ItemId) -> Option<&EndpointId> {
        match self.items.key(item) {
            Some(ItemKey::Endpoint(e)) => Some(e),
            _ => None,
        }
    }

    /// Endpoints that list a profile.
    pub fn endpoints_using_profile(&self, name: &str) -> Vec<EndpointId> {
        self.endpoints
            .values()
            .filter(|e| e.profiles.iter().any(|p| p == name))
            .map(|e| e.id.clone())
            .collect()
    }

    /// Endpoints whose programs reference IP set `id` (through a policy or a profile).
    pub fn endpoints_using_set(&self, id: &IpSetId) -> Vec<EndpointId> {
        let mut out = Vec::new();
        for (owner, specs) in &self.owner_sets {
            if !specs.iter().any(|s| s.id() == *id) {
                continue;
            }
            match owner {
                Owner::Policy(p) => out.extend(self.endpoints_using_policy(p)),
                Owner::Profile(name) => out.extend(self.endpoints_using_profile(name)),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Failsafe ports open inbound on host endpoints.
    pub fn failsafe_inbound(&self) -> &[Failsafe] {
        &self.failsafe_inbound
    }

    /// Failsafe ports open outbound on host endpoints.
    pub fn failsafe_outbound(&self) -> &[Failsafe] {
        &self.failsafe_outbound
    }

    // ---- internal updates ----
}
