//! tortie-control: the per-node control daemon.
//!
//! It registers the node (its `Node` resource with the address chosen as Calico's
//! `IP_AUTODETECTION_METHOD` does), creates the host veth pair the fastpath delivers
//! host-bound traffic through, follows the datastore (list + watch, relist on compaction),
//! keeps the policy graph ([`tortie_calc::CalcGraph`]) and the routing inputs (nodes, pools,
//! block affinities, this node's endpoints), and writes compiled tables (`tortie-abi`) to the
//! shared-memory ring tortie-fastpath reads: a snapshot at start and whenever the ring asks
//! for one, deltas otherwise, generations increasing across restarts. It publishes the
//! node's status (its own, the fastpath's status file, the routes in force with their
//! origin) to the datastore for `tortiectl node status|routes`, serves `/metrics`,
//! `/readyz`, `/livez` and `/status`, and reports endpoints programmed for the CNI plugin.
//!
//! Modules by job: [`options`] (command line), [`autodetect`] and [`register`] (node
//! address and registration), [`netlink`] and [`host`] (links, neighbours, host plumbing),
//! [`sync`] (list + watch), [`cluster`] (datastore-derived state), [`routes`] (route
//! computation), [`programs`] (policy programs shared by equal plans), [`tables`] and [`publisher`] (diffs and the ring), [`engine`] (one cycle),
//! [`status`], `report` and [`metrics`] (what is reported), [`bgp`] (the speaker),
//! [`daemon`] (the loop).
//!
//! With `--bgp on` (the default, as Calico's `CALICO_NETWORKING_BACKEND=bird`) the node runs
//! a BGP speaker ([`bgp`], on `tortie-bgp-agent`): it advertises this node's blocks, and the
//! routes it learns fill the route table with origin `bgp` wherever the datastore gives no
//! route for the prefix; its sessions are published in the node status.
//!
//! Known gaps, stated plainly: host endpoints naming no interface (`*`) are not put in the tables; the
//! node-wide IP-in-IP mode is derived from the pools (Always if any pool is, else
//! CrossSubnet if any pool is).

pub mod autodetect;
pub mod bgp;
mod build;
pub mod cluster;
mod cpu_time;
pub mod daemon;
pub mod engine;
mod error;
pub mod host;
pub mod host_routes;
pub mod metrics;
pub mod netlink;
pub mod options;
pub mod programs;
pub mod publisher;
pub mod register;
mod report;
pub mod routes;
pub mod status;
pub mod sync;
pub mod tables;

pub use error::ControlError;
