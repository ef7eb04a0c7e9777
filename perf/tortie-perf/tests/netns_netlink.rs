//! The namespace and netlink layer against the kernel: namespaces appear under /run/netns and
//! go again, a veth pair is created across two namespaces with the asked-for queue counts,
//! MACs and addresses, sysctls land in the right namespace, and a program started through
//! `netns-exec` runs inside it. Needs root; as non-root each test prints why and returns.
//! No `ip` binary is used.

use std::net::Ipv4Addr;

use tortie_perf::netns::{self, NetnsError, link, link::VethEnd};

const BIN: &str = env!("CARGO_BIN_EXE_tortie-perf");

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Deletes its namespaces on drop, even when an assertion fails.
struct Spaces(Vec<String>);

impl Drop for Spaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = netns::delete(n);
        }
    }
}

#[test]
fn namespaces_veths_addresses_and_sysctls_without_ip() {
    if !is_root() {
        eprintln!("skipping: needs root for network namespaces");
        return;
    }
    let pid = std::process::id();
    let (a, b) = (format!("tnl-{pid}-a"), format!("tnl-{pid}-b"));
    netns::create(&a).expect("create a");
    let _guard = Spaces(vec![a.clone(), b.clone()]);
    netns::create(&b).expect("create b");
    assert!(netns::list().contains(&a) && netns::list().contains(&b));
    // A second namespace of the same name is refused, naming the file.
    let again = netns::create(&a).expect_err("duplicate");
    assert!(again.to_string().contains(&a), "{again}");

    let peer_ns = b.clone();
    netns::netlink(Some(&a), async move |h| {
        let x = VethEnd {
            name: "nlx0",
            mac: [2, 0, 0, 0, 9, 1],
        };
        let y = VethEnd {
            name: "nly0",
            mac: [2, 0, 0, 0, 9, 2],
        };
        link::add_veth(&h, x, y, Some(&peer_ns), 4).await?;
        link::add_address(&h, "nlx0", "198.18.9.1".parse().expect("ip"), 24).await?;
        link::set_up(&h, "nlx0").await
    })
    .expect("veth across namespaces");
    let here = netns::netlink(Some(&a), async |h| {
        Ok((
            link::info(&h, "nlx0").await?,
            link::addresses_v4(&h, "nlx0").await?,
        ))
    })
    .expect("look up nlx0");
    assert_eq!(here.0.mac, [2, 0, 0, 0, 9, 1]);
    assert_eq!((here.0.tx_queues, here.0.rx_queues), (4, 4));
    assert!(here.0.up);
    assert_eq!(here.1, [(Ipv4Addr::new(198, 18, 9, 1), 24)]);
    // The peer went straight into b, with its own MAC and queues, and is not in a.
    let there = netns::netlink(Some(&b), async |h| link::info(&h, "nly0").await).expect("nly0");
    assert_eq!(there.mac, [2, 0, 0, 0, 9, 2]);
    assert_eq!((there.tx_queues, there.rx_queues), (4, 4));
    let missing = netns::netlink(Some(&a), async |h| link::info(&h, "nly0").await);
    assert!(
        matches!(missing, Err(NetnsError::Netlink { .. })),
        "{missing:?}"
    );
    // Out-of-range queue counts are refused before the kernel is asked.
    let bad = netns::netlink(Some(&a), async |h| {
        let x = VethEnd {
            name: "nlq0",
            mac: [2, 0, 0, 0, 9, 3],
        };
        let y = VethEnd {
            name: "nlq1",
            mac: [2, 0, 0, 0, 9, 4],
        };
        link::add_veth(&h, x, y, None, 0).await
    });
    assert!(bad.expect_err("0 queues").to_string().contains("0 queues"));

    // Sysctls follow the writer's namespace: b changes, a does not.
    netns::sysctl(Some(&b), "net.ipv4.ip_forward", "1").expect("sysctl in b");
    let read = |ns: &str| {
        netns::run_in(Some(ns), || {
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .map_err(|e| NetnsError::os("read ip_forward", e))
        })
        .expect("read")
    };
    assert_eq!(read(&b).trim(), "1");
    assert_eq!(read(&a).trim(), "0");

    // A program run through `netns-exec --sysfs` sees the namespace's interfaces in /sys.
    let out = netns::exec::command(std::path::Path::new(BIN), &b, true, "cat")
        .arg("/sys/class/net/nly0/address")
        .output()
        .expect("run cat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "02:00:00:00:09:02"
    );

    netns::delete(&a).expect("delete a");
    assert!(!netns::list().contains(&a));
    assert!(
        netns::delete(&a).is_err(),
        "deleting twice names the failure"
    );
}
