//! Configuration, requests and outcomes of the conntrack API (all `Copy` or plain data, so
//! the hot path can return and count them without allocating).

use std::net::IpAddr;

use super::entry::ConnRef;
use super::timeouts::Timeouts;
use crate::nat::snat::{SnatConfig, SnatError};

/// Construction parameters of a [`Conntrack`](super::Conntrack).
#[derive(Clone, Debug)]
pub struct ConntrackConfig {
    /// Maximum number of live connections (at most 2^31 - 1).
    pub capacity: usize,
    /// Idle timeouts per state.
    pub timeouts: Timeouts,
    /// Seed of the index hash. Use a random value per table (see [`random_seed`]) so remote
    /// senders cannot aim flows at one probe chain.
    pub hash_seed: u64,
    /// Accept a bare ACK as the first segment of a TCP connection (Linux
    /// `nf_conntrack_tcp_loose`, default on), so flows survive a fastpath restart.
    pub tcp_loose_pickup: bool,
    /// How many slots an insert into a full table may scan for expired entries to evict
    /// before it gives up with [`InsertError::Full`].
    pub evict_scan: usize,
    /// SNAT addresses and port range.
    pub snat: SnatConfig,
    /// How many IPv6 connections with NAT can be live at once. Their translated addresses
    /// (32 bytes) do not fit in the 64-byte entry and live in a side table of this many
    /// slots; `None` sizes it at a quarter of `capacity`. IPv4 NAT needs no side slot.
    pub ipv6_nat_capacity: Option<usize>,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            capacity: 1 << 16,
            timeouts: Timeouts::default(),
            hash_seed: random_seed(),
            tcp_loose_pickup: true,
            evict_scan: 64,
            snat: SnatConfig::default(),
            ipv6_nat_capacity: None,
        }
    }
}

/// A random 64-bit seed from the standard library's per-process hasher keys (no extra crate,
/// no syscall per call after the first).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x7072_6f74_6f63_6f6c);
    h.finish()
}

/// The NAT wanted for a new connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NatRequest {
    /// Rewrite the destination to this address, and port if given (floating IP / DNAT).
    pub dnat: Option<(IpAddr, Option<u16>)>,
    /// Rewrite the source to this node address with a port from its SNAT pool.
    pub snat: Option<IpAddr>,
}

impl NatRequest {
    /// No translation.
    pub const NONE: NatRequest = NatRequest {
        dnat: None,
        snat: None,
    };

    /// Source NAT to `addr` (natOutgoing).
    pub fn snat(addr: IpAddr) -> NatRequest {
        NatRequest {
            dnat: None,
            snat: Some(addr),
        }
    }

    /// Destination NAT to `addr`, keeping the port unless `port` is given.
    pub fn dnat(addr: IpAddr, port: Option<u16>) -> NatRequest {
        NatRequest {
            dnat: Some((addr, port)),
            snat: None,
        }
    }
}

/// Why a connection could not be created. `Copy`, no allocation: map it to a drop counter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InsertError {
    /// Every slot is live and none of the scanned ones had expired ("conntrack full").
    #[error("conntrack table full")]
    Full,
    /// The key is already tracked (look up before inserting).
    #[error("connection already tracked")]
    Exists(ConnRef),
    /// A TCP segment that cannot open a connection (not a SYN, nor an ACK with loose pickup).
    #[error("TCP segment with flags {0:#04x} cannot open a connection")]
    NotInitial(u8),
    /// The NAT address is of the other address family than the flow.
    #[error("NAT address family differs from the flow's")]
    FamilyMismatch,
    /// SNAT could not get a port.
    #[error(transparent)]
    Snat(#[from] SnatError),
    /// The reply tuple is already used by another connection (and no other SNAT port could
    /// fix it).
    #[error("reply tuple already in use by another connection")]
    ReplyCollision,
    /// An IPv6 flow asked for NAT but every slot of the IPv6 NAT side table
    /// (`ConntrackConfig::ipv6_nat_capacity`) is taken.
    #[error("IPv6 NAT binding table full")]
    Ipv6NatFull,
}

/// The outcome of [`Conntrack::track`](super::Conntrack::track).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tracked {
    /// Valid: state and timer were updated.
    Valid,
    /// Out-of-state TCP segment that may still be legitimate: pass it, nothing updated.
    Ignored,
    /// Invalid for the connection's state: Calico drops these (`ctstate INVALID`).
    Invalid,
    /// The connection had timed out (or the handle is stale); it is now removed. Treat the
    /// packet as a miss.
    Expired,
}

/// Counters kept by the table (plain integers: the table is per worker).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ConntrackStats {
    /// Connections created.
    pub inserted: u64,
    /// Connections removed because they expired (sweep, eviction or a late packet).
    pub expired: u64,
    /// Connections removed explicitly.
    pub removed: u64,
    /// Inserts refused because the table was full.
    pub full: u64,
}
