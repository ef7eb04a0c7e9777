//! Ingress nodes: parse, neighbour answers, IP-in-IP decapsulation, IP checks.

use std::net::IpAddr;

use tortie_abi::EndpointKind;
use tortie_wire::l4::{icmpv6, proto};
use tortie_wire::{L3, parse_frame, parse_frame_into};

use crate::drop::DropReason;
use crate::frame::Frame;
use crate::graph::NodeKind;
use crate::meta::{Meta, NO_EP, Step};
use crate::pipeline::Pipeline;
use crate::reply::{self, IcmpError};
use crate::trace::Event;

fn is_nd(p: &tortie_wire::Parsed) -> bool {
    p.l3 == L3::Ipv6
        && p.proto == proto::ICMPV6
        && (icmpv6::ROUTER_SOLICIT..=icmpv6::NEIGHBOR_ADVERT + 1).contains(&p.icmp_type)
}

impl Pipeline {
    /// **parse**: decode the frame, resolve the receiving interface.
    /// Next: neighbor (ARP, ND), ipip-decap (IP-in-IP on the uplink), ip-check.
    pub(crate) fn node_parse(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        self.counters.rx(f.rx_if(), f.len());
        if let Err(e) = parse_frame_into(f.data(), &mut m.p) {
            return Step::Drop(e.into());
        }
        let p = &m.p;
        let g = &self.generation;
        m.rx_ep = g.endpoint_on(f.rx_if()).unwrap_or(NO_EP);
        let s = &g.settings;
        if m.rx_ep == NO_EP && f.rx_if() != s.uplink_if && f.rx_if() != s.host_if {
            return Step::Drop(DropReason::UnknownInterface);
        }
        match p.l3 {
            L3::Arp => Step::Next(NodeKind::Neighbor),
            L3::Ipv6 if is_nd(p) => Step::Next(NodeKind::Neighbor),
            L3::Ipv4 if p.proto == proto::IPIP && f.rx_if() == s.uplink_if => {
                Step::Next(NodeKind::Decap)
            }
            L3::Ipv4 | L3::Ipv6 => Step::Next(NodeKind::IpCheck),
            L3::Other => Step::Drop(DropReason::NotIp),
        }
    }

    fn rx_is_workload(&self, m: &Meta) -> bool {
        m.rx_ep != NO_EP && self.generation.endpoint(m.rx_ep).kind == EndpointKind::Workload
    }

    /// **neighbor**: answer ARP requests and neighbour solicitations from workloads for any
    /// target with ee:ee:ee:ee:ee:ee; hand neighbour traffic from other interfaces to the
    /// host. Next: tx.
    pub(crate) fn node_neighbor(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        if !self.rx_is_workload(m) {
            return Step::Tx(self.generation.settings.host_if);
        }
        let p = m.p;
        let answer = match p.l3 {
            // Gratuitous ARP (sender == target) announces; it asks nothing.
            L3::Arp if p.arp_op == tortie_wire::arp::OP_REQUEST && p.src != p.dst => {
                reply::arp_reply(f, &p)
            }
            // RFC 4861 section 7.1.1: a valid solicitation has hop limit 255. A solicitation
            // from the unspecified address is duplicate address detection: answering it would
            // tell the workload its own address is taken.
            L3::Ipv6
                if p.icmp_type == icmpv6::NEIGHBOR_SOLICIT
                    && p.ttl == 255
                    && !p.src.is_unspecified() =>
            {
                reply::neighbor_advert(f, &p)
            }
            _ => Err(DropReason::NeighborIgnored),
        };
        match answer {
            Ok(()) => {
                self.counters.neighbor_replies += 1;
                self.note(m, NodeKind::Neighbor, Event::Answered);
                Step::Tx(f.rx_if())
            }
            Err(r) => Step::Drop(r),
        }
    }

