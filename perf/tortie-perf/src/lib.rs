//! `tortie-perf`'s library part: the network-namespace and netlink layer that the harness
//! (the `tortie-perf` binary) and its integration tests share, so neither needs the `ip`
//! binary.

pub mod netns;
