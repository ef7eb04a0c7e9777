//! TCP-MD5 signatures (RFC 2385) through Linux's `TCP_MD5SIG` socket option.
//!
//! Neither `socket2` nor `nix` wraps this option, so it goes through the crate's raw
//! `setsockopt` ([`super::sockopt`]). The `struct tcp_md5sig` argument is assembled as a
//! plain byte array with the kernel's layout (include/uapi/linux/tcp.h), so no `repr(C)`
//! struct or pointer cast is needed.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;

use super::sockopt;

/// `sizeof(struct tcp_md5sig)`: sockaddr_storage (128) + flags, prefixlen (1 + 1) +
/// keylen (2) + ifindex (4) + key (80).
const TCP_MD5SIG_LEN: usize = 216;
/// `TCP_MD5SIG_MAXKEYLEN`.
pub const MAX_KEY_LEN: usize = 80;

/// Builds the option value for `peer` with `key` (an empty key deletes the entry).
fn encode(peer: IpAddr, key: &[u8]) -> io::Result<[u8; TCP_MD5SIG_LEN]> {
    if key.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 bytes",
        ));
    }
    let mut b = [0u8; TCP_MD5SIG_LEN];
    match peer {
        IpAddr::V4(a) => {
            let fam = u16::try_from(libc::AF_INET).unwrap_or(2);
            b[0..2].copy_from_slice(&fam.to_ne_bytes());
            b[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            let fam = u16::try_from(libc::AF_INET6).unwrap_or(10);
            b[0..2].copy_from_slice(&fam.to_ne_bytes());
            b[8..24].copy_from_slice(&a.octets());
        }
    }
    // tcpm_flags (128) and tcpm_prefixlen (129) stay 0: exact address match.
    let keylen = u16::try_from(key.len()).unwrap_or(0);
    b[130..132].copy_from_slice(&keylen.to_ne_bytes());
    // tcpm_ifindex (132..136) stays 0.
    b[136..136 + key.len()].copy_from_slice(key);
    Ok(b)
}

/// Installs (or, with `None`, removes) the TCP-MD5 key used with `peer` on `sock`.
///
/// On a listening socket this covers connections accepted from `peer`; on a socket about
/// to connect it covers that connection. For an IPv6 socket talking to an IPv4 peer, pass
/// the IPv4-mapped IPv6 address.
pub fn set_md5_key(sock: &impl AsFd, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let value = encode(peer, key.unwrap_or(&[]))?;
    sockopt::set(sock, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_ipv4_entry() {
        let b = encode("198.18.0.3".parse().unwrap(), b"s3cret").unwrap();
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 2);
        assert_eq!(&b[4..8], &[198, 18, 0, 3]);
        assert_eq!(u16::from_ne_bytes([b[130], b[131]]), 6);
        assert_eq!(&b[136..142], b"s3cret");
    }

    #[test]
    fn overlong_key_is_rejected() {
        assert!(encode("::1".parse().unwrap(), &[0; 81]).is_err());
    }

    #[test]
    fn kernel_accepts_key_on_a_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_md5_key(&l, "127.0.0.1".parse().unwrap(), Some(b"s3cret")).unwrap();
        set_md5_key(&l, "127.0.0.1".parse().unwrap(), None).unwrap();
    }
}
