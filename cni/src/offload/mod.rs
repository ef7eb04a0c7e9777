//! Device offload features through ethtool netlink, and the one setting the plugin needs:
//! TX checksum offload off on the workload's side of the veth.
//!
//! Why: a veth advertises TX checksum offload, so the kernel in a workload leaves every TCP and
//! UDP checksum to "the device" (a CHECKSUM_PARTIAL skb, with only the pseudo-header sum in the
//! checksum field) and the veth hands that skb to its peer as it is. When the peer is the
//! fastpath's AF_XDP socket, the frame's bytes are copied without the checksum metadata, so the
//! fastpath would forward a frame whose checksum the receiver rejects. With the feature off,
//! the workload's kernel writes complete checksums (and, since TSO needs checksum offload, it
//! also segments in software). This is the usual remedy wherever a userspace dataplane reads
//! frames from a veth. The same holds for any kernel sending into an AF_XDP-attached veth
//! (a router or test host in a lab, for instance), which is why the function is public.
//!
//! The requests are those of `ethtool -k` / `ethtool -K` over generic netlink (family
//! `ethtool`, the kernel's Documentation/networking/ethtool-netlink.rst, "FEATURES_GET" and
//! "FEATURES_SET"; Linux 5.6 or later). No `ethtool` binary and no ioctl are used.

mod attrs;
mod genl;

use std::collections::BTreeSet;

use attrs::{Attr, AttrWriter, find, parse_attrs};
use genl::GenlSocket;

/// Every TX checksum feature (`NETIF_F_CSUM_MASK` plus the SCTP and FCoE CRCs), by the names
/// the kernel gives them; `ethtool -K dev tx off` turns off the same set. A veth has
/// `tx-checksum-ip-generic` and `tx-checksum-sctp`.
pub const TX_CHECKSUM_FEATURES: [&str; 5] = [
    "tx-checksum-ipv4",
    "tx-checksum-ip-generic",
    "tx-checksum-ipv6",
    "tx-checksum-fcoe-crc",
    "tx-checksum-sctp",
];

const ETHTOOL_GENL_NAME: &str = "ethtool";
const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_FEATURES_GET: u8 = 11;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const ETHTOOL_A_HEADER_FLAGS: u16 = 3;
const ETHTOOL_FLAG_OMIT_REPLY: u32 = 1 << 1;
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_HW: u16 = 2;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_FEATURES_ACTIVE: u16 = 4;
const ETHTOOL_A_FEATURES_NOCHANGE: u16 = 5;
const ETHTOOL_A_BITSET_NOMASK: u16 = 1;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;
/// `IFNAMSIZ` less the terminating NUL.
const MAX_IFNAME: usize = 15;

/// Why reading or changing offload features failed.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    /// The interface name cannot name a Linux interface.
    #[error("interface name {0:?} is empty or longer than 15 bytes")]
    InvalidName(String),
    /// The namespace could not be entered.
    #[error("network namespace {path}: {reason}")]
    Netns { path: String, reason: String },
    /// A socket call failed.
    #[error("generic netlink socket: {step}: {err}")]
    Socket {
        step: &'static str,
        err: std::io::Error,
    },
    /// The kernel has no such generic netlink family (ethtool netlink needs Linux 5.6).
    #[error(
        "generic netlink family {0:?} not available (ethtool netlink needs Linux 5.6 or later)"
    )]
    NoFamily(String),
    /// The kernel refused a request.
    #[error("{what}: errno {errno}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Kernel {
        what: String,
        errno: i32,
        message: String,
    },
    /// The kernel did not answer in time.
    #[error("no answer from the kernel within {millis} ms")]
    Timeout { millis: u16 },
    /// An answer could not be parsed.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        what: String,
        offset: usize,
        reason: String,
    },
    /// Features asked off are still on (fixed by the driver).
    #[error("{ifname}: {features:?} still active after being turned off")]
    StillActive {
        ifname: String,
        features: Vec<String>,
    },
}

/// The feature state of one interface, by kernel feature name (as `ethtool -k` lists them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// Features the user may change (`hw`).
    pub changeable: BTreeSet<String>,
    /// Features asked for.
    pub wanted: BTreeSet<String>,
    /// Features in effect.
    pub active: BTreeSet<String>,
    /// Features the kernel never lets change on this device (`nochange`,
    /// `NETIF_F_NEVER_CHANGE`). `ethtool -k` marks these and everything outside `changeable`
    /// `[fixed]`.
    pub never_change: BTreeSet<String>,
}

/// Reads the features of `ifname` in the network namespace at `netns` (a path such as
/// `/run/netns/NAME` or `/proc/PID/ns/net`), or in the calling thread's namespace for `None`.
pub fn features(netns: Option<&str>, ifname: &str) -> Result<Features, OffloadError> {
    let ifname = checked_name(ifname)?;
    in_namespace(netns, move || {
        let (mut socket, family) = open()?;
        get(&mut socket, family, &ifname)
    })
}

