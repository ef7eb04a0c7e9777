//! The namespaces and veth pairs of a node, its workloads and its uplink router.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use tortie_abi::{Endpoint, EndpointId, EndpointKind, Prefix, Route, RouteTarget, Tables};

use super::{if_index, ip, run};

/// A workload namespace: its name, its address and MAC, and the node-side veth.
pub struct Workload {
    pub ns: String,
    pub addr: Ipv4Addr,
    pub mac: [u8; 6],
    pub host_dev: String,
    pub if_index: u32,
}

/// The node namespace (the daemon runs there), two workload namespaces, a host veth pair and
/// an uplink veth pair.
pub struct Topo {
    pub node: String,
    pub workloads: Vec<Workload>,
    pub host_dev: String,
    pub host_if: u32,
    pub uplink_dev: String,
    pub uplink_if: u32,
    /// The namespace at the other end of the uplink.
    pub router: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

pub const GATEWAY: &str = "198.18.0.1";
/// The node's own address (on the uplink).
pub const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);
/// The router on the uplink segment.
pub const ROUTER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// MAC of the node's uplink.
pub const UPLINK_MAC: &str = "02:bb:00:00:00:01";
/// MAC of the router (the default gateway).
pub const GATEWAY_MAC: &str = "02:bb:00:00:00:02";

