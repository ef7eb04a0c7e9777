//! Checked, zero-copy views over Ethernet, ARP, IPv4, IPv6, TCP, UDP, SCTP, ICMP and ICMPv6
//! frames.
//!
//! # The checked-view contract
//!
//! Every view has a `new_checked` constructor that verifies, once, every length and field
//! its accessors rely on. After it succeeds no accessor can panic, so the fastpath can run
//! untrusted frames through it with `panic = "abort"` semantics in mind. Views borrow the
//! frame and never copy it. [`parse::parse_frame`] chains the views into a single pass that
//! yields a small `Copy` summary ([`parse::Parsed`]) of the fields the pipeline decides on.
//!
//! Fields are read at fixed offsets with `from_be_bytes` after the one length check (no
//! pointer casts, no `unsafe`, no alignment assumptions), as Firecracker's `dumbo` PDUs do.
//!
//! Writers (`emit`, `write_*`) take `&mut [u8]` and return `None` rather than panic when the
//! buffer is too short. Checksums live in [`checksum`], including the RFC 1624 incremental
//! update used after NAT and TTL rewrites.
//!
//! With the `fuzzing` feature the IPv4 header checksum is not verified, so fuzzers can reach the
//! deeper layers.

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod parse;

pub use error::WireError;
pub use parse::{Embedded, Fragment, L3, Parsed, parse_frame, parse_frame_into};
