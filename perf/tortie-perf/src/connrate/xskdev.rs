//! A smoltcp [`Device`] over one AF_XDP socket, so the connection-rate end hosts send and
//! receive without the kernel's stack: smoltcp works on bare IP packets (`Medium::Ip`) and
//! this device adds and strips an Ethernet header with fixed MACs (the topology's neighbours
//! are permanent, so no ARP is needed). Received frames are copied out of the UMEM (at most
//! a few hundred bytes each: TCP handshakes and one-byte payloads) and their frames recycled
//! at once; frames to send are written straight into UMEM frames and submitted in batches by
//! [`XskIpDevice::flush`].
//!
//! The socket's XDP program redirects every frame of its queue to it, so the kernel in that
//! namespace never sees the test connections (and cannot answer them with resets).

use std::time::Duration;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use tortie_xsk::{DescBatch, FramePool, Port, PortConfig, Umem, UmemSpec, XskError};

/// Ethernet header length.
const ETH_HDR: usize = 14;
/// EtherType of IPv4.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
/// IP MTU offered to smoltcp.
const MTU: usize = 1500;
/// Frames moved per batch.
const BATCH: usize = 64;

/// Frames seen and sent by one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStats {
    /// IPv4 frames to our MAC handed to smoltcp.
    pub rx: u64,
    /// Frames ignored (another MAC, not IPv4, runt).
    pub rx_ignored: u64,
    /// Frames submitted.
    pub tx: u64,
    /// Packets dropped because no UMEM frame was free.
    pub tx_no_frame: u64,
}

/// The sending half: everything a transmit token needs.
struct Side {
    umem: Umem,
    pool: FramePool,
    port: Port,
    pending: DescBatch,
    header: [u8; ETH_HDR],
    stats: DevStats,
    /// Frames on the TX ring not yet completed.
    in_flight: u64,
}

impl Side {
    /// Submit pending frames and take back completed ones. Copy-mode AF_XDP sends only
    /// inside a `sendto`, so while frames sit on the TX ring it kicks the kernel even when
    /// the ring's wakeup flag is clear: a frame left there would wait for the next trial.
    fn flush(&mut self) -> Result<(), XskError> {
        // Bounded: the TX ring takes a batch per call and has room after completions.
        for _ in 0..8 {
            if self.pending.is_empty() {
                break;
            }
            self.in_flight += self.port.tx_batch(&mut self.pending)? as u64;
            self.in_flight = self
                .in_flight
                .saturating_sub(self.port.reap_completions(&mut self.pool) as u64);
        }
        if self.in_flight > 0 {
            self.port.kick_tx()?;
        }
        self.in_flight = self
            .in_flight
            .saturating_sub(self.port.reap_completions(&mut self.pool) as u64);
        Ok(())
    }
}

/// One AF_XDP socket on queue 0 of an interface, as a smoltcp IP device.
pub struct XskIpDevice {
    side: Side,
    received: DescBatch,
    /// The IP packet of the frame being handed to smoltcp.
    rx_packet: Vec<u8>,
    /// Received IP packets not yet handed over, oldest first.
    queue: std::collections::VecDeque<Vec<u8>>,
    /// Buffers to reuse.
    spare: Vec<Vec<u8>>,
    mac: [u8; 6],
}

impl std::fmt::Debug for XskIpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskIpDevice")
            .field("stats", &self.side.stats)
            .finish()
    }
}

