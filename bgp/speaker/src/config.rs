//! The speaker's own configuration types.
//!
//! These are deliberately independent of any datastore model: the control plane translates
//! its resources (Calico's BGPConfiguration / BGPPeer / Node) into them.

use crate::error::ConfigError;
use crate::policy::RoutePolicy;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tortie_bgp_wire::Family;

/// Speaker-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Local AS number (4-octet).
    pub local_as: u32,
    /// BGP Identifier (router id).
    pub router_id: Ipv4Addr,
    /// TCP port to listen on (179 normally; tests use others). `None` disables the listener.
    pub listen_port: Option<u16>,
    /// Addresses to listen on (empty = all IPv4 and IPv6 addresses).
    pub listen_addrs: Vec<IpAddr>,
    /// Graceful restart for the whole speaker (RFC 4724).
    pub graceful_restart: GracefulRestartConfig,
    /// Default route-reflector cluster id when this speaker reflects (RFC 4456 §7);
    /// defaults to the router id. Several reflectors may share one.
    pub cluster_id: Option<Ipv4Addr>,
    /// Peers.
    pub peers: Vec<PeerConfig>,
}

impl SpeakerConfig {
    /// A speaker with no peers and default timers.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        SpeakerConfig {
            local_as,
            router_id,
            listen_port: Some(179),
            listen_addrs: vec![],
            graceful_restart: GracefulRestartConfig::default(),
            cluster_id: None,
            peers: vec![],
        }
    }

    /// The cluster id used when reflecting.
    pub fn effective_cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }

    /// Checks the values the RFCs constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 {
            return Err(ConfigError::InvalidLocalAs);
        }
        if self.router_id.is_unspecified() {
            return Err(ConfigError::InvalidRouterId);
        }
        if self.graceful_restart.restart_time > Duration::from_secs(4095) {
            return Err(ConfigError::RestartTimeTooLong(
                self.graceful_restart.restart_time.as_secs(),
            ));
        }
        for (i, p) in self.peers.iter().enumerate() {
            if self.peers[..i].iter().any(|q| q.address == p.address) {
                return Err(ConfigError::DuplicatePeer(p.address));
            }
            let hold = p.hold_time.as_secs();
            if hold == 1 || hold == 2 || hold > u64::from(u16::MAX) {
                return Err(ConfigError::InvalidHoldTime {
                    peer: p.address,
                    secs: hold,
                });
            }
            if p.remote_as == 0 {
                return Err(ConfigError::InvalidRemoteAs(p.address));
            }
            if p.local_as == Some(0) {
                return Err(ConfigError::InvalidPeerLocalAs(p.address));
            }
            if p.ttl_security == Some(0) {
                return Err(ConfigError::InvalidTtlSecurity(p.address));
            }
            if let Some(rt) = p.restart_time
                && rt > Duration::from_secs(4095)
            {
                return Err(ConfigError::PeerRestartTimeTooLong {
                    peer: p.address,
                    secs: rt.as_secs(),
                });
            }
            if p.families.is_empty() {
                return Err(ConfigError::NoFamilies(p.address));
            }
            if let Some(pw) = &p.password
                && (pw.is_empty() || pw.len() > 80)
            {
                return Err(ConfigError::PasswordLength(p.address));
            }
        }
        Ok(())
    }
}

/// Graceful restart (RFC 4724) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Advertise the capability and act as helper for peers that advertise it.
    pub enabled: bool,
    /// Restart time we advertise: how long peers keep our routes after we go away.
    pub restart_time: Duration,
    /// How long we keep a restarting peer's stale routes after its session is back, waiting
    /// for its End-of-RIB.
    pub stale_routes_time: Duration,
    /// We are the restarting speaker: set the R bit, claim preserved forwarding state, and
    /// defer best-path selection until every peer sent End-of-RIB (RFC 4724 §4.1) or
    /// `selection_deferral` passes.
    pub restarting: bool,
    /// Upper bound on the deferral when `restarting`.
    pub selection_deferral: Duration,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: Duration::from_secs(120),
            stale_routes_time: Duration::from_secs(360),
            restarting: false,
            selection_deferral: Duration::from_secs(60),
        }
    }
}

/// Reconnect back-off used to damp a flapping peer (RFC 4271 §8.1.1 IdleHoldTime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleHoldConfig {
    /// Wait after the first error before restarting.
    pub initial: Duration,
    /// Ceiling of the doubling back-off.
    pub max: Duration,
    /// A session that stays Established this long resets the back-off.
    pub stable: Duration,
}

impl Default for IdleHoldConfig {
    fn default() -> Self {
        IdleHoldConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(120),
            stable: Duration::from_secs(60),
        }
    }
}

