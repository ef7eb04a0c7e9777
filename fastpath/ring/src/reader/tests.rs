//! Protocol tests over a heap region: a model-based property test against a `VecDeque`, and
//! corruption, restart and full-ring cases.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::Reader;
use crate::MessageKind;
use crate::error::{CorruptReason, RingError, SendError};
use crate::layout::{Field, RECORD_HEADER_LEN};
use crate::region::Region;
use crate::region::heap::HeapRegion;
use crate::writer::Writer;

fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Recv,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (0usize..700).prop_map(Op::Send),
            3 => Just(Op::Recv),
        ],
        1..300,
    )
}

fn span(len: usize) -> u64 {
    (len as u64 + RECORD_HEADER_LEN as u64).div_ceil(8) * 8
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random interleavings of sends and receives of random sizes (wrapping many times round
    /// a 1 KiB ring, starting from a head near the u64 wrap) deliver exactly what a queue
    /// model predicts, and `Full` exactly when the model says there is no room.
    #[test]
    fn behaves_like_a_queue(ops in ops(), start in prop_oneof![Just(0u64), Just(u64::MAX - 600)]) {
        let region = HeapRegion::new(1024);
        region.store(Field::Head, start);
        region.store(Field::Tail, start);
        let mut w = Writer::attach(&region);
        let mut r = Reader::attach(&region);
        let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut used = 0u64;
        let mut seq = 0u64;
        let mut snapshot_sent = false;
        let mut buf = Vec::new();
        for op in ops {
            match op {
                Op::Send(len) => {
                    seq += 1;
                    // The first message is a snapshot so the reader delivers everything.
                    let kind = if snapshot_sent { MessageKind::DELTA } else { MessageKind::SNAPSHOT };
                    let data = payload(seq, len);
                    let fits = used + span(len) <= 1024;
                    match w.try_send(kind, seq, &data) {
                        Ok(()) => {
                            prop_assert!(fits);
                            snapshot_sent = true;
                            used += span(len);
                            model.push_back((seq, data));
                        }
                        Err(SendError::Full { .. }) => prop_assert!(!fits),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Recv => {
                    let got = r.try_recv(&mut buf).unwrap();
                    match model.pop_front() {
                        Some((s, data)) => {
                            let m = got.expect("model has a message");
                            prop_assert_eq!(m.generation, s);
                            prop_assert_eq!(m.len, data.len());
                            prop_assert_eq!(&buf, &data);
                            used -= span(data.len());
                        }
                        None => prop_assert!(got.is_none()),
                    }
                }
            }
        }
        prop_assert_eq!(region.load(Field::CorruptRecords), 0);
        prop_assert_eq!(region.load(Field::SkippedRecords), 0);
    }
}

#[test]
fn full_ring_refuses_without_blocking_and_marks_a_snapshot_due() {
    let region = HeapRegion::new(256);
    let mut w = Writer::attach(&region);
    assert!(w.snapshot_due(), "a new producer owes a snapshot");
    assert!(!w.snapshot_due());
    let mut sent = 0;
    let err = loop {
        match w.try_send(MessageKind::DELTA, sent, &[0u8; 40]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100);
    };
    assert_eq!(sent, 4, "256 / 64-byte records");
    assert_eq!(
        err,
        SendError::Full {
            needed: 64,
            free: 0
        }
    );
    assert_eq!(region.load(Field::FullEvents), 1);
    assert!(
        w.snapshot_due(),
        "a refused delta means the consumer needs a snapshot"
    );
    let max = 256 - RECORD_HEADER_LEN as u64;
    assert_eq!(
        w.try_send(MessageKind::DELTA, 0, &[0u8; 300]),
        Err(SendError::TooLarge { len: 300, max })
    );
}

#[test]
fn corrupt_record_is_counted_and_the_reader_recovers_at_the_next_snapshot() {
    let region = HeapRegion::new(4096);
    let mut w = Writer::attach(&region);
    let mut r = Reader::attach(&region);
    let mut buf = Vec::new();
    w.try_send(MessageKind::SNAPSHOT, 1, b"snap-1").unwrap();
    w.try_send(MessageKind::DELTA, 2, b"delta-2").unwrap();
    w.try_send(MessageKind::DELTA, 3, b"delta-3").unwrap();
    assert!(w.snapshot_due());
    assert_eq!(r.try_recv(&mut buf).unwrap().unwrap().generation, 1);
    // Flip a payload byte of the record at offset 32 (delta-2).
    region.poke(32 + RECORD_HEADER_LEN as u64, b'X');
    let err = r.try_recv(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        RingError::Corrupt {
            position: 32,
            reason: CorruptReason::Checksum { .. }
        }
    ));
    assert_eq!(region.load(Field::CorruptRecords), 1);
    assert!(
        r.try_recv(&mut buf).unwrap().is_none(),
        "the rest was discarded"
    );
    assert!(w.snapshot_due(), "the producer sees the request");
    w.try_send(MessageKind::DELTA, 4, b"delta-4").unwrap();
    w.try_send(MessageKind::SNAPSHOT, 5, b"snap-5").unwrap();
    w.try_send(MessageKind::DELTA, 6, b"delta-6").unwrap();
    assert_eq!(r.try_recv(&mut buf).unwrap().unwrap().generation, 5);
    assert_eq!(buf, b"snap-5");
    assert_eq!(r.try_recv(&mut buf).unwrap().unwrap().generation, 6);
    assert_eq!(region.load(Field::SkippedRecords), 1, "delta-4 skipped");
}

#[test]
fn truncated_and_bad_version_records_are_corrupt() {
    let region = HeapRegion::new(4096);
    let mut w = Writer::attach(&region);
    let mut r = Reader::attach(&region);
    let mut buf = Vec::new();
    w.try_send(MessageKind::SNAPSHOT, 1, b"abcdefgh").unwrap();
    // Length field claims more than is published.
    region.poke(1, 0x10);
    assert!(matches!(
        r.try_recv(&mut buf),
        Err(RingError::Corrupt {
            reason: CorruptReason::Truncated { .. },
            ..
        })
    ));
    w.try_send(MessageKind::SNAPSHOT, 2, b"abcdefgh").unwrap();
    region.poke(32 + 6, 9);
    assert!(matches!(
        r.try_recv(&mut buf),
        Err(RingError::Corrupt {
            reason: CorruptReason::Version { found: 9, .. },
            ..
        })
    ));
    // Head published past a partial header.
    region.store(Field::Head, region.load(Field::Head) + 8);
    assert!(matches!(
        r.try_recv(&mut buf),
        Err(RingError::Corrupt {
            reason: CorruptReason::Truncated {
                needed: 24,
                available: 8
            },
            ..
        })
    ));
    region.store(Field::Head, 1 << 40);
    assert!(matches!(
        r.try_recv(&mut buf),
        Err(RingError::Corrupt {
            reason: CorruptReason::Indices { .. },
            ..
        })
    ));
    assert_eq!(region.load(Field::CorruptRecords), 4);
}

#[test]
fn producer_restart_is_seen_and_old_deltas_are_skipped() {
    let region = HeapRegion::new(4096);
    let mut w1 = Writer::attach(&region);
    let mut r = Reader::attach(&region);
    let mut buf = Vec::new();
    w1.try_send(MessageKind::SNAPSHOT, 1, b"s1").unwrap();
    assert_eq!(r.try_recv(&mut buf).unwrap().unwrap().producer_epoch, 1);
    assert!(!r.take_producer_restarted());
    w1.try_send(MessageKind::DELTA, 2, b"d2").unwrap();
    // The first producer dies here (no destructor: its records simply stay in the ring).
    let mut w2 = Writer::attach(&region);
    assert_eq!(w2.epoch(), 2);
    assert!(w2.snapshot_due());
    w2.try_send(MessageKind::SNAPSHOT, 10, b"s10").unwrap();
    let m = r.try_recv(&mut buf).unwrap().unwrap();
    assert!(r.take_producer_restarted());
    assert_eq!(
        (m.generation, m.producer_epoch, m.kind),
        (10, 2, MessageKind::SNAPSHOT)
    );
    assert_eq!(
        region.load(Field::SkippedRecords),
        1,
        "the old producer's delta"
    );
}

#[test]
fn consumer_restart_is_seen_by_the_producer() {
    let region = HeapRegion::new(4096);
    let mut w = Writer::attach(&region);
    let r1 = Reader::attach(&region);
    assert!(w.snapshot_due());
    assert!(!w.snapshot_due());
    let _ = r1; // the first consumer dies
    let mut r2 = Reader::attach(&region);
    assert!(r2.awaiting_snapshot());
    assert!(w.snapshot_due(), "new consumer epoch");
    let mut buf = Vec::new();
    w.try_send(MessageKind::DELTA, 1, b"d").unwrap();
    assert!(
        r2.try_recv(&mut buf).unwrap().is_none(),
        "deltas before the snapshot are skipped"
    );
}
