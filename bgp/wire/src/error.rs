//! Decode errors as protocol decisions (RFC 4271 §6, RFC 7606).
//!
//! A [`MessageError`] ends the session: it carries the NOTIFICATION to send. An
//! [`UpdateIssue`] is a softer RFC 7606 treatment recorded on an UPDATE that otherwise decoded.
//! Both name the byte offset (from the first marker byte of the message) where the problem lies.

use crate::notification::Notification;

/// A fatal decode error: send `notification` and reset the session (RFC 4271 §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset} (NOTIFICATION {}/{})", notification.code, notification.subcode)]
pub struct MessageError {
    /// Offset from the start of the message (the first marker byte).
    pub offset: usize,
    /// What was wrong, for logs.
    pub what: &'static str,
    /// The NOTIFICATION that RFC 4271 / RFC 7606 prescribe for this error.
    pub notification: Notification,
}

impl MessageError {
    pub(crate) fn new(
        offset: usize,
        what: &'static str,
        code: u8,
        subcode: u8,
        data: Vec<u8>,
    ) -> Self {
        MessageError {
            offset,
            what,
            notification: Notification {
                code,
                subcode,
                data,
            },
        }
    }
}

/// The RFC 7606 treatment applied to a malformed part of an UPDATE that did not reset the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueAction {
    /// RFC 7606 §2 "attribute discard": the attribute was dropped; the routes stand.
    AttributeDiscard,
    /// RFC 7606 §2 "treat-as-withdraw": every prefix announced by this UPDATE is withdrawn.
    TreatAsWithdraw,
}

/// One non-fatal problem found in an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (attribute type {attr_type}) at byte {offset}: {action:?}")]
pub struct UpdateIssue {
    /// Offset of the offending attribute's flags byte from the start of the message.
    pub offset: usize,
    /// The attribute type code (0 when the issue is not tied to one attribute).
    pub attr_type: u8,
    /// What was wrong, for logs.
    pub what: &'static str,
    /// The treatment applied.
    pub action: IssueAction,
}

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5).
pub mod code {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Subcodes used with the codes above.
pub mod subcode {
    /// Header: Connection Not Synchronized.
    pub const NOT_SYNCHRONIZED: u8 = 1;
    /// Header: Bad Message Length.
    pub const BAD_LENGTH: u8 = 2;
    /// Header: Bad Message Type.
    pub const BAD_TYPE: u8 = 3;
    /// OPEN: Unsupported Version Number.
    pub const UNSUPPORTED_VERSION: u8 = 1;
    /// OPEN: Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// OPEN: Bad BGP Identifier.
    pub const BAD_BGP_ID: u8 = 3;
    /// OPEN: Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPT_PARAM: u8 = 4;
    /// OPEN: Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// OPEN: Unsupported Capability (RFC 5492).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    /// UPDATE: Malformed Attribute List.
    pub const MALFORMED_ATTR_LIST: u8 = 1;
    /// UPDATE: Unrecognized Well-known Attribute.
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    /// UPDATE: Missing Well-known Attribute.
    pub const MISSING_WELL_KNOWN: u8 = 3;
    /// UPDATE: Attribute Flags Error.
    pub const ATTR_FLAGS: u8 = 4;
    /// UPDATE: Attribute Length Error.
    pub const ATTR_LENGTH: u8 = 5;
    /// UPDATE: Invalid ORIGIN Attribute.
    pub const INVALID_ORIGIN: u8 = 6;
    /// UPDATE: Invalid NEXT_HOP Attribute.
    pub const INVALID_NEXT_HOP: u8 = 8;
    /// UPDATE: Optional Attribute Error.
    pub const OPTIONAL_ATTR: u8 = 9;
    /// UPDATE: Invalid Network Field.
    pub const INVALID_NETWORK: u8 = 10;
    /// UPDATE: Malformed AS_PATH.
    pub const MALFORMED_AS_PATH: u8 = 11;
    /// FSM: unexpected message in OpenSent (RFC 6608).
    pub const FSM_IN_OPENSENT: u8 = 1;
    /// FSM: unexpected message in OpenConfirm (RFC 6608).
    pub const FSM_IN_OPENCONFIRM: u8 = 2;
    /// FSM: unexpected message in Established (RFC 6608).
    pub const FSM_IN_ESTABLISHED: u8 = 3;
    /// Cease: Administrative Shutdown (RFC 4486).
    pub const ADMIN_SHUTDOWN: u8 = 2;
    /// Cease: Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Cease: Administrative Reset.
    pub const ADMIN_RESET: u8 = 4;
    /// Cease: Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Cease: Connection Collision Resolution.
    pub const COLLISION: u8 = 7;
    /// ROUTE-REFRESH: Invalid Message Length (RFC 7313 §5).
    pub const INVALID_RR_LENGTH: u8 = 1;
}
