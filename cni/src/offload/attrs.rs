//! Netlink attributes (RFC 3549 section 2.3.2.1; the kernel's include/uapi/linux/netlink.h):
//! a 4-byte header (length including the header, type) and a payload padded to 4 bytes, in
//! host byte order. Nested attributes carry `NLA_F_NESTED` in their type, which the kernel's
//! strict validation requires.

use super::OffloadError;

pub const NLA_HDRLEN: usize = 4;
/// Set on attribute types that hold nested attributes.
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

pub fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Attributes being encoded, with nests.
#[derive(Debug, Default)]
pub struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    pub fn new() -> AttrWriter {
        AttrWriter::default()
    }

    fn put(&mut self, kind: u16, payload: &[u8]) {
        let len = u16::try_from(NLA_HDRLEN + payload.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    pub fn u32(&mut self, kind: u16, value: u32) -> &mut AttrWriter {
        self.put(kind, &value.to_ne_bytes());
        self
    }

    /// A NUL-terminated string (`NLA_NUL_STRING`).
    pub fn string(&mut self, kind: u16, value: &str) -> &mut AttrWriter {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.put(kind, &bytes);
        self
    }

    /// A flag: present means true.
    pub fn flag(&mut self, kind: u16) -> &mut AttrWriter {
        self.put(kind, &[]);
        self
    }

    /// A nest whose contents `fill` writes.
    pub fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut AttrWriter)) -> &mut AttrWriter {
        let mut inner = AttrWriter::new();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.buf);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One parsed attribute: its type (flags masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    #[cfg(test)]
    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.payload.get(..4)?.try_into().ok()?))
    }

    pub fn u16(&self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.payload.get(..2)?.try_into().ok()?))
    }

    /// The payload as a string, without its NUL terminator.
    pub fn string(&self) -> Option<&'a str> {
        let bytes = self.payload.split(|b| *b == 0).next()?;
        std::str::from_utf8(bytes).ok()
    }
}

/// Parses a run of attributes. A length that runs past the buffer, or is shorter than the
/// header, is an error naming its byte offset within `bytes`.
pub fn parse_attrs<'a>(bytes: &'a [u8], what: &str) -> Result<Vec<Attr<'a>>, OffloadError> {
    let mut attrs = Vec::new();
    let mut offset = 0;
    while offset + NLA_HDRLEN <= bytes.len() {
        let len = usize::from(u16::from_ne_bytes([bytes[offset], bytes[offset + 1]]));
        let kind = u16::from_ne_bytes([bytes[offset + 2], bytes[offset + 3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || offset + len > bytes.len() {
            return Err(OffloadError::Malformed {
                what: what.to_string(),
                offset,
                reason: format!(
                    "attribute length {len} with {} bytes left",
                    bytes.len() - offset
                ),
            });
        }
        attrs.push(Attr {
            kind,
            payload: &bytes[offset + NLA_HDRLEN..offset + len],
        });
        offset += align4(len);
    }
    Ok(attrs)
}

/// The first attribute of type `kind`.
pub fn find<'a, 'b>(attrs: &'b [Attr<'a>], kind: u16) -> Option<&'b Attr<'a>> {
    attrs.iter().find(|a| a.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nested_attributes_round_trip_with_padding() {
        let mut w = AttrWriter::new();
        w.nest(1, |inner| {
            inner.string(2, "eth0").u32(1, 7);
        })
        .flag(5);
        let bytes = w.into_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let outer = parse_attrs(&bytes, "test").unwrap();
        assert_eq!(outer.len(), 2);
        assert_eq!(outer[0].kind, 1, "nested flag masked off");
        assert_eq!(
            u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_F_NESTED,
            NLA_F_NESTED
        );
        let inner = parse_attrs(outer[0].payload, "nest").unwrap();
        assert_eq!(find(&inner, 2).and_then(Attr::string), Some("eth0"));
        assert_eq!(find(&inner, 1).and_then(Attr::u32), Some(7));
        assert_eq!(
            outer[1],
            Attr {
                kind: 5,
                payload: &[]
            }
        );
    }

    #[test]
    fn overlong_attribute_is_an_error_with_its_offset() {
        let mut bytes = AttrWriter::new();
        bytes.u32(1, 1);
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(&[40, 0, 2, 0, 0, 0]);
        match parse_attrs(&bytes, "test") {
            Err(OffloadError::Malformed { offset, .. }) => assert_eq!(offset, 8),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    proptest! {
        /// Whatever the kernel (or a corrupted buffer) hands over, parsing returns instead of
        /// panicking, and every attribute it returns lies inside the input.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(attrs) = parse_attrs(&bytes, "fuzz") {
                let total: usize = attrs.iter().map(|a| NLA_HDRLEN + a.payload.len()).sum();
                prop_assert!(total <= bytes.len());
            }
        }

        /// What the writer encodes, the parser reads back.
        #[test]
        fn u32_and_string_attributes_round_trip(value in any::<u32>(), text in "[a-z0-9-]{0,40}") {
            let mut w = AttrWriter::new();
            w.u32(3, value).string(4, &text);
            let bytes = w.into_bytes();
            let attrs = parse_attrs(&bytes, "rt").unwrap();
            prop_assert_eq!(find(&attrs, 3).and_then(Attr::u32), Some(value));
            prop_assert_eq!(find(&attrs, 4).and_then(Attr::string), Some(text.as_str()));
        }
    }
}
