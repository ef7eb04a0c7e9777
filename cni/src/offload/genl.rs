//! A minimal generic netlink client: family lookup, and one request answered by replies and
//! an acknowledgement.
//!
//! Message layout (RFC 3549 section 2.3.2; the kernel's include/uapi/linux/netlink.h and
//! genetlink.h): a 16-byte `nlmsghdr` (length, type, flags, sequence, port id; host byte
//! order), a 4-byte `genlmsghdr` (command, version, reserved), then attributes, each a 4-byte
//! header (length, type) and a payload padded to 4 bytes.

use std::os::fd::AsFd;

use netlink_sys::{Socket, protocols::NETLINK_GENERIC};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::OffloadError;
use super::attrs::{Attr, AttrWriter, align4, find, parse_attrs};

const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// Set on an acknowledgement that carries extended-ack attributes after the capped header.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// The generic netlink controller (`GENL_ID_CTRL`) and its commands and attributes.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// How long one request may wait for the kernel's answer.
const REPLY_TIMEOUT_MS: u16 = 2000;
const RECV_BUFFER: usize = 64 * 1024;

/// A generic netlink socket in the namespace of the thread that opened it.
pub struct GenlSocket {
    socket: Socket,
    seq: u32,
}

impl GenlSocket {
    pub fn open() -> Result<GenlSocket, OffloadError> {
        let io = |step: &'static str| move |err: std::io::Error| OffloadError::Socket { step, err };
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(io("open"))?;
        socket.bind_auto().map_err(io("bind"))?;
        // Error messages from the kernel (extended ack), without the request echoed back.
        socket
            .set_ext_ack(true)
            .map_err(io("set NETLINK_EXT_ACK"))?;
        socket
            .set_cap_ack(true)
            .map_err(io("set NETLINK_CAP_ACK"))?;
        Ok(GenlSocket { socket, seq: 0 })
    }

    /// The id of the generic netlink family called `name`.
    pub fn family_id(&mut self, name: &str) -> Result<u16, OffloadError> {
        let mut attrs = AttrWriter::new();
        attrs.string(CTRL_ATTR_FAMILY_NAME, name);
        let what = format!("look up generic netlink family {name:?}");
        let replies = self
            .request(
                GENL_ID_CTRL,
                CTRL_CMD_GETFAMILY,
                1,
                &attrs.into_bytes(),
                &what,
            )
            .map_err(|err| match err {
                OffloadError::Kernel { errno: 2, .. } => OffloadError::NoFamily(name.to_string()),
                other => other,
            })?;
        for reply in &replies {
            let attrs = parse_attrs(reply, "family reply")?;
            if let Some(id) = find(&attrs, CTRL_ATTR_FAMILY_ID).and_then(Attr::u16) {
                return Ok(id);
            }
        }
        Err(OffloadError::NoFamily(name.to_string()))
    }

    /// Sends one request (with an acknowledgement asked for) and returns the attribute bytes
    /// of every reply to it, once the kernel has acknowledged it. `what` names the request in
    /// errors.
    pub fn request(
        &mut self,
        family: u16,
        cmd: u8,
        version: u8,
        attrs: &[u8],
        what: &str,
    ) -> Result<Vec<Vec<u8>>, OffloadError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = u32::try_from(NLMSG_HDRLEN + GENL_HDRLEN + attrs.len()).unwrap_or(u32::MAX);
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&family.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[cmd, version, 0, 0]);
        msg.extend_from_slice(attrs);
        self.socket
            .send(&msg, 0)
            .map_err(|err| OffloadError::Socket { step: "send", err })?;

        let mut replies = Vec::new();
        // Each datagram holds at least one message; the ack ends the exchange.
        for _ in 0..64 {
            let datagram = self.recv()?;
            if let Some(done) = collect(&datagram, seq, &mut replies)? {
                return done.map(|()| replies).map_err(|err| match err {
                    OffloadError::Kernel { errno, message, .. } => OffloadError::Kernel {
                        what: what.to_string(),
                        errno,
                        message,
                    },
                    other => other,
                });
            }
        }
        Err(OffloadError::Malformed {
            what: "reply".into(),
            offset: 0,
            reason: "no acknowledgement after 64 datagrams".into(),
        })
    }

    fn recv(&self) -> Result<Vec<u8>, OffloadError> {
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(REPLY_TIMEOUT_MS)).map_err(|err| {
            OffloadError::Socket {
                step: "poll",
                err: err.into(),
            }
        })?;
        if ready == 0 {
            return Err(OffloadError::Timeout {
                millis: REPLY_TIMEOUT_MS,
            });
        }
        let mut buf = Vec::with_capacity(RECV_BUFFER);
        let n = self
            .socket
            .recv(&mut buf, 0)
            .map_err(|err| OffloadError::Socket { step: "recv", err })?;
        if n > buf.len() {
            return Err(OffloadError::Malformed {
                what: "reply".into(),
                offset: buf.len(),
                reason: format!("datagram of {n} bytes truncated"),
            });
        }
        Ok(buf)
    }
}

