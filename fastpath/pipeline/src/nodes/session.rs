//! Session nodes: doNotTrack policy, conntrack, preDNAT/DNAT, route, policy for new flows.

use std::net::IpAddr;

use tortie_abi::{EndpointKind, HostAction};
use tortie_classifier as cls;
use tortie_tables::{Direction, FlowKey, InsertError, NatRequest, TcpFlags, Tracked, Verdict};
use tortie_wire::l4::proto;
use tortie_wire::{Fragment, Parsed};

use crate::compile::{Arrival, Decision, Generation, Target};
use crate::drop::DropReason;
use crate::graph::NodeKind;
use crate::meta::{Egress, Meta, NO_EP, Step};
use crate::pipeline::Pipeline;
use crate::trace::Event;
use tortie_wire::ethernet::WORKLOAD_GATEWAY_MAC;

/// The classifier key of a packet, with the destination the policy should see (after DNAT).
/// ICMP type and code travel in the port fields, as the classifier expects.
pub(crate) fn class_key(p: &Parsed, dst: IpAddr) -> cls::Key {
    let icmp = matches!(
        (p.proto, p.is_ipv6()),
        (proto::ICMP, false) | (proto::ICMPV6, true)
    );
    let (sp, dp) = if icmp {
        (u16::from(p.icmp_type), u16::from(p.icmp_code))
    } else {
        (p.src_port, p.dst_port)
    };
    match (p.src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => cls::Key::V6(cls::Key6 {
            src: s.into(),
            dst: d.into(),
            src_port: sp,
            dst_port: dp,
            proto: p.proto,
        }),
        (IpAddr::V4(s), IpAddr::V4(d)) => cls::Key::V4(cls::Key4 {
            src: s.into(),
            dst: d.into(),
            src_port: sp,
            dst_port: dp,
            proto: p.proto,
        }),
        // Families always agree (DNAT maps within a family); an impossible mix classifies
        // as an all-zero IPv4 key, which policy denies unless a rule allows everything.
        _ => cls::Key::V4(cls::Key4::default()),
    }
}

/// The conntrack key of a packet as received.
pub(crate) fn flow_key(p: &Parsed) -> Option<FlowKey> {
    FlowKey::new(p.src, p.dst, p.src_port, p.dst_port, p.proto)
}

/// The route node's last lookup in the batch: the destination (and family of the packet)
/// and where it led.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteMemo {
    dst: IpAddr,
    v6: bool,
    egress: Result<Egress, DropReason>,
}

/// Looks `dst` up and resolves the target to an interface and MACs. Out of line: the
/// route memo answers most packets without it.
#[inline(never)]
fn resolve_egress(g: &Generation, dst: IpAddr, v6: bool) -> Result<Egress, DropReason> {
    let s = &g.settings;
    let target = g.route(dst).ok_or(DropReason::NoRoute)?;
    let (tx_if, dst_mac, src_mac, encap_to) = match target {
        Target::Local(ep) => {
            let ep = g.endpoint(ep);
            (ep.if_index, ep.mac, WORKLOAD_GATEWAY_MAC, None)
        }
        Target::Node { node, encap } => {
            let n = g.node(node);
            let tunnel = match (encap, n.addr, v6) {
                (true, IpAddr::V4(to), false) => Some(to),
                _ => None,
            };
            (s.uplink_if, n.mac, s.uplink_mac, tunnel)
        }
        Target::Uplink => (s.uplink_if, s.gateway_mac, s.uplink_mac, None),
        // Used only when a NAT'd packet to the host goes through the rewrite node: the
        // kernel's end of the host veth carries the workload gateway MAC.
        Target::Host => (s.host_if, WORKLOAD_GATEWAY_MAC, s.uplink_mac, None),
        Target::Blackhole => return Err(DropReason::Blackhole),
        Target::Dangling => return Err(DropReason::DanglingRoute),
    };
    Ok(Egress {
        target,
        tx_if,
        dst_mac,
        src_mac,
        encap_to,
    })
}

