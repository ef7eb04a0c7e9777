//! The crate's one error type.

/// Why a node's BGP plan could not be made or run.
///
/// Every input problem names the resource (`Node "n1"`, `BGPPeer "rr"`, ...) and the field
/// path, so an operator can find the line to fix.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The node named in the input has no Node resource.
    #[error("Node {0:?}: no such Node resource")]
    NodeNotFound(String),
    /// A resource field holds a value the agent cannot use.
    #[error("{resource}: {field}: {problem}")]
    Invalid {
        /// The resource, e.g. `BGPPeer "tor"`.
        resource: String,
        /// The field path, e.g. `spec.peerIP`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The translated configuration was refused by the speaker.
    #[error("speaker configuration: {0}")]
    Speaker(#[from] tortie_bgp::ConfigError),
    /// The speaker could not start (listener, TCP-MD5).
    #[error("starting the speaker: {0}")]
    Runtime(#[from] tortie_bgp::RuntimeError),
    /// The agent's task has ended (the runtime was shut down).
    #[error("the BGP agent task has stopped")]
    Stopped,
}

impl AgentError {
    /// Shorthand for [`AgentError::Invalid`].
    pub(crate) fn invalid(
        resource: impl std::fmt::Display,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> AgentError {
        AgentError::Invalid {
            resource: resource.to_string(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}
