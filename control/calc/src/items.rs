//! The label sets the selector index holds, by number.
//!
//! The index keeps, for each selector, the items it matches, and for each label value the
//! items carrying it. A policy whose rule selects 1,000 endpoints makes the index collect,
//! compare, insert and report 1,000 item ids, several times over; with names for ids
//! (`namespace` and `name` strings, which share long prefixes) each of those was a string
//! comparison or a pair of heap allocations, and they were most of the cost of adding or
//! removing such a policy. [`ItemTable`] hands out a number per item instead and keeps what
//! each number stands for, with the item's addresses and named ports.

use std::collections::HashMap;

use crate::graph::ItemData;
use crate::ids::{ItemId, ItemKey};

struct Slot {
    key: ItemKey,
    data: ItemData,
}

/// Item numbers, what they stand for, and the items' IP-set data.
#[derive(Default)]
pub(crate) struct ItemTable {
    ids: HashMap<ItemKey, ItemId>,
    slots: Vec<Option<Slot>>,
    /// Numbers of removed items, handed out again before new ones.
    free: Vec<ItemId>,
}

impl ItemTable {
    /// The number of a known item.
    pub(crate) fn id(&self, key: &ItemKey) -> Option<ItemId> {
        self.ids.get(key).copied()
    }

    /// The number of `key`, giving it one (with empty data) if it has none.
    pub(crate) fn intern(&mut self, key: &ItemKey) -> ItemId {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let slot = Slot {
            key: key.clone(),
            data: ItemData::default(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id.0 as usize] = Some(slot);
                id
            }
            None => {
                let n = u32::try_from(self.slots.len()).expect("fewer than 2^32 label sets");
                self.slots.push(Some(slot));
                ItemId(n)
            }
        };
        self.ids.insert(key.clone(), id);
        id
    }

    /// What number `id` stands for.
    pub(crate) fn key(&self, id: ItemId) -> Option<&ItemKey> {
        self.slot(id).map(|s| &s.key)
    }

    /// The addresses and named ports of item `id`.
    pub(crate) fn data(&self, id: ItemId) -> Option<&ItemData> {
        self.slot(id).map(|s| &s.data)
    }

    /// Replaces the data of item `id` (a no-op for a number not in use).
    pub(crate) fn set_data(&mut self, id: ItemId, data: ItemData) {
        if let Some(Some(slot)) = self.slots.get_mut(id.0 as usize) {
            slot.data = data;
        }
    }

    /// Forgets item `id`; its number may be handed out again.
    pub(crate) fn remove(&mut self, id: ItemId) {
        if let Some(slot) = self.slots.get_mut(id.0 as usize).and_then(Option::take) {
            self.ids.remove(&slot.key);
            self.free.push(id);
        }
    }

    /// Items in use.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn slot(&self, id: ItemId) -> Option<&Slot> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EndpointId;

    fn key(name: &str) -> ItemKey {
        ItemKey::Endpoint(EndpointId::Host { name: name.into() })
    }

    #[test]
    fn numbers_are_stable_while_in_use_and_reused_after_removal() {
        let mut table = ItemTable::default();
        let a = table.intern(&key("a"));
        let b = table.intern(&key("b"));
        assert_ne!(a, b);
        assert_eq!(table.intern(&key("a")), a);
        assert_eq!(table.id(&key("b")), Some(b));
        assert_eq!(table.key(a), Some(&key("a")));

        table.remove(a);
        assert_eq!(table.id(&key("a")), None);
        assert_eq!(table.key(a), None);
        assert!(table.data(a).is_none());
        assert_eq!(table.len(), 1);
        // Removing twice changes nothing, and the freed number goes to the next new item.
        table.remove(a);
        let c = table.intern(&key("c"));
        assert_eq!(c, a);
        assert_eq!(table.key(c), Some(&key("c")));
        assert_eq!(table.id(&key("b")), Some(b));
        let d = table.intern(&key("d"));
        assert!(d != b && d != c);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn data_follows_the_item_and_is_cleared_with_it() {
        let mut table = ItemTable::default();
        let a = table.intern(&key("a"));
        assert!(table.data(a).is_some_and(|d| d.addrs.is_empty()));
        table.set_data(
            a,
            ItemData {
                addrs: vec!["198.19.0.1/32".parse().unwrap()],
                ports: Vec::new(),
            },
        );
        assert_eq!(table.data(a).map(|d| d.addrs.len()), Some(1));
        table.remove(a);
        let again = table.intern(&key("a"));
        assert!(table.data(again).is_some_and(|d| d.addrs.is_empty()));
        // Setting the data of a number not in use is ignored.
        table.set_data(ItemId(99), ItemData::default());
        assert!(table.key(ItemId(99)).is_none());
    }
}
