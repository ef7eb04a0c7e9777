//! Running programs: `ip`, `sysctl`, the built binaries, and programs inside a network
//! namespace: short-lived tools through `nsenter --net` (no mount namespace of their own), the
//! daemons through `ip netns exec` (a `/sys` that shows the namespace's interfaces).

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::error::{Result, XtaskError};

/// The path of a named network namespace created by `ip netns add`.
pub fn netns_path(namespace: &str) -> String {
    format!("/run/netns/{namespace}")
}

/// A command that runs `program` inside `namespace` (network namespace only).
pub fn in_netns(namespace: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={}", netns_path(namespace)))
        .arg("--")
        .arg(program);
    command
}

/// A command that runs `program` inside `namespace` with `ip netns exec`, which also gives it a
/// private mount of `/sys` for that namespace: programs that look interfaces up in
/// `/sys/class/net` (tortie-fastpath does) need it. `ip` execs the program in place, so the
/// child's PID is the program's.
///
/// `env --default-signal` in front gives the program default signal handling and an empty
/// signal mask: children inherit the mask, and the demo blocks SIGINT/SIGTERM in all its
/// threads to take them with `sigwait` (see [`crate::interrupt`]); a daemon started with them
/// blocked would never see the SIGTERM that `lab down` sends. `env` and `ip` both exec in
/// place, so the PID is still the program's.
pub fn in_netns_with_sysfs(namespace: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("env");
    command
        .args(["--default-signal", "ip", "netns", "exec", namespace])
        .arg(program);
    command
}

/// Runs `command`, failing with its output when it exits unsuccessfully.
pub fn run(command: &mut Command) -> Result<Output> {
    run_with_stdin(command, None)
}

/// Runs `command` with `stdin` written to it; fails with its output on an unsuccessful exit.
pub fn run_with_stdin(command: &mut Command, stdin: Option<&str>) -> Result<Output> {
    let output = output_with_stdin(command, stdin)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(command, &output))
    }
}

/// Runs `command` with `stdin`, returning its output whatever the exit status.
pub fn output_with_stdin(command: &mut Command, stdin: Option<&str>) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let spawn_error = |source| XtaskError::Spawn {
        program: program.clone(),
        source,
    };
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(spawn_error)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    child.wait_with_output().map_err(spawn_error)
}

/// The error for a command that exited unsuccessfully.
pub fn failure(command: &Command, output: &Output) -> XtaskError {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let text = if stderr.is_empty() {
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    } else {
        stderr
    };
    XtaskError::Command {
        command: describe(command),
        status: output.status.to_string(),
        output: text,
    }
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `ip ARGS...`.
pub fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// Runs `ip -n NAMESPACE ARGS...`.
pub fn ip_in(namespace: &str, args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(["-n", namespace]).args(args)).map(|_| ())
}

/// Sets one sysctl inside `namespace`.
pub fn sysctl_in(namespace: &str, setting: &str) -> Result<()> {
    run(in_netns(namespace, "sysctl").args(["-qw", setting])).map(|_| ())
}

/// The named network namespaces that exist now.
pub fn namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this process runs as root (namespaces, veths and daemons need it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}
