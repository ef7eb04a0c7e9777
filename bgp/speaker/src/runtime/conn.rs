//! Socket plumbing for one connection: outgoing connect (bind, MD5), reader and writer tasks.

use super::NetEvent;
use super::md5sig;
use crate::fsm::ConnId;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tortie_bgp_wire::{MAX_MESSAGE_LEN, frame_length};

/// The address to key MD5 on for a socket of `domain` (IPv4-mapped on IPv6 sockets).
fn md5_addr(domain: Domain, peer: IpAddr) -> IpAddr {
    match (domain, peer) {
        (d, IpAddr::V4(a)) if d == Domain::IPV6 => IpAddr::V6(a.to_ipv6_mapped()),
        _ => peer,
    }
}

/// How to open an outgoing connection.
pub(super) struct ConnectOptions {
    /// Local address to bind.
    pub local: Option<IpAddr>,
    /// TCP-MD5 key.
    pub password: Option<String>,
    /// GTSM hop count (RFC 5082).
    pub ttl_security: Option<u8>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Opens an outgoing connection: MD5 key first (the SYN must be signed) and TTL 255 for
/// GTSM, then bind, connect, and GTSM's minimum TTL once connected.
pub(super) async fn connect(remote: SocketAddr, opts: ConnectOptions) -> io::Result<TcpStream> {
    let ConnectOptions {
        local,
        password,
        ttl_security,
        timeout,
    } = opts;
    let domain = if remote.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(pw) = &password {
        md5sig::set_md5_key(&s, md5_addr(domain, remote.ip()), Some(pw.as_bytes()))?;
    }
    if ttl_security.is_some() {
        super::gtsm::send_with_ttl_255(&s, remote.is_ipv6())?;
    }
    if let Some(l) = local {
        s.bind(&SocketAddr::new(l, 0).into())?;
    }
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(s));
    let stream = tokio::time::timeout(timeout, sock.connect(remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    if let Some(hops) = ttl_security {
        super::gtsm::require_min_ttl(&stream, remote.is_ipv6(), hops)?;
    }
    Ok(stream)
}

/// Why a listener could not be set up.
pub(super) enum ListenError {
    /// Socket, bind or listen failed.
    Socket(io::Error),
    /// Installing the MD5 key of this peer failed.
    Md5(IpAddr, io::Error),
}

/// Binds a listener (IPv6 sockets are IPv6-only, so each family has its own) and installs
/// the MD5 keys of every peer of the same family.
pub(super) fn listen(
    addr: SocketAddr,
    keys: &[(IpAddr, String)],
) -> Result<TcpListener, ListenError> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(ListenError::Socket)?;
    if domain == Domain::IPV6 {
        s.set_only_v6(true).map_err(ListenError::Socket)?;
    }
    s.set_reuse_address(true).map_err(ListenError::Socket)?;
    s.bind(&addr.into()).map_err(ListenError::Socket)?;
    for (peer, pw) in keys {
        if peer.is_ipv4() == addr.is_ipv4() {
            md5sig::set_md5_key(&s, *peer, Some(pw.as_bytes()))
                .map_err(|e| ListenError::Md5(*peer, e))?;
        }
    }
    s.listen(128).map_err(ListenError::Socket)?;
    s.set_nonblocking(true).map_err(ListenError::Socket)?;
    TcpListener::from_std(std::net::TcpListener::from(s)).map_err(ListenError::Socket)
}

/// The tasks serving one connection.
#[derive(Debug)]
pub(super) struct ConnTasks {
    /// Bytes to write; dropping it makes the writer flush and shut the socket down.
    pub tx: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
}

impl ConnTasks {
    /// Stops reading now; queued writes still go out.
    pub fn close(self) {
        self.reader.abort();
        drop(self.tx);
    }
}

/// Splits the stream into a framing reader and a writer, both reporting to `events`.
pub(super) fn spawn(
    conn: ConnId,
    stream: TcpStream,
    events: mpsc::UnboundedSender<NetEvent>,
) -> ConnTasks {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let reader = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_MESSAGE_LEN);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // Hand every complete message over before reading more.
            let mut start = 0;
            loop {
                match frame_length(&buf[start..]) {
                    Ok(Some(len)) if buf.len() - start >= len => {
                        if events
                            .send(NetEvent::Message {
                                conn,
                                bytes: buf[start..start + len].to_vec(),
                            })
                            .is_err()
                        {
                            return;
                        }
                        start += len;
                    }
                    Ok(_) => break,
                    Err(error) => {
                        let _ = events.send(NetEvent::FramingError { conn, error });
                        return;
                    }
                }
            }
            buf.drain(..start);
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    let _ = events.send(NetEvent::Closed { conn });
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    ConnTasks { tx, reader }
}
