//! Best-path selection and RIB bookkeeping tests.

use super::*;
use crate::route::LOCAL_SOURCE;
use std::net::{IpAddr, Ipv4Addr};
use tortie_bgp_wire::{AsPath, NextHop, Origin, PathAttributes};

fn src(ebgp: bool, id: u8, addr: u8) -> SourceInfo {
    SourceInfo {
        ebgp,
        router_id: Ipv4Addr::new(198, 18, 1, id),
        address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, addr)),
    }
}

fn rib() -> Rib {
    // 0 local, 1 iBGP (id .1, addr .1), 2 iBGP (id .2, addr .2), 3 eBGP (id .3, addr .3)
    Rib::new(vec![
        src(false, 99, 99),
        src(false, 1, 1),
        src(false, 2, 2),
        src(true, 3, 3),
    ])
}

fn attrs(f: impl FnOnce(&mut PathAttributes)) -> Arc<RouteAttrs> {
    let mut p = PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::sequence(vec![65001]),
        ..Default::default()
    };
    f(&mut p);
    Arc::new(RouteAttrs {
        path: p,
        next_hop: Some(NextHop::V4(Ipv4Addr::new(198, 18, 0, 1))),
    })
}

fn path(source: SourceId, a: Arc<RouteAttrs>) -> Path {
    Path {
        source,
        path_id: 0,
        attrs: a,
        stale: false,
    }
}

fn pfx() -> Prefix {
    "198.18.10.0/26".parse().unwrap()
}

/// Inserts both paths in both orders and returns the winning source each time.
fn winner(a: Path, b: Path) -> SourceId {
    let mut r1 = rib();
    r1.update(pfx(), a.clone());
    r1.update(pfx(), b.clone());
    let mut r2 = rib();
    r2.update(pfx(), b);
    r2.update(pfx(), a);
    let w1 = r1.best(&pfx()).unwrap().source;
    assert_eq!(
        w1,
        r2.best(&pfx()).unwrap().source,
        "selection must not depend on arrival order"
    );
    w1
}

#[test]
fn higher_local_pref_wins() {
    assert_eq!(
        winner(
            path(1, attrs(|p| p.local_pref = Some(200))),
            path(2, attrs(|p| p.local_pref = Some(100)))
        ),
        1
    );
    assert_eq!(
        winner(
            path(1, attrs(|_| {})),
            path(2, attrs(|p| p.local_pref = Some(2_147_482_623)))
        ),
        2
    );
}

#[test]
fn shorter_as_path_wins_and_set_counts_one() {
    assert_eq!(
        winner(
            path(1, attrs(|p| p.as_path = AsPath::sequence(vec![1, 2]))),
            path(2, attrs(|_| {}))
        ),
        2
    );
    let set = attrs(|p| {
        p.as_path.segments = vec![tortie_bgp_wire::AsSegment {
            kind: tortie_bgp_wire::AsSegmentType::Set,
            asns: vec![1, 2, 3],
        }];
    });
    assert_eq!(
        winner(
            path(1, set),
            path(2, attrs(|p| p.as_path = AsPath::sequence(vec![1, 2])))
        ),
        1
    );
}

#[test]
fn lower_origin_wins() {
    assert_eq!(
        winner(
            path(1, attrs(|p| p.origin = Origin::Incomplete)),
            path(2, attrs(|p| p.origin = Origin::Egp))
        ),
        2
    );
}

#[test]
fn med_only_compared_within_the_same_neighbour_as() {
    assert_eq!(
        winner(
            path(1, attrs(|p| p.med = Some(50))),
            path(2, attrs(|p| p.med = Some(10)))
        ),
        2
    );
    // Different neighbour AS: MED ignored, falls to router id (source 1 has the lower one).
    assert_eq!(
        winner(
            path(1, attrs(|p| p.med = Some(50))),
            path(
                2,
                attrs(|p| {
                    p.med = Some(10);
                    p.as_path = AsPath::sequence(vec![65002]);
                })
            )
        ),
        1
    );
}

