//! Pools as IPAM sees them, and the order in which a node tries a pool's blocks.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Upper bound on the candidate blocks scanned in one pool (an IPv6 /64 pool has 2^58 blocks
/// of /122; the scan stops long before and reports the pool exhausted for this attempt).
pub const MAX_BLOCK_SCAN: u64 = 1 << 20;

/// What a pool may be used for (Calico's `allowedUses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolUse {
    /// Workload (container) addresses.
    Workload,
    /// Node tunnel addresses.
    Tunnel,
}

/// An IP pool reduced to what allocation needs. The caller has already dropped disabled pools
/// and pools whose nodeSelector does not select the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's name.
    pub name: String,
    /// The pool's CIDR.
    pub cidr: IpNet,
    /// Block prefix length (26 / 122 by default).
    pub block_size: u8,
    /// Uses the pool allows.
    pub allowed_uses: Vec<PoolUse>,
}

impl Pool {
    /// Number of blocks in the pool (saturating).
    pub fn block_count(&self) -> u64 {
        let bits = u32::from(self.block_size.saturating_sub(self.cidr.prefix_len()));
        1u64.checked_shl(bits).unwrap_or(u64::MAX)
    }

    /// The `index`-th block of the pool.
    pub fn block_at(&self, index: u64) -> Option<IpNet> {
        if index >= self.block_count() {
            return None;
        }
        let shift = u32::from(self.cidr.max_prefix_len() - self.block_size);
        match self.cidr {
            IpNet::V4(net) => {
                let offset = u32::try_from(index).ok()?.checked_shl(shift)?;
                let base = u32::from(net.network()).checked_add(offset)?;
                Ipv4Net::new(base.into(), self.block_size)
                    .ok()
                    .map(IpNet::V4)
            }
            IpNet::V6(net) => {
                let offset = u128::from(index).checked_shl(shift)?;
                let base = u128::from(net.network()).checked_add(offset)?;
                Ipv6Net::new(base.into(), self.block_size)
                    .ok()
                    .map(IpNet::V6)
            }
        }
    }

    /// The pool's blocks in the order `node` tries them: from a start seeded by the node's
    /// name (so nodes spread out instead of racing for the first block), wrapping around, at
    /// most [`MAX_BLOCK_SCAN`] of them.
    pub fn blocks_for_node<'a>(&'a self, node: &str) -> impl Iterator<Item = IpNet> + 'a {
        let count = self.block_count();
        let mut hasher = DefaultHasher::new();
        node.hash(&mut hasher);
        let start = hasher.finish() % count.max(1);
        (0..count.min(MAX_BLOCK_SCAN)).filter_map(move |i| self.block_at((start + i) % count))
    }

    /// Whether the pool allows `use_`.
    pub fn allows(&self, use_: PoolUse) -> bool {
        self.allowed_uses.contains(&use_)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn pool(cidr: &str, block_size: u8) -> Pool {
        Pool {
            name: "p".into(),
            cidr: cidr.parse().unwrap(),
            block_size,
            allowed_uses: vec![PoolUse::Workload, PoolUse::Tunnel],
        }
    }

    #[test]
    fn blocks_cover_the_pool_once() {
        let p = pool("198.18.0.0/24", 26);
        assert_eq!(p.block_count(), 4);
        let blocks: BTreeSet<IpNet> = p.blocks_for_node("node-a").collect();
        let expected: BTreeSet<IpNet> = [
            "198.18.0.0/26",
            "198.18.0.64/26",
            "198.18.0.128/26",
            "198.18.0.192/26",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(blocks, expected);
    }

    #[test]
    fn huge_ipv6_pools_are_scanned_boundedly() {
        let p = pool("2001:db8::/64", 122);
        assert_eq!(p.block_count(), 1 << 58);
        let first: Vec<IpNet> = p.blocks_for_node("n").take(2).collect();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|b| p.cidr.contains(b) && b.prefix_len() == 122)
        );
        assert_eq!(p.blocks_for_node("n").count() as u64, MAX_BLOCK_SCAN);
    }

    #[test]
    fn pool_of_one_block() {
        let p = pool("198.18.5.0/26", 26);
        assert_eq!(p.blocks_for_node("x").collect::<Vec<_>>(), vec![p.cidr]);
        assert_eq!(p.block_at(1), None);
    }
}
