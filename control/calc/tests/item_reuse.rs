//! The selector index knows endpoints by number, and the number of a removed endpoint goes
//! to the next new one: nothing the removed endpoint matched may stick to its successor.

mod common;
use common::*;
use tortie_calc::{EndpointId, IpSetMember, PolicyId};
use tortie_model::{Kind, ResourceKey};

fn members(graph: &tortie_calc::CalcGraph) -> Vec<Vec<IpSetMember>> {
    graph
        .ip_set_ids()
        .iter()
        .map(|id| graph.ip_set_members(id).unwrap_or_default())
        .collect()
}

fn net(text: &str) -> IpSetMember {
    IpSetMember::Net(text.parse().unwrap())
}

#[test]
fn a_new_endpoint_inherits_nothing_from_the_one_whose_number_it_reuses() {
    let mut docs = base();
    docs.push(gnp(
        "to-b",
        "  selector: app == 'b'\n  ingress:\n  - action: Allow\n    source:\n      selector: app == 'a'\n",
    ));
    let mut graph = graph(&docs);
    graph.flush();
    assert!(members(&graph).contains(&vec![net("10.0.1.1/32")]));
    let policy = PolicyId::Global {
        name: "to-b".into(),
    };
    let b = EndpointId::Workload {
        namespace: "ns1".into(),
        name: "node1-k8s-b-eth0".into(),
    };
    assert_eq!(graph.endpoints_using_policy(&policy), vec![b.clone()]);

    // `a` (app=a, the rule's source) and `b` (selected by the policy) leave; two endpoints
    // with other labels arrive and take their numbers.
    for name in ["a", "b"] {
        graph.delete(&ResourceKey {
            kind: Kind::WorkloadEndpoint,
            namespace: "ns1".into(),
            name: format!("node1-k8s-{name}-eth0"),
        });
    }
    for r in resources(&[
        pod("ns1", "x", "10.0.1.8/32", &[("app", "x")]),
        pod("ns1", "y", "10.0.1.9/32", &[("app", "y")]),
    ]) {
        graph.upsert(&r);
    }
    graph.flush();
    assert!(
        members(&graph).iter().all(|m| m.is_empty()),
        "{:?}",
        members(&graph)
    );
    assert!(graph.endpoints_using_policy(&policy).is_empty());
    let x = EndpointId::Workload {
        namespace: "ns1".into(),
        name: "node1-k8s-x-eth0".into(),
    };
    let plan = graph.plan(&x).expect("x exists");
    assert!(plan.ingress.normal.is_empty(), "{plan:?}");

    // The labels come back on new endpoints: matched again, by their own addresses.
    for r in resources(&[
        pod("ns1", "a2", "10.0.1.21/32", &[("app", "a")]),
        pod("ns1", "b2", "10.0.1.22/32", &[("app", "b")]),
    ]) {
        graph.upsert(&r);
    }
    graph.flush();
    assert!(members(&graph).contains(&vec![net("10.0.1.21/32")]));
    let b2 = EndpointId::Workload {
        namespace: "ns1".into(),
        name: "node1-k8s-b2-eth0".into(),
    };
    assert_eq!(graph.endpoints_using_policy(&policy), vec![b2]);
}
