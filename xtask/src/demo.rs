//! `cargo xtask demo`: the README's main command.
//!
//! Brings up the lab (three nodes on two segments, tortie-control and tortie-fastpath in each),
//! attaches four workloads in two Kubernetes-style namespaces with the `tortie` CNI plugin,
//! shows a connectivity matrix made of real TCP connections, applies a default-deny policy and
//! one allow rule with `tortiectl`, shows the matrix again beside `tortiectl policy explain`,
//! and takes the lab down (also after a failure or a Ctrl-C).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Result, XtaskError};
use crate::lab::datastore::Tortiectl;
use crate::lab::plan::{OUTSIDE_ADDR, OUTSIDE_NS};
use crate::lab::state::{LabState, RUN_DIR};
use crate::lab::workload::WorkloadSpec;
use crate::lab::{Lab, status};
use crate::matrix::Matrix;
use crate::probe::{self, PORT, Responder};
use crate::{lab_command, packages};

/// The demo's workloads: (name, namespace, node, role).
pub const WORKLOADS: [(&str, &str, &str, &str); 4] = [
    ("frontend-1", "ns-a", "node1", "frontend"),
    ("backend-1", "ns-b", "node1", "backend"),
    ("frontend-2", "ns-a", "node2", "frontend"),
    ("backend-3", "ns-b", "node3", "backend"),
];

/// Default deny for both namespaces, then frontends may open TCP 8080 to backends.
pub const POLICY: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: default-deny
spec:
  order: 1000
  selector: projectcalico.org/namespace in {'ns-a', 'ns-b'}
  types: [Ingress, Egress]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: frontend-to-backend
spec:
  order: 100
  selector: role == 'frontend'
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination:
      selector: role == 'backend'
      ports: [8080]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: backend-from-frontend
spec:
  order: 100
  selector: role == 'backend'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'frontend'
    destination:
      ports: [8080]
";

/// Runs the demo: `[--no-daemons] [--release] [--no-build] [--keep]`.
pub fn run(args: &[String]) -> Result<()> {
    let keep = args.iter().any(|a| a == "--keep");
    let rest: Vec<String> = args.iter().filter(|a| *a != "--keep").cloned().collect();
    let (mut options, release, build) = lab_command::parse_up(PathBuf::from(RUN_DIR), &rest)?;
    packages::ensure(packages::BUILD).map_err(XtaskError::Lab)?;
    packages::ensure(packages::DEMO).map_err(XtaskError::Lab)?;
    if !packages::is_root() {
        return Err(XtaskError::Lab(
            "the demo builds network namespaces and needs root: run `sudo cargo xtask demo`".into(),
        ));
    }
    if LabState::load(&options.run_dir)?.is_some() {
        return Err(XtaskError::Lab(
            "a lab is already up: `cargo xtask lab down` first (the demo makes its own)".into(),
        ));
    }
    if build {
        options.bin_dir = crate::build_lab_binaries(options.daemons, release)?;
    }
    crate::interrupt::tear_down_on_signal(options.run_dir.clone()).map_err(XtaskError::Lab)?;

    banner("1. A lab: three nodes, two segments, a router, one datastore");
    let mut lab = Lab::up(&options)?;
    print!("{}", status::to_text(&status::to_json(&lab.state)));
    let outcome = scenes(&mut lab);
    if keep && outcome.is_ok() {
        println!("\nThe lab stays up (--keep): `cargo xtask lab status`, `cargo xtask lab down`.");
        return Ok(());
    }
    banner("7. Taking the lab down");
    match lab.down() {
        Ok(report) => {
            for line in &report.stopped {
                println!("{line}");
            }
            println!("removed {} namespaces", report.namespaces.len());
        }
        Err(err) => eprintln!("lab down: {err}"),
    }
    outcome?;
    println!("\nDemo complete.");
    Ok(())
}

fn banner(title: &str) {
    println!("\n==== {title} ====");
}

/// Echoes and runs a tortiectl command, printing what it prints; says so when it fails.
fn show(tool: &Tortiectl, args: &[&str]) -> Result<()> {
    println!("\n$ tortiectl {}", args.join(" "));
    let (ok, text) = tool.try_run(args)?;
    print!("{text}");
    if !ok {
        println!("(tortiectl {} failed)", args.join(" "));
    }
    Ok(())
}

