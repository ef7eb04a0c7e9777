//! Packet classifier for compiled policy: flat as rules grow, incrementally updatable.
