//! Longest-prefix-match route tables for IPv4 and IPv6.
//!
//! Two halves, as the fastpath swaps whole table generations:
//! - [`LpmBuilder`]: the mutable route set (a hash map of prefix → value) kept by the config
//!   thread; `insert`/`remove` are O(1) and [`LpmBuilder::build`] produces a new generation.
//! - [`Lpm`]: the immutable lookup structure (a Poptrie, see [`poptrie`]), shared read-only by
//!   workers; lookups never allocate or lock.
//!
//! Values are `u32` next-hop indices up to [`MAX_VALUE`] (the top bit is the trie's node flag).

mod builder;
pub mod poptrie;
mod prefix;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use builder::LpmBuilder;
pub use poptrie::{Lpm, MAX_VALUE};
pub use prefix::{Address, Ipv4Prefix, Ipv6Prefix, Prefix};

/// An IPv4 route table.
pub type Ipv4Lpm = Lpm<Ipv4Addr>;
/// An IPv6 route table.
pub type Ipv6Lpm = Lpm<Ipv6Addr>;
/// The builder of an IPv4 route table.
pub type Ipv4LpmBuilder = LpmBuilder<Ipv4Addr>;
/// The builder of an IPv6 route table.
pub type Ipv6LpmBuilder = LpmBuilder<Ipv6Addr>;

/// Errors of prefix parsing and route table building.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LpmError {
    /// A prefix length beyond the address width.
    #[error("prefix length {len} exceeds the address width of {max} bits")]
    PrefixLength {
        /// The length given.
        len: u8,
        /// The family's width.
        max: u8,
    },
    /// A next-hop value above [`MAX_VALUE`].
    #[error("next-hop value {0} exceeds the maximum {MAX_VALUE}")]
    Value(u32),
    /// Text that is not `address/length` (first 64 characters quoted).
    #[error("not a prefix: {0:?}")]
    Parse(String),
}
