//! The consumer side of the protocol, over any [`Region`].

use std::time::{Duration, Instant};

use crate::cursor::Cursor;
use crate::error::{CorruptReason, RingError};
use crate::layout::{Field, RECORD_HEADER_LEN, RECORD_VERSION, RecordHeader};
use crate::rate_limit::RateLimit;
use crate::region::Region;
use crate::{Message, MessageKind};

/// Consumer protocol state. The consumer is the only writer of the tail and the consumer
/// counters, so it keeps its own copy of the tail.
pub struct Reader<R: Region> {
    region: R,
    cursor: Cursor,
    tail: u64,
    seen_producer_epoch: u64,
    awaiting_snapshot: bool,
    producer_restarted: bool,
    log_gate: RateLimit,
}

impl<R: Region> Reader<R> {
    /// Takes over the consumer role: bumps the consumer epoch (the producer sees it and
    /// sends a snapshot) and starts in the awaiting-snapshot state. Unread records stay in
    /// the ring, so a snapshot already queued is still delivered; deltas before it are
    /// skipped. Inconsistent indices are repaired by discarding everything published.
    ///
    /// # Panics
    /// If the region's capacity is not a valid [`Cursor`] capacity (callers validate first).
    pub fn attach(region: R) -> Self {
        let cursor = Cursor::new(region.capacity()).expect("capacity validated by the caller");
        region.add(Field::ConsumerEpoch, 1);
        let head = region.load(Field::Head);
        let mut tail = region.load(Field::Tail);
        if cursor.used(head, tail).is_none() {
            tail = head;
            region.store(Field::Tail, tail);
        }
        Self {
            seen_producer_epoch: region.load(Field::ProducerEpoch),
            region,
            cursor,
            tail,
            awaiting_snapshot: true,
            producer_restarted: false,
            log_gate: RateLimit::new(Duration::from_secs(1)),
        }
    }

    /// The region, for counters and tests.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Whether deltas are being skipped until the next snapshot.
    pub fn awaiting_snapshot(&self) -> bool {
        self.awaiting_snapshot
    }

    /// True once after a new producer attached since the last call.
    pub fn take_producer_restarted(&mut self) -> bool {
        std::mem::take(&mut self.producer_restarted)
    }

    /// Receives the next deliverable message into `buf` (cleared first), skipping deltas
    /// while a snapshot is awaited. `Ok(None)` when nothing is published.
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<Message>, RingError> {
        let epoch = self.region.load(Field::ProducerEpoch);
        if epoch != self.seen_producer_epoch {
            self.seen_producer_epoch = epoch;
            self.producer_restarted = true;
            self.awaiting_snapshot = true;
        }
        // Each pass consumes at least one aligned record, so this ends within capacity / 8
        // passes even if every record is skipped.
        loop {
            // Acquire pairs with the producer's Release store of the head: the record bytes
            // up to it are visible once we see it.
            let head = self.region.load(Field::Head);
            let position = self.tail;
            let Some(available) = self.cursor.used(head, position) else {
                return Err(self.resync(
                    position,
                    CorruptReason::Indices {
                        head,
                        tail: position,
                    },
                ));
            };
            if available == 0 {
                if self.region.load(Field::Retired) != 0 {
                    return Err(RingError::Retired);
                }
                return Ok(None);
            }
            let truncated = |needed| CorruptReason::Truncated { needed, available };
            if available < RECORD_HEADER_LEN as u64 {
                return Err(self.resync(position, truncated(RECORD_HEADER_LEN as u64)));
            }
            let mut raw = [0u8; RECORD_HEADER_LEN];
            self.copy_out(position, &mut raw);
            let header = RecordHeader::decode(&raw);
            if header.version != RECORD_VERSION {
                let reason = CorruptReason::Version {
                    found: header.version,
                    expected: RECORD_VERSION,
                };
                return Err(self.resync(position, reason));
            }
            let span = match self.cursor.record_span(header.payload_len as usize) {
                Some(span) if span <= available => span,
                _ => {
                    let needed = u64::from(header.payload_len) + RECORD_HEADER_LEN as u64;
                    return Err(self.resync(position, truncated(needed)));
                }
            };
            // Copy first, validate the private copy: the shared bytes are never read twice.
            buf.clear();
            buf.resize(header.payload_len as usize, 0);
            self.copy_out(position.wrapping_add(RECORD_HEADER_LEN as u64), buf);
            let computed = header.checksum(buf);
            if computed != header.crc {
                let reason = CorruptReason::Checksum {
                    stored: header.crc,
                    computed,
                };
                return Err(self.resync(position, reason));
            }
            self.tail = position.wrapping_add(span);
            // Release: our copies out of the record happen before the producer may reuse it.
            self.region.store(Field::Tail, self.tail);
            let kind = MessageKind(header.kind);
            if self.awaiting_snapshot && kind != MessageKind::SNAPSHOT {
                self.region.add(Field::SkippedRecords, 1);
                continue;
            }
            if kind == MessageKind::SNAPSHOT {
                self.awaiting_snapshot = false;
            }
            self.region.add(Field::ReceivedMessages, 1);
            return Ok(Some(Message {
                kind,
                generation: header.generation,
                producer_epoch: header.epoch,
                len: header.payload_len as usize,
            }));
        }
    }

    fn copy_out(&self, position: u64, dst: &mut [u8]) {
        let mut done = 0;
        for seg in self.cursor.split(position, dst.len()) {
            if seg.len > 0 {
                self.region
                    .read_data(seg.offset, &mut dst[done..done + seg.len]);
                done += seg.len;
            }
        }
    }

    /// Lost sync: count it, log it (rate-limited), drop everything published, ask the
    /// producer for a snapshot and skip deltas until it arrives.
    fn resync(&mut self, position: u64, reason: CorruptReason) -> RingError {
        self.region.add(Field::CorruptRecords, 1);
        let head = self.region.load(Field::Head);
        self.tail = head;
        self.region.store(Field::Tail, head);
        self.awaiting_snapshot = true;
        self.region.add(Field::SnapshotRequests, 1);
        if let Some(suppressed) = self.log_gate.admit(Instant::now()) {
            tracing::warn!(position, %reason, suppressed, "corrupt ring record; resynchronising");
        }
        RingError::Corrupt { position, reason }
    }
}

#[cfg(test)]
mod tests;
