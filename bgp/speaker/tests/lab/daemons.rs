//! Config writers and starters for the reference daemons (after the research lab script).

use super::{Lab, wait};
use std::path::{Path, PathBuf};

/// How BIRD treats our speaker.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BirdRole {
    /// Plain iBGP mesh member.
    Member,
    /// BIRD is a route reflector and our speaker its client (cluster id 198.18.0.1).
    Reflector,
    /// Mesh member sending ADD-PATH path identifiers on the IPv4 session.
    MemberAddPath,
}

/// Starts BIRD 2 in node `node` (address index 1) peering with the SUT (.5) over IPv4 and
/// IPv6 and with any `extra` iBGP neighbours (index list), originating 198.18.10.0/26 and
/// 2001:db8:10::/122.
pub fn bird(lab: &mut Lab, node: &str, role: BirdRole, extra: &[u8]) -> PathBuf {
    let rr = if role == BirdRole::Reflector {
        "rr client; rr cluster id 198.18.0.1;"
    } else {
        ""
    };
    let add_path = if role == BirdRole::MemberAddPath {
        "add paths tx;"
    } else {
        ""
    };
    let d = lab.dir.join("bird");
    let mut conf = format!(
        r#"log "{d}/bird.log" all;
router id 198.18.0.1;
protocol device {{ scan time 10; }}
protocol static blocks4 {{ ipv4; route 198.18.10.0/26 blackhole; }}
protocol static blocks6 {{ ipv6; route 2001:db8:10::/122 blackhole; }}
template bgp node {{
  local as 64512;
  direct;
  hold time 9; keepalive time 3; connect retry time 2; error wait time 1,5;
  graceful restart on;
  debug {{ states, events }};
  {rr}
}}
protocol bgp sut4 from node {{
  local 198.18.0.1; neighbor 198.18.0.5 as 64512;
  ipv4 {{ import all; export where source ~ [RTS_STATIC, RTS_BGP]; next hop self; {add_path} }};
}}
protocol bgp sut6 from node {{
  local 2001:db8:ffff::1; neighbor 2001:db8:ffff::5 as 64512;
  ipv6 {{ import all; export where source ~ [RTS_STATIC, RTS_BGP]; next hop self; }};
}}
"#,
        d = d.display()
    );
    for i in extra {
        conf.push_str(&format!(
            "protocol bgp peer{i} from node {{ local 198.18.0.1; neighbor 198.18.0.{i} as 64512; ipv4 {{ import all; export where source ~ [RTS_STATIC, RTS_BGP]; }}; }}\n"
        ));
    }
    let conf_path = lab.file("bird/bird.conf", &conf);
    let sock = d.join("bird.ctl");
    let (ok, out) = super::sh(
        &["bird", "-p", "-c", conf_path.to_str().unwrap()],
        std::time::Duration::from_secs(10),
    );
    assert!(ok, "bird config: {out}");
    lab.spawn(
        node,
        "bird",
        &[
            "bird",
            "-f",
            "-c",
            conf_path.to_str().unwrap(),
            "-s",
            sock.to_str().unwrap(),
        ],
    );
    assert!(
        wait(10, || birdc(lab, node, &sock, &["show", "status"]).0),
        "BIRD did not start: {}",
        lab.log("bird")
    );
    sock
}

/// Runs a birdc command.
pub fn birdc(lab: &Lab, node: &str, sock: &Path, args: &[&str]) -> (bool, String) {
    let mut v = vec!["birdc", "-s", sock.to_str().unwrap()];
    v.extend_from_slice(args);
    lab.exec(node, &v)
}

/// Starts GoBGP in node `node` (index 2) peering with `neighbors` (v4 and v6 addresses),
/// with graceful restart; `restarting` adds `-r`. Originates 198.18.20.0/26 and
/// 2001:db8:20::/122 once the API answers.
pub fn gobgp(lab: &mut Lab, node: &str, neighbors: &[&str], restarting: bool, label: &str) {
    let mut conf = String::from(
        "[global.config]\n  as = 64512\n  router-id = \"198.18.0.2\"\n  local-address-list = [\"198.18.0.2\", \"2001:db8:ffff::2\"]\n",
    );
    for n in neighbors {
        let fam = if n.contains(':') {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        conf.push_str(&format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{n}\"\n    peer-as = 64512\n  [neighbors.timers.config]\n    connect-retry = 2\n    hold-time = 9\n    keepalive-interval = 3\n  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{fam}\"\n    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n"
        ));
    }
    let path = lab.file("gobgp/gobgpd.toml", &conf);
    let p = path.to_str().unwrap().to_string();
    let mut args = vec![
        "gobgpd",
        "-f",
        p.as_str(),
        "--api-hosts=127.0.0.1:50051",
        "-p",
        "--pprof-disable",
    ];
    if restarting {
        args.push("-r");
    }
    lab.spawn(node, label, &args);
    assert!(
        wait(15, || gobgp_cli(lab, node, &["global"]).0),
        "gobgpd did not start: {}",
        lab.log(label)
    );
    assert!(
        gobgp_cli(
            lab,
            node,
            &["global", "rib", "add", "198.18.20.0/26", "-a", "ipv4"]
        )
        .0
    );
    assert!(
        gobgp_cli(
            lab,
            node,
            &["global", "rib", "add", "2001:db8:20::/122", "-a", "ipv6"]
        )
        .0
    );
}

/// Runs the gobgp CLI against the daemon in `node`.
pub fn gobgp_cli(lab: &Lab, node: &str, args: &[&str]) -> (bool, String) {
    let mut v = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
    v.extend_from_slice(args);
    lab.exec(node, &v)
}

