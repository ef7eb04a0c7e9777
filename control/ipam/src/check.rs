//! `ipam check`: a consistency report over every IPAM record, in the spirit of
//! `calicoctl ipam check`. It finds
//! - blocks whose internal bookkeeping is broken (an address both free and allocated, lost),
//! - overlapping blocks (the same address could be handed out twice),
//! - allocations whose handle has no handle record, and handle records whose counts disagree
//!   with the blocks,
//! - leaked allocations: handles the caller does not know as live (no WorkloadEndpoint, no
//!   node tunnel), which `release_leaks` then frees,
//! - affinities without a block.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::client::{BlockAffinity, Ipam};
use crate::{IpamError, IpamHandle, keys, records};

/// The findings of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Number of blocks examined.
    pub blocks: usize,
    /// Number of allocated addresses.
    pub allocations: usize,
    /// Problems inside blocks, and overlaps between blocks.
    pub block_problems: Vec<String>,
    /// Handle records that disagree with the blocks (or allocations with no handle record).
    pub handle_problems: Vec<String>,
    /// Affinities whose block is missing.
    pub affinity_problems: Vec<String>,
    /// Allocations whose handle is not live: (address, handle).
    pub leaks: Vec<(IpAddr, String)>,
}

impl CheckReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.block_problems.is_empty()
            && self.handle_problems.is_empty()
            && self.affinity_problems.is_empty()
            && self.leaks.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Checked {} blocks with {} allocated addresses.",
            self.blocks, self.allocations
        )?;
        let sections = [
            ("Block problems", &self.block_problems),
            ("Handle problems", &self.handle_problems),
            ("Affinity problems", &self.affinity_problems),
        ];
        for (title, items) in sections {
            writeln!(f, "{title}: {}", items.len())?;
            for item in items {
                writeln!(f, "  {item}")?;
            }
        }
        writeln!(f, "Leaked addresses (no live owner): {}", self.leaks.len())?;
        for (ip, handle) in &self.leaks {
            writeln!(f, "  {ip} (handle {handle})")?;
        }
        if self.is_clean() {
            writeln!(f, "IPAM is consistent.")?;
        }
        Ok(())
    }
}

impl Ipam<'_> {
    /// Checks every IPAM record. `live_handles`, when given, is the set of handles that have a
    /// live owner; any other allocation is reported as a leak.
    pub fn check(&self, live_handles: Option<&HashSet<String>>) -> Result<CheckReport, IpamError> {
        let mut report = CheckReport::default();
        let mut blocks = self.blocks(false)?;
        blocks.extend(self.blocks(true)?);
        report.blocks = blocks.len();

        let mut counted: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
        for (cidr, block) in &blocks {
            report
                .block_problems
                .extend(block.value.consistency_problems());
            for (ip, owner) in block.value.allocated() {
                report.allocations += 1;
                let handle = owner.handle_id.clone().unwrap_or_default();
                *counted
                    .entry(handle.clone())
                    .or_default()
                    .entry(cidr.to_string())
                    .or_insert(0) += 1;
                if live_handles.is_some_and(|live| !live.contains(&handle)) {
                    report.leaks.push((ip, handle));
                }
            }
        }
        let cidrs: Vec<IpNet> = blocks.iter().map(|(c, _)| *c).collect();
        for (i, a) in cidrs.iter().enumerate() {
            for b in &cidrs[i + 1..] {
                if a.contains(b) || b.contains(a) {
                    report
                        .block_problems
                        .push(format!("blocks {a} and {b} overlap"));
                }
            }
        }

        let stored: BTreeMap<String, IpamHandle> =
            records::list::<IpamHandle>(self.ds(), keys::HANDLE_PREFIX)?
                .into_iter()
                .map(|(key, v)| {
                    (
                        key.trim_start_matches(keys::HANDLE_PREFIX).to_string(),
                        v.value,
                    )
                })
                .collect();
        let names: BTreeSet<&String> = stored.keys().chain(counted.keys()).collect();
        for name in names {
            let actual = counted.get(name).cloned().unwrap_or_default();
            match stored.get(name) {
                None => report.handle_problems.push(format!(
                    "handle {name}: allocations {actual:?} but no handle record"
                )),
                Some(record) if record.block != actual => report.handle_problems.push(format!(
                    "handle {name}: record says {:?}, blocks hold {actual:?}",
                    record.block
                )),
                Some(_) => {}
            }
        }

        let block_set: HashSet<IpNet> = cidrs.iter().copied().collect();
        for (key, _) in records::list::<BlockAffinity>(self.ds(), &keys::all_affinities_prefix())? {
            match keys::parse_affinity_key(&key) {
                Some((node, cidr)) if !block_set.contains(&cidr) => report.affinity_problems.push(
                    format!("node {node} holds an affinity to missing block {cidr}"),
                ),
                Some(_) => {}
                None => report
                    .affinity_problems
                    .push(format!("unparsable affinity key {key}")),
            }
        }
        Ok(report)
    }

    /// Releases the leaked addresses of `report`, re-checking that each is still held by the
    /// same handle (so an address re-allocated since the check is left alone).
    pub fn release_leaks(&self, report: &CheckReport) -> Result<Vec<IpAddr>, IpamError> {
        let mut released = Vec::new();
        for (ip, handle) in &report.leaks {
            let still_leaked = self
                .ip_info(*ip)?
                .is_some_and(|(_, owner)| owner.handle_id.as_deref() == Some(handle.as_str()));
            if still_leaked {
                released.extend(self.release_ips(&[*ip])?);
            }
        }
        Ok(released)
    }
}
