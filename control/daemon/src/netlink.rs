//! The host's links, addresses, routes and neighbours through rtnetlink.
//!
//! rtnetlink is asynchronous and the daemon's loop is not: [`Netlink`] owns a private
//! single-threaded tokio runtime with one netlink connection, and each call runs to
//! completion on it (`block_on`), so the connection task makes progress exactly while a
//! request is in flight. Every call is one netlink dump or request, bounded by the kernel.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::autodetect::HostInterface;
use crate::error::ControlError;

mod kernel_routes;
pub use kernel_routes::{KernelRoute, ROUTE_PROTOCOL};

/// A MAC address.
pub type Mac = [u8; 6];

/// One link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Name.
    pub name: String,
    /// Index.
    pub index: u32,
    /// Administratively up.
    pub up: bool,
    /// Hardware address (zero when it has none).
    pub mac: Mac,
    /// MTU.
    pub mtu: u32,
}

/// The default route's gateway and interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway {
    /// Next hop.
    pub addr: IpAddr,
    /// Outgoing interface index.
    pub if_index: u32,
}

/// A netlink connection on a private runtime.
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

fn link_of(msg: &LinkMessage) -> Link {
    let mut link = Link {
        name: String::new(),
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        mac: [0; 6],
        mtu: 0,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => link.mac.copy_from_slice(a),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            _ => {}
        }
    }
    link
}

const ENODEV: i32 = 19;

