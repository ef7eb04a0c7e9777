//! Flow templates: every frame of a flow is built once with `etherparse`; the hot loop copies
//! the template into a UMEM frame and patches only the 16-byte stamp (flow, sequence number,
//! timestamp) and the L4 checksum.
//!
//! Stamp layout, at the start of the L4 payload, big-endian:
//!
//! ```text
//! 0      2      4              8                              16
//! | magic | flow |     seq      |          tx time (ns)         |
//! ```
//!
//! The template is built with the stamp zeroed, so the L4 checksum can be patched
//! incrementally (RFC 1624, eqn. 3, with the old field value 0): `HC' = ~(~HC + m')`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;

/// First two bytes of every stamp, so the receiver ignores unrelated frames.
pub const MAGIC: u16 = 0x7470;
/// Bytes of the stamp.
pub const STAMP_LEN: usize = 16;
/// Simple IMIX (7 × 64, 4 × 594, 1 × 1518 bytes), as a 12-packet cycle.
pub const IMIX: [usize; 12] = [64, 594, 64, 1518, 64, 594, 64, 64, 594, 64, 594, 64];

/// Why a pktgen option was rejected. Messages name the option.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PktgenError {
    /// An address or port range did not parse.
    #[error("--{option}: {value:?}: {reason}")]
    Range {
        /// The option.
        option: &'static str,
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A frame size outside 64..=1518 (or not `imix`).
    #[error("--frame-size: {0:?} is not 64..=1518 or imix")]
    FrameSize(String),
    /// Building a template failed.
    #[error("building the template for flow {flow}: {reason}")]
    Build {
        /// Flow index.
        flow: usize,
        /// What etherparse reported.
        reason: String,
    },
}

/// Transport protocol of the generated traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP segments (ACK set, no connection: a stateless stream of segments).
    Tcp,
    /// ICMP / ICMPv6 echo requests.
    Icmp,
}

/// An inclusive range of addresses (as u128) or ports, walked in order and wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First value.
    pub first: u128,
    /// Number of values (at least 1).
    pub count: u128,
}

impl Range {
    /// The `i`-th value, wrapping around.
    pub fn nth(&self, i: usize) -> u128 {
        self.first + (i as u128 % self.count)
    }

    /// Parse `A`, `A-B` or `A/LEN` (addresses; `A` is the first address used) for `option`.
    pub fn parse_ip(option: &'static str, s: &str, v6: bool) -> Result<Range, PktgenError> {
        let err = |reason: &str| PktgenError::Range {
            option,
            value: s.into(),
            reason: reason.into(),
        };
        let addr = |t: &str| -> Result<u128, PktgenError> {
            match t.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) if !v6 => Ok(u128::from(u32::from(a))),
                Ok(IpAddr::V6(a)) if v6 => Ok(u128::from(a)),
                Ok(_) => Err(err(if v6 {
                    "an IPv6 address is needed with --ipv6"
                } else {
                    "an IPv4 address is needed (add --ipv6 for IPv6)"
                })),
                Err(e) => Err(err(&e.to_string())),
            }
        };
        let bits = if v6 { 128 } else { 32 };
        if let Some((a, len)) = s.split_once('/') {
            let first = addr(a)?;
            let len: u32 = len.parse().map_err(|_| err("bad prefix length"))?;
            if len > bits {
                return Err(err("prefix length too long"));
            }
            let size = 1u128.checked_shl(bits - len).unwrap_or(u128::MAX);
            let end = (first & !(size.wrapping_sub(1))).saturating_add(size);
            Ok(Range {
                first,
                count: (end - first).max(1),
            })
        } else if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (addr(a)?, addr(b)?);
            if b < a {
                return Err(err("range end is before its start"));
            }
            Ok(Range {
                first: a,
                count: b - a + 1,
            })
        } else {
            Ok(Range {
                first: addr(s)?,
                count: 1,
            })
        }
    }

    /// Parse a port `P` or `P-Q` for `option`.
    pub fn parse_port(option: &'static str, s: &str) -> Result<Range, PktgenError> {
        let err = |reason: &str| PktgenError::Range {
            option,
            value: s.into(),
            reason: reason.into(),
        };
        let port = |t: &str| t.trim().parse::<u16>().map_err(|e| err(&e.to_string()));
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if b < a {
            return Err(err("range end is before its start"));
        }
        Ok(Range {
            first: u128::from(a),
            count: u128::from(b - a) + 1,
        })
    }
}

