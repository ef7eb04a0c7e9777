//! Network address translation: SNAT port pools and the 1:1 DNAT map.
//!
//! Translation state lives in the conntrack entry (original and translated tuple, see
//! [`crate::conntrack::Conn::rewrite_for`]); this module holds what decides and backs a
//! translation: the per-(address, protocol) SNAT port pools, owned by the conntrack table so
//! that every way an entry dies gives its port back, and the floating-IP map.

pub mod dnat;
pub mod snat;

pub use dnat::{DnatError, DnatMap};
pub use snat::{PortRange, SnatConfig, SnatError, SnatPorts};
