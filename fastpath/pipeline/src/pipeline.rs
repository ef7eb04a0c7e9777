//! The per-worker pipeline: the batch driver and the state nodes share.

use std::sync::Arc;

use tortie_tables::{Conntrack, ConntrackConfig, SnatConfig, TcpState, Timeouts};

use crate::compile::Generation;
use crate::counters::Counters;
use crate::drop::DropReason;
use crate::frag::FragmentTable;
use crate::frame::{Frame, MAX_BATCH, TxBatches};
use crate::graph::NodeKind;
use crate::meta::{Meta, Step};
use crate::trace::{Event, Trace};

/// 64-bit words of one node's waiting set (one bit per packet of a batch).
const WAIT_WORDS: usize = MAX_BATCH / 64;

/// The packets waiting at one node, one bit per batch index. A node walks its set in
/// ascending index order (batch order), touches only the packets that are there, and is
/// skipped outright when its set is empty.
type WaitSet = [u64; WAIT_WORDS];

/// Construction parameters of a [`Pipeline`].
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Conntrack capacity (live flows).
    pub conntrack_capacity: usize,
    /// Conntrack hash seed; `None` picks a random one.
    pub hash_seed: Option<u64>,
    /// Accept a mid-stream ACK as the start of a TCP flow (survives restarts).
    pub tcp_loose_pickup: bool,
    /// Conntrack slots examined for expiry after each batch.
    pub sweep_per_batch: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            conntrack_capacity: 1 << 16,
            hash_seed: None,
            tcp_loose_pickup: true,
            sweep_per_batch: 64,
        }
    }
}

/// Where a frame ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Queued for transmission on this interface.
    Tx(u32),
    /// Dropped and counted.
    Drop(DropReason),
}

/// One worker's pipeline: its conntrack table, counters, trace buffer and fragment table,
/// and the table generation it currently runs on.
pub struct Pipeline {
    pub(crate) generation: Arc<Generation>,
    pub(crate) ct: Conntrack,
    pub(crate) counters: Counters,
    pub(crate) trace: Trace,
    pub(crate) frags: FragmentTable,
    serial: u64,
    /// Per node (`NodeKind as usize`): the packets of the batch waiting there. A step to a
    /// node sets the packet's bit in that node's set; arcs point forward, so one pass over
    /// the node order drains every set.
    waiting: [WaitSet; NodeKind::ORDER.len()],
    meta: Vec<Meta>,
    /// The conntrack node's batched lookup of this batch: each looked-up packet's key (as
    /// received) and result, at the packet's `Meta::ct_slot`.
    /// The first `ct_len` entries are this batch's (fixed arrays: filling them needs no
    /// capacity checks).
    pub(crate) ct_keys: Box<[tortie_tables::FlowKey; MAX_BATCH]>,
    pub(crate) ct_results: Box<[Option<tortie_tables::ConnRef>; MAX_BATCH]>,
    pub(crate) ct_len: usize,
    /// This batch's ICMP-error translations (outer source, outer destination, quoted
    /// tuple), at the packet's `Meta::error_xlate`. Rare, so kept out of the metadata.
    pub(crate) error_xlates: Vec<(std::net::IpAddr, std::net::IpAddr, tortie_tables::FlowKey)>,
    dispositions: Vec<Disposition>,
    sweep_per_batch: usize,
    /// The route node's last lookup in this batch (destination, answer): consecutive
    /// packets to one destination skip the LPM walk. Cleared when a batch starts.
    pub(crate) route_memo: Option<crate::nodes::RouteMemo>,
    /// The encap node's outer header for the last tunnel destination of this batch.
    /// Cleared when a batch starts.
    pub(crate) encap_memo: Option<crate::rewrite::EncapTemplate>,
}

/// Conntrack timeouts from the settings (seconds) in the pipeline's nanosecond clock.
fn timeouts(s: &tortie_abi::Settings) -> Timeouts {
    const SECOND: u64 = 1_000_000_000;
    let mut t = Timeouts::default();
    let transitory = u64::from(s.tcp_transitory_timeout_s) * SECOND;
    for st in [
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::SynSent2,
    ] {
        t.tcp[st.index()] = transitory;
    }
    t.tcp[TcpState::Established.index()] = u64::from(s.tcp_established_timeout_s) * SECOND;
    t.udp_replied = u64::from(s.udp_timeout_s) * SECOND;
    t.udp_new = t.udp_new.min(t.udp_replied);
    t.icmp = u64::from(s.icmp_timeout_s) * SECOND;
    t
}

