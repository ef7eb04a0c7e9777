//! XDP steering, behind one small interface so the rest of the daemon does not care which
//! program redirects frames to its sockets.
//!
//! Normally this is tortie-xsk's [`Steering`]: Tortie's own program, attached as an XDP
//! `bpf_link` (the kernel detaches it when the process dies, so a `kill -9` leaves nothing
//! behind), steering all traffic of workload and host interfaces and only the owned traffic
//! ([`Owned`]) of the uplink; ports open with `PortConfig::external_program` and are put in
//! the program's XSKMAP by [`Steer::register`].
//!
//! If the program cannot be loaded (no BPF support), the daemon falls back to libxdp's
//! default redirect program, which `Port::open` loads: *all* traffic of every served
//! interface, the uplink included, goes to the sockets (logged as a warning at start).
//!
//! Either way, before attaching, an XDP program that is not a link (a libxdp program left by
//! a killed process, or anything attached with `ip link set ... xdp`) is removed, after one
//! failed attach, by `ip link set dev NAME xdpgeneric off` / `xdpdrv off`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use tortie_xsk::{OwnedTraffic, Port, PortConfig, SteerMode, Steering};

use crate::error::DaemonError;
use crate::ifaces::Role;
use crate::owned::Owned;

/// Shared between the config thread (attach, detach, owned set) and the workers (socket
/// registration when they open a port). Locked only on these control-path calls.
pub type SteerHandle = Arc<Mutex<Steer>>;

/// The steering state of the interfaces the fastpath serves.
#[derive(Debug, Default)]
pub struct Steer {
    program: Option<Steering>,
    attached: BTreeMap<u32, (String, Role)>,
    owned: Owned,
}

fn steer_err(ifname: &str, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Steering {
        ifname: ifname.to_owned(),
        detail: e.to_string(),
    }
}

impl Steer {
    /// Loads Tortie's steering program; falls back to libxdp's default program (see the
    /// module docs) when it cannot be loaded.
    pub fn load() -> SteerHandle {
        let program = match Steering::load() {
            Ok(s) => {
                tracing::info!(program_id = s.program_id(), "XDP steering program loaded");
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "XDP steering program not loaded; using libxdp's default program (the uplink is not filtered)");
                None
            }
        };
        Arc::new(Mutex::new(Steer {
            program,
            ..Steer::default()
        }))
    }

    /// A steer that always uses libxdp's default program (tests of the fallback).
    pub fn fallback() -> SteerHandle {
        Arc::new(Mutex::new(Steer::default()))
    }

    /// Whether Tortie's program is in use.
    pub fn has_program(&self) -> bool {
        self.program.is_some()
    }

    /// Attaches the program to `ifname` for `role` and returns the socket settings its ports
    /// must use (`base` with the bind mode the attach decided).
    pub fn attach(
        &mut self,
        if_index: u32,
        ifname: &str,
        role: Role,
        base: PortConfig,
    ) -> Result<PortConfig, DaemonError> {
        let config = match &self.program {
            None => {
                remove_xdp(ifname);
                base
            }
            Some(p) => {
                let mode = if role.owned_only() {
                    SteerMode::Owned
                } else {
                    SteerMode::All
                };
                let bind = match p.attach(if_index, mode, base.mode) {
                    Ok(b) => b,
                    Err(first) => {
                        tracing::info!(%ifname, error = %first, "XDP attach failed; removing a stale program and retrying");
                        remove_xdp(ifname);
                        p.attach(if_index, mode, base.mode)
                            .map_err(|e| steer_err(ifname, e))?
                    }
                };
                PortConfig {
                    mode: bind,
                    external_program: true,
                    ..base
                }
            }
        };
        self.attached.insert(if_index, (ifname.to_owned(), role));
        Ok(config)
    }

    /// Removes the program from `if_index` after its sockets are closed.
    pub fn detach(&mut self, if_index: u32) {
        let Some((name, _)) = self.attached.remove(&if_index) else {
            return;
        };
        match &self.program {
            Some(p) => {
                if let Err(e) = p.detach(if_index) {
                    tracing::warn!(%name, error = %e, "XDP detach failed");
                }
            }
            None => remove_xdp(&name),
        }
    }

    /// Detaches every interface (shutdown).
    pub fn detach_all(&mut self) {
        let all: Vec<u32> = self.attached.keys().copied().collect();
        for i in all {
            self.detach(i);
        }
    }

    /// Registers a worker's socket for `(if_index, queue)` with the program (with libxdp's
    /// program, opening the port registered it).
    pub fn register(&self, if_index: u32, queue: u32, port: &Port) -> Result<(), DaemonError> {
        match &self.program {
            Some(p) => p
                .register(if_index, queue, port)
                .map_err(|e| steer_err(&if_index.to_string(), e)),
            None => Ok(()),
        }
    }

    /// Sets the traffic the uplink's program redirects; returns whether it changed.
    pub fn set_owned(&mut self, owned: &Owned) -> Result<bool, DaemonError> {
        if *owned == self.owned {
            return Ok(false);
        }
        if let Some(p) = &self.program {
            p.set_owned(&OwnedTraffic {
                v4_prefixes: owned.v4_prefixes.clone(),
                v6_prefixes: owned.v6_prefixes.clone(),
                tunnel_sources: owned.tunnel_sources.clone(),
                node_v4: owned.node_v4,
                node_v6: owned.node_v6,
                snat_ports: owned.snat_ports,
            })
            .map_err(|e| steer_err("uplink", e))?;
        }
        self.owned = owned.clone();
        Ok(true)
    }

    /// The program's counters (redirected, passed, redirect failed); `None` with libxdp's
    /// program. A few syscalls: control path only.
    pub fn stats(&self) -> Option<[u64; 3]> {
        self.program.as_ref().map(|p| {
            let s = p.stats();
            [s.redirected, s.passed, s.redirect_failed]
        })
    }

    /// The owned set in force.
    pub fn owned(&self) -> &Owned {
        &self.owned
    }

    /// Interfaces attached now.
    pub fn attached(&self) -> impl Iterator<Item = (u32, &str, Role)> {
        self.attached.iter().map(|(i, (n, r))| (*i, n.as_str(), *r))
    }
}

/// Removes generic and native XDP programs from `ifname` (errors ignored: usually "none").
fn remove_xdp(ifname: &str) {
    for mode in ["xdpgeneric", "xdpdrv"] {
        let _ = Command::new("ip")
            .args(["link", "set", "dev", ifname, mode, "off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
