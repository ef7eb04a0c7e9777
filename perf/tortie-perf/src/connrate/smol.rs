//! Connection-rate end hosts in userspace: a smoltcp client ([`super::client`]) in the
//! generator namespace and a smoltcp server ([`super::server`]) in the sink namespace, each
//! on an AF_XDP socket ([`super::xskdev`]), both driven by one thread (the device under
//! test gets the other cores).
//!
//! The client keeps `concurrency` connections in flight. Each one is a full TCP exchange
//! through the device under test, nine segments: SYN, SYN-ACK, ACK, one request byte, the
//! server's ACK, one response byte with the server's FIN, the client's ACK and FIN, and the
//! last ACK: so conntrack and policy see a whole connection in both directions. Client
//! source tuples cycle over eight client addresses (512 k tuples). The thread is pinned to
//! core 0, away from the DUT's worker (tortie-fastpath's first worker and the kernel's RPS
//! target are on the last cores).
//!
//! Each loop pass takes one receive batch from each socket and hands every packet to its
//! own connection ([`super::wire`]), runs due timers every [`SWEEP`], and sends what was
//! queued in one batch per socket; a pass that finds nothing costs a few ring reads. How
//! busy the thread was goes into the trial's [`super::EndHostLoad`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::client::{Client, ClientConfig};
use super::conn::Tick;
use super::load::LoadMeter;
use super::server::Server;
use super::wire::PacketBatch;
use super::xskdev::XskIpDevice;
use super::{ConnTrial, PORT};
use crate::dut::HarnessError;
use crate::dut::topology::{
    CLIENT_ADDRS, DEST_ADDR, DUT_IN_MAC, DUT_OUT_MAC, GEN_ADDR, GEN_IF, GEN_MAC, SINK_IF, SINK_MAC,
    Topology,
};

/// Time between sweeps over every connection for its timers (smoltcp's retransmission
/// timeout is at least 1 s, so 5 ms is fine-grained enough).
const SWEEP: Duration = Duration::from_millis(5);
/// Time after the trial for connections in flight to finish (they count only as in flight).
const DRAIN: Duration = Duration::from_millis(300);

/// The next client source tuple (shared by all trials of the process, so tuples are reused
/// as late as possible).
static NEXT_TUPLE: AtomicU32 = AtomicU32::new(0);

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
    // Segments of the previous trial's connections would only draw resets.
    cdev.discard_rx();
    sdev.discard_rx();
    let t0 = Instant::now();
    let stamp =
        |t: Instant| smoltcp::time::Instant::from_micros(t.duration_since(t0).as_micros() as i64);
    // A fresh seed per trial: smoltcp derives initial sequence numbers from it, and a
    // reused tuple with a repeated ISN looks like an old duplicate to a conntrack.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    let deadline = t0 + duration;
    let mut client = Client::new(
        cdev,
        ClientConfig {
            addrs: client_ips,
            server: IpEndpoint::new(IpAddress::Ipv4(server_ip), PORT),
            concurrency,
            seed,
            first_tuple: NEXT_TUPLE.load(Ordering::Relaxed),
            deadline,
        },
        stamp(t0),
    );
    let mut server = Server::new(
        sdev,
        server_ip,
        PORT,
        concurrency * 2 + 16,
        seed ^ 0x5a5a,
        stamp(t0),
    );
    let (mut crx, mut srx) = (PacketBatch::default(), PacketBatch::default());
    let mut next_sweep = t0;
    let mut load = LoadMeter::start(cdev.stats(), sdev.stats());
    loop {
        let now = Instant::now();
        if now >= deadline + DRAIN {
            break;
        }
        let tick = Tick {
            now,
            at: stamp(now),
            sending: now < deadline,
        };
        if !tick.sending {
            load.stop(cdev.stats(), sdev.stats());
        }
        // Only what arrived is processed: each packet goes to its own connection.
        cdev.receive_into(&mut crx);
        for p in crx.iter() {
            client.on_packet(cdev, tick, p);
        }
        sdev.receive_into(&mut srx);
        for p in srx.iter() {
            server.on_packet(sdev, tick, p);
        }
        // Timers (retransmission, the failure timeout) and idle slots, now and then.
        let sweep = now >= next_sweep;
        if sweep {
            client.sweep(cdev, tick);
            server.sweep(sdev, tick);
            next_sweep = now + SWEEP;
        }
        // Passes that found nothing to do are not timed (two clock reads each).
        let timed = tick.sending && (sweep || crx.len() + srx.len() > 0);
        let sending_from = timed.then(Instant::now);
        let _ = cdev.flush();
        let _ = sdev.flush();
        if let Some(t1) = sending_from {
            load.record(now, t1, Instant::now());
        }
    }
    NEXT_TUPLE.store(client.next_tuple(), Ordering::Relaxed);
    cdev.drain_tx(Duration::from_millis(100));
    sdev.drain_tx(Duration::from_millis(100));
    let tally = client.tally;
    if tally.ok == 0 {
        eprintln!(
            "connrate: no connection completed; client device {:?}, server device {:?}",
            cdev.stats(),
            sdev.stats()
        );
    }
    let elapsed = duration.as_secs_f64();
    let us = |q: f64| {
        tally
            .latency
            .quantile(q)
            .map(|ns| (ns as f64 / 10.0).round() / 100.0)
    };
    Ok(ConnTrial {
        connections: tally.ok,
        failures: tally.failed,
        per_s: tally.ok as f64 / elapsed.max(1e-9),
        p50_us: us(0.5),
        p99_us: us(0.99),
        end_hosts: Some(load.finish(duration, tally.ok)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::topology::DUT_IN_ADDR;
    use smoltcp::iface::{Config, Interface};
    use smoltcp::wire::{HardwareAddress, IpCidr};

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
