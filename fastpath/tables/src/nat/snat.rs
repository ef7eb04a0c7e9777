//! SNAT (Calico `natOutgoing`) port allocation per (node address, protocol).
//!
//! Each pool is a FIFO of free ports plus an in-use bitmap, both allocated when the allocator
//! is built: allocation pops the front, release pushes the back, so neither allocates and a
//! released port is reused as late as possible (the remote end may still hold the old
//! connection in TIME_WAIT). Ports are unique per (address, protocol), which makes every
//! translated tuple collision-free whatever the destination.
//!
//! Default range: Linux masquerade maps unprivileged source ports into 1024–65535, and
//! Calico's `natPortRange` defaults to that kernel behaviour. Tortie's SNAT shares the node
//! address with the node's own kernel sockets but cannot see them, so its default stays
//! below the kernel's ephemeral range (`ip_local_port_range`, 32768–60999): 1024–32767,
//! 31 744 ports per address and protocol. With several workers, give each a disjoint slice
//! with [`PortRange::split`] (and steer replies to the owning worker).

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::flow::proto;

/// An inclusive range of ports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive).
    pub last: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            first: 1024,
            last: 32767,
        }
    }
}

impl PortRange {
    /// A range; `None` when `first > last`.
    pub fn new(first: u16, last: u16) -> Option<PortRange> {
        (first <= last).then_some(PortRange { first, last })
    }

