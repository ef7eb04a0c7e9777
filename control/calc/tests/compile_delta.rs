//! A change produces a delta, not a rebuild: one label change re-sends only the IP sets whose
//! membership changed and the programs of the endpoints it affects.

mod common;
use common::*;
use tortie_abi::Op;
use tortie_calc::compile::FastpathCompiler;

#[test]
fn label_change_touches_only_affected_sets_and_programs() {
    let mut docs = base();
    docs.push(np(
        "ns1",
        "from-a",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    source:\n      selector: app == 'a'\n",
    ));
    for i in 0..20 {
        docs.push(pod(
            "ns2",
            &format!("bulk{i}"),
            &format!("10.0.9.{i}/32"),
            &[("app", "bulk")],
        ));
    }
    let mut graph = graph(&docs);
    let mut compiler = FastpathCompiler::new();
    let events = graph.flush();
    let full = compiler.delta(&graph, &events);
    assert!(full.len() > 40, "{}", full.len());

    // c (ns2) gets app=a: it is outside ns1, so the namespaced rule's set does not change,
    // and no policy selects c either way: nothing at all is sent.
    let mut changed = docs.clone();
    changed[4] = pod("ns2", "c", "10.0.2.1/32", &[("app", "a")]);
    for r in resources(&changed[4..5]) {
        graph.upsert(&r);
    }
    let events = graph.flush();
    let ops = compiler.delta(&graph, &events);
    assert!(ops.is_empty(), "{ops:?}");

    // A second ns1 pod labelled app=a joins the rule's IP set: one set re-sent, plus its
    // own two programs.
    docs.push(pod("ns1", "a2", "10.0.1.3/32", &[("app", "a")]));
    for r in resources(&docs[docs.len() - 1..]) {
        graph.upsert(&r);
    }
    let events = graph.flush();
    let ops = compiler.delta(&graph, &events);
    let sets: Vec<_> = ops
        .iter()
        .filter(|op| matches!(op, Op::UpsertIpSet(_)))
        .collect();
    assert_eq!(sets.len(), 1, "{ops:?}");
    let Op::UpsertIpSet(set) = sets[0] else {
        unreachable!()
    };
    assert_eq!(set.members.len(), 2);
    assert_eq!(ops.len(), 3, "{ops:?}");
}

/// A rule the table format cannot express (a named port in `notPorts`) is not skipped: the
/// endpoints it selects get deny-all programs, and the compiler names them.
#[test]
fn inexpressible_policy_fails_closed() {
    let mut docs = base();
    docs.push(np(
        "ns1",
        "not-named",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      notPorts: [http]\n",
    ));
    let mut graph = graph(&docs);
    let mut compiler = FastpathCompiler::new();
    let events = graph.flush();
    let ops = compiler.delta(&graph, &events);
    assert_eq!(
        compiler.failed_closed().len(),
        1,
        "{:?}",
        compiler.failed_closed()
    );
    let reason = compiler.failed_closed().values().next().unwrap();
    assert!(reason.contains("notPorts"), "{reason}");
    let deny_all = ops
        .iter()
        .filter(
            |op| matches!(op, Op::UpsertProgram(p) if p.tiers.is_empty() && p.profiles.is_empty()),
        )
        .count();
    assert_eq!(
        deny_all, 2,
        "ingress and egress of the failed endpoint deny everything"
    );
}