/// Walks the messages of one datagram: replies to `seq` go to `replies`; returns
/// `Some(Ok(()))` on the acknowledgement (or end of a dump), `Some(Err(..))` on a kernel error,
/// `None` when more is to come.
fn collect(
    datagram: &[u8],
    seq: u32,
    replies: &mut Vec<Vec<u8>>,
) -> Result<Option<Result<(), OffloadError>>, OffloadError> {
    let mut offset = 0;
    while offset + NLMSG_HDRLEN <= datagram.len() {
        let header = &datagram[offset..offset + NLMSG_HDRLEN];
        let field = |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().unwrap_or([0; 4]));
        let len = field(0) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let flags = u16::from_ne_bytes([header[6], header[7]]);
        let msg_seq = field(8);
        if len < NLMSG_HDRLEN || offset + len > datagram.len() {
            return Err(OffloadError::Malformed {
                what: "reply".into(),
                offset,
                reason: format!(
                    "message length {len} with {} bytes left",
                    datagram.len() - offset
                ),
            });
        }
        let body = &datagram[offset + NLMSG_HDRLEN..offset + len];
        offset += align4(len);
        if msg_seq != seq {
            continue; // a late answer to an earlier request
        }
        match kind {
            NLMSG_ERROR => return Ok(Some(ack(body, flags))),
            NLMSG_DONE => return Ok(Some(Ok(()))),
            _ => replies.push(body.get(GENL_HDRLEN..).unwrap_or_default().to_vec()),
        }
    }
    Ok(None)
}

/// An `nlmsgerr` body: error 0 is the acknowledgement; otherwise a negative errno and, with
/// extended ack, the kernel's message after the capped request header.
fn ack(body: &[u8], flags: u16) -> Result<(), OffloadError> {
    let errno = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or_else(|| OffloadError::Malformed {
            what: "acknowledgement".into(),
            offset: 0,
            reason: format!("{} bytes, need 4", body.len()),
        })?;
    if errno == 0 {
        return Ok(());
    }
    let message = if flags & NLM_F_ACK_TLVS != 0 {
        body.get(4 + NLMSG_HDRLEN..)
            .and_then(|tlvs| parse_attrs(tlvs, "extended ack").ok())
            .and_then(|attrs| {
                find(&attrs, NLMSGERR_ATTR_MSG)
                    .and_then(Attr::string)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Err(OffloadError::Kernel {
        what: String::new(),
        errno: -errno,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn error_ack_carries_errno_and_kernel_message() {
        let mut body = (-22i32).to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; NLMSG_HDRLEN]);
        let mut tlv = AttrWriter::new();
        tlv.string(NLMSGERR_ATTR_MSG, "bit name not found");
        body.extend_from_slice(&tlv.into_bytes());
        match ack(&body, NLM_F_ACK_TLVS) {
            Err(OffloadError::Kernel { errno, message, .. }) => {
                assert_eq!(errno, 22);
                assert_eq!(message, "bit name not found");
            }
            other => panic!("expected Kernel error, got {other:?}"),
        }
        assert!(ack(&0i32.to_ne_bytes(), 0).is_ok());
    }

    #[test]
    fn collect_skips_other_sequences_and_stops_at_the_ack() {
        let message = |kind: u16, seq: u32, body: &[u8]| {
            let len = u32::try_from(NLMSG_HDRLEN + body.len()).unwrap();
            let mut m = len.to_ne_bytes().to_vec();
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(&0u16.to_ne_bytes());
            m.extend_from_slice(&seq.to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(body);
            m
        };
        let mut datagram = message(30, 1, &[11, 1, 0, 0, 9, 9, 9, 9]);
        datagram.extend(message(30, 2, &[11, 1, 0, 0, 1, 2, 3, 4]));
        datagram.extend(message(NLMSG_ERROR, 2, &0i32.to_ne_bytes()));
        let mut replies = Vec::new();
        let done = collect(&datagram, 2, &mut replies).unwrap();
        assert!(matches!(done, Some(Ok(()))));
        assert_eq!(replies, vec![vec![1, 2, 3, 4]]);
    }

    proptest! {
        /// Arbitrary datagrams never make the message walk panic.
        #[test]
        fn collecting_arbitrary_datagrams_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut replies = Vec::new();
            let _ = collect(&bytes, 1, &mut replies);
        }
    }
}
