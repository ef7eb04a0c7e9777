//! Per-packet metadata carried between nodes (VPP's `vnet_buffer` opaque).

use std::net::IpAddr;

use tortie_tables::{ConnRef, FlowKey};
use tortie_wire::Parsed;

use crate::compile::Target;
use crate::graph::NodeKind;

/// Marks "no endpoint".
pub(crate) const NO_EP: u32 = u32::MAX;

/// Marks "no entry" in a per-batch side table index ([`Meta::ct_slot`],
/// [`Meta::error_xlate`]).
pub(crate) const NO_SLOT: u16 = u16::MAX;

/// What one node decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Continue at this node.
    Next(NodeKind),
    /// Queue on this interface.
    Tx(u32),
    /// Drop.
    Drop(crate::DropReason),
}

/// Where a route sends a packet: what the route node writes for it in one copy (the route
/// memo keeps the whole of it for the next packet to the same destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Egress {
    /// The route's target.
    pub target: Target,
    /// Interface to transmit on.
    pub tx_if: u32,
    /// Destination MAC for the rewrite.
    pub dst_mac: [u8; 6],
    /// Source MAC for the rewrite.
    pub src_mac: [u8; 6],
    /// Tunnel endpoint, when the packet is to be encapsulated.
    pub encap_to: Option<std::net::Ipv4Addr>,
}

impl Egress {
    /// Not routed (yet).
    pub(crate) const NONE: Egress = Egress {
        target: Target::Blackhole,
        tx_if: 0,
        dst_mac: [0; 6],
        src_mac: [0; 6],
        encap_to: None,
    };
}

/// The state of one packet in the batch.
///
/// Kept small (every node pass walks the batch's metadata, so its size decides how much of
/// the L1 cache a batch occupies): values that only some packets need live in per-batch
/// side tables of the pipeline, indexed from here (the conntrack key, the ICMP-error
/// translation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    /// Whether the packet is traced.
    pub traced: bool,
    /// Serial number (for traces; set only for traced packets).
    pub serial: u64,
    /// The decoded frame.
    pub p: Parsed,
    /// Receiving endpoint index, or `NO_EP`.
    pub rx_ep: u32,
    /// Where the conntrack node's batched lookup left this packet's key (as received) and
    /// its result (`Pipeline::ct_keys` / `ct_results`), or `NO_SLOT` when it was not
    /// looked up.
    pub ct_slot: u16,
    /// The flow, once known.
    pub conn: Option<ConnRef>,
    /// The tuple to rewrite the packet to (NAT), when it differs.
    pub xlate: Option<FlowKey>,
    /// Destination after DNAT, for a new flow.
    pub dnat_to: Option<IpAddr>,
    /// Where the route node sends the packet: target, interface, MACs, tunnel.
    pub egress: Egress,
    /// Conntrack miss: a new flow.
    pub new_flow: bool,
    /// Allowed by the receiving endpoint's doNotTrack policy: no conntrack, no NAT, and the
    /// receiving endpoint's own program is skipped; the other side's program (a local
    /// workload's ingress, the uplink host endpoint's forward egress) still runs, on every
    /// packet since there is no flow to cache its verdict.
    pub untracked: bool,
    /// Decapsulated IP-in-IP from another node: the inner packet arrived on the tunnel, not
    /// on the uplink, so the uplink host endpoint's programs do not apply to it (as in
    /// Calico, where it arrives on `tunl0`).
    pub decapsulated: bool,
    /// A rule of the receiving host endpoint's preDNAT program allowed this new flow: its
    /// normal or applyOnForward ingress program is skipped (set by the pre-dnat node, so the
    /// policy node need not evaluate the program again).
    pub pre_dnat_accepted: bool,
    /// An ICMP error related to a tracked flow.
    pub related: bool,
    /// For an ICMP error about a NAT'd flow: where `Pipeline::error_xlates` holds the outer
    /// source and destination and the quoted tuple to rewrite it to, or `NO_SLOT`.
    pub error_xlate: u16,
}

/// A decoded-nothing placeholder for metadata slots not yet used.
pub(crate) const PLACEHOLDER: Parsed = Parsed {
    l3: tortie_wire::L3::Other,
    ethertype: 0,
    vlan: None,
    l3_offset: 0,
    l4_offset: 0,
    ip_len: 0,
    src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    proto: 0,
    src_port: 0,
    dst_port: 0,
    tcp_flags: 0,
    icmp_type: 0,
    icmp_code: 0,
    ttl: 0,
    fragment: tortie_wire::Fragment::Whole,
    frag_ident: 0,
    dont_fragment: false,
    embedded: None,
    arp_op: 0,
};

impl Meta {
    pub(crate) fn new(p: Parsed) -> Self {
        Self {
            traced: false,
            serial: 0,
            p,
            rx_ep: NO_EP,
            ct_slot: NO_SLOT,
            conn: None,
            xlate: None,
            dnat_to: None,
            egress: Egress::NONE,
            new_flow: false,
            untracked: false,
            decapsulated: false,
            pre_dnat_accepted: false,
            related: false,
            error_xlate: NO_SLOT,
        }
    }

    /// Clears the per-packet decisions for a new batch (the decoded frame is overwritten by
    /// the parse node).
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.rx_ep = NO_EP;
        self.ct_slot = NO_SLOT;
        self.conn = None;
        self.xlate = None;
        self.dnat_to = None;
        self.egress.target = Target::Blackhole;
        self.egress.encap_to = None;
        self.new_flow = false;
        self.untracked = false;
        self.decapsulated = false;
        self.pre_dnat_accepted = false;
        self.related = false;
        self.error_xlate = NO_SLOT;
    }

    /// Where a routed packet whose flow is settled goes on: straight to the host
    /// interface when it needs no translation (the kernel receives it as sent), to rewrite
    /// when it goes to a local workload (the mtu node does not limit those), otherwise
    /// through mtu and rewrite. A packet to the host on a NAT'd flow (the reply to a flow
    /// the host opened to a floating IP, or an ICMP error about one) must be translated
    /// back, or the kernel sees the workload's internal address and matches no socket.
    #[inline]
    pub(crate) fn onward(&self) -> Step {
        match self.egress.target {
            Target::Local(_) => Step::Next(NodeKind::Rewrite),
            Target::Host if self.xlate.is_none() && self.error_xlate == NO_SLOT => {
                Step::Tx(self.egress.tx_if)
            }
            _ => Step::Next(NodeKind::Mtu),
        }
    }
}
