//! What the daemon keeps from the datastore besides the policy graph: nodes, pools, block
//! affinities, this node's endpoints and the Felix settings it honours.
//!
//! [`Cluster::apply`] takes one key's new value (or its deletion) and updates both this state
//! and the [`CalcGraph`]; it reports whether anything the tables depend on changed. Keys are
//! Calico's etcd v3 layout: resources under `/calico/resources/v3/projectcalico.org/`, block
//! affinities under `/calico/ipam/v2/host/`. IPAM blocks and handles are ignored (routes
//! follow affinities, as Calico's per-block routes do).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use tortie_calc::{CalcGraph, EndpointId};
use tortie_datastore::keys::{self, IpamKey};
use tortie_model::types::{EncapMode, EndpointToHostAction};
use tortie_model::{Kind, Resource, ResourceKey};

use crate::netlink::{Mac, parse_mac};

/// A Node's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAddrs {
    /// `spec.bgp.ipv4Address` (address with subnet length).
    pub v4: Option<IpNet>,
    /// `spec.bgp.ipv6Address`.
    pub v6: Option<IpNet>,
}

/// An IP pool as routing and NAT need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// Its CIDR.
    pub cidr: IpNet,
    /// `ipipMode` (Never when unset).
    pub ipip: EncapMode,
    /// `natOutgoing`.
    pub nat_outgoing: bool,
}

/// A workload endpoint of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWorkload {
    /// Host-side interface (`spec.interfaceName`).
    pub interface: String,
    /// The workload's MAC (`spec.mac`), zero when unset or malformed.
    pub mac: Mac,
    /// `spec.ipNetworks`.
    pub addrs: Vec<IpNet>,
    /// `spec.ipNATs` as (external, internal).
    pub nats: Vec<(IpAddr, IpAddr)>,
}

/// A host endpoint of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHost {
    /// `spec.interfaceName` (`*` or empty when it names none).
    pub interface: String,
    /// `spec.expectedIPs`.
    pub addrs: Vec<IpNet>,
}

/// The datastore-derived state.
pub struct Cluster {
    node: String,
    /// Every Node's addresses, by name.
    pub nodes: BTreeMap<String, NodeAddrs>,
    /// Pools by name.
    pub pools: BTreeMap<String, PoolInfo>,
    /// Confirmed block affinities: (node, block).
    pub affinities: BTreeMap<(String, IpNet), ()>,
    /// This node's workload endpoints.
    pub workloads: BTreeMap<EndpointId, LocalWorkload>,
    /// This node's host endpoints.
    pub hosts: BTreeMap<EndpointId, LocalHost>,
    /// Other nodes' workload endpoints: (node, addresses), for borrowed addresses.
    pub remote_workloads: BTreeMap<EndpointId, (String, Vec<IpNet>)>,
    felix: BTreeMap<String, Option<EndpointToHostAction>>,
    /// The resources the BGP speaker's plan reads (Node, BGPConfiguration, BGPPeer, BGPFilter, IPPool),
    /// by key.
    bgp_resources: BTreeMap<String, Resource>,
    /// Set when a BGP input (one of those resources, or a block affinity) changed; the
    /// daemon clears it when it has re-planned.
    pub bgp_changed: bool,
    /// The graph the policy compiler reads.
    pub graph: CalcGraph,
    /// Key -> resource identity, to delete what a deleted key held.
    known: HashMap<String, ResourceKey>,
}

/// Which part of the state a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Touched {
    /// Policy inputs (the graph) changed.
    pub policy: bool,
    /// Routing, endpoint or settings inputs changed.
    pub tables: bool,
}

impl Touched {
    /// Both.
    pub fn merge(&mut self, other: Touched) {
        self.policy |= other.policy;
        self.tables |= other.tables;
    }
}

fn kind_of_plural(plural: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.plural() == plural)
}

fn ep_id(resource: &Resource) -> EndpointId {
    match resource {
        Resource::HostEndpoint(_) => EndpointId::Host {
            name: resource.name().to_string(),
        },
        _ => EndpointId::Workload {
            namespace: resource.effective_namespace().to_string(),
            name: resource.name().to_string(),
        },
    }
}

impl Cluster {
    /// Empty state for node `node`.
    pub fn new(node: &str) -> Cluster {
        Cluster {
            node: node.to_string(),
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            affinities: BTreeMap::new(),
            workloads: BTreeMap::new(),
            hosts: BTreeMap::new(),
            remote_workloads: BTreeMap::new(),
            felix: BTreeMap::new(),
            bgp_resources: BTreeMap::new(),
            bgp_changed: true,
            graph: CalcGraph::new(),
            known: HashMap::new(),
        }
    }