/// Shows that tortiectl rejects a file with a mistake, writing nothing; fails if it does not.
fn show_rejected(tool: &Tortiectl) -> Result<()> {
    let relative = "control/cli/examples/demo-bad/bad-policy.yaml";
    let bad = crate::workspace_root().join(relative);
    if !bad.exists() {
        return Ok(());
    }
    println!(
        "\n# A file with a mistake is rejected as a whole, naming file, document, line and field:"
    );
    println!("$ tortiectl apply -f {relative}");
    let (ok, text) = tool.try_run(&["apply", "-f", &bad.display().to_string()])?;
    print!("{}", text.replace(&bad.display().to_string(), relative));
    if ok {
        return Err(XtaskError::Lab(format!("tortiectl accepted {relative}")));
    }
    Ok(())
}

fn scenes(lab: &mut Lab) -> Result<()> {
    let tool = lab.tortiectl();
    let enforced = lab.state.daemons;

    banner("2. Workloads attached by the tortie CNI plugin");
    let mut responders = Vec::new();
    for (name, namespace, node, role) in WORKLOADS {
        let spec = WorkloadSpec::new(name, namespace, node, &[("role", role), ("app", "demo")]);
        let record = lab.add_workload(&spec)?;
        println!(
            "ADD {name:11} {namespace}/{role:9} on {node}: {}",
            record.address
        );
        responders.push(Responder::start(&record.netns, name, PORT)?);
    }
    show(&tool, &["get", "workloadendpoints", "-A", "-o", "wide"])?;
    show(&tool, &["ipam", "show", "--show-blocks"])?;

    banner("3. Connectivity before any policy (real TCP connections to port 8080)");
    let workloads = lab.state.workloads.clone();
    let before = Matrix::measure(&workloads, PORT, Some(&tool))?;
    print!("{}", before.render());
    let outside = Responder::start(OUTSIDE_NS, "outside", PORT)?;
    let from = &workloads[0];
    let outside_addr: IpAddr = OUTSIDE_ADDR
        .parse()
        .unwrap_or(IpAddr::from([198, 18, 3, 2]));
    let answer = probe::tcp(&from.netns, outside_addr, PORT, Duration::from_secs(1))?;
    let seen: Vec<String> = outside.seen().iter().map(|a| a.ip().to_string()).collect();
    println!(
        "\n{} ({}) -> outside host {OUTSIDE_ADDR}:{PORT}: {}; the outside host saw it come from {}",
        from.name,
        from.address,
        if answer.is_some() { "ok" } else { "blocked" },
        if seen.is_empty() {
            "nobody".to_string()
        } else {
            seen.join(", ")
        }
    );
    drop(outside);

    banner("4. Default deny, then frontends may open TCP 8080 to backends");
    print!("{POLICY}");
    println!("$ tortiectl apply -f policy.yaml");
    print!("{}", tool.apply(POLICY)?);
    let started = Instant::now();
    let after = loop {
        let matrix = Matrix::measure(&workloads, PORT, Some(&tool))?;
        if !enforced
            || matrix.disagreements().is_empty()
            || started.elapsed() > Duration::from_secs(10)
        {
            break matrix;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    print!("{}", after.render());
    if !enforced {
        println!(
            "(kernel forwarding, --no-daemons: nothing enforces policy, so cells marked (!) \
             disagree with policy explain)"
        );
    } else if after.disagreements().is_empty() {
        println!(
            "(every cell matches tortiectl policy explain; checked {:.1} s after the apply)",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("(!) marks cells where the dataplane disagrees with tortiectl policy explain");
    }

    banner("5. Why: tortiectl policy explain");
    show(
        &tool,
        &[
            "policy",
            "explain",
            "--from",
            "ns-a/frontend-1",
            "--to",
            "ns-b/backend-3",
            "--protocol",
            "TCP",
            "--port",
            "8080",
        ],
    )?;
    show(
        &tool,
        &[
            "policy",
            "explain",
            "--from",
            "ns-b/backend-1",
            "--to",
            "ns-a/frontend-2",
            "--protocol",
            "TCP",
            "--port",
            "8080",
        ],
    )?;

    banner("6. Nodes as the dataplane reports them");
    show(&tool, &["node", "status"])?;
    println!(
        "\n# node1's routes; CrossSubnet encapsulates only toward a node on another subnet (node3):"
    );
    show(&tool, &["node", "routes", "--node", "node1"])?;
    drop(responders);
    show_rejected(&tool)?;
    if enforced && !after.disagreements().is_empty() {
        return Err(XtaskError::Lab(format!(
            "the dataplane disagrees with policy explain on {:?}",
            after.disagreements()
        )));
    }
    Ok(())
}