/// One neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Neighbour address.
    pub address: IpAddr,
    /// Neighbour TCP port (179 normally).
    pub port: u16,
    /// Local address to bind outgoing connections to (also the default next hop we advertise
    /// for the session's own family).
    pub local_address: Option<IpAddr>,
    /// Neighbour AS; equal to the local AS for iBGP.
    pub remote_as: u32,
    /// Never connect; wait for the neighbour.
    pub passive: bool,
    /// TCP-MD5 password (RFC 2385), 1..=80 bytes.
    pub password: Option<String>,
    /// Hold time we propose (0, or at least 3 s). Keepalives go at a third of the negotiated one.
    pub hold_time: Duration,
    /// ConnectRetryTime.
    pub connect_retry: Duration,
    /// DelayOpen (RFC 4271 §8.1.1): wait this long for the neighbour's OPEN before sending ours.
    pub delay_open: Option<Duration>,
    /// Flap damping for this session.
    pub idle_hold: IdleHoldConfig,
    /// The neighbour is our route-reflector client (RFC 4456).
    pub route_reflector_client: bool,
    /// Cluster id for this client (defaults to the speaker's).
    pub cluster_id: Option<Ipv4Addr>,
    /// Advertise ourselves as next hop for routes we send that were not reflected.
    pub next_hop_self: bool,
    /// IPv4 next hop to advertise on this session when it is not an IPv4 session.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop to advertise on this session when it is not an IPv6 session.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Address families to offer.
    pub families: Vec<Family>,
    /// Offer ADD-PATH receive (RFC 7911) for these families.
    pub add_path_receive: Vec<Family>,
    /// Offer graceful restart on this session (needs the speaker-wide switch too).
    pub graceful_restart: bool,
    /// Restart time advertised on this session (RFC 4724 §3), instead of the speaker-wide
    /// one (Calico's per-peer `maxRestartTime`).
    pub restart_time: Option<Duration>,
    /// The AS this speaker presents to this neighbour instead of the speaker's (Calico's
    /// `localASNumber`): it goes in our OPEN, decides iBGP vs eBGP for the session, is
    /// prepended towards the neighbour and is what its routes are loop-checked against.
    pub local_as: Option<u32>,
    /// Towards an eBGP neighbour, keep the next hop of learned routes instead of setting
    /// ourselves (BIRD's `next hop keep`; Calico's `nextHopMode: Keep` /
    /// `keepOriginalNextHop`). Routes we originate still carry our address.
    pub next_hop_keep: bool,
    /// GTSM (RFC 5082): the neighbour is at most this many hops away. We send with TTL 255
    /// and the kernel drops segments arriving with a TTL below 256 − hops (`IP_MINTTL` /
    /// `IPV6_MINHOPCOUNT`, set on the connecting socket and on each accepted one).
    pub ttl_security: Option<u8>,
    /// How many times our AS may appear in an AS_PATH received from this (eBGP) neighbour
    /// before the route counts as a loop (RFC 4271 §9.1.2 uses 0; BIRD's `allow local as`,
    /// Calico's `numAllowedLocalASNumbers`).
    pub allow_local_as: u8,
    /// Which received routes are kept (rejected ones are treated as withdrawn).
    pub import_policy: RoutePolicy,
    /// Which best routes may be sent to this neighbour, checked before the RFC rules.
    pub export_policy: RoutePolicy,
}

impl PeerConfig {
    /// A neighbour with the usual defaults (hold 90 s, retry 5 s, active, IPv4 only when the
    /// address is IPv4, IPv6 only when it is IPv6).
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        PeerConfig {
            address,
            port: 179,
            local_address: None,
            remote_as,
            passive: false,
            password: None,
            hold_time: Duration::from_secs(90),
            connect_retry: Duration::from_secs(5),
            delay_open: None,
            idle_hold: IdleHoldConfig::default(),
            route_reflector_client: false,
            cluster_id: None,
            next_hop_self: false,
            next_hop_v4: None,
            next_hop_v6: None,
            families: vec![if address.is_ipv4() {
                Family::Ipv4Unicast
            } else {
                Family::Ipv6Unicast
            }],
            add_path_receive: vec![],
            graceful_restart: true,
            restart_time: None,
            local_as: None,
            next_hop_keep: false,
            ttl_security: None,
            allow_local_as: 0,
            import_policy: RoutePolicy::accept_all(),
            export_policy: RoutePolicy::accept_all(),
        }
    }

    /// Whether going from `self` to `new` leaves the session itself alone: only policies,
    /// next-hop handling and the route-reflection settings differ, which
    /// [`crate::Speaker::update_peer`] applies without a reset.
    pub fn same_session(&self, new: &PeerConfig) -> bool {
        let mut probe = new.clone();
        probe.import_policy.clone_from(&self.import_policy);
        probe.export_policy.clone_from(&self.export_policy);
        probe.next_hop_self = self.next_hop_self;
        probe.next_hop_keep = self.next_hop_keep;
        probe.next_hop_v4 = self.next_hop_v4;
        probe.next_hop_v6 = self.next_hop_v6;
        probe.route_reflector_client = self.route_reflector_client;
        probe.cluster_id = self.cluster_id;
        probe == *self
    }

    /// The AS we present on this session.
    pub fn effective_local_as(&self, speaker_as: u32) -> u32 {
        self.local_as.unwrap_or(speaker_as)
    }

    /// Whether the session is external (remote AS differs from the AS we present).
    pub fn is_ebgp(&self, speaker_as: u32) -> bool {
        self.remote_as != self.effective_local_as(speaker_as)
    }
}
