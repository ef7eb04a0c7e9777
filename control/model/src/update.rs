//! Checks that need more than one resource: immutable fields on update, and IP pool overlap.

use crate::error::{FieldPath, ModelError, Result};
use crate::resource::{IpPool, Resource};

/// Rejects a new pool whose CIDR overlaps any existing pool (other than the pool with the same
/// name, which is the one being replaced). The error names `spec.cidr` and the other pool.
pub fn check_pool_overlap(new: &IpPool, existing: &[IpPool]) -> Result<()> {
    let net = new.spec.cidr.network();
    for other in existing {
        if other.metadata.name == new.metadata.name {
            continue;
        }
        let theirs = other.spec.cidr.network();
        if net.contains(&theirs.network()) || theirs.contains(&net.network()) {
            return Err(ModelError::invalid(
                &FieldPath::root().field("spec").field("cidr"),
                format!(
                    "IP pool {} overlaps IP pool {:?} ({})",
                    new.spec.cidr, other.metadata.name, other.spec.cidr
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that `new` may replace `old`: same kind, namespace and name, and no change to
/// immutable fields (IPPool `cidr` and `blockSize`, judged after defaults so an omitted block
/// size equals the family default).
pub fn check_update(old: &Resource, new: &Resource) -> Result<()> {
    let meta = FieldPath::root().field("metadata");
    if old.kind() != new.kind() {
        return Err(ModelError::invalid(
            &FieldPath::root().field("kind"),
            format!("cannot change kind from {} to {}", old.kind(), new.kind()),
        ));
    }
    if old.name() != new.name() {
        return Err(ModelError::invalid(
            &meta.field("name"),
            format!("cannot rename {:?} to {:?}", old.name(), new.name()),
        ));
    }
    if old.effective_namespace() != new.effective_namespace() {
        return Err(ModelError::invalid(
            &meta.field("namespace"),
            format!(
                "cannot move from namespace {:?} to {:?}",
                old.effective_namespace(),
                new.effective_namespace()
            ),
        ));
    }
    if let (Resource::IpPool(old), Resource::IpPool(new)) = (old, new) {
        let spec = FieldPath::root().field("spec");
        if old.spec.cidr.network() != new.spec.cidr.network() {
            return Err(ModelError::invalid(
                &spec.field("cidr"),
                format!(
                    "cidr is immutable (was {}, now {}): create a new pool and disable this one",
                    old.spec.cidr, new.spec.cidr
                ),
            ));
        }
        let (was, now) = (
            old.spec.effective_block_size(),
            new.spec.effective_block_size(),
        );
        if was != now {
            return Err(ModelError::invalid(
                &spec.field("blockSize"),
                format!("blockSize is immutable (was {was}, now {now})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ObjectMeta;
    use crate::resource::Object;
    use crate::types::*;

    fn pool(name: &str, cidr: &str) -> IpPool {
        Object::new(
            ObjectMeta::named(name),
            IpPoolSpec::new(cidr.parse().unwrap()),
        )
    }

    #[test]
    fn overlapping_pools_are_rejected_both_ways() {
        let existing = vec![pool("a", "10.0.0.0/16"), pool("b", "2001:db8::/48")];
        assert!(check_pool_overlap(&pool("c", "10.1.0.0/16"), &existing).is_ok());
        let inside = check_pool_overlap(&pool("c", "10.0.128.0/24"), &existing).unwrap_err();
        assert_eq!(inside.path().unwrap().to_string(), "spec.cidr");
        assert!(inside.message().contains("\"a\""), "{inside}");
        assert!(check_pool_overlap(&pool("c", "10.0.0.0/8"), &existing).is_err());
        assert!(check_pool_overlap(&pool("c", "2001:db8:0:1::/64"), &existing).is_err());
        assert!(
            check_pool_overlap(&pool("a", "10.0.0.0/16"), &existing).is_ok(),
            "replacing itself"
        );
    }

    #[test]
    fn pool_cidr_and_block_size_are_immutable() {
        let old = Resource::IpPool(pool("a", "10.0.0.0/16"));
        let mut same = pool("a", "10.0.0.0/16");
        same.spec.nat_outgoing = true;
        same.spec.block_size = Some(26);
        assert!(check_update(&old, &Resource::IpPool(same)).is_ok());
        let moved = Resource::IpPool(pool("a", "10.1.0.0/16"));
        assert_eq!(
            check_update(&old, &moved)
                .unwrap_err()
                .path()
                .unwrap()
                .to_string(),
            "spec.cidr"
        );
        let mut resized = pool("a", "10.0.0.0/16");
        resized.spec.block_size = Some(24);
        let err = check_update(&old, &Resource::IpPool(resized)).unwrap_err();
        assert_eq!(err.path().unwrap().to_string(), "spec.blockSize");
    }

    #[test]
    fn identity_is_immutable() {
        let old = Resource::IpPool(pool("a", "10.0.0.0/16"));
        let renamed = Resource::IpPool(pool("b", "10.0.0.0/16"));
        assert_eq!(
            check_update(&old, &renamed)
                .unwrap_err()
                .path()
                .unwrap()
                .to_string(),
            "metadata.name"
        );
        let other_kind = Resource::Tier(Object::new(ObjectMeta::named("a"), TierSpec::default()));
        assert_eq!(
            check_update(&old, &other_kind)
                .unwrap_err()
                .path()
                .unwrap()
                .to_string(),
            "kind"
        );
        let np = |ns: &str| {
            Resource::NetworkPolicy(Object::new(
                ObjectMeta::namespaced(ns, "p"),
                NetworkPolicySpec::default(),
            ))
        };
        assert!(
            check_update(&np(""), &np("default")).is_ok(),
            "empty namespace means default"
        );
        assert_eq!(
            check_update(&np("a"), &np("b"))
                .unwrap_err()
                .path()
                .unwrap()
                .to_string(),
            "metadata.namespace"
        );
    }
}
