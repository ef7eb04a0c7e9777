//! Interfaces, addresses and routes through rtnetlink.
//!
//! rtnetlink is asynchronous; the plugins are not. Each call runs a private single-threaded
//! tokio runtime for the length of one operation, on a thread of its own when the work must
//! happen inside the container's network namespace (a netlink socket talks to the namespace
//! of the thread that opened it, and `setns` changes only the calling thread).

mod netns;
mod ops;
mod workload;

pub use netns::in_netns;
pub use workload::{WorkloadLink, check, host_link_exists, setup, teardown};

/// The MAC address of every host-side workload interface (as Calico's `ee:ee:ee:ee:ee:ee`).
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The IPv4 gateway workloads route through (answered by the host side / the fastpath).
pub const GATEWAY_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);
/// The host side's IPv6 link-local address (EUI-64 of `ee:ee:ee:ee:ee:ee`).
pub const GATEWAY_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// A netlink failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct NetlinkError {
    /// The step that failed.
    pub what: String,
    /// The kernel's or the library's message.
    pub cause: String,
}

impl NetlinkError {
    pub(crate) fn new(what: impl Into<String>, cause: impl std::fmt::Display) -> NetlinkError {
        NetlinkError {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}
