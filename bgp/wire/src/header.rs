//! The 19-byte message header and stream framing (RFC 4271 §4.1).

use crate::error::{MessageError, code, subcode};

/// Length of the fixed header: 16-byte marker, 2-byte length, 1-byte type.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The message type octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1
    Open,
    /// 2
    Update,
    /// 3
    Notification,
    /// 4
    Keepalive,
    /// 5 (RFC 2918)
    RouteRefresh,
}

impl MessageType {
    /// Parses the type octet.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The type octet.
    pub fn to_u8(self) -> u8 {
        match self {
            MessageType::Open => 1,
            MessageType::Update => 2,
            MessageType::Notification => 3,
            MessageType::Keepalive => 4,
            MessageType::RouteRefresh => 5,
        }
    }

    /// Smallest legal total length for this type (RFC 4271 §4, RFC 2918 §3).
    fn min_len(self) -> usize {
        match self {
            MessageType::Open => 29,
            MessageType::Update => 23,
            MessageType::Notification => 21,
            MessageType::Keepalive => 19,
            MessageType::RouteRefresh => 23,
        }
    }
}

/// Looks at the start of a byte stream and says how long the first message is.
///
/// Returns `Ok(None)` while fewer than 19 bytes are buffered, and `Ok(Some(len))` once the
/// header is complete and sane (the caller then waits for `len` bytes). Header errors come
/// back with the NOTIFICATION of RFC 4271 §6.1.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, MessageError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(MessageError::new(
            0,
            "marker is not all ones",
            code::HEADER,
            subcode::NOT_SYNCHRONIZED,
            vec![],
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    let bad_len = || {
        MessageError::new(
            16,
            "bad message length",
            code::HEADER,
            subcode::BAD_LENGTH,
            buf[16..18].to_vec(),
        )
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_len());
    }
    let Some(ty) = MessageType::from_u8(buf[18]) else {
        return Err(MessageError::new(
            18,
            "unknown message type",
            code::HEADER,
            subcode::BAD_TYPE,
            vec![buf[18]],
        ));
    };
    if len < ty.min_len() || (ty == MessageType::Keepalive && len != HEADER_LEN) {
        return Err(bad_len());
    }
    Ok(Some(len))
}

/// Appends a header with a zero length; [`finish`] fills the length in.
pub(crate) fn start(out: &mut Vec<u8>, ty: MessageType) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0]);
    out.push(ty.to_u8());
    at
}

/// Writes the length of the message that starts at `at` and runs to the end of `out`.
pub(crate) fn finish(out: &mut [u8], at: usize) {
    let len = out.len() - at;
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out[at + 16..at + 18].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16, ty: u8) -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(ty);
        v
    }

    #[test]
    fn incomplete_header_waits() {
        assert_eq!(frame_length(&[0xff; 10]), Ok(None));
    }

    #[test]
    fn keepalive_frames() {
        assert_eq!(frame_length(&hdr(19, 4)), Ok(Some(19)));
    }

    #[test]
    fn bad_marker_is_not_synchronized() {
        let mut h = hdr(19, 4);
        h[3] = 0;
        let e = frame_length(&h).unwrap_err();
        assert_eq!(
            (e.notification.code, e.notification.subcode, e.offset),
            (1, 1, 0)
        );
    }

    #[test]
    fn bad_length_echoes_length_field() {
        let e = frame_length(&hdr(5000, 2)).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (1, 2));
        assert_eq!(e.notification.data, 5000u16.to_be_bytes().to_vec());
        let e = frame_length(&hdr(20, 4)).unwrap_err();
        assert_eq!(
            e.notification.subcode, 2,
            "a KEEPALIVE must be exactly 19 bytes"
        );
        let e = frame_length(&hdr(22, 2)).unwrap_err();
        assert_eq!(
            e.notification.subcode, 2,
            "an UPDATE needs at least 23 bytes"
        );
    }

    #[test]
    fn bad_type_echoes_type() {
        let e = frame_length(&hdr(19, 9)).unwrap_err();
        assert_eq!(
            (
                e.notification.subcode,
                e.notification.data.clone(),
                e.offset
            ),
            (3, vec![9], 18)
        );
    }
}
