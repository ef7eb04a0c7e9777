//! Index tests: hand-written scenarios, and a property test replaying random update sequences
//! against a brute-force evaluation of every selector against every item.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{MatchEvent, SelectorIndex};
use crate::{LabelMap, Selector};

type Index = SelectorIndex<u32, u32, u32>;
type Events = Vec<MatchEvent<u32, u32>>;

fn labels(pairs: &[(&str, &str)]) -> LabelMap {
    pairs.iter().copied().collect()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("test selector parses")
}

fn started(selector: u32, item: u32) -> MatchEvent<u32, u32> {
    MatchEvent::Started { selector, item }
}

fn stopped(selector: u32, item: u32) -> MatchEvent<u32, u32> {
    MatchEvent::Stopped { selector, item }
}

#[test]
fn selector_then_items() {
    let mut index = Index::new();
    let mut events = Events::new();
    index.update_selector(1, sel("app == 'web'"), &mut events);
    assert!(events.is_empty());
    index.update_item(10, labels(&[("app", "web")]), vec![], &mut events);
    index.update_item(11, labels(&[("app", "db")]), vec![], &mut events);
    assert_eq!(events, [started(1, 10)]);
    events.clear();
    index.update_item(11, labels(&[("app", "web")]), vec![], &mut events);
    index.update_item(
        10,
        labels(&[("app", "web"), ("x", "y")]),
        vec![],
        &mut events,
    );
    assert_eq!(events, [started(1, 11)]);
    events.clear();
    index.update_item(10, labels(&[]), vec![], &mut events);
    assert_eq!(events, [stopped(1, 10)]);
    assert_eq!(index.items_matching(&1).copied().collect::<Vec<_>>(), [11]);
    assert_eq!(
        index.selectors_matching(&11).copied().collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn items_then_selectors_and_replacement() {
    let mut index = Index::new();
    let mut events = Events::new();
    for (id, app) in [(3, "web"), (1, "web"), (2, "db")] {
        index.update_item(id, labels(&[("app", app)]), vec![], &mut events);
    }
    index.update_selector(7, sel("app == 'web'"), &mut events);
    assert_eq!(events, [started(7, 1), started(7, 3)]);
    events.clear();
    index.update_selector(7, sel("app in {'web', 'db'} && app != 'web'"), &mut events);
    assert_eq!(events, [stopped(7, 1), stopped(7, 3), started(7, 2)]);
    events.clear();
    index.update_selector(8, sel("!has(app)"), &mut events);
    assert!(events.is_empty());
    index.update_selector(9, sel("all()"), &mut events);
    assert_eq!(events, [started(9, 1), started(9, 2), started(9, 3)]);
    events.clear();
    index.remove_selector(&9, &mut events);
    index.remove_selector(&42, &mut events);
    assert_eq!(events, [stopped(9, 1), stopped(9, 2), stopped(9, 3)]);
    events.clear();
    index.remove_item(&2, &mut events);
    assert_eq!(events, [stopped(7, 2)]);
    assert_eq!(index.item_count(), 2);
    assert_eq!(index.selector_count(), 2);
}

#[test]
fn parents_are_inherited_with_own_labels_first() {
    let mut index = Index::new();
    let mut events = Events::new();
    index.update_selector(1, sel("pcns.team == 'blue' && app == 'web'"), &mut events);
    index.update_selector(2, sel("has(pcns.team)"), &mut events);
    index.update_item(10, labels(&[("app", "web")]), vec![100, 200], &mut events);
    assert!(events.is_empty());
    index.update_parent(200, labels(&[("pcns.team", "red")]), &mut events);
    assert_eq!(events, [started(2, 10)]);
    events.clear();
    // The first parent takes priority over later ones.
    index.update_parent(100, labels(&[("pcns.team", "blue")]), &mut events);
    assert_eq!(events, [started(1, 10)]);
    events.clear();
    // Own labels override inherited ones.
    index.update_item(
        10,
        labels(&[("app", "web"), ("pcns.team", "green")]),
        vec![100, 200],
        &mut events,
    );
    assert_eq!(events, [stopped(1, 10)]);
    events.clear();
    index.update_item(10, labels(&[("app", "web")]), vec![100], &mut events);
    assert_eq!(events, [started(1, 10)]);
    events.clear();
    index.remove_parent(&100, &mut events);
    assert_eq!(events, [stopped(1, 10), stopped(2, 10)]);
    assert_eq!(
        index.effective_labels(&10),
        Some(&labels(&[("app", "web")]))
    );
}

#[test]
fn unsatisfiable_selectors_match_nothing() {
    let mut index = Index::new();
    let mut events = Events::new();
    index.update_item(1, labels(&[("a", "x")]), vec![], &mut events);
    index.update_selector(1, sel("a == 'x' && a == 'y'"), &mut events);
    index.update_selector(2, sel("a in {}"), &mut events);
    assert!(events.is_empty());
    index.update_selector(2, sel("a not in {}"), &mut events);
    assert_eq!(events, [started(2, 1)]);
}

/// One step of a random workload over small id spaces.
#[derive(Debug, Clone)]
enum Op {
    Selector(u32, usize),
    RemoveSelector(u32),
    Item(u32, Vec<(usize, usize)>, Vec<u32>),
    RemoveItem(u32),
    Parent(u32, Vec<(usize, usize)>),
    RemoveParent(u32),
}

const SELECTORS: &[&str] = &[
    "all()",
    "a == 'x'",
    "a == 'y'",
    "a in {'x', 'y'}",
    "a not in {'x'}",
    "has(b)",
    "!has(b)",
    "a != 'x'",
    "a == 'x' && b == 'y'",
    "a == 'x' || b == 'x'",
    "(a == 'x' || a == 'y') && has(c)",
    "b contains 'x' && !a in {'y'}",
    "a == 'x' && a == 'y'",
    "c starts with 'y' || !has(a)",
    "global()",
];
const KEYS: &[&str] = &["a", "b", "c"];
const VALUES: &[&str] = &["x", "y", "xy"];

fn pairs() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6u32, 0..SELECTORS.len()).prop_map(|(id, s)| Op::Selector(id, s)),
        1 => (0..6u32).prop_map(Op::RemoveSelector),
        4 => (0..8u32, pairs(), prop::collection::vec(0..3u32, 0..3))
            .prop_map(|(id, labels, parents)| Op::Item(id, labels, parents)),
        1 => (0..8u32).prop_map(Op::RemoveItem),
        2 => (0..3u32, pairs()).prop_map(|(id, labels)| Op::Parent(id, labels)),
        1 => (0..3u32).prop_map(Op::RemoveParent),
    ]
}