impl Pipeline {
    /// A pipeline on `generation`. The conntrack table (and its SNAT port pools, built for
    /// the generation's SNAT addresses) is allocated here, once.
    pub fn new(generation: Arc<Generation>, config: &PipelineConfig) -> Self {
        let snat = SnatConfig {
            addresses: [generation.snat_v4, generation.snat_v6]
                .into_iter()
                .flatten()
                .collect(),
            port_range: snat_range(&generation),
        };
        let mut ct_config = ConntrackConfig {
            capacity: config.conntrack_capacity,
            timeouts: timeouts(&generation.settings),
            tcp_loose_pickup: config.tcp_loose_pickup,
            snat,
            ..ConntrackConfig::default()
        };
        if let Some(seed) = config.hash_seed {
            ct_config.hash_seed = seed;
        }
        let mut counters = Counters::default();
        counters.rule_hits = vec![0; generation.rule_slots()];
        let placeholder = Meta::new(crate::meta::PLACEHOLDER);
        Self {
            ct: Conntrack::new(&ct_config),
            generation,
            counters,
            trace: Trace::default(),
            frags: FragmentTable::default(),
            serial: 0,
            waiting: [[0; WAIT_WORDS]; NodeKind::ORDER.len()],
            meta: vec![placeholder; MAX_BATCH],
            ct_keys: Box::new(
                [tortie_tables::FlowKey::v4(
                    std::net::Ipv4Addr::UNSPECIFIED,
                    std::net::Ipv4Addr::UNSPECIFIED,
                    0,
                    0,
                    0,
                ); MAX_BATCH],
            ),
            ct_results: Box::new([None; MAX_BATCH]),
            ct_len: 0,
            error_xlates: Vec::with_capacity(MAX_BATCH),
            dispositions: vec![Disposition::Drop(DropReason::NotIp); MAX_BATCH],
            sweep_per_batch: config.sweep_per_batch,
            route_memo: None,
            encap_memo: None,
        }
    }

