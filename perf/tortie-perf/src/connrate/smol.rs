//! Connection-rate end hosts in userspace: a smoltcp client in the generator namespace and a
//! smoltcp server in the sink namespace, each on an AF_XDP socket ([`super::xskdev`]), both
//! driven by one thread (they are light, and the device under test gets the other cores).
//!
//! The client keeps `concurrency` connections in flight. Each one is a full TCP exchange
//! through the device under test: SYN, SYN-ACK, ACK, one request byte, one response byte,
//! then the server closes (FIN), the client closes (FIN) and the last ACKs: so conntrack and
//! policy see a whole connection in both directions. The server keeps a pool of listening
//! sockets and replaces each finished one (in TIME-WAIT) with a fresh listener, so TIME-WAIT
//! costs nothing. Client source ports cycle over eight client addresses (512 k tuples), so a
//! tuple comes back only after that many connections. The thread is pinned to core 0, away
//! from the DUT's worker (tortie-fastpath's first worker and the kernel's RPS target are on
//! the last cores).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};

use super::ConnTrial;
use super::xskdev::XskIpDevice;
use crate::dut::HarnessError;
use crate::dut::topology::{
    CLIENT_ADDRS, DEST_ADDR, DUT_IN_MAC, DUT_OUT_MAC, GEN_ADDR, GEN_IF, GEN_MAC, SINK_IF, SINK_MAC,
    Topology,
};
use crate::pktgen::latency::Histogram;

/// Server port.
const PORT: u16 = 5001;
/// A connection with no progress for this long is a failure.
const CONN_TIMEOUT: Duration = Duration::from_secs(1);
/// Time after the trial for connections in flight to finish (they count only as in flight).
const DRAIN: Duration = Duration::from_millis(300);

/// The next client source port (shared by all trials of the process, so tuples are reused
/// as late as possible).
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

fn v4(s: &str) -> Result<Ipv4Address, HarnessError> {
    s.parse()
        .map_err(|_| HarnessError::Trial(format!("address {s:?}")))
}

/// The client's source addresses: the generator's address and the extra ones the DUT has as
/// permanent neighbours.
fn client_addrs() -> Result<Vec<Ipv4Address>, HarnessError> {
    std::iter::once(GEN_ADDR)
        .chain(CLIENT_ADDRS.iter().copied())
        .map(v4)
        .collect()
}

fn tcp_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 256]),
        tcp::SocketBuffer::new(vec![0; 256]),
    );
    s.set_timeout(Some(smoltcp::time::Duration::from_millis(
        CONN_TIMEOUT.as_millis() as u64,
    )));
    s.set_nagle_enabled(false);
    s.set_ack_delay(None);
    s
}

/// Where one client connection is.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Connecting(Instant),
    Sent(Instant),
    Closing(Instant),
}

fn iface(
    dev: &mut XskIpDevice,
    addr: &[Ipv4Address],
    seed: u64,
    now: smoltcp::time::Instant,
) -> Interface {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut i = Interface::new(config, dev, now);
    i.update_ip_addrs(|a| {
        for &ip in addr {
            // 198.18.0.0/15: every test address is on-link, so no route or neighbour.
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(ip), 15));
        }
    });
    i
}

/// One trial's request to the endpoint thread.
struct Request {
    duration: Duration,
    concurrency: usize,
    reply: mpsc::Sender<Result<ConnTrial, HarnessError>>,
}

/// The smoltcp end hosts of one topology: a thread that holds both AF_XDP sockets for the
/// whole run (binding a queue again right after a close can fail while the kernel releases
/// the old socket) and runs one trial per request. Dropping it ends the thread.
pub struct SmolEndpoints {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SmolEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolEndpoints").finish()
    }
}

