//! TCP connection tracking: a simplified port of Linux `nf_conntrack_proto_tcp`'s state table.
//!
//! What is kept: the ten Linux states, the classification of a segment into SYN, SYN-ACK, FIN,
//! ACK, RST or none (RST wins, then SYN, then FIN, then ACK), the per-direction transition table
//! including simultaneous open (`SYN_SENT2`), reopening a connection in `TIME_WAIT`/`CLOSE`
//! with a new SYN (RFC 9293 section 3.6.1 / RFC 1122 4.2.2.13), and the split of bad segments
//! into *ignored* (pass, state and timer untouched) and *invalid* (the pipeline drops them
//! unless invalid-checking is disabled, as Calico does with `ctstate INVALID -j DROP`).
//!
//! What is left out: sequence/window tracking (`tcp_in_window`), the retransmission and
//! unacknowledged-data timeouts, and RST sequence validation. A middlebox that does not track
//! windows accepts any in-state segment; this is the same trade-off as Linux with
//! `nf_conntrack_tcp_be_liberal=1`, and it is stated in `docs/design/tables.md`.

/// TCP flag bits as they appear in byte 13 of the TCP header (RFC 9293 section 3.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: the sender has finished sending.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// No flags (also what non-TCP packets pass).
    pub const NONE: TcpFlags = TcpFlags(0);

    /// True when every bit of `bits` is set.
    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// The TCP states of Linux conntrack (`enum tcp_conntrack`), in the same order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// A SYN was seen in the original direction.
    SynSent = 0,
    /// A SYN-ACK answered the SYN.
    SynRecv = 1,
    /// The three-way handshake completed (or a mid-stream ACK was picked up).
    Established = 2,
    /// A FIN was seen.
    FinWait = 3,
    /// The FIN was acknowledged; the other side may still send.
    CloseWait = 4,
    /// FINs were seen in both directions; waiting for the last ACK.
    LastAck = 5,
    /// The last ACK was seen.
    TimeWait = 6,
    /// A RST was seen.
    Close = 7,
    /// A SYN was seen in the reply direction too (simultaneous open).
    SynSent2 = 8,
}

/// Number of [`TcpState`] values (the size of per-state timeout tables).
pub const TCP_STATE_COUNT: usize = 9;

impl TcpState {
    /// All states, in discriminant order.
    pub const ALL: [TcpState; TCP_STATE_COUNT] = [
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];

    /// Index into per-state tables.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_index(i: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(i)).copied()
    }
}

/// What a TCP segment does to a tracked connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpStep {
    /// Valid: move to this state (possibly the same one) and refresh the timer.
    To(TcpState),
    /// Let the segment pass but leave state and timer alone (Linux `sIG`).
    Ignore,
    /// Invalid for the current state (Linux `sIV`).
    Invalid,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Segment {
    Syn,
    SynAck,
    Fin,
    Ack,
    Rst,
    None,
}

fn classify(flags: TcpFlags) -> Segment {
    if flags.has(TcpFlags::RST) {
        Segment::Rst
    } else if flags.has(TcpFlags::SYN) {
        if flags.has(TcpFlags::ACK) {
            Segment::SynAck
        } else {
            Segment::Syn
        }
    } else if flags.has(TcpFlags::FIN) {
        Segment::Fin
    } else if flags.has(TcpFlags::ACK) {
        Segment::Ack
    } else {
        Segment::None
    }
}

/// The state of a connection created by its first segment, or `None` when that segment may
/// not open a connection. A SYN opens `SYN_SENT`; with `loose_pickup` a bare ACK (or FIN-less
/// ACK with data) picks an existing connection up in `ESTABLISHED`, like Linux's
/// `nf_conntrack_tcp_loose=1`, which lets flows survive a fastpath restart.
pub fn initial_state(flags: TcpFlags, loose_pickup: bool) -> Option<TcpState> {
    match classify(flags) {
        Segment::Syn => Some(TcpState::SynSent),
        Segment::Ack if loose_pickup => Some(TcpState::Established),
        _ => None,
    }
}

/// One step of the state machine for a segment travelling in the original direction
/// (`reply == false`, the side that sent the first SYN) or the reply direction.
pub fn step(state: TcpState, flags: TcpFlags, reply: bool) -> TcpStep {
    use TcpState::*;
    use TcpStep::{Ignore, Invalid, To};
    let seg = classify(flags);
    match (seg, reply) {
        // RST closes from any state, in either direction.
        (Segment::Rst, _) => To(Close),
        (Segment::None, _) => Invalid,
        (Segment::Syn, false) => match state {
            SynSent => To(SynSent),          // retransmitted SYN
            SynSent2 => To(SynSent2),        // late retransmission during simultaneous open
            TimeWait | Close => To(SynSent), // reopened connection
            _ => Ignore,                     // receiver will answer with RST or a challenge ACK
        },
        (Segment::Syn, true) => match state {
            SynSent | SynSent2 => To(SynSent2), // simultaneous open
            _ => Invalid,
        },
        (Segment::SynAck, false) => match state {
            SynSent2 => To(SynRecv), // simultaneous open answered
            SynSent => Invalid,      // the client cannot answer its own SYN
            _ => Ignore,
        },
        (Segment::SynAck, true) => match state {
            SynSent | SynSent2 => To(SynRecv),
            _ => Ignore, // retransmitted SYN-ACK
        },
        (Segment::Fin, _) => match state {
            SynRecv | Established => To(FinWait),
            FinWait | CloseWait | LastAck => To(LastAck),
            TimeWait => To(TimeWait),
            Close => To(Close),
            SynSent | SynSent2 => Invalid,
        },
        (Segment::Ack, false) => match state {
            SynRecv | Established => To(Established),
            FinWait | CloseWait => To(CloseWait),
            LastAck | TimeWait => To(TimeWait),
            Close => To(Close),
            SynSent | SynSent2 => Invalid, // no SYN-ACK seen yet
        },
        (Segment::Ack, true) => match state {
            SynRecv => To(SynRecv), // may answer a late retransmitted SYN
            Established => To(Established),
            FinWait | CloseWait => To(CloseWait),
            LastAck | TimeWait => To(TimeWait),
            Close => To(Close),
            SynSent | SynSent2 => Ignore, // possibly a half-open connection
        },
    }
}

