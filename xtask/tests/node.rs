//! The working node: three nodes running tortie-control and tortie-fastpath, workloads
//! attached by the CNI plugin, traffic through the AF_XDP dataplane. One lab serves every
//! check (bringing one up costs seconds); each check is recorded and all are reported together,
//! then the lab is taken down whatever happened. Needs root.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{Checks, LabGuard, capture, eventually, root_or_skip};
use xtask::demo::POLICY;
use xtask::lab::plan::{NODES, OUTSIDE_ADDR, OUTSIDE_NS, ROUTER_NS, SEG_A};
use xtask::matrix::{self, Matrix};
use xtask::probe::{self, PORT, Responder, Stream};

/// Quick probes: a working round trip in the lab takes well under a millisecond.
const QUICK: Duration = Duration::from_millis(300);
/// How long a new workload may take to be attached by the fastpath.
const SETTLE: Duration = Duration::from_secs(10);

/// Denies l-a1 -> l-b1 at a higher precedence than the allow policies; toggled to measure how
/// fast a policy change is enforced.
const BLOCK: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: block-a1
spec:
  order: 10
  selector: name == 'l-b1'
  types: [Ingress]
  ingress:
  - action: Deny
    source:
      selector: name == 'l-a1'
";

struct Net {
    netns: HashMap<&'static str, String>,
    addr: HashMap<&'static str, IpAddr>,
    responders: HashMap<&'static str, Responder>,
}

impl Net {
    fn tcp(&self, from: &str, to: &str, wait: Duration) -> Option<String> {
        probe::tcp(&self.netns[from], self.addr[to], PORT, wait).unwrap()
    }
}

#[test]
fn node_lab_with_daemons() {
    if !root_or_skip("node lab") {
        return;
    }
    let mut checks = Checks::default();
    let mut guard = LabGuard::up(true);
    let mut net = Net {
        netns: HashMap::new(),
        addr: HashMap::new(),
        responders: HashMap::new(),
    };
    for (name, ns, node, role) in [
        ("l-a1", "ns-a", "node1", "frontend"),
        ("l-b1", "ns-b", "node1", "backend"),
        ("l-a2", "ns-a", "node2", "frontend"),
        ("l-b3", "ns-b", "node3", "backend"),
    ] {
        let addr = guard.add(name, ns, node, role).parse().unwrap();
        let netns = guard.lab().workload(name).unwrap().netns.clone();
        net.responders
            .insert(name, Responder::start(&netns, name, PORT).unwrap());
        net.netns.insert(name, netns);
        net.addr.insert(name, addr);
    }

    connectivity(&mut checks, &net);
    allocator_setting(&mut checks, &mut guard);
    host_probes(&mut checks, &mut guard, &net);
    encapsulation(&mut checks, &net);
    nat_outgoing(&mut checks, &net);
    spoofing(&mut checks, &net);
    policy(&mut checks, &mut guard, &net);
    protocols(&mut checks, &mut guard, &net);
    latency(&mut checks, &mut guard, &net);
    control_crash(&mut checks, &mut guard, &net);
    fastpath_crash(&mut checks, &mut guard, &net);

    if checks.any_failed() {
        for record in &guard.lab().state.processes {
            eprintln!(
                "---- tortie-{}@{} log tail ----\n{}",
                record.role,
                record.node,
                xtask::lab::process::tail(&record.log, 20)
            );
        }
    }
    drop(net);
    drop(guard);
    checks.assert_all();
}

/// tortie-fastpath runs with glibc's huge-page setting (or the caller's own `GLIBC_TUNABLES`).
fn allocator_setting(checks: &mut Checks, guard: &mut LabGuard) {
    let expected =
        std::env::var("GLIBC_TUNABLES").unwrap_or_else(|_| "glibc.malloc.hugetlb=1".to_string());
    let fastpaths: Vec<_> = guard
        .lab()
        .state
        .processes
        .iter()
        .filter(|record| record.role == "fastpath")
        .map(|record| record.pid)
        .collect();
    let settings: Vec<Option<String>> = fastpaths
        .iter()
        .map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            environ
                .split(|byte| *byte == 0)
                .find_map(|entry| entry.strip_prefix(b"GLIBC_TUNABLES="))
                .map(|value| String::from_utf8_lossy(value).into_owned())
        })
        .collect();
    checks.record(
        "every tortie-fastpath runs with the huge-page allocator setting",
        fastpaths.len() == 3
            && settings
                .iter()
                .all(|value| value.as_deref() == Some(expected.as_str())),
        format!("pids {fastpaths:?}: {settings:?}"),
    );
}

