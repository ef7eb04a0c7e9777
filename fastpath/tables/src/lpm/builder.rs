//! The mutable route set from which [`Lpm`] generations are built.

use hashbrown::HashMap;

use super::LpmError;
use super::poptrie::{Lpm, MAX_VALUE, Route};
use super::prefix::{Address, Prefix};

/// A set of routes (prefix → next-hop value) with O(1) insert and remove, built into an
/// immutable [`Lpm`] with [`LpmBuilder::build`] (about 10–30 ms for 100 000 IPv4 routes).
#[derive(Clone, Debug)]
pub struct LpmBuilder<A: Address> {
    routes: HashMap<Prefix<A>, u32>,
}

impl<A: Address> Default for LpmBuilder<A> {
    fn default() -> Self {
        LpmBuilder {
            routes: HashMap::new(),
        }
    }
}

impl<A: Address> LpmBuilder<A> {
    /// An empty route set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A route set from `(prefix, value)` pairs; later duplicates replace earlier ones.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Prefix<A>, u32)>,
    ) -> Result<Self, LpmError> {
        let mut b = Self::new();
        for (p, v) in routes {
            b.insert(p, v)?;
        }
        Ok(b)
    }

    /// Add or replace a route; returns the value it replaced.
    pub fn insert(&mut self, prefix: Prefix<A>, value: u32) -> Result<Option<u32>, LpmError> {
        if value > MAX_VALUE {
            return Err(LpmError::Value(value));
        }
        Ok(self.routes.insert(prefix, value))
    }

    /// Remove a route; returns its value.
    pub fn remove(&mut self, prefix: &Prefix<A>) -> Option<u32> {
        self.routes.remove(prefix)
    }

    /// The value of exactly this prefix (not a longest-prefix match).
    pub fn get(&self, prefix: &Prefix<A>) -> Option<u32> {
        self.routes.get(prefix).copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Remove every route.
    pub fn clear(&mut self) {
        self.routes.clear();
    }

    /// Iterate over the routes (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (Prefix<A>, u32)> + '_ {
        self.routes.iter().map(|(p, v)| (*p, *v))
    }

    /// Build an immutable lookup table from the current routes.
    pub fn build(&self) -> Lpm<A> {
        let mut routes: Vec<Route> = self
            .routes
            .iter()
            .map(|(p, &value)| Route {
                bits: p.left(),
                len: p.prefix_len(),
                value,
            })
            .collect();
        routes.sort_unstable_by_key(|r| (r.bits, r.len));
        Lpm::from_sorted(&routes)
    }
}
