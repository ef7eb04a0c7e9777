//! The IPAM error type.

use std::net::IpAddr;

use ipnet::IpNet;

/// Why an IPAM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The address is not inside the block it was looked up in.
    #[error("{ip} is not in block {block}")]
    NotInBlock {
        /// The address.
        ip: IpAddr,
        /// The block.
        block: IpNet,
    },
    /// The requested address is already allocated.
    #[error("{ip} is already in use{}", handle.as_ref().map(|h| format!(" by handle {h}")).unwrap_or_default())]
    AddressInUse {
        /// The address.
        ip: IpAddr,
        /// Its current owner, when known.
        handle: Option<String>,
    },
    /// The requested address is in no enabled pool the node may use.
    #[error("{ip} is not in any enabled IP pool usable by node {node}")]
    NotInPool {
        /// The address.
        ip: IpAddr,
        /// The node asking.
        node: String,
    },
    /// The requested address is reserved by an IPReservation.
    #[error("{ip} is reserved by an IPReservation")]
    Reserved {
        /// The address.
        ip: IpAddr,
    },
    /// The requested address lies in another node's block and strictAffinity forbids borrowing.
    #[error(
        "{ip} is in block {block} affine to node {owner}, and strictAffinity forbids borrowing it"
    )]
    StrictAffinity {
        /// The address.
        ip: IpAddr,
        /// The block.
        block: IpNet,
        /// The node the block belongs to.
        owner: String,
    },
    /// Not enough free addresses.
    #[error(
        "no free IPv{family} address in pools [{pools}] for node {node} (asked {wanted}, got {got})"
    )]
    Exhausted {
        /// 4 or 6.
        family: u8,
        /// The pools tried.
        pools: String,
        /// The node asking.
        node: String,
        /// How many were asked for.
        wanted: usize,
        /// How many could be allocated (and were rolled back).
        got: usize,
    },
    /// The node reached its block cap.
    #[error("node {node} already holds {cap} blocks (maxBlocksPerHost)")]
    BlockCap {
        /// The node.
        node: String,
        /// The cap.
        cap: u32,
    },
    /// A stored IPAM record could not be decoded.
    #[error("corrupt IPAM record at {key}: {cause}")]
    Corrupt {
        /// The datastore key.
        key: String,
        /// What was wrong.
        cause: String,
    },
    /// Too many compare-and-swap conflicts in a row.
    #[error("gave up on {what} after {attempts} conflicting writes")]
    Contention {
        /// The operation.
        what: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The IPAM configuration or a pool is invalid.
    #[error("invalid IPAM configuration: {0}")]
    InvalidConfig(String),
    /// The datastore failed.
    #[error("datastore: {0}")]
    Datastore(String),
}
