//! Shallow virtual reassembly state: how non-first fragments follow their first fragment.
//!
//! A non-first fragment carries no transport header, so it cannot be classified or matched
//! to a flow by ports. When a first fragment (offset 0, more-fragments set) has gone through
//! conntrack and policy, the pipeline records its flow under (source, destination, protocol,
//! fragment id). Later fragments look that record up: they are forwarded with the first
//! fragment's flow (its cached verdict, NAT addresses and route) or, with no record, dropped
//! as `fragment-no-state`. Fragments arriving before their first fragment are therefore
//! dropped (the sender's retransmission recovers), never let through unpoliced. This is VPP's
//! "shallow virtual reassembly" without buffering.
//!
//! The table is fixed-size and direct-mapped: a newer datagram may overwrite an older one's
//! record, which then drops its remaining fragments. Records expire after
//! [`FRAGMENT_TIMEOUT`] (Linux `ipfrag_time`, 30 s).

use std::net::IpAddr;

use tortie_tables::ConnRef;

/// Slots in the table (a power of two).
pub const FRAGMENT_SLOTS: usize = 1024;
/// How long a first fragment's record lives, in nanoseconds.
pub const FRAGMENT_TIMEOUT: u64 = 30_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ident: u32,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: FragKey,
    conn: ConnRef,
    expires: u64,
}

/// The per-worker fragment table.
#[derive(Debug)]
pub struct FragmentTable {
    slots: Vec<Option<Slot>>,
}

impl Default for FragmentTable {
    fn default() -> Self {
        Self {
            slots: vec![None; FRAGMENT_SLOTS],
        }
    }
}

fn index(k: &FragKey) -> usize {
    let fold = |ip: IpAddr| -> u64 {
        match ip {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64)
            }
        }
    };
    let h = fold(k.src).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ fold(k.dst).rotate_left(17)
        ^ (u64::from(k.ident) << 8 | u64::from(k.proto));
    let h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h >> 32) as usize & (FRAGMENT_SLOTS - 1)
}

impl FragmentTable {
    /// Records the flow of a first fragment.
    pub fn record(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        ident: u32,
        conn: ConnRef,
        now: u64,
    ) {
        let key = FragKey {
            src,
            dst,
            proto,
            ident,
        };
        let i = index(&key);
        self.slots[i] = Some(Slot {
            key,
            conn,
            expires: now.saturating_add(FRAGMENT_TIMEOUT),
        });
    }

    /// The flow of a later fragment's datagram, if its first fragment was recorded.
    pub fn lookup(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        ident: u32,
        now: u64,
    ) -> Option<ConnRef> {
        let key = FragKey {
            src,
            dst,
            proto,
            ident,
        };
        match self.slots[index(&key)] {
            Some(s) if s.key == key && s.expires >= now => Some(s.conn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tortie_tables::{Conntrack, ConntrackConfig, FlowKey, NatRequest, TcpFlags, Verdict};

    fn conn() -> ConnRef {
        let mut ct = Conntrack::new(&ConntrackConfig {
            capacity: 4,
            ..Default::default()
        });
        let key = FlowKey::v4(
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            1,
            2,
            17,
        );
        ct.insert(key, 0, TcpFlags::NONE, Verdict::ALLOW, 0, NatRequest::NONE)
            .unwrap()
    }

    #[test]
    fn records_expire_and_keys_must_match() {
        let mut t = FragmentTable::default();
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
        );
        let c = conn();
        t.record(a, b, 17, 7, c, 100);
        assert_eq!(t.lookup(a, b, 17, 7, 100 + FRAGMENT_TIMEOUT), Some(c));
        assert_eq!(
            t.lookup(a, b, 17, 7, 101 + FRAGMENT_TIMEOUT),
            None,
            "expired"
        );
        assert_eq!(t.lookup(a, b, 17, 8, 100), None, "other datagram");
        assert_eq!(t.lookup(b, a, 17, 7, 100), None, "other direction");
        assert_eq!(t.lookup(a, b, 6, 7, 100), None, "other protocol");
    }
}
