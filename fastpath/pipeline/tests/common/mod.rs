//! A test topology, a frame builder and an etherparse-based checker of output frames.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tortie_abi::*;
use tortie_pipeline::{
    Disposition, Frame, Generation, HEADROOM, Pipeline, PipelineConfig, TxBatches,
};

pub const UPLINK: u32 = 1;
pub const HOST_IF: u32 = 2;
pub const IF_A: u32 = 10;
pub const IF_B: u32 = 11;
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
pub const UPLINK_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const GATEWAY_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0xfe];
pub const NODE2_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
pub const NODE3_MAC: [u8; 6] = [2, 0, 0, 0, 3, 3];
pub const GW: [u8; 6] = [0xee; 6];

pub const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const NODE2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const NODE3: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 3);
pub const A: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
pub const B: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 3);
pub const REMOTE_SAME_SUBNET: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 5);
pub const REMOTE_CROSS_SUBNET: Ipv4Addr = Ipv4Addr::new(198, 19, 2, 5);
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 9);
pub const FLOATING: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
pub const BLACKHOLED: Ipv4Addr = Ipv4Addr::new(198, 19, 9, 9);
pub const NODE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
pub const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 3);
pub const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 9);

pub const PROG_ALLOW: ProgramId = ProgramId(1);
pub const PROG_B_INGRESS: ProgramId = ProgramId(2);
pub const RULE_DENY_23: RuleId = RuleId(100);
pub const RULE_ALLOW_ALL: RuleId = RuleId(101);

pub fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

pub fn prefix(a: impl Into<IpAddr>, len: u8) -> Prefix {
    Prefix::new(a.into(), len).unwrap()
}

pub fn allow_rule(id: u32) -> Rule {
    Rule {
        id: RuleId(id),
        action: Action::Allow,
        matches: RuleMatch::default(),
    }
}

fn workload(
    id: u32,
    if_index: u32,
    mac: MacAddr,
    addrs: Vec<Prefix>,
    ingress: Option<ProgramId>,
) -> Endpoint {
    Endpoint {
        id: EndpointId(id),
        if_index,
        kind: EndpointKind::Workload,
        mac,
        addrs,
        ingress,
        egress: Some(PROG_ALLOW),
        untracked_ingress: None,
        untracked_egress: None,
        pre_dnat: None,
        forward_ingress: None,
        forward_egress: None,
    }
}