/// Turns each named feature on (`true`) or off (`false`) on `ifname`, as `ethtool -K` does,
/// and returns the state afterwards. Names must be kernel feature names; features the device
/// cannot change are left as they are (the kernel ignores them), so callers check the result.
pub fn set_features(
    netns: Option<&str>,
    ifname: &str,
    changes: &[(&str, bool)],
) -> Result<Features, OffloadError> {
    let ifname = checked_name(ifname)?;
    let changes: Vec<(String, bool)> = changes.iter().map(|(n, on)| (n.to_string(), *on)).collect();
    in_namespace(netns, move || {
        let (mut socket, family) = open()?;
        set(&mut socket, family, &ifname, &changes)?;
        get(&mut socket, family, &ifname)
    })
}

/// Turns TX checksum offload off on `ifname` (every feature of [`TX_CHECKSUM_FEATURES`] the
/// device has on), in the namespace at `netns` or the calling thread's for `None`, so the
/// kernel writes complete TCP/UDP checksums into what it sends there. Idempotent. Fails with
/// [`OffloadError::StillActive`] if any TX checksum feature is still in effect afterwards.
pub fn disable_tx_checksum(netns: Option<&str>, ifname: &str) -> Result<(), OffloadError> {
    let ifname = checked_name(ifname)?;
    in_namespace(netns, move || {
        let (mut socket, family) = open()?;
        let before = get(&mut socket, family, &ifname)?;
        let off: Vec<(String, bool)> = TX_CHECKSUM_FEATURES
            .iter()
            .filter(|f| before.changeable.contains(**f))
            .filter(|f| before.wanted.contains(**f) || before.active.contains(**f))
            .map(|f| (f.to_string(), false))
            .collect();
        if !off.is_empty() {
            set(&mut socket, family, &ifname, &off)?;
        }
        let after = get(&mut socket, family, &ifname)?;
        let still: Vec<String> = TX_CHECKSUM_FEATURES
            .iter()
            .filter(|f| after.active.contains(**f))
            .map(|f| f.to_string())
            .collect();
        if still.is_empty() {
            Ok(())
        } else {
            Err(OffloadError::StillActive {
                ifname: ifname.clone(),
                features: still,
            })
        }
    })
}

fn checked_name(ifname: &str) -> Result<String, OffloadError> {
    if ifname.is_empty() || ifname.len() > MAX_IFNAME || ifname.contains(['\0', '/']) {
        return Err(OffloadError::InvalidName(ifname.to_string()));
    }
    Ok(ifname.to_string())
}

/// Runs `work` in the namespace at `netns` (on a thread of its own, since `setns` moves only
/// the calling thread and a netlink socket belongs to the namespace it was opened in), or
/// here for `None`.
fn in_namespace<T: Send + 'static>(
    netns: Option<&str>,
    work: impl FnOnce() -> Result<T, OffloadError> + Send + 'static,
) -> Result<T, OffloadError> {
    let Some(path) = netns else {
        return work();
    };
    let netns_error = |reason: String| OffloadError::Netns {
        path: path.to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|err| netns_error(err.to_string()))?;
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|err| {
            OffloadError::Netns {
                path: String::new(),
                reason: format!("setns: {err}"),
            }
        })?;
        work()
    })
    .join()
    .map_err(|_| netns_error("worker thread panicked".into()))?
    .map_err(|err| match err {
        OffloadError::Netns { reason, .. } => netns_error(reason),
        other => other,
    })
}

fn open() -> Result<(GenlSocket, u16), OffloadError> {
    let mut socket = GenlSocket::open()?;
    let family = socket.family_id(ETHTOOL_GENL_NAME)?;
    Ok((socket, family))
}

fn header(attrs: &mut AttrWriter, ifname: &str, flags: u32) {
    attrs.nest(ETHTOOL_A_FEATURES_HEADER, |h| {
        h.string(ETHTOOL_A_HEADER_DEV_NAME, ifname);
        if flags != 0 {
            h.u32(ETHTOOL_A_HEADER_FLAGS, flags);
        }
    });
}

/// FEATURES_GET: bitsets in verbose form (names), as the kernel sends them without
/// `ETHTOOL_FLAG_COMPACT_BITSETS`.
fn get(socket: &mut GenlSocket, family: u16, ifname: &str) -> Result<Features, OffloadError> {
    let mut attrs = AttrWriter::new();
    header(&mut attrs, ifname, 0);
    let what = format!("read features of {ifname}");
    let replies = socket.request(
        family,
        ETHTOOL_MSG_FEATURES_GET,
        ETHTOOL_GENL_VERSION,
        &attrs.into_bytes(),
        &what,
    )?;
    let reply = replies.first().ok_or_else(|| OffloadError::Malformed {
        what: what.clone(),
        offset: 0,
        reason: "acknowledged without a reply".into(),
    })?;
    let attrs = parse_attrs(reply, "features reply")?;
    let bitset = |kind: u16, name: &str| match find(&attrs, kind) {
        Some(attr) => names_set(attr.payload, name),
        None => Ok(BTreeSet::new()),
    };
    Ok(Features {
        changeable: bitset(ETHTOOL_A_FEATURES_HW, "hw bitset")?,
        wanted: bitset(ETHTOOL_A_FEATURES_WANTED, "wanted bitset")?,
        active: bitset(ETHTOOL_A_FEATURES_ACTIVE, "active bitset")?,
        never_change: bitset(ETHTOOL_A_FEATURES_NOCHANGE, "nochange bitset")?,
    })
}

