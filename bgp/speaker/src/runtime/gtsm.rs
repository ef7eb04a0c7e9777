//! GTSM, the Generalized TTL Security Mechanism (RFC 5082), through Linux socket options.
//!
//! A protected session sends with TTL (hop limit) 255 and has the kernel drop every segment
//! whose TTL is below 256 − hops (`IP_MINTTL`, `IPV6_MINHOPCOUNT`), so a spoofer farther
//! away than the configured hop count cannot reach the BGP socket (RFC 5082 §3). The TTL to
//! send is set through `socket2`; the minimum has no safe wrapper, so this module holds one
//! `setsockopt` call with an `int` argument (module-scoped `allow(unsafe_code)`).
#![allow(unsafe_code)]

use socket2::SockRef;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// The lowest TTL accepted from a neighbour `hops` away (RFC 5082 §3: 255 − hops + 1).
pub fn min_ttl(hops: u8) -> u8 {
    255 - hops.saturating_sub(1)
}

/// Sends with TTL 255 and requires at least [`min_ttl`]`(hops)` on what arrives.
pub fn protect(sock: &impl AsFd, ipv6: bool, hops: u8) -> io::Result<()> {
    send_with_ttl_255(sock, ipv6)?;
    require_min_ttl(sock, ipv6, hops)
}

/// Sends with TTL (hop limit) 255. Set before connecting, so the SYN carries it.
pub fn send_with_ttl_255(sock: &impl AsFd, ipv6: bool) -> io::Result<()> {
    let s = SockRef::from(sock);
    if ipv6 {
        s.set_unicast_hops_v6(255)
    } else {
        s.set_ttl_v4(255)
    }
}

/// Drops arriving segments with a TTL below [`min_ttl`]`(hops)`. Set on an outgoing
/// connection once it is up: a listener answers a SYN with its own TTL, which many
/// speakers (BIRD among them) leave at the system default until the connection is
/// accepted, so checking the SYN-ACK would refuse them.
pub fn require_min_ttl(sock: &impl AsFd, ipv6: bool, hops: u8) -> io::Result<()> {
    let min = libc::c_int::from(min_ttl(hops));
    if ipv6 {
        set_int(sock, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min)
    } else {
        set_int(sock, libc::IPPROTO_IP, libc::IP_MINTTL, min)
    }
}

fn set_int(
    sock: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: `sock` is a live descriptor borrowed for the duration of the call; `value` is
    // a local `c_int`, valid for reads of `len` bytes, and the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_ttl_per_rfc_5082() {
        assert_eq!(min_ttl(1), 255, "directly connected: only TTL 255 passes");
        assert_eq!(min_ttl(2), 254);
        assert_eq!(min_ttl(255), 1);
    }

    #[test]
    fn kernel_accepts_the_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        protect(&l, false, 1).unwrap();
        let s = SockRef::from(&l);
        assert_eq!(s.ttl_v4().unwrap(), 255);
        if let Ok(l6) = std::net::TcpListener::bind("[::1]:0") {
            protect(&l6, true, 2).unwrap();
        }
    }
}
