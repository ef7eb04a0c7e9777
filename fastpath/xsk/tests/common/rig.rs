//! A steered link: namespace A runs the [`Steering`] under test on its veth, with an AF_XDP
//! socket on queue 0 and kernel sockets beside it; namespace B is a packet generator and sink
//! (its own `Steering` in `All` mode and an AF_XDP socket), so tests send hand-built frames
//! and see the A kernel's answers.

use std::net::UdpSocket;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tortie_xsk::{
    BindMode, DescBatch, FramePool, OwnedTraffic, Port, PortConfig, SteerMode, SteerStats,
    Steering, Umem,
};

use super::{FRAMES, Topo, enter, test_umem_spec};

/// One namespace's end: the steering program, a UMEM and a socket on queue 0.
pub struct End {
    // Drop order: the socket before the UMEM; the steering program detaches itself.
    pub port: Port,
    pub pool: FramePool,
    pub umem: Umem,
    pub steering: Arc<Steering>,
    pub if_index: u32,
    pub bind: BindMode,
}

fn if_index(name: &str) -> Result<u32, String> {
    nix::net::if_::if_nametoindex(name).map_err(|e| format!("if_nametoindex {name}: {e}"))
}

impl End {
    /// Load a `Steering`, attach it to `dev` in `mode`, open an externally-steered socket on
    /// queue 0 in the mode the attach returned, and register it. Call inside the namespace.
    pub fn open(dev: &str, mode: SteerMode) -> Result<End, String> {
        let steering = Steering::load().map_err(|e| e.to_string())?;
        End::open_with(Arc::new(steering), dev, mode)
    }

    /// As [`End::open`], on an already loaded (shared) `Steering`.
    pub fn open_with(steering: Arc<Steering>, dev: &str, mode: SteerMode) -> Result<End, String> {
        let if_index = if_index(dev)?;
        let bind = steering
            .attach(if_index, mode, BindMode::Auto)
            .map_err(|e| e.to_string())?;
        let (umem, mut pool) = Umem::new(test_umem_spec()).map_err(|e| e.to_string())?;
        let cfg = PortConfig {
            mode: bind,
            ring_size: 512,
            batch: 64,
            fill_target: 256,
            external_program: true,
        };
        let port = Port::open(&umem, dev, 0, &cfg, &mut pool).map_err(|e| e.to_string())?;
        steering
            .register(if_index, 0, &port)
            .map_err(|e| e.to_string())?;
        Ok(End {
            port,
            pool,
            umem,
            steering,
            if_index,
            bind,
        })
    }

    /// Transmit `frames`; every one must be submitted and completed within 5 s.
    pub fn send(&mut self, frames: &[Vec<u8>]) {
        let mut batch = DescBatch::with_capacity(frames.len());
        for f in frames {
            let mut d = self.pool.alloc().expect("free frame");
            self.umem.write(&mut d, f).expect("frame fits");
            batch
                .push(d)
                .map_err(|_| "batch full")
                .expect("batch sized");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut completed = 0;
        while (!batch.is_empty() || completed < frames.len()) && Instant::now() < deadline {
            self.port.tx_batch(&mut batch).expect("tx");
            let n = self.port.reap_completions(&mut self.pool);
            completed += n;
            if n == 0 {
                self.port.kick_tx().expect("kick");
                thread::sleep(Duration::from_micros(200));
            }
        }
        assert!(
            batch.is_empty() && completed == frames.len(),
            "sent {completed} of {} frames",
            frames.len()
        );
    }

    /// Frames received within `wait` (stops early once `want` have arrived).
    pub fn recv(&mut self, want: usize, wait: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut batch = DescBatch::with_capacity(64);
        let deadline = Instant::now() + wait;
        loop {
            let n = self.port.rx_batch(&mut batch, &mut self.pool).expect("rx");
            out.extend(batch.iter().map(|d| self.umem.bytes(d).to_vec()));
            batch.free_all(&mut self.pool);
            if out.len() >= want || Instant::now() >= deadline {
                break;
            }
            if n == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        out
    }

    /// No frame leaked: every frame is free or posted on the fill ring.
    pub fn assert_no_leak(&self) {
        assert_eq!(
            self.pool.len() + self.port.posted() as usize,
            FRAMES as usize,
            "frames leaked"
        );
    }
}

/// What one exchange did at A: frames A's socket got, and the change in A's counters.
pub struct Seen {
    pub xsk: Vec<Vec<u8>>,
    pub stats: SteerStats,
}

/// A's counters minus `before`.
pub fn delta(now: SteerStats, before: SteerStats) -> SteerStats {
    SteerStats {
        redirected: now.redirected - before.redirected,
        passed: now.passed - before.passed,
        redirect_failed: now.redirect_failed - before.redirect_failed,
    }
}

fn total(s: SteerStats) -> u64 {
    s.redirected + s.passed + s.redirect_failed
}

/// The test rig. Field order is drop order: both ends, then the namespaces.
pub struct Rig {
    pub a: End,
    pub b: End,
    pub topo: Topo,
}

impl Rig {
    /// Build the link (IPv6 off, so the kernels stay silent), B's end in a thread inside B,
    /// then A's end with `mode` and `owned` on the calling thread, which stays in namespace A
    /// (kernel sockets a test opens afterwards live in A).
    pub fn new(tag: &str, net: u8, mode: SteerMode, owned: &OwnedTraffic) -> Rig {
        let topo = Topo::new_quiet(tag, &[net]);
        let (ns_b, dev_b) = (topo.ns_b.clone(), topo.links[0].dev_b.clone());
        let b = thread::spawn(move || {
            enter(&ns_b)?;
            End::open(&dev_b, SteerMode::All)
        })
        .join()
        .expect("B setup panicked")
        .unwrap_or_else(|e| panic!("B end: {e}"));
        enter(&topo.ns_a).expect("enter A");
        let a = End::open(&topo.links[0].dev_a, mode).unwrap_or_else(|e| panic!("A end: {e}"));
        a.steering.set_owned(owned).expect("set_owned");
        eprintln!("A steering attached in {:?}, B in {:?}", a.bind, b.bind);
        Rig { a, b, topo }
    }

    /// Send `frames` from B and wait until A's program has counted every one of them, then
    /// collect what A's socket got (exactly as many as it redirected, within 5 s).
    pub fn exchange(&mut self, frames: &[Vec<u8>]) -> Seen {
        let before = self.a.steering.stats();
        self.b.send(frames);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut d = delta(self.a.steering.stats(), before);
        while total(d) < frames.len() as u64 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
            d = delta(self.a.steering.stats(), before);
        }
        assert_eq!(
            total(d),
            frames.len() as u64,
            "A's program saw {d:?} for {} frames sent",
            frames.len()
        );
        let mut xsk = self.a.recv(d.redirected as usize, Duration::from_secs(5));
        // Anything beyond what was counted would be a bug: look a little longer for it.
        xsk.extend(self.a.recv(usize::MAX, Duration::from_millis(20)));
        Seen { xsk, stats: d }
    }
}

/// A kernel UDP socket in the calling thread's namespace, non-blocking reads with a deadline.
pub struct KernelUdp(pub UdpSocket);

impl KernelUdp {
    pub fn bind(addr: &str) -> KernelUdp {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        KernelUdp(s)
    }

    /// Datagrams received until `want` arrived or `wait` passed.
    pub fn recv(&self, want: usize, wait: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + wait;
        while out.len() < want && Instant::now() < deadline {
            if let Ok(n) = self.0.recv(&mut buf) {
                out.push(buf[..n].to_vec());
            }
        }
        out
    }
}
