//! Differential test: random packet sequences through the pipeline and through a plain
//! reference model (a `HashMap` conntrack, linear routes, literal policy), compared packet by
//! packet: where each goes, and for sent packets the addresses, ports, TTL and IP-in-IP
//! layout of what leaves, re-parsed with etherparse. UDP flows keep the model free of TCP
//! state-machine details (those have their own tests). SNAT ports are allocated by the
//! pipeline; the model learns a flow's port from the first packet it sees out.
//!
//! The uplink may carry a host endpoint: its normal programs police the host's own traffic
//! (deny-all or allow-all), its `applyOnForward` programs (absent, or denying some ports)
//! police forwarded traffic, and its doNotTrack program (absent, or allowing some ports)
//! sends packets on untracked: no conntrack, no NAT, but the far side's program still runs
//! on every packet. The host itself sends from the host interface, whose flows to local
//! workloads skip the workloads' ingress and whose replies from a floating IP's workload are
//! translated back. A remote workload sends through IP-in-IP from another node; its packets
//! arrive on the tunnel, so the uplink host endpoint's receiving-side programs do not apply.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use common::*;
use proptest::prelude::*;
use tortie_abi as abi;
use tortie_pipeline::{Disposition, DropReason};

#[derive(Clone, Copy, Debug)]
enum Sender {
    A,
    B,
    Outside,
    /// The node itself, from the host interface.
    Host,
    /// A workload of another node (`REMOTE_CROSS_SUBNET`), through IP-in-IP from that node.
    Remote,
}

/// The uplink's host endpoint, when there is one.
#[derive(Clone, Debug)]
struct Hep {
    /// Normal programs deny everything (else allow everything).
    deny_host: bool,
    /// `applyOnForward` ingress: absent, or denying these UDP ports.
    fwd_in: Option<Vec<u16>>,
    /// `applyOnForward` egress: absent, or denying these UDP ports.
    fwd_out: Option<Vec<u16>>,
    /// doNotTrack ingress: absent, or allowing these UDP ports (anything else continues).
    untracked: Option<Vec<u16>>,
}

#[derive(Clone, Copy, Debug)]
struct Ev {
    from: Sender,
    spoof: bool,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
    ttl: u8,
}

const DSTS: [Ipv4Addr; 8] = [
    A,
    B,
    OUTSIDE,
    REMOTE_CROSS_SUBNET,
    REMOTE_SAME_SUBNET,
    FLOATING,
    BLACKHOLED,
    NODE,
];

/// What the model expects for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Drop(DropReason),
    TimeExceeded(u32),
    /// Sent on `if_index` as (src, dst, sport, dport, ttl), possibly inside IP-in-IP to a node.
    Sent {
        if_index: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sp: u16,
        dp: u16,
        ttl: u8,
        outer: Option<Ipv4Addr>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    /// Tuple as it leaves in the original direction (after NAT); SNAT port learnt later.
    out: (Ipv4Addr, Ipv4Addr, u16, u16),
    snat_pending: bool,
}

type Tuple = (Ipv4Addr, Ipv4Addr, u16, u16);

struct Model {
    deny_a: Vec<u16>,
    deny_b: Vec<u16>,
    hep: Option<Hep>,
    /// key -> (flow index, is reply)
    index: HashMap<Tuple, (usize, bool)>,
    flows: Vec<(Tuple, Flow)>,
}

fn in_pool(a: Ipv4Addr) -> bool {
    a.octets()[..2] == [198, 19]
}

enum Route {
    Local(u32),
    Node(Ipv4Addr, bool),
    Uplink,
    Host,
    Blackhole,
}

fn route(dst: Ipv4Addr) -> Route {
    if dst == A {
        Route::Local(IF_A)
    } else if dst == B {
        Route::Local(IF_B)
    } else if dst.octets()[..3] == [198, 19, 1] && dst.octets()[3] < 64 {
        Route::Node(NODE2, false)
    } else if dst.octets()[..3] == [198, 19, 2] && dst.octets()[3] < 64 {
        Route::Node(NODE3, true)
    } else if dst.octets()[..3] == [198, 19, 9] {
        Route::Blackhole
    } else if dst == NODE {
        Route::Host
    } else {
        Route::Uplink
    }
}

