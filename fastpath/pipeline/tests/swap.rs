//! Generation swap over the rtrb rings: workers pick up the newest generation between
//! batches and hand retired ones back to be freed by the config thread.

mod common;

use std::sync::Arc;

use common::*;
use tortie_pipeline::swap;
use tortie_pipeline::{DropReason, Generation};

fn generation(id: u64, t: &tortie_abi::Tables) -> Arc<Generation> {
    Arc::new(Generation::build(tortie_abi::Generation(id), t).unwrap())
}

#[test]
fn worker_switches_between_batches_and_returns_retired_generations() {
    let t = tables();
    let mut h = Harness::new(&t);
    let (mut publisher, mut worker) = swap::channel(2);
    assert!(!worker.poll(&mut h.pipeline), "nothing published yet");

    // Generation 2 blackholes B.
    let mut t2 = t.clone();
    t2.routes.push(tortie_abi::Route {
        prefix: prefix(B, 32),
        target: tortie_abi::RouteTarget::Blackhole,
    });
    t2.routes
        .retain(|r| !(r.prefix == prefix(B, 32) && r.target != tortie_abi::RouteTarget::Blackhole));
    let g2 = generation(2, &t2);
    let weak2 = Arc::downgrade(&g2);
    publisher.publish(g2).unwrap();
    assert_eq!(
        h.one(IF_A, tcp4(MAC_A, A, B, 1, 80, "S", 64)).tx_if(),
        Some(IF_B),
        "old generation until poll"
    );
    assert!(worker.poll(&mut h.pipeline));
    assert_eq!(h.pipeline.generation().id, tortie_abi::Generation(2));
    let o = h.one(IF_A, tcp4(MAC_A, A, B, 2, 80, "S", 64));
    assert_eq!(
        o.disposition,
        tortie_pipeline::Disposition::Drop(DropReason::Blackhole)
    );

    // Two generations before the worker polls: it skips to the newest and retires both
    // its current one and the skipped one.
    let g3 = generation(3, &t);
    let weak3 = Arc::downgrade(&g3);
    publisher.publish(g3).unwrap();
    publisher.publish(generation(4, &t)).unwrap();
    assert!(
        publisher.publish(generation(5, &t)).is_err(),
        "forward ring of depth 2 is full"
    );
    assert!(worker.poll(&mut h.pipeline));
    assert_eq!(h.pipeline.generation().id, tortie_abi::Generation(4));
    // Retired generations are still alive until the config thread reclaims them.
    assert!(weak2.upgrade().is_some());
    assert_eq!(publisher.reclaim(), 2);
    assert!(weak2.upgrade().is_none(), "generation 2 freed by reclaim");
    assert!(
        weak3.upgrade().is_none(),
        "skipped generation 3 freed by reclaim"
    );
    // Established flows survive the swap.
    let before = h.pipeline.counters().flows_created;
    assert_eq!(
        h.one(IF_B, tcp4(MAC_B, B, A, 80, 1, "SA", 64)).tx_if(),
        Some(IF_A)
    );
    assert_eq!(
        h.pipeline.counters().flows_created,
        before,
        "the reply hit the flow made in generation 1"
    );
}

#[test]
fn rule_counters_restart_with_the_new_generation() {
    let t = tables();
    let mut h = Harness::new(&t);
    h.one(IF_A, tcp4(MAC_A, A, B, 1, 23, "S", 64));
    assert!(h.pipeline.counters().rule_hits().iter().sum::<u64>() > 0);
    let old = h.pipeline.swap_generation(generation(9, &t));
    assert_eq!(old.id, tortie_abi::Generation(1));
    assert_eq!(h.pipeline.counters().rule_hits().iter().sum::<u64>(), 0);
    assert_eq!(
        h.pipeline.counters().rule_hits().len(),
        h.pipeline.generation().rule_slots()
    );
}
