//! Label lookups: the [`Labels`] trait a selector is evaluated against, the pre-hashed
//! [`LabelKey`] a parsed selector holds, and [`LabelMap`], a label set that uses those hashes.
//!
//! Selectors are evaluated far more often than they are parsed (every endpoint against every
//! policy, on every label change), so the key of every term is hashed once at parse time. A
//! [`LabelMap`] probes with that stored hash; plain `BTreeMap`/`HashMap` label sets work too
//! through the string lookup. [`Overlay`] evaluates an endpoint's own labels over the labels it
//! inherits (profiles, namespace) without building a merged map.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::HashTable;

/// Hash of a label key as stored in a [`LabelKey`] and used by [`LabelMap`].
///
/// Fixed seed: the same key hashes the same way in every selector and every map of the process,
/// so a hash computed at parse time can be used to probe any [`LabelMap`].
pub fn hash_key(key: &str) -> u64 {
    foldhash::quality::FixedState::with_seed(0x7072_6f6a_6563_7463).hash_one(key)
}

/// A label key with its hash computed once.
#[derive(Clone)]
pub struct LabelKey {
    name: Arc<str>,
    hash: u64,
}

impl LabelKey {
    /// Makes a key, hashing it once.
    pub fn new(name: &str) -> LabelKey {
        LabelKey::from_arc(Arc::from(name))
    }

    /// Makes a key from a shared string without copying it.
    pub fn from_arc(name: Arc<str>) -> LabelKey {
        let hash = hash_key(&name);
        LabelKey { name, hash }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The shared key text (cheap to clone into indexes).
    pub fn as_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The precomputed [`hash_key`] of the key text.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for LabelKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.name == other.name
    }
}

impl Eq for LabelKey {}

impl PartialOrd for LabelKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LabelKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl Hash for LabelKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.name, f)
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Anything a selector can be evaluated against: a lookup from label key to value.
///
/// Implemented for `BTreeMap` and `HashMap` with string-like keys and values, for [`LabelMap`],
/// for references, and for [`Overlay`] (own labels over inherited ones).
pub trait Labels {
    /// The value of label `key`, if present.
    fn get(&self, key: &str) -> Option<&str>;

    /// The value of a pre-hashed key. Implementations that hash with [`hash_key`] override this
    /// to skip rehashing; the default falls back to [`Labels::get`].
    #[inline]
    fn get_key(&self, key: &LabelKey) -> Option<&str> {
        self.get(key.as_str())
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }

    #[inline]
    fn get_key(&self, key: &LabelKey) -> Option<&str> {
        (**self).get_key(key)
    }
}

impl<K, V> Labels for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K, V, S> Labels for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(AsRef::as_ref)
    }
}

/// An endpoint's own labels layered over the labels it inherits (from its profiles or its
/// namespace): a key present in `own` wins, as in Calico where an endpoint label overrides an
/// inherited one of the same name. Nothing is merged or copied.
#[derive(Debug, Clone, Copy)]
pub struct Overlay<A, B> {
    /// Labels set on the object itself.
    pub own: A,
    /// Labels inherited from elsewhere, consulted only for keys absent from `own`.
    pub inherited: B,
}

impl<A: Labels, B: Labels> Labels for Overlay<A, B> {
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        self.own.get(key).or_else(|| self.inherited.get(key))
    }

    #[inline]
    fn get_key(&self, key: &LabelKey) -> Option<&str> {
        self.own
            .get_key(key)
            .or_else(|| self.inherited.get_key(key))
    }
}

#[derive(Clone)]
struct Entry {
    key: LabelKey,
    value: Arc<str>,
}

/// A label set keyed by pre-hashed keys: looking up a selector's [`LabelKey`] costs one probe and
/// one string comparison, with no hashing. Iteration is in key order.
#[derive(Clone, Default)]
pub struct LabelMap {
    table: HashTable<Entry>,
}

impl LabelMap {
    /// An empty map.
    pub fn new() -> LabelMap {
        LabelMap::default()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: &str, value: &str) -> Option<Arc<str>> {
        self.insert_key(LabelKey::new(key), Arc::from(value))
    }

