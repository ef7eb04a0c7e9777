//! OPEN capabilities (RFC 5492) that this speaker understands; the rest are kept raw.

use crate::reader::Reader;
use crate::types::{Afi, Family, Safi};

/// Capability codes (IANA).
pub mod cap_code {
    /// RFC 4760 Multiprotocol Extensions.
    pub const MULTIPROTOCOL: u8 = 1;
    /// RFC 2918 Route Refresh.
    pub const ROUTE_REFRESH: u8 = 2;
    /// RFC 4724 Graceful Restart.
    pub const GRACEFUL_RESTART: u8 = 64;
    /// RFC 6793 4-octet AS number.
    pub const FOUR_OCTET_AS: u8 = 65;
    /// RFC 7911 ADD-PATH.
    pub const ADD_PATH: u8 = 69;
    /// RFC 7313 Enhanced Route Refresh.
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
}

/// RFC 7911 §4 Send/Receive field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    /// 1: the sender can receive multiple paths.
    Receive,
    /// 2: the sender can send multiple paths.
    Send,
    /// 3: both.
    Both,
}

impl AddPathMode {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(AddPathMode::Receive),
            2 => Some(AddPathMode::Send),
            3 => Some(AddPathMode::Both),
            _ => None,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AddPathMode::Receive => 1,
            AddPathMode::Send => 2,
            AddPathMode::Both => 3,
        }
    }

    /// Whether the advertiser will send path identifiers.
    pub fn sends(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }

    /// Whether the advertiser accepts path identifiers.
    pub fn receives(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
}

/// One AFI/SAFI entry of the graceful-restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrFamily {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
    /// F bit: forwarding state was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// RFC 4724 §3 graceful-restart capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestartCap {
    /// R bit: the sender has restarted (the peer must not wait for its End-of-RIB forever).
    pub restarting: bool,
    /// N bit (RFC 8538): graceful restart also applies to NOTIFICATION-ended sessions.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families for which the sender keeps forwarding state.
    pub families: Vec<GrFamily>,
}

/// A capability from the OPEN's optional parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760: the sender wants to carry routes for this AFI/SAFI.
    Multiprotocol {
        /// Address family.
        afi: Afi,
        /// Subsequent address family.
        safi: Safi,
    },
    /// RFC 2918.
    RouteRefresh,
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// RFC 6793: the sender's real (4-octet) AS number.
    FourOctetAs(u32),
    /// RFC 4724.
    GracefulRestart(GracefulRestartCap),
    /// RFC 7911: per AFI/SAFI send/receive modes.
    AddPath(Vec<(Afi, Safi, AddPathMode)>),
    /// Any other capability, kept as code and value.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

impl Capability {
    /// The multiprotocol capability for a supported family.
    pub fn mp(family: Family) -> Self {
        Capability::Multiprotocol {
            afi: family.afi(),
            safi: family.safi(),
        }
    }

    /// Decodes one capability value. A value whose length does not fit the code is kept as
    /// [`Capability::Unknown`] (RFC 5492 §3 lets a speaker ignore capabilities it cannot use;
    /// the session then simply lacks that feature).
    pub(crate) fn decode(code: u8, value: &[u8]) -> Capability {
        Self::decode_known(code, value).unwrap_or_else(|| Capability::Unknown {
            code,
            value: value.to_vec(),
        })
    }

    fn decode_known(code: u8, value: &[u8]) -> Option<Capability> {
        let mut r = Reader::new(value, 0);
        let cap = match code {
            cap_code::MULTIPROTOCOL if value.len() == 4 => {
                let afi = Afi(r.u16()?);
                r.u8()?;
                Capability::Multiprotocol {
                    afi,
                    safi: Safi(r.u8()?),
                }
            }
            cap_code::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            cap_code::ENHANCED_ROUTE_REFRESH if value.is_empty() => {
                Capability::EnhancedRouteRefresh
            }
            cap_code::FOUR_OCTET_AS if value.len() == 4 => Capability::FourOctetAs(r.u32()?),
            cap_code::GRACEFUL_RESTART
                if value.len() >= 2 && (value.len() - 2).is_multiple_of(4) =>
            {
                let word = r.u16()?;
                let mut families = Vec::new();
                while !r.is_empty() {
                    let afi = Afi(r.u16()?);
                    let safi = Safi(r.u8()?);
                    let flags = r.u8()?;
                    families.push(GrFamily {
                        afi,
                        safi,
                        forwarding_preserved: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart(GracefulRestartCap {
                    restarting: word & 0x8000 != 0,
                    notification: word & 0x4000 != 0,
                    restart_time: word & 0x0fff,
                    families,
                })
            }
            cap_code::ADD_PATH if value.len().is_multiple_of(4) => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let afi = Afi(r.u16()?);
                    let safi = Safi(r.u8()?);
                    v.push((afi, safi, AddPathMode::from_u8(r.u8()?)?));
                }
                Capability::AddPath(v)
            }
            _ => return None,
        };
        Some(cap)
    }

    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::EnhancedRouteRefresh => cap_code::ENHANCED_ROUTE_REFRESH,
            Capability::FourOctetAs(_) => cap_code::FOUR_OCTET_AS,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::AddPath(_) => cap_code::ADD_PATH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Appends code, length and value.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
        let len_at = out.len();
        out.push(0);
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&afi.0.to_be_bytes());
                out.push(0);
                out.push(safi.0);
            }
            Capability::RouteRefresh | Capability::EnhancedRouteRefresh => {}
            Capability::FourOctetAs(asn) => out.extend_from_slice(&asn.to_be_bytes()),
            Capability::GracefulRestart(gr) => {
                let mut word = gr.restart_time & 0x0fff;
                if gr.restarting {
                    word |= 0x8000;
                }
                if gr.notification {
                    word |= 0x4000;
                }
                out.extend_from_slice(&word.to_be_bytes());
                for f in &gr.families {
                    out.extend_from_slice(&f.afi.0.to_be_bytes());
                    out.push(f.safi.0);
                    out.push(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::AddPath(v) => {
                for (afi, safi, mode) in v {
                    out.extend_from_slice(&afi.0.to_be_bytes());
                    out.push(safi.0);
                    out.push(mode.to_u8());
                }
            }
            Capability::Unknown { value, .. } => out.extend_from_slice(value),
        }
        // Capability values are at most 255 bytes; the encoders above stay far below that
        // except for a caller-built Unknown or oversized list, which is cut to fit.
        let len = out.len() - len_at - 1;
        if len > 255 {
            out.truncate(len_at + 1 + 255);
        }
        out[len_at] = u8::try_from(len.min(255)).unwrap_or(u8::MAX);
    }
}
