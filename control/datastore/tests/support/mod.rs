//! Test support shared by the integration tests.
#![allow(dead_code)]

pub use tortie_testkit::etcd;
pub mod suite;