impl Pipeline {
    fn eval(&mut self, program: u32, key: &cls::Key) -> Decision {
        let g = &self.generation;
        let counters = &mut self.counters;
        g.program(program)
            .evaluate(key, &g.sets, |slot| counters.rule_hit(slot))
    }

    fn note_decision(&mut self, m: &Meta, node: NodeKind, d: Decision) {
        if m.traced {
            let rule = d.rule_slot.and_then(|s| self.generation.rule_id(s));
            self.trace.record(
                m.serial,
                node,
                Event::Policy {
                    allow: d.allow,
                    rule,
                },
            );
        }
    }

    /// **untracked-policy**: the receiving endpoint's doNotTrack program runs on every
    /// packet before conntrack. A rule's Allow sends the packet on untracked: no conntrack
    /// and no NAT, the receiving endpoint's own program skipped, but the policy node still
    /// runs the other side's program on it (a local workload's ingress, the uplink host
    /// endpoint's forward egress), as Felix's filter FORWARD chain does for NOTRACK packets;
    /// a rule's Deny drops; no matching rule continues normally. Next: conntrack, route.
    pub(crate) fn node_untracked(&mut self, m: &mut Meta) -> Step {
        if m.rx_ep != NO_EP
            && let Some(prog) = self.generation.endpoint(m.rx_ep).from_untracked()
            && m.p.fragment != Fragment::Later
        {
            let key = class_key(&m.p, m.p.dst);
            let d = self.eval(prog, &key);
            if d.rule_slot.is_some() {
                self.note_decision(m, NodeKind::Untracked, d);
                if !d.allow {
                    return Step::Drop(DropReason::UntrackedDeny);
                }
                m.untracked = true;
                self.counters.untracked += 1;
                return Step::Next(NodeKind::Route);
            }
        }
        Step::Next(NodeKind::Conntrack)
    }

    /// **conntrack**: find the packet's flow. A hit runs the TCP state machine and checks
    /// the cached verdict; an ICMP error passes with the flow it quotes; a non-first
    /// fragment follows its first fragment; a miss goes to policy.
    /// Next: pre-dnat (miss), route (hit).
    pub(crate) fn node_conntrack(&mut self, m: &mut Meta, now: u64) -> Step {
        if m.p.fragment == Fragment::Later {
            return Step::Next(NodeKind::Fragment);
        }
        if let Some(e) = m.p.embedded {
            let p = m.p;
            let Some(quoted) = FlowKey::new(e.src, e.dst, e.src_port, e.dst_port, e.proto) else {
                return Step::Drop(DropReason::IcmpErrorUnrelated);
            };
            let Some(r) = self.ct.lookup_related(&quoted) else {
                return Step::Drop(DropReason::IcmpErrorUnrelated);
            };
            let Some(conn) = self.ct.get(r.id) else {
                return Step::Drop(DropReason::IcmpErrorUnrelated);
            };
            if !conn.verdict().allows(r.dir) {
                return Step::Drop(DropReason::CachedDeny);
            }
            if let Some(x) = conn.rewrite_for(r.dir) {
                // The error travels like a packet of the flow in `r.dir`: its outer endpoints
                // that are the flow's endpoints translate as such a packet would, and the
                // quoted packet (which went the other way) becomes that way's translation.
                let k = conn.key_for(r.dir);
                let src = if p.src == k.src_ip() {
                    x.src_ip()
                } else {
                    p.src
                };
                let dst = if p.dst == k.dst_ip() {
                    x.dst_ip()
                } else {
                    p.dst
                };
                m.error_xlate = self.error_xlates.len() as u16;
                self.error_xlates.push((src, dst, x.reversed()));
            }
            m.related = true;
            self.note(
                m,
                NodeKind::Conntrack,
                Event::ConntrackHit {
                    reply: r.dir == Direction::Reply,
                },
            );
            return Step::Next(NodeKind::Route);
        }
        // The batched lookup looked up every packet that has a key (both addresses of one
        // family) and is not handled above.
        let Some(&found) = self.ct_results[..self.ct_len].get(usize::from(m.ct_slot)) else {
            return Step::Drop(DropReason::BadAddress);
        };
        if let Some(r) = found {
            match self.ct.track(r, now, TcpFlags(m.p.tcp_flags)) {
                Tracked::Valid | Tracked::Ignored => {
                    let p = &m.p;
                    if p.fragment == Fragment::First {
                        self.frags
                            .record(p.src, p.dst, p.proto, p.frag_ident, r, now);
                    }
                    return self.established(m, r);
                }
                Tracked::Invalid => return Step::Drop(DropReason::CtInvalid),
                Tracked::Expired => {}
            }
        }
        m.new_flow = true;
        self.note(m, NodeKind::Conntrack, Event::ConntrackMiss);
        Step::Next(NodeKind::PreDnat)
    }

