//! Batches of arbitrary frames through the whole pipeline on a small topology: every frame
//! ends transmitted or counted as a drop, and every transmitted IP frame decodes again.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use tortie_abi::*;
use tortie_pipeline::{
    Disposition, Frame, Generation, HEADROOM, Pipeline, PipelineConfig, TxBatches,
};

fn p(a: IpAddr, len: u8) -> Prefix {
    Prefix::new(a, len).expect("canonical prefix")
}

fn generation() -> Arc<Generation> {
    static G: OnceLock<Arc<Generation>> = OnceLock::new();
    G.get_or_init(|| {
        let a = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 3));
        let a6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));
        let allow = PolicyProgram {
            id: ProgramId(1),
            tiers: vec![Tier {
                default_action: TierDefault::Pass,
                policies: vec![Policy {
                    rules: vec![
                        Rule {
                            id: RuleId(1),
                            action: Action::Log,
                            matches: RuleMatch {
                                protocol: Some(17),
                                ..Default::default()
                            },
                        },
                        Rule {
                            id: RuleId(2),
                            action: Action::Deny,
                            matches: RuleMatch {
                                protocol: Some(6),
                                dst_ports: PortMatch {
                                    ranges: vec![PortRange { lo: 23, hi: 23 }],
                                    not_ranges: vec![],
                                },
                                ..Default::default()
                            },
                        },
                    ],
                }],
            }],
            profiles: vec![Policy {
                rules: vec![Rule {
                    id: RuleId(3),
                    action: Action::Allow,
                    matches: RuleMatch::default(),
                }],
            }],
        };
        let ep = |id, if_index, addrs: Vec<Prefix>| Endpoint {
            id: EndpointId(id),
            if_index,
            kind: EndpointKind::Workload,
            mac: [2, 0, 0, 0, 0, id as u8],
            addrs,
            ingress: Some(ProgramId(1)),
            egress: Some(ProgramId(1)),
            untracked_ingress: None,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress: None,
            forward_egress: None,
        };
        let node = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let tables = Tables {
            settings: Settings {
                node_v4: Some(SubnetAddr {
                    addr: node,
                    subnet_len: 24,
                }),
                node_v6: Some(SubnetAddr {
                    addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                    subnet_len: 64,
                }),
                ipip_mode: IpipMode::CrossSubnet,
                mtu: 1400,
                uplink_if: 1,
                host_if: 2,
                ..Settings::default()
            },
            endpoints: vec![
                ep(1, 10, vec![p(a, 32), p(a6, 128)]),
                ep(2, 11, vec![p(b, 32)]),
            ],
            programs: vec![allow],
            ip_sets: vec![],
            routes: vec![
                Route {
                    prefix: p(a, 32),
                    target: RouteTarget::Local(EndpointId(1)),
                },
                Route {
                    prefix: p(b, 32),
                    target: RouteTarget::Local(EndpointId(2)),
                },
                Route {
                    prefix: p(a6, 128),
                    target: RouteTarget::Local(EndpointId(1)),
                },
                Route {
                    prefix: p(IpAddr::V4(Ipv4Addr::new(198, 19, 2, 0)), 26),
                    target: RouteTarget::Node {
                        node: NodeId(3),
                        encap: None,
                    },
                },
                Route {
                    prefix: p(node, 32),
                    target: RouteTarget::Host,
                },
                Route {
                    prefix: p(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                    target: RouteTarget::Uplink,
                },
                Route {
                    prefix: p(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
                    target: RouteTarget::Uplink,
                },
            ],
            nat: Nat {
                dnat: vec![DnatEntry {
                    external: IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)),
                    internal: b,
                }],
                snat_pools: vec![p(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0)), 16)],
                all_pools: vec![p(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0)), 16)],
                snat_v4: Some(node),
                ..Nat::default()
            },
            nodes: vec![Node {
                id: NodeId(3),
                addr: IpAddr::V4(Ipv4Addr::new(198, 18, 5, 3)),
                mac: [2; 6],
                tunnel_allowed: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 5, 3))],
            }],
        };
        Arc::new(Generation::build(Generation(1), &tables).expect("topology compiles"))
    })
    .clone()
}

const IFS: [u32; 5] = [1, 2, 10, 11, 99];

fuzz_target!(|data: &[u8]| {
    let mut pipeline = Pipeline::new(
        generation(),
        &PipelineConfig {
            conntrack_capacity: 256,
            hash_seed: Some(1),
            ..Default::default()
        },
    );
    let mut out = TxBatches::new();
    // Input: repeated [rx interface selector, length, headroom selector, bytes...]; two
    // batches run so the second can hit flows the first created.
    let mut bufs = Vec::new();
    let mut meta = Vec::new();
    let mut rest = data;
    while let [sel, len, head, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let headroom = if head & 1 == 0 {
            HEADROOM
        } else {
            usize::from(*head) % 64
        };
        let mut buf = vec![0u8; headroom + len + 64];
        buf[headroom..headroom + len].copy_from_slice(&tail[..len]);
        bufs.push(buf);
        meta.push((IFS[usize::from(*sel) % IFS.len()], headroom, len));
        rest = &tail[len..];
        if bufs.len() == 64 {
            break;
        }
    }
    for round in 0..2 {
        let mut copies = bufs.clone();
        let mut batch: Vec<Frame<'_>> = copies
            .iter_mut()
            .zip(&meta)
            .filter_map(|(b, (rx, h, l))| Frame::new(b, *h, *l, *rx))
            .collect();
        let before = pipeline.counters().total_drops();
        let n = pipeline.process(&mut batch, 1_000_000_000 + round, &mut out);
        let sent = pipeline
            .dispositions()
            .iter()
            .filter(|d| matches!(d, Disposition::Tx(_)))
            .count();
        assert_eq!(sent, out.len());
        assert_eq!(
            pipeline.counters().total_drops() - before,
            (n - sent) as u64
        );
        for (i, d) in pipeline.dispositions().iter().enumerate() {
            if let Disposition::Tx(_) = d {
                let f = batch[i].data();
                // The host interface receives frames as they came; everything else the
                // pipeline forwarded or built must decode.
                if !matches!(d, Disposition::Tx(2))
                    && f.len() >= 14
                    && matches!(u16::from_be_bytes([f[12], f[13]]), 0x0800 | 0x86dd)
                {
                    tortie_wire::parse_frame(f).expect("transmitted frame decodes");
                }
            }
        }
    }
});
