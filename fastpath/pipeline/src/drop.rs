//! Drop reasons: one `Copy` enum, one counter each (house rule 12).
//!
//! Every frame a batch receives ends either queued for transmission or counted under exactly
//! one of these reasons.

use tortie_wire::WireError;

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Why the pipeline dropped a frame.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($(#[$doc])* $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (length of the counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The stable counter name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }

            /// Index into the counter array.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// Ethernet header cut short.
    EthernetTruncated => "ethernet-truncated",
    /// ARP that is not a well-formed Ethernet/IPv4 ARP.
    ArpMalformed => "arp-malformed",
    /// IPv4 header cut short.
    Ipv4Truncated => "ipv4-truncated",
    /// IPv4 version/IHL wrong.
    Ipv4BadHeader => "ipv4-bad-header",
    /// IPv4 total length inconsistent with the frame.
    Ipv4BadLength => "ipv4-bad-length",
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum => "ipv4-bad-checksum",
    /// IPv6 fixed header wrong or cut short.
    Ipv6BadHeader => "ipv6-bad-header",
    /// IPv6 payload length past the frame.
    Ipv6BadLength => "ipv6-bad-length",
    /// IPv6 extension chain malformed or too long.
    Ipv6BadExtension => "ipv6-bad-extension",
    /// TCP header malformed.
    TcpMalformed => "tcp-malformed",
    /// UDP header malformed.
    UdpMalformed => "udp-malformed",
    /// SCTP header malformed.
    SctpMalformed => "sctp-malformed",
    /// ICMP header malformed.
    IcmpMalformed => "icmp-malformed",
    /// Arrived on an interface the tables do not know.
    UnknownInterface => "unknown-interface",
    /// Neither ARP, IPv4 nor IPv6.
    NotIp => "not-ip",
    /// ARP/ND the fastpath does not answer (replies, gratuitous ARP, DAD probes).
    NeighborIgnored => "neighbor-ignored",
    /// Workload sent from an address it does not own.
    Spoofed => "spoofed-source",
    /// TTL or hop limit expired and no ICMP error could be sent.
    TtlExceeded => "ttl-exceeded",
    /// Multicast, broadcast or unspecified addresses.
    BadAddress => "bad-address",
    /// Denied by a doNotTrack policy.
    UntrackedDeny => "untracked-policy-deny",
    /// Denied by a preDNAT policy.
    PreDnatDeny => "pre-dnat-policy-deny",
    /// Denied by policy on the first packet of a flow.
    PolicyDeny => "policy-deny",
    /// The flow's cached verdict does not allow this direction.
    CachedDeny => "conntrack-verdict-deny",
    /// Conntrack judged the packet invalid for the flow's state.
    CtInvalid => "conntrack-invalid",
    /// A TCP segment that cannot open a flow (no SYN, loose pickup off).
    CtNotInitial => "conntrack-not-initial",
    /// The conntrack table is full.
    CtFull => "conntrack-full",
    /// No SNAT port was free, or the reply tuple collided.
    NatFailed => "nat-failed",
    /// An ICMP error that belongs to no tracked flow.
    IcmpErrorUnrelated => "icmp-error-unrelated",
    /// A non-first fragment whose first fragment was not seen.
    FragmentNoState => "fragment-no-state",
    /// No route for the destination.
    NoRoute => "no-route",
    /// Routed to a blackhole.
    Blackhole => "blackhole",
    /// Workload-to-host traffic under DefaultEndpointToHostAction Drop.
    EndpointToHost => "endpoint-to-host",
    /// IP-in-IP from a source that is not a known node.
    DecapUnknownSource => "decap-unknown-source",
    /// Not enough headroom for a rewrite (see the headroom contract).
    NoHeadroom => "no-headroom",
    /// Bigger than the MTU with DF clear: the fastpath does not fragment.
    MtuExceeded => "mtu-exceeded",
    /// An ICMP error or a tunnel needed this node's address of that family, and it has none.
    NoNodeAddress => "no-node-address",
    /// The batch already spans the most TX interfaces.
    TxInterfacesExhausted => "tx-interfaces-exhausted",
    /// A route names an endpoint or node the tables lack.
    DanglingRoute => "dangling-route",
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::EthernetTruncated => Self::EthernetTruncated,
            WireError::ArpMalformed => Self::ArpMalformed,
            WireError::Ipv4Truncated => Self::Ipv4Truncated,
            WireError::Ipv4BadHeader => Self::Ipv4BadHeader,
            WireError::Ipv4BadLength => Self::Ipv4BadLength,
            WireError::Ipv4BadChecksum => Self::Ipv4BadChecksum,
            WireError::Ipv6BadHeader => Self::Ipv6BadHeader,
            WireError::Ipv6BadLength => Self::Ipv6BadLength,
            WireError::Ipv6BadExtension => Self::Ipv6BadExtension,
            WireError::TcpMalformed => Self::TcpMalformed,
            WireError::UdpMalformed => Self::UdpMalformed,
            WireError::SctpMalformed => Self::SctpMalformed,
            WireError::IcmpMalformed => Self::IcmpMalformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
