//! 1:1 DNAT: floating IP ⟷ workload IP (Calico `spec.ipNATs` on a WorkloadEndpoint).
//!
//! Built by the control side into an immutable generation; the pipeline asks it on a
//! conntrack miss whether the destination is a floating IP (translate to the workload) and the
//! conntrack entry carries the binding from then on, so replies are reverse-translated
//! without consulting this map.

use std::net::IpAddr;

use hashbrown::HashMap;

/// Why a mapping was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DnatError {
    /// The two addresses are of different families.
    #[error("floating IP {external} and workload IP {internal} are of different families")]
    FamilyMismatch {
        /// The floating (external) address.
        external: IpAddr,
        /// The workload (internal) address.
        internal: IpAddr,
    },
    /// The floating IP is already mapped.
    #[error("floating IP {0} is already mapped")]
    ExternalTaken(IpAddr),
    /// The workload IP already has a floating IP (the map is one-to-one).
    #[error("workload IP {0} already has a floating IP")]
    InternalTaken(IpAddr),
}

/// A bidirectional one-to-one address map.
#[derive(Clone, Debug, Default)]
pub struct DnatMap {
    to_internal: HashMap<IpAddr, IpAddr>,
    to_external: HashMap<IpAddr, IpAddr>,
}

impl DnatMap {
    /// An empty map.
    pub fn new() -> DnatMap {
        DnatMap::default()
    }

    /// Map floating IP `external` to workload IP `internal`.
    pub fn insert(&mut self, external: IpAddr, internal: IpAddr) -> Result<(), DnatError> {
        if external.is_ipv4() != internal.is_ipv4() {
            return Err(DnatError::FamilyMismatch { external, internal });
        }
        if self.to_internal.contains_key(&external) {
            return Err(DnatError::ExternalTaken(external));
        }
        if self.to_external.contains_key(&internal) {
            return Err(DnatError::InternalTaken(internal));
        }
        self.to_internal.insert(external, internal);
        self.to_external.insert(internal, external);
        Ok(())
    }

    /// Remove the mapping of floating IP `external`; returns the workload IP it had.
    pub fn remove(&mut self, external: IpAddr) -> Option<IpAddr> {
        let internal = self.to_internal.remove(&external)?;
        self.to_external.remove(&internal);
        Some(internal)
    }

    /// The workload IP behind a floating IP (destination of an inbound packet).
    #[inline]
    pub fn internal_for(&self, external: IpAddr) -> Option<IpAddr> {
        self.to_internal.get(&external).copied()
    }

    /// The floating IP of a workload IP.
    #[inline]
    pub fn external_for(&self, internal: IpAddr) -> Option<IpAddr> {
        self.to_external.get(&internal).copied()
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.to_internal.len()
    }

    /// True when there is no mapping.
    pub fn is_empty(&self) -> bool {
        self.to_internal.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_one_both_ways() {
        let ext = IpAddr::from([198, 18, 1, 1]);
        let int = IpAddr::from([10, 65, 0, 5]);
        let mut m = DnatMap::new();
        m.insert(ext, int).unwrap();
        assert_eq!(m.internal_for(ext), Some(int));
        assert_eq!(m.external_for(int), Some(ext));
        assert_eq!(
            m.insert(ext, IpAddr::from([10, 65, 0, 6])),
            Err(DnatError::ExternalTaken(ext))
        );
        assert_eq!(
            m.insert(IpAddr::from([198, 18, 1, 2]), int),
            Err(DnatError::InternalTaken(int))
        );
        let v6 = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            m.insert(v6, int),
            Err(DnatError::FamilyMismatch { .. })
        ));
        assert_eq!(m.remove(ext), Some(int));
        assert!(m.is_empty() && m.external_for(int).is_none());
        assert_eq!(m.remove(ext), None);
    }
}
