//! Calico's etcd v3 key layout for IPAM state, so that an existing Calico datastore is read as is.
//!
//! | what | key |
//! |---|---|
//! | block | `/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26` |
//! | block affinity | `/calico/ipam/v2/host/<node>/ipv4/block/10.65.0.0-26` |
//! | handle | `/calico/ipam/v2/handle/<handle id>` |
//! | configuration | `/calico/ipam/v2/config` |
//!
//! The constants are the datastore crate's; these helpers take typed CIDRs.

use ipnet::IpNet;

/// Key of the IPAM configuration singleton.
pub use tortie_datastore::keys::IPAM_CONFIG_KEY as CONFIG_KEY;
/// Prefix of every handle key.
pub use tortie_datastore::keys::IPAM_HANDLE_PREFIX as HANDLE_PREFIX;
/// Prefix of every IPAM key.
pub use tortie_datastore::keys::IPAM_PREFIX;

fn family(cidr: &IpNet) -> &'static str {
    match cidr {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// A CIDR as it appears in a key: the `/` becomes `-`.
fn cidr_segment(cidr: &IpNet) -> String {
    format!("{}-{}", cidr.network(), cidr.prefix_len())
}

/// The key of the block with this CIDR.
pub fn block_key(cidr: &IpNet) -> String {
    format!(
        "{IPAM_PREFIX}assignment/{}/block/{}",
        family(cidr),
        cidr_segment(cidr)
    )
}

/// Prefix under which all blocks of one address family are stored.
pub fn block_prefix(v6: bool) -> String {
    format!(
        "{IPAM_PREFIX}assignment/{}/block/",
        if v6 { "ipv6" } else { "ipv4" }
    )
}

/// The key recording that `node` holds an affinity to the block `cidr`.
pub fn affinity_key(node: &str, cidr: &IpNet) -> String {
    format!(
        "{IPAM_PREFIX}host/{node}/{}/block/{}",
        family(cidr),
        cidr_segment(cidr)
    )
}

/// Prefix under which all affinities of `node` are stored.
pub fn node_affinity_prefix(node: &str) -> String {
    format!("{IPAM_PREFIX}host/{node}/")
}

/// Prefix under which the affinities of every node are stored.
pub fn all_affinities_prefix() -> String {
    format!("{IPAM_PREFIX}host/")
}

/// The key of a handle.
pub fn handle_key(handle: &str) -> String {
    format!("{HANDLE_PREFIX}{handle}")
}

/// Parses the CIDR at the end of a block or affinity key (`.../block/10.65.0.0-26`).
pub fn parse_block_cidr(key: &str) -> Option<IpNet> {
    let segment = key.rsplit('/').next()?;
    let (addr, len) = segment.rsplit_once('-')?;
    format!("{addr}/{len}").parse().ok()
}

/// Parses an affinity key into (node, block CIDR).
pub fn parse_affinity_key(key: &str) -> Option<(String, IpNet)> {
    let rest = key.strip_prefix(&all_affinities_prefix())?;
    let (node, tail) = rest.split_once('/')?;
    let cidr = parse_block_cidr(tail)?;
    Some((node.to_string(), cidr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_keys_follow_calico_layout() {
        let v4: IpNet = "198.18.0.64/26".parse().unwrap();
        assert_eq!(
            block_key(&v4),
            "/calico/ipam/v2/assignment/ipv4/block/198.18.0.64-26"
        );
        let v6: IpNet = "2001:db8::40/122".parse().unwrap();
        assert_eq!(
            block_key(&v6),
            "/calico/ipam/v2/assignment/ipv6/block/2001:db8::40-122"
        );
        assert_eq!(parse_block_cidr(&block_key(&v6)), Some(v6));
    }

    #[test]
    fn affinity_keys_round_trip() {
        let cidr: IpNet = "198.18.1.0/26".parse().unwrap();
        let key = affinity_key("node-a", &cidr);
        assert_eq!(key, "/calico/ipam/v2/host/node-a/ipv4/block/198.18.1.0-26");
        assert_eq!(parse_affinity_key(&key), Some(("node-a".into(), cidr)));
        assert_eq!(parse_affinity_key("/calico/ipam/v2/handle/x"), None);
    }
}