/// The names of the bits set in a verbose bitset: with `NOMASK` every listed bit is set
/// (list form); otherwise a listed bit is set when it carries the `VALUE` flag.
fn names_set(bitset: &[u8], what: &str) -> Result<BTreeSet<String>, OffloadError> {
    let attrs = parse_attrs(bitset, what)?;
    let list = find(&attrs, ETHTOOL_A_BITSET_NOMASK).is_some();
    let mut set = BTreeSet::new();
    let Some(bits) = find(&attrs, ETHTOOL_A_BITSET_BITS) else {
        return Ok(set);
    };
    for bit in parse_attrs(bits.payload, what)? {
        if bit.kind != ETHTOOL_A_BITSET_BITS_BIT {
            continue;
        }
        let fields = parse_attrs(bit.payload, what)?;
        let on = list || find(&fields, ETHTOOL_A_BITSET_BIT_VALUE).is_some();
        if let (true, Some(name)) = (
            on,
            find(&fields, ETHTOOL_A_BITSET_BIT_NAME).and_then(Attr::string),
        ) {
            set.insert(name.to_string());
        }
    }
    Ok(set)
}

/// FEATURES_SET: a verbose `wanted` bitset with a mask (the listed bits), each bit named and
/// carrying `VALUE` when it is to be on.
fn set(
    socket: &mut GenlSocket,
    family: u16,
    ifname: &str,
    changes: &[(String, bool)],
) -> Result<(), OffloadError> {
    let mut attrs = AttrWriter::new();
    header(&mut attrs, ifname, ETHTOOL_FLAG_OMIT_REPLY);
    attrs.nest(ETHTOOL_A_FEATURES_WANTED, |bitset| {
        bitset.nest(ETHTOOL_A_BITSET_BITS, |bits| {
            for (name, on) in changes {
                bits.nest(ETHTOOL_A_BITSET_BITS_BIT, |bit| {
                    bit.string(ETHTOOL_A_BITSET_BIT_NAME, name);
                    if *on {
                        bit.flag(ETHTOOL_A_BITSET_BIT_VALUE);
                    }
                });
            }
        });
    });
    let names: Vec<String> = changes
        .iter()
        .map(|(n, on)| format!("{n} {}", if *on { "on" } else { "off" }))
        .collect();
    socket.request(
        family,
        ETHTOOL_MSG_FEATURES_SET,
        ETHTOOL_GENL_VERSION,
        &attrs.into_bytes(),
        &format!("set {} on {ifname}", names.join(", ")),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(name: &str, value: bool) -> impl FnOnce(&mut AttrWriter) + '_ {
        move |b: &mut AttrWriter| {
            b.u32(1, 0).string(ETHTOOL_A_BITSET_BIT_NAME, name);
            if value {
                b.flag(ETHTOOL_A_BITSET_BIT_VALUE);
            }
        }
    }

    #[test]
    fn list_form_bitset_names_every_listed_bit() {
        let mut w = AttrWriter::new();
        w.flag(ETHTOOL_A_BITSET_NOMASK)
            .u32(2, 64)
            .nest(ETHTOOL_A_BITSET_BITS, |bits| {
                bits.nest(
                    ETHTOOL_A_BITSET_BITS_BIT,
                    bit("tx-checksum-ip-generic", false),
                );
                bits.nest(ETHTOOL_A_BITSET_BITS_BIT, bit("rx-checksum", false));
            });
        let set = names_set(&w.into_bytes(), "test").unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            ["rx-checksum", "tx-checksum-ip-generic"]
        );
    }

    #[test]
    fn masked_bitset_names_only_bits_with_a_value() {
        let mut w = AttrWriter::new();
        w.nest(ETHTOOL_A_BITSET_BITS, |bits| {
            bits.nest(
                ETHTOOL_A_BITSET_BITS_BIT,
                bit("tx-checksum-ip-generic", false),
            );
            bits.nest(ETHTOOL_A_BITSET_BITS_BIT, bit("tx-checksum-sctp", true));
        });
        let set = names_set(&w.into_bytes(), "test").unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), ["tx-checksum-sctp"]);
    }

    #[test]
    fn interface_names_are_checked_before_any_request() {
        for bad in ["", "a-name-of-16-byt", "a/b"] {
            assert!(
                matches!(
                    disable_tx_checksum(None, bad),
                    Err(OffloadError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_missing_namespace_is_named_in_the_error() {
        match features(Some("/nonexistent/netns"), "eth0") {
            Err(OffloadError::Netns { path, .. }) => assert_eq!(path, "/nonexistent/netns"),
            other => panic!("expected Netns error, got {other:?}"),
        }
    }
}
