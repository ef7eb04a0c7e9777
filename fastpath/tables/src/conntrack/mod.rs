//! Per-worker connection tracking with NAT bindings.
//!
//! A [`Conntrack`] is owned by one worker thread and never shared: no locks, no atomics.
//! Everything is allocated by [`Conntrack::new`]; afterwards no operation allocates.
//!
//! Layout (see `docs/design/tables.md`): a slab of `capacity` 64-byte entries (one cache line
//! each; [`Conn`] is the view of one), a free stack of entry ids, a side table for the
//! translated addresses of IPv6 NAT'd connections, and a bucketised hash `index` holding
//! *two* values per connection,
//! one for the original tuple and one for the reply tuple (the translated tuple reversed), so
//! both directions are found with one probe and NAT'd replies need no second table. The index
//! is sized for `2 × capacity` values at ≤ 80 % load.
//!
//! Hot-path protocol for one packet:
//! 1. [`Conntrack::lookup`] (or [`Conntrack::lookup_batch`]) its key;
//! 2. on a hit, [`Conntrack::track`] it with `now` and its TCP flags: the result says whether
//!    the packet is valid, ignorable, invalid, or whether the connection had expired (then
//!    treat it as a miss);
//! 3. on a miss, classify, then [`Conntrack::insert`] with the verdict and the NAT wanted;
//!    `Err(InsertError::Full)` is the pipeline's "conntrack full" drop;
//! 4. once per batch, [`Conntrack::sweep`] a bounded number of slots to expire idle entries.

mod entry;
pub(crate) mod index;
pub mod tcp;
mod timeouts;
mod types;

#[cfg(test)]
mod packing_tests;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use entry::{Conn, ConnId, ConnRef, Direction, Verdict};
pub use timeouts::{ConnState, SECOND, Timeouts};
pub use types::{ConntrackConfig, ConntrackStats, InsertError, NatRequest, Tracked, random_seed};

use crate::flow::FlowKey;
use crate::nat::snat::SnatPorts;
use entry::{Entry, FLAG_DNAT, FLAG_SEEN_REPLY, FLAG_SNAT, V6Nat};
use index::{Candidate, Index};
use tcp::{TcpFlags, TcpState, TcpStep};

/// SNAT attempts before giving up on reply-tuple collisions.
const SNAT_ATTEMPTS: usize = 8;

/// Keys per stage of [`Conntrack::lookup_batch`]: enough independent cache misses to keep
/// a core's miss buffers busy, few enough that a group's buckets and entries (8 KiB) stay
/// in L1. In the pipeline's 1M-flow bench 64 beat 32, 128 and 256 (`docs/perf/tables.md`).
pub const LOOKUP_GROUP: usize = 64;

/// True when index value `value` (entry id and direction) stands for `key`, for the batch
/// lookup, which borrows the slab once for all its keys. (`Conntrack::matches` keeps its own
/// body: calling this from it cost `insert` 15 instructions, the compiler no longer inlining
/// the compare there.)
#[inline]
fn value_matches(entries: &[Entry], v6_nat: &[V6Nat], value: u32, key: &FlowKey) -> bool {
    let e = &entries[(value >> 1) as usize];
    if value & 1 == 0 {
        e.key == *key
    } else {
        e.is_reply(key, v6_nat)
    }
}

/// A per-worker connection table. See the module documentation.
pub struct Conntrack {
    index: Index,
    entries: Vec<Entry>,
    /// One bit per slab slot, set while the slot holds a connection: the sweep visits live
    /// connections only, 64 slots per word, instead of reading every slot's cache line.
    live: Vec<u64>,
    free: Vec<u32>,
    v6_nat: Vec<V6Nat>,
    v6_free: Vec<u32>,
    seed: u64,
    timeouts: Timeouts,
    loose_pickup: bool,
    evict_scan: usize,
    cursor: usize,
    snat: SnatPorts,
    stats: ConntrackStats,
}

impl Conntrack {
    /// Allocate a table for `config.capacity` connections. Capacity is clamped to 2^31 - 1.
    pub fn new(config: &ConntrackConfig) -> Conntrack {
        let capacity = config.capacity.clamp(1, (u32::MAX >> 1) as usize);
        let v6_capacity = config
            .ipv6_nat_capacity
            .unwrap_or(capacity / 4)
            .min(capacity);
        Conntrack {
            index: Index::with_max_values(capacity * 2),
            entries: vec![Entry::FREE; capacity],
            live: vec![0; capacity.div_ceil(64)],
            free: (0..capacity as u32).rev().collect(),
            v6_nat: vec![V6Nat::ZERO; v6_capacity],
            v6_free: (0..v6_capacity as u32).rev().collect(),
            seed: config.hash_seed,
            timeouts: config.timeouts,
            loose_pickup: config.tcp_loose_pickup,
            evict_scan: config.evict_scan,
            cursor: 0,
            snat: SnatPorts::new(&config.snat),
            stats: ConntrackStats::default(),
        }
    }

