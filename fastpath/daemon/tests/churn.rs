//! Pod churn: a workload removed and added back many times must not drain the worker's
//! frame pool (each closed socket gives back the frames it held). Needs root; as non-root it
//! says so and passes.

mod common;

use std::time::Duration;

use common::*;
use tortie_abi::Op;

const WAIT: Duration = Duration::from_secs(10);
const CYCLES: usize = 12;
const FREE: &str = "tortie_fastpath_free_frames";

#[test]
fn workload_churn_keeps_every_frame() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces and AF_XDP");
        return;
    }
    let topo = Topo::new("churn", true);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let mut control = Control::new(&topo.ring_path(), topo.tables());
    control.snapshot();
    let daemon = Daemon::start(&topo, 19095, &["--workers", "1"]);
    assert!(
        wait_for(WAIT, || daemon
            .get("/readyz")
            .is_some_and(|(code, _)| code == 200)
            && topo.xdp_attached(&b.host_dev)),
        "not ready; log:\n{}",
        daemon.log()
    );
    // Every interface's socket has posted its fill ring: the free count settles.
    let mut start = 0;
    assert!(wait_for(WAIT, || {
        let now = daemon.metric(FREE, &["worker=\"0\""]);
        let settled = now > 0 && now == start;
        start = now;
        std::thread::sleep(Duration::from_millis(300));
        settled
    }));
    let (eb, rb) = (
        control.tables.endpoints[1].clone(),
        control.tables.routes[1],
    );
    for cycle in 0..CYCLES {
        control.delta(vec![Op::RemoveRoute(rb.prefix), Op::RemoveEndpoint(eb.id)]);
        assert!(
            wait_for(WAIT, || !topo.xdp_attached(&b.host_dev)),
            "cycle {cycle}: not detached"
        );
        control.delta(vec![Op::UpsertEndpoint(eb.clone()), Op::UpsertRoute(rb)]);
        assert!(
            wait_for(WAIT, || topo.xdp_attached(&b.host_dev)
                && bound(&daemon, b.if_index)),
            "cycle {cycle}: not attached again; log:\n{}",
            daemon.log()
        );
        // Back to the starting count once the new socket has posted its fill ring (without
        // recovery each cycle would lose up to 1024 frames).
        let ok = wait_for(WAIT, || daemon.metric(FREE, &["worker=\"0\""]) == start);
        assert!(
            ok,
            "cycle {cycle}: free frames {} != {start}; log:\n{}",
            daemon.metric(FREE, &["worker=\"0\""]),
            daemon.log()
        );
    }
    // And it still forwards to the churned workload.
    let got = udp_probe(&a.ns, a.addr, &b.ns, b.addr, 5000, 10, WAIT);
    assert_eq!(got, 10, "UDP a->b after churn; log:\n{}", daemon.log());
}

/// Whether `/status` shows a bound socket on `if_index`.
fn bound(daemon: &Daemon, if_index: u32) -> bool {
    let Some((200, body)) = daemon.get("/status") else {
        return false;
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["interfaces"].as_array().is_some_and(|list| {
        list.iter().any(|i| {
            i["if_index"].as_u64() == Some(u64::from(if_index)) && i["queues"].as_u64() >= Some(1)
        })
    })
}
