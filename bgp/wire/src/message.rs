//! The message enum and the entry points [`Message::decode`] / [`Message::encode`].

use crate::error::MessageError;
use crate::header::{self, HEADER_LEN, MessageType, frame_length};
use crate::notification::Notification;
use crate::open::Open;
use crate::reader::Reader;
use crate::route_refresh::RouteRefresh;
use crate::update::{DecodedUpdate, Update};

/// What a session negotiated that changes the encoding, for one direction.
///
/// A session keeps two: one for decoding what the peer sends (ADD-PATH on if the peer sends
/// path IDs and we said we receive them) and one for encoding what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS numbers are 4 octets.
    pub four_octet_as: bool,
    /// Per family ([`crate::Family::index`]): NLRI carry a 4-byte path identifier (RFC 7911).
    pub add_path: [bool; 2],
}

impl Context {
    /// The context of a modern session: 4-octet AS, no ADD-PATH.
    pub fn modern() -> Self {
        Context {
            four_octet_as: true,
            add_path: [false; 2],
        }
    }
}

/// A BGP message.
// UPDATE dominates the size; messages are transient (decoded, acted on, dropped), so boxing
// the large variant would only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

/// A decoded message plus, for an UPDATE, its RFC 7606 issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A non-UPDATE message.
    Other(Message),
    /// An UPDATE.
    Update(DecodedUpdate),
}

impl Message {
    /// Decodes exactly one message from `buf` (header included; `buf.len()` must equal the
    /// header's length field, as returned by [`frame_length`]). Never panics.
    pub fn decode(buf: &[u8], ctx: &Context) -> Result<Decoded, MessageError> {
        let len = match frame_length(buf)? {
            Some(l) if l == buf.len() => l,
            _ => {
                let data = buf.get(16..18).map(<[u8]>::to_vec).unwrap_or_default();
                return Err(MessageError::new(
                    16,
                    "buffer does not hold exactly one message",
                    crate::error::code::HEADER,
                    crate::error::subcode::BAD_LENGTH,
                    data,
                ));
            }
        };
        let body = Reader::new(&buf[HEADER_LEN..len], HEADER_LEN);
        let ty = MessageType::from_u8(buf[18]);
        Ok(match ty {
            Some(MessageType::Open) => Decoded::Other(Message::Open(Open::decode_body(body)?)),
            Some(MessageType::Update) => Decoded::Update(Update::decode_body(body, ctx)?),
            Some(MessageType::Notification) => {
                Decoded::Other(Message::Notification(Notification::decode_body(body)?))
            }
            Some(MessageType::Keepalive) => Decoded::Other(Message::Keepalive),
            Some(MessageType::RouteRefresh) => {
                Decoded::Other(Message::RouteRefresh(RouteRefresh::decode_body(body)?))
            }
            // frame_length already rejected unknown types.
            None => {
                return Err(MessageError::new(
                    18,
                    "unknown message type",
                    crate::error::code::HEADER,
                    crate::error::subcode::BAD_TYPE,
                    vec![buf[18]],
                ));
            }
        })
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, ctx: &Context, out: &mut Vec<u8>) {
        match self {
            Message::Open(o) => o.encode(out),
            Message::Update(u) => u.encode(ctx, out),
            Message::Notification(n) => n.encode(out),
            Message::Keepalive => {
                let at = header::start(out, MessageType::Keepalive);
                header::finish(out, at);
            }
            Message::RouteRefresh(r) => r.encode(out),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, ctx: &Context) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(ctx, &mut v);
        v
    }
}

#[cfg(test)]
mod tests;
