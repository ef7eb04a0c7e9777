//! tortiectl: the calicoctl-style command line for Tortie.

fn main() {}
