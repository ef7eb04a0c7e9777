//! The producer side of the protocol, over any [`Region`].

use crate::MessageKind;
use crate::cursor::Cursor;
use crate::error::SendError;
use crate::layout::{Field, RECORD_HEADER_LEN, RECORD_VERSION, RecordHeader};
use crate::region::Region;

/// Producer protocol state. The producer is the only writer of the head, the data area and
/// the producer counters, so it keeps its own copy of the head and never re-reads it.
pub struct Writer<R: Region> {
    region: R,
    cursor: Cursor,
    head: u64,
    epoch: u64,
    seen_consumer_epoch: u64,
    seen_snapshot_requests: u64,
    snapshot_due: bool,
}

impl<R: Region> Writer<R> {
    /// Takes over the producer role of an initialised region: bumps the producer epoch so
    /// the consumer sees a restart, and resumes from the head stored in the header (records
    /// a dead producer half-wrote were never published and get overwritten).
    ///
    /// # Panics
    /// If the region's capacity is not a valid [`Cursor`] capacity (callers validate first).
    pub fn attach(region: R) -> Self {
        let cursor = Cursor::new(region.capacity()).expect("capacity validated by the caller");
        let epoch = region.add(Field::ProducerEpoch, 1).wrapping_add(1);
        region.store(Field::ProducerPid, u64::from(std::process::id()));
        let head = region.load(Field::Head);
        Self {
            seen_consumer_epoch: region.load(Field::ConsumerEpoch),
            seen_snapshot_requests: region.load(Field::SnapshotRequests),
            region,
            cursor,
            head,
            epoch,
            snapshot_due: true,
        }
    }

    /// This producer's epoch (1 for the first producer of a file).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The region, for counters and tests.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Writes one record if it fits; never blocks.
    pub fn try_send(
        &mut self,
        kind: MessageKind,
        generation: u64,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let max = self.cursor.max_payload();
        let too_large = SendError::TooLarge {
            len: payload.len(),
            max,
        };
        let span = self.cursor.record_span(payload.len()).ok_or(too_large)?;
        let payload_len = u32::try_from(payload.len()).map_err(|_| too_large)?;
        // Acquire pairs with the consumer's Release store of the tail: once we see the
        // tail past a record, the consumer has finished copying it out and we may reuse it.
        let tail = self.region.load(Field::Tail);
        let free = self.cursor.free(self.head, tail).unwrap_or(0);
        if span > free {
            self.region.add(Field::FullEvents, 1);
            self.snapshot_due = true;
            return Err(SendError::Full { needed: span, free });
        }
        let mut header = RecordHeader {
            payload_len,
            kind: kind.0,
            version: RECORD_VERSION,
            generation,
            epoch: self.epoch as u32,
            crc: 0,
        };
        header.crc = header.checksum(payload);
        self.copy_in(self.head, &header.encode());
        self.copy_in(self.head.wrapping_add(RECORD_HEADER_LEN as u64), payload);
        self.head = self.head.wrapping_add(span);
        // Release publishes the record bytes written above before the new head.
        self.region.store(Field::Head, self.head);
        self.region.add(Field::SentMessages, 1);
        self.region.add(Field::SentBytes, u64::from(payload_len));
        Ok(())
    }

    fn copy_in(&self, position: u64, bytes: &[u8]) {
        let mut done = 0;
        for seg in self.cursor.split(position, bytes.len()) {
            if seg.len > 0 {
                self.region
                    .write_data(seg.offset, &bytes[done..done + seg.len]);
                done += seg.len;
            }
        }
    }

    /// Whether the consumer needs a full snapshot: true after this producer attached, after a
    /// `Full` refusal (a delta was lost), after the consumer restarted, or after it reported
    /// lost sync. Reading it clears it; send a snapshot when it returns true (and if that
    /// send fails with `Full`, it becomes true again).
    pub fn snapshot_due(&mut self) -> bool {
        let consumer_epoch = self.region.load(Field::ConsumerEpoch);
        let requests = self.region.load(Field::SnapshotRequests);
        if consumer_epoch != self.seen_consumer_epoch || requests != self.seen_snapshot_requests {
            self.seen_consumer_epoch = consumer_epoch;
            self.seen_snapshot_requests = requests;
            self.snapshot_due = true;
        }
        std::mem::take(&mut self.snapshot_due)
    }
}