#[test]
fn ebgp_beats_ibgp() {
    assert_eq!(winner(path(1, attrs(|_| {})), path(3, attrs(|_| {}))), 3);
}

#[test]
fn originator_id_used_instead_of_router_id() {
    let a = attrs(|p| p.originator_id = Some(Ipv4Addr::new(198, 18, 1, 200)));
    assert_eq!(winner(path(1, a), path(2, attrs(|_| {}))), 2);
}

#[test]
fn shorter_cluster_list_then_lower_address() {
    let a = attrs(|p| {
        p.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
        p.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)];
    });
    let b = attrs(|p| {
        p.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
        p.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
    });
    assert_eq!(winner(path(1, a), path(2, b.clone())), 2);
    assert_eq!(
        winner(path(1, b.clone()), path(2, b)),
        1,
        "same everything: lower peer address"
    );
}

#[test]
fn local_routes_win_and_stale_routes_lose() {
    assert_eq!(
        winner(
            path(LOCAL_SOURCE, attrs(|_| {})),
            path(3, attrs(|p| p.local_pref = Some(1000)))
        ),
        LOCAL_SOURCE
    );
    let mut stale = path(3, attrs(|_| {}));
    stale.stale = true;
    assert_eq!(
        winner(stale, path(1, attrs(|p| p.local_pref = Some(10)))),
        1
    );
}

#[test]
fn changes_are_reported() {
    let mut r = rib();
    assert_eq!(
        r.update(pfx(), path(1, attrs(|_| {}))),
        Some(BestChange::Added)
    );
    assert_eq!(
        r.update(pfx(), path(2, attrs(|p| p.local_pref = Some(10)))),
        None,
        "a worse path changes nothing"
    );
    assert_eq!(
        r.update(pfx(), path(2, attrs(|p| p.local_pref = Some(1000)))),
        Some(BestChange::Changed)
    );
    assert_eq!(r.withdraw(&pfx(), 2, 0), Some(BestChange::Changed));
    assert_eq!(r.withdraw(&pfx(), 1, 0), Some(BestChange::Withdrawn));
    assert!(r.is_empty());
    assert_eq!(r.count(1), 0);
}

#[test]
fn add_path_ids_are_separate_paths() {
    let mut r = rib();
    r.update(
        pfx(),
        Path {
            path_id: 1,
            ..path(1, attrs(|_| {}))
        },
    );
    r.update(
        pfx(),
        Path {
            path_id: 2,
            ..path(1, attrs(|p| p.local_pref = Some(300)))
        },
    );
    assert_eq!(r.paths(&pfx()).len(), 2);
    assert_eq!(r.best(&pfx()).unwrap().path_id, 2);
    assert_eq!(r.count(1), 2);
}

#[test]
fn stale_marking_and_sweep() {
    let mut r = rib();
    let v6: Prefix = "2001:db8:10::/122".parse().unwrap();
    r.update(pfx(), path(1, attrs(|_| {})));
    r.update(v6, path(1, attrs(|_| {})));
    let mut ch = vec![];
    r.mark_stale(1, Family::Ipv4Unicast, &mut ch);
    assert!(ch.is_empty(), "a lone stale route stays best");
    assert!(r.best(&pfx()).unwrap().stale);
    assert!(!r.best(&v6).unwrap().stale);
    // Re-learned: fresh again, no event.
    assert_eq!(
        r.update(pfx(), path(1, r.best(&pfx()).unwrap().attrs.clone())),
        None
    );
    r.mark_stale(1, Family::Ipv4Unicast, &mut ch);
    r.remove_where(1, |_, p| p.stale, &mut ch);
    assert_eq!(ch, vec![(pfx(), BestChange::Withdrawn)]);
    assert_eq!(r.count(1), 1);
}
