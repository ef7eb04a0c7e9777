//! Real traffic between namespaces: a responder (TCP and UDP) inside a workload or host
//! namespace, and clients that connect from another namespace with short timeouts. Every
//! socket is made by a thread that entered the namespace, so the kernel treats it exactly like
//! a process running there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::exec::{in_netns, output_with_stdin};
use crate::netns::{self, NsThread};

/// The port the responders listen on (TCP and UDP).
pub const PORT: u16 = 8080;

/// A TCP and UDP responder (IPv4 and IPv6) in one namespace: TCP answers its name on a line then echoes; UDP
/// answers `name:payload`. It records every peer address it saw, so a test can tell what
/// source address arrived (NAT, spoofing). Stopped on drop.
pub struct Responder {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SocketAddr>>>,
    threads: Vec<NsThread<()>>,
}

impl Responder {
    /// Listens on `0.0.0.0:port` (TCP and UDP) inside `namespace`, answering as `name`.
    pub fn start(namespace: &str, name: &str, port: u16) -> Result<Responder> {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        // `[::]` with IPV6_V6ONLY off (Linux's default) takes IPv4 as well, as mapped addresses.
        let bind = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
        let tcp = netns::run_in(namespace, move || {
            TcpListener::bind(bind).and_then(|l| l.set_nonblocking(true).map(|()| l))
        })?
        .map_err(|err| crate::error::XtaskError::Netns {
            namespace: namespace.into(),
            message: format!("TCP listen on {bind}: {err}"),
        })?;
        let udp = netns::run_in(namespace, move || {
            UdpSocket::bind(bind).and_then(|s| {
                s.set_read_timeout(Some(Duration::from_millis(50)))
                    .map(|()| s)
            })
        })?
        .map_err(|err| crate::error::XtaskError::Netns {
            namespace: namespace.into(),
            message: format!("UDP bind {bind}: {err}"),
        })?;
        let mut threads = Vec::new();
        let (stop_tcp, seen_tcp, name_tcp) = (stop.clone(), seen.clone(), name.to_string());
        threads.push(netns::spawn_in(namespace, move || {
            serve_tcp(&tcp, &stop_tcp, &seen_tcp, &name_tcp)
        })?);
        let (stop_udp, seen_udp, name_udp) = (stop.clone(), seen.clone(), name.to_string());
        threads.push(netns::spawn_in(namespace, move || {
            serve_udp(&udp, &stop_udp, &seen_udp, &name_udp)
        })?);
        Ok(Responder {
            stop,
            seen,
            threads,
        })
    }

    /// The peer addresses seen so far (TCP connections and UDP datagrams), IPv4 ones as IPv4
    /// (not as the IPv4-mapped IPv6 addresses the dual-stack sockets report).
    pub fn seen(&self) -> Vec<SocketAddr> {
        self.seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
            .collect()
    }

    /// Forgets the peers seen so far.
    pub fn clear_seen(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn serve_tcp(listener: &TcpListener, stop: &AtomicBool, seen: &Mutex<Vec<SocketAddr>>, name: &str) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(peer);
                }
                let greeting = format!("{name}\n");
                std::thread::spawn(move || echo(stream, &greeting));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Greets, then echoes until the peer closes or 60 s pass (a bound for stream tests).
fn echo(mut stream: TcpStream, greeting: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(greeting.as_bytes()).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn serve_udp(socket: &UdpSocket, stop: &AtomicBool, seen: &Mutex<Vec<SocketAddr>>, name: &str) {
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            if let Ok(mut seen) = seen.lock() {
                seen.push(peer);
            }
            let mut answer = format!("{name}:").into_bytes();
            answer.extend_from_slice(&buffer[..n]);
            let _ = socket.send_to(&answer, peer);
        }
    }
}

