//! The allocator: Calico's allocation order over blocks stored in a datastore, every write a
//! compare-and-swap of the block and its handle in one transaction.
//!
//! Order for an automatic assignment (as Calico's `AutoAssign`):
//! 1. free addresses in blocks already affine to the node;
//! 2. claim a new block from an eligible pool (when `autoAllocateBlocks`), within
//!    `maxBlocksPerHost`; the block and its affinity are created in one transaction, so there is
//!    no half-claimed state for a crash to leave behind (Calico needs a pending -> confirmed
//!    dance because its writes are separate);
//! 3. borrow from other nodes' blocks unless `strictAffinity`.
//!
//! An assignment that cannot be completed releases what it took, so a failed request leaves
//! nothing allocated.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tortie_datastore::{Condition, Datastore};

use crate::block::{AllocationAttribute, AllocationBlock};
use crate::records::{self, Commit, Versioned};
use crate::{IpamConfig, IpamError, IpamHandle, Pool, PoolUse, keys};

/// Compare-and-swap attempts on one record before giving up (Calico uses 100 as well).
pub const MAX_ATTEMPTS: u32 = 100;

/// A node's claim on a block (Calico's `BlockAffinity` value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinity {
    /// `confirmed` once the block is the node's (`pending` while a claim is in flight).
    pub state: String,
    /// Set while the affinity is being released.
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    fn confirmed() -> BlockAffinity {
        BlockAffinity {
            state: "confirmed".into(),
            deleted: false,
        }
    }
}

/// What to allocate automatically, and for whom.
#[derive(Debug, Clone)]
pub struct AutoAssignArgs<'r> {
    /// The node asking (blocks are claimed affine to it).
    pub node: &'r str,
    /// The owner's handle (`<network>.<container id>` for CNI).
    pub handle: &'r str,
    /// Owner attributes stored with each allocation (`namespace`, `pod`, `node`, ...).
    pub attributes: BTreeMap<String, String>,
    /// IPv4 addresses wanted.
    pub num_v4: usize,
    /// IPv6 addresses wanted.
    pub num_v6: usize,
    /// Eligible IPv4 pools in preference order (enabled, selecting the node).
    pub v4_pools: &'r [Pool],
    /// Eligible IPv6 pools in preference order.
    pub v6_pools: &'r [Pool],
    /// Reserved ranges (IPReservations) never handed out automatically.
    pub reservations: &'r [IpNet],
    /// What the addresses are for.
    pub use_: PoolUse,
}

/// Addresses assigned by one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// IPv4 addresses.
    pub v4: Vec<IpAddr>,
    /// IPv6 addresses.
    pub v6: Vec<IpAddr>,
}

/// What a specific-address request needs.
#[derive(Debug, Clone)]
pub struct AssignIpArgs<'r> {
    /// The address wanted.
    pub ip: IpAddr,
    /// The node asking.
    pub node: &'r str,
    /// The owner's handle.
    pub handle: &'r str,
    /// Owner attributes.
    pub attributes: BTreeMap<String, String>,
    /// Pools the node may use (the address must be in one of them).
    pub pools: &'r [Pool],
    /// Reserved ranges: a reserved address is refused.
    pub reservations: &'r [IpNet],
}

/// The allocator over one datastore.
pub struct Ipam<'a> {
    ds: &'a dyn Datastore,
}

