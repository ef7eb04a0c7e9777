//! `cargo xtask lab ...`: the command-line face of [`crate::lab`].

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, XtaskError};
use crate::lab::state::{LabState, RUN_DIR};
use crate::lab::workload::WorkloadSpec;
use crate::lab::{self, Lab, UpOptions, status};

/// Usage of `cargo xtask lab`.
pub const USAGE: &str = "usage: cargo xtask lab <up|status|down|add|del> [options]

  up [--no-daemons] [--release] [--no-build] [--ready-timeout SECS] [--keep-on-failure] [--ipv6]
     [--routes-from-bgp]
        build, create three nodes on two segments behind a router, start tortie-control and
        tortie-fastpath in each (--no-daemons: leave forwarding to the kernel;
        --routes-from-bgp: other nodes' blocks are routed only from BGP, not from IPAM)
  status [-o json]
        where everything is: nodes, segments, datastore settings, CNI configuration
  down  stop the lab's daemons (by PID), detach its workloads, remove its namespaces and files
  add NAME --node NODE [--namespace NS] [--label KEY=VALUE]...
        attach a workload (network namespace tortie-lab-wl-NAME) with the CNI plugin
  del NAME
        detach it";

/// Runs `lab ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let run_dir = PathBuf::from(RUN_DIR);
    let Some((verb, rest)) = args.split_first() else {
        return Err(XtaskError::Usage(USAGE.into()));
    };
    match verb.as_str() {
        "up" => up(run_dir, rest),
        "status" => status(run_dir, rest),
        "down" => down(run_dir),
        "add" => add(run_dir, rest),
        "del" => {
            let [name] = rest else {
                return Err(XtaskError::Usage(USAGE.into()));
            };
            attached(run_dir)?.remove_workload(name)?;
            println!("{name}: detached");
            Ok(())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(XtaskError::Usage(format!(
            "unknown lab command {other:?}\n{USAGE}"
        ))),
    }
}

/// Options shared by `lab up` and the demo.
pub fn parse_up(run_dir: PathBuf, args: &[String]) -> Result<(UpOptions, bool, bool)> {
    let (mut daemons, mut release, mut build, mut keep_on_failure) = (true, false, true, false);
    let (mut ipv6, mut routes_from_bgp) = (false, false);
    let mut ready_timeout = Duration::from_secs(30);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-daemons" => daemons = false,
            "--release" => release = true,
            "--no-build" => build = false,
            "--keep-on-failure" => keep_on_failure = true,
            "--ipv6" => ipv6 = true,
            "--routes-from-bgp" => routes_from_bgp = true,
            "--ready-timeout" => {
                let secs: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| XtaskError::Usage("--ready-timeout needs seconds".into()))?;
                ready_timeout = Duration::from_secs(secs);
            }
            other => {
                return Err(XtaskError::Usage(format!(
                    "unknown option {other:?}\n{USAGE}"
                )));
            }
        }
    }
    let options = UpOptions {
        run_dir,
        bin_dir: crate::bin_dir(if release { "release" } else { "debug" }),
        daemons,
        ready_timeout,
        keep_on_failure,
        ipv6,
        routes_from_bgp,
    };
    Ok((options, release, build))
}

fn up(run_dir: PathBuf, args: &[String]) -> Result<()> {
    let (mut options, release, build) = parse_up(run_dir, args)?;
    if LabState::load(&options.run_dir)?.is_some() {
        println!(
            "A lab is already up (state in {}): `cargo xtask lab status` shows it, \
             `cargo xtask lab down` removes it.",
            options.run_dir.display()
        );
        return Ok(());
    }
    crate::packages::ensure(crate::packages::DEMO).map_err(XtaskError::Lab)?;
    if build {
        crate::packages::ensure(crate::packages::BUILD).map_err(XtaskError::Lab)?;
        options.bin_dir = crate::build_lab_binaries(options.daemons, release)?;
    }
    crate::interrupt::tear_down_on_signal(options.run_dir.clone()).map_err(XtaskError::Lab)?;
    let lab = Lab::up(&options)?;
    print!("{}", status::to_text(&status::to_json(&lab.state)));
    Ok(())
}

fn attached(run_dir: PathBuf) -> Result<Lab> {
    Lab::attach(&run_dir)?
        .ok_or_else(|| XtaskError::Lab("no lab is up (`cargo xtask lab up` starts one)".into()))
}

fn status(run_dir: PathBuf, args: &[String]) -> Result<()> {
    let json = match args {
        [] => false,
        [o, format] if o == "-o" && format == "json" => true,
        _ => return Err(XtaskError::Usage(USAGE.into())),
    };
    let lab = attached(run_dir)?;
    let value = status::to_json(&lab.state);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", status::to_text(&value));
    }
    Ok(())
}

fn down(run_dir: PathBuf) -> Result<()> {
    match lab::down(&run_dir)? {
        None => println!("No lab is up: nothing to remove."),
        Some(report) => {
            for line in report.workloads.iter().chain(&report.stopped) {
                println!("{line}");
            }
            println!(
                "Removed {} namespaces and {}.",
                report.namespaces.len(),
                run_dir.display()
            );
        }
    }
    Ok(())
}

fn add(run_dir: PathBuf, args: &[String]) -> Result<()> {
    let Some((name, rest)) = args.split_first() else {
        return Err(XtaskError::Usage(USAGE.into()));
    };
    let (mut node, mut namespace, mut labels) = (None, "default".to_string(), Vec::new());
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| XtaskError::Usage(format!("{arg} needs a value")))?;
        match arg.as_str() {
            "--node" => node = Some(value.clone()),
            "--namespace" => namespace = value.clone(),
            "--label" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| XtaskError::Usage(format!("--label {value}: KEY=VALUE")))?;
                labels.push((k.to_string(), v.to_string()));
            }
            other => return Err(XtaskError::Usage(format!("unknown option {other:?}"))),
        }
    }
    let node = node.ok_or_else(|| XtaskError::Usage("add needs --node".into()))?;
    let spec = WorkloadSpec {
        name: name.clone(),
        namespace,
        node,
        labels,
    };
    let record = attached(run_dir)?.add_workload(&spec)?;
    println!(
        "{} ({}) on {}: {} in network namespace {}",
        record.name, record.namespace, record.node, record.address, record.netns
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn reads_up_options() {
        let (options, release, build) = parse_up(
            "/run/x".into(),
            &args("--no-daemons --release --ready-timeout 7"),
        )
        .unwrap();
        assert!(!options.daemons && release && build);
        assert_eq!(options.ready_timeout, Duration::from_secs(7));
        assert!(options.bin_dir.ends_with("release"));
        let (options, _, build) =
            parse_up("/run/x".into(), &args("--no-build --keep-on-failure")).unwrap();
        assert!(options.daemons && !build && options.keep_on_failure);
    }

    #[test]
    fn rejects_unknown_options_and_missing_values() {
        assert!(parse_up("/run/x".into(), &args("--bogus")).is_err());
        assert!(parse_up("/run/x".into(), &args("--ready-timeout")).is_err());
        assert!(parse_up("/run/x".into(), &args("--ready-timeout soon")).is_err());
        assert!(run(&args("frobnicate")).is_err());
        assert!(run(&[]).is_err());
    }
}
