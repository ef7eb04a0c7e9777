//! Best-path comparison (RFC 4271 §9.1.2.2 plus the customary tie-breakers).
//!
//! Order, first difference wins:
//! 1. fresh over stale (a route kept across a peer's restart loses to any re-learned one);
//! 2. locally originated over learned;
//! 3. higher LOCAL_PREF (100 when absent);
//! 4. shorter AS_PATH (an AS_SET counts 1, confederation segments 0);
//! 5. lower ORIGIN;
//! 6. lower MED, only between routes from the same neighbouring AS (absent MED = 0);
//! 7. eBGP-learned over iBGP-learned;
//! 8. (IGP cost to the next hop: not applicable, there is no IGP);
//! 9. lower BGP Identifier, using ORIGINATOR_ID when present (RFC 4456 §9);
//! 10. shorter CLUSTER_LIST (RFC 4456 §9);
//! 11. lower peer address;
//! 12. lower ADD-PATH path id (keeps the order total).

use super::Path;
use crate::route::LOCAL_SOURCE;
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

/// What selection needs to know about a route's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    /// Learned over eBGP.
    pub ebgp: bool,
    /// The peer's BGP Identifier (ours for local routes).
    pub router_id: Ipv4Addr,
    /// The peer's address.
    pub address: IpAddr,
}

impl Default for SourceInfo {
    fn default() -> Self {
        SourceInfo {
            ebgp: false,
            router_id: Ipv4Addr::UNSPECIFIED,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// `Less` when `a` is better than `b`.
pub fn compare(a: &Path, b: &Path, sources: &[SourceInfo]) -> Ordering {
    let info = |p: &Path| sources.get(p.source as usize).copied().unwrap_or_default();
    let (sa, sb) = (info(a), info(b));
    let (x, y) = (&a.attrs.path, &b.attrs.path);
    a.stale
        .cmp(&b.stale)
        .then_with(|| (b.source == LOCAL_SOURCE).cmp(&(a.source == LOCAL_SOURCE)))
        .then_with(|| {
            y.local_pref
                .unwrap_or(100)
                .cmp(&x.local_pref.unwrap_or(100))
        })
        .then_with(|| x.as_path.hop_count().cmp(&y.as_path.hop_count()))
        .then_with(|| x.origin.cmp(&y.origin))
        .then_with(|| {
            if x.as_path.first_as() == y.as_path.first_as() {
                x.med.unwrap_or(0).cmp(&y.med.unwrap_or(0))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| sb.ebgp.cmp(&sa.ebgp))
        .then_with(|| {
            let ida = x.originator_id.unwrap_or(sa.router_id);
            let idb = y.originator_id.unwrap_or(sb.router_id);
            u32::from(ida).cmp(&u32::from(idb))
        })
        .then_with(|| x.cluster_list.len().cmp(&y.cluster_list.len()))
        .then_with(|| sa.address.cmp(&sb.address))
        .then_with(|| a.path_id.cmp(&b.path_id))
}