impl Model {
    fn step(&mut self, e: &Ev) -> Expect {
        let (rx, own) = match e.from {
            Sender::A => (IF_A, Some(A)),
            Sender::B => (IF_B, Some(B)),
            Sender::Outside => (UPLINK, None),
            Sender::Host => (HOST_IF, None),
            Sender::Remote => (UPLINK, None),
        };
        let src = match (own, e.spoof) {
            (Some(a), false) => a,
            (Some(a), true) => {
                if a == A {
                    B
                } else {
                    A
                }
            }
            (None, _) if matches!(e.from, Sender::Host) => NODE,
            (None, _) if matches!(e.from, Sender::Remote) => REMOTE_CROSS_SUBNET,
            (None, _) => OUTSIDE,
        };
        if own.is_some() && e.spoof {
            return Expect::Drop(DropReason::Spoofed);
        }
        if e.ttl <= 1 && e.dst != NODE {
            return Expect::TimeExceeded(rx);
        }
        let untracked_allows = |h: &Hep| h.untracked.as_ref().is_some_and(|p| p.contains(&e.dp));
        if matches!(e.from, Sender::Outside) && self.hep.as_ref().is_some_and(untracked_allows) {
            return self.untracked(e, src);
        }
        let key = (src, e.dst, e.sp, e.dp);
        let (out_tuple, new) = if let Some(&(i, reply)) = self.index.get(&key) {
            let (orig, flow) = self.flows[i];
            if reply {
                // Back to the original sender, translation undone.
                ((orig.1, orig.0, orig.3, orig.2), false)
            } else {
                (flow.out, false)
            }
        } else {
            let dst = if e.dst == FLOATING { B } else { e.dst };
            ((src, dst, e.sp, e.dp), true)
        };
        let (o_src, o_dst, o_sp, o_dp) = out_tuple;
        let r = route(o_dst);
        if let Route::Blackhole = r {
            return Expect::Drop(DropReason::Blackhole);
        }
        if new {
            let from_host = matches!(e.from, Sender::Host);
            let from_uplink = matches!(e.from, Sender::Outside);
            // IP-in-IP leaves through the tunnel, which the uplink's host endpoint does not
            // cover (as Calico's `tunl0`).
            let out_uplink = matches!(r, Route::Node(_, false) | Route::Uplink);
            let denies =
                |ports: &Option<Vec<u16>>| ports.as_ref().is_some_and(|p| p.contains(&e.dp));
            // The host endpoint's programs: normal ones when the host is an end, forward
            // ones for forwarded traffic; none on the receiving side for IP-in-IP.
            let hep_denied = self.hep.as_ref().is_some_and(|h| {
                let rx_side = from_uplink
                    && match r {
                        Route::Host => h.deny_host,
                        _ => denies(&h.fwd_in),
                    };
                let tx_side = out_uplink
                    && if from_host {
                        h.deny_host
                    } else {
                        denies(&h.fwd_out)
                    };
                rx_side || tx_side
            });
            // The host's own flows to local workloads skip the workloads' ingress.
            let denied = hep_denied
                || match r {
                    Route::Local(_) if from_host => false,
                    Route::Local(IF_A) => self.deny_a.contains(&e.dp),
                    Route::Local(_) => self.deny_b.contains(&e.dp),
                    _ => false,
                };
            if denied {
                return Expect::Drop(DropReason::PolicyDeny);
            }
            if let (Route::Host, Some(_)) = (&r, own) {
                return Expect::Drop(DropReason::EndpointToHost);
            }
            let snat =
                matches!(r, Route::Node(..) | Route::Uplink) && in_pool(src) && !in_pool(o_dst);
            // A new flow whose reply tuple another flow already uses is refused, as Linux
            // conntrack refuses to confirm a clashing entry. (SNAT picks another port
            // instead; the tables do not remap ports for DNAT-only clashes, unlike Linux.)
            if !snat && self.index.contains_key(&(o_dst, o_src, o_dp, o_sp)) {
                return Expect::Drop(DropReason::NatFailed);
            }
            let flow = Flow {
                out: (if snat { NODE } else { o_src }, o_dst, o_sp, o_dp),
                snat_pending: snat,
            };
            let i = self.flows.len();
            self.flows.push((key, flow));
            self.index.insert(key, (i, false));
            if !snat {
                let out = flow.out;
                self.index.insert((out.1, out.0, out.3, out.2), (i, true));
            }
        }
        let (if_index, outer, ttl) = match r {
            Route::Local(i) => (i, None, e.ttl - 1),
            Route::Node(n, true) => (UPLINK, Some(n), e.ttl - 1),
            Route::Node(_, false) | Route::Uplink => (UPLINK, None, e.ttl - 1),
            // To the host with its TTL as received (a NAT'd reply from a floating IP's
            // workload is translated back, but delivered, not routed).
            Route::Host => (HOST_IF, None, e.ttl),
            Route::Blackhole => unreachable!(),
        };
        let (s, d, sp, dp) = if new {
            self.flows.last().unwrap().1.out
        } else {
            out_tuple
        };
        Expect::Sent {
            if_index,
            src: s,
            dst: d,
            sp,
            dp,
            ttl,
            outer,
        }
    }