impl Netlink {
    /// Opens a netlink socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, ControlError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ControlError::netlink("start netlink runtime", e))?;
        let handle = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()
                .map_err(|e| ControlError::netlink("open netlink socket", e))?;
            tokio::spawn(connection);
            Ok::<_, ControlError>(handle)
        })?;
        Ok(Netlink { runtime, handle })
    }

    /// Every link, in index order.
    pub fn links(&self) -> Result<Vec<Link>, ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            let mut out = Vec::new();
            let mut stream = handle.link().get().execute();
            while let Some(msg) = stream
                .try_next()
                .await
                .map_err(|e| ControlError::netlink("list links", e))?
            {
                out.push(link_of(&msg));
            }
            out.sort_by_key(|l| l.index);
            Ok(out)
        })
    }

    /// The link called `name`, if it exists.
    pub fn link(&self, name: &str) -> Result<Option<Link>, ControlError> {
        let handle = self.handle.clone();
        let name = name.to_string();
        self.runtime.block_on(async move {
            let mut stream = handle.link().get().match_name(name.clone()).execute();
            match stream.try_next().await {
                Ok(msg) => Ok(msg.as_ref().map(link_of)),
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -ENODEV => Ok(None),
                Err(e) => Err(ControlError::netlink(format!("look up link {name}"), e)),
            }
        })
    }

    /// Every address with its prefix length, per link index, in the kernel's order.
    pub fn addresses(&self) -> Result<Vec<(u32, IpNet)>, ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            let mut out = Vec::new();
            let mut stream = handle.address().get().execute();
            while let Some(msg) = stream
                .try_next()
                .await
                .map_err(|e| ControlError::netlink("list addresses", e))?
            {
                let mut local = None;
                let mut address = None;
                for attr in &msg.attributes {
                    match attr {
                        AddressAttribute::Local(ip) => local = Some(*ip),
                        AddressAttribute::Address(ip) => address = Some(*ip),
                        _ => {}
                    }
                }
                if let Some(ip) = local.or(address)
                    && let Ok(net) = IpNet::new(ip, msg.header.prefix_len)
                {
                    out.push((msg.header.index, net));
                }
            }
            Ok(out)
        })
    }

    /// Links with their addresses, as autodetection wants them.
    pub fn interfaces(&self) -> Result<Vec<HostInterface>, ControlError> {
        let addrs = self.addresses()?;
        Ok(self
            .links()?
            .into_iter()
            .map(|l| HostInterface {
                addrs: addrs
                    .iter()
                    .filter(|(i, _)| *i == l.index)
                    .map(|(_, a)| *a)
                    .collect(),
                name: l.name,
                index: l.index,
                up: l.up,
            })
            .collect())
    }

    /// The gateway of the main table's default route of a family, if there is one.
    pub fn default_gateway(&self, v6: bool) -> Result<Option<Gateway>, ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            let message = if v6 {
                RouteMessageBuilder::<Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<Ipv4Addr>::new().build()
            };
            let mut stream = handle.route().get(message).execute();
            while let Some(route) = stream
                .try_next()
                .await
                .map_err(|e| ControlError::netlink("list routes", e))?
            {
                if route.header.destination_prefix_length != 0 || route.header.table != 254 {
                    continue;
                }
                let mut gw = None;
                let mut oif = None;
                for attr in &route.attributes {
                    match attr {
                        RouteAttribute::Gateway(RouteAddress::Inet(a)) => gw = Some(IpAddr::V4(*a)),
                        RouteAttribute::Gateway(RouteAddress::Inet6(a)) => {
                            gw = Some(IpAddr::V6(*a))
                        }
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        _ => {}
                    }
                }
                if let (Some(addr), Some(if_index)) = (gw, oif) {
                    return Ok(Some(Gateway { addr, if_index }));
                }
            }
            Ok(None)
        })
    }

    /// The resolved neighbours of link `if_index` (entries that are reachable, stale, in
    /// delay or probe, or permanent), one dump of the neighbour table.
    pub fn neighbours(&self, if_index: u32) -> Result<HashMap<IpAddr, Mac>, ControlError> {
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            let mut out = HashMap::new();
            let mut stream = handle.neighbours().get().execute();
            while let Some(msg) = stream
                .try_next()
                .await
                .map_err(|e| ControlError::netlink("list neighbours", e))?
            {
                if msg.header.ifindex != if_index {
                    continue;
                }
                if !matches!(
                    msg.header.state,
                    NeighbourState::Reachable
                        | NeighbourState::Stale
                        | NeighbourState::Delay
                        | NeighbourState::Probe
                        | NeighbourState::Permanent
                        | NeighbourState::Noarp
                ) {
                    continue;
                }
                let mut dst = None;
                let mut lladdr = None;
                for attr in &msg.attributes {
                    match attr {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                            dst = Some(IpAddr::V4(*a))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                            dst = Some(IpAddr::V6(*a))
                        }
                        NeighbourAttribute::LinkLayerAddress(m) if m.len() == 6 => {
                            let mut mac = [0; 6];
                            mac.copy_from_slice(m);
                            lladdr = Some(mac);
                        }
                        _ => {}
                    }
                }
                if let (Some(ip), Some(mac)) = (dst, lladdr) {
                    out.insert(ip, mac);
                }
            }
            Ok(out)
        })
    }

    /// Creates the veth pair `name` <-> `peer`, the peer with MAC `peer_mac`, both up.
    /// An existing pair of that name is replaced.
    pub fn create_veth(&self, name: &str, peer: &str, peer_mac: Mac) -> Result<(), ControlError> {
        self.delete_link(name)?;
        self.delete_link(peer)?;
        let handle = self.handle.clone();
        let (n, p) = (name.to_string(), peer.to_string());
        self.runtime.block_on(async move {
            handle
                .link()
                .add(LinkMessageBuilder::<LinkVeth>::new(&n, &p).build())
                .execute()
                .await
                .map_err(|e| ControlError::netlink(format!("create veth {n} <-> {p}"), e))
        })?;
        let peer_link = self.link(peer)?.ok_or_else(|| {
            ControlError::netlink(format!("find {peer}"), "vanished after creation")
        })?;
        let own = self.link(name)?.ok_or_else(|| {
            ControlError::netlink(format!("find {name}"), "vanished after creation")
        })?;
        let handle = self.handle.clone();
        self.runtime.block_on(async move {
            handle
                .link()
                .set(
                    LinkUnspec::new_with_index(peer_link.index)
                        .address(peer_mac.to_vec())
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| ControlError::netlink("set host veth peer MAC and up", e))?;
            handle
                .link()
                .set(LinkUnspec::new_with_index(own.index).up().build())
                .execute()
                .await
                .map_err(|e| ControlError::netlink("set host veth up", e))
        })
    }

    /// Deletes the link called `name`; absent is fine. Returns whether it existed.
    pub fn delete_link(&self, name: &str) -> Result<bool, ControlError> {
        let Some(link) = self.link(name)? else {
            return Ok(false);
        };
        let handle = self.handle.clone();
        let name = name.to_string();
        self.runtime.block_on(async move {
            match handle.link().del(link.index).execute().await {
                Ok(()) => Ok(true),
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -ENODEV => Ok(false),
                Err(e) => Err(ControlError::netlink(format!("delete link {name}"), e)),
            }
        })
    }
}

/// Makes the kernel resolve `ip`'s MAC: one UDP datagram to the discard port (9), which
/// needs the neighbour entry before it can leave. Errors (no route, unreachable) are
/// ignored: resolution is retried later.
pub fn trigger_resolution(ip: IpAddr) {
    let bind = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    if let Ok(socket) = std::net::UdpSocket::bind(bind)
        && socket.connect((ip, 9)).is_ok()
    {
        let _ = socket.send(b"tortie-control neighbour probe");
    }
}

/// Writes a sysctl under `/proc/sys` of this network namespace.
pub fn write_sysctl(path: &str, value: &str) -> Result<(), ControlError> {
    let full = format!("/proc/sys/{path}");
    std::fs::write(&full, value).map_err(|source| ControlError::Io { path: full, source })
}

/// Reads a sysctl under `/proc/sys`.
pub fn read_sysctl(path: &str) -> Result<String, ControlError> {
    let full = format!("/proc/sys/{path}");
    std::fs::read_to_string(&full)
        .map(|s| s.trim().to_string())
        .map_err(|source| ControlError::Io { path: full, source })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(text: &str) -> Option<Mac> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}
