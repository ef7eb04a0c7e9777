//! The XDP steering program (`bpf/steer.bpf.c`) and its loader.
//!
//! One [`Steering`] per process loads the program once and attaches it to every interface the
//! fastpath has sockets on; the `ifaces` map tells the program each interface's first XSKMAP
//! slot and [`SteerMode`], so one program serves them all (slot = base + RX queue). Sockets
//! opened with [`crate::PortConfig::external_program`] are put in the XSKMAP by
//! [`Steering::register`]. See docs/design/xsk.md, "Steering".
//!
//! Programs are attached as XDP `bpf_link`s: they never replace a program someone else
//! attached, and they are detached by the kernel when the process exits, even on a crash, so a
//! dead fastpath never leaves an interface steering traffic to nothing.

mod bpf;
mod owned;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

pub use owned::{OwnedTraffic, SteerMode};

use crate::error::XskError;
use crate::port::{BindMode, Port};
use bpf::{Map, Object};
use owned::{OwnedEntries, iface_value};

/// The compiled program, built by `build.rs`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));
/// The program's function name (also its kernel name).
const PROGRAM: &str = "tortie_steer";

/// Interfaces one `Steering` can serve (`MAX_IFACES` in the program).
pub const MAX_INTERFACES: u32 = 1024;
/// Queues per interface with an XSKMAP slot (`QUEUES_PER_IF` in the program): queues at or
/// above this index are passed to the kernel.
pub const QUEUES_PER_INTERFACE: u32 = 64;

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// Counters kept by the program, summed over CPUs. Every frame the program sees on an
/// interface it is attached to counts in exactly one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteerStats {
    /// Frames handed to an AF_XDP socket (the program returned `XDP_REDIRECT`). The kernel can
    /// still drop them after the program, e.g. when the socket's RX ring is full: see
    /// [`crate::KernelStats`].
    pub redirected: u64,
    /// Frames not owned (or on an interface without an `ifaces` entry): left to the kernel.
    pub passed: u64,
    /// Owned frames with no socket registered for their queue: left to the kernel.
    pub redirect_failed: u64,
}

/// What the program decided for a frame (its XDP action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SteerVerdict {
    /// `XDP_REDIRECT`: to the queue's AF_XDP socket.
    Redirect,
    /// `XDP_PASS`: to the kernel (not owned, or no socket for the queue).
    Pass,
    /// Any other action code (the program returns none, so this would be a bug).
    Other(u32),
}

/// The result of [`Steering::dry_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRun {
    /// What the program decided.
    pub verdict: SteerVerdict,
    /// Mean run time of the program per frame, as measured by the kernel, in nanoseconds.
    pub ns_per_run: u32,
}

/// One attached interface.
struct Attached {
    /// Index of the interface's block of XSKMAP slots.
    block: u32,
    mode: SteerMode,
    bind: BindMode,
    link: OwnedFd,
    queues: BTreeSet<u32>,
}

#[derive(Default)]
struct State {
    attached: BTreeMap<u32, Attached>,
    /// What the owned-traffic maps hold now.
    owned: OwnedEntries,
}