fn to_map(pairs: &[(usize, usize)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (KEYS[*k].to_string(), VALUES[*v].to_string()))
        .collect()
}

/// The state a brute-force model keeps: everything, evaluated from scratch each time.
#[derive(Default)]
struct Model {
    selectors: BTreeMap<u32, Selector>,
    items: BTreeMap<u32, (BTreeMap<String, String>, Vec<u32>)>,
    parents: BTreeMap<u32, BTreeMap<String, String>>,
}

impl Model {
    fn effective(&self, item: &(BTreeMap<String, String>, Vec<u32>)) -> BTreeMap<String, String> {
        let mut effective = item.0.clone();
        for parent in &item.1 {
            for (k, v) in self.parents.get(parent).into_iter().flatten() {
                effective.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        effective
    }

    fn relation(&self) -> BTreeSet<(u32, u32)> {
        let mut relation = BTreeSet::new();
        for (sid, selector) in &self.selectors {
            for (iid, item) in &self.items {
                if selector.matches(&self.effective(item)) {
                    relation.insert((*sid, *iid));
                }
            }
        }
        relation
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn events_track_brute_force(ops in prop::collection::vec(op(), 1..40)) {
        let mut index = Index::new();
        let mut model = Model::default();
        let mut relation = BTreeSet::new();
        for op in &ops {
            let mut events = Events::new();
            match op {
                Op::Selector(id, s) => {
                    model.selectors.insert(*id, sel(SELECTORS[*s]));
                    index.update_selector(*id, sel(SELECTORS[*s]), &mut events);
                }
                Op::RemoveSelector(id) => {
                    model.selectors.remove(id);
                    index.remove_selector(id, &mut events);
                }
                Op::Item(id, pairs, parents) => {
                    let map = to_map(pairs);
                    let label_map: LabelMap = map.iter().collect();
                    model.items.insert(*id, (map, parents.clone()));
                    index.update_item(*id, label_map, parents.clone(), &mut events);
                }
                Op::RemoveItem(id) => {
                    model.items.remove(id);
                    index.remove_item(id, &mut events);
                }
                Op::Parent(id, pairs) => {
                    let map = to_map(pairs);
                    let label_map: LabelMap = map.iter().collect();
                    model.parents.insert(*id, map);
                    index.update_parent(*id, label_map, &mut events);
                }
                Op::RemoveParent(id) => {
                    model.parents.remove(id);
                    index.remove_parent(id, &mut events);
                }
            }
            // Stops come first, then starts, each group sorted; no event is redundant.
            let first_start = events
                .iter()
                .position(|e| matches!(e, MatchEvent::Started { .. }))
                .unwrap_or(events.len());
            let only_starts_after = events[first_start..]
                .iter()
                .all(|e| matches!(e, MatchEvent::Started { .. }));
            prop_assert!(only_starts_after, "events out of order: {:?}", events);
            prop_assert!(events[..first_start].is_sorted() && events[first_start..].is_sorted());
            for event in &events {
                match event {
                    MatchEvent::Started { selector, item } => {
                        prop_assert!(relation.insert((*selector, *item)), "duplicate {:?}", event);
                    }
                    MatchEvent::Stopped { selector, item } => {
                        prop_assert!(relation.remove(&(*selector, *item)), "spurious {:?}", event);
                    }
                }
            }
            let expected = model.relation();
            prop_assert_eq!(&relation, &expected, "after {:?}", op);
            for (sid, iid) in &expected {
                prop_assert!(index.is_match(sid, iid));
            }
            let from_queries: BTreeSet<(u32, u32)> = model
                .selectors
                .keys()
                .flat_map(|s| index.items_matching(s).map(move |i| (*s, *i)))
                .collect();
            prop_assert_eq!(&from_queries, &expected);
        }
    }
}
