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
                self.workloads.remove(&id).is_some() || remote
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
                    self.workloads.insert(id, local.clone()) != Some(local) || moved
                } else {
                    let remote = (
                        w.spec.node.clone(),
                        w.spec.ip_networks.iter().map(|c| c.0).collect::<Vec<_>>(),
                    );
                    let was_local = self.workloads.remove(&id).is_some();
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
