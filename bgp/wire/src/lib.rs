//! BGP-4 message codec (RFC 4271, 4760, 6793, 7606, 7911) with no I/O.
//!
//! The crate turns bytes into a small owned model ([`Message`]) and back. It has no sockets, no
//! timers and no session state of its own: whatever the session negotiated (4-octet AS numbers,
//! ADD-PATH per address family) travels in a [`Context`] passed to every call, because the same
//! bytes mean different things on different sessions.
//!
//! Decoding never panics on any input. Errors are protocol decisions rather than strings:
//! * [`MessageError`] is fatal for the session. It carries the NOTIFICATION that RFC 4271 §6 /
//!   RFC 7606 prescribe and the byte offset in the message where the problem was found.
//! * Inside an UPDATE, RFC 7606 allows softer treatments. They come back as
//!   [`UpdateIssue`]s on a successfully decoded [`DecodedUpdate`]: *attribute discard* (the
//!   attribute was dropped, the routes stand) or *treat-as-withdraw* (every prefix the UPDATE
//!   announced must be withdrawn instead).
//!
//! Layout: [`header`] frames messages, [`open`] and [`capability`] handle OPEN, [`attrs`] holds
//! the path-attribute model with [`attr_decode`]/[`attr_encode`], [`nlri`] the prefix encodings,
//! [`update`] the UPDATE message, [`notification`] and [`route_refresh`] the small ones and
//! [`message`] ties them together.

pub mod attr_decode;
pub mod attr_encode;
pub mod attrs;
pub mod capability;
pub mod error;
pub mod header;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
mod reader;
pub mod route_refresh;
pub mod types;
pub mod update;

pub use attrs::{
    Aggregator, AsPath, AsSegment, AsSegmentType, LargeCommunity, Origin, PathAttributes,
    RawAttribute,
};
pub use capability::{AddPathMode, Capability, GrFamily, GracefulRestartCap};
pub use error::{IssueAction, MessageError, UpdateIssue};
pub use header::{HEADER_LEN, MAX_MESSAGE_LEN, MessageType, frame_length};
pub use message::{Context, Decoded, Message};
pub use nlri::{Nlri, Prefix};
pub use notification::Notification;
pub use open::Open;
pub use route_refresh::{RefreshSubtype, RouteRefresh};
pub use types::{AS_TRANS, Afi, Family, NextHop, Safi};
pub use update::{DecodedUpdate, MpReach, MpUnreach, Update, pack_announcements, pack_withdrawals};