impl XskIpDevice {
    /// Open queue 0 of `ifname` (in the calling thread's network namespace); frames go out
    /// from `mac` to `peer_mac`, and only IPv4 frames to `mac` are taken in.
    pub fn open(ifname: &str, mac: [u8; 6], peer_mac: [u8; 6]) -> Result<XskIpDevice, XskError> {
        let (umem, mut pool) = Umem::new(UmemSpec {
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
        })?;
        let cfg = PortConfig {
            batch: BATCH,
            fill_target: 1024,
            ..PortConfig::default()
        };
        // A socket closed a moment ago on the same queue is released asynchronously: retry
        // for a bounded while (20 tries, 2 s in all).
        let mut tries = 0;
        let port = loop {
            match Port::open(&umem, ifname, 0, &cfg, &mut pool) {
                Ok(p) => break p,
                Err(e) if tries >= 19 => return Err(e),
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        let mut header = [0u8; ETH_HDR];
        header[..6].copy_from_slice(&peer_mac);
        header[6..12].copy_from_slice(&mac);
        header[12..].copy_from_slice(&ETHERTYPE_IPV4);
        Ok(XskIpDevice {
            side: Side {
                umem,
                pool,
                port,
                pending: DescBatch::with_capacity(4 * BATCH),
                header,
                stats: DevStats::default(),
                in_flight: 0,
            },
            received: DescBatch::with_capacity(BATCH),
            rx_packet: Vec::new(),
            queue: std::collections::VecDeque::with_capacity(BATCH),
            spare: Vec::new(),
            mac,
        })
    }

    /// Submit what smoltcp wrote since the last call.
    pub fn flush(&mut self) -> Result<(), XskError> {
        self.side.flush()
    }

    /// Send what is pending and wait (at most `limit`) until the kernel has taken every frame.
    pub fn drain_tx(&mut self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while (self.side.in_flight > 0 || !self.side.pending.is_empty())
            && std::time::Instant::now() < deadline
        {
            if self.side.flush().is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Throw away every frame received so far (stale segments of the previous trial's
    /// connections).
    pub fn discard_rx(&mut self) -> u64 {
        let mut n = self.queue.len() as u64;
        self.spare.extend(self.queue.drain(..));
        // Bounded: the RX ring holds at most its size.
        for _ in 0..64 {
            let s = &mut self.side;
            match s.port.rx_batch(&mut self.received, &mut s.pool) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
            self.received.free_all(&mut self.side.pool);
        }
        n
    }

    /// Counters.
    pub fn stats(&self) -> DevStats {
        self.side.stats
    }

    /// Close the socket before its UMEM (the order the kernel needs to let the queue be
    /// bound again by the next trial).
    pub fn close(self) {
        let Side {
            umem,
            mut pool,
            port,
            mut pending,
            ..
        } = self.side;
        let mut received = self.received;
        received.free_all(&mut pool);
        pending.free_all(&mut pool);
        port.close(&mut pool);
        drop(umem);
    }

    /// Take the next IPv4 frame to our MAC into `rx_packet`; false when none is waiting.
    fn next_packet(&mut self) -> bool {
        if self.queue.is_empty() {
            self.fill_queue();
        }
        match self.queue.pop_front() {
            Some(p) => {
                let old = std::mem::replace(&mut self.rx_packet, p);
                self.spare.push(old);
                true
            }
            None => false,
        }
    }

    /// Copy one RX batch's IPv4 frames to our MAC into the queue, in arrival order (TCP
    /// must see a connection's segments in order), and recycle the frames.
    fn fill_queue(&mut self) {
        let s = &mut self.side;
        if s.port.rx_batch(&mut self.received, &mut s.pool).is_err() {
            return;
        }
        // The batch hands frames back last first.
        let mut descs = Vec::with_capacity(self.received.len());
        while let Some(d) = self.received.pop() {
            descs.push(d);
        }
        for d in descs.into_iter().rev() {
            let frame = s.umem.bytes(&d);
            if frame.len() > ETH_HDR && frame[..6] == self.mac && frame[12..14] == ETHERTYPE_IPV4 {
                let mut p = self.spare.pop().unwrap_or_default();
                p.clear();
                p.extend_from_slice(&frame[ETH_HDR..]);
                self.queue.push_back(p);
                s.stats.rx += 1;
            } else {
                s.stats.rx_ignored += 1;
            }
            s.pool.free(d);
        }
    }
}

/// A received IP packet.
pub struct XskRx<'a>(&'a [u8]);

/// Room for one packet to send.
pub struct XskTx<'a>(&'a mut Side);

impl RxToken for XskRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

impl TxToken for XskTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let side = self.0;
        if side.pending.spare() == 0 {
            let _ = side.flush();
        }
        if side.pool.is_empty() {
            side.port.reap_completions(&mut side.pool);
        }
        let frame = side.pool.alloc();
        let Some(mut d) = frame.filter(|_| side.pending.spare() > 0) else {
            side.stats.tx_no_frame += 1;
            let mut scratch = vec![0u8; len];
            return f(&mut scratch);
        };
        if side.umem.set_len(&mut d, ETH_HDR + len).is_err() {
            side.pool.free(d);
            side.stats.tx_no_frame += 1;
            let mut scratch = vec![0u8; len];
            return f(&mut scratch);
        }
        let bytes = side.umem.bytes_mut(&mut d);
        bytes[..ETH_HDR].copy_from_slice(&side.header);
        let r = f(&mut bytes[ETH_HDR..]);
        // Room was checked above.
        if let Err(d) = side.pending.push(d) {
            side.pool.free(d);
        } else {
            side.stats.tx += 1;
        }
        r
    }
}

impl Device for XskIpDevice {
    type RxToken<'a>
        = XskRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = XskTx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(XskRx<'_>, XskTx<'_>)> {
        if !self.next_packet() {
            return None;
        }
        Some((XskRx(&self.rx_packet), XskTx(&mut self.side)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<XskTx<'_>> {
        Some(XskTx(&mut self.side))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(BATCH);
        caps
    }
}
