//! Egress nodes: MTU check, rewrite (NAT, TTL, checksums, MACs), IP-in-IP encapsulation.

use std::net::IpAddr;

use crate::drop::DropReason;
use crate::frame::Frame;
use crate::graph::NodeKind;
use crate::meta::{Meta, Step};
use crate::pipeline::Pipeline;
use crate::reply::{self, IcmpError};
use crate::rewrite::{self, ENCAP_LEN, EncapTemplate};
use crate::trace::Event;

impl Pipeline {
    /// **mtu**: a packet longer than the uplink MTU (less the tunnel header when it will be
    /// encapsulated) is answered with ICMP fragmentation-needed (IPv4 with DF) or
    /// packet-too-big (IPv6), or dropped (IPv4 without DF: the fastpath does not fragment).
    /// Traffic to local workloads is not limited (it goes from route or policy straight to
    /// rewrite and meets this node only as a safeguard). Next: rewrite, tx (the ICMP error).
    pub(crate) fn node_mtu(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        let local = matches!(m.egress.target, crate::compile::Target::Local(_));
        if local {
            return Step::Next(NodeKind::Rewrite);
        }
        let s = &self.generation.settings;
        let overhead = if m.egress.encap_to.is_some() {
            ENCAP_LEN as u16
        } else {
            0
        };
        let mtu = s.mtu.saturating_sub(overhead);
        if m.p.ip_len <= mtu {
            return Step::Next(NodeKind::Rewrite);
        }
        let p = m.p;
        if !p.dont_fragment || !reply::may_send_error(&p) {
            return Step::Drop(DropReason::MtuExceeded);
        }
        let Some(src) = self.generation.node_addr(p.is_ipv6()) else {
            return Step::Drop(DropReason::NoNodeAddress);
        };
        match reply::icmp_error(f, &p, IcmpError::TooBig(mtu), src) {
            Ok(()) => {
                self.counters.icmp_errors += 1;
                self.note(m, NodeKind::Mtu, Event::Answered);
                Step::Tx(f.rx_if())
            }
            Err(r) => Step::Drop(r),
        }
    }

    /// **rewrite**: NAT (addresses, ports or echo identifier) with incremental checksum
    /// updates, TTL / hop-limit decrement, MACs. Next: ipip-encap, tx.
    pub(crate) fn node_rewrite(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        let p = &m.p;
        let data = f.data_mut();
        // Frames for the host (NAT'd replies on flows the host opened) are delivered, not
        // routed: the kernel sees them as received, with their TTL untouched.
        let routed = m.egress.target != crate::compile::Target::Host;
        if let Some(x) = m.xlate {
            if routed {
                rewrite::apply_nat_and_decrement_ttl(data, p, &x);
            } else {
                rewrite::apply_nat(data, p, &x);
            }
            self.note(m, NodeKind::Rewrite, Event::Nat);
        } else {
            if let Some(&(src, dst, quoted)) = self.error_xlates.get(usize::from(m.error_xlate)) {
                rewrite::translate_icmp_error(data, p, src, dst, &quoted);
                self.note(m, NodeKind::Rewrite, Event::Nat);
            }
            if routed {
                rewrite::decrement_ttl(data, p);
            }
        }
        rewrite::set_macs(data, m.egress.dst_mac, m.egress.src_mac);
        if m.egress.encap_to.is_some() {
            return Step::Next(NodeKind::Encap);
        }
        Step::Tx(m.egress.tx_if)
    }

    /// **ipip-encap**: prepend the outer IPv4 header from this node to the remote node.
    /// Next: tx.
    pub(crate) fn node_encap(&mut self, f: &mut Frame<'_>, m: &mut Meta) -> Step {
        let Some(dst) = m.egress.encap_to else {
            return Step::Tx(m.egress.tx_if);
        };
        // Packets of a batch to one remote node share the outer header: its template is
        // built once per batch and destination (the memo is cleared when a batch starts).
        let template = match self.encap_memo {
            Some(t) if t.dst() == dst => t,
            _ => {
                let Some(IpAddr::V4(src)) = self.generation.node_addr(false) else {
                    return Step::Drop(DropReason::NoNodeAddress);
                };
                let t = EncapTemplate::new(src, dst);
                self.encap_memo = Some(t);
                t
            }
        };
        match rewrite::encap_with(f, &m.p, &template) {
            Ok(()) => Step::Tx(m.egress.tx_if),
            Err(r) => Step::Drop(r),
        }
    }
}
