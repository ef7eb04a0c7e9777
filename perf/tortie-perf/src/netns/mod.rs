//! Network namespaces and netlink, without the `ip` binary.
//!
//! The harness builds its generator → DUT → sink topologies here: namespaces are created the
//! way iproute2 does it (a thread unshares its network namespace and bind-mounts
//! `/proc/thread-self/ns/net` onto `/run/netns/NAME`, so other tools see them too), links,
//! addresses, routes and neighbours go through rtnetlink from a thread that has joined the
//! namespace (`setns` is per thread), and sysctls are written under `/proc/sys/net` from such
//! a thread (the file follows the writer's namespace). Programs that must run inside a
//! namespace (iptables-restore, ipset, nft, tortie-fastpath) are started through
//! [`exec`]'s `netns-exec` helper mode of this binary, which also gives them the namespace's
//! own `/sys`.

pub mod exec;
pub mod link;

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named network namespaces live (the iproute2 convention).
pub const NETNS_DIR: &str = "/run/netns";

/// Why a namespace or netlink step failed; the message names the step, namespace and object.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A system call or file operation failed.
    #[error("{step}: {reason}")]
    Os {
        /// What was being done (with the namespace or path).
        step: String,
        /// What the OS said.
        reason: String,
    },
    /// A netlink request failed.
    #[error("netlink {step}: {reason}")]
    Netlink {
        /// The request (with the interface or address).
        step: String,
        /// The kernel's answer.
        reason: String,
    },
    /// A name that cannot be a namespace or interface name.
    #[error(
        "invalid name {0:?}: 1 to 15 characters of [A-Za-z0-9._-] expected for links, no '/' for namespaces"
    )]
    BadName(String),
}

impl NetnsError {
    /// An OS error at `step`.
    pub fn os(step: impl Into<String>, reason: impl std::fmt::Display) -> NetnsError {
        NetnsError::Os {
            step: step.into(),
            reason: reason.to_string(),
        }
    }

    /// A netlink error at `step`.
    pub fn netlink(step: impl Into<String>, reason: impl std::fmt::Display) -> NetnsError {
        NetnsError::Netlink {
            step: step.into(),
            reason: reason.to_string(),
        }
    }
}

/// `/run/netns/NAME`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

fn check_ns_name(name: &str) -> Result<(), NetnsError> {
    if name.is_empty() || name.len() > 200 || name.contains('/') || name == "." || name == ".." {
        return Err(NetnsError::BadName(name.to_string()));
    }
    Ok(())
}

/// Make `/run/netns` exist and be a shared mount point, as `ip netns add` does, so a
/// namespace mounted later is seen by every mount namespace that shares it.
fn prepare_dir() -> Result<(), NetnsError> {
    std::fs::create_dir_all(NETNS_DIR)
        .map_err(|e| NetnsError::os(format!("mkdir {NETNS_DIR}"), e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>).is_ok() {
        return Ok(());
    }
    // Not a mount point yet: bind it onto itself first.
    mount(
        Some(NETNS_DIR),
        NETNS_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| NetnsError::os(format!("bind-mount {NETNS_DIR} onto itself"), e))?;
    mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>)
        .map_err(|e| NetnsError::os(format!("make {NETNS_DIR} shared"), e))
}

/// Create the named network namespace (`ip netns add NAME`) with its loopback up.
pub fn create(name: &str) -> Result<(), NetnsError> {
    check_ns_name(name)?;
    prepare_dir()?;
    let target = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|e| NetnsError::os(format!("create {}", target.display()), e))?;
    let t = target.clone();
    let made = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetnsError::os("unshare(CLONE_NEWNET)", e))?;
        // `/proc/self` would name the thread group leader's namespace, not this thread's.
        mount(
            Some("/proc/thread-self/ns/net"),
            &t,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            NetnsError::os(
                format!("bind-mount the new namespace on {}", t.display()),
                e,
            )
        })
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError::os("namespace thread", "panicked")));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    let up = netlink(Some(name), async |h| link::set_up(&h, "lo").await);
    if let Err(e) = up {
        let _ = delete(name);
        return Err(e);
    }
    Ok(())
}

/// Delete the named namespace (`ip netns del NAME`): unmount and remove its file. Its
/// interfaces go with it once nothing else holds it.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    check_ns_name(name)?;
    let target = path(name);
    umount2(&target, MntFlags::MNT_DETACH)
        .map_err(|e| NetnsError::os(format!("unmount {}", target.display()), e))?;
    std::fs::remove_file(&target)
        .map_err(|e| NetnsError::os(format!("remove {}", target.display()), e))
}

/// The names under `/run/netns` (`ip netns list`); empty when the directory is absent.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Join the named namespace on the calling thread (only this thread moves).
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let p = path(name);
    let f = File::open(&p).map_err(|e| NetnsError::os(format!("open {}", p.display()), e))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::os(format!("setns into {name}"), e))
}

/// Run `work` on a fresh thread inside namespace `ns` (`None`: the caller's namespace); the
/// caller's own thread never moves.
pub fn run_in<T: Send + 'static>(
    ns: Option<&str>,
    work: impl FnOnce() -> Result<T, NetnsError> + Send + 'static,
) -> Result<T, NetnsError> {
    let ns = ns.map(str::to_string);
    std::thread::spawn(move || {
        if let Some(ns) = &ns {
            enter(ns)?;
        }
        work()
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError::os("namespace worker thread", "panicked")))
}

/// Run one asynchronous netlink job inside namespace `ns` (`None`: the caller's), on a
/// private single-threaded runtime whose socket is opened after joining the namespace.
pub fn netlink<T: Send + 'static>(
    ns: Option<&str>,
    work: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, NetnsError> + Send + 'static,
) -> Result<T, NetnsError> {
    run_in(ns, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| NetnsError::os("start the netlink runtime", e))?;
        runtime.block_on(async move {
            let (connection, handle, _) = rtnetlink::new_connection()
                .map_err(|e| NetnsError::os("open a netlink socket", e))?;
            let driver = tokio::spawn(connection);
            let result = work(handle).await;
            driver.abort();
            result
        })
    })
}

/// Write `value` to the sysctl `key` (dotted, `net.ipv4.ip_forward`) inside namespace `ns`:
/// `/proc/sys/net` shows the writing thread's namespace.
pub fn sysctl(ns: Option<&str>, key: &str, value: &str) -> Result<(), NetnsError> {
    if key.contains('/') || key.contains("..") || key.is_empty() {
        return Err(NetnsError::BadName(key.to_string()));
    }
    let file = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    let value = value.to_string();
    run_in(ns, move || {
        std::fs::write(&file, value.as_bytes())
            .map_err(|e| NetnsError::os(format!("write {}", file.display()), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_or_dots_are_refused() {
        assert!(matches!(check_ns_name("a/b"), Err(NetnsError::BadName(_))));
        assert!(matches!(check_ns_name(".."), Err(NetnsError::BadName(_))));
        assert!(matches!(check_ns_name(""), Err(NetnsError::BadName(_))));
        assert!(check_ns_name("tperf-1-c0-gen").is_ok());
        assert_eq!(path("x"), PathBuf::from("/run/netns/x"));
        assert!(matches!(
            sysctl(None, "../x", "1"),
            Err(NetnsError::BadName(_))
        ));
    }
}
