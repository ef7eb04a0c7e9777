//! Which policy programs a new flow passes: Calico's host endpoint semantics (normal
//! programs for the host's own traffic, `applyOnForward` programs for forwarded traffic,
//! nothing for a workload's ingress when the host opens the flow, nothing of the uplink host
//! endpoint for traffic out of an IP-in-IP tunnel, and only the far side's program for
//! traffic a doNotTrack rule allowed).

use tortie_abi as abi;

use super::{Generation, Target};

/// The programs a flow must pass, as [`Generation::flow_programs`] picks them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowPrograms {
    /// Program of the sending side: a workload's egress, a host endpoint's ingress (the
    /// host is the destination) or its `applyOnForward` ingress (forwarded traffic).
    pub from: Option<u32>,
    /// Program of the receiving side: a local workload's ingress, or the uplink host
    /// endpoint's egress (the host is the source) or `applyOnForward` egress (forwarded).
    pub to: Option<u32>,
}

/// How a packet reached the policy node: the endpoint it was received on and what the
/// earlier nodes found about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arrival {
    /// Receiving endpoint index (`None`: an interface without one, such as an uplink
    /// without a host endpoint).
    pub rx: Option<u32>,
    /// Decapsulated IP-in-IP: the packet came out of the tunnel, so the endpoint of the
    /// interface the outer packet arrived on has no say (the decap node also clears the
    /// receiving endpoint; this keeps the rule in one place for every caller).
    pub decapsulated: bool,
    /// A rule of the receiving endpoint's doNotTrack program allowed the packet: that
    /// allow stands in for the receiving endpoint's own program.
    pub untracked: bool,
}

impl Arrival {
    /// A packet received on endpoint `rx`, neither decapsulated nor untracked.
    pub fn on(rx: Option<u32>) -> Self {
        Self {
            rx,
            ..Self::default()
        }
    }
}

