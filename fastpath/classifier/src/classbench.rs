//! ClassBench rule sets and header traces (Taylor and Turner, "ClassBench: a packet
//! classification benchmark", WUCSE-2004-28).
//!
//! Rule line: `@SRC/LEN <TAB> DST/LEN <TAB> SPLO : SPHI <TAB> DPLO : DPHI <TAB> PROTO/MASK
//! <TAB> FLAGS/MASK`; the first line has the highest priority (priority = zero-based line
//! index). Trace line: `SRC DST SPORT DPORT PROTO [FLAGS [FILTER]]` as decimal integers. The
//! TCP-flags column is ignored, as 5-tuple classifiers do.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net};

use crate::error::ClassBenchError;
use crate::rule::{AddrMatch, Key4, PortMatch, PortRange, Rule};

/// One ClassBench 5-tuple rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassBenchRule {
    /// Source network (host bits cleared).
    pub src: u32,
    /// Source prefix length.
    pub src_len: u8,
    /// Destination network (host bits cleared).
    pub dst: u32,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Source port range.
    pub src_ports: PortRange,
    /// Destination port range.
    pub dst_ports: PortRange,
    /// Protocol when exact, `None` for the `0x00/0x00` wildcard.
    pub proto: Option<u8>,
}

fn prefix_mask(len: u8) -> u32 {
    (u64::from(u32::MAX) << (32 - u32::from(len))) as u32
}

impl ClassBenchRule {
    /// Whether the rule matches `k` (the literal definition, for linear scans).
    #[inline]
    pub fn matches(&self, k: &Key4) -> bool {
        (k.src ^ self.src) & prefix_mask(self.src_len) == 0
            && (k.dst ^ self.dst) & prefix_mask(self.dst_len) == 0
            && self.src_ports.contains(k.src_port)
            && self.dst_ports.contains(k.dst_port)
            && self.proto.is_none_or(|p| p == k.proto)
    }

    /// The policy rule with this match, the given priority and action.
    pub fn to_rule(&self, priority: u32, action: u32) -> Rule {
        let net = |a: u32, l: u8| {
            if l == 0 {
                AddrMatch::any()
            } else {
                AddrMatch::nets([IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), l))])
            }
        };
        let ports = |r: PortRange| {
            if r == PortRange::ANY {
                PortMatch::any()
            } else {
                PortMatch::ranges([r])
            }
        };
        Rule {
            priority,
            action,
            protocol: self.proto,
            src: net(self.src, self.src_len),
            dst: net(self.dst, self.dst_len),
            src_ports: ports(self.src_ports),
            dst_ports: ports(self.dst_ports),
            ..Rule::default()
        }
    }
}

/// Index of the first rule matching `k`, by linear scan.
pub fn linear_first(rules: &[ClassBenchRule], k: &Key4) -> Option<usize> {
    rules.iter().position(|r| r.matches(k))
}

fn parse_prefix(field: &str) -> Result<(u32, u8), String> {
    let (addr, len) = field
        .split_once('/')
        .ok_or_else(|| format!("prefix {field:?} has no '/'"))?;
    let addr: Ipv4Addr = addr
        .trim()
        .parse()
        .map_err(|_| format!("bad IPv4 address {addr:?}"))?;
    let len: u8 = len
        .trim()
        .parse()
        .map_err(|_| format!("bad prefix length {len:?}"))?;
    if len > 32 {
        return Err(format!("prefix length {len} exceeds 32"));
    }
    Ok((u32::from(addr) & prefix_mask(len), len))
}

fn parse_range(field: &str, name: &str) -> Result<PortRange, String> {
    let (lo, hi) = field
        .split_once(':')
        .ok_or_else(|| format!("{name} range {field:?} has no ':'"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("bad {name} low bound {lo:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("bad {name} high bound {hi:?}"))?;
    if lo > hi {
        return Err(format!("{name} range {lo} : {hi} is empty"));
    }
    Ok(PortRange::new(lo, hi))
}

fn parse_hex_u8(s: &str) -> Result<u8, String> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u8::from_str_radix(digits, 16).map_err(|_| format!("bad hex byte {s:?}"))
}

fn parse_proto(field: &str) -> Result<Option<u8>, String> {
    let (value, mask) = field
        .split_once('/')
        .ok_or_else(|| format!("protocol {field:?} has no '/'"))?;
    let (value, mask) = (parse_hex_u8(value)?, parse_hex_u8(mask)?);
    match mask {
        0xFF => Ok(Some(value)),
        0x00 => Ok(None),
        m => Err(format!("protocol mask {m:#04x} is neither 0x00 nor 0xFF")),
    }
}

/// Parses one rule line (without the line terminator).
pub fn parse_rule_line(line: &str) -> Result<ClassBenchRule, String> {
    let body = line
        .trim()
        .strip_prefix('@')
        .ok_or("rule line does not start with '@'")?;
    let fields: Vec<&str> = body
        .split('\t')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if fields.len() < 5 {
        return Err(format!(
            "expected at least 5 tab-separated fields, found {}",
            fields.len()
        ));
    }
    let (src, src_len) = parse_prefix(fields[0]).map_err(|e| format!("source: {e}"))?;
    let (dst, dst_len) = parse_prefix(fields[1]).map_err(|e| format!("destination: {e}"))?;
    Ok(ClassBenchRule {
        src,
        src_len,
        dst,
        dst_len,
        src_ports: parse_range(fields[2], "source port")?,
        dst_ports: parse_range(fields[3], "destination port")?,
        proto: parse_proto(fields[4])?,
    })
}

/// Parses one trace line into a key.
pub fn parse_trace_line(line: &str) -> Result<Key4, String> {
    let mut it = line.split_whitespace();
    let mut next = |name: &str| it.next().ok_or_else(|| format!("missing {name} column"));
    let src = next("source address")?;
    let dst = next("destination address")?;
    let sp = next("source port")?;
    let dp = next("destination port")?;
    let proto = next("protocol")?;
    Ok(Key4 {
        src: src
            .parse()
            .map_err(|_| format!("bad source address {src:?}"))?,
        dst: dst
            .parse()
            .map_err(|_| format!("bad destination address {dst:?}"))?,
        src_port: sp.parse().map_err(|_| format!("bad source port {sp:?}"))?,
        dst_port: dp
            .parse()
            .map_err(|_| format!("bad destination port {dp:?}"))?,
        proto: proto
            .parse()
            .map_err(|_| format!("bad protocol {proto:?}"))?,
    })
}

fn parse_lines<T>(
    path: &Path,
    text: &str,
    f: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ClassBenchError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            f(l).map_err(|message| ClassBenchError::Parse {
                path: path.to_owned(),
                line: i + 1,
                message,
            })
        })
        .collect()
}

