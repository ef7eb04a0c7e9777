//! Whole-pipeline properties on arbitrary and mutated frames: every frame ends sent or
//! counted (checked inside `Harness::send`), nothing panics, every IP frame the pipeline
//! forwards or builds decodes again, and those built from valid frames re-parse with
//! etherparse with valid checksums (a router does not verify transport checksums, so a
//! corrupt one goes out corrupt, incrementally updated).

mod common;

use common::*;
use proptest::prelude::*;
use tortie_pipeline::Disposition;

fn valid_frame() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let dst = prop_oneof![
        Just(A),
        Just(B),
        Just(OUTSIDE),
        Just(REMOTE_CROSS_SUBNET),
        Just(REMOTE_SAME_SUBNET),
        Just(FLOATING),
        Just(NODE)
    ];
    (
        0u8..5,
        dst,
        any::<u16>(),
        prop_oneof![Just(23u16), Just(80), any::<u16>()],
        1u8..=255,
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(kind, dst, sp, dp, ttl, payload)| match kind {
            0 => (IF_A, tcp4(MAC_A, A, dst, sp, dp, "S", ttl)),
            1 => (IF_B, udp4(MAC_B, B, dst, sp, dp, &payload)),
            2 => (UPLINK, tcp4(GATEWAY_MAC, OUTSIDE, dst, sp, dp, "SA", ttl)),
            3 => (IF_A, tcp6(MAC_A, A6, B6, sp, dp, "S", ttl)),
            _ => (UPLINK, udp4(GATEWAY_MAC, OUTSIDE, dst, sp, dp, &payload)),
        })
}

fn mutated() -> impl Strategy<Value = (u32, Vec<u8>, bool)> {
    (
        valid_frame(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        any::<bool>(),
    )
        .prop_map(|((rx, mut f), muts, cut, do_cut)| {
            for (i, v) in muts {
                let i = i % f.len();
                f[i] = v;
            }
            if do_cut {
                f.truncate(cut % (f.len() + 1));
            }
            (rx, f, false)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_are_accounted_for(frames in proptest::collection::vec((prop_oneof![Just(IF_A), Just(UPLINK), Just(99u32)], proptest::collection::vec(any::<u8>(), 0..128)), 1..32)) {
        let mut h = Harness::standard();
        h.send(&frames);
    }

    #[test]
    fn forwarded_frames_reparse_with_valid_checksums(frames in proptest::collection::vec(prop_oneof![3 => valid_frame().prop_map(|(r, f)| (r, f, true)), 1 => mutated()], 1..64)) {
        let mut h = Harness::standard();
        let input: Vec<(u32, Vec<u8>)> = frames.iter().map(|(r, f, _)| (*r, f.clone())).collect();
        // Twice, so the second batch meets the flows the first created.
        for _ in 0..2 {
            for (o, (_, _, valid)) in h.send(&input).into_iter().zip(&frames) {
                if let Disposition::Tx(i) = o.disposition
                    && i != HOST_IF
                    && o.bytes.len() >= 14
                    && matches!(u16::from_be_bytes([o.bytes[12], o.bytes[13]]), 0x0800 | 0x86dd)
                {
                    if *valid {
                        check(&o.bytes);
                    } else {
                        prop_assert!(tortie_wire::parse_frame(&o.bytes).is_ok());
                    }
                }
            }
        }
    }
}
