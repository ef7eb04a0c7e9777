//! Test support shared by the workspace's integration tests.
//!
//! - [`etcd`]: a real etcd (Debian's `etcd-server`) on free loopback ports with a temporary data
//!   directory, optionally with TLS and client certificates, killed by PID when dropped. A
//!   missing binary fails the test with the package to install: nothing skips.

pub mod etcd;
