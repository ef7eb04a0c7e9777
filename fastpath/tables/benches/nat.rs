//! NAT: SNAT port allocation and release, conntrack inserts with SNAT, and the RFC 1624
//! checksum rewrite of an IPv4 address + port.
//!
//! Run: `cargo bench -p tortie-tables --bench nat`

mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tortie_tables::checksum::{Endpoint, L4Location, rewrite_addr, rewrite_port};
use tortie_tables::{
    Conntrack, ConntrackConfig, NatRequest, PortRange, SnatConfig, SnatPorts, TcpFlags, Verdict,
    proto,
};

const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn snat(c: &mut Criterion) {
    let cfg = SnatConfig {
        addresses: vec![NODE.into()],
        port_range: PortRange::default(),
    };
    let mut g = c.benchmark_group("snat");
    g.throughput(Throughput::Elements(1));
    let mut pool = SnatPorts::new(&cfg);
    g.bench_function("allocate_release", |b| {
        b.iter(|| {
            let p = pool
                .allocate(black_box(IpAddr::V4(NODE)), proto::TCP)
                .expect("ports left");
            pool.release(IpAddr::V4(NODE), proto::TCP, black_box(p))
        })
    });

    const N: usize = 30_000; // below the 31 744 ports of the default range
    let keys: Vec<_> = common::flows(N * 2, 5)
        .into_iter()
        .filter(|k| !k.is_ipv6() && k.proto() == proto::TCP)
        .take(N)
        .collect();
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.sample_size(10);
    g.bench_function("conntrack_insert_with_snat", |b| {
        b.iter_batched_ref(
            || {
                Conntrack::new(&ConntrackConfig {
                    capacity: N,
                    hash_seed: 3,
                    snat: cfg.clone(),
                    ..Default::default()
                })
            },
            |ct| {
                for k in &keys {
                    let _ = ct.insert(
                        *k,
                        1,
                        TcpFlags(TcpFlags::SYN),
                        Verdict::ALLOW,
                        0,
                        NatRequest::snat(NODE.into()),
                    );
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn checksum(c: &mut Criterion) {
    // A 64-byte IPv4/TCP frame's IP part.
    let mut pkt = vec![0u8; 50];
    pkt[0] = 0x45;
    pkt[9] = proto::TCP;
    let l4 = L4Location {
        offset: 20,
        proto: proto::TCP,
    };
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u16;
    g.bench_function("snat_rewrite_ipv4_addr_and_port", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            rewrite_addr(
                &mut pkt,
                Endpoint::Source,
                IpAddr::V4(Ipv4Addr::from(u32::from(i))),
                Some(l4),
            )
            .expect("in bounds");
            rewrite_port(&mut pkt, Endpoint::Source, i, l4).expect("in bounds");
        })
    });
    g.finish();
}

criterion_group!(benches, snat, checksum);
criterion_main!(benches);
