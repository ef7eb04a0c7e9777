//! The command driver shared by both binaries: environment and stdin in, stdout text and an
//! exit code out. Errors are the spec's JSON on stdout with a non-zero exit.

use crate::config::NetConf;
use crate::spec::{CniEnv, CniError, Command, version};
use crate::{ipam_plugin, log, plugin};

/// Which plugin is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    /// `tortie`.
    Main,
    /// `tortie-ipam`.
    Ipam,
}

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Text for stdout.
    pub stdout: String,
    /// Exit code.
    pub code: i32,
}

/// Runs one invocation.
pub fn run(which: Plugin, get_env: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Outcome {
    let fallback_version = version::sniff(stdin).unwrap_or_else(|| "1.1.0".to_string());
    match dispatch(which, get_env, stdin) {
        Ok(stdout) => Outcome { stdout, code: 0 },
        Err(err) => {
            tracing::error!(error = %err, "command failed");
            Outcome {
                stdout: err.to_json(&fallback_version),
                code: 1,
            }
        }
    }
}

fn dispatch(
    which: Plugin,
    get_env: impl Fn(&str) -> Option<String>,
    stdin: &[u8],
) -> Result<String, CniError> {
    let env = CniEnv::parse(get_env)?;
    if env.command == Command::Version {
        let requested = version::sniff(stdin).unwrap_or_else(|| "1.1.0".to_string());
        return Ok(version::version_answer(&requested));
    }
    let conf = NetConf::parse(stdin)?;
    log::init(&conf);
    tracing::debug!(command = ?env.command, container = %env.container_id, ifname = %env.ifname, "invoked");
    match (which, env.command) {
        (Plugin::Main, Command::Add) => plugin::add(&conf, &env, stdin).map(|r| r.to_json()),
        (Plugin::Main, Command::Del) => plugin::del(&conf, &env, stdin).map(|_| String::new()),
        (Plugin::Main, Command::Check) => plugin::check(&conf, &env, stdin).map(|_| String::new()),
        (Plugin::Main, Command::Status) => {
            plugin::status(&conf, &env, stdin).map(|_| String::new())
        }
        (Plugin::Main, Command::Gc) => plugin::gc(&conf, &env, stdin).map(|_| String::new()),
        (Plugin::Ipam, Command::Add) => ipam_plugin::add(&conf, &env).map(|r| r.to_json()),
        (Plugin::Ipam, Command::Del) => ipam_plugin::del(&conf, &env).map(|_| String::new()),
        (Plugin::Ipam, Command::Check) => ipam_plugin::check(&conf, &env).map(|_| String::new()),
        (Plugin::Ipam, Command::Status) => ipam_plugin::status(&conf).map(|_| String::new()),
        (Plugin::Ipam, Command::Gc) => ipam_plugin::gc(&conf).map(|_| String::new()),
        (_, Command::Version) => Ok(version::version_answer(&conf.cni_version)),
    }
}

/// Entry point for the binaries: reads stdin, runs, prints, exits.
pub fn main(which: Plugin) -> ! {
    use std::io::{Read, Write};
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let outcome = match read {
        Ok(_) => run(which, |k| std::env::var(k).ok(), &stdin),
        Err(err) => Outcome {
            stdout: CniError::new(
                crate::spec::Code::IoFailure,
                "cannot read stdin",
                err.to_string(),
            )
            .to_json("1.1.0"),
            code: 1,
        },
    };
    let mut out = std::io::stdout();
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    std::process::exit(outcome.code)
}
