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

/// A named port in `notPorts` compiles (split on the port) instead of failing closed: no
/// endpoint is reported, and the selected endpoint's ingress program excludes exactly the
/// endpoints that declare the port.
#[test]
fn named_port_in_not_ports_compiles() {
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
    assert!(
        compiler.failed_closed().is_empty(),
        "{:?}",
        compiler.failed_closed()
    );
    // The rule became two pieces: port 8080 unless the destination declares it, and every
    // other port.
    let pieces: Vec<_> = ops
        .iter()
        .filter_map(|op| match op {
            Op::UpsertProgram(p) => Some(p),
            _ => None,
        })
        .flat_map(|p| p.rules())
        .filter(|r| r.matches.protocol == Some(6) && r.action == tortie_abi::Action::Allow)
        .collect();
    assert!(
        pieces.iter().any(|r| r.matches.dst_ports.ranges
            == [tortie_abi::PortRange { lo: 8080, hi: 8080 }]
            && !r.matches.dst.not_sets.is_empty()),
        "{pieces:?}"
    );
    assert!(
        pieces
            .iter()
            .any(|r| r.matches.dst_ports.not_ranges
                == [tortie_abi::PortRange { lo: 8080, hi: 8080 }]),
        "{pieces:?}"
    );
}