/// Frame sizes (Ethernet, with the 4-byte FCS the NIC would add) to cycle through.
pub fn parse_frame_size(s: &str) -> Result<Vec<usize>, PktgenError> {
    if s.eq_ignore_ascii_case("imix") {
        return Ok(IMIX.to_vec());
    }
    match s.parse::<usize>() {
        Ok(n) if (64..=1518).contains(&n) => Ok(vec![n]),
        _ => Err(PktgenError::FrameSize(s.into())),
    }
}

/// What every template is built from.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// Protocol.
    pub proto: Proto,
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source addresses.
    pub src: Range,
    /// Destination addresses.
    pub dst: Range,
    /// Source ports (ICMP: echo identifiers).
    pub sport: Range,
    /// Destination ports (unused for ICMP).
    pub dport: Range,
}

/// One prebuilt frame and where its per-packet fields live.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole frame, stamp zeroed, checksums valid.
    pub bytes: Vec<u8>,
    /// Offset of the stamp.
    pub stamp_at: usize,
    /// Offset of the L4 checksum.
    pub csum_at: usize,
    /// UDP: a computed checksum of 0 is sent as 0xffff (RFC 768).
    pub udp: bool,
}

impl Template {
    /// Build flow `flow`'s frame of `frame_size` bytes (FCS included, so 4 more than written);
    /// frames too small for the headers plus the stamp grow to fit.
    pub fn build(spec: &FlowSpec, flow: usize, frame_size: usize) -> Result<Self, PktgenError> {
        let (s, d) = (spec.src.nth(flow), spec.dst.nth(flow));
        let (sp, dp) = (spec.sport.nth(flow) as u16, spec.dport.nth(flow) as u16);
        let eth = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac);
        let ip = if spec.ipv6 {
            eth.ipv6(Ipv6Addr::from(s).octets(), Ipv6Addr::from(d).octets(), 64)
        } else {
            eth.ipv4(
                Ipv4Addr::from(s as u32).octets(),
                Ipv4Addr::from(d as u32).octets(),
                64,
            )
        };
        let l2l3 = if spec.ipv6 { 14 + 40 } else { 14 + 20 };
        let (l4_len, csum_off) = match spec.proto {
            Proto::Udp => (8, 6),
            Proto::Tcp => (20, 16),
            Proto::Icmp => (8, 2),
        };
        let hdr = l2l3 + l4_len;
        let len = (frame_size - 4).max(hdr + STAMP_LEN);
        let payload = vec![0u8; len - hdr];
        let mut bytes = Vec::with_capacity(len);
        let res = match spec.proto {
            Proto::Udp => ip.udp(sp, dp).write(&mut bytes, &payload),
            Proto::Tcp => ip.tcp(sp, dp, 1, 65535).ack(1).write(&mut bytes, &payload),
            Proto::Icmp if spec.ipv6 => ip.icmpv6_echo_request(sp, 0).write(&mut bytes, &payload),
            Proto::Icmp => ip.icmpv4_echo_request(sp, 0).write(&mut bytes, &payload),
        };
        res.map_err(|e| PktgenError::Build {
            flow,
            reason: e.to_string(),
        })?;
        debug_assert_eq!(bytes.len(), len);
        Ok(Template {
            bytes,
            stamp_at: hdr,
            csum_at: l2l3 + csum_off,
            udp: spec.proto == Proto::Udp,
        })
    }

    /// Write the stamp into `frame` (a copy of this template) and patch the L4 checksum.
    #[inline]
    pub fn stamp(&self, frame: &mut [u8], flow: u16, seq: u32, ts_ns: u64) {
        let at = self.stamp_at;
        frame[at..at + 2].copy_from_slice(&MAGIC.to_be_bytes());
        frame[at + 2..at + 4].copy_from_slice(&flow.to_be_bytes());
        frame[at + 4..at + 8].copy_from_slice(&seq.to_be_bytes());
        frame[at + 8..at + 16].copy_from_slice(&ts_ns.to_be_bytes());
        // RFC 1624 eqn. 3 with m = 0: HC' = ~(~HC + m').
        let old = u16::from_be_bytes([self.bytes[self.csum_at], self.bytes[self.csum_at + 1]]);
        let mut sum = u32::from(!old);
        for w in frame[at..at + STAMP_LEN].chunks_exact(2) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let mut csum = !(sum as u16);
        if self.udp && csum == 0 {
            csum = 0xffff;
        }
        frame[self.csum_at..self.csum_at + 2].copy_from_slice(&csum.to_be_bytes());
    }
}

