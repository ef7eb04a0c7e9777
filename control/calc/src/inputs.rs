//! Feeding the graph: how each resource kind becomes graph state.

use crate::graph::{
    CalcGraph, DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND, EndpointInfo, Failsafe,
    ItemData, failsafes, host_net, label_map,
};
use crate::ids::{EndpointId, ItemKey, ParentId, PolicyId};
use crate::k8s::{KNS_PREFIX, convert_network_policy, namespace_profile};
use crate::plan::NamedPort;
use crate::policy::{TierInfo, compile_global_policy, compile_network_policy};
use crate::rules::NAMESPACE_LABEL;
use ipnet::IpNet;
use std::sync::Arc;
use tortie_model::types::{ProtoPort, TierAction};
use tortie_model::{Kind, Resource, ResourceKey};

impl CalcGraph {
    /// Adds or replaces a resource. Kinds that do not affect policy are ignored.
    pub fn upsert(&mut self, resource: &Resource) {
        match resource {
            Resource::NetworkPolicy(p) => {
                let ns = resource.effective_namespace();
                let mut sets = Vec::new();
                let compiled = compile_network_policy(ns, &p.metadata.name, &p.spec, &mut sets);
                self.set_policy(compiled, sets);
            }
            Resource::KubernetesNetworkPolicy(knp) => {
                let converted = convert_network_policy(knp);
                let mut sets = Vec::new();
                let compiled = compile_network_policy(
                    &converted.metadata.namespace,
                    &converted.metadata.name,
                    &converted.spec,
                    &mut sets,
                );
                self.set_policy(compiled, sets);
            }
            Resource::GlobalNetworkPolicy(p) => {
                let mut sets = Vec::new();
                let compiled = compile_global_policy(&p.metadata.name, &p.spec, &mut sets);
                self.set_policy(compiled, sets);
            }
            Resource::Tier(t) => {
                let info = TierInfo {
                    order: t.spec.order,
                    default_action: t.spec.default_action.unwrap_or(TierAction::Deny),
                };
                self.tiers.insert(t.metadata.name.clone(), info);
                self.tier_changed(&t.metadata.name);
            }
            Resource::Profile(p) => {
                self.user_profiles
                    .insert(p.metadata.name.clone(), p.spec.clone());
                self.refresh_profile(&p.metadata.name);
            }
            Resource::KubernetesNamespace(ns) => {
                let name = ns.metadata.name.clone();
                self.namespaces
                    .insert(name.clone(), ns.metadata.labels.clone());
                let (profile, spec) = namespace_profile(ns);
                self.index.update_parent(
                    ParentId::Namespace(name),
                    label_map(&spec.labels_to_apply),
                    &mut self.events,
                );
                self.drain_events();
                self.refresh_profile(&profile);
            }
            Resource::WorkloadEndpoint(w) => {
                let ns = resource.effective_namespace().to_string();
                let mut labels = w.metadata.labels.clone();
                labels
                    .entry(NAMESPACE_LABEL.to_string())
                    .or_insert_with(|| ns.clone());
                if !w.spec.orchestrator.is_empty() {
                    labels
                        .entry("projectcalico.org/orchestrator".to_string())
                        .or_insert_with(|| w.spec.orchestrator.clone());
                }
                let mut parents: Vec<ParentId> = w
                    .spec
                    .profiles
                    .iter()
                    .cloned()
                    .map(ParentId::Profile)
                    .collect();
                parents.push(ParentId::Namespace(ns.clone()));
                if !w.spec.service_account_name.is_empty() {
                    let sa = w.spec.service_account_name.clone();
                    labels
                        .entry("projectcalico.org/serviceaccount".to_string())
                        .or_insert_with(|| sa.clone());
                    self.ensure_service_account(&ns, &sa);
                    parents.push(ParentId::ServiceAccount(ns.clone(), sa));
                }
                let id = EndpointId::Workload {
                    namespace: ns,
                    name: w.metadata.name.clone(),
                };
                let ports = w
                    .spec
                    .ports
                    .iter()
                    .map(|p| NamedPort {
                        name: Arc::from(p.name.as_str()),
                        protocol: p.protocol.number(),
                        port: p.port,
                    })
                    .collect();
                let info = EndpointInfo {
                    id,
                    workload: w.spec.workload.clone(),
                    pod: w.spec.pod.clone(),
                    addrs: w.spec.ip_networks.iter().map(|c| c.network()).collect(),
                    ports,
                    profiles: w.spec.profiles.clone(),
                    node: w.spec.node.clone(),
                    interface: w.spec.interface_name.clone(),
                };
                self.set_endpoint(info, labels, parents);
            }
            Resource::HostEndpoint(h) => {
                let info = EndpointInfo {
                    id: EndpointId::Host {
                        name: h.metadata.name.clone(),
                    },
                    workload: String::new(),
                    pod: String::new(),
                    addrs: h.spec.expected_ips.iter().map(|a| host_net(*a)).collect(),
                    ports: h
                        .spec
                        .ports
                        .iter()
                        .map(|p| NamedPort {
                            name: Arc::from(p.name.as_str()),
                            protocol: p.protocol.number(),
                            port: p.port,
                        })
                        .collect(),
                    profiles: h.spec.profiles.clone(),
                    node: h.spec.node.clone(),
                    interface: h.spec.interface_name.clone(),
                };
                let parents = h
                    .spec
                    .profiles
                    .iter()
                    .cloned()
                    .map(ParentId::Profile)
                    .collect();
                self.set_endpoint(info, h.metadata.labels.clone(), parents);
            }
            Resource::NetworkSet(s) => {
                let ns = resource.effective_namespace().to_string();
                let mut labels = s.metadata.labels.clone();
                labels.insert(NAMESPACE_LABEL.to_string(), ns.clone());
                let item = ItemKey::NetworkSet {
                    namespace: ns.clone(),
                    name: s.metadata.name.clone(),
                };
                let data = ItemData {
                    addrs: s.spec.nets.iter().map(|c| c.network()).collect(),
                    ports: Vec::new(),
                };
                self.set_item(&item, &labels, vec![ParentId::Namespace(ns)], data);
            }
            Resource::GlobalNetworkSet(s) => {
                let item = ItemKey::GlobalNetworkSet {
                    name: s.metadata.name.clone(),
                };
                let data = ItemData {
                    addrs: s.spec.nets.iter().map(|c| c.network()).collect(),
                    ports: Vec::new(),
                };
                self.set_item(&item, &s.metadata.labels, Vec::new(), data);
            }
            Resource::FelixConfiguration(f) => {
                self.endpoint_to_host.insert(
                    f.metadata.name.clone(),
                    f.spec.default_endpoint_to_host_action,
                );
                if f.metadata.name != "default" {
                    return;
                }
                self.failsafe_inbound = match &f.spec.failsafe_inbound_host_ports {
                    Some(list) => convert_failsafes(list),
                    None => failsafes(&DEFAULT_FAILSAFE_INBOUND),
                };
                self.failsafe_outbound = match &f.spec.failsafe_outbound_host_ports {
                    Some(list) => convert_failsafes(list),
                    None => failsafes(&DEFAULT_FAILSAFE_OUTBOUND),
                };
            }
            _ => {}
        }
    }

