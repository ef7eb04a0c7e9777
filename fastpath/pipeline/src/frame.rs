//! Frames and per-interface TX batches: the pipeline's only contact with packet memory.
//!
//! # The headroom contract
//!
//! A [`Frame`] is a window (`offset..offset + len`) into a larger buffer, normally one AF_XDP
//! UMEM chunk. The pipeline rewrites frames in place and may *grow them at the front*: IP-in-IP
//! encapsulation prepends 20 bytes, and an ICMP error is built in front of the packet it
//! quotes (28 bytes for ICMPv4, 48 for ICMPv6). The AF_XDP layer therefore hands frames over
//! with [`HEADROOM`] (256, the kernel's `XDP_PACKET_HEADROOM`) bytes free before the packet;
//! the pipeline needs at least [`MIN_HEADROOM`] and drops a frame with
//! `DropReason::NoHeadroom` where it would need more than is there. Decapsulation and ND
//! replies may move the window forward or lengthen it within the buffer. After
//! [`crate::Pipeline::process`] the transmitter reads each frame's new `offset` and `len`.

/// Headroom the AF_XDP layer reserves in front of each received frame.
pub const HEADROOM: usize = 256;
/// The least headroom every pipeline rewrite fits in (ICMPv6 error: 48 bytes, rounded up).
pub const MIN_HEADROOM: usize = 64;
/// The most frames a batch may hold.
pub const MAX_BATCH: usize = 256;

/// One received frame: a window into a buffer, and the interface it arrived on.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    offset: usize,
    len: usize,
    rx_if: u32,
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at `offset` in `buf`; `None` if the window does not fit.
    pub fn new(buf: &'a mut [u8], offset: usize, len: usize, rx_if: u32) -> Option<Self> {
        let end = offset.checked_add(len)?;
        (end <= buf.len()).then_some(Self {
            buf,
            offset,
            len,
            rx_if,
        })
    }

    /// The frame's bytes (from the Ethernet header).
    pub fn data(&self) -> &[u8] {
        &self.buf[self.offset..self.offset + self.len]
    }

    /// The frame's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.offset..self.offset + self.len]
    }

    /// Start of the frame in its buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Length of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The receiving interface index.
    pub fn rx_if(&self) -> u32 {
        self.rx_if
    }

    /// Free bytes in front of the frame.
    pub fn headroom(&self) -> usize {
        self.offset
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.offset - self.len
    }

    /// The whole buffer and the window, for rewrites that move the window.
    pub(crate) fn raw(&mut self) -> (&mut [u8], usize, usize) {
        (self.buf, self.offset, self.len)
    }

    /// Moves the window; `None` (and no change) if it would leave the buffer.
    pub(crate) fn set_window(&mut self, offset: usize, len: usize) -> Option<()> {
        let end = offset.checked_add(len)?;
        if end > self.buf.len() {
            return None;
        }
        self.offset = offset;
        self.len = len;
        Some(())
    }
}

/// The most distinct interfaces one batch can transmit on.
pub const MAX_TX_INTERFACES: usize = 64;

/// Frames to transmit, grouped by interface: indices into the batch passed to
/// [`crate::Pipeline::process`]. Preallocated; [`TxBatches::clear`] keeps the memory.
#[derive(Debug)]
pub struct TxBatches {
    ifs: Vec<u32>,
    frames: Vec<Vec<u16>>,
    used: usize,
    /// The slot of the interface queued on last: consecutive frames of a batch usually
    /// leave through the same interface, and then skip the search.
    last: usize,
}

impl Default for TxBatches {
    fn default() -> Self {
        Self::new()
    }
}

impl TxBatches {
    /// Empty batches with room for [`MAX_TX_INTERFACES`] interfaces of [`MAX_BATCH`] frames.
    pub fn new() -> Self {
        Self {
            ifs: vec![0; MAX_TX_INTERFACES],
            frames: (0..MAX_TX_INTERFACES)
                .map(|_| Vec::with_capacity(MAX_BATCH))
                .collect(),
            used: 0,
            last: 0,
        }
    }

    /// Forgets every queued frame.
    pub fn clear(&mut self) {
        for q in &mut self.frames[..self.used] {
            q.clear();
        }
        self.used = 0;
        self.last = 0;
    }

    /// Queues frame `index` on `if_index`; false when the batch already spans
    /// [`MAX_TX_INTERFACES`] interfaces.
    #[inline]
    pub(crate) fn push(&mut self, if_index: u32, index: u16) -> bool {
        let slot = if self.last < self.used && self.ifs[self.last] == if_index {
            self.last
        } else {
            match self.find_or_add(if_index) {
                Some(s) => s,
                None => return false,
            }
        };
        self.last = slot;
        self.frames[slot].push(index);
        true
    }

    /// The slot of `if_index`, added if new; `None` when every slot is taken.
    fn find_or_add(&mut self, if_index: u32) -> Option<usize> {
        Some(
            match self.ifs[..self.used].iter().rposition(|&i| i == if_index) {
                Some(s) => s,
                None if self.used < MAX_TX_INTERFACES => {
                    self.ifs[self.used] = if_index;
                    self.used += 1;
                    self.used - 1
                }
                None => return None,
            },
        )
    }

    /// Each interface with the indices of the frames to send on it, in batch order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u16])> {
        self.ifs[..self.used]
            .iter()
            .copied()
            .zip(self.frames[..self.used].iter().map(Vec::as_slice))
    }

    /// Frames queued for `if_index`.
    pub fn for_interface(&self, if_index: u32) -> &[u16] {
        self.iter()
            .find(|(i, _)| *i == if_index)
            .map(|(_, f)| f)
            .unwrap_or(&[])
    }

    /// Total frames queued.
    pub fn len(&self) -> usize {
        self.frames[..self.used].iter().map(Vec::len).sum()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_window_checks() {
        let mut buf = [0u8; 100];
        assert!(Frame::new(&mut buf, 90, 11, 1).is_none());
        let mut f = Frame::new(&mut buf, 50, 20, 1).unwrap();
        assert_eq!((f.headroom(), f.tailroom()), (50, 30));
        assert!(f.set_window(90, 11).is_none());
        f.set_window(30, 40).unwrap();
        assert_eq!(f.data().len(), 40);
    }

    #[test]
    fn tx_batches_group_by_interface() {
        let mut t = TxBatches::new();
        assert!(t.push(7, 0));
        assert!(t.push(9, 1));
        assert!(t.push(7, 2));
        assert_eq!(t.for_interface(7), &[0, 2]);
        assert_eq!(t.for_interface(9), &[1]);
        assert_eq!(t.len(), 3);
        t.clear();
        assert!(t.is_empty());
        for i in 0..MAX_TX_INTERFACES as u32 {
            assert!(t.push(i, 0));
        }
        assert!(!t.push(1000, 0));
        // The last-interface shortcut does not outlive a clear.
        t.clear();
        assert!(t.push(0, 4));
        assert!(t.push(0, 5));
        assert!(t.push(3, 6));
        assert!(t.push(0, 7));
        assert_eq!(t.for_interface(0), &[4, 5, 7]);
        assert_eq!(t.for_interface(3), &[6]);
        assert_eq!(t.iter().count(), 2);
    }
}
