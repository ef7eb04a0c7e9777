//! Fastpath tables: conntrack, NAT, longest-prefix-match routes, IP sets and checksum
//! rewriting, as an I/O-free library with no dependency on other in-tree crates.
//!
//! # Threading and allocation model
//!
//! Every table here is either **per worker and mutable** ([`Conntrack`], which owns its SNAT
//! port pools) or **immutable and shared** ([`Ipv4Lpm`], [`Ipv6Lpm`], [`IpSet`], [`DnatMap`],
//! [`NatOutgoing`]), built by the config thread from a builder ([`LpmBuilder`],
//! [`IpSetBuilder`]) and swapped in whole between batches. Constructors and builders
//! allocate; nothing a worker calls per packet allocates, locks, logs or reads a clock. Time
//! is a `u64` `now` that the caller reads once per batch (nanoseconds with the default
//! [`Timeouts`]).
//!
//! # Per-packet use (pipeline view)
//!
//! ```
//! use std::net::Ipv4Addr;
//! use tortie_tables::{Conntrack, ConntrackConfig, FlowKey, NatRequest, SnatConfig, TcpFlags,
//!     Tracked, Verdict, proto};
//!
//! let node = Ipv4Addr::new(198, 18, 0, 1);
//! let mut ct = Conntrack::new(&ConntrackConfig {
//!     capacity: 1024,
//!     snat: SnatConfig { addresses: vec![node.into()], ..Default::default() },
//!     ..Default::default()
//! });
//! let now = 1_000;
//! let syn = TcpFlags(TcpFlags::SYN);
//! let pod_to_web = FlowKey::v4(Ipv4Addr::new(10, 65, 0, 2), Ipv4Addr::new(198, 19, 0, 9), 40000, 443, proto::TCP);
//!
//! // Miss: classify (not shown), then create the entry with the verdict and NAT to apply.
//! assert!(ct.lookup(&pod_to_web).is_none());
//! let conn = ct.insert(pod_to_web, now, syn, Verdict::ALLOW, 0, NatRequest::snat(node.into())).unwrap();
//! // The packet is rewritten to the translated tuple (fix checksums with `checksum`).
//! let out = ct.get(conn.id).unwrap().rewrite_for(conn.dir).unwrap();
//! assert_eq!(out.src_ip(), node);
//!
//! // The reply arrives addressed to the node; one lookup finds the flow and its direction.
//! let reply = out.reversed();
//! let hit = ct.lookup(&reply).unwrap();
//! assert_eq!(ct.track(hit, now + 1, TcpFlags(TcpFlags::SYN | TcpFlags::ACK)), Tracked::Valid);
//! assert!(ct.get(hit.id).unwrap().verdict().allows(hit.dir));
//! let back = ct.get(hit.id).unwrap().rewrite_for(hit.dir).unwrap();
//! assert_eq!(back.dst_ip(), Ipv4Addr::new(10, 65, 0, 2));
//!
//! // Once per batch: expire idle entries, a bounded number of slots at a time.
//! ct.sweep(now + 2, 64, |_, _| {});
//! ```
//!
//! # Modules
//!
//! - [`conntrack`]: the connection table, TCP state machine ([`conntrack::tcp`]), timeouts.
//! - [`nat`]: SNAT port pools ([`SnatPorts`], owned by the conntrack table so expiry releases
//!   ports) and the 1:1 floating-IP map ([`DnatMap`]).
//! - [`lpm`]: IPv4/IPv6 longest-prefix match (Poptrie) with a builder for new generations.
//! - [`ipset`]: [`IpSet`] (hash set of hosts + LPM of prefixes), [`PortSet`], [`NatOutgoing`].
//! - [`checksum`]: RFC 1071 checksums and RFC 1624 incremental updates for NAT rewrites.
//! - [`flow`]: the 5-tuple [`FlowKey`].
//!
//! Design and memory figures: `docs/design/tables.md`; measured performance:
//! `docs/perf/tables.md`.

pub mod checksum;
pub mod conntrack;
pub mod flow;
pub mod ipset;
pub mod lpm;
pub mod nat;

pub use conntrack::tcp::{TcpFlags, TcpState};
pub use conntrack::{
    Conn, ConnId, ConnRef, ConnState, Conntrack, ConntrackConfig, ConntrackStats, Direction,
    InsertError, NatRequest, Timeouts, Tracked, Verdict,
};
pub use flow::{FlowKey, proto};
pub use ipset::{IpSet, IpSetBuilder, NatOutgoing, PortSet};
pub use lpm::{
    Address, Ipv4Lpm, Ipv4LpmBuilder, Ipv4Prefix, Ipv6Lpm, Ipv6LpmBuilder, Ipv6Prefix, Lpm,
    LpmBuilder, LpmError, Prefix,
};
pub use nat::{DnatError, DnatMap, PortRange, SnatConfig, SnatError, SnatPorts};
