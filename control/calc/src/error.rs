//! The one error type of the calculation graph and the explain engine.

/// Why a calculation or an explanation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// `explain` named an endpoint that is not in the datastore.
    #[error(
        "unknown endpoint {0:?}: no WorkloadEndpoint with that metadata.name or spec.workload (and no HostEndpoint with that name)"
    )]
    UnknownEndpoint(String),
    /// `explain` named a workload that several endpoints share (a pod with several interfaces).
    #[error(
        "endpoint {name:?} is ambiguous: it matches {candidates}; name the WorkloadEndpoint by metadata.name"
    )]
    AmbiguousEndpoint {
        /// What was asked for.
        name: String,
        /// The endpoints it could mean.
        candidates: String,
    },
    /// An endpoint has no address of the family the connection needs.
    #[error("{endpoint} has no {family} address to evaluate the connection with")]
    NoAddress {
        /// The endpoint.
        endpoint: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// Source and destination addresses are of different families.
    #[error("source {src} and destination {dst} are not of the same IP family")]
    MixedFamilies {
        /// Source address.
        src: std::net::IpAddr,
        /// Destination address.
        dst: std::net::IpAddr,
    },
    /// A request field is malformed.
    #[error("{field}: {message}")]
    BadRequest {
        /// The field (`--protocol`, `--from`, ...).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A rule the fastpath's table format cannot express exactly.
    #[error("cannot compile {0} to the fastpath's tables")]
    Unsupported(&'static str),
}
