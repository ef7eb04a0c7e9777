//! Small netlink steps: find, create, change and remove links, addresses and routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteScope};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use super::NetlinkError;

/// The link called `name`, if it exists.
pub async fn link_by_name(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, NetlinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(rtnetlink::Error::NetlinkError(msg)) if msg.raw_code() == -libc_enodev() => Ok(None),
        Err(err) => Err(NetlinkError::new(format!("look up link {name}"), err)),
    }
}

const fn libc_enodev() -> i32 {
    19
}

/// The MAC address of a link, as `aa:bb:...`.
pub fn mac_of(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(bytes) => Some(
                bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Creates a veth pair: `host` here, `peer` created directly inside the namespace whose file
/// descriptor is `peer_netns_fd`, so the peer's name never clashes with a host interface.
pub async fn create_veth(
    handle: &Handle,
    host: &str,
    host_mac: [u8; 6],
    mtu: u32,
    peer: &str,
    peer_netns_fd: i32,
) -> Result<(), NetlinkError> {
    let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .mtu(mtu)
        .setns_by_fd(peer_netns_fd)
        .build();
    let message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .mtu(mtu)
        .address(host_mac.to_vec())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    handle
        .link()
        .add(message)
        .execute()
        .await
        .map_err(|err| NetlinkError::new(format!("create veth {host} <-> {peer}"), err))
}

/// Deletes the link called `name`; absent is fine. Returns whether it existed.
pub async fn delete_link(handle: &Handle, name: &str) -> Result<bool, NetlinkError> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(false);
    };
    handle
        .link()
        .del(link.header.index)
        .execute()
        .await
        .map_err(|err| NetlinkError::new(format!("delete link {name}"), err))?;
    Ok(true)
}

/// Sets a link up.
pub async fn set_up(handle: &Handle, index: u32, what: &str) -> Result<(), NetlinkError> {
    let message = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(message)
        .execute()
        .await
        .map_err(|err| NetlinkError::new(format!("set {what} up"), err))
}

/// Adds an address with a host-length prefix.
pub async fn add_host_address(handle: &Handle, index: u32, ip: IpAddr) -> Result<(), NetlinkError> {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    handle
        .address()
        .add(index, ip, prefix)
        .execute()
        .await
        .map_err(|err| NetlinkError::new(format!("add address {ip}/{prefix}"), err))
}

/// Adds a route to `dst` out of `index`, through `gateway` when given (scope link otherwise).
pub async fn add_route(
    handle: &Handle,
    index: u32,
    dst: IpNet,
    gateway: Option<IpAddr>,
) -> Result<(), NetlinkError> {
    let message = match (dst, gateway) {
        (IpNet::V4(net), gw) => {
            let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net.addr(), net.prefix_len())
                .output_interface(index);
            builder = match gw {
                Some(IpAddr::V4(gw)) => builder.gateway(gw),
                _ => builder.scope(RouteScope::Link),
            };
            builder.build()
        }
        (IpNet::V6(net), gw) => {
            let mut builder = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(net.addr(), net.prefix_len())
                .output_interface(index);
            if let Some(IpAddr::V6(gw)) = gw {
                builder = builder.gateway(gw);
            }
            builder.build()
        }
    };
    handle
        .route()
        .add(message)
        .replace()
        .execute()
        .await
        .map_err(|err| NetlinkError::new(format!("add route {dst} via {gateway:?}"), err))
}

/// The addresses on link `index`.
pub async fn addresses(handle: &Handle, index: u32) -> Result<Vec<IpAddr>, NetlinkError> {
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    let mut found = Vec::new();
    while let Some(msg) = stream
        .try_next()
        .await
        .map_err(|err| NetlinkError::new("list addresses", err))?
    {
        for attr in msg.attributes {
            if let AddressAttribute::Address(ip) = attr {
                found.push(ip);
            }
        }
    }
    Ok(found)
}

/// The gateways of the default routes (IPv4 and IPv6) out of link `index`.
pub async fn default_gateways(handle: &Handle, index: u32) -> Result<Vec<IpAddr>, NetlinkError> {
    let mut found = Vec::new();
    for message in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let mut stream = handle.route().get(message).execute();
        while let Some(route) = stream
            .try_next()
            .await
            .map_err(|err| NetlinkError::new("list routes", err))?
        {
            if route.header.destination_prefix_length != 0 {
                continue;
            }
            let out = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if out != Some(index) {
                continue;
            }
            for attr in &route.attributes {
                if let RouteAttribute::Gateway(gw) = attr {
                    match gw {
                        RouteAddress::Inet(v4) => found.push(IpAddr::V4(*v4)),
                        RouteAddress::Inet6(v6) => found.push(IpAddr::V6(*v6)),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Writes a sysctl under `/proc/sys` of the calling thread's network namespace.
pub fn write_sysctl(path: &str, value: &str) -> Result<(), NetlinkError> {
    std::fs::write(format!("/proc/sys/{path}"), value)
        .map_err(|err| NetlinkError::new(format!("sysctl {path}={value}"), err))
}