impl Topo {
    /// Builds it; `offload_off` turns TX checksum offload off on the workloads' interfaces
    /// (as the CNI plugin does), so frames leaving them carry complete checksums.
    pub fn new(tag: &str, offload_off: bool) -> Topo {
        let pid = std::process::id() % 100_000;
        let node = format!("tfp-{tag}-{pid}-n");
        let dir = std::env::temp_dir().join(format!("tfp-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut topo = Topo {
            node,
            workloads: Vec::new(),
            host_dev: format!("tfh{pid}"),
            host_if: 0,
            uplink_dev: format!("tfu{pid}"),
            uplink_if: 0,
            router: format!("tfp-{tag}-{pid}-r"),
            dir,
            namespaces: Vec::new(),
        };
        if let Err(e) = topo.build(tag, pid, offload_off) {
            panic!("building the test topology failed: {e}");
        }
        topo
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn build(&mut self, tag: &str, pid: u32, offload_off: bool) -> Result<(), String> {
        let node = self.node.clone();
        self.add_ns(&node)?;
        for (i, last) in [(0u8, 4u8), (1, 5)] {
            let ns = format!("tfp-{tag}-{pid}-w{i}");
            self.add_ns(&ns)?;
            let host_dev = format!("tfc{pid}w{i}");
            let mac = [0x02, 0xaa, 0, 0, 0, last];
            let mac_s = "02:aa:00:00:00:0".to_string() + &last.to_string();
            ip(&[
                "link",
                "add",
                &host_dev,
                "netns",
                &node,
                "numrxqueues",
                "1",
                "numtxqueues",
                "1",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
                "numrxqueues",
                "1",
                "numtxqueues",
                "1",
            ])?;
            let addr = Ipv4Addr::new(198, 19, 0, last);
            ip(&["-n", &ns, "link", "set", "eth0", "address", &mac_s])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&[
                "-n", &ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link",
            ])?;
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "198.19.0.0/24",
                "via",
                GATEWAY,
                "dev",
                "eth0",
            ])?;
            let node_route = "198.18.0.0/15".to_string();
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                &node_route,
                "via",
                GATEWAY,
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &node, "link", "set", &host_dev, "up"])?;
            // The node's kernel reaches the workload by its own route (as the CNI plugin sets
            // it up); the neighbour is static because ARP replies from the workload go to the
            // fastpath, not to the kernel.
            ip(&[
                "-n",
                &node,
                "route",
                "add",
                &format!("{addr}/32"),
                "dev",
                &host_dev,
            ])?;
            ip(&[
                "-n",
                &node,
                "neigh",
                "add",
                &addr.to_string(),
                "lladdr",
                &mac_s,
                "dev",
                &host_dev,
            ])?;
            if offload_off {
                run(
                    "ip",
                    &["netns", "exec", &ns, "ethtool", "-K", "eth0", "tx", "off"],
                )?;
            }
            let if_index = if_index(&node, &host_dev);
            self.workloads.push(Workload {
                ns,
                addr,
                mac,
                host_dev,
                if_index,
            });
        }
        let hk = format!("{}k", self.host_dev);
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            &self.host_dev,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            &hk,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
        ])?;
        ip(&[
            "-n",
            &node,
            "link",
            "set",
            &hk,
            "address",
            "ee:ee:ee:ee:ee:ee",
        ])?;
        ip(&["-n", &node, "link", "set", &self.host_dev, "up"])?;
        ip(&["-n", &node, "link", "set", &hk, "up"])?;
        // rp_filter off on the kernel side of the host veth (and `all`, which the kernel
        // maxes with it): the interface has no IPv4 address, and for such an interface any
        // rp_filter mode, loose included, drops every packet (fib_validate_source).
        run(
            "ip",
            &[
                "netns",
                "exec",
                &node,
                "sh",
                "-c",
                &format!(
                    "echo 0 > /proc/sys/net/ipv4/conf/{hk}/rp_filter; echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter"
                ),
            ],
        )?;
        // The uplink's peer is a router namespace (198.18.1.1) that reaches the workloads
        // through the node (198.18.1.11).
        let router = self.router.clone();
        self.add_ns(&router)?;
        let up = self.uplink_dev.clone();
        ip(&[
            "-n",
            &node,
            "link",
            "add",
            &up,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &router,
            "numrxqueues",
            "1",
            "numtxqueues",
            "1",
        ])?;
        ip(&["-n", &node, "link", "set", &up, "address", UPLINK_MAC])?;
        ip(&[
            "-n",
            &node,
            "addr",
            "add",
            &format!("{NODE_ADDR}/24"),
            "dev",
            &up,
        ])?;
        ip(&["-n", &node, "link", "set", &up, "up"])?;
        ip(&["-n", &router, "link", "set", "eth0", "address", GATEWAY_MAC])?;
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{ROUTER_ADDR}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &router, "link", "set", "eth0", "up"])?;
        let via = NODE_ADDR.to_string();
        ip(&["-n", &router, "route", "add", "198.19.0.0/24", "via", &via])?;
        if offload_off {
            run(
                "ip",
                &[
                    "netns", "exec", &router, "ethtool", "-K", "eth0", "tx", "off",
                ],
            )?;
        }
        self.host_if = if_index(&node, &self.host_dev);
        self.uplink_if = if_index(&node, &self.uplink_dev);
        Ok(())
    }

    /// Tables for this topology: both workloads local, no policy.
    pub fn tables(&self) -> Tables {
        let mut t = Tables::default();
        t.settings.uplink_if = self.uplink_if;
        t.settings.host_if = self.host_if;
        t.settings.uplink_mac = [2, 0xbb, 0, 0, 0, 1];
        t.settings.gateway_mac = [2, 0xbb, 0, 0, 0, 2];
        t.routes.push(Route {
            prefix: Prefix::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).unwrap(),
            target: RouteTarget::Uplink,
        });
        t.settings.node_v4 = Some(tortie_abi::SubnetAddr {
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 11)),
            subnet_len: 24,
        });
        t.settings.default_endpoint_to_host = tortie_abi::HostAction::Accept;
        t.routes.push(Route {
            prefix: Prefix::host(IpAddr::V4(NODE_ADDR)),
            target: RouteTarget::Host,
        });
        t.nat.port_lo = 61000;
        t.nat.port_hi = 65535;
        for (i, w) in self.workloads.iter().enumerate() {
            let id = EndpointId(i as u32 + 1);
            t.endpoints.push(Endpoint {
                id,
                if_index: w.if_index,
                kind: EndpointKind::Workload,
                mac: w.mac,
                addrs: vec![Prefix::host(IpAddr::V4(w.addr))],
                ingress: None,
                egress: None,
                untracked_ingress: None,
                untracked_egress: None,
                pre_dnat: None,
                forward_ingress: None,
                forward_egress: None,
            });
            t.routes.push(Route {
                prefix: Prefix::host(IpAddr::V4(w.addr)),
                target: RouteTarget::Local(id),
            });
        }
        t
    }

    pub fn ring_path(&self) -> PathBuf {
        self.dir.join("ring")
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// Whether an XDP program is attached to `dev` in the node namespace.
    pub fn xdp_attached(&self, dev: &str) -> bool {
        ip(&["-n", &self.node, "link", "show", "dev", dev])
            .map(|s| s.contains("xdp"))
            .unwrap_or(false)
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