/// Connects over TCP from `namespace` to `addr:port` and reads the responder's name; `None`
/// when no answer came within `timeout` (refused, dropped, or silent).
pub fn tcp(namespace: &str, addr: IpAddr, port: u16, timeout: Duration) -> Result<Option<String>> {
    netns::run_in(namespace, move || {
        let deadline = Instant::now() + timeout;
        let stream = TcpStream::connect_timeout(&SocketAddr::new(addr, port), timeout).ok()?;
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        let name = line.trim().to_string();
        (!name.is_empty()).then_some(name)
    })
}

/// Sends one UDP datagram from `namespace` (from `source` when given, an address the sender
/// holds) and waits for the answer; `None` when none came within `timeout`.
pub fn udp(
    namespace: &str,
    addr: IpAddr,
    port: u16,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<Option<String>> {
    netns::run_in(namespace, move || {
        let any = if addr.is_ipv6() {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::from([0, 0, 0, 0])
        };
        let local = SocketAddr::new(source.unwrap_or(any), 0);
        let socket = UdpSocket::bind(local).ok()?;
        socket.set_read_timeout(Some(timeout)).ok()?;
        socket.send_to(b"ping", SocketAddr::new(addr, port)).ok()?;
        let mut buffer = [0u8; 2048];
        let (n, _) = socket.recv_from(&mut buffer).ok()?;
        let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
        text.strip_suffix(":ping").map(str::to_string)
    })
}

/// One ICMP echo from `namespace` (busybox ping); true when the reply came within a second.
pub fn ping(namespace: &str, addr: IpAddr) -> Result<bool> {
    let mut command: Command = in_netns(namespace, "busybox");
    command.args(["ping", "-c", "1", "-W", "1", &addr.to_string()]);
    Ok(output_with_stdin(&mut command, None)?.status.success())
}

/// What a TCP stream saw: how many echoes came back and the longest wait for one.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// Messages sent.
    pub sent: u32,
    /// Messages echoed back.
    pub echoed: u32,
    /// The longest time between sending a message and reading its echo.
    pub max_wait: Duration,
    /// Why the stream ended early, if it did.
    pub error: Option<String>,
}

/// A TCP connection from `namespace` to a responder, kept open: call [`Stream::exchange`] to
/// send a message and wait for its echo.
pub struct Stream {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Stream {
    /// Opens the connection and reads the greeting.
    pub fn open(namespace: &str, addr: IpAddr, port: u16) -> Result<std::io::Result<Stream>> {
        netns::run_in(namespace, move || {
            let stream =
                TcpStream::connect_timeout(&SocketAddr::new(addr, port), Duration::from_secs(1))?;
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            let writer = stream.try_clone()?;
            let mut reader = BufReader::new(stream);
            let mut greeting = String::new();
            reader.read_line(&mut greeting)?;
            Ok(Stream { reader, writer })
        })
    }

    /// Sends `count` numbered lines, one every `interval`, each awaiting its echo for at most
    /// `patience` (retransmissions included).
    pub fn exchange(&mut self, count: u32, interval: Duration, patience: Duration) -> StreamReport {
        let mut report = StreamReport {
            sent: 0,
            echoed: 0,
            max_wait: Duration::ZERO,
            error: None,
        };
        let _ = self.reader.get_ref().set_read_timeout(Some(patience));
        for i in 0..count {
            let line = format!("message {i}\n");
            let sent_at = Instant::now();
            if let Err(err) = self.writer.write_all(line.as_bytes()) {
                report.error = Some(format!("write {i}: {err}"));
                break;
            }
            report.sent += 1;
            let mut echo = String::new();
            match self.reader.read_line(&mut echo) {
                Ok(_) if echo == line => report.echoed += 1,
                Ok(_) => {
                    report.error = Some(format!("echo {i}: got {echo:?}"));
                    break;
                }
                Err(err) => {
                    report.error = Some(format!("echo {i}: {err}"));
                    break;
                }
            }
            report.max_wait = report.max_wait.max(sent_at.elapsed());
            std::thread::sleep(interval);
        }
        report
    }
}
