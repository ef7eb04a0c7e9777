//! Starting a program inside a named network namespace without `ip netns exec` or `nsenter`.
//!
//! `tortie-perf netns-exec --netns NAME [--sysfs] -- PROGRAM ARGS...` (a hidden helper mode of
//! this binary) joins the namespace while it is still single-threaded and then `exec`s the
//! program, so everything the program does happens in the namespace. With `--sysfs` it
//! first takes a private mount namespace (mounts stay slaves of the host's) and mounts a
//! fresh sysfs on `/sys`, as `ip netns exec` does: sysfs shows the interfaces of the
//! namespace that mounted it, and tortie-fastpath and RPS settings look interfaces up there.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use super::NetnsError;

/// Arguments of the hidden `netns-exec` mode.
#[derive(Debug, clap::Args)]
pub struct NetnsExecArgs {
    /// Named network namespace (under /run/netns) to run in.
    #[arg(long)]
    pub netns: String,
    /// Give the program the namespace's own /sys (private mount namespace).
    #[arg(long)]
    pub sysfs: bool,
    /// Write VALUE to FILE (`FILE=VALUE`, after the namespace and /sys are set up) instead of
    /// running a program; repeatable.
    #[arg(long = "write", value_name = "FILE=VALUE")]
    pub writes: Vec<String>,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Join the namespace, set up `/sys` if asked, do the writes, then replace this process with
/// the program. Must run before this process starts any thread (mount namespaces can only be
/// unshared by a single-threaded process). Returns only on failure (or with no program, after
/// the writes).
pub fn run(args: &NetnsExecArgs) -> Result<(), NetnsError> {
    super::enter(&args.netns)?;
    if args.sysfs {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| NetnsError::os("unshare(CLONE_NEWNS)", e))?;
        // Our mounts must not leak back to the host's mount namespace.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| NetnsError::os("make / a slave mount", e))?;
        umount2("/sys", MntFlags::MNT_DETACH).map_err(|e| NetnsError::os("unmount /sys", e))?;
        mount(
            Some(args.netns.as_str()),
            "/sys",
            Some("sysfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| NetnsError::os(format!("mount the sysfs of {} on /sys", args.netns), e))?;
    }
    for w in &args.writes {
        let (file, value) = w
            .split_once('=')
            .ok_or_else(|| NetnsError::os(format!("--write {w:?}"), "FILE=VALUE expected"))?;
        std::fs::write(file, value.as_bytes())
            .map_err(|e| NetnsError::os(format!("write {value:?} to {file}"), e))?;
    }
    if args.command.is_empty() {
        return Ok(());
    }
    exec_program(&args.command).map(|_| ())
}

fn exec_program(command: &[OsString]) -> Result<Infallible, NetnsError> {
    let argv: Vec<CString> = command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|e| NetnsError::os("program arguments", e))?;
    nix::unistd::execvp(&argv[0], &argv)
        .map_err(|e| NetnsError::os(format!("exec {}", command[0].to_string_lossy()), e))
}

/// A command that runs `program` inside namespace `ns` through `helper` (a `tortie-perf`
/// binary) in its `netns-exec` mode; add the program's arguments to it.
pub fn command(helper: &Path, ns: &str, sysfs: bool, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(helper);
    c.args(["netns-exec", "--netns", ns]);
    if sysfs {
        c.arg("--sysfs");
    }
    c.arg("--").arg(program);
    c
}

/// A command that only writes `FILE=VALUE` pairs inside namespace `ns`, with its own sysfs
/// (for `/sys/class/net/...` settings such as RPS masks).
pub fn write_command(helper: &Path, ns: &str, writes: &[(String, String)]) -> Command {
    let mut c = Command::new(helper);
    c.args(["netns-exec", "--netns", ns, "--sysfs"]);
    for (file, value) in writes {
        c.arg("--write").arg(format!("{file}={value}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_namespace_and_program() {
        let c = command(Path::new("/bin/tp"), "ns1", true, "nft");
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["netns-exec", "--netns", "ns1", "--sysfs", "--", "nft"]
        );
        let w = write_command(
            Path::new("/bin/tp"),
            "ns1",
            &[("/sys/x".into(), "1".into())],
        );
        let args: Vec<_> = w
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "netns-exec",
                "--netns",
                "ns1",
                "--sysfs",
                "--write",
                "/sys/x=1"
            ]
        );
    }
}
