//! The IPAM configuration singleton (`IPAMConfiguration` named `default`), as stored by Calico at
//! `/calico/ipam/v2/config`.

use serde::{Deserialize, Serialize};

/// Calico's default cap on blocks per host when `maxBlocksPerHost` is 0.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

/// IPAM settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfig {
    /// Forbid borrowing addresses from other nodes' blocks.
    #[serde(rename = "strict_affinity", default)]
    pub strict_affinity: bool,
    /// Allow claiming new blocks.
    #[serde(rename = "auto_allocate_blocks", default = "yes")]
    pub auto_allocate_blocks: bool,
    /// Cap on blocks affine to one node; 0 means Calico's default of 20 (applied only with
    /// strictAffinity, as Calico does).
    #[serde(rename = "maxBlocksPerHost", default)]
    pub max_blocks_per_host: u32,
}

fn yes() -> bool {
    true
}

impl Default for IpamConfig {
    fn default() -> IpamConfig {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
        }
    }
}

impl IpamConfig {
    /// The block cap in force for one node, if any.
    pub fn block_cap(&self) -> Option<u32> {
        match (self.strict_affinity, self.max_blocks_per_host) {
            (false, 0) => None,
            (_, 0) => Some(DEFAULT_MAX_BLOCKS_PER_HOST),
            (_, n) => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_cap() {
        let config: IpamConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, IpamConfig::default());
        assert_eq!(config.block_cap(), None);
        let strict = IpamConfig {
            strict_affinity: true,
            ..config
        };
        assert_eq!(strict.block_cap(), Some(20));
        let capped = IpamConfig {
            max_blocks_per_host: 3,
            ..config
        };
        assert_eq!(capped.block_cap(), Some(3));
    }
}
