//! IPAM handles: one record per owner (a container's interface, a node's tunnel address) naming
//! how many addresses it holds in which block, so that a release by handle finds them without
//! scanning every block. The JSON shape is Calico's `IPAMHandle`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A handle record (Calico's `IPAMHandle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IpamHandle {
    /// The handle's id (also the last segment of its key).
    #[serde(rename = "handleID", default)]
    pub handle_id: String,
    /// Block CIDR (as text) -> number of addresses this handle holds there.
    #[serde(default)]
    pub block: BTreeMap<String, u32>,
    /// Set while the handle is being removed.
    #[serde(default)]
    pub deleted: bool,
}

impl IpamHandle {
    /// An empty handle.
    pub fn new(handle_id: &str) -> IpamHandle {
        IpamHandle {
            handle_id: handle_id.to_string(),
            ..IpamHandle::default()
        }
    }

    /// Records `count` more addresses in `block`.
    pub fn add(&mut self, block: &str, count: u32) {
        *self.block.entry(block.to_string()).or_insert(0) += count;
    }

    /// Records `count` fewer addresses in `block` (never below zero).
    pub fn remove(&mut self, block: &str, count: u32) {
        if let Some(held) = self.block.get_mut(block) {
            *held = held.saturating_sub(count);
            if *held == 0 {
                self.block.remove(block);
            }
        }
    }

    /// Whether the handle holds nothing any more.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_remove_per_block() {
        let mut handle = IpamHandle::new("k8s-pod-network.c1");
        handle.add("198.18.0.0/26", 1);
        handle.add("2001:db8::/122", 1);
        handle.remove("198.18.0.0/26", 5);
        assert_eq!(handle.block.len(), 1);
        handle.remove("2001:db8::/122", 1);
        assert!(handle.is_empty());
        let json = serde_json::to_value(&handle).unwrap();
        assert_eq!(json["handleID"], "k8s-pod-network.c1");
    }
}