    /// Number of ports in the range.
    pub fn len(&self) -> usize {
        usize::from(self.last) - usize::from(self.first) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True when `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Slice `index` of `parts` near-equal disjoint slices (for per-worker pools);
    /// `None` if `index >= parts` or there are fewer ports than parts.
    pub fn split(&self, parts: usize, index: usize) -> Option<PortRange> {
        if parts == 0 || index >= parts || self.len() < parts {
            return None;
        }
        let base = self.len() / parts;
        let extra = self.len() % parts;
        let start = index * base + index.min(extra);
        let len = base + usize::from(index < extra);
        let first = usize::from(self.first) + start;
        Some(PortRange {
            first: first as u16,
            last: (first + len - 1) as u16,
        })
    }
}

/// Configuration of the SNAT allocator owned by a conntrack table.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SnatConfig {
    /// Addresses that SNAT may translate to (the node's addresses). A pool is built for each
    /// address and each of TCP, UDP and ICMP (ICMPv6 for IPv6 addresses).
    pub addresses: Vec<IpAddr>,
    /// Ports handed out, per address and protocol.
    pub port_range: PortRange,
}

/// Why a port could not be allocated.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SnatError {
    /// The address has no pool (it is not in [`SnatConfig::addresses`]).
    #[error("no SNAT pool for address {addr} protocol {proto}")]
    NoPool {
        /// The requested address.
        addr: IpAddr,
        /// The requested protocol.
        proto: u8,
    },
    /// Every port of the pool is in use.
    #[error("SNAT ports exhausted for address {addr} protocol {proto}")]
    Exhausted {
        /// The exhausted address.
        addr: IpAddr,
        /// The exhausted protocol.
        proto: u8,
    },
}

struct Pool {
    addr: IpAddr,
    proto: u8,
    free: VecDeque<u16>,
    in_use: Vec<u64>,
}

/// Port pools for every (address, protocol) of a [`SnatConfig`].
pub struct SnatPorts {
    range: PortRange,
    pools: Vec<Pool>,
}

fn pooled_protocols(addr: IpAddr) -> [u8; 3] {
    let icmp = if addr.is_ipv6() {
        proto::ICMPV6
    } else {
        proto::ICMP
    };
    [proto::TCP, proto::UDP, icmp]
}

impl SnatPorts {
    /// Build every pool up front (this allocates; do it off the hot path).
    pub fn new(config: &SnatConfig) -> SnatPorts {
        let range = config.port_range;
        let mut pools = Vec::new();
        for &addr in &config.addresses {
            if pools.iter().any(|p: &Pool| p.addr == addr) {
                continue;
            }
            for proto in pooled_protocols(addr) {
                pools.push(Pool {
                    addr,
                    proto,
                    free: (range.first..=range.last).collect(),
                    in_use: vec![0; range.len().div_ceil(64)],
                });
            }
        }
        SnatPorts { range, pools }
    }

    /// The configured port range.
    pub fn range(&self) -> PortRange {
        self.range
    }

    fn pool_mut(&mut self, addr: IpAddr, proto: u8) -> Option<&mut Pool> {
        self.pools
            .iter_mut()
            .find(|p| p.addr == addr && p.proto == proto)
    }

    /// True when `addr` is one of the configured addresses.
    pub fn has_address(&self, addr: IpAddr) -> bool {
        self.pools.iter().any(|p| p.addr == addr)
    }

    /// Take a free port. O(1), no allocation.
    pub fn allocate(&mut self, addr: IpAddr, proto: u8) -> Result<u16, SnatError> {
        let range = self.range;
        let pool = self
            .pool_mut(addr, proto)
            .ok_or(SnatError::NoPool { addr, proto })?;
        let port = pool
            .free
            .pop_front()
            .ok_or(SnatError::Exhausted { addr, proto })?;
        let bit = usize::from(port - range.first);
        pool.in_use[bit / 64] |= 1 << (bit % 64);
        Ok(port)
    }

    /// Give a port back. Returns false (and changes nothing) if it was not allocated, so a
    /// double release can never put a port in the queue twice.
    pub fn release(&mut self, addr: IpAddr, proto: u8, port: u16) -> bool {
        let range = self.range;
        if !range.contains(port) {
            return false;
        }
        let Some(pool) = self.pool_mut(addr, proto) else {
            return false;
        };
        let bit = usize::from(port - range.first);
        let mask = 1u64 << (bit % 64);
        if pool.in_use[bit / 64] & mask == 0 {
            return false;
        }
        pool.in_use[bit / 64] &= !mask;
        pool.free.push_back(port);
        true
    }

    /// Free ports left in a pool (`None` for an unknown pool).
    pub fn available(&self, addr: IpAddr, proto: u8) -> Option<usize> {
        self.pools
            .iter()
            .find(|p| p.addr == addr && p.proto == proto)
            .map(|p| p.free.len())
    }

    /// Bytes held by all pools.
    pub fn memory_bytes(&self) -> usize {
        self.pools
            .iter()
            .map(|p| p.free.capacity() * 2 + p.in_use.len() * 8)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(first: u16, last: u16) -> SnatConfig {
        SnatConfig {
            addresses: vec![
                IpAddr::from([198, 18, 0, 1]),
                IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
            ],
            port_range: PortRange::new(first, last).unwrap(),
        }
    }

    #[test]
    fn exhaustion_and_release() {
        let a = IpAddr::from([198, 18, 0, 1]);
        let mut p = SnatPorts::new(&cfg(5000, 5003));
        let got: Vec<u16> = (0..4).map(|_| p.allocate(a, proto::TCP).unwrap()).collect();
        assert_eq!(got, vec![5000, 5001, 5002, 5003]);
        assert_eq!(
            p.allocate(a, proto::TCP),
            Err(SnatError::Exhausted {
                addr: a,
                proto: proto::TCP
            })
        );
        // Other protocols have their own pools.
        assert_eq!(p.allocate(a, proto::UDP), Ok(5000));
        assert!(p.release(a, proto::TCP, 5001));
        assert!(
            !p.release(a, proto::TCP, 5001),
            "double release must be refused"
        );
        assert!(
            !p.release(a, proto::TCP, 6000),
            "out-of-range release must be refused"
        );
        assert_eq!(p.allocate(a, proto::TCP), Ok(5001));
        assert_eq!(p.available(a, proto::TCP), Some(0));
    }

    #[test]
    fn fifo_reuse_delays_recycling() {
        let a = IpAddr::from([198, 18, 0, 1]);
        let mut p = SnatPorts::new(&cfg(100, 199));
        let x = p.allocate(a, proto::UDP).unwrap();
        assert!(p.release(a, proto::UDP, x));
        assert_ne!(p.allocate(a, proto::UDP).unwrap(), x);
    }

    #[test]
    fn unknown_pools() {
        let mut p = SnatPorts::new(&cfg(100, 199));
        let b = IpAddr::from([198, 18, 0, 2]);
        assert!(matches!(
            p.allocate(b, proto::TCP),
            Err(SnatError::NoPool { .. })
        ));
        assert!(!p.release(b, proto::TCP, 100));
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        assert!(p.allocate(v6, proto::ICMPV6).is_ok());
        assert!(matches!(
            p.allocate(v6, proto::ICMP),
            Err(SnatError::NoPool { .. })
        ));
        assert!(p.has_address(v6) && !p.has_address(b));
    }

    #[test]
    fn split_is_disjoint_and_covering() {
        let r = PortRange::default();
        assert_eq!(r.len(), 31744);
        let parts: Vec<PortRange> = (0..3).map(|i| r.split(3, i).unwrap()).collect();
        assert_eq!(parts[0].first, r.first);
        assert_eq!(parts[2].last, r.last);
        for w in parts.windows(2) {
            assert_eq!(w[0].last + 1, w[1].first);
        }
        assert_eq!(parts.iter().map(PortRange::len).sum::<usize>(), r.len());
        assert!(r.split(3, 3).is_none() && r.split(0, 0).is_none());
        assert!(PortRange::new(2, 1).is_none());
    }
}
