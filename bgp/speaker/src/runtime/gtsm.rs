//! GTSM, the Generalized TTL Security Mechanism (RFC 5082), through Linux socket options.
//!
//! A protected session sends with TTL (hop limit) 255 and has the kernel drop every segment
//! whose TTL is below 256 − hops (`IP_MINTTL`, `IPV6_MINHOPCOUNT`), so a spoofer farther
//! away than the configured hop count cannot reach the BGP socket (RFC 5082 §3). The TTL to
//! send is set through `socket2`; the minimum has no safe wrapper and goes through the
//! crate's raw `setsockopt` ([`super::sockopt`]) with an `int` argument.

use socket2::SockRef;
use std::io;
use std::os::fd::AsFd;

use super::sockopt;

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
        sockopt::set(
            sock,
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            &min.to_ne_bytes(),
        )
    } else {
        sockopt::set(sock, libc::IPPROTO_IP, libc::IP_MINTTL, &min.to_ne_bytes())
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
