//! A whole ring file built from fuzz input, read the way tortie-fastpath reads it: the header
//! page (with any field overwritten), records with fuzzed lengths, kinds, versions and
//! checksums (each either fixed up or left wrong), payloads that are table-format frames (their
//! FNV-1a guard fixed up or not). The consumer opens it or rejects the header, then every
//! record is delivered, skipped or reported corrupt; a delivered payload is decoded, applied to
//! the table state as the daemon applies it (snapshots first, deltas on their base) and the
//! result compiled into a pipeline generation. Never a panic, and the consumer's counters and
//! snapshot state agree with what it returned.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tortie_abi::{HEADER_LEN as FRAME_HEADER_LEN, Message as AbiMessage, State};
use tortie_pipeline::Generation;
use tortie_ring::layout::{
    Field, HEADER_LEN, LAYOUT_VERSION, MAGIC, RECORD_HEADER_LEN, RECORD_VERSION, RecordHeader,
};
use tortie_ring::{Consumer, MessageKind, RingError};

/// Header fields an input may overwrite, by index.
const FIELDS: [Field; 19] = [
    Field::Magic,
    Field::LayoutVersion,
    Field::Capacity,
    Field::HeaderLen,
    Field::Retired,
    Field::ProducerEpoch,
    Field::ProducerPid,
    Field::ConsumerEpoch,
    Field::SnapshotRequests,
    Field::Head,
    Field::SentMessages,
    Field::SentBytes,
    Field::FullEvents,
    Field::Tail,
    Field::ReceivedMessages,
    Field::CorruptRecords,
    Field::SkippedRecords,
    Field::Head,
    Field::Tail,
];

fn ring_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() {
            dir
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("tortie-fuzz-ring-{}", std::process::id()))
    })
}

/// FNV-1a as the table format computes its body guard.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fn put(file: &mut [u8], field: Field, value: u64) {
    let at = field.offset() as usize;
    file[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let capacity: u64 = 64 << (input.u8() % 9);
    let header_flags = input.u8();
    let tail = input.u64();
    let mut file = vec![0u8; (HEADER_LEN + capacity) as usize];
    put(&mut file, Field::Magic, MAGIC);
    put(&mut file, Field::LayoutVersion, LAYOUT_VERSION);
    put(&mut file, Field::Capacity, capacity);
    put(&mut file, Field::HeaderLen, HEADER_LEN);
    put(&mut file, Field::ProducerEpoch, u64::from(input.u8()));
    put(&mut file, Field::Tail, tail);

    // Records, laid end to end from the tail, wrapping around the data area.
    let mask = capacity - 1;
    let mut position = tail;
    let mut written = 0u64;
    while !input.0.is_empty() {
        let flags = input.u8();
        let kind = if flags & 0x08 != 0 {
            input.u16()
        } else if flags & 0x10 != 0 {
            MessageKind::DELTA.0
        } else {
            MessageKind::SNAPSHOT.0
        };
        let generation = u64::from(input.u8());
        let len = usize::from(input.u16()) % 4096;
        let mut payload = input.take(len).to_vec();
        if flags & 0x02 != 0 && payload.len() >= FRAME_HEADER_LEN {
            let guard = fnv1a(&payload[FRAME_HEADER_LEN..]);
            payload[12..16].copy_from_slice(&guard.to_le_bytes());
        }
        let mut header = RecordHeader {
            payload_len: payload.len() as u32,
            kind,
            version: if flags & 0x04 != 0 {
                RECORD_VERSION ^ 1
            } else {
                RECORD_VERSION
            },
            generation,
            epoch: 0,
            crc: 0,
        };
        header.crc = header.checksum(&payload);
        if flags & 0x01 != 0 {
            header.crc ^= 1;
        }
        if flags & 0x20 != 0 {
            header.payload_len = header.payload_len.wrapping_add(u32::from(input.u8()));
        }
        let span = (RECORD_HEADER_LEN + payload.len()).next_multiple_of(8) as u64;
        if written + span > capacity {
            break;
        }
        let mut record = header.encode().to_vec();
        record.extend_from_slice(&payload);
        record.resize(span as usize, 0);
        for (i, b) in record.iter().enumerate() {
            let at = (position.wrapping_add(i as u64) & mask) + HEADER_LEN;
            file[at as usize] = *b;
        }
        position = position.wrapping_add(span);
        written += span;
    }
    put(&mut file, Field::Head, position);

    // Header damage: one field overwritten, or the file cut or grown.
    let raw_header = header_flags & 0x01 != 0;
    if raw_header {
        let field = FIELDS[usize::from(header_flags >> 3) % FIELDS.len()];
        put(&mut file, field, input.u64() ^ u64::from(header_flags));
    }
    if header_flags & 0x02 != 0 {
        let new_len = file.len() as i64 + i64::from(header_flags as i8) * 8;
        file.resize(new_len.max(0) as usize, 0);
    }

    let path = ring_path();
    std::fs::write(path, &file).expect("write the ring file");
    let opened = Consumer::open(path);
    // The mapping outlives the name: unlink now so no run leaves files behind.
    let _ = std::fs::remove_file(path);
    let mut consumer = match opened {
        Ok(c) => c,
        Err(RingError::BadHeader { .. }) => {
            assert!(
                raw_header || header_flags & 0x02 != 0,
                "an intact header was rejected"
            );
            return;
        }
        Err(e) => panic!("unexpected open error: {e}"),
    };
    assert!(consumer.awaiting_snapshot());

    let mut state = State::default();
    let mut have_snapshot = false;
    let mut corrupt = 0u64;
    let mut buf = Vec::new();
    for _ in 0..64 {
        match consumer.try_recv(&mut buf) {
            Ok(None) => break,
            Ok(Some(m)) => {
                assert_eq!(m.len, buf.len());
                let Ok((msg, used)) = AbiMessage::decode(&buf) else {
                    continue;
                };
                assert!(used <= buf.len());
                let is_snapshot = matches!(msg, AbiMessage::Snapshot { .. });
                if !is_snapshot && !have_snapshot {
                    continue;
                }
                if state.apply(msg).is_ok() {
                    have_snapshot |= is_snapshot;
                    let _ = Generation::build(state.generation, &state.tables);
                }
            }
            Err(RingError::Corrupt { .. }) => {
                corrupt += 1;
                assert!(consumer.awaiting_snapshot());
            }
            Err(RingError::Retired) => break,
            Err(e) => panic!("unexpected receive error: {e}"),
        }
    }
    if !raw_header {
        assert_eq!(consumer.stats().corrupt_records, corrupt);
    }
});
