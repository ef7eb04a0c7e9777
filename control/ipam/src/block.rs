//! An allocation block: a power-of-two slice of a pool, stored as one datastore value and changed
//! only by compare-and-swap. The JSON shape is Calico's `AllocationBlock`, so blocks written by
//! Calico are read as is and vice versa.
//!
//! - `allocations[ordinal]` is the index of the allocation's entry in `attributes`, or null when
//!   the address is free.
//! - `unallocated` is a FIFO of free ordinals: new allocations take from the front and released
//!   ordinals go to the back, so the longest-idle address is reused first.
//! - `attributes[i]` holds the handle and the owner attributes (pod, namespace, node, type).
//!   Entries no allocation points at are removed, and the indices renumbered, on release.
//! - `sequenceNumber` grows on every write; `sequenceNumberForAllocation[ordinal]` records it at
//!   allocation time so that a release naming a stale sequence number is refused (ABA guard).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::IpamError;

/// The owner of one allocation: its handle and free-form attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AllocationAttribute {
    /// The handle that owns the allocation (`<network>.<container id>` for CNI).
    #[serde(rename = "handle_id", default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    /// Owner attributes (`node`, `namespace`, `pod`, `type`, `timestamp`).
    #[serde(default)]
    pub secondary: BTreeMap<String, String>,
}

/// One block of a pool (Calico's `AllocationBlock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationBlock {
    /// The block's CIDR.
    pub cidr: IpNet,
    /// `host:<node>` for a node-affine block, absent for an orphan.
    #[serde(default)]
    pub affinity: Option<String>,
    /// Copied from the IPAM configuration when the block was claimed.
    #[serde(default)]
    pub strict_affinity: bool,
    /// Per ordinal: index into `attributes`, or null when free.
    pub allocations: Vec<Option<u32>>,
    /// Free ordinals, oldest-released first.
    pub unallocated: Vec<u32>,
    /// Allocation owners.
    #[serde(default)]
    pub attributes: Vec<AllocationAttribute>,
    /// Set while the block is being removed.
    #[serde(default)]
    pub deleted: bool,
    /// Grows on every write of the block.
    #[serde(default)]
    pub sequence_number: u64,
    /// The block's sequence number at the time each ordinal was allocated.
    #[serde(default)]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
}

/// The affinity string Calico stores for a node.
pub fn host_affinity(node: &str) -> String {
    format!("host:{node}")
}

impl AllocationBlock {
    /// A new, empty block affine to `node` (or to no node).
    pub fn new(cidr: IpNet, node: Option<&str>, strict_affinity: bool) -> AllocationBlock {
        let cidr = cidr.trunc();
        let size = block_len(&cidr);
        AllocationBlock {
            cidr,
            affinity: node.map(host_affinity),
            strict_affinity,
            allocations: vec![None; size as usize],
            unallocated: (0..size).collect(),
            attributes: Vec::new(),
            deleted: false,
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
        }
    }

    /// The node this block is affine to, if any.
    pub fn affine_node(&self) -> Option<&str> {
        self.affinity.as_deref()?.strip_prefix("host:")
    }

    /// Number of addresses in the block.
    pub fn len(&self) -> u32 {
        block_len(&self.cidr)
    }

    /// Whether the block has no addresses at all (never true for a valid block).
    pub fn is_empty(&self) -> bool {
        self.allocations.is_empty()
    }

    /// Number of free addresses.
    pub fn free_count(&self) -> usize {
        self.unallocated.len()
    }

    /// Number of allocated addresses.
    pub fn in_use_count(&self) -> usize {
        self.allocations.iter().filter(|a| a.is_some()).count()
    }

    /// Whether nothing is allocated from the block.
    pub fn is_unused(&self) -> bool {
        self.in_use_count() == 0
    }

    /// The address at `ordinal`.
    pub fn ip_of(&self, ordinal: u32) -> IpAddr {
        match self.cidr {
            IpNet::V4(net) => IpAddr::V4((u32::from(net.network()) + ordinal).into()),
            IpNet::V6(net) => IpAddr::V6((u128::from(net.network()) + u128::from(ordinal)).into()),
        }
    }

    /// The ordinal of `ip`, if the block contains it.
    pub fn ordinal_of(&self, ip: IpAddr) -> Option<u32> {
        if !self.cidr.contains(&ip) {
            return None;
        }
        let offset = match (self.cidr, ip) {
            (IpNet::V4(net), IpAddr::V4(ip)) => {
                u128::from(u32::from(ip) - u32::from(net.network()))
            }
            (IpNet::V6(net), IpAddr::V6(ip)) => u128::from(ip) - u128::from(net.network()),
            _ => return None,
        };
        u32::try_from(offset).ok()
    }

    /// The owner of `ip`, if it is allocated.
    pub fn allocation(&self, ip: IpAddr) -> Option<&AllocationAttribute> {
        let ordinal = self.ordinal_of(ip)?;
        let index = self.allocations.get(ordinal as usize).copied().flatten()?;
        self.attributes.get(index as usize)
    }

