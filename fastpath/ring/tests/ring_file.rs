//! Behaviour of the ring through real mapped files: corruption written into the file,
//! restarts of either end, a full ring, and files that are not (or no longer) the ring.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tortie_ring::{Consumer, CorruptReason, MessageKind, Producer, RingError, SendError};

const HEADER_LEN: u64 = 4096;

fn poke(path: &Path, file_offset: u64, byte: u8) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&[byte], file_offset).unwrap();
}

#[test]
fn corrupt_record_in_the_mapping_is_counted_and_the_ring_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut p = Producer::create_or_open(&path, 4096).unwrap();
    let mut c = Consumer::open(&path).unwrap();
    let mut buf = Vec::new();
    p.try_send(MessageKind::SNAPSHOT, 1, &[1; 40]).unwrap(); // record at 0, span 64
    p.try_send(MessageKind::DELTA, 2, &[2; 40]).unwrap(); // record at 64
    p.try_send(MessageKind::DELTA, 3, &[3; 40]).unwrap();
    assert!(p.snapshot_due());
    assert_eq!(c.try_recv(&mut buf).unwrap().unwrap().generation, 1);
    // Scribble on the second record's payload through the file, as a stray write would.
    poke(&path, HEADER_LEN + 64 + 24 + 5, 0xff);
    match c.try_recv(&mut buf) {
        Err(RingError::Corrupt {
            position: 64,
            reason: CorruptReason::Checksum { .. },
        }) => {}
        other => panic!("expected a checksum error at 64, got {other:?}"),
    }
    assert_eq!(c.stats().corrupt_records, 1);
    assert!(c.awaiting_snapshot());
    assert!(p.snapshot_due(), "the consumer asked for a snapshot");
    p.try_send(MessageKind::SNAPSHOT, 4, &[4; 10]).unwrap();
    p.try_send(MessageKind::DELTA, 5, &[5; 10]).unwrap();
    assert_eq!(c.try_recv(&mut buf).unwrap().unwrap().generation, 4);
    assert_eq!(c.try_recv(&mut buf).unwrap().unwrap().generation, 5);
    assert_eq!(buf, [5; 10]);

    // A length field pointing past the published bytes: a truncated record.
    p.try_send(MessageKind::DELTA, 6, &[6; 10]).unwrap();
    assert_eq!(c.stats().sent_messages, 6);
    let record_offset = 64 * 3 + 40 * 2; // three 64-byte records, two 40-byte records
    poke(&path, HEADER_LEN + record_offset + 2, 0x7f);
    assert!(matches!(
        c.try_recv(&mut buf),
        Err(RingError::Corrupt {
            reason: CorruptReason::Truncated { .. },
            ..
        })
    ));
    assert_eq!(c.stats().corrupt_records, 2);
}

#[test]
fn producer_restart_is_detected_and_the_new_snapshot_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut p1 = Producer::create_or_open(&path, 8192).unwrap();
    assert_eq!(p1.epoch(), 1);
    let mut c = Consumer::open(&path).unwrap();
    let mut buf = Vec::new();
    p1.try_send(MessageKind::SNAPSHOT, 7, b"gen 7").unwrap();
    assert_eq!(c.try_recv(&mut buf).unwrap().unwrap().generation, 7);
    drop(p1); // control goes down; the consumer sees nothing new and keeps generation 7
    assert!(c.try_recv(&mut buf).unwrap().is_none());
    assert!(!c.take_producer_restarted());

    let mut p2 = Producer::create_or_open(&path, 8192).unwrap();
    assert_eq!(p2.epoch(), 2, "same file, new producer epoch");
    assert!(
        p2.snapshot_due(),
        "a restarted producer owes a full snapshot"
    );
    p2.try_send(MessageKind::SNAPSHOT, 8, b"gen 8").unwrap();
    let m = c.try_recv(&mut buf).unwrap().unwrap();
    assert!(c.take_producer_restarted());
    assert_eq!(
        (m.kind, m.generation, m.producer_epoch),
        (MessageKind::SNAPSHOT, 8, 2)
    );
}

#[test]
fn consumer_restart_is_detected_and_re_fed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut p = Producer::create_or_open(&path, 8192).unwrap();
    let c1 = Consumer::open(&path).unwrap();
    assert!(p.snapshot_due());
    assert!(!p.snapshot_due());
    drop(c1); // the fastpath dies
    p.try_send(MessageKind::DELTA, 2, b"delta for the dead consumer")
        .unwrap();
    let mut c2 = Consumer::open(&path).unwrap();
    assert_eq!(c2.stats().consumer_epoch, 2);
    assert!(p.snapshot_due(), "the producer sees the new consumer");
    p.try_send(MessageKind::SNAPSHOT, 3, b"full tables")
        .unwrap();
    let mut buf = Vec::new();
    let m = c2.try_recv(&mut buf).unwrap().unwrap();
    assert_eq!((m.kind, m.generation), (MessageKind::SNAPSHOT, 3));
    assert_eq!(c2.stats().skipped_records, 1, "the stale delta was skipped");
}

#[test]
fn full_ring_returns_full_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let mut p = Producer::create_or_open(&path, 4096).unwrap();
    let _c = Consumer::open(&path).unwrap();
    let start = Instant::now();
    let mut sent = 0u64;
    let err = loop {
        match p.try_send(MessageKind::DELTA, sent, &[0; 1000]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 10);
    };
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(sent, 4, "4 records of 1024 bytes");
    assert_eq!(
        err,
        SendError::Full {
            needed: 1024,
            free: 0
        }
    );
    assert_eq!(p.stats().full_events, 1);
    assert!(matches!(
        p.try_send(MessageKind::DELTA, 0, &[0; 5000]),
        Err(SendError::TooLarge { .. })
    ));
}

#[test]
fn foreign_files_are_rejected_by_the_consumer_and_replaced_by_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    assert!(matches!(
        Consumer::open(&path),
        Err(RingError::Io { op: "open", .. })
    ));
    std::fs::write(&path, vec![0x41; 8192]).unwrap();
    match Consumer::open(&path) {
        Err(RingError::BadHeader {
            field: "magic",
            offset: 0,
            ..
        }) => {}
        other => panic!("expected a bad magic, got {other:?}"),
    }
    let mut p = Producer::create_or_open(&path, 4096).unwrap();
    let mut c = Consumer::open(&path).unwrap();
    p.try_send(MessageKind::SNAPSHOT, 1, b"x").unwrap();
    assert!(c.try_recv(&mut Vec::new()).unwrap().is_some());
    assert!(matches!(
        Producer::create_or_open(&path, 1000),
        Err(RingError::InvalidCapacity { capacity: 1000 })
    ));
}

#[test]
fn a_resized_ring_retires_the_old_file_and_the_consumer_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let _p1 = Producer::create_or_open(&path, 4096).unwrap();
    let mut c = Consumer::open(&path).unwrap();
    let mut buf = Vec::new();
    assert!(c.try_recv(&mut buf).unwrap().is_none());
    let mut p2 = Producer::create_or_open(&path, 16384).unwrap();
    assert!(matches!(c.try_recv(&mut buf), Err(RingError::Retired)));
    let mut c = Consumer::open(&path).unwrap();
    p2.try_send(MessageKind::SNAPSHOT, 1, &[9; 5000]).unwrap();
    assert_eq!(c.try_recv(&mut buf).unwrap().unwrap().len, 5000);
}
