//! The node graph: every node and its declared next arcs (VPP's `next_nodes`).
//!
//! Nodes run in the order of [`NodeKind::ORDER`] over the whole batch; a packet visits only
//! the nodes its previous node sent it to, and may skip forward (never backward), so one pass
//! over the order processes every packet. Tests check that every transition a packet takes is
//! one of the arcs declared here.

/// A pipeline node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NodeKind {
    /// Decode the frame; resolve the receiving interface.
    Parse,
    /// Answer ARP and IPv6 neighbour solicitations from workloads.
    Neighbor,
    /// Strip the outer header of IP-in-IP from known nodes.
    Decap,
    /// TTL / hop limit (ICMP time exceeded), address sanity, anti-spoofing.
    IpCheck,
    /// doNotTrack policy of the receiving endpoint (visited only when it has such a program).
    Untracked,
    /// Conntrack lookup, related ICMP errors, non-first fragments.
    Conntrack,
    /// preDNAT policy and 1:1 DNAT selection for new flows.
    PreDnat,
    /// Longest-prefix-match route lookup on the (translated) destination.
    Route,
    /// Policy per direction for new flows, SNAT selection, conntrack create.
    Policy,
    /// Non-first fragments: follow the flow their first fragment recorded, then route.
    Fragment,
    /// MTU check; ICMP fragmentation-needed / packet-too-big (not visited by packets to local
    /// workloads, which are not limited).
    Mtu,
    /// NAT rewrite, TTL decrement, incremental checksums, MAC rewrite.
    Rewrite,
    /// IP-in-IP encapsulation.
    Encap,
    /// Queue on the TX batch of the chosen interface.
    Tx,
}

impl NodeKind {
    /// Every node in processing order.
    pub const ORDER: [NodeKind; 14] = [
        NodeKind::Parse,
        NodeKind::Neighbor,
        NodeKind::Decap,
        NodeKind::IpCheck,
        NodeKind::Untracked,
        NodeKind::Conntrack,
        NodeKind::PreDnat,
        NodeKind::Route,
        NodeKind::Policy,
        NodeKind::Fragment,
        NodeKind::Mtu,
        NodeKind::Rewrite,
        NodeKind::Encap,
        NodeKind::Tx,
    ];

    /// The node's name in traces and docs.
    pub const fn name(self) -> &'static str {
        match self {
            NodeKind::Parse => "parse",
            NodeKind::Neighbor => "neighbor",
            NodeKind::Decap => "ipip-decap",
            NodeKind::IpCheck => "ip-check",
            NodeKind::Untracked => "untracked-policy",
            NodeKind::Conntrack => "conntrack",
            NodeKind::PreDnat => "pre-dnat",
            NodeKind::Route => "route",
            NodeKind::Policy => "policy",
            NodeKind::Fragment => "fragment",
            NodeKind::Mtu => "mtu",
            NodeKind::Rewrite => "rewrite",
            NodeKind::Encap => "ipip-encap",
            NodeKind::Tx => "tx",
        }
    }

    /// The nodes this node may send a packet to (besides dropping it).
    pub const fn next_arcs(self) -> &'static [NodeKind] {
        use NodeKind::*;
        match self {
            Parse => &[Neighbor, Decap, IpCheck],
            Neighbor => &[Tx],
            Decap => &[IpCheck],
            // Time exceeded turns the packet into an ICMP error sent back out.
            // Only packets from an endpoint with a doNotTrack program visit `Untracked`.
            IpCheck => &[Untracked, Conntrack, Tx],
            Untracked => &[Conntrack, Route],
            // Non-first fragments wait in `Fragment`, after `Policy`, so that a first fragment
            // earlier in the same batch has recorded its flow by the time they look it up.
            Conntrack => &[PreDnat, Route, Fragment],
            PreDnat => &[Route],
            // Packets to local workloads skip `Mtu` (their MTU is not limited).
            Route => &[Policy, Mtu, Rewrite, Tx],
            Policy => &[Mtu, Rewrite, Tx],
            Fragment => &[Mtu, Rewrite, Tx],
            // Too big turns the packet into an ICMP error sent back out.
            Mtu => &[Rewrite, Tx],
            Rewrite => &[Encap, Tx],
            Encap => &[Tx],
            Tx => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arcs_only_point_forward() {
        for (i, n) in NodeKind::ORDER.iter().enumerate() {
            assert_eq!(*n as usize, i);
            for next in n.next_arcs() {
                assert!(
                    *next > *n,
                    "{} -> {} points backward",
                    n.name(),
                    next.name()
                );
            }
        }
    }
}
