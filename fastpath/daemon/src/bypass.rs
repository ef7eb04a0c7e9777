//! `--bypass`: forwarding without the pipeline, a measurement aid.
//!
//! With `--bypass` the workers still receive through the same AF_XDP sockets, steering
//! program and TX path, but instead of [`tortie_pipeline::Pipeline::process`] every frame is
//! cross-connected at layer 2: a frame from the uplink goes out on the first workload
//! interface the worker serves (destination MAC = that endpoint's MAC from the tables), a
//! frame from a workload goes out on the uplink (destination MAC = `settings.gateway_mac`);
//! the source MAC is `settings.uplink_mac` either way. Frames from any other interface (the
//! host veth) are dropped. No policy, conntrack, routing, NAT or TTL: the difference between
//! a run with and without `--bypass` is the pipeline's cost (`tortie-perf compare`'s
//! `tortie / tortie-bypass` ratio). Not for production use.

use tortie_pipeline::Generation;

/// Where a bypassed frame goes: the output interface and the MACs to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Target {
    /// Output interface index.
    pub if_index: u32,
    /// Destination MAC written into the frame.
    pub dst: [u8; 6],
    /// Source MAC written into the frame.
    pub src: [u8; 6],
}

/// The cross-connect for frames received on `rx_if`, given the interfaces this worker has
/// sockets on (`served`, in attach order). `None`: drop.
pub fn target(g: &Generation, rx_if: u32, served: &[u32]) -> Option<L2Target> {
    let s = &g.settings;
    if rx_if == 0 {
        return None;
    }
    if rx_if == s.uplink_if {
        let (if_index, ep) = served.iter().find_map(|&i| {
            if i == s.uplink_if || i == s.host_if {
                return None;
            }
            g.endpoint_on(i).map(|ep| (i, ep))
        })?;
        return Some(L2Target {
            if_index,
            dst: g.endpoint(ep).mac,
            src: s.uplink_mac,
        });
    }
    if rx_if != s.host_if && g.endpoint_on(rx_if).is_some() && served.contains(&s.uplink_if) {
        return Some(L2Target {
            if_index: s.uplink_if,
            dst: s.gateway_mac,
            src: s.uplink_mac,
        });
    }
    None
}

/// Writes the target's MACs into an Ethernet frame (no-op on a runt frame).
pub fn rewrite(frame: &mut [u8], t: &L2Target) {
    if frame.len() >= 14 {
        frame[0..6].copy_from_slice(&t.dst);
        frame[6..12].copy_from_slice(&t.src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tortie_abi::{Endpoint, EndpointId, EndpointKind, Generation as GenId, Settings, Tables};

    fn tables() -> Tables {
        let ep = |id: u32, if_index: u32, mac: u8| Endpoint {
            id: EndpointId(id),
            if_index,
            kind: EndpointKind::Workload,
            mac: [2, 0, 0, 0, 0, mac],
            addrs: Vec::new(),
            ingress: None,
            egress: None,
            untracked_ingress: None,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress: None,
            forward_egress: None,
        };
        Tables {
            settings: Settings {
                uplink_if: 2,
                host_if: 3,
                uplink_mac: [2, 0, 0, 0, 1, 1],
                gateway_mac: [2, 0, 0, 0, 1, 9],
                ..Settings::default()
            },
            endpoints: vec![ep(1, 7, 7), ep(2, 8, 8)],
            ..Tables::default()
        }
    }

    #[test]
    fn uplink_goes_to_the_first_served_workload_and_back() {
        let g = Generation::build(GenId(1), &tables()).unwrap();
        let t = target(&g, 2, &[2, 3, 8, 7]).unwrap();
        assert_eq!(t.if_index, 8, "first workload in attach order");
        assert_eq!(t.dst, [2, 0, 0, 0, 0, 8]);
        assert_eq!(t.src, [2, 0, 0, 0, 1, 1]);
        let back = target(&g, 7, &[2, 3, 8, 7]).unwrap();
        assert_eq!(back.if_index, 2);
        assert_eq!(back.dst, [2, 0, 0, 0, 1, 9]);
        // The host veth and unknown interfaces drop; no workload or no uplink served drops.
        assert_eq!(target(&g, 3, &[2, 3, 7]), None);
        assert_eq!(target(&g, 99, &[2, 3, 7]), None);
        assert_eq!(target(&g, 2, &[2, 3]), None);
        assert_eq!(target(&g, 7, &[3, 7]), None);
        let mut f = [0u8; 20];
        rewrite(&mut f, &t);
        assert_eq!(&f[..6], &t.dst);
        assert_eq!(&f[6..12], &t.src);
        let mut runt = [0u8; 10];
        rewrite(&mut runt, &t);
        assert_eq!(runt, [0u8; 10]);
    }
}
