//! A workload's veth pair: created, checked and removed.
//!
//! Host side: named `tor` + 11 hex digits, MAC `ee:ee:ee:ee:ee:ee`, proxy ARP / proxy NDP on, a
//! host route per workload address. Container side: `CNI_IFNAME`, /32 and /128 addresses,
//! `169.254.1.1` as an on-link IPv4 gateway and the host side's link-local address as the IPv6
//! gateway, TX checksum offload off (see [`crate::offload`]). The same shape as Calico's, so that the kernel forwards workload traffic when the
//! fastpath is not attached, and the fastpath answers ARP/ND the same way when it is.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use ipnet::IpNet;

use super::netns::{block_on, in_netns};
use super::ops;
use super::{GATEWAY_V4, GATEWAY_V6, HOST_MAC, NetlinkError};
use crate::offload::{self, TX_CHECKSUM_FEATURES};

/// What ADD created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadLink {
    /// Host-side interface name.
    pub host_name: String,
    /// Container-side MAC address.
    pub container_mac: String,
    /// Host-side MAC address.
    pub host_mac: String,
}

/// Whether the host-side link exists.
pub fn host_link_exists(host_name: &str) -> Result<bool, NetlinkError> {
    let name = host_name.to_string();
    block_on(async move |handle| Ok(ops::link_by_name(&handle, &name).await?.is_some()))
}

/// Creates the veth pair and configures both sides. On failure, whatever was created is
/// removed again before the error is returned.
pub fn setup(
    host_name: &str,
    netns: &str,
    ifname: &str,
    mtu: u32,
    addresses: &[IpNet],
) -> Result<WorkloadLink, NetlinkError> {
    let result = setup_inner(host_name, netns, ifname, mtu, addresses);
    if result.is_err() {
        let _ = teardown(host_name);
    }
    result
}

fn setup_inner(
    host_name: &str,
    netns: &str,
    ifname: &str,
    mtu: u32,
    addresses: &[IpNet],
) -> Result<WorkloadLink, NetlinkError> {
    let netns_file = std::fs::File::open(netns)
        .map_err(|err| NetlinkError::new(format!("open netns {netns}"), err))?;
    let host = host_name.to_string();
    let peer = ifname.to_string();
    let fd = netns_file.as_raw_fd();
    let host_addrs: Vec<IpNet> = addresses.to_vec();
    let host_mac = block_on(async move |handle| {
        // A host side left by an earlier attempt for the same workload is replaced.
        ops::delete_link(&handle, &host).await?;
        ops::create_veth(&handle, &host, HOST_MAC, mtu, &peer, fd).await?;
        let link = ops::link_by_name(&handle, &host)
            .await?
            .ok_or_else(|| NetlinkError::new(format!("find {host}"), "vanished after creation"))?;
        let index = link.header.index;
        configure_host_sysctls(&host, &host_addrs);
        ops::set_up(&handle, index, &host).await?;
        for net in &host_addrs {
            ops::add_route(&handle, index, host_route(net), None).await?;
        }
        Ok(ops::mac_of(&link))
    })?;
    drop(netns_file);

    let ifname = ifname.to_string();
    let container_addrs: Vec<IpNet> = addresses.to_vec();
    let container_mac = in_netns(netns, move || {
        block_on(async move |handle| {
            let link = ops::link_by_name(&handle, &ifname).await?.ok_or_else(|| {
                NetlinkError::new(format!("find {ifname} in the container"), "missing")
            })?;
            let index = link.header.index;
            // Before any traffic: complete checksums in everything the workload sends, since
            // the fastpath's AF_XDP socket on the host side cannot finish partial ones.
            offload::disable_tx_checksum(None, &ifname).map_err(|err| {
                NetlinkError::new(format!("turn TX checksum offload off on {ifname}"), err)
            })?;
            if container_addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
                // Duplicate address detection would hold the address back for a second or more.
                let _ = ops::write_sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
            }
            ops::set_up(&handle, index, &ifname).await?;
            for net in &container_addrs {
                ops::add_host_address(&handle, index, net.addr()).await?;
            }
            if container_addrs.iter().any(|a| matches!(a, IpNet::V4(_))) {
                let gateway: IpNet = IpNet::from(IpAddr::V4(GATEWAY_V4));
                ops::add_route(&handle, index, gateway, None).await?;
                ops::add_route(
                    &handle,
                    index,
                    "0.0.0.0/0".parse().unwrap_or(gateway),
                    Some(IpAddr::V4(GATEWAY_V4)),
                )
                .await?;
            }
            if container_addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
                let default: IpNet = "::/0"
                    .parse()
                    .unwrap_or(IpNet::from(IpAddr::V6(GATEWAY_V6)));
                ops::add_route(&handle, index, default, Some(IpAddr::V6(GATEWAY_V6))).await?;
            }
            Ok(ops::mac_of(&link))
        })
    })?;
    Ok(WorkloadLink {
        host_name: host_name.to_string(),
        container_mac,
        host_mac,
    })
}

