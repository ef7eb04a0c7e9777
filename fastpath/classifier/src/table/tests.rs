use super::*;
use crate::entry::F_PROTO;

fn entry(src: u32, prio: u32) -> Entry<u32> {
    Entry {
        src,
        dst: 0,
        sp_lo: 0,
        sp_hi: u16::MAX,
        dp_lo: 80,
        dp_hi: 80,
        src_len: 32,
        dst_len: 0,
        proto: 6,
        flags: F_PROTO,
        prio,
        payload: prio,
        next: NIL,
    }
}

fn key(src: u32) -> KeyT<u32> {
    KeyT {
        src,
        dst: 9,
        src_port: 1,
        dst_port: 80,
        proto: 6,
    }
}

fn find(t: &Table<u32>, src: u32) -> Option<u32> {
    let k = key(src);
    t.lookup(&k, k.port_word(), 0, u32::MAX, &mut |_, _| true)
        .map(|e| e.prio)
}

fn tuple(src: u8) -> Tuple {
    Tuple {
        src,
        dst: 0,
        sp: 0,
        dp: 16,
        proto: 8,
    }
}

#[test]
fn chains_stay_sorted_and_lookups_take_the_best() {
    let mut t = Table::new(tuple(24));
    assert_eq!(t.insert(entry(0x0A00_0001, 50)).unwrap(), 1);
    assert_eq!(t.insert(entry(0x0A00_0002, 10)).unwrap(), 2);
    assert_eq!(t.insert(entry(0x0A00_0003, 30)).unwrap(), 3);
    assert_eq!(t.best, 10);
    assert_eq!(find(&t, 0x0A00_0001), Some(50));
    assert_eq!(find(&t, 0x0A00_0003), Some(30));
    assert_eq!(find(&t, 0x0A00_0004), None);
    let prios: Vec<u32> = t
        .colliding(&entry(0x0A00_0009, 0))
        .iter()
        .map(|e| e.prio)
        .collect();
    assert_eq!(prios, vec![10, 30, 50]);
    assert_eq!(t.remove(&entry(0x0A00_0002, 10)).map(|e| e.prio), Some(10));
    assert_eq!(t.best, 30);
    assert!(t.remove(&entry(0x0A00_0002, 10)).is_none());
}

#[test]
fn growth_deletion_and_compaction_keep_every_key_reachable() {
    let mut t = Table::new(tuple(32));
    for i in 0..2000u32 {
        t.insert(entry(i.wrapping_mul(2_654_435_761), i)).unwrap();
    }
    assert_eq!(t.len(), 2000);
    // Backward-shift deletion of every third key must not cut any probe run.
    for i in (0..2000u32).step_by(3) {
        assert!(t.remove(&entry(i.wrapping_mul(2_654_435_761), i)).is_some());
    }
    let check = |t: &Table<u32>| {
        for i in 0..2000u32 {
            let want = (i % 3 != 0).then_some(i);
            assert_eq!(find(t, i.wrapping_mul(2_654_435_761)), want, "key {i}");
        }
    };
    check(&t);
    t.compact();
    check(&t);
    assert_eq!(t.shape().0, 2000 - 667);
    // The compacted table is not a power of two long: deletion and growth must still wrap.
    assert_ne!(t.slots.len().count_ones(), 1);
    for i in (1..2000u32).step_by(3) {
        assert!(t.remove(&entry(i.wrapping_mul(2_654_435_761), i)).is_some());
    }
    for i in 2000..2600u32 {
        t.insert(entry(i.wrapping_mul(2_654_435_761), i)).unwrap();
    }
    for i in 0..2600u32 {
        let want = (i >= 2000 || i % 3 == 2).then_some(i);
        assert_eq!(
            find(&t, i.wrapping_mul(2_654_435_761)),
            want,
            "key {i} after compaction"
        );
    }
}

#[test]
fn priority_bounds_cut_the_chain_walk() {
    let mut t = Table::new(tuple(24));
    t.insert(entry(0x0A00_0001, 5)).unwrap();
    t.insert(entry(0x0A00_0001, 7)).unwrap();
    let k = key(0x0A00_0001);
    let got = |min, best| {
        t.lookup(&k, k.port_word(), min, best, &mut |_, _| true)
            .map(|e| e.prio)
    };
    assert_eq!(got(0, u32::MAX), Some(5));
    assert_eq!(got(6, u32::MAX), Some(7));
    assert_eq!(got(0, 5), None);
    assert_eq!(got(8, u32::MAX), None);
}
