//! LPM: building a 100 000-route IPv4 table, random IPv4 lookups on it (single and batch),
//! and IPv6 lookups on a 100 000-route table.
//!
//! Run: `cargo bench -p tortie-tables --bench lpm`

mod common;

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tortie_tables::{Ipv4LpmBuilder, Ipv6LpmBuilder};

const ROUTES: usize = 100_000;
const PROBES: usize = 4096;

fn v4(c: &mut Criterion) {
    let routes = common::v4_prefixes(ROUTES, 11);
    let start = Instant::now();
    let builder = Ipv4LpmBuilder::from_routes(routes.iter().copied()).expect("valid routes");
    let t_insert = start.elapsed();
    let table = builder.build();
    let t_total = start.elapsed();
    eprintln!(
        "ipv4 lpm: {} routes, insert {:?}, insert+build {:?}, {} bytes ({:.1} bytes/route), {} nodes",
        table.route_count(),
        t_insert,
        t_total,
        table.memory_bytes(),
        table.memory_bytes() as f64 / table.route_count() as f64,
        table.node_count()
    );
    let mut r = common::SplitMix(12);
    let probes: Vec<Ipv4Addr> = (0..PROBES)
        .map(|_| Ipv4Addr::from(r.next_u64() as u32))
        .collect();
    // Probes that land inside installed prefixes (mostly deep /24s), the harder case.
    let inside: Vec<Ipv4Addr> = (0..PROBES)
        .map(|i| {
            Ipv4Addr::from(
                u32::from(routes[(i * 24) % ROUTES].0.addr()) | (r.next_u64() as u32 & 0xff),
            )
        })
        .collect();

    let mut g = c.benchmark_group("lpm_v4_100k");
    g.sample_size(10);
    g.bench_function("build_100k", |b| b.iter(|| black_box(&builder).build()));
    g.throughput(Throughput::Elements(PROBES as u64));
    g.sample_size(50);
    g.bench_function("lookup_random", |b| {
        b.iter(|| {
            probes.iter().fold(0u32, |acc, a| {
                acc ^ table.lookup(black_box(*a)).unwrap_or(0)
            })
        })
    });
    g.bench_function("lookup_inside_prefixes", |b| {
        b.iter(|| {
            inside.iter().fold(0u32, |acc, a| {
                acc ^ table.lookup(black_box(*a)).unwrap_or(0)
            })
        })
    });
    let mut out = vec![None; 256];
    g.bench_function("lookup_batch_256_inside", |b| {
        b.iter(|| {
            for chunk in inside.chunks(256) {
                table.lookup_batch(black_box(chunk), &mut out);
            }
            out[0]
        })
    });
    g.finish();
}

fn v6(c: &mut Criterion) {
    let routes = common::v6_prefixes(ROUTES, 21);
    let start = Instant::now();
    let table = Ipv6LpmBuilder::from_routes(routes.iter().copied())
        .expect("valid routes")
        .build();
    eprintln!(
        "ipv6 lpm: {} routes, insert+build {:?}, {} bytes ({:.1} bytes/route)",
        table.route_count(),
        start.elapsed(),
        table.memory_bytes(),
        table.memory_bytes() as f64 / table.route_count() as f64
    );
    let mut r = common::SplitMix(22);
    let inside: Vec<Ipv6Addr> = (0..PROBES)
        .map(|i| {
            Ipv6Addr::from(
                u128::from(routes[(i * 24) % ROUTES].0.addr()) | u128::from(r.next_u64()),
            )
        })
        .collect();
    let mut g = c.benchmark_group("lpm_v6_100k");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.sample_size(50);
    g.bench_function("lookup_inside_prefixes", |b| {
        b.iter(|| {
            inside.iter().fold(0u32, |acc, a| {
                acc ^ table.lookup(black_box(*a)).unwrap_or(0)
            })
        })
    });
    let mut out = vec![None; 256];
    g.bench_function("lookup_batch_256_inside", |b| {
        b.iter(|| {
            for chunk in inside.chunks(256) {
                table.lookup_batch(black_box(chunk), &mut out);
            }
            out[0]
        })
    });
    g.finish();
}

/// Calico-shaped IPv6 routes: 2 000 IPAM blocks (/122) under one /48 pool, 100 workload /128
/// routes and a default route; lookups of pod addresses inside the blocks. Without path
/// compression each lookup would walk 18 nodes; the table is small enough to stay in cache.
fn v6_calico_blocks(c: &mut Criterion) {
    let pool = 0x2001_0db8_0001u128 << 80;
    let mut b = Ipv6LpmBuilder::new();
    b.insert("::/0".parse().expect("valid"), 1)
        .expect("valid value");
    for i in 0..2000u128 {
        let block = Ipv6Addr::from(pool | (i << 6));
        b.insert(
            tortie_tables::Prefix::new(block, 122).expect("len"),
            2 + i as u32,
        )
        .expect("valid value");
    }
    for i in 0..100u128 {
        let host = Ipv6Addr::from(pool | (1 << 40) | i);
        b.insert(
            tortie_tables::Prefix::new(host, 128).expect("len"),
            5000 + i as u32,
        )
        .expect("valid value");
    }
    let table = b.build();
    eprintln!(
        "ipv6 calico-shaped: {} routes, {} bytes",
        table.route_count(),
        table.memory_bytes()
    );
    let mut r = common::SplitMix(23);
    let pods: Vec<Ipv6Addr> = (0..PROBES)
        .map(|_| Ipv6Addr::from(pool | u128::from(r.next_u64() % (2000 << 6))))
        .collect();
    let mut g = c.benchmark_group("lpm_v6_calico_2k_blocks");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.sample_size(30);
    g.bench_function("lookup", |b| {
        b.iter(|| {
            pods.iter().fold(0u32, |acc, a| {
                acc ^ table.lookup(black_box(*a)).unwrap_or(0)
            })
        })
    });
    let mut out = vec![None; 256];
    g.bench_function("lookup_batch_256", |b| {
        b.iter(|| {
            for chunk in pods.chunks(256) {
                table.lookup_batch(black_box(chunk), &mut out);
            }
            out[0]
        })
    });
    g.finish();
}

criterion_group!(benches, v4, v6, v6_calico_blocks);
criterion_main!(benches);