    /// Removes a resource by key. Unknown keys and kinds that do not affect policy are ignored.
    pub fn delete(&mut self, key: &ResourceKey) {
        match key.kind {
            Kind::NetworkPolicy => self.remove_policy(&PolicyId::Namespaced {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            }),
            Kind::KubernetesNetworkPolicy => self.remove_policy(&PolicyId::Namespaced {
                namespace: key.namespace.clone(),
                name: format!("{}{}", crate::k8s::KNP_PREFIX, key.name),
            }),
            Kind::GlobalNetworkPolicy => self.remove_policy(&PolicyId::Global {
                name: key.name.clone(),
            }),
            Kind::Tier => {
                self.tiers.remove(&key.name);
                self.tier_changed(&key.name);
            }
            Kind::Profile => {
                self.user_profiles.remove(&key.name);
                self.refresh_profile(&key.name);
            }
            Kind::KubernetesNamespace => {
                self.namespaces.remove(&key.name);
                self.index
                    .remove_parent(&ParentId::Namespace(key.name.clone()), &mut self.events);
                self.drain_events();
                self.refresh_profile(&format!("{KNS_PREFIX}{}", key.name));
            }
            Kind::WorkloadEndpoint => self.remove_endpoint(&EndpointId::Workload {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            }),
            Kind::HostEndpoint => self.remove_endpoint(&EndpointId::Host {
                name: key.name.clone(),
            }),
            Kind::NetworkSet => self.remove_item(&ItemKey::NetworkSet {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            }),
            Kind::GlobalNetworkSet => self.remove_item(&ItemKey::GlobalNetworkSet {
                name: key.name.clone(),
            }),
            Kind::FelixConfiguration => {
                self.endpoint_to_host.remove(&key.name);
                if key.name == "default" {
                    self.failsafe_inbound = failsafes(&DEFAULT_FAILSAFE_INBOUND);
                    self.failsafe_outbound = failsafes(&DEFAULT_FAILSAFE_OUTBOUND);
                }
            }
            _ => {}
        }
    }
}

fn convert_failsafes(list: &[ProtoPort]) -> Vec<Failsafe> {
    list.iter()
        .map(|p| Failsafe {
            protocol: p.protocol.number(),
            port: p.port,
            net: p.net.parse::<IpNet>().ok().map(|n| n.trunc()),
        })
        .collect()
}
