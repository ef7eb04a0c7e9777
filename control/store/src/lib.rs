//! Typed access to v3 resources in a datastore: validation, defaults, all-or-nothing apply.