/// Node 198.18.0.1/24 with workloads A (if 10) and B (if 11) in pool 198.19.0.0/16, node 2
/// in the same subnet, node 3 across subnets, CrossSubnet IP-in-IP, natOutgoing for the pool,
/// a floating IP for B, and B's ingress denying TCP port 23.
pub fn tables() -> Tables {
    let b_ingress = PolicyProgram {
        id: PROG_B_INGRESS,
        tiers: vec![Tier {
            default_action: TierDefault::Deny,
            policies: vec![Policy {
                rules: vec![
                    Rule {
                        id: RULE_DENY_23,
                        action: Action::Deny,
                        matches: RuleMatch {
                            protocol: Some(6),
                            dst_ports: PortMatch {
                                ranges: vec![PortRange { lo: 23, hi: 23 }],
                                not_ranges: vec![],
                            },
                            ..RuleMatch::default()
                        },
                    },
                    Rule {
                        id: RULE_ALLOW_ALL,
                        action: Action::Allow,
                        matches: RuleMatch::default(),
                    },
                ],
            }],
        }],
        profiles: vec![],
    };
    let allow = PolicyProgram {
        id: PROG_ALLOW,
        tiers: vec![],
        profiles: vec![Policy {
            rules: vec![allow_rule(1)],
        }],
    };
    Tables {
        settings: Settings {
            mtu: 1500,
            default_endpoint_to_host: HostAction::Drop,
            ipip_mode: IpipMode::CrossSubnet,
            node_v4: Some(SubnetAddr {
                addr: v4(NODE),
                subnet_len: 24,
            }),
            node_v6: Some(SubnetAddr {
                addr: IpAddr::V6(NODE6),
                subnet_len: 64,
            }),
            uplink_if: UPLINK,
            uplink_mac: UPLINK_MAC,
            gateway_mac: GATEWAY_MAC,
            host_if: HOST_IF,
            ..Settings::default()
        },
        endpoints: vec![
            workload(
                1,
                IF_A,
                MAC_A,
                vec![prefix(A, 32), prefix(A6, 128)],
                Some(PROG_ALLOW),
            ),
            workload(
                2,
                IF_B,
                MAC_B,
                vec![prefix(B, 32), prefix(B6, 128)],
                Some(PROG_B_INGRESS),
            ),
        ],
        programs: vec![allow, b_ingress],
        ip_sets: vec![],
        routes: vec![
            Route {
                prefix: prefix(A, 32),
                target: RouteTarget::Local(EndpointId(1)),
            },
            Route {
                prefix: prefix(B, 32),
                target: RouteTarget::Local(EndpointId(2)),
            },
            Route {
                prefix: prefix(A6, 128),
                target: RouteTarget::Local(EndpointId(1)),
            },
            Route {
                prefix: prefix(B6, 128),
                target: RouteTarget::Local(EndpointId(2)),
            },
            Route {
                prefix: prefix(Ipv4Addr::new(198, 19, 1, 0), 26),
                target: RouteTarget::Node {
                    node: NodeId(2),
                    encap: None,
                },
            },
            Route {
                prefix: prefix(Ipv4Addr::new(198, 19, 2, 0), 26),
                target: RouteTarget::Node {
                    node: NodeId(3),
                    encap: None,
                },
            },
            Route {
                prefix: prefix(Ipv4Addr::new(198, 19, 9, 0), 24),
                target: RouteTarget::Blackhole,
            },
            Route {
                prefix: prefix(NODE, 32),
                target: RouteTarget::Host,
            },
            Route {
                prefix: prefix(Ipv4Addr::UNSPECIFIED, 0),
                target: RouteTarget::Uplink,
            },
            Route {
                prefix: prefix(Ipv6Addr::UNSPECIFIED, 0),
                target: RouteTarget::Uplink,
            },
        ],
        nat: Nat {
            dnat: vec![DnatEntry {
                external: v4(FLOATING),
                internal: v4(B),
            }],
            snat_pools: vec![
                prefix(Ipv4Addr::new(198, 19, 0, 0), 16),
                prefix(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64),
            ],
            all_pools: vec![
                prefix(Ipv4Addr::new(198, 19, 0, 0), 16),
                prefix(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64),
            ],
            snat_v4: Some(v4(NODE)),
            snat_v6: Some(IpAddr::V6(NODE6)),
            port_lo: 20000,
            port_hi: 29999,
        },
        nodes: vec![
            Node {
                id: NodeId(2),
                addr: v4(NODE2),
                mac: NODE2_MAC,
                tunnel_allowed: vec![v4(NODE2)],
            },
            Node {
                id: NodeId(3),
                addr: v4(NODE3),
                mac: NODE3_MAC,
                tunnel_allowed: vec![v4(NODE3)],
            },
        ],
    }
}

/// A pipeline and frame buffers.
pub struct Harness {
    pub pipeline: Pipeline,
    pub out: TxBatches,
    pub now: u64,
}

/// What came out for one input frame.
#[derive(Debug, Clone)]
pub struct Out {
    pub disposition: Disposition,
    pub bytes: Vec<u8>,
}

impl Out {
    pub fn tx_if(&self) -> Option<u32> {
        match self.disposition {
            Disposition::Tx(i) => Some(i),
            Disposition::Drop(_) => None,
        }
    }
}

impl Harness {
    pub fn new(t: &Tables) -> Self {
        let g = Arc::new(Generation::build(Generation(1), t).unwrap());
        let config = PipelineConfig {
            conntrack_capacity: 4096,
            hash_seed: Some(7),
            ..PipelineConfig::default()
        };
        Self {
            pipeline: Pipeline::new(g, &config),
            out: TxBatches::new(),
            now: 1_000_000_000,
        }
    }

    pub fn standard() -> Self {
        Self::new(&tables())
    }

    /// Sends frames (rx interface, bytes) as one batch.
    pub fn send(&mut self, frames: &[(u32, Vec<u8>)]) -> Vec<Out> {
        let mut bufs: Vec<Vec<u8>> = frames
            .iter()
            .map(|(_, b)| {
                let mut buf = vec![0u8; HEADROOM + b.len().max(64) + 256];
                buf[HEADROOM..HEADROOM + b.len()].copy_from_slice(b);
                buf
            })
            .collect();
        let mut batch: Vec<Frame<'_>> = bufs
            .iter_mut()
            .zip(frames)
            .map(|(buf, (rx, b))| Frame::new(buf, HEADROOM, b.len(), *rx).unwrap())
            .collect();
        let drops_before = self.pipeline.counters().total_drops();
        let n = self.pipeline.process(&mut batch, self.now, &mut self.out);
        assert_eq!(n, frames.len());
        let d = self.pipeline.dispositions().to_vec();
        let tx = d.iter().filter(|x| matches!(x, Disposition::Tx(_))).count();
        assert_eq!(tx, self.out.len(), "tx batches disagree with dispositions");
        assert_eq!(
            self.pipeline.counters().total_drops() - drops_before,
            (n - tx) as u64,
            "every frame is sent or counted"
        );
        for (if_index, idx) in self.out.iter() {
            for i in idx {
                assert_eq!(d[usize::from(*i)], Disposition::Tx(if_index));
            }
        }
        d.into_iter()
            .zip(batch.iter())
            .map(|(disposition, f)| Out {
                disposition,
                bytes: f.data().to_vec(),
            })
            .collect()
    }

