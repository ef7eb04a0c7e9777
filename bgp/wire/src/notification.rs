//! NOTIFICATION (RFC 4271 §4.5) and KEEPALIVE-free small helpers.

use crate::error::{MessageError, code, subcode};
use crate::header::{self, HEADER_LEN, MessageType};
use crate::reader::Reader;
use std::fmt;

/// A NOTIFICATION message: error code, subcode and diagnostic data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code (see [`crate::error::code`]).
    pub code: u8,
    /// Error subcode (see [`crate::error::subcode`]).
    pub subcode: u8,
    /// Data whose meaning depends on code/subcode.
    pub data: Vec<u8>,
}

impl Notification {
    /// A Cease NOTIFICATION with the given subcode (RFC 4486).
    pub fn cease(sub: u8) -> Self {
        Notification {
            code: code::CEASE,
            subcode: sub,
            data: vec![],
        }
    }

    /// Hold Timer Expired.
    pub fn hold_timer_expired() -> Self {
        Notification {
            code: code::HOLD_TIMER_EXPIRED,
            subcode: 0,
            data: vec![],
        }
    }

    /// Finite State Machine Error with an RFC 6608 subcode.
    pub fn fsm(sub: u8) -> Self {
        Notification {
            code: code::FSM,
            subcode: sub,
            data: vec![],
        }
    }

    /// Is this the collision-resolution Cease (RFC 4486 subcode 7)?
    pub fn is_collision(&self) -> bool {
        self.code == code::CEASE && self.subcode == subcode::COLLISION
    }

    pub(crate) fn decode_body(mut r: Reader<'_>) -> Result<Self, MessageError> {
        let bad = |o| {
            MessageError::new(
                o,
                "NOTIFICATION too short",
                code::HEADER,
                subcode::BAD_LENGTH,
                vec![],
            )
        };
        let c = r.u8().ok_or_else(|| bad(r.offset()))?;
        let s = r.u8().ok_or_else(|| bad(r.offset()))?;
        Ok(Notification {
            code: c,
            subcode: s,
            data: r.rest().to_vec(),
        })
    }

    /// Appends the encoded message. Data beyond what fits in 4096 bytes is cut off.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = header::start(out, MessageType::Notification);
        out.push(self.code);
        out.push(self.subcode);
        let room = header::MAX_MESSAGE_LEN - HEADER_LEN - 2;
        out.extend_from_slice(&self.data[..self.data.len().min(room)]);
        header::finish(out, at);
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code {
            code::HEADER => "message header error",
            code::OPEN => "OPEN message error",
            code::UPDATE => "UPDATE message error",
            code::HOLD_TIMER_EXPIRED => "hold timer expired",
            code::FSM => "FSM error",
            code::CEASE => "cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH message error",
            _ => "unknown error",
        };
        write!(f, "{name} ({}/{})", self.code, self.subcode)
    }
}