    /// **fragment**: a non-first fragment takes the flow its first fragment recorded (its
    /// cached verdict and NAT) and is routed like it; with no record it is dropped, so
    /// fragments never bypass policy. Next: rewrite (to a local workload), mtu, tx (to the
    /// host).
    pub(crate) fn node_fragment(&mut self, m: &mut Meta, now: u64) -> Step {
        let p = m.p;
        let Some(r) = self.frags.lookup(p.src, p.dst, p.proto, p.frag_ident, now) else {
            return Step::Drop(DropReason::FragmentNoState);
        };
        // The connection may have expired and its slot been reused: the addresses must
        // still be the flow's.
        let same = self.ct.get(r.id).is_some_and(|c| {
            let k = c.key_for(r.dir);
            k.src_ip() == p.src && k.dst_ip() == p.dst && k.proto() == p.proto
        });
        if !same {
            return Step::Drop(DropReason::FragmentNoState);
        }
        match self.established(m, r) {
            Step::Next(_) => self.node_route(m),
            other => other,
        }
    }

    #[inline]
    fn established(&mut self, m: &mut Meta, r: tortie_tables::ConnRef) -> Step {
        let Some(conn) = self.ct.get(r.id) else {
            return Step::Drop(DropReason::FragmentNoState);
        };
        if !conn.verdict().allows(r.dir) {
            return Step::Drop(DropReason::CachedDeny);
        }
        m.conn = Some(r);
        // `xlate` is clear until a flow is found: written only for NAT'd flows.
        if let Some(x) = conn.rewrite_for(r.dir) {
            m.xlate = Some(x);
        }
        self.note(
            m,
            NodeKind::Conntrack,
            Event::ConntrackHit {
                reply: r.dir == Direction::Reply,
            },
        );
        Step::Next(NodeKind::Route)
    }

    /// **pre-dnat**: for a new flow arriving on a host endpoint, its preDNAT program (a
    /// rule's Deny drops); then the 1:1 DNAT map picks the internal address of a floating IP.
    /// Next: route.
    pub(crate) fn node_pre_dnat(&mut self, m: &mut Meta) -> Step {
        if m.rx_ep != NO_EP
            && let Some(prog) = self.generation.endpoint(m.rx_ep).pre_dnat
        {
            let key = class_key(&m.p, m.p.dst);
            let d = self.eval(prog, &key);
            if d.rule_slot.is_some() {
                self.note_decision(m, NodeKind::PreDnat, d);
                if !d.allow {
                    return Step::Drop(DropReason::PreDnatDeny);
                }
                m.pre_dnat_accepted = true;
            }
        }
        if let Some(internal) = self.generation.dnat(m.p.dst) {
            m.dnat_to = Some(internal);
            self.note(m, NodeKind::PreDnat, Event::Nat);
        }
        Step::Next(NodeKind::Route)
    }

    /// The destination the route lookup uses: translated, DNAT'd, or as received.
    #[inline]
    fn route_dst(&self, m: &Meta) -> IpAddr {
        if let Some(x) = m.xlate {
            return x.dst_ip();
        }
        if let Some((_, dst, _)) = self.error_xlates.get(usize::from(m.error_xlate)) {
            return *dst;
        }
        m.dnat_to.unwrap_or(m.p.dst)
    }

