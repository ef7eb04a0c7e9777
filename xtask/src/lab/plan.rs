//! The lab's fixed shape: two layer-2 segments joined by a router, three nodes, an outside host,
//! and the addresses the node contract reserves for them (198.18.0.0/15 only).
//!
//! ```text
//!   node1 .11   node2 .12              node3 .13
//!      \          /                        |
//!   [segA bridge br0] 198.18.1.0/24   [segB bridge br0] 198.18.2.0/24
//!            \                           /
//!          .1 `------- router ---------' .1
//!                         | .1
//!                 outside .2  198.18.3.0/24
//! ```

/// Prefix of every namespace the lab creates.
pub const PREFIX: &str = "tortie-lab-";
/// The router's namespace.
pub const ROUTER_NS: &str = "tortie-lab-router";
/// The outside host's namespace (the natOutgoing target).
pub const OUTSIDE_NS: &str = "tortie-lab-outside";
/// The outside host's address.
pub const OUTSIDE_ADDR: &str = "198.18.3.2";
/// The router's address toward the outside host.
pub const OUTSIDE_ROUTER_ADDR: &str = "198.18.3.1";
/// The outside subnet.
pub const OUTSIDE_SUBNET: &str = "198.18.3.0/24";
/// The workload pool.
pub const POOL_CIDR: &str = "198.19.0.0/20";
/// The pool's block size.
pub const POOL_BLOCK_SIZE: u8 = 26;
/// The pool's name.
pub const POOL_NAME: &str = "lab-ipv4-pool";
/// The IPv6 pool (with `lab up --ipv6`).
pub const POOL6_CIDR: &str = "2001:db8:1::/112";
/// The IPv6 pool's block size.
pub const POOL6_BLOCK_SIZE: u8 = 122;
/// The IPv6 pool's name.
pub const POOL6_NAME: &str = "lab-ipv6-pool";
/// The outside host's IPv6 address (with `--ipv6`).
pub const OUTSIDE_ADDR6: &str = "2001:db8:0:3::2";
/// The router's IPv6 address toward the outside host.
pub const OUTSIDE_ROUTER_ADDR6: &str = "2001:db8:0:3::1";
/// The name of the uplink inside each node.
pub const UPLINK: &str = "eth0";
/// The bridge inside each segment namespace.
pub const BRIDGE: &str = "br0";
/// The MTU of workload interfaces (1500 less an IP-in-IP header).
pub const WORKLOAD_MTU: u16 = 1480;
/// The CNI network name.
pub const NETWORK: &str = "tortie-lab";

/// One layer-2 segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Short name (`segA`).
    pub name: &'static str,
    /// Its namespace, holding the bridge.
    pub namespace: &'static str,
    /// The subnet.
    pub subnet: &'static str,
    /// The router's address on it (the nodes' default gateway).
    pub router_addr: &'static str,
    /// The prefix length.
    pub prefix_len: u8,
    /// The IPv6 subnet (with `--ipv6`), a /64.
    pub subnet6: &'static str,
    /// The router's IPv6 address on it.
    pub router_addr6: &'static str,
}

/// One node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The node name (`node1`), as tortie-control and the CNI plugin know it.
    pub name: &'static str,
    /// Its namespace.
    pub namespace: &'static str,
    /// Its uplink address.
    pub addr: &'static str,
    /// Its IPv6 uplink address (with `--ipv6`), in the segment's /64.
    pub addr6: &'static str,
    /// The segment it sits on.
    pub segment: Segment,
}

impl Node {
    /// The uplink address with its prefix length (`198.18.1.11/24`).
    pub fn addr_cidr(&self) -> String {
        format!("{}/{}", self.addr, self.segment.prefix_len)
    }

    /// The IPv6 uplink address with its prefix length (`2001:db8:0:1::11/64`).
    pub fn addr6_cidr(&self) -> String {
        format!("{}/64", self.addr6)
    }
}

/// Segment A.
pub const SEG_A: Segment = Segment {
    name: "segA",
    namespace: "tortie-lab-segA",
    subnet: "198.18.1.0/24",
    router_addr: "198.18.1.1",
    prefix_len: 24,
    subnet6: "2001:db8:0:1::/64",
    router_addr6: "2001:db8:0:1::1",
};

/// Segment B.
pub const SEG_B: Segment = Segment {
    name: "segB",
    namespace: "tortie-lab-segB",
    subnet: "198.18.2.0/24",
    router_addr: "198.18.2.1",
    prefix_len: 24,
    subnet6: "2001:db8:0:2::/64",
    router_addr6: "2001:db8:0:2::1",
};

/// Both segments.
pub const SEGMENTS: [Segment; 2] = [SEG_A, SEG_B];

/// The three nodes: two on segment A (native routing between them), one on segment B (IP-in-IP
/// from the others, since the pool's ipipMode is CrossSubnet).
pub const NODES: [Node; 3] = [
    Node {
        name: "node1",
        namespace: "tortie-lab-node1",
        addr: "198.18.1.11",
        addr6: "2001:db8:0:1::11",
        segment: SEG_A,
    },
    Node {
        name: "node2",
        namespace: "tortie-lab-node2",
        addr: "198.18.1.12",
        addr6: "2001:db8:0:1::12",
        segment: SEG_A,
    },
    Node {
        name: "node3",
        namespace: "tortie-lab-node3",
        addr: "198.18.2.13",
        addr6: "2001:db8:0:2::13",
        segment: SEG_B,
    },
];

/// The node called `name`.
pub fn node(name: &str) -> Option<&'static Node> {
    NODES.iter().find(|node| node.name == name)
}

/// Every namespace of the fixed topology (workload namespaces come and go separately).
pub fn fixed_namespaces() -> Vec<&'static str> {
    let mut all = vec![ROUTER_NS, OUTSIDE_NS];
    all.extend(SEGMENTS.iter().map(|segment| segment.namespace));
    all.extend(NODES.iter().map(|node| node.namespace));
    all
}

/// The namespace of a workload called `name`.
pub fn workload_namespace(name: &str) -> String {
    format!("{PREFIX}wl-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_sit_in_their_segments_subnets() {
        for node in NODES {
            let net = node.segment.subnet.trim_end_matches(".0/24");
            assert!(node.addr.starts_with(net), "{} in {}", node.addr, net);
            assert!(node.namespace.starts_with(PREFIX));
        }
        assert_eq!(node("node3").map(|n| n.segment), Some(SEG_B));
        assert_eq!(node("node9"), None);
    }

    #[test]
    fn namespace_names_fit_linux_limits() {
        // Interface and namespace names are shown in `ip` output; keep them short and unique.
        let all = fixed_namespaces();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(workload_namespace("frontend-1").len() < 64);
    }
}
