//! Rule conditions the tuple tables do not index: set memberships, negations, and fields with
//! too many values to expand. They are checked only on a candidate entry whose indexed fields
//! already matched, so their cost is paid by few packets.

use ipnet::IpNet;

use crate::ipset::{IpSetTable, SetMember};
use crate::rule::{KeyT, PortRange, SetId};

/// Which address or port field a condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Src,
    Dst,
}

/// One non-indexed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pred {
    /// Address in at least one of the networks (a field left out of the index).
    InNets(Side, Box<[IpNet]>),
    /// Address in none of the networks (`notNets`).
    NotInNets(Side, Box<[IpNet]>),
    /// Address is a member of the set (`selector`).
    InSet(Side, SetId),
    /// Address is not a member of the set (`notSelector`).
    NotInSet(Side, SetId),
    /// Port in at least one range (a field left out of the index).
    InPorts(Side, Box<[PortRange]>),
    /// Port in none of the ranges (`notPorts`).
    NotInPorts(Side, Box<[PortRange]>),
    /// Protocol differs (`notProtocol`).
    NotProto(u8),
}

/// The predicate of one rule, shared by all its entries in both families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extra {
    pub action: u32,
    pub preds: Box<[Pred]>,
}

impl Extra {
    #[inline]
    pub fn eval<A: SetMember>(&self, k: &KeyT<A>, sets: &IpSetTable) -> bool {
        let addr = |side: Side| if side == Side::Src { k.src } else { k.dst };
        let port = |side: Side| {
            if side == Side::Src {
                k.src_port
            } else {
                k.dst_port
            }
        };
        self.preds.iter().all(|p| match p {
            Pred::InNets(side, nets) => nets.iter().any(|n| A::in_net(addr(*side), n)),
            Pred::NotInNets(side, nets) => !nets.iter().any(|n| A::in_net(addr(*side), n)),
            Pred::InSet(side, id) => sets.contains(*id, addr(*side)),
            Pred::NotInSet(side, id) => !sets.contains(*id, addr(*side)),
            Pred::InPorts(side, r) => r.iter().any(|r| r.contains(port(*side))),
            Pred::NotInPorts(side, r) => !r.iter().any(|r| r.contains(port(*side))),
            Pred::NotProto(p) => k.proto != *p,
        })
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.preds.len() * core::mem::size_of::<Pred>()
            + self
                .preds
                .iter()
                .map(|p| match p {
                    Pred::InNets(_, n) | Pred::NotInNets(_, n) => {
                        n.len() * core::mem::size_of::<IpNet>()
                    }
                    Pred::InPorts(_, r) | Pred::NotInPorts(_, r) => {
                        r.len() * core::mem::size_of::<PortRange>()
                    }
                    _ => 0,
                })
                .sum::<usize>()
    }
}