    /// Every allocated address with its owner.
    pub fn allocated(&self) -> impl Iterator<Item = (IpAddr, &AllocationAttribute)> + '_ {
        self.allocations
            .iter()
            .enumerate()
            .filter_map(move |(ordinal, index)| {
                let attr = self.attributes.get((*index)? as usize)?;
                Some((self.ip_of(ordinal as u32), attr))
            })
    }

    /// Allocates up to `count` free addresses to `owner`, skipping those `reserved` says are
    /// reserved. Returns what it got (possibly fewer than asked).
    pub fn auto_assign(
        &mut self,
        count: usize,
        owner: &AllocationAttribute,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Vec<IpAddr> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.unallocated.len());
        for &ordinal in &self.unallocated {
            if taken.len() < count && !reserved(self.ip_of(ordinal)) {
                taken.push(ordinal);
            } else {
                kept.push(ordinal);
            }
        }
        if taken.is_empty() {
            return Vec::new();
        }
        self.unallocated = kept;
        let index = self.attribute_index(owner);
        self.sequence_number += 1;
        for &ordinal in &taken {
            self.allocations[ordinal as usize] = Some(index);
            self.sequence_number_for_allocation
                .insert(ordinal.to_string(), self.sequence_number);
        }
        taken.into_iter().map(|o| self.ip_of(o)).collect()
    }

    /// Allocates the specific address `ip` to `owner`.
    pub fn assign(&mut self, ip: IpAddr, owner: &AllocationAttribute) -> Result<(), IpamError> {
        let ordinal = self.ordinal_of(ip).ok_or(IpamError::NotInBlock {
            ip,
            block: self.cidr,
        })?;
        if self.allocations[ordinal as usize].is_some() {
            return Err(IpamError::AddressInUse {
                ip,
                handle: self.allocation(ip).and_then(|a| a.handle_id.clone()),
            });
        }
        self.unallocated.retain(|&o| o != ordinal);
        let index = self.attribute_index(owner);
        self.sequence_number += 1;
        self.allocations[ordinal as usize] = Some(index);
        self.sequence_number_for_allocation
            .insert(ordinal.to_string(), self.sequence_number);
        Ok(())
    }

    /// Releases the addresses in `ips` that the block holds. Returns, per handle, how many
    /// addresses were released; addresses already free are skipped (release is idempotent).
    pub fn release(&mut self, ips: &[IpAddr]) -> BTreeMap<String, u32> {
        let mut released = BTreeMap::new();
        let mut changed = false;
        for &ip in ips {
            let Some(ordinal) = self.ordinal_of(ip) else {
                continue;
            };
            let Some(index) = self.allocations[ordinal as usize].take() else {
                continue;
            };
            changed = true;
            self.unallocated.push(ordinal);
            self.sequence_number_for_allocation
                .remove(&ordinal.to_string());
            if let Some(handle) = self
                .attributes
                .get(index as usize)
                .and_then(|a| a.handle_id.clone())
            {
                *released.entry(handle).or_insert(0) += 1;
            }
        }
        if changed {
            self.sequence_number += 1;
            self.compact_attributes();
        }
        released
    }

    /// Releases every address owned by `handle`; returns them.
    pub fn release_by_handle(&mut self, handle: &str) -> Vec<IpAddr> {
        let ips = self.ips_of_handle(handle);
        self.release(&ips);
        ips
    }

    /// The addresses owned by `handle`.
    pub fn ips_of_handle(&self, handle: &str) -> Vec<IpAddr> {
        self.allocated()
            .filter(|(_, attr)| attr.handle_id.as_deref() == Some(handle))
            .map(|(ip, _)| ip)
            .collect()
    }

    /// Finds or appends the attribute entry equal to `owner`.
    fn attribute_index(&mut self, owner: &AllocationAttribute) -> u32 {
        let index = match self.attributes.iter().position(|a| a == owner) {
            Some(index) => index,
            None => {
                self.attributes.push(owner.clone());
                self.attributes.len() - 1
            }
        };
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    /// Drops attribute entries no allocation points at and renumbers the rest.
    fn compact_attributes(&mut self) {
        let mut used = vec![false; self.attributes.len()];
        for index in self.allocations.iter().flatten() {
            if let Some(slot) = used.get_mut(*index as usize) {
                *slot = true;
            }
        }
        let mut renumber = vec![0u32; self.attributes.len()];
        let mut next = 0u32;
        for (old, keep) in used.iter().enumerate() {
            if *keep {
                renumber[old] = next;
                next += 1;
            }
        }
        let mut old = 0;
        self.attributes.retain(|_| {
            let keep = used[old];
            old += 1;
            keep
        });
        for index in self.allocations.iter_mut().flatten() {
            *index = renumber[*index as usize];
        }
    }

    /// Checks the block's internal consistency: every ordinal is either allocated or listed
    /// free exactly once, and every allocation points at an attribute. Returns the problems.
    pub fn consistency_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.allocations.len() != self.len() as usize {
            problems.push(format!(
                "block {}: {} allocation slots for {} addresses",
                self.cidr,
                self.allocations.len(),
                self.len()
            ));
            return problems;
        }
        let mut free_seen = vec![0u8; self.allocations.len()];
        for &ordinal in &self.unallocated {
            match free_seen.get_mut(ordinal as usize) {
                Some(seen) => *seen += 1,
                None => problems.push(format!(
                    "block {}: free ordinal {ordinal} out of range",
                    self.cidr
                )),
            }
        }
        for (ordinal, slot) in self.allocations.iter().enumerate() {
            let ip = self.ip_of(ordinal as u32);
            match (slot, free_seen[ordinal]) {
                (Some(index), 0) if (*index as usize) >= self.attributes.len() => {
                    problems.push(format!(
                        "block {}: {ip} points at missing attribute {index}",
                        self.cidr
                    ))
                }
                (Some(_), 0) | (None, 1) => {}
                (Some(_), _) => problems.push(format!(
                    "block {}: {ip} is allocated and also listed free (double allocation risk)",
                    self.cidr
                )),
                (None, 0) => problems.push(format!(
                    "block {}: {ip} is neither allocated nor free (lost address)",
                    self.cidr
                )),
                (None, _) => {
                    problems.push(format!("block {}: {ip} is listed free twice", self.cidr))
                }
            }
        }
        problems
    }
}

/// Number of addresses in a block CIDR.
pub fn block_len(cidr: &IpNet) -> u32 {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    1u32 << host_bits.min(31)
}

#[cfg(test)]
mod tests;
