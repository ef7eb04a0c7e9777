//! Pipeline throughput on one core, batches of 256 64-byte frames.
//!
//! Each iteration refreshes the 256 frames from templates (TTLs and NAT rewrites are in
//! place, so a frame cannot be reused as is) and runs one batch; `refresh_only` measures
//! the refresh alone so it can be subtracted. Each bench builds its state on first use, so a
//! filtered run (`--bench established_local_tcp`) skips the others' setup (the 1M-flow table
//! takes seconds to fill). Results and the command are recorded in `docs/perf/pipeline.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use common::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tortie_abi as abi;
use tortie_pipeline::{Frame, Generation, HEADROOM, Pipeline, PipelineConfig, TxBatches};

const BATCH: usize = 256;
const FRAME: usize = 64;
const BUF: usize = 2048;

/// Pads a frame to 64 bytes (60 + FCS on the wire).
fn frame64(mut f: Vec<u8>) -> Vec<u8> {
    assert!(
        f.len() <= FRAME,
        "template longer than 64 bytes: {}",
        f.len()
    );
    f.resize(FRAME, 0);
    f
}

struct Bench {
    pipeline: Pipeline,
    out: TxBatches,
    bufs: Vec<Vec<u8>>,
    now: u64,
}

impl Bench {
    fn new(tables: &abi::Tables, capacity: usize, sweep: usize) -> Self {
        let g = Arc::new(Generation::build(abi::Generation(1), tables).unwrap());
        let config = PipelineConfig {
            conntrack_capacity: capacity,
            hash_seed: None,
            sweep_per_batch: sweep,
            ..Default::default()
        };
        Self {
            pipeline: Pipeline::new(g, &config),
            out: TxBatches::new(),
            bufs: vec![vec![0u8; BUF]; BATCH],
            now: 1_000_000_000,
        }
    }

    /// Runs one batch of frames chosen by `pick(i)` from `templates`; returns frames sent.
    /// (The `Vec` of frame handles is the harness's; the pipeline itself does not allocate.)
    #[inline]
    fn run(
        &mut self,
        rx: u32,
        templates: &[Vec<u8>],
        mut pick: impl FnMut(usize) -> usize,
    ) -> usize {
        let mut batch = Vec::with_capacity(BATCH);
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            let t = &templates[pick(i)];
            buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
            batch.extend(Frame::new(buf, HEADROOM, t.len(), rx));
        }
        self.pipeline.process(&mut batch, self.now, &mut self.out);
        self.out.len()
    }
}

fn established(c: &mut Criterion, name: &str, tables: &abi::Tables, data: Vec<u8>, expect_if: u32) {
    let data = vec![frame64(data)];
    // Built on first use, so a filtered run skips the setup of benches it does not run.
    let mut bench: Option<Bench> = None;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(name, |bn| {
        let b = bench.get_or_insert_with(|| {
            let mut b = Bench::new(tables, 1 << 16, 64);
            // The first batch opens the flow by loose pickup (a mid-stream ACK establishes
            // it, as after a fastpath restart); the second checks it is established and
            // forwarded.
            assert_eq!(
                b.run(IF_A, &data, |_| 0),
                BATCH,
                "{name}: {:?}",
                b.pipeline.dispositions()[0]
            );
            assert_eq!(
                b.run(IF_A, &data, |_| 0),
                BATCH,
                "{name}: {:?}",
                b.pipeline.dispositions()[0]
            );
            assert_eq!(b.pipeline.counters().flows_created, 1);
            assert_eq!(
                b.out.for_interface(expect_if).len(),
                BATCH,
                "{name}: every frame goes out on {expect_if}"
            );
            b
        });
        bn.iter(|| black_box(b.run(IF_A, &data, |_| 0)))
    });
    g.finish();
}

fn bench_established(c: &mut Criterion) {
    let t = tables();
    established(
        c,
        "established_local_tcp",
        &t,
        tcp4(MAC_A, A, B, 40000, 80, "A", 64),
        IF_B,
    );
    established(
        c,
        "established_ipip_encap",
        &t,
        tcp4(MAC_A, A, REMOTE_CROSS_SUBNET, 40000, 80, "A", 64),
        UPLINK,
    );
    established(
        c,
        "established_snat",
        &t,
        tcp4(MAC_A, A, OUTSIDE, 40000, 80, "A", 64),
        UPLINK,
    );
}

/// B's ingress: 10,000 deny rules that A's traffic does not match, then an allow.
fn ten_thousand_rules() -> abi::Tables {
    let mut t = tables();
    let mut rules = Vec::with_capacity(10_001);
    for i in 0..10_000u32 {
        let len = 32 - (i % 3) as u8 * 8;
        let src = Ipv4Addr::from(
            u32::from(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8)) & abi::mask32(len),
        );
        let lo = (i % 60_000) as u16;
        rules.push(abi::Rule {
            id: abi::RuleId(1000 + i),
            action: abi::Action::Deny,
            matches: abi::RuleMatch {
                protocol: Some(if i % 2 == 0 { 6 } else { 17 }),
                src: abi::AddrMatch {
                    nets: vec![prefix(src, len)],
                    ..Default::default()
                },
                dst_ports: abi::PortMatch {
                    ranges: vec![abi::PortRange {
                        lo,
                        hi: lo + (i % 5) as u16,
                    }],
                    not_ranges: vec![],
                },
                ..Default::default()
            },
        });
    }
    rules.push(abi::Rule {
        id: abi::RuleId(999),
        action: abi::Action::Allow,
        matches: abi::RuleMatch::default(),
    });
    let p = t
        .programs
        .iter_mut()
        .find(|p| p.id == PROG_B_INGRESS)
        .unwrap();
    p.tiers = vec![abi::Tier {
        default_action: abi::TierDefault::Deny,
        policies: vec![abi::Policy { rules }],
    }];
    t
}

