//! A producer and a consumer in two processes stream 100 000 messages through a small ring
//! (wrapping it hundreds of times); every payload is checked byte for byte and no message
//! is lost, duplicated or reordered.
//!
//! The producer is this same test binary, re-run with `CHILD_ENV` naming the ring file.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tortie_ring::{Consumer, MessageKind, Producer};

const CHILD_ENV: &str = "TORTIE_RING_TEST_PRODUCER_PATH";
const MESSAGES: u64 = 100_000;
const CAPACITY: u64 = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(60);

/// The payload of message `seq`: its sequence number, then bytes derived from it, of a
/// length that varies from 8 to 519 bytes.
fn payload(seq: u64) -> Vec<u8> {
    let len = 8 + (seq.wrapping_mul(7919) % 512) as usize;
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((8..len).map(|i| (seq as usize ^ i.wrapping_mul(131)) as u8));
    p
}

/// Kills the child by PID if the test fails before it exits.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
#[ignore = "producer role, run as a child process by two_processes_stream_100k_messages"]
fn producer_role() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut p = Producer::create_or_open(&path, CAPACITY).expect("producer opens ring");
    let start = Instant::now();
    for seq in 0..=MESSAGES {
        let kind = if seq == 0 {
            MessageKind::SNAPSHOT
        } else {
            MessageKind::DELTA
        };
        let data = payload(seq);
        while p.try_send(kind, seq, &data).is_err() {
            assert!(
                start.elapsed() < DEADLINE,
                "consumer stalled at message {seq}"
            );
            std::thread::yield_now();
        }
    }
}

#[test]
fn two_processes_stream_100k_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ring");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "producer_role",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .spawn()
        .expect("spawn producer process");
    let mut child = ChildGuard(child);
    let start = Instant::now();
    let mut consumer = loop {
        match Consumer::open(&path) {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "ring never appeared: {e}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let mut buf = Vec::new();
    let mut expected = 0u64;
    while expected <= MESSAGES {
        assert!(
            start.elapsed() < DEADLINE,
            "stalled waiting for message {expected}"
        );
        match consumer.try_recv(&mut buf).expect("no corrupt records") {
            Some(m) => {
                assert_eq!(
                    m.generation, expected,
                    "lost, duplicated or reordered message"
                );
                assert_eq!(buf, payload(expected), "payload of message {expected}");
                expected += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    assert!(
        consumer.try_recv(&mut buf).unwrap().is_none(),
        "nothing beyond the last message"
    );
    let status = child.0.wait().unwrap();
    assert!(status.success(), "producer process failed: {status}");
    let stats = consumer.stats();
    assert_eq!(stats.sent_messages, MESSAGES + 1);
    assert_eq!(stats.received_messages, MESSAGES + 1);
    assert_eq!(stats.corrupt_records, 0);
    assert_eq!(stats.skipped_records, 0);
    assert!(
        stats.sent_bytes > 100 * CAPACITY,
        "the ring wrapped many times"
    );
}