/// Same node, same segment (native) and across the router (IP-in-IP): TCP, UDP and ICMP.
fn connectivity(checks: &mut Checks, net: &Net) {
    let first = eventually(SETTLE, || net.tcp("l-a1", "l-b1", QUICK).is_some());
    checks.record(
        "first TCP through the fastpath",
        first.is_some(),
        format!("after {first:?}"),
    );
    for (what, to) in [
        ("same node", "l-b1"),
        ("node1->node2 native", "l-a2"),
        ("node1->node3 IP-in-IP", "l-b3"),
    ] {
        let tcp = eventually(Duration::from_secs(3), || {
            net.tcp("l-a1", to, QUICK).as_deref() == Some(to)
        });
        checks.record(&format!("TCP {what}"), tcp.is_some(), format!("{tcp:?}"));
        let udp = eventually(Duration::from_secs(3), || {
            probe::udp(&net.netns["l-a1"], net.addr[to], PORT, None, QUICK)
                .unwrap()
                .as_deref()
                == Some(to)
        });
        checks.record(&format!("UDP {what}"), udp.is_some(), format!("{udp:?}"));
        let icmp = eventually(Duration::from_secs(3), || {
            probe::ping(&net.netns["l-a1"], net.addr[to]).unwrap()
        });
        checks.record(&format!("ICMP {what}"), icmp.is_some(), format!("{icmp:?}"));
    }
}

/// What crosses the wire: node1 -> node3 (another subnet) is IP-in-IP between the node
/// addresses on the router's segment-A leg; node1 -> node2 (same subnet) is the plain packet
/// on node2's bridge port. Seen with tcpdump.
fn encapsulation(checks: &mut Checks, net: &Net) {
    let (a1, a2) = (net.addr["l-a1"], net.addr["l-a2"]);
    let ipip = format!(
        "ip proto 4 and src host {} and dst host {}",
        NODES[0].addr, NODES[2].addr
    );
    let seen = capture(ROUTER_NS, "segA", &ipip, || {
        let _ = probe::ping(&net.netns["l-a1"], net.addr["l-b3"]);
    });
    checks.record(
        "node1->node3 travels IP-in-IP (CrossSubnet)",
        seen.contains("IP"),
        seen,
    );
    let native = format!("icmp and src host {a1} and dst host {a2}");
    let seen = capture(SEG_A.namespace, "node2", &native, || {
        let _ = probe::ping(&net.netns["l-a1"], a2);
    });
    checks.record(
        "node1->node2 travels native (same subnet)",
        seen.contains("ICMP echo request"),
        seen,
    );
}

/// natOutgoing: the outside host sees TCP and UDP from node1's address; ping gets its reply.
fn nat_outgoing(checks: &mut Checks, net: &Net) {
    let outside = Responder::start(OUTSIDE_NS, "outside", PORT).unwrap();
    let addr: IpAddr = OUTSIDE_ADDR.parse().unwrap();
    let ns = &net.netns["l-a1"];
    let tcp = eventually(Duration::from_secs(3), || {
        probe::tcp(ns, addr, PORT, QUICK).unwrap().is_some()
    });
    let udp = probe::udp(ns, addr, PORT, None, QUICK).unwrap();
    let icmp = probe::ping(ns, addr).unwrap();
    let seen: Vec<IpAddr> = outside.seen().iter().map(|a| a.ip()).collect();
    checks.record(
        "natOutgoing: outside sees node1's address (TCP, UDP), ping answered",
        tcp.is_some()
            && udp.is_some()
            && icmp
            && seen.len() >= 2
            && seen.iter().all(|ip| ip.to_string() == NODES[0].addr),
        format!("tcp {tcp:?}, udp {udp:?}, icmp {icmp}, sources seen {seen:?}"),
    );
}

