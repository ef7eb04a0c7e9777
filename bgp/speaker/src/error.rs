//! Errors of the speaker crate.

use std::net::IpAddr;

/// A configuration value the speaker cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// local_as: AS 0 is reserved (RFC 7607).
    #[error("local_as: AS 0 is reserved")]
    InvalidLocalAs,
    /// router_id: 0.0.0.0 is not a valid BGP Identifier.
    #[error("router_id: 0.0.0.0 is not a valid BGP Identifier")]
    InvalidRouterId,
    /// graceful_restart.restart_time does not fit the 12-bit field.
    #[error("graceful_restart.restart_time: {0} s does not fit the 12-bit field (max 4095)")]
    RestartTimeTooLong(u64),
    /// Two peers share an address.
    #[error("peers: {0} is configured twice")]
    DuplicatePeer(IpAddr),
    /// hold_time must be 0 or 3..=65535 s.
    #[error("peer {peer}: hold_time {secs} s must be 0 or 3..=65535 (RFC 4271 §4.2)")]
    InvalidHoldTime {
        /// Peer address.
        peer: IpAddr,
        /// Configured value.
        secs: u64,
    },
    /// remote_as is 0.
    #[error("peer {0}: remote_as: AS 0 is reserved")]
    InvalidRemoteAs(IpAddr),
    /// The per-peer local AS is 0.
    #[error("peer {0}: local_as: AS 0 is reserved")]
    InvalidPeerLocalAs(IpAddr),
    /// GTSM needs at least one hop.
    #[error("peer {0}: ttl_security must be 1..=255 hops (RFC 5082)")]
    InvalidTtlSecurity(IpAddr),
    /// The per-peer restart time does not fit the 12-bit field.
    #[error("peer {peer}: restart_time {secs} s does not fit the 12-bit field (max 4095)")]
    PeerRestartTimeTooLong {
        /// Peer address.
        peer: IpAddr,
        /// Configured value.
        secs: u64,
    },
    /// No address family configured.
    #[error("peer {0}: families must not be empty")]
    NoFamilies(IpAddr),
    /// The TCP-MD5 key must be 1..=80 bytes (Linux TCP_MD5SIG_MAXKEYLEN).
    #[error("peer {0}: password must be 1..=80 bytes")]
    PasswordLength(IpAddr),
}

/// Errors of the tokio runtime adapter.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration was rejected.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Binding the listener failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// Address and port.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Setting TCP_MD5SIG failed.
    #[error("setting TCP-MD5 key for {peer}: {source}")]
    Md5 {
        /// Peer address.
        peer: IpAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The speaker task is gone.
    #[error("the speaker task has stopped")]
    Stopped,
}
