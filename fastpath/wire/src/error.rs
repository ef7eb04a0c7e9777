//! The one error type of the wire layer.
//!
//! It is `Copy` and carries no context so that the hot path can turn it into a drop-reason
//! counter without allocating (house rule 12). Each variant names the header and the field
//! that failed the check.

/// Why a frame failed a view's check. Every variant maps to one pipeline drop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The Ethernet header (or an 802.1Q tag) is cut short.
    EthernetTruncated,
    /// The ARP packet is shorter than 28 bytes or is not Ethernet/IPv4 ARP.
    ArpMalformed,
    /// Fewer than 20 bytes of IPv4 header, or fewer than the IHL says.
    Ipv4Truncated,
    /// The IPv4 version nibble is not 4 or the IHL is below 5.
    Ipv4BadHeader,
    /// The IPv4 total length is shorter than the header or longer than the frame.
    Ipv4BadLength,
    /// The IPv4 header checksum does not verify (RFC 791 section 3.1).
    Ipv4BadChecksum,
    /// Fewer than 40 bytes of IPv6 header, or the version nibble is not 6.
    Ipv6BadHeader,
    /// The IPv6 payload length runs past the frame.
    Ipv6BadLength,
    /// An IPv6 extension header is cut short or the chain is longer than we walk.
    Ipv6BadExtension,
    /// The TCP header is cut short or its data offset is below 5 words.
    TcpMalformed,
    /// The UDP header is cut short or its length field is inconsistent.
    UdpMalformed,
    /// The SCTP common header is cut short.
    SctpMalformed,
    /// The ICMP or ICMPv6 header is cut short.
    IcmpMalformed,
}

impl WireError {
    /// A short, stable name used by counters and traces.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EthernetTruncated => "ethernet-truncated",
            Self::ArpMalformed => "arp-malformed",
            Self::Ipv4Truncated => "ipv4-truncated",
            Self::Ipv4BadHeader => "ipv4-bad-header",
            Self::Ipv4BadLength => "ipv4-bad-length",
            Self::Ipv4BadChecksum => "ipv4-bad-checksum",
            Self::Ipv6BadHeader => "ipv6-bad-header",
            Self::Ipv6BadLength => "ipv6-bad-length",
            Self::Ipv6BadExtension => "ipv6-bad-extension",
            Self::TcpMalformed => "tcp-malformed",
            Self::UdpMalformed => "udp-malformed",
            Self::SctpMalformed => "sctp-malformed",
            Self::IcmpMalformed => "icmp-malformed",
        }
    }
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for WireError {}