    /// **ipip-decap**: accept IP-in-IP only from known nodes' addresses and only addressed
    /// to this node; strip the outer header and decode the inner packet. The inner packet
    /// counts as received on the tunnel, which has no endpoint: it is marked
    /// `decapsulated` and loses the uplink's endpoint, so the uplink host endpoint's
    /// doNotTrack, preDNAT and (forward) ingress programs do not apply to it. In Calico the
    /// inner packet arrives on `tunl0`, which a host endpoint naming the uplink does not
    /// cover (only its outer packet meets the uplink's chains, and Felix's filter INPUT chain
    /// accepts IP-in-IP from known hosts before any host endpoint policy:
    /// felix/rules/static.go, `filterInputChain`). Next: ip-check.
    pub(crate) fn node_decap(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        let g = &self.generation;
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (m.p.src, m.p.dst) else {
            return Step::Drop(DropReason::DecapUnknownSource);
        };
        let ours = g
            .settings
            .node_v4
            .is_some_and(|n| n.addr == IpAddr::V4(dst));
        if !ours || !g.tunnel_source_allowed(src) {
            return Step::Drop(DropReason::DecapUnknownSource);
        }
        if m.p.fragment != tortie_wire::Fragment::Whole {
            // Outer fragments would need reassembly; nodes never send them (they set DF).
            return Step::Drop(DropReason::MtuExceeded);
        }
        if let Err(r) = crate::rewrite::decap(f, &m.p) {
            return Step::Drop(r);
        }
        match parse_frame(f.data()) {
            Ok(inner) if inner.l3 == L3::Ipv4 => {
                m.p = inner;
                m.decapsulated = true;
                m.rx_ep = NO_EP;
                Step::Next(NodeKind::IpCheck)
            }
            Ok(_) => Step::Drop(DropReason::Ipv4BadHeader),
            Err(e) => Step::Drop(e.into()),
        }
    }

    /// **ip-check**: address sanity, anti-spoofing (a workload sends only from its own
    /// addresses), TTL / hop limit with ICMP time exceeded. Next: untracked-policy (from an
    /// endpoint with a doNotTrack program), conntrack (the others), tx (the ICMP error).
    pub(crate) fn node_ip_check(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        let p = &m.p;
        let bad = match (p.src, p.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                s.is_multicast()
                    || s.is_broadcast()
                    || d.is_broadcast()
                    || d.is_multicast()
                    || d.is_unspecified()
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                s.is_multicast() || d.is_multicast() || d.is_unspecified()
            }
            _ => true,
        };
        if bad {
            return Step::Drop(DropReason::BadAddress);
        }
        let g = &self.generation;
        // Whether the untracked-policy node has anything to do: only a receiving endpoint
        // with a doNotTrack program sends packets through it (like a VPP feature enabled on
        // an interface); a later fragment, which it could not classify, skips it too.
        let mut untracked_policy = false;
        if m.rx_ep != NO_EP {
            let ep = g.endpoint(m.rx_ep);
            if ep.kind == EndpointKind::Workload && !ep.owns(p.src) {
                return Step::Drop(DropReason::Spoofed);
            }
            untracked_policy =
                ep.from_untracked().is_some() && p.fragment != tortie_wire::Fragment::Later;
        }
        // Packets to this node's own address are delivered, not forwarded: their TTL may be 1.
        if p.ttl <= 1 && g.node_addr(p.is_ipv6()) != Some(p.dst) {
            if !reply::may_send_error(p) {
                return Step::Drop(DropReason::TtlExceeded);
            }
            let Some(src) = g.node_addr(p.is_ipv6()) else {
                return Step::Drop(DropReason::NoNodeAddress);
            };
            return match reply::icmp_error(f, p, IcmpError::TimeExceeded, src) {
                Ok(()) => {
                    self.counters.icmp_errors += 1;
                    self.note(m, NodeKind::IpCheck, Event::Answered);
                    Step::Tx(f.rx_if())
                }
                Err(r) => Step::Drop(r),
            };
        }
        if untracked_policy {
            return Step::Next(NodeKind::Untracked);
        }
        Step::Next(NodeKind::Conntrack)
    }
}