    /// Sets a pre-hashed key to a shared value, returning the previous value.
    pub fn insert_key(&mut self, key: LabelKey, value: Arc<str>) -> Option<Arc<str>> {
        let hash = key.hash();
        match self
            .table
            .entry(hash, |e| e.key.as_str() == key.as_str(), |e| e.key.hash())
        {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                Some(std::mem::replace(&mut occupied.get_mut().value, value))
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(Entry { key, value });
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Arc<str>> {
        let hash = hash_key(key);
        self.table
            .find_entry(hash, |e| e.key.as_str() == key)
            .ok()
            .map(|occupied| occupied.remove().0.value)
    }

    /// The labels in no particular order (cheaper than [`LabelMap::iter`]).
    pub fn entries(&self) -> impl Iterator<Item = (&LabelKey, &str)> {
        self.table.iter().map(|e| (&e.key, &*e.value))
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&LabelKey, &str)> {
        let mut entries: Vec<&Entry> = self.table.iter().collect();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        entries.into_iter().map(|e| (&e.key, &*e.value))
    }
}

impl Labels for LabelMap {
    #[inline]
    fn get(&self, key: &str) -> Option<&str> {
        let hash = hash_key(key);
        self.table
            .find(hash, |e| e.key.as_str() == key)
            .map(|e| &*e.value)
    }

    #[inline]
    fn get_key(&self, key: &LabelKey) -> Option<&str> {
        self.table
            .find(key.hash(), |e| e.key.as_str() == key.as_str())
            .map(|e| &*e.value)
    }
}

impl PartialEq for LabelMap {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .table
                .iter()
                .all(|e| other.get_key(&e.key) == Some(&*e.value))
    }
}

impl Eq for LabelMap {}

impl fmt::Debug for LabelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for LabelMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = LabelMap::new();
        for (k, v) in iter {
            map.insert(k.as_ref(), v.as_ref());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_map_insert_get_remove() {
        let mut map = LabelMap::new();
        assert!(map.is_empty());
        assert_eq!(map.insert("app", "web"), None);
        assert_eq!(map.insert("app", "db").as_deref(), Some("web"));
        map.insert("tier", "fe");
        assert_eq!(map.len(), 2);
        assert_eq!(Labels::get(&map, "app"), Some("db"));
        assert_eq!(map.get_key(&LabelKey::new("tier")), Some("fe"));
        assert_eq!(Labels::get(&map, "missing"), None);
        assert_eq!(map.remove("app").as_deref(), Some("db"));
        assert_eq!(map.remove("app"), None);
        assert_eq!(map.len(), 1);
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["tier"]);
    }

    #[test]
    fn label_map_iterates_in_key_order_and_compares_by_content() {
        let a: LabelMap = [("z", "1"), ("a", "2"), ("m", "3")].into_iter().collect();
        let b: LabelMap = [("m", "3"), ("z", "1"), ("a", "2")].into_iter().collect();
        let keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "m", "z"]);
        assert_eq!(a, b);
        let c: LabelMap = [("m", "3"), ("z", "1"), ("a", "x")].into_iter().collect();
        assert_ne!(a, c);
    }

    #[test]
    fn overlay_prefers_own_labels() {
        let own: BTreeMap<&str, &str> = [("app", "web")].into_iter().collect();
        let inherited: HashMap<String, String> = [
            ("app".to_string(), "old".to_string()),
            ("pcns.team".to_string(), "blue".to_string()),
        ]
        .into_iter()
        .collect();
        let labels = Overlay {
            own: &own,
            inherited: &inherited,
        };
        assert_eq!(labels.get("app"), Some("web"));
        assert_eq!(labels.get("pcns.team"), Some("blue"));
        assert_eq!(labels.get_key(&LabelKey::new("pcns.team")), Some("blue"));
        assert_eq!(labels.get("nope"), None);
    }

    #[test]
    fn key_hash_is_stable_and_equality_uses_text() {
        let a = LabelKey::new("projectcalico.org/namespace");
        let b = LabelKey::from_arc(Arc::from("projectcalico.org/namespace"));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a, b);
        assert_ne!(a, LabelKey::new("projectcalico.org/name"));
        assert_eq!(a.to_string(), "projectcalico.org/namespace");
    }
}
