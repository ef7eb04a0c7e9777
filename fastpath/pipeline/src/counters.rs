//! Per-worker counters: per interface, per drop reason, per rule. Plain integers (each worker
//! owns its own); readers sum them across workers.

use crate::drop::DropReason;

/// Interface indices at or above this share the last counter slot.
pub const MAX_IF_COUNTERS: usize = 4096;

/// Traffic counters of one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames queued for transmission.
    pub tx_packets: u64,
    /// Bytes queued for transmission.
    pub tx_bytes: u64,
}

/// Every counter of one worker.
#[derive(Clone, Debug)]
pub struct Counters {
    drops: [u64; DropReason::COUNT],
    ifs: Vec<IfCounters>,
    /// Hits per rule slot of the current generation (see `Generation::rule_id`).
    pub(crate) rule_hits: Vec<u64>,
    /// ARP replies and neighbour advertisements sent.
    pub neighbor_replies: u64,
    /// ICMP errors generated (time exceeded, fragmentation needed, packet too big).
    pub icmp_errors: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Packets that bypassed conntrack under doNotTrack policy.
    pub untracked: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::COUNT],
            ifs: vec![IfCounters::default(); MAX_IF_COUNTERS],
            rule_hits: Vec::new(),
            neighbor_replies: 0,
            icmp_errors: 0,
            flows_created: 0,
            untracked: 0,
        }
    }
}

impl Counters {
    #[inline]
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    #[inline]
    fn slot(if_index: u32) -> usize {
        (if_index as usize).min(MAX_IF_COUNTERS - 1)
    }

    #[inline]
    pub(crate) fn rx(&mut self, if_index: u32, bytes: usize) {
        let c = &mut self.ifs[Self::slot(if_index)];
        c.rx_packets += 1;
        c.rx_bytes += bytes as u64;
    }

    #[inline]
    pub(crate) fn tx(&mut self, if_index: u32, bytes: usize) {
        let c = &mut self.ifs[Self::slot(if_index)];
        c.tx_packets += 1;
        c.tx_bytes += bytes as u64;
    }

    #[inline]
    pub(crate) fn rule_hit(&mut self, slot: u32) {
        if let Some(h) = self.rule_hits.get_mut(slot as usize) {
            *h += 1;
        }
    }

    /// Drops counted under `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Every non-zero drop counter with its name.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops[r.index()]))
            .filter(|(_, n)| *n > 0)
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Counters of one interface.
    pub fn interface(&self, if_index: u32) -> IfCounters {
        self.ifs[Self::slot(if_index)]
    }

    /// Hits per rule slot of the current generation; pair with
    /// [`crate::Generation::rule_id`].
    pub fn rule_hits(&self) -> &[u64] {
        &self.rule_hits
    }
}