/// A workload sending from an address it was not given is dropped.
fn spoofing(checks: &mut Checks, net: &Net) {
    let spoofed: IpAddr = "198.19.15.250".parse().unwrap();
    let ns = &net.netns["l-a1"];
    let added = xtask::exec::ip_in(ns, &["addr", "add", "198.19.15.250/32", "dev", "eth0"]);
    for to in ["l-b1", "l-b3"] {
        net.responders[to].clear_seen();
        let _ = probe::udp(ns, net.addr[to], PORT, Some(spoofed), QUICK);
        let genuine = probe::udp(ns, net.addr[to], PORT, None, QUICK).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let seen: Vec<IpAddr> = net.responders[to].seen().iter().map(|a| a.ip()).collect();
        checks.record(
            &format!("spoofed source to {to} dropped (genuine one passes)"),
            added.is_ok() && genuine.is_some() && !seen.contains(&spoofed),
            format!("seen {seen:?}, genuine reply {genuine:?}"),
        );
    }
}

/// After the demo policy, every pair's TCP outcome agrees with `tortiectl policy explain`.
fn policy(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let tool = guard.lab().tortiectl();
    let workloads = guard.lab().state.workloads.clone();
    tool.apply(POLICY).unwrap();
    let mut last = None;
    let agreed = eventually(Duration::from_secs(10), || {
        let matrix = Matrix::measure(&workloads, PORT, Some(&tool)).unwrap();
        let ok = matrix.disagreements().is_empty();
        last = Some(matrix);
        ok
    });
    let matrix = last.unwrap();
    let cells: Vec<_> = matrix.cells.iter().flatten().flatten().collect();
    let mixed = cells.iter().any(|c| c.allowed == Some(true))
        && cells.iter().any(|c| c.allowed == Some(false));
    checks.record(
        "policy enforcement agrees with policy explain (TCP matrix)",
        agreed.is_some() && mixed,
        format!("after {agreed:?}\n{}", matrix.render()),
    );
    let udp = probe::udp(&net.netns["l-a1"], net.addr["l-b1"], PORT, None, QUICK).unwrap();
    checks.record(
        "UDP frontend->backend denied by policy",
        udp.is_none(),
        format!("{udp:?}"),
    );
}

/// Denies all ingress to l-b1: workloads are refused, the node's own probes are not.
const DENY_B1: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-all-to-b1
spec:
  order: 5
  selector: name == 'l-b1'
  types: [Ingress]
";

/// An HTTP-style exchange from `namespace`: connect, read the greeting, send a request and
/// read it back whole (the responder echoes). Returns what came back, or why it failed.
fn http_style(namespace: &str, addr: IpAddr) -> Result<String, String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    xtask::netns::run_in(namespace, move || {
        let stream = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(addr, PORT),
            Duration::from_secs(1),
        )
        .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
        let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        reader
            .read_line(&mut greeting)
            .map_err(|e| format!("greeting: {e}"))?;
        writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("request: {e}"))?;
        let mut answer = vec![0u8; request.len()];
        reader
            .read_exact(&mut answer)
            .map_err(|e| format!("response: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if answer == request {
            Ok(greeting.trim().to_string())
        } else {
            Err(format!("response {answer:?}"))
        }
    })
    .map_err(|e| e.to_string())?
}

