//! The `tortie` CNI plugin and the `tortie-ipam` IPAM plugin.
//!
//! Both speak CNI 1.1.0 (VERSION, ADD, DEL, CHECK, STATUS, GC) and answer 0.3.x / 0.4.0 / 1.0.0
//! callers in their own result format. `tortie` creates a veth pair per attachment (host side
//! `tor<11 hex>` with MAC `ee:ee:ee:ee:ee:ee`, container side `CNI_IFNAME`), gives it /32 and /128
//! addresses from Tortie IPAM with routes through `169.254.1.1` and the host side's link-local
//! address, and writes the WorkloadEndpoint. `tortie-ipam` allocates alone, under any plugin.
//!
//! - [`spec`]: environment, errors, results and versions, as the CNI specification fixes them.
//! - [`config`]: the network configuration (Calico's keys).
//! - [`ipam_ops`]: the IPAM half of each command; [`plugin`] and [`ipam_plugin`]: the commands.
//! - [`netlink`]: interfaces, addresses and routes; [`endpoint`]: the WorkloadEndpoint record.
//! - [`offload`]: device offload features over ethtool netlink (TX checksum offload off on the
//!   workload side, so the AF_XDP fastpath never sees partial checksums); [`tool`]: the same
//!   from the `tortie` binary's command line (`tortie disable-tx-checksum ...`).

pub mod config;
mod delegate;
pub mod endpoint;
mod gc;
pub mod ipam_ops;
pub mod ipam_plugin;
mod log;
pub mod netlink;
pub mod offload;
pub mod plugin;
pub mod pools;
pub mod run;
pub mod spec;
pub mod tool;