    /// The generation in use.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Switches to `next` between batches and returns the retired generation, which the
    /// caller hands back for freeing off the hot path. Rule hit counters restart for the new
    /// generation's rule slots (read them before swapping).
    ///
    /// SNAT addresses are fixed when the pipeline is created: a generation that changes
    /// them needs a new pipeline (and conntrack table).
    pub fn swap_generation(&mut self, next: Arc<Generation>) -> Arc<Generation> {
        self.ct.set_timeouts(timeouts(&next.settings));
        self.counters.rule_hits.clear();
        self.counters.rule_hits.resize(next.rule_slots(), 0);
        self.route_memo = None;
        self.encap_memo = None;
        std::mem::replace(&mut self.generation, next)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The conntrack table.
    pub fn conntrack(&self) -> &Conntrack {
        &self.ct
    }

    /// The trace buffer (arm it to trace packets).
    pub fn trace(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Where each frame of the last batch ended up, in batch order.
    pub fn dispositions(&self) -> &[Disposition] {
        &self.dispositions
    }

    /// Runs a batch of up to [`MAX_BATCH`] frames through every node. `now` is a monotonic
    /// clock in nanoseconds, read once per batch. Every frame ends either queued in `out`
    /// (which is cleared first) or counted as a drop; frames beyond [`MAX_BATCH`] are left
    /// untouched and must be passed in a later call.
    pub fn process(&mut self, frames: &mut [Frame<'_>], now: u64, out: &mut TxBatches) -> usize {
        out.clear();
        let n = frames.len().min(MAX_BATCH);
        self.dispositions
            .resize(n, Disposition::Drop(DropReason::NotIp));
        self.route_memo = None;
        self.encap_memo = None;
        self.error_xlates.clear();
        let mut meta = std::mem::take(&mut self.meta);
        let tracing = self.trace.armed();
        for (i, (m, f)) in meta[..n].iter_mut().zip(frames.iter()).enumerate() {
            m.reset();
            m.traced = tracing && self.trace.select(f.rx_if());
            if m.traced {
                m.serial = self.serial + i as u64;
            }
        }
        self.serial += n as u64;
        self.waiting = [[0; WAIT_WORDS]; NodeKind::ORDER.len()];
        for (w, word) in self.waiting[NodeKind::Parse as usize]
            .iter_mut()
            .enumerate()
        {
            let live = n.saturating_sub(w * 64).min(64);
            *word = if live == 64 {
                u64::MAX
            } else {
                (1u64 << live) - 1
            };
        }
        for node in NodeKind::ORDER {
            let set = std::mem::take(&mut self.waiting[node as usize]);
            if set.iter().all(|w| *w == 0) {
                continue;
            }
            let (frames, meta) = (&mut frames[..n], &mut meta[..n]);
            // One loop per node, each with its node call inlined, so the per-packet work is
            // the node itself rather than a dispatch on the node kind. Nodes that never
            // touch the frame's bytes run without fetching it.
            match node {
                NodeKind::Parse => self.run_set(node, &set, frames, meta, out, Self::node_parse),
                NodeKind::Neighbor => {
                    self.run_set(node, &set, frames, meta, out, Self::node_neighbor)
                }
                NodeKind::Decap => self.run_set(node, &set, frames, meta, out, Self::node_decap),
                NodeKind::IpCheck => {
                    self.run_set(node, &set, frames, meta, out, Self::node_ip_check)
                }
                NodeKind::Untracked => {
                    self.run_meta(node, &set, frames, meta, out, Self::node_untracked)
                }
                NodeKind::Conntrack => {
                    self.conntrack_lookup_batch(&set, meta);
                    self.run_meta(node, &set, frames, meta, out, |s, m| {
                        s.node_conntrack(m, now)
                    })
                }
                NodeKind::PreDnat => {
                    self.run_meta(node, &set, frames, meta, out, Self::node_pre_dnat)
                }
                NodeKind::Route => self.run_meta(node, &set, frames, meta, out, Self::node_route),
                NodeKind::Policy => {
                    self.run_meta(node, &set, frames, meta, out, |s, m| s.node_policy(m, now))
                }
                NodeKind::Fragment => self.run_meta(node, &set, frames, meta, out, |s, m| {
                    s.node_fragment(m, now)
                }),
                NodeKind::Mtu => self.run_set(node, &set, frames, meta, out, Self::node_mtu),
                NodeKind::Rewrite => {
                    self.run_set(node, &set, frames, meta, out, Self::node_rewrite)
                }
                NodeKind::Encap => self.run_set(node, &set, frames, meta, out, Self::node_encap),
                NodeKind::Tx => self.run_meta(node, &set, frames, meta, out, |_, m| {
                    Step::Tx(m.egress.tx_if)
                }),
            }
        }
        debug_assert!(
            self.waiting.iter().flatten().all(|w| *w == 0),
            "packet left in the graph"
        );
        self.meta = meta;
        self.ct.sweep(now, self.sweep_per_batch, |_, _| {});
        n
    }

    /// Looks up the flows of every packet waiting at the conntrack node in one batched call,
    /// so the table's cache misses overlap (VPP's prefetch-ahead). Keys that the node would
    /// not look up (later fragments, ICMP errors) are skipped.
    fn conntrack_lookup_batch(&mut self, set: &WaitSet, meta: &mut [Meta]) {
        let mut len = 0;
        for (w, mut bits) in set.iter().copied().enumerate() {
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(m) = meta.get_mut(i) else {
                    continue;
                };
                if m.p.fragment == tortie_wire::Fragment::Later || m.p.embedded.is_some() {
                    continue;
                }
                if let Some(k) = crate::nodes::flow_key(&m.p) {
                    // At most one key per packet: `len` stays below `MAX_BATCH` (and the
                    // slot fits 16 bits).
                    self.ct_keys[len % MAX_BATCH] = k;
                    m.ct_slot = len as u16;
                    len += 1;
                }
            }
        }
        let len = len.min(MAX_BATCH);
        self.ct_len = len;
        self.ct
            .lookup_batch(&self.ct_keys[..len], &mut self.ct_results[..len]);
    }

    /// Runs `node_fn` on every packet of `set` (ascending batch order) and applies its step.
    ///
    /// Each node's loop is a function of its own (not inlined into `process`), so that its
    /// registers serve that node's per-packet work rather than the whole graph's.
    #[inline(never)]
    fn run_set<F>(
        &mut self,
        node: NodeKind,
        set: &WaitSet,
        frames: &mut [Frame<'_>],
        meta: &mut [Meta],
        out: &mut TxBatches,
        mut node_fn: F,
    ) where
        F: FnMut(&mut Self, &mut Frame<'_>, &mut Meta) -> Step,
    {
        for (w, mut bits) in set.iter().copied().enumerate() {
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // Only bits below the batch length are ever set (the parse node's set is
                // built from it and steps copy a packet's own bit), so this always matches.
                let (Some(m), Some(f)) = (meta.get_mut(i), frames.get_mut(i)) else {
                    debug_assert!(false, "packet {i} outside the batch");
                    continue;
                };
                let step = node_fn(self, f, m);
                self.apply_step(node, step, i, f.len(), m, out);
            }
        }
    }

    /// [`Self::run_set`] for a node that decides on the metadata alone: the frame is read
    /// only for its length when the node queues the packet for transmission.
    #[inline(never)]
    fn run_meta<F>(
        &mut self,
        node: NodeKind,
        set: &WaitSet,
        frames: &[Frame<'_>],
        meta: &mut [Meta],
        out: &mut TxBatches,
        mut node_fn: F,
    ) where
        F: FnMut(&mut Self, &mut Meta) -> Step,
    {
        for (w, mut bits) in set.iter().copied().enumerate() {
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(m) = meta.get_mut(i) else {
                    debug_assert!(false, "packet {i} outside the batch");
                    continue;
                };
                match node_fn(self, m) {
                    Step::Next(next) => self.step_next(node, next, i, m),
                    step => {
                        let len = frames.get(i).map_or(0, Frame::len);
                        self.apply_step(node, step, i, len, m, out);
                    }
                }
            }
        }
    }

    /// Sends packet `i` on to `next`.
    #[inline(always)]
    fn step_next(&mut self, node: NodeKind, next: NodeKind, i: usize, m: &Meta) {
        debug_assert!(
            node.next_arcs().contains(&next),
            "undeclared arc {} -> {}",
            node.name(),
            next.name()
        );
        if m.traced {
            self.trace.record(m.serial, node, Event::Next(next));
        }
        self.waiting[next as usize][(i / 64) % WAIT_WORDS] |= 1 << (i % 64);
    }

    #[inline(always)]
    fn apply_step(
        &mut self,
        node: NodeKind,
        step: Step,
        i: usize,
        len: usize,
        m: &Meta,
        out: &mut TxBatches,
    ) {
        match step {
            Step::Next(next) => self.step_next(node, next, i, m),
            Step::Tx(if_index) => {
                if out.push(if_index, i as u16) {
                    self.counters.tx(if_index, len);
                    self.dispositions[i] = Disposition::Tx(if_index);
                    if m.traced {
                        self.trace.record(m.serial, node, Event::Tx(if_index));
                    }
                } else {
                    self.drop_packet(node, i, m, DropReason::TxInterfacesExhausted);
                }
            }
            Step::Drop(reason) => {
                self.drop_packet(node, i, m, reason);
            }
        }
    }

    fn drop_packet(&mut self, node: NodeKind, i: usize, m: &Meta, reason: DropReason) {
        self.counters.drop(reason);
        self.dispositions[i] = Disposition::Drop(reason);
        if m.traced {
            self.trace.record(m.serial, node, Event::Drop(reason));
        }
    }

    /// Records a node-specific event for a traced packet.
    #[inline]
    pub(crate) fn note(&mut self, m: &Meta, node: NodeKind, event: Event) {
        if m.traced {
            self.trace.record(m.serial, node, event);
        }
    }
}

fn snat_range(g: &Generation) -> tortie_tables::nat::snat::PortRange {
    let (lo, hi) = g.snat_ports;
    if (lo, hi) == (0, 0) {
        return tortie_tables::nat::snat::PortRange::default();
    }
    tortie_tables::nat::snat::PortRange::new(lo, hi).unwrap_or_default()
}
