//! `Resource::apply_defaults`: the values Calico fills in when a resource is created, so that
//! what is stored (and read back) is explicit.

use crate::resource::Resource;
use crate::types::*;
use crate::validate::builtin_tier;

/// Policy `types` inferred from the rules present (calico.md 2.3): egress-only policies are
/// `[Egress]`, policies with both are `[Ingress, Egress]`, everything else `[Ingress]`.
pub fn infer_policy_types(has_ingress: bool, has_egress: bool) -> Vec<PolicyType> {
    match (has_ingress, has_egress) {
        (_, false) => vec![PolicyType::Ingress],
        (false, true) => vec![PolicyType::Egress],
        (true, true) => vec![PolicyType::Ingress, PolicyType::Egress],
    }
}

fn default_tier(tier: &mut String) {
    if tier.is_empty() {
        *tier = "default".to_string();
    }
}

impl Resource {
    /// Fills in Calico's defaults. Idempotent; fields the user set are never changed.
    ///
    /// - namespaced kinds: `metadata.namespace` = `default`
    /// - NetworkPolicy / GlobalNetworkPolicy: `tier` = `default`; `types` inferred from the
    ///   rules when empty
    /// - Tier: `defaultAction` = `Deny`; the built-in tiers (`kube-admin`, `default`,
    ///   `kube-baseline`) get their pinned order and action
    /// - IPPool: `blockSize` 26 (IPv4) / 122 (IPv6), `ipipMode` and `vxlanMode` `Never`,
    ///   `nodeSelector` `all()`, `allowedUses` `[Workload, Tunnel]`, `assignmentMode`
    ///   `Automatic` (`natOutgoing`, `disabled` stay false)
    /// - IPAMConfiguration: `strictAffinity` false, `autoAllocateBlocks` true
    /// - BGPConfiguration `default`: `logSeverityScreen` Info, `nodeToNodeMeshEnabled` true,
    ///   `asNumber` 64512, `listenPort` 179
    /// - BGPPeer: nothing; FelixConfiguration: nothing (Felix applies its own at run time)
    pub fn apply_defaults(&mut self) {
        if self.kind().is_namespaced() && self.metadata().namespace.is_empty() {
            self.metadata_mut().namespace = "default".to_string();
        }
        match self {
            Resource::NetworkPolicy(o) => {
                default_tier(&mut o.spec.tier);
                if o.spec.types.is_empty() {
                    o.spec.types =
                        infer_policy_types(!o.spec.ingress.is_empty(), !o.spec.egress.is_empty());
                }
            }
            Resource::GlobalNetworkPolicy(o) => {
                default_tier(&mut o.spec.tier);
                if o.spec.types.is_empty() {
                    o.spec.types =
                        infer_policy_types(!o.spec.ingress.is_empty(), !o.spec.egress.is_empty());
                }
            }
            Resource::Tier(o) => {
                if let Some((_, order, action)) = builtin_tier(&o.metadata.name) {
                    o.spec.order.get_or_insert(order);
                    o.spec.default_action.get_or_insert(action);
                }
                o.spec.default_action.get_or_insert(TierAction::Deny);
            }
            Resource::IpPool(o) => {
                let spec = &mut o.spec;
                spec.block_size = Some(spec.effective_block_size());
                spec.ipip_mode.get_or_insert(EncapMode::Never);
                spec.vxlan_mode.get_or_insert(EncapMode::Never);
                if spec.node_selector.trim().is_empty() {
                    spec.node_selector = "all()".to_string();
                }
                if spec.allowed_uses.is_empty() {
                    spec.allowed_uses = vec![AllowedUse::Workload, AllowedUse::Tunnel];
                }
                spec.assignment_mode
                    .get_or_insert(AssignmentMode::Automatic);
            }
            Resource::IpamConfiguration(o) => {
                o.spec.strict_affinity.get_or_insert(false);
                o.spec.auto_allocate_blocks.get_or_insert(true);
            }
            Resource::BgpConfiguration(o) if o.metadata.name == "default" => {
                let spec = &mut o.spec;
                spec.log_severity_screen.get_or_insert(LogSeverity::Info);
                spec.node_to_node_mesh_enabled.get_or_insert(true);
                spec.as_number.get_or_insert(AsNumber(64512));
                spec.listen_port.get_or_insert(179);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;
    use crate::resource::Object;

    fn policy(ingress: usize, egress: usize) -> Resource {
        let spec = NetworkPolicySpec {
            ingress: vec![Rule::new(Action::Allow); ingress],
            egress: vec![Rule::new(Action::Allow); egress],
            ..NetworkPolicySpec::default()
        };
        Resource::NetworkPolicy(Object::new(ObjectMeta::named("p"), spec))
    }

    fn types_of(r: &Resource) -> Vec<PolicyType> {
        match r {
            Resource::NetworkPolicy(o) => o.spec.types.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn policy_types_are_inferred_per_the_table() {
        for (ingress, egress, expected) in [
            (0, 0, vec![PolicyType::Ingress]),
            (1, 0, vec![PolicyType::Ingress]),
            (0, 1, vec![PolicyType::Egress]),
            (2, 1, vec![PolicyType::Ingress, PolicyType::Egress]),
        ] {
            let mut r = policy(ingress, egress);
            r.apply_defaults();
            assert_eq!(types_of(&r), expected, "{ingress} ingress, {egress} egress");
        }
    }

    #[test]
    fn explicit_types_are_kept_and_tier_and_namespace_default() {
        let mut r = policy(1, 0);
        if let Resource::NetworkPolicy(o) = &mut r {
            o.spec.types = vec![PolicyType::Egress];
        }
        r.apply_defaults();
        assert_eq!(types_of(&r), vec![PolicyType::Egress]);
        assert_eq!(r.metadata().namespace, "default");
        let Resource::NetworkPolicy(o) = &r else {
            unreachable!()
        };
        assert_eq!(o.spec.tier, "default");
    }

    #[test]
    fn ip_pool_defaults_by_family() {
        for (cidr, block) in [("10.0.0.0/16", 26), ("2001:db8::/48", 122)] {
            let mut r = Resource::IpPool(Object::new(
                ObjectMeta::named("p"),
                IpPoolSpec::new(cidr.parse().unwrap()),
            ));
            r.apply_defaults();
            let Resource::IpPool(o) = &r else {
                unreachable!()
            };
            assert_eq!(o.spec.block_size, Some(block));
            assert_eq!(o.spec.ipip_mode, Some(EncapMode::Never));
            assert_eq!(o.spec.vxlan_mode, Some(EncapMode::Never));
            assert_eq!(o.spec.node_selector, "all()");
            assert_eq!(
                o.spec.allowed_uses,
                vec![AllowedUse::Workload, AllowedUse::Tunnel]
            );
            assert_eq!(o.spec.assignment_mode, Some(AssignmentMode::Automatic));
            assert!(!o.spec.nat_outgoing);
            let once = r.clone();
            r.apply_defaults();
            assert_eq!(r, once, "idempotent");
        }
    }

    #[test]
    fn bgp_defaults_only_on_the_default_object() {
        let mut global = Resource::BgpConfiguration(Object::new(
            ObjectMeta::named("default"),
            BgpConfigurationSpec::default(),
        ));
        global.apply_defaults();
        let Resource::BgpConfiguration(o) = &global else {
            unreachable!()
        };
        assert_eq!(o.spec.as_number, Some(AsNumber(64512)));
        assert_eq!(o.spec.node_to_node_mesh_enabled, Some(true));
        assert_eq!(o.spec.log_severity_screen, Some(LogSeverity::Info));
        let mut per_node = Resource::BgpConfiguration(Object::new(
            ObjectMeta::named("node.a"),
            BgpConfigurationSpec::default(),
        ));
        per_node.apply_defaults();
        let Resource::BgpConfiguration(o) = &per_node else {
            unreachable!()
        };
        assert_eq!(o.spec, BgpConfigurationSpec::default());
    }

    #[test]
    fn tiers_and_ipam_config_defaults() {
        let mut tier = Resource::Tier(Object::new(
            ObjectMeta::named("kube-admin"),
            TierSpec::default(),
        ));
        tier.apply_defaults();
        let Resource::Tier(o) = &tier else {
            unreachable!()
        };
        assert_eq!(o.spec.order, Some(1000.0));
        assert_eq!(o.spec.default_action, Some(TierAction::Pass));
        let mut custom = Resource::Tier(Object::new(
            ObjectMeta::named("security"),
            TierSpec::default(),
        ));
        custom.apply_defaults();
        let Resource::Tier(o) = &custom else {
            unreachable!()
        };
        assert_eq!(o.spec.order, None);
        assert_eq!(o.spec.default_action, Some(TierAction::Deny));
        let mut ipam = Resource::IpamConfiguration(Object::new(
            ObjectMeta::named("default"),
            IpamConfigurationSpec::default(),
        ));
        ipam.apply_defaults();
        let Resource::IpamConfiguration(o) = &ipam else {
            unreachable!()
        };
        assert_eq!(o.spec.auto_allocate_blocks, Some(true));
        assert_eq!(o.spec.strict_affinity, Some(false));
    }
}
