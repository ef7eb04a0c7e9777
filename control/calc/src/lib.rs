//! The calculation graph: what Calico enforces for every endpoint, incrementally, and why.