fn bench_new_flows(c: &mut Criterion) {
    // 65,536 distinct flows, cycled 256 per batch while the clock moves 1 s per batch: a
    // flow comes round again after 256 s, long after its 120 s SYN_SENT timeout, so every
    // packet is a conntrack miss, runs the 10,000-rule program and inserts a flow.
    // Expired flows are swept and evicted as the clock runs, so the table never fills.
    let mut state: Option<(Bench, Vec<Vec<u8>>, usize)> = None;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    fn fresh(b: &mut Bench, templates: &[Vec<u8>], round: &mut usize) -> usize {
        *round += 1;
        b.now += 1_000_000_000;
        let base = (*round * BATCH) % templates.len();
        b.run(IF_A, templates, |i| base + i)
    }
    g.bench_function("new_flows_10k_rules", |bn| {
        let (b, templates, round) = state.get_or_insert_with(|| {
            let t = ten_thousand_rules();
            let mut b = Bench::new(&t, 1 << 20, 1024);
            let templates: Vec<Vec<u8>> = (0..65_536u32)
                .map(|i| {
                    frame64(tcp4(
                        MAC_A,
                        A,
                        B,
                        1024 + (i & 0x3fff) as u16,
                        8080 + (i >> 14) as u16,
                        "S",
                        64,
                    ))
                })
                .collect();
            let mut round = 0;
            assert_eq!(
                fresh(&mut b, &templates, &mut round),
                BATCH,
                "new flows are allowed by the last rule"
            );
            (b, templates, round)
        });
        bn.iter(|| black_box(fresh(b, templates, round)))
    });
    g.finish();
}

/// 1,048,576 established flows A -> B and 64Ki templates drawn uniformly from them.
fn conntrack_1m_setup() -> (Bench, Vec<Vec<u8>>) {
    const FLOWS: usize = 1 << 20;
    let t = tables();
    let capacity: usize = std::env::var("CT_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FLOWS + FLOWS / 8);
    let mut b = Bench::new(&t, capacity, 0);
    // 1,048,576 distinct established flows A -> B: 1024 source ports x 1024 destination ports.
    let flow = |k: usize| {
        tcp4(
            MAC_A,
            A,
            B,
            1024 + (k >> 10) as u16,
            2048 + (k & 1023) as u16,
            "A",
            64,
        )
    };
    let mut created = 0;
    for chunk in 0..FLOWS / BATCH {
        let templates: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| frame64(flow(chunk * BATCH + i)))
            .collect();
        created += b.run(IF_A, &templates, |i| i);
    }
    assert_eq!(created, FLOWS);
    assert_eq!(b.pipeline.conntrack().len(), FLOWS);
    let bytes = b.pipeline.conntrack().memory_bytes() as f64 / FLOWS as f64;
    eprintln!(
        "conntrack: {FLOWS} live flows, {bytes:.1} bytes per live flow (capacity {})",
        b.pipeline.conntrack().capacity()
    );
    // Random established flows: 64Ki templates drawn uniformly from the million.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let templates: Vec<Vec<u8>> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            frame64(flow((x as usize) % FLOWS))
        })
        .collect();
    let created_before = b.pipeline.counters().flows_created;
    assert_eq!(b.run(IF_A, &templates, |i| i), BATCH);
    assert_eq!(
        b.pipeline.counters().flows_created,
        created_before,
        "random lookups hit live flows"
    );
    (b, templates)
}

fn bench_conntrack_1m(c: &mut Criterion) {
    let mut state: Option<(Bench, Vec<Vec<u8>>)> = None;
    let mut start = 0usize;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("conntrack_1m_random_established", |bn| {
        let (b, templates) = state.get_or_insert_with(conntrack_1m_setup);
        bn.iter(|| {
            start = (start + 7919 * BATCH) % templates.len();
            black_box(b.run(IF_A, templates, |i| (start + i) % 65_536))
        })
    });
    g.finish();
}

fn bench_refresh_only(c: &mut Criterion) {
    let mut bufs = vec![vec![0u8; BUF]; BATCH];
    let t = frame64(tcp4(MAC_A, A, B, 40000, 80, "A", 64));
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("refresh_only", |bn| {
        bn.iter(|| {
            let mut frames = Vec::with_capacity(BATCH);
            for buf in bufs.iter_mut() {
                buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(&t);
                frames.push(Frame::new(buf, HEADROOM, t.len(), IF_A));
            }
            black_box(frames.len())
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_refresh_only,
    bench_established,
    bench_new_flows,
    bench_conntrack_1m
);
criterion_main!(benches);