#[cfg(test)]
mod tests {
    use super::TcpState::*;
    use super::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const FIN: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);
    const ORIG: bool = false;
    const REPLY: bool = true;

    /// The whole table, one row per (segment, direction), one column per state, in the order of
    /// `TcpState::ALL`: sSS sSR sES sFW sCW sLA sTW sCL sS2. `I` = ignore, `X` = invalid.
    #[test]
    fn every_transition_matches_the_table() {
        #[derive(Clone, Copy)]
        enum E {
            S(TcpState),
            I,
            X,
        }
        use E::{I, S, X};
        let rows: [(TcpFlags, bool, [E; 9]); 12] = [
            (
                SYN,
                ORIG,
                [
                    S(SynSent),
                    I,
                    I,
                    I,
                    I,
                    I,
                    S(SynSent),
                    S(SynSent),
                    S(SynSent2),
                ],
            ),
            (SYNACK, ORIG, [X, I, I, I, I, I, I, I, S(SynRecv)]),
            (
                FIN,
                ORIG,
                [
                    X,
                    S(FinWait),
                    S(FinWait),
                    S(LastAck),
                    S(LastAck),
                    S(LastAck),
                    S(TimeWait),
                    S(Close),
                    X,
                ],
            ),
            (
                ACK,
                ORIG,
                [
                    X,
                    S(Established),
                    S(Established),
                    S(CloseWait),
                    S(CloseWait),
                    S(TimeWait),
                    S(TimeWait),
                    S(Close),
                    X,
                ],
            ),
            (RST, ORIG, [S(Close); 9]),
            (TcpFlags::NONE, ORIG, [X; 9]),
            (SYN, REPLY, [S(SynSent2), X, X, X, X, X, X, X, S(SynSent2)]),
            (SYNACK, REPLY, [S(SynRecv), I, I, I, I, I, I, I, S(SynRecv)]),
            (
                FIN,
                REPLY,
                [
                    X,
                    S(FinWait),
                    S(FinWait),
                    S(LastAck),
                    S(LastAck),
                    S(LastAck),
                    S(TimeWait),
                    S(Close),
                    X,
                ],
            ),
            (
                ACK,
                REPLY,
                [
                    I,
                    S(SynRecv),
                    S(Established),
                    S(CloseWait),
                    S(CloseWait),
                    S(TimeWait),
                    S(TimeWait),
                    S(Close),
                    I,
                ],
            ),
            (RST, REPLY, [S(Close); 9]),
            (TcpFlags::NONE, REPLY, [X; 9]),
        ];
        for (flags, reply, row) in rows {
            for (state, want) in TcpState::ALL.into_iter().zip(row) {
                let want = match want {
                    S(s) => TcpStep::To(s),
                    I => TcpStep::Ignore,
                    X => TcpStep::Invalid,
                };
                assert_eq!(
                    step(state, flags, reply),
                    want,
                    "{state:?} {flags:?} reply={reply}"
                );
            }
        }
    }

    #[test]
    fn flag_priority_is_rst_syn_fin_ack() {
        let all = TcpFlags(TcpFlags::RST | TcpFlags::SYN | TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(step(Established, all, ORIG), TcpStep::To(Close));
        let synfin = TcpFlags(TcpFlags::SYN | TcpFlags::FIN);
        assert_eq!(step(SynSent, synfin, ORIG), TcpStep::To(SynSent));
    }

    #[test]
    fn initial_states() {
        assert_eq!(initial_state(SYN, false), Some(SynSent));
        assert_eq!(initial_state(ACK, true), Some(Established));
        assert_eq!(initial_state(ACK, false), None);
        assert_eq!(initial_state(SYNACK, true), None);
        assert_eq!(initial_state(FIN, true), None);
        assert_eq!(initial_state(RST, true), None);
    }

    #[test]
    fn full_handshake_and_close() {
        let mut s = initial_state(SYN, false).unwrap();
        for (flags, reply, want) in [
            (SYNACK, REPLY, SynRecv),
            (ACK, ORIG, Established),
            (FIN, ORIG, FinWait),
            (ACK, REPLY, CloseWait),
            (FIN, REPLY, LastAck),
            (ACK, ORIG, TimeWait),
        ] {
            match step(s, flags, reply) {
                TcpStep::To(next) => s = next,
                other => panic!("{s:?} {flags:?}: {other:?}"),
            }
            assert_eq!(s, want);
        }
        assert_eq!(TcpState::from_index(s as u8), Some(TimeWait));
        assert_eq!(TcpState::from_index(9), None);
    }
}
