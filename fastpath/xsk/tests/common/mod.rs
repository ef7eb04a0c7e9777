//! Code shared by the namespace tests: topology with a Drop guard, setns, frame builders.
#![allow(dead_code)]

pub mod frames;
pub mod rig;

use std::fs::File;
use std::process::Command;

use nix::sched::{CloneFlags, setns};
use tortie_xsk::{BindMode, PortConfig, UmemSpec};

pub const FRAMES: u32 = 1024;
pub const PACKETS: usize = 32;
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const MARKER: &[u8] = b"tortie-xsk-test";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// One veth pair: `dev_a` in namespace A (198.18.`net`.1, MAC_A) and `dev_b` in namespace B
/// (198.18.`net`.2, MAC_B).
pub struct Link {
    pub dev_a: String,
    pub dev_b: String,
    pub net: u8,
}

impl Link {
    pub fn addr_a(&self) -> String {
        format!("198.18.{}.1", self.net)
    }

    pub fn addr_b(&self) -> String {
        format!("198.18.{}.2", self.net)
    }
}

/// Two namespaces joined by one veth pair per entry of `nets`, with static neighbours both
/// ways (the AF_XDP side steals ARP, so resolution is not left to the kernel). The namespaces
/// (and with them the veths) are deleted on drop, also when building fails half-way.
pub struct Topo {
    pub ns_a: String,
    pub ns_b: String,
    pub links: Vec<Link>,
}

impl Topo {
    pub fn new(tag: &str, nets: &[u8]) -> Topo {
        Topo::build_new(tag, nets, false)
    }

    /// As [`Topo::new`], with IPv6 disabled in both namespaces before the veths exist, so the
    /// kernels send nothing by themselves (no DAD, MLD or router solicitations): every frame on
    /// the link is one the test sent, and counters can be compared exactly.
    pub fn new_quiet(tag: &str, nets: &[u8]) -> Topo {
        Topo::build_new(tag, nets, true)
    }

    fn build_new(tag: &str, nets: &[u8], quiet: bool) -> Topo {
        let pid = std::process::id();
        let links = nets
            .iter()
            .map(|&net| Link {
                dev_a: format!("x{tag}{}-{net}a", pid % 100_000),
                dev_b: format!("x{tag}{}-{net}b", pid % 100_000),
                net,
            })
            .collect();
        let topo = Topo {
            ns_a: format!("txsk-{tag}-{pid}-a"),
            ns_b: format!("txsk-{tag}-{pid}-b"),
            links,
        };
        if let Err(e) = topo.build(quiet) {
            panic!("building test topology failed: {e}");
        }
        topo
    }

    fn build(&self, quiet: bool) -> Result<(), String> {
        let (a, b) = (self.ns_a.as_str(), self.ns_b.as_str());
        let (mac_a, mac_b) = ("02:00:00:00:00:01", "02:00:00:00:00:02");
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        if quiet {
            for ns in [a, b] {
                ip(&[
                    "netns",
                    "exec",
                    ns,
                    "sh",
                    "-c",
                    "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && \
                     echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
                ])?;
            }
        }
        ip(&["-n", a, "link", "set", "lo", "up"])?;
        ip(&["-n", b, "link", "set", "lo", "up"])?;
        for l in &self.links {
            // veth needs explicit queue counts for AF_XDP binds beyond queue 0.
            ip(&[
                "link",
                "add",
                &l.dev_a,
                "netns",
                a,
                "numrxqueues",
                "1",
                "numtxqueues",
                "1",
                "type",
                "veth",
                "peer",
                "name",
                &l.dev_b,
                "netns",
                b,
                "numrxqueues",
                "1",
                "numtxqueues",
                "1",
            ])?;
            ip(&["-n", a, "link", "set", &l.dev_a, "address", mac_a])?;
            ip(&["-n", b, "link", "set", &l.dev_b, "address", mac_b])?;
            ip(&[
                "-n",
                a,
                "addr",
                "add",
                &format!("{}/24", l.addr_a()),
                "dev",
                &l.dev_a,
            ])?;
            ip(&[
                "-n",
                b,
                "addr",
                "add",
                &format!("{}/24", l.addr_b()),
                "dev",
                &l.dev_b,
            ])?;
            ip(&["-n", a, "link", "set", &l.dev_a, "up"])?;
            ip(&["-n", b, "link", "set", &l.dev_b, "up"])?;
            ip(&[
                "-n",
                a,
                "neigh",
                "add",
                &l.addr_b(),
                "lladdr",
                mac_b,
                "dev",
                &l.dev_a,
            ])?;
            ip(&[
                "-n",
                b,
                "neigh",
                "add",
                &l.addr_a(),
                "lladdr",
                mac_a,
                "dev",
                &l.dev_b,
            ])?;
        }
        Ok(())
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}

/// Move the calling thread into namespace `ns`.
pub fn enter(ns: &str) -> Result<(), String> {
    let f =
        File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("open netns {ns}: {e}"))?;
    setns(f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {ns}: {e} (errno {})", e as i32))
}

pub fn test_port_config(mode: BindMode) -> PortConfig {
    PortConfig {
        mode,
        ring_size: 512,
        batch: 64,
        fill_target: 256,
        external_program: false,
    }
}

pub fn test_umem_spec() -> UmemSpec {
    UmemSpec {
        frames: FRAMES,
        frame_size: 4096,
        ring_size: 512,
    }
}

/// UDP destination port and payload of an Ethernet/IPv4/UDP frame, if it is one.
pub fn udp_payload(frame: &[u8]) -> Option<(u16, &[u8])> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let udp = frame.get(14 + ihl..)?;
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let ulen = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    Some((dport, udp.get(8..ulen)?))
}

/// An Ethernet/IPv4/UDP frame from A to B (RFC 791 header checksum; UDP checksum 0, allowed
/// for IPv4 by RFC 768).
pub fn build_frame(src: [u8; 4], dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = u16::try_from(28 + payload.len()).expect("small payload");
    let mut iph = [0u8; 20];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&total.to_be_bytes());
    iph[8] = 64;
    iph[9] = 17;
    iph[12..16].copy_from_slice(&src);
    iph[16..20].copy_from_slice(&dst);
    let mut sum: u32 = iph
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    iph[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&iph);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(
        &u16::try_from(8 + payload.len())
            .expect("small")
            .to_be_bytes(),
    );
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Sends [`PACKETS`] UDP datagrams starting with [`MARKER`] to `dst` from inside namespace
/// `ns`, 2 ms apart, on a thread of its own; panics if any send fails.
pub fn send_marked_datagrams(ns: String, dst: String) {
    let sender = std::thread::spawn(move || -> Result<(), String> {
        enter(&ns)?;
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        for i in 0..PACKETS {
            let mut msg = MARKER.to_vec();
            msg.extend_from_slice(format!("-{i}").as_bytes());
            sock.send_to(&msg, &dst)
                .map_err(|e| format!("send_to {dst}: {e}"))?;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(())
    });
    sender
        .join()
        .expect("sender panicked")
        .expect("sender failed");
}