impl SmolEndpoints {
    /// Open the client's socket on `gen0` and the server's on `sink0` of `topo`.
    pub fn start(topo: &Topology) -> Result<SmolEndpoints, HarnessError> {
        let (gen_ns, sink_ns) = (topo.gen_ns.clone(), topo.sink_ns.clone());
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), HarnessError>>();
        let thread = std::thread::spawn(move || {
            if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
                // Best effort: a failed pin only costs speed.
                let _ = core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
            }
            let devices = open_devices(&gen_ns, &sink_ns);
            let (mut cdev, mut sdev) = match devices {
                Ok(d) => {
                    let _ = ready_tx.send(Ok(()));
                    d
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while let Ok(r) = req_rx.recv() {
                let result = run_trial(&mut cdev, &mut sdev, r.duration, r.concurrency);
                let _ = r.reply.send(result);
            }
            cdev.close();
            sdev.close();
        });
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                Err(HarnessError::Trial(
                    "smoltcp endpoints did not start".into(),
                ))
            });
        let ep = SmolEndpoints {
            requests: Some(req_tx),
            thread: Some(thread),
        };
        ready.map(|()| ep)
    }

    /// One trial: `concurrency` connections in flight for `duration`.
    pub fn trial(&self, duration: Duration, concurrency: usize) -> Result<ConnTrial, HarnessError> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .as_ref()
            .and_then(|r| {
                r.send(Request {
                    duration,
                    concurrency,
                    reply,
                })
                .ok()
            })
            .ok_or_else(|| HarnessError::Trial("smoltcp endpoint thread is gone".into()))?;
        answer
            .recv_timeout(duration + DRAIN + Duration::from_secs(10))
            .unwrap_or_else(|_| {
                Err(HarnessError::Trial(
                    "smoltcp endpoint thread did not answer".into(),
                ))
            })
    }
}

