//! Command-line uses of the `tortie` binary besides CNI, for hosts without `ethtool` (lab
//! scripts, troubleshooting). A runtime runs the plugin without arguments, so any argument
//! selects this mode; Calico's plugin binary likewise answers flags of its own.
//!
//! ```text
//! tortie disable-tx-checksum [--netns PATH] IFNAME...   # ethtool -K IFNAME tx off
//! tortie show-offloads [--netns PATH] IFNAME            # ethtool -k IFNAME
//! ```

use crate::offload;

const USAGE: &str = "usage: tortie disable-tx-checksum [--netns PATH] IFNAME...\n       \
                     tortie show-offloads [--netns PATH] IFNAME";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCommand {
    /// Turn TX checksum offload off on each interface.
    DisableTxChecksum {
        netns: Option<String>,
        interfaces: Vec<String>,
    },
    /// Print the interface's features, one `name: on|off` line each.
    ShowOffloads {
        netns: Option<String>,
        interface: String,
    },
}

/// Parses the arguments after the program name; the error is the usage text with the reason.
pub fn parse(args: &[String]) -> Result<ToolCommand, String> {
    let (command, rest) = args.split_first().ok_or_else(|| USAGE.to_string())?;
    let mut netns = None;
    let mut names = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--netns" => match iter.next() {
                Some(path) if netns.is_none() => netns = Some(path.clone()),
                Some(_) => return Err(format!("--netns given twice\n{USAGE}")),
                None => return Err(format!("--netns needs a path\n{USAGE}")),
            },
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n{USAGE}"));
            }
            name => names.push(name.to_string()),
        }
    }
    match (command.as_str(), names.len()) {
        ("disable-tx-checksum", 1..) => Ok(ToolCommand::DisableTxChecksum {
            netns,
            interfaces: names,
        }),
        ("show-offloads", 1) => Ok(ToolCommand::ShowOffloads {
            netns,
            interface: names.remove(0),
        }),
        ("disable-tx-checksum" | "show-offloads", n) => {
            Err(format!("{command}: {n} interface names given\n{USAGE}"))
        }
        _ => Err(format!("unknown command {command:?}\n{USAGE}")),
    }
}

/// Runs a command; returns the text for stdout, or the error for stderr.
pub fn execute(command: &ToolCommand) -> Result<String, String> {
    match command {
        ToolCommand::DisableTxChecksum { netns, interfaces } => {
            for name in interfaces {
                offload::disable_tx_checksum(netns.as_deref(), name)
                    .map_err(|err| format!("{name}: {err}"))?;
            }
            Ok(String::new())
        }
        ToolCommand::ShowOffloads { netns, interface } => {
            let features = offload::features(netns.as_deref(), interface)
                .map_err(|err| format!("{interface}: {err}"))?;
            let mut out = String::new();
            for name in features.changeable.union(&features.active) {
                let state = if features.active.contains(name) {
                    "on"
                } else {
                    "off"
                };
                let fixed = if features.changeable.contains(name) {
                    ""
                } else {
                    " [fixed]"
                };
                out.push_str(&format!("{name}: {state}{fixed}\n"));
            }
            Ok(out)
        }
    }
}

/// Entry point when the binary got arguments: prints and returns the exit code (0 done,
/// 1 failed, 2 bad usage).
pub fn main(args: &[String]) -> i32 {
    match parse(args) {
        Err(usage) => {
            eprintln!("{usage}");
            2
        }
        Ok(command) => match execute(&command) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(err) => {
                eprintln!("tortie: {err}");
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn commands_parse_with_and_without_a_namespace() {
        assert_eq!(
            parse(&args("disable-tx-checksum --netns /run/netns/x eth0 eth1")),
            Ok(ToolCommand::DisableTxChecksum {
                netns: Some("/run/netns/x".into()),
                interfaces: vec!["eth0".into(), "eth1".into()],
            })
        );
        assert_eq!(
            parse(&args("show-offloads lo")),
            Ok(ToolCommand::ShowOffloads {
                netns: None,
                interface: "lo".into(),
            })
        );
    }

    #[test]
    fn bad_command_lines_say_why() {
        for (line, why) in [
            ("", "usage"),
            ("frobnicate eth0", "unknown command"),
            ("disable-tx-checksum", "0 interface names"),
            ("show-offloads a b", "2 interface names"),
            ("show-offloads --netns", "needs a path"),
            ("show-offloads --netns a --netns b eth0", "twice"),
            ("show-offloads -x eth0", "unknown option -x"),
        ] {
            let err = parse(&args(line)).expect_err(line);
            assert!(err.contains(why), "{line:?}: {err}");
            assert!(err.contains("usage:"), "{line:?}: {err}");
        }
    }
}
