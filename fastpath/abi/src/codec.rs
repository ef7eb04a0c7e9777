//! Little-endian primitive encoding with bounds-checked reads.
//!
//! Every read checks the remaining length first and reports the field and offset on failure;
//! counts are checked against the remaining input before anything is allocated, so corrupt
//! input cannot make the decoder allocate more than the input's size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::AbiError;
use crate::ids::Prefix;

/// Appends encoded values to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn count(&mut self, n: usize) {
        // Lengths beyond u32 cannot be decoded anyway (the body limit is far lower).
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(crate) fn ip(&mut self, ip: &IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.u8(4);
                self.bytes(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(6);
                self.bytes(&a.octets());
            }
        }
    }
    pub(crate) fn prefix(&mut self, p: &Prefix) {
        self.ip(&p.addr);
        self.u8(p.len);
    }
    pub(crate) fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
    pub(crate) fn seq<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.count(v.len());
        for x in v {
            f(self, x);
        }
    }
}

/// Reads encoded values from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in the whole frame, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Self {
            bytes,
            pos: 0,
            base,
        }
    }
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], AbiError> {
        if self.remaining() < n {
            return Err(AbiError::Truncated {
                field,
                needed: n,
                offset: self.offset(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, AbiError> {
        Ok(self.take(1, field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, AbiError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, AbiError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, AbiError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], AbiError> {
        let b = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, AbiError> {
        let at = self.offset();
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(AbiError::BadTag {
                field,
                tag,
                offset: at,
            }),
        }
    }
    pub(crate) fn tag(&mut self, field: &'static str, max: u8) -> Result<u8, AbiError> {
        let at = self.offset();
        let tag = self.u8(field)?;
        if tag > max {
            return Err(AbiError::BadTag {
                field,
                tag,
                offset: at,
            });
        }
        Ok(tag)
    }
    pub(crate) fn ip(&mut self, field: &'static str) -> Result<IpAddr, AbiError> {
        let at = self.offset();
        match self.u8(field)? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))),
            tag => Err(AbiError::BadTag {
                field,
                tag,
                offset: at,
            }),
        }
    }
    pub(crate) fn prefix(&mut self, field: &'static str) -> Result<Prefix, AbiError> {
        let at = self.offset();
        let addr = self.ip(field)?;
        let len = self.u8(field)?;
        Prefix::new(addr, len).ok_or(AbiError::BadValue { field, offset: at })
    }
    pub(crate) fn opt<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, AbiError>,
    ) -> Result<Option<T>, AbiError> {
        if self.bool(field)? {
            Ok(Some(f(self)?))
        } else {
            Ok(None)
        }
    }
    /// Reads a count and then that many elements. Every element takes at least one byte, so
    /// a count above the remaining length is rejected before allocating.
    pub(crate) fn seq<T>(
        &mut self,
        field: &'static str,
        mut f: impl FnMut(&mut Self) -> Result<T, AbiError>,
    ) -> Result<Vec<T>, AbiError> {
        let at = self.offset();
        let count = self.u32(field)?;
        if count as usize > self.remaining() {
            return Err(AbiError::BadCount {
                field,
                count,
                offset: at,
            });
        }
        let mut v = Vec::with_capacity(count as usize);
        for _ in 0..count {
            v.push(f(self)?);
        }
        Ok(v)
    }
}

/// FNV-1a over the body: a cheap guard against torn or corrupt ring slots (not a security
/// measure; the ring is local and trusted).
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}