    /// A packet the doNotTrack program allowed: no flow is looked up or recorded and nothing
    /// is translated (a floating IP is routed as it is); the far side's program decides.
    fn untracked(&self, e: &Ev, src: Ipv4Addr) -> Expect {
        let r = route(e.dst);
        let denies = |ports: &Option<Vec<u16>>| ports.as_ref().is_some_and(|p| p.contains(&e.dp));
        let denied = match r {
            Route::Blackhole => return Expect::Drop(DropReason::Blackhole),
            Route::Local(IF_A) => self.deny_a.contains(&e.dp),
            Route::Local(_) => self.deny_b.contains(&e.dp),
            Route::Node(_, false) | Route::Uplink => {
                self.hep.as_ref().is_some_and(|h| denies(&h.fwd_out))
            }
            Route::Node(_, true) | Route::Host => false,
        };
        if denied {
            return Expect::Drop(DropReason::PolicyDeny);
        }
        let (if_index, outer, ttl) = match r {
            Route::Local(i) => (i, None, e.ttl - 1),
            Route::Node(n, encap) => (UPLINK, encap.then_some(n), e.ttl - 1),
            Route::Uplink => (UPLINK, None, e.ttl - 1),
            Route::Host | Route::Blackhole => (HOST_IF, None, e.ttl),
        };
        Expect::Sent {
            if_index,
            src,
            dst: e.dst,
            sp: e.sp,
            dp: e.dp,
            ttl,
            outer,
        }
    }

    /// Learns the SNAT port the pipeline chose for the newest flow.
    fn learn(&mut self, sent_sp: u16) {
        if let Some((_, flow)) = self.flows.last_mut()
            && flow.snat_pending
        {
            flow.snat_pending = false;
            flow.out.2 = sent_sp;
            let out = flow.out;
            let i = self.flows.len() - 1;
            self.index.insert((out.1, out.0, out.3, out.2), (i, true));
        }
    }
}

