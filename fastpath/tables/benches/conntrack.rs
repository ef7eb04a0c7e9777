//! Conntrack: random lookups on a table of 1 million live connections (ours vs. a plain
//! `hashbrown::HashMap` with 96-byte payloads, the size of the entry before it shrank to 64
//! bytes, kept so that figures stay comparable across versions), batch lookups, and insert
//! rate.
//!
//! Run: `cargo bench -p tortie-tables --bench conntrack`

mod common;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tortie_tables::{ConnRef, Conntrack, ConntrackConfig, FlowKey, NatRequest, TcpFlags, Verdict};

const LIVE: usize = 1_000_000;
const PROBES: usize = 4096;

fn filled(keys: &[FlowKey]) -> Conntrack {
    let mut ct = Conntrack::new(&ConntrackConfig {
        capacity: keys.len(),
        hash_seed: 7,
        ..Default::default()
    });
    for k in keys {
        ct.insert(
            *k,
            1,
            TcpFlags(TcpFlags::SYN),
            Verdict::ALLOW,
            0,
            NatRequest::NONE,
        )
        .expect("capacity");
    }
    ct
}

fn lookups(c: &mut Criterion) {
    let keys = common::flows(LIVE, 1);
    let ct = filled(&keys);
    eprintln!(
        "conntrack: {} live, {} bytes total, {:.1} bytes/entry",
        ct.len(),
        ct.memory_bytes(),
        ct.memory_bytes() as f64 / ct.capacity() as f64
    );
    // Random probes, half original and half reply direction.
    let mut r = common::SplitMix(9);
    let probes: Vec<FlowKey> = (0..PROBES)
        .map(|i| {
            let k = keys[(r.next_u64() % LIVE as u64) as usize];
            if i % 2 == 0 { k } else { k.reversed() }
        })
        .collect();

    let mut g = c.benchmark_group("conntrack_1M");
    g.throughput(Throughput::Elements(PROBES as u64));
    g.bench_function("lookup", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for k in &probes {
                hits += usize::from(ct.lookup(black_box(k)).is_some());
            }
            hits
        })
    });
    let mut out: Vec<Option<ConnRef>> = vec![None; 256];
    g.bench_function("lookup_batch_256", |b| {
        b.iter(|| {
            for chunk in probes.chunks(256) {
                ct.lookup_batch(black_box(chunk), &mut out);
            }
            out[0]
        })
    });
    // The same batch lookup over random live keys drawn from all 1M connections, a new
    // batch per iteration (the 4096 probes above fit in the caches after one pass; these do
    // not, as in a pipeline serving a million flows): every lookup misses the caches.
    let mut r = common::SplitMix(11);
    let wide: Vec<FlowKey> = (0..LIVE)
        .map(|i| {
            let k = keys[(r.next_u64() % LIVE as u64) as usize];
            if i % 2 == 0 { k } else { k.reversed() }
        })
        .collect();
    let mut at = 0usize;
    g.throughput(Throughput::Elements(256));
    g.bench_function("lookup_batch_256_uncached", |b| {
        b.iter(|| {
            at = (at + 256) % (LIVE - 256);
            ct.lookup_batch(black_box(&wide[at..at + 256]), &mut out);
            out[0]
        })
    });
    g.throughput(Throughput::Elements(PROBES as u64));
    // Reference: hashbrown with the same keys and 96-byte payloads (the old entry size),
    // original direction only
    // (a second insert per reply key would double its memory).
    let mut map: hashbrown::HashMap<FlowKey, [u64; 12]> = hashbrown::HashMap::with_capacity(LIVE);
    for k in &keys {
        map.insert(*k, [1; 12]);
    }
    let orig_probes: Vec<FlowKey> = probes
        .iter()
        .enumerate()
        .map(|(i, k)| if i % 2 == 0 { *k } else { k.reversed() })
        .collect();
    eprintln!(
        "hashbrown reference: {:.1} bytes/entry ({} B slots)",
        map.allocation_size() as f64 / LIVE as f64,
        std::mem::size_of::<(FlowKey, [u64; 12])>()
    );
    g.bench_function("hashbrown_reference_lookup", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for k in &orig_probes {
                hits += usize::from(map.get(black_box(k)).is_some());
            }
            hits
        })
    });
    g.finish();
}

fn inserts(c: &mut Criterion) {
    const N: usize = 100_000;
    let keys = common::flows(N, 3);
    let mut g = c.benchmark_group("conntrack_insert");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("insert_100k_into_empty", |b| {
        b.iter_batched_ref(
            || {
                Conntrack::new(&ConntrackConfig {
                    capacity: N,
                    hash_seed: 5,
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
                        NatRequest::NONE,
                    );
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("churn_lookup_then_insert_or_remove", |b| {
        // Half the keys live; each step looks a key up and removes it if live, inserts it if
        // not, so the table stays half full while entries and index slots are recycled.
        let mut ct = Conntrack::new(&ConntrackConfig {
            capacity: N,
            hash_seed: 5,
            ..Default::default()
        });
        for k in keys.iter().step_by(2) {
            let _ = ct.insert(
                *k,
                1,
                TcpFlags(TcpFlags::SYN),
                Verdict::ALLOW,
                0,
                NatRequest::NONE,
            );
        }
        let mut i = 0usize;
        b.iter(|| {
            let k = keys[i % N];
            match ct.lookup(&k) {
                Some(r) => {
                    ct.remove(r.id);
                }
                None => {
                    let _ = ct.insert(
                        k,
                        1,
                        TcpFlags(TcpFlags::SYN),
                        Verdict::ALLOW,
                        0,
                        NatRequest::NONE,
                    );
                }
            }
            i += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, lookups, inserts);
criterion_main!(benches);