/// Health probes: the node reaches its local workload through the fastpath (the kernel routes
/// workload addresses via tortie-hostk), by TCP, an HTTP-style exchange, UDP and ping, also
/// while a default-deny ingress policy selects the workload (host-originated traffic is not
/// policed by workload ingress policy, as in Calico).
fn host_probes(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let node = NODES[0].namespace;
    let b1 = net.addr["l-b1"];
    let route = std::process::Command::new("ip")
        .args(["netns", "exec", node, "ip", "route", "get", &b1.to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    checks.record(
        "node1 routes its workload's address through the fastpath (tortie-hostk)",
        route.contains("dev tortie-hostk"),
        route.trim().to_string(),
    );
    let tool = guard.lab().tortiectl();
    for denied in [false, true] {
        let phase = if denied {
            tool.apply(DENY_B1).unwrap();
            let enforced = eventually(Duration::from_secs(5), || {
                net.tcp("l-a1", "l-b1", QUICK).is_none()
            });
            checks.record(
                "default-deny ingress on l-b1 refuses workloads",
                enforced.is_some(),
                format!("after {enforced:?}"),
            );
            "under default-deny ingress"
        } else {
            "open"
        };
        let tcp = eventually(Duration::from_secs(3), || {
            probe::tcp(node, b1, PORT, QUICK).unwrap().as_deref() == Some("l-b1")
        });
        checks.record(
            &format!("node1 -> local workload TCP ({phase})"),
            tcp.is_some(),
            format!("{tcp:?}"),
        );
        let http = http_style(node, b1);
        checks.record(
            &format!("node1 -> local workload HTTP-style exchange ({phase})"),
            http.as_deref() == Ok("l-b1"),
            format!("{http:?}"),
        );
        let udp = probe::udp(node, b1, PORT, None, QUICK).unwrap();
        checks.record(
            &format!("node1 -> local workload UDP ({phase})"),
            udp.as_deref() == Some("l-b1"),
            format!("{udp:?}"),
        );
        let icmp = eventually(Duration::from_secs(2), || probe::ping(node, b1).unwrap());
        checks.record(
            &format!("node1 -> local workload ping ({phase})"),
            icmp.is_some(),
            format!("{icmp:?}"),
        );
    }
    tool.delete(DENY_B1).unwrap();
    let reopened = eventually(Duration::from_secs(5), || {
        net.tcp("l-a1", "l-b1", QUICK).is_some()
    });
    checks.record(
        "l-a1 -> l-b1 open again after the default-deny is deleted",
        reopened.is_some(),
        format!("after {reopened:?}"),
    );
}

/// Lets frontends send UDP 8080 and ICMP to backends (on top of the demo policy).
const UDP_ICMP: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: frontend-udp-icmp
spec:
  order: 200
  selector: role == 'frontend'
  types: [Egress]
  egress:
  - action: Allow
    protocol: UDP
    destination:
      selector: role == 'backend'
      ports: [8080]
  - action: Allow
    protocol: ICMP
    destination:
      selector: role == 'backend'
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: backend-udp-icmp
spec:
  order: 200
  selector: role == 'backend'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: UDP
    source:
      selector: role == 'frontend'
    destination:
      ports: [8080]
  - action: Allow
    protocol: ICMP
    source:
      selector: role == 'frontend'
";

/// With UDP and ICMP allowed frontend -> backend, every ordered pair's UDP datagram and ping
/// agree with `tortiectl policy explain` for that protocol.
fn protocols(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let tool = guard.lab().tortiectl();
    let workloads = guard.lab().state.workloads.clone();
    tool.apply(UDP_ICMP).unwrap();
    let opened = eventually(Duration::from_secs(5), || {
        probe::udp(&net.netns["l-a1"], net.addr["l-b3"], PORT, None, QUICK)
            .unwrap()
            .is_some()
    });
    let mut probes = Vec::new();
    for from in &workloads {
        for to in &workloads {
            if from.name == to.name {
                continue;
            }
            let (ns, addr) = (from.netns.clone(), to.address.parse::<IpAddr>().unwrap());
            let pair = format!("{}->{}", from.name, to.name);
            let udp = matrix::explain_allows(&tool, from, to, "UDP", Some(PORT)).unwrap();
            let icmp = matrix::explain_allows(&tool, from, to, "ICMP", None).unwrap();
            probes.push(std::thread::spawn(move || {
                let got_udp = probe::udp(&ns, addr, PORT, None, QUICK).unwrap().is_some();
                let got_icmp = probe::ping(&ns, addr).unwrap();
                (pair, udp, got_udp, icmp, got_icmp)
            }));
        }
    }
    let mut disagreements = Vec::new();
    let mut allowed = 0;
    for probe in probes {
        let (pair, udp, got_udp, icmp, got_icmp) = probe.join().unwrap();
        allowed += usize::from(udp) + usize::from(icmp);
        if udp != got_udp {
            disagreements.push(format!("{pair} UDP explain {udp} traffic {got_udp}"));
        }
        if icmp != got_icmp {
            disagreements.push(format!("{pair} ICMP explain {icmp} traffic {got_icmp}"));
        }
    }
    checks.record(
        "UDP and ICMP enforcement agrees with policy explain (12 pairs each)",
        opened.is_some() && allowed > 0 && disagreements.is_empty(),
        format!(
            "opened after {opened:?}; {allowed} allowed cells; disagreements {disagreements:?}"
        ),
    );
    tool.delete(UDP_ICMP).unwrap();
}

/// Time from `tortiectl apply`/`delete` to the dataplane enforcing it, over 20 changes.
///
/// A sample ends when the probe that first sees the new state was *sent* (its SYN left at that
/// moment and met the new rules), so a blocked probe's timeout is not counted; probes follow
/// each other every 10 ms, and a probe in the allow direction waits at most 100 ms.
fn latency(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let tool = guard.lab().tortiectl();
    let (mut samples, mut tool_times) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let block = i % 2 == 0;
        let started = Instant::now();
        if block {
            tool.apply(BLOCK).unwrap();
        } else {
            tool.delete(BLOCK).unwrap();
        }
        tool_times.push(started.elapsed());
        let sample = loop {
            let sent = Instant::now();
            let reached = net
                .tcp("l-a1", "l-b1", Duration::from_millis(100))
                .is_some();
            if reached != block {
                break Some(sent - started);
            }
            if started.elapsed() > Duration::from_secs(5) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let Some(sample) = sample else {
            checks.record(
                "policy change latency",
                false,
                format!("change {i} not enforced in 5 s"),
            );
            return;
        };
        samples.push(sample);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let percentile = |values: &mut Vec<Duration>, p: usize| {
        values.sort();
        values[(values.len() * p).div_ceil(100) - 1]
    };
    let (p50, p99) = (percentile(&mut samples, 50), percentile(&mut samples, 99));
    let tool_p50 = percentile(&mut tool_times, 50);
    checks.record(
        "policy change latency (20 changes, tortiectl start to enforced)",
        p99 < Duration::from_secs(2),
        format!(
            "p50 {:.0} ms, p99 {:.0} ms (tortiectl itself: p50 {:.0} ms)",
            ms(p50),
            ms(p99),
            ms(tool_p50)
        ),
    );
}

/// `kill -9` tortie-control on node1 while a TCP stream runs: the stream goes on; the restarted
/// control resyncs and enforces the next change.
fn control_crash(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let stream = Stream::open(&net.netns["l-a1"], net.addr["l-b3"], PORT).unwrap();
    let Ok(mut stream) = stream else {
        checks.record(
            "stream survives tortie-control kill -9",
            false,
            format!("{:?}", stream.err()),
        );
        return;
    };
    let runner = std::thread::spawn(move || {
        stream.exchange(60, Duration::from_millis(50), Duration::from_secs(2))
    });
    std::thread::sleep(Duration::from_millis(500));
    let killed = guard.lab().crash_daemon("node1", "control");
    let restarted = guard.lab().start_daemon("node1", "control").and_then(|_| {
        guard
            .lab()
            .wait_ready("node1", "control", Duration::from_secs(30))
    });
    let report = runner.join().unwrap();
    checks.record(
        "stream survives tortie-control kill -9",
        killed && report.error.is_none() && report.echoed == 60,
        format!("{report:?}; restart {restarted:?}"),
    );
    let tool = guard.lab().tortiectl();
    tool.apply(BLOCK).unwrap();
    let blocked = eventually(Duration::from_secs(5), || {
        net.tcp("l-a1", "l-b1", QUICK).is_none()
    });
    tool.delete(BLOCK).unwrap();
    let open = eventually(Duration::from_secs(5), || {
        net.tcp("l-a1", "l-b1", QUICK).is_some()
    });
    checks.record(
        "restarted tortie-control resyncs and enforces changes",
        restarted.is_ok() && blocked.is_some() && open.is_some(),
        format!("blocked after {blocked:?}, reopened after {open:?}"),
    );
}

/// `kill -9` tortie-fastpath on node1, restarted at once: traffic flows again within 2 s.
fn fastpath_crash(checks: &mut Checks, guard: &mut LabGuard, net: &Net) {
    let killed = guard.lab().crash_daemon("node1", "fastpath");
    let started = Instant::now();
    let restarted = guard.lab().start_daemon("node1", "fastpath");
    let flowing = eventually(Duration::from_secs(10), || {
        net.tcp("l-a1", "l-b3", QUICK).is_some()
    });
    let took = started.elapsed();
    checks.record(
        "traffic flows within 2 s of a tortie-fastpath restart",
        killed && restarted.is_ok() && flowing.is_some() && took <= Duration::from_secs(2),
        format!(
            "killed {killed}, flowing after {flowing:?} ({:.2} s from restart)",
            took.as_secs_f64()
        ),
    );
    let ready = guard
        .lab()
        .wait_ready("node1", "fastpath", Duration::from_secs(10));
    checks.record(
        "restarted tortie-fastpath is ready",
        ready.is_ok(),
        format!("{ready:?}"),
    );
}
