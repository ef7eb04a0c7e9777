//! The speaker task's handling of [`SpeakerHandle`](super::SpeakerHandle) commands:
//! routes, refresh, status, and peers added, changed and removed at run time (with their
//! TCP-MD5 keys on the listeners).

use super::{Actor, Command, PeerStatus, md5sig};
use crate::error::{ConfigError, RuntimeError};
use crate::fsm::State;
use std::net::IpAddr;

impl Actor {
    pub(super) fn command(&mut self, c: Command) {
        let out = match c {
            Command::Originate(p, r) => self.speaker.originate(p, r),
            Command::Withdraw(p) => self.speaker.withdraw_local(p),
            Command::Refresh(addr, f, reply) => {
                let (ok, out) = match self.speaker.peer_by_address(addr) {
                    Some(p) => self.speaker.request_refresh(p, f),
                    None => (false, vec![]),
                };
                let _ = reply.send(ok);
                out
            }
            Command::Status(reply) => {
                let s = &self.speaker;
                let v = s
                    .peer_ids()
                    .map(|(i, p)| PeerStatus {
                        address: p.address,
                        state: s.peer_state(i).unwrap_or(State::Idle),
                        received: s.peer_route_count(i),
                        advertised: s.peer_advertised(i).map_or(0, |m| m.len()),
                        flaps: s.peer_flaps(i),
                        last_error: s.peer_last_error(i).map(str::to_string),
                        negotiated: s.peer_session(i).cloned(),
                    })
                    .collect();
                let _ = reply.send(v);
                vec![]
            }
            Command::BestRoute(p, reply) => {
                let _ = reply.send(self.speaker.best_route(&p));
                vec![]
            }
            Command::AddPeer(cfg, reply) => {
                if self.speaker.peer_by_address(cfg.address).is_some() {
                    let _ = reply.send(Err(ConfigError::DuplicatePeer(cfg.address).into()));
                    return;
                }
                if let Err(e) = self.set_listener_key(cfg.address, cfg.password.as_deref()) {
                    let _ = reply.send(Err(e));
                    return;
                }
                match self.speaker.add_peer(*cfg) {
                    Ok((_, out)) => {
                        let _ = reply.send(Ok(()));
                        out
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        vec![]
                    }
                }
            }
            Command::RemovePeer(addr, gently, reply) => match self.speaker.peer_by_address(addr) {
                Some(p) => {
                    let had_key = self.speaker.config().peers[p].password.is_some();
                    let out = match gently {
                        Some(keep) => self.speaker.remove_peer_gently(p, keep),
                        None => self.speaker.remove_peer(p),
                    };
                    if had_key && let Err(e) = self.set_listener_key(addr, None) {
                        tracing::warn!(peer = %addr, error = %e, "removing TCP-MD5 key");
                    }
                    let _ = reply.send(true);
                    out
                }
                None => {
                    let _ = reply.send(false);
                    vec![]
                }
            },
            Command::UpdatePeer(cfg, reply) => {
                let Some(p) = self.speaker.peer_by_address(cfg.address) else {
                    return self.command(Command::AddPeer(cfg, reply));
                };
                let old_key = self.speaker.config().peers[p].password.clone();
                if old_key != cfg.password
                    && let Err(e) = self.set_listener_key(cfg.address, cfg.password.as_deref())
                {
                    let _ = reply.send(Err(e));
                    return;
                }
                match self.speaker.update_peer(p, *cfg) {
                    Ok((_, out)) => {
                        let _ = reply.send(Ok(()));
                        out
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        vec![]
                    }
                }
            }
            Command::Shutdown(_) => vec![],
        };
        self.apply(out);
    }

    /// Installs (or removes) a peer's TCP-MD5 key on the listeners of its family.
    fn set_listener_key(&self, peer: IpAddr, key: Option<&str>) -> Result<(), RuntimeError> {
        if key.is_none() && !self.listeners.is_empty() {
            // Removing a key that was never installed fails with ENOENT: ignore per socket.
            for l in &self.listeners {
                if l.local_addr().is_ok_and(|a| a.is_ipv4() == peer.is_ipv4()) {
                    let _ = md5sig::set_md5_key(l.as_ref(), peer, None);
                }
            }
            return Ok(());
        }
        let Some(pw) = key else { return Ok(()) };
        for l in &self.listeners {
            if l.local_addr().is_ok_and(|a| a.is_ipv4() == peer.is_ipv4()) {
                md5sig::set_md5_key(l.as_ref(), peer, Some(pw.as_bytes()))
                    .map_err(|source| RuntimeError::Md5 { peer, source })?;
            }
        }
        Ok(())
    }
}