    /// The keys currently held (for a resync's deletions).
    pub fn keys(&self) -> Vec<String> {
        let mut out: Vec<String> = self.known.keys().cloned().collect();
        out.extend(
            self.affinities
                .keys()
                .filter_map(|(host, cidr)| keys::ipam_affinity_key(host, &cidr.to_string()).ok()),
        );
        out
    }

    /// The resources the BGP speaker's plan reads (Node, BGPConfiguration, BGPPeer, BGPFilter, IPPool).
    pub fn bgp_resources(&self) -> Vec<Resource> {
        self.bgp_resources.values().cloned().collect()
    }

    /// What this node's speaker advertises: its confirmed affine blocks, plus the addresses
    /// its workloads borrowed from other nodes' blocks (inside a pool, outside every block
    /// affine to this node) as host prefixes, as Calico advertises them without strict
    /// affinity.
    pub fn advertised_prefixes(&self) -> Vec<IpNet> {
        let own: Vec<IpNet> = self
            .affinities
            .keys()
            .filter(|(host, _)| *host == self.node)
            .map(|(_, block)| *block)
            .collect();
        let mut out = own.clone();
        for w in self.workloads.values() {
            for addr in &w.addrs {
                let host = IpNet::from(addr.addr());
                let pooled = self.pools.values().any(|p| p.cidr.contains(&host));
                if pooled && !own.iter().any(|b| b.contains(&host)) && !out.contains(&host) {
                    out.push(host);
                }
            }
        }
        out
    }

    /// Felix's `defaultEndpointToHostAction` (`node.<name>` over `default`; Drop when unset).
    pub fn endpoint_to_host(&self) -> EndpointToHostAction {
        let node_key = format!("node.{}", self.node);
        self.felix
            .get(&node_key)
            .copied()
            .flatten()
            .or_else(|| self.felix.get("default").copied().flatten())
            .unwrap_or(EndpointToHostAction::Drop)
    }