fn host_route(net: &IpNet) -> IpNet {
    IpNet::from(net.addr())
}

/// Host-side sysctls, as Calico sets them: answer ARP for the gateway (proxy ARP without delay),
/// forward, and for IPv6 proxy NDP and no router advertisements. IPv6 settings are skipped
/// where IPv6 is disabled.
fn configure_host_sysctls(host: &str, addresses: &[IpNet]) {
    let _ = ops::write_sysctl(&format!("net/ipv4/conf/{host}/proxy_arp"), "1");
    let _ = ops::write_sysctl(&format!("net/ipv4/neigh/{host}/proxy_delay"), "0");
    let _ = ops::write_sysctl(&format!("net/ipv4/conf/{host}/forwarding"), "1");
    if addresses.iter().any(|a| matches!(a, IpNet::V6(_))) {
        let _ = ops::write_sysctl(&format!("net/ipv6/conf/{host}/accept_ra"), "0");
        let _ = ops::write_sysctl(&format!("net/ipv6/conf/{host}/proxy_ndp"), "1");
        let _ = ops::write_sysctl(&format!("net/ipv6/conf/{host}/forwarding"), "1");
    }
}

/// Removes the workload's veth pair (the kernel removes both ends). Absent is fine.
pub fn teardown(host_name: &str) -> Result<bool, NetlinkError> {
    let host = host_name.to_string();
    block_on(async move |handle| ops::delete_link(&handle, &host).await)
}

/// Verifies the container side: the interface exists, carries every address in `expected`,
/// has TX checksum offload off, and has default routes through the gateways.
pub fn check(
    host_name: &str,
    netns: &str,
    ifname: &str,
    expected: &[IpNet],
) -> Result<(), NetlinkError> {
    if !host_link_exists(host_name)? {
        return Err(NetlinkError::new(
            format!("host interface {host_name}"),
            "missing",
        ));
    }
    let ifname = ifname.to_string();
    let expected = expected.to_vec();
    in_netns(netns, move || {
        block_on(async move |handle| {
            let link = ops::link_by_name(&handle, &ifname).await?.ok_or_else(|| {
                NetlinkError::new(format!("interface {ifname}"), "missing in the container")
            })?;
            let present = ops::addresses(&handle, link.header.index).await?;
            for net in &expected {
                if !present.contains(&net.addr()) {
                    return Err(NetlinkError::new(
                        format!("address {} on {ifname}", net.addr()),
                        "missing",
                    ));
                }
            }
            let features = offload::features(None, &ifname).map_err(|err| {
                NetlinkError::new(format!("read offload features of {ifname}"), err)
            })?;
            if let Some(on) = TX_CHECKSUM_FEATURES
                .iter()
                .find(|f| features.active.contains(**f))
            {
                return Err(NetlinkError::new(
                    format!("TX checksum offload on {ifname}"),
                    format!("{on} is on"),
                ));
            }
            let gateways = ops::default_gateways(&handle, link.header.index).await?;
            if expected.iter().any(|a| matches!(a, IpNet::V4(_)))
                && !gateways.contains(&IpAddr::V4(GATEWAY_V4))
            {
                return Err(NetlinkError::new(
                    format!("IPv4 default route via {GATEWAY_V4} on {ifname}"),
                    "missing",
                ));
            }
            if expected.iter().any(|a| matches!(a, IpNet::V6(_)))
                && !gateways.contains(&IpAddr::V6(GATEWAY_V6))
            {
                return Err(NetlinkError::new(
                    format!("IPv6 default route via {GATEWAY_V6} on {ifname}"),
                    "missing",
                ));
            }
            Ok(())
        })
    })
}