    /// **route**: longest-prefix match on the destination after NAT; picks the interface
    /// and MACs. Next: policy (new flow, or untracked: its far side's program runs on every
    /// packet), rewrite (established, to a local workload), mtu (established, elsewhere; to
    /// the host only when the flow is NAT'd, so the reply to a flow the host opened to a
    /// floating IP is translated back), tx (to the host as received).
    #[inline]
    pub(crate) fn node_route(&mut self, m: &mut Meta) -> Step {
        let dst = self.route_dst(m);
        let v6 = m.p.is_ipv6();
        // Packets of a batch often share a destination (a burst of one flow, many flows to
        // one service): the previous packet's answer, with the interface, MACs and tunnel
        // it resolved to, is reused for the same address. The memo is cleared at the start
        // of every batch, so it never outlives the generation.
        let egress = match &self.route_memo {
            Some(memo) if memo.v6 == v6 && memo.dst == dst => memo.egress,
            _ => {
                let egress = resolve_egress(&self.generation, dst, v6);
                self.route_memo = Some(RouteMemo { dst, v6, egress });
                egress
            }
        };
        let e = match egress {
            Ok(e) => e,
            Err(reason) => return Step::Drop(reason),
        };
        m.egress = e;
        if m.new_flow || m.untracked {
            return Step::Next(NodeKind::Policy);
        }
        // To the host: no forwarding rewrite unless the flow is NAT'd (the kernel must see
        // the addresses it expects, such as the floating IP it opened a flow to).
        m.onward()
    }

    /// **policy**: for a new flow, the sending side's program, then the receiving side's,
    /// as `Generation::flow_programs` picks them (a workload's own programs; a host
    /// endpoint's normal programs when the host is an end of the flow, its `applyOnForward`
    /// programs when the flow is forwarded through it; nothing for a workload's ingress when
    /// the host opens the flow; nothing of the uplink's host endpoint for decapsulated
    /// IP-in-IP), then DefaultEndpointToHostAction for workload-to-host traffic; then SNAT
    /// selection (natOutgoing) and the conntrack entry that caches the verdict and the NAT.
    /// A packet a doNotTrack rule allowed passes the receiving side's program here on every
    /// packet and goes on without conntrack or NAT. Next: rewrite (to a local workload), mtu,
    /// tx (to the host).
    pub(crate) fn node_policy(&mut self, m: &mut Meta, now: u64) -> Step {
        let dst = m.dnat_to.unwrap_or(m.p.dst);
        if let Err(reason) = self.judge_flow(m, dst) {
            return Step::Drop(reason);
        }
        if m.untracked {
            // No flow to record: the next packet is judged again. No NAT either (Linux
            // NATs only tracked packets), so nothing to translate.
            return m.onward();
        }
        let g = &*self.generation;
        let snat = match m.egress.target {
            Target::Node { .. } | Target::Uplink => g.snat_for(m.p.src, dst),
            _ => None,
        };
        let nat = NatRequest {
            dnat: m.dnat_to.map(|a| (a, None)),
            snat,
        };
        let Some(&key) = self.ct_keys[..self.ct_len].get(usize::from(m.ct_slot)) else {
            return Step::Drop(DropReason::BadAddress);
        };
        let flags = TcpFlags(m.p.tcp_flags);
        let r = match self
            .ct
            .insert(key, now, flags, Verdict::ALLOW, g.policy_epoch(), nat)
        {
            Ok(r) => {
                self.counters.flows_created += 1;
                r
            }
            // An earlier packet of the same batch created the flow after this one missed
            // (node-major order), in either direction: `insert` finds it by this packet's
            // key (both directions are indexed) and this packet is accounted to it.
            Err(InsertError::Exists(r)) => return self.join_flow(m, r, now),
            // `insert` checks the TCP flags before it looks for the flow, so a packet that
            // cannot open a flow (a SYN-ACK, an ACK) may still belong to one an earlier
            // packet of the batch created: only a packet of no flow is dropped.
            Err(InsertError::NotInitial(_)) => {
                return match self.ct.lookup(&key) {
                    Some(r) => self.join_flow(m, r, now),
                    None => Step::Drop(DropReason::CtNotInitial),
                };
            }
            Err(InsertError::Full) => return Step::Drop(DropReason::CtFull),
            Err(_) => return Step::Drop(DropReason::NatFailed),
        };
        let p = &m.p;
        if p.fragment == Fragment::First {
            self.frags
                .record(p.src, p.dst, p.proto, p.frag_ident, r, now);
        }
        m.conn = Some(r);
        m.xlate = self.ct.get(r.id).and_then(|c| c.rewrite_for(r.dir));
        m.onward()
    }

