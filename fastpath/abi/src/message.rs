//! Messages on the control-to-fastpath ring: full snapshots and deltas, each framed with a
//! versioned, length-prefixed header.
//!
//! # Frame layout
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `TRTA` |
//! | 4 | 2 | format version, little-endian ([`FORMAT_VERSION`]) |
//! | 6 | 1 | kind: 1 snapshot, 2 delta |
//! | 7 | 1 | reserved, zero |
//! | 8 | 4 | body length, little-endian |
//! | 12 | 4 | FNV-1a of the body |
//! | 16 | n | body |
//!
//! # Versioning rule
//!
//! A decoder accepts exactly its own [`FORMAT_VERSION`]. Any change to the body layout of any
//! type (a field added, removed, reordered, an enum tag added) bumps the version. Control and
//! fastpath ship from one release, so a mismatch means a half-upgraded node: the fastpath
//! rejects the frame, keeps forwarding on its current generation and reports the error.

use crate::AbiError;
use crate::codec::{Reader, Writer, fnv1a};
use crate::encode::*;
use crate::ids::{EndpointId, Generation, IpSetId, NodeId, Prefix, ProgramId};
use crate::policy::PolicyProgram;
use crate::tables::{Endpoint, IpSet, Nat, Node, Route, Settings};

/// The magic bytes that start every frame.
pub const MAGIC: [u8; 4] = *b"TRTA";
/// The body layout version this build reads and writes.
///
/// History: 1, the first layout; 2, host endpoints carry their `applyOnForward` programs
/// (`Endpoint::forward_ingress`, `Endpoint::forward_egress`, after `pre_dnat`).
pub const FORMAT_VERSION: u16 = 2;
/// Length of the frame header.
pub const HEADER_LEN: usize = 16;
/// The largest body accepted (256 MiB): bounds what a corrupt length can make us expect.
pub const MAX_BODY_LEN: u32 = 256 << 20;

/// Every table, as of one generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Node-wide settings.
    pub settings: Settings,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Policy programs.
    pub programs: Vec<PolicyProgram>,
    /// IP sets.
    pub ip_sets: Vec<IpSet>,
    /// Routes.
    pub routes: Vec<Route>,
    /// NAT configuration.
    pub nat: Nat,
    /// Remote nodes.
    pub nodes: Vec<Node>,
}

/// One change inside a delta. Upserts replace the entry with the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Replace the settings.
    Settings(Settings),
    /// Add or replace an endpoint (keyed by id).
    UpsertEndpoint(Endpoint),
    /// Remove an endpoint.
    RemoveEndpoint(EndpointId),
    /// Add or replace a program (keyed by id).
    UpsertProgram(PolicyProgram),
    /// Remove a program.
    RemoveProgram(ProgramId),
    /// Add or replace an IP set (keyed by id).
    UpsertIpSet(IpSet),
    /// Remove an IP set.
    RemoveIpSet(IpSetId),
    /// Add or replace a route (keyed by prefix).
    UpsertRoute(Route),
    /// Remove the route for a prefix.
    RemoveRoute(Prefix),
    /// Replace the NAT configuration.
    Nat(Nat),
    /// Add or replace a node (keyed by id).
    UpsertNode(Node),
    /// Remove a node.
    RemoveNode(NodeId),
}

/// A ring message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built and consumed once per update on the control path; boxing buys nothing"
)]
pub enum Message {
    /// The full state; the fastpath replaces everything with it.
    Snapshot {
        /// The generation it produces.
        generation: Generation,
        /// The tables.
        tables: Tables,
    },
    /// Changes on top of `base`.
    Delta {
        /// The generation it applies to.
        base: Generation,
        /// The generation it produces.
        generation: Generation,
        /// The changes, applied in order (control emits them in dependency order: IP sets,
        /// programs, endpoints, routes; removals in reverse).
        ops: Vec<Op>,
    },
}

fn upsert<T>(v: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match v.iter_mut().find(|x| same(x, &item)) {
        Some(slot) => *slot = item,
        None => v.push(item),
    }
}

