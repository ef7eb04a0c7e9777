//! The node's own plumbing and what control watches of it: the host veth pair, the kernel's
//! ephemeral port range, the uplink, the default gateway, link indexes and neighbour MACs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::ControlError;
use crate::netlink::{Gateway, Link, Mac, Netlink, read_sysctl, trigger_resolution, write_sysctl};

/// The fastpath's end of the host veth pair (`settings.host_if`).
pub const HOST_IF: &str = "tortie-host";
/// The kernel's end of the host veth pair.
pub const HOST_KERNEL_IF: &str = "tortie-hostk";
/// The kernel end's MAC (as Calico's workload host sides).
pub const HOST_KERNEL_MAC: Mac = [0xee; 6];
/// First SNAT source port (the fastpath's range; the kernel's must stay below it).
pub const SNAT_PORT_LO: u16 = 61000;
/// Last SNAT source port.
pub const SNAT_PORT_HI: u16 = 65535;
/// How long a lookup of a missing interface is not repeated.
const MISSING_RETRY: Duration = Duration::from_millis(500);

/// Creates the host veth pair (replacing one left behind), kernel end with MAC
/// `ee:ee:ee:ee:ee:ee`, both up, reverse-path filtering off on the kernel end and on `all`,
/// TX checksum offload off on the kernel end. Returns the fastpath end.
pub fn create_host_pair(nl: &Netlink) -> Result<Link, ControlError> {
    nl.create_veth(HOST_IF, HOST_KERNEL_IF, HOST_KERNEL_MAC)?;
    // The kernel sends host-to-workload traffic into the fastpath through this pair
    // (`crate::host_routes`). With checksum offload on, its TCP and UDP frames would reach the
    // fastpath's AF_XDP socket with only the pseudo-header sum in the checksum field (the
    // veth passes CHECKSUM_PARTIAL skbs on as they are, and AF_XDP copies bytes, not that
    // metadata), and the workload would reject them. ICMP is summed in software either way.
    if let Err(err) = tortie_cni::offload::disable_tx_checksum(None, HOST_KERNEL_IF) {
        tracing::warn!(%err, interface = HOST_KERNEL_IF, "could not turn TX checksum offload off: the node's TCP and UDP to its workloads will fail");
    }
    // Frames from workloads enter the kernel here while the kernel's route back to them is
    // the workload's own interface. The kernel end has no IPv4 address, and on such an
    // interface even loose filtering drops every packet, so filtering is off there; the
    // kernel applies max(all, interface), so `all` must be 0 too (other interfaces keep
    // their own setting). Spoofing is already stopped by the fastpath's anti-spoofing node.
    write_sysctl("net/ipv4/conf/all/rp_filter", "0")?;
    write_sysctl(&format!("net/ipv4/conf/{HOST_KERNEL_IF}/rp_filter"), "0")?;
    nl.link(HOST_IF)?
        .ok_or_else(|| ControlError::netlink(format!("find {HOST_IF}"), "vanished after creation"))
}

/// The kernel's ephemeral range with its upper end moved below the SNAT ports when they
/// overlap; returns the range in force. `text` is `ip_local_port_range` (`"32768\t60999"`).
pub fn port_range_below_snat(text: &str) -> Option<(u16, u16)> {
    let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    let (lo, hi) = (parts.next()??, parts.next()??);
    let top = SNAT_PORT_LO - 1;
    if hi < SNAT_PORT_LO {
        return Some((lo, hi));
    }
    let lo = if lo >= top { 32768 } else { lo };
    Some((lo, top))
}

/// Makes sure the kernel's ephemeral ports stay out of the SNAT range.
pub fn fix_port_range() -> Result<(u16, u16), ControlError> {
    const PATH: &str = "net/ipv4/ip_local_port_range";
    let current = read_sysctl(PATH)?;
    let (lo, hi) = port_range_below_snat(&current).ok_or_else(|| ControlError::Config {
        option: "ip_local_port_range",
        reason: format!("cannot read {current:?}"),
    })?;
    if current.split_whitespace().nth(1) != Some(&hi.to_string()) {
        write_sysctl(PATH, &format!("{lo} {hi}"))?;
        tracing::info!(
            lo,
            hi,
            "moved the kernel's ephemeral port range below the SNAT ports"
        );
    }
    Ok((lo, hi))
}

