//! Node registration: choose the node's addresses and write them to its `Node` resource
//! (`spec.bgp.ipv4Address` / `ipv6Address` as ADDR/LEN), keeping every other field.

use ipnet::IpNet;
use tortie_datastore::Datastore;
use tortie_model::types::{Cidr, NodeBgpSpec, NodeSpec};
use tortie_model::{Kind, ObjectMeta, Resource};
use tortie_store::{ResourceId, Store, StoreError};

use crate::autodetect::{AddressChoice, Detected, HostInterface, Method, choose, source_towards};
use crate::cluster::NodeAddrs;
use crate::error::ControlError;

/// Attempts at the read-modify-write of the Node before giving up.
const ATTEMPTS: usize = 10;

/// Resolves one family's choice against the host's interfaces.
pub fn resolve(
    choice: &AddressChoice,
    ifaces: &[HostInterface],
    v6: bool,
) -> Result<Option<Detected>, ControlError> {
    match choice {
        AddressChoice::None => Ok(None),
        AddressChoice::Fixed(net) => {
            let interface = ifaces
                .iter()
                .find(|i| i.addrs.iter().any(|a| a.addr() == net.addr()))
                .map(|i| i.name.clone())
                .unwrap_or_default();
            Ok(Some(Detected {
                addr: *net,
                interface,
            }))
        }
        AddressChoice::Autodetect(method) => {
            let source = match method {
                Method::CanReach(dest) => source_towards(dest, v6).ok(),
                _ => None,
            };
            choose(method, ifaces, v6, source)
                .map(Some)
                .map_err(|reason| ControlError::Autodetect {
                    method: method.describe(),
                    reason,
                })
        }
    }
}

/// Creates or updates the Node `name` with these addresses. Returns the addresses written.
pub fn register(ds: &dyn Datastore, name: &str, addrs: &NodeAddrs) -> Result<(), ControlError> {
    let store = Store::new(ds);
    let id = ResourceId::new(Kind::Node, None, name);
    let cidr = |n: Option<IpNet>| n.map(Cidr);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let result = match store.get(&id) {
            Ok(Resource::Node(mut node)) => {
                let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
                if bgp.ipv4_address.map(|c| c.0) == addrs.v4
                    && bgp.ipv6_address.map(|c| c.0) == addrs.v6
                {
                    return Ok(());
                }
                bgp.ipv4_address = cidr(addrs.v4);
                bgp.ipv6_address = cidr(addrs.v6);
                store.replace(Resource::Node(node)).map(|_| ())
            }
            Ok(_) => {
                return Err(ControlError::Config {
                    option: "--node",
                    reason: format!("the datastore's Node key for {name:?} holds another kind"),
                });
            }
            Err(StoreError::NotFound(_)) => {
                let spec = NodeSpec {
                    bgp: Some(NodeBgpSpec {
                        ipv4_address: cidr(addrs.v4),
                        ipv6_address: cidr(addrs.v6),
                        ..NodeBgpSpec::default()
                    }),
                    ..NodeSpec::default()
                };
                let meta = ObjectMeta {
                    name: name.to_string(),
                    ..ObjectMeta::default()
                };
                store
                    .create(Resource::Node(tortie_model::Node::new(meta, spec)))
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e @ (StoreError::Conflict { .. } | StoreError::AlreadyExists(_))) => {
                last = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(
        || ControlError::Config {
            option: "--node",
            reason: "registration did not converge".into(),
        },
        ControlError::from,
    ))
}
