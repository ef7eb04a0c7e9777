//! The rtnetlink requests the harness needs: veth pairs (with their queue counts and the peer
//! placed straight into another namespace), MACs, addresses, routes, permanent neighbours and
//! link state. Each runs on the handle of the namespace it was opened in (see
//! [`super::netlink`]).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use super::NetnsError;

/// One end of a veth pair.
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    /// Interface name (at most 15 bytes).
    pub name: &'a str,
    /// Its MAC.
    pub mac: [u8; 6],
}

fn check_if_name(name: &str) -> Result<(), NetnsError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(NetnsError::BadName(name.to_string()))
    }
}

/// The index of interface `name`.
pub async fn ifindex(handle: &Handle, name: &str) -> Result<u32, NetnsError> {
    check_if_name(name)?;
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(NetnsError::netlink(
            format!("get link {name}"),
            "no such link",
        )),
        Err(e) => Err(NetnsError::netlink(format!("get link {name}"), e)),
    }
}

/// Set interface `name` up.
pub async fn set_up(handle: &Handle, name: &str) -> Result<(), NetnsError> {
    let index = ifindex(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetnsError::netlink(format!("set {name} up"), e))
}

/// Create a veth pair: `local` in this handle's namespace, `peer` inside the namespace named
/// `peer_ns` (`None`: here too), each with `queues` transmit and receive queues (1 to 64:
/// one per worker when several workers each take a queue).
pub async fn add_veth(
    handle: &Handle,
    local: VethEnd<'_>,
    peer: VethEnd<'_>,
    peer_ns: Option<&str>,
    queues: u32,
) -> Result<(), NetnsError> {
    check_if_name(local.name)?;
    check_if_name(peer.name)?;
    if !(1..=64).contains(&queues) {
        return Err(NetnsError::netlink(
            format!("add veth {} <-> {}", local.name, peer.name),
            format!("{queues} queues asked for; 1 to 64 allowed"),
        ));
    }
    // Held open until the request is answered: the kernel resolves the descriptor then.
    let ns_file = match peer_ns {
        Some(ns) => {
            let p = super::path(ns);
            Some(
                std::fs::File::open(&p)
                    .map_err(|e| NetnsError::os(format!("open {}", p.display()), e))?,
            )
        }
        None => None,
    };
    let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.name.to_string())
        .address(peer.mac.to_vec())
        .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
        .append_extra_attribute(LinkAttribute::NumRxQueues(queues));
    if let Some(f) = &ns_file {
        peer_msg = peer_msg.setns_by_fd(f.as_raw_fd());
    }
    let message = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(local.name.to_string())
        .address(local.mac.to_vec())
        .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
        .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
    let result = handle.link().add(message).execute().await;
    drop(ns_file);
    result.map_err(|e| NetnsError::netlink(format!("add veth {} <-> {}", local.name, peer.name), e))
}

/// Delete interface `name` (a veth takes its peer with it).
pub async fn delete(handle: &Handle, name: &str) -> Result<(), NetnsError> {
    let index = ifindex(handle, name).await?;
    handle
        .link()
        .del(index)
        .execute()
        .await
        .map_err(|e| NetnsError::netlink(format!("delete link {name}"), e))
}

/// Add `addr/prefix` on interface `name`.
pub async fn add_address(
    handle: &Handle,
    name: &str,
    addr: IpAddr,
    prefix: u8,
) -> Result<(), NetnsError> {
    let index = ifindex(handle, name).await?;
    handle
        .address()
        .add(index, addr, prefix)
        .execute()
        .await
        .map_err(|e| NetnsError::netlink(format!("add address {addr}/{prefix} on {name}"), e))
}

/// Add the IPv4 route `dst/prefix via gateway dev name`.
pub async fn add_route_v4(
    handle: &Handle,
    dst: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    name: &str,
) -> Result<(), NetnsError> {
    let index = ifindex(handle, name).await?;
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst, prefix)
        .gateway(gateway)
        .output_interface(index)
        .build();
    handle.route().add(msg).execute().await.map_err(|e| {
        NetnsError::netlink(
            format!("add route {dst}/{prefix} via {gateway} dev {name}"),
            e,
        )
    })
}

/// Add (or replace) the permanent neighbour `addr lladdr mac dev name`, so no ARP happens
/// during a run.
pub async fn add_neighbour(
    handle: &Handle,
    name: &str,
    addr: IpAddr,
    mac: [u8; 6],
) -> Result<(), NetnsError> {
    let index = ifindex(handle, name).await?;
    // `add` makes a permanent entry.
    handle
        .neighbours()
        .add(index, addr)
        .link_layer_address(&mac)
        .replace()
        .execute()
        .await
        .map_err(|e| NetnsError::netlink(format!("add neighbour {addr} dev {name}"), e))
}

/// What netlink reports about an interface: index, MAC, queue counts and whether it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// MAC address.
    pub mac: Vec<u8>,
    /// Transmit queues.
    pub tx_queues: u32,
    /// Receive queues.
    pub rx_queues: u32,
    /// Administratively up.
    pub up: bool,
}

/// Look interface `name` up.
pub async fn info(handle: &Handle, name: &str) -> Result<LinkInfo, NetnsError> {
    check_if_name(name)?;
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let link = match links.try_next().await {
        Ok(Some(link)) => link,
        Ok(None) => {
            return Err(NetnsError::netlink(
                format!("get link {name}"),
                "no such link",
            ));
        }
        Err(e) => return Err(NetnsError::netlink(format!("get link {name}"), e)),
    };
    let mut out = LinkInfo {
        index: link.header.index,
        mac: Vec::new(),
        tx_queues: 0,
        rx_queues: 0,
        up: link
            .header
            .flags
            .contains(rtnetlink::packet_route::link::LinkFlags::Up),
    };
    for a in link.attributes {
        match a {
            LinkAttribute::Address(m) => out.mac = m,
            LinkAttribute::NumTxQueues(n) => out.tx_queues = n,
            LinkAttribute::NumRxQueues(n) => out.rx_queues = n,
            _ => {}
        }
    }
    Ok(out)
}

/// The IPv4 addresses on interface `name`, with their prefix lengths.
pub async fn addresses_v4(handle: &Handle, name: &str) -> Result<Vec<(Ipv4Addr, u8)>, NetnsError> {
    let index = ifindex(handle, name).await?;
    let mut stream = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    let mut found = Vec::new();
    while let Some(msg) = stream
        .try_next()
        .await
        .map_err(|e| NetnsError::netlink(format!("list addresses of {name}"), e))?
    {
        for attr in &msg.attributes {
            if let rtnetlink::packet_route::address::AddressAttribute::Address(IpAddr::V4(a)) = attr
            {
                found.push((*a, msg.header.prefix_len));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_limits() {
        assert!(check_if_name("gen0").is_ok());
        assert!(check_if_name("tortie-hostk").is_ok());
        assert!(check_if_name("").is_err());
        assert!(check_if_name("a-name-longer-than-15").is_err());
        assert!(check_if_name("a/b").is_err());
    }
}