impl<'a> Ipam<'a> {
    /// An allocator over `ds`.
    pub fn new(ds: &'a dyn Datastore) -> Ipam<'a> {
        Ipam { ds }
    }

    /// The datastore this allocator works on.
    pub(crate) fn ds(&self) -> &dyn Datastore {
        self.ds
    }

    /// The IPAM configuration in force (Calico's defaults when none is stored).
    pub fn config(&self) -> Result<IpamConfig, IpamError> {
        Ok(records::read::<IpamConfig>(self.ds, keys::CONFIG_KEY)?
            .map(|v| v.value)
            .unwrap_or_default())
    }

    /// Stores the IPAM configuration. Calico rejects strictAffinity=false together with
    /// autoAllocateBlocks=false, and so does this.
    pub fn set_config(&self, config: IpamConfig) -> Result<(), IpamError> {
        if !config.strict_affinity && !config.auto_allocate_blocks {
            return Err(IpamError::InvalidConfig(
                "autoAllocateBlocks: false requires strictAffinity: true".into(),
            ));
        }
        let op = records::put(keys::CONFIG_KEY, &config, Condition::Any);
        self.ds.txn(&[op]).map_err(records::datastore_error)?;
        Ok(())
    }

    /// Assigns addresses automatically; all or nothing.
    pub fn auto_assign(&self, args: &AutoAssignArgs<'_>) -> Result<Assignment, IpamError> {
        let config = self.config()?;
        let owner = owner(args.handle, &args.attributes);
        let v4 = self.assign_family(args, &owner, &config, false)?;
        let v6 = match self.assign_family(args, &owner, &config, true) {
            Ok(v6) => v6,
            Err(err) => {
                self.release_ips(&v4)?;
                return Err(err);
            }
        };
        Ok(Assignment { v4, v6 })
    }

    fn assign_family(
        &self,
        args: &AutoAssignArgs<'_>,
        owner: &AllocationAttribute,
        config: &IpamConfig,
        v6: bool,
    ) -> Result<Vec<IpAddr>, IpamError> {
        let (wanted, pools) = if v6 {
            (args.num_v6, args.v6_pools)
        } else {
            (args.num_v4, args.v4_pools)
        };
        let pools: Vec<&Pool> = pools.iter().filter(|p| p.allows(args.use_)).collect();
        let mut got = Vec::new();
        if wanted == 0 {
            return Ok(got);
        }
        let reserved = |ip: IpAddr| args.reservations.iter().any(|r| r.contains(&ip));
        let in_pools = |cidr: &IpNet| pools.iter().any(|p| p.cidr.contains(cidr));

        for cidr in self.affine_blocks(args.node, v6)? {
            if got.len() == wanted {
                break;
            }
            if in_pools(&cidr) {
                got.extend(self.assign_from_block(&cidr, wanted - got.len(), owner, &reserved)?);
            }
        }
        let mut capped = None;
        if config.auto_allocate_blocks {
            while got.len() < wanted {
                match self.claim_block(args.node, &pools, config, v6)? {
                    Claim::Claimed(cidr) => {
                        let more =
                            self.assign_from_block(&cidr, wanted - got.len(), owner, &reserved)?;
                        if more.is_empty() {
                            // Every free address of the new block is reserved: try another.
                            continue;
                        }
                        got.extend(more);
                    }
                    Claim::Capped(cap) => {
                        capped = Some(cap);
                        break;
                    }
                    Claim::PoolsFull => break,
                }
            }
        }
        if got.len() < wanted && !config.strict_affinity {
            for (cidr, block) in self.blocks(v6)? {
                if got.len() == wanted {
                    break;
                }
                if in_pools(&cidr) && block.value.free_count() > 0 {
                    got.extend(self.assign_from_block(
                        &cidr,
                        wanted - got.len(),
                        owner,
                        &reserved,
                    )?);
                }
            }
        }
        if got.len() < wanted {
            let got_count = got.len();
            self.release_ips(&got)?;
            if let Some(cap) = capped {
                return Err(IpamError::BlockCap {
                    node: args.node.to_string(),
                    cap,
                });
            }
            return Err(IpamError::Exhausted {
                family: if v6 { 6 } else { 4 },
                pools: pools
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                node: args.node.to_string(),
                wanted,
                got: got_count,
            });
        }
        Ok(got)
    }

    /// Takes up to `wanted` free addresses from one block for `owner`, retrying on conflicts.
    fn assign_from_block(
        &self,
        cidr: &IpNet,
        wanted: usize,
        owner: &AllocationAttribute,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Vec<IpAddr>, IpamError> {
        let key = keys::block_key(cidr);
        let handle_id = owner.handle_id.clone().unwrap_or_default();
        for _ in 0..MAX_ATTEMPTS {
            let Some(mut block) = records::read::<AllocationBlock>(self.ds, &key)? else {
                return Ok(Vec::new());
            };
            let ips = block.value.auto_assign(wanted, owner, reserved);
            if ips.is_empty() {
                return Ok(ips);
            }
            let mut ops = vec![records::put(&key, &block.value, block.condition)];
            ops.extend(self.handle_delta(
                &handle_id,
                cidr,
                i64::try_from(ips.len()).unwrap_or(i64::MAX),
            )?);
            if let Commit::Done = records::commit(self.ds, ops)? {
                return Ok(ips);
            }
        }
        Err(IpamError::Contention {
            what: format!("assigning from block {cidr}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The write that moves `handle`'s count in `block` by `delta` (a delete when it empties).
    fn handle_delta(
        &self,
        handle: &str,
        block: &IpNet,
        delta: i64,
    ) -> Result<Option<tortie_datastore::TxnOp>, IpamError> {
        if handle.is_empty() {
            return Ok(None);
        }
        let key = keys::handle_key(handle);
        let (mut record, condition) = match records::read::<IpamHandle>(self.ds, &key)? {
            Some(Versioned { value, condition }) => (value, condition),
            None => (IpamHandle::new(handle), Condition::Absent),
        };
        let block = block.to_string();
        if delta >= 0 {
            record.add(&block, u32::try_from(delta).unwrap_or(u32::MAX));
        } else {
            record.remove(&block, u32::try_from(-delta).unwrap_or(u32::MAX));
        }
        Ok(Some(match (record.is_empty(), condition) {
            (true, Condition::Absent) => return Ok(None),
            (true, condition) => records::delete(&key, condition),
            (false, condition) => records::put(&key, &record, condition),
        }))
    }

    /// Claims a free block of one of `pools` for `node`.
    fn claim_block(
        &self,
        node: &str,
        pools: &[&Pool],
        config: &IpamConfig,
        v6: bool,
    ) -> Result<Claim, IpamError> {
        if let Some(cap) = config.block_cap() {
            let held = self.affine_blocks(node, v6)?.len();
            if held >= cap as usize {
                return Ok(Claim::Capped(cap));
            }
        }
        let existing: HashSet<IpNet> = self.blocks(v6)?.into_iter().map(|(cidr, _)| cidr).collect();
        for pool in pools {
            for cidr in pool.blocks_for_node(node) {
                if existing.contains(&cidr) {
                    continue;
                }
                let block = AllocationBlock::new(cidr, Some(node), config.strict_affinity);
                let ops = vec![
                    records::put(
                        &keys::affinity_key(node, &cidr),
                        &BlockAffinity::confirmed(),
                        Condition::Absent,
                    ),
                    records::put(&keys::block_key(&cidr), &block, Condition::Absent),
                ];
                if let Commit::Done = records::commit(self.ds, ops)? {
                    return Ok(Claim::Claimed(cidr));
                }
            }
        }
        Ok(Claim::PoolsFull)
    }

    /// Assigns one specific address. The block holding it is claimed for the node when it
    /// does not exist yet; an address in another node's block is refused under strictAffinity.
    pub fn assign_ip(&self, args: &AssignIpArgs<'_>) -> Result<(), IpamError> {
        let pool = args
            .pools
            .iter()
            .find(|p| p.cidr.contains(&args.ip))
            .ok_or_else(|| IpamError::NotInPool {
                ip: args.ip,
                node: args.node.to_string(),
            })?;
        if args.reservations.iter().any(|r| r.contains(&args.ip)) {
            return Err(IpamError::Reserved { ip: args.ip });
        }
        let config = self.config()?;
        let cidr = IpNet::new(args.ip, pool.block_size)
            .map_err(|err| IpamError::InvalidConfig(format!("pool {}: {err}", pool.name)))?
            .trunc();
        let key = keys::block_key(&cidr);
        let owner = owner(args.handle, &args.attributes);
        for _ in 0..MAX_ATTEMPTS {
            let (mut block, mut ops) = match records::read::<AllocationBlock>(self.ds, &key)? {
                Some(block) => (block, Vec::new()),
                None => {
                    let affinity = keys::affinity_key(args.node, &cidr);
                    let ops = vec![records::put(
                        &affinity,
                        &BlockAffinity::confirmed(),
                        Condition::Absent,
                    )];
                    let value = AllocationBlock::new(cidr, Some(args.node), config.strict_affinity);
                    (
                        Versioned {
                            value,
                            condition: Condition::Absent,
                        },
                        ops,
                    )
                }
            };
            if let Some(other) = block.value.affine_node()
                && other != args.node
                && config.strict_affinity
            {
                return Err(IpamError::StrictAffinity {
                    ip: args.ip,
                    block: cidr,
                    owner: other.to_string(),
                });
            }
            block.value.assign(args.ip, &owner)?;
            ops.push(records::put(&key, &block.value, block.condition));
            ops.extend(self.handle_delta(args.handle, &cidr, 1)?);
            if let Commit::Done = records::commit(self.ds, ops)? {
                return Ok(());
            }
        }
        Err(IpamError::Contention {
            what: format!("assigning {}", args.ip),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Releases addresses; those not allocated are skipped (release is idempotent). Returns the
    /// addresses that were released.
    pub fn release_ips(&self, ips: &[IpAddr]) -> Result<Vec<IpAddr>, IpamError> {
        if ips.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_block: BTreeMap<IpNet, Vec<IpAddr>> = BTreeMap::new();
        let mut blocks = self.blocks(false)?;
        blocks.extend(self.blocks(true)?);
        for &ip in ips {
            if let Some((cidr, _)) = blocks.iter().find(|(cidr, _)| cidr.contains(&ip)) {
                by_block.entry(*cidr).or_default().push(ip);
            }
        }
        let mut released = Vec::new();
        for (cidr, ips) in by_block {
            released.extend(self.release_in_block(&cidr, |block| {
                let held: Vec<IpAddr> = ips
                    .iter()
                    .copied()
                    .filter(|ip| block.allocation(*ip).is_some())
                    .collect();
                let counts = block.release(&held);
                (held, counts)
            })?);
        }
        Ok(released)
    }

    /// Releases every address held by `handle` (idempotent: an unknown handle releases nothing).
    pub fn release_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        let key = keys::handle_key(handle);
        let Some(record) = records::read::<IpamHandle>(self.ds, &key)? else {
            return Ok(Vec::new());
        };
        let mut released = Vec::new();
        for block in record.value.block.keys() {
            let Ok(cidr) = block.parse::<IpNet>() else {
                return Err(IpamError::Corrupt {
                    key,
                    cause: format!("block {block:?} is not a CIDR"),
                });
            };
            released.extend(self.release_in_block(&cidr, |b| {
                let ips = b.ips_of_handle(handle);
                let counts = b.release(&ips);
                (ips, counts)
            })?);
        }
        // Whatever the handle still names (blocks that vanished) goes with it.
        if let Some(rest) = records::read::<IpamHandle>(self.ds, &key)? {
            let op = records::delete(&key, rest.condition);
            records::commit(self.ds, vec![op])?;
        }
        Ok(released)
    }

    /// Applies `release` to one block and the affected handles in one transaction, retrying.
    fn release_in_block(
        &self,
        cidr: &IpNet,
        release: impl Fn(&mut AllocationBlock) -> (Vec<IpAddr>, BTreeMap<String, u32>),
    ) -> Result<Vec<IpAddr>, IpamError> {
        let key = keys::block_key(cidr);
        for _ in 0..MAX_ATTEMPTS {
            let Some(mut block) = records::read::<AllocationBlock>(self.ds, &key)? else {
                return Ok(Vec::new());
            };
            let (ips, counts) = release(&mut block.value);
            if ips.is_empty() {
                return Ok(ips);
            }
            let mut ops = vec![records::put(&key, &block.value, block.condition)];
            for (handle, count) in counts {
                ops.extend(self.handle_delta(&handle, cidr, -i64::from(count))?);
            }
            if let Commit::Done = records::commit(self.ds, ops)? {
                return Ok(ips);
            }
        }
        Err(IpamError::Contention {
            what: format!("releasing in block {cidr}"),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Releases the node's affinity to every block of its that is empty, deleting those blocks
    /// (what node removal does). Returns the blocks released.
    pub fn release_empty_affinities(&self, node: &str) -> Result<Vec<IpNet>, IpamError> {
        let mut released = Vec::new();
        for (key, affinity) in
            records::list::<BlockAffinity>(self.ds, &keys::node_affinity_prefix(node))?
        {
            let Some(cidr) = keys::parse_block_cidr(&key) else {
                continue;
            };
            let block_key = keys::block_key(&cidr);
            let Some(block) = records::read::<AllocationBlock>(self.ds, &block_key)? else {
                records::commit(self.ds, vec![records::delete(&key, affinity.condition)])?;
                continue;
            };
            if !block.value.is_unused() {
                continue;
            }
            let ops = vec![
                records::delete(&key, affinity.condition),
                records::delete(&block_key, block.condition),
            ];
            if let Commit::Done = records::commit(self.ds, ops)? {
                released.push(cidr);
            }
        }
        Ok(released)
    }

    /// CIDRs of the blocks affine to `node` in one family.
    pub fn affine_blocks(&self, node: &str, v6: bool) -> Result<Vec<IpNet>, IpamError> {
        let snapshot = self
            .ds
            .list(&keys::node_affinity_prefix(node))
            .map_err(records::datastore_error)?;
        Ok(snapshot
            .kvs
            .iter()
            .filter_map(|kv| keys::parse_block_cidr(&kv.key))
            .filter(|cidr| matches!(cidr, IpNet::V6(_)) == v6)
            .collect())
    }

    /// Every block of one family.
    pub fn blocks(&self, v6: bool) -> Result<Vec<(IpNet, Versioned<AllocationBlock>)>, IpamError> {
        let listed = records::list::<AllocationBlock>(self.ds, &keys::block_prefix(v6))?;
        Ok(listed
            .into_iter()
            .filter_map(|(key, block)| Some((keys::parse_block_cidr(&key)?, block)))
            .collect())
    }

    /// The addresses `handle` holds (empty for an unknown handle).
    pub fn addresses_of_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        let Some(record) = records::read::<IpamHandle>(self.ds, &keys::handle_key(handle))? else {
            return Ok(Vec::new());
        };
        let mut ips = Vec::new();
        for block in record.value.block.keys() {
            let Ok(cidr) = block.parse::<IpNet>() else {
                continue;
            };
            if let Some(b) = records::read::<AllocationBlock>(self.ds, &keys::block_key(&cidr))? {
                ips.extend(b.value.ips_of_handle(handle));
            }
        }
        Ok(ips)
    }

    /// Every handle id with at least one address.
    pub fn handles(&self) -> Result<Vec<String>, IpamError> {
        let snapshot = self
            .ds
            .list(keys::HANDLE_PREFIX)
            .map_err(records::datastore_error)?;
        Ok(snapshot
            .kvs
            .into_iter()
            .map(|kv| kv.key.trim_start_matches(keys::HANDLE_PREFIX).to_string())
            .collect())
    }

    /// Who holds `ip`, if anyone: (block, owner).
    pub fn ip_info(&self, ip: IpAddr) -> Result<Option<(IpNet, AllocationAttribute)>, IpamError> {
        for (cidr, block) in self.blocks(ip.is_ipv6())? {
            if cidr.contains(&ip) {
                return Ok(block.value.allocation(ip).cloned().map(|a| (cidr, a)));
            }
        }
        Ok(None)
    }
}

/// Result of trying to claim a block.
enum Claim {
    Claimed(IpNet),
    Capped(u32),
    PoolsFull,
}

fn owner(handle: &str, attributes: &BTreeMap<String, String>) -> AllocationAttribute {
    AllocationAttribute {
        handle_id: Some(handle.to_string()),
        secondary: attributes.clone(),
    }
}