impl Tables {
    /// Applies one op.
    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Settings(s) => self.settings = s,
            Op::UpsertEndpoint(e) => upsert(&mut self.endpoints, e, |a, b| a.id == b.id),
            Op::RemoveEndpoint(id) => self.endpoints.retain(|e| e.id != id),
            Op::UpsertProgram(p) => upsert(&mut self.programs, p, |a, b| a.id == b.id),
            Op::RemoveProgram(id) => self.programs.retain(|p| p.id != id),
            Op::UpsertIpSet(s) => upsert(&mut self.ip_sets, s, |a, b| a.id == b.id),
            Op::RemoveIpSet(id) => self.ip_sets.retain(|s| s.id != id),
            Op::UpsertRoute(r) => upsert(&mut self.routes, r, |a, b| a.prefix == b.prefix),
            Op::RemoveRoute(p) => self.routes.retain(|r| r.prefix != p),
            Op::Nat(n) => self.nat = n,
            Op::UpsertNode(n) => upsert(&mut self.nodes, n, |a, b| a.id == b.id),
            Op::RemoveNode(id) => self.nodes.retain(|n| n.id != id),
        }
    }
}

/// The state a consumer keeps: the current generation and its tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Current generation.
    pub generation: Generation,
    /// Current tables.
    pub tables: Tables,
}

impl State {
    /// Applies a message: a snapshot replaces everything; a delta must name the current
    /// generation as its base, or nothing changes and an error is returned (the consumer
    /// then waits for the next snapshot).
    pub fn apply(&mut self, msg: Message) -> Result<(), AbiError> {
        match msg {
            Message::Snapshot { generation, tables } => {
                self.generation = generation;
                self.tables = tables;
            }
            Message::Delta {
                base,
                generation,
                ops,
            } => {
                if base != self.generation {
                    return Err(AbiError::GenerationMismatch {
                        base,
                        current: self.generation,
                    });
                }
                for op in ops {
                    self.tables.apply(op);
                }
                self.generation = generation;
            }
        }
        Ok(())
    }
}

fn put_tables(w: &mut Writer, t: &Tables) {
    put_settings(w, &t.settings);
    w.seq(&t.endpoints, put_endpoint);
    w.seq(&t.programs, put_program);
    w.seq(&t.ip_sets, put_ip_set);
    w.seq(&t.routes, put_route);
    put_nat(w, &t.nat);
    w.seq(&t.nodes, put_node);
}

fn get_tables(r: &mut Reader<'_>) -> Result<Tables, AbiError> {
    Ok(Tables {
        settings: get_settings(r)?,
        endpoints: r.seq("endpoints", get_endpoint)?,
        programs: r.seq("programs", get_program)?,
        ip_sets: r.seq("ip sets", get_ip_set)?,
        routes: r.seq("routes", get_route)?,
        nat: get_nat(r)?,
        nodes: r.seq("nodes", get_node)?,
    })
}

fn put_op(w: &mut Writer, op: &Op) {
    match op {
        Op::Settings(s) => {
            w.u8(0);
            put_settings(w, s);
        }
        Op::UpsertEndpoint(e) => {
            w.u8(1);
            put_endpoint(w, e);
        }
        Op::RemoveEndpoint(id) => {
            w.u8(2);
            w.u32(id.0);
        }
        Op::UpsertProgram(p) => {
            w.u8(3);
            put_program(w, p);
        }
        Op::RemoveProgram(id) => {
            w.u8(4);
            w.u32(id.0);
        }
        Op::UpsertIpSet(s) => {
            w.u8(5);
            put_ip_set(w, s);
        }
        Op::RemoveIpSet(id) => {
            w.u8(6);
            w.u32(id.0);
        }
        Op::UpsertRoute(r) => {
            w.u8(7);
            put_route(w, r);
        }
        Op::RemoveRoute(p) => {
            w.u8(8);
            w.prefix(p);
        }
        Op::Nat(n) => {
            w.u8(9);
            put_nat(w, n);
        }
        Op::UpsertNode(n) => {
            w.u8(10);
            put_node(w, n);
        }
        Op::RemoveNode(id) => {
            w.u8(11);
            w.u32(id.0);
        }
    }
}

