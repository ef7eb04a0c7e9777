//! Projection of a [`Rule`] onto index entries of each family plus one predicate.
//!
//! Multi-valued fields are expanded into the cross product of their values (a rule with two
//! source nets and three destination ports becomes six entries of the same priority). When the
//! product would exceed [`MAX_EXPANSION`], the field with most values is left out of the index
//! (indexed as "any") and checked by an any-of predicate instead, repeatedly, until it fits.

use ipnet::IpNet;

use crate::addr::Addr;
use crate::entry::{Entry, F_EXTRA, F_PROTO, NIL};
use crate::error::ClassifierError;
use crate::predicate::{Extra, Pred, Side};
use crate::rule::{IpVersion, PortRange, Rule};

/// Most entries one rule may expand into per family.
pub(crate) const MAX_EXPANSION: usize = 64;

/// A rule's entries before the predicate index is known.
pub(crate) struct Expanded {
    pub v4: Vec<Entry<u32>>,
    pub v6: Vec<Entry<u128>>,
    /// `Some` when the entries carry `F_EXTRA` and need a predicate slot.
    pub extra: Option<Extra>,
}

fn check_ranges(
    rule: &Rule,
    field: &'static str,
    ranges: &[PortRange],
) -> Result<(), ClassifierError> {
    match ranges.iter().find(|r| r.lo > r.hi) {
        Some(r) => Err(ClassifierError::EmptyPortRange {
            priority: rule.priority,
            field,
            lo: r.lo,
            hi: r.hi,
        }),
        None => Ok(()),
    }
}

/// Validates and projects `rule`.
pub(crate) fn expand(rule: &Rule) -> Result<Expanded, ClassifierError> {
    if rule.priority == u32::MAX {
        return Err(ClassifierError::ReservedPriority {
            priority: rule.priority,
        });
    }
    check_ranges(rule, "src_ports", &rule.src_ports.ranges)?;
    check_ranges(rule, "dst_ports", &rule.dst_ports.ranges)?;
    check_ranges(rule, "not_src_ports", &rule.src_ports.not_ranges)?;
    check_ranges(rule, "not_dst_ports", &rule.dst_ports.not_ranges)?;

    let mut preds = Vec::new();
    for (side, m) in [(Side::Src, &rule.src), (Side::Dst, &rule.dst)] {
        preds.extend(m.sets.iter().map(|&s| Pred::InSet(side, s)));
        preds.extend(m.not_sets.iter().map(|&s| Pred::NotInSet(side, s)));
        if !m.not_nets.is_empty() {
            preds.push(Pred::NotInNets(side, m.not_nets.clone().into_boxed_slice()));
        }
    }
    for (side, m) in [(Side::Src, &rule.src_ports), (Side::Dst, &rule.dst_ports)] {
        if !m.not_ranges.is_empty() {
            preds.push(Pred::NotInPorts(
                side,
                m.not_ranges.clone().into_boxed_slice(),
            ));
        }
    }
    if let Some(p) = rule.not_protocol {
        preds.push(Pred::NotProto(p));
    }

    let mut fields = Fields::new(rule);
    fields.fit(&mut preds);
    let has_extra = !preds.is_empty();
    let v4 = if rule.ip_version == Some(IpVersion::V6) {
        Vec::new()
    } else {
        fields.entries::<u32>(rule, has_extra)
    };
    let v6 = if rule.ip_version == Some(IpVersion::V4) {
        Vec::new()
    } else {
        fields.entries::<u128>(rule, has_extra)
    };
    let extra = has_extra.then(|| Extra {
        action: rule.action,
        preds: preds.into_boxed_slice(),
    });
    Ok(Expanded { v4, v6, extra })
}

/// The indexed values of the four multi-valued fields; `None` = indexed as "any".
struct Fields {
    src: Option<Vec<IpNet>>,
    dst: Option<Vec<IpNet>>,
    sp: Option<Vec<PortRange>>,
    dp: Option<Vec<PortRange>>,
}

fn count<A: Addr>(nets: &Option<Vec<IpNet>>) -> usize {
    nets.as_ref()
        .map_or(1, |n| n.iter().filter(|n| A::from_net(n).is_some()).count())
}

impl Fields {
    fn new(rule: &Rule) -> Self {
        let nets = |n: &Vec<IpNet>| {
            (!n.is_empty()).then(|| n.iter().map(IpNet::trunc).collect::<Vec<_>>())
        };
        let ports = |r: &Vec<PortRange>| (!r.is_empty()).then(|| r.clone());
        Self {
            src: nets(&rule.src.nets),
            dst: nets(&rule.dst.nets),
            sp: ports(&rule.src_ports.ranges),
            dp: ports(&rule.dst_ports.ranges),
        }
    }

    /// Entries per family: the worst of the two families' products.
    fn product(&self) -> usize {
        let ports = self.sp.as_ref().map_or(1, Vec::len) * self.dp.as_ref().map_or(1, Vec::len);
        let v4 = count::<u32>(&self.src) * count::<u32>(&self.dst);
        let v6 = count::<u128>(&self.src) * count::<u128>(&self.dst);
        v4.max(v6) * ports
    }