/// Starts FRR (zebra + bgpd) in node `node` (index 3) as an eBGP ToR in AS 4200000001,
/// MD5 `password` on the IPv4 session; originates 203.0.113.0/24 and 2001:db8:30::/48.
pub fn frr(lab: &mut Lab, node: &str, password: Option<&str>) -> PathBuf {
    let d = lab.dir.join("frr");
    std::fs::create_dir_all(&d).unwrap();
    let dd = d.display().to_string();
    lab.file(
        "frr/zebra.conf",
        &format!("hostname tor\nlog file {dd}/zebra.log\n"),
    );
    let mut bgp = format!(
        "frr defaults traditional\nhostname tor\nlog file {dd}/bgpd.log\nrouter bgp 4200000001\n bgp router-id 198.18.0.3\n no bgp ebgp-requires-policy\n no bgp network import-check\n bgp graceful-restart\n timers bgp 3 9\n neighbor 198.18.0.5 remote-as 64512\n neighbor 198.18.0.5 timers connect 2\n"
    );
    if let Some(pw) = password {
        bgp.push_str(&format!(" neighbor 198.18.0.5 password {pw}\n"));
    }
    bgp.push_str(" neighbor 2001:db8:ffff::5 remote-as 64512\n neighbor 2001:db8:ffff::5 timers connect 2\n address-family ipv4 unicast\n  network 203.0.113.0/24\n  no neighbor 2001:db8:ffff::5 activate\n exit-address-family\n address-family ipv6 unicast\n  network 2001:db8:30::/48\n  neighbor 2001:db8:ffff::5 activate\n exit-address-family\n");
    lab.file("frr/bgpd.conf", &bgp);
    let (ok, out) = super::sh(
        &["chown", "-R", "frr:frr", &dd],
        std::time::Duration::from_secs(5),
    );
    assert!(ok, "chown: {out}");
    for daemon in ["zebra", "bgpd"] {
        let bin = format!("/usr/lib/frr/{daemon}");
        let pid = format!("{dd}/{daemon}.pid");
        let conf = format!("{dd}/{daemon}.conf");
        let api = format!("{dd}/zserv.api");
        let (ok, out) = lab.exec(
            node,
            &[
                &bin,
                "-d",
                "-u",
                "frr",
                "-g",
                "frr",
                "-i",
                &pid,
                "-z",
                &api,
                "--vty_socket",
                &dd,
                "-f",
                &conf,
                "-P",
                "0",
            ],
        );
        assert!(ok, "{daemon}: {out}");
        assert!(
            wait(10, || std::path::Path::new(&pid).exists()),
            "{daemon} wrote no pid file"
        );
        lab.track_pid_file(pid.into());
        if daemon == "zebra" {
            // bgpd must see eth0's IPv6 address or its first IPv6 session fails.
            assert!(wait(10, || vtysh(lab, node, &d, &["show interface eth0"])
                .1
                .contains("2001:db8:ffff::3")));
        }
    }
    d
}

/// Runs vtysh commands.
pub fn vtysh(lab: &Lab, node: &str, dir: &Path, cmds: &[&str]) -> (bool, String) {
    let mut v = vec!["vtysh", "--vty_socket", dir.to_str().unwrap()];
    for c in cmds {
        v.push("-c");
        v.push(c);
    }
    lab.exec(node, &v)
}

/// Starts ExaBGP in node `node` (index 4): one IPv4 session to the SUT carrying IPv4 and
/// IPv6, announcing `routes` (ExaBGP API lines) and logging what it receives as JSON.
pub fn exabgp(lab: &mut Lab, node: &str, routes: &[&str]) -> PathBuf {
    let d = lab.dir.join("exa");
    std::fs::create_dir_all(&d).unwrap();
    let dd = d.display().to_string();
    let cmds: Vec<String> = routes.iter().map(|r| format!("{r:?}")).collect();
    lab.file("exa/announce.py", &format!(
        "import sys, time\ntime.sleep(1)\nfor cmd in ({},):\n    sys.stdout.write(cmd + \"\\n\")\nsys.stdout.flush()\nfor _ in sys.stdin:\n    pass\n",
        cmds.join(", ")
    ));
    lab.file("exa/receive.py", &format!(
        "import sys\nwith open(\"{dd}/received.jsonl\", \"a\") as f:\n    for line in sys.stdin:\n        f.write(line); f.flush()\n"
    ));
    let conf = lab.file("exa/exabgp.conf", &format!(
        "process announce {{ run /usr/bin/python3 {dd}/announce.py; encoder text; }}\nprocess receive {{ run /usr/bin/python3 {dd}/receive.py; encoder json; }}\nneighbor 198.18.0.5 {{\n  router-id 198.18.0.4;\n  local-address 198.18.0.4;\n  local-as 64512;\n  peer-as 64512;\n  hold-time 9;\n  family {{ ipv4 unicast; ipv6 unicast; }}\n  capability {{ route-refresh; graceful-restart 120; }}\n  api {{ processes [ announce ]; }}\n  api {{ processes [ receive ]; receive {{ parsed; update; refresh; notification; }} neighbor-changes; }}\n}}\n"
    ));
    let log = format!("exabgp.log.destination={dd}/exabgp.log");
    lab.spawn(
        node,
        "exabgp",
        &[
            "env",
            "exabgp.daemon.user=root",
            "exabgp.daemon.daemonize=false",
            &log,
            "exabgp.api.cli=false",
            "exabgp",
            conf.to_str().unwrap(),
        ],
    );
    d.join("received.jsonl")
}
