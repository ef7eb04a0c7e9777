//! Encoding and decoding of every table type, field by field, in declaration order.
//!
//! The layout is: integers little-endian; `Option` as a 0/1 byte then the value; sequences
//! as a `u32` count then the elements; enums as a one-byte tag then the variant's fields; IP
//! addresses as a family byte (4 or 6) then the octets; prefixes as an address then a length.

use crate::AbiError;
use crate::codec::{Reader, Writer};
use crate::ids::{EndpointId, IpSetId, NodeId, ProgramId, RuleId};
use crate::policy::{
    Action, AddrMatch, IcmpMatch, IpVersion, Policy, PolicyProgram, PortMatch, PortRange, Rule,
    RuleMatch, Tier, TierDefault,
};
use crate::tables::{
    DnatEntry, Endpoint, EndpointKind, HostAction, IpSet, IpipMode, Nat, Node, Route, RouteTarget,
    Settings,
};

type R<T> = Result<T, AbiError>;

fn program_id(r: &mut Reader<'_>) -> R<ProgramId> {
    Ok(ProgramId(r.u32("program id")?))
}

pub(crate) fn put_endpoint(w: &mut Writer, e: &Endpoint) {
    w.u32(e.id.0);
    w.u32(e.if_index);
    w.u8(match e.kind {
        EndpointKind::Workload => 0,
        EndpointKind::Host => 1,
    });
    w.bytes(&e.mac);
    w.seq(&e.addrs, |w, p| w.prefix(p));
    for p in [
        &e.ingress,
        &e.egress,
        &e.untracked_ingress,
        &e.untracked_egress,
        &e.pre_dnat,
        &e.forward_ingress,
        &e.forward_egress,
    ] {
        w.opt(p, |w, id| w.u32(id.0));
    }
}

pub(crate) fn get_endpoint(r: &mut Reader<'_>) -> R<Endpoint> {
    Ok(Endpoint {
        id: EndpointId(r.u32("endpoint id")?),
        if_index: r.u32("endpoint if_index")?,
        kind: match r.tag("endpoint kind", 1)? {
            0 => EndpointKind::Workload,
            _ => EndpointKind::Host,
        },
        mac: r.array("endpoint mac")?,
        addrs: r.seq("endpoint addrs", |r| r.prefix("endpoint addr"))?,
        ingress: r.opt("endpoint ingress", program_id)?,
        egress: r.opt("endpoint egress", program_id)?,
        untracked_ingress: r.opt("endpoint untracked_ingress", program_id)?,
        untracked_egress: r.opt("endpoint untracked_egress", program_id)?,
        pre_dnat: r.opt("endpoint pre_dnat", program_id)?,
        forward_ingress: r.opt("endpoint forward_ingress", program_id)?,
        forward_egress: r.opt("endpoint forward_egress", program_id)?,
    })
}

fn put_ports(w: &mut Writer, p: &PortMatch) {
    for v in [&p.ranges, &p.not_ranges] {
        w.seq(v, |w, r| {
            w.u16(r.lo);
            w.u16(r.hi);
        });
    }
}

fn port_range(r: &mut Reader<'_>) -> R<PortRange> {
    let at = r.offset();
    let lo = r.u16("port range lo")?;
    let hi = r.u16("port range hi")?;
    if lo > hi {
        return Err(AbiError::BadValue {
            field: "port range",
            offset: at,
        });
    }
    Ok(PortRange { lo, hi })
}

fn get_ports(r: &mut Reader<'_>) -> R<PortMatch> {
    Ok(PortMatch {
        ranges: r.seq("port ranges", port_range)?,
        not_ranges: r.seq("not port ranges", port_range)?,
    })
}

fn put_addrs(w: &mut Writer, a: &AddrMatch) {
    w.seq(&a.nets, |w, p| w.prefix(p));
    w.seq(&a.not_nets, |w, p| w.prefix(p));
    w.seq(&a.sets, |w, s| w.u32(s.0));
    w.seq(&a.not_sets, |w, s| w.u32(s.0));
}

fn get_addrs(r: &mut Reader<'_>) -> R<AddrMatch> {
    Ok(AddrMatch {
        nets: r.seq("nets", |r| r.prefix("net"))?,
        not_nets: r.seq("not nets", |r| r.prefix("not net"))?,
        sets: r.seq("sets", |r| Ok(IpSetId(r.u32("set id")?)))?,
        not_sets: r.seq("not sets", |r| Ok(IpSetId(r.u32("not set id")?)))?,
    })
}

fn put_icmp(w: &mut Writer, m: &IcmpMatch) {
    w.u8(m.icmp_type);
    w.opt(&m.code, |w, c| w.u8(*c));
}

fn get_icmp(r: &mut Reader<'_>) -> R<IcmpMatch> {
    Ok(IcmpMatch {
        icmp_type: r.u8("icmp type")?,
        code: r.opt("icmp code", |r| r.u8("icmp code"))?,
    })
}

