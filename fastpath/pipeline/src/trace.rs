//! Packet trace: each node's decision for selected packets (like VPP's `trace add`).
//!
//! Tracing is opt-in: [`Trace::arm`] selects the next `count` packets (optionally only those
//! received on one interface). Records go into a buffer reserved when armed, so recording
//! never allocates; when it is full further records are counted as lost.

use tortie_abi::RuleId;

use crate::drop::DropReason;
use crate::graph::NodeKind;

/// What a node decided for a traced packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Sent on to `next`.
    Next(NodeKind),
    /// Dropped.
    Drop(DropReason),
    /// Queued for transmission on an interface.
    Tx(u32),
    /// Answered in place (ARP reply, neighbour advertisement, ICMP error) and sent back.
    Answered,
    /// Conntrack hit; `reply` tells the direction.
    ConntrackHit {
        /// Whether the packet travels in the reply direction.
        reply: bool,
    },
    /// Conntrack miss: a new flow.
    ConntrackMiss,
    /// A policy program decided.
    Policy {
        /// Allowed or denied.
        allow: bool,
        /// The deciding rule, if a rule (not a default) decided.
        rule: Option<RuleId>,
    },
    /// Destination (or source) rewritten by NAT.
    Nat,
}

/// One trace record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Serial number of the packet since the pipeline was created.
    pub packet: u64,
    /// The node.
    pub node: NodeKind,
    /// Its decision.
    pub event: Event,
}

/// The trace buffer of one worker.
#[derive(Debug, Default)]
pub struct Trace {
    remaining: u32,
    only_if: Option<u32>,
    records: Vec<TraceRecord>,
    lost: u64,
}

impl Trace {
    /// Traces the next `count` packets (received on `only_if`, if given), keeping up to
    /// `capacity` records. Allocates here, never while recording.
    pub fn arm(&mut self, count: u32, only_if: Option<u32>, capacity: usize) {
        self.remaining = count;
        self.only_if = only_if;
        self.records = Vec::with_capacity(capacity);
        self.lost = 0;
    }

    /// Stops selecting packets; records stay readable.
    pub fn disarm(&mut self) {
        self.remaining = 0;
    }

    /// Whether any packet is still to be selected: when not, a batch skips the per-packet
    /// selection.
    #[inline]
    pub(crate) fn armed(&self) -> bool {
        self.remaining != 0
    }

    /// Whether to trace a packet received on `rx_if`; counts it against the armed budget.
    #[inline]
    pub(crate) fn select(&mut self, rx_if: u32) -> bool {
        if self.remaining == 0 || self.only_if.is_some_and(|i| i != rx_if) {
            return false;
        }
        self.remaining -= 1;
        true
    }

    /// Records one decision (no allocation: drops the record when the buffer is full).
    #[inline]
    pub(crate) fn record(&mut self, packet: u64, node: NodeKind, event: Event) {
        if self.records.len() < self.records.capacity() {
            self.records.push(TraceRecord {
                packet,
                node,
                event,
            });
        } else {
            self.lost += 1;
        }
    }

    /// The records so far.
    pub fn records(&self) -> &[TraceRecord] {
        &self.records
    }

    /// Records that did not fit.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Clears the records (keeps the armed selection).
    pub fn clear(&mut self) {
        self.records.clear();
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_budget_interface_filter_and_overflow() {
        let mut t = Trace::default();
        assert!(!t.select(1), "disarmed by default");
        t.arm(2, Some(5), 1);
        assert!(!t.select(1), "other interface");
        assert!(t.select(5));
        assert!(t.select(5));
        assert!(!t.select(5), "budget spent");
        t.record(0, NodeKind::Parse, Event::Next(NodeKind::IpCheck));
        t.record(0, NodeKind::IpCheck, Event::Drop(DropReason::Spoofed));
        assert_eq!(t.records().len(), 1);
        assert_eq!(t.lost(), 1);
        t.clear();
        assert!(t.records().is_empty());
    }
}
