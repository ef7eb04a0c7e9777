//! Connection states and their idle timeouts.
//!
//! Timestamps are opaque `u64` values of a monotonic clock that the caller reads once per
//! batch; the tables never read a clock. Timeouts are in the same unit. The defaults below
//! assume nanoseconds (use [`Timeouts::scaled`] for another tick).

use super::tcp::{TCP_STATE_COUNT, TcpState};
use crate::flow::proto;

/// One second in the default tick (nanoseconds).
pub const SECOND: u64 = 1_000_000_000;

/// The tracking state of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ConnState {
    /// A TCP connection and its state.
    Tcp(TcpState),
    /// UDP, ICMP or another protocol: only the original direction has been seen.
    New,
    /// UDP, ICMP or another protocol: the reply direction has been seen too.
    Replied,
}

const CODE_NEW: u8 = 0x40;
const CODE_REPLIED: u8 = 0x41;
/// Code of a free slot in the entry slab.
pub(crate) const CODE_FREE: u8 = 0xff;

impl ConnState {
    pub(crate) fn code(self) -> u8 {
        match self {
            ConnState::Tcp(s) => s as u8,
            ConnState::New => CODE_NEW,
            ConnState::Replied => CODE_REPLIED,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<ConnState> {
        match c {
            CODE_NEW => Some(ConnState::New),
            CODE_REPLIED => Some(ConnState::Replied),
            _ => TcpState::from_index(c).map(ConnState::Tcp),
        }
    }
}

/// Idle timeouts per state, in the caller's clock unit.
///
/// Defaults (seconds): TCP states follow Linux `nf_conntrack_tcp_timeout_*` except
/// `ESTABLISHED`, which takes Calico's eBPF dataplane default of one hour instead of Linux's
/// five days (a userspace table is sized, not elastic, and Calico's own non-kernel conntrack
/// already made that choice). UDP follows Linux (`udp_timeout` 30 s, `udp_timeout_stream`
/// 120 s), ICMP Linux's 30 s, other protocols Linux's generic 600 s.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeouts {
    /// Per TCP state, indexed by [`TcpState::index`].
    pub tcp: [u64; TCP_STATE_COUNT],
    /// UDP flow that has not seen a reply.
    pub udp_new: u64,
    /// UDP flow that has seen a reply.
    pub udp_replied: u64,
    /// ICMP/ICMPv6 echo flows.
    pub icmp: u64,
    /// Any other protocol.
    pub other: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = SECOND;
        let mut tcp = [0u64; TCP_STATE_COUNT];
        tcp[TcpState::SynSent.index()] = 120 * s;
        tcp[TcpState::SynRecv.index()] = 60 * s;
        tcp[TcpState::Established.index()] = 3600 * s;
        tcp[TcpState::FinWait.index()] = 120 * s;
        tcp[TcpState::CloseWait.index()] = 60 * s;
        tcp[TcpState::LastAck.index()] = 30 * s;
        tcp[TcpState::TimeWait.index()] = 120 * s;
        tcp[TcpState::Close.index()] = 10 * s;
        tcp[TcpState::SynSent2.index()] = 120 * s;
        Timeouts {
            tcp,
            udp_new: 30 * s,
            udp_replied: 120 * s,
            icmp: 30 * s,
            other: 600 * s,
        }
    }
}

impl Timeouts {
    /// The defaults expressed in a clock that ticks `ticks_per_second` times a second.
    pub fn scaled(ticks_per_second: u64) -> Self {
        let d = Timeouts::default();
        let f = |ns: u64| ns / SECOND * ticks_per_second;
        Timeouts {
            tcp: d.tcp.map(f),
            udp_new: f(d.udp_new),
            udp_replied: f(d.udp_replied),
            icmp: f(d.icmp),
            other: f(d.other),
        }
    }

    /// The idle timeout of a connection with this protocol and state.
    #[inline]
    pub fn for_state(&self, protocol: u8, state: ConnState) -> u64 {
        match state {
            ConnState::Tcp(s) => self.tcp[s.index()],
            ConnState::New | ConnState::Replied => match protocol {
                proto::UDP if state == ConnState::New => self.udp_new,
                proto::UDP => self.udp_replied,
                proto::ICMP | proto::ICMPV6 => self.icmp,
                _ => self.other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_round_trip() {
        for s in TcpState::ALL
            .map(ConnState::Tcp)
            .into_iter()
            .chain([ConnState::New, ConnState::Replied])
        {
            assert_eq!(ConnState::from_code(s.code()), Some(s));
        }
        assert_eq!(ConnState::from_code(CODE_FREE), None);
    }

    #[test]
    fn defaults_follow_linux_and_calico() {
        let t = Timeouts::default();
        assert_eq!(
            t.for_state(proto::TCP, ConnState::Tcp(TcpState::Established)),
            3600 * SECOND
        );
        assert_eq!(
            t.for_state(proto::TCP, ConnState::Tcp(TcpState::TimeWait)),
            120 * SECOND
        );
        assert_eq!(
            t.for_state(proto::TCP, ConnState::Tcp(TcpState::Close)),
            10 * SECOND
        );
        assert_eq!(t.for_state(proto::UDP, ConnState::New), 30 * SECOND);
        assert_eq!(t.for_state(proto::UDP, ConnState::Replied), 120 * SECOND);
        assert_eq!(t.for_state(proto::ICMPV6, ConnState::Replied), 30 * SECOND);
        assert_eq!(t.for_state(47, ConnState::New), 600 * SECOND);
        assert_eq!(Timeouts::scaled(1000).udp_new, 30_000);
    }
}