    /// Moves the widest fields to predicates until the product is small enough.
    fn fit(&mut self, preds: &mut Vec<Pred>) {
        while self.product() > MAX_EXPANSION {
            let sizes = [
                self.src.as_ref().map_or(0, Vec::len),
                self.dst.as_ref().map_or(0, Vec::len),
                self.sp.as_ref().map_or(0, Vec::len),
                self.dp.as_ref().map_or(0, Vec::len),
            ];
            let widest = (0..4).max_by_key(|&i| sizes[i]).unwrap_or(0);
            match widest {
                0 => preds.push(Pred::InNets(
                    Side::Src,
                    self.src.take().unwrap_or_default().into(),
                )),
                1 => preds.push(Pred::InNets(
                    Side::Dst,
                    self.dst.take().unwrap_or_default().into(),
                )),
                2 => preds.push(Pred::InPorts(
                    Side::Src,
                    self.sp.take().unwrap_or_default().into(),
                )),
                _ => preds.push(Pred::InPorts(
                    Side::Dst,
                    self.dp.take().unwrap_or_default().into(),
                )),
            }
        }
    }

    fn nets_of<A: Addr>(nets: &Option<Vec<IpNet>>) -> Vec<(A, u8)> {
        match nets {
            None => vec![(A::ZERO, 0)],
            Some(n) => n.iter().filter_map(A::from_net).collect(),
        }
    }

    fn entries<A: Addr>(&self, rule: &Rule, has_extra: bool) -> Vec<Entry<A>> {
        let any = [PortRange::ANY];
        let srcs = Self::nets_of::<A>(&self.src);
        let dsts = Self::nets_of::<A>(&self.dst);
        let sps = self.sp.as_deref().unwrap_or(&any);
        let dps = self.dp.as_deref().unwrap_or(&any);
        let mut flags = if has_extra { F_EXTRA } else { 0 };
        if rule.protocol.is_some() {
            flags |= F_PROTO;
        }
        let mut out = Vec::with_capacity(srcs.len() * dsts.len() * sps.len() * dps.len());
        for &(src, src_len) in &srcs {
            for &(dst, dst_len) in &dsts {
                for sp in sps {
                    for dp in dps {
                        out.push(Entry {
                            src,
                            dst,
                            sp_lo: sp.lo,
                            sp_hi: sp.hi,
                            dp_lo: dp.lo,
                            dp_hi: dp.hi,
                            src_len,
                            dst_len,
                            proto: rule.protocol.unwrap_or(0),
                            flags,
                            prio: rule.priority,
                            payload: rule.action,
                            next: NIL,
                        });
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{AddrMatch, PortMatch, SetId};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn multi_valued_fields_expand_to_the_cross_product() {
        let rule = Rule {
            src: AddrMatch::nets([net("10.0.0.0/8"), net("11.0.0.0/8"), net("2001:db8::/32")]),
            dst_ports: PortMatch::ranges([
                PortRange::single(80),
                PortRange::single(443),
                PortRange::new(8000, 8080),
            ]),
            ..Rule::default()
        };
        let ex = expand(&rule).unwrap();
        assert_eq!(ex.v4.len(), 6);
        assert_eq!(ex.v6.len(), 3);
        assert!(ex.extra.is_none());
    }

    #[test]
    fn wide_fields_become_predicates() {
        let nets: Vec<IpNet> = (0..100u32)
            .map(|i| IpNet::V4(ipnet::Ipv4Net::new_assert((i << 24).into(), 8)))
            .collect();
        let rule = Rule {
            src: AddrMatch::nets(nets),
            dst_ports: PortMatch::single(80),
            ..Rule::default()
        };
        let ex = expand(&rule).unwrap();
        assert_eq!(ex.v4.len(), 1);
        assert_eq!(ex.v4[0].src_len, 0);
        assert!(ex.v4[0].flags & F_EXTRA != 0);
        assert!(
            matches!(&ex.extra.unwrap().preds[..], [Pred::InNets(Side::Src, n)] if n.len() == 100)
        );
    }

    #[test]
    fn families_follow_nets_and_ip_version() {
        let v6_only = Rule {
            dst: AddrMatch::nets([net("2001:db8::/64")]),
            ..Rule::default()
        };
        let ex = expand(&v6_only).unwrap();
        assert!(ex.v4.is_empty());
        assert_eq!(ex.v6.len(), 1);
        let v4_version = Rule {
            ip_version: Some(IpVersion::V4),
            ..Rule::default()
        };
        let ex = expand(&v4_version).unwrap();
        assert_eq!((ex.v4.len(), ex.v6.len()), (1, 0));
        let sets = Rule {
            src: AddrMatch::set(SetId(3)),
            not_protocol: Some(17),
            ..Rule::default()
        };
        let ex = expand(&sets).unwrap();
        assert_eq!((ex.v4.len(), ex.v6.len()), (1, 1));
        assert_eq!(ex.extra.unwrap().preds.len(), 2);
    }

    #[test]
    fn invalid_rules_are_rejected_with_the_field() {
        let bad = Rule {
            priority: 7,
            src_ports: PortMatch::ranges([PortRange::new(9, 3)]),
            ..Rule::default()
        };
        assert_eq!(
            expand(&bad).err().unwrap().to_string(),
            "rule priority 7: src_ports range 9..=3 is empty (lo > hi)"
        );
        let reserved = Rule {
            priority: u32::MAX,
            ..Rule::default()
        };
        assert!(matches!(
            expand(&reserved).err(),
            Some(ClassifierError::ReservedPriority { .. })
        ));
    }
}