    /// A new-flow packet whose flow an earlier packet of the same batch created: tracked
    /// and forwarded as a packet of that flow.
    fn join_flow(&mut self, m: &mut Meta, r: tortie_tables::ConnRef, now: u64) -> Step {
        if self.ct.track(r, now, TcpFlags(m.p.tcp_flags)) == Tracked::Invalid {
            return Step::Drop(DropReason::CtInvalid);
        }
        match self.established(m, r) {
            Step::Next(_) => m.onward(),
            other => other,
        }
    }

    /// The policy of a new (or untracked) flow towards `dst` (after DNAT): the programs
    /// `Generation::flow_programs` picks, then DefaultEndpointToHostAction. Borrows the
    /// generation in place (no `Arc` clone) and reads only the fields it needs from the
    /// packet's summary rather than copying it.
    fn judge_flow(&mut self, m: &Meta, dst: IpAddr) -> Result<(), DropReason> {
        let g = &*self.generation;
        let rx = (m.rx_ep != NO_EP).then_some(m.rx_ep);
        let arrival = Arrival {
            rx,
            decapsulated: m.decapsulated,
            untracked: m.untracked,
        };
        let mut programs = g.flow_programs(arrival, m.egress.target);
        // A packet sent IP-in-IP leaves through the tunnel (Calico's `tunl0`), which a host
        // endpoint naming the uplink does not cover: the uplink's programs do not police it.
        if m.egress.encap_to.is_some() {
            programs.to = None;
        }
        // A preDNAT Allow accepts the packet for the host endpoint it arrived on: its normal
        // or applyOnForward ingress program is skipped (Felix marks it accepted in the
        // mangle table and the filter table's host endpoint chains then let it through).
        // The pre-dnat node evaluated the program (and counted its hits) and left its answer.
        let pre_dnat_accepted = m.pre_dnat_accepted
            && !m.untracked
            && !m.decapsulated
            && rx.is_some_and(|i| g.endpoint(i).is_host_endpoint());
        if pre_dnat_accepted {
            programs.from = None;
        }
        if programs.from.is_some() || programs.to.is_some() {
            let key = class_key(&m.p, dst);
            let counters = &mut self.counters;
            for prog in [programs.from, programs.to].into_iter().flatten() {
                let d = g
                    .program(prog)
                    .evaluate(&key, &g.sets, |slot| counters.rule_hit(slot));
                if m.traced {
                    let rule = d.rule_slot.and_then(|s| g.rule_id(s));
                    self.trace.record(
                        m.serial,
                        NodeKind::Policy,
                        Event::Policy {
                            allow: d.allow,
                            rule,
                        },
                    );
                }
                if !d.allow {
                    return Err(DropReason::PolicyDeny);
                }
            }
        }
        let from_workload = rx.is_some_and(|i| g.endpoint(i).kind == EndpointKind::Workload);
        if m.egress.target == Target::Host
            && from_workload
            && g.settings.default_endpoint_to_host == HostAction::Drop
        {
            return Err(DropReason::EndpointToHost);
        }
        Ok(())
    }
}