/// Parses a rule file's text; `path` only names the file in errors.
pub fn parse_rules(path: &Path, text: &str) -> Result<Vec<ClassBenchRule>, ClassBenchError> {
    parse_lines(path, text, parse_rule_line)
}

/// Parses a trace file's text; `path` only names the file in errors.
pub fn parse_trace(path: &Path, text: &str) -> Result<Vec<Key4>, ClassBenchError> {
    parse_lines(path, text, parse_trace_line)
}

fn read(path: &Path) -> Result<String, ClassBenchError> {
    std::fs::read_to_string(path).map_err(|source| ClassBenchError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a rule file.
pub fn read_rules(path: &Path) -> Result<Vec<ClassBenchRule>, ClassBenchError> {
    parse_rules(path, &read(path)?)
}

/// Reads a trace file.
pub fn read_trace(path: &Path) -> Result<Vec<Key4>, ClassBenchError> {
    parse_trace(path, &read(path)?)
}

/// Policy rules for a ClassBench set: priority and action are the line index.
pub fn to_rules(rules: &[ClassBenchRule]) -> Vec<Rule> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| r.to_rule(i as u32, i as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_rule_line() {
        let r = parse_rule_line("@238.147.108.103/32\t14.106.18.0/23\t0 : 65535\t1221 : 1221\t0x06/0xFF\t0x1000/0x1000\t")
            .unwrap();
        assert_eq!(r.src, u32::from(Ipv4Addr::new(238, 147, 108, 103)));
        assert_eq!(r.dst, u32::from(Ipv4Addr::new(14, 106, 18, 0)));
        assert_eq!((r.src_len, r.dst_len), (32, 23));
        assert_eq!(r.src_ports, PortRange::ANY);
        assert_eq!(r.dst_ports, PortRange::single(1221));
        assert_eq!(r.proto, Some(6));
        let w = parse_rule_line(
            "@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000",
        )
        .unwrap();
        assert_eq!(w.proto, None);
    }

    #[test]
    fn malformed_lines_name_the_field() {
        assert!(parse_rule_line("1.2.3.4/32").unwrap_err().contains('@'));
        assert!(
            parse_rule_line("@1.2.3.4/33\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0xFF")
                .unwrap_err()
                .contains("source")
        );
        assert!(
            parse_rule_line("@1.2.3.4/3\t0.0.0.0/0\t9 : 1\t0 : 1\t0x06/0xFF")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            parse_rule_line("@1.2.3.4/3\t0.0.0.0/0\t0 : 1\t0 : 1\t0x06/0x0F")
                .unwrap_err()
                .contains("mask")
        );
        assert!(
            parse_trace_line("1 2 3")
                .unwrap_err()
                .contains("destination port")
        );
        assert!(
            parse_trace_line("1 2 3 70000 6")
                .unwrap_err()
                .contains("destination port")
        );
    }

    #[test]
    fn errors_carry_path_and_line() {
        let err = parse_trace(Path::new("x.trace"), "1 2 3 4 6 0 1\n\n1 2 x 4 6\n").unwrap_err();
        assert_eq!(err.to_string(), "x.trace:3: bad source port \"x\"");
    }

    #[test]
    fn host_bits_are_cleared_and_matching_is_literal() {
        let r = parse_rule_line("@10.1.2.3/8\t0.0.0.0/0\t0 : 65535\t80 : 90\t0x11/0xFF").unwrap();
        assert_eq!(r.src, 0x0A00_0000);
        let k = Key4 {
            src: 0x0AFF_0000,
            dst: 7,
            src_port: 1,
            dst_port: 85,
            proto: 17,
        };
        assert!(r.matches(&k));
        assert!(!r.matches(&Key4 { proto: 6, ..k }));
        assert!(!r.matches(&Key4 { dst_port: 91, ..k }));
        assert_eq!(linear_first(&[r], &k), Some(0));
    }
}
