//! Throughput of the shared-memory ring for 64 B and 64 KiB payloads: send + receive in one
//! thread (pure copy + CRC cost), and producer and consumer on two threads with separate
//! mappings of the same file (the cross-process shape, including cache-line transfer).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tortie_ring::{Consumer, MessageKind, Producer};

const CAPACITY: u64 = 4 << 20;

fn ring_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temporary directory")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    for size in [64usize, 64 * 1024] {
        let payload = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));

        // References measured side by side: the two copies (in and out) any byte ring must
        // make, and the CRC-32 pass each side makes over the payload.
        group.bench_with_input(
            BenchmarkId::new("ref_copy_twice", size),
            &payload,
            |b, payload| {
                let mut staging = vec![0u8; size];
                let mut out = vec![0u8; size];
                b.iter(|| {
                    staging.copy_from_slice(black_box(payload));
                    out.copy_from_slice(black_box(&staging));
                    black_box(&out);
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("ref_crc32", size),
            &payload,
            |b, payload| {
                b.iter(|| black_box(tortie_ring::crc32::crc32(black_box(payload))));
            },
        );

        group.bench_with_input(
            BenchmarkId::new("same_thread", size),
            &payload,
            |b, payload| {
                let dir = ring_dir();
                let path = dir.path().join("ring");
                let mut p = Producer::create_or_open(&path, CAPACITY).unwrap();
                let mut c = Consumer::open(&path).unwrap();
                let mut buf = Vec::with_capacity(size);
                p.try_send(MessageKind::SNAPSHOT, 0, payload).unwrap();
                c.try_recv(&mut buf).unwrap().unwrap();
                b.iter(|| {
                    p.try_send(MessageKind::DELTA, 1, black_box(payload))
                        .unwrap();
                    black_box(c.try_recv(&mut buf).unwrap().unwrap());
                });
            },
        );

        group.bench_with_input(
            BenchmarkId::new("two_threads", size),
            &payload,
            |b, payload| {
                let dir = ring_dir();
                let path = dir.path().join("ring");
                let mut p = Producer::create_or_open(&path, CAPACITY).unwrap();
                let mut c = Consumer::open(&path).unwrap();
                let mut buf = Vec::with_capacity(size);
                p.try_send(MessageKind::SNAPSHOT, 0, payload).unwrap();
                c.try_recv(&mut buf).unwrap().unwrap();
                drop(p);
                b.iter_custom(|iters| {
                    let path = path.clone();
                    let payload = payload.clone();
                    let start = Instant::now();
                    let producer = std::thread::spawn(move || {
                        let mut p = Producer::create_or_open(&path, CAPACITY).unwrap();
                        p.try_send(MessageKind::SNAPSHOT, 0, &payload).unwrap();
                        for i in 0..iters {
                            while p.try_send(MessageKind::DELTA, i, &payload).is_err() {
                                std::thread::yield_now();
                            }
                        }
                    });
                    let mut got = 0;
                    while got < iters + 1 {
                        match c.try_recv(&mut buf).unwrap() {
                            Some(_) => got += 1,
                            None => std::thread::yield_now(),
                        }
                    }
                    producer.join().unwrap();
                    start.elapsed()
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
