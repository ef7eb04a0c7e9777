//! Classifier benchmarks on synthetic ClassBench-style rule sets (1K, 10K, 100K rules): lookup
//! rate (single key and batched), bulk build time, and one-rule delete + insert.
//!
//! The generator mimics the ClassBench mix: source/destination prefixes of assorted lengths
//! over a few hundred address blocks, exact or range ports, TCP/UDP/ICMP/any protocols. Keys
//! are drawn inside random rules so most lookups match something.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use tortie_classifier::{AddrMatch, Classifier, IpSetTable, Key4, PortMatch, PortRange, Rule};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn prefix(rng: &mut Rng) -> (u32, u8) {
    let block = (rng.below(300) as u32).wrapping_mul(0x9E37_79B9) & 0xFFFF_0000;
    let len = [0u8, 8, 16, 24, 28, 32, 32, 32][rng.below(8) as usize];
    let addr = block | (rng.next() as u32 & 0xFFFF);
    (
        addr & (u64::from(u32::MAX) << (32 - u32::from(len))) as u32,
        len,
    )
}

fn ports(rng: &mut Rng) -> PortRange {
    match rng.below(4) {
        0 => PortRange::ANY,
        1 => PortRange::new(1024, u16::MAX),
        _ => PortRange::single(rng.below(2000) as u16),
    }
}

fn rules(n: usize) -> Vec<Rule> {
    let mut rng = Rng(0x243F_6A88_85A3_08D3 ^ n as u64);
    (0..n)
        .map(|i| {
            let (s, sl) = prefix(&mut rng);
            let (d, dl) = prefix(&mut rng);
            let net = |a: u32, l: u8| {
                if l == 0 {
                    AddrMatch::any()
                } else {
                    AddrMatch::nets([IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), l))])
                }
            };
            let (sp, dp) = (ports(&mut rng), ports(&mut rng));
            Rule {
                priority: i as u32,
                action: i as u32,
                protocol: [Some(6), Some(6), Some(17), Some(1), None][rng.below(5) as usize],
                src: net(s, sl),
                dst: net(d, dl),
                src_ports: if sp == PortRange::ANY {
                    PortMatch::any()
                } else {
                    PortMatch::ranges([sp])
                },
                dst_ports: if dp == PortRange::ANY {
                    PortMatch::any()
                } else {
                    PortMatch::ranges([dp])
                },
                ..Rule::default()
            }
        })
        .collect()
}

fn keys(rules: &[Rule], n: usize) -> Vec<Key4> {
    let mut rng = Rng(0x1319_8A2E_0370_7344);
    (0..n)
        .map(|_| {
            let r = &rules[rng.below(rules.len() as u64) as usize];
            let addr = |m: &AddrMatch, rng: &mut Rng| match m.nets.first() {
                Some(IpNet::V4(n)) => {
                    u32::from(n.network()) | (rng.next() as u32 & !u32::from(n.netmask()))
                }
                _ => rng.next() as u32,
            };
            let port =
                |m: &PortMatch, rng: &mut Rng| m.ranges.first().map_or(rng.next() as u16, |r| r.lo);
            Key4 {
                src: addr(&r.src, &mut rng),
                dst: addr(&r.dst, &mut rng),
                src_port: port(&r.src_ports, &mut rng),
                dst_port: port(&r.dst_ports, &mut rng),
                proto: r.protocol.unwrap_or(6),
            }
        })
        .collect()
}

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn lookup(c: &mut Criterion) {
    let sets = IpSetTable::new();
    let mut g = c.benchmark_group("lookup");
    for n in SIZES {
        let rules = rules(n);
        let classifier = Classifier::build(&rules).unwrap();
        let ks = keys(&rules, 4096);
        g.throughput(Throughput::Elements(ks.len() as u64));
        g.bench_with_input(BenchmarkId::new("single", n), &ks, |b, ks| {
            b.iter(|| {
                ks.iter()
                    .map(|k| {
                        classifier
                            .classify4(black_box(k), &sets)
                            .map_or(0, |m| m.action)
                    })
                    .fold(0u32, u32::wrapping_add)
            })
        });
        let mut out = vec![None; ks.len()];
        g.bench_with_input(BenchmarkId::new("vector", n), &ks, |b, ks| {
            b.iter(|| {
                classifier.classify4_batch(black_box(ks), &sets, 0, &mut out);
                out[0]
            })
        });
    }
    g.finish();
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    for n in SIZES {
        let rules = rules(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &rules, |b, rules| {
            b.iter(|| Classifier::build(black_box(rules)).unwrap())
        });
    }
    g.finish();
}

fn update(c: &mut Criterion) {
    let mut g = c.benchmark_group("update");
    for n in SIZES {
        let rules = rules(n);
        let mut classifier = Classifier::build(&rules).unwrap();
        let mut rng = Rng(7);
        g.bench_function(BenchmarkId::new("delete_insert", n), |b| {
            b.iter(|| {
                let r = &rules[rng.below(rules.len() as u64) as usize];
                classifier.remove(black_box(r)).unwrap();
                classifier.insert(black_box(r)).unwrap();
            })
        });
    }
    g.finish();
}

/// The policy program of the pipeline's new-flow bench: 10,000 TCP/UDP deny rules on source
/// prefixes in 198.18.0.0/16 (/32, /24, /16) with narrow destination port ranges, then an
/// allow-all rule. The keys come from 198.19.0.0/16, so no deny rule matches and every lookup
/// probes every TCP table before it reaches the last rule: the worst case of a Calico policy
/// with many rules that a flow does not hit.
fn program_10k() -> Vec<Rule> {
    let mut rules: Vec<Rule> = (0..10_000u32)
        .map(|i| {
            let len = 32 - (i % 3) as u8 * 8;
            let src = u32::from(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8))
                & (u64::from(u32::MAX) << (32 - u32::from(len))) as u32;
            let lo = (i % 60_000) as u16;
            Rule {
                priority: i,
                action: i,
                protocol: Some(if i % 2 == 0 { 6 } else { 17 }),
                src: AddrMatch::nets([IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(src), len))]),
                dst_ports: PortMatch::ranges([PortRange::new(lo, lo + (i % 5) as u16)]),
                ..Rule::default()
            }
        })
        .collect();
    rules.push(Rule {
        priority: 10_000,
        action: 10_000,
        ..Rule::default()
    });
    rules
}

fn program(c: &mut Criterion) {
    let sets = IpSetTable::new();
    let rules = program_10k();
    let classifier = Classifier::build(&rules).unwrap();
    let ks: Vec<Key4> = (0..4096u32)
        .map(|i| Key4 {
            src: u32::from(Ipv4Addr::new(198, 19, 0, 2)),
            dst: u32::from(Ipv4Addr::new(198, 19, 0, 3)),
            src_port: 1024 + (i & 0x3fff) as u16,
            dst_port: 8080 + (i % 4) as u16,
            proto: 6,
        })
        .collect();
    assert!(
        ks.iter()
            .all(|k| classifier.classify4(k, &sets).map(|m| m.priority) == Some(10_000)),
        "only the last rule matches"
    );
    let mut g = c.benchmark_group("program");
    g.throughput(Throughput::Elements(ks.len() as u64));
    g.bench_function("calico_10k_rules_last_matches", |b| {
        b.iter(|| {
            ks.iter()
                .map(|k| {
                    classifier
                        .classify4(black_box(k), &sets)
                        .map_or(0, |m| m.action)
                })
                .fold(0u32, u32::wrapping_add)
        })
    });
    g.finish();
}

criterion_group!(benches, lookup, build, update, program);
criterion_main!(benches);