fn tables_with(deny_a: &[u16], deny_b: &[u16], hep: Option<&Hep>) -> abi::Tables {
    let deny_prog = |id: u32, ports: &[u16]| abi::PolicyProgram {
        id: abi::ProgramId(id),
        tiers: vec![abi::Tier {
            default_action: abi::TierDefault::Deny,
            policies: vec![abi::Policy {
                rules: ports
                    .iter()
                    .enumerate()
                    .map(|(k, p)| abi::Rule {
                        id: abi::RuleId(id * 100 + k as u32),
                        action: abi::Action::Deny,
                        matches: abi::RuleMatch {
                            protocol: Some(17),
                            dst_ports: abi::PortMatch {
                                ranges: vec![abi::PortRange { lo: *p, hi: *p }],
                                not_ranges: vec![],
                            },
                            ..Default::default()
                        },
                    })
                    .chain(std::iter::once(allow_rule(id * 100 + 99)))
                    .collect(),
            }],
        }],
        profiles: vec![],
    };
    let mut t = tables();
    t.programs.push(deny_prog(20, deny_a));
    t.programs.push(deny_prog(21, deny_b));
    t.endpoints[0].ingress = Some(abi::ProgramId(20));
    t.endpoints[1].ingress = Some(abi::ProgramId(21));
    if let Some(h) = hep {
        t.programs.push(abi::PolicyProgram {
            id: abi::ProgramId(22),
            tiers: vec![],
            profiles: vec![],
        });
        let normal = abi::ProgramId(if h.deny_host { 22 } else { 1 });
        let mut forward = |id: u32, ports: &Option<Vec<u16>>| {
            ports.as_ref().map(|p| {
                t.programs.push(deny_prog(id, p));
                abi::ProgramId(id)
            })
        };
        let forward_ingress = forward(23, &h.fwd_in);
        let forward_egress = forward(24, &h.fwd_out);
        let untracked_ingress = h.untracked.as_ref().map(|ports| {
            t.programs.push(abi::PolicyProgram {
                id: abi::ProgramId(25),
                tiers: vec![abi::Tier {
                    default_action: abi::TierDefault::Pass,
                    policies: vec![abi::Policy {
                        rules: ports
                            .iter()
                            .enumerate()
                            .map(|(k, p)| abi::Rule {
                                id: abi::RuleId(2500 + k as u32),
                                action: abi::Action::Allow,
                                matches: abi::RuleMatch {
                                    protocol: Some(17),
                                    dst_ports: abi::PortMatch {
                                        ranges: vec![abi::PortRange { lo: *p, hi: *p }],
                                        not_ranges: vec![],
                                    },
                                    ..Default::default()
                                },
                            })
                            .collect(),
                    }],
                }],
                profiles: vec![],
            });
            abi::ProgramId(25)
        });
        t.endpoints.push(abi::Endpoint {
            id: abi::EndpointId(9),
            if_index: UPLINK,
            kind: abi::EndpointKind::Host,
            mac: UPLINK_MAC,
            addrs: vec![prefix(NODE, 32)],
            ingress: Some(normal),
            egress: Some(normal),
            untracked_ingress,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress,
            forward_egress,
        });
    }
    t
}