/// Link indexes by name, looked up on demand and refreshed in bulk now and then.
#[derive(Default)]
pub struct LinkCache {
    links: HashMap<String, Link>,
    missing: HashMap<String, Instant>,
}

impl LinkCache {
    /// The link called `name`: from the cache, else one netlink lookup (not repeated within
    /// half a second for a name that was missing).
    pub fn get(&mut self, nl: &Netlink, name: &str) -> Option<Link> {
        if name.is_empty() || name == "*" {
            return None;
        }
        if let Some(l) = self.links.get(name) {
            return Some(l.clone());
        }
        if self
            .missing
            .get(name)
            .is_some_and(|t| t.elapsed() < MISSING_RETRY)
        {
            return None;
        }
        match nl.link(name) {
            Ok(Some(l)) => {
                self.missing.remove(name);
                self.links.insert(name.to_string(), l.clone());
                Some(l)
            }
            Ok(None) => {
                self.missing.insert(name.to_string(), Instant::now());
                None
            }
            Err(err) => {
                tracing::warn!(%err, name, "link lookup failed");
                None
            }
        }
    }

    /// Replaces the cache with a full dump; returns whether any cached link changed.
    pub fn refresh(&mut self, nl: &Netlink) -> bool {
        let Ok(all) = nl.links() else {
            return false;
        };
        let fresh: HashMap<String, Link> = all.into_iter().map(|l| (l.name.clone(), l)).collect();
        let changed = self
            .links
            .iter()
            .any(|(name, l)| fresh.get(name) != Some(l))
            || self.missing.keys().any(|n| fresh.contains_key(n));
        self.links = fresh;
        self.missing.clear();
        changed
    }
}

/// The uplink's neighbours: the gateway's MAC and other nodes' MACs.
pub struct Neighbours {
    /// The default gateway (on the uplink), if any.
    pub gateway: Option<Gateway>,
    /// Its MAC once resolved.
    pub gateway_mac: Option<Mac>,
    /// Resolved MACs by address.
    pub macs: HashMap<IpAddr, Mac>,
}

impl Neighbours {
    /// Reads the default gateway of the family of `node_addr` through `uplink`.
    pub fn new(nl: &Netlink, uplink: u32, v6: bool) -> Neighbours {
        let gateway = nl
            .default_gateway(v6)
            .ok()
            .flatten()
            .filter(|g| g.if_index == uplink);
        Neighbours {
            gateway,
            gateway_mac: None,
            macs: HashMap::new(),
        }
    }

    /// Looks up `wanted` (and the gateway) in the neighbour table of `uplink`; probes the
    /// ones not resolved (at most `max_probes` datagrams). Returns whether anything changed.
    pub fn refresh(
        &mut self,
        nl: &Netlink,
        uplink: u32,
        wanted: &[IpAddr],
        max_probes: usize,
    ) -> bool {
        let table = match nl.neighbours(uplink) {
            Ok(t) => t,
            Err(err) => {
                tracing::warn!(%err, "neighbour dump failed");
                return false;
            }
        };
        let mut changed = false;
        let mut probes = 0;
        let mut lookup = |ip: IpAddr, slot: Option<Mac>| -> Option<Mac> {
            let mac = table.get(&ip).copied();
            if mac.is_none() && probes < max_probes {
                probes += 1;
                trigger_resolution(ip);
            }
            if mac != slot {
                changed = true;
            }
            mac.or(slot)
        };
        if let Some(gw) = self.gateway {
            self.gateway_mac = lookup(gw.addr, self.gateway_mac);
        }
        for ip in wanted {
            let old = self.macs.get(ip).copied();
            if let Some(mac) = lookup(*ip, old) {
                self.macs.insert(*ip, mac);
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_moves_below_snat_only_when_overlapping() {
        assert_eq!(port_range_below_snat("32768\t60999"), Some((32768, 60999)));
        assert_eq!(port_range_below_snat("1024 65535"), Some((1024, 60999)));
        assert_eq!(port_range_below_snat("61000 65000"), Some((32768, 60999)));
        assert_eq!(port_range_below_snat("junk"), None);
    }
}