impl Drop for SmolEndpoints {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open_devices(gen_ns: &str, sink_ns: &str) -> Result<(XskIpDevice, XskIpDevice), HarnessError> {
    let xsk = |what: &str, e: tortie_xsk::XskError| {
        HarnessError::Unavailable(format!("AF_XDP socket on {what}: {e}"))
    };
    tortie_perf::netns::enter(gen_ns)?;
    let cdev = XskIpDevice::open(GEN_IF, GEN_MAC, DUT_IN_MAC).map_err(|e| xsk(GEN_IF, e))?;
    tortie_perf::netns::enter(sink_ns)?;
    let sdev = XskIpDevice::open(SINK_IF, SINK_MAC, DUT_OUT_MAC).map_err(|e| xsk(SINK_IF, e))?;
    Ok((cdev, sdev))
}

/// One trial on open devices.
fn run_trial(
    cdev: &mut XskIpDevice,
    sdev: &mut XskIpDevice,
    duration: Duration,
    concurrency: usize,
) -> Result<ConnTrial, HarnessError> {
    let client_ips = client_addrs()?;
    let server_ip = v4(DEST_ADDR)?;
    let concurrency = concurrency.clamp(1, 4096);
    {
        // Segments of the previous trial's connections would only draw resets.
        cdev.discard_rx();
        sdev.discard_rx();
        let t0 = Instant::now();
        let stamp = |t: Instant| {
            smoltcp::time::Instant::from_micros(t.duration_since(t0).as_micros() as i64)
        };
        // A fresh seed per trial: smoltcp derives initial sequence numbers from it, and a
        // reused tuple with a repeated ISN looks like an old duplicate to a conntrack.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        let mut client = iface(cdev, &client_ips, seed, stamp(Instant::now()));
        let mut server = iface(sdev, &[server_ip], seed ^ 0x5a5a, stamp(Instant::now()));
        let mut csockets = SocketSet::new(Vec::new());
        let mut slots: Vec<(SocketHandle, Phase)> = (0..concurrency)
            .map(|_| (csockets.add(tcp_socket()), Phase::Idle))
            .collect();
        let mut ssockets = SocketSet::new(Vec::new());
        let listen = |set: &mut SocketSet<'static>| -> SocketHandle {
            let mut s = tcp_socket();
            // Cannot fail: the port is non-zero and the socket fresh.
            let _ = s.listen(PORT);
            set.add(s)
        };
        let mut listeners: Vec<SocketHandle> = (0..concurrency * 2 + 16)
            .map(|_| listen(&mut ssockets))
            .collect();
        let mut lat = Histogram::default();
        let (mut ok, mut failed) = (0u64, 0u64);
        let start = Instant::now();
        let deadline = start + duration;
        let mut buf = [0u8; 16];
        loop {
            let now = Instant::now();
            if now >= deadline + DRAIN {
                break;
            }
            let sending = now < deadline;
            let ts = stamp(now);
            client.poll(ts, cdev, &mut csockets);
            server.poll(ts, sdev, &mut ssockets);
            // Server: answer each request byte with one byte and close first.
            for h in &mut listeners {
                let s = ssockets.get_mut::<tcp::Socket>(*h);
                match s.state() {
                    tcp::State::TimeWait => {
                        ssockets.remove(*h);
                        *h = listen(&mut ssockets);
                    }
                    tcp::State::Closed => {
                        let _ = s.listen(PORT);
                    }
                    _ if s.can_recv() && s.recv_slice(&mut buf).is_ok_and(|n| n > 0) => {
                        let _ = s.send_slice(b"y");
                        s.close();
                    }
                    _ => {}
                }
            }
            // Client: connect, send, read the answer, close.
            for (h, phase) in &mut slots {
                let s = csockets.get_mut::<tcp::Socket>(*h);
                *phase = match *phase {
                    Phase::Idle if sending => {
                        let n = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
                        let k = client_ips.len() as u32;
                        let ip = client_ips[(n % k) as usize];
                        let port = 1024 + ((n / k) % 64_000) as u16;
                        match s.connect(
                            client.context(),
                            (IpAddress::Ipv4(server_ip), PORT),
                            (IpAddress::Ipv4(ip), port),
                        ) {
                            Ok(()) => Phase::Connecting(now),
                            Err(_) => {
                                s.abort();
                                Phase::Idle
                            }
                        }
                    }
                    Phase::Idle => Phase::Idle,
                    Phase::Connecting(t) if s.may_send() => {
                        let _ = s.send_slice(b"x");
                        Phase::Sent(t)
                    }
                    Phase::Connecting(t) | Phase::Sent(t) if s.state() == tcp::State::Closed => {
                        let _ = t;
                        failed += 1;
                        Phase::Idle
                    }
                    Phase::Sent(t) if s.can_recv() => {
                        let _ = s.recv_slice(&mut buf);
                        lat.record(now.duration_since(t).as_nanos() as u64);
                        s.close();
                        Phase::Closing(now)
                    }
                    Phase::Closing(answered) => match s.state() {
                        tcp::State::Closed | tcp::State::TimeWait => {
                            // Closed on both sides (an abort in TIME-WAIT only starts the
                            // socket afresh).
                            s.abort();
                            if answered < deadline {
                                ok += 1;
                            }
                            Phase::Idle
                        }
                        _ => Phase::Closing(answered),
                    },
                    p => p,
                };
            }
            let _ = cdev.flush();
            let _ = sdev.flush();
        }
        cdev.drain_tx(Duration::from_millis(100));
        sdev.drain_tx(Duration::from_millis(100));
        if ok == 0 {
            eprintln!(
                "connrate: no connection completed; client device {:?}, server device {:?}",
                cdev.stats(),
                sdev.stats()
            );
        }
        let elapsed = duration.as_secs_f64();
        let us = |q: f64| lat.quantile(q).map(|ns| (ns as f64 / 10.0).round() / 100.0);
        Ok(ConnTrial {
            connections: ok,
            failures: failed,
            per_s: ok as f64 / elapsed.max(1e-9),
            p50_us: us(0.5),
            p99_us: us(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::topology::DUT_IN_ADDR;

    #[test]
    fn client_addresses_are_distinct_on_the_generator_side() {
        let a = client_addrs().expect("addresses parse");
        assert_eq!(a.len(), 8, "eight addresses: 512 k source tuples");
        let dut: Ipv4Address = DUT_IN_ADDR.parse().expect("dut address");
        for (i, x) in a.iter().enumerate() {
            assert_eq!(
                x.octets()[..3],
                [198, 18, 1],
                "{x} is on the generator's /24"
            );
            assert_ne!(*x, dut, "the DUT's own address is not a client");
            assert!(!a[i + 1..].contains(x), "{x} repeats");
        }
    }

    #[test]
    fn one_smoltcp_interface_holds_every_client_address() {
        // `iface-max-addr-count-8`: without it the pushes past the second would be dropped.
        let a = client_addrs().expect("addresses parse");
        let mut dev = smoltcp::phy::Loopback::new(smoltcp::phy::Medium::Ip);
        let mut i = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut dev,
            smoltcp::time::Instant::from_millis(0),
        );
        i.update_ip_addrs(|v| {
            for x in &a {
                v.push(IpCidr::new(IpAddress::Ipv4(*x), 15))
                    .expect("room for the address");
            }
        });
        assert_eq!(i.ip_addrs().len(), a.len());
    }
}
