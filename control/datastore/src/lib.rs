//! Datastore backends with etcd semantics: embedded SQLite and etcd v3.