fn put_rule(w: &mut Writer, rule: &Rule) {
    w.u32(rule.id.0);
    w.u8(match rule.action {
        Action::Allow => 0,
        Action::Deny => 1,
        Action::Pass => 2,
        Action::Log => 3,
    });
    let m = &rule.matches;
    w.opt(&m.ip_version, |w, v| {
        w.u8(matches!(v, IpVersion::V6).into())
    });
    w.opt(&m.protocol, |w, p| w.u8(*p));
    w.opt(&m.not_protocol, |w, p| w.u8(*p));
    put_addrs(w, &m.src);
    put_addrs(w, &m.dst);
    put_ports(w, &m.src_ports);
    put_ports(w, &m.dst_ports);
    w.opt(&m.icmp, put_icmp);
    w.opt(&m.not_icmp, put_icmp);
}

fn get_rule(r: &mut Reader<'_>) -> R<Rule> {
    let id = RuleId(r.u32("rule id")?);
    let action = match r.tag("rule action", 3)? {
        0 => Action::Allow,
        1 => Action::Deny,
        2 => Action::Pass,
        _ => Action::Log,
    };
    let matches = RuleMatch {
        ip_version: r.opt("ip version", |r| {
            Ok(if r.tag("ip version", 1)? == 1 {
                IpVersion::V6
            } else {
                IpVersion::V4
            })
        })?,
        protocol: r.opt("protocol", |r| r.u8("protocol"))?,
        not_protocol: r.opt("not protocol", |r| r.u8("not protocol"))?,
        src: get_addrs(r)?,
        dst: get_addrs(r)?,
        src_ports: get_ports(r)?,
        dst_ports: get_ports(r)?,
        icmp: r.opt("icmp", get_icmp)?,
        not_icmp: r.opt("not icmp", get_icmp)?,
    };
    Ok(Rule {
        id,
        action,
        matches,
    })
}

fn put_policy(w: &mut Writer, p: &Policy) {
    w.seq(&p.rules, put_rule);
}

fn get_policy(r: &mut Reader<'_>) -> R<Policy> {
    Ok(Policy {
        rules: r.seq("rules", get_rule)?,
    })
}

pub(crate) fn put_program(w: &mut Writer, p: &PolicyProgram) {
    w.u32(p.id.0);
    w.seq(&p.tiers, |w, t| {
        w.u8(match t.default_action {
            TierDefault::Deny => 0,
            TierDefault::Pass => 1,
        });
        w.seq(&t.policies, put_policy);
    });
    w.seq(&p.profiles, put_policy);
}

pub(crate) fn get_program(r: &mut Reader<'_>) -> R<PolicyProgram> {
    Ok(PolicyProgram {
        id: program_id(r)?,
        tiers: r.seq("tiers", |r| {
            Ok(Tier {
                default_action: if r.tag("tier default", 1)? == 1 {
                    TierDefault::Pass
                } else {
                    TierDefault::Deny
                },
                policies: r.seq("policies", get_policy)?,
            })
        })?,
        profiles: r.seq("profiles", get_policy)?,
    })
}

pub(crate) fn put_ip_set(w: &mut Writer, s: &IpSet) {
    w.u32(s.id.0);
    w.seq(&s.members, |w, p| w.prefix(p));
}

pub(crate) fn get_ip_set(r: &mut Reader<'_>) -> R<IpSet> {
    Ok(IpSet {
        id: IpSetId(r.u32("ip set id")?),
        members: r.seq("ip set members", |r| r.prefix("member"))?,
    })
}

fn put_ipip(w: &mut Writer, m: IpipMode) {
    w.u8(match m {
        IpipMode::Never => 0,
        IpipMode::Always => 1,
        IpipMode::CrossSubnet => 2,
    });
}

fn get_ipip(r: &mut Reader<'_>) -> R<IpipMode> {
    Ok(match r.tag("ipip mode", 2)? {
        0 => IpipMode::Never,
        1 => IpipMode::Always,
        _ => IpipMode::CrossSubnet,
    })
}

pub(crate) fn put_route(w: &mut Writer, route: &Route) {
    w.prefix(&route.prefix);
    match route.target {
        RouteTarget::Local(e) => {
            w.u8(0);
            w.u32(e.0);
        }
        RouteTarget::Node { node, encap } => {
            w.u8(1);
            w.u32(node.0);
            w.opt(&encap, |w, m| put_ipip(w, *m));
        }
        RouteTarget::Uplink => w.u8(2),
        RouteTarget::Host => w.u8(3),
        RouteTarget::Blackhole => w.u8(4),
    }
}

pub(crate) fn get_route(r: &mut Reader<'_>) -> R<Route> {
    let prefix = r.prefix("route prefix")?;
    let target = match r.tag("route target", 4)? {
        0 => RouteTarget::Local(EndpointId(r.u32("route endpoint")?)),
        1 => RouteTarget::Node {
            node: NodeId(r.u32("route node")?),
            encap: r.opt("route encap", get_ipip)?,
        },
        2 => RouteTarget::Uplink,
        3 => RouteTarget::Host,
        _ => RouteTarget::Blackhole,
    };
    Ok(Route { prefix, target })
}