impl Generation {
    /// The programs a flow arriving as `arrival` and routed to `target` must pass, with
    /// Calico's host endpoint semantics:
    ///
    /// - normal host endpoint programs police only traffic of the host itself: arriving
    ///   through a host endpoint for the host (`Target::Host`), or sent by the host (from
    ///   the host interface) out of the uplink;
    /// - forwarded traffic (host endpoint to workload, workload to uplink, host endpoint to
    ///   uplink) passes the host endpoints' `applyOnForward` programs, where `None` allows,
    ///   plus the workloads' own programs;
    /// - a flow the host itself opens to a local workload skips the workload's ingress
    ///   program, as Felix's OUTPUT chain returns before any workload chain ("We don't
    ///   currently police host -> endpoint according to the endpoint's ingress policy",
    ///   felix/rules/static.go, `filterOutputChain`);
    /// - decapsulated IP-in-IP arrived on the tunnel, not on the uplink: no program of the
    ///   receiving side (in Calico it arrives on `tunl0`, which a host endpoint naming the
    ///   uplink does not cover); the receiving side's program still applies;
    /// - a packet a doNotTrack rule allowed skips the receiving endpoint's program but not
    ///   the other side's: Felix's raw-table allow sets the accept mark and NOTRACK, and its
    ///   filter FORWARD chain skips only the from-host-endpoint forward dispatch on that mark
    ///   ("Apply forward policy for the incoming Host endpoint if accept bit is clear"),
    ///   then jumps to the workload dispatch chains and the to-host-endpoint forward
    ///   dispatch unconditionally (felix/rules/static.go, `StaticFilterForwardChains`); for
    ///   the host itself the INPUT chain accepts the marked packet at once
    ///   (`acceptAlreadyAccepted`), which is `to: None` here.
    ///
    /// Workload-to-host traffic is further subject to DefaultEndpointToHostAction, which
    /// the policy node applies.
    #[inline]
    pub fn flow_programs(&self, arrival: Arrival, target: Target) -> FlowPrograms {
        let rx = arrival
            .rx
            .filter(|_| !arrival.decapsulated)
            .map(|i| self.endpoint(i));
        let from_host = rx.is_some_and(|e| e.host_interface);
        let from = rx
            .filter(|_| !arrival.untracked)
            .and_then(|e| match e.kind {
                abi::EndpointKind::Workload => e.egress,
                abi::EndpointKind::Host if e.host_interface => None,
                abi::EndpointKind::Host if target == Target::Host => e.ingress,
                abi::EndpointKind::Host => e.forward_in(),
            });
        let to = match target {
            Target::Local(_) if from_host => None,
            Target::Local(ep) => self.endpoint(ep).to_program(),
            // The uplink's host endpoint, resolved at build time.
            Target::Node { .. } | Target::Uplink if from_host => self.uplink_hep.egress,
            Target::Node { .. } | Target::Uplink => self.uplink_hep.forward_egress,
            Target::Host | Target::Blackhole | Target::Dangling => None,
        };
        FlowPrograms { from, to }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::DENSE_IF_LIMIT;

    const UPLINK: u32 = 1;
    const HOST_IF: u32 = 2;

    fn endpoint(
        id: u32,
        if_index: u32,
        kind: abi::EndpointKind,
        programs: [u32; 6],
    ) -> abi::Endpoint {
        let p = |i: usize| (programs[i] != 0).then_some(abi::ProgramId(programs[i]));
        abi::Endpoint {
            id: abi::EndpointId(id),
            if_index,
            kind,
            mac: [2, 0, 0, 0, 0, id as u8],
            addrs: vec![],
            ingress: p(0),
            egress: p(1),
            untracked_ingress: None,
            untracked_egress: None,
            pre_dnat: None,
            forward_ingress: p(2),
            forward_egress: p(3),
        }
    }

    /// Workload (index 0): ingress 1, egress 2. Uplink host endpoint (index 1): ingress 3,
    /// egress 4, forward ingress 5, forward egress 6 (program index = id - 1). The host
    /// interface is index 2.
    fn generation(hep_forward: bool) -> Generation {
        let fwd = if hep_forward { [5, 6] } else { [0, 0] };
        let tables = abi::Tables {
            settings: abi::Settings {
                uplink_if: UPLINK,
                host_if: HOST_IF,
                ..abi::Settings::default()
            },
            endpoints: vec![
                endpoint(1, 10, abi::EndpointKind::Workload, [1, 2, 0, 0, 0, 0]),
                endpoint(
                    2,
                    UPLINK,
                    abi::EndpointKind::Host,
                    [3, 4, fwd[0], fwd[1], 0, 0],
                ),
            ],
            programs: (1..=6)
                .map(|id| abi::PolicyProgram {
                    id: abi::ProgramId(id),
                    tiers: vec![],
                    profiles: vec![],
                })
                .collect(),
            ..abi::Tables::default()
        };
        Generation::build(abi::Generation(1), &tables).unwrap()
    }

    /// The uplink's host endpoint programs are resolved at build time: on a sparse
    /// interface index too, and to nothing when the uplink has no host endpoint.
    #[test]
    fn the_uplink_host_endpoint_is_resolved_at_build() {
        for uplink_if in [UPLINK, DENSE_IF_LIMIT + 5] {
            let mut tables = abi::Tables {
                settings: abi::Settings {
                    uplink_if,
                    host_if: HOST_IF,
                    ..abi::Settings::default()
                },
                endpoints: vec![
                    endpoint(1, 10, abi::EndpointKind::Workload, [1, 2, 0, 0, 0, 0]),
                    endpoint(2, uplink_if, abi::EndpointKind::Host, [3, 4, 5, 6, 0, 0]),
                ],
                programs: (1..=6)
                    .map(|id| abi::PolicyProgram {
                        id: abi::ProgramId(id),
                        tiers: vec![],
                        profiles: vec![],
                    })
                    .collect(),
                ..abi::Tables::default()
            };
            let g = Generation::build(abi::Generation(1), &tables).unwrap();
            assert_eq!(programs(&g, 10, Target::Uplink), (Some(2), Some(6)));
            assert_eq!(programs(&g, HOST_IF, Target::Uplink), (None, Some(4)));
            let node = Target::Node {
                node: 0,
                encap: false,
            };
            assert_eq!(programs(&g, 10, node), (Some(2), Some(6)));
            // Without a host endpoint on the uplink, nothing of it applies.
            tables.endpoints.truncate(1);
            let g = Generation::build(abi::Generation(1), &tables).unwrap();
            assert_eq!(programs(&g, 10, Target::Uplink), (Some(2), None));
            assert_eq!(programs(&g, HOST_IF, Target::Uplink), (None, None));
        }
    }

    fn programs(g: &Generation, rx_if: u32, target: Target) -> (Option<u32>, Option<u32>) {
        arriving(g, Arrival::on(g.endpoint_on(rx_if)), target)
    }

    fn arriving(g: &Generation, a: Arrival, target: Target) -> (Option<u32>, Option<u32>) {
        let p = g.flow_programs(a, target);
        (p.from.map(|i| i + 1), p.to.map(|i| i + 1))
    }

    #[test]
    fn each_flow_passes_the_programs_calico_applies() {
        let g = generation(true);
        let host = g.endpoint_on(HOST_IF).unwrap();
        assert!(g.endpoint(host).host_interface && !g.endpoint(host).is_host_endpoint());
        let uplink = Target::Uplink;
        let local = Target::Local(0);
        // Workload to uplink: its egress, the host endpoint's forward egress.
        assert_eq!(programs(&g, 10, uplink), (Some(2), Some(6)));
        // Uplink to workload: forward ingress, the workload's ingress.
        assert_eq!(programs(&g, UPLINK, local), (Some(5), Some(1)));
        // Uplink to uplink: both forward programs.
        assert_eq!(programs(&g, UPLINK, uplink), (Some(5), Some(6)));
        // Uplink to the host: the normal ingress only.
        assert_eq!(programs(&g, UPLINK, Target::Host), (Some(3), None));
        // The host out of the uplink: the normal egress only.
        assert_eq!(programs(&g, HOST_IF, uplink), (None, Some(4)));
        // The host to its workload: nothing.
        assert_eq!(programs(&g, HOST_IF, local), (None, None));
        // Workload to workload, workload to host: the workload programs.
        assert_eq!(programs(&g, 10, local), (Some(2), Some(1)));
        assert_eq!(programs(&g, 10, Target::Host), (Some(2), None));
        // No applyOnForward programs: forwarded traffic meets no host endpoint program.
        let g = generation(false);
        assert_eq!(programs(&g, 10, uplink), (Some(2), None));
        assert_eq!(programs(&g, UPLINK, local), (None, Some(1)));
        assert_eq!(programs(&g, UPLINK, Target::Host), (Some(3), None));
        // An interface without an endpoint (rx None) to a workload: its ingress only.
        assert_eq!(
            g.flow_programs(Arrival::on(None), local),
            FlowPrograms {
                from: None,
                to: Some(0)
            }
        );
    }

    #[test]
    fn decapsulated_flows_skip_the_uplink_host_endpoints_programs_on_arrival() {
        let g = generation(true);
        let uplink = g.endpoint_on(UPLINK);
        let tunnel = Arrival {
            rx: uplink,
            decapsulated: true,
            untracked: false,
        };
        // Remote workload to a local one: the workload's ingress only (no forward ingress).
        assert_eq!(arriving(&g, tunnel, Target::Local(0)), (None, Some(1)));
        // To the host: no normal ingress either (tunl0 has no host endpoint).
        assert_eq!(arriving(&g, tunnel, Target::Host), (None, None));
        // Back out of the uplink: the forward egress still applies on the way out.
        assert_eq!(arriving(&g, tunnel, Target::Uplink), (None, Some(6)));
        // The same as a packet from an interface without an endpoint.
        assert_eq!(
            g.flow_programs(tunnel, Target::Local(0)),
            g.flow_programs(Arrival::on(None), Target::Local(0))
        );
    }

    #[test]
    fn an_untracked_allow_skips_only_the_receiving_endpoints_program() {
        let g = generation(true);
        let untracked = Arrival {
            rx: g.endpoint_on(UPLINK),
            decapsulated: false,
            untracked: true,
        };
        // Uplink to a workload: the forward ingress is skipped, the workload's ingress runs.
        assert_eq!(arriving(&g, untracked, Target::Local(0)), (None, Some(1)));
        // Uplink to uplink: the forward egress still runs.
        assert_eq!(arriving(&g, untracked, Target::Uplink), (None, Some(6)));
        // To the host: nothing more.
        assert_eq!(arriving(&g, untracked, Target::Host), (None, None));
        // Tracked, the same flows pass the forward ingress too.
        let tracked = Arrival::on(g.endpoint_on(UPLINK));
        assert_eq!(arriving(&g, tracked, Target::Local(0)), (Some(5), Some(1)));
    }
}
