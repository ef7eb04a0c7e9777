//! One AF_XDP socket as the wire of smoltcp end hosts, so they send and receive without the
//! kernel's stack: smoltcp works on bare IP packets (`Medium::Ip`) and this device adds and
//! strips an Ethernet header with fixed MACs (the topology's neighbours are permanent, so no
//! ARP is needed). Received frames are copied out of the UMEM a batch at a time into a
//! [`PacketBatch`] (at most a few hundred bytes each: TCP handshakes and one-byte payloads)
//! and their frames recycled at once; frames to send are written straight into UMEM frames
//! ([`Transmit`]) and submitted in batches by [`XskIpDevice::flush`].
//!
//! The socket's XDP program redirects every frame of its queue to it, so the kernel in that
//! namespace never sees the test connections (and cannot answer them with resets).

use std::time::Duration;

use smoltcp::phy::TxToken;
use tortie_xsk::{DescBatch, FramePool, Port, PortConfig, Umem, UmemSpec, XskError};

use super::wire::{BATCH, PacketBatch, Transmit};

/// With frames outstanding and nothing new to send, kick once per this many flushes (a
/// pass of the end hosts' loop that finds nothing takes a few hundred ns: some 0.1-0.5 ms).
const IDLE_KICK_EVERY: u32 = 1024;
/// Frames the kernel transmits per `sendto` in copy mode (`TX_BATCH_SIZE` in
/// `net/xdp/xsk.c`).
const KERNEL_TX_BATCH: u64 = 32;
/// Ethernet header length.
const ETH_HDR: usize = 14;
/// EtherType of IPv4.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

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
    /// `sendto` calls that asked the kernel to transmit.
    pub kicks: u64,
}

/// The sending half: everything a transmit token needs.
struct Side {
    umem: Umem,
    pool: FramePool,
    port: Port,
    pending: DescBatch,
    header: [u8; ETH_HDR],
    stats: DevStats,
    /// Frames submitted to the TX ring and not yet completed.
    in_flight: u64,
    /// Flushes with frames outstanding since the last kick.
    idle_flushes: u32,
}

impl Side {
    /// Submit pending frames and take back completed ones.
    ///
    /// Copy-mode AF_XDP transmits only inside a `sendto` ("kick"), at most
    /// [`KERNEL_TX_BATCH`] frames per call. Frames not yet completed may still sit on the TX
    /// ring (more were submitted than the kicks so far could take, or the device queue was
    /// full), or be sent already with their completion waiting for the packet to be freed
    /// further along its path (behind the DUT's conntrack, on another CPU). The ring's
    /// consumer index, which would tell the two apart, is not exposed. So it kicks when
    /// the kicks made while submitting (the ring asks for one) cannot have taken
    /// everything, and otherwise, with frames outstanding, on every [`IDLE_KICK_EVERY`]th
    /// call (or always when `force`): a kick on every pass of the end hosts' loop would
    /// cost a `sendto` each time completions are merely late.
    fn flush(&mut self, force: bool) -> Result<(), XskError> {
        let kicks_before = self.port.stats().tx_wakeups;
        let mut submitted = 0;
        // Bounded: the TX ring takes a batch per call and has room after completions.
        for _ in 0..8 {
            if self.pending.is_empty() {
                break;
            }
            submitted += self.port.tx_batch(&mut self.pending)? as u64;
            self.reap();
        }
        let kicked = self.port.stats().tx_wakeups - kicks_before;
        self.in_flight += submitted;
        self.reap();
        if self.in_flight > 0 {
            self.idle_flushes += 1;
            let maybe_left = submitted > kicked * KERNEL_TX_BATCH;
            if force || maybe_left || self.idle_flushes >= IDLE_KICK_EVERY {
                self.idle_flushes = 0;
                self.port.kick_tx()?;
                self.reap();
            }
        }
        Ok(())
    }

    fn reap(&mut self) {
        let done = self.port.reap_completions(&mut self.pool) as u64;
        self.in_flight = self.in_flight.saturating_sub(done);
    }
}

/// One AF_XDP socket on queue 0 of an interface, as a smoltcp IP device.
pub struct XskIpDevice {
    side: Side,
    received: DescBatch,
    /// Descriptors of one batch in arrival order (reused).
    in_order: Vec<tortie_xsk::Desc>,
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
                idle_flushes: 0,
            },
            received: DescBatch::with_capacity(BATCH),
            in_order: Vec::with_capacity(BATCH),
            mac,
        })
    }

    /// Submit what smoltcp wrote since the last call.
    pub fn flush(&mut self) -> Result<(), XskError> {
        self.side.flush(false)
    }

    /// Send what is pending and wait (at most `limit`) until the kernel has taken every frame.
    pub fn drain_tx(&mut self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while (self.side.in_flight > 0 || !self.side.pending.is_empty())
            && std::time::Instant::now() < deadline
        {
            if self.side.flush(true).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Throw away every frame received so far (stale segments of the previous trial's
    /// connections).
    pub fn discard_rx(&mut self) -> u64 {
        let mut n = 0;
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
        DevStats {
            kicks: self.side.port.stats().tx_wakeups,
            ..self.side.stats
        }
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

    /// Replace `into`'s packets with one RX batch's IPv4 packets to our MAC (Ethernet
    /// header stripped), in arrival order, and recycle their frames. Returns the packets
    /// taken.
    pub fn receive_into(&mut self, into: &mut PacketBatch) -> usize {
        into.clear();
        let s = &mut self.side;
        if s.port.rx_batch(&mut self.received, &mut s.pool).is_err() {
            return 0;
        }
        // The batch hands frames back last first.
        self.in_order.clear();
        while let Some(d) = self.received.pop() {
            self.in_order.push(d);
        }
        while let Some(d) = self.in_order.pop() {
            let frame = s.umem.bytes(&d);
            if frame.len() > ETH_HDR && frame[..6] == self.mac && frame[12..14] == ETHERTYPE_IPV4 {
                into.push(&frame[ETH_HDR..]);
                s.stats.rx += 1;
            } else {
                s.stats.rx_ignored += 1;
            }
            s.pool.free(d);
        }
        into.len()
    }
}

/// Room for one packet to send.
pub struct XskTx<'a>(&'a mut Side);

impl TxToken for XskTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let side = self.0;
        if side.pending.spare() == 0 {
            let _ = side.flush(false);
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

impl Transmit for XskIpDevice {
    type Token<'a> = XskTx<'a>;

    fn token(&mut self) -> XskTx<'_> {
        XskTx(&mut self.side)
    }
}