/// The loaded steering program and its maps. One per process; `Send + Sync`, so the control
/// thread can attach and update while workers run. Dropping it detaches every program it
/// attached.
///
/// Interface indexes are those of the network namespace of the calling thread: call every
/// method from the process's (node's) namespace.
pub struct Steering {
    // Field order: the links in `state` are closed before the object.
    state: Mutex<State>,
    prog_fd: i32,
    prog_id: u32,
    xsks: Map,
    ifaces: Map,
    owned_v4: Map,
    owned_v6: Map,
    tunnel_srcs: Map,
    config: Map,
    stats: Map,
    _object: Object,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("prog_id", &self.prog_id)
            .field("attached", &self.lock().attached.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn bpf_err(stage: &'static str) -> impl FnOnce(io::Error) -> XskError {
    move |source| XskError::BpfLoad { stage, source }
}

impl Steering {
    /// Load the embedded program and create its maps (nothing is attached yet). Needs
    /// `CAP_BPF` and `CAP_NET_ADMIN` (root). A verifier rejection is reported with the
    /// verifier's log printed by libbpf on stderr.
    pub fn load() -> Result<Steering, XskError> {
        let object = Object::open_and_load(OBJECT, c"tortie_steer")
            .map_err(|(stage, source)| XskError::BpfLoad { stage, source })?;
        let map = |name| object.map(name).map_err(bpf_err("finding map"));
        let prog_fd = object
            .program_fd(PROGRAM)
            .map_err(bpf_err("finding program"))?;
        let prog_id = bpf::program_id(prog_fd).map_err(bpf_err("reading program id"))?;
        let steering = Steering {
            state: Mutex::new(State::default()),
            prog_fd,
            prog_id,
            xsks: map("xsks")?,
            ifaces: map("ifaces")?,
            owned_v4: map("owned_v4")?,
            owned_v6: map("owned_v6")?,
            tunnel_srcs: map("tunnel_srcs")?,
            config: map("config")?,
            stats: map("stats")?,
            _object: object,
        };
        steering.check_capacities()?;
        Ok(steering)
    }

    /// The capacities this file and `owned.rs` assume must be the object's.
    fn check_capacities(&self) -> Result<(), XskError> {
        let want = [
            (self.xsks, MAX_INTERFACES * QUEUES_PER_INTERFACE),
            (self.ifaces, MAX_INTERFACES),
            (self.owned_v4, owned::MAX_V4_PREFIXES as u32),
            (self.owned_v6, owned::MAX_V6_PREFIXES as u32),
            (self.tunnel_srcs, owned::MAX_TUNNEL_SOURCES as u32),
            (self.stats, 3),
        ];
        for (map, entries) in want {
            if map.max_entries != entries {
                return Err(XskError::BpfLoad {
                    stage: "checking map capacities",
                    source: io::Error::other(format!(
                        "map `{}` holds {} entries, the loader expects {entries}",
                        map.name, map.max_entries
                    )),
                });
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kernel id of the loaded program (what `ip link` / [`xdp_program_id`] show).
    pub fn program_id(&self) -> u32 {
        self.prog_id
    }

    /// Attach the program to `if_index` with `mode`, in the XDP mode `bind` asks for: `Auto`
    /// tries native (driver) XDP, then generic (SKB); `ZeroCopy` and `DriverCopy` need native;
    /// `Skb` uses generic. Returns the mode to open the interface's ports with: `ZeroCopy` (if
    /// asked and native attached), `DriverCopy` (native) or `Skb` (generic).
    ///
    /// Never replaces a program attached by anyone else (libxdp's included: open the ports
    /// with [`crate::PortConfig::external_program`]). Calling it again for an interface this
    /// `Steering` already attached only changes its `mode` and returns the mode it attached in.
    pub fn attach(
        &self,
        if_index: u32,
        mode: SteerMode,
        bind: BindMode,
    ) -> Result<BindMode, XskError> {
        let key = if_index.to_ne_bytes();
        let mut state = self.lock();
        if let Some(a) = state.attached.get_mut(&if_index) {
            self.ifaces
                .update(&key, &iface_value(a.block * QUEUES_PER_INTERFACE, mode))
                .map_err(map_err(self.ifaces, if_index))?;
            a.mode = mode;
            return Ok(a.bind);
        }
        let used: BTreeSet<u32> = state.attached.values().map(|a| a.block).collect();
        let block = (0..MAX_INTERFACES)
            .find(|b| !used.contains(b))
            .ok_or_else(|| XskError::Config {
                field: "if_index",
                reason: format!("all {MAX_INTERFACES} interface slots of the program are in use"),
            })?;
        // The entry goes in first so the program steers correctly from its first frame.
        self.ifaces
            .update(&key, &iface_value(block * QUEUES_PER_INTERFACE, mode))
            .map_err(map_err(self.ifaces, if_index))?;
        let tries: &[(u32, BindMode)] = match bind {
            BindMode::Auto => &[
                (XDP_FLAGS_DRV_MODE, BindMode::DriverCopy),
                (XDP_FLAGS_SKB_MODE, BindMode::Skb),
            ],
            BindMode::ZeroCopy => &[(XDP_FLAGS_DRV_MODE, BindMode::ZeroCopy)],
            BindMode::DriverCopy => &[(XDP_FLAGS_DRV_MODE, BindMode::DriverCopy)],
            BindMode::Skb => &[(XDP_FLAGS_SKB_MODE, BindMode::Skb)],
        };
        let mut attempts = String::new();
        for &(flags, result) in tries {
            match bpf::attach_xdp_link(self.prog_fd, if_index, flags) {
                Ok(link) => {
                    state.attached.insert(
                        if_index,
                        Attached {
                            block,
                            mode,
                            bind: result,
                            link,
                            queues: BTreeSet::new(),
                        },
                    );
                    return Ok(result);
                }
                Err(e) => {
                    let who = match bpf::xdp_program_id(if_index) {
                        Ok(Some(id)) => format!(" (program id {id} already attached)"),
                        _ => String::new(),
                    };
                    let _ = write!(attempts, "[{result:?}: {e}{who}] ");
                }
            }
        }
        let _ = self.ifaces.delete(&key);
        Err(XskError::XdpAttach {
            if_index,
            attempts: attempts.trim_end().into(),
        })
    }

    /// Detach the program from `if_index` and forget its sockets. Idempotent: an interface
    /// this `Steering` did not attach (or that no longer exists) is not an error.
    pub fn detach(&self, if_index: u32) -> Result<(), XskError> {
        let mut state = self.lock();
        let Some(a) = state.attached.remove(&if_index) else {
            return Ok(());
        };
        let detached = bpf::detach_xdp_link(&a.link);
        drop(a.link);
        for q in &a.queues {
            let _ = self
                .xsks
                .delete(&(a.block * QUEUES_PER_INTERFACE + q).to_ne_bytes());
        }
        let _ = self.ifaces.delete(&if_index.to_ne_bytes());
        detached.map_err(|source| XskError::XdpDetach { if_index, source })
    }

    /// Put `port` (bound to `if_index` queue `queue`) in the XSKMAP, so the program redirects
    /// that queue's steered frames to it. The port must have been opened on that interface
    /// and queue: the kernel drops (does not pass) frames redirected to a socket bound
    /// elsewhere. Replaces an earlier registration of the same queue.
    pub fn register(&self, if_index: u32, queue: u32, port: &Port) -> Result<(), XskError> {
        let fd = u32::try_from(port.raw_fd()).map_err(|_| XskError::Config {
            field: "port",
            reason: "socket has no valid fd".into(),
        })?;
        // Held throughout, so a concurrent detach cannot hand the slot to another interface.
        let mut state = self.lock();
        let a = attached(&mut state, if_index, queue)?;
        let slot = a.block * QUEUES_PER_INTERFACE + queue;
        self.xsks
            .update(&slot.to_ne_bytes(), &fd.to_ne_bytes())
            .map_err(map_err(self.xsks, if_index))?;
        a.queues.insert(queue);
        Ok(())
    }

    /// Remove the socket of `if_index` queue `queue` from the XSKMAP (frames for it then go
    /// to the kernel). Closing a socket also removes it; unregistering twice is not an error.
    pub fn unregister(&self, if_index: u32, queue: u32) -> Result<(), XskError> {
        let mut state = self.lock();
        let a = attached(&mut state, if_index, queue)?;
        let slot = a.block * QUEUES_PER_INTERFACE + queue;
        self.xsks
            .delete(&slot.to_ne_bytes())
            .map_err(map_err(self.xsks, if_index))?;
        a.queues.remove(&queue);
        Ok(())
    }

    /// Replace the owned-traffic set with `owned`: new entries are added before stale ones are
    /// removed, so traffic owned by both the old and new set is never passed in between.
    /// On error the maps hold a mix of the two sets (never entries from neither) and the next
    /// call repairs them.
    pub fn set_owned(&self, owned: &OwnedTraffic) -> Result<(), XskError> {
        let want = OwnedEntries::from_owned(owned)?;
        let mut state = self.lock();
        let have = &mut state.owned;
        sync_set(self.owned_v4, &mut have.v4, &want.v4)?;
        sync_set(self.owned_v6, &mut have.v6, &want.v6)?;
        sync_set(self.tunnel_srcs, &mut have.tunnels, &want.tunnels)?;
        if have.config != want.config {
            self.config
                .update(&0u32.to_ne_bytes(), &want.config)
                .map_err(|source| XskError::MapUpdate {
                    map: self.config.name,
                    key: "0".into(),
                    source,
                })?;
            have.config = want.config;
        }
        Ok(())
    }

    /// Run the program on `frame` as if it had arrived on `if_index` queue `queue`, `repeat`
    /// times, without sending anything anywhere (`BPF_PROG_TEST_RUN`): what it would decide,
    /// and how long it takes. For diagnostics, tests and benchmarks. The interface must exist
    /// in the caller's namespace; the runs count in [`Steering::stats`] like real frames.
    pub fn dry_run(
        &self,
        frame: &[u8],
        if_index: u32,
        queue: u32,
        repeat: u32,
    ) -> Result<DryRun, XskError> {
        let (action, ns_per_run) = bpf::test_run_xdp(self.prog_fd, frame, if_index, queue, repeat)
            .map_err(|source| XskError::DryRun { if_index, source })?;
        let verdict = match action {
            XDP_REDIRECT => SteerVerdict::Redirect,
            XDP_PASS => SteerVerdict::Pass,
            other => SteerVerdict::Other(other),
        };
        Ok(DryRun {
            verdict,
            ns_per_run,
        })
    }

    /// The program's counters, summed over CPUs (a few syscalls: control path only). A
    /// counter that cannot be read (which would be a kernel-side failure) reads as 0.
    pub fn stats(&self) -> SteerStats {
        let read = |i| self.stats.percpu_sum_u64(i).unwrap_or(0);
        SteerStats {
            redirected: read(0),
            passed: read(1),
            redirect_failed: read(2),
        }
    }
}

/// The attachment of `if_index`, if `queue` has a slot in it.
fn attached(state: &mut State, if_index: u32, queue: u32) -> Result<&mut Attached, XskError> {
    if queue >= QUEUES_PER_INTERFACE {
        return Err(XskError::Config {
            field: "queue",
            reason: format!("{queue}: the program serves queues 0..{QUEUES_PER_INTERFACE}"),
        });
    }
    state
        .attached
        .get_mut(&if_index)
        .ok_or(XskError::NotAttached { if_index })
}

/// Make the map `map` (mirrored by `have`) hold exactly `want`: insert, then delete.
fn sync_set<const N: usize>(
    map: Map,
    have: &mut BTreeSet<[u8; N]>,
    want: &BTreeSet<[u8; N]>,
) -> Result<(), XskError> {
    let err = |key: &[u8; N]| {
        let key = format!("{key:02x?}");
        move |source| XskError::MapUpdate {
            map: map.name,
            key,
            source,
        }
    };
    if have == want {
        return Ok(());
    }
    let add: Vec<[u8; N]> = want.difference(have).copied().collect();
    for key in &add {
        map.update(key, &[1]).map_err(err(key))?;
        have.insert(*key);
    }
    let stale: Vec<[u8; N]> = have.difference(want).copied().collect();
    for key in &stale {
        map.delete(key).map_err(err(key))?;
        have.remove(key);
    }
    Ok(())
}

fn map_err(map: Map, if_index: u32) -> impl FnOnce(io::Error) -> XskError {
    move |source| XskError::MapUpdate {
        map: map.name,
        key: format!("if_index {if_index}"),
        source,
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, a) in std::mem::take(&mut state.attached) {
            // Closing the link would do too unless something else holds it open.
            let _ = bpf::detach_xdp_link(&a.link);
        }
    }
}

/// The id of the XDP program attached to `if_index` in any mode, if any (diagnostics: compare
/// with [`Steering::program_id`]).
pub fn xdp_program_id(if_index: u32) -> Result<Option<u32>, XskError> {
    bpf::xdp_program_id(if_index).map_err(|source| XskError::XdpQuery { if_index, source })
}

#[cfg(test)]
mod tests;