    /// Applies one key's new value (`Some`) or its deletion (`None`). Malformed values are
    /// logged and treated as absent.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Touched {
        if key.starts_with(keys::RESOURCES_PREFIX) {
            return self.apply_resource(key, value);
        }
        if key.starts_with(keys::IPAM_AFFINITY_PREFIX)
            && let Ok(IpamKey::Affinity { host, cidr }) = keys::parse_ipam_key(key)
            && let Ok(cidr) = cidr.parse::<IpNet>()
        {
            let confirmed = value
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .is_some_and(|v| v["state"] == "confirmed" && v["deleted"] != true);
            let k = (host, cidr);
            let changed = if confirmed {
                self.affinities.insert(k, ()).is_none()
            } else {
                self.affinities.remove(&k).is_some()
            };
            self.bgp_changed |= changed;
            return Touched {
                policy: false,
                tables: changed,
            };
        }
        Touched::default()
    }

    fn apply_resource(&mut self, key: &str, value: Option<&[u8]>) -> Touched {
        let Ok(parsed) = keys::parse_resource_key(key) else {
            return Touched::default();
        };
        let Some(kind) = kind_of_plural(&parsed.plural) else {
            return Touched::default();
        };
        let resource = value.and_then(|v| {
            let text = std::str::from_utf8(v).ok()?;
            match Resource::from_json(text) {
                Ok(r) if r.kind() == kind => Some(r),
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(key, %err, "ignoring a resource that does not parse");
                    None
                }
            }
        });
        // A deletion, or a value that no longer parses: forget what the key held.
        let bgp_kind = matches!(
            kind,
            Kind::Node | Kind::BgpConfiguration | Kind::BgpPeer | Kind::BgpFilter | Kind::IpPool
        );
        if bgp_kind {
            let changed = match &resource {
                Some(r) => self.bgp_resources.get(key) != Some(r),
                None => self.bgp_resources.contains_key(key),
            };
            if changed {
                self.bgp_changed = true;
                match &resource {
                    Some(r) => self.bgp_resources.insert(key.to_string(), r.clone()),
                    None => self.bgp_resources.remove(key),
                };
            }
        }
        let Some(resource) = resource else {
            let Some(old) = self.known.remove(key) else {
                return Touched::default();
            };
            self.graph.delete(&old);
            return self.forget(&old);
        };
        self.known.insert(key.to_string(), resource.key());
        self.graph.upsert(&resource);
        self.remember(&resource)
    }

    fn forget(&mut self, key: &ResourceKey) -> Touched {
        let tables = match key.kind {
            Kind::Node => self.nodes.remove(&key.name).is_some(),
            Kind::IpPool => self.pools.remove(&key.name).is_some(),
            Kind::WorkloadEndpoint => {
                let id = EndpointId::Workload {
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                };
                let remote = self.remote_workloads.remove(&id).is_some();
                let local = self.workloads.remove(&id).is_some();
                self.bgp_changed |= local;
                local || remote
            }
            Kind::HostEndpoint => self
                .hosts
                .remove(&EndpointId::Host {
                    name: key.name.clone(),
                })
                .is_some(),
            Kind::FelixConfiguration => self.felix.remove(&key.name).is_some(),
            _ => false,
        };
        Touched {
            policy: true,
            tables,
        }
    }

    fn remember(&mut self, resource: &Resource) -> Touched {
        let tables = match resource {
            Resource::Node(n) => {
                let bgp = n.spec.bgp.as_ref();
                let addrs = NodeAddrs {
                    v4: bgp.and_then(|b| b.ipv4_address.as_ref()).map(|c| c.0),
                    v6: bgp.and_then(|b| b.ipv6_address.as_ref()).map(|c| c.0),
                };
                self.nodes.insert(n.metadata.name.clone(), addrs.clone()) != Some(addrs)
            }
            Resource::IpPool(p) => {
                let info = PoolInfo {
                    cidr: p.spec.cidr.network(),
                    ipip: p.spec.ipip_mode.unwrap_or(EncapMode::Never),
                    nat_outgoing: p.spec.nat_outgoing,
                };
                self.pools.insert(p.metadata.name.clone(), info.clone()) != Some(info)
            }
            Resource::WorkloadEndpoint(w) => {
                let id = ep_id(resource);
                if w.spec.node == self.node {
                    let local = LocalWorkload {
                        interface: w.spec.interface_name.clone(),
                        mac: parse_mac(&w.spec.mac).unwrap_or([0; 6]),
                        addrs: w.spec.ip_networks.iter().map(|c| c.0).collect(),
                        nats: w
                            .spec
                            .ip_nats
                            .iter()
                            .map(|n| (n.external_ip, n.internal_ip))
                            .collect(),
                    };
                    let moved = self.remote_workloads.remove(&id).is_some();
                    let old = self.workloads.insert(id, local.clone());
                    self.bgp_changed |= old.as_ref().map(|o| &o.addrs) != Some(&local.addrs);
                    old != Some(local) || moved
                } else {
                    let remote = (
                        w.spec.node.clone(),
                        w.spec.ip_networks.iter().map(|c| c.0).collect::<Vec<_>>(),
                    );
                    let was_local = self.workloads.remove(&id).is_some();
                    self.bgp_changed |= was_local;
                    let changed =
                        self.remote_workloads.get(&id) != Some(&remote) && !w.spec.node.is_empty();
                    if w.spec.node.is_empty() {
                        self.remote_workloads.remove(&id);
                    } else {
                        self.remote_workloads.insert(id, remote);
                    }
                    was_local || changed
                }
            }
            Resource::HostEndpoint(h) => {
                let id = ep_id(resource);
                if h.spec.node == self.node {
                    let local = LocalHost {
                        interface: h.spec.interface_name.clone(),
                        addrs: h
                            .spec
                            .expected_ips
                            .iter()
                            .map(|a| IpNet::from(*a))
                            .collect(),
                    };
                    self.hosts.insert(id, local.clone()) != Some(local)
                } else {
                    self.hosts.remove(&id).is_some()
                }
            }
            Resource::FelixConfiguration(f) => {
                let action = f.spec.default_endpoint_to_host_action;
                self.felix.insert(f.metadata.name.clone(), action) != Some(action)
            }
            _ => false,
        };
        Touched {
            policy: true,
            tables,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(c: &mut Cluster, key: &str, json: &str) -> Touched {
        c.apply(key, Some(json.as_bytes()))
    }

    #[test]
    fn tracks_nodes_pools_affinities_and_local_endpoints() {
        let mut c = Cluster::new("n1");
        let t = put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/nodes/n2",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"n2"},"spec":{"bgp":{"ipv4Address":"198.18.1.12/24"}}}"#,
        );
        assert!(t.tables);
        assert_eq!(c.nodes["n2"].v4.unwrap().to_string(), "198.18.1.12/24");
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/ippools/p",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"198.19.0.0/20","ipipMode":"CrossSubnet","natOutgoing":true}}"#,
        );
        assert_eq!(c.pools["p"].ipip, EncapMode::CrossSubnet);
        let aff = "/calico/ipam/v2/host/n2/ipv4/block/198.19.0.64-26";
        assert!(put(&mut c, aff, r#"{"state":"pending"}"#) == Touched::default());
        assert!(put(&mut c, aff, r#"{"state":"confirmed"}"#).tables);
        assert_eq!(c.affinities.len(), 1);
        assert!(c.keys().contains(&aff.to_string()));
        assert!(c.apply(aff, None).tables);
        let wep = r#"{"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint","metadata":{"name":"n1-cni-x-eth0","namespace":"ns"},"spec":{"node":"n1","interfaceName":"tor0123456789a","mac":"02:00:00:00:00:01","ipNetworks":["198.19.0.4/32"],"profiles":["kns.ns"]}}"#;
        let key = "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/n1-cni-x-eth0";
        assert!(put(&mut c, key, wep).tables);
        let id = EndpointId::Workload {
            namespace: "ns".into(),
            name: "n1-cni-x-eth0".into(),
        };
        assert_eq!(c.workloads[&id].mac, [2, 0, 0, 0, 0, 1]);
        // The same value again changes nothing the tables depend on.
        assert!(!put(&mut c, key, wep).tables);
        // Moving the workload to another node removes it here.
        assert!(
            put(
                &mut c,
                key,
                &wep.replace("\"node\":\"n1\"", "\"node\":\"n2\"")
            )
            .tables
        );
        assert!(c.workloads.is_empty());
        assert!(c.apply(key, None).policy);
    }

    #[test]
    fn bgp_inputs_are_kept_and_flagged() {
        let mut c = Cluster::new("n1");
        c.bgp_changed = false;
        let node = "/calico/resources/v3/projectcalico.org/nodes/n1";
        let doc = r#"{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"n1"},"spec":{"bgp":{"ipv4Address":"198.18.1.11/24"}}}"#;
        put(&mut c, node, doc);
        assert!(std::mem::take(&mut c.bgp_changed));
        put(&mut c, node, doc);
        assert!(!c.bgp_changed, "the same value again is no change");
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/bgppeers/tor",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"BGPPeer","metadata":{"name":"tor"},"spec":{"peerIP":"198.18.1.1","asNumber":64513}}"#,
        );
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/ippools/p",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"198.19.0.0/20"}}"#,
        );
        assert!(std::mem::take(&mut c.bgp_changed));
        assert_eq!(c.bgp_resources().len(), 3);
        // Policy-only kinds leave BGP alone.
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/x",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"x"},"spec":{"selector":"all()"}}"#,
        );
        assert!(!c.bgp_changed);
        put(
            &mut c,
            "/calico/ipam/v2/host/n1/ipv4/block/198.19.0.0-26",
            r#"{"state":"confirmed"}"#,
        );
        put(
            &mut c,
            "/calico/ipam/v2/host/n2/ipv4/block/198.19.0.64-26",
            r#"{"state":"confirmed"}"#,
        );
        assert!(std::mem::take(&mut c.bgp_changed));
        // A local workload inside its own block adds nothing; one borrowed from n2's does.
        let wep = |name: &str, ip: &str| {
            format!(
                r#"{{"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint","metadata":{{"name":"{name}","namespace":"ns"}},"spec":{{"node":"n1","interfaceName":"tor0123456789a","ipNetworks":["{ip}"]}}}}"#
            )
        };
        let key = |name: &str| {
            format!("/calico/resources/v3/projectcalico.org/workloadendpoints/ns/{name}")
        };
        put(&mut c, &key("a"), &wep("a", "198.19.0.4/32"));
        put(&mut c, &key("b"), &wep("b", "198.19.0.70/32"));
        assert!(std::mem::take(&mut c.bgp_changed));
        let adv: Vec<String> = c
            .advertised_prefixes()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(adv, ["198.19.0.0/26", "198.19.0.70/32"]);
        c.apply(&key("b"), None);
        assert!(c.bgp_changed);
        assert_eq!(c.advertised_prefixes().len(), 1);
        c.apply("/calico/resources/v3/projectcalico.org/bgppeers/tor", None);
        assert_eq!(c.bgp_resources().len(), 2);
    }

    #[test]
    fn felix_endpoint_to_host_defaults_to_drop_and_node_overrides() {
        let mut c = Cluster::new("n1");
        assert_eq!(c.endpoint_to_host(), EndpointToHostAction::Drop);
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/felixconfigurations/default",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","metadata":{"name":"default"},"spec":{"defaultEndpointToHostAction":"Accept"}}"#,
        );
        assert_eq!(c.endpoint_to_host(), EndpointToHostAction::Accept);
        put(
            &mut c,
            "/calico/resources/v3/projectcalico.org/felixconfigurations/node.n1",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","metadata":{"name":"node.n1"},"spec":{"defaultEndpointToHostAction":"Return"}}"#,
        );
        assert_eq!(c.endpoint_to_host(), EndpointToHostAction::Return);
    }
}