    pub fn one(&mut self, rx: u32, bytes: Vec<u8>) -> Out {
        self.send(&[(rx, bytes)]).pop().unwrap()
    }
}

pub fn tcp4(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
    flags: &str,
    ttl: u8,
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(src_mac, GW)
        .ipv4(src.octets(), dst.octets(), ttl)
        .tcp(sp, dp, 1000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, &[0xab; 6]).unwrap();
    v
}

pub fn udp4(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sp, dp)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn tcp6(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sp: u16,
    dp: u16,
    flags: &str,
    hops: u8,
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(src_mac, GW)
        .ipv6(src.octets(), dst.octets(), hops)
        .tcp(sp, dp, 1000, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(1),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, &[0xcd; 10]).unwrap();
    v
}

/// Sets the IPv4 DF flag of an untagged frame and fixes the header checksum.
pub fn set_df(f: &mut [u8]) {
    f[20] |= 0x40;
    fix_ipv4_checksum(f);
}

pub fn fix_ipv4_checksum(f: &mut [u8]) {
    f[24] = 0;
    f[25] = 0;
    let ihl = usize::from(f[14] & 0xf) * 4;
    let c = tortie_wire::checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// What the checker saw in an IP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub proto: u8,
    pub ports: Option<(u16, u16)>,
    /// For IP-in-IP: the inner packet.
    pub inner: Option<Box<Seen>>,
}

/// Re-parses a frame with etherparse and checks every length and checksum.
pub fn check(frame: &[u8]) -> Seen {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse accepts the frame");
    let eth = match s.link.clone().unwrap() {
        etherparse::LinkSlice::Ethernet2(e) => e,
        other => panic!("unexpected link {other:?}"),
    };
    let mut seen = check_ip(s);
    seen.src_mac = eth.source();
    seen.dst_mac = eth.destination();
    seen
}

fn check_ip(s: SlicedPacket<'_>) -> Seen {
    let net = s.net.clone().expect("an IP packet");
    let (src, dst, ttl, proto, payload, pseudo4, pseudo6) = match &net {
        NetSlice::Ipv4(ip) => {
            let h = ip.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                IpAddr::V4(h.source.into()),
                IpAddr::V4(h.destination.into()),
                h.time_to_live,
                h.protocol.0,
                ip.payload().payload,
                Some((h.source, h.destination)),
                None,
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header().to_header();
            (
                IpAddr::V6(h.source.into()),
                IpAddr::V6(h.destination.into()),
                h.hop_limit,
                ip.payload().ip_number.0,
                ip.payload().payload,
                None,
                Some((h.source, h.destination)),
            )
        }
        _ => panic!("not IP"),
    };
    let mut seen = Seen {
        src_mac: [0; 6],
        dst_mac: [0; 6],
        src,
        dst,
        ttl,
        proto,
        ports: None,
        inner: None,
    };
    if proto == 4 {
        let inner = SlicedPacket::from_ip(payload).expect("inner packet parses");
        seen.inner = Some(Box::new(check_ip(inner)));
        return seen;
    }
    match s.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = match (pseudo4, pseudo6) {
                (Some((a, b)), _) => t.calc_checksum_ipv4(a, b).unwrap(),
                (_, Some((a, b))) => t.calc_checksum_ipv6(a, b).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(t.checksum(), c, "TCP checksum");
            seen.ports = Some((t.source_port(), t.destination_port()));
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            if let Some((a, b)) = pseudo4 {
                if h.checksum != 0 {
                    let c = h.calc_checksum_ipv4_raw(a, b, u.payload()).unwrap();
                    assert_eq!(h.checksum, c, "UDP checksum");
                }
            } else if let Some((a, b)) = pseudo6 {
                assert_eq!(
                    h.checksum,
                    h.calc_checksum_ipv6_raw(a, b, u.payload()).unwrap(),
                    "UDP checksum"
                );
            }
            seen.ports = Some((h.source_port, h.destination_port));
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let h = i.header();
            assert_eq!(
                h.checksum,
                h.icmp_type.calc_checksum(i.payload()),
                "ICMP checksum"
            );
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let h = i.header();
            let (a, b) = pseudo6.unwrap();
            assert_eq!(
                h.checksum,
                h.icmp_type.calc_checksum(a, b, i.payload()).unwrap(),
                "ICMPv6 checksum"
            );
        }
        _ => {}
    }
    seen
}