pub(crate) fn put_nat(w: &mut Writer, n: &Nat) {
    w.seq(&n.dnat, |w, d| {
        w.ip(&d.external);
        w.ip(&d.internal);
    });
    w.seq(&n.snat_pools, |w, p| w.prefix(p));
    w.seq(&n.all_pools, |w, p| w.prefix(p));
    w.opt(&n.snat_v4, |w, a| w.ip(a));
    w.opt(&n.snat_v6, |w, a| w.ip(a));
    w.u16(n.port_lo);
    w.u16(n.port_hi);
}

pub(crate) fn get_nat(r: &mut Reader<'_>) -> R<Nat> {
    let dnat = r.seq("dnat", |r| {
        let at = r.offset();
        let external = r.ip("dnat external")?;
        let internal = r.ip("dnat internal")?;
        if external.is_ipv4() != internal.is_ipv4() {
            return Err(AbiError::BadValue {
                field: "dnat family",
                offset: at,
            });
        }
        Ok(DnatEntry { external, internal })
    })?;
    let snat_pools = r.seq("snat pools", |r| r.prefix("snat pool"))?;
    let all_pools = r.seq("all pools", |r| r.prefix("pool"))?;
    let snat_v4 = r.opt("snat v4", |r| r.ip("snat v4"))?;
    let snat_v6 = r.opt("snat v6", |r| r.ip("snat v6"))?;
    let at = r.offset();
    let port_lo = r.u16("nat port lo")?;
    let port_hi = r.u16("nat port hi")?;
    if port_lo > port_hi {
        return Err(AbiError::BadValue {
            field: "nat port range",
            offset: at,
        });
    }
    Ok(Nat {
        dnat,
        snat_pools,
        all_pools,
        snat_v4,
        snat_v6,
        port_lo,
        port_hi,
    })
}

pub(crate) fn put_node(w: &mut Writer, n: &Node) {
    w.u32(n.id.0);
    w.ip(&n.addr);
    w.bytes(&n.mac);
    w.seq(&n.tunnel_allowed, |w, a| w.ip(a));
}

pub(crate) fn get_node(r: &mut Reader<'_>) -> R<Node> {
    Ok(Node {
        id: NodeId(r.u32("node id")?),
        addr: r.ip("node addr")?,
        mac: r.array("node mac")?,
        tunnel_allowed: r.seq("tunnel allowed", |r| r.ip("tunnel allowed"))?,
    })
}

pub(crate) fn put_settings(w: &mut Writer, s: &Settings) {
    w.u16(s.mtu);
    w.u8(match s.default_endpoint_to_host {
        HostAction::Drop => 0,
        HostAction::Accept => 1,
        HostAction::Return => 2,
    });
    put_ipip(w, s.ipip_mode);
    for a in [&s.node_v4, &s.node_v6] {
        w.opt(a, |w, a| {
            w.ip(&a.addr);
            w.u8(a.subnet_len);
        });
    }
    w.u32(s.uplink_if);
    w.bytes(&s.uplink_mac);
    w.bytes(&s.gateway_mac);
    w.u32(s.host_if);
    w.u32(s.tcp_established_timeout_s);
    w.u32(s.tcp_transitory_timeout_s);
    w.u32(s.udp_timeout_s);
    w.u32(s.icmp_timeout_s);
}

/// Node addresses travel as "address + subnet length", so host bits are allowed there.
fn node_addr(r: &mut Reader<'_>, field: &'static str) -> R<crate::ids::SubnetAddr> {
    let at = r.offset();
    let addr = r.ip(field)?;
    let subnet_len = r.u8(field)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if subnet_len > max {
        return Err(AbiError::BadValue { field, offset: at });
    }
    Ok(crate::ids::SubnetAddr { addr, subnet_len })
}

pub(crate) fn get_settings(r: &mut Reader<'_>) -> R<Settings> {
    Ok(Settings {
        mtu: r.u16("mtu")?,
        default_endpoint_to_host: match r.tag("default endpoint to host action", 2)? {
            0 => HostAction::Drop,
            1 => HostAction::Accept,
            _ => HostAction::Return,
        },
        ipip_mode: get_ipip(r)?,
        node_v4: r.opt("node v4", |r| node_addr(r, "node v4"))?,
        node_v6: r.opt("node v6", |r| node_addr(r, "node v6"))?,
        uplink_if: r.u32("uplink if")?,
        uplink_mac: r.array("uplink mac")?,
        gateway_mac: r.array("gateway mac")?,
        host_if: r.u32("host if")?,
        tcp_established_timeout_s: r.u32("tcp established timeout")?,
        tcp_transitory_timeout_s: r.u32("tcp transitory timeout")?,
        udp_timeout_s: r.u32("udp timeout")?,
        icmp_timeout_s: r.u32("icmp timeout")?,
    })
}

pub(crate) fn put_generation(w: &mut Writer, g: crate::Generation) {
    w.u64(g.0);
}

pub(crate) fn get_generation(r: &mut Reader<'_>, field: &'static str) -> R<crate::Generation> {
    Ok(crate::Generation(r.u64(field)?))
}
