//! ROUTE-REFRESH (RFC 2918) with the enhanced subtypes of RFC 7313.

use crate::error::{MessageError, code, subcode};
use crate::header::{self, MessageType};
use crate::reader::Reader;
use crate::types::{Afi, Safi};

/// RFC 7313 §3.2 message subtype (the old "reserved" octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    /// 0: a normal route refresh request.
    Request,
    /// 1: Beginning of Route Refresh.
    Begin,
    /// 2: End of Route Refresh.
    End,
    /// Anything else; RFC 7313 §5 says to ignore the message.
    Other(u8),
}

impl RefreshSubtype {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => RefreshSubtype::Request,
            1 => RefreshSubtype::Begin,
            2 => RefreshSubtype::End,
            x => RefreshSubtype::Other(x),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            RefreshSubtype::Request => 0,
            RefreshSubtype::Begin => 1,
            RefreshSubtype::End => 2,
            RefreshSubtype::Other(x) => x,
        }
    }
}

/// A ROUTE-REFRESH message for one AFI/SAFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
    /// Request, BoRR or EoRR.
    pub subtype: RefreshSubtype,
}

impl RouteRefresh {
    pub(crate) fn decode_body(mut r: Reader<'_>) -> Result<Self, MessageError> {
        // RFC 7313 §5: a ROUTE-REFRESH whose length is not 23 gets code 7 subcode 1.
        if r.remaining() != 4 {
            return Err(MessageError::new(
                16,
                "ROUTE-REFRESH length is not 23",
                code::ROUTE_REFRESH,
                subcode::INVALID_RR_LENGTH,
                vec![],
            ));
        }
        let afi = Afi(r.u16().unwrap_or(0));
        let st = RefreshSubtype::from_u8(r.u8().unwrap_or(0));
        let safi = Safi(r.u8().unwrap_or(0));
        Ok(RouteRefresh {
            afi,
            safi,
            subtype: st,
        })
    }

    /// Appends the encoded message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = header::start(out, MessageType::RouteRefresh);
        out.extend_from_slice(&self.afi.0.to_be_bytes());
        out.push(self.subtype.to_u8());
        out.push(self.safi.0);
        header::finish(out, at);
    }
}
