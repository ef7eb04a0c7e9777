//! OPEN (RFC 4271 §4.2) with capabilities in optional parameter 2 (RFC 5492).

use crate::capability::Capability;
use crate::error::{MessageError, code, subcode};
use crate::header::{self, MessageType};
use crate::reader::Reader;
use crate::types::AS_TRANS;
use std::net::Ipv4Addr;

/// Optional parameter type for capabilities (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field (AS_TRANS when the real AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order received.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The sender's AS: from the 4-octet AS capability if present, else `my_as` (RFC 6793 §3).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    /// The 2-octet My AS field to send for a given real AS.
    pub fn my_as_field(asn: u32) -> u16 {
        u16::try_from(asn).unwrap_or(AS_TRANS)
    }

    /// Decodes an OPEN body (the bytes after the header). Version, hold time and the BGP
    /// Identifier are checked here (RFC 4271 §6.2); the peer AS is checked by the session.
    pub(crate) fn decode_body(mut r: Reader<'_>) -> Result<Self, MessageError> {
        let short = |o| {
            MessageError::new(
                o,
                "OPEN too short",
                code::HEADER,
                subcode::BAD_LENGTH,
                vec![],
            )
        };
        let at = r.offset();
        let version = r.u8().ok_or_else(|| short(at))?;
        if version != 4 {
            return Err(MessageError::new(
                at,
                "unsupported BGP version",
                code::OPEN,
                subcode::UNSUPPORTED_VERSION,
                vec![0, 4],
            ));
        }
        let my_as = r.u16().ok_or_else(|| short(at))?;
        let hold_at = r.offset();
        let hold_time = r.u16().ok_or_else(|| short(hold_at))?;
        if hold_time == 1 || hold_time == 2 {
            return Err(MessageError::new(
                hold_at,
                "hold time of 1 or 2 seconds",
                code::OPEN,
                subcode::UNACCEPTABLE_HOLD_TIME,
                vec![],
            ));
        }
        let id_at = r.offset();
        let id = r.array::<4>().ok_or_else(|| short(id_at))?;
        let bgp_id = Ipv4Addr::from(id);
        if bgp_id.is_unspecified() {
            return Err(MessageError::new(
                id_at,
                "BGP Identifier is 0.0.0.0",
                code::OPEN,
                subcode::BAD_BGP_ID,
                vec![],
            ));
        }
        let opt_at = r.offset();
        let opt_len = usize::from(r.u8().ok_or_else(|| short(opt_at))?);
        if opt_len != r.remaining() {
            return Err(MessageError::new(
                opt_at,
                "optional parameters length disagrees with message length",
                code::OPEN,
                0,
                vec![],
            ));
        }
        let mut capabilities = Vec::new();
        while !r.is_empty() {
            let p_at = r.offset();
            let bad = || {
                MessageError::new(
                    p_at,
                    "optional parameter overruns the OPEN",
                    code::OPEN,
                    0,
                    vec![],
                )
            };
            let ptype = r.u8().ok_or_else(bad)?;
            let plen = usize::from(r.u8().ok_or_else(bad)?);
            let mut p = r.sub(plen).ok_or_else(bad)?;
            if ptype != PARAM_CAPABILITIES {
                return Err(MessageError::new(
                    p_at,
                    "unsupported optional parameter",
                    code::OPEN,
                    subcode::UNSUPPORTED_OPT_PARAM,
                    vec![],
                ));
            }
            while !p.is_empty() {
                let c_at = p.offset();
                let bad = || {
                    MessageError::new(
                        c_at,
                        "capability overruns its parameter",
                        code::OPEN,
                        0,
                        vec![],
                    )
                };
                let ccode = p.u8().ok_or_else(bad)?;
                let clen = usize::from(p.u8().ok_or_else(bad)?);
                let value = p.take(clen).ok_or_else(bad)?;
                capabilities.push(Capability::decode(ccode, value));
            }
        }
        Ok(Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    /// Appends the encoded message. Capabilities go in one optional parameter each (the form
    /// every implementation accepts).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = header::start(out, MessageType::Open);
        out.push(4);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let opt_len_at = out.len();
        out.push(0);
        for cap in &self.capabilities {
            let p_at = out.len();
            out.push(PARAM_CAPABILITIES);
            out.push(0);
            cap.encode(out);
            let plen = out.len() - p_at - 2;
            out[p_at + 1] = u8::try_from(plen).unwrap_or(u8::MAX);
            if out.len() - opt_len_at - 1 > 255 {
                // Too many capabilities for the 1-octet length: drop the one that overflowed.
                out.truncate(p_at);
                break;
            }
        }
        let opt_len = out.len() - opt_len_at - 1;
        out[opt_len_at] = u8::try_from(opt_len).unwrap_or(u8::MAX);
        header::finish(out, at);
    }
}