/// A received stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Flow index.
    pub flow: u16,
    /// Per-flow sequence number.
    pub seq: u32,
    /// Transmit time, CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
}

/// Find the stamp in a received Ethernet frame (IPv4/IPv6, UDP/TCP/ICMP); `None` for frames
/// that are not ours.
pub fn parse_stamp(frame: &[u8]) -> Option<Stamp> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let (l4, proto) = match ethertype {
        0x0800 => (14 + usize::from(frame.get(14)? & 0x0f) * 4, *frame.get(23)?),
        0x86dd => (14 + 40, *frame.get(20)?),
        _ => return None,
    };
    let l4_len = match proto {
        17 | 1 | 58 => 8,
        6 => usize::from(frame.get(l4 + 12)? >> 4) * 4,
        _ => return None,
    };
    let s = frame.get(l4 + l4_len..l4 + l4_len + STAMP_LEN)?;
    if u16::from_be_bytes([s[0], s[1]]) != MAGIC {
        return None;
    }
    Some(Stamp {
        flow: u16::from_be_bytes([s[2], s[3]]),
        seq: u32::from_be_bytes([s[4], s[5], s[6], s[7]]),
        ts_ns: u64::from_be_bytes([s[8], s[9], s[10], s[11], s[12], s[13], s[14], s[15]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(proto: Proto, ipv6: bool) -> FlowSpec {
        let (src, dst) = if ipv6 {
            ("2001:db8::1/64", "2001:db8:1::1/64")
        } else {
            ("198.18.0.1/16", "198.19.0.1/16")
        };
        FlowSpec {
            proto,
            ipv6,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: Range::parse_ip("src-range", src, ipv6).unwrap(),
            dst: Range::parse_ip("dst-range", dst, ipv6).unwrap(),
            sport: Range::parse_port("src-port", "1024-1087").unwrap(),
            dport: Range::parse_port("dst-port", "9").unwrap(),
        }
    }

    /// Every protocol/family: the stamped frame parses, carries the stamp back, and its L4
    /// checksum verifies against a full recomputation by etherparse.
    #[test]
    fn stamped_frames_round_trip_with_valid_checksums() {
        for proto in [Proto::Udp, Proto::Tcp, Proto::Icmp] {
            for ipv6 in [false, true] {
                for size in [64, 594, 1518] {
                    let sp = spec(proto, ipv6);
                    let t = Template::build(&sp, 5, size).unwrap();
                    assert!(t.bytes.len() >= size - 4);
                    let mut f = t.bytes.clone();
                    t.stamp(&mut f, 5, 0xdead_beef, 0x0123_4567_89ab_cdef);
                    let st = parse_stamp(&f).expect("stamp found");
                    assert_eq!(
                        (st.flow, st.seq, st.ts_ns),
                        (5, 0xdead_beef, 0x0123_4567_89ab_cdef)
                    );
                    let p = SlicedPacket::from_ethernet(&f).unwrap();
                    let ok = match (p.net.unwrap(), p.transport.unwrap()) {
                        (NetSlice::Ipv4(ip), TransportSlice::Udp(u)) => {
                            u.to_header()
                                .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
                                .unwrap()
                                == u.checksum()
                        }
                        (NetSlice::Ipv6(ip), TransportSlice::Udp(u)) => {
                            u.to_header()
                                .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
                                .unwrap()
                                == u.checksum()
                        }
                        (NetSlice::Ipv4(ip), TransportSlice::Tcp(tc)) => {
                            tc.to_header()
                                .calc_checksum_ipv4(&ip.header().to_header(), tc.payload())
                                .unwrap()
                                == tc.checksum()
                        }
                        (NetSlice::Ipv6(ip), TransportSlice::Tcp(tc)) => {
                            tc.to_header()
                                .calc_checksum_ipv6(&ip.header().to_header(), tc.payload())
                                .unwrap()
                                == tc.checksum()
                        }
                        (NetSlice::Ipv4(_), TransportSlice::Icmpv4(i)) => {
                            etherparse::Icmpv4Header::with_checksum(i.icmp_type(), i.payload())
                                .checksum
                                == i.checksum()
                        }
                        (NetSlice::Ipv6(ip), TransportSlice::Icmpv6(i)) => {
                            let h = ip.header();
                            etherparse::Icmpv6Header::with_checksum(
                                i.icmp_type(),
                                h.source(),
                                h.destination(),
                                i.payload(),
                            )
                            .unwrap()
                            .checksum
                                == i.checksum()
                        }
                        other => panic!("unexpected {proto:?} v6={ipv6}: {other:?}"),
                    };
                    assert!(ok, "{proto:?} ipv6={ipv6} size={size}: bad checksum");
                }
            }
        }
    }

    #[test]
    fn flows_walk_the_ranges() {
        let sp = spec(Proto::Udp, false);
        let a = Template::build(&sp, 0, 64).unwrap();
        let b = Template::build(&sp, 3, 64).unwrap();
        assert_eq!(&a.bytes[26..30], &[198, 18, 0, 1]);
        assert_eq!(&b.bytes[26..30], &[198, 18, 0, 4]);
        assert_eq!(&b.bytes[30..34], &[198, 19, 0, 4]);
        assert_eq!(u16::from_be_bytes([b.bytes[34], b.bytes[35]]), 1027);
        assert_eq!(a.bytes.len(), 60);
    }

    #[test]
    fn ranges_parse_and_name_the_option() {
        let r = Range::parse_ip("dst-range", "198.18.0.0/15", false).unwrap();
        assert_eq!(r.count, 1 << 17);
        let r = Range::parse_ip("dst-range", "198.18.0.10-198.18.0.19", false).unwrap();
        assert_eq!(
            (r.count, r.nth(12)),
            (10, u128::from(u32::from(Ipv4Addr::new(198, 18, 0, 12))))
        );
        let e = Range::parse_ip("src-range", "198.18.0.1/40", false).unwrap_err();
        assert!(e.to_string().starts_with("--src-range:"), "{e}");
        assert!(Range::parse_ip("src-range", "2001:db8::1", false).is_err());
        assert!(Range::parse_port("dst-port", "10-5").is_err());
        assert_eq!(Range::parse_port("dst-port", "7-9").unwrap().count, 3);
        assert_eq!(parse_frame_size("imix").unwrap().len(), 12);
        assert!(parse_frame_size("63").is_err());
        assert!(parse_frame_size("1519").is_err());
    }

    #[test]
    fn foreign_frames_are_not_stamps() {
        let sp = spec(Proto::Udp, false);
        let t = Template::build(&sp, 0, 64).unwrap();
        assert_eq!(parse_stamp(&t.bytes), None, "zeroed stamp has no magic");
        assert_eq!(parse_stamp(&t.bytes[..20]), None);
        assert_eq!(parse_stamp(&[]), None);
    }
}
