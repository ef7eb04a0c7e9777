//! An endpoint as workers see it, with what the per-packet nodes ask of it answered from
//! fields resolved at build time.

use std::net::IpAddr;

use tortie_abi as abi;

/// An endpoint as workers see it: program references resolved to indices.
#[derive(Clone, Debug)]
pub struct EndpointInfo {
    /// Its id.
    pub id: abi::EndpointId,
    /// Interface index.
    pub if_index: u32,
    /// Workload or host endpoint.
    pub kind: abi::EndpointKind,
    /// MAC of the workload side.
    pub mac: abi::MacAddr,
    /// Owned addresses (anti-spoofing).
    pub addrs: Vec<abi::Prefix>,
    /// Program index for traffic to it.
    pub ingress: Option<u32>,
    /// Program index for traffic from it.
    pub egress: Option<u32>,
    /// doNotTrack program index, to it.
    pub untracked_ingress: Option<u32>,
    /// doNotTrack program index, from it.
    pub untracked_egress: Option<u32>,
    /// preDNAT program index.
    pub pre_dnat: Option<u32>,
    /// Host endpoints: `applyOnForward` program index for forwarded traffic arriving
    /// through it (`None`: allowed).
    pub forward_ingress: Option<u32>,
    /// Host endpoints: `applyOnForward` program index for forwarded traffic leaving
    /// through it (`None`: allowed).
    pub forward_egress: Option<u32>,
    /// Whether this is the node's own host interface (`settings.host_if`) rather than an
    /// endpoint of the tables: frames received on it were sent by the host itself. It has
    /// no programs; the policy node uses it to tell host-originated flows apart.
    pub host_interface: bool,
    /// The IPv4 prefixes of `addrs` as (network, mask) pairs, derived once by
    /// [`super::Generation::build`]: the anti-spoofing check of every packet from a workload
    /// compares against them without decoding the prefixes again.
    pub(super) owned_v4: Vec<(u32, u32)>,
}

impl EndpointInfo {
    /// Whether `ip` is one of the endpoint's own addresses.
    #[inline]
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.owned_v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(_) => self.addrs.iter().any(|p| p.contains(ip)),
        }
    }

    /// The program policing traffic that arrives from this endpoint (egress of a workload,
    /// ingress of a host endpoint).
    pub fn from_program(&self) -> Option<u32> {
        match self.kind {
            abi::EndpointKind::Workload => self.egress,
            abi::EndpointKind::Host => self.ingress,
        }
    }

    /// The program policing traffic sent to this endpoint (ingress of a workload, egress of
    /// a host endpoint).
    pub fn to_program(&self) -> Option<u32> {
        match self.kind {
            abi::EndpointKind::Workload => self.ingress,
            abi::EndpointKind::Host => self.egress,
        }
    }

    /// The `applyOnForward` program for forwarded traffic arriving through this host
    /// endpoint; `None` for workloads (and for host endpoints without such policy, which
    /// Calico allows).
    pub fn forward_in(&self) -> Option<u32> {
        match self.kind {
            abi::EndpointKind::Workload => None,
            abi::EndpointKind::Host => self.forward_ingress,
        }
    }

    /// The `applyOnForward` program for forwarded traffic leaving through this host
    /// endpoint; `None` for workloads.
    pub fn forward_out(&self) -> Option<u32> {
        match self.kind {
            abi::EndpointKind::Workload => None,
            abi::EndpointKind::Host => self.forward_egress,
        }
    }

    /// Whether this is a host endpoint of the tables (not a workload, not the host
    /// interface).
    pub fn is_host_endpoint(&self) -> bool {
        self.kind == abi::EndpointKind::Host && !self.host_interface
    }

    /// The doNotTrack program for traffic arriving from this endpoint.
    pub fn from_untracked(&self) -> Option<u32> {
        match self.kind {
            abi::EndpointKind::Workload => self.untracked_egress,
            abi::EndpointKind::Host => self.untracked_ingress,
        }
    }
}

/// The IPv4 prefixes among `addrs` as (network, mask) pairs (`Prefix::contains` as a mask
/// and a compare).
pub(super) fn owned_v4(addrs: &[abi::Prefix]) -> Vec<(u32, u32)> {
    addrs
        .iter()
        .filter_map(|p| match p.addr {
            // The network as stored, like `Prefix::contains` compares it.
            IpAddr::V4(n) => Some((u32::from(n), abi::mask32(p.len))),
            IpAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::HOST_INTERFACE_ID;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The precomputed IPv4 (network, mask) pairs answer exactly as the prefixes do,
        /// non-canonical prefixes (host bits set) and /0 included.
        #[test]
        fn owned_v4_pairs_match_prefix_contains(
            nets in proptest::collection::vec((any::<u32>(), 0u8..=32, any::<bool>()), 0..4),
            probe in any::<u32>(),
            near in any::<bool>(),
        ) {
            let addrs: Vec<abi::Prefix> = nets
                .iter()
                .map(|&(n, len, canonical)| abi::Prefix {
                    addr: IpAddr::V4(Ipv4Addr::from(if canonical { n & abi::mask32(len) } else { n })),
                    len,
                })
                .collect();
            // Probe inside the first prefix half of the time.
            let ip = match (near, nets.first()) {
                (true, Some(&(n, len, _))) => (n & abi::mask32(len)) | (probe & !abi::mask32(len)),
                _ => probe,
            };
            let ip = IpAddr::V4(Ipv4Addr::from(ip));
            let ep = EndpointInfo {
                id: HOST_INTERFACE_ID,
                if_index: 1,
                kind: abi::EndpointKind::Workload,
                mac: [0; 6],
                owned_v4: owned_v4(&addrs),
                addrs: addrs.clone(),
                ingress: None,
                egress: None,
                untracked_ingress: None,
                untracked_egress: None,
                pre_dnat: None,
                forward_ingress: None,
                forward_egress: None,
                host_interface: false,
            };
            prop_assert_eq!(ep.owns(ip), addrs.iter().any(|p| p.contains(ip)));
        }
    }
}