fn get_op(r: &mut Reader<'_>) -> Result<Op, AbiError> {
    Ok(match r.tag("op", 11)? {
        0 => Op::Settings(get_settings(r)?),
        1 => Op::UpsertEndpoint(get_endpoint(r)?),
        2 => Op::RemoveEndpoint(EndpointId(r.u32("endpoint id")?)),
        3 => Op::UpsertProgram(get_program(r)?),
        4 => Op::RemoveProgram(ProgramId(r.u32("program id")?)),
        5 => Op::UpsertIpSet(get_ip_set(r)?),
        6 => Op::RemoveIpSet(IpSetId(r.u32("ip set id")?)),
        7 => Op::UpsertRoute(get_route(r)?),
        8 => Op::RemoveRoute(r.prefix("route prefix")?),
        9 => Op::Nat(get_nat(r)?),
        10 => Op::UpsertNode(get_node(r)?),
        _ => Op::RemoveNode(NodeId(r.u32("node id")?)),
    })
}

impl Message {
    /// The generation this message produces.
    pub fn generation(&self) -> Generation {
        match self {
            Self::Snapshot { generation, .. } | Self::Delta { generation, .. } => *generation,
        }
    }

    /// Appends the framed message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::default();
        let kind = match self {
            Self::Snapshot { generation, tables } => {
                put_generation(&mut w, *generation);
                put_tables(&mut w, tables);
                1
            }
            Self::Delta {
                base,
                generation,
                ops,
            } => {
                put_generation(&mut w, *base);
                put_generation(&mut w, *generation);
                w.seq(ops, put_op);
                2
            }
        };
        let body = w.buf;
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(kind);
        out.push(0);
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&fnv1a(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }

    /// The framed message as a new vector.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }

    /// Decodes one framed message from the start of `bytes`; returns it and the number of
    /// bytes it took, so consecutive frames can be read from one buffer.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), AbiError> {
        let (kind, body_len) = decode_header(bytes)?;
        let total = HEADER_LEN + body_len;
        if bytes.len() < total {
            return Err(AbiError::Truncated {
                field: "body",
                needed: body_len,
                offset: HEADER_LEN,
            });
        }
        let body = &bytes[HEADER_LEN..total];
        let expected = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let found = fnv1a(body);
        if expected != found {
            return Err(AbiError::Checksum { expected, found });
        }
        let mut r = Reader::new(body, HEADER_LEN);
        let msg = match kind {
            1 => Self::Snapshot {
                generation: get_generation(&mut r, "generation")?,
                tables: get_tables(&mut r)?,
            },
            _ => Self::Delta {
                base: get_generation(&mut r, "base generation")?,
                generation: get_generation(&mut r, "generation")?,
                ops: r.seq("ops", get_op)?,
            },
        };
        if r.remaining() != 0 {
            return Err(AbiError::Trailing {
                extra: r.remaining(),
                offset: r.offset(),
            });
        }
        Ok((msg, total))
    }
}

/// Checks a frame header and returns the kind and the body length, so a ring reader can
/// learn how many bytes the whole frame takes before it has them all.
pub fn decode_header(bytes: &[u8]) -> Result<(u8, usize), AbiError> {
    let mut r = Reader::new(bytes, 0);
    if r.array::<4>("magic")? != MAGIC {
        return Err(AbiError::BadMagic);
    }
    let version = r.u16("version")?;
    if version != FORMAT_VERSION {
        return Err(AbiError::UnsupportedVersion {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let kind = r.tag("kind", 2)?;
    if kind == 0 {
        return Err(AbiError::BadTag {
            field: "kind",
            tag: 0,
            offset: 6,
        });
    }
    let reserved = r.u8("reserved")?;
    if reserved != 0 {
        return Err(AbiError::BadValue {
            field: "reserved",
            offset: 7,
        });
    }
    let len = r.u32("body length")?;
    if len > MAX_BODY_LEN {
        return Err(AbiError::TooLarge { len });
    }
    r.u32("body checksum")?;
    Ok((kind, len as usize))
}
