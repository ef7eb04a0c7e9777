//! Kernel routes and neighbour entries the node programs for host-to-workload traffic: host
//! routes through the host veth pair's kernel end, a permanent neighbour entry for their
//! gateway, and a dump of the host routes in the main table to check them against.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::neighbour::NeighbourState;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};

use super::{Mac, Netlink};
use crate::error::ControlError;

/// The routing protocol number tortie-control marks its kernel routes with (shown by
/// `ip route` as `proto 252`; numbers above 245 are unassigned in `rtnetlink.h`), so they can
/// be told apart from the CNI plugin's and the administrator's.
pub const ROUTE_PROTOCOL: u8 = 252;
/// The kernel's main routing table.
const MAIN_TABLE: u32 = 254;
/// `ESRCH`: no such route.
const ESRCH: i32 = 3;

/// One host route in the main table: destination and outgoing interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination (a /32 or /128).
    pub dst: IpNet,
    /// Outgoing interface index (0 when the route names none).
    pub oif: u32,
    /// Whether tortie-control installed it (its protocol is [`ROUTE_PROTOCOL`]).
    pub ours: bool,
}

fn message(dst: IpNet, index: u32, gateway: Option<IpAddr>, src: Option<IpAddr>) -> RouteMessage {
    match dst {
        IpNet::V4(net) => {
            let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net.addr(), net.prefix_len())
                .output_interface(index)
                .table_id(MAIN_TABLE);
            b = match gateway {
                Some(IpAddr::V4(gw)) => b
                    .gateway(gw)
                    .onlink()
                    .protocol(RouteProtocol::Other(ROUTE_PROTOCOL)),
                _ => b.scope(RouteScope::Link),
            };
            if let Some(IpAddr::V4(s)) = src {
                b = b.pref_source(s);
            }
            b.build()
        }
        IpNet::V6(net) => {
            let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(net.addr(), net.prefix_len())
                .output_interface(index)
                .table_id(MAIN_TABLE);
            if let Some(IpAddr::V6(gw)) = gateway {
                b = b
                    .gateway(gw)
                    .onlink()
                    .protocol(RouteProtocol::Other(ROUTE_PROTOCOL));
            }
            if let Some(IpAddr::V6(s)) = src {
                b = b.pref_source(s);
            }
            b.build()
        }
    }
}

impl Netlink {
    /// Adds `dst via gateway dev index onlink [src src]` to the main table, replacing any
    /// route to the same destination with the same metric (the CNI plugin's `dst dev caliX`).
    pub fn replace_route_via(
        &self,
        dst: IpNet,
        gateway: IpAddr,
        index: u32,
        src: Option<IpAddr>,
    ) -> Result<(), ControlError> {
        let handle = self.handle.clone();
        let msg = message(dst, index, Some(gateway), src);
        self.runtime.block_on(async move {
            handle
                .route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|e| ControlError::netlink(format!("replace route {dst} via {gateway}"), e))
        })
    }

    /// Adds (or replaces) the on-link route `dst dev index scope link`, as the CNI plugin
    /// installs it for a workload.
    pub fn replace_link_route(&self, dst: IpNet, index: u32) -> Result<(), ControlError> {
        let handle = self.handle.clone();
        let msg = message(dst, index, None, None);
        self.runtime.block_on(async move {
            handle
                .route()
                .add(msg)
                .replace()
                .execute()
                .await
                .map_err(|e| ControlError::netlink(format!("replace route {dst} dev {index}"), e))
        })
    }

    /// Deletes the main table's route to `dst` out of `index`; absent is fine. Returns
    /// whether one was deleted.
    pub fn delete_route(&self, dst: IpNet, index: u32) -> Result<bool, ControlError> {
        let handle = self.handle.clone();
        let msg = message(dst, index, None, None);
        self.runtime.block_on(async move {
            match handle.route().del(msg).execute().await {
                Ok(()) => Ok(true),
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -ESRCH => Ok(false),
                Err(e) => Err(ControlError::netlink(format!("delete route {dst}"), e)),
            }
        })
    }

    /// The main table's host routes (/32 and /128) of one family, one dump.
    pub fn host_routes(&self, v6: bool) -> Result<Vec<KernelRoute>, ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            let filter = if v6 {
                RouteMessageBuilder::<Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<Ipv4Addr>::new().build()
            };
            let full = if v6 { 128 } else { 32 };
            let mut out = Vec::new();
            let mut stream = handle.route().get(filter).execute();
            while let Some(route) = stream
                .try_next()
                .await
                .map_err(|e| ControlError::netlink("list routes", e))?
            {
                if route.header.destination_prefix_length != full
                    || u32::from(route.header.table) != MAIN_TABLE
                        && !route
                            .attributes
                            .iter()
                            .any(|a| matches!(a, RouteAttribute::Table(MAIN_TABLE)))
                {
                    continue;
                }
                let mut dst = None;
                let mut oif = 0;
                for attr in &route.attributes {
                    match attr {
                        RouteAttribute::Destination(RouteAddress::Inet(a)) => {
                            dst = Some(IpAddr::V4(*a))
                        }
                        RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                            dst = Some(IpAddr::V6(*a))
                        }
                        RouteAttribute::Oif(i) => oif = *i,
                        _ => {}
                    }
                }
                if let Some(ip) = dst {
                    out.push(KernelRoute {
                        dst: IpNet::from(ip),
                        oif,
                        ours: route.header.protocol == RouteProtocol::Other(ROUTE_PROTOCOL),
                    });
                }
            }
            Ok(out)
        })
    }

    /// Sets a permanent neighbour entry `ip lladdr mac` on link `index` (replacing one).
    pub fn set_permanent_neighbour(
        &self,
        index: u32,
        ip: IpAddr,
        mac: Mac,
    ) -> Result<(), ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            handle
                .neighbours()
                .add(index, ip)
                .link_layer_address(&mac)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(|e| ControlError::netlink(format!("set neighbour {ip} on {index}"), e))
        })
    }
}