    /// Maximum number of live connections.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Live connections (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replace the timeouts (takes effect at the next expiry check).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// Counters.
    pub fn stats(&self) -> ConntrackStats {
        self.stats
    }

    /// The SNAT port pools (read-only: ports are taken and released by the table itself).
    pub fn snat_ports(&self) -> &SnatPorts {
        &self.snat
    }

    /// Bytes held by the table: entry slab + live-slot bitmap + index + free stack + IPv6
    /// NAT side table and its free stack + SNAT pools.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.live.capacity() * 8
            + self.index.memory_bytes()
            + self.free.capacity() * 4
            + self.v6_nat.capacity() * std::mem::size_of::<V6Nat>()
            + self.v6_free.capacity() * 4
            + self.snat.memory_bytes()
    }

    #[inline]
    fn matches(&self, value: u32, key: &FlowKey) -> bool {
        let e = &self.entries[(value >> 1) as usize];
        if value & 1 == 0 {
            e.key == *key
        } else {
            e.is_reply(key, &self.v6_nat)
        }
    }

    #[inline]
    fn view(&self, i: usize) -> Conn<'_> {
        Conn::new(&self.entries[i], &self.v6_nat)
    }

    #[inline]
    fn to_ref(value: u32) -> ConnRef {
        let dir = if value & 1 == 0 {
            Direction::Original
        } else {
            Direction::Reply
        };
        ConnRef {
            id: ConnId(value >> 1),
            dir,
        }
    }

    /// Find the connection a packet with `key` belongs to, and its direction.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<ConnRef> {
        let hash = key.hash_with(self.seed);
        self.index
            .find(hash, |v| self.matches(v, key))
            .map(|(_, v)| Self::to_ref(v))
    }

    /// Look up a batch: `out[i]` receives the result for `keys[i]` (only the first
    /// `min(keys.len(), out.len())` are processed).
    ///
    /// Software pipelining in groups of [`LOOKUP_GROUP`], one stage at a time over a whole
    /// group: (1) hash every key and load its home bucket, (2) read each home bucket's answer
    /// (`Candidate`: its first tag match, or that the key is absent), (3) load the
    /// candidates' entries, (4) compare keys. Stages 1 and 3 are tight loops of independent
    /// loads, so the out-of-order window holds the cache misses of a whole group at once
    /// instead of one miss per key. The groups overlap: stage 1 of the next group runs
    /// between stages 3 and 4 of the current one, so its bucket misses are in flight while
    /// this group's entry misses resolve, and each group waits for memory about once
    /// instead of twice. Stage 4 settles a candidate whose key matches, and a key its home
    /// bucket rules out, without scanning the bucket a second time; only the rest (a tag
    /// match with another key, or an overflowing bucket) take the full probe.
    pub fn lookup_batch(&self, keys: &[FlowKey], out: &mut [Option<ConnRef>]) {
        let n = keys.len().min(out.len());
        let keys = &keys[..n];
        let entries: &[Entry] = &self.entries;
        let matches = |v: u32, key: &FlowKey| value_matches(entries, &self.v6_nat, v, key);
        // Hashes of the current group and of the next one (stage 1 runs a group ahead).
        let mut hashes = [[0u64; LOOKUP_GROUP]; 2];
        let mut cands = [Candidate::Absent; LOOKUP_GROUP];
        let mut sink = 0u32;
        let mut groups = keys.chunks(LOOKUP_GROUP).enumerate().peekable();
        if let Some((_, first)) = groups.peek() {
            sink = sink.wrapping_add(self.hash_and_touch(first, &mut hashes[0]));
        }
        while let Some((g, group)) = groups.next() {
            let [even, odd] = &mut hashes;
            let (cur, next) = if g % 2 == 0 { (even, odd) } else { (odd, even) };
            let len = group.len();
            for (c, h) in cands.iter_mut().zip(&cur[..len]) {
                *c = self.index.candidate(*h);
            }
            for c in &cands[..len] {
                if let Candidate::First(v) = c {
                    // An entry is one cache line: loading a word of it brings it all.
                    sink = sink.wrapping_add(entries[(v >> 1) as usize].policy_epoch);
                }
            }
            if let Some((_, following)) = groups.peek() {
                sink = sink.wrapping_add(self.hash_and_touch(following, next));
            }
            let base = g * LOOKUP_GROUP;
            for (i, key) in group.iter().enumerate() {
                out[base + i] = match cands[i] {
                    Candidate::First(v) if matches(v, key) => Some(Self::to_ref(v)),
                    Candidate::Absent => None,
                    _ => self
                        .index
                        .find(cur[i], |v| matches(v, key))
                        .map(|(_, v)| Self::to_ref(v)),
                };
            }
        }
        std::hint::black_box(sink);
    }

    /// Stage 1 of [`Conntrack::lookup_batch`]: hash a group of keys into `hashes` and load
    /// their home buckets. Returns a word to feed `black_box`, so the loads are issued.
    #[inline(always)]
    fn hash_and_touch(&self, group: &[FlowKey], hashes: &mut [u64; LOOKUP_GROUP]) -> u32 {
        for (h, key) in hashes.iter_mut().zip(group) {
            *h = key.hash_with(self.seed);
        }
        let mut sink = 0u32;
        for h in &hashes[..group.len()] {
            sink = sink.wrapping_add(self.index.touch(*h));
        }
        sink
    }

    /// Find the connection an ICMP error belongs to from the tuple embedded in it (the
    /// offending packet's header, RFC 792 / RFC 4443 section 2.4). The returned direction is
    /// the direction the *error* travels: the embedded packet went the other way.
    pub fn lookup_related(&self, embedded: &FlowKey) -> Option<ConnRef> {
        if let Some(r) = self.lookup(&embedded.reversed()) {
            return Some(r);
        }
        self.lookup(embedded).map(|r| ConnRef {
            id: r.id,
            dir: r.dir.opposite(),
        })
    }

    /// The connection with this id, if live.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<Conn<'_>> {
        self.entries
            .get(id.index())
            .filter(|e| !e.is_free())
            .map(|e| Conn::new(e, &self.v6_nat))
    }

    /// Store a new policy verdict (e.g. after re-classification under a new policy epoch).
    /// Returns false for a stale id.
    pub fn set_verdict(&mut self, id: ConnId, verdict: Verdict, policy_epoch: u32) -> bool {
        match self.entries.get_mut(id.index()) {
            Some(e) if !e.is_free() => {
                e.set_verdict(verdict);
                e.policy_epoch = policy_epoch;
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn expired(&self, e: &Entry, now: u64) -> bool {
        let state = ConnState::from_code(e.state).unwrap_or(ConnState::New);
        let timeout = self.timeouts.for_state(e.key.proto(), state);
        now.saturating_sub(e.last_seen) > timeout
    }

    /// Account a packet of a found connection: check expiry, run the TCP state machine (for
    /// TCP; `flags` is ignored otherwise), mark replies, refresh the timer.
    pub fn track(&mut self, conn: ConnRef, now: u64, flags: TcpFlags) -> Tracked {
        let i = conn.id.index();
        let Some(e) = self.entries.get(i) else {
            return Tracked::Expired;
        };
        if e.is_free() {
            return Tracked::Expired;
        }
        if self.expired(e, now) {
            self.remove_at(i);
            self.stats.expired += 1;
            return Tracked::Expired;
        }
        let reply = conn.dir == Direction::Reply;
        let e = &mut self.entries[i];
        match ConnState::from_code(e.state).unwrap_or(ConnState::New) {
            ConnState::Tcp(state) => match tcp::step(state, flags, reply) {
                TcpStep::To(next) => {
                    if next == TcpState::SynSent
                        && matches!(state, TcpState::TimeWait | TcpState::Close)
                    {
                        // Reopened connection: a new handshake starts, replies unseen again.
                        e.set_flags(e.flags() & !FLAG_SEEN_REPLY);
                    }
                    e.state = ConnState::Tcp(next).code();
                }
                TcpStep::Ignore => return Tracked::Ignored,
                TcpStep::Invalid => return Tracked::Invalid,
            },
            ConnState::New if reply => e.state = ConnState::Replied.code(),
            ConnState::New | ConnState::Replied => {}
        }
        if reply {
            e.set_flags(e.flags() | FLAG_SEEN_REPLY);
        }
        e.last_seen = e.last_seen.max(now);
        Tracked::Valid
    }

    /// Create a connection for the first packet of a flow (`key`, `flags` for TCP), with the
    /// policy verdict to cache and the NAT to apply. Never allocates: a full table evicts up
    /// to `evict_scan` expired entries or refuses with [`InsertError::Full`].
    pub fn insert(
        &mut self,
        key: FlowKey,
        now: u64,
        flags: TcpFlags,
        verdict: Verdict,
        policy_epoch: u32,
        nat: NatRequest,
    ) -> Result<ConnRef, InsertError> {
        let state = if key.proto() == crate::flow::proto::TCP {
            let s = tcp::initial_state(flags, self.loose_pickup)
                .ok_or(InsertError::NotInitial(flags.0))?;
            ConnState::Tcp(s)
        } else {
            ConnState::New
        };
        let hash = key.hash_with(self.seed);
        if let Some((_, v)) = self.index.find(hash, |v| self.matches(v, &key)) {
            return Err(InsertError::Exists(Self::to_ref(v)));
        }
        if self.free.is_empty() {
            self.evict_expired(now, self.evict_scan);
            if self.free.is_empty() {
                self.stats.full += 1;
                return Err(InsertError::Full);
            }
        }
        let wants_nat = nat.dnat.is_some() || nat.snat.is_some();
        if wants_nat && key.is_ipv6() && self.v6_free.is_empty() {
            return Err(InsertError::Ipv6NatFull);
        }
        let mut translated = key;
        let mut nat_flags = 0;
        if let Some((addr, port)) = nat.dnat {
            translated = translated
                .with_dst(addr, port.unwrap_or(key.dst_port()))
                .ok_or(InsertError::FamilyMismatch)?;
            nat_flags |= FLAG_DNAT;
        }
        // A flow whose reply tuple equals its own key (e.g. a host talking to itself on the
        // same port) is indexed once; the original-direction value answers both.
        let (reply_hash, reply_is_key) = if let Some(addr) = nat.snat {
            nat_flags |= FLAG_SNAT;
            let (t, h) = self.allocate_snat(&translated, addr)?;
            translated = t;
            (h, translated.reversed() == key)
        } else {
            let reply = translated.reversed();
            let h = reply.hash_with(self.seed);
            let reply_is_key = reply == key;
            if !reply_is_key && self.index.find(h, |v| self.matches(v, &reply)).is_some() {
                return Err(InsertError::ReplyCollision);
            }
            (h, reply_is_key)
        };
        let needs_side = nat_flags != 0 && key.is_ipv6();
        let v6_slot = if needs_side { self.v6_free.pop() } else { None };
        let id = self.free.pop();
        let (Some(id), false) = (id, needs_side && v6_slot.is_none()) else {
            // Unreachable: both free stacks were checked above. Undo what was taken rather
            // than leak it.
            self.free.extend(id);
            self.v6_free.extend(v6_slot);
            self.release_snat_of(&translated, nat_flags);
            return Err(InsertError::Full);
        };
        if let Some(s) = v6_slot {
            self.v6_nat[s as usize] = V6Nat {
                src: translated.src,
                dst: translated.dst,
            };
        }
        let mut entry = Entry::new(key, &translated, v6_slot, state.code(), nat_flags);
        entry.last_seen = now;
        entry.policy_epoch = policy_epoch;
        entry.set_verdict(verdict);
        self.entries[id as usize] = entry;
        self.live[id as usize / 64] |= 1 << (id % 64);
        let placed = self.index.insert(hash, id << 1).is_some();
        let reply_placed = reply_is_key || self.index.insert(reply_hash, (id << 1) | 1).is_some();
        debug_assert!(placed && reply_placed, "index sized for 2 x capacity");
        self.stats.inserted += 1;
        Ok(ConnRef {
            id: ConnId(id),
            dir: Direction::Original,
        })
    }

    /// Pick an SNAT port whose reply tuple is unused; returns the translated tuple and the
    /// reply tuple's hash.
    fn allocate_snat(
        &mut self,
        pre: &FlowKey,
        addr: IpAddr,
    ) -> Result<(FlowKey, u64), InsertError> {
        if !pre.has_ports() {
            // Address-only translation for protocols without ports.
            let t = pre
                .with_src(addr, pre.src_port())
                .ok_or(InsertError::FamilyMismatch)?;
            let reply = t.reversed();
            let h = reply.hash_with(self.seed);
            if self.index.find(h, |v| self.matches(v, &reply)).is_some() {
                return Err(InsertError::ReplyCollision);
            }
            return Ok((t, h));
        }
        if pre.with_src(addr, 0).is_none() {
            return Err(InsertError::FamilyMismatch);
        }
        for _ in 0..SNAT_ATTEMPTS {
            let port = self.snat.allocate(addr, pre.proto())?;
            let t = pre
                .with_src(addr, port)
                .ok_or(InsertError::FamilyMismatch)?;
            let reply = t.reversed();
            let h = reply.hash_with(self.seed);
            if self.index.find(h, |v| self.matches(v, &reply)).is_none() {
                return Ok((t, h));
            }
            self.snat.release(addr, pre.proto(), port);
        }
        Err(InsertError::ReplyCollision)
    }

    fn release_snat_of(&mut self, translated: &FlowKey, flags: u8) {
        if flags & FLAG_SNAT != 0 && translated.has_ports() {
            self.snat.release(
                translated.src_ip(),
                translated.proto(),
                translated.src_port(),
            );
        }
    }

    /// Remove a connection now (e.g. an endpoint was deleted). Returns false for a stale id.
    pub fn remove(&mut self, id: ConnId) -> bool {
        match self.entries.get(id.index()) {
            Some(e) if !e.is_free() => {
                self.remove_at(id.index());
                self.stats.removed += 1;
                true
            }
            _ => false,
        }
    }

    fn remove_at(&mut self, i: usize) {
        let e = &self.entries[i];
        let (key, flags) = (e.key, e.flags());
        // The reply tuple is the translated tuple reversed; without NAT, the key reversed
        // (no rebuild from the packed binding).
        let (reply, v6_slot) = if e.has_nat() {
            (e.translated(&self.v6_nat).reversed(), e.v6_slot())
        } else {
            (key.reversed(), None)
        };
        let value = (i as u32) << 1;
        let h = key.hash_with(self.seed);
        if let Some(slot) = self.index.slot_of(h, value) {
            self.index.remove(h, slot);
        }
        if reply != key {
            let h = reply.hash_with(self.seed);
            if let Some(slot) = self.index.slot_of(h, value | 1) {
                self.index.remove(h, slot);
            }
        }
        if flags & FLAG_SNAT != 0 {
            self.release_snat_of(&reply.reversed(), flags);
        }
        if let Some(s) = v6_slot {
            self.v6_free.push(s);
        }
        // Only the state marks a slot free (`Entry::is_free`); the rest of a free entry is
        // never read, and `insert` overwrites all of it.
        self.entries[i].state = Entry::FREE.state;
        self.live[i / 64] &= !(1 << (i % 64));
        self.free.push(i as u32);
    }

    /// Visit up to `max_slots` slab slots from where the last sweep stopped and remove the
    /// expired connections, calling `on_expire` with each before it goes. Returns how many
    /// expired. Run once per batch with a small budget (e.g. 64): the whole table is covered
    /// every `capacity / max_slots` batches. Free slots cost nothing but a bit test: the sweep
    /// walks the live-slot bitmap a word (64 slots) at a time and reads only live entries.
    pub fn sweep(
        &mut self,
        now: u64,
        max_slots: usize,
        mut on_expire: impl FnMut(ConnId, Conn<'_>),
    ) -> usize {
        let n = self.entries.len();
        let mut budget = max_slots.min(n);
        let mut expired = 0;
        while budget > 0 {
            let start = self.cursor;
            // Slots start..start + span: within one bitmap word, the budget and the slab.
            let span = (64 - start % 64).min(budget).min(n - start);
            let word = start / 64;
            let mask = (u64::MAX >> (64 - span)) << (start % 64);
            let mut bits = self.live[word] & mask;
            while bits != 0 {
                let i = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if self.expired(&self.entries[i], now) {
                    on_expire(ConnId(i as u32), self.view(i));
                    self.remove_at(i);
                    expired += 1;
                }
            }
            budget -= span;
            self.cursor = if start + span == n { 0 } else { start + span };
        }
        self.stats.expired += expired as u64;
        expired
    }

    fn evict_expired(&mut self, now: u64, budget: usize) -> usize {
        self.sweep(now, budget, |_, _| {})
    }

    /// Iterate over live connections (control-plane dumps and tests; not for the hot path).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, Conn<'_>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_free())
            .map(|(i, e)| (ConnId(i as u32), Conn::new(e, &self.v6_nat)))
    }
}