fn hep_strategy() -> impl Strategy<Value = Option<Hep>> {
    let ports = || {
        proptest::option::of(prop::collection::vec(
            prop_oneof![Just(53u16), Just(80), Just(1000), Just(1001)],
            0..2,
        ))
    };
    proptest::option::of((any::<bool>(), ports(), ports(), ports()).prop_map(
        |(deny_host, fwd_in, fwd_out, untracked)| Hep {
            deny_host,
            fwd_in,
            fwd_out,
            untracked,
        },
    ))
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        prop_oneof![
            Just(Sender::A),
            Just(Sender::B),
            Just(Sender::Outside),
            Just(Sender::Host),
            Just(Sender::Remote)
        ],
        proptest::bool::weighted(0.1),
        0usize..DSTS.len(),
        prop_oneof![Just(1000u16), Just(1001), Just(53)],
        prop_oneof![Just(53u16), Just(80), Just(1000), Just(1001)],
        prop_oneof![4 => Just(64u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(from, spoof, d, sp, dp, ttl)| Ev {
            from,
            spoof,
            dst: DSTS[d],
            sp,
            dp,
            ttl,
        })
}

/// Makes some events replies to earlier ones so established paths are exercised.
fn with_replies(mut evs: Vec<Ev>, picks: Vec<(usize, usize)>) -> Vec<Ev> {
    for (at, of) in picks {
        if evs.is_empty() {
            break;
        }
        let at = at % evs.len();
        let of = of % evs.len();
        let o = evs[of];
        let (from, dst) = match (o.dst, o.from) {
            (d, Sender::A | Sender::B) if d == A || d == B => (
                if d == A { Sender::A } else { Sender::B },
                if matches!(o.from, Sender::A) { A } else { B },
            ),
            (d, Sender::Outside) if d == A || d == B || d == FLOATING => {
                (if d == A { Sender::A } else { Sender::B }, OUTSIDE)
            }
            (d, Sender::Host) if d == A || d == B || d == FLOATING => {
                (if d == A { Sender::A } else { Sender::B }, NODE)
            }
            (d, Sender::Remote) if d == A || d == B || d == FLOATING => (
                if d == A { Sender::A } else { Sender::B },
                REMOTE_CROSS_SUBNET,
            ),
            _ => continue,
        };
        evs[at] = Ev {
            from,
            spoof: false,
            dst,
            sp: o.dp,
            dp: o.sp,
            ttl: 64,
        };
    }
    evs
}

fn frame(e: &Ev) -> (u32, Vec<u8>) {
    let (rx, mac, own) = match e.from {
        Sender::A => (IF_A, MAC_A, A),
        Sender::B => (IF_B, MAC_B, B),
        Sender::Outside => (UPLINK, GATEWAY_MAC, OUTSIDE),
        Sender::Host => (HOST_IF, [2, 0, 0, 0, 9, 9], NODE),
        Sender::Remote => (UPLINK, NODE3_MAC, REMOTE_CROSS_SUBNET),
    };
    let src = if e.spoof && (own == A || own == B) {
        if own == A { B } else { A }
    } else {
        own
    };
    let mut f = udp4(mac, src, e.dst, e.sp, e.dp, &[7; 4]);
    f[22] = e.ttl;
    fix_ipv4_checksum(&mut f);
    if matches!(e.from, Sender::Remote) {
        // Inside IP-in-IP from the remote workload's node.
        let mut outer = Vec::new();
        etherparse::PacketBuilder::ethernet2(NODE3_MAC, UPLINK_MAC)
            .ipv4(NODE3.octets(), NODE.octets(), 64)
            .write(&mut outer, etherparse::IpNumber(4), &f[14..])
            .unwrap();
        return (rx, outer);
    }
    (rx, f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn pipeline_matches_reference_model(
        deny_a in prop::collection::vec(prop_oneof![Just(53u16), Just(80), Just(1000)], 0..2),
        deny_b in prop::collection::vec(prop_oneof![Just(53u16), Just(80), Just(1001)], 0..2),
        evs in prop::collection::vec(ev(), 1..40),
        picks in prop::collection::vec((any::<usize>(), any::<usize>()), 0..15),
        hep in hep_strategy(),
    ) {
        let evs = with_replies(evs, picks);
        let mut h = Harness::new(&tables_with(&deny_a, &deny_b, hep.as_ref()));
        let mut model = Model { deny_a, deny_b, hep, index: HashMap::new(), flows: Vec::new() };
        for e in &evs {
            let want = model.step(e);
            let out = h.one(frame(e).0, frame(e).1);
            match (&want, out.disposition) {
                (Expect::Drop(r), Disposition::Drop(got)) => prop_assert_eq!(*r, got, "{:?}", e),
                (Expect::TimeExceeded(i), Disposition::Tx(got)) => {
                    prop_assert_eq!(*i, got);
                    let s = check(&out.bytes);
                    prop_assert_eq!(s.proto, 1);
                }
                (Expect::Sent { if_index, src, dst, sp, dp, ttl, outer }, Disposition::Tx(got)) => {
                    prop_assert_eq!(*if_index, got, "{:?}", e);
                    let s = check(&out.bytes);
                    let inner = match outer {
                        Some(node) => {
                            prop_assert_eq!((s.src, s.dst, s.proto), (IpAddr::V4(NODE), IpAddr::V4(*node), 4));
                            *s.inner.unwrap()
                        }
                        None => s,
                    };
                    let (osp, odp) = inner.ports.unwrap();
                    let learnt = model.flows.last().is_some_and(|f| f.1.snat_pending);
                    if learnt {
                        prop_assert!((20000..=29999).contains(&osp), "SNAT port {}", osp);
                        model.learn(osp);
                    } else {
                        prop_assert_eq!(osp, *sp, "{:?}", e);
                    }
                    prop_assert_eq!((inner.src, inner.dst, odp, inner.ttl), (IpAddr::V4(*src), IpAddr::V4(*dst), *dp, *ttl), "{:?}", e);
                }
                (w, got) => prop_assert!(false, "event {:?}: model {:?}, pipeline {:?}", e, w, got),
            }
        }
    }
}
