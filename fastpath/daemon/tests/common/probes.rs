//! Traffic between namespaces with the kernels' own UDP and TCP stacks.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::spawn_in_ns;

/// Sends `count` UDP datagrams from `src` (in `from_ns`) to `dst:port` (in `to_ns`);
/// returns how many arrived within `wait`.
pub fn udp_probe(
    from_ns: &str,
    src: Ipv4Addr,
    to_ns: &str,
    dst: Ipv4Addr,
    port: u16,
    count: usize,
    wait: Duration,
) -> usize {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in_ns(to_ns, move || {
        let sock = std::net::UdpSocket::bind((dst, port)).expect("bind udp server");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + wait;
        let mut got = 0;
        let mut buf = [0u8; 2048];
        while got < count && Instant::now() < deadline {
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && &buf[..n] == b"tortie-fastpath-probe"
            {
                got += 1;
            }
        }
        got
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("udp server ready");
    spawn_in_ns(from_ns, move || {
        let sock = std::net::UdpSocket::bind((src, 0)).expect("bind udp client");
        for _ in 0..count {
            let _ = sock.send_to(b"tortie-fastpath-probe", (dst, port));
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .join()
    .unwrap();
    server.join().unwrap()
}

/// One TCP connection from `from_ns` to `dst:port` in `to_ns`: connect, send, read the echo.
/// Returns whether the echo came back within `wait`.
pub fn tcp_probe(from_ns: &str, to_ns: &str, dst: Ipv4Addr, port: u16, wait: Duration) -> bool {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in_ns(to_ns, move || {
        let l = std::net::TcpListener::bind((dst, port)).expect("bind tcp server");
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(wait)).unwrap();
                    let mut buf = [0u8; 64];
                    if let Ok(n) = s.read(&mut buf) {
                        let _ = s.write_all(&buf[..n]);
                    }
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("tcp server ready");
    let ok = spawn_in_ns(from_ns, move || {
        let addr = SocketAddr::from((dst, port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, wait) else {
            return false;
        };
        s.set_read_timeout(Some(wait)).unwrap();
        if s.write_all(b"tortie-tcp").is_err() {
            return false;
        }
        let mut buf = [0u8; 10];
        s.read_exact(&mut buf).is_ok() && &buf == b"tortie-tcp"
    })
    .join()
    .unwrap();
    let _ = server.join();
    ok
}
